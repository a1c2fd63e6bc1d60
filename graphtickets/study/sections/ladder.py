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
LADDER_TABLE_COLUMNS = ["group", "setting", "dataset", "model", "density", "seed", "pair", "a", "b", "kind", "question", "level",
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


#: The tests table's columns besides :data:`~graphtickets.study.sections.TEST_COLUMNS`.
TEST_EXTRA = ["setting", "pair", "methods", "kind", "level", "n_null"]


def _test_id(setting: str, many: bool, *parts: str) -> str:
    return ":".join([*([setting] if many else []), *parts])


def _tests(ladder: pd.DataFrame, families: pd.DataFrame) -> pd.DataFrame:
    """The ``tests`` table: per setting (dataset/model), one per pair x kind x level and per family
    of methods x kind x level, the seeds combined. Ids: ``pair:<a ~ b>:<kind>:<level>`` and
    ``methods:<family>:<kind>:<level>`` (prefixed ``<dataset>/<model>:`` when the study has several)."""
    from graphtickets.study.sections import TEST_COLUMNS

    rows = []
    many = ladder["setting"].nunique() > 1
    by = ["setting", "pair", "kind", "level"]
    for r in _over_seeds(_within_seed(ladder, by, "z"), by).itertuples(index=False):
        rows.append({"test": _test_id(r.setting, many, "pair", r.pair, r.kind, r.level), "family": TESTED[r.kind][0],
                     "question": f"{r.pair} more alike by {r.kind} than {_LEVEL_WORDS[r.level]}"
                                 + (f" ({r.setting})" if many else ""),
                     "statistic": r.effect, "p": r.p, "unit": "init seed", "n": r.seeds, "setting": r.setting,
                     "pair": r.pair, "methods": "", "kind": r.kind, "level": r.level, "n_null": r.n_null})
    if not families.empty:
        by = ["setting", "family_of_methods", "kind", "level"]
        for r in _over_seeds(_within_seed(families, by, "statistic"), by).itertuples(index=False):
            rows.append({"test": _test_id(r.setting, many, "methods", r.family_of_methods, r.kind, r.level),
                         "family": TESTED[r.kind][0],
                         "question": f"pairs of {r.family_of_methods} methods more alike by {r.kind} than "
                                     f"{_LEVEL_WORDS[r.level]} (mean standardized distance over the pairs)"
                                     + (f" ({r.setting})" if many else ""),
                         "statistic": r.effect, "p": r.p, "unit": "init seed", "n": r.seeds, "setting": r.setting,
                         "pair": "", "methods": r.family_of_methods, "kind": r.kind, "level": r.level,
                         "n_null": r.n_null})
    return pd.DataFrame(rows, columns=[*TEST_COLUMNS, *TEST_EXTRA])


def _shares(ladder: pd.DataFrame) -> pd.DataFrame:
    """``ladder_shares`` per group (``jaccard``), then the mean within a seed and over seeds, per
    setting and family of methods (``pair`` empty) and per setting and pair (``family_of_methods``
    empty); ``seeds``: the seeds averaged."""
    from graphtickets.analysis import ladder_shares

    jac = ladder[ladder["kind"] == "jaccard"]
    parts = [ladder_shares(g).assign(setting=k[0], seed=k[2])
             for k, g in jac.groupby(["setting", "density", "seed"], sort=False)]
    if not parts:
        return pd.DataFrame()
    sh = pd.concat(parts, ignore_index=True)
    cols = ["beyond_chance", "allocation", "fan_in", "fan_out", "unit_degrees", "wiring"]
    fa, fb = sh["a"].map(_method_family), sh["b"].map(_method_family)
    sh["family_of_methods"] = np.where(fa.notna() & (fa == fb), fa, "")

    def mean(df: pd.DataFrame, key: str) -> pd.DataFrame:
        per = df.groupby(["setting", key, "seed"], sort=False)[cols].mean()
        out = per.groupby(level=["setting", key], sort=False).mean()
        return out.assign(seeds=per.groupby(level=["setting", key], sort=False).size()).reset_index()

    fam = mean(sh[sh["family_of_methods"] != ""], "family_of_methods").assign(pair="")
    pairs = mean(sh, "pair").assign(family_of_methods="")
    out = pd.concat([fam, pairs], ignore_index=True)
    return out[["setting", "family_of_methods", "pair", *cols, "seeds"]].assign(kind="jaccard")


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
        meta = {"group": label, "setting": f"{key.dataset}/{key.model}", "dataset": key.dataset, "model": key.model,
                "density": float(key.density), "seed": int(key.seed)}
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


_ORDER = [("layer_density", "global"), ("jaccard", "global"), ("jaccard", "layer"), ("jaccard", "fan_in"),
          ("jaccard", "degrees")]
_COLUMN_NAMES = ["allocation\n(layer_density, global)", "jaccard\nglobal", "jaccard\nlayer", "jaccard\nfan_in",
                 "jaccard\ndegrees"]


def _pair_matrix(tests: pd.DataFrame) -> pd.DataFrame:
    """Per pair (rows) and (kind, level) (columns): the seed-combined effect (mean z) of its test."""
    t = tests[tests["pair"].fillna("") != ""]
    if t["setting"].nunique() > 1:
        t = t.assign(pair=t["setting"] + ": " + t["pair"])
    wide = t.pivot_table(index="pair", columns=["kind", "level"], values="statistic", aggfunc="first")
    wide = wide.reindex(columns=pd.MultiIndex.from_tuples([c for c in _ORDER if c in wide.columns]))
    return wide.sort_values(("jaccard", "global") if ("jaccard", "global") in wide else wide.columns[0])


def figure(tables: Mapping[str, pd.DataFrame], folder: Path) -> Path | None:
    """``ladder.png``: per pair of methods, the z of each test of the ladder (left) and the shares
    of its mask overlap beyond chance (right: allocation, fan-in, fan-out, wiring)."""
    from graphtickets._io import write_output
    from graphtickets.study.figures import _plt

    tests, shares = tables.get("tests"), tables.get("ladder_shares")
    if tests is None or tests.empty:
        return None
    wide = _pair_matrix(tests)
    if wide.empty:
        return None
    plt = _plt()
    h = 1.6 + 0.17 * len(wide)
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, h), gridspec_kw={"width_ratios": [1.1, 1]}, sharey=True)
    z = np.clip(wide.to_numpy(float), -10, 10)
    im = ax.imshow(z, aspect="auto", cmap="RdBu", vmin=-10, vmax=10, interpolation="nearest")
    ax.set_xticks(range(wide.shape[1]), [_COLUMN_NAMES[_ORDER.index(c)] for c in wide.columns], fontsize=7)
    ax.set_yticks(range(len(wide)), wide.index, fontsize=6)
    ax.set_title("z against each null (mean over seeds; <0: more alike; clipped at +-10)", fontsize=8)
    fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02)
    if shares is not None and not shares.empty:
        sp = shares[shares["pair"] != ""]
        sp = sp.assign(pair=sp["setting"] + ": " + sp["pair"]) if sp["setting"].nunique() > 1 else sp
        per = sp.set_index("pair").reindex(wide.index)
        left = np.zeros(len(per))
        for col, colour in (("allocation", "tab:blue"), ("fan_in", "tab:orange"), ("fan_out", "tab:green"),
                            ("wiring", "tab:red")):
            v = per[col].to_numpy(float)
            v = np.where(np.isfinite(v), v, 0.0)
            bx.barh(range(len(per)), v, left=left, color=colour, label=col, height=0.8)
            left = left + v
        bx.axvline(0, color="k", lw=0.5)
        bx.axvline(1, color="k", lw=0.5, ls=":")
        bx.legend(fontsize=7, loc="lower right")
    bx.set_title("share of the jaccard likeness beyond chance (mean over seeds)", fontsize=8)
    fig.tight_layout()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / FIGURE
    write_output(path, lambda f: fig.savefig(f, dpi=90, format="png"), what="figure")
    plt.close(fig)
    return path


def _family_table(tests: pd.DataFrame) -> pd.DataFrame:
    t = tests[tests["methods"].fillna("") != ""]
    return pd.DataFrame({"setting": t["setting"], "methods": t["methods"], "kind": t["kind"], "level": t["level"],
                         "mean z": t["statistic"], "p": t["p"], "seeds": t["n"],
                         "n_null (least)": t["n_null"]}).reset_index(drop=True)


def render(tables: Mapping[str, pd.DataFrame], ctx: Context) -> list[Block]:
    """The ladder's blocks: what was tested and how, the figure, the tests per family of methods
    and per pair (most alike first), the shares, and what was not tested and why."""
    tests = tables.get("tests", pd.DataFrame())
    if tests.empty:
        return []
    blocks: list[Block] = [("h2", "What tickets share, level by level: the null ladder"), ("p", (
        "Every pair of methods' tickets (replicate 0) is compared, per density and init seed, against nulls that keep "
        "more and more of each ticket: global (uniform random at its density), layer (each layer's density), fan_in "
        "(each unit's fan-in), degrees (each unit's fan-in and fan-out, degree-preserving swaps). One-sided empirical "
        f"p = (1 + #null <= value) / (1 + n_null): {DRAWS} draws per group at the cheap levels; at degrees "
        f"{DEGREE_FIRST}, extended to {DEGREE_DRAWS} where the first stage gives p <= {DEGREE_EXTEND_AT:g}. The init "
        "seed is the unit: the densities of a seed are combined first (Bonferroni), then the seeds (Fisher). z is an "
        "effect size only; q (one Benjamini-Hochberg over every test of the report) is in tables/tests.csv."))]
    path = figure(tables, ctx.figures)
    if path is not None:
        blocks.append(("img", (path, "The null ladder per pair of methods: z against each null, and the shares of "
                                     "the likeness beyond chance")))
    blocks += [("h3", "Families of methods (the pairs within each family tested together)"),
               ("table", _family_table(tests).set_index(["setting", "methods", "kind", "level"]))]
    wide = _pair_matrix(tests)
    if not wide.empty:
        wide.columns = [f"{k} @ {lv}" for k, lv in wide.columns]
        blocks += [("h3", "Per pair: mean z against each null (the 15 most alike by jaccard against the global null; "
                          "all in tables/tests.csv)"), ("table", wide.head(15).round(2))]
    shares = tables.get("ladder_shares")
    if shares is not None and not shares.empty:
        blocks += [("h3", "Shares of the mask overlap beyond chance (jaccard; per family of methods, then per pair)"),
                   ("table", shares.drop(columns=["kind"]).head(20).round(3).set_index(["setting", "family_of_methods",
                                                                                       "pair"]))]
    skipped = tables.get("ladder_skipped")
    if skipped is not None and not skipped.empty:
        blocks += [("h3", "Not tested, and why"), ("ul", [f"{r.what}: {r.reason}" for r in skipped.itertuples()])]
    return blocks


_CLAIMS = {
    ("layer_density", "global"): ("Tickets of {fam} methods share their layer allocation beyond chance (layer_density "
                                  "against uniform random masks at the same density: mean z = {z:.1f})",
                                  "The data do not show that tickets of {fam} methods share their layer allocation "
                                  "beyond chance."),
    ("jaccard", "layer"): ("Beyond layer allocation, tickets of {fam} methods keep the same weights more often than "
                           "chance (jaccard against the layer-shuffled null: mean z = {z:.1f})",
                           "The data do not show that tickets of {fam} methods keep the same weights beyond their "
                           "layer allocation."),
    ("jaccard", "fan_in"): ("Beyond each unit's fan-in, tickets of {fam} methods still share weights (jaccard against "
                            "the fan-in null: mean z = {z:.1f})",
                            "The data do not show that tickets of {fam} methods share weights beyond their units' "
                            "fan-ins."),
    ("jaccard", "degrees"): ("Beyond unit degrees (fan-in and fan-out), tickets of {fam} methods share exact wiring "
                             "(jaccard against the degree-preserving null: mean z = {z:.1f})",
                             "The data do not show that tickets of {fam} methods share exact wiring beyond their "
                             "unit degrees."),
}


def claims(tables: Mapping[str, pd.DataFrame]) -> list[Claim]:
    """Per setting and family of methods: allocation, then weights beyond allocation, beyond fan-in,
    beyond degrees (each on its family test), and the shares of the overlap beyond chance."""
    tests = tables.get("tests", pd.DataFrame())
    if tests.empty:
        return []
    fams = tests[tests["methods"].fillna("") != ""]
    shares = tables.get("ladder_shares", pd.DataFrame())
    many = tests["setting"].nunique() > 1
    out = []
    for r in fams[np.isfinite(fams["p"].to_numpy(float))].itertuples(index=False):
        where = f" on {r.setting}" if many else ""
        base = (10 if r.methods == METHOD_FAMILIES[0] else 30) + (0 if r.setting == tests["setting"].iloc[0] else 40)
        fam = r.methods + where
        if (r.kind, r.level) in _CLAIMS:
            text, absent = _CLAIMS[(r.kind, r.level)]
            out.append(Claim(test=r.test, text=text.format(fam=fam, z=r.statistic), absent=absent.format(fam=fam),
                             figure=FIGURE, priority=base + _ORDER.index((r.kind, r.level))))
        if (r.kind, r.level) != ("jaccard", "global") or shares.empty:
            continue
        row = shares[(shares["setting"] == r.setting) & (shares["family_of_methods"] == r.methods)]
        if not row.empty and np.isfinite(row["allocation"].iloc[0]):
            sh = row.iloc[0]
            out.append(Claim(test=r.test, figure=FIGURE, priority=base + len(_ORDER), text=(
                f"Of the mask overlap of {fam} methods' tickets beyond chance (jaccard), layer allocation explains "
                f"{sh['allocation']:.0%}, unit degrees {sh['unit_degrees']:.0%} and the wiring {sh['wiring']:.0%} "
                f"(mean over pairs and seeds; its test: more alike than uniform random masks)")))
    return sorted(out, key=lambda c: c.priority)


register(Section(name="ladder", title="The null ladder", order=20, compute=compute, render=render, claims=claims))
