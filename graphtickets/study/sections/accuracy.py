"""Report section ``accuracy``: test accuracy per method and density, the init seed as the unit.

Every row is replicate 0 of its cell (siblings enter only the sibling floor), the same rows in
every accuracy table of the report. Per method (ablation variants and the dense reference
included) and density: the mean over init seeds with its Student t interval (df = seeds - 1,
:func:`graphtickets.analysis.inference.t_interval`); with fewer than :data:`MIN_SEEDS_FOR_CI`
seeds the values themselves instead of an interval (a percentile bootstrap over 3 values is
their [min, max] and covers ~75 % at "95 %").

The power table states the smallest difference between two methods' accuracies that a paired
t-test over the study's seeds detects with power :data:`POWER` at level :data:`ALPHA`
(two-sided, before the report's multiple-testing correction): ``delta * sd``, ``delta`` the
standardized effect solved from the noncentral t distribution (df = seeds - 1) and ``sd`` the
pooled standard deviation over seeds of the paired difference between two methods at one
density, measured on the study's own tickets.

References
----------
J. Cohen, "Statistical Power Analysis for the Behavioral Sciences", 2nd ed., 1988 (ch. 2, the
noncentral t for the paired test).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from graphtickets.study.grid import DENSE
from graphtickets.study.methods import method_order
from graphtickets.study.sections import Block, Context, Section, register
from graphtickets.study.sections._common import first_replicate, of_setting, settings

__all__ = ["accuracy_table", "power_table", "smallest_effect", "MIN_SEEDS_FOR_CI", "ALPHA", "POWER", "CONFIDENCE"]

#: Fewer init seeds than this: the values themselves, no interval.
MIN_SEEDS_FOR_CI = 3
#: Level of the accuracy intervals.
CONFIDENCE = 0.95
#: Level and power of the power statement.
ALPHA, POWER = 0.05, 0.8


def accuracy_table(tk: pd.DataFrame, *, confidence: float = CONFIDENCE) -> pd.DataFrame:
    """Per setting, method (variants and dense included) and density: mean over init seeds and its t interval.

    Returns
    -------
    DataFrame
        ``dataset, model, method, density, seeds, mean, low, high, df, values`` (``values``: the
        per-seed accuracies, ``;``-separated, in seed order); ``low``/``high`` NaN with fewer than
        :data:`MIN_SEEDS_FOR_CI` seeds. The dense reference has density 1.
    """
    from graphtickets.analysis.inference import t_interval

    cols = ["dataset", "model", "method", "density", "seeds", "mean", "low", "high", "df", "values"]
    t = first_replicate(tk)
    if t.empty or "accuracy" not in t:
        return pd.DataFrame(columns=cols)
    t = t.assign(density=np.where(t["method"] == DENSE, 1.0, t["density"].astype(float)))
    per_seed = t.groupby([*("dataset", "model"), "method", "density", "seed"], sort=False)["accuracy"].mean()
    rows = []
    for (ds, mo, m, d), g in per_seed.groupby(level=[0, 1, 2, 3], sort=False):
        g = g.dropna().sort_index(level="seed")
        ci = t_interval(g.to_numpy(), confidence=confidence)
        few = ci.n < MIN_SEEDS_FOR_CI
        rows.append({"dataset": ds, "model": mo, "method": m, "density": float(d), "seeds": ci.n, "mean": ci.estimate,
                     "low": np.nan if few else ci.low, "high": np.nan if few else ci.high, "df": ci.df,
                     "values": "; ".join(f"{v:.4f}" for v in ci.values)})
    out = pd.DataFrame(rows, columns=cols)
    order = {m: i for i, m in enumerate([*method_order([m for m in out["method"].unique() if m != DENSE]), DENSE])}
    return out.sort_values(["dataset", "model", "method", "density"], ascending=[True, True, True, False],
                           key=lambda c: c.map(order) if c.name == "method" else c, kind="stable").reset_index(drop=True)


def smallest_effect(seeds: int, *, alpha: float = ALPHA, power: float = POWER) -> float:
    """The standardized effect (mean / sd of the paired difference) a two-sided paired t-test over
    ``seeds`` units detects with ``power`` at level ``alpha``; NaN with fewer than 2 seeds.

    Examples
    --------
    >>> round(smallest_effect(3), 2), round(smallest_effect(10), 2)
    (3.26, 1.0)
    """
    from scipy import optimize
    from scipy import stats as sps

    n = int(seeds)
    if n < 2:
        return float("nan")
    df = n - 1
    crit = float(sps.t.ppf(1 - alpha / 2, df))

    def gap(delta: float) -> float:
        nc = delta * np.sqrt(n)
        up, down = float(sps.nct.sf(crit, df, nc)), float(sps.nct.cdf(-crit, df, nc))
        return (1.0 if not np.isfinite(up) else up) + (0.0 if not np.isfinite(down) else down) - power  # far tails

    return float(optimize.brentq(gap, 1e-6, 50.0))


def _paired_sd(t: pd.DataFrame) -> tuple[float, int]:
    """Pooled sd over seeds of the paired difference of two methods' accuracies (same density and seed)."""
    var, n = [], 0
    for _, g in t.groupby("density"):
        wide = g.pivot_table(index="seed", columns="method", values="accuracy", aggfunc="mean")
        for a, b in itertools.combinations(wide.columns, 2):
            d = (wide[a] - wide[b]).dropna()
            if len(d) >= 2:
                var.append(float(d.var(ddof=1)))
                n += 1
    return (float(np.sqrt(np.mean(var))) if var else float("nan")), n


def power_table(tk: pd.DataFrame, *, alpha: float = ALPHA, power: float = POWER) -> pd.DataFrame:
    """Per setting: the smallest difference in test accuracy between two methods the seeds can detect.

    Columns ``dataset, model, seeds, df, alpha, power, effect_sd`` (standardized,
    :func:`smallest_effect`), ``sd_paired`` (pooled sd of a paired difference between two
    methods' accuracies; ``comparisons`` pairs of methods and densities it pools) and
    ``smallest_difference`` (``effect_sd * sd_paired``).
    """
    from graphtickets.study.sections._common import own_tickets

    cols = ["dataset", "model", "seeds", "df", "alpha", "power", "effect_sd", "sd_paired", "comparisons",
            "smallest_difference"]
    own = own_tickets(tk)
    rows = []
    for st in settings(own):
        t = of_setting(own, st)
        n = int(t["seed"].nunique())
        sd, k = _paired_sd(t)
        eff = smallest_effect(n, alpha=alpha, power=power)
        rows.append({"dataset": st[0], "model": st[1], "seeds": n, "df": n - 1, "alpha": alpha, "power": power,
                     "effect_sd": eff, "sd_paired": sd, "comparisons": k, "smallest_difference": eff * sd})
    return pd.DataFrame(rows, columns=cols)


def compute(ctx: Context) -> dict[str, pd.DataFrame]:
    acc = accuracy_table(ctx.tickets)
    if acc.empty:
        return {}
    return {"accuracy": acc, "accuracy_power": power_table(ctx.tickets)}


def _cell(r: Any) -> str:
    if not np.isfinite(r.mean):
        return ""
    if np.isfinite(r.low):
        return f"{r.mean:.3f} [{r.low:.3f}, {r.high:.3f}]"
    return f"{r.mean:.3f} (values: {r.values})" if r.seeds > 1 else f"{r.mean:.3f} (one seed)"


def render(tables: Mapping[str, pd.DataFrame], ctx: Context) -> list[Block]:
    acc = tables.get("accuracy")
    if acc is None or acc.empty:
        return []
    many = len(settings(acc)) > 1
    n = int(acc["seeds"].max())
    blocks: list[Block] = [("h2", "Test accuracy per method and density"), ("p", (
        "Replicate 0 of every cell (the same rows in every accuracy table; sibling replicates enter only the "
        f"sibling floor); the init seed is the unit: mean over {n} init seed{'s' if n != 1 else ''} with its "
        f"{CONFIDENCE:.0%} Student t interval (df = seeds - 1 = {max(n - 1, 0)})"
        + (f"; with fewer than {MIN_SEEDS_FOR_CI} seeds the values themselves, no interval" if n < MIN_SEEDS_FOR_CI
           else "") + ". The dense row is the unpruned network (d=1). Table: `tables/accuracy.csv`."))]
    for st in settings(acc):
        a = of_setting(acc, st)
        wide = a.assign(cell=[_cell(r) for r in a.itertuples(index=False)]).pivot_table(
            index="method", columns="density", values="cell", aggfunc="first", sort=False)
        wide = wide.reindex(columns=sorted(wide.columns, reverse=True)).rename(columns=lambda c: f"d={c:g}")
        if many:
            blocks.append(("h3", f"{st[0]} / {st[1]}"))
        blocks.append(("table", wide.fillna("")))
    blocks += _power_blocks(tables.get("accuracy_power"))
    return blocks


def _power_blocks(pw: pd.DataFrame | None) -> list[Block]:
    if pw is None or pw.empty:
        return []
    parts = []
    for r in pw.itertuples(index=False):
        where = f"{r.dataset}/{r.model}: " if len(pw) > 1 else ""
        if not np.isfinite(r.smallest_difference):
            parts.append(f"{where}with {r.seeds} init seed{'s' if r.seeds != 1 else ''} no paired test between "
                         "methods is possible (at least 2 seeds, better 5 or more)")
            continue
        parts.append(f"{where}with {r.seeds} init seeds (df = {r.df}) a paired t-test detects with power "
                     f"{r.power:.0%} at level {r.alpha:g} (two-sided, before the report's correction) a difference of "
                     f"{r.effect_sd:.2f} sd of a paired difference, i.e. {r.smallest_difference:.3f} in test accuracy "
                     f"(pooled sd {r.sd_paired:.3f} over {r.comparisons} method pairs and densities); smaller "
                     "differences between methods are not claimed")
    return [("p", "Power: " + "; ".join(parts) + ". Table: `tables/accuracy_power.csv`.")]


register(Section(name="accuracy", title="Test accuracy", order=10, compute=compute, render=render))
