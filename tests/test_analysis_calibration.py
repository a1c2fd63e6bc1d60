"""Calibration under a known null: every test procedure the report uses rejects at its nominal rate.

Each test runs a procedure ``R`` times on data where the null holds (independent random tickets,
or synthetic statistics with the same structure) and checks the rejection rate against the
nominal level ``alpha`` within ``3`` Monte Carlo standard errors, ``SE = sqrt(alpha (1 - alpha)
/ R)``. Each also runs the procedure the study used before issue 32 on the same data and checks
that it FAILS the same check (its rate above ``alpha + 3 SE``): the check has the power to fail.
Seeds are fixed, so the rates are reproducible; the docstrings give the rates measured.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats as sps

import graphtickets as gt
from graphtickets.analysis import (
    adjust_tests,
    bootstrap_ci,
    compare,
    compare_joint,
    joint_mantel,
    partial_correlation,
    t_interval,
)


def _se(alpha: float, reps: int) -> float:
    return math.sqrt(alpha * (1 - alpha) / reps)


def _random_tickets(seed: int, densities: tuple[float, ...], shapes: dict[str, tuple[int, int]]) -> dict[float, gt.Ticket]:
    """Independent random tickets of one init seed, nested across densities (top-k of one random score)."""
    g = torch.Generator().manual_seed(seed)
    scores = {n: torch.rand(s, generator=g) for n, s in shapes.items()}
    return {d: gt.Ticket({n: v >= torch.quantile(v.flatten(), 1 - d) for n, v in scores.items()}, method="random")
            for d in densities}  # fmt: skip


def test_compare_empirical_p_is_calibrated() -> None:
    """R = 300 pairs of independent random tickets, jaccard, layer-shuffle null, 19 draws.

    Measured: p_closer <= 0.05: 0.037; p_two_sided <= 0.1: 0.073 (SE 0.0126, 0.0173; jaccard's
    ties count as extreme, so the test is a little conservative). The old check on the same pairs,
    |z| > 1.96 from 10 draws against N(0, 1): 0.083 (expected 0.094, below).
    """
    reps, shapes = 300, {"w1": (30, 40), "w2": (10, 30)}
    lo, two = [], []
    for r in range(reps):
        ts = {"a": _random_tickets(2 * r, (0.2,), shapes)[0.2], "b": _random_tickets(2 * r + 1, (0.2,), shapes)[0.2]}
        t = compare(ts, kinds=["jaccard"], null_samples=19, seed=r).iloc[0]
        lo.append(t["p_closer"])
        two.append(t["p_two_sided"])
    assert abs((np.asarray(lo) <= 0.05).mean() - 0.05) <= 3 * _se(0.05, reps)
    assert abs((np.asarray(two) <= 0.1).mean() - 0.1) <= 3 * _se(0.1, reps)


@pytest.mark.parametrize("law", ["normal", "gamma"])
def test_empirical_p_from_ten_draws_is_exact_and_z_against_a_normal_is_not(law: str) -> None:
    """R = 20,000 synthetic tests, the observed value and 10 null draws i.i.d. (normal, or a
    skewed gamma(2) like graph distances), two-sided at alpha = 0.05 with 10 draws -> use 39
    draws for the empirical p (its floor with 10 is 2/11 > 0.05).

    Measured: empirical p (39 draws) 0.051 / 0.049; |z| > 1.96 from 10 draws 0.095 / 0.089
    (SE 0.0015; theory sqrt(1 + 1/k) t_{k-1}: 0.094 for a normal null).
    """
    reps, alpha, rng = 20_000, 0.05, np.random.default_rng(7)
    draw = (lambda size: rng.normal(size=size)) if law == "normal" else (lambda size: rng.gamma(2.0, size=size))
    x = draw((reps, 40))
    value, nulls = x[:, 0], x[:, 1:]
    n_lo, n_hi = (nulls <= value[:, None]).sum(1), (nulls >= value[:, None]).sum(1)
    p = np.minimum(1.0, 2 * np.minimum(1 + n_lo, 1 + n_hi) / 40)
    ten = nulls[:, :10]
    z = (value - ten.mean(1)) / ten.std(1, ddof=1)
    assert abs((p <= alpha).mean() - alpha) <= 3 * _se(alpha, reps), (p <= alpha).mean()
    assert (np.abs(z) > 1.96).mean() > alpha + 3 * _se(alpha, reps), (np.abs(z) > 1.96).mean()
    assert 2 * sps.t.sf(1.96 / math.sqrt(1.1), 9) == pytest.approx(0.094, abs=0.001)


def test_seed_as_unit_is_calibrated_and_stouffer_over_dependent_groups_is_not() -> None:
    """R = 150 replicate studies: 3 init seeds x 2 densities (nested masks), one pair of independent
    random methods. New: compare_joint (9 joint draws per seed, within-seed then over seeds),
    two-sided at alpha = 0.2 (the floor is 0.2). Old: z of each of the 6 groups from 10 nulls of one
    stream shared by every group, Stouffer over the 6, normal p.

    Measured: new 0.193; old 0.42 (SE 0.033). (Over 600 replicates with 19 draws: new 0.115 / 0.217
    at 0.1 / 0.2, old 0.217 / 0.345.)
    """
    reps, dens, shapes, alpha = 150, (0.2, 0.3), {"w1": (20, 30), "w2": (10, 20)}, 0.2
    new, old = [], []
    for r in range(reps):
        units, z = {}, []
        for s in range(3):
            a, b = _random_tickets(10**6 * r + 2 * s, dens, shapes), _random_tickets(10**6 * r + 2 * s + 1, dens, shapes)
            units[s] = {d: {"a": a[d], "b": b[d]} for d in dens}
            z += [compare({"a": a[d], "b": b[d]}, kinds=["jaccard"], null_samples=10, seed=0)["z"].iloc[0] for d in dens]
        new.append(compare_joint(units, kinds=["jaccard"], null_samples=9, seed=r)["p_two_sided"].iloc[0])
        old.append(2 * sps.norm.sf(abs(np.sum(z) / math.sqrt(len(z)))))
    rate_new, rate_old = (np.asarray(new) <= alpha).mean(), (np.asarray(old) <= alpha).mean()
    assert abs(rate_new - alpha) <= 3 * _se(alpha, reps), rate_new
    assert rate_old > alpha + 3 * _se(alpha, reps), rate_old


def _method_points(rng: np.random.Generator, n: int, groups: int, spread: float) -> list[np.ndarray]:
    """Distances among ``n`` methods in each group: fixed method positions plus small group noise."""
    base = rng.normal(size=(n, 2))
    return [np.sqrt((((p := base + spread * rng.normal(size=(n, 2)))[:, None] - p[None]) ** 2).sum(-1)) for _ in range(groups)]


def _independent_group_permutation_p(d1: list[np.ndarray], d2: list[np.ndarray], perms: int, rng: np.random.Generator) -> float:
    """The study's old scheme: each group's labels permuted independently (mean within-group rho)."""
    n = d1[0].shape[0]
    i, j = np.triu_indices(n, 1)
    z = [(v - v.mean()) / v.std() for v in (sps.rankdata(a[i, j]) for a in d1)]
    zy = []
    for b in d2:
        m = np.zeros((n, n))
        v = sps.rankdata(b[i, j])
        m[i, j] = (v - v.mean()) / v.std()
        zy.append(m + m.T)
    r = float(np.mean([np.mean(x * y[i, j]) for x, y in zip(z, zy, strict=True)]))
    ps = [np.stack([rng.permutation(n) for _ in range(perms)]) for _ in d1]  # (perms, n) per group
    null = np.mean([np.mean(x * y[p[:, i], p[:, j]], axis=1) for x, y, p in zip(z, zy, ps, strict=True)], axis=0)
    return (1 + int(np.sum(np.abs(null) >= abs(r) - 1e-12))) / (1 + perms)


def test_structure_function_joint_permutation_is_calibrated_and_per_group_permutation_is_not() -> None:
    """R = 200: 6 methods in 6 groups, structural and functional distances independent, each
    method's position shared by the groups. alpha = 0.1, 99 permutations.

    Measured: joint permutation 0.115; independent per-group permutations 0.455 (SE 0.021).
    """
    reps, alpha, rng = 200, 0.1, np.random.default_rng(0)
    new, old = [], []
    for r in range(reps):
        d1, d2 = _method_points(rng, 6, 6, 0.3), _method_points(rng, 6, 6, 0.3)
        new.append(joint_mantel(d1, d2, permutations=99, seed=r).pvalue)
        old.append(_independent_group_permutation_p(d1, d2, 99, rng))
    rate_new, rate_old = (np.asarray(new) <= alpha).mean(), (np.asarray(old) <= alpha).mean()
    assert abs(rate_new - alpha) <= 3 * _se(alpha, reps), rate_new
    assert rate_old > alpha + 3 * _se(alpha, reps), rate_old


def test_bh_over_every_test_controls_the_fdr_and_uncorrected_tests_do_not() -> None:
    """R = 1000 reports of 40 tests, 30 true nulls (uniform p) and 10 signals (p = u^6).

    Measured: false discovery rate 0.0377 (BH's bound alpha m0 / m = 0.0375); uncorrected (p <= 0.05):
    0.19 of the rejections false.
    """
    reps, m0, m1, alpha, rng = 1000, 30, 10, 0.05, np.random.default_rng(1)
    fdp, raw = [], []
    for _ in range(reps):
        p = np.concatenate([rng.uniform(size=m0), rng.uniform(size=m1) ** 6])
        t = adjust_tests(pd.DataFrame({"statistic": 0.0, "p": p, "family": "f", "unit": "seed", "n": 3}), alpha=alpha)
        rej = t["significant"].to_numpy()
        fdp.append(rej[:m0].sum() / max(rej.sum(), 1))
        naive = p <= alpha
        raw.append(naive[:m0].sum() / max(naive.sum(), 1))
    se = np.std(fdp) / math.sqrt(reps)
    assert np.mean(fdp) <= alpha * m0 / (m0 + m1) + 3 * se, np.mean(fdp)
    assert np.mean(raw) > alpha + 3 * np.std(raw) / math.sqrt(reps), np.mean(raw)


def test_partial_correlation_is_calibrated_and_the_plain_one_is_confounded() -> None:
    """R = 1000 tables of 24 tickets: a metric and the accuracy both follow two layer densities,
    and are independent given them. alpha = 0.05.

    Measured: partial Spearman (t, df = 20) 0.061; plain Spearman 0.85 (SE 0.0069).
    """
    reps, n, alpha, rng = 1000, 24, 0.05, np.random.default_rng(2)
    new, old = [], []
    for _ in range(reps):
        dens = rng.uniform(size=(n, 2))
        metric = dens @ [1.0, 1.0] + 0.3 * rng.normal(size=n)
        acc = dens @ [1.0, 0.5] + 0.3 * rng.normal(size=n)
        new.append(partial_correlation(metric, acc, dens).pvalue)
        old.append(sps.spearmanr(metric, acc).pvalue)
    rate_new, rate_old = (np.asarray(new) <= alpha).mean(), (np.asarray(old) <= alpha).mean()
    assert abs(rate_new - alpha) <= 3 * _se(alpha, reps), rate_new
    assert rate_old > alpha + 3 * _se(alpha, reps), rate_old


def test_t_interval_over_three_seeds_covers_and_the_bootstrap_does_not() -> None:
    """R = 1500 sets of 3 normal values: coverage of the mean by the 95 % intervals.

    Measured: t (df = 2) 0.951; percentile bootstrap over 3 values ([min, max] at best) 0.721.
    """
    reps, rng = 1500, np.random.default_rng(3)
    cov_t, cov_b = [], []
    for i in range(reps):
        x = rng.normal(size=3)
        ci = t_interval(x)
        cov_t.append(ci.low <= 0.0 <= ci.high)
        b = bootstrap_ci(x, n_resamples=200, seed=i)
        cov_b.append(b.low <= 0.0 <= b.high)
    se = _se(0.05, reps)
    assert abs(np.mean(cov_t) - 0.95) <= 3 * se, np.mean(cov_t)
    assert np.mean(cov_b) < 0.95 - 3 * se, np.mean(cov_b)
