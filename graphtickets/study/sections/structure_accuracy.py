"""Does structure predict accuracy beyond density? Partial rank correlations, the seed as the unit.

For every structural metric of the tickets table (``bipartite.*``, ``layered.*``, ``relational.*``;
not those the layer densities set by construction: edge counts and densities, node counts, mean
degrees, and the estimators' bookkeeping columns) and every (density, init seed) group of the
methods' own tickets (replicate 0): Spearman's partial correlation of the metric with trained
accuracy once the layer densities are regressed out
(:func:`graphtickets.analysis.correlation.partial_correlation`; ranks, ``df = methods - 2 -
layers``). Within density groups only, so that between-density differences cannot make a
correlation. The init seed is the unit: per seed the mean partial rho over its densities, then a
two-sided t test of mean 0 over seeds (df = seeds - 1). With one seed and one density the
group's own t reference on ``df`` is used (unit: ticket); otherwise one seed is not tested.

References
----------
.. [1] E. Cunegatti et al., "Understanding Sparse Neural Networks from their Topology via
   Multipartite Graph Representations", TMLR 2024.
.. [2] M. G. Kendall, "Partial rank correlation", Biometrika 32, 1942.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from graphtickets.analysis.correlation import partial_correlation
from graphtickets.study import sections
from graphtickets.study.sections import Block, Claim, Context, Section
from graphtickets.study.sections._share import (
    fmt_p,
    layer_columns,
    own_tickets,
    seed_t_test,
    settings,
    tests_table,
)

#: Graph prefixes of the tickets table's structural metrics.
GRAPHS = ("bipartite.", "layered.", "relational.")
#: Metrics set by the layer densities (or bookkeeping): not tested.
SET_BY_DENSITY = re.compile(r"(n_edges|edge_density|weight_density|n_nodes|degree_mean|_n_sources|_stderr|_exact|"
                            r"effective_density)$|weight_density/")  # fmt: skip


def structural_metrics(tk: pd.DataFrame) -> list[str]:
    """The tickets table's structural metric columns that vary and are not set by density."""
    out = []
    for c in tk.columns:
        if not c.startswith(GRAPHS) or SET_BY_DENSITY.search(c):
            continue
        v = pd.to_numeric(tk[c], errors="coerce")
        if v.notna().sum() >= 3 and v.nunique() > 1:
            out.append(c)
    return out


def _groups(g: pd.DataFrame, metrics: list[str], covs: list[str], prefix: str) -> list[dict[str, Any]]:
    rows = []
    for (d, s), gg in g.groupby(["density", "seed"], sort=False):
        z = gg[covs].to_numpy(np.float64) if covs else None
        for m in metrics:
            r = partial_correlation(pd.to_numeric(gg[m], errors="coerce"), gg["accuracy"].astype(float), z)
            rows.append({"setting": prefix.rstrip(":"), "metric": m, "density": d, "seed": s, "rho": r.statistic,
                         "p_group": r.pvalue, "df": r.df, "n": r.n})  # fmt: skip
    return rows


def _tests(groups: pd.DataFrame, prefix: str) -> list[dict[str, Any]]:
    rows = []
    for m, g in groups.groupby("metric", sort=False):
        per_seed = g.groupby("seed")["rho"].mean()
        t = seed_t_test(per_seed.to_numpy(float))
        unit, n, p, df = "init seed", t["n"], t["p"], t["df"]
        if t["n"] == 1 and len(g) == 1:  # one seed, one density: the group's own test
            unit, n, p, df = "ticket", int(g["n"].iloc[0]), float(g["p_group"].iloc[0]), int(g["df"].iloc[0])
        rows.append({"test": f"{prefix}{m}", "question": f"does {m} predict trained accuracy once the layer densities "
                     "are accounted for?", "family": "structure -> accuracy beyond density", "statistic": t["estimate"],
                     "p": p, "unit": unit, "n": n, "low": t["low"], "high": t["high"], "df": df, "metric": m,
                     "group_df": int(g["df"].min())})  # fmt: skip
    return rows


def compute(ctx: Context) -> dict[str, pd.DataFrame]:
    """Tables ``structure_accuracy`` (per metric, density and seed: the partial rho) and ``tests``."""
    own = own_tickets(ctx.tickets)
    if own.empty or "accuracy" not in own:
        return {}
    groups, tests = [], []
    for prefix, g in settings(own):
        g = g[np.isfinite(g["accuracy"].astype(float))]
        metrics, covs = structural_metrics(g), [c for c in layer_columns(g) if g[c].notna().all()]
        if not metrics or g.empty:
            continue
        rows = pd.DataFrame(_groups(g, metrics, covs, prefix))
        groups.append(rows)
        tests += _tests(rows, prefix)
    if not groups:
        return {}
    return {"structure_accuracy": pd.concat(groups, ignore_index=True), "tests": tests_table(tests)}


def render(tables: Mapping[str, pd.DataFrame], ctx: Context) -> list[Block]:
    tests = tables.get("tests", pd.DataFrame())
    blocks: list[Block] = [
        ("h2", "Does structure predict accuracy beyond density?"),
        ("p", "Spearman's partial correlation of each structural metric with trained accuracy, the layer densities "
              "regressed out, within each density and init seed (over the methods' tickets; df = methods - 2 - "
              "layers); per seed the mean over densities, then a t test over seeds. Metrics the layer densities set "
              "by construction (edge counts, densities, mean degree) are left out. All rows: "
              "`tables/structure_accuracy.csv`; the tests (BH over the whole report): `tables/tests.csv`."),
    ]  # fmt: skip
    if not tests.empty:
        show = tests.assign(_a=tests["p"].fillna(2.0)).sort_values("_a")
        show = show[["metric", "statistic", "low", "high", "df", "n", "unit", "p", "group_df"]].rename(
            columns={"statistic": "mean partial rho"})
        blocks.append(("table", show.round(4)))
    return blocks


def claims(tables: Mapping[str, pd.DataFrame]) -> list[Claim]:
    tests = tables.get("tests", pd.DataFrame())
    if tests.empty or not tests["p"].notna().any():
        return []
    best = tests.assign(_a=tests["p"].fillna(2.0)).sort_values("_a").head(2)
    out = []
    for i, r in enumerate(best.itertuples(index=False)):
        out.append(Claim(test=r.test, priority=40 + i,
                         text=f"{r.metric} predicts trained accuracy beyond the layer densities: mean partial "
                              f"Spearman rho {r.statistic:+.2f} within density groups ({r.n} {r.unit}s, p = {fmt_p(r.p)})",
                         absent=None if i else "The data do not show any structural metric predicting trained accuracy "
                                               f"once the layer densities are accounted for (strongest: {r.metric}, "
                                               f"mean partial rho {r.statistic:+.2f}, {r.n} {r.unit}s)."))  # fmt: skip
    return out


sections.register(Section(name="structure_accuracy", title="Structure vs accuracy beyond density", order=55,
                          compute=compute, render=render, claims=claims))
