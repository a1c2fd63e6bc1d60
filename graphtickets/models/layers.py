"""Shape helpers shared by the model builders: pick 1-D or 2-D layers from ``in_shape``.

``in_shape`` of length 3 ``(C, H, W)`` gives ``Conv2d`` / ``BatchNorm2d`` / ``MaxPool2d``;
length 2 ``(C, L)`` gives the 1-D layers; length 1 ``(L,)`` is treated as ``(1, L)`` with an
``nn.Unflatten`` in front, so the convolutional nets also run on MNIST-1D.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

__all__ = ["ConvKind", "conv_kind", "front", "pool_out"]


@dataclass(frozen=True)
class ConvKind:
    """The layer classes and the (channels, spatial sizes) of a convolutional input."""

    conv: type[nn.Module]
    bn: type[nn.Module]
    maxpool: type[nn.Module]
    avgpool: type[nn.Module]
    channels: int
    spatial: tuple[int, ...]
    unflatten: bool


def conv_kind(in_shape: tuple[int, ...]) -> ConvKind:
    """The layer classes for ``in_shape`` (see the module docstring)."""
    if len(in_shape) == 3:
        return ConvKind(
            nn.Conv2d, nn.BatchNorm2d, nn.MaxPool2d, nn.AdaptiveAvgPool2d, in_shape[0], tuple(in_shape[1:]), False
        )
    if len(in_shape) == 2:
        return ConvKind(
            nn.Conv1d, nn.BatchNorm1d, nn.MaxPool1d, nn.AdaptiveAvgPool1d, in_shape[0], (in_shape[1],), False
        )
    return ConvKind(nn.Conv1d, nn.BatchNorm1d, nn.MaxPool1d, nn.AdaptiveAvgPool1d, 1, (in_shape[0],), True)


def front(kind: ConvKind) -> nn.Module | None:
    """``nn.Unflatten(1, (1, L))`` for a 1-D ``(L,)`` input, else None."""
    return nn.Unflatten(1, (1, kind.spatial[0])) if kind.unflatten else None


def pool_out(spatial: tuple[int, ...]) -> tuple[int, ...] | None:
    """Sizes after a 2x max-pool, or None if a side would drop below 1 (skip that pool)."""
    out = tuple(s // 2 for s in spatial)
    return None if min(out) < 1 else out
