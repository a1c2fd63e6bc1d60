"""The 1-D models (``cnn1d``, ``resnet1d``) and every part of the library on tiny instances.

Oracles that do not share code with the library: the MNIST-1D paper's CNN written with
``torch.nn.functional`` from its published hyperparameters, parameter counts by formula, graphs
rebuilt by loops over the masks, networkx reachability, SynFlow scores of a hand-written
functional forward, and ``torch.nn.utils.prune``.
"""

from __future__ import annotations

import copy
import math
import operator

import networkx as nx
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import prune as tprune

import graphtickets as gt
from graphtickets.errors import GraphticketsError
from graphtickets.models import ModelError, build
from graphtickets.pruning import METHODS

# ---------------------------------------------------------------------------- fixtures


def _cnn(**kw: object) -> nn.Module:
    return build("cnn1d", in_shape=(40,), num_classes=10, seed=0, channels=6, **kw)


def _resnet(depth: int = 8, seed: int = 0) -> nn.Module:
    return build("resnet1d", in_shape=(40,), num_classes=10, seed=seed, depth=depth, widths=[4, 6, 8])


TINY = {"cnn1d": lambda: _cnn(), "cnn1d_bn": lambda: _cnn(batchnorm=True), "resnet1d": lambda: _resnet()}


def _batches(n: int = 3, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(16, 40, generator=g), torch.randint(0, 10, (16,), generator=g)) for _ in range(n)]


def _random_ticket(model: nn.Module, density: float, seed: int) -> gt.Ticket:
    g = torch.Generator().manual_seed(seed)
    return gt.Ticket({n: torch.rand(p.shape, generator=g) < density for n, p in gt.prunable(model).items()})


def _n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# ---------------------------------------------------------------------------- models


def _reference_cnn(x: torch.Tensor, p: dict[str, torch.Tensor]) -> torch.Tensor:
    """ConvBase of the MNIST-1D reference, from its published hyperparameters (kernels 5, 3, 3;
    stride 2; padding 1; ReLU; the flattened maps feed one Linear layer)."""
    h = x.view(-1, 1, x.shape[-1])
    for i, k in zip(("0", "2", "4"), (5, 3, 3), strict=True):
        w = p[f"features.{i}.weight"]
        assert w.shape[-1] == k
        h = F.conv1d(h, w, p[f"features.{i}.bias"], stride=2, padding=1).relu()
    return F.linear(h.reshape(h.shape[0], -1), p["classifier.weight"], p["classifier.bias"])


def test_cnn1d_is_the_mnist1d_papers_cnn() -> None:
    m = build("cnn1d", in_shape=(40,), num_classes=10, seed=1)
    # 25 channels; 40 -> 19 -> 10 -> 5 positions; the reference prints 5,210 parameters
    conv = (1 * 25 * 5 + 25) + (25 * 25 * 3 + 25) + (25 * 25 * 3 + 25)
    assert _n_params(m) == conv + 125 * 10 + 10 == 5210
    assert m.classifier.in_features == 125 and isinstance(m.unflatten, nn.Unflatten)
    x = torch.randn(7, 40, generator=torch.Generator().manual_seed(0))
    params = {n: p.detach() for n, p in m.named_parameters()}
    torch.testing.assert_close(m(x), _reference_cnn(x, params), rtol=0, atol=1e-6)
    # (C, L) inputs: C input channels, no unflatten
    m2 = build("cnn1d", in_shape=(3, 20), num_classes=4, channels=8)
    assert m2.features[0].in_channels == 3 and not hasattr(m2, "unflatten")
    assert m2.classifier.in_features == 8 * 3  # 20 -> 9 -> 5 -> 3
    assert m2(torch.zeros(2, 3, 20)).shape == (2, 4)


def test_cnn1d_batchnorm_layout() -> None:
    m = build("cnn1d", in_shape=(40,), num_classes=10, batchnorm=True)
    convs = [x for x in m.features if isinstance(x, nn.Conv1d)]
    bns = [x for x in m.features if isinstance(x, nn.BatchNorm1d)]
    assert len(convs) == len(bns) == 3 and all(c.bias is None for c in convs)
    kinds = [type(x).__name__ for x in m.features]
    assert kinds == ["Conv1d", "BatchNorm1d", "ReLU"] * 3
    assert _n_params(m) == 5210 - 3 * 25 + 3 * 2 * 25 == 5285
    assert m.gt_spec["batchnorm"] is True


def _resnet_count(depth: int, w: tuple[int, int, int], k: int = 3, classes: int = 10) -> int:
    n = (depth - 2) // 6
    block = lambda ci, co: ci * co * k + co * co * k + 4 * co  # noqa: E731  (2 convs, 2 BN)
    short = lambda ci, co: ci * co + 2 * co  # noqa: E731  (1x1 conv + BN)
    total = 1 * w[0] * k + 2 * w[0]
    c_in = w[0]
    for s, c in enumerate(w):
        for i in range(n):
            total += block(c_in, c) + (short(c_in, c) if (s > 0 and i == 0) else 0)
            c_in = c
    return total + w[2] * classes + classes


@pytest.mark.parametrize("depth", [8, 14, 20])
def test_resnet1d_counts_and_layout(depth: int) -> None:
    m = build("resnet1d", in_shape=(40,), num_classes=10, depth=depth)
    assert _n_params(m) == _resnet_count(depth, (16, 32, 64))
    n = (depth - 2) // 6
    assert len(m.stage1) == len(m.stage2) == len(m.stage3) == n
    assert m.stage2[0].conv1.stride == (2,) and isinstance(m.conv1, nn.Conv1d) and isinstance(m.bn1, nn.BatchNorm1d)
    traced = torch.fx.symbolic_trace(m)
    adds = [x for x in traced.graph.nodes if x.op == "call_function" and x.target in (operator.add, torch.add)]
    assert len(adds) == 3 * n
    small = build("resnet1d", in_shape=(40,), num_classes=10, depth=depth, widths=[4, 6, 8])
    assert _n_params(small) == _resnet_count(depth, (4, 6, 8))


def test_resnet1d_is_resnet20_on_sequences() -> None:
    """Same class, names and construction order: resnet1d(depth=20) is resnet20 on (40,) inputs."""
    a = build("resnet1d", in_shape=(40,), num_classes=10, depth=20, seed=5)
    b = build("resnet20", in_shape=(40,), num_classes=10, seed=5)
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb) and all(torch.equal(sa[k], sb[k]) for k in sa)
    # and the parameter names of the 2-D CIFAR ResNet-20 (Elastic LTH's block rules)
    img = build("resnet20", in_shape=(3, 32, 32), num_classes=10)
    assert [n for n, _ in a.named_parameters()] == [n for n, _ in img.named_parameters()]


def test_1d_model_errors() -> None:
    with pytest.raises(ModelError, match="sequences"):
        build("cnn1d", in_shape=(1, 8, 8), num_classes=10)
    with pytest.raises(ModelError, match="length"):
        build("cnn1d", in_shape=(2,), num_classes=10)
    with pytest.raises(ModelError, match="channels"):
        build("cnn1d", in_shape=(40,), num_classes=10, channels=0)
    with pytest.raises(ModelError, match="batchnorm"):
        build("cnn1d", in_shape=(40,), num_classes=10, batchnorm=1)
    with pytest.raises(ModelError, match="6n"):
        build("resnet1d", in_shape=(40,), num_classes=10, depth=10)
    with pytest.raises(ModelError, match="widths"):
        build("resnet1d", in_shape=(40,), num_classes=10, widths=[4, 8])
    with pytest.raises(ModelError, match="sequences"):
        build("resnet1d", in_shape=(3, 32, 32), num_classes=10)


def test_1d_models_init_and_spec_round_trip() -> None:
    m = build("resnet1d", in_shape=(40,), num_classes=10, depth=8, widths=[4, 6, 8], seed=2, init="kaiming_normal")
    assert m.gt_spec == {"name": "resnet1d", "in_shape": [40], "num_classes": 10, "seed": 2, "depth": 8,
                         "widths": [4, 6, 8], "init": "kaiming_normal"}  # fmt: skip
    again = gt.models.build_from_spec(m.gt_spec)
    assert all(torch.equal(a, b) for a, b in zip(m.state_dict().values(), again.state_dict().values(), strict=True))
    w = build("cnn1d", in_shape=(40,), num_classes=10, init="kaiming_normal").features[2]
    assert not bool(w.bias.any())


def test_cli_lists_the_1d_models(capsys: pytest.CaptureFixture[str]) -> None:
    from graphtickets.cli import main

    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "cnn1d" in out and "resnet1d" in out


# ---------------------------------------------------------------------------- pruning methods

#: Small budgets; every "train" method's epochs at 1-2.
HP: dict[str, dict[str, object]] = {
    "synflow": {"rounds": 10},
    # the tiny nets' heads hold most weights: the classifier at half the rate leaves no room at 0.2
    "imp": {"rate": 0.6, "epochs": 1, "output_rate": None},  # 2 rounds to density 0.2
    "early_bird": {"epochs": 3, "window": 2},
    "early_magnitude": {"epochs": 3, "window": 2},
    "gem_miner": {"epochs": 2, "finetune_epochs": 0},
    "rigl": {"epochs": 2, "delta_t": 1},
    "gmp": {"epochs": 2, "frequency": 1},
    "set": {"epochs": 2},
}


@pytest.mark.parametrize("model_name", sorted(TINY))
@pytest.mark.parametrize("method", sorted(m for m in METHODS if METHODS[m].kind != "transform"))
def test_every_method_on_1d_models(method: str, model_name: str) -> None:
    model = TINY[model_name]()
    before = copy.deepcopy(model.state_dict())
    data = _batches()
    spec = METHODS[method]
    kw: dict = dict(HP.get(method, {}))
    assert set(kw) <= set(spec.hparams()), f"HP[{method!r}] passes options {method!r} does not take"
    if spec.family == "derived":  # built from other tickets of the same model
        kw["sources"] = [gt.pruning.prune(model, m, density=0.2, data=data, seed=s)
                         for m, s in (("snip", 2), ("magnitude", 3), ("random", 4))]
    if method == "early_bird" and not any(isinstance(m, nn.BatchNorm1d) for m in model.modules()):
        # Early-Bird draws channel masks from BatchNorm scales: a model without BatchNorm is refused
        with pytest.raises(GraphticketsError, match="batchnorm=True"):
            gt.pruning.prune(model, method, density=0.2, data=data, seed=1, **kw)
        return
    t = gt.pruning.prune(model, method, density=0.2, data=data, seed=1, **kw)
    params = dict(model.named_parameters())
    assert set(t.masks) == set(gt.prunable(model))
    for n, m in t.masks.items():
        assert m.dtype == torch.bool and m.shape == params[n].shape
    total = sum(m.numel() for m in t.masks.values())
    per_layer = all(int(m.sum()) == round(0.2 * m.numel()) for m in t.masks.values())
    assert t.kept == round(0.2 * total) or per_layer, (t.kept, round(0.2 * total))
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before), "the model was modified"
    again = gt.pruning.prune(model, method, density=0.2, data=data, seed=1, **kw)
    assert t == again
    # the ticket trains with its mask enforced
    net = t.build_model()
    gt.training.train(net, data, masks=t, epochs=1, optimizer="adam", lr=1e-3)
    assert all(not bool(p.detach()[~t.masks[n]].any()) for n, p in gt.prunable(net).items())


def _abs_params(model: nn.Module) -> dict[str, torch.Tensor]:
    """|weights| and zero biases: SynFlow's biases carry no flow (data-free by construction)."""
    return {
        n: (p.detach().double().abs() if p.dim() > 1 else torch.zeros_like(p, dtype=torch.float64)).requires_grad_(p.dim() > 1)
        for n, p in model.named_parameters()
    }


def test_synflow_one_round_equals_functional_oracle() -> None:
    """One round of SynFlow on cnn1d: |w * dR/dw| of R = sum f(1) with |params|, by hand."""
    model = _cnn()
    p = _abs_params(model)
    r = _reference_cnn(torch.ones(1, 40, dtype=torch.float64), p).sum()
    names = [n for n in p if p[n].dim() > 1]
    grads = torch.autograd.grad(r, [p[n] for n in names])
    scores = torch.cat([(g * p[n]).detach().reshape(-1) for n, g in zip(names, grads, strict=True)])
    k = round(0.1 * scores.numel())
    keep = torch.zeros_like(scores, dtype=torch.bool)
    keep[torch.topk(scores, k).indices] = True
    for fast in (True, False):
        t = gt.pruning.prune(model, "synflow", density=0.1, rounds=1, fast=fast)
        got = torch.cat([t.masks[n].reshape(-1) for n in names])
        assert torch.equal(got, keep), f"fast={fast}"


@pytest.mark.parametrize("model_name", ["cnn1d_bn", "resnet1d"])
@pytest.mark.parametrize("options", [{}, {"scope": "layer"}, {"include_bias": True}])
def test_synflow_engine_equals_generic_path_on_conv1d(model_name: str, options: dict) -> None:
    """Conv1d goes through the engine's autograd fallback; BatchNorm1d is folded: same mask."""
    model = TINY[model_name]()
    g = torch.Generator().manual_seed(4)
    with torch.no_grad():  # non-trivial running statistics, so that folding matters
        for mod in model.modules():
            if isinstance(mod, nn.BatchNorm1d):
                mod.running_var.uniform_(0.5, 2.0, generator=g)
                mod.running_mean.uniform_(-0.5, 0.5, generator=g)
                mod.weight.uniform_(0.5, 1.5, generator=g)
    fast = gt.pruning.prune(model, "synflow", density=0.05, rounds=20, **options)
    slow = gt.pruning.prune(model, "synflow", density=0.05, rounds=20, fast=False, **options)
    assert fast.masks.keys() == slow.masks.keys()
    assert all(torch.equal(fast.masks[n], slow.masks[n]) for n in fast.masks)


def test_early_bird_channel_mode_cnn1d_batchnorm() -> None:
    """Channel tickets through BatchNorm1d: a pruned channel loses its producing rows and its
    consumers' inputs (the next conv's input channel; after the flatten, its 5 features)."""
    model = build("cnn1d", in_shape=(40,), num_classes=10, channels=6, batchnorm=True, seed=0)
    t = gt.pruning.prune(model, "early_bird", density=0.3, data=_batches(), epochs=3, window=2, exact=False)
    assert t.meta["mode"] == "channel"
    m0, m1, m2, mc = (t.masks[n] for n in ("features.0.weight", "features.3.weight", "features.6.weight",
                                            "classifier.weight"))  # fmt: skip
    keep = [m.flatten(1).any(1) for m in (m0, m1, m2)]  # kept channels = live output rows
    assert 0 < sum(int(k.sum()) for k in keep) < 18
    assert sum(int(k.sum()) for k in keep) == t.meta["channels_kept"]
    expect0 = keep[0][:, None, None].expand_as(m0)
    expect1 = (keep[1][:, None] & keep[0][None, :])[:, :, None].expand_as(m1)
    expect2 = (keep[2][:, None] & keep[1][None, :])[:, :, None].expand_as(m2)
    expect_c = keep[2].repeat_interleave(5)[None, :].expand_as(mc)  # channel c -> features 5c..5c+4
    for got, want in ((m0, expect0), (m1, expect1), (m2, expect2), (mc, expect_c)):
        assert torch.equal(got, want)


def test_early_bird_channel_mode_resnet1d_keeps_residual_outputs() -> None:
    """Channels feeding a residual add keep their outgoing weights; bn1 channels of a block
    are removed on both sides (conv1 rows, conv2 columns)."""
    model = _resnet(depth=14)
    t = gt.pruning.prune(model, "early_bird", density=0.4, data=_batches(), epochs=3, window=2, exact=False)
    assert t.meta["mode"] == "channel"
    rows = {n: m.flatten(1).any(1) for n, m in t.masks.items()}
    assert sum(int((~r).sum()) for r in rows.values()) > 0  # some channels are pruned
    for n, m in t.masks.items():
        if n == "classifier.weight":
            assert bool(m.all())  # no BatchNorm after it; its inputs come from an add
        elif n.endswith("conv2.weight"):
            k1 = rows[n.replace("conv2", "conv1")]
            assert torch.equal(m, (rows[n][:, None] & k1[None, :])[:, :, None].expand_as(m))
        else:  # stem conv, block conv1, shortcut: inputs come from an add or the input
            assert torch.equal(m, rows[n][:, None, None].expand_as(m)), n


def test_elastic_between_resnet1d_depths() -> None:
    r14, r20, r8 = _resnet(14), _resnet(20, seed=1), _resnet(8, seed=2)
    src = gt.pruning.prune(r14, "magnitude", density=0.3)
    up = gt.pruning.prune(r20, "elastic", source=src, source_model=r14, carry_weights=True)
    assert up.meta["mapping"] == {"stage1": [0, 1, 1], "stage2": [0, 1, 1], "stage3": [0, 1, 1]}
    for n, m in up.masks.items():
        parts = n.split(".")
        if parts[0].startswith("stage"):
            parts[1] = str([0, 1, 1][int(parts[1])])
        assert torch.equal(m, src.masks[".".join(parts)]), n
    assert up.weights is not None and torch.equal(up.weights["stage2.2.bn1.running_var"],
                                                  r14.stage2[1].bn1.running_var)  # fmt: skip
    net = up.build_model()
    assert net(torch.zeros(2, 40)).shape == (2, 10)
    down = gt.pruning.prune(r8, "elastic", source=src, source_model=r14)
    assert down.meta["mapping"]["stage3"] == [0]
    assert torch.equal(down.masks["stage3.0.shortcut.0.weight"], src.masks["stage3.0.shortcut.0.weight"])
    # one block per stage: only the downsampling block exists, which cannot fill a plain slot
    with pytest.raises(GraphticketsError, match="downsampling block only maps to block 0"):
        gt.pruning.prune(r14, "elastic", source=gt.pruning.prune(r8, "magnitude", density=0.3), source_model=r8)


# ---------------------------------------------------------------------------- graphs


def test_layered_graph_cnn1d_by_loops() -> None:
    """Every edge of cnn1d's layered graph rebuilt by loops over the masks (input channel ->
    conv channels -> ... -> flatten features -> classes; conv weight = live kernel entries)."""
    model = _cnn(batchnorm=True)
    t = _random_ticket(model, 0.3, seed=3)
    g = gt.graphs.layered_graph(model, t)
    C, L, K = 6, 5, 10
    sizes = [1, C, C, C, C * L, K]
    start = np.cumsum([0, *sizes])
    want = np.zeros((start[-1], start[-1]))
    for b, name in enumerate(["features.0.weight", "features.3.weight", "features.6.weight"]):
        m = t.masks[name]
        for o in range(m.shape[0]):
            for i in range(m.shape[1]):
                want[start[b] + i, start[b + 1] + o] = int(m[o, i].sum())
    for c in range(C):
        for p in range(L):
            want[start[3] + c, start[4] + c * L + p] = 1
    mc = t.masks["classifier.weight"]
    for o in range(K):
        for f in range(C * L):
            want[start[4] + f, start[5] + o] = float(mc[o, f])
    np.testing.assert_array_equal(g.adjacency.toarray(), want)
    assert g.nodes["role"].tolist().count("input") == 1 and (g.nodes["unit_kind"] == "channel").sum() == 1 + 3 * C


def test_layered_graph_resnet1d_residual_adds() -> None:
    model = _resnet(depth=8)
    t = _random_ticket(model, 0.4, seed=0)
    g = gt.graphs.layered_graph(model, t)
    blocks = dict(g.layer_blocks)
    merges = [name for name, _ in g.layer_blocks if (g.nodes.loc[g.nodes["layer"] == name, "role"] != "merge").sum() == 0
              and (g.nodes["layer"] == name).any() and g.nodes.loc[g.nodes["layer"] == name, "role"].iloc[0] == "merge"]  # fmt: skip
    assert len(merges) == 3
    a = g.adjacency.tocsc()
    # inputs of each sum: the block's conv2 output and its shortcut (the stem conv for stage 1,
    # the projection conv for stages 2 and 3), one identity edge of weight 1 per unit
    shortcut_src = ["conv1", "stage2.0.shortcut.0", "stage3.0.shortcut.0"]
    for merge, conv2, sc in zip(merges, ["stage1.0.conv2", "stage2.0.conv2", "stage3.0.conv2"], shortcut_src, strict=True):
        dst = blocks[merge]
        for u, unit in enumerate(dst):
            col = a[:, unit]
            srcs = sorted(col.indices.tolist())
            assert srcs == sorted([blocks[conv2][u], blocks[sc][u]]) and np.all(col.data == 1.0)
    # conv edges: one per live channel pair, weighted by live kernel entries
    m = t.masks["stage2.0.conv1.weight"]
    np.testing.assert_array_equal(g.layer_adjacency("stage2.0.conv1.weight").toarray(), m.sum(-1).T.numpy())


def _groups(width: int, n: int) -> list[int]:
    """Group of each unit: n contiguous groups, the first width % n one unit larger."""
    sizes = [width // n + (1 if i < width % n else 0) for i in range(n)]
    return [g for g, s in enumerate(sizes) for _ in range(s)]


@pytest.mark.parametrize("model_name, n", [("cnn1d_bn", None), ("cnn1d_bn", 4), ("resnet1d", None), ("resnet1d", 3)])
def test_relational_graph_you_et_al_rule_for_conv1d(model_name: str, n: int | None) -> None:
    """Groups u, v are joined iff some layer (all but stem and head) has a live kernel entry
    between an output channel of group u and an input channel of group v (or v, u)."""
    model = TINY[model_name]()
    # sparse enough that the union over layers is not the complete graph
    t = _random_ticket(model, 0.08 if model_name == "cnn1d_bn" else 0.015, seed=1)
    g = gt.graphs.relational_graph(model, t, n_nodes=n)
    layers = list(gt.prunable(model))[1:-1]
    n_eff = n if n is not None else (6 if model_name == "cnn1d_bn" else 4)
    assert g.n_nodes == n_eff and g.meta["layers"] == layers
    want = np.zeros((n_eff, n_eff), dtype=bool)
    for name in layers:
        m = t.masks[name]
        go, gi = _groups(m.shape[0], n_eff), _groups(m.shape[1], n_eff)
        for o in range(m.shape[0]):
            for i in range(m.shape[1]):
                if bool(m[o, i].any()):
                    want[go[o], gi[i]] = want[gi[i], go[o]] = True
    assert 0 < want.sum() < want.size
    np.testing.assert_array_equal(g.adjacency.toarray() > 0, want)


@pytest.mark.parametrize("model_name", sorted(TINY))
def test_bipartite_rolled_and_unrolled_conv1d(model_name: str) -> None:
    model = TINY[model_name]()
    t = _random_ticket(model, 0.3, seed=2)
    params = dict(model.named_parameters())
    unrolled = gt.graphs.layer_bipartite(model, t)
    rolled = gt.graphs.layer_bipartite(model, t, rolled=True, weights="count")
    for name, m in t.masks.items():
        w = params[name].detach().double()
        if m.ndim == 2:
            np.testing.assert_allclose(unrolled[name].biadjacency.toarray(), (w.abs() * m).T.numpy())
            continue
        out, cin, k = m.shape
        b = unrolled[name].biadjacency.toarray()  # (cin * k, out): row i * k + j
        assert b.shape == (cin * k, out)
        for o in range(out):
            for i in range(cin):
                for j in range(k):
                    assert b[i * k + j, o] == (abs(float(w[o, i, j])) if m[o, i, j] else 0.0)
        np.testing.assert_array_equal(rolled[name].biadjacency.toarray(), m.sum(-1).T.numpy())
        # a bipartite graph is measured (Ramanujan gaps and the rest) without error
        assert all(isinstance(v, float) for v in gt.analysis.metrics(unrolled[name]).values())


# ---------------------------------------------------------------------------- analysis


@pytest.mark.parametrize("model_name", sorted(TINY))
def test_every_metric_on_1d_graphs(model_name: str) -> None:
    model = TINY[model_name]()
    t = gt.pruning.prune(model, "magnitude", density=0.2)
    lg, rg = gt.graphs.layered_graph(model, t), gt.graphs.relational_graph(model, t)
    def every(g: gt.graphs.Graph) -> list[str]:  # every metric that applies, default or not
        simple = g.simple() if hasattr(g, "simple") else g
        return [n for n, s in gt.analysis.METRICS.items() if s.applies(simple)]

    ml, mr = gt.analysis.metrics(lg, names=every(lg)), gt.analysis.metrics(rg, names=every(rg))
    assert "small_world" in every(rg) and "densities" in every(lg)
    for res in (ml, mr):
        assert res and all(isinstance(v, float) for v in res.values())
    assert ml["weight_density"] == pytest.approx(t.density)
    for n, d in t.layer_densities().items():
        assert ml[f"weight_density/{n}"] == pytest.approx(d)
    assert 0.0 <= ml["effective_density"] <= t.density + 1e-12
    assert mr["clustering"] == pytest.approx(nx.average_clustering(nx.from_scipy_sparse_array(rg.simple().adjacency)))


@pytest.mark.parametrize("model_name", sorted(TINY))
def test_every_distance_on_1d_tickets(model_name: str) -> None:
    model = TINY[model_name]()
    a = gt.pruning.prune(model, "magnitude", density=0.2)
    b = gt.pruning.prune(model, "random", density=0.2, seed=3)
    for kind, spec in gt.analysis.DISTANCES.items():
        if spec.family == "function":  # needs trained weights and data: tests/test_analysis_function.py
            continue
        m = model if spec.needs_model else None
        d_ab, d_ba, d_aa = (gt.analysis.distance(x, y, kind, model=m) for x, y in ((a, b), (b, a), (a, a)))
        assert d_aa == pytest.approx(0.0, abs=1e-9), kind
        assert d_ab == pytest.approx(d_ba, rel=1e-9, abs=1e-12) and d_ab >= 0.0, kind
    for null in ("shuffle", "rewire"):
        table = gt.analysis.compare({"magnitude": a, "random": b}, model, null_samples=2, null=null)
        assert len(table) > 0 and (table["value"] >= 0).all(), null


@pytest.mark.parametrize("model_name", ["cnn1d_bn", "resnet1d"])
def test_null_models_on_conv1d_tickets(model_name: str) -> None:
    """Shuffle keeps every layer's count; rewiring also keeps each output channel's live
    weights and each (input channel, kernel position)'s fan-out."""
    model = TINY[model_name]()
    t = gt.pruning.prune(model, "magnitude", density=0.3)
    s = gt.analysis.shuffle_within_layers(t, seed=1)
    r = gt.analysis.rewire_preserving_degrees(t, seed=1)
    assert s.layer_counts() == t.layer_counts() == r.layer_counts()
    changed = 0
    for n, m in t.masks.items():
        flat, rf = m.reshape(m.shape[0], -1), r.masks[n].reshape(m.shape[0], -1)
        assert torch.equal(flat.sum(1), rf.sum(1)) and torch.equal(flat.sum(0), rf.sum(0)), n
        changed += int((flat != rf).sum())
    assert changed > 0


def test_kernel_blind_distances_on_conv1d() -> None:
    """Two tickets that differ only in WHICH kernel entries of each channel pair live: the
    kernel-blind kinds (channel level) give 0, the weight-level ones do not."""
    model = _resnet()
    a = _random_ticket(model, 0.3, seed=5)
    g = torch.Generator().manual_seed(0)
    masks = {}
    for n, m in a.masks.items():
        if m.ndim == 3:  # permute the kernel positions of every channel pair
            perm = torch.argsort(torch.rand(m.shape, generator=g), dim=-1)
            masks[n] = torch.gather(m, -1, perm)
        else:
            masks[n] = m.clone()
    b = gt.Ticket(masks)
    assert a != b
    for kind, spec in gt.analysis.DISTANCES.items():
        if spec.family == "function":  # what the tickets compute, not their structure
            continue
        d = gt.analysis.distance(a, b, kind, model=model if spec.needs_model else None)
        if spec.kernel_blind:
            assert d == pytest.approx(0.0, abs=1e-9), kind
    assert gt.analysis.distance(a, b, "jaccard") > 0 and gt.analysis.distance(a, b, "hamming") > 0


# ---------------------------------------------------------------------------- collapse


def _layered_oracle(model: nn.Module, ticket: gt.Ticket) -> list[str]:
    """Collapsed layers by networkx reachability on the channel-level layered graph."""
    g = gt.graphs.layered_graph(model, ticket)
    G = g.to_networkx()
    roles = g.nodes["role"].to_numpy()
    ins = [i for i, r in enumerate(roles) if r == "input"]
    outs = [i for i, r in enumerate(roles) if r == "output"]
    fwd = set(ins).union(*[nx.descendants(G, s) for s in ins])
    bwd = set(outs).union(*[nx.ancestors(G, s) for s in outs])
    cut = []
    for r in g.edge_params[g.edge_params["kind"].isin(["linear", "conv"])].itertuples():
        dst = range(int(r.dst_start), int(r.dst_stop))
        if not any(u in fwd and v in bwd for u in range(int(r.src_start), int(r.src_stop))
                   for v in G.successors(u) if v in dst):  # fmt: skip
            cut.append(str(r.param))
    return [n for n in ticket.masks if n in cut]


def _cut(t: gt.Ticket, names: list[str]) -> gt.Ticket:
    return gt.Ticket({n: torch.zeros_like(m) if n in names else m.clone() for n, m in t.masks.items()})


def test_collapse_detection_on_1d_models() -> None:
    res = _resnet(depth=14)
    base = gt.pruning.prune(res, "random", density=0.5, seed=1)
    assert gt.pruning.collapsed_layers(res, base) == _layered_oracle(res, base) == []
    block = _cut(base, ["stage2.1.conv2.weight"])  # the identity skip keeps the network connected
    assert gt.pruning.collapsed_layers(res, block) == _layered_oracle(res, block) == [
        "stage2.1.conv1.weight", "stage2.1.conv2.weight"]  # fmt: skip
    stage = _cut(base, [n for n in base.masks if n.startswith("stage2.") and ("conv2" in n or "shortcut" in n)])
    assert gt.pruning.collapsed_layers(res, stage) == _layered_oracle(res, stage) == list(base.masks)
    cnn = _cnn(batchnorm=True)
    dead = _cut(gt.pruning.prune(cnn, "random", density=0.5, seed=0), ["features.3.weight"])
    assert gt.pruning.collapsed_layers(cnn, dead) == _layered_oracle(cnn, dead) == list(dead.masks)
    for seed in range(4):  # very sparse random tickets
        for model, dens in ((cnn, 0.03), (res, 0.02)):
            t = gt.pruning.prune(model, "random", density=dens, seed=seed, scope="global")
            assert gt.pruning.collapsed_layers(model, t) == _layered_oracle(model, t)
    # the graph metric says the same
    lg = gt.graphs.layered_graph(res, block)
    assert gt.analysis.metrics(lg, names=["collapsed_layers"])["collapsed_layers"] == 2.0


# ---------------------------------------------------------------------------- interop


@pytest.mark.parametrize("model_name", sorted(TINY))
def test_torch_prune_round_trip(model_name: str) -> None:
    model = TINY[model_name]()
    t = gt.pruning.prune(model, "magnitude", density=0.3)
    pruned = t.to_torch_prune(copy.deepcopy(model))
    assert all(hasattr(dict(pruned.named_modules())[n.rpartition(".")[0]], "weight_mask") for n in t.masks)
    back = gt.Ticket.from_torch_prune(pruned)
    assert back.masks.keys() == t.masks.keys() and all(torch.equal(back.masks[n], t.masks[n]) for n in t.masks)
    x = torch.randn(5, 40, generator=torch.Generator().manual_seed(1))
    ref = t.apply(copy.deepcopy(model)).eval()
    torch.testing.assert_close(pruned.eval()(x), ref(x))
    # the other way: torch's own L1 pruning of a Conv1d read back as a ticket, graphed
    other = copy.deepcopy(model)
    convs = [(mod, "weight") for mod in other.modules() if isinstance(mod, (nn.Conv1d, nn.Linear))]
    tprune.global_unstructured(convs, pruning_method=tprune.L1Unstructured, amount=0.7)
    tt = gt.Ticket.from_torch_prune(other)
    total = sum(m.numel() for m in tt.masks.values())
    assert tt.kept == total - round(0.7 * total)
    g = gt.graphs.layered_graph(other, tt, input_shape=(40,))
    assert g.n_edges > 0
    assert math.isfinite(gt.analysis.distance(t, tt, "jaccard"))


def test_readme_model_table_lists_every_model() -> None:
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    table = text.split("## Models", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    named = {name for line in rows for name in line.split("|")[1].replace("`", "").replace(" ", "").split(",")}
    assert set(gt.models.MODELS) <= named
