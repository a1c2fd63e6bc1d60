"""Helpers shared by the data-driven scorers (SNIP, GraSP): batches as given, on the model's device."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from graphtickets.errors import GraphticketsError

__all__ = ["as_batches", "model_device"]


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (CPU for a parameterless model)."""
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def as_batches(data: Iterable[Any] | None, method: str) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``data`` as a list of ``(inputs, targets)`` tensors, consumed once, in the given order.

    Scorers may pass over the batches several times (GraSP needs two passes, iterated pruning
    one per round), so a one-shot iterator is read once here. Nothing is resampled.
    """
    if data is None:
        raise GraphticketsError(
            f"{method} needs data: pass data=<iterable of (inputs, targets) batches>"
        )
    out: list[tuple[torch.Tensor, torch.Tensor]] = []
    for i, batch in enumerate(data):
        if not isinstance(batch, (tuple, list)) or len(batch) < 2:
            raise GraphticketsError(
                f"{method}: batch {i} is not an (inputs, targets) pair; pass batches of "
                f"(inputs, targets), e.g. from gt.data.batches(dataset, batch_size=128)"
            )
        out.append((batch[0], batch[1]))
    if not out:
        raise GraphticketsError(f"{method}: data holds no batch; pass at least one (inputs, targets) batch")
    return out
