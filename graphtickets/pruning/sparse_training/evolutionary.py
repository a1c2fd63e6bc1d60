"""SET, Sparse Evolutionary Training (Mocanu et al. 2018): an Erdős–Rényi topology that evolves.

The network starts from a random mask with the Erdős–Rényi layer densities
(``eps (n_in + n_out) / (n_in n_out)`` per layer, :func:`~graphtickets.pruning.sparse_training.common.er_densities`)
and is trained sparse (a copy of the model, from its initial weights). After every epoch but
the last, every layer:

1. removes the fraction ``zeta`` of its positive weights closest to zero (the smallest
   positive ones) and the fraction ``zeta`` of its negative weights closest to zero (the
   largest negative ones): ``floor(zeta * n_pos) + floor(zeta * n_neg)`` connections, as the
   paper does (an active weight that is exactly 0 counts as positive);
2. adds as many connections drawn uniformly at random among the positions that were absent
   before the removal, so the regrowth never lands on a just-removed connection (a layer with
   fewer absent positions regrows only that many and removes only that many);
3. the new weights start at 0.

So every layer keeps its count and the final mask keeps exactly ``round(density * N)``. The
ticket is the final mask (the topology after the last epoch); the accuracy of SET's own run
is ``meta["run_accuracy"]``.

Deviations (named): ``eps`` is solved from the requested density (the paper fixes ``eps``
and reports the density it gives); new weights start at 0 where the paper draws them from the
initialization's distribution; no update after the last epoch (its regrown weights would not
be trained). For conv layers the fan ``c_in + c_out`` is used (the paper has MLPs; ERK, with
the kernel, is ``distribution="erk"``).

References
----------
.. [1] Mocanu, Mocanu, Stone, Nguyen, Gibescu, Liotta. "Scalable training of artificial neural
   networks with adaptive sparse connectivity inspired by network science." Nature
   Communications 9, 2383 (2018).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from graphtickets._rules import Rule
from graphtickets.errors import GraphticketsError
from graphtickets.pruning.core import MethodResult, register_method, training_rules
from graphtickets.pruning.select import draw_generator
from graphtickets.pruning.sparse_training.common import (
    DISTRIBUTIONS,
    SparseOptions,
    check_fraction,
    counts_of,
    prepared,
    random_mask,
    run_meta,
    sparse_extras,
    sparse_run,
    steps_per_epoch,
)

__all__ = ["set_method", "set_removal", "set_update"]


def _closest_to_zero(w: torch.Tensor, among: torch.Tensor, k: int, positive: bool) -> torch.Tensor:
    """Flat indices of the ``k`` entries of ``among`` closest to 0 (ties: the lower index first)."""
    idx = torch.nonzero(among).reshape(-1)
    vals = w[idx] if positive else -w[idx]
    return idx[torch.argsort(vals, stable=True)[:k]]


def set_removal(w: torch.Tensor, mask: torch.Tensor, zeta: float) -> torch.Tensor:
    """SET's removal in one layer: a mask of the ``floor(zeta n_pos)`` smallest positive and the
    ``floor(zeta n_neg)`` largest negative active weights (``w >= 0`` counts as positive)."""
    flat_w, flat_m = w.detach().reshape(-1), mask.reshape(-1)
    pos, neg = flat_m & (flat_w >= 0), flat_m & (flat_w < 0)
    k_pos = int(math.floor(zeta * int(pos.count_nonzero())))
    k_neg = int(math.floor(zeta * int(neg.count_nonzero())))
    out = torch.zeros_like(flat_m)
    out[_closest_to_zero(flat_w, pos, k_pos, True)] = True
    out[_closest_to_zero(flat_w, neg, k_neg, False)] = True
    return out.reshape(mask.shape)


def set_update(w: torch.Tensor, mask: torch.Tensor, zeta: float, generator: torch.Generator
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One SET update of one layer: ``(new mask, removed, added)`` (added drawn with ``generator``)."""
    removed = set_removal(w, mask, zeta)
    absent = torch.nonzero(~mask.reshape(-1)).reshape(-1)
    k = min(int(removed.count_nonzero()), absent.numel())
    if k < int(removed.count_nonzero()):  # too few free positions: remove only as many as can regrow
        flat = torch.nonzero(removed.reshape(-1)).reshape(-1)
        keep_removed = torch.zeros(removed.numel(), dtype=torch.bool)
        keep_removed[flat[:k]] = True
        removed = keep_removed.reshape(mask.shape)
    pick = absent[torch.randperm(absent.numel(), generator=generator)[:k]]
    added = torch.zeros(mask.numel(), dtype=torch.bool)
    added[pick] = True
    added = added.reshape(mask.shape)
    return (mask & ~removed) | added, removed, added


class _SetHook:
    """The ``on_step`` hook: a SET update at the end of every epoch but the last."""

    def __init__(self, masks: dict[str, torch.Tensor], per_epoch: int, epochs: int, zeta: float, seed: int) -> None:
        self.masks = masks
        self.steps = {e * per_epoch for e in range(1, epochs)}
        self.zeta = zeta
        self.generator = torch.Generator().manual_seed((seed + 1) % 2**64)  # not the initial mask's stream
        self.updates: list[dict[str, Any]] = []

    def __call__(self, t: int, model: nn.Module, batch: Any) -> dict[str, torch.Tensor] | None:
        if t not in self.steps:
            return None
        params = dict(model.named_parameters())
        new, changed = {}, 0
        for n, m in self.masks.items():
            w = params[n].detach().cpu()
            new[n], removed, added = set_update(w, m, self.zeta, self.generator)
            changed += int(added.count_nonzero())
            with torch.no_grad():
                params[n].masked_fill_(added.to(params[n].device), 0.0)
        self.updates.append({"step": t, "epoch": len(self.updates) + 1, "changed": changed})
        self.masks = new
        return new


@register_method(
    "set",
    needs_data=True,
    kind="train",
    summary="sparse evolutionary training: Erdős–Rényi topology, after every epoch the weights closest to zero "
            "replaced by random new connections",
    reference="Mocanu et al. 2018, Scalable training of artificial neural networks with adaptive sparse "
              "connectivity (Nature Communications)",
    options=SparseOptions,
    extras=sparse_extras,
    constraints={**training_rules(), "distribution": Rule.choice(*DISTRIBUTIONS)},
)
def set_method(
    model: nn.Module,
    *,
    density: float,
    data: Iterable[Any] | None = None,
    seed: int = 0,
    zeta: float = 0.3,
    distribution: str = "er",
    **options: Any,
) -> MethodResult:
    """SET's final mask at ``density`` (module docstring for the algorithm and its deviations).

    Parameters
    ----------
    model : nn.Module
        Not modified (a copy is trained).
    density : float
        Fraction of prunable weights kept, through the run and at its end (exactly
        ``round(density * N)``).
    data : batches of (inputs, targets)
        The training batches; needs a length (steps per epoch).
    seed : int
        Seeds the initial mask, the regrowth draws and the training.
    zeta : float, default 0.3
        Fraction removed (and regrown) per epoch, in (0, 1) (the paper's 0.3).
    distribution : {"er", "erk", "uniform"}, default "er"
        Layer densities of the initial topology (the paper's Erdős–Rényi).
    **options
        The training options of :class:`~graphtickets.pruning.sparse_training.common.SparseOptions`.

    Returns
    -------
    MethodResult
        ``meta``: ``run_accuracy``, ``updates`` (per epoch: ``step``, ``epoch``, ``changed``),
        ``changed``, ``schedule``, ``layer_densities``, ``cost``.

    Examples
    --------
    >>> import torch, graphtickets as gt
    >>> model = gt.models.build("mlp", in_shape=(8,), num_classes=2, widths=(16,))
    >>> data = [(torch.randn(16, 8), torch.randint(0, 2, (16,))) for _ in range(2)]
    >>> t = gt.pruning.prune(model, "set", density=0.3, data=data, epochs=3)
    >>> t.kept == round(0.3 * t.total), [u["epoch"] for u in t.meta["updates"]]
    (True, [1, 2])
    """
    zeta = check_fraction("zeta", zeta)
    opts = SparseOptions(**options)
    if isinstance(opts.epochs, int) and not isinstance(opts.epochs, bool) and opts.epochs == 1:
        raise GraphticketsError(
            "set evolves its topology after every epoch but the last: with epochs=1 no update would happen "
            "(the ticket would be its random Erdős–Rényi start); use epochs in [2, ...] (or smart_ratio/random for "
            "a random ticket)"
        )
    data, _ = prepared(data, "set", opts)
    per_epoch = steps_per_epoch(data)
    masks, dens = random_mask(model, density, distribution, draw_generator(seed),
                              opts.keep_classifier_dense)
    hook = _SetHook(masks, per_epoch, opts.epochs, zeta, seed)
    before = counts_of(masks)
    _, hist = sparse_run(model, data, masks, hook, opts, seed)
    if counts_of(hook.masks) != before:  # every update keeps the layer counts; a failure is a bug
        raise GraphticketsError("set changed a layer's count of connections; please report this")
    schedule = {"zeta": zeta, "steps_per_epoch": per_epoch, "update_steps": sorted(hook.steps),
                "distribution": distribution}
    meta = {**run_meta(hist, opts, hook.updates, schedule), "layer_densities": dens}
    return MethodResult(masks=hook.masks, meta=meta)
