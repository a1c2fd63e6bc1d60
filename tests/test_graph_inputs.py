"""Metrics and distances accept networkx, igraph, scipy.sparse and PyG graphs with the same values."""

from __future__ import annotations

import igraph as ig
import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp
import torch

import graphtickets as gt
from graphtickets.analysis import as_graph
from graphtickets.errors import GraphticketsError

pyg_utils = pytest.importorskip("torch_geometric.utils")


def _weighted(g: nx.Graph, seed: int) -> nx.Graph:
    rng = np.random.default_rng(seed)
    for u, v in g.edges:
        g.edges[u, v]["weight"] = float(rng.integers(1, 5))
    return g


def _dag(n: int, p: float, seed: int) -> nx.DiGraph:
    g = nx.DiGraph()
    g.add_nodes_from(range(n))
    g.add_edges_from((u, v) for u, v in nx.gnp_random_graph(n, p, seed=seed, directed=True).edges if u < v)
    return g


GRAPHS = {
    "small_world": lambda: _weighted(nx.connected_watts_strogatz_graph(30, 4, 0.2, seed=1), 0),
    # a DAG (the directed metrics count input->output paths)
    "dag": lambda: _weighted(_dag(25, 0.15, seed=2), 1),
    "two_parts": lambda: nx.disjoint_union(nx.cycle_graph(6), nx.complete_graph(4)),
}

# independent conversions (the libraries' own constructors, not graphtickets' exports)
def _to_igraph(g: nx.Graph) -> ig.Graph:
    h = ig.Graph(n=g.number_of_nodes(), edges=list(g.edges), directed=g.is_directed())
    h.es["weight"] = [float(w) for _, _, w in g.edges(data="weight", default=1.0)]
    return h


def _to_scipy(g: nx.Graph) -> sp.csr_array:
    return nx.to_scipy_sparse_array(g, nodelist=list(range(g.number_of_nodes())), format="csr")


def _to_pyg(g: nx.Graph):
    return pyg_utils.from_networkx(g)


CONVERT = {"igraph": _to_igraph, "scipy": _to_scipy, "pyg": _to_pyg}


def _same(a: dict[str, float], b: dict[str, float]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert (np.isnan(a[k]) and np.isnan(b[k])) or a[k] == pytest.approx(b[k], rel=1e-9, abs=1e-12), k


@pytest.mark.parametrize("name", sorted(GRAPHS))
@pytest.mark.parametrize("kind", sorted(CONVERT))
def test_metrics_same_for_every_input_type(name, kind):
    g = GRAPHS[name]()
    other = CONVERT[kind](g)
    _same(gt.analysis.metrics(g), gt.analysis.metrics(other))
    assert gt.analysis.clustering(other) == pytest.approx(gt.analysis.clustering(g))
    a, b = gt.analysis.path_length(g), gt.analysis.path_length(other)
    assert (np.isnan(a.value) and np.isnan(b.value)) or a.value == pytest.approx(b.value)
    assert as_graph(other).directed == g.is_directed()
    assert as_graph(other).n_edges == g.number_of_edges()


@pytest.mark.parametrize("kind", sorted(CONVERT))
def test_distances_same_for_every_input_type(kind):
    a, b = GRAPHS["small_world"](), _weighted(nx.connected_watts_strogatz_graph(30, 4, 0.5, seed=7), 3)
    for dist in ("ged", "spectral", "netlsd", "degree", "ged_approx"):
        want = gt.analysis.distance(a, b, dist)
        got = gt.analysis.distance(CONVERT[kind](a), CONVERT[kind](b), dist)
        assert got == pytest.approx(want, rel=1e-9, abs=1e-12), dist


def test_ticket_graphs_through_each_export():
    """A ticket's layered and relational graphs give the same metrics through every library."""
    model = gt.models.build("mlp", in_shape=(8,), num_classes=3, widths=(16, 16), seed=0)
    ticket = gt.pruning.prune(model, "random", density=0.3, seed=0)
    for g in (gt.graphs.layered_graph(model, ticket, weights="count"), gt.graphs.relational_graph(model, ticket)):
        want = gt.analysis.metrics(g.to_networkx())
        _same(want, gt.analysis.metrics(g.to_igraph()))
        data = g.to_pyg()
        data.layer = g.nodes["layer"].tolist()  # PyG keeps numbers only in x: attach the labels
        if "role" in g.nodes:
            data.role = g.nodes["role"].tolist()
        _same(want, gt.analysis.metrics(data))
    # without layer labels a bare adjacency gives the label-free metrics of the same graph
    lg = gt.graphs.layered_graph(model, ticket, weights="count")
    bare = nx.from_scipy_sparse_array(lg.adjacency, create_using=nx.DiGraph)
    _same(gt.analysis.metrics(bare), gt.analysis.metrics(lg.adjacency))


def test_dense_numpy_and_bad_input():
    g = nx.petersen_graph()
    assert gt.analysis.clustering(nx.to_numpy_array(g)) == gt.analysis.clustering(g) == 0.0
    with pytest.raises(GraphticketsError, match="square"):
        as_graph(sp.csr_matrix(np.ones((2, 3))))
    with pytest.raises(GraphticketsError, match="networkx, igraph"):
        gt.analysis.metrics([1, 2, 3])
    with pytest.raises(GraphticketsError, match="not a ticket with a graph"):
        gt.analysis.distance(gt.Ticket({"w": torch.tensor([True])}), g, "ged")
