"""Selection (exact counts, tie-breaking, priors) and the baselines (random, magnitude, ERK)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn.utils import prune as tprune

import graphtickets as gt
from graphtickets.errors import GraphticketsError
from graphtickets.pruning.baselines import erk_densities
from graphtickets.pruning.select import keep_count, select_topk, topk_flat


def _net(seed: int = 0) -> nn.Module:
    with torch.random.fork_rng():  # seeded init, global RNG left as found
        torch.manual_seed(seed)
        return nn.Sequential(nn.Linear(13, 7), nn.ReLU(), nn.Linear(7, 5), nn.ReLU(), nn.Linear(5, 3))


@given(
    sizes=st.lists(st.integers(1, 30), min_size=1, max_size=4),
    density=st.floats(0.01, 1.0),
    seed=st.integers(0, 1000),
)
@settings(max_examples=40, deadline=None)
def test_exact_counts_global_and_layer(sizes: list[int], density: float, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    # few distinct values: many ties
    scores = {f"l{i}": torch.randint(0, 3, (n,), generator=g).float() for i, n in enumerate(sizes)}
    total = sum(sizes)
    m = select_topk(scores, density)
    assert sum(int(v.sum()) for v in m.values()) == int(round(density * total))
    ml = select_topk(scores, density, scope="layer")
    for n, v in ml.items():
        assert int(v.sum()) == int(round(density * scores[n].numel()))
    # every kept score >= every pruned score
    kept = torch.cat([scores[n][m[n]] for n in scores])
    gone = torch.cat([scores[n][~m[n]] for n in scores])
    if kept.numel() and gone.numel():
        assert kept.min() >= gone.max()


def test_ties_break_by_position_across_layers() -> None:
    s = {"a": torch.ones(3), "b": torch.ones(4)}
    m = select_topk(s, 4 / 7)
    assert m["a"].tolist() == [True, True, True] and m["b"].tolist() == [True, False, False, False]
    assert topk_flat(np.array([2.0, 1.0, 2.0, 2.0]), 2).tolist() == [True, False, True, False]
    assert keep_count(0.5, 7) == 4  # round half to even: 3.5 -> 4


def test_prior_is_respected_and_never_grows() -> None:
    s = {"w": torch.tensor([5.0, 4.0, 3.0, 2.0, 1.0])}
    prior = {"w": torch.tensor([False, True, True, True, True])}
    m = select_topk(s, 0.4, prior=prior)
    assert m["w"].tolist() == [False, True, True, False, False]
    with pytest.raises(GraphticketsError, match="never come back"):
        select_topk(s, 1.0, prior=prior)
    with pytest.raises(GraphticketsError, match="NaN"):
        select_topk({"w": torch.tensor([1.0, float("nan")])}, 0.5)


@pytest.mark.parametrize("density", [0.1, 0.37, 0.8])
def test_global_magnitude_equals_torch_global_unstructured(density: float) -> None:
    model = _net(1)
    n = sum(p.numel() for p in gt.prunable(model).values())  # 91 + 35 + 15 = 141
    assert abs(density * n - round(density * n)) != 0.5
    ticket = gt.pruning.prune(model, "magnitude", density=density)
    ref = _net(1)
    params = [(ref[i], "weight") for i in (0, 2, 4)]
    tprune.global_unstructured(params, pruning_method=tprune.L1Unstructured, amount=1.0 - density)
    theirs = gt.Ticket.from_torch_prune(ref)
    for name, mask in ticket.masks.items():
        assert torch.equal(mask, theirs.masks[name]), name


def _torch_global_l1(model: nn.Module, amount: int | float) -> gt.Ticket:
    """Prune ``model``'s prunable weights with torch's global_unstructured + L1Unstructured."""
    modules = dict(model.named_modules())
    params = [(modules[n.rpartition(".")[0]], n.rpartition(".")[2]) for n in gt.prunable(model)]
    tprune.global_unstructured(params, pruning_method=tprune.L1Unstructured, amount=amount)
    return gt.Ticket.from_torch_prune(model)


def _half_integer_densities(n: int) -> list[float]:
    """Densities d with d * n half an integer (k = 0 would keep no weight), plus ordinary ones and the ends."""
    half = [(k + 0.5) / n for k in (1, 2, n // 7, n // 2, n // 2 - 1, (9 * n) // 10, n - 2)]
    return [*half, 1 / n, 0.5, 0.1, 0.37, 1.0]


@pytest.mark.parametrize(
    "name, build",
    [
        ("mlp", lambda: _net(1)),  # 141 weights
        ("conv2", lambda: gt.models.build("conv2", in_shape=(3, 8, 8), num_classes=4, seed=5)),
        ("resnet20", lambda: gt.models.build("resnet20", in_shape=(3, 8, 8), num_classes=4, seed=5)),
    ],
)
def test_global_magnitude_equals_torch_with_the_integer_amount(name, build) -> None:
    """At every density, including half-integer d*N, our selection is torch's given the same count.

    We keep round(d*N) (half to even); torch, given a float amount 1-d, prunes round((1-d)*N),
    which at a half-integer d*N keeps one weight more. Passing torch the integer number to prune,
    N - round(d*N), removes that difference: the selected weights are then identical.
    """
    model = build()
    n = sum(p.numel() for p in gt.prunable(model).values())
    for density in _half_integer_densities(n):
        ticket = gt.pruning.prune(model, "magnitude", density=density)
        keep = round(density * n)
        assert ticket.kept == keep
        theirs = _torch_global_l1(build(), n - keep)
        assert theirs.kept == keep
        for pname, mask in ticket.masks.items():
            assert torch.equal(mask, theirs.masks[pname]), (name, density, pname)


def test_float_amount_differs_by_one_weight_at_half_integer_counts() -> None:
    """The documented one-weight difference: N = 141, d = 0.5 -> we keep 70, torch keeps 71."""
    model = _net(1)
    ours = gt.pruning.prune(model, "magnitude", density=0.5)
    theirs = _torch_global_l1(_net(1), 0.5)
    assert (ours.kept, theirs.kept) == (70, 71)
    # ours is nested in theirs: the same order, one weight fewer
    assert all(bool((ours.masks[k] <= theirs.masks[k]).all()) for k in ours.masks)


def test_magnitude_layer_scope_and_invert() -> None:
    model = _net(2)
    t = gt.pruning.prune(model, "magnitude", density=0.2, scope="layer")
    params = gt.prunable(model)
    for name, m in t.masks.items():
        w = params[name].detach().abs().reshape(-1)
        k = int(round(0.2 * w.numel()))
        assert int(m.sum()) == k
        assert set(torch.topk(w, k).indices.tolist()) == set(torch.nonzero(m.reshape(-1)).reshape(-1).tolist())
    inv = gt.pruning.prune(model, "magnitude", density=0.2, scope="layer", invert=True)
    for name, m in inv.masks.items():
        w = params[name].detach().abs().reshape(-1)
        k = int(round(0.2 * w.numel()))
        assert set(torch.topk(w, k, largest=False).indices.tolist()) == set(torch.nonzero(m.reshape(-1)).reshape(-1).tolist())


@pytest.mark.parametrize("density", [0.05, 0.3, 0.9])
def test_erk_densities_sum_and_exact_counts(density: float) -> None:
    shapes = {"c1": (16, 3, 3, 3), "c2": (32, 16, 3, 3), "fc": (10, 32)}
    dens = erk_densities(shapes, density)
    sizes = {n: int(np.prod(s)) for n, s in shapes.items()}
    total = sum(sizes.values())
    assert sum(dens[n] * sizes[n] for n in shapes) == pytest.approx(density * total)
    assert all(0 < d <= 1 for d in dens.values())
    # ERK's raw ratio (sum of dims / prod of dims) orders the non-saturated layers
    free = [n for n in shapes if dens[n] < 1]
    raw = {n: sum(shapes[n]) / sizes[n] for n in shapes}
    for a in free:
        for b in free:
            if raw[a] > raw[b]:
                assert dens[a] > dens[b]
    model = nn.Sequential(nn.Conv2d(3, 16, 3), nn.ReLU(), nn.Conv2d(16, 32, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10))
    t = gt.pruning.prune(model, "random", density=density, distribution="erk", seed=3)
    assert t.kept == int(round(density * total))


def test_random_is_deterministic_per_seed() -> None:
    model = _net(0)
    a = gt.pruning.prune(model, "random", density=0.3, seed=5)
    b = gt.pruning.prune(model, "random", density=0.3, seed=5)
    c = gt.pruning.prune(model, "random", density=0.3, seed=6)
    assert a == b and a != c
    for m in a.masks.values():  # layer scope by default: exact per layer
        assert int(m.sum()) == int(round(0.3 * m.numel()))
    state = torch.random.get_rng_state()
    gt.pruning.prune(model, "random", density=0.3, seed=5, scope="global")
    assert torch.equal(state, torch.random.get_rng_state())  # local generator only


@pytest.mark.parametrize("seed", range(5))
def test_synflow_prune_set_keeps_topk_flat(seed: int) -> None:
    """SynFlow's selection (a sampled bound, then a partition of the candidates only, dead
    entries NaN) must keep exactly topk_flat of the live scores: with values that differ by
    1e-12, exact ties, zeros, huge values, dead entries, and arrays larger than the sample."""
    from graphtickets.pruning.select import topk_flat
    from graphtickets.pruning.synflow_engine import prune_set

    rng = np.random.default_rng(seed)
    for n_rand in (300, 200_000):
        s = np.concatenate([
            rng.random(n_rand), 1.0 + 1e-12 * rng.integers(0, 20, 200), np.full(50, 0.5),
            1e300 * (1 + rng.random(30)), np.zeros(40), np.full(60, np.nan),
        ])  # fmt: skip
        rng.shuffle(s)
        live = np.flatnonzero(~np.isnan(s))
        for k in (0, 1, 29, 30, 31, 100, 229, 230, 250, live.size // 2, live.size - 41, live.size - 40, live.size - 1, live.size):
            gone = prune_set(s, live.size - k, live.size)
            kept = np.ones(s.size, dtype=bool)
            kept[gone] = False
            kept[np.isnan(s)] = False
            want = np.zeros(s.size, dtype=bool)
            want[live[topk_flat(s[live], k)]] = True
            assert np.array_equal(kept, want), (n_rand, k)
            assert np.all(np.diff(gone) > 0)  # ascending, no duplicates
        # ties broken by a given order instead of the index: the higher order is pruned
        order = rng.permutation(s.size)
        gone = prune_set(s, live.size - 250, live.size, order=lambda i, o=order: o[i])
        v = s.copy()
        v[np.isnan(v)] = -np.inf
        ranked = sorted(live, key=lambda i: (-v[i], order[i]))
        assert set(gone.tolist()) == set(ranked[250:])
