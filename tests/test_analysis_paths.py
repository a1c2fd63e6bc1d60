"""Clustering and path length (You et al. 2020) against closed forms and networkx."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pandas as pd
import pytest

from graphtickets.analysis import (
    clustering,
    from_networkx,
    layer_path_lengths,
    local_clustering,
    path_length,
)
from graphtickets.graphs.base import Graph, from_edges


def ring(n: int, k: int) -> Graph:
    """Ring lattice: node i joined to i+1..i+k (mod n), built without networkx."""
    src = np.repeat(np.arange(n), k)
    dst = (src + np.tile(np.arange(1, k + 1), n)) % n
    return Graph(from_edges(n, src, dst, directed=False), pd.DataFrame({"layer": [""] * n, "unit": np.arange(n)}), directed=False)


@pytest.mark.parametrize("n", [2, 5, 17])
def test_complete_graph_is_one(n: int) -> None:
    g = from_networkx(nx.complete_graph(n))
    assert clustering(g) == pytest.approx(1.0 if n > 2 else 0.0)
    r = path_length(g)
    assert r.value == pytest.approx(1.0) and r.connected_fraction == 1.0 and r.exact and r.stderr == 0


@pytest.mark.parametrize("k", [2, 3, 5])
def test_ring_lattice_closed_form(k: int) -> None:
    g = ring(60, k)
    expected = 3 * (k - 1) / (2 * (2 * k - 1))
    assert clustering(g) == pytest.approx(expected, abs=1e-12)
    assert clustering(g, backend="scipy") == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("n", [7, 8, 31, 40])
def test_cycle_path_length_closed_form(n: int) -> None:
    expected = (n + 1) / 4 if n % 2 else n * n / (4 * (n - 1))
    assert path_length(ring(n, 1)).value == pytest.approx(expected, abs=1e-12)
    assert path_length(ring(n, 1), exact=False, n_sources=n).value == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("seed", range(4))
def test_against_networkx_random(seed: int) -> None:
    G = nx.gnp_random_graph(70, 0.09, seed=seed)
    G.add_edge(0, 0)  # a self-loop must be ignored
    g = from_networkx(G)
    H = nx.Graph(G)
    H.remove_edges_from(nx.selfloop_edges(H))
    assert abs(clustering(g) - nx.average_clustering(H)) < 1e-9
    ref = nx.clustering(H)
    assert np.allclose(local_clustering(g), [ref[i] for i in range(70)], atol=1e-12)
    if nx.is_connected(H):
        for backend in ("bitset", "igraph"):
            assert abs(path_length(g, backend=backend).value - nx.average_shortest_path_length(H)) < 1e-9


def test_disconnected_reports_connected_pairs() -> None:
    G = nx.disjoint_union(nx.path_graph(4), nx.complete_graph(3))
    G.add_node(99)  # isolated
    r = path_length(from_networkx(G))
    # path P4: ordered distances sum 2*(1+2+3+1+2+1)=20 over 12 pairs; K3: 6 pairs of 1
    assert r.value == pytest.approx(26 / 18)
    assert r.connected_fraction == pytest.approx(18 / (8 * 7))
    assert np.isfinite(r.value)
    empty = path_length(from_networkx(nx.empty_graph(5)))
    assert np.isnan(empty.value) and empty.connected_fraction == 0.0


def test_sampled_estimate_is_close_and_reports_error() -> None:
    G = nx.connected_watts_strogatz_graph(1500, 6, 0.1, seed=3)
    g = from_networkx(G)
    exact = path_length(g)
    est = path_length(g, exact=False, n_sources=150, seed=1)
    assert not est.exact and est.n_sources == 150 and est.stderr > 0
    assert abs(est.value - exact.value) < 5 * est.stderr
    assert path_length(g, exact=False, n_sources=150, seed=1) == est  # seeded
    assert path_length(g, max_exact_nodes=100).exact is False  # threshold picks sampling


def test_ws_flex_near_graph2nn_best_mlp_graph() -> None:
    """graph2nn's best 64-node MLP graph (WS-flex k=8.19, p=0.128) has C=0.449, L=2.479.

    Those are one sample; our WS-flex samples at those parameters land in a band around them.
    """
    from graphtickets.graphs import ws_flex

    cs, ls = [], []
    for s in range(8):
        g = ws_flex(64, 8.19, 0.128, seed=s)
        cs.append(clustering(g))
        ls.append(path_length(g).value)
    assert 0.38 < np.median(cs) < 0.52
    assert 2.3 < np.median(ls) < 2.7


def test_layer_path_lengths_with_a_skip() -> None:
    # input 0 -> h1 (1) -> h2 (2) -> out (3), plus skip 0 -> 2
    G = nx.DiGraph([(0, 1), (1, 2), (2, 3), (0, 2)])
    for v, (layer, role) in enumerate([("in", "input"), ("h1", "hidden"), ("h2", "hidden"), ("out", "output")]):
        G.nodes[v].update(layer=layer, role=role)
    t = layer_path_lengths(from_networkx(G)).set_index("layer")
    assert t.loc["h2", "mean"] == 1 and t.loc["out", "mean"] == 2 and t.loc["out", "connected_fraction"] == 1


def test_backends_agree_on_disconnected_graphs_and_samples() -> None:
    G = nx.disjoint_union(nx.connected_watts_strogatz_graph(150, 4, 0.2, seed=0), nx.cycle_graph(70))
    G.add_node(1000)
    g = from_networkx(G)
    a, b = path_length(g, backend="bitset"), path_length(g, backend="igraph")
    assert abs(a.value - b.value) < 1e-12 and a.connected_fraction == b.connected_fraction
    sa = path_length(g, exact=False, n_sources=90, seed=4, backend="bitset")
    sb = path_length(g, exact=False, n_sources=90, seed=4, backend="igraph")
    assert abs(sa.value - sb.value) < 1e-12 and abs(sa.stderr - sb.stderr) < 1e-12
