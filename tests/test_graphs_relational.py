"""Relational graphs (You et al. 2020), ws_flex and masks_from_relational."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import graphtickets as gt
from graphtickets.graphs import (
    group_sizes,
    masks_from_relational,
    relational_graph,
    ws_flex,
)


def _mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 8),
                         nn.ReLU(), nn.Linear(8, 3))  # fmt: skip


@pytest.mark.parametrize(("width", "n"), [(10, 4), (8, 8), (7, 3), (64, 64), (100, 7)])
def test_group_sizes_match_array_split(width: int, n: int) -> None:
    want = [len(c) for c in np.array_split(np.arange(width), n)]
    assert group_sizes(width, n).tolist() == want


def test_block_density_by_hand() -> None:
    model = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
    mid = torch.zeros(4, 4, dtype=torch.bool)  # (out, in); groups {0,1} and {2,3}
    mid[0, 0] = True  # out group 0 <- in group 0 : self-loop 0, density 1/4
    mid[2, 0] = mid[3, 1] = True  # out group 1 <- in group 0 : density 2/4
    masks = {n: torch.ones_like(p, dtype=torch.bool) for n, p in gt.prunable(model).items()}
    masks["2.weight"] = mid
    g = relational_graph(model, gt.Ticket(masks), n_nodes=2)
    assert g.meta["layers"] == ["2.weight"]
    layer = g.per_layer["2.weight"].toarray()
    assert layer[0, 0] == pytest.approx(0.25) and layer[1, 1] == 0
    assert layer[0, 1] == layer[1, 0] == pytest.approx((0.5 + 0.0) / 2)
    assert g.adjacency.toarray().tolist() == [[1.0, 1.0], [1.0, 0.0]]  # union
    assert g.n_self_loops == 1 and g.simple().n_edges == 1 and g.simple().n_self_loops == 0
    gm = relational_graph(model, gt.Ticket(masks), n_nodes=2, aggregate="mean")
    assert gm.adjacency.toarray()[0, 1] == pytest.approx(0.25)


def test_dense_is_complete_with_self_loops_and_default_n() -> None:
    g = relational_graph(_mlp())
    assert g.n_nodes == 8  # every default layer is 8 -> 8 wide
    assert g.simple().n_edges == 8 * 7 // 2 and g.n_self_loops == 8
    assert not g.directed and g.kind == "relational"


def test_default_n_for_mixed_widths_and_errors() -> None:
    model = nn.Sequential(nn.Linear(5, 80), nn.ReLU(), nn.Linear(80, 70), nn.ReLU(), nn.Linear(70, 3))
    assert relational_graph(model).n_nodes == 64
    with pytest.raises(gt.GraphticketsError, match="n_nodes"):
        relational_graph(model, n_nodes=71)
    with pytest.raises(gt.GraphticketsError, match="layers"):
        relational_graph(nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 3)))
    with pytest.raises(gt.GraphticketsError, match="aggregate"):
        relational_graph(model, aggregate="max")


def test_fully_pruned_layer() -> None:
    model = _mlp()
    masks = {n: torch.ones_like(p, dtype=torch.bool) for n, p in gt.prunable(model).items()}
    masks["2.weight"][:] = False
    g = relational_graph(model, gt.Ticket(masks), n_nodes=4)
    assert g.per_layer["2.weight"].nnz == 0
    assert g.simple().n_edges == 6  # the other layer (4.weight) is dense


def test_ws_flex_properties() -> None:
    for n, k, p in [(16, 4.5, 0.0), (16, 4.5, 0.5), (32, 7.3, 1.0), (10, 9.0, 0.3), (64, 2.0, 0.1)]:
        g = ws_flex(n, k, p, seed=3)
        a = g.adjacency
        assert g.n_edges == round(n * k / 2)
        assert a.diagonal().sum() == 0 and (a != a.T).nnz == 0 and a.max() == 1.0
        assert (ws_flex(n, k, p, seed=3).adjacency != a).nnz == 0
    deg = np.asarray(ws_flex(16, 4.5, 0.0, seed=0).adjacency.sum(1)).ravel()
    assert deg.min() >= 4 and deg.max() <= 6  # ring: 2 * floor(k/2) .. 2 * ceil(k/2)
    assert (ws_flex(40, 6, 0.5, seed=0).adjacency != ws_flex(40, 6, 0.5, seed=1).adjacency).nnz > 0


def test_ws_flex_p0_even_k_is_networkx_ring_lattice() -> None:
    g = ws_flex(20, 4, 0.0, seed=0)
    ref = nx.watts_strogatz_graph(20, 4, 0.0)
    assert {tuple(sorted(e)) for e in g.to_networkx().edges()} == {tuple(sorted(e)) for e in ref.edges()}


def test_ws_flex_rejects_bad_args() -> None:
    with pytest.raises(gt.GraphticketsError, match="k must"):
        ws_flex(8, 9, 0.1)
    with pytest.raises(gt.GraphticketsError, match="p must"):
        ws_flex(8, 2, 1.5)


def test_masks_from_relational_by_hand() -> None:
    model = _mlp()
    t = masks_from_relational(ws_flex(4, 2, 0.0, seed=0), model)
    assert t.method == "relational" and t.config["n_nodes"] == 4
    assert t.config["graph_meta"]["generator"] == "ws_flex"
    assert t.masks["0.weight"].all() and t.masks["6.weight"].all()  # stem and head dense
    # ring 0-1-2-3-0 plus self-loops: group 0 (units 0,1) meets groups 3, 0, 1
    m = t.masks["2.weight"]
    assert m[0].tolist() == [True] * 4 + [False] * 2 + [True] * 2
    assert int(m.sum()) == 8 * 6


@pytest.mark.parametrize(("n", "k", "p"), [(8, 3.0, 0.0), (8, 2.5, 0.7), (4, 1.0, 0.5)])
def test_round_trip_mlp(n: int, k: float, p: float) -> None:
    model = _mlp()
    g = ws_flex(n, k, p, seed=11)
    back = relational_graph(model, masks_from_relational(g, model), n_nodes=n)
    assert (back.simple().adjacency != g.simple().adjacency).nnz == 0
    assert back.n_self_loops == n  # graph2nn: diagonal blocks are dense
    for layer in back.per_layer.values():  # live blocks are full blocks
        assert set(np.round(layer.data, 12)) <= {1.0}


def test_round_trip_resnet_stage_and_conv_channel_level() -> None:
    model = gt.models.build("resnet20", in_shape=(3, 16, 16), num_classes=10, width=0.5)
    stage = [n for n in gt.prunable(model) if n.startswith("stage1.") and "shortcut" not in n]
    width = gt.prunable(model)[stage[0]].shape[0]
    g = ws_flex(width, 3.0, 0.4, seed=5)
    t = masks_from_relational(g, model, layers=stage)
    w = t.masks[stage[0]]
    assert w.ndim == 4 and bool((w.all(dim=(2, 3)) == w.any(dim=(2, 3))).all())  # whole kernels
    back = relational_graph(model, t, layers=stage)
    assert back.n_nodes == width
    assert (back.simple().adjacency != g.simple().adjacency).nnz == 0


def _resnet() -> nn.Module:
    return gt.models.build("resnet20", in_shape=(3, 16, 16), num_classes=10, width=0.5)


def _stage1(model: nn.Module) -> list[str]:
    return [n for n in gt.prunable(model) if n.startswith("stage1.") and "shortcut" not in n]


def test_round_trip_from_a_real_ticket_self_loops_included() -> None:
    model = _resnet()
    ticket = gt.pruning.prune(model, "random", density=0.02, seed=0)  # gt.prune's own ticket
    layers = _stage1(model)[:2]  # a sparse union: some self-loops and edges are missing
    g = relational_graph(model, ticket, layers=layers)
    n = g.n_nodes
    assert 0 < g.n_self_loops < n and 0 < g.simple().n_edges < n * (n - 1) // 2  # a non-trivial graph
    back = relational_graph(model, masks_from_relational(g, model, layers=layers, self_loops="graph"), layers=layers)
    assert (back.adjacency != g.adjacency).nnz == 0  # full adjacency: diagonal included
    # graph2nn's convention adds every self-loop and changes nothing else
    forced = relational_graph(model, masks_from_relational(g, model, layers=layers), layers=layers)
    want = g.adjacency.toarray()
    np.fill_diagonal(want, 1.0)
    assert np.array_equal(forced.adjacency.toarray(), want)


def test_round_trip_from_a_ticket_with_uneven_groups() -> None:
    model = nn.Sequential(nn.Linear(4, 11), nn.ReLU(), nn.Linear(11, 11), nn.ReLU(), nn.Linear(11, 11),
                          nn.ReLU(), nn.Linear(11, 2))  # fmt: skip
    gen = torch.Generator().manual_seed(1)
    ticket = gt.Ticket({k: torch.rand(p.shape, generator=gen) < 0.12 for k, p in gt.prunable(model).items()})
    g = relational_graph(model, ticket, n_nodes=4)  # groups of 3, 3, 3, 2 units
    assert g.n_self_loops < 4
    back = relational_graph(model, masks_from_relational(g, model, self_loops="graph"), n_nodes=4)
    assert (back.adjacency != g.adjacency).nnz == 0


def test_block_density_uneven_groups_by_hand() -> None:
    model = nn.Sequential(nn.Linear(2, 7), nn.ReLU(), nn.Linear(7, 7), nn.ReLU(), nn.Linear(7, 2))
    mid = torch.zeros(7, 7, dtype=torch.bool)  # (out, in); 3 groups: {0,1,2} {3,4} {5,6}
    mid[0, 3] = mid[1, 4] = True  # out group 0 <- in group 1: 2 of 3*2 = 1/3
    mid[6, 6] = True  # out group 2 <- in group 2: 1 of 2*2 = 1/4
    mid[3, 0] = True  # out group 1 <- in group 0: 1 of 2*3 = 1/6
    masks = {n: torch.ones_like(p, dtype=torch.bool) for n, p in gt.prunable(model).items()}
    masks["2.weight"] = mid
    g = relational_graph(model, gt.Ticket(masks), n_nodes=3)
    layer = g.per_layer["2.weight"].toarray()
    assert layer[0, 1] == layer[1, 0] == pytest.approx((1 / 3 + 1 / 6) / 2)
    assert layer[2, 2] == pytest.approx(1 / 4) and layer[0, 0] == layer[1, 1] == 0
    assert layer[0, 2] == layer[1, 2] == 0
    assert g.adjacency.toarray().tolist() == [[0, 1, 0], [1, 0, 0], [0, 0, 1]]


def test_mean_over_several_layers_by_hand() -> None:
    model = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 4),
                          nn.ReLU(), nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))  # fmt: skip
    masks = {n: torch.ones_like(p, dtype=torch.bool) for n, p in gt.prunable(model).items()}
    a = torch.zeros(4, 4, dtype=torch.bool)  # groups {0,1} {2,3}
    a[2, 0] = True  # layer A: edge 0-1 at (1/4 + 0) / 2 = 1/8
    b = torch.zeros(4, 4, dtype=torch.bool)
    b[0, 0] = b[1, 1] = True  # layer B: self-loop 0 at 2/4, no 0-1 edge
    c = torch.ones(4, 4, dtype=torch.bool)  # layer C: complete, density 1 everywhere
    masks["2.weight"], masks["4.weight"], masks["6.weight"] = a, b, c
    g = relational_graph(model, gt.Ticket(masks), n_nodes=2, aggregate="mean")
    assert g.meta["layers"] == ["2.weight", "4.weight", "6.weight"]
    want = [[(0 + 0.5 + 1) / 3, (1 / 8 + 0 + 1) / 3], [(1 / 8 + 0 + 1) / 3, (0 + 0 + 1) / 3]]
    assert np.allclose(g.adjacency.toarray(), want, rtol=1e-15)
    u = relational_graph(model, gt.Ticket(masks), n_nodes=2)
    assert u.adjacency.toarray().tolist() == [[1, 1], [1, 1]]


def test_default_n_is_the_narrowest_width_when_under_64() -> None:
    model = gt.models.build("resnet20", in_shape=(3, 32, 32), num_classes=10)
    widths = {w for name in gt.graphs.default_layers(model) for w in gt.prunable(model)[name].shape[:2]}
    assert widths == {16, 32, 64}
    assert relational_graph(model).n_nodes == 16  # min(64, narrowest) = 16
    wide = nn.Sequential(nn.Linear(5, 200), nn.ReLU(), nn.Linear(200, 100), nn.ReLU(), nn.Linear(100, 3))
    assert relational_graph(wide).n_nodes == 64


def test_fully_pruned_conv_layer() -> None:
    model = _resnet()
    layers = _stage1(model)
    masks = {n: torch.ones_like(p, dtype=torch.bool) for n, p in gt.prunable(model).items()}
    masks[layers[0]][:] = False
    g = relational_graph(model, gt.Ticket(masks), layers=layers)
    assert g.per_layer[layers[0]].nnz == 0
    assert g.simple().n_edges == g.n_nodes * (g.n_nodes - 1) // 2  # the other layers are dense


def _grouped() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1, groups=2),
                         nn.ReLU(), nn.Conv2d(8, 8, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 2))  # fmt: skip


def test_grouped_conv_edge_across_conv_groups_raises() -> None:
    model = _grouped()
    ring = ws_flex(4, 2, 0.0, seed=0)  # 0-1-2-3-0; relational groups {0,1} {2,3} | {4,5} {6,7}
    with pytest.raises(gt.GraphticketsError, match=r"'2.weight' is a grouped convolution \(groups=2\).*2 such edges"):
        masks_from_relational(ring, model)


def test_grouped_conv_round_trip() -> None:
    model = _grouped()
    within = gt.graphs.Graph(gt.graphs.from_edges(4, [0, 2], [1, 3], directed=False),
                             ring_nodes(4), directed=False)  # fmt: skip
    t = masks_from_relational(within, model)
    m = t.masks["2.weight"]  # (8 out, 4 in per group, 3, 3): every kernel of both groups is live
    assert bool(m.all())
    back = relational_graph(model, t, n_nodes=4)
    assert back.simple().adjacency.toarray().tolist() == [[0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]]
    # a ticket's own relational graph of a grouped conv never has cross-group edges: round trip
    gen = torch.Generator().manual_seed(0)
    ticket = gt.Ticket({k: torch.rand(p.shape, generator=gen) < 0.05 for k, p in gt.prunable(model).items()})
    g = relational_graph(model, ticket, n_nodes=4, layers=["2.weight"])
    assert g.simple().n_edges == 2 and g.n_self_loops == 3  # the two within-group edges, a missing loop
    t2 = masks_from_relational(g, model, layers=["2.weight"], self_loops="graph")
    assert (relational_graph(model, t2, n_nodes=4, layers=["2.weight"]).adjacency != g.adjacency).nnz == 0
    # the 1x1 conv after it is not grouped: its edges across the conv groups cannot go through 2.weight
    with pytest.raises(gt.GraphticketsError, match="grouped convolution"):
        masks_from_relational(relational_graph(model, ticket, n_nodes=4), model)


def ring_nodes(n: int) -> pd.DataFrame:
    return pd.DataFrame({"layer": ["relational"] * n, "unit": np.arange(n)})


def test_ticket_records_the_model_spec(tmp_path) -> None:
    model = gt.models.build("mlp", in_shape=(6,), num_classes=3, widths=(12, 12, 12))
    t = masks_from_relational(ws_flex(6, 2.0, 0.3, seed=2), model)
    assert t.config["model"] == model.gt_spec and t.config["self_loops"] == "always"
    loaded = gt.Ticket.load(t.save(tmp_path / "t.ticket"))
    rebuilt = loaded.build_model()  # the file alone rebuilds the model
    assert [p.shape for p in gt.prunable(rebuilt).values()] == [p.shape for p in gt.prunable(model).values()]
    assert (relational_graph(rebuilt, loaded, n_nodes=6).adjacency != relational_graph(model, t, n_nodes=6).adjacency).nnz == 0
    with pytest.raises(gt.GraphticketsError, match="self_loops"):
        masks_from_relational(ws_flex(6, 2.0, 0.3, seed=2), model, self_loops="never")


def test_ws_flex_connected_redraws_with_the_same_seed() -> None:
    from scipy.sparse import csgraph

    def parts(g: gt.graphs.RelationalGraph) -> int:
        return int(csgraph.connected_components(g.adjacency, directed=False)[0])

    plain = [ws_flex(32, 2.5, 0.9, seed=s) for s in range(10)]
    assert any(parts(g) > 1 for g in plain)  # small k, heavy rewiring: some draws fall apart
    for s, g in enumerate(plain):
        c = ws_flex(32, 2.5, 0.9, seed=s, connected=True)
        assert parts(c) == 1 and c.n_edges == g.n_edges and c.meta["connected"] is True
        assert (c.meta["draws"] == 1) == (parts(g) == 1)  # the first draw is the plain graph
        if c.meta["draws"] == 1:
            assert (c.adjacency != g.adjacency).nnz == 0
        assert (ws_flex(32, 2.5, 0.9, seed=s, connected=True).adjacency != c.adjacency).nnz == 0
    with pytest.raises(gt.GraphticketsError, match="fewer than n - 1 edges"):
        ws_flex(16, 1.5, 0.2, seed=0, connected=True)  # 12 edges cannot join 16 nodes
    with pytest.raises(gt.GraphticketsError, match="no connected graph in 2 tries"):
        ws_flex(32, 2.0, 1.0, seed=1, connected=True, tries=2)
