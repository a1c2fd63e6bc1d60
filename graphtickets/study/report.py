"""The study report: ``report.md`` and a self-contained ``report.html`` (figures inlined).

The findings are computed from the tables, never written by hand: which methods' tickets are
most alike, whether that likeness exceeds what layer densities alone explain (z-scores and
empirical p-values against symmetric layer-shuffled nulls), and how the tickets of a trained
method with a trajectory (IMP) differ from pruning-at-init tickets. No method is known here by
name: what the report needs of a method it reads from the registry (:mod:`~graphtickets.study.methods`).
"""

from __future__ import annotations

import base64
import html
import logging
import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from graphtickets._io import write_output
from graphtickets.study import across
from graphtickets.study import alike as _alike
from graphtickets.study import sections as _sections
from graphtickets.study.alike import paired_difference
from graphtickets.study.comparisons import null_counts
from graphtickets.study.figures import FIGURES, make_figures
from graphtickets.study.grid import DENSE, model_rows
from graphtickets.study.methods import (
    AT_INIT,
    at_init,
    display_name,
    method_order,
    random_baseline,
    trajectory_trained,
)
from graphtickets.study.sections.sanity import SANITY_LEVEL, sanity_table
from graphtickets.study.tabular import sibling_table

__all__ = ["findings", "write_report", "build_report", "sanity_table", "paired_difference", "SANITY_LEVEL"]

log = logging.getLogger("graphtickets.study")

#: The dense reference's row of the accuracy table.
_DENSE_ROW = f"{DENSE} (d=1)"
_KEY_METRICS = [
    ("layered.effective_fraction", "effective fraction of kept weights (on an input-output path)"),
    ("layered.dead_fraction", "fraction of dead units"),
    ("layered.collapsed_layers", "collapsed layers"),
    ("layered.log10_paths", "log10 input-output paths"),
    ("relational.clustering", "clustering C (relational)"),
    ("relational.path_length", "path length L (relational)"),
    ("bipartite.delta_r", "Ramanujan gap delta_r (mean over layers)"),
]


#: z-scores count as findings only with at least this many nulls (a std from fewer is arbitrary).
MIN_NULLS = 10
#: A method whose accuracy is at most chance + this margin has collapsed.
CHANCE_MARGIN = 0.05
#: Families of distance kinds that carry (nearly) the same information; the "most alike" ranking
#: averages within a family first, so four mask-overlap kinds do not outvote the others.
FAMILIES = {
    "jaccard": "mask overlap", "hamming": "mask overlap", "ged": "mask overlap", "ged_normalized": "mask overlap",
    "aligned_jaccard": "overlap after unit matching", "ged_approx": "overlap after unit matching",
    "layer_density": "layer allocation", "spectral": "spectrum", "netlsd": "spectrum", "degree": "degrees",
}


def _family(kind: str) -> str:
    return FAMILIES.get(kind, kind)


def _pairs(dist: pd.DataFrame) -> pd.DataFrame:
    """Mean distance / z per unordered method pair and kind (same-initialization groups).

    ``z`` is the mean over groups of the well-defined z-scores (finite, from at least
    :data:`MIN_NULLS` nulls); ``p_closer`` the mean empirical p-value.
    """
    d = dist[~model_rows(dist)].copy()
    if d.empty:
        return pd.DataFrame(columns=["pair", "kind", "value", "z", "n"])
    d["pair"] = [" ~ ".join(sorted((a, b))) for a, b in zip(d["a"], d["b"], strict=True)]
    if "z" in d:
        ok = d["z"].notna() & (d["null_n"] >= MIN_NULLS if "null_n" in d else False)
        d["z"] = d["z"].where(ok)
    agg = {"value": ("value", "mean"), "n": ("value", "size")}
    if "z" in d:
        agg["z"] = ("z", "mean")
    if "p_closer" in d:
        agg["p_closer"] = ("p_closer", "mean")
    return d.groupby(["pair", "kind"]).agg(**agg).reset_index()


def _chance(tk: pd.DataFrame) -> float | None:
    """1 / number of classes of the (first) dataset, or None."""
    try:
        from graphtickets import data

        return 1.0 / float(data.info(str(tk["dataset"].iloc[0])).num_classes)
    except Exception:  # noqa: BLE001 - unknown dataset
        return None


def _pai_methods(tk: pd.DataFrame) -> list[str]:
    """The pruning-at-init methods of the table (by their family, not by name)."""
    if "family" in tk:
        return sorted(set(tk.loc[tk["family"] == AT_INIT, "method"]))
    return at_init(tk["method"])


def findings(tk: pd.DataFrame, dist: pd.DataFrame, siblings: pd.DataFrame | None = None) -> dict[str, Any]:
    """The study's findings as tables (and the sentences that rest on a test).

    The per-method facts are tables, not sentences: ``methods`` (:func:`methods_table`: per
    method and density, accuracy and its rank, chance, collapse, the closest method by mask
    overlap), ``alike``, ``imp_vs_pai``, ``functional``; the tested statements are the report
    sections' (:mod:`graphtickets.study.sections`: accuracy intervals, sanity checks, excess over
    siblings, structure -> function, consensus), stated in the Answer by their global q.
    ``siblings`` (:func:`graphtickets.study.tabular.sibling_table`) adds ``floor`` and the
    (clipped, family-averaged) ``excess``/``excess_ranking`` the across-architecture table reads.
    Tickets of sibling replicates (``replicate`` > 0) enter nothing else.

    Returns
    -------
    dict
        ``sentences`` (only those resting on a test; in report order), ``accuracy`` (method x
        density mean table), ``methods``, ``sanity`` (:func:`sanity_table`), ``alike`` (the
        lowest mean-distance pairs per kind), ``consensus`` (mean percentile rank per pair),
        ``null_tests``/``z``, ``functional``, ``structure_function``, ``imp_vs_pai`` with
        ``imp_vs_pai_method``.
    """
    out: dict[str, Any] = {"sentences": []}
    say = out["sentences"].append
    if "replicate" in tk:
        tk = tk[tk["replicate"].fillna(0) == 0]
    if tk.empty:
        say("No cell finished; there is nothing to report yet.")
        return out
    dense = tk[tk["method"] == DENSE]
    every = tk[tk["method"] != DENSE]
    # the methods' own tickets; ablation variants have their own table (sanity checks)
    tk = every[every["variant"].fillna("") == ""] if "variant" in every else every
    if tk.empty:
        say("Only the dense reference finished; there are no tickets to compare yet.")
        return out
    _accuracy_finding(out, tk, every, dense)
    sanity = sanity_table(every)
    if not sanity.empty:
        out["sanity"] = sanity
    fkinds = _alike.function_kinds(dist["kind"].unique()) if "kind" in dist else []
    pairs = _pairs(dist[~dist["kind"].isin(fkinds)] if fkinds else dist)  # structure here; function below
    out["methods"] = methods_table(tk, dist)
    if not pairs.empty:
        _most_alike_finding(out, pairs)
        _sibling_findings(out, dist, siblings)
    if fkinds:
        _functional_findings(out, dist)
    _trained_vs_at_init_finding(out, tk)
    return out


#: What a finding says a sentence with (``out["sentences"].append``).
Say = Callable[[str], None]


def _accuracy_finding(out: dict[str, Any], tk: pd.DataFrame, every: pd.DataFrame, dense: pd.DataFrame) -> None:
    """``out["accuracy"]``: mean test accuracy of every method and variant x density, and the dense row."""
    acc_all = every.pivot_table(index="method", columns="density", values="accuracy", aggfunc="mean")
    acc_all = acc_all.reindex(index=method_order(acc_all.index), columns=sorted(acc_all.columns, reverse=True))
    if not dense.empty and dense["accuracy"].notna().any():
        acc_all.loc[_DENSE_ROW] = float(dense["accuracy"].mean())
    out["accuracy"] = acc_all


def methods_table(tk: pd.DataFrame, dist: pd.DataFrame) -> pd.DataFrame:
    """Per method and density (the methods' own tickets, replicate 0): what the old finding sentences said.

    Columns ``method, density, seeds, accuracy`` (mean over init seeds), ``rank`` (1 = most
    accurate ticket at that density), ``spread`` (max - min over seeds), ``vs_random`` (mean
    accuracy minus the random baseline's), ``at_chance`` (within :data:`CHANCE_MARGIN` of chance),
    ``collapsed_layers`` (mean), ``closest`` (the method at the smallest mean Jaccard distance at
    that density) and ``jaccard``. Descriptive: the tests are the report sections'.
    """
    cols = ["method", "density", "seeds", "accuracy", "rank", "spread", "vs_random", "at_chance", "collapsed_layers",
            "closest", "jaccard"]
    if tk.empty:
        return pd.DataFrame(columns=cols)
    g = tk.groupby(["method", "density"])
    t = pd.DataFrame({"seeds": g["seed"].nunique(), "accuracy": g["accuracy"].mean(),
                      "spread": g["accuracy"].max() - g["accuracy"].min()}).reset_index()
    t["rank"] = t.groupby("density")["accuracy"].rank(ascending=False, method="min")
    rnd = random_baseline()
    base = t[t["method"] == rnd].set_index("density")["accuracy"] if rnd is not None else pd.Series(dtype=float)
    t["vs_random"] = t["accuracy"] - t["density"].map(base)
    chance = _chance(tk)
    t["at_chance"] = t["accuracy"] <= chance + CHANCE_MARGIN if chance is not None else False
    t["collapsed_layers"] = (g["layered.collapsed_layers"].mean().to_numpy() if "layered.collapsed_layers" in tk
                             else np.nan)
    t["closest"], t["jaccard"] = None, np.nan
    j = dist[~model_rows(dist) & (dist["kind"] == "jaccard")] if "kind" in dist and not dist.empty else pd.DataFrame()
    if not j.empty:
        both = pd.concat([j[["density", "a", "b", "value"]],
                          j[["density", "b", "a", "value"]].rename(columns={"a": "b", "b": "a"})], ignore_index=True)
        mean = both.groupby(["density", "a", "b"])["value"].mean().reset_index()
        best = mean.loc[mean.groupby(["density", "a"])["value"].idxmin()].set_index(["a", "density"])
        key = list(zip(t["method"], t["density"], strict=True))
        t["closest"] = [best["b"].get(k) for k in key]
        t["jaccard"] = [best["value"].get(k, np.nan) for k in key]
    order = {m: i for i, m in enumerate(method_order(list(t["method"].unique())))}
    return t[cols].sort_values(["method", "density"], ascending=[True, False], key=lambda c: c.map(order)
                               if c.name == "method" else c).reset_index(drop=True)


def _most_alike_finding(out: dict[str, Any], pairs: pd.DataFrame) -> None:
    """``out["alike"]`` (the 3 closest pairs per kind) and ``out["consensus"]``: the ranking over distance families."""
    alike: dict[str, pd.DataFrame] = {}
    ranks = []
    for kind, g in pairs.groupby("kind"):
        g = g.sort_values("value")
        alike[kind] = g.head(3)
        ranks.append(g.assign(rank=g["value"].rank(pct=True), family=_family(str(kind)))[["pair", "family", "rank"]])
    out["alike"] = alike
    fam = pd.concat(ranks).groupby(["pair", "family"])["rank"].mean()
    out["consensus"] = fam.groupby(level="pair").mean().sort_values()


def _trained_vs_at_init_finding(out: dict[str, Any], tk: pd.DataFrame) -> None:
    """``out["imp_vs_pai"]``: the trained method with a trajectory (IMP; the first in method order when
    several) against the pruning-at-init methods, by accuracy and key metrics (a table)."""
    trained = trajectory_trained(tk["method"])
    pai_methods = _pai_methods(tk)
    if not trained or not pai_methods:
        return
    ref = trained[0]
    out["imp_vs_pai"] = _mean_table(tk[tk["method"] == ref], tk[tk["method"].isin(pai_methods)], ref, list(tk.columns))
    out["imp_vs_pai_method"] = ref


def _mean_table(ref_rows: pd.DataFrame, pai_rows: pd.DataFrame, ref: str, columns: list[str]) -> pd.DataFrame:
    """``quantity, <ref>, pruning at init, difference``: test accuracy and the key metrics, means over all rows."""
    rows = []
    for col, label in [("accuracy", "test accuracy"), *_KEY_METRICS]:
        if col in columns:
            a, b = float(ref_rows[col].mean()), float(pai_rows[col].mean())
            rows.append({"quantity": label, ref: a, "pruning at init": b, "difference": a - b})
    return pd.DataFrame(rows)


def _sibling_findings(out: dict[str, Any], dist: pd.DataFrame, siblings: pd.DataFrame | None) -> None:
    """``out["floor"]`` (the sibling noise floor) and, for the across-architecture table, the clipped
    ``excess`` and its ranking (the report's excess is the ``siblings`` section's, unclipped, per kind)."""
    if siblings is None or siblings.empty:
        return
    out["floor"] = _alike.sibling_floor(siblings)
    ex = _alike.excess_table(dist, siblings)
    if ex.empty or not ex["excess"].notna().any():
        return
    out["excess"] = ex
    fam = ex.dropna(subset=["excess"]).assign(family=ex["kind"].map(_family)).groupby(["pair", "family"])["excess"].mean()
    out["excess_ranking"] = fam.groupby(level="pair").mean().sort_values()


def _functional_findings(out: dict[str, Any], dist: pd.DataFrame) -> None:
    """``out["functional"]`` (what trained tickets compute) and, for the across-architecture table,
    ``structure_function`` (the report's test is the ``structure_function`` section's)."""
    ft = _alike.functional_table(dist)
    if ft.empty:
        return
    out["functional"] = ft
    out["structure_function"] = _alike.structure_function(dist)


# ---------------------------------------------------------------------------- rendering
def _fmt(v: Any) -> str:
    if isinstance(v, (float, np.floating)):
        return "" if not np.isfinite(v) else f"{v:.4g}"
    return str(v)


def _md_table(df: pd.DataFrame, index: bool = True) -> str:
    d = df.reset_index() if index else df
    cols = [str(c) for c in d.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in d.itertuples(index=False)]
    return "\n".join(lines)


def _html_table(df: pd.DataFrame, index: bool = True) -> str:
    d = df.reset_index() if index else df
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in d.columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in row) + "</tr>" for row in d.itertuples(index=False))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def build_report(
    out: Path, tk: pd.DataFrame, dist: pd.DataFrame, figures: dict[str, list[Path]], *, study: Any = None,
    status: dict[str, int] | None = None, config_path: str | None = None, store: Any = None,
    setting_figures: dict[tuple[str, str], dict[str, list[Path]]] | None = None,
    sections: Mapping[str, Mapping[str, pd.DataFrame]] | None = None, tests: pd.DataFrame | None = None,
) -> list[tuple[str, Any]]:
    """The report as a list of blocks ``(kind, payload)``: h1/h2/h3/p/ul/table/img/code.

    With two or more ``(dataset, model)`` settings (architectures) the findings are given per
    setting, each with its own figures (``setting_figures``), after a table of what holds on
    every setting and what on only some (:mod:`graphtickets.study.across`, also written to
    ``tables/architectures.csv``). Sections: title and question, setup (:func:`_setup_lines`),
    findings (:func:`_findings_blocks`, per setting or once), how to reproduce. With ``sections``
    (the tables of :mod:`graphtickets.study.sections`, and their ``tests`` with the global q) the
    report opens with the Answer and each section's blocks follow the findings.
    """
    sib = _study_siblings(store, tk, dist)
    all_tk = tk
    if "replicate" in tk:  # siblings enter the accuracy intervals and the floor only
        tk = tk[tk["replicate"].fillna(0) == 0]
    per = _per_setting(tk, all_tk, dist, sib)
    blocks: list[tuple[str, Any]] = [("h1", f"graphtickets study: {getattr(study, 'name', out.name)}"), ("p", _QUESTION)]
    ctx = _sections.Context(out=out, tickets=all_tk, distances=dist, store=store, study=study)
    section_blocks: list[tuple[str, Any]] = []
    if sections:  # rendered first: the figures they draw are the Answer's summary figure
        tests = tests if tests is not None else _sections.collect_tests(sections)
        section_blocks = _sections.render_all(sections, ctx, tests)
        blocks += _sections.answer_blocks(sections, tests, ctx.figures)
    if study is not None:
        blocks += [("h2", "Setup"), ("ul", _setup_lines(study, status, all_tk))]
    if per:
        blocks += _per_setting_blocks(out, per, setting_figures or {}, store)
    else:
        blocks += _findings_blocks(out, tk, all_tk, dist, findings(tk, dist, sib), figures, store)
    return blocks + section_blocks + _reproduce_blocks(out, config_path)


_QUESTION = ("**Question.** What do sparse networks (lottery tickets) found by different methods on the "
             "same data have in common? Each method finds a ticket of the same initialized network at the "
             "same density; we train every ticket the same way, turn it into graphs (layered, relational, "
             "per-layer bipartite), measure them, and compare tickets pairwise with several distances, "
             "each against null pairs in which both tickets keep every layer's density but have their masks "
             "shuffled within the layer.")


def _study_siblings(store: Any, tk: pd.DataFrame, dist: pd.DataFrame) -> pd.DataFrame | None:
    """The sibling distances of the report's groups and methods (None without a store)."""
    if store is None:
        return None
    sib = sibling_table(store)
    if not sib.empty and not tk.empty:
        sib = sib[sib["group"].isin(set(dist["group"])) | sib["method"].isin(set(tk["method"]))]
    return sib


def _per_setting(tk: pd.DataFrame, all_tk: pd.DataFrame, dist: pd.DataFrame,
                 sib: pd.DataFrame | None) -> dict[str, Any]:
    """label -> (setting, tk, all_tk, dist, findings) of each ``(dataset, model)`` setting; empty with one setting."""
    sets = across.settings(tk)
    if len(sets) <= 1:
        return {}
    many = len({d for d, _ in sets}) > 1
    per: dict[str, Any] = {}
    for st in sets:
        t, d, sb = across.split(tk, dist, sib, st)
        per[across.setting_label(st, many)] = (st, t, across.split(all_tk, dist, None, st)[0], d, findings(t, d, sb))
    return per


def _per_setting_blocks(out: Path, per: dict[str, Any], setting_figures: dict[tuple[str, str], dict[str, list[Path]]],
                        store: Any) -> list[tuple[str, Any]]:
    """What holds across the settings (written to ``tables/architectures.csv`` too), then each setting's findings."""
    stated = {lb: across.statements(v[1], v[4]) for lb, v in per.items()}
    across.write_holds(out, across.holds_table(stated, keep_all=True))
    blocks = across.table_blocks(list(per), stated, across.holds_table(stated))
    for lb, (st, t, at, d, fs) in per.items():
        body = _findings_blocks(out, t, at, d, fs, setting_figures.get(st, {}), store,
                                fig_dir=out / "figures" / across.slug(lb))
        blocks += [("h2", f"Architecture: {lb}")] + [("h3", x) if k == "h2" else (k, x) for k, x in body]
    return blocks


def _setup_lines(study: Any, status: dict[str, int] | None, all_tk: pd.DataFrame) -> list[str]:
    """The setup section: data, models, methods, training, comparison, then what this study adds."""
    tr = study.train
    setup = [
        f"datasets: {', '.join(d.name for d in study.datasets)}",
        f"models: {', '.join(m.label() for m in study.models)}",
        f"methods: {', '.join(m.name for m in study.methods)}",
        f"densities: {', '.join(f'{d:g}' for d in study.densities)}; seeds: {', '.join(map(str, study.seeds))}",
        f"training of every ticket: {tr.epochs} epochs, {tr.optimizer} lr {tr.lr:g}"
        + (f" momentum {tr.momentum:g}" if tr.optimizer == "sgd" else "")
        + f", {tr.schedule or 'constant'} rate, weight decay {tr.weight_decay:g}, "
        f"batch {tr.batch_size}, with the mask enforced, from the ticket's own weights where it carries "
        "them (IMP rewound to iteration k, Elastic with carried weights), else from the model's initial weights",
        "methods that train like the tickets (regime: study): "
        + (", ".join(m.name for m in study.methods if m.regime == "study")
           + "".join(f", {m.name}'s source" for m in study.methods if m.source is not None and m.source.regime == "study")
           or "none"),
        "comparison: every pair of tickets of one density and seed, each distance against the symmetric "
        f"{study.analysis.null_model} null (both tickets randomized); nulls per pair by kind: "
        + ", ".join(f"{k} {n}" for k, n in null_counts(study).items())
        + f" (z is reported only from at least {MIN_NULLS} nulls, and not where the nulls do not vary)",
    ]
    return setup + _setup_options(study, status, all_tk)


def _setup_options(study: Any, status: dict[str, int] | None, all_tk: pd.DataFrame) -> list[str]:
    """The setup lines of what a study may add: dense reference, ablations, cell counts, siblings, compute, model settings."""
    setup = []
    if study.dense_reference:
        setup.append("reference: the dense network (every weight kept), trained the same way once per seed")
    if study.ablations:
        setup.append("sanity checks: for every method's ticket, " + " and ".join(
            {"shuffle": "its masks shuffled within each layer (method+shuffle)",
             "reinit": "its masks on a newly initialized network (method+reinit)"}.get(a, a) for a in study.ablations)
            + ", trained identically")
    if status:
        setup.append("cells: " + ", ".join(f"{v} {k}" for k, v in sorted(status.items())))
    if getattr(study, "replicates", 1) > 1:
        setup.append(f"siblings: {study.replicates} replicates of every method's ticket per density and init seed "
                     "(same initial weights, other seeds for data order, pruning batches and random draws; "
                     "replicate 0 is the ticket compared across methods, the others give the noise floor)")
    if not all_tk.empty:
        setup.append(f"compute: {all_tk['seconds'].sum():.0f} s of cell time in total "
                     f"(search {all_tk['search_seconds'].sum():.0f} s, training {all_tk['train_seconds'].sum():.0f} s)")
    own = [f"{mc.label()}: " + "; ".join(
        ([f"training {', '.join(f'{k} {v}' for k, v in mc.train.items())}"] if mc.train else [])
        + [f"{m}: {'left out' if v is False else v}" for m, v in mc.methods.items()])
        for mc in study.models if mc.train or mc.methods]
    if own:
        setup.append("settings of a model's own (over the study's): " + " | ".join(own))
    return setup


def _reproduce_blocks(out: Path, config_path: str | None) -> list[tuple[str, Any]]:
    """The commands that rerun the study and rebuild the report, and where the tables and tickets are."""
    cfg = config_path if config_path is not None else "CONFIG.yaml"
    run_cmd = " ".join(x for x in ("graphtickets run", cfg, "--out", str(out)) if x)
    return [
        ("h2", "Reproduce"),
        ("code", f"{run_cmd}\n{run_cmd} --workers 2   # on a Dask LocalCluster\n"
                 f"graphtickets report {out}   # rebuild this report from the store"),
        ("p", "Tables: `tables/tickets.csv` (one row per cell: accuracy, cost, every metric) and "
              "`tables/distances.csv` (pairwise distances with null z-scores; `tables/siblings.csv`: the distances "
              "between sibling replicates); tickets: `tickets/<cell id>.safetensors`."),
    ]


def _findings_blocks(out: Path, tk: pd.DataFrame, all_tk: pd.DataFrame, dist: pd.DataFrame, f: dict[str, Any],
                     figures: dict[str, list[Path]], store: Any, fig_dir: Path | None = None) -> list[tuple[str, Any]]:
    """The report's findings, tables and figures (``tk``: replicate 0; ``all_tk``: with siblings).

    ``fig_dir``: where the figures made here go (default ``out/figures``). One function per
    part, in report order; the accuracy intervals, sanity checks, excess over siblings, structure
    -> function, consensus and effective masks are report sections (computed in the analysis stage).
    """
    blocks: list[tuple[str, Any]] = [("h2", "Findings")]
    if f["sentences"]:
        blocks.append(("ul", f["sentences"]))
    blocks += _methods_blocks(f)
    blocks += _test_blocks(f)
    blocks += _alike_blocks(f, dist)
    blocks += _sibling_blocks(f)
    blocks += _function_blocks(f)
    blocks += _cost_blocks(tk)
    return blocks + _figure_blocks(figures)


def _methods_blocks(f: dict[str, Any]) -> list[tuple[str, Any]]:
    """The per-method table (what the finding sentences said; descriptive, no test)."""
    m = f.get("methods")
    if m is None or m.empty:
        return []
    return [("h3", "Per method and density (replicate 0, mean over init seeds; descriptive: the tested statements "
                   "are in the Answer and the sections below; rank 1 = most accurate; closest: the method at the "
                   "smallest mean Jaccard distance)"), ("table", m.set_index(["method", "density"]))]


def _test_blocks(f: dict[str, Any]) -> list[tuple[str, Any]]:
    """The trained method vs pruning at init (the sanity checks are the section ``sanity``, the tests
    against nulls the null ladder's section: :mod:`graphtickets.study.sections.ladder`)."""
    blocks: list[tuple[str, Any]] = []
    if "imp_vs_pai" in f:
        blocks += [("h2", f"{display_name(f['imp_vs_pai_method'])} vs pruning at init"),
                   ("table", f["imp_vs_pai"].set_index("quantity"))]
    return blocks


def _alike_blocks(f: dict[str, Any], dist: pd.DataFrame) -> list[tuple[str, Any]]:
    """The most alike pairs per kind, with t intervals over init seeds where there are several."""
    if "alike" not in f:
        return []
    rows = pd.concat([g.assign(kind=k) for k, g in f["alike"].items()])[
        ["kind", "pair", "value"] + (["z"] if "z" in next(iter(f["alike"].values())) else [])]
    dci = _alike.distance_ci(dist)
    if not dci.empty and (dci["seeds"] > 1).any():
        rows = rows.merge(dci[["pair", "kind", "low", "high"]].rename(columns={"low": "ci_low", "high": "ci_high"}),
                          on=["pair", "kind"], how="left")
    return [("h2", "Most alike pairs per distance kind (mean over densities and seeds; ci: 95% Student t interval "
                   "over init seeds, df = seeds - 1, densities averaged within the seed first)"),
            ("table", rows.set_index("kind"))]


def _sibling_blocks(f: dict[str, Any]) -> list[tuple[str, Any]]:
    """The sibling noise floor (the excess over it: section ``siblings``)."""
    if "floor" not in f:
        return []
    return [("h2", "Sibling noise floor: distance between tickets of one method from the same initial weights "
                   "with other stochastic seeds (mean over densities, seeds and sibling pairs; identical: "
                   "sibling pairs with the very same masks)"), ("table", f["floor"].set_index(["method", "kind"]))]


def _function_blocks(f: dict[str, Any]) -> list[tuple[str, Any]]:
    """What the trained tickets compute (whether structure predicts it: section ``structure_function``)."""
    if "functional" not in f:
        return []
    return [("h2", "What trained tickets compute: functional distances (mean over densities and seeds; "
                   "agreement = fraction of test inputs predicted differently, agreement_kappa = 1 - Cohen's "
                   "kappa, error_consistency = 1 - Geirhos' kappa of the errors, cka = 1 - linear CKA of the "
                   "hidden representations)"), ("table", f["functional"])]


def _cost_blocks(tk: pd.DataFrame) -> list[tuple[str, Any]]:
    """The mean cost of finding a ticket, per method (its own tickets, no dense reference)."""
    if tk.empty:
        return []
    own = tk[(tk["method"] != DENSE) & (tk["variant"].fillna("") == "" if "variant" in tk else True)]
    cost = own.groupby("method")[["search_seconds", "search_epochs", "train_seconds"]].mean()
    return [("h2", "Cost of finding a ticket (mean per cell)"), ("table", cost.reindex(method_order(cost.index)))]


def _figure_blocks(figures: dict[str, list[Path]]) -> list[tuple[str, Any]]:
    """Every PNG figure made, in :data:`~graphtickets.study.figures.FIGURES` order, with its caption."""
    blocks: list[tuple[str, Any]] = [("h2", "Figures")]
    for key, caption in FIGURES.items():
        for p in figures.get(key, []):
            if p.suffix == ".png":
                blocks.append(("img", (p, f"{caption} ({p.stem})")))
    return blocks


def _render_md(blocks: Sequence[tuple[str, Any]], out: Path) -> str:
    parts = []
    for kind, x in blocks:
        if kind in ("h1", "h2", "h3"):
            parts.append(f"{'#' * int(kind[1])} {x}")
        elif kind == "p":
            parts.append(x)
        elif kind == "ul":
            parts.append("\n".join(f"- {s}" for s in x))
        elif kind == "table":
            parts.append(_md_table(x))
        elif kind == "img":
            p, cap = x
            parts.append(f"![{cap}]({p.relative_to(out).as_posix()})\n\n*{cap}*")
        elif kind == "code":
            parts.append(f"```\n{x}\n```")
    return "\n\n".join(parts) + "\n"


def _inline(text: str) -> str:
    s = html.escape(text)
    s = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", s)
    s = re.sub(r"\[([^\]]+)\]\(([^)\s]+)\)", r'<a href="\2">\1</a>', s)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", s)


def _render_html(blocks: Sequence[tuple[str, Any]], title: str) -> str:
    parts = []
    for kind, x in blocks:
        if kind in ("h1", "h2", "h3"):
            parts.append(f"<{kind}>{html.escape(x)}</{kind}>")
        elif kind == "p":
            parts.append(f"<p>{_inline(x)}</p>")
        elif kind == "ul":
            parts.append("<ul>" + "".join(f"<li>{_inline(s)}</li>" for s in x) + "</ul>")
        elif kind == "table":
            parts.append(_html_table(x))
        elif kind == "img":
            p, cap = x
            data = base64.b64encode(Path(p).read_bytes()).decode()
            parts.append(f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(cap)}">'
                         f"<figcaption>{html.escape(cap)}</figcaption></figure>")
        elif kind == "code":
            parts.append(f"<pre><code>{html.escape(x)}</code></pre>")
    style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;line-height:1.45}"
             "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;font-size:90%}"
             "img{max-width:100%}figcaption{font-style:italic;color:#444}pre{background:#f4f4f4;padding:1em}")
    return (f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body>\n" + "\n".join(parts) + "\n</body></html>\n")


def write_report(
    out: str | os.PathLike[str], tk: pd.DataFrame, dist: pd.DataFrame, *, study: Any = None, store: Any = None,
    config_path: str | None = None, sections: Mapping[str, Mapping[str, pd.DataFrame]] | None = None,
    tests: pd.DataFrame | None = None,
) -> tuple[Path, Path]:
    """Figures, ``report.md`` and ``report.html`` in ``out``; returns the two report paths.

    ``sections``/``tests``: what :func:`graphtickets.study.sections.compute_all` and
    :func:`~graphtickets.study.sections.write_tables` gave (the report reads them, never computes them).
    """
    out = Path(out)
    results: dict[str, Any] = {}
    status = None
    if store is not None:
        cells = store.cells(set(tk["id"]) if not tk.empty else set())
        results = dict(zip(cells["id"], cells["results"], strict=True))
        status = store.status()
        if config_path is None:
            config_path = (store.get_meta("commands") or {}).get("config")
    own = tk[tk["replicate"].fillna(0) == 0] if "replicate" in tk else tk  # siblings: their own tables
    sets = across.settings(own)
    if len(sets) > 1:  # one set of figures per architecture, in figures/<model>/
        many = len({d for d, _ in sets}) > 1
        by = {st: make_figures(*across.split(own, dist, None, st)[:2], results,
                               out / "figures" / across.slug(across.setting_label(st, many))) for st in sets}
        blocks = build_report(out, tk, dist, {}, study=study, status=status, config_path=config_path, store=store,
                              setting_figures=by, sections=sections, tests=tests)
    else:
        figs = make_figures(own, dist, results, out / "figures")
        blocks = build_report(out, tk, dist, figs, study=study, status=status, config_path=config_path, store=store,
                              sections=sections, tests=tests)
    md, page = out / "report.md", out / "report.html"
    for path, text in ((md, _render_md(blocks, out)), (page, _render_html(blocks, f"graphtickets study {getattr(study, 'name', '')}"))):
        write_output(path, text, what="report")
    log.info("report: %s, %s", md, page)
    return md, page
