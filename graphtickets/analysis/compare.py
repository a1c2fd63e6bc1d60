"""Compare many tickets: pairwise distances (with null models) and per-ticket metric tables.

References
----------
J. You et al., "Graph Structure of Neural Networks", ICML 2020; A. Vysogorets, J. Kempe,
"Connectivity Matters", JMLR 2023; D. N. Hoang et al., "Revisiting Pruning at Initialization
through the Lens of Ramanujan Graph", ICLR 2023.
"""

from __future__ import annotations

import itertools
import zlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from torch import nn

from graphtickets.analysis.distances.registry import DISTANCES, Context
from graphtickets.analysis.effective import effective_ticket
from graphtickets.analysis.inference import joint_null_test, null_test, settled
from graphtickets.analysis.metrics import ticket_measures
from graphtickets.analysis.nulls import rewire_preserving_degrees, shuffle_within_layers
from graphtickets.analysis.spectral import ramanujan_layers
from graphtickets.analysis.structure import kept_total
from graphtickets.errors import GraphticketsError
from graphtickets.ticket import Ticket

__all__ = ["compare", "compare_joint", "JOINT_COLUMNS", "pivot", "summarize", "name_tickets", "null_seed", "NULL_COLUMNS", "NO_NULL_VARIATION", "NO_FUNCTION_NULL"]

_NULLS = {"shuffle": shuffle_within_layers, "rewire": rewire_preserving_degrees}

#: A null standard deviation at or below this fraction of the values' scale is "no null variation".
NULL_STD_RTOL = 1e-9
#: The ``note`` of a row whose nulls all give the same distance (its ``z`` is NaN).
NO_NULL_VARIATION = "no null variation"
#: The ``note`` of a function-family row in a table with nulls (null tickets carry no trained weights).
NO_FUNCTION_NULL = "no null for functional kinds"
#: Columns a :func:`compare` table has when it draws nulls, in order.
NULL_COLUMNS = ["null_mean", "null_std", "z", "null_n", "n_closer", "n_farther", "p_closer", "p_farther", "p_two_sided",
                "note"]


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


def null_seed(seed: int | str, name: str, sample: int) -> int:
    """The seed of null ``sample`` of the ticket named ``name`` (independent of its position).

    ``seed`` is the stream of a unit: an int, or a string naming it (hashed; a string never
    gives the stream of an int).

    >>> null_seed(0, "snip", 3) == null_seed(0, "snip", 3) != null_seed(0, "grasp", 3)
    True
    >>> null_seed("d=0.05/seed=1", "snip", 3) != null_seed("d=0.2/seed=1", "snip", 3)
    True
    """
    if isinstance(seed, str):
        ss = np.random.SeedSequence([zlib.crc32(seed.encode()), zlib.crc32(name.encode()), int(sample), 1])
    else:
        ss = np.random.SeedSequence([int(seed) % 2**32, zlib.crc32(name.encode()), int(sample)])
    return int(ss.generate_state(1, dtype=np.uint32)[0])


# --------------------------------------------------------------------------- features
# A kind declared as a feature plus a metric (DistanceSpec.feature/.metric) is computed from
# per-ticket features: those of every ticket and of every null ticket are computed once and a
# pair costs one metric call. Other kinds are called pairwise.
class _Features:
    """Per-ticket features, each computed once; a ticket's graphs live only while they are made."""

    def __init__(self, model: nn.Module | None, kinds: Sequence[str]) -> None:
        self.model = model
        self.features = {k: f for k in kinds if (f := DISTANCES[k].feature) is not None}
        self.cache: dict[tuple[str, int, str], np.ndarray] = {}

    def get(self, key: tuple[str, int], ticket: Ticket, kind: str) -> np.ndarray:
        if (*key, kind) not in self.cache:
            ctx = Context(model=self.model)  # this ticket's graphs, shared by its features
            for k, feature in self.features.items():
                self.cache[(*key, k)] = feature(ticket, ctx)
        return self.cache[(*key, kind)]


def _null_stats(value: float, vals: np.ndarray, stop_after: int | None = None) -> dict[str, Any]:
    """The :data:`NULL_COLUMNS` of one distance against its null distances (in draw order)."""
    test = null_test(value, vals, stop_after=stop_after, rtol=NULL_STD_RTOL)
    vals = vals[: test.draws]
    n = int(vals.size)
    mu = float(vals.mean()) if n else float("nan")
    sd = float(vals.std(ddof=1)) if n > 1 else float("nan")
    scale = max(abs(value), abs(mu)) if np.isfinite(mu) else abs(value)
    flat = n > 1 and (not np.isfinite(sd) or sd <= NULL_STD_RTOL * scale)
    return {
        "null_mean": mu,
        "null_std": sd,
        "z": (value - mu) / sd if n > 1 and not flat else float("nan"),
        "null_n": n,
        "n_closer": test.n_closer,
        "n_farther": test.n_farther,
        "p_closer": test.p_closer,
        "p_farther": test.p_farther,
        "p_two_sided": test.p,
        "note": NO_NULL_VARIATION if flat else ("" if n > 1 else "too few nulls for a z-score"),
    }


#: A test of :func:`compare`: ``(name_a, name_b, kind)``.
_Test = tuple[str, str, str]


class _Pairs:
    """Distances between named tickets and between their null tickets, one null draw at a time.

    ``draw(tests, draws)`` appends ``d(null_s(a), null_s(b))`` of every test for every draw
    ``s``; the null tickets of a draw (and their features) live only while it is measured, so
    memory does not grow with the number of draws.
    """

    def __init__(self, named: dict[str, Ticket], make_null: Any, model: nn.Module | None, ctx: Context,
                 effective: bool) -> None:  # fmt: skip
        self.named, self.make_null, self.model, self.ctx, self.effective = named, make_null, model, ctx, effective
        self.values: dict[_Test, list[float]] = {}

    def dist(self, kind: str, feats: _Features, ka: tuple[str, int], ta: Ticket, kb: tuple[str, int], tb: Ticket) -> float:
        metric = DISTANCES[kind].metric
        if metric is not None:
            return float(metric(feats.get(ka, ta, kind), feats.get(kb, tb, kind)))
        return float(DISTANCES[kind].fn(ta, tb, self.ctx))

    def draw(self, tests: Sequence[_Test], draws: range) -> None:
        names = sorted({n for t in tests for n in t[:2]})
        kinds = list(dict.fromkeys(t[2] for t in tests))
        for s in draws:
            nts = {n: self.make_null(n, s) for n in names}
            if self.effective and self.model is not None:  # _chosen_kinds refused effective without a model
                nts = {n: effective_ticket(t, self.model) for n, t in nts.items()}
            feats = _Features(self.model, kinds)
            for na, nb, kind in tests:
                self.values.setdefault((na, nb, kind), []).append(self.dist(kind, feats, (na, s), nts[na], (nb, s), nts[nb]))


def _draw_nulls(pairs: _Pairs, tests: list[_Test], observed: dict[_Test, float], k0: int, k_max: int,
                stop_after: int) -> None:  # fmt: skip
    """``k0`` null draws for every test; sequential (``k_max > k0``): batches doubling the draws for
    the tests not yet settled (:func:`~graphtickets.analysis.inference.settled`), up to ``k_max``."""
    active, done, target = list(tests), 0, k0
    while active and done < target:
        pairs.draw(active, range(done, target))
        done = target
        active = [t for t in active if not settled(null_test(observed[t], pairs.values[t], stop_after=stop_after,
                                                             rtol=NULL_STD_RTOL), stop_after)]  # fmt: skip
        target = min(2 * done, k_max)


def _chosen_kinds(kinds: Iterable[str] | None, model: nn.Module | None, data: Any, effective: bool) -> list[str]:
    if kinds is None:
        chosen = [k for k, s in DISTANCES.items() if s.default and (model is not None or not s.needs_model)
                  and (data is not None and not effective or not s.needs_data)]  # fmt: skip
    else:
        chosen = list(kinds)
        for k in chosen:
            DISTANCES.get_or_raise(k)
    if effective:
        bad = [k for k in chosen if DISTANCES[k].family != "structure"]
        if bad:
            raise GraphticketsError(f"effective=True applies to structural distances; {bad} compare what trained "
                                    f"tickets compute (ask for them in a call without effective=True)")  # fmt: skip
        if model is None:
            raise GraphticketsError("effective=True needs model=<the tickets' architecture> (paths are traced on it)")
    return chosen


def compare(
    tickets: Mapping[str, Ticket] | Sequence[Ticket],
    model: nn.Module | None = None,
    *,
    kinds: Iterable[str] | None = None,
    null_samples: int = 0,
    max_null_samples: int | None = None,
    stop_after: int = 10,
    seed: int | str = 0,
    null: str = "shuffle",
    data: Any = None,
    effective: bool = False,
    options: Mapping[str, Any] | None = None,
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
        (``ged_approx`` is opt-in: it costs a linear assignment per layer) whose needs are
        met -- the function family only with ``data`` and ``model``, and not with
        ``effective``.
    null_samples : int, default 0
        ``k``: every ticket ``t`` gets ``k`` null tickets ``null_i(t)`` (seeded by
        :func:`null_seed` from ``seed``, the ticket's name and ``i``), and the null
        distribution of a pair ``(a, b)`` is ``d(null_i(a), null_i(b))``, ``i < k``. Both
        tickets are randomized, so the null (what the preserved statistics explain: the layer
        densities for ``shuffle``) and the z-score do not depend on which ticket is ``a``;
        the draws of a ticket depend on its name, not its position, so reordering the
        tickets changes no row. Pairs sharing a ticket share its null draws (each pair's p is
        valid; their tests are positively dependent, which BH tolerates). Null tickets and their
        features are computed one draw at a time: ``O(tickets * k)`` feature computations,
        ``O(pairs * k)`` distances, memory independent of ``k``.
    max_null_samples : int, optional
        Adaptive draws: with ``max_null_samples > null_samples`` every test starts with
        ``null_samples`` draws and the draws double, only for the tests not yet settled, up to
        ``max_null_samples``; each side's p-value follows Besag & Clifford's sequential rule
        (:func:`~graphtickets.analysis.null_test` with ``stop_after``): a test stops once both
        sides saw ``stop_after`` exceedances. A test in the bulk of its null costs about
        ``2 * stop_after / p`` draws; one far in a tail all ``max_null_samples`` (its floor
        ``1 / (1 + max_null_samples)``).
    stop_after : int, default 10
        ``h`` of the sequential rule (only with ``max_null_samples``).
    seed : int or str
        Base seed of the nulls. Give every independent unit its own (e.g. the init seed, or a
        string naming the comparison group): the draws of a name repeat for the same ``seed``.
    null : {"shuffle", "rewire"}
        :func:`shuffle_within_layers` or :func:`rewire_preserving_degrees`.
    data : iterable of (inputs, targets), optional
        Test batches for the function family (tickets must carry trained weights); read once,
        each ticket run once. Function kinds get no null (null tickets have no trained
        weights): their null columns are NaN with the note :data:`NO_FUNCTION_NULL`.
    effective : bool, default False
        Structural kinds on the effective masks (:func:`~graphtickets.analysis.effective_ticket`,
        needs ``model``); nulls are drawn from the tickets, then made effective.
    options : mapping, optional
        Passed to every distance (as ``distance(**options)``).

    Returns
    -------
    pandas.DataFrame
        Columns ``a``, ``b``, ``kind``, ``value`` and, with nulls, :data:`NULL_COLUMNS`:
        ``null_mean``, ``null_std``, ``z`` (``(value - null_mean) / null_std``, an effect
        size, not a test: from ``k`` draws it follows about ``sqrt(1 + 1/k) t_{k-1}``; NaN when
        the nulls do not vary, ``null_std <= 1e-9 * max(|value|, |null_mean|)``, or with fewer
        than 2 nulls), ``null_n`` (draws used), ``n_closer`` and ``n_farther`` (draws ``<=``
        and ``>=`` the value, ties on both sides), ``p_closer``, ``p_farther`` (one-sided
        empirical p-values, ``(1 + n_closer) / (1 + k)`` and ``(1 + n_farther) / (1 + k)``
        with fixed ``k``, floor ``1 / (1 + k)``; Besag-Clifford's with adaptive draws),
        ``p_two_sided`` (``min(1, 2 min(p_closer, p_farther))``, floor ``2 / (1 + k)``) and
        ``note`` (:data:`NO_NULL_VARIATION` where ``z`` is NaN for that reason). One row per
        unordered pair and kind.

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
    chosen = _chosen_kinds(kinds, model, data, effective)
    if null not in _NULLS:
        raise GraphticketsError(f"null must be one of {sorted(_NULLS)}, got {null!r}")
    k0 = max(int(null_samples), 0)
    k_max = k0 if max_null_samples is None or k0 == 0 else max(int(max_null_samples), k0)
    sequential = int(stop_after) if k_max > k0 else None
    raw = dict(named)
    if effective and model is not None:  # _chosen_kinds refused effective without a model
        named = {n: effective_ticket(t, model) for n, t in named.items()}
    ctx = Context(model=model, data=data, options=dict(options or {}))
    pairs = _Pairs(named, lambda n, s: _NULLS[null](raw[n], null_seed(seed, n, s)), model, ctx, effective)
    feats = _Features(model, chosen)
    observed = {(na, nb, kind): pairs.dist(kind, feats, (na, -1), named[na], (nb, -1), named[nb])
                for na, nb in itertools.combinations(named, 2) for kind in chosen}  # fmt: skip
    tests = [t for t in observed if k0 > 0 and not DISTANCES[t[2]].needs_data]
    if tests:
        _draw_nulls(pairs, tests, observed, k0, k_max, sequential or 1)
    no_null = {c: float("nan") for c in NULL_COLUMNS} | {"null_n": 0, "n_closer": 0, "n_farther": 0, "note": NO_FUNCTION_NULL}
    rows: list[dict[str, Any]] = []
    for (na, nb, kind), value in observed.items():
        row: dict[str, Any] = {"a": na, "b": nb, "kind": kind, "value": value}
        if k0 > 0:
            vals = pairs.values.get((na, nb, kind))
            row.update(no_null if vals is None else _null_stats(value, np.asarray(vals, dtype=np.float64), sequential))
        rows.append(row)
    cols = ["a", "b", "kind", "value"] + (NULL_COLUMNS if k0 > 0 else [])
    return pd.DataFrame(rows, columns=cols)


#: Columns of :func:`compare_joint`, in order.
JOINT_COLUMNS = ["a", "b", "kind", "units", "groups", "effect", "low", "high", "df", "null_n", "n_closer", "n_farther",
                 "p_closer", "p_farther", "p_two_sided"]  # fmt: skip


def _joint_observed(pairs: _Pairs, keys: dict[str, tuple[Any, Any, str]], chosen: list[str], feats: _Features
                    ) -> tuple[dict[_Test, float], dict[tuple[str, str, str], dict[Any, list[_Test]]]]:  # fmt: skip
    """The observed distances of every (unit, group, pair, kind), and per (pair, kind) its tests by unit."""
    observed: dict[_Test, float] = {}
    by_pair: dict[tuple[str, str, str], dict[Any, list[_Test]]] = {}
    cells = dict.fromkeys((u, g) for u, g, _ in keys.values())
    for u, g in cells:
        mine = [s for s, (uu, gg, _) in keys.items() if (uu, gg) == (u, g)]
        for sa, sb in itertools.combinations(mine, 2):
            na, nb = sorted((keys[sa][2], keys[sb][2]))
            for kind in chosen:
                observed[(sa, sb, kind)] = pairs.dist(kind, feats, (sa, -1), pairs.named[sa], (sb, -1), pairs.named[sb])
                by_pair.setdefault((na, nb, kind), {}).setdefault(u, []).append((sa, sb, kind))
    return observed, by_pair


def compare_joint(
    units: Mapping[Any, Mapping[Any, Mapping[str, Ticket]]],
    model: nn.Module | None = None,
    *,
    kinds: Iterable[str],
    null_samples: int,
    seed: int | str = 0,
    options: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """One test per pair and kind over init seeds (the units), each measured at several densities.

    Draw ``i`` of the ticket named ``n`` in unit ``u`` is :func:`shuffle_within_layers` seeded
    ``null_seed(f"{seed}/{u!r}", n, i)`` in *every* group of the unit: the same permutation of
    each layer's positions at every density, so the joint null keeps what ties one method's
    tickets of one seed together (a permutation of nested masks leaves them nested; one
    trajectory's tickets keep their overlap) and removes only what ties two methods; units get
    independent streams. Per pair and kind the distances and draws go to
    :func:`~graphtickets.analysis.joint_null_test`: within each seed the mean over densities of
    the pool-standardized effect, then the mean over seeds, against the same statistic of every
    joint draw -- an exactly valid randomization p, however dependent a seed's densities are.

    Parameters
    ----------
    units : mapping
        ``{unit: {group: {name: Ticket}}}``, e.g. ``{init_seed: {density: {method: ticket}}}``;
        a pair is tested over the groups that hold both of its names.
    model : nn.Module, optional
        Needed by graph kinds.
    kinds : iterable of str
        Structural kinds of :data:`~graphtickets.analysis.DISTANCES` (no function kinds:
        null tickets carry no trained weights).
    null_samples : int
        ``k`` joint draws (cost: ``k`` shuffles per ticket, ``k`` distances per pair, group and
        kind; floor of a one-sided p ``1 / (1 + k)``).
    seed : int or str
        Base of the units' null streams.
    options : mapping, optional
        Passed to every distance.

    Returns
    -------
    pandas.DataFrame
        :data:`JOINT_COLUMNS`: ``units`` and ``groups`` used, ``effect`` (mean over units of the
        unit effect; negative: closer than the null) with its t interval over units ``low``,
        ``high`` (``df = units - 1``), ``null_n`` (draws), exceedance counts and empirical
        p-values of ``effect`` as in :func:`compare`.

    Examples
    --------
    >>> import torch
    >>> from graphtickets import Ticket
    >>> a, b = Ticket({"w": torch.arange(12) < 4}), Ticket({"w": torch.arange(12) < 6})
    >>> t = compare_joint({0: {0.3: {"x": a, "y": a}, 0.5: {"x": b, "y": a}}}, kinds=["jaccard"], null_samples=19)
    >>> t[["a", "b", "units", "groups", "null_n"]].values.tolist(), bool(t["p_closer"].iloc[0] <= 0.1)
    ([['x', 'y', 1, 2, 19]], True)
    """
    from graphtickets.analysis.inference import t_interval

    chosen = _chosen_kinds(list(kinds), model, None, False)
    bad = [k for k in chosen if DISTANCES[k].needs_data]
    if bad:
        raise GraphticketsError(f"compare_joint tests structural kinds against nulls; {bad} have no null (drop them)")
    k = int(null_samples)
    if k < 1:
        raise GraphticketsError(f"null_samples must be >= 1, got {null_samples!r}")
    flat = [(u, g, n, t) for u, gs in units.items() for g, ts in gs.items() for n, t in name_tickets(ts).items()]
    keys = {f"{i}\x1f{n}": (u, g, n) for i, (u, g, n, _) in enumerate(flat)}  # a string per (unit, group, name)
    named = {s: t for s, (*_, t) in zip(keys, flat, strict=True)}

    def make_null(s: str, i: int) -> Ticket:
        u, _, n = keys[s]
        return shuffle_within_layers(named[s], null_seed(f"{seed}/{u!r}", n, i))

    pairs = _Pairs(named, make_null, model, Context(model=model, options=dict(options or {})), False)
    observed, by_pair = _joint_observed(pairs, keys, chosen, _Features(model, chosen))
    pairs.draw(list(observed), range(k))
    rows = []
    for (na, nb, kind), per_unit in by_pair.items():
        r = joint_null_test([([observed[t] for t in ts], [pairs.values[t] for t in ts]) for ts in per_unit.values()],
                            rtol=NULL_STD_RTOL)  # fmt: skip
        ci = t_interval(r.unit_effects)
        rows.append({"a": na, "b": nb, "kind": kind, "units": len(r.unit_effects), "groups": r.groups, "effect": r.effect,
                     "low": ci.low, "high": ci.high, "df": ci.df, "null_n": k, "n_closer": r.test.n_closer,
                     "n_farther": r.test.n_farther, "p_closer": r.test.p_closer, "p_farther": r.test.p_farther,
                     "p_two_sided": r.test.p})  # fmt: skip
    return pd.DataFrame(rows, columns=JOINT_COLUMNS)


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


#: summarize()'s columns from the layered graph: ``{column: metrics() key}``.
_SUMMARY_LAYERED = {"collapsed_layers": "collapsed_layers", "dead_fraction": "dead_fraction",
                    "inactive_fraction": "inactive_fraction", "log10_paths": "log10_paths",
                    "square_clustering": "square_clustering"}  # fmt: skip
#: summarize()'s columns from the relational graph (You et al.'s names ``C`` and ``L``).
_SUMMARY_RELATIONAL = {"C": "clustering", "L": "path_length", "L_connected_fraction": "path_length_connected_fraction",
                       "algebraic_connectivity": "algebraic_connectivity", "spectral_gap": "spectral_gap",
                       "modularity": "modularity"}  # fmt: skip
#: The metric families summarize() asks ticket_measures() for.
_SUMMARY_METRICS = {"layered": ["effective", "collapsed_layers", "dead_units", "log10_paths", "square_clustering"],
                    "relational": ["clustering", "path_length", "spectral", "modularity"]}  # fmt: skip


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
    named = name_tickets(tickets)
    rows = []
    for name, t in named.items():
        kept, total = kept_total(t, model)
        m = ticket_measures(t, model, graphs=("layered", "relational") if relational else ("layered",), names=_SUMMARY_METRICS)
        lay = m["layered"]
        row: dict[str, Any] = {"name": name, "method": t.method, "density": t.density,
                               "effective_density": float(lay["effective_fraction"] * kept / total)}  # fmt: skip
        row.update({col: lay[key] for col, key in _SUMMARY_LAYERED.items()})
        if relational:
            rel = m.get("relational", {})
            row.update({col: rel.get(key, float("nan")) for col, key in _SUMMARY_RELATIONAL.items()})
        if ramanujan:
            r = ramanujan_layers(model, t)
            row.update(delta_r_mean=float(r["delta_r"].mean()), weighted_gap_mean=float(r["weighted_gap"].mean()),
                       disconnected_layers=float(r["disconnected"].sum()))  # fmt: skip
        rows.append(row)
    return pd.DataFrame(rows)
