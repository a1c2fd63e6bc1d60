"""Live units and their overlap (against a hand computation); shared allocation (Kendall's W)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats
import torch

import graphtickets as gt
from graphtickets.analysis import (
    kendall_w,
    live_units,
    overlap_tail,
    shared_allocation,
    unit_overlap,
)


def _hyper_tail(x: int, n: int, ka: int, kb: int) -> float:
    """P(overlap >= x) by counting: C(ka, j) C(n - ka, kb - j) / C(n, kb)."""
    return sum(math.comb(ka, j) * math.comb(n - ka, kb - j) for j in range(x, min(ka, kb) + 1)) / math.comb(n, kb)


def test_live_units_follow_paths_through_the_layers() -> None:
    m = gt.models.build("mlp", in_shape=(4,), num_classes=2, widths=(3, 3), seed=0)
    fc1 = torch.tensor([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0]], dtype=torch.bool)  # unit 2: no input
    fc2 = torch.tensor([[1, 0, 0], [0, 0, 1], [0, 1, 0]], dtype=torch.bool)  # fc2 unit 1 reads the dead unit
    cls = torch.tensor([[1, 1, 0], [0, 0, 0]], dtype=torch.bool)  # fc2 unit 2 feeds nothing
    t = gt.Ticket({"fc1.weight": fc1, "fc2.weight": fc2, "classifier.weight": cls})
    u = live_units(m, t)
    assert u["live"].tolist() == [True, False, False, True, False, False]
    assert u.loc[1, "in_degree"] == 1 and u.loc[1, "out_degree"] == 1  # locally fine, yet no path


def test_overlap_p_against_hand_computation() -> None:
    assert overlap_tail(3, [(10, 4, 5)]) == pytest.approx(_hyper_tail(3, 10, 4, 5))
    # two layers: the tail of the sum by brute-force convolution of the hand pmfs
    pmf1 = [_hyper_tail(j, 6, 3, 2) - _hyper_tail(j + 1, 6, 3, 2) for j in range(3)]
    pmf2 = [_hyper_tail(j, 5, 2, 4) - _hyper_tail(j + 1, 5, 2, 4) for j in range(3)]
    tail = sum(p * q for i, p in enumerate(pmf1) for j, q in enumerate(pmf2) if i + j >= 3)
    assert overlap_tail(3, [(6, 3, 2), (5, 2, 4)]) == pytest.approx(tail)


def test_unit_overlap_table() -> None:
    m = gt.models.build("mlp", in_shape=(6,), num_classes=2, widths=(10,), seed=0)
    a = torch.zeros(10, 6, dtype=torch.bool)
    a[:4, 0] = True
    b = torch.zeros(10, 6, dtype=torch.bool)
    b[2:7, 1] = True
    cls = torch.ones(2, 10, dtype=torch.bool)
    tab = unit_overlap(m, gt.Ticket({"fc1.weight": a, "classifier.weight": cls}),
                       gt.Ticket({"fc1.weight": b, "classifier.weight": cls})).set_index("layer")  # fmt: skip
    row = tab.loc["fc1"]
    assert (row["live_a"], row["live_b"], row["both"]) == (4, 5, 2)
    assert row["p"] == pytest.approx(_hyper_tail(2, 10, 4, 5)) == pytest.approx(scipy.stats.hypergeom.sf(1, 10, 4, 5))
    assert tab.loc["all", "p"] == pytest.approx(row["p"])


def test_kendall_w_against_the_spearman_identity_and_by_hand() -> None:
    rng = np.random.default_rng(0)
    x = rng.random((5, 7))
    rho = scipy.stats.spearmanr(x.T).statistic
    mean_rho = (rho.sum() - 5) / 20
    assert kendall_w(x) == pytest.approx((4 * mean_rho + 1) / 5)
    # by hand with ties: rater [1, 2, 2] has ranks [1, 2.5, 2.5] and one tied pair (t^3 - t = 6)
    r = np.array([[1.0, 2.5, 2.5], [1.0, 2.0, 3.0]])
    tot = r.sum(0)
    s = ((tot - tot.mean()) ** 2).sum()
    want = 12 * s / (2**2 * (27 - 3) - 2 * (2**3 - 2))
    assert kendall_w(np.array([[1, 2, 2], [1, 2, 3]])) == pytest.approx(want)


def test_shared_allocation_identical_small_p_random_uniform_p() -> None:
    same = np.tile([0.02, 0.01, 0.2, 0.05], (5, 1)) + np.random.default_rng(1).normal(0, 1e-4, (5, 4))
    r = shared_allocation(same, permutations=2000, seed=0)
    assert r.statistic > 0.99 and r.p <= 2 / 2001
    ps = [shared_allocation(np.random.default_rng(s).random((4, 5)), permutations=199, seed=s).p for s in range(200)]
    assert scipy.stats.kstest(ps, "uniform").pvalue > 0.001
    assert np.mean(np.array(ps) <= 0.05) < 0.1
    ref = np.array([0.02, 0.01, 0.2, 0.05])
    dev = shared_allocation(same, reference=ref, permutations=199, seed=0)  # deviations are noise only
    assert dev.p > 0.01
