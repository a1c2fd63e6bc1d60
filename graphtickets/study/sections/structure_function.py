"""Report section ``structure_function``: does a structural distance predict a functional one?

Per setting, for each structural family's representative kind and each functional family's
(:data:`~graphtickets.study.sections._common.FAMILIES`: one test per question, not one per
near-duplicate kind), the statistic is the MEAN over comparison groups (density, init seed) of
the within-group Spearman rho between the two distances over the methods' pairs
(:func:`graphtickets.analysis.correlation.joint_mantel`): ranks are never pooled across groups, so
differences between densities cannot make a correlation. The p-value permutes the method labels
with ONE permutation across all groups (the same methods recur in every group, so their pairs are
not exchangeable group by group; independent per-group permutations are anti-conservative):
exact over all ``n!`` relabellings for up to 6 methods (floor ``1 / n!``), else
``(1 + r) / (1 + permutations)``. The unit is the method label; ``n`` the number of methods.
The tests go into the report's tests table (one Benjamini-Hochberg over the whole report).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from graphtickets.errors import GraphticketsError
from graphtickets.study.alike import function_kinds, pair_table, structure_kinds
from graphtickets.study.sections import FDR, Block, Claim, Context, Section, register
from graphtickets.study.sections._common import (
    family,
    group_rows,
    of_setting,
    q_of,
    representatives,
    settings,
    tests_frame,
)

__all__ = ["group_matrices", "structure_function_tests", "PERMUTATIONS"]

#: Random joint permutations when ``n!`` exceeds it (else every relabelling is enumerated).
PERMUTATIONS = 999


def group_matrices(wide: pd.DataFrame, kind: str) -> dict[str, pd.DataFrame]:
    """group -> the symmetric matrix of ``kind`` labelled by method (groups with a NaN pair left out)."""
    out = {}
    for grp, g in wide[kind].groupby(level="group", sort=False):
        names = sorted({*map(str, g.index.get_level_values("a")), *map(str, g.index.get_level_values("b"))})
        pos = {n: i for i, n in enumerate(names)}
        m = np.full((len(names), len(names)), np.nan)
        np.fill_diagonal(m, 0.0)
        for (_, a, b), v in g.items():
            m[pos[str(a)], pos[str(b)]] = m[pos[str(b)], pos[str(a)]] = v
        if np.all(np.isfinite(m)):
            out[str(grp)] = pd.DataFrame(m, index=names, columns=names)
    return out


def structure_function_tests(dist: pd.DataFrame, *, prefix: str = "", permutations: int = PERMUTATIONS,
                             seed: int = 0, kinds: Sequence[str] | None = None) -> pd.DataFrame:
    """The tests of one setting's distances: one per (structural family, functional family).

    ``kinds``: the structural kinds to represent the families (default: the registry's structural
    kinds in the table, the first of each family). Returns a tests table with ``structure,
    function, groups, permutations, exact``.
    """
    from graphtickets.analysis.correlation import joint_mantel

    extra = ["structure", "function", "groups", "permutations", "exact"]
    wide = pair_table(group_rows(dist))
    if wide.empty:
        return tests_frame([], extra)
    sk = list(representatives(kinds if kinds is not None else structure_kinds(wide.columns)).values())
    fk = list(representatives(function_kinds(wide.columns)).values())
    mats = {k: group_matrices(wide, k) for k in [*sk, *fk] if k in wide}
    rows = []
    for s in (k for k in sk if k in mats):
        for f in (k for k in fk if k in mats):
            both = [g for g in mats[s] if g in mats[f]]
            a, b = [mats[s][g] for g in both], [mats[f][g] for g in both]
            try:
                r = joint_mantel(a, b, permutations=permutations, seed=seed) if a else None
            except GraphticketsError:
                r = None
            rows.append({"test": f"{prefix}{s} ~ {f}", "question": f"does the {family(s)} distance ({s}) between tickets "
                         f"predict their {family(f)} distance ({f})?", "family": "structure -> function",
                         "statistic": r.statistic if r else np.nan, "p": r.pvalue if r else np.nan,
                         "unit": f"method labels (one permutation across {len(a)} groups)", "n": r.n if r else 0,
                         "structure": s, "function": f, "groups": len(a), "permutations": r.permutations if r else 0,
                         "exact": bool(r.exact) if r else False})
    return tests_frame(rows, extra)


def compute(ctx: Context) -> dict[str, pd.DataFrame]:
    d = group_rows(ctx.distances)
    if d.empty or not function_kinds(d["kind"].unique()):
        return {}
    sets = settings(d)
    parts = []
    for st in sets:
        t = structure_function_tests(of_setting(d, st), prefix=f"{st[0]}/{st[1]}: " if len(sets) > 1 else "")
        parts.append(t.assign(dataset=st[0], model=st[1]))
    tests = pd.concat(parts, ignore_index=True) if parts else tests_frame([])
    return {"tests": tests} if not tests.empty else {}


def render(tables: Mapping[str, pd.DataFrame], ctx: Context) -> list[Block]:
    from graphtickets.study.alike import structure_function_figure

    t = tables.get("tests")
    if t is None or t.empty:
        return []
    q = q_of(tables)
    shown = t.assign(q=[q.get(str(x), np.nan) for x in t["test"]]).rename(columns={"statistic": "rho", "n": "methods"})
    exact = shown[shown["exact"]]
    floor = f"; with {int(exact['methods'].max())} methods every relabelling is enumerated (smallest p = 1/{int(exact['permutations'].max())})" if len(exact) else ""
    blocks: list[Block] = [("h2", "Does structure predict function?"), ("p", (
        "Per structural family (its representative kind) and functional family: the mean over comparison groups "
        "(density, init seed) of the within-group Spearman rho between the two distances over the methods' pairs; "
        "p from one permutation of the method labels shared by every group (the same methods recur in every group)"
        f"{floor}. These are tests of the report: q is its one Benjamini-Hochberg correction (`tables/tests.csv`); "
        f"{int((shown['q'] <= FDR).sum())} of {int(shown['p'].notna().sum())} hold at FDR {FDR:g}."))]
    cols = ["structure", "function", "rho", "p", "q", "methods", "groups"]
    if len(settings(shown)) > 1:
        cols = ["dataset", "model", *cols]
    blocks.append(("table", shown[cols].set_index(cols[: cols.index("function") + 1])))
    if len(settings(shown)) == 1 and not ctx.distances.empty:
        sf = shown.rename(columns={"rho": "rho"})[["structure", "function", "rho", "q"]]
        for p in structure_function_figure(ctx.distances, ctx.figures, sf):
            blocks.append(("img", (p, "Structure vs function: every functional distance against every structural one, "
                                      "one dot per pair of tickets")))
    return blocks


def claims(tables: Mapping[str, pd.DataFrame]) -> list[Claim]:
    t = tables.get("tests")
    if t is None or t.empty or not t["p"].notna().any():
        return []
    best = t.loc[t["p"].idxmin()]
    out = []
    for r in t.itertuples(index=False):
        if not np.isfinite(r.p):
            continue
        sign = "closer" if r.statistic > 0 else "farther"
        absent = ("The data do not show that a structural distance between tickets predicts how alike they compute "
                  f"(best: {best['structure']} vs {best['function']}, mean within-group rho = {best['statistic']:.2f})."
                  if r.test == best["test"] else None)
        out.append(Claim(test=r.test, priority=30, absent=absent, figure="structure_function.png",
                         text=f"Tickets {sign} by {r.structure} are {sign} in {family(r.function)} ({r.function}): mean "
                              f"within-group Spearman rho = {r.statistic:.2f} over {r.groups} groups, one permutation "
                              f"of the {r.n} method labels across groups"))
    return out


register(Section(name="structure_function", title="Structure and function", order=50, compute=compute, render=render,
                 claims=claims))
