"""Compare many tickets: pairwise distances (with null models) and per-ticket metric tables.

References
----------
J. You et al., "Graph Structure of Neural Networks", ICML 2020; A. Vysogorets, J. Kempe,
"Connectivity Matters", JMLR 2023; D. N. Hoang et al., "Revisiting Pruning at Initialization
through the Lens of Ramanujan Graph", ICLR 2023.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from torch import nn

from graphtickets.analysis.distances import DISTANCES, Context
from graphtickets.analysis.nulls import rewire_preserving_degrees, shuffle_within_layers
from graphtickets.errors import GraphticketsError
from graphtickets.ticket import Ticket

__all__ = ["compare", "pivot", "summarize", "name_tickets"]

log = logging.getLogger(__name__)

_NULLS = {"shuffle": shuffle_within_layers, "rewire": rewire_preserving_degrees}


def name_tickets(tickets: Mapping[str, Ticket] | Sequence[Ticket]) -> dict[str, Ticket]:
    """``{name: ticket}``: a mapping as is; a list named ``"{index}:{method}"``."""
    if isinstance(tickets, Mapping):
        out = dict(tickets)
    else:
        out = {f"{i}:{t.method}": t for i, t in enumerate(tickets)}
    bad = [k for k, t in out.items() if not isinstance(t, Ticket)]
    if bad:
        raise GraphticketsError(f"compare/summarize take Tickets; {bad[:3]} are not (build graphs per ticket instead)")
    if not out:
        raise GraphticketsError("no tickets given")
    return out


def compare(
    tickets: Mapping[str, Ticket] | Sequence[Ticket],
    model: nn.Module | None = None,
    *,
    kinds: Iterable[str] | None = None,
    null_samples: int = 0,
    seed: int = 0,
    null: str = "shuffle",
) -> pd.DataFrame:
    """Pairwise distances between tickets as a long table, optionally against null models.

    Parameters
    ----------
    tickets : dict[str, Ticket] or list of Ticket
        Names come from the dict keys, else ``"{index}:{method}"``.
    model : nn.Module, optional
        The architecture; needed by graph-based kinds (``spectral``, ``netlsd``, ``degree``,
        ``ged_approx``). Without it those kinds are skipped when ``kinds`` is None.
    kinds : iterable of str, optional
        Keys of :data:`~graphtickets.analysis.DISTANCES`; default: every default kind
        (``ged_approx`` is opt-in: it costs a linear assignment per layer).
    null_samples : int, default 0
        For each pair ``(a, b)`` and kind, also the distance from ``a`` to ``null_samples``
        null versions of ``b`` (and of ``a`` to ``b``'s nulls only: the null keeps ``a`` fixed).
    seed : int
        Null ``s`` of ticket ``j`` uses seed ``seed + 1000 * j + s``.
    null : {"shuffle", "rewire"}
        :func:`shuffle_within_layers` or :func:`rewire_preserving_degrees`.

    Returns
    -------
    pandas.DataFrame
        Columns ``a``, ``b``, ``kind``, ``value`` and, with nulls, ``null_mean``, ``null_std``,
        ``z`` (``(value - null_mean) / null_std``; negative = closer than the null).
        One row per unordered pair and kind.

    Examples
    --------
    >>> import torch
    >>> from graphtickets import Ticket
    >>> ts = {"x": Ticket({"w": torch.tensor([True, False, True])}),
    ...       "y": Ticket({"w": torch.tensor([True, True, False])})}
    >>> compare(ts, kinds=["jaccard", "hamming"])[["a", "b", "kind", "value"]].round(3).values.tolist()
    [['x', 'y', 'jaccard', 0.667], ['x', 'y', 'hamming', 0.667]]
    """
    named = name_tickets(tickets)
    if kinds is None:
        chosen = [k for k, s in DISTANCES.items() if s.default and (model is not None or not s.needs_model)]
    else:
        chosen = list(kinds)
        for k in chosen:
            DISTANCES.get_or_raise(k)
    if null not in _NULLS:
        raise GraphticketsError(f"null must be one of {sorted(_NULLS)}, got {null!r}")
    ctx = Context(model=model)
    names = list(named)
    nulls: dict[str, list[Ticket]] = {}
    if null_samples > 0:
        for j, n in enumerate(names):
            nulls[n] = [_NULLS[null](named[n], seed + 1000 * j + s) for s in range(int(null_samples))]
    rows: list[dict[str, Any]] = []
    for na, nb in itertools.combinations(names, 2):
        for kind in chosen:
            fn = DISTANCES[kind].fn
            row: dict[str, Any] = {"a": na, "b": nb, "kind": kind, "value": float(fn(named[na], named[nb], ctx))}
            if null_samples > 0:
                vals = np.array([fn(named[na], t, ctx) for t in nulls[nb]], dtype=np.float64)
                mu, sd = float(vals.mean()), float(vals.std(ddof=1)) if vals.size > 1 else 0.0
                row.update(null_mean=mu, null_std=sd, z=(row["value"] - mu) / sd if sd > 0 else float("nan"))
            rows.append(row)
    cols = ["a", "b", "kind", "value"] + (["null_mean", "null_std", "z"] if null_samples > 0 else [])
    return pd.DataFrame(rows, columns=cols)


def pivot(table: pd.DataFrame, kind: str, *, value: str = "value") -> pd.DataFrame:
    """The symmetric ``ticket x ticket`` matrix of one kind of a :func:`compare` table (0 diagonal).

    Examples
    --------
    >>> t = pd.DataFrame({"a": ["x"], "b": ["y"], "kind": ["jaccard"], "value": [0.5]})
    >>> pivot(t, "jaccard").values.tolist()
    [[0.0, 0.5], [0.5, 0.0]]
    """
    sub = table[table["kind"] == kind]
    if sub.empty:
        raise GraphticketsError(f"no rows of kind {kind!r}; kinds in the table: {sorted(table['kind'].unique())}")
    names = list(dict.fromkeys(list(sub["a"]) + list(sub["b"])))
    m = pd.DataFrame(np.zeros((len(names), len(names))), index=names, columns=names)
    for a, b, v in zip(sub["a"], sub["b"], sub[value], strict=True):
        m.loc[a, b] = v
        m.loc[b, a] = v
    if value != "value":
        np.fill_diagonal(m.values, np.nan)
    return m


def summarize(
    tickets: Mapping[str, Ticket] | Sequence[Ticket],
    model: nn.Module,
    *,
    relational: bool = True,
    ramanujan: bool = True,
) -> pd.DataFrame:
    """Per-ticket metrics as a table (one row per ticket).

    Columns: ``name``, ``method``, ``density``, ``effective_density`` (Vysogorets & Kempe),
    ``collapsed_layers``, ``dead_fraction``, ``inactive_fraction``, ``log10_paths``,
    ``square_clustering`` (layered graph); with ``relational``: ``C``, ``L``,
    ``L_connected_fraction``, ``algebraic_connectivity``, ``spectral_gap``, ``modularity``
    of the relational graph (You et al.; skipped with a NaN when the model has fewer than three
    prunable layers); with ``ramanujan``: the mean over layers of ``delta_r`` and
    ``weighted_gap`` and the number of ``disconnected_layers`` (Hoang et al.).

    Parameters
    ----------
    tickets : dict[str, Ticket] or list of Ticket
    model : nn.Module
    relational, ramanujan : bool
        Include those (costlier) groups of columns.
    """
    from graphtickets import graphs
    from graphtickets.analysis import community, paths, spectral, structure

    named = name_tickets(tickets)
    rows = []
    for name, t in named.items():
        lg = graphs.layered_graph(model, t, weights="count")
        frac = structure.effective_fraction(lg)
        kept, total = structure.kept_total(t, model)
        dead = structure.dead_units(lg)
        row: dict[str, Any] = {
            "name": name,
            "method": t.method,
            "density": t.density,
            "effective_density": float(frac * kept / total),
            "collapsed_layers": float(len(structure.collapsed_layers(lg))),
            "dead_fraction": dead["dead_fraction"],
            "inactive_fraction": dead["inactive_fraction"],
            "log10_paths": structure.log10_paths(lg),
            "square_clustering": structure.average_square_clustering(lg),
        }
        if relational:
            try:
                rg = graphs.relational_graph(model, t).simple()
            except GraphticketsError as exc:
                log.info("no relational graph for %s: %s", name, exc)
                rg = None
            if rg is not None:
                pl = paths.path_length(rg)
                row.update(C=paths.clustering(rg), L=pl.value, L_connected_fraction=pl.connected_fraction,
                           algebraic_connectivity=spectral.algebraic_connectivity(rg),
                           spectral_gap=spectral.spectral_gap(rg), modularity=community.modularity(rg))  # fmt: skip
            else:
                row.update({k: float("nan") for k in ("C", "L", "L_connected_fraction", "algebraic_connectivity", "spectral_gap", "modularity")})
        if ramanujan:
            r = spectral.ramanujan_layers(model, t)
            row.update(delta_r_mean=float(r["delta_r"].mean()), weighted_gap_mean=float(r["weighted_gap"].mean()),
                       disconnected_layers=float(r["disconnected"].sum()))  # fmt: skip
        rows.append(row)
    return pd.DataFrame(rows)

