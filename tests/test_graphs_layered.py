"""Layered graphs: hand-counted tiny networks, a contract loop over every registered model."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

import graphtickets as gt
from graphtickets.errors import UnsupportedModuleError
from graphtickets.graphs import layered_graph


def _t(masks: dict[str, list]) -> gt.Ticket:
    return gt.Ticket({k: torch.tensor(v, dtype=torch.bool) for k, v in masks.items()})


def test_mlp_3_4_2_by_hand() -> None:
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    ticket = _t(
        {
            "0.weight": [[1, 0, 1], [0, 0, 0], [1, 1, 1], [0, 1, 0]],  # 6 live
            "2.weight": [[1, 0, 0, 1], [0, 0, 1, 0]],  # 3 live; hidden unit 1 feeds nothing
        }
    )
    g = layered_graph(model, ticket, input_shape=(3,))
    assert g.directed and g.kind == "layered"
    assert g.n_nodes == 3 + 4 + 2
    assert g.n_edges == 9
    a = g.adjacency.toarray()
    # nodes: inputs 0-2, hidden 3-6, outputs 7-8
    expected = {(0, 3), (2, 3), (0, 5), (1, 5), (2, 5), (1, 6), (3, 7), (6, 7), (5, 8)}
    assert {(int(i), int(j)) for i, j in zip(*np.nonzero(a), strict=True)} == expected
    assert a[4].sum() == 0 and a[:, 4].sum() == 0  # hidden unit 1 is isolated
    assert g.nodes["role"].tolist() == ["input"] * 3 + ["hidden"] * 4 + ["output"] * 2
    assert g.nodes["depth"].tolist() == [0] * 3 + [1] * 4 + [2] * 2
    assert g.nodes["unit"].tolist() == [0, 1, 2, 0, 1, 2, 3, 0, 1]
    assert [name for name, _ in g.layer_blocks] == ["input", "0", "2"]
    assert g.edge_params.set_index("param")["n_edges"].to_dict() == {"0.weight": 6, "2.weight": 3}
    assert g.layer_adjacency("2.weight").shape == (4, 2)


def test_weights_abs_and_none() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 2))
    mask = torch.tensor([[1, 0, 1], [1, 1, 0]], dtype=torch.bool)
    t = gt.Ticket({"0.weight": mask})
    g = layered_graph(model, t, weights="abs", input_shape=(3,))
    w = model[0].weight.detach().abs().numpy()
    a = g.adjacency.toarray()
    for o in range(2):
        for i in range(3):
            assert a[i, 3 + o] == pytest.approx(w[o, i] if mask[o, i] else 0.0)
    g1 = layered_graph(model, t, weights=None, input_shape=(3,))
    assert set(g1.adjacency.data.tolist()) == {1.0} and g1.n_edges == 4
    with pytest.raises(gt.GraphticketsError, match="weights"):
        layered_graph(model, t, weights="signed", input_shape=(3,))


class ConvFlat(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)  # (1, 4, 4) -> (2, 2, 2)
        self.bn = nn.BatchNorm2d(2)
        self.fc = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(F.relu(self.bn(self.conv(x))), 1))


def test_conv_with_flatten_by_hand() -> None:
    model = ConvFlat()
    conv = torch.zeros(2, 1, 3, 3, dtype=torch.bool)
    conv[0, 0, 0, :] = True
    conv[0, 0, 2, 1:] = True  # channel 0: 5 live entries; channel 1: fully pruned
    fc = torch.zeros(3, 8, dtype=torch.bool)
    fc[0, :4] = True
    fc[2, 4:] = True
    fc[1, 7] = True  # 9 live
    g = layered_graph(model, gt.Ticket({"conv.weight": conv, "fc.weight": fc}), input_shape=(1, 4, 4))
    # nodes: input 0; conv channels 1-2; flattened features 3-10; outputs 11-13
    assert g.n_nodes == 1 + 2 + 8 + 3
    assert g.n_edges == 1 + 8 + 9
    a = g.adjacency.toarray()
    assert a[0, 1] == 5 and a[0, 2] == 0
    assert a[1, 3:7].tolist() == [1, 1, 1, 1] and a[1, 7:11].sum() == 0
    assert a[2, 7:11].tolist() == [1, 1, 1, 1]  # channel 1 -> features 4..7
    assert a[3:11, 11].sum() == 4 and a[10, 12] == 1 and a[3:11, 13].sum() == 4
    kinds = g.edge_params.set_index("layer")["kind"].to_dict()
    assert kinds == {"conv": "conv", "flatten": "flatten", "fc": "linear"}
    assert set(g.nodes.loc[3:10, "unit_kind"]) == {"feature"}
    assert set(g.nodes.loc[0:2, "unit_kind"]) == {"channel"}


class Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(2, 3, 3, padding=1)
        self.b1 = nn.BatchNorm2d(3)
        self.c2 = nn.Conv2d(3, 3, 3, padding=1)
        self.sc = nn.Conv2d(2, 3, 1)  # 1x1 downsampling shortcut
        self.fc = nn.Linear(3 * 2 * 2, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.c2(F.relu(self.b1(self.c1(x)))) + self.sc(x)
        y = F.max_pool2d(F.relu(y), 2)
        return self.fc(y.view(y.size(0), -1))


def test_residual_block_by_hand() -> None:
    g = layered_graph(Residual(), input_shape=(2, 4, 4))
    # blocks: input(2) c1(3) c2(3) sc(3) add(3) flatten(12) fc(2)
    assert [(n, len(r)) for n, r in g.layer_blocks] == [
        ("input", 2), ("c1", 3), ("c2", 3), ("sc", 3), ("add", 3), ("view", 12), ("fc", 2)
    ]  # fmt: skip
    assert g.n_nodes == 28
    assert g.n_edges == 6 + 9 + 6 + 6 + 12 + 24
    a = g.adjacency.toarray()
    assert a[0, 2] == 9 and a[0, 8] == 1  # 3x3 conv weight 9, 1x1 shortcut weight 1
    for i in range(3):  # identity edges c2_i -> add_i and sc_i -> add_i
        assert a[5 + i, 11 + i] == 1 and a[8 + i, 11 + i] == 1
        assert a[5 + i, 11:14].sum() == 1
    assert (g.nodes["role"] == "merge").sum() == 3
    assert g.nodes.loc[11, "depth"] == 3  # longest path: input -> c1 -> c2 -> add


def test_option_a_shortcut_pad_and_slice() -> None:
    class PadShortcut(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(2, 4, 3, stride=2, padding=1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.conv(x) + F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, 1, 1))

    g = layered_graph(PadShortcut(), input_shape=(2, 4, 4))
    a = g.adjacency.toarray()
    # input 0-1, conv 2-5, pad 6-9 (channels 1,2 come from input 0,1), add 10-13
    assert a[0, 7] == 1 and a[1, 8] == 1 and a[:, 6].sum() == 0 and a[:, 9].sum() == 0
    assert g.n_edges == 8 + 2 + 8


def test_input_reshape_and_conv1d_groups() -> None:
    model = nn.Sequential(nn.Unflatten(1, (1, 40)), nn.Conv1d(1, 4, 3), nn.Conv1d(4, 4, 3, groups=2),
                          nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(4, 2))  # fmt: skip
    g = layered_graph(model, input_shape=(40,))
    assert g.layer_blocks[0][0] == "input" and len(g.layer_blocks[0][1]) == 1
    a = g.adjacency.toarray()
    # input 0; conv1 1-4; grouped conv 5-8: outputs 0,1 see inputs 0,1; outputs 2,3 see 2,3
    assert a[1:5, 5:9].tolist() == [[3, 3, 0, 0], [3, 3, 0, 0], [0, 0, 3, 3], [0, 0, 3, 3]]
    assert g.n_edges == 4 + 8 + 8 and g.n_nodes == 1 + 4 + 4 + 2  # (4, 1) -> (4,) keeps the block


def test_fully_pruned_layer_gives_isolated_nodes() -> None:
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
    masks = {n: torch.ones_like(p, dtype=torch.bool) for n, p in gt.prunable(model).items()}
    masks["2.weight"][:] = False
    g = layered_graph(model, gt.Ticket(masks), input_shape=(3,))
    assert g.n_nodes == 13 and g.n_edges == 12 + 8
    deg_in = np.asarray(g.adjacency.sum(axis=0)).ravel()
    assert (deg_in[7:11] == 0).all()


def test_dense_is_ticket_of_ones_and_deterministic() -> None:
    model = Residual()
    ones = gt.Ticket({n: torch.ones_like(p, dtype=torch.bool) for n, p in gt.prunable(model).items()})
    a, b = layered_graph(model, input_shape=(2, 4, 4)), layered_graph(model, ones, input_shape=(2, 4, 4))
    assert (a.adjacency != b.adjacency).nnz == 0
    assert a.nodes.equals(b.nodes)


def test_tracing_leaves_model_untouched() -> None:
    model = ConvFlat().train()
    before = model.bn.running_mean.clone(), model.bn.num_batches_tracked.clone()
    layered_graph(model, input_shape=(1, 4, 4))
    assert model.training and model.bn.training
    assert torch.equal(model.bn.running_mean, before[0])
    assert torch.equal(model.bn.num_batches_tracked, before[1])


class _Attention(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.attn = nn.MultiheadAttention(4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.fc(x)[None]
        return self.attn(y, y, y)[0][0]


class _Bilinear(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.bil = nn.Bilinear(4, 4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.fc(x)
        return self.bil(y, y)


@pytest.mark.parametrize(
    ("module", "target", "type_name", "fx_node"),
    [
        (nn.Sequential(nn.Linear(4, 4), nn.LSTM(4, 4)), "1", "LSTM", "_1"),
        # Embedding wants integer input and Bilinear two inputs: the zero-input shape pass would
        # crash on them, so the module check must come first and name them as unsupported
        (nn.Sequential(nn.Linear(4, 4), nn.Embedding(4, 4)), "1", "Embedding", "_1"),
        (nn.Sequential(nn.Linear(4, 4), nn.Bilinear(4, 4, 2)), "1", "Bilinear", "_1"),
        (_Bilinear(), "bil", "Bilinear", "bil"),
        (_Attention(), "attn", "MultiheadAttention", "attn"),
    ],
)
def test_unsupported_module_is_named(module: nn.Module, target: str, type_name: str, fx_node: str) -> None:
    want = (
        f"cannot turn module '{target}' ({type_name}) (fx node '{fx_node}', operation call_module) "
        f"into graph edges; supported: Linear"
    )
    with pytest.raises(UnsupportedModuleError) as info:
        layered_graph(module, input_shape=(4,))
    assert str(info.value).startswith(want), str(info.value)
    assert "input_shape" not in str(info.value)  # not blamed on the input shape


def test_unsupported_function_is_named() -> None:
    class Gate(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Linear(4, 4), nn.Linear(4, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.cumsum(self.a(x), 1) * self.b(x)

    with pytest.raises(UnsupportedModuleError, match="cumsum"):
        layered_graph(Gate(), input_shape=(4,))

    class Mul(Gate):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.a(x) * self.b(x)

    with pytest.raises(UnsupportedModuleError, match="mul.*multiplies two activations"):
        layered_graph(Mul(), input_shape=(4,))
    with pytest.raises(UnsupportedModuleError, match="torch.fx cannot trace MultiheadAttention"):
        layered_graph(nn.MultiheadAttention(4, 1), input_shape=(4,))


def test_missing_input_shape_says_how() -> None:
    with pytest.raises(UnsupportedModuleError, match="input_shape"):
        layered_graph(nn.Sequential(nn.Linear(3, 2)))


def _random_ticket(model: nn.Module, density: float, seed: int) -> gt.Ticket:
    g = torch.Generator().manual_seed(seed)
    return gt.Ticket(
        {n: torch.rand(p.shape, generator=g) < density for n, p in gt.prunable(model).items()}
    )


def _small(name: str) -> dict:
    if name == "mlp":
        return {"widths": (12, 10)}
    if name == "lenet300_100":
        return {}
    if name == "cnn1d":
        return {"channels": 5, "batchnorm": True}
    if name == "resnet1d":
        return {"depth": 8, "widths": (4, 6, 8)}
    return {"width": 0.125}


def _accepts(name: str, shape: tuple[int, ...]) -> bool:
    try:
        gt.models.build(name, in_shape=shape, num_classes=10, **_small(name))
    except gt.models.ModelError:
        return False
    return True


@pytest.mark.parametrize("name", sorted(gt.models.MODELS))
def test_every_model_edges_match_masks(name: str) -> None:
    shapes = [(3, 16, 16), (40,)] if name in ("conv2", "mlp", "resnet20") else [(3, 16, 16)]
    shapes = [s for s in shapes if _accepts(name, s)] or [(40,), (2, 20)]  # sequence models
    for shape in shapes:
        model = gt.models.build(name, in_shape=shape, num_classes=10, **_small(name))
        ticket = _random_ticket(model, 0.3, seed=1)
        g = layered_graph(model, ticket, input_shape=shape)
        per_param = g.edge_params.dropna(subset=["param"]).set_index("param")["n_edges"].to_dict()
        assert set(per_param) == set(ticket.masks)
        for pname, mask in ticket.masks.items():
            # oracle: Linear -> live weights; conv -> (out, in) channel pairs with a live entry
            want = int(mask.sum()) if mask.ndim == 2 else int(mask.flatten(2).any(-1).sum())
            assert per_param[pname] == want, (name, shape, pname)
            assert g.layer_adjacency(pname).nnz == want
        numel = g.edge_params.dropna(subset=["param"]).set_index("param")["numel"].to_dict()
        assert numel == {p: m.numel() for p, m in ticket.masks.items()}  # every layer's full size
        structural = int(g.edge_params.loc[g.edge_params["param"].isna(), "n_edges"].sum())
        assert g.n_edges == sum(per_param.values()) + structural
        assert (g.nodes["role"] == "input").any() and (g.nodes["role"] == "output").sum() == 10
        # edges only go forward in depth
        src, dst, _ = g.edges()
        depth = g.nodes["depth"].to_numpy()
        assert (depth[dst] > depth[src]).all()


@pytest.mark.parametrize("weights", ["count", "abs", None])
def test_conv_weights_and_csr_layout(weights: str | None) -> None:
    # the input feeds two convs (c1 and the shortcut sc): its CSR rows hold both ops' entries
    torch.manual_seed(3)
    model = Residual()
    ticket = _random_ticket(model, 0.4, seed=2)
    g = layered_graph(model, ticket, weights=weights, input_shape=(2, 4, 4))
    for name in ("c1.weight", "c2.weight", "sc.weight"):
        w, m = dict(model.named_parameters())[name].detach().double(), ticket.masks[name]
        if weights == "abs":
            want = (w.abs() * m).sum(dim=(2, 3)).T.numpy()  # sum of |w| over live kernel entries
        elif weights == "count":
            want = m.sum(dim=(2, 3)).T.double().numpy()
        else:
            want = m.any(dim=3).any(dim=2).T.double().numpy()
        assert np.allclose(g.layer_adjacency(name).toarray(), want, rtol=1e-12, atol=0)
    a = g.adjacency
    assert a.indices.dtype == np.int32 and a.indptr.dtype == np.int32
    assert a.has_canonical_format  # sorted, no duplicates
    ref = sp.csr_matrix(a.toarray())
    assert np.array_equal(ref.indptr, a.indptr) and np.array_equal(ref.indices, a.indices)
    assert np.array_equal(ref.data, a.data)


def test_fully_pruned_conv_gives_isolated_nodes() -> None:
    model = ConvFlat()
    ticket = gt.Ticket({"conv.weight": torch.zeros(2, 1, 3, 3, dtype=torch.bool),
                        "fc.weight": torch.ones(3, 8, dtype=torch.bool)})  # fmt: skip
    g = layered_graph(model, ticket, input_shape=(1, 4, 4))
    assert g.n_nodes == 14 and g.n_edges == 8 + 24  # flatten + fc edges only
    assert g.adjacency[0].nnz == 0 and g.adjacency[:, 1:3].nnz == 0  # input and conv channels cut off
    assert g.edge_params.set_index("param").loc["conv.weight", "n_edges"] == 0
    d = g.to_igraph()
    assert d.vcount() == 14 and d.ecount() == 32


@pytest.mark.parametrize("weights", ["count", "abs"])
def test_chunked_fill_equals_one_chunk(weights: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from graphtickets.graphs import layered

    # widths that are not powers of two, a grouped conv, a source shared by two ops
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c1 = nn.Conv2d(3, 6, 3, padding=1)
            self.g = nn.Conv2d(6, 6, 3, padding=1, groups=3)
            self.sc = nn.Conv2d(3, 6, 1)
            self.fc1 = nn.Linear(6 * 9, 7)
            self.fc2 = nn.Linear(7, 5)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.g(F.relu(self.c1(x))) + self.sc(x)
            return self.fc2(F.relu(self.fc1(torch.flatten(y, 1))))

    torch.manual_seed(0)
    model = Net()
    ticket = _random_ticket(model, 0.3, seed=4)
    one = layered_graph(model, ticket, weights=weights, input_shape=(3, 3, 3))
    monkeypatch.setattr(layered, "_chunk_elems", lambda n: 5)
    from graphtickets import _trace

    _trace._CACHE.clear()
    many = layered_graph(model, ticket, weights=weights, input_shape=(3, 3, 3))
    assert (one.adjacency != many.adjacency).nnz == 0
    assert np.array_equal(one.adjacency.indices, many.adjacency.indices)
    dense = one.adjacency.toarray()
    m = ticket.masks["fc1.weight"].T.numpy()
    w = model.fc1.weight.detach().abs().double().T.numpy()
    blk = one.layer_adjacency("fc1.weight").toarray()
    assert np.array_equal(blk != 0, m) and (weights == "count" or np.array_equal(blk[m], w[m]))
    assert dense.shape == (one.n_nodes, one.n_nodes)
