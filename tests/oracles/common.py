"""Pieces every oracle uses: exact top-k with the documented tie rule, masked steps, epochs.

Conventions taken from the package's documentation (not its code):

* a ticket at density ``d`` keeps ``round(d * N)`` weights; ties at the threshold keep the
  earlier parameter (in ``named_parameters`` order), then the lower flat index
  (``graphtickets.pruning.select`` module docstring);
* masked training holds pruned weights at exactly zero: their gradients are zeroed before
  each optimizer step and the weights zeroed after it (``graphtickets.training`` docstring);
* Python's ``round`` is the rounding of the counts (half to even, as ``round(d * N)``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch
from torch import nn

Masks = dict[str, torch.Tensor]


def prunable_names(model: nn.Module) -> list[str]:
    """Weights of Linear and Conv layers, in module order (the package's default prunable set)."""
    kinds = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
    return [f"{n}.weight" for n, m in model.named_modules() if isinstance(m, kinds)]


def top_k(scores: dict[str, torch.Tensor], k: int, alive: Masks | None = None) -> Masks:
    """Keep the ``k`` highest scores over all tensors together; ties: earlier name, lower index."""
    names = list(scores)
    flat = torch.cat([scores[n].detach().double().reshape(-1) for n in names])
    live = torch.ones(flat.numel(), dtype=torch.bool) if alive is None else \
        torch.cat([alive[n].reshape(-1) for n in names])
    candidates = torch.nonzero(live).flatten()                 # ascending positions
    order = torch.argsort(-flat[candidates], stable=True)      # equal scores keep position order
    assert k <= candidates.numel(), "cannot keep more than is alive"
    keep = torch.zeros(flat.numel(), dtype=torch.bool)
    keep[candidates[order[:k]]] = True
    out, start = {}, 0
    for n in names:
        size = scores[n].numel()
        out[n] = keep[start:start + size].reshape(scores[n].shape)
        start += size
    return out


def magnitudes(model: nn.Module, names: Iterable[str]) -> dict[str, torch.Tensor]:
    params = dict(model.named_parameters())
    return {n: params[n].detach().abs().clone() for n in names}


def count(masks: Masks) -> int:
    return sum(int(m.sum()) for m in masks.values())


def masked_step(model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
                masks: Masks | None, extra: Callable[[nn.Module], torch.Tensor] | None = None) -> None:
    """One step of cross-entropy (+ ``extra``) with pruned weights held at zero."""
    params = dict(model.named_parameters())
    opt.zero_grad(set_to_none=True)
    loss = nn.functional.cross_entropy(model(x), y)
    if extra is not None:
        loss = loss + extra(model)
    loss.backward()
    with torch.no_grad():
        for n, m in (masks or {}).items():
            if params[n].grad is not None:
                params[n].grad[~m] = 0.0
    opt.step()
    zero_pruned(model, masks)


@torch.no_grad()
def zero_pruned(model: nn.Module, masks: Masks | None) -> None:
    params = dict(model.named_parameters())
    for n, m in (masks or {}).items():
        params[n][~m] = 0.0


def epochs_of(data: Any) -> Callable[[], Iterator[Any]]:
    """``next_epoch()``: one pass of ``data`` per call (a Batches object moves to its next order)."""
    return lambda: iter(data)


def optimizer(model: nn.Module, name: str, lr: float, momentum: float = 0.9,
              weight_decay: float = 0.0) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    assert name == "adam"
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)


def state_of(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}
