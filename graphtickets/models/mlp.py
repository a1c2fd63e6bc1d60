"""Fully connected networks: ``mlp`` and ``lenet300_100``.

Module names: ``flatten`` (only for inputs with more than one dimension), then ``fc1``,
``act1``, ``fc2``, ``act2``, ... for the hidden layers and ``classifier`` for the output
layer. Parameter names are therefore ``fc1.weight``, ..., ``classifier.weight``. With
``batchnorm=True`` every hidden layer is ``fc<i>``, ``bn<i>`` (``BatchNorm1d`` over its
units), ``act<i>``: the units are the BatchNorm's channels (Early-Bird's channel masks, You
et al. 2020, read their scales ``bn<i>.weight``).
"""

from __future__ import annotations

import math
import numbers
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from torch import nn

from graphtickets.models.core import ModelError, register_model

__all__ = ["mlp", "lenet300_100", "ACTIVATIONS", "activation_class"]

#: Activation names the builders accept.
ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
    "leaky_relu": nn.LeakyReLU,
}


def activation_class(name: Any) -> type[nn.Module]:
    """The activation module class called ``name`` (a key of :data:`ACTIVATIONS`)."""
    if not isinstance(name, str) or name not in ACTIVATIONS:
        raise ModelError(f"unknown activation {name!r}; use one of {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]


def _widths(widths: Any) -> tuple[int, ...]:
    if isinstance(widths, (str, bytes)) or not isinstance(widths, Sequence):
        raise ModelError(f"widths must be a sequence of positive ints, e.g. (100, 100); got {widths!r}")
    bad = [w for w in widths if isinstance(w, bool) or not isinstance(w, numbers.Integral) or w < 1]
    if bad:
        raise ModelError(f"widths must be positive ints, got {list(widths)!r}")
    return tuple(int(w) for w in widths)


@register_model("mlp")
def mlp(
    in_shape: tuple[int, ...],
    num_classes: int,
    widths: Sequence[int] = (100, 100),
    activation: str = "relu",
    bias: bool = True,
    batchnorm: bool = False,
) -> nn.Sequential:
    """A multilayer perceptron.

    Parameters
    ----------
    in_shape : tuple of int
        Input shape; inputs with more than one dimension are flattened first.
    num_classes : int
        Output width.
    widths : sequence of int, default (100, 100)
        Hidden layer widths (empty: a linear classifier).
    activation : str, default "relu"
        A key of :data:`ACTIVATIONS`.
    bias : bool, default True
        Give every Linear layer a bias.
    batchnorm : bool, default False
        Put a ``BatchNorm1d`` (affine, PyTorch's defaults: scale 1, shift 0) between every
        hidden Linear layer and its activation, as in the networks of Early-Bird and network
        slimming; the classifier has none.

    Returns
    -------
    nn.Sequential
        ``[flatten,] fc1, [bn1,] act1, ..., classifier``.

    Examples
    --------
    >>> net = mlp((8,), 3, widths=(5, 4), batchnorm=True)
    >>> [n for n, _ in net.named_children()]
    ['fc1', 'bn1', 'act1', 'fc2', 'bn2', 'act2', 'classifier']
    """
    hidden = _widths(widths)
    act = activation_class(activation)
    if not isinstance(bias, bool):
        raise ModelError(f"bias must be True or False, got {bias!r}")
    if not isinstance(batchnorm, bool):
        raise ModelError(f"batchnorm must be True or False, got {batchnorm!r}")
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    if len(in_shape) > 1:
        layers["flatten"] = nn.Flatten()
    n_in = math.prod(in_shape)
    for i, w in enumerate(hidden, start=1):
        layers[f"fc{i}"] = nn.Linear(n_in, w, bias=bias)
        if batchnorm:
            layers[f"bn{i}"] = nn.BatchNorm1d(w)
        layers[f"act{i}"] = act()
        n_in = w
    layers["classifier"] = nn.Linear(n_in, num_classes, bias=bias)
    return nn.Sequential(layers)


@register_model("lenet300_100")
def lenet300_100(
    in_shape: tuple[int, ...], num_classes: int, activation: str = "relu", bias: bool = True
) -> nn.Module:
    """LeNet-300-100: an :func:`mlp` with hidden widths (300, 100).

    References
    ----------
    LeCun, Y., Bottou, L., Bengio, Y. & Haffner, P. (1998). Gradient-based learning applied
    to document recognition. Proc. IEEE 86(11). Used as "Lenet" in Frankle, J. & Carbin, M.
    (2019). The Lottery Ticket Hypothesis. ICLR.
    """
    return mlp(in_shape, num_classes, widths=(300, 100), activation=activation, bias=bias)
