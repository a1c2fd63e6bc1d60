"""Convolutional networks for sequences (MNIST-1D): ``cnn1d`` and ``resnet1d``.

``cnn1d``
    The small CNN of the MNIST-1D paper (Greydanus 2020; Greydanus & Kobak 2024): three
    Conv1d layers of ``channels`` (25) channels with ReLU, kernel sizes 5, 3, 3, stride 2 and
    padding 1 each, then the flattened feature map (channels x positions; 25 x 5 = 125 for
    length 40) feeds one Linear ``classifier``. 5,210 parameters on MNIST-1D. Module names:
    ``[unflatten,] features.<i>`` (conv, [BatchNorm1d,] ReLU, ...), ``flatten``,
    ``classifier``; parameters ``features.0.weight``, ..., ``classifier.weight``.
    ``batchnorm=True`` puts a BatchNorm1d after each conv (before its ReLU) and drops the conv
    biases, which BatchNorm's shift makes redundant, as the VGG builders here do (not in the
    paper; it gives Early-Bird's channel mode the scaling factors it ranks).
``resnet1d``
    The CIFAR ResNet of He et al. (2016) (:class:`graphtickets.models.resnet.ResNet`: a stem
    conv, three stages of ``n = (depth - 2) / 6`` basic blocks, projection shortcuts where
    the shape changes, global average pooling, a Linear ``classifier``) with Conv1d /
    BatchNorm1d, kernel size 3, any ``depth`` = 6n + 2 (8, 14, 20, ...) and stage widths
    ``widths`` (16, 32, 64). Same module and parameter names as ``resnet20``
    (``conv1``, ``stage<s>.<i>.conv1``, ...), so Elastic LTH maps its blocks between depths.

Both take ``(L,)`` inputs (MNIST-1D's 40-vectors; an ``nn.Unflatten`` adds the channel
dimension, as the reference's ``x.view(-1, 1, L)``) or ``(C, L)`` inputs, and refuse image
shapes (use ``conv2``/``vgg*``/``resnet20`` there).
"""

from __future__ import annotations

import numbers
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from torch import nn

from graphtickets.models.core import ModelError, register_model
from graphtickets.models.layers import conv_kind, front
from graphtickets.models.resnet import ResNet

__all__ = ["cnn1d", "resnet1d", "CNN1D_LAYERS"]

#: ``(kernel_size, stride, padding)`` of the three convolutions of the MNIST-1D paper's CNN.
CNN1D_LAYERS: tuple[tuple[int, int, int], ...] = ((5, 2, 1), (3, 2, 1), (3, 2, 1))


def _check_1d(name: str, in_shape: tuple[int, ...]) -> None:
    if len(in_shape) not in (1, 2):
        raise ModelError(
            f"{name} takes sequences: in_shape (L,) or (C, L), got {tuple(in_shape)}; for images use "
            f"conv2/conv4/conv6, vgg* or resnet20/32/56"
        )


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < 1:
        raise ModelError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def _check_bool(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise ModelError(f"{name} must be True or False, got {value!r}")
    return value


@register_model("cnn1d")
def cnn1d(
    in_shape: tuple[int, ...], num_classes: int, channels: int = 25, batchnorm: bool = False
) -> nn.Sequential:
    """The MNIST-1D paper's CNN: 3 Conv1d (kernels 5, 3, 3; stride 2) with ReLU, a Linear head.

    Parameters
    ----------
    in_shape : tuple of int
        ``(L,)`` or ``(C, L)``; the length must leave at least one position after the three
        strided convolutions (``L >= 3``).
    num_classes : int
    channels : int, default 25
        Channels of every convolution.
    batchnorm : bool, default False
        BatchNorm1d after each convolution (whose bias is then dropped).

    Returns
    -------
    nn.Sequential
        ``[unflatten,] features, flatten, classifier``.

    Examples
    --------
    >>> import graphtickets as gt
    >>> m = gt.models.build("cnn1d", in_shape=(40,), num_classes=10)
    >>> sum(p.numel() for p in m.parameters()), m.classifier.in_features
    (5210, 125)

    References
    ----------
    Greydanus, S. (2020). Scaling down deep learning. arXiv:2011.14439; Greydanus, S. &
    Kobak, D. (2024). Scaling down deep learning with MNIST-1D. ICML. (The ``ConvBase`` model
    of the reference code, 94 % test accuracy on MNIST-1D in the paper's table.)
    """
    _check_1d("cnn1d", in_shape)
    ch = _positive_int(channels, "channels")
    bn = _check_bool(batchnorm, "batchnorm")
    kind = conv_kind(in_shape)
    length = kind.spatial[0]
    layers: list[nn.Module] = []
    c_in = kind.channels
    for k, s, p in CNN1D_LAYERS:
        length = (length + 2 * p - k) // s + 1
        if length < 1:
            raise ModelError(f"cnn1d needs sequences of length >= 3, got in_shape {tuple(in_shape)}")
        layers.append(nn.Conv1d(c_in, ch, kernel_size=k, stride=s, padding=p, bias=not bn))
        if bn:
            layers.append(nn.BatchNorm1d(ch))
        layers.append(nn.ReLU())
        c_in = ch
    mods: OrderedDict[str, nn.Module] = OrderedDict()
    unflatten = front(kind)
    if unflatten is not None:
        mods["unflatten"] = unflatten
    mods["features"] = nn.Sequential(*layers)
    mods["flatten"] = nn.Flatten()
    mods["classifier"] = nn.Linear(ch * length, num_classes)
    return nn.Sequential(mods)


@register_model("resnet1d")
def resnet1d(
    in_shape: tuple[int, ...], num_classes: int, depth: int = 14, widths: Sequence[int] = (16, 32, 64)
) -> ResNet:
    """A CIFAR-layout ResNet for sequences (Conv1d, BatchNorm1d) of ``depth`` = 6n + 2.

    Parameters
    ----------
    in_shape : tuple of int
        ``(L,)`` or ``(C, L)``.
    num_classes : int
    depth : int, default 14
        6n + 2 with n >= 1 blocks per stage: 8, 14, 20, 26, 32, ...
    widths : sequence of 3 ints, default (16, 32, 64)
        Channels of the three stages (the stem has ``widths[0]``).

    Returns
    -------
    ResNet
        Modules ``[unflatten,] conv1, bn1, relu, stage1..3.<i>.{conv1, bn1, relu1, conv2, bn2,
        [shortcut.0, shortcut.1,] relu2}, pool, flatten, classifier``.

    Examples
    --------
    >>> import graphtickets as gt
    >>> m = gt.models.build("resnet1d", in_shape=(40,), num_classes=10, depth=8)
    >>> len(m.stage1), m.stage2[0].conv1.stride
    (1, (2,))

    References
    ----------
    He, K., Zhang, X., Ren, S. & Sun, J. (2016). Deep Residual Learning for Image
    Recognition. CVPR. (Section 4.2 layout, with projection shortcuts as in open_lth.)
    """
    _check_1d("resnet1d", in_shape)
    d = _positive_int(depth, "depth")
    if isinstance(widths, (str, bytes)) or not isinstance(widths, Sequence) or len(widths) != 3:
        raise ModelError(f"widths must be 3 positive ints (the stage channels), got {widths!r}")
    w = tuple(_positive_int(v, "widths[i]") for v in widths)
    return ResNet(in_shape, num_classes, d, widths=(w[0], w[1], w[2]))
