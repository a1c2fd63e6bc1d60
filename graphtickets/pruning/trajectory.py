"""Trajectories: one run of a method that serves several densities (IMP's rounds).

IMP finds its tickets one after the other, each round pruning the survivors of the last: the
tickets at densities 0.2, 0.05 and 0.01 of one seed are rounds of ONE run. A caller that
needs several densities of one (model, data, seed, hyperparameters) — the study — calls
:attr:`MethodSpec.trajectory <graphtickets.pruning.core.MethodSpec>` once instead of the
method once per density.

:func:`imp_trajectory` is IMP's: one :func:`~graphtickets.pruning.imp.imp_rounds` run with
``densities=[...]`` (its last cut to each target is exact), each ticket picked with ``imp_at``;
``meta["density_requested"]`` and ``meta["trajectory"]`` record the request.
:func:`nearest_rounds` serves densities from the rounds of a run that was not cut at them (the
round nearest in log density: **a deviation** — the rounds sit at ``(1 - rate)^r``, so a
density that is not one of them is served by the nearest round, not at its exact count;
``meta["trajectory"]["exact"]`` says which).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from torch import nn

from graphtickets.errors import GraphticketsError
from graphtickets.pruning.core import set_trajectory
from graphtickets.pruning.imp import imp_at, imp_rounds, imp_rounds_many
from graphtickets.ticket import Ticket, check_density

__all__ = ["TRAJECTORIES_MANY", "imp_trajectory", "imp_trajectory_many", "nearest_rounds"]


def nearest_rounds(tickets: Sequence[Ticket], densities: Iterable[float]) -> dict[float, Ticket]:
    """``{density: the ticket of ``tickets`` nearest to it in log density}`` (ties: the denser).

    Each returned ticket is a copy whose ``meta`` records ``density_requested`` and
    ``trajectory = {"densities": [...], "round": ..., "exact": bool}`` (exact: within one
    weight of the requested count).

    Examples
    --------
    >>> import torch
    >>> ts = [Ticket({"w": torch.arange(10) < k}, method="m", meta={"round": i})
    ...       for i, k in enumerate((8, 6, 4, 2), start=1)]
    >>> {d: t.meta["round"] for d, t in nearest_rounds(ts, [0.6, 0.25]).items()}
    {0.6: 2, 0.25: 4}
    """
    if not tickets:
        raise GraphticketsError("no tickets to choose rounds from")
    ds = sorted({check_density(d) for d in densities}, reverse=True)
    out: dict[float, Ticket] = {}
    for d in ds:
        best = min(tickets, key=lambda t: (abs(math.log(t.density) - math.log(d)), -t.density))
        copy = Ticket(masks=dict(best.masks), method=best.method, config=dict(best.config), meta=dict(best.meta),
                      weights=best.weights)
        out[d] = _requested(copy, d, ds)
    return out


def _requested(t: Ticket, d: float, ds: list[float]) -> Ticket:
    """``t`` with ``meta["density_requested"]`` and ``meta["trajectory"]`` recorded."""
    t.meta["density_requested"] = d
    t.meta["trajectory"] = {"densities": ds, "round": t.meta.get("round"), "exact": abs(t.kept - round(d * t.total)) <= 1}
    return t


def imp_trajectory(
    model: nn.Module, *, densities: Iterable[float], data: Iterable[Any] | None, seed: int = 0, **hparams: Any
) -> dict[float, Ticket]:
    """IMP's tickets at several densities from one run (see the module docstring).

    Parameters
    ----------
    model : nn.Module
        At initialization; not modified.
    densities : iterable of float
        Densities asked for; the run goes to the smallest.
    data, seed, **hparams
        As for ``prune(model, "imp", ...)`` (:func:`~graphtickets.pruning.imp.imp_rounds`).

    Returns
    -------
    dict[float, Ticket]
        One ticket per density (a round of the run; ``meta["density_requested"]``).
    """
    ds = sorted({check_density(d) for d in densities}, reverse=True)
    if not ds:
        raise GraphticketsError("give at least one density")
    fam = imp_rounds(model, densities=ds, data=data, seed=seed, **hparams)
    return {d: _requested(imp_at(fam, d), d, ds) for d in ds}


def imp_trajectory_many(
    models: Sequence[nn.Module], *, densities: Iterable[float], data: Sequence[Iterable[Any]], seeds: Sequence[int],
    **hparams: Any,
) -> list[dict[float, Ticket]]:
    """:func:`imp_trajectory` of several trajectories of one architecture, trained together
    (:func:`~graphtickets.pruning.imp.imp_rounds_many`): entry ``i`` equals
    ``imp_trajectory(models[i], densities=..., data=data[i], seed=seeds[i], **hparams)`` to
    float32 rounding."""
    ds = sorted({check_density(d) for d in densities}, reverse=True)
    if not ds:
        raise GraphticketsError("give at least one density")
    fams = imp_rounds_many(models, densities=ds, data=data, seeds=seeds, **hparams)
    return [{d: _requested(imp_at(fam, d), d, ds) for d in ds} for fam in fams]


set_trajectory("imp", imp_trajectory)

#: Methods whose trajectories of one architecture can run together: name -> a function
#: ``f(models, *, densities, data, seeds, **hparams) -> [{density: Ticket}, ...]`` whose entry ``i``
#: equals the method's :attr:`~graphtickets.pruning.core.MethodSpec.trajectory` of ``models[i]``
#: with ``data[i]`` and ``seeds[i]`` (to float32 rounding).
TRAJECTORIES_MANY: dict[str, Any] = {"imp": imp_trajectory_many}
