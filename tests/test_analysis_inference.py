"""analysis.inference, stats.adjust_tests / sibling_excess, compare_joint: by hand and against scipy."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

import graphtickets as gt
from graphtickets.analysis import (
    adjust_tests,
    combine_independent,
    compare_joint,
    distance,
    joint_null_test,
    min_pvalue,
    null_test,
    pooled_effects,
    shuffle_within_layers,
    sibling_excess,
    t_interval,
)
from graphtickets.analysis.compare import null_seed
from graphtickets.errors import GraphticketsError


# --------------------------------------------------------------------------- empirical p
def test_null_test_counts_ties_on_both_sides_and_the_floor() -> None:
    r = null_test(0.5, [0.1, 0.5, 0.9, 0.7])
    assert (r.n_closer, r.n_farther, r.draws) == (2, 3, 4)
    assert (r.p_closer, r.p_farther, r.p) == pytest.approx((3 / 5, 4 / 5, 1.0))
    low = null_test(-1.0, np.arange(99.0))
    assert low.p_closer == pytest.approx(1 / 100) == min_pvalue(99, alternative="less") and low.p == pytest.approx(0.02)
    assert math.isnan(null_test(0.5, []).p) and math.isnan(null_test(float("nan"), [1.0]).p)
    with pytest.raises(GraphticketsError, match="stop_after"):
        null_test(0.0, [1.0], stop_after=0)


def test_besag_clifford_stops_at_the_h_th_exceedance() -> None:
    # draws:   0.9 0.2 0.8 0.1 0.7 0.3 ; value 0.5, h = 2
    # closer (<= 0.5) at draws 2 and 4 -> stops at l = 4: p = 2 / 4; farther at draws 1 and 3: p = 2 / 3
    r = null_test(0.5, [0.9, 0.2, 0.8, 0.1, 0.7, 0.3], stop_after=2)
    assert (r.p_closer, r.p_farther, r.draws) == pytest.approx((0.5, 2 / 3, 4))
    assert (r.n_closer, r.n_farther) == (2, 2)
    # a side that never reaches h uses every draw: (1 + r) / (1 + k)
    tail = null_test(0.0, [0.9, 0.2, 0.8, 0.1], stop_after=3)
    assert (tail.p_closer, tail.p_farther, tail.draws) == pytest.approx((1 / 5, 3 / 3, 4))


@pytest.mark.parametrize("stop_after", [None, 3])
def test_empirical_p_is_exactly_valid_over_every_rank(stop_after: int | None) -> None:
    # Under the null the observed value's rank among k + 1 exchangeable draws is uniform; over
    # every rank and many draw orders, P(p <= u) <= u at every attainable u (Besag & Clifford).
    rng = np.random.default_rng(0)
    k = 19
    ps = []
    for _ in range(300):
        x = rng.normal(size=k + 1)
        for j in range(k + 1):
            ps.append(null_test(x[j], np.delete(x, j), stop_after=stop_after).p_closer)
    ps_arr = np.asarray(ps)
    for u in np.unique(ps_arr):
        # fixed draws: exact over the ranks of every sample; sequential: exact over the draw
        # orders too, which are sampled here (Monte Carlo error: 4 standard errors)
        slack = 1e-9 if stop_after is None else 4 * math.sqrt(u * (1 - u) / ps_arr.size)
        assert (ps_arr <= u + 1e-12).mean() <= u + slack, u


# --------------------------------------------------------------------------- joint test, combination
def test_pooled_effects_by_hand() -> None:
    values, nulls = [1.0, 10.0], [[2.0, 3.0], [10.0, 13.0]]
    t, used = pooled_effects(values, nulls)
    # pools {1, 2, 3} (mean 2, sd 1) and {10, 10, 13} (mean 11, sd sqrt(3))
    s3 = math.sqrt(3.0)
    assert used == 2
    assert t == pytest.approx([(-1 + -1 / s3) / 2, (0 + -1 / s3) / 2, (1 + 2 / s3) / 2])
    flat, used = pooled_effects([1.0, 5.0], [[1.0, 1.0], [4.0, 6.0]])
    assert used == 1 and flat == pytest.approx([0.0, -1.0, 1.0])  # the constant pool is left out


def test_joint_null_test_over_units_by_hand() -> None:
    u1 = ([1.0, 10.0], [[2.0, 3.0], [10.0, 13.0]])
    u2 = ([5.0], [[4.0, 6.0]])
    r = joint_null_test([u1, u2])
    t1, _ = pooled_effects(*u1)
    t2, _ = pooled_effects(*u2)
    total = (t1 + t2) / 2
    assert r.effect == pytest.approx(total[0]) and r.unit_effects == pytest.approx((t1[0], t2[0])) and r.groups == 3
    assert r.test == null_test(total[0], total[1:])
    with pytest.raises(GraphticketsError, match="same number"):
        joint_null_test([u1, ([5.0], [[4.0, 6.0, 7.0]])])


def test_combine_independent_against_the_formulas_and_scipy() -> None:
    p = [0.01, 0.2, 0.5]
    x = -2 * sum(math.log(v) for v in p)  # chi2 with 6 df: sf = exp(-x/2) (1 + x/2 + (x/2)^2 / 2)
    assert combine_independent(p) == pytest.approx(math.exp(-x / 2) * (1 + x / 2 + (x / 2) ** 2 / 2))
    assert combine_independent(p, method="stouffer") == pytest.approx(sps.combine_pvalues(p, method="stouffer").pvalue)
    assert combine_independent([0.3, np.nan]) == pytest.approx(0.3)
    assert min_pvalue(999, alternative="less", units=3) == pytest.approx(combine_independent([1e-3] * 3))
    with pytest.raises(GraphticketsError, match="never 0"):
        combine_independent([0.0, 0.5])


def test_t_interval_by_hand() -> None:
    ci = t_interval([0.80, 0.82, 0.84])
    t975_2 = 4.302652729911275  # Student t, 2 df, 0.975 quantile (tables)
    assert (ci.estimate, ci.df, ci.n) == pytest.approx((0.82, 2, 3))
    assert ci.high - ci.estimate == pytest.approx(t975_2 * 0.02 / math.sqrt(3))
    one = t_interval([0.7, np.nan])
    assert one.n == 1 and math.isnan(one.low) and one.text() == "0.700 (one value)" and one.values == (0.7,)


# --------------------------------------------------------------------------- BH over a table of tests
def test_adjust_tests_by_hand() -> None:
    # m = 4 finite: sorted 0.001, 0.02, 0.03, 0.4 -> 4p/rank = 0.004, 0.04, 0.04, 0.4 (step-up minimum)
    t = pd.DataFrame({"statistic": [1, 2, 3, 4, 5], "p": [0.03, 0.001, np.nan, 0.4, 0.02], "family": "f",
                      "unit": "init seed", "n": 3})  # fmt: skip
    out = adjust_tests(t, alpha=0.05)
    assert out.attrs["tests"] == 4
    assert out["q"].tolist()[:2] == pytest.approx([0.04, 0.004]) and math.isnan(out["q"].iloc[2])
    assert out["q"].iloc[3:].tolist() == pytest.approx([0.4, 0.04])
    assert out["significant"].tolist() == [True, True, False, False, True]
    with pytest.raises(GraphticketsError, match="unit"):
        adjust_tests(t.drop(columns="unit"))


# --------------------------------------------------------------------------- excess over siblings
def _rows(**kw: object) -> pd.DataFrame:
    base = {"a": "x", "b": "y", "kind": "jaccard", "value": 0.5, "null_mean": 0.9, "null_std": 0.02, "within_a": 0.2,
            "within_b": 0.4, "unit": 0}  # fmt: skip
    base.update(kw)
    return pd.DataFrame([base])


def test_sibling_excess_unclipped_excluded_and_deterministic() -> None:
    below = sibling_excess(_rows(value=0.1)).iloc[0]  # floor 0.3: (0.1 - 0.3) / 0.6, not clipped at 0
    assert below["excess"] == pytest.approx(-1 / 3) and below["status"] == "ok" and below["floor_from"] == "both"
    flat = sibling_excess(_rows(kind="layer_density", null_std=0.0)).iloc[0]
    assert math.isnan(flat["excess"]) and flat["status"] == "null cannot vary" and flat["excluded"] == 1
    reach = sibling_excess(_rows(within_a=0.95, within_b=0.95)).iloc[0]
    assert reach["status"] == "floor reaches the null"
    # magnitude (deterministic) has floor 0 by construction: the floor is y's siblings alone
    one = sibling_excess(_rows(a="magnitude", within_a=0.0), deterministic=["magnitude"]).iloc[0]
    assert one["excess"] == pytest.approx((0.5 - 0.4) / (0.9 - 0.4)) and one["floor_from"] == "b"
    both = sibling_excess(_rows(a="magnitude", b="synflow"), deterministic=["magnitude", "synflow"]).iloc[0]
    assert both["status"] == "deterministic" and both["excess"] == pytest.approx(0.5 / 0.9)
    # units are the replicates: groups of a unit are averaged first, then the t interval over units
    rows = pd.concat([_rows(value=0.5, unit=0), _rows(value=0.3, unit=0), _rows(value=0.6, unit=1)])
    r = sibling_excess(rows).iloc[0]
    per_unit = [((0.5 - 0.3) / 0.6 + 0.0) / 2, (0.6 - 0.3) / 0.6]
    ci = t_interval(per_unit)
    assert (r["excess"], r["low"], r["high"], r["units"], r["groups"], r["df"]) == pytest.approx(
        (ci.estimate, ci.low, ci.high, 2, 3, 1))


# --------------------------------------------------------------------------- compare_joint
def test_compare_joint_by_hand() -> None:
    m = gt.models.build("mlp", in_shape=(10,), num_classes=3, widths=(12,), seed=0)
    units = {s: {d: {"a": gt.pruning.prune(m, "random", density=d, seed=2 * s),
                     "b": gt.pruning.prune(m, "random", density=d, seed=2 * s + 1)} for d in (0.1, 0.3)}
             for s in range(2)}  # fmt: skip
    t = compare_joint(units, kinds=["hamming"], null_samples=7, seed=4)
    assert len(t) == 1 and t[["units", "groups", "null_n", "df"]].iloc[0].tolist() == [2, 4, 7, 1]
    hand = []
    for s, groups in units.items():
        vals = [distance(g["a"], g["b"], "hamming") for g in groups.values()]
        nulls = [[distance(shuffle_within_layers(g["a"], null_seed(f"4/{s!r}", "a", i)),
                           shuffle_within_layers(g["b"], null_seed(f"4/{s!r}", "b", i)), "hamming") for i in range(7)]
                 for g in groups.values()]  # fmt: skip
        hand.append((vals, nulls))
    r = joint_null_test(hand)
    row = t.iloc[0]
    assert row["effect"] == pytest.approx(r.effect) and (row["n_closer"], row["n_farther"]) == (r.test.n_closer, r.test.n_farther)
    assert row["p_two_sided"] == pytest.approx(r.test.p)
    # the same permutation at every density of a seed: nested masks stay nested in every draw
    d1, d2 = (shuffle_within_layers(units[0][d]["a"], null_seed("4/0", "a", 3)) for d in (0.1, 0.3))
    assert all(bool((d1.masks[n] <= d2.masks[n]).all()) for n in d1.masks)
    with pytest.raises(GraphticketsError, match="no null"):
        compare_joint(units, kinds=["agreement"], null_samples=3)
