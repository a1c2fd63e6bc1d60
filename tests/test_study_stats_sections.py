"""The statistics sections (accuracy, sanity, siblings, structure_function, consensus) against hand computations."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from graphtickets import Ticket
from graphtickets.analysis.correlation import joint_mantel
from graphtickets.study import sections
from graphtickets.study.sections import Context
from graphtickets.study.sections import accuracy as sec_acc
from graphtickets.study.sections import consensus as sec_cons
from graphtickets.study.sections import sanity as sec_sanity
from graphtickets.study.sections import siblings as sec_sib
from graphtickets.study.sections import structure_function as sec_sf


def _tk(rows: list[tuple[str, float, int, int, float]]) -> pd.DataFrame:
    return pd.DataFrame([{"dataset": "ds", "model": "mlp", "method": m, "base_method": m.split("+")[0],
                          "variant": m.split("+")[1] if "+" in m else "", "density": d, "seed": s, "replicate": r,
                          "accuracy": a} for m, d, s, r, a in rows])


def test_accuracy_table_is_replicate_zero_with_a_t_interval_or_the_values() -> None:
    tk = _tk([("a", 0.2, 0, 0, 0.6), ("a", 0.2, 1, 0, 0.7), ("a", 0.2, 2, 0, 0.8), ("a", 0.2, 0, 1, 0.1),
              ("b", 0.2, 0, 0, 0.5), ("b", 0.2, 1, 0, 0.55), ("dense", np.nan, 0, 0, 0.9)])
    t = sec_acc.accuracy_table(tk).set_index("method")
    lo, hi = stats.t.interval(0.95, 2, loc=0.7, scale=stats.sem([0.6, 0.7, 0.8]))
    assert t.loc["a", "mean"] == pytest.approx(0.7) and t.loc["a", "seeds"] == 3  # the sibling (0.1) left out
    assert (t.loc["a", "low"], t.loc["a", "high"]) == pytest.approx((lo, hi)) and t.loc["a", "df"] == 2
    assert np.isnan(t.loc["b", "low"]) and t.loc["b", "values"] == "0.5000; 0.5500"  # 2 seeds: the values
    assert t.loc["dense", "density"] == 1.0
    pw = sec_acc.power_table(tk).iloc[0]
    d = np.array([0.6, 0.7]) - np.array([0.5, 0.55])  # a - b on the seeds both have
    assert pw["sd_paired"] == pytest.approx(d.std(ddof=1)) and pw["seeds"] == 3
    assert pw["smallest_difference"] == pytest.approx(sec_acc.smallest_effect(3) * d.std(ddof=1))


def test_sanity_verdict_follows_the_global_q_not_the_interval(tmp_path: Path) -> None:
    off = [0.10, 0.08, 0.13, 0.09]
    rows = [(m, 0.2, s, 0, a) for s in range(4) for m, a in (("a", 0.5 + 0.01 * s), ("a+shuffle", 0.5 + 0.01 * s + off[s]))]
    ctx = Context(out=tmp_path, tickets=_tk(rows), distances=pd.DataFrame())
    tabs = sec_sanity.compute(ctx)
    t = tabs["tests"].iloc[0]
    a = np.array([0.5, 0.51, 0.52, 0.53])
    b = a + np.array(off)
    assert t["p"] == pytest.approx(stats.ttest_rel(a, b).pvalue) and t["statistic"] == pytest.approx((a - b).mean())
    alone = {"sanity": tabs}
    shown = sections.render_all(alone, ctx, sections.collect_tests(alone))
    table = next(x for k, x in shown if k == "table")
    assert t["p"] < 0.01 and table["verdict"].iloc[0] == "is WORSE than its variant"  # alone: q = p
    # the same p among many tests that fail: its q exceeds the FDR, and no verdict is stated
    crowd = {"sanity": tabs, "other": {"tests": pd.DataFrame({"test": [f"t{i}" for i in range(200)], "question": "q",
                                                              "family": "f", "statistic": 0.0, "p": 0.9, "unit": "u",
                                                              "n": 3})}}
    tests = sections.collect_tests(crowd)
    table = sec_sanity.render({**tabs, "tests": tests[tests["section"] == "sanity"]}, ctx)[-1][1]
    assert table["verdict"].iloc[0] == "no difference shown"


def _dist_and_siblings() -> tuple[pd.DataFrame, pd.DataFrame]:
    rows, sib = [], []
    for s in (0, 1):
        g = f"ds/mlp/d0.2/s{s}"
        base = {"group": g, "dataset": "ds", "model": "mlp", "density": 0.2, "seed": s}
        rows += [{**base, "a": "det", "b": "sto", "kind": "jaccard", "value": 0.3 + 0.1 * s, "null_mean": 0.9, "null_std": 0.01},
                 {**base, "a": "det", "b": "sto", "kind": "layer_density", "value": 0.2, "null_mean": 0.2, "null_std": 0.0}]
        for m, w in (("det", 0.0), ("sto", 0.5)):
            for k in ("jaccard", "layer_density"):
                sib.append({**base, "method": m, "a": "r0", "b": "r1", "kind": k, "value": w if k == "jaccard" else 0.0,
                            "identical": m == "det"})
    return pd.DataFrame(rows), pd.DataFrame(sib)


def test_excess_over_siblings_unclipped_with_the_deterministic_floor_left_out() -> None:
    dist, sib = _dist_and_siblings()
    ex = sec_sib.excess_table(dist, sib).set_index("kind")
    # floor = the stochastic side only (0.5, not mean(0, 0.5) = 0.25): (0.3 - 0.5) / 0.4 = -0.5, (0.4 - 0.5) / 0.4
    per_seed = np.array([-0.5, -0.25])
    j = ex.loc["jaccard"]
    assert j["excess"] == pytest.approx(per_seed.mean()) and j["excess"] < 0  # more alike than siblings: not clipped
    lo, hi = stats.t.interval(0.95, 1, loc=per_seed.mean(), scale=stats.sem(per_seed))
    assert (j["low"], j["high"]) == pytest.approx((lo, hi)) and j["floor_from"] == "b" and j["deterministic"] == "det"
    assert ex.loc["layer_density", "status"] == "null cannot vary" and ex.loc["layer_density", "groups"] == 0
    named = sec_sib.excluded_kinds(ex.reset_index())
    assert list(named["kind"]) == ["layer_density"] and named["status"].iloc[0] == "null cannot vary"


def test_structure_function_is_joint_mantel_over_groups_on_family_representatives() -> None:
    rng = np.random.default_rng(3)
    names = ["a", "b", "c", "d", "e"]
    rows, mats = [], {k: [] for k in ("jaccard", "cka")}
    for s in range(3):
        m = {k: np.zeros((5, 5)) for k in ("jaccard", "hamming", "cka")}
        for (i, x), (j, y) in itertools.combinations(enumerate(names), 2):
            for k in m:
                v = rng.random()
                m[k][i, j] = m[k][j, i] = v
                rows.append({"group": f"g/s{s}", "dataset": "ds", "model": "mlp", "density": 0.2, "seed": s, "a": x,
                             "b": y, "kind": k, "value": v})
        for k in mats:
            mats[k].append(pd.DataFrame(m[k], index=names, columns=names))
    t = sec_sf.structure_function_tests(pd.DataFrame(rows))
    assert list(zip(t["structure"], t["function"], strict=True)) == [("jaccard", "cka")]  # hamming: jaccard's family
    ref = joint_mantel(mats["jaccard"], mats["cka"])
    assert t["statistic"].iloc[0] == pytest.approx(ref.statistic) and t["p"].iloc[0] == pytest.approx(ref.pvalue)
    rhos = [stats.spearmanr(a.to_numpy()[np.triu_indices(5, 1)], b.to_numpy()[np.triu_indices(5, 1)])[0]
            for a, b in zip(mats["jaccard"], mats["cka"], strict=True)]
    assert t["statistic"].iloc[0] == pytest.approx(np.mean(rhos)) and t["n"].iloc[0] == 5 and bool(t["exact"].iloc[0])


def test_consensus_rows_count_the_core_and_draw_nulls_around_the_exact_expectation() -> None:
    g = torch.Generator().manual_seed(0)
    tickets = {f"m{i}": Ticket({"w": torch.rand(20, 10, generator=g) < 0.3}) for i in range(3)}
    row, null_k, hist, lay = sec_cons.consensus_rows(tickets, density=0.3, seed=0, samples=199)
    stacked = torch.stack([t.masks["w"] for t in tickets.values()]).sum(0)
    assert row["k"] == 2 and row["core_k"] == int((stacked >= 2).sum()) and row["all"] == int((stacked == 3).sum())
    assert null_k.size == 199 and abs(row["null_mean_k"] - row["expected_k"]) < 4 * row["null_sd_k"] / np.sqrt(199)
    assert hist["observed"].sum() == 200 and lay["core_k"].sum() == row["core_k"]


def test_consensus_test_is_one_sided_over_seeds() -> None:
    cores = pd.DataFrame({"density": [0.2, 0.2], "seed": [0, 1], "core_k": [10.0, 11.0]})
    nulls = {(0.2, 0): np.arange(9.0), (0.2, 1): np.arange(9.0)}  # every draw below the observed core
    t = sec_cons.consensus_tests(cores, nulls).iloc[0]
    assert t["p"] == pytest.approx(1 / 10) and t["n"] == 2 and t["statistic"] > 0
    low = sec_cons.consensus_tests(cores.assign(core_k=[-1.0, -1.0]), nulls).iloc[0]
    assert low["p"] == pytest.approx(1.0) and low["statistic"] < 0  # fewer than chance is not "more alike"
