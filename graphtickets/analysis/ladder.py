"""The ladder of nulls: how much of two tickets' likeness each kept statistic explains.

For a pair of tickets and a distance kind, the observed distance ``d_obs`` is compared with
the distances between null tickets drawn at each level of
:data:`~graphtickets.pruning.randomize.LEVELS` -- ``global`` (uniform random at each ticket's
global density: nothing kept), ``layer`` (each layer's density), ``fan_in`` (each unit's
fan-in), ``degrees`` (each unit's fan-in and fan-out). Each level keeps more of the tickets,
so its nulls are (usually) more alike; what the ``degrees`` null still misses is the wiring
itself. See :func:`null_ladder` for the table and :func:`ladder_shares` for the shares.

References
----------
.. [1] J. Frankle, G. K. Dziugaite, D. M. Roy, M. Carbin, "Pruning Neural Networks at
   Initialization: Why are We Missing the Mark?", ICLR 2021 (layer-wise shuffling).
.. [2] S. Maslov, K. Sneppen, "Specificity and stability in topology of protein networks",
   Science 296, 2002 (degree-preserving rewiring).
.. [3] D. N. Hoang et al., "Revisiting Pruning at Initialization through the Lens of Ramanujan
   Graph", ICLR 2023 (unrolled conv layers).
"""

from __future__ import annotations

import itertools
import logging
import zlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from graphtickets.analysis.compare import NO_NULL_VARIATION, NULL_STD_RTOL, name_tickets
from graphtickets.analysis.distances.overlap import check_one_architecture
from graphtickets.analysis.distances.registry import DISTANCES, Context
from graphtickets.errors import GraphticketsError
from graphtickets.pruning.randomize import LEVELS, SeedLike, draw_masks, seed_sequence
from graphtickets.ticket import Ticket

__all__ = ["null_ladder", "ladder_shares", "with_shares", "LADDER_COLUMNS", "BATCHED_KINDS", "SHARE_NAMES", "batched_distances"]

log = logging.getLogger(__name__)

#: Kinds computed for all null draws at once from mask counts (cheap: 1,000 draws in seconds).
BATCHED_KINDS = ("jaccard", "hamming", "layer_density", "ged", "ged_normalized")
#: Columns of :func:`null_ladder`'s table, in order.
LADDER_COLUMNS = ["pair", "a", "b", "kind", "level", "value", "null_mean", "null_sd", "z", "n_null", "n_as_extreme",
                  "share", "applies", "note"]  # fmt: skip
#: What each level's share explains (the increment over the level below), and the rest.
SHARE_NAMES = {"layer": "allocation", "fan_in": "fan_in", "degrees": "fan_out", "wiring": "wiring"}
#: Null draws held in memory at once, in weights x draws x tickets (a budget, not a limit on n).
_CHUNK_BUDGET = 2**27
_NO_LIKENESS = "no likeness beyond chance (value >= global null mean): no shares"
#: A slow kind (a graph built per null ticket) gets at most this many draws unless asked.
SLOW_SAMPLES = 100


def _prepare(draws: Mapping[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
    """Per layer of one ticket's draws ``(n, out, ...)``: packed bits, kept counts and (conv)
    the live kernel entries per channel pair -- computed once per ticket, used by every pair."""
    out = {}
    for name, d in draws.items():
        n = d.shape[0]
        flat = d.reshape(n, -1)
        layer = {"bits": np.packbits(flat, axis=1), "k": flat.sum(1), "numel": np.full(n, flat.shape[1])}
        if d.ndim > 3:
            layer["chan"] = d.reshape(n, d.shape[1], d.shape[2], -1).sum(3, dtype=np.int32)
        out[name] = layer
    return out


def _counts(a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per-draw counts of one layer of two prepared tickets: what every batched kind needs."""
    n = a["k"].shape[0]
    inter = np.bitwise_count(a["bits"] & b["bits"]).sum(1, dtype=np.int64)
    out = {"inter": inter, "ka": a["k"], "kb": b["k"], "numel": a["numel"]}
    if "chan" not in a:  # Linear (or 1-D): the layered graph's edges are the weights
        out["ged"] = a["k"] + b["k"] - 2 * inter
        out["ged_u"] = out["ged"]
        out["norm_u"] = a["k"] + b["k"]
    else:  # conv: channel pairs weighted by live kernel entries
        ca, cb = a["chan"], b["chan"]
        out["ged"] = np.abs(ca - cb).reshape(n, -1).sum(1)
        out["ged_u"] = ((ca > 0) ^ (cb > 0)).reshape(n, -1).sum(1)
        out["norm_u"] = (ca > 0).reshape(n, -1).sum(1) + (cb > 0).reshape(n, -1).sum(1)
    out["ldens"] = np.abs(a["k"] - b["k"]) / a["numel"]
    return out


def batched_distances(
    a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray], kinds: Iterable[str], *, weighted: bool = True
) -> dict[str, np.ndarray]:
    """The :data:`BATCHED_KINDS` between ``n`` pairs of masks at once: ``{kind: (n,) array}``.

    ``a[name]`` and ``b[name]`` are boolean ``(n, *mask shape)``; draw ``i`` of ``a`` is compared
    with draw ``i`` of ``b``. Each kind equals its registered distance on the tickets (a test
    checks it): ``jaccard`` 1 - intersection / union, ``hamming`` xor / weights,
    ``layer_density`` the L1 distance of the layer-density profiles, ``ged`` and
    ``ged_normalized`` on the layered graphs (conv layers by channel-pair counts; ``weighted``
    as the ``weighted`` option of those kinds).

    Examples
    --------
    >>> x = {"w": np.array([[True, False, True]])}
    >>> y = {"w": np.array([[True, True, False]])}
    >>> {k: round(float(v[0]), 3) for k, v in batched_distances(x, y, ["jaccard", "hamming"]).items()}
    {'jaccard': 0.667, 'hamming': 0.667}
    """
    return _from_prepared(_prepare(a), _prepare(b), kinds, weighted=weighted)


def _from_prepared(pa: Mapping[str, Mapping[str, np.ndarray]], pb: Mapping[str, Mapping[str, np.ndarray]],
                   kinds: Iterable[str], *, weighted: bool) -> dict[str, np.ndarray]:  # fmt: skip
    tot: dict[str, np.ndarray] = {}
    for name in pa:
        for key, v in _counts(pa[name], pb[name]).items():
            tot[key] = tot.get(key, 0) + v.astype(np.float64)
    inter, ka, kb = tot["inter"], tot["ka"], tot["kb"]
    union = ka + kb - inter
    ged = tot["ged"] if weighted else tot["ged_u"]
    norm = (ka + kb) if weighted else tot["norm_u"]
    out = {}
    for kind in kinds:
        if kind == "jaccard":
            out[kind] = np.where(union > 0, 1.0 - inter / np.maximum(union, 1), 0.0)
        elif kind == "hamming":
            out[kind] = (ka + kb - 2 * inter) / tot["numel"]
        elif kind == "layer_density":
            out[kind] = tot["ldens"]
        elif kind == "ged":
            out[kind] = ged
        elif kind == "ged_normalized":
            out[kind] = np.where(norm > 0, ged / np.maximum(norm, 1), 0.0)
        else:
            raise GraphticketsError(f"{kind!r} is not a batched kind; batched: {', '.join(BATCHED_KINDS)}")
    return out


def _ticket_seed(seed: SeedLike, name: str, level: str, chunk: int) -> np.random.SeedSequence:
    """The stream of one ticket's draws at one level (and chunk), independent of the others."""
    ss = seed_sequence(seed)
    ent: Any = ss.entropy
    base = [int(x) for x in (ent if isinstance(ent, (list, tuple)) else [ent])]
    return np.random.SeedSequence(base + [zlib.crc32(name.encode()), LEVELS.index(level), chunk], spawn_key=ss.spawn_key)


def _slow_values(kind: str, model: nn.Module | None, da: dict[str, np.ndarray], db: dict[str, np.ndarray],
                 ta: Ticket, tb: Ticket, options: dict[str, Any]) -> np.ndarray:  # fmt: skip
    """A kind that needs a graph per null ticket: the null tickets built one by one."""
    spec = DISTANCES[kind]
    n = next(iter(da.values())).shape[0]
    vals = np.empty(n)
    for i in range(n):
        xa = ta.replace({k: torch.from_numpy(np.ascontiguousarray(v[i])) for k, v in da.items()})
        xb = tb.replace({k: torch.from_numpy(np.ascontiguousarray(v[i])) for k, v in db.items()})
        ctx = Context(model=model, options=options)
        vals[i] = spec.fn(xa, xb, ctx)
    return vals


def _observed(kind: str, model: nn.Module | None, ta: Ticket, tb: Ticket, options: dict[str, Any]) -> float:
    return float(DISTANCES[kind].fn(ta, tb, Context(model=model, options=options)))


def _level_note(level: str, fixed: Mapping[str, Mapping[str, str]], sizes: Mapping[str, int]) -> tuple[bool, str]:
    """Whether the level's nulls can vary for at least one ticket of the pair, and the layers
    it holds fixed (``ticket: layer (reason)``)."""
    parts, varies = [], False
    for who, f in fixed.items():
        if f:
            parts.append(f"{who}: " + "; ".join(f"{layer} ({why})" for layer, why in f.items()))
        if len(f) < sizes[who]:
            varies = True
    note = ("layers kept as they are -- " + " | ".join(parts)) if parts else ""
    return varies, (note if varies else f"cannot apply: {level} changes neither ticket -- " + " | ".join(parts))


def _stats(value: float, vals: np.ndarray) -> dict[str, Any]:
    n = int(vals.size)
    mu = float(vals.mean())
    sd = float(vals.std(ddof=1)) if n > 1 else float("nan")
    scale = max(abs(value), abs(mu))
    tie = NULL_STD_RTOL * scale
    flat = n > 1 and sd <= tie
    z = (value - mu) / sd if n > 1 and not flat else float("nan")
    return {"null_mean": mu, "null_sd": sd, "z": z, "n_null": n, "n_as_extreme": int(np.sum(vals <= value + tie)),
            "flat": flat}  # fmt: skip


def _chunks(n: int, weights: int, tickets: int) -> list[int]:
    size = max(1, min(n, _CHUNK_BUDGET // max(weights * tickets, 1)))
    return [min(size, n - s) for s in range(0, n, size)]


def _samples_of(samples: int | Mapping[str, int], kind: str) -> int:
    if isinstance(samples, Mapping):
        return int(samples.get(kind, SLOW_SAMPLES if kind not in BATCHED_KINDS else 1000))
    return int(samples) if kind in BATCHED_KINDS else min(int(samples), SLOW_SAMPLES)


def _check_kinds(kinds: Iterable[str], levels: Iterable[str]) -> tuple[list[str], list[str]]:
    chosen = list(kinds)
    for k in chosen:
        if DISTANCES.get_or_raise(k).needs_data:
            raise GraphticketsError(f"kind {k!r} compares what trained tickets compute; null tickets carry no trained "
                                    f"weights, so it has no null ladder (ask for structural kinds)")  # fmt: skip
    lv = list(levels)
    bad = [x for x in lv if x not in LEVELS]
    if bad or not lv:
        raise GraphticketsError(f"levels must be a non-empty subset of {', '.join(LEVELS)}; got {lv}")
    return chosen, [x for x in LEVELS if x in lv]


def _null_values(named: dict[str, Ticket], model: nn.Module | None, kinds: list[str], level: str,
                 samples: int | Mapping[str, int], seed: SeedLike, swaps_per_edge: float,
                 options: dict[str, Any]) -> tuple[dict[tuple[str, str, str], np.ndarray], dict[str, dict[str, str]]]:  # fmt: skip
    """Every pair's null distances at one level (``{(a, b, kind): values}``) and each ticket's fixed layers."""
    names = list(named)
    want = {k: _samples_of(samples, k) for k in kinds}
    n_max = max(want.values())
    weights = sum(int(m.numel()) for m in next(iter(named.values())).masks.values())
    parts: dict[tuple[str, str, str], list[np.ndarray]] = {}
    fixed: dict[str, dict[str, str]] = {}
    start = 0
    for c, size in enumerate(_chunks(n_max, weights, len(names))):
        draws, prepared = {}, {}
        for nm in names:
            draws[nm], info = draw_masks(named[nm].masks, level, size, _ticket_seed(seed, nm, level, c),
                                         swaps_per_edge=swaps_per_edge)  # fmt: skip
            prepared[nm] = _prepare(draws[nm])
            fixed[nm] = info["fixed"]
            if all(k in BATCHED_KINDS for k in kinds):
                draws[nm] = {}  # only the slow kinds need the masks themselves
        fast = [k for k in kinds if k in BATCHED_KINDS and start < want[k]]
        for na, nb in itertools.combinations(names, 2):
            got = _from_prepared(prepared[na], prepared[nb], fast, weighted=bool(options.get("weighted", True)))
            for k in kinds:
                take = min(size, want[k] - start)
                if take <= 0:
                    continue
                if k in got:
                    v = got[k][:take]
                else:
                    da = {x: y[:take] for x, y in draws[na].items()}
                    db = {x: y[:take] for x, y in draws[nb].items()}
                    v = _slow_values(k, model, da, db, named[na], named[nb], options)
                parts.setdefault((na, nb, k), []).append(v)
        start += size
    return {key: np.concatenate(v) for key, v in parts.items()}, fixed


def null_ladder(
    tickets: Mapping[str, Ticket] | Sequence[Ticket],
    model: nn.Module | None = None,
    *,
    kinds: Iterable[str] = ("jaccard", "hamming", "layer_density"),
    samples: int | Mapping[str, int] = 1000,
    seed: SeedLike = 0,
    levels: Iterable[str] = LEVELS,
    swaps_per_edge: float = 5.0,
    options: Mapping[str, Any] | None = None,
    samples_by_level: Mapping[str, int] | None = None,
    return_draws: bool = False,
) -> pd.DataFrame:
    """Every pair's distance against the nulls of each level of the ladder.

    For each pair ``(a, b)``, kind and level, ``samples`` null pairs ``(null_i(a), null_i(b))``
    are drawn, independently for every ticket and level
    (:func:`~graphtickets.pruning.randomize.draw_masks`; ``null_i(a)`` is shared by the pairs
    of ``a``), and ``d(null_i(a), null_i(b))`` is the null distribution of ``d(a, b)``.

    Levels (:data:`~graphtickets.pruning.randomize.LEVELS`): ``global`` keeps each ticket's
    number of kept weights (uniform random at its global density: the reference, nothing
    kept); ``layer`` each layer's density (the layer shuffle); ``fan_in`` each unit's fan-in
    (each row of a layer's ``(out, -1)`` mask permuted); ``degrees`` each unit's fan-in and
    every input's fan-out (degree-preserving checkerboard swaps, Maslov & Sneppen 2002,
    ``swaps_per_edge`` accepted swaps per edge). Conv layers are unrolled with their kernel
    positions (Hoang et al. 2023): ``fan_in`` keeps each output channel's live kernel
    entries, ``degrees`` also each (input channel, kernel position)'s fan-out.

    Shares. With ``d_obs`` the distance, ``d_ref`` the mean under ``global`` and ``m_l`` the
    null mean at level ``l``, the likeness beyond chance is ``L = d_ref - d_obs`` and each
    later level's ``share`` is the part of ``L`` its kept statistic adds to the level below:
    ``share_layer = (d_ref - m_layer) / L`` (layer allocation), ``share_fan_in = (m_layer -
    m_fan_in) / L`` and ``share_degrees = (m_fan_in - m_degrees) / L`` (unit degrees: fan-in,
    then fan-out); what no null explains, ``(m_degrees - d_obs) / L``, is the wiring
    (:func:`ladder_shares`). The shares sum to 1 and are not clipped: a negative share means
    keeping that statistic made the nulls *less* alike. They are NaN (with a note) when
    ``L <= 1e-9 * max(|d_obs|, |d_ref|)`` -- no likeness beyond chance, nothing to share --
    or when ``global`` is not among the levels; read them only where the ``global`` test
    says the pair is more alike than chance.

    Parameters
    ----------
    tickets : dict[str, Ticket] or list of Ticket
        Of one architecture; names from the keys, else ``"{index}:{method}"``.
    model : nn.Module, optional
        Needed by graph kinds (``spectral``, ``netlsd``, ``degree``, ``aligned_jaccard`` on
        graphs...).
    kinds : iterable of str
        Structural kinds of :data:`~graphtickets.analysis.DISTANCES`. The
        :data:`BATCHED_KINDS` are computed for all draws at once from mask counts; any other
        kind builds every null ticket (and its graphs) one by one.
    samples : int or mapping of str to int, default 1000
        Null draws per pair, kind and level; an int applies to the batched kinds, and other
        kinds get at most :data:`SLOW_SAMPLES` (100) unless a mapping ``{kind: n}`` says more.
    seed : int, sequence of int or SeedSequence
        Entropy of every draw, with each ticket's name, the level and the chunk; pass a
        different seed per group (e.g. ``(base, density_index, init_seed)``) for
        independent draws across groups. The same seed gives the same table.
    levels : iterable of str
        A subset of the levels (in ladder order).
    swaps_per_edge : float, default 5
        Accepted swaps per edge of the ``degrees`` chain. On the default study's MLP (fc2 at
        d = 0.05, 1,000 draws) the fraction of the ticket's own edges still in place reaches its
        stationary value (0.070) after 2 swaps per edge, and the null mean and sd of jaccard
        between two rewired tickets do not move from 1 to 20 swaps per edge: 5 leaves a margin.
    options : mapping, optional
        Passed to every distance (``weighted=False`` for ``ged``).
    samples_by_level : mapping of str to int, optional
        At most this many draws at a level (e.g. ``{"degrees": 200}``: the swap chain is the
        costly level, ~1.5 s per ticket for 1,000 draws of the default MLP at d = 0.05 and
        4x that at d = 0.2 on one core).
    return_draws : bool, default False
        Also keep every null distance, in draw order, in ``table.attrs["draws"]``: ``{(pair,
        kind, level): (n_null,) array}`` (for tests over several pairs at once, or sequential
        rules, that need the draws themselves).

    Returns
    -------
    pandas.DataFrame
        :data:`LADDER_COLUMNS`: ``pair`` (``"a ~ b"``), ``a``, ``b``, ``kind``, ``level``,
        ``value`` (``d_obs``), ``null_mean``, ``null_sd`` (ddof 1), ``z`` (``(value -
        null_mean) / null_sd``; an effect size, NaN when the nulls do not vary), ``n_null``
        and ``n_as_extreme`` (nulls with ``d <= value``, up to a 1e-9 relative tie: the
        one-sided empirical test "more alike than the null", ``p = (1 + n_as_extreme) / (1 +
        n_null)``), ``share``, ``applies`` (False when the level changes neither ticket: all
        its layers are empty, full, all-or-nothing per row or have one degree realization)
        and ``note`` (the layers a level holds fixed and why; ``cannot apply: ...``; "no null
        variation"; why a share is NaN).

    Examples
    --------
    >>> import graphtickets as gt
    >>> m = gt.models.build("mlp", in_shape=(10,), num_classes=3, widths=(16,), seed=0)
    >>> ts = {k: gt.pruning.prune(m, k, density=0.3, seed=0) for k in ("magnitude", "random")}
    >>> t = null_ladder(ts, m, kinds=["jaccard"], samples=50, seed=0)
    >>> t["level"].tolist()
    ['global', 'layer', 'fan_in', 'degrees']

    References
    ----------
    Frankle et al., ICLR 2021; Maslov & Sneppen, Science 2002; Hoang et al., ICLR 2023.
    """
    named = name_tickets(tickets)
    check_one_architecture(named, "the null ladder compares")
    chosen, lv = _check_kinds(kinds, levels)
    opts = dict(options or {})
    rows: list[dict[str, Any]] = []
    kept: dict[tuple[str, str, str], np.ndarray] = {}
    observed = {(a, b, k): _observed(k, model, named[a], named[b], opts)
                for a, b in itertools.combinations(named, 2) for k in chosen}  # fmt: skip
    for level in lv:
        cap = (samples_by_level or {}).get(level)
        lsamples: int | Mapping[str, int] = samples if cap is None else {k: min(_samples_of(samples, k), int(cap)) for k in chosen}
        vals, fixed = _null_values(named, model, chosen, level, lsamples, seed, swaps_per_edge, opts)
        for (a, b, k), v in vals.items():
            n_layers = 1 if level == "global" else len(named[a].masks)
            applies, note = _level_note(level, {a: fixed[a], b: fixed[b]}, {a: n_layers, b: n_layers})
            st = _stats(observed[(a, b, k)], v)
            if return_draws:
                kept[(f"{a} ~ {b}", k, level)] = v
            if st.pop("flat") or not applies:
                st["z"] = float("nan")
                note = "; ".join(x for x in (note, NO_NULL_VARIATION if applies else "") if x)
            rows.append({"pair": f"{a} ~ {b}", "a": a, "b": b, "kind": k, "level": level,
                         "value": observed[(a, b, k)], **st, "share": float("nan"), "applies": applies, "note": note})  # fmt: skip
    table = pd.DataFrame(rows, columns=LADDER_COLUMNS)
    order = {x: i for i, x in enumerate(LEVELS)}
    table = table.sort_values(["a", "b", "kind", "level"], key=lambda s: s.map(order) if s.name == "level" else s,
                              kind="stable").reset_index(drop=True)  # fmt: skip
    table = _add_shares(table)
    if return_draws:
        table.attrs["draws"] = kept
    return table


def _add_shares(table: pd.DataFrame) -> pd.DataFrame:
    """Fill ``share`` (see :func:`null_ladder`) for every pair and kind."""
    for _, idx in table.groupby(["pair", "kind"], sort=False).groups.items():
        g = table.loc[idx]
        levels = g["level"].tolist()
        if "global" not in levels:
            table.loc[idx, "note"] = _join(g["note"], "shares need the global level")
            continue
        d_obs = float(g["value"].iloc[0])
        d_ref = float(g.loc[g["level"] == "global", "null_mean"].iloc[0])
        gap = d_ref - d_obs
        if not gap > NULL_STD_RTOL * max(abs(d_obs), abs(d_ref)):
            table.loc[idx, "note"] = _join(g["note"], _NO_LIKENESS)
            continue
        means = g["null_mean"].to_numpy()
        table.loc[idx[1:], "share"] = (means[:-1] - means[1:]) / gap
    return table


def with_shares(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` (rows of :func:`null_ladder`, e.g. put together from calls at different levels or
    with draws added) with ``share`` filled again from its ``value`` and ``null_mean``.

    Rows are ordered by pair, kind and level first (the shares are differences between
    consecutive levels); ``share`` is overwritten and the notes of :func:`null_ladder` about
    shares are added where they apply.
    """
    order = {x: i for i, x in enumerate(LEVELS)}
    t = table.sort_values(["a", "b", "kind", "level"], key=lambda s: s.map(order) if s.name == "level" else s,
                          kind="stable").reset_index(drop=True)  # fmt: skip
    t["share"] = np.nan
    return _add_shares(t)


def _join(notes: pd.Series, extra: str) -> list[str]:
    return ["; ".join(x for x in (str(n), extra) if x) for n in notes]


def _share_note(shares: Mapping[str, float], value: float, reference: float) -> str:
    if "global" not in shares:
        return "shares need the global level"
    if not reference - value > NULL_STD_RTOL * max(abs(value), abs(reference)):
        return _NO_LIKENESS
    return ""


def ladder_shares(table: pd.DataFrame) -> pd.DataFrame:
    """One row per pair and kind: the likeness beyond chance split into its sources.

    Columns ``pair``, ``a``, ``b``, ``kind``, ``value``, ``reference`` (the ``global`` null
    mean), ``beyond_chance`` (``reference - value``), ``allocation`` (the ``layer`` share),
    ``fan_in``, ``fan_out`` (the ``degrees`` share), ``unit_degrees`` (their sum),
    ``wiring`` (what no null explains: ``1 -`` the others; needs every level) and ``note``
    (why shares are NaN). See :func:`null_ladder` for the definitions.

    Examples
    --------
    >>> t = pd.DataFrame({"pair": ["x ~ y"] * 4, "a": "x", "b": "y", "kind": "jaccard",
    ...                   "level": ["global", "layer", "fan_in", "degrees"], "value": 0.5,
    ...                   "null_mean": [0.9, 0.8, 0.7, 0.7], "share": [np.nan, 0.25, 0.25, 0.0], "note": ""})
    >>> ladder_shares(t)[["allocation", "fan_in", "fan_out", "wiring"]].round(2).values.tolist()
    [[0.25, 0.25, 0.0, 0.5]]
    """
    rows = []
    for (pair, kind), g in table.groupby(["pair", "kind"], sort=False):
        by = dict(zip(g["level"], g["share"], strict=True))
        means = dict(zip(g["level"], g["null_mean"], strict=True))
        value = float(g["value"].iloc[0])
        row: dict[str, Any] = {"pair": pair, "a": g["a"].iloc[0], "b": g["b"].iloc[0], "kind": kind, "value": value,
                               "reference": means.get("global", np.nan), "beyond_chance": means.get("global", np.nan) - value}  # fmt: skip
        for level in ("layer", "fan_in", "degrees"):
            row[SHARE_NAMES[level]] = float(by.get(level, np.nan))
        row["unit_degrees"] = row["fan_in"] + row["fan_out"]
        complete = all(x in by for x in LEVELS)
        row["wiring"] = 1.0 - row["allocation"] - row["unit_degrees"] if complete else float("nan")
        row["note"] = _share_note(by, value, row["reference"])
        rows.append(row)
    return pd.DataFrame(rows)
