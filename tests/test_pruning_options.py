"""Options of the scoring methods: schedules, defaults, prunable-parameter switches, rounds,
priors, and an independent re-implementation of iterative SynFlow."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

import graphtickets as gt
from graphtickets.pruning import METHODS, schedule_densities

SCORERS = ("magnitude", "snip", "grasp", "synflow")


def _seeded(build, seed: int = 0) -> nn.Module:  # type: ignore[no-untyped-def]
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return build()


def _mlp() -> nn.Module:
    return _seeded(lambda: nn.Sequential(nn.Linear(6, 10), nn.Tanh(), nn.Linear(10, 8), nn.Tanh(), nn.Linear(8, 4)), 2)


def _bn_conv() -> nn.Module:
    return _seeded(lambda: nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 5)), 4)  # fmt: skip


def _data(shape: tuple[int, ...], n_cls: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(5)
    return [(torch.randn(12, *shape, generator=g), torch.randint(0, n_cls, (12,), generator=g)) for _ in range(2)]


def _kw(method: str, shape: tuple[int, ...], n_cls: int) -> dict:
    if method == "synflow":
        return {"rounds": 5, "in_shape": shape}
    if method in ("snip", "grasp"):
        return {"data": _data(shape, n_cls)}
    return {}


# --------------------------------------------------------------------------- schedules and defaults
def test_schedules_by_hand() -> None:
    assert schedule_densities(0.2, 4, "linear") == pytest.approx([0.8, 0.6, 0.4, 0.2])
    assert schedule_densities(0.2, 4, "linear", start=0.6) == pytest.approx([0.5, 0.4, 0.3, 0.2])
    assert schedule_densities(0.01, 4) == pytest.approx([0.01**0.25, 0.1, 0.01**0.75, 0.01])
    assert schedule_densities(0.05, 2, start=0.5) == pytest.approx([0.5 * 0.1**0.5, 0.05])
    assert schedule_densities(0.3, 7)[-1] == 0.3
    with pytest.raises(gt.GraphticketsError, match="schedule"):
        schedule_densities(0.3, 2, "cosine")


def test_defaults_are_the_papers() -> None:
    syn = METHODS["synflow"].hparams()
    assert syn["rounds"] == 100 and syn["schedule"] == "exponential"
    assert METHODS["grasp"].hparams()["temperature"] == 200.0
    for m in ("snip", "grasp"):
        assert METHODS[m].hparams()["train_mode"] is False
        assert METHODS[m].hparams()["rounds"] == 1
    net = _mlp()
    t = gt.pruning.prune(net, "synflow", density=0.2, in_shape=(6,))
    assert t.meta["rounds"] == 100 and t.config["hparams"]["rounds"] == 100
    # the default 100 exponential rounds are what run: the same mask as asking for them
    same = gt.pruning.prune(net, "synflow", density=0.2, in_shape=(6,), rounds=100, schedule="exponential")
    assert t.masks.keys() == same.masks.keys() and all(torch.equal(t.masks[n], same.masks[n]) for n in t.masks)
    data = _data((6,), 4)
    g = gt.pruning.prune(net, "grasp", density=0.3, data=data)
    assert g.config["hparams"]["temperature"] == 200.0
    g200 = gt.pruning.prune(net, "grasp", density=0.3, data=data, temperature=200.0)
    assert all(torch.equal(g.masks[n], g200.masks[n]) for n in g.masks)


# --------------------------------------------------------------------------- prunable switches
@pytest.mark.parametrize("method", SCORERS)
def test_include_bias_and_keep_classifier_dense_through_prune(method: str) -> None:
    net = _mlp()
    kw = _kw(method, (6,), 4)
    weights = [n for n, p in net.named_parameters() if n.endswith("weight")]
    biases = [n for n, p in net.named_parameters() if n.endswith("bias")]
    t = gt.pruning.prune(net, method, density=0.3, include_bias=True, **kw)
    assert set(t.masks) == set(weights) | set(biases)
    n_all = sum(p.numel() for p in net.parameters())
    assert t.total == n_all and t.kept == round(0.3 * n_all)
    assert t.config["hparams"]["include_bias"] is True
    d = gt.pruning.prune(net, method, density=0.3, keep_classifier_dense=True, **kw)
    assert set(d.masks) == {"0.weight", "2.weight"}  # the classifier 4.weight stays dense
    assert d.kept == round(0.3 * (60 + 80))


# --------------------------------------------------------------------------- priors and rounds
@pytest.mark.parametrize("method", SCORERS)
@pytest.mark.parametrize("scope", ["global", "layer"])
def test_exact_count_and_nesting_with_a_prior(method: str, scope: str) -> None:
    net = _bn_conv()
    prior = gt.pruning.prune(net, "random", density=0.6, seed=1)
    kw = _kw(method, (3, 8, 8), 5)
    t = gt.pruning.prune(net, method, density=0.25, prior=prior, scope=scope, **kw)
    if scope == "global":
        assert t.kept == round(0.25 * t.total)
    else:
        assert {n: c[0] for n, c in t.layer_counts().items()} == {n: round(0.25 * m.numel()) for n, m in prior.masks.items()}
    assert all(not bool((m & ~prior.masks[n]).any()) for n, m in t.masks.items())


def test_iterated_magnitude_equals_one_shot() -> None:
    """|w| does not change when other weights are pruned: any schedule gives the one-shot mask."""
    net = _bn_conv()
    one = gt.pruning.prune(net, "magnitude", density=0.1)
    for schedule in ("exponential", "linear"):
        it = gt.pruning.prune(net, "magnitude", density=0.1, rounds=4, schedule=schedule)
        assert it == one


def _snip_hand(w1: np.ndarray, w2: np.ndarray, batches: list) -> tuple[np.ndarray, np.ndarray]:
    """∂/∂W of Σ_b mean CE(W2 tanh(W1 x)) by hand (the chain rule in numpy)."""
    g1, g2 = np.zeros_like(w1), np.zeros_like(w2)
    for x, y in batches:
        x, y = x.numpy(), y.numpy()
        h = np.tanh(x @ w1.T)
        z = h @ w2.T
        p = np.exp(z - z.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        p[np.arange(len(y)), y] -= 1.0
        p /= len(y)
        g2 += p.T @ h
        g1 += ((p @ w2) * (1 - h**2)).T @ x
    return g1, g2


@pytest.mark.parametrize("schedule", ["exponential", "linear"])
def test_iterated_snip_matches_hand_oracle(schedule: str) -> None:
    net = _seeded(lambda: nn.Sequential(nn.Linear(4, 6, bias=False), nn.Tanh(), nn.Linear(6, 3, bias=False)).double(), 3)
    g = torch.Generator().manual_seed(9)
    data = [(torch.randn(10, 4, generator=g, dtype=torch.float64), torch.randint(0, 3, (10,), generator=g)) for _ in range(2)]
    w1, w2 = net[0].weight.detach().numpy().copy(), net[2].weight.detach().numpy().copy()
    n = w1.size + w2.size
    alive = np.ones(n, dtype=bool)
    ds = [1 - 0.8 * k / 3 for k in (1, 2, 3)] if schedule == "linear" else [0.2 ** (k / 3) for k in (1, 2, 3)]
    for d in ds:
        m1, m2 = alive[: w1.size].reshape(w1.shape), alive[w1.size :].reshape(w2.shape)
        g1, g2 = _snip_hand(w1 * m1, w2 * m2, data)
        score = np.abs(np.concatenate([(g1 * w1 * m1).ravel(), (g2 * w2 * m2).ravel()]))
        live = np.flatnonzero(alive)
        keep = live[np.argsort(-score[live], kind="stable")[: round(d * n)]]
        alive = np.isin(np.arange(n), keep)
    t = gt.pruning.prune(net, "snip", density=0.2, data=data, rounds=3, schedule=schedule)
    got = np.concatenate([t.masks["0.weight"].numpy().ravel(), t.masks["2.weight"].numpy().ravel()])
    assert np.array_equal(got, alive)


# --------------------------------------------------------------------------- SynFlow, independently
def _synflow_reference(model: nn.Module, density: float, rounds: int, in_shape: tuple[int, ...], schedule: str = "exponential") -> dict[str, torch.Tensor]:
    """Iterative SynFlow written plainly: float64 copy, |params|, zero biases and BatchNorm shifts
    (beta, running mean), eval, all-ones input, scores of every weight each round, a full
    stable sort (ties by position), exponential/linear schedule."""
    work = copy.deepcopy(model).double().eval()
    names = [n for n, mod in work.named_modules() if isinstance(mod, (nn.Linear, nn.Conv2d))]
    names = [f"{n}.weight" for n in names]
    params = dict(work.named_parameters())
    with torch.no_grad():
        for n, p in params.items():
            p.copy_(p.abs() if not n.endswith("bias") else torch.zeros_like(p))
        for mod in work.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.running_mean.zero_()
    orig = {n: params[n].detach().clone() for n in names}
    mask = {n: torch.ones_like(orig[n], dtype=torch.bool) for n in names}
    total = sum(m.numel() for m in mask.values())
    for k in range(1, rounds + 1):
        d = density ** (k / rounds) if schedule == "exponential" else 1 - (1 - density) * k / rounds
        with torch.no_grad():
            for n in names:
                params[n].copy_(orig[n] * mask[n])
        for p in work.parameters():
            p.grad = None
        work(torch.ones((1, *in_shape), dtype=torch.float64)).sum().backward()
        score = torch.cat([(params[n].grad * params[n]).detach().abs().reshape(-1) for n in names]).numpy()
        alive = torch.cat([mask[n].reshape(-1) for n in names]).numpy()
        score = np.where(alive, score, -np.inf)
        keep = np.zeros(total, dtype=bool)
        keep[np.argsort(-score, kind="stable")[: round(d * total)]] = True
        start = 0
        for n in names:
            size = mask[n].numel()
            mask[n] = torch.from_numpy(keep[start : start + size].copy()).reshape(mask[n].shape)
            start += size
    return mask


@pytest.mark.parametrize("schedule", ["exponential", "linear"])
@pytest.mark.parametrize("kind", ["mlp", "bn_conv"])
def test_iterative_synflow_matches_plain_reimplementation(kind: str, schedule: str) -> None:
    if kind == "mlp":
        net = _seeded(lambda: nn.Sequential(nn.Linear(6, 20), nn.ReLU(), nn.Linear(20, 16), nn.ReLU(), nn.Linear(16, 4)), 1)
        shape: tuple[int, ...] = (6,)
    else:
        net = _bn_conv()
        shape = (3, 8, 8)
    ref = _synflow_reference(net, 0.05, 20, shape, schedule)
    for fast in (True, False):
        t = gt.pruning.prune(net, "synflow", density=0.05, rounds=20, in_shape=shape, schedule=schedule, fast=fast)
        assert all(torch.equal(t.masks[n], ref[n]) for n in ref), (fast, schedule)
