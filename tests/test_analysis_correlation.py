"""joint_mantel against a brute-force loop; partial correlation against lstsq by hand and the closed form."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from graphtickets.analysis import joint_mantel, partial_correlation, partial_correlations
from graphtickets.errors import GraphticketsError


def _dist(pts: np.ndarray) -> np.ndarray:
    return np.sqrt(((pts[:, None] - pts[None]) ** 2).sum(-1))


def _brute(d1: list[np.ndarray], d2: list[np.ndarray]) -> tuple[float, float]:
    """Mean within-group Spearman rho and its exact joint-permutation two-sided p, by a plain loop."""
    n = d1[0].shape[0]
    iu = np.triu_indices(n, 1)

    def stat(perm: tuple[int, ...]) -> float:
        p = list(perm)
        return float(np.mean([sps.spearmanr(a[iu], b[np.ix_(p, p)][iu]).statistic for a, b in zip(d1, d2, strict=True)]))

    r = stat(tuple(range(n)))
    vals = [stat(p) for p in itertools.permutations(range(n))]
    return r, sum(abs(v) >= abs(r) - 1e-12 for v in vals) / len(vals)


@pytest.mark.parametrize("seed", [0, 1])
def test_joint_mantel_exact_equals_a_brute_force_loop(seed: int) -> None:
    rng = np.random.default_rng(seed)
    base, other = rng.normal(size=(5, 2)), rng.normal(size=(5, 2))
    d1 = [_dist(base + 0.3 * rng.normal(size=(5, 2))) for _ in range(3)]
    d2 = [_dist(base + other + 0.3 * rng.normal(size=(5, 2))) for _ in range(3)]
    r = joint_mantel(d1, d2, permutations=200)
    rho, p = _brute(d1, d2)
    assert r.exact and r.permutations == 120 and r.n == 5
    assert r.statistic == pytest.approx(rho) and r.pvalue == pytest.approx(p)
    mc = joint_mantel(d1, d2, permutations=99, seed=3)
    assert not mc.exact and mc.statistic == pytest.approx(rho) and mc.pvalue >= 1 / 100


def test_joint_mantel_aligns_labels_and_keeps_shared_objects() -> None:
    rng = np.random.default_rng(2)
    names = list("abcde")
    d = _dist(rng.normal(size=(5, 2)))
    f = _dist(rng.normal(size=(5, 2)))
    a = pd.DataFrame(d, index=names, columns=names)
    b = pd.DataFrame(f, index=names, columns=names)
    order = ["c", "a", "e", "b", "d"]
    shuffled = b.loc[order, order]
    assert joint_mantel([a], [shuffled]).statistic == pytest.approx(joint_mantel([a], [b]).statistic)
    # a group lacking 'e': only the four shared objects count, in every group
    small = a.drop(index="e", columns="e")
    r = joint_mantel([a, small], [b, b.drop(index="e", columns="e")])
    assert r.n == 4
    with pytest.raises(GraphticketsError, match="at least 3"):
        joint_mantel([a.iloc[:2, :2]], [b.iloc[:2, :2]])


def test_partial_spearman_equals_lstsq_residuals_of_ranks_written_out() -> None:
    rng = np.random.default_rng(0)
    n = 30
    dens = rng.uniform(size=(n, 2))  # two layer densities
    metric = dens @ [1.0, -2.0] + 0.3 * rng.normal(size=n)
    acc = dens @ [0.5, 1.0] + 0.2 * metric + 0.3 * rng.normal(size=n)
    r = partial_correlation(metric, acc, dens)
    # by hand: rank everything, regress on [1, ranks of the covariates], correlate the residuals
    rk = sps.rankdata
    design = np.column_stack([np.ones(n), rk(dens[:, 0]), rk(dens[:, 1])])
    ex = rk(metric) - design @ np.linalg.lstsq(design, rk(metric), rcond=None)[0]
    ey = rk(acc) - design @ np.linalg.lstsq(design, rk(acc), rcond=None)[0]
    rho = float(np.sum(ex * ey) / math.sqrt(np.sum(ex**2) * np.sum(ey**2)))
    df = n - 2 - 2
    assert r.statistic == pytest.approx(rho) and r.df == df and r.n == n
    assert r.pvalue == pytest.approx(2 * sps.t.sf(abs(rho) * math.sqrt(df / (1 - rho**2)), df))
    perm = partial_correlation(metric, acc, dens, permutations=999, seed=1)
    assert perm.reference == "permutation" and abs(perm.pvalue - r.pvalue) < 0.05 + r.pvalue


def test_partial_pearson_closed_form_for_one_covariate() -> None:
    rng = np.random.default_rng(4)
    z = rng.normal(size=40)
    x, y = z + rng.normal(size=40), 2 * z + rng.normal(size=40)
    rxy, rxz, ryz = np.corrcoef(x, y)[0, 1], np.corrcoef(x, z)[0, 1], np.corrcoef(y, z)[0, 1]
    closed = (rxy - rxz * ryz) / math.sqrt((1 - rxz**2) * (1 - ryz**2))
    r = partial_correlation(x, y, z, method="pearson")
    assert r.statistic == pytest.approx(closed) and r.df == 37
    # no covariates: Pearson's r and scipy's p; NaN rows dropped
    plain = partial_correlation(np.append(x, np.nan), np.append(y, 1.0), method="pearson")
    ref = sps.pearsonr(x, y)
    assert plain.n == 40 and plain.statistic == pytest.approx(ref.statistic) and plain.pvalue == pytest.approx(ref.pvalue)


def test_partial_correlations_table() -> None:
    t = pd.DataFrame({"m1": [1, 2, 3, 4, 5, 6.0], "m2": [6, 5, 4, 3, 2, 1.0], "acc": [2, 1, 4, 3, 6, 5.0],
                      "d": [1, 1, 2, 2, 3, 3.0]})  # fmt: skip
    out = partial_correlations(t, ["m1", "m2"], "acc", ["d"])
    assert out["metric"].tolist() == ["m1", "m2"] and out["statistic"].tolist() == pytest.approx([-1.0, 1.0])
    assert {"statistic", "p", "family", "unit", "n"} <= set(out.columns)
    with pytest.raises(GraphticketsError, match="not in the table"):
        partial_correlations(t, ["nope"], "acc", ["d"])
