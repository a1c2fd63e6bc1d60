"""Report section ``sanity``: each method's ticket against its ablation variants, as tests of the report.

A sanity check asks whether a method's ticket trains better than its variant (the masks shuffled
within each layer, re-initialized, ...), trained identically; ticket and variant share the init
seed and the data order, so they are paired by seed and the seed is the unit (a paired t-test
over seeds, :func:`graphtickets.study.alike.paired_difference`). One test per method, density and
variant goes into the report's tests table, so the verdict ("beats", "is WORSE") is read from the
report's one Benjamini-Hochberg correction over all its tests, never from an uncorrected interval.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from graphtickets.study.alike import paired_difference
from graphtickets.study.methods import method_order
from graphtickets.study.sections import FDR, Block, Claim, Context, Section, register
from graphtickets.study.sections._common import first_replicate, q_of, settings, tests_frame

__all__ = ["sanity_table", "sanity_tests", "verdict", "SANITY_LEVEL", "VARIANT_NAMES"]

#: Confidence level of the (per-check, uncorrected) intervals shown beside the corrected verdicts.
SANITY_LEVEL = 0.95
#: How a variant is named in sentences.
VARIANT_NAMES = {"shuffle": "layer-shuffled", "reinit": "re-initialized", "in_degree": "fan-in-preserving",
                 "rewire": "degree-preserving rewired"}


def sanity_table(tk: pd.DataFrame) -> pd.DataFrame:
    """Per method, density and ablation: the ticket's accuracy against its variant's, paired by seed.

    Columns: ``method, density, variant, n`` (paired seeds), ``ticket``, ``variant_accuracy``
    (means), ``difference`` (mean of ticket - variant), ``ci_low, ci_high`` (the
    :data:`SANITY_LEVEL` paired t-interval, not corrected), ``p`` (two-sided paired t-test) and
    ``verdict`` of the interval alone: ``beats`` (above 0), ``worse`` (below 0), ``no clear
    difference`` or ``one seed`` (no test). The report states :func:`verdict` (from the global q).
    """
    cols = ["method", "density", "variant", "n", "ticket", "variant_accuracy", "difference", "ci_low", "ci_high", "p",
            "verdict"]
    if "variant" not in tk or not (tk["variant"].fillna("") != "").any():
        return pd.DataFrame(columns=cols)
    own = tk[tk["variant"].fillna("") == ""]
    rows = []
    for (m, d, v), g in tk[tk["variant"].fillna("") != ""].groupby(["base_method", "density", "variant"]):
        base = own[(own["method"] == m) & (own["density"] == d)].groupby("seed")["accuracy"].mean()
        var = g.groupby("seed")["accuracy"].mean()
        seeds = sorted(set(base.index) & set(var.index))
        r = paired_difference(base.reindex(seeds).to_numpy(), var.reindex(seeds).to_numpy(), level=SANITY_LEVEL)
        word = ("one seed" if r["n"] < 2 else "beats" if r["low"] > 0 else "worse" if r["high"] < 0
                else "no clear difference")
        rows.append({"method": m, "density": d, "variant": v, "n": r["n"], "ticket": float(base.reindex(seeds).mean()),
                     "variant_accuracy": float(var.reindex(seeds).mean()), "difference": r["mean"],
                     "ci_low": r["low"], "ci_high": r["high"], "p": r["p"], "verdict": word})
    out = pd.DataFrame(rows, columns=cols)
    order = {m: i for i, m in enumerate(method_order(list(out["method"])))}
    return out.sort_values(["method", "variant", "density"], key=lambda c: c.map(order) if c.name == "method"
                           else (-c if c.name == "density" else c)).reset_index(drop=True)


def _test_id(prefix: str, r: Any) -> str:
    return f"{prefix}{r.method} vs {r.variant} d={r.density:g}"


def sanity_tests(table: pd.DataFrame, prefix: str = "") -> pd.DataFrame:
    """The report's tests of a :func:`sanity_table`: one per row with two or more paired seeds.

    ``statistic`` the mean paired difference (ticket - variant, test accuracy), ``p`` the
    two-sided paired t p-value, unit the init seed; ``prefix`` names the setting in the test id.
    """
    rows = []
    for r in table.itertuples(index=False):
        if r.n < 2:
            continue
        v = VARIANT_NAMES.get(str(r.variant), str(r.variant))
        rows.append({"test": _test_id(prefix, r), "question": f"does {r.method}'s ticket train to another test accuracy "
                     f"than its {v} variant at d={r.density:g}?", "family": f"sanity check vs {r.variant}",
                     "statistic": r.difference, "p": r.p, "unit": "init seed (paired t-test)", "n": int(r.n),
                     "method": r.method, "variant": r.variant, "density": r.density})
    return tests_frame(rows, extra=["method", "variant", "density"])


def verdict(difference: float, q: float, n: int) -> str:
    """``beats`` / ``is WORSE`` when the test holds after the report's correction (``q <= FDR``), else no verdict."""
    if n < 2:
        return "one seed: no test"
    if not np.isfinite(q):
        return "not adjusted"
    if q > FDR:
        return "no difference shown"
    return "beats its variant" if difference > 0 else "is WORSE than its variant"


def compute(ctx: Context) -> dict[str, pd.DataFrame]:
    tk = first_replicate(ctx.tickets)
    sets = settings(tk)
    parts, tests = [], []
    for st in sets:
        sub = tk[(tk["dataset"].astype(str) == st[0]) & (tk["model"].astype(str) == st[1])]
        t = sanity_table(sub)
        if t.empty:
            continue
        prefix = f"{st[0]}/{st[1]}: " if len(sets) > 1 else ""
        parts.append(t.assign(dataset=st[0], model=st[1]))
        tests.append(sanity_tests(t, prefix))
    if not parts:
        return {}
    table = pd.concat(parts, ignore_index=True)
    return {"sanity": table[["dataset", "model", *[c for c in table.columns if c not in ("dataset", "model")]]],
            "tests": pd.concat(tests, ignore_index=True) if tests else tests_frame([])}


def _prefix(tables: Mapping[str, pd.DataFrame], r: Any) -> str:
    return f"{r.dataset}/{r.model}: " if len(settings(tables["sanity"])) > 1 else ""


def render(tables: Mapping[str, pd.DataFrame], ctx: Context) -> list[Block]:
    t = tables.get("sanity")
    if t is None or t.empty:
        return []
    q = q_of(tables)
    shown = t.assign(q=[q.get(_test_id(_prefix(tables, r), r), np.nan) for r in t.itertuples(index=False)])
    shown = shown.assign(verdict=[verdict(r.difference, r.q, r.n) for r in shown.itertuples(index=False)])
    held = shown[shown["q"] <= FDR]
    tested = int((shown["n"] >= 2).sum())
    text = (f"Each method's ticket against its ablation variants (trained identically, paired by init seed: a paired "
            f"t-test over seeds, the seed the unit). These {tested} tests are tests of the report: their q is the "
            f"report's one Benjamini-Hochberg correction over all its tests (`tables/tests.csv`), and a verdict is "
            f"stated only where q <= {FDR:g} ({len(held)} of {tested}); the {SANITY_LEVEL:.0%} intervals beside them "
            "are per check and not corrected. Table: `tables/sanity.csv`.")
    cols = ["method", "density", "variant", "n", "ticket", "variant_accuracy", "difference", "ci_low", "ci_high", "p",
            "q", "verdict"]
    if len(settings(t)) > 1:
        cols = ["dataset", "model", *cols]
    return [("h2", "Sanity checks: each ticket against its ablation variants"), ("p", text),
            ("table", shown[cols].set_index(cols[: cols.index("variant") + 1]))]


def claims(tables: Mapping[str, pd.DataFrame]) -> list[Claim]:
    t = tables.get("tests")
    if t is None or t.empty:
        return []
    out = []
    for r in t.itertuples(index=False):
        v = VARIANT_NAMES.get(str(r.variant), str(r.variant))
        word = "beats" if r.statistic > 0 else "is WORSE than"
        where = r.test.split(": ")[0] + ": " if ": " in r.test else ""
        out.append(Claim(test=r.test, priority=60,
                         text=f"{where}{r.method}'s ticket {word} its {v} variant at d={r.density:g} "
                              f"({r.statistic:+.3f} test accuracy, paired t-test over {r.n} init seeds)"))
    return out


register(Section(name="sanity", title="Sanity checks", order=20, compute=compute, render=render, claims=claims))
