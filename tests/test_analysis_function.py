"""Functional distances of trained tickets: CKA against the HSIC formula and its invariances (on
features and through a network's hooks), agreement and kappa against sklearn and simulations,
error consistency, the loss barrier, compare() with data, and the errors."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

import graphtickets as gt
from graphtickets.analysis import (
    DISTANCES,
    FUNCTION_KINDS,
    agreement,
    cka_layers,
    cohen_kappa,
    compare,
    distance,
    error_consistency,
    functional_details,
    linear_cka,
    loss_barrier,
    profile,
    with_trained_weights,
)
from graphtickets.analysis.compare import NO_FUNCTION_NULL
from graphtickets.errors import GraphticketsError


def synthetic(in_shape: tuple[int, ...], n: int, seed: int, classes: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """Gaussian inputs, labels = argmax of a fixed random linear map (a learnable task)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, *in_shape, generator=g)
    w = torch.randn(int(np.prod(in_shape)), classes, generator=torch.Generator().manual_seed(99))
    return x, (x.reshape(n, -1) @ w).argmax(dim=1)


def train_ticket(model: nn.Module, t: gt.Ticket, x: torch.Tensor, y: torch.Tensor, epochs: int = 8, seed: int = 0) -> gt.Ticket:
    net = gt.models.build_from_spec(t.config["model"]) if t.config.get("model") else None
    assert net is not None
    t.apply(net)
    data = [(x[i : i + 64], y[i : i + 64]) for i in range(0, len(x), 64)]
    gt.training.train(net, data, masks=t, epochs=epochs, optimizer="adam", lr=1e-2, seed=seed)
    return with_trained_weights(t, net)


@pytest.fixture(scope="module")
def mlp_trained() -> tuple[nn.Module, list[gt.Ticket], list[tuple[torch.Tensor, torch.Tensor]]]:
    m = gt.models.build("mlp", in_shape=(8,), num_classes=3, widths=(16, 16, 16), seed=0)
    x, y = synthetic((8,), 512, 0)
    ts = [gt.pruning.prune(m, "random", density=d, seed=s) for s, d in enumerate([0.3, 0.4])]
    ts.append(gt.pruning.prune(m, "magnitude", density=0.5, seed=0))
    trained = [train_ticket(m, t, x, y, seed=i) for i, t in enumerate(ts)]
    xt, yt = synthetic((8,), 300, 1)
    return m, trained, [(xt[:128], yt[:128]), (xt[128:], yt[128:])]


# --------------------------------------------------------------------------- CKA
def hsic_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Kornblith et al.'s CKA from scratch: HSIC(K, L) = tr(K H L H) / (n - 1)^2, K = X X^T."""
    n = x.shape[0]
    h = np.eye(n) - np.ones((n, n)) / n
    k, l_ = x @ x.T, y @ y.T

    def hsic(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.trace(a @ h @ b @ h)) / (n - 1) ** 2

    return hsic(k, l_) / np.sqrt(hsic(k, k) * hsic(l_, l_))


@pytest.mark.parametrize("p, q", [(5, 7), (60, 80), (5, 90)])  # features, Gram, mixed paths (n = 40)
def test_linear_cka_equals_the_hsic_formula(p: int, q: int) -> None:
    rng = np.random.default_rng(p + q)
    x = rng.normal(size=(40, p))
    y = np.tanh(x[:, :1] @ rng.normal(size=(1, q))) + 0.5 * rng.normal(size=(40, q))
    assert linear_cka(x, y) == pytest.approx(hsic_cka(x, y), rel=1e-9)
    assert linear_cka(y, x) == pytest.approx(linear_cka(x, y), rel=1e-12)


@pytest.mark.parametrize("p", [6, 70])
def test_linear_cka_invariances(p: int) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, p))
    q, _ = np.linalg.qr(rng.normal(size=(p, p)))
    assert linear_cka(x, x) == pytest.approx(1.0, abs=1e-12)
    assert linear_cka(x, x @ q) == pytest.approx(1.0, abs=1e-10)  # orthogonal transform of the units
    assert linear_cka(x, 7.5 * x + 3.0) == pytest.approx(1.0, abs=1e-10)  # isotropic scaling (and a shift)
    aniso = x * np.linspace(0.1, 10.0, p)
    assert linear_cka(x, aniso) < 0.95  # not invariant to an anisotropic scaling: the test can fail
    assert 0.0 <= linear_cka(x, rng.normal(size=(50, p))) < 0.9


def dense_ticket(model: nn.Module) -> gt.Ticket:
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return gt.Ticket({n: torch.ones_like(p, dtype=torch.bool) for n, p in gt.prunable(model).items()}, weights=state)


def test_network_cka_with_itself_and_invariance_to_a_rotation_and_scaling_of_a_layer() -> None:
    with torch.random.fork_rng():  # the test's own models, without touching the global generator
        torch.manual_seed(0)
        net = nn.Sequential(nn.Linear(8, 16), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 3))
        other = nn.Sequential(nn.Linear(8, 16), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 3))
    x, y = synthetic((8,), 200, 3)
    data = [(x, y)]
    a = dense_ticket(net)
    same = cka_layers(a, a, model=net, data=data)
    assert list(same) == ["1", "3"]  # what fc "1" and the classifier "3" read
    assert all(v == pytest.approx(1.0, abs=1e-12) for v in same.values())
    assert distance(a, a, "cka", model=net, data=data) == pytest.approx(0.0, abs=1e-12)
    q = torch.linalg.qr(torch.randn(16, 16, generator=torch.Generator().manual_seed(1)))[0]
    for transform in (q, 3.0 * torch.eye(16)):  # rotation of layer 0's units; isotropic scaling
        rot = copy.deepcopy(net)
        with torch.no_grad():
            rot[0].weight.copy_(transform @ net[0].weight)
            rot[0].bias.copy_(transform @ net[0].bias)
            rot[1].weight.copy_(net[1].weight @ torch.linalg.inv(transform))
        b = dense_ticket(rot)
        h0, h1 = net[0](x), rot[0](x)
        assert not torch.allclose(h0, h1)  # the layer's representation did change
        per = cka_layers(a, b, model=net, data=data)
        assert per["1"] == pytest.approx(1.0, abs=1e-6) and per["3"] == pytest.approx(1.0, abs=1e-6)
        assert distance(a, b, "agreement", model=net, data=data) == 0.0
    # a different network is not CKA-identical
    assert cka_layers(a, dense_ticket(other), model=net, data=data)["1"] < 0.99


def test_hidden_layers_of_conv_nets_and_resnets() -> None:
    x, y = synthetic((3, 8, 8), 100, 0)
    conv = gt.models.build("conv2", in_shape=(3, 8, 8), num_classes=3, seed=0)
    t = with_trained_weights(gt.pruning.prune(conv, "random", density=0.5, seed=0), conv)
    flat = profile(t, conv, [(x, y)])
    assert flat.layers == ["features.2", "fc.0", "fc.2", "classifier"]
    mean = profile(t, conv, [(x, y)], conv="mean")
    assert mean.layers == flat.layers
    assert flat.reps[0].value.shape == (100, 100)  # 64 x 8 x 8 features > 100 inputs: a Gram matrix
    assert mean.reps[0].value.shape == (100, 64)  # channels averaged over positions
    res = gt.models.build("resnet20", in_shape=(3, 8, 8), num_classes=3, seed=0)
    rt = with_trained_weights(gt.pruning.prune(res, "random", density=0.5, seed=0), res)
    layers = profile(rt, res, [(x[:20], y[:20]), (x[20:], y[20:])], conv="mean").layers
    assert "conv1" not in layers and not any("shortcut" in n for n in layers)  # input; shared with conv1
    assert "stage2.0.conv1" in layers and layers[-1] == "classifier" and len(layers) == len(set(layers))
    assert len(layers) == 19  # 18 block convs + classifier read a hidden tensor each, shortcuts share
    # cka_examples keeps the first inputs only
    few = profile(t, conv, [(x[:25], y[:25]), (x[25:], y[25:])], cka_examples=30)
    assert few.reps[1].value.shape[0] == 30 and few.predictions.size == 100


# --------------------------------------------------------------------------- agreement and kappa
def test_agreement_and_kappa_by_hand_and_against_sklearn() -> None:
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 4, 300), rng.integers(0, 4, 300)
    b[:150] = a[:150]
    assert cohen_kappa(a, b) == pytest.approx(sk.cohen_kappa_score(a, b), abs=1e-12)
    assert agreement(a, b) == pytest.approx(np.mean(a == b))
    assert agreement(a, a) == 1.0 and cohen_kappa(a, a) == 1.0
    assert cohen_kappa(np.zeros(5), np.zeros(5)) == 1.0
    assert error_consistency(a, a, b) == 1.0


def test_kappa_is_zero_for_independent_predictions() -> None:
    rng = np.random.default_rng(1)
    n, freq = 200_000, [0.5, 0.3, 0.15, 0.05]
    a, b = rng.choice(4, n, p=freq), rng.choice(4, n, p=freq[::-1])
    assert agreement(a, b) == pytest.approx(np.dot(freq, freq[::-1]), abs=0.005)
    assert abs(cohen_kappa(a, b)) < 0.01


@pytest.mark.parametrize("acc_a, acc_b", [(0.8, 0.6), (0.95, 0.9), (0.5, 0.3)])
def test_error_consistency_is_zero_for_independent_errors_of_given_accuracies(acc_a: float, acc_b: float) -> None:
    rng = np.random.default_rng(2)
    n, k = 200_000, 10
    y = rng.integers(0, k, n)

    def predict(acc: float) -> np.ndarray:
        right = rng.random(n) < acc
        wrong = (y + rng.integers(1, k, n)) % k  # a uniformly drawn wrong class
        return np.where(right, y, wrong)

    a, b = predict(acc_a), predict(acc_b)
    assert np.mean(a == y) == pytest.approx(acc_a, abs=0.005)
    assert abs(error_consistency(a, b, y)) < 0.01
    # both follow the labels, so their classes agree beyond class chance: Cohen's kappa is not 0
    agree = acc_a * acc_b + (1 - acc_a) * (1 - acc_b) / (k - 1)
    assert cohen_kappa(a, b) == pytest.approx((agree - 1 / k) / (1 - 1 / k), abs=0.01)
    same_errors = np.where(rng.random(n) < 0.5, a, b)
    assert error_consistency(a, a, y) == 1.0 and error_consistency(a, same_errors, y) > 0.3


# --------------------------------------------------------------------------- registered kinds
def test_function_family_is_registered() -> None:
    for k in FUNCTION_KINDS:
        spec = DISTANCES[k]
        assert spec.family == "function" and spec.needs_data and spec.needs_model
    assert {k for k, s in DISTANCES.items() if s.family == "function"} == set(FUNCTION_KINDS)


def test_functional_distances_of_trained_tickets(mlp_trained) -> None:
    m, ts, data = mlp_trained
    a, b = ts[0], ts[2]
    det = functional_details(a, b, model=m, data=data)
    assert det["accuracy_a"] > 0.6 and det["accuracy_b"] > 0.6  # they did learn the task
    assert distance(a, b, "agreement", model=m, data=data) == pytest.approx(1 - det["agreement"])
    assert distance(a, b, "agreement_kappa", model=m, data=data) == pytest.approx(1 - det["kappa"])
    assert distance(a, b, "error_consistency", model=m, data=data) == pytest.approx(1 - det["error_consistency"])
    assert distance(a, b, "cka", model=m, data=data) == pytest.approx(1 - det["cka"])
    assert set(det) >= {"cka/fc2", "cka/fc3", "cka/classifier"}
    # the ticket's recorded spec stands in for model=
    assert distance(a, b, "cka", data=data) == pytest.approx(1 - det["cka"])
    # a shuffling loader is read once: both tickets see the same inputs
    xs = torch.cat([x for x, _ in data])
    ys = torch.cat([y for _, y in data])
    from graphtickets.data import NamedTensorDataset
    loader = gt.data.batches(NamedTensorDataset(xs, ys), batch_size=50, shuffle=True, seed=3)
    assert distance(a, a, "agreement", model=m, data=loader) == 0.0
    assert distance(a, b, "agreement", model=m, data=loader) == pytest.approx(1 - det["agreement"])


def test_compare_with_data_and_nulls(mlp_trained) -> None:
    m, ts, data = mlp_trained
    named = {"a": ts[0], "b": ts[1], "c": ts[2]}
    table = compare(named, m, data=data, null_samples=3, kinds=["jaccard", "cka", "agreement"])
    assert set(table["kind"]) == {"jaccard", "cka", "agreement"}
    fn = table[table["kind"] == "cka"]
    assert fn["null_mean"].isna().all() and (fn["note"] == NO_FUNCTION_NULL).all()
    assert table[table["kind"] == "jaccard"]["null_mean"].notna().all()
    for r in fn.itertuples():
        assert r.value == pytest.approx(distance(named[r.a], named[r.b], "cka", model=m, data=data))
    default = compare(named, m, data=data)
    assert set(FUNCTION_KINDS) <= set(default["kind"])
    assert not set(FUNCTION_KINDS) & set(compare(named, m)["kind"])  # no data: no function kinds
    assert not set(FUNCTION_KINDS) & set(compare(named, m, data=data, effective=True)["kind"])


def test_clear_errors(mlp_trained) -> None:
    m, ts, data = mlp_trained
    bare = gt.pruning.prune(m, "random", density=0.3, seed=0)
    with pytest.raises(GraphticketsError, match="carries no weights"):
        distance(bare, ts[0], "agreement", model=m, data=data)
    with pytest.raises(GraphticketsError, match="data="):
        distance(ts[0], ts[1], "cka", model=m)
    g = [gt.graphs.layered_graph(m, t) for t in ts[:2]]
    with pytest.raises(GraphticketsError, match="not graphs"):
        distance(g[0], g[1], "agreement", data=data)
    with pytest.raises(GraphticketsError, match="effective=True"):
        distance(ts[0], ts[1], "cka", model=m, data=data, effective=True)
    with pytest.raises(GraphticketsError, match="effective=True"):
        compare(ts, m, data=data, kinds=["agreement"], effective=True)
    with pytest.raises(GraphticketsError, match="conv must be"):
        distance(ts[0], ts[1], "cka", model=m, data=data, conv="max")


def test_trained_weights_survive_a_file(mlp_trained, tmp_path) -> None:
    m, ts, data = mlp_trained
    ts[0].save(tmp_path / "a.safetensors")
    back = gt.Ticket.load(tmp_path / "a.safetensors")
    assert back.meta["weights"] == "trained" and set(back.weights) >= {"fc1.weight", "fc1.bias"}
    assert distance(back, ts[0], "agreement", model=m, data=data) == 0.0
    assert distance(back, ts[0], "cka", model=m, data=data) == pytest.approx(0.0, abs=1e-12)


# --------------------------------------------------------------------------- loss barrier
def test_loss_barrier(mlp_trained) -> None:
    m, ts, data = mlp_trained
    a, b = ts[0], ts[2]
    self_ = loss_barrier(a, a, model=m, data=data)
    assert self_.barrier == 0.0 and self_.error_barrier == 0.0
    r = loss_barrier(a, b, model=m, data=data, points=5)
    s = loss_barrier(b, a, model=m, data=data, points=5)
    assert r.barrier >= 0 and r.barrier == s.barrier and r.losses == s.losses[::-1]
    # oracle: the midpoint network built by hand
    na, nb = (gt.models.build_from_spec(t.config["model"]) for t in (a, b))
    a.apply(na)
    b.apply(nb)
    mid = gt.models.build_from_spec(a.config["model"])
    mid.load_state_dict({k: (na.state_dict()[k] + nb.state_dict()[k]) / 2 for k in na.state_dict()})
    ev = gt.training.evaluate(mid, data)
    assert r.losses[2] == pytest.approx(ev["loss"], rel=1e-5)
    assert r.errors[2] == pytest.approx(1 - ev["accuracy"], abs=1e-9)
    line = [r.losses[0] + (r.losses[-1] - r.losses[0]) * i / 4 for i in range(5)]
    assert r.barrier == pytest.approx(max(0.0, max(lv - ln for lv, ln in zip(r.losses, line, strict=True))), abs=1e-12)
