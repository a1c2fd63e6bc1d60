"""Relational graphs (You et al. 2020), ws_flex and masks_from_relational."""

from __future__ import annotations

import networkx as nx
import numpy as np
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
