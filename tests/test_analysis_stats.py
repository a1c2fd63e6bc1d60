"""Statistics: BH against scipy, bootstrap against scipy and the normal interval, Mantel against
brute force, the sibling-excess formula by hand."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from graphtickets.analysis import bootstrap_ci, excess_over_siblings, fdr_bh, mantel
from graphtickets.errors import GraphticketsError


# --------------------------------------------------------------------------- BH
@settings(max_examples=60, deadline=None)
@given(p=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=40), alpha=st.sampled_from([0.01, 0.05, 0.2]))
def test_fdr_bh_equals_scipy(p: list[float], alpha: float) -> None:
    q, rej = fdr_bh(p, alpha)
    ref = sps.false_discovery_control(np.asarray(p), method="bh")
    assert np.allclose(q, ref, rtol=1e-12, atol=1e-15)
    assert np.array_equal(rej, ref <= alpha)


def test_fdr_bh_step_up_by_hand_and_nan() -> None:
    # sorted: 0.001, 0.008, 0.039, 0.041, 0.042, 0.06 (m = 6, alpha = 0.05): thresholds
    # k * 0.05 / 6 = 0.0083, 0.0167, 0.025, 0.0333, 0.0417, 0.05 -> largest k with p_(k) <= : k = 2
    p = np.array([0.041, 0.001, 0.06, 0.008, np.nan, 0.039, 0.042])
    q, rej = fdr_bh(p)
    assert rej.tolist() == [False, True, False, True, False, False, False]
    assert np.isnan(q[4]) and q[1] == pytest.approx(0.006) and q[3] == pytest.approx(0.024)
    finite = ~np.isnan(p)
    assert np.allclose(q[finite], sps.false_discovery_control(p[finite]))
    q2, _ = fdr_bh(p.reshape(7, 1))
    assert q2.shape == (7, 1)
    with pytest.raises(GraphticketsError, match="p-values"):
        fdr_bh([1.5])


# --------------------------------------------------------------------------- bootstrap
def test_bootstrap_ci_matches_scipy_percentile_and_normal_theory() -> None:
    x = np.random.default_rng(1).normal(3.0, 2.0, size=400)
    ci = bootstrap_ci(x, n_resamples=20000, seed=0)
    ref = sps.bootstrap((x,), np.mean, n_resamples=20000, method="percentile", rng=np.random.default_rng(5)).confidence_interval
    half = 1.96 * x.std(ddof=1) / np.sqrt(x.size)
    assert ci.estimate == pytest.approx(x.mean())
    assert ci.low == pytest.approx(ref.low, abs=0.02) and ci.high == pytest.approx(ref.high, abs=0.02)
    assert ci.low == pytest.approx(x.mean() - half, abs=0.03) and ci.high == pytest.approx(x.mean() + half, abs=0.03)
    assert bootstrap_ci(x, seed=3) == bootstrap_ci(x, seed=3)  # seeded


def test_bootstrap_ci_edge_cases_and_statistic() -> None:
    one = bootstrap_ci([0.7])
    assert one.estimate == 0.7 and np.isnan(one.low) and np.isnan(one.high) and one.n == 1
    assert bootstrap_ci([np.nan, 1.0, 2.0]).n == 2
    med = bootstrap_ci([1.0, 2.0, 3.0, 100.0], statistic=np.median, n_resamples=500)
    assert med.estimate == 2.5 and med.low >= 1.0 and med.high <= 100.0
    loop = bootstrap_ci([1.0, 2.0, 3.0, 100.0], statistic=lambda v: float(np.median(v)), n_resamples=500)
    assert (loop.low, loop.high) == (med.low, med.high)


# --------------------------------------------------------------------------- Mantel
def _random_distance(rng: np.random.Generator, n: int) -> np.ndarray:
    pts = rng.normal(size=(n, 3))
    return np.sqrt(((pts[:, None] - pts[None]) ** 2).sum(-1))


def test_mantel_hand_made_cases() -> None:
    rng = np.random.default_rng(0)
    d = _random_distance(rng, 9)
    r = mantel(d, np.log1p(d), permutations=499)
    assert r.statistic == pytest.approx(1.0) and r.pvalue == pytest.approx(1 / 500) and not r.exact
    inv = mantel(d, d.max() - d + np.eye(9) * 0, permutations=499, alternative="less")
    assert inv.statistic == pytest.approx(-1.0) and inv.pvalue == pytest.approx(1 / 500)
    # Spearman rho of the pairs is scipy's
    other = _random_distance(rng, 9)
    iu = np.triu_indices(9, 1)
    assert mantel(d, other).statistic == pytest.approx(sps.spearmanr(d[iu], other[iu]).statistic)
    assert mantel(d, other, method="pearson").statistic == pytest.approx(sps.pearsonr(d[iu], other[iu]).statistic)
    # DataFrames are aligned by label
    names = list("abcdefghi")
    a = pd.DataFrame(d, index=names, columns=names)
    b = pd.DataFrame(other, index=names, columns=names)
    shuffled = b.loc[names[::-1], names[::-1]]
    assert mantel(a, shuffled).statistic == pytest.approx(mantel(a, b).statistic)


@pytest.mark.parametrize("seed", range(3))
def test_mantel_exact_equals_brute_force_permutation_loop(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 5
    d1, d2 = _random_distance(rng, n), _random_distance(rng, n)
    iu = np.triu_indices(n, 1)
    r0 = sps.spearmanr(d1[iu], d2[iu]).statistic
    hits = [abs(sps.spearmanr(d1[iu], d2[np.ix_(p, p)][iu]).statistic) >= abs(r0) - 1e-12
            for p in map(list, itertools.permutations(range(n)))]  # fmt: skip
    res = mantel(d1, d2, permutations=1000)
    assert res.exact and res.permutations == 120
    assert res.statistic == pytest.approx(r0)
    assert res.pvalue == pytest.approx(np.mean(hits))
    # the sampled test approaches the exact p-value
    sampled = mantel(d1, d2, permutations=100, seed=seed)
    assert not sampled.exact and abs(sampled.pvalue - res.pvalue) < 0.15


def test_mantel_rejects_bad_input() -> None:
    d = _random_distance(np.random.default_rng(0), 4)
    with pytest.raises(GraphticketsError, match="symmetric"):
        mantel(d + np.triu(np.ones((4, 4)), 1), d)
    with pytest.raises(GraphticketsError, match="at least 3"):
        mantel(d[:2, :2], d[:2, :2])
    bad = d.copy()
    bad[0, 1] = bad[1, 0] = np.nan
    with pytest.raises(GraphticketsError, match="NaN"):
        mantel(bad, d)
    const = np.ones((4, 4)) - np.eye(4)
    assert np.isnan(mantel(const, d).statistic)


# --------------------------------------------------------------------------- sibling floor
def test_excess_over_siblings_formula() -> None:
    assert excess_over_siblings(0.5, 0.2, 0.4, 0.9) == pytest.approx((0.5 - 0.3) / (0.9 - 0.3))
    assert excess_over_siblings(0.2, 0.2, 0.4, 0.9) == 0.0  # below the floor: clipped
    assert excess_over_siblings(0.2, 0.2, 0.4, 0.9, clip=False) == pytest.approx(-0.1 / 0.6)
    assert excess_over_siblings(1.2, 0.2, 0.4, 0.9) == 1.0
    assert excess_over_siblings(0.5, np.nan, 0.4, 0.9) == pytest.approx(0.1 / 0.5)  # one side only
    assert np.isnan(excess_over_siblings(0.5, 0.9, 0.9, 0.9))  # siblings as far apart as the null
    assert np.isnan(excess_over_siblings(0.5, np.nan, np.nan, 0.9))
    # identical siblings (deterministic methods): a floor of 0
    assert excess_over_siblings(0.3, 0.0, 0.0, 0.6) == pytest.approx(0.5)
    out = excess_over_siblings(np.array([0.3, 0.6]), 0.0, np.array([0.0, 0.2]), 0.6)
    assert out.shape == (2,) and out[0] == pytest.approx(0.5) and out[1] == pytest.approx(1.0)
