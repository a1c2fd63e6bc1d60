"""SNIP, GraSP, SynFlow against oracles that do not share their code; ablations; layer collapse."""

from __future__ import annotations

import copy

import networkx as nx
import numpy as np
import pytest
import torch
from torch import nn

import graphtickets as gt
from graphtickets.errors import GraphticketsError
from graphtickets.pruning.grasp import hessian_gradient
from graphtickets.pruning.snip import snip_scores
from graphtickets.pruning.synflow import synflow_scores


def _seeded(build, seed: int = 0) -> nn.Module:  # type: ignore[no-untyped-def]
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return build()


def _two_layer() -> nn.Module:
    return _seeded(lambda: nn.Sequential(nn.Linear(3, 4, bias=False), nn.Linear(4, 3, bias=False)).double(), 1)


def _batches(n_in: int = 3, n_cls: int = 3, b: int = 5, n: int = 2) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(7)
    return [(torch.randn(b, n_in, generator=g, dtype=torch.float64), torch.randint(0, n_cls, (b,), generator=g)) for _ in range(n)]


def _grad_closed_form(w1: np.ndarray, w2: np.ndarray, batches: list, temperature: float) -> tuple[np.ndarray, np.ndarray]:
    """d/dW of sum_b mean CE(W2 W1 x / T): hand-derived for the bias-free linear 2-layer net."""
    g1, g2 = np.zeros_like(w1), np.zeros_like(w2)
    for x, y in batches:
        x, y = x.numpy(), y.numpy()
        h = x @ w1.T
        z = h @ w2.T / temperature
        p = np.exp(z - z.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        d = p.copy()
        d[np.arange(len(y)), y] -= 1.0
        d /= temperature * len(y)
        g2 += d.T @ h
        g1 += (d @ w2).T @ x
    return g1, g2


def test_snip_matches_hand_derived_gradient() -> None:
    net, data = _two_layer(), _batches()
    w1, w2 = net[0].weight.detach().numpy(), net[1].weight.detach().numpy()
    g1, g2 = _grad_closed_form(w1, w2, data, 1.0)
    masks = {"0.weight": torch.ones(4, 3, dtype=torch.bool), "1.weight": torch.ones(3, 4, dtype=torch.bool)}
    s = snip_scores(net, masks, data)
    np.testing.assert_allclose(s["0.weight"].numpy(), np.abs(g1 * w1), rtol=1e-10)
    np.testing.assert_allclose(s["1.weight"].numpy(), np.abs(g2 * w2), rtol=1e-10)
    t = gt.pruning.prune(net, "snip", density=0.25, data=iter(data))  # a one-shot iterator works
    ref = np.concatenate([np.abs(g1 * w1).ravel(), np.abs(g2 * w2).ravel()])
    kept = np.concatenate([t.masks["0.weight"].numpy().ravel(), t.masks["1.weight"].numpy().ravel()])
    assert set(np.flatnonzero(kept)) == set(np.argsort(-ref)[:6])
    inv = gt.pruning.prune(net, "snip", density=0.25, data=data, invert=True)
    kept = np.concatenate([inv.masks["0.weight"].numpy().ravel(), inv.masks["1.weight"].numpy().ravel()])
    assert set(np.flatnonzero(kept)) == set(np.argsort(ref)[:6])


@pytest.mark.parametrize("temperature", [2.0, 200.0])
def test_grasp_hg_matches_finite_differences_and_sign(temperature: float) -> None:
    net, data = _two_layer(), _batches()
    w1, w2 = net[0].weight.detach().numpy().copy(), net[1].weight.detach().numpy().copy()
    g1, g2 = _grad_closed_form(w1, w2, data, temperature)
    gnorm = np.sqrt((g1**2).sum() + (g2**2).sum())
    eps = 1e-4 / gnorm
    p1, p2 = _grad_closed_form(w1 + eps * g1, w2 + eps * g2, data, temperature)
    m1, m2 = _grad_closed_form(w1 - eps * g1, w2 - eps * g2, data, temperature)
    hg1, hg2 = (p1 - m1) / (2 * eps), (p2 - m2) / (2 * eps)
    g, hg = hessian_gradient(net, ["0.weight", "1.weight"], data, temperature=temperature)
    np.testing.assert_allclose(g["0.weight"].numpy(), g1, rtol=1e-9)
    scale = max(np.abs(hg1).max(), np.abs(hg2).max())
    np.testing.assert_allclose(hg["0.weight"].numpy(), hg1, rtol=1e-5, atol=1e-6 * scale)
    np.testing.assert_allclose(hg["1.weight"].numpy(), hg2, rtol=1e-5, atol=1e-6 * scale)
    # sign convention: keep the LARGEST w * Hg (the paper removes the largest -w * Hg)
    score = np.concatenate([(w1 * hg1).ravel(), (w2 * hg2).ravel()])
    t = gt.pruning.prune(net, "grasp", density=0.25, data=data, temperature=temperature)
    kept = np.concatenate([t.masks["0.weight"].numpy().ravel(), t.masks["1.weight"].numpy().ravel()])
    assert set(np.flatnonzero(kept)) == set(np.argsort(-score)[:6])
    assert score[kept].min() > score[~kept].max()


def _abs_r(model: nn.Module, in_shape: tuple[int, ...]) -> float:
    """R of the linearized network, computed independently of the implementation."""
    import copy

    m = copy.deepcopy(model).double().eval()
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(p.abs())
        return float(m(torch.ones((1, *in_shape), dtype=torch.float64)).sum())


@pytest.mark.parametrize("kind", ["mlp", "conv"])
def test_synflow_conservation_every_layer_sums_to_r(kind: str) -> None:
    if kind == "mlp":
        net = _seeded(lambda: nn.Sequential(nn.Linear(6, 9, bias=False), nn.ReLU(), nn.Linear(9, 7, bias=False), nn.ReLU(), nn.Linear(7, 4, bias=False)))
        shape: tuple[int, ...] = (6,)
    else:
        net = _seeded(lambda: nn.Sequential(
            nn.Conv2d(2, 4, 3, padding=1, bias=False), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(4, 5, 3, bias=False), nn.ReLU(), nn.Flatten(), nn.Linear(5 * 2 * 2, 3, bias=False)))
        shape = (2, 8, 8)
    masks = {n: torch.ones(p.shape, dtype=torch.bool) for n, p in gt.prunable(net).items()}
    s = synflow_scores(net, masks, in_shape=shape)
    r = _abs_r(net, shape)
    for name, sc in s.items():
        assert float(sc.sum()) == pytest.approx(r, rel=1e-10), name


def _mlp4(seed: int) -> nn.Module:
    return gt.models.build("mlp", in_shape=(12,), num_classes=5, widths=(24, 24, 24, 24), seed=seed)


@pytest.mark.parametrize("fast", [True, False])
def test_synflow_biases_carry_no_flow(fast: bool) -> None:
    """Data-free by construction: a 4-hidden-layer MLP with PyTorch's default (non-zero) biases
    and the same MLP with its biases zeroed give the same mask."""
    for seed in (0, 1):
        net = _mlp4(seed)
        zero = copy.deepcopy(net)
        with torch.no_grad():
            for n, p in zero.named_parameters():
                if n.endswith("bias"):
                    p.zero_()
        assert all(bool((p != 0).any()) for n, p in net.named_parameters() if n.endswith("bias"))
        for d in (0.2, 0.01):
            a = gt.pruning.prune(net, "synflow", density=d, rounds=30, fast=fast)
            b = gt.pruning.prune(zero, "synflow", density=d, rounds=30, fast=fast)
            assert all(torch.equal(a.masks[n], b.masks[n]) for n in a.masks), (seed, d)


def test_synflow_scores_are_path_sums_and_bias_scores_the_injected_flow() -> None:
    """Every layer's scores sum to R = 1^T |W_L| ... |W_1| 1 (the path sum, biases ignored),
    and a prunable bias scores |b| * dR/db at zero biases (hand-written with torch.func)."""
    from torch.func import functional_call, grad

    net = _mlp4(2)
    masks = {n: torch.ones(p.shape, dtype=torch.bool) for n, p in gt.prunable(net, include_bias=True).items()}
    s = synflow_scores(net, masks, in_shape=(12,))
    ws = [p.detach().double().abs() for n, p in net.named_parameters() if n.endswith("weight")]
    v = torch.ones(12, dtype=torch.float64)
    for w in ws:
        v = w @ v
    r = float(v.sum())
    for n, sc in s.items():
        if n.endswith("weight"):
            assert float(sc.sum()) == pytest.approx(r, rel=1e-10), n
    m64 = copy.deepcopy(net).double().eval()
    flow = {n: (p.detach().abs() if n.endswith("weight") else torch.zeros_like(p)) for n, p in m64.named_parameters()}
    g = grad(lambda ps: functional_call(m64, ps, (torch.ones(1, 12, dtype=torch.float64),)).sum())(flow)
    for n, p in net.named_parameters():
        if n.endswith("bias"):
            torch.testing.assert_close(s[n], (p.detach().double().abs() * g[n]), rtol=1e-12, atol=0.0)


def _bn_net() -> nn.Module:
    net = _seeded(lambda: nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
        nn.Flatten(), nn.Linear(8, 5)), 3)
    with torch.no_grad():  # non-trivial running statistics
        net[1].running_mean.uniform_(-0.1, 0.1, generator=torch.Generator().manual_seed(0))
        net[5].running_var.uniform_(0.5, 2.0, generator=torch.Generator().manual_seed(1))
    return net


@pytest.mark.parametrize("scope", ["global", "layer"])
def test_synflow_fast_equals_generic_and_leaves_model_alone(scope: str) -> None:
    net = _bn_net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    prior = gt.pruning.prune(net, "random", density=0.7, seed=1)
    kw = dict(density=0.08, rounds=15, in_shape=(3, 8, 8), scope=scope, prior=prior)
    fast = gt.pruning.prune(net, "synflow", **kw)
    slow = gt.pruning.prune(net, "synflow", fast=False, **kw)
    assert fast == slow
    for n, m in fast.masks.items():
        assert not bool((m & ~prior.masks[n]).any())
    after = net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # weights, signs, BN stats
    assert net.training  # mode untouched


def test_synflow_float64_guard_on_deep_net() -> None:
    """A deep net whose flow overflows float32 still ranks (float64), identically to a
    float64 oracle that scores with torch.func in one shot."""
    def build() -> nn.Module:
        layers: list[nn.Module] = []
        for _ in range(24):
            layers += [nn.Linear(16, 16, bias=False), nn.ReLU()]
        return nn.Sequential(*layers, nn.Linear(16, 2, bias=False))

    net = _seeded(build, 5)
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(40.0)
    with torch.no_grad():  # the same flow in float32 overflows
        x = torch.ones(1, 16)
        for m in net:
            x = torch.relu(x) if isinstance(m, nn.ReLU) else x @ m.weight.abs().T
    assert not torch.isfinite(x.sum())  # float32 overflows
    t = gt.pruning.prune(net, "synflow", density=0.1, rounds=1, in_shape=(16,))
    assert t.kept == round(0.1 * t.total)
    # oracle: float64 scores by torch.func on the abs weights
    from torch.func import functional_call, grad

    absw = {n: p.detach().double().abs() for n, p in net.named_parameters()}
    m64 = _seeded(build, 5).double()
    gr = grad(lambda ps: functional_call(m64, ps, (torch.ones(1, 16, dtype=torch.float64),)).sum())(absw)
    score = torch.cat([(gr[n] * absw[n]).reshape(-1) for n in t.masks])
    kept = torch.cat([t.masks[n].reshape(-1) for n in t.masks])
    assert score[kept].min() > score[~kept].max()


# --------------------------------------------------------------------------- ablations
def test_shuffle_keeps_layer_counts_and_is_seeded() -> None:
    net = _bn_net()
    t = gt.pruning.prune(net, "magnitude", density=0.3)
    a, b, c = gt.pruning.shuffle(t, seed=1), gt.pruning.shuffle(t, seed=1), gt.pruning.shuffle(t, seed=2)
    assert a.layer_counts() == t.layer_counts()
    assert a == b and a != c and a != t
    assert a.meta["ablation"] == {"kind": "shuffle", "seed": 1, "of": "magnitude"}


def test_shuffle_keeps_the_tickets_weights() -> None:
    net = _bn_net()
    t = gt.pruning.prune(net, "magnitude", density=0.3)
    g = torch.Generator().manual_seed(5)
    carried = {n: torch.randn(p.shape, generator=g) for n, p in net.named_parameters()}  # e.g. rewound
    tw = gt.Ticket(masks=t.masks, method="imp", weights=carried)
    s = gt.pruning.shuffle(tw, seed=3)
    assert s.weights is not None and s.weights.keys() == carried.keys()
    assert all(torch.equal(s.weights[n], carried[n]) for n in carried)  # same values
    assert any(not torch.equal(s.masks[n], t.masks[n]) for n in t.masks)  # other positions
    model = s.apply(copy.deepcopy(net))
    params = dict(model.named_parameters())
    for n, m in s.masks.items():  # the shuffled mask over the carried values, not the model's own
        assert torch.equal(params[n], carried[n] * m)
    assert gt.pruning.shuffle(t, seed=3).weights is None  # nothing carried, nothing invented
    assert gt.pruning.reinit(tw, net, seed=11)[0].weights is None  # reinit: fresh weights by definition


def test_reinit_same_mask_fresh_weights() -> None:
    net = _bn_net()
    t = gt.pruning.prune(net, "magnitude", density=0.3)
    state = torch.random.get_rng_state()
    t2, fresh = gt.pruning.reinit(t, net, seed=11)
    assert torch.equal(state, torch.random.get_rng_state())
    assert t2.masks.keys() == t.masks.keys() and all(torch.equal(t.masks[n], t2.masks[n]) for n in t.masks)
    params = dict(fresh.named_parameters())
    for n, m in t.masks.items():
        assert not bool(params[n][~m].any())  # pruned weights are zero
        assert not torch.equal(params[n], dict(net.named_parameters())[n])
    again = gt.pruning.reinit(t, net, seed=11)[1]
    assert all(torch.equal(p, q) for p, q in zip(fresh.parameters(), again.parameters(), strict=True))
    assert t2.meta["ablation"]["kind"] == "reinit"
    spec_model = gt.models.build("mlp", in_shape=(10,), num_classes=3, widths=(8,), seed=0)
    ts = gt.pruning.prune(spec_model, "random", density=0.5)
    ts2, fresh2 = gt.pruning.reinit(ts, spec_model, seed=4)
    assert ts2.config["model"]["seed"] == 4
    ref = gt.models.build("mlp", in_shape=(10,), num_classes=3, widths=(8,), seed=4)
    ts.apply(ref, weights=False)
    assert all(torch.equal(p, q) for p, q in zip(fresh2.parameters(), ref.parameters(), strict=True))
    with pytest.raises(GraphticketsError, match="another seed"):
        gt.pruning.reinit(ts, spec_model, seed=0)


def test_invert_scores() -> None:
    net = _bn_net()
    t = gt.pruning.invert_scores(net, "magnitude", density=0.2)
    w = torch.cat([p.detach().abs().reshape(-1) for p in gt.prunable(net).values()])
    kept = torch.cat([m.reshape(-1) for m in t.masks.values()])
    assert w[kept].max() < w[~kept].min()
    with pytest.raises(GraphticketsError, match="invert"):  # IMP ranks no scores of its own to invert
        gt.pruning.invert_scores(net, "imp", density=0.2)


# --------------------------------------------------------------------------- layer collapse
def _collapse_oracle(masks: list[np.ndarray]) -> set[int]:
    """Layers with no live edge on an input->output path, by networkx on the unit graph."""
    g = nx.DiGraph()
    for layer, m in enumerate(masks):
        for o, i in zip(*np.nonzero(m), strict=True):
            g.add_edge((layer, int(i)), (layer + 1, int(o)))
    sources = [(0, i) for i in range(masks[0].shape[1])]
    sinks = [(len(masks), o) for o in range(masks[-1].shape[0])]
    from_in = set().union(*[nx.descendants(g, s) | {s} for s in sources if s in g])
    to_out = set().union(*[nx.ancestors(g, t) | {t} for t in sinks if t in g])
    return {
        layer for layer, m in enumerate(masks)
        if not any((layer, int(i)) in from_in and (layer + 1, int(o)) in to_out for o, i in zip(*np.nonzero(m), strict=True))
    }


@pytest.mark.parametrize("seed", range(6))
def test_collapsed_layers_matches_networkx_on_chains(seed: int) -> None:
    net = nn.Sequential(nn.Linear(5, 6), nn.ReLU(), nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 3))
    rng = np.random.default_rng(seed)
    shapes = [(6, 5), (4, 6), (3, 4)]
    masks = [rng.random(s) < 0.18 for s in shapes]
    names = ["0.weight", "2.weight", "4.weight"]
    if not any(m.any() for m in masks):
        masks[0][0, 0] = True
    t = gt.Ticket({n: torch.from_numpy(m) for n, m in zip(names, masks, strict=True)})
    assert set(gt.pruning.collapsed_layers(net, t)) == {names[i] for i in _collapse_oracle(masks)}


def test_collapsed_layers_conv_flatten_and_residual() -> None:
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 2 * 2, 2))
    conv = torch.zeros(2, 1, 3, 3, dtype=torch.bool)
    conv[0, 0, 1, 1] = True  # only channel 0 lives
    fc = torch.zeros(2, 8, dtype=torch.bool)
    fc[0, 5] = True  # features 4..7 belong to channel 1 (dead): no path
    t = gt.Ticket({"0.weight": conv, "3.weight": fc})
    assert gt.pruning.collapsed_layers(net, t) == ["0.weight", "3.weight"]
    fc[1, 2] = True  # feature 2 is channel 0: a path
    assert gt.pruning.collapsed_layers(net, gt.Ticket({"0.weight": conv, "3.weight": fc})) == []
    # the general path rule (input shape given) agrees with the chain rule here
    assert gt.pruning.collapsed_layers(net, gt.Ticket({"0.weight": conv, "3.weight": fc}), in_shape=(1, 4, 4)) == []
    fc[1, 2] = False
    assert gt.pruning.collapsed_layers(net, t, in_shape=(1, 4, 4)) == ["0.weight", "3.weight"]
    res = gt.models.build("resnet20", in_shape=(3, 8, 8), num_classes=3)
    tr = gt.pruning.prune(res, "magnitude", density=0.5)
    first = next(iter(tr.masks))
    masks = dict(tr.masks)
    masks[first] = torch.zeros_like(masks[first])  # the stem: nothing after it has a path
    assert gt.pruning.collapsed_layers(res, gt.Ticket(masks)) == list(masks)
    with pytest.raises(GraphticketsError, match="in_shape"):
        gt.pruning.collapsed_layers(gt.models.resnet.ResNet((3, 8, 8), 3, 20), gt.Ticket(masks))


def _layered_oracle(model: nn.Module, ticket: gt.Ticket) -> list[str]:
    """Collapsed layers by networkx reachability on the layered (channel-level) graph."""
    g = gt.graphs.layered_graph(model, ticket)
    G = g.to_networkx()
    roles = g.nodes["role"].to_numpy()
    inputs = [i for i in range(len(roles)) if roles[i] == "input"]
    outputs = [i for i in range(len(roles)) if roles[i] == "output"]
    fwd = set(inputs).union(*[nx.descendants(G, s) for s in inputs])
    bwd = set(outputs).union(*[nx.ancestors(G, t) for t in outputs])
    out = []
    for r in g.edge_params[g.edge_params["kind"].isin(["linear", "conv"])].itertuples():
        src, dst = range(int(r.src_start), int(r.src_stop)), range(int(r.dst_start), int(r.dst_stop))
        if not any(u in fwd and v in bwd for u in src for v in G.successors(u) if v in dst):
            out.append(str(r.param))
    return [n for n in ticket.masks if n in out]


def _cut(ticket: gt.Ticket, names: list[str]) -> gt.Ticket:
    return gt.Ticket({n: torch.zeros_like(m) if n in names else m for n, m in ticket.masks.items()})


def test_collapsed_layers_resnet_matches_networkx_on_layered_graph() -> None:
    res = gt.models.build("resnet20", in_shape=(3, 16, 16), num_classes=4)
    base = gt.pruning.prune(res, "random", density=0.3, seed=2)
    assert gt.pruning.collapsed_layers(res, base) == _layered_oracle(res, base) == []
    # a block's conv emptied: the identity skip keeps the network connected; only the block's
    # two convs collapse (conv1 has live weights but its only way out is conv2)
    block = _cut(base, ["stage2.1.conv2.weight"])
    expect = ["stage2.1.conv1.weight", "stage2.1.conv2.weight"]
    assert gt.pruning.collapsed_layers(res, block) == _layered_oracle(res, block) == expect
    # a stage cut: every block of stage 2 loses its convs, and the downsampling block's
    # projection shortcut too: nothing passes stage 2, every layer collapses
    stage = _cut(base, [n for n in base.masks if n.startswith("stage2.") and ("conv2" in n or "shortcut" in n)])
    got = gt.pruning.collapsed_layers(res, stage)
    assert got == _layered_oracle(res, stage) == list(base.masks)
    # only the projection shortcut cut: stage 2's first block still passes through its convs
    short = _cut(base, ["stage2.0.shortcut.0.weight"])
    assert gt.pruning.collapsed_layers(res, short) == _layered_oracle(res, short) == ["stage2.0.shortcut.0.weight"]


@pytest.mark.parametrize("seed", range(3))
def test_collapsed_layers_vgg_and_mlp_match_networkx(seed: int) -> None:
    vgg = gt.models.build("vgg11", in_shape=(3, 16, 16), num_classes=4, width=0.125)
    mlp = gt.models.build("mlp", in_shape=(12,), num_classes=3, widths=(10, 8, 6))
    for model, dens in ((vgg, 0.04), (mlp, 0.12)):
        t = gt.pruning.prune(model, "random", density=dens, seed=seed, scope="global")
        assert gt.pruning.collapsed_layers(model, t) == _layered_oracle(model, t)
    t = gt.pruning.prune(vgg, "random", density=0.5, seed=seed)
    cut = _cut(t, ["features.4.weight"] if "features.4.weight" in t.masks else [next(iter(t.masks))])
    assert gt.pruning.collapsed_layers(vgg, cut) == _layered_oracle(vgg, cut) == list(t.masks)


def test_collapsed_layers_deep_network_does_not_overflow() -> None:
    """ResNet-110 (dense fan-in up to 576): an unnormalized flow of counts overflows float64; the binarized one does not."""
    res = gt.models.resnet.ResNet((3, 8, 8), 3, 110)
    t = gt.pruning.prune(res, "magnitude", density=1.0)
    assert gt.pruning.collapsed_layers(res, t, in_shape=(3, 8, 8)) == []
    last = [n for n in t.masks if n.startswith("stage3.") and n.endswith("conv2.weight")][-1]
    got = gt.pruning.collapsed_layers(res, _cut(t, [last]), in_shape=(3, 8, 8))
    assert got == [last.replace("conv2", "conv1"), last]


# --------------------------------------------------------------------------- GraSP with a prior
def _masked_grasp_oracle(w1: np.ndarray, w2: np.ndarray, m1: np.ndarray, m2: np.ndarray, data: list, temperature: float) -> np.ndarray:
    """``w ⊙ Hg`` of the MASKED network f(W1⊙M1, W2⊙M2) on its live weights, flattened.

    g is the hand-derived gradient of the masked network (chain rule: ∇_W = ∇_{W⊙M} ⊙ M),
    Hg the central finite difference of that gradient along g. Pruned entries score 0.
    """
    def grad(a1: np.ndarray, a2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        q1, q2 = _grad_closed_form(a1 * m1, a2 * m2, data, temperature)
        return q1 * m1, q2 * m2

    g1, g2 = grad(w1, w2)
    eps = 1e-4 / np.sqrt((g1**2).sum() + (g2**2).sum())
    p1, p2 = grad(w1 + eps * g1, w2 + eps * g2)
    n1, n2 = grad(w1 - eps * g1, w2 - eps * g2)
    hg1, hg2 = (p1 - n1) / (2 * eps), (p2 - n2) / (2 * eps)
    return np.concatenate([(w1 * m1 * hg1).ravel(), (w2 * m2 * hg2).ravel()])


def _flat(t: gt.Ticket) -> np.ndarray:
    return np.concatenate([t.masks["0.weight"].numpy().ravel(), t.masks["1.weight"].numpy().ravel()])


def _top_live(score: np.ndarray, alive: np.ndarray, k: int) -> set[int]:
    live = np.flatnonzero(alive)
    return set(live[np.argsort(-score[live], kind="stable")[:k]].tolist())


@pytest.mark.parametrize("temperature", [2.0, 200.0])
def test_grasp_with_prior_matches_masked_network_oracle(temperature: float) -> None:
    from graphtickets.pruning.core import masked_copy
    from graphtickets.pruning.grasp import grasp_scores

    net, data = _two_layer(), _batches()
    w1, w2 = net[0].weight.detach().numpy().copy(), net[1].weight.detach().numpy().copy()
    prior = gt.pruning.prune(net, "random", density=0.6, seed=3, scope="global")
    m1, m2 = prior.masks["0.weight"].numpy(), prior.masks["1.weight"].numpy()
    oracle = _masked_grasp_oracle(w1, w2, m1.astype(float), m2.astype(float), data, temperature)
    s = grasp_scores(masked_copy(net, prior.masks), prior.masks, data, temperature=temperature)
    ours = np.concatenate([s["0.weight"].numpy().ravel(), s["1.weight"].numpy().ravel()])
    alive = _flat(prior)
    scale = np.abs(oracle).max()
    np.testing.assert_allclose(ours[alive], oracle[alive], rtol=1e-5, atol=1e-6 * scale)
    assert not ours[~alive].any()  # pruned weights score 0 and have no Hg
    t = gt.pruning.prune(net, "grasp", density=0.25, data=data, temperature=temperature, prior=prior)
    assert set(np.flatnonzero(_flat(t))) == _top_live(oracle, alive, 6)


def test_grasp_two_rounds_match_hand_oracle() -> None:
    """Iterated GraSP, round by round on the masked network (exponential schedule)."""
    net, data = _two_layer(), _batches()
    w1, w2 = net[0].weight.detach().numpy().copy(), net[1].weight.detach().numpy().copy()
    n = w1.size + w2.size
    alive = np.ones(n, dtype=bool)
    for d in (0.25**0.5, 0.25):
        m1, m2 = alive[: w1.size].reshape(w1.shape), alive[w1.size :].reshape(w2.shape)
        score = _masked_grasp_oracle(w1, w2, m1.astype(float), m2.astype(float), data, 200.0)
        keep = _top_live(score, alive, round(d * n))
        alive = np.isin(np.arange(n), list(keep))
    t = gt.pruning.prune(net, "grasp", density=0.25, data=data, rounds=2)
    assert np.array_equal(_flat(t), alive)


# --------------------------------------------------------------------------- scoring mode (BatchNorm)
@pytest.mark.parametrize("method", ["snip", "grasp"])
def test_data_scorers_use_eval_mode_by_default(method: str) -> None:
    from graphtickets.pruning.core import masked_copy
    from graphtickets.pruning.grasp import grasp_scores

    scorer = {"snip": snip_scores, "grasp": grasp_scores}[method]
    net = _bn_net()
    g = torch.Generator().manual_seed(0)
    data = [(2.0 * torch.randn(16, 3, 8, 8, generator=g) + 0.5, torch.randint(0, 5, (16,), generator=g))]
    masks = {n: torch.ones(p.shape, dtype=torch.bool) for n, p in gt.prunable(net).items()}
    ev = scorer(masked_copy(net, masks), masks, data, train_mode=False)
    tr = scorer(masked_copy(net, masks), masks, data, train_mode=True)
    # BatchNorm with batch statistics vs running statistics: the scores differ
    assert any(not torch.allclose(ev[n], tr[n], rtol=1e-3, atol=0.0) for n in masks)
    # an explicit oracle of eval mode: the same copy put in eval mode by hand
    hand = masked_copy(net, masks).eval()
    ref = scorer(hand, masks, data, train_mode=False)
    assert all(torch.equal(ev[n], ref[n]) for n in masks)
    default = gt.pruning.prune(net, method, density=0.2, data=data)
    assert default.config["hparams"]["train_mode"] is False
    assert default.meta["scoring_mode"] == "eval"
    from graphtickets.pruning.select import select_topk

    assert default.masks.keys() == ev.keys()
    expect = select_topk(ev, 0.2)
    assert all(torch.equal(default.masks[n], expect[n]) for n in masks)
    train = gt.pruning.prune(net, method, density=0.2, data=data, train_mode=True)
    assert train.config["hparams"]["train_mode"] is True and train.meta["scoring_mode"] == "train"
    assert all(torch.equal(train.masks[n], select_topk(tr, 0.2)[n]) for n in masks)
    assert net.training  # the model's own mode is untouched
