"""Datasets: a registry of loaders, the :func:`load` / :func:`info` front end, and batching.

Registered datasets (:data:`DATASETS`):

``mnist1d``
    MNIST-1D (Greydanus 2020), the embedded default: generated locally by the ``mnist1d``
    package's generator and cached under the data root. ``(40,)``, 10 classes.
``digits``
    scikit-learn's bundled 8x8 digits, scaled to [0, 1]. ``(1, 8, 8)``, 10 classes.
``mnist``, ``fashion_mnist``
    From ``<root>/MNIST/raw`` / ``<root>/FashionMNIST/raw``. ``(1, 28, 28)``, 10 classes.
``cifar10``, ``cifar100``
    From ``<root>/cifar-10-batches-py`` / ``<root>/cifar-100-python``. ``(3, 32, 32)``.

The data root is ``root=`` if given, else ``$GRAPHTICKETS_DATA``, else
``~/.cache/graphtickets``. Nothing is fetched unless ``download=True``.

What lives where: ``core.py`` holds the registry (:data:`DATASETS`, :func:`register_dataset`,
:class:`DatasetInfo`), the :func:`load` / :func:`info` front end, the data root and the
train/val split; ``batching.py`` the mini-batches (:class:`Batches`, :func:`take`,
:func:`epoch_seed`); ``mnist1d.py``, ``digits.py`` and ``images.py`` one loader family each,
registered on import; ``variants.py`` the typed variant arguments (:class:`Param`), their
strict checks, labels and the generic transforms (``classes``, ``label_perm``, ``pixel_perm``);
``spec.py`` :class:`DataSpec`, one task (a name and its canonical arguments), which a study's
``datasets:`` entry parses into. To add a dataset, write ``loader(split, root, download, **args)
-> (inputs, targets)`` (numpy arrays) and decorate it with :func:`register_dataset`, declaring
its arguments as ``params={name: Param(...)}``.

Task variants: ``load(name, **variant)`` / ``info(name, **variant)`` take the dataset's
arguments (``mnist1d``: its generator's, e.g. ``shuffle_seq=True``, ``data_seed``,
``iid_noise_scale``; every classification set: ``classes=[..]``, ``label_perm=<seed>``; image
sets: ``pixel_perm=<seed>``), or a label ``"mnist1d[shuffle_seq]"``.

Imports go one way: ``data`` imports only ``graphtickets.errors`` and ``_registry``; ``models``
and ``ticket`` sit beside it, and ``training`` ← ``pruning`` ← ``graphs`` ← ``analysis`` ←
``study`` ← ``cli`` import it, never the other way round.

>>> import graphtickets as gt
>>> train = gt.data.load("digits")
>>> x, y = next(iter(gt.data.batches(train, batch_size=32, seed=0)))
>>> tuple(x.shape), y.dtype
((32, 1, 8, 8), torch.int64)
"""

from __future__ import annotations

from graphtickets.data import digits as _digits  # noqa: F401  (registers "digits")
from graphtickets.data import images as _images  # noqa: F401  (registers mnist, cifar, ...)
from graphtickets.data import mnist1d as _mnist1d  # noqa: F401  (registers "mnist1d")
from graphtickets.data.batching import Batches, TakenBatches, batches, epoch_seed, take
from graphtickets.data.core import (
    DATASETS,
    SPLITS,
    DatasetInfo,
    DatasetSource,
    NamedTensorDataset,
    data_root,
    dataset_name,
    info,
    load,
    register_dataset,
    resolve,
    split_indices,
)
from graphtickets.data.spec import DataSpec
from graphtickets.data.variants import Param

__all__ = [
    "DATASETS",
    "DataSpec",
    "Param",
    "resolve",
    "SPLITS",
    "DatasetInfo",
    "DatasetSource",
    "NamedTensorDataset",
    "dataset_name",
    "register_dataset",
    "data_root",
    "info",
    "load",
    "split_indices",
    "Batches",
    "TakenBatches",
    "batches",
    "take",
    "epoch_seed",
]
