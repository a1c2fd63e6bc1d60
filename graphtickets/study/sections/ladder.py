"""The null ladder of the study: what the tickets of two methods share, level by level.

Per comparison group (one dataset, model, density and init seed; each method's own ticket,
replicate 0, no ablation variant) every pair of methods is compared against the nulls of
:func:`graphtickets.analysis.null_ladder` at each level -- ``global`` (uniform random at the
ticket's global density), ``layer`` (each layer's density kept), ``fan_in`` (each unit's
fan-in kept), ``degrees`` (every unit's fan-in and fan-out kept, degree-preserving swaps) --
with one kind per question (:data:`TESTED`): ``layer_density`` (*layer allocation*) against the
``global`` null, ``jaccard`` (*mask overlap*) against every level. The levels above ``global``
keep every layer's kept count, so ``layer_density`` has no null variation there: it is not
tested (a line of the report says so). Graph-shape and aligned-overlap kinds are not run here
(:data:`NOT_RUN`, with the measured reason): their nulls need a graph or a unit matching per
null ticket.

Calibration. Each test is one-sided ("more alike than the level's null"): per group the
empirical ``p = (1 + #{null <= value}) / (1 + n_null)`` (never below ``1 / (1 + n_null)``),
from :data:`DRAWS` draws at the cheap levels and, at the costly ``degrees`` level, a two-stage
rule (:data:`DEGREE_DRAWS`): :data:`DEGREE_FIRST` draws, and more draws (to
:data:`DEGREE_DRAWS` in all) only for pairs whose first-stage ``p <= DEGREE_EXTEND_AT`` -- the
pooled ``p`` of an extended pair is valid because a pair is extended only where its first-stage
``p`` is at most the threshold (below it the pooled ``p`` is the fixed-``n`` one; above it the
rule reports the first stage's). Every group draws its own nulls (seeded by the group's label,
never the same stream for two groups). The init seed is the unit of inference: the densities
of one seed (nested masks, one training trajectory) are combined first, by Bonferroni
(``min(1, G min_g p_g)``, valid under any dependence between them), then the seeds, independent,
by Fisher's method (:func:`graphtickets.analysis.combine_independent`). One test per pair, kind
and level (``tests``), and one per *family of methods* (the pairs among data-driven methods,
among data-free ones): per group the mean over the family's pairs of each pair's standardized
distance, against the same statistic of every joint null draw (draw ``i`` of a ticket is shared
by all its pairs: :func:`graphtickets.analysis.pooled_effects`), then seeds combined as above.
z-scores are effect sizes only.

Shares (:func:`graphtickets.analysis.ladder_shares`, ``jaccard``): the part of a pair's likeness
beyond chance (``global`` null mean minus the distance) that each level's kept statistic
explains -- layer allocation, unit fan-in, unit fan-out (together: unit degrees) -- and what none
explains (the wiring), per group, then the mean within a seed, then over seeds.

References
----------
.. [1] J. Frankle, G. K. Dziugaite, D. M. Roy, M. Carbin, ICLR 2021 (the layer shuffle).
.. [2] S. Maslov, K. Sneppen, Science 296, 2002 (degree-preserving rewiring).
.. [3] J. Besag, P. Clifford, Biometrika 78, 1991 (sequential Monte Carlo p-values).
"""

from __future__ import annotations

import itertools
import logging
import time
import zlib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from graphtickets.study.sections import Block, Claim, Context, Section, register

log = logging.getLogger("graphtickets.study")

__all__ = ["TESTED", "NOT_RUN", "DRAWS", "DEGREE_FIRST", "DEGREE_DRAWS", "DEGREE_EXTEND_AT", "METHOD_FAMILIES",
           "group_ladder", "ladder_tables", "compute", "render", "claims", "LADDER_TABLE_COLUMNS", "FIGURE"]

#: kind -> (its question, the levels it is tested against).
TESTED: dict[str, tuple[str, tuple[str, ...]]] = {
    "layer_density": ("layer allocation", ("global",)),
    "jaccard": ("mask overlap", ("global", "layer", "fan_in", "degrees")),
}
#: Questions this section does not test, and why (the reason is a line of the report).
NOT_RUN: dict[str, str] = {
    "graph shape": "spectral/netlsd/degree need a relational or layered graph and its spectrum per null ticket "
                   "(about 0.2 s per null pair on the default MLP): 1,000 degree-preserving draws per group would "
                   "cost hours, so the graph-shape family is not tested against the ladder",
    "aligned overlap": "aligned_jaccard matches units per pair and null draw (a Hungarian assignment per layer): "
                       "too slow for calibrated null draws in this section",
}
#: Null draws per group at the cheap levels (mask counts, all draws at once).
DRAWS = 499
#: First-stage draws at the ``degrees`` level (the swap chain is the costly level).
DEGREE_FIRST = 29
#: Draws in all at the ``degrees`` level for a pair extended by the two-stage rule.
DEGREE_DRAWS = 99
#: Accepted swaps per edge of the degree-preserving chain (null_ladder measured its null mean and sd
#: on the default MLP unchanged from 1 to 20 swaps per edge, stationary after 2).
SWAPS_PER_EDGE = 3.0
#: A pair's first-stage ``p`` at or below this gets the second stage.
DEGREE_EXTEND_AT = 0.07
#: Families of methods whose pairs are tested together: name -> which method names belong.
METHOD_FAMILIES = ("data-driven", "data-free")
#: The ladder table's columns (besides those of :data:`graphtickets.analysis.LADDER_COLUMNS`).
LADDER_TABLE_COLUMNS = ["group", "dataset", "model", "density", "seed", "pair", "a", "b", "kind", "question", "level",
                        "value", "null_mean", "null_sd", "z", "n_null", "n_as_extreme", "p", "share", "applies", "note"]
#: The section's summary figure (under ``figures/``).
FIGURE = "ladder.png"
_LEVEL_WORDS = {"global": "uniform random masks at each ticket's global density",
                "layer": "the layer-shuffled null (each layer's density kept)",
                "fan_in": "the fan-in null (each unit's fan-in kept)",
                "degrees": "the degree-preserving null (each unit's fan-in and fan-out kept)"}
_BASE_SEED = 24_032


def _method_family(method: str) -> str | None:
    """``data-driven`` (the method reads data), ``data-free``, or None (random baseline, unknown, dense)."""
    from graphtickets import pruning
    from graphtickets.study.methods import random_baseline

    spec = pruning.METHODS.get(method)
    if spec is None or method == random_baseline():
        return None
    return "data-driven" if getattr(spec, "needs_data", False) else "data-free"


def _group_seed(label: str, stage: int) -> tuple[int, int, int]:
    """The entropy of one group's draws at one stage: every group its own stream."""
    return (_BASE_SEED, zlib.crc32(label.encode()), stage)


def _pvalue(value: float, draws: np.ndarray) -> tuple[float, int, float, float]:
    """One-sided "more alike" empirical p, its exceedances, and the null mean and sd."""
    from graphtickets.analysis import null_test

    t = null_test(value, draws)
    sd = float(np.std(draws, ddof=1)) if draws.size > 1 else float("nan")
    return t.p_closer, t.n_closer, float(np.mean(draws)), sd


def _ladder_call(tickets: Mapping[str, Any], kinds: list[str], levels: Sequence[str], n: int,
                 seed: tuple[int, int, int]) -> tuple[pd.DataFrame, dict[tuple[str, str, str], np.ndarray]]:
    from graphtickets.analysis import null_ladder

    t = null_ladder(dict(tickets), None, kinds=kinds, samples={k: n for k in kinds}, seed=seed, levels=levels,
                    return_draws=True, swaps_per_edge=SWAPS_PER_EDGE)
    draws = t.attrs.pop("draws")
    return t, draws


Draws = dict[tuple[str, str, str], np.ndarray]


def _family_stat(values: np.ndarray, nulls: np.ndarray) -> tuple[float, float, int]:
    """A family of methods' statistic (mean standardized distance of its pairs), its one-sided
    p against the same statistic of the joint draws, and the pairs used."""
    from graphtickets.analysis import null_test, pooled_effects

    t, used = pooled_effects(values, nulls)
    if not used:
        return float("nan"), float("nan"), 0
    return float(t[0]), null_test(float(t[0]), t[1:]).p_closer, int(used)


def _extended(deg: pd.DataFrame, draws: Draws) -> tuple[list[str], list[str]]:
    """The pairs and the families of methods whose first-stage ``degrees`` p is at most
    :data:`DEGREE_EXTEND_AT` (they get the second stage)."""
    p1 = (1 + deg["n_as_extreme"]) / (1 + deg["n_null"])
    pairs = deg.loc[(p1 <= DEGREE_EXTEND_AT) & deg["applies"] & deg["z"].notna(), "pair"].tolist()
    fams = []
    ok = deg[deg["applies"] & deg["z"].notna()]
    for fam, members in _family_pairs(ok[["pair", "a", "b"]].itertuples(index=False, name=None)).items():
        sel = ok[ok["pair"].isin(members)]
        nulls = np.stack([draws[(q, "jaccard", "degrees")] for q in sel["pair"]])
        if _family_stat(sel["value"].to_numpy(float), nulls)[1] <= DEGREE_EXTEND_AT:
            fams.append(fam)
    return pairs, fams


def _degrees(tickets: Mapping[str, Any], label: str) -> tuple[pd.DataFrame, Draws, Draws]:
    """The ``degrees`` level by the two-stage rule: its rows, the pair tests' draws and the
    family tests' draws (a pair's draws pooled over both stages where its own test, or its
    family's, was extended)."""
    deg, d1 = _ladder_call(tickets, ["jaccard"], ("degrees",), DEGREE_FIRST, _group_seed(label, 1))
    pairs, fams = _extended(deg, d1)
    fam_pairs = {q for f, qs in _family_pairs(deg[["pair", "a", "b"]].itertuples(index=False, name=None)).items()
                 if f in fams for q in qs}
    pair_draws, fam_draws = dict(d1), dict(d1)
    grow = set(pairs) | fam_pairs
    if DEGREE_DRAWS > DEGREE_FIRST and grow:
        sel = deg[deg["pair"].isin(grow)]
        names = [m for m in tickets if m in set(sel["a"]) | set(sel["b"])]
        _, d2 = _ladder_call({m: tickets[m] for m in names}, ["jaccard"], ("degrees",), DEGREE_DRAWS - DEGREE_FIRST,
                             _group_seed(label, 2))
        for q in grow:
            key = (q, "jaccard", "degrees")
            both = np.concatenate([d1[key], d2[key]])
            if q in pairs:
                pair_draws[key] = both
            if q in fam_pairs:
                fam_draws[key] = both
    deg["note"] = deg["note"].str.replace(r"(; )?shares need the global level", "", regex=True)
    return deg, pair_draws, fam_draws


def group_ladder(tickets: Mapping[str, Any], label: str) -> tuple[pd.DataFrame, Draws, Draws]:
    """The ladder of one group: its rows (with ``p``), the draws of each pair test and those of
    the family-of-methods tests.

    Cheap levels: :data:`DRAWS` draws of every tested kind. ``degrees``: the two-stage rule of
    the module docstring (``jaccard`` only; ``layer_density`` cannot vary there).
    """
    from graphtickets.analysis.ladder import with_shares

    cheap, draws = _ladder_call(tickets, list(TESTED), ("global", "layer", "fan_in"), DRAWS, _group_seed(label, 0))
    deg, pair_draws, fam_draws = _degrees(tickets, label)
    fam_draws = {**draws, **fam_draws}
    draws.update(pair_draws)
    rows = []
    for r in pd.concat([cheap, deg], ignore_index=True).itertuples(index=False):
        v = draws[(r.pair, r.kind, r.level)]
        p, k, mu, sd = _pvalue(float(r.value), v)
        flat = not np.isfinite(r.z)
        rows.append({**r._asdict(), "p": p if r.applies and not flat else float("nan"), "n_as_extreme": k,
                     "n_null": int(v.size), "null_mean": mu, "null_sd": sd,
                     "z": (float(r.value) - mu) / sd if not flat and sd > 0 else float("nan")})
    out = pd.DataFrame(rows)
    out = with_shares(out.assign(note=out["note"].str.replace(r"(; )?no likeness beyond chance[^;]*", "", regex=True)))
    return out, draws, fam_draws


def _groups(ctx: Context) -> Iterable[tuple[Any, dict[str, Any]]]:
    """Per comparison group: its key and ``{method: ticket}`` (replicate 0, no ablation variant,
    no dense reference; tickets whose mask shapes differ from the most common are left out)."""
    from graphtickets.study.grid import DENSE

    if ctx.store is None or not ctx.cells:
        return
    done = ctx.store.done_ids()
    groups: dict[Any, list[Any]] = {}
    for c in ctx.cells:
        if c.id in done and c.method != DENSE and not c.variant and not c.replicate:
            groups.setdefault(c.group, []).append(c)
    for key, members in groups.items():
        tickets = {c.method: ctx.store.load_ticket(c.id) for c in members}
        sig = {m: tuple((n, tuple(v.shape)) for n, v in t.masks.items()) for m, t in tickets.items()}
        common = pd.Series(list(sig.values())).value_counts().index[0] if sig else None
        tickets = {m: t for m, t in tickets.items() if sig[m] == common}
        if len(tickets) >= 2:
            yield key, tickets


def _family_pairs(pairs: Iterable[tuple[str, str, str]]) -> dict[str, list[str]]:
    """family of methods -> the pairs ``"a ~ b"`` with both methods in it."""
    out: dict[str, list[str]] = {}
    for pair, a, b in pairs:
        fa, fb = _method_family(a), _method_family(b)
        if fa is not None and fa == fb:
            out.setdefault(fa, []).append(pair)
    return out


def _family_rows(rows: pd.DataFrame, fam_draws: Draws) -> list[dict[str, Any]]:
    """One group's family-of-methods tests: the mean standardized distance of the family's pairs
    against the same mean over the joint null draws (:func:`_family_stat`)."""
    out = []
    fams = _family_pairs(rows[["pair", "a", "b"]].drop_duplicates().itertuples(index=False, name=None))
    for (kind, level), g in rows[rows["p"].notna()].groupby(["kind", "level"], sort=False):
        for fam, pairs in fams.items():
            sel = g[g["pair"].isin(pairs)]
            if sel.empty:
                continue
            nulls = [fam_draws[(q, kind, level)] for q in sel["pair"]]
            n = min(v.size for v in nulls)  # equal by construction (one stage rule per family)
            stat, p, used = _family_stat(sel["value"].to_numpy(float), np.stack([v[:n] for v in nulls]))
            if used:
                out.append({"family_of_methods": fam, "kind": kind, "level": level, "pairs": used,
                            "statistic": stat, "p": p, "n_null": n})
    return out


def _within_seed(df: pd.DataFrame, by: list[str], effect: str) -> pd.DataFrame:
    """Per ``by`` and init seed: Bonferroni over the seed's densities, the mean effect."""
    g = df[df["p"].notna()].groupby([*by, "seed"], sort=False)
    per = g.agg(p_min=("p", "min"), groups=("p", "size"), effect=(effect, "mean"), n_null=("n_null", "min"))
    per["p"] = np.minimum(1.0, per["p_min"] * per["groups"])
    return per.reset_index()


def _over_seeds(per_seed: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Per ``by``: Fisher over the independent init seeds, the mean effect, the number of seeds."""
    from graphtickets.analysis import combine_independent

    rows = []
    for key, g in per_seed.groupby(by, sort=False):
        rows.append({**dict(zip(by, key, strict=True)), "effect": float(g["effect"].mean()),
                     "p": combine_independent(g["p"].to_numpy(float)), "seeds": int(g["seed"].nunique()),
                     "n_null": int(g["n_null"].min())})
    return pd.DataFrame(rows, columns=[*by, "effect", "p", "seeds", "n_null"])


def _tests(ladder: pd.DataFrame, families: pd.DataFrame) -> pd.DataFrame:
    """The ``tests`` table: one per pair x kind x level and per family of methods x kind x level."""
    from graphtickets.study.sections import TEST_COLUMNS

    rows = []
    pairs = _over_seeds(_within_seed(ladder, ["pair", "kind", "level"], "z"), ["pair", "kind", "level"])
    for r in pairs.itertuples(index=False):
        rows.append({"test": f"pair:{r.pair}:{r.kind}:{r.level}", "family": TESTED[r.kind][0],
                     "question": f"{r.pair} more alike by {r.kind} than {_LEVEL_WORDS[r.level]}",
                     "statistic": r.effect, "p": r.p, "unit": "init seed", "n": r.seeds, "n_null": r.n_null})
    if not families.empty:
        fam = _over_seeds(_within_seed(families, ["family_of_methods", "kind", "level"], "statistic"),
                          ["family_of_methods", "kind", "level"])
        for r in fam.itertuples(index=False):
            rows.append({"test": f"methods:{r.family_of_methods}:{r.kind}:{r.level}", "family": TESTED[r.kind][0],
                         "question": f"pairs of {r.family_of_methods} methods more alike by {r.kind} than "
                                     f"{_LEVEL_WORDS[r.level]} (mean standardized distance over the pairs)",
                         "statistic": r.effect, "p": r.p, "unit": "init seed", "n": r.seeds, "n_null": r.n_null})
    return pd.DataFrame(rows, columns=[*TEST_COLUMNS, "n_null"])


def _shares(ladder: pd.DataFrame) -> pd.DataFrame:
    """``ladder_shares`` per group (``jaccard``), then the mean within a seed and over seeds, per
    pair and per family of methods."""
    from graphtickets.analysis import ladder_shares

    parts = [ladder_shares(g).assign(density=d, seed=s)
             for (d, s), g in ladder[ladder["kind"] == "jaccard"].groupby(["density", "seed"], sort=False)]
    if not parts:
        return pd.DataFrame()
    sh = pd.concat(parts, ignore_index=True)
    cols = ["beyond_chance", "allocation", "fan_in", "fan_out", "unit_degrees", "wiring"]
    sh["family_of_methods"] = [fa if fa == _method_family(b) else "" for fa, b in
                               zip(map(_method_family, sh["a"]), sh["b"], strict=True)]
    per_pair = sh.groupby(["pair", "seed"], sort=False)[cols].mean().groupby(level="pair", sort=False).mean()
    per_pair = per_pair.reset_index().assign(family_of_methods="")
    fam = sh[sh["family_of_methods"].isin(METHOD_FAMILIES)]
    per_fam = (fam.groupby(["family_of_methods", "seed"], sort=False)[cols].mean()
               .groupby(level="family_of_methods", sort=False).mean().reset_index().assign(pair=""))
    out = pd.concat([per_fam, per_pair], ignore_index=True)
    seeds = int(sh["seed"].nunique())
    return out[["family_of_methods", "pair", *cols]].assign(kind="jaccard", seeds=seeds)


def _skipped(ladder: pd.DataFrame) -> pd.DataFrame:
    """What the section does not test, one line each: questions not run, (kind, level) the ladder
    cannot vary, and levels that hold layers fixed."""
    rows = [{"what": q, "reason": why} for q, why in NOT_RUN.items()]
    rows.append({"what": "layer_density at layer, fan_in, degrees",
                 "reason": "these levels keep every layer's kept count, so the null equals the value: not a test"})
    bad = ladder[~ladder["applies"].astype(bool) | ladder["p"].isna()]
    for (kind, level), g in bad.groupby(["kind", "level"], sort=False):
        if not (kind == "layer_density" and level != "global"):
            rows.append({"what": f"{kind} at {level} ({len(g)} of the pair rows)", "reason": str(g["note"].iloc[0])})
    fixed = ladder[ladder["note"].str.contains("layers kept as they are", na=False) & ladder["applies"].astype(bool)]
    for level, g in fixed.groupby("level", sort=False):
        rows.append({"what": f"{level}: layers held fixed in {len(g)} rows", "reason": str(g["note"].iloc[0])})
    return pd.DataFrame(rows, columns=["what", "reason"])


def ladder_tables(groups: Iterable[tuple[Any, Mapping[str, Any]]]) -> dict[str, pd.DataFrame]:
    """The section's tables from ``(group key, {method: ticket})`` pairs: ``ladder``,
    ``ladder_families``, ``ladder_shares``, ``ladder_skipped`` and ``tests``."""
    parts, fams, t0 = [], [], time.perf_counter()
    for key, tickets in groups:
        label = str(key)
        rows, _, fam_draws = group_ladder(tickets, label)
        meta = {"group": label, "dataset": key.dataset, "model": key.model, "density": float(key.density),
                "seed": int(key.seed)}
        rows = rows.assign(**meta, question=rows["kind"].map(lambda k: TESTED[k][0]))
        parts.append(rows)
        fams += [{**meta, **f} for f in _family_rows(rows, fam_draws)]
        log.info("ladder of %s: %d tickets, %.1fs since the ladder started", label, len(tickets), time.perf_counter() - t0)
    if not parts:
        return {}
    ladder = pd.concat(parts, ignore_index=True)[LADDER_TABLE_COLUMNS]
    families = pd.DataFrame(fams)
    out = {"ladder": ladder, "ladder_families": families, "ladder_shares": _shares(ladder),
           "ladder_skipped": _skipped(ladder), "tests": _tests(ladder, families)}
    out["ladder_skipped"].attrs["seconds"] = time.perf_counter() - t0
    return out


def compute(ctx: Context) -> dict[str, pd.DataFrame]:
    """The ladder of every comparison group of the study (see the module docstring)."""
    return ladder_tables(_groups(ctx))
