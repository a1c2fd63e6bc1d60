"""Early-Bird tickets (You et al. 2020) and the same rule on magnitudes, from the paper.

Train with SGD (momentum 0.9, weight decay 1e-4, lr 0.1); the channel method adds
``l1 * sum |gamma|`` over the BatchNorm scales (network slimming). After every epoch take a
mask: the ``round(c * C)`` channels with the largest ``|gamma|`` over all BatchNorm layers
(channel method) or the ``round(d * N)`` largest ``|w|`` (``early_magnitude``). Keep the last
``window`` masks (FIFO); the rule fires when the window is full and the newest mask is within
``tol`` of each other one. Distance: the Hamming distance over the number of positions (the
paper's), or over the kept positions of both masks (``|a xor b| / (|a| + |b|)``) for weight
masks and where ``2c <= tol``. The ticket: every weight of a pruned channel off (the rows it
produces, the inputs it feeds), then the ``round(d * N)`` largest ``|w|`` of that at the epoch
drawn (documented deviation; grown by the next channels by ``|gamma|`` when too sparse).
Written for chains of modules (each BatchNorm after the layer it normalises).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn

from oracles.common import (
    Masks,
    count,
    magnitudes,
    masked_step,
    optimizer,
    prunable_names,
    state_of,
    top_k,
)

WEIGHTED = (nn.Linear, nn.Conv1d, nn.Conv2d)
NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)


def chain(model: nn.Module) -> list[tuple[str, str, str | None]]:
    """``(BatchNorm, producing weight, consuming weight or None)`` walking the leaf modules in order."""
    leaves = [(n, m) for n, m in model.named_modules() if not list(m.children())]
    out, last = [], None
    for i, (name, mod) in enumerate(leaves):
        if isinstance(mod, WEIGHTED):
            last = f"{name}.weight"
        elif isinstance(mod, NORMS):
            nxt = next((f"{n}.weight" for n, m in leaves[i + 1:] if isinstance(m, WEIGHTED)), None)
            out.append((name, last, nxt))
    return out


def weight_mask(model: nn.Module, channels: Masks, names: list[str]) -> Masks:
    params = dict(model.named_parameters())
    out = {n: torch.ones(params[n].shape, dtype=torch.bool) for n in names}
    for bn, producer, consumer in chain(model):
        keep = channels[bn]
        out[producer] &= keep.view(-1, *[1] * (out[producer].dim() - 1))
        if consumer is not None:
            per = params[consumer].shape[1] // keep.numel()  # a flatten gives each channel a block
            cols = keep.repeat_interleave(per)
            out[consumer] &= cols.view(1, -1, *[1] * (out[consumer].dim() - 2))
    return out


def _gammas(model: nn.Module) -> dict[str, torch.Tensor]:
    mods = dict(model.named_modules())
    return {bn: mods[bn].weight.detach().abs().clone() for bn, _, _ in chain(model)}


def _distance(a: torch.Tensor, b: torch.Tensor, by_kept: bool) -> float:
    diff = int((a ^ b).sum())
    return diff / (int(a.sum()) + int(b.sum())) if by_kept else diff / a.numel()


def draw(model: nn.Module, *, density: float, next_epoch: Callable[[], Iterator[Any]], epochs: int,
         channel_density: float | None = None, l1: float = 1e-4, lr: float = 0.1, tol: float = 0.1,
         window: int = 5) -> dict[str, Any]:
    """The channel method with ``channel_density``, ``early_magnitude`` without it."""
    work = copy.deepcopy(model)
    names = prunable_names(work)
    total = sum(work.get_parameter(n).numel() for n in names)
    k = round(density * total)
    channel = channel_density is not None
    mods = dict(work.named_modules())
    penalty = (lambda m: l1 * sum(mods[bn].weight.abs().sum() for bn, _, _ in chain(m))) if channel else None
    o = optimizer(work, "sgd", lr, momentum=0.9, weight_decay=1e-4)
    fifo: list[torch.Tensor] = []
    by_kept = not channel or 2 * channel_density <= tol
    for epoch in range(1, epochs + 1):
        for x, y in next_epoch():
            masked_step(work, o, x, y, None, penalty)
        if channel:
            g = _gammas(work)
            mask = top_k(g, round(channel_density * sum(v.numel() for v in g.values())))
        else:
            mask = top_k(magnitudes(work, names), k)
        flat = torch.cat([m.reshape(-1) for m in mask.values()])
        fifo = (fifo + [flat])[-window:]
        fired = len(fifo) == window and max(_distance(flat, m, by_kept) for m in fifo[:-1]) <= tol
        if fired or epoch == epochs:
            break
    out = {"epoch": epoch, "detected": fired, "state": state_of(work)}
    if not channel:
        return {**out, "masks": mask}
    wmask = weight_mask(work, mask, names)
    # |gamma| descending, then the earlier layer, then the lower index
    order = sorted((-float(g[bn][i]), j, i, bn) for j, bn in enumerate(g) for i in range(g[bn].numel()))
    for *_, i, bn in order:  # grow by the next channels while too sparse
        if count(wmask) >= k:
            break
        if not mask[bn][i]:
            mask = {b: m.clone() for b, m in mask.items()}
            mask[bn][i] = True
            wmask = weight_mask(work, mask, names)
    out["structured"] = count(wmask)
    return {**out, "channels": mask, "masks": top_k(magnitudes(work, names), k, wmask)}
