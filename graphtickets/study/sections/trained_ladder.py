"""The trained ladder: which part of a ticket's advantage over its layer-shuffled variant each level keeps.

Every method's ticket (replicate 0) is trained beside its ablation variants
(:data:`graphtickets.pruning.ablations.ABLATIONS`, the study's ``ablations``), each from the same
initial weights and data order: ``shuffle`` keeps each layer's density, ``in_degree`` also every
unit's fan-in, ``rewire`` every unit's fan-in and fan-out, ``reinit`` the mask itself on new
weights. Per method, density and level the gap ``acc(ticket) - acc(variant)`` is paired by init
seed; ``kept`` is the share of the ticket's advantage over its layer-shuffled variant that the
level keeps, ``1 - gap(level) / gap(shuffle)`` (of the mean gaps; 1 = the level carries the whole
advantage, 0 = none of it), given only where that advantage is beyond the seed spread (its 95 %
t-interval above 0; NaN otherwise: a ratio of a gap to a noise-sized advantage means nothing). Tests (the init seed is the unit): per method and level, the gap
averaged over the densities within each seed, a two-sided t test of mean 0 over seeds (df = seeds
- 1); per level, the same over every method's mean gap within each seed.

References
----------
.. [1] J. Frankle, G. K. Dziugaite, D. Roy, M. Carbin, "Pruning Neural Networks at
   Initialization: Why are We Missing the Mark?", ICLR 2021.
.. [2] S. Maslov, K. Sneppen, "Specificity and stability in topology of protein networks",
   Science 296, 2002.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from graphtickets.pruning.ablations import ABLATIONS
from graphtickets.study import sections
from graphtickets.study.sections import Block, Claim, Context, Section
from graphtickets.study.sections._share import (
    fmt_p,
    ordered_methods,
    own_tickets,
    seed_t_test,
    settings,
    tests_table,
)

#: The ladder's levels in order (what each keeps grows), then reinit.
LEVELS = ("shuffle", "in_degree", "rewire", "reinit")
FIGURE = "trained_ladder.png"


def _paired(own: pd.DataFrame, var: pd.DataFrame) -> pd.DataFrame:
    """Per method, density, level and seed: ``ticket``, ``variant`` accuracy and ``gap``."""
    base = own[["base_method", "density", "seed", "accuracy"]].rename(columns={"accuracy": "ticket"})
    v = var[["base_method", "density", "seed", "variant", "accuracy"]].rename(columns={"accuracy": "variant_accuracy"})
    pairs = v.merge(base, on=["base_method", "density", "seed"], how="inner")
    pairs = pairs[np.isfinite(pairs["ticket"].astype(float)) & np.isfinite(pairs["variant_accuracy"].astype(float))]
    return pairs.assign(gap=pairs["ticket"] - pairs["variant_accuracy"]).rename(columns={"base_method": "method",
                                                                                          "variant": "level"})


def _table(pairs: pd.DataFrame, prefix: str) -> list[dict[str, Any]]:
    rows = []
    for (m, d, lv), g in pairs.groupby(["method", "density", "level"], sort=False):
        t = seed_t_test(g["gap"].to_numpy(float))
        rows.append({"setting": prefix.rstrip(":"), "method": m, "density": d, "level": lv,
                     "label": ABLATIONS[lv].label if lv in ABLATIONS else lv, "keeps": ABLATIONS[lv].keeps if lv in ABLATIONS else "",
                     "n": t["n"], "ticket": float(g["ticket"].mean()), "variant_accuracy": float(g["variant_accuracy"].mean()),
                     "gap": t["estimate"], "gap_low": t["low"], "gap_high": t["high"], "df": t["df"]})  # fmt: skip
    out = pd.DataFrame(rows)
    if out.empty:
        return rows
    shuf = out[out["level"] == "shuffle"].set_index(["method", "density"])
    idx = out.set_index(["method", "density"]).index
    a = idx.map(lambda k: shuf["gap"].get(k, np.nan)).to_numpy(float)
    beats = idx.map(lambda k: shuf["gap_low"].get(k, np.nan)).to_numpy(float) > 0  # advantage beyond the seed spread
    out["advantage"] = a
    with np.errstate(invalid="ignore", divide="ignore"):
        out["kept"] = np.where(beats, 1.0 - out["gap"].to_numpy(float) / np.where(beats, a, 1.0), np.nan)
    order = {m: i for i, m in enumerate(ordered_methods(out["method"]))}
    out = out.assign(_m=out["method"].map(order), _l=out["level"].map({lv: i for i, lv in enumerate(LEVELS)}))
    return out.sort_values(["_m", "_l", "density"], ascending=[True, True, False]).drop(columns=["_m", "_l"]).to_dict("records")


def _tests(pairs: pd.DataFrame, prefix: str) -> list[dict[str, Any]]:
    rows = []
    per_seed = pairs.groupby(["method", "level", "seed"], sort=False)["gap"].mean().reset_index()  # densities within seed
    for (m, lv), g in per_seed.groupby(["method", "level"], sort=False):
        t = seed_t_test(g["gap"].to_numpy(float))
        label = ABLATIONS[lv].label if lv in ABLATIONS else lv
        rows.append({"test": f"{prefix}{m}:{lv}", "question": f"does {m}'s ticket train to another accuracy than its {label} variant?",
                     "family": f"trained ladder: ticket - {label}", "statistic": t["estimate"], "p": t["p"], "unit": "init seed",
                     "n": t["n"], "low": t["low"], "high": t["high"], "df": t["df"], "method": m, "level": lv})  # fmt: skip
    every = per_seed.groupby(["level", "seed"], sort=False)["gap"].mean().reset_index()
    for lv, g in every.groupby("level", sort=False):
        t = seed_t_test(g["gap"].to_numpy(float))
        label = ABLATIONS[lv].label if lv in ABLATIONS else lv
        rows.append({"test": f"{prefix}all:{lv}", "question": f"do tickets (mean over methods) train to another accuracy than their {label} variants?",
                     "family": f"trained ladder: ticket - {label}", "statistic": t["estimate"], "p": t["p"], "unit": "init seed",
                     "n": t["n"], "low": t["low"], "high": t["high"], "df": t["df"], "method": "all", "level": lv})  # fmt: skip
    return rows


def compute(ctx: Context) -> dict[str, pd.DataFrame]:
    """Tables ``trained_ladder`` (per method, density, level) and ``tests``; nothing without variants."""
    tk = ctx.tickets
    if tk is None or tk.empty or "variant" not in tk:
        return {}
    own = own_tickets(tk)
    var = tk[tk["variant"].fillna("") != ""]
    if "replicate" in var:
        var = var[var["replicate"].fillna(0) == 0]
    if own.empty or var.empty or "shuffle" not in set(var["variant"]):
        return {}
    table, tests = [], []
    for prefix, g in settings(own):
        keys = g[["dataset", "model"]].drop_duplicates() if {"dataset", "model"} <= set(g) else None
        v = var.merge(keys, on=["dataset", "model"]) if keys is not None else var
        pairs = _paired(g, v[v["variant"].isin(LEVELS)])
        pairs = pairs.assign(level=pd.Categorical(pairs["level"], LEVELS, ordered=True)).sort_values(["level"])
        pairs["level"] = pairs["level"].astype(str)
        table += _table(pairs, prefix)
        tests += _tests(pairs, prefix)
    return {"trained_ladder": pd.DataFrame(table), "tests": tests_table(tests)}


def _figure(table: pd.DataFrame, ctx: Context) -> str | None:
    from graphtickets.study.figures import _plt, _save

    if table.empty:
        return None
    plt = _plt()
    densities = sorted(table["density"].unique(), reverse=True)
    methods = ordered_methods(table["method"])
    levels = [lv for lv in LEVELS if lv in set(table["level"])]
    names = list(dict.fromkeys(table["setting"].fillna("").astype(str))) if "setting" in table else [""]
    fig, axes = plt.subplots(len(names), len(densities), squeeze=False, sharey=True,
                             figsize=(max(5.0, 0.7 * len(methods)) * len(densities) / 1.3, 3.8 * len(names)))
    width = 0.8 / len(levels)
    for (i, name), (j, d) in itertools.product(enumerate(names), enumerate(densities)):
        ax = axes[i][j]
        sub = table[(table["density"] == d) & ((table["setting"].fillna("").astype(str) == name) if "setting" in table else True)]
        for k, lv in enumerate(levels):
            s = sub[sub["level"] == lv].set_index("method").reindex(methods)
            x = np.arange(len(methods)) + (k - (len(levels) - 1) / 2) * width
            err = np.vstack([s["gap"] - s["gap_low"], s["gap_high"] - s["gap"]])
            err = np.where(np.isfinite(err), err, 0.0)
            ax.bar(x, s["gap"], width, yerr=err, capsize=2, label=ABLATIONS[lv].label if lv in ABLATIONS else lv)
        ax.axhline(0.0, color="grey", lw=0.8)
        ax.set_xticks(np.arange(len(methods)), methods, rotation=45, ha="right")
        ax.set_title(f"{name + ', ' if name else ''}density {d:g}", fontsize=9)
    axes[0][0].set_ylabel("acc(ticket) - acc(variant)")
    axes[0][-1].legend(fontsize=7)
    fig.suptitle("Trained ladder: the ticket's accuracy gap over each ablation (mean, 95% t-interval over seeds)")
    _save(fig, ctx.figures, FIGURE.removesuffix(".png"))
    return FIGURE


def render(tables: Mapping[str, pd.DataFrame], ctx: Context) -> list[Block]:
    table = tables.get("trained_ladder", pd.DataFrame())
    tests = tables.get("tests", pd.DataFrame())
    blocks: list[Block] = [("h2", "Trained ladder: what part of a ticket's advantage each level keeps"),
                           ("p", "Each method's ticket is trained beside its variants (same initial weights, same data "
                                 "order): layer-shuffled (layer densities kept), fan-in kept, degree-preserving rewired "
                                 "(fan-in and fan-out kept), re-initialized (the mask on new weights), those the study "
                                 "lists. gap = acc(ticket) - acc(variant), paired by init seed, with its 95% t-interval "
                                 "(df = seeds - 1); kept = 1 - gap(level) / gap(layer-shuffled), the share of the "
                                 "ticket's advantage over its layer-shuffled variant that the level keeps (only where "
                                 "that advantage's interval is above 0). Tests: the "
                                 "gap averaged over densities within each seed, t test over seeds (`tables/tests.csv`).")]  # fmt: skip
    fig = _figure(table, ctx)
    if fig:
        blocks.append(("img", (ctx.figures / fig, "Trained ladder: accuracy gap of each method's ticket over its variants")))
    if not table.empty:
        show = table[["method", "density", "label", "n", "ticket", "variant_accuracy", "gap", "gap_low", "gap_high", "df", "kept"]]
        blocks.append(("table", show.round(4)))
    every = tests[tests["method"] == "all"] if "method" in tests else pd.DataFrame()
    if not every.empty:
        blocks.append(("ul", [f"mean over methods, ticket - {r.family.split(' - ')[-1]}: {r.statistic:+.4f} "
                              f"[{r.low:+.4f}, {r.high:+.4f}] (t, df = {r.df}, p = {fmt_p(r.p)}, {r.n} seeds)"
                              for r in every.itertuples(index=False)]))  # fmt: skip
    return blocks


def claims(tables: Mapping[str, pd.DataFrame]) -> list[Claim]:
    tests = tables.get("tests", pd.DataFrame())
    out = []
    for r in tests.itertuples(index=False) if "method" in tests else []:
        if r.method != "all" or r.level not in ("shuffle", "in_degree", "rewire"):
            continue
        label = ABLATIONS[r.level].label
        keeps = ABLATIONS[r.level].keeps
        word = "beat" if r.statistic > 0 else "fall behind"
        out.append(Claim(test=r.test, figure=FIGURE, priority={"shuffle": 20, "in_degree": 21, "rewire": 22}[r.level],
                         text=f"Trained alike, tickets {word} their {label} variants (which keep {keeps}): "
                              f"accuracy gap {r.statistic:+.3f} [{r.low:+.3f}, {r.high:+.3f}] (mean over methods and "
                              f"densities, t over {r.n} init seeds, df = {r.df})",
                         absent=f"The data do not show tickets training to another accuracy than their {label} "
                                f"variants (which keep {keeps}; mean gap {r.statistic:+.3f} over methods, densities "
                                f"and {r.n} init seeds)."))  # fmt: skip
    return out


sections.register(Section(name="trained_ladder", title="Trained ladder", order=30, compute=compute, render=render,
                          claims=claims))
