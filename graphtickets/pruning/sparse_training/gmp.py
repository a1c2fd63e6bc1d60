"""Gradual magnitude pruning (Zhu & Gupta 2017): prune while training, on a cubic schedule.

The dense network (a copy of the model, from its initial weights) is trained and, every
``frequency`` (``dt``) steps from ``t0`` to ``t0 + n dt``, pruned by weight magnitude to the
sparsity

    ``s_t = s_f + (s_i - s_f) (1 - (t - t0) / (n dt))^3``,   ``t = t0 + dt, ..., t0 + n dt``,

with ``s_i = 0`` (dense) and ``s_f = 1 - density``
(:func:`~graphtickets.pruning.sparse_training.schedules.gmp_sparsity`): fast at first, slower
as the target nears, and training goes on at ``s_f`` after ``t0 + n dt``. ``t0 = round(start T)``
and ``n`` is the number of whole periods in ``[t0, round(end T)]`` (``T`` the run's steps;
:func:`~graphtickets.pruning.sparse_training.schedules.gmp_update_steps`). A pruned weight
never comes back (masks are nested).

Every pruning step keeps exactly ``round((1 - s_t) N)`` weights; with ``scope="layer"`` (the
paper prunes every layer to the same sparsity) they are spread over the layers as
``(1 - s_t) n_l`` rounded (largest remainders) with the smallest ``|w|`` of each layer
pruned; ``scope="global"`` ranks all layers' ``|w|`` together. The last step reaches exactly
``round(density * N)``. The ticket is the final mask; the accuracy of the run is
``meta["run_accuracy"]``.

Deviation: ``start`` and ``end`` are fractions of the run (the paper gives steps); the learning
rate follows the training options (the paper keeps it high while pruning).

References
----------
.. [1] Zhu, Gupta. "To prune, or not to prune: exploring the efficacy of pruning for model
   compression." ICLR 2018 workshop; arXiv:1710.01878 (2017).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import nn

from graphtickets.errors import GraphticketsError
from graphtickets.pruning.baselines import exact_counts
from graphtickets.pruning.core import MethodResult, register_method, resolve_params, training_rules
from graphtickets.pruning.select import select_topk
from graphtickets.pruning.sparse_training.common import (
    SparseOptions,
    check_fraction,
    counts_of,
    prepared,
    run_meta,
    sparse_extras,
    sparse_run,
)
from graphtickets.pruning.sparse_training.schedules import gmp_sparsity, gmp_update_steps

__all__ = ["gmp", "nested_counts"]


def nested_counts(want: Mapping[str, int], alive: Mapping[str, int]) -> dict[str, int]:
    """``want`` capped at what each layer still has; what a cap cuts goes to the layers with room
    (in layer order), so the total stays ``sum(want)`` when the layers hold that many.

    >>> nested_counts({"a": 5, "b": 3}, {"a": 4, "b": 10})
    {'a': 4, 'b': 4}
    """
    counts = {n: min(int(want[n]), int(alive[n])) for n in want}
    short = sum(want.values()) - sum(counts.values())
    for n in want:
        add = min(short, int(alive[n]) - counts[n])
        counts[n] += add
        short -= add
    return counts


class _GmpHook:
    """The ``on_step`` hook: prune by magnitude at the planned steps to the cubic schedule's sparsity."""

    def __init__(self, masks: dict[str, torch.Tensor], final: float, t0: int, n: int, dt: int, scope: str) -> None:
        self.masks = masks
        self.final, self.t0, self.n, self.dt, self.scope = final, t0, n, dt, scope
        self.steps = {t0 + k * dt for k in range(1, n + 1)}
        self.total = sum(m.numel() for m in masks.values())
        self.updates: list[dict[str, Any]] = []

    def __call__(self, t: int, model: nn.Module, batch: Any) -> dict[str, torch.Tensor] | None:
        if t not in self.steps:
            return None
        params = dict(model.named_parameters())
        s = gmp_sparsity(t, self.final, self.t0, self.n, self.dt)
        d = 1.0 - s
        scores = {n: params[n].detach().abs().cpu() for n in self.masks}
        if self.scope == "global":
            new = select_topk(scores, d, prior=self.masks)
        else:
            sizes = {n: m.numel() for n, m in self.masks.items()}
            want = exact_counts(dict.fromkeys(sizes, d), sizes, int(round(d * self.total)))
            new = select_topk(scores, d, counts=nested_counts(want, counts_of(self.masks)), prior=self.masks)
        pruned = sum(int((self.masks[n] & ~new[n]).count_nonzero()) for n in new)
        self.updates.append({"step": t, "sparsity": s, "kept": sum(counts_of(new).values()), "changed": pruned})
        self.masks = new
        return new


@register_method(
    "gmp",
    needs_data=True,
    kind="train",
    summary="gradual magnitude pruning while training, from dense to the target on the cubic schedule",
    reference="Zhu & Gupta 2017, To prune, or not to prune (arXiv:1710.01878; ICLR 2018 workshop)",
    options=SparseOptions,
    extras=sparse_extras,
    constraints=training_rules(),
)
def gmp(
    model: nn.Module,
    *,
    density: float,
    data: Iterable[Any] | None = None,
    seed: int = 0,
    start: float = 0.0,
    end: float = 0.75,
    frequency: int = 100,
    scope: str = "layer",
    **options: Any,
) -> MethodResult:
    """Gradual magnitude pruning's final mask at ``density`` (module docstring).

    Parameters
    ----------
    model : nn.Module
        Not modified (a copy is trained).
    density : float
        Fraction of prunable weights kept at the end (exactly ``round(density * N)``).
    data : batches of (inputs, targets)
        The training batches; needs a length (steps per epoch).
    seed : int
        Seeds the training.
    start, end : float, default 0.0 and 0.75
        First and last pruning step as fractions of the run's steps, ``0 <= start < end <= 1``.
    frequency : int, default 100
        Steps between prunings (``dt``); at most the span from ``start`` to ``end``.
    scope : {"layer", "global"}, default "layer"
        Every layer at the schedule's sparsity (the paper), or one global magnitude ranking.
    **options
        The training options of :class:`~graphtickets.pruning.sparse_training.common.SparseOptions`.

    Returns
    -------
    MethodResult
        ``meta``: ``run_accuracy``, ``updates`` (per pruning: ``step``, ``sparsity``, ``kept``,
        ``changed`` = weights pruned), ``changed``, ``schedule``, ``cost``.

    Examples
    --------
    >>> import torch, graphtickets as gt
    >>> model = gt.models.build("mlp", in_shape=(8,), num_classes=2, widths=(16,))
    >>> data = [(torch.randn(16, 8), torch.randint(0, 2, (16,))) for _ in range(4)]
    >>> t = gt.pruning.prune(model, "gmp", density=0.2, data=data, epochs=5, frequency=5)
    >>> t.kept == round(0.2 * t.total), [round(u["sparsity"], 3) for u in t.meta["updates"]]
    (True, [0.563, 0.77, 0.8])
    """
    start = check_fraction("start", start, low_open=False)
    end = check_fraction("end", end, high_open=False)
    if end <= start:
        raise GraphticketsError(f"end must come after start (0 <= start < end <= 1), got start={start:g}, end={end:g}")
    if scope not in ("layer", "global"):
        raise GraphticketsError(f"scope must be 'layer' or 'global', got {scope!r}")
    opts = SparseOptions(**options)
    data, total = prepared(data, "gmp", opts)
    t0, n, steps = gmp_update_steps(total, start, end, frequency)
    _, masks = resolve_params(model, keep_classifier_dense=opts.keep_classifier_dense)
    hook = _GmpHook(masks, 1.0 - density, t0, n, frequency, scope)
    _, hist = sparse_run(model, data, masks, hook, opts, seed)
    schedule = {"start": start, "end": end, "frequency": frequency, "t0": t0, "n": n, "total_steps": total,
                "update_steps": steps, "initial_sparsity": 0.0, "final_sparsity": 1.0 - density, "scope": scope}
    return MethodResult(masks=hook.masks, meta=run_meta(hist, opts, hook.updates, schedule))
