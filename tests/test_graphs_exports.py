"""Bipartite layer graphs, and lossless exports (networkx, igraph, PyG, GraphML, edge list)."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from torch import nn

import graphtickets as gt
from graphtickets.graphs import (
    Graph,
    from_edges,
    layer_bipartite,
    layered_graph,
    relational_graph,
    ws_flex,
)


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


def _pairs(src: np.ndarray, dst: np.ndarray) -> list[tuple[int, int]]:
    return list(zip(src.tolist(), dst.tolist(), strict=True))


@pytest.mark.parametrize("i", range(4))
def test_networkx_igraph_round_trip(i: int) -> None:
    g = _graphs()[i]
    ref = _canonical(g)
    src, dst, _ = g.edges()
    gx = g.to_networkx()
    assert gx.number_of_nodes() == g.n_nodes and gx.number_of_edges() == g.n_edges
    assert list(gx.nodes()) == list(range(g.n_nodes))
    # the tuples as exported, not normalised here: canonical (src <= dst when undirected), sorted
    assert list(gx.edges()) == _pairs(src, dst)
    assert {(a, b): d["weight"] for a, b, d in gx.edges(data=True)} == ref
    back = nx.to_scipy_sparse_array(gx, nodelist=range(g.n_nodes), weight="weight", format="csr")
    assert abs(sp.csr_matrix(back) - g.adjacency).max() == 0 if g.n_edges else True
    gi = g.to_igraph()
    assert gi.vcount() == g.n_nodes and gi.ecount() == g.n_edges and gi.is_directed() == g.directed
    assert gi.get_edgelist() == _pairs(src, dst)
    assert dict(zip(gi.get_edgelist(), gi.es["weight"], strict=True)) == ref
    assert gi.vs["layer"] == [str(x) for x in g.nodes["layer"]] or gi.vs["layer"] == list(g.nodes["layer"])


@pytest.mark.parametrize("directed", [True, False])
def test_edge_tuples_are_canonical_whatever_the_insertion_order(directed: bool) -> None:
    # the netrd trap: Jaccard on set(G.edges()) must be 1.0 for identical graphs whatever the
    # order their edges (or the ends of an undirected edge) were given in
    edges = [(5, 1), (3, 2), (0, 4), (4, 3), (2, 5), (1, 0)]
    perm = [3, 0, 5, 1, 4, 2]
    g1 = Graph(from_edges(6, *np.array(edges).T, directed=directed), _nodes(6), directed=directed)
    flipped = [edges[j][::-1] if not directed else edges[j] for j in perm]
    g2 = Graph(from_edges(6, *np.array(flipped).T, directed=directed), _nodes(6), directed=directed)
    want = sorted(edges) if directed else sorted((min(e), max(e)) for e in edges)  # by hand
    if directed:
        assert want == [(0, 4), (1, 0), (2, 5), (3, 2), (4, 3), (5, 1)]
    else:
        assert want == [(0, 1), (0, 4), (1, 5), (2, 3), (2, 5), (3, 4)]
    for g in (g1, g2):
        csr = g.adjacency if directed else sp.triu(g.adjacency).tocsr()
        assert sorted(zip(*(x.tolist() for x in csr.nonzero()), strict=True)) == want
        assert list(g.to_networkx().edges()) == want
        assert g.to_igraph().get_edgelist() == want
    # the trap is real: a networkx graph filled in the raw order reports other tuples
    raw = (nx.DiGraph if directed else nx.Graph)(flipped)
    if not directed:
        assert set(raw.edges()) != set(want)
    a, b = set(g1.to_networkx().edges()), set(g2.to_networkx().edges())
    assert len(a & b) / len(a | b) == 1.0
    assert set(g1.to_igraph().get_edgelist()) == set(g2.to_igraph().get_edgelist())


def _nodes(n: int) -> pd.DataFrame:
    return pd.DataFrame({"layer": ["x"] * n, "unit": np.arange(n)})


@pytest.mark.parametrize("i", range(4))
def test_pyg_keeps_nodes_edges_and_weights(i: int) -> None:
    pytest.importorskip("torch_geometric")
    from torch_geometric.utils import to_networkx

    g = _graphs()[i]
    d = g.to_pyg()
    assert d.edge_index.shape[1] == g.adjacency.nnz  # undirected: both directions
    assert d.edge_weight.dtype == torch.float64  # lossless: the adjacency's own dtype
    a = sp.csr_matrix((d.edge_weight.numpy(), tuple(d.edge_index.numpy())), shape=(g.n_nodes,) * 2)
    assert (a != g.adjacency).nnz == 0  # exactly equal, no tolerance
    # num_nodes is stored, not inferred from x: it survives without node features
    assert d.x is not None and d.x.shape[0] == g.n_nodes
    del d.x
    assert d.num_nodes == g.n_nodes
    # PyG's to_networkx(to_undirected=True) keeps only the upper triangle: nothing may be lost
    gx = to_networkx(d, edge_attrs=["edge_weight"], to_undirected=not g.directed)
    assert gx.number_of_nodes() == g.n_nodes and gx.number_of_edges() == g.n_edges
    assert {(u, v): w["edge_weight"] for u, v, w in gx.edges(data=True)} == _canonical(g)


def test_pyg_num_nodes_trap_is_real_on_the_dead_tail_graph() -> None:
    pytest.importorskip("torch_geometric")
    from torch_geometric.data import Data

    g = _graphs()[0]  # its last node (a dead output unit) is isolated
    d = g.to_pyg()
    with pytest.warns(UserWarning, match="num_nodes"):
        inferred = Data(edge_index=d.edge_index).num_nodes  # what PyG does when not told
    assert inferred < g.n_nodes
    assert d.num_nodes == g.n_nodes and "num_nodes" in d


def test_pyg_weights_exact_for_non_float32_values() -> None:
    pytest.importorskip("torch_geometric")
    third = Graph(from_edges(3, [0, 1], [1, 2], [1 / 3, 0.1 + 1e-12], directed=False), _nodes(3), directed=False)
    d = third.to_pyg()
    assert d.edge_weight.tolist() == [1 / 3, 1 / 3, 0.1 + 1e-12, 0.1 + 1e-12]


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


def test_bipartite_rolled_abs_weights() -> None:
    model = _conv_net()
    t = _ticket(model, seed=3)
    b = layer_bipartite(model, t, rolled=True)["0.weight"]  # weights="abs" by default
    w, m = model[0].weight.detach().double(), t.masks["0.weight"]
    assert (b.n_left, b.n_right) == (2, 3)
    assert np.allclose(b.biadjacency.toarray(), (w.abs() * m).sum(dim=(2, 3)).T.numpy(), rtol=1e-12, atol=0)
    assert b.n_edges == int(m.flatten(2).any(-1).sum())


@pytest.mark.parametrize("rolled", [False, True])
def test_bipartite_fully_pruned_layer_is_isolated_nodes(rolled: bool, tmp_path) -> None:
    pytest.importorskip("torch_geometric")
    model = _conv_net()
    masks = {n: torch.ones_like(p, dtype=torch.bool) for n, p in gt.prunable(model).items()}
    masks["0.weight"][:] = False
    masks["4.weight"][:] = False
    gs = layer_bipartite(model, gt.Ticket(masks), rolled=rolled)
    for name, left in (("0.weight", 2 if rolled else 18), ("4.weight", 16)):
        b = gs[name]
        assert b.n_edges == 0 and b.n_left == left and b.n_nodes == left + b.n_right
        assert b.to_networkx().number_of_nodes() == b.n_nodes and b.to_igraph().vcount() == b.n_nodes
        d = b.to_pyg()
        assert d.num_nodes == b.n_nodes and d.edge_index.shape == (2, 0)
        back = Graph.read_edgelist(b.write(tmp_path / f"{name}.edgelist"))
        assert back.n_nodes == b.n_nodes and back.n_edges == 0
    assert gs["2.weight"].n_edges == 3 * 4  # the layer in between is untouched
