"""Report section ``consensus``: do the methods keep the same weights, beyond independent masks?

Per setting, density and init seed, the methods' own tickets (replicate 0) are counted weight by
weight (:func:`graphtickets.analysis.consensus`): the *majority core* (weights kept by more than
half of the methods) and the *all core* (kept by every method), against independent
layer-shuffled masks -- the exact expectation and :data:`SAMPLES` sampled nulls for the spread.
The nulls of one init seed are drawn jointly over its densities (draw ``i`` shuffles each
method's masks at every density with the same permutation, so nested masks stay nested), and
the test is :func:`graphtickets.analysis.inference.joint_null_test`: within the seed first (the
mean pool-standardized core size over densities), then over seeds, against the same statistic of
each joint draw -- exactly valid; one-sided (the question is whether the methods agree MORE than
independent masks), floor ``1 / (1 + SAMPLES)`` = 0.002; about 3.5 s per group of 15 tickets of the
default MLP (~20 s for the default study's 6 groups). One test per setting
(the majority core) goes into the report's tests table; the all core is shown with its null
mean and sd. Computed in the analysis stage (the report only reads the tables).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import pandas as pd

from graphtickets.study.sections import Block, Claim, Context, Section, register
from graphtickets.study.sections._common import of_setting, own_tickets, q_of, settings, tests_frame

__all__ = ["consensus_rows", "consensus_tests", "SAMPLES"]

#: Sampled null draws per (density, init seed).
SAMPLES = 499


def _groups(tk: pd.DataFrame, store: Any) -> Iterator[tuple[tuple[float, int], dict[str, Any]]]:
    from graphtickets.study.alike import _method_tickets

    yield from _method_tickets(tk, store)


def consensus_rows(tickets: Mapping[str, Any], *, density: float, seed: int, samples: int = SAMPLES
                   ) -> tuple[dict[str, Any], np.ndarray, pd.DataFrame, pd.DataFrame]:
    """One group's consensus: its row (cores, expectations, null mean and sd), the null majority-core
    sizes (``samples``), the histogram (``j, observed, expected, null_mean, null_sd``) and the layers."""
    from graphtickets.analysis import consensus

    c = consensus(dict(tickets), samples=samples, seed=int(seed))
    n = c.n_tickets
    k = n // 2 + 1
    h = c.null_histograms.astype(float)
    null_k, null_all = h[:, k:].sum(axis=1), h[:, n]
    row = {"density": float(density), "seed": int(seed), "tickets": n, "k": k, "core_k": c.core(k),
           "expected_k": c.expected_core(k), "null_mean_k": float(null_k.mean()), "null_sd_k": float(null_k.std(ddof=1)),
           "all": c.core(n), "expected_all": c.expected_core(n), "null_mean_all": float(null_all.mean()),
           "null_sd_all": float(null_all.std(ddof=1)), "samples": int(h.shape[0])}
    hist = pd.DataFrame({"density": float(density), "seed": int(seed), "j": np.arange(n + 1),
                         "observed": np.asarray(c.histogram, dtype=float), "expected": np.asarray(c.expected, dtype=float),
                         "null_mean": h.mean(axis=0), "null_sd": h.std(axis=0, ddof=1)})
    units = c.units(k)
    lay = units[units["side"] == "out"].groupby("layer", sort=False)[["core_weights", "expected"]].sum()
    lay = lay.rename(columns={"core_weights": "core_k", "expected": "expected_k"}).reset_index()
    return row, null_k, hist, lay.assign(density=float(density), seed=int(seed))


def consensus_tests(cores: pd.DataFrame, nulls: Mapping[tuple[float, int], np.ndarray], prefix: str = "") -> pd.DataFrame:
    """The majority-core test of one setting: init seeds as units, densities combined within the seed.

    ``cores``: rows of :func:`consensus_rows` (``density, seed, core_k``); ``nulls``: ``(density,
    seed) -> null core sizes`` (joint draws: draw ``i`` of every density of a seed from one stream).
    ``statistic``: the mean over seeds of the mean standardized core size (> 0: more weights kept
    by a majority than under independent masks); ``p`` one-sided (larger than the draws).
    """
    from graphtickets.analysis.inference import joint_null_test

    extra = ["seeds", "densities", "samples"]
    if cores.empty:
        return tests_frame([], extra)
    units = []
    for _, g in cores.groupby("seed", sort=True):
        g = g.sort_values("density")
        units.append((g["core_k"].to_numpy(float), np.stack([nulls[(float(r.density), int(r.seed))]
                                                             for r in g.itertuples(index=False)])))
    r = joint_null_test(units)
    row = {"test": f"{prefix}majority core", "question": "do more weights stay in a majority of the methods' tickets "
           "than if each method's masks were independent and layer-shuffled?", "family": "consensus",
           "statistic": r.effect, "p": r.test.p_farther, "unit": "init seed (joint null draws over its densities)",
           "n": len(units), "seeds": len(units), "densities": int(cores["density"].nunique()),
           "samples": int(r.test.draws)}
    return tests_frame([row], extra)


def compute(ctx: Context) -> dict[str, pd.DataFrame]:
    if ctx.store is None or ctx.tickets.empty:
        return {}
    own = own_tickets(ctx.tickets)
    sets = settings(own)
    cores, hists, layers, tests = [], [], [], []
    for st in sets:
        rows, nulls = [], {}
        for (d, s), tickets in _groups(of_setting(own, st), ctx.store):
            row, null_k, hist, lay = consensus_rows(tickets, density=float(d), seed=int(s))
            rows.append(row)
            nulls[(float(d), int(s))] = null_k
            hists.append(hist.assign(dataset=st[0], model=st[1]))
            layers.append(lay.assign(dataset=st[0], model=st[1]))
        if not rows:
            continue
        c = pd.DataFrame(rows)
        cores.append(c.assign(dataset=st[0], model=st[1]))
        tests.append(consensus_tests(c, nulls, prefix=f"{st[0]}/{st[1]}: " if len(sets) > 1 else "")
                     .assign(dataset=st[0], model=st[1]))
    if not cores:
        return {}
    front = ["dataset", "model"]
    cat = [pd.concat(x, ignore_index=True) for x in (cores, hists, layers)]
    cat = [t[[*front, *[c for c in t.columns if c not in front]]] for t in cat]
    return {"consensus_cores": cat[0], "consensus_histogram": cat[1], "consensus_layers": cat[2],
            "tests": pd.concat(tests, ignore_index=True)}


def _figure(hist: pd.DataFrame, ctx: Context) -> list[Block]:
    from graphtickets.study.alike import consensus_figure

    hs = {(float(d), int(s)): (g["observed"].to_numpy(), g["expected"].to_numpy())
          for (d, s), g in hist.groupby(["density", "seed"])}
    return [("img", (p, "Consensus: how many weights exactly j methods keep, observed vs expected"))
            for p in consensus_figure(hs, ctx.figures)]


def render(tables: Mapping[str, pd.DataFrame], ctx: Context) -> list[Block]:
    cores = tables.get("consensus_cores")
    if cores is None or cores.empty:
        return []
    q = q_of(tables)
    t = tables["tests"]
    said = "; ".join(f"{r.test}: mean standardized majority core {r.statistic:+.2f} over {r.seeds} init seeds, "
                     f"p = {r.p:.3g}, q = {q.get(str(r.test), float('nan')):.3g}" for r in t.itertuples(index=False))
    shown = cores.assign(majority=[f"{r.core_k:.0f} (null {r.null_mean_k:.1f} ± {r.null_sd_k:.1f}; exact {r.expected_k:.1f})"
                                   for r in cores.itertuples(index=False)],
                         all_methods=[f"{r.all:.0f} (null {r.null_mean_all:.2f} ± {r.null_sd_all:.2f}; exact {r.expected_all:.2f})"
                                      for r in cores.itertuples(index=False)])
    cols = ["density", "seed", "tickets", "k", "majority", "all_methods"]
    if len(settings(cores)) > 1:
        cols = ["dataset", "model", *cols]
    blocks: list[Block] = [
        ("h2", "Consensus across methods: weights kept by a majority and by all of the methods"),
        ("p", f"Per density and init seed, against independent layer-shuffled masks: the exact expectation and "
              f"{int(cores['samples'].max())} sampled nulls (mean ± sd), drawn jointly over the densities of a seed. "
              f"Test (a test of the report, q from its one correction): {said}. Tables: `tables/consensus_cores.csv`, "
              "`tables/consensus_layers.csv`, `tables/consensus_histogram.csv`."),
        ("table", shown[cols].set_index(cols[: cols.index("seed") + 1])),
    ]
    lay = tables.get("consensus_layers")
    if lay is not None and not lay.empty:
        by = lay.groupby([*(["dataset", "model"] if len(settings(lay)) > 1 else []), "density", "layer"],
                         sort=False)[["core_k", "expected_k"]].mean()
        blocks += [("h3", "Where the majority core sits, per layer (mean over init seeds)"), ("table", by)]
    hist = tables.get("consensus_histogram")
    if hist is not None and not hist.empty and len(settings(hist)) == 1:
        blocks += _figure(hist, ctx)
    return blocks


def claims(tables: Mapping[str, pd.DataFrame]) -> list[Claim]:
    t = tables.get("tests")
    if t is None or t.empty:
        return []
    out = []
    for r in t.itertuples(index=False):
        where = r.test.split(": ")[0] + ": " if ": " in r.test else ""
        word = "more" if r.statistic > 0 else "fewer"
        out.append(Claim(test=r.test, priority=20, figure="consensus.png",
                         text=f"{where}A majority of the methods keep {word} of the same weights than independent "
                              f"layer-shuffled masks would (mean standardized majority core {r.statistic:+.2f}, "
                              f"{r.seeds} init seeds, {r.samples} joint null draws)",
                         absent=f"{where}The data do not show the methods keeping the same weights beyond what "
                                "independent layer-shuffled masks give."))
    return out


register(Section(name="consensus", title="Consensus across methods", order=60, compute=compute, render=render,
                 claims=claims))
