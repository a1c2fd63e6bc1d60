"""Conv-2 / Conv-4 / Conv-6 of Frankle & Carbin (2019), VGG-11/16/19 for CIFAR.

Conv-k: 3x3 convolutions (padding 1) with ReLU in pairs of 64, 128, 256 channels, a 2x
max-pool after each pair, then fully connected layers of 256 and 256 units and the
classifier. Module names: ``features.<i>`` (the conv/ReLU/pool stack, indexed), ``flatten``,
``fc.<i>`` (the hidden fully connected layers and their ReLUs), ``classifier``.

VGG: the standard configurations with BatchNorm after every convolution (convs without
bias, since BatchNorm's shift replaces it), ReLU, 2x max-pools, then an adaptive average
pool to 1x1 (``pool``), ``flatten`` and a single Linear ``classifier``. Module names:
``features.<i>``, ``pool``, ``flatten``, ``classifier``.

Both take a ``width`` multiplier scaling every channel count (and Conv-k's hidden fully
connected widths). Max-pools that would shrink a side below 1 are skipped, so the nets
build on small inputs (8x8 digits, length-40 MNIST-1D: a 1-D input uses Conv1d, after an
``unflatten`` module for ``(L,)`` inputs).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any

from torch import nn

from graphtickets.models.core import check_width, register_model, scaled
from graphtickets.models.layers import conv_kind, front, pool_out

__all__ = ["conv_net", "vgg", "CONV_CFGS", "VGG_CFGS"]

#: Conv-k layer plans: channel counts, "M" = 2x max-pool.
CONV_CFGS: dict[str, list[int | str]] = {
    "conv2": [64, 64, "M"],
    "conv4": [64, 64, "M", 128, 128, "M"],
    "conv6": [64, 64, "M", 128, 128, "M", 256, 256, "M"],
}

#: VGG layer plans (Simonyan & Zisserman 2015, configurations A, D, E).
VGG_CFGS: dict[str, list[int | str]] = {
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "vgg19": [
        64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
        512, 512, 512, 512, "M", 512, 512, 512, 512, "M",
    ],
}  # fmt: skip


def _features(
    in_shape: tuple[int, ...], cfg: list[int | str], width: float, batch_norm: bool
) -> tuple[nn.Module | None, nn.Sequential, int, tuple[int, ...]]:
    kind = conv_kind(in_shape)
    layers: list[nn.Module] = []
    ch, spatial = kind.channels, kind.spatial
    for item in cfg:
        if item == "M":
            out = pool_out(spatial)
            if out is not None:
                layers.append(kind.maxpool(2))
                spatial = out
            continue
        c = scaled(int(item), width)
        layers.append(kind.conv(ch, c, kernel_size=3, padding=1, bias=not batch_norm))
        if batch_norm:
            layers.append(kind.bn(c))
        layers.append(nn.ReLU())
        ch = c
    return front(kind), nn.Sequential(*layers), ch, spatial


def conv_net(
    in_shape: tuple[int, ...], num_classes: int, cfg: list[int | str], width: float = 1.0
) -> nn.Sequential:
    """A Conv-k network of Frankle & Carbin (2019) with layer plan ``cfg``.

    References
    ----------
    Frankle, J. & Carbin, M. (2019). The Lottery Ticket Hypothesis: Finding Sparse,
    Trainable Neural Networks. ICLR. (Architectures of Figure 2: Conv-2/4/6.)
    """
    w = check_width(width)
    unflatten, features, ch, spatial = _features(in_shape, cfg, w, batch_norm=False)
    hidden = scaled(256, w)
    mods: OrderedDict[str, nn.Module] = OrderedDict()
    if unflatten is not None:
        mods["unflatten"] = unflatten
    mods["features"] = features
    mods["flatten"] = nn.Flatten()
    mods["fc"] = nn.Sequential(
        nn.Linear(ch * math.prod(spatial), hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU()
    )
    mods["classifier"] = nn.Linear(hidden, num_classes)
    return nn.Sequential(mods)


def vgg(
    in_shape: tuple[int, ...], num_classes: int, cfg: list[int | str], width: float = 1.0
) -> nn.Sequential:
    """A CIFAR VGG with BatchNorm, global average pooling and one Linear classifier.

    References
    ----------
    Simonyan, K. & Zisserman, A. (2015). Very Deep Convolutional Networks for Large-Scale
    Image Recognition. ICLR. CIFAR variant as in Frankle, J. & Carbin, M. (2019), ICLR, and
    Frankle et al. (2021), Pruning Neural Networks at Initialization: Why Are We Missing the
    Mark? ICLR.
    """
    w = check_width(width)
    unflatten, features, ch, _ = _features(in_shape, cfg, w, batch_norm=True)
    kind = conv_kind(in_shape)
    mods: OrderedDict[str, nn.Module] = OrderedDict()
    if unflatten is not None:
        mods["unflatten"] = unflatten
    mods["features"] = features
    mods["pool"] = kind.avgpool(1)
    mods["flatten"] = nn.Flatten()
    mods["classifier"] = nn.Linear(ch, num_classes)
    return nn.Sequential(mods)


def _register(name: str, fn: Any, cfg: list[int | str], doc: str) -> None:
    def builder(in_shape: tuple[int, ...], num_classes: int, width: float = 1.0) -> nn.Sequential:
        return fn(in_shape, num_classes, cfg, width=width)

    builder.__name__ = builder.__qualname__ = name
    builder.__doc__ = (
        f"{doc}\n\n    Parameters\n    ----------\n    in_shape : tuple of int\n"
        f"    num_classes : int\n    width : float, default 1.0\n        Channel multiplier.\n"
    )
    register_model(name)(builder)


for _name, _cfg in CONV_CFGS.items():
    _register(_name, conv_net, _cfg, f"{_name.capitalize()} of Frankle & Carbin (2019): plan {_cfg}, FC 256-256.")
for _name, _cfg in VGG_CFGS.items():
    _register(_name, vgg, _cfg, f"{_name.upper()} (CIFAR, BatchNorm): plan {_cfg}.")
