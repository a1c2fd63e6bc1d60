"""Model builders: a registry of plain functions and the :func:`build` front end.

Registered models (:data:`MODELS`), all shaped by ``in_shape`` and ``num_classes``:

``mlp``, ``lenet300_100``
    Fully connected; modules ``[flatten,] fc1, act1, ..., classifier``.
``conv2``, ``conv4``, ``conv6``
    Frankle & Carbin (2019); modules ``[unflatten,] features.<i>, flatten, fc.<i>, classifier``.
``vgg11``, ``vgg16``, ``vgg19``
    CIFAR VGG with BatchNorm; modules ``[unflatten,] features.<i>, pool, flatten, classifier``.
``resnet20``, ``resnet32``, ``resnet56``
    He et al. (2016) CIFAR ResNets; modules ``conv1, bn1, relu, stage<s>.<i>.{conv1, bn1,
    relu1, conv2, bn2, shortcut.0, shortcut.1, relu2}, pool, flatten, classifier``.
``cnn1d``, ``resnet1d``
    1-D conv nets for sequences such as MNIST-1D's ``(40,)``: the MNIST-1D paper's CNN and a
    CIFAR-layout ResNet of ``depth`` = 6n + 2.

The last Linear layer is always called ``classifier``. Conv nets and ResNets take a ``width``
multiplier. ``(C, H, W)`` inputs use 2-D layers, ``(C, L)`` 1-D layers and ``(L,)`` inputs
are reshaped to ``(1, L)`` first. Every model is ``torch.fx.symbolic_trace``-able and built
only from standard ``torch.nn`` modules, with plain ``+`` for residual additions.

What lives where: ``core.py`` holds the registry (:data:`MODELS`, :func:`register_model`), the
:func:`build` / :func:`build_from_spec` front end and the ``gt_spec`` a model carries (which
is how a ticket file rebuilds its model); ``layers.py`` the small shared pieces (input
reshaping, 1-D/2-D layer choice); ``mlp.py``, ``conv.py``, ``resnet.py`` and ``conv1d.py`` one
family each, registered on import. To add a model, write ``builder(in_shape, num_classes,
**options) -> nn.Module`` and decorate it with :func:`register_model` (:func:`build` seeds
torch around the call).

Imports go one way: ``models`` imports only ``graphtickets.errors`` and ``_registry``; ``data``
and ``ticket`` sit beside it, and ``training`` ← ``pruning`` ← ``graphs`` ← ``analysis`` ←
``study`` ← ``cli`` import it, never the other way round.

>>> import graphtickets as gt
>>> m = gt.models.build("resnet20", in_shape=(3, 32, 32), num_classes=10, width=0.5)
>>> gt.models.build_from_spec(m.gt_spec).gt_spec == m.gt_spec
True
"""

from __future__ import annotations

from graphtickets.models import conv as _conv  # noqa: F401  (registers conv*, vgg*)
from graphtickets.models import conv1d as _conv1d  # noqa: F401  (registers cnn1d, resnet1d)
from graphtickets.models import mlp as _mlp  # noqa: F401  (registers mlp, lenet300_100)
from graphtickets.models import resnet as _resnet  # noqa: F401  (registers resnet*)
from graphtickets.models.core import (
    MODELS,
    ModelError,
    build,
    build_from_spec,
    register_model,
    spec_of,
)

__all__ = ["MODELS", "ModelError", "build", "build_from_spec", "register_model", "spec_of"]
