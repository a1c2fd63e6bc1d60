"""Bipartite layer graphs, and lossless exports (networkx, igraph, PyG, GraphML, edge list)."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp
import torch
from torch import nn

import graphtickets as gt
from graphtickets.graphs import Graph, layer_bipartite, layered_graph, relational_graph, ws_flex


def _conv_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(2, 3, 3), nn.ReLU(), nn.Conv2d(3, 4, 1), nn.Flatten(),
                         nn.Linear(4 * 2 * 2, 3))  # fmt: skip


def _ticket(model: nn.Module, seed: int = 0, dead_head: bool = False) -> gt.Ticket:
    g = torch.Generator().manual_seed(seed)
    masks = {n: torch.rand(p.shape, generator=g) < 0.5 for n, p in gt.prunable(model).items()}
    if dead_head:
        masks["4.weight"][-1] = False  # the last output unit (the last node) is dead
    return gt.Ticket(masks)


def test_bipartite_unrolled_rolled_linear() -> None:
    model = _conv_net()
    t = _ticket(model)
    gs = layer_bipartite(model, t)
    assert list(gs) == list(gt.prunable(model))
    w0, m0 = model[0].weight.detach(), t.masks["0.weight"]
    b = gs["0.weight"]
    assert (b.n_left, b.n_right) == (2 * 9, 3) and b.kind == "bipartite" and not b.directed
    want = (w0.abs() * m0).reshape(3, -1).T.numpy()  # (C_in*kh*kw, C_out)
    assert np.allclose(b.biadjacency.toarray(), want) and b.n_edges == int(m0.sum())
    assert b.nodes["side"].tolist() == [0] * 18 + [1] * 3
    rolled = layer_bipartite(model, t, rolled=True, weights="count")["0.weight"]
    assert np.array_equal(rolled.biadjacency.toarray(), m0.sum(dim=(2, 3)).T.numpy())
    lin = gs["4.weight"]
    w4, m4 = model[4].weight.detach(), t.masks["4.weight"]
    assert np.allclose(lin.biadjacency.toarray(), (w4.abs() * m4).T.numpy())
    a = lin.adjacency.toarray()
    assert np.allclose(a, a.T) and np.allclose(a[:16, 16:], lin.biadjacency.toarray())


def test_bipartite_grouped_conv() -> None:
    model = nn.Sequential(nn.Conv2d(4, 2, 1, groups=2))
    b = layer_bipartite(model, weights=None)["0.weight"]
    assert b.biadjacency.toarray().tolist() == [[1, 0], [1, 0], [0, 1], [0, 1]]


def _graphs() -> list[Graph]:
    model = _conv_net()
    lay = layered_graph(model, _ticket(model, dead_head=True), weights="abs", input_shape=(2, 4, 4))
    rel = relational_graph(nn.Sequential(nn.Linear(3, 6), nn.Linear(6, 6), nn.Linear(6, 2)),
                           n_nodes=3, aggregate="mean")  # fmt: skip
    bip = layer_bipartite(model, _ticket(model))["0.weight"]
    return [lay, rel, ws_flex(12, 3.5, 0.3, seed=2), bip]


def _canonical(g: Graph) -> dict[tuple[int, int], float]:
    src, dst, w = g.edges()
    return {(int(a), int(b)): float(c) for a, b, c in zip(src, dst, w, strict=True)}


@pytest.mark.parametrize("i", range(4))
def test_networkx_igraph_round_trip(i: int) -> None:
    g = _graphs()[i]
    ref = _canonical(g)
    gx = g.to_networkx()
    assert gx.number_of_nodes() == g.n_nodes and gx.number_of_edges() == g.n_edges
    got = {((a, b) if g.directed else (min(a, b), max(a, b))): d["weight"] for a, b, d in gx.edges(data=True)}
    assert got == ref
    back = nx.to_scipy_sparse_array(gx, nodelist=range(g.n_nodes), weight="weight", format="csr")
    assert abs(sp.csr_matrix(back) - g.adjacency).max() == 0 if g.n_edges else True
    gi = g.to_igraph()
    assert gi.vcount() == g.n_nodes and gi.ecount() == g.n_edges and gi.is_directed() == g.directed
    igot = {((e.source, e.target) if g.directed else (min(e.tuple), max(e.tuple))): e["weight"] for e in gi.es}
    assert igot == ref
    assert gi.vs["layer"] == [str(x) for x in g.nodes["layer"]] or gi.vs["layer"] == list(g.nodes["layer"])


@pytest.mark.parametrize("i", range(4))
def test_pyg_keeps_nodes_edges_and_weights(i: int) -> None:
    pytest.importorskip("torch_geometric")
    from torch_geometric.utils import to_networkx

    g = _graphs()[i]
    d = g.to_pyg()
    assert d.num_nodes == g.n_nodes  # dead trailing units are not dropped
    assert d.edge_index.shape[1] == g.adjacency.nnz  # undirected: both directions
    a = sp.csr_matrix((d.edge_weight.double().numpy(), tuple(d.edge_index.numpy())), shape=(g.n_nodes,) * 2)
    assert np.allclose((a - g.adjacency).toarray(), 0, atol=1e-6)
    gx = to_networkx(d, edge_attrs=["edge_weight"], to_undirected=not g.directed)
    assert gx.number_of_edges() == g.n_edges and gx.number_of_nodes() == g.n_nodes


def test_layered_dead_trailing_unit_is_kept() -> None:
    g = _graphs()[0]
    last = g.n_nodes - 1
    assert g.adjacency[:, last].nnz == 0 and g.adjacency[last].nnz == 0
    assert g.to_pyg().num_nodes == g.n_nodes and g.to_igraph().vcount() == g.n_nodes


@pytest.mark.parametrize("i", range(3))
def test_files_round_trip(i: int, tmp_path) -> None:
    g = _graphs()[i]
    p = g.write(tmp_path / "g.edgelist")
    back = Graph.read_edgelist(p)
    assert back.n_nodes == g.n_nodes and back.directed == g.directed and back.kind == g.kind
    assert abs(back.adjacency - g.adjacency).max() == 0 if g.n_edges else True
    gx = nx.read_graphml(g.write(tmp_path / "g.graphml"))
    assert gx.number_of_nodes() == g.n_nodes and gx.number_of_edges() == g.n_edges
    w = sorted(d["weight"] for _, _, d in gx.edges(data=True))
    assert np.allclose(w, sorted(_canonical(g).values()))
