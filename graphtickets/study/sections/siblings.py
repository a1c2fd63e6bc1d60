"""Report section ``siblings``: excess over the sibling noise floor, well defined.

Siblings are tickets of one method from the same initial weights with other stochastic seeds
(``replicates: R``); their distance is the noise floor of that method. Per pair of methods,
structural kind and comparison group (density, init seed), the excess over siblings is
``(d - floor) / (null - floor)`` (:func:`graphtickets.analysis.stats.sibling_excess`), here:

* NOT clipped: below 0 the pair is more alike than siblings, above 1 farther than the null;
* the floor is the mean sibling distance of the pair's *stochastic* methods only: a method whose
  siblings have identical masks for every replicate (deterministic given the init: data-free
  magnitude, SynFlow) has a floor of 0 by construction, which would halve its partner's floor;
  a pair of two such methods is reported apart (its value is ``d / null``, no floor at all);
* groups whose null cannot vary (e.g. ``layer_density`` under the layer shuffle: null = value)
  or whose floor reaches the null (no scale) are excluded, and a kind with no usable group is
  named with its reason;
* the init seed is the unit: a pair's groups of one seed (its densities) are averaged first,
  then a Student t interval over seeds (df = seeds - 1);
* per kind, with its family stated; never averaged across families.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from graphtickets.study.alike import identical_sibling_methods, structure_kinds
from graphtickets.study.sections import Block, Context, Section, register
from graphtickets.study.sections._common import family, group_rows, of_setting, pair_name, settings

__all__ = ["excess_rows", "excess_table", "excluded_kinds"]


def excess_rows(dist: pd.DataFrame, siblings: pd.DataFrame) -> pd.DataFrame:
    """Per group row of ``dist`` (structural kinds with nulls): ``a, b, kind, value, null_mean,
    null_std, within_a, within_b, unit`` (the init seed), ready for ``sibling_excess``."""
    d = group_rows(dist)
    if d.empty or siblings is None or siblings.empty or "null_mean" not in d:
        return pd.DataFrame()
    d = d[d["kind"].isin(structure_kinds(d["kind"].unique()))]
    within = siblings.groupby(["group", "method", "kind"])["value"].mean()
    first = [str(a) <= str(b) for a, b in zip(d["a"], d["b"], strict=True)]
    d = d.assign(a=np.where(first, d["a"], d["b"]), b=np.where(first, d["b"], d["a"]))
    wa = [within.get((g, a, k), np.nan) for g, a, k in zip(d["group"], d["a"], d["kind"], strict=True)]
    wb = [within.get((g, b, k), np.nan) for g, b, k in zip(d["group"], d["b"], d["kind"], strict=True)]
    return d.assign(within_a=wa, within_b=wb, unit=d["seed"])[
        ["group", "a", "b", "kind", "value", "null_mean", "null_std", "within_a", "within_b", "unit"]]


def excess_table(dist: pd.DataFrame, siblings: pd.DataFrame) -> pd.DataFrame:
    """Per setting, pair and structural kind: the unclipped excess over siblings with its t interval over seeds.

    Columns: ``dataset, model, pair, a, b, kind, family, excess, low, high, df, units, groups,
    excluded, status, floor_from, sibling_pairs`` (sibling pairs per group and method:
    ``replicates choose 2``) and ``deterministic`` (the pair's methods deterministic given the
    init, measured: identical siblings in every group).
    """
    from graphtickets.analysis.stats import sibling_excess

    cols = ["dataset", "model", "pair", "a", "b", "kind", "family", "excess", "low", "high", "df", "units", "groups",
            "excluded", "status", "floor_from", "sibling_pairs", "deterministic"]
    parts = []
    for st in settings(group_rows(dist)):
        sib = of_setting(siblings, st) if siblings is not None and not siblings.empty else pd.DataFrame()
        rows = excess_rows(of_setting(dist, st), sib)
        if rows.empty:
            continue
        det = identical_sibling_methods(sib)
        ex = sibling_excess(rows, deterministic=det, unit="unit")
        per = sib.drop_duplicates(["group", "method", "a", "b"]).groupby(["group", "method"]).size()
        n_pairs = int(per.max()) if len(per) else 0
        ex = ex.assign(dataset=st[0], model=st[1], pair=[pair_name(a, b) for a, b in zip(ex["a"], ex["b"], strict=True)],
                       family=ex["kind"].map(family), sibling_pairs=n_pairs,
                       deterministic=[", ".join(m for m in (a, b) if m in det) for a, b in zip(ex["a"], ex["b"], strict=True)])
        parts.append(ex)
    if not parts:
        return pd.DataFrame(columns=cols)
    out = pd.concat(parts, ignore_index=True)[cols]
    return out.sort_values(["dataset", "model", "family", "kind", "excess"], kind="stable").reset_index(drop=True)


def excluded_kinds(ex: pd.DataFrame) -> pd.DataFrame:
    """The kinds with no usable group for any pair, with the reason (``dataset, model, kind, family, status, pairs``)."""
    cols = ["dataset", "model", "kind", "family", "status", "pairs"]
    if ex.empty:
        return pd.DataFrame(columns=cols)
    rows = []
    for (ds, mo, k), g in ex.groupby(["dataset", "model", "kind"], sort=False):
        if (g["groups"] == 0).all():
            rows.append({"dataset": ds, "model": mo, "kind": k, "family": family(k),
                         "status": g["status"].value_counts().index[0], "pairs": len(g)})
    return pd.DataFrame(rows, columns=cols)


def compute(ctx: Context) -> dict[str, pd.DataFrame]:
    from graphtickets.study.tabular import sibling_table

    if ctx.store is None:
        return {}
    sib = sibling_table(ctx.store, list(ctx.cells) or None)
    if sib.empty:
        return {}
    ex = excess_table(ctx.distances, sib)
    if ex.empty:
        return {}
    return {"siblings_excess": ex, "siblings_excluded": excluded_kinds(ex)}


def _cell(r: pd.Series) -> str:
    if not np.isfinite(r["excess"]):
        return ""
    if np.isfinite(r["low"]):
        return f"{r['excess']:.2f} [{r['low']:.2f}, {r['high']:.2f}]"
    return f"{r['excess']:.2f} (one seed)"


def render(tables: Mapping[str, pd.DataFrame], ctx: Context) -> list[Block]:
    ex = tables.get("siblings_excess")
    if ex is None or ex.empty:
        return []
    used = ex[ex["groups"] > 0]
    units = int(used["units"].max()) if len(used) else 0
    n_pairs = int(ex["sibling_pairs"].max())
    det = sorted({m for v in ex["deterministic"].fillna("") for m in str(v).split(", ") if m})
    blocks: list[Block] = [("h2", "Excess over siblings: how far apart two methods are, between the sibling floor and the null"), ("p", (
        "Per pair and structural kind, (d - floor) / (null - floor), not clipped (< 0: more alike than two runs of one "
        "method from the same initialization; > 1: farther apart than the layer-shuffled null); floor = mean sibling "
        f"distance of the pair's stochastic methods ({n_pairs} sibling pair{'s' if n_pairs != 1 else ''} per method, "
        "density and init seed); the densities of one init seed are averaged first, then mean and 95% t interval over "
        f"{units} init seed{'s' if units != 1 else ''} (df = seeds - 1). Reported per kind and family, never averaged "
        "across families. Table: `tables/siblings_excess.csv`."))]
    if det:
        blocks.append(("p", f"Deterministic given the init (identical masks for every replicate, measured): {', '.join(det)}; "
                            "their floor is 0 by construction, so it is left out of their partners' floor, and pairs of "
                            "two such methods are shown apart (d / null, no floor)."))
    exc = tables.get("siblings_excluded")
    if exc is not None and not exc.empty:
        blocks.append(("p", "Excluded kinds (no group with a usable scale): " + "; ".join(
            f"{r.kind} ({r.status})" for r in exc.itertuples(index=False)) + "."))
    for label, part in (("measured floor", used[used["status"] == "ok"]),
                        ("pairs of two deterministic methods (d / null)", used[used["status"] == "deterministic"])):
        if part.empty:
            continue
        wide = part.assign(cell=part.apply(_cell, axis=1)).pivot_table(
            index=["family", "kind"], columns="pair", values="cell", aggfunc="first")
        blocks += [("h3", f"Excess over siblings, {label} (mean [95% t interval] over init seeds)"), ("table", wide.fillna(""))]
    return blocks


register(Section(name="siblings", title="Excess over siblings", order=40, compute=compute, render=render))
