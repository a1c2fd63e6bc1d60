"""Value oracles for the secondary metrics (issue 31): hand-computed on graphs small enough to
count, or numpy on a small dense matrix; not the sparse and dense paths of one function.

Gini by its definition, the mean absolute difference over all ordered pairs,
``G = sum_ij |x_i - x_j| / (2 n^2 mean)``.
"""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pandas as pd
import pytest

from graphtickets.analysis import metrics
from graphtickets.analysis.spectral import ramanujan
from graphtickets.analysis.structure import layer_degree_stats
from graphtickets.graphs.base import Graph, from_edges


def _layered(sizes: list[int], edges: list[tuple[int, int]]) -> Graph:
    layer = np.repeat([f"L{i}" for i in range(len(sizes))], sizes)
    role = np.where(layer == "L0", "input", np.where(layer == f"L{len(sizes) - 1}", "output", "hidden"))
    e = np.array(edges, dtype=np.int64)
    nodes = pd.DataFrame({"layer": layer, "unit": np.concatenate([np.arange(s) for s in sizes]), "role": role})
    return Graph(from_edges(sum(sizes), e[:, 0], e[:, 1]), nodes, directed=True)


#: 2-3-1 layers: inputs 0, 1; hidden 2, 3, 4; output 5. Node 4 is a dead end.
HAND = _layered([2, 3, 1], [(0, 2), (0, 3), (0, 4), (1, 2), (2, 5), (3, 5)])


@pytest.mark.parametrize(("graph", "gini"), [
    (nx.star_graph(3), 0.25),         # degrees 3,1,1,1: 6 ordered pairs differ by 2 -> 12 / (2*16*1.5)
    (nx.path_graph(4), 1 / 6),        # degrees 1,2,2,1: 8 ordered pairs differ by 1 -> 8 / (2*16*1.5)
    (nx.cycle_graph(5), 0.0),         # regular
    (nx.Graph([(0, 1), (2, 3)]), 0.0),
])
def test_degree_gini_by_hand(graph: nx.Graph, gini: float) -> None:
    assert metrics(graph)["degree_gini"] == pytest.approx(gini, abs=1e-12)


def test_layer_in_and_out_gini_by_hand() -> None:
    t = layer_degree_stats(HAND).set_index("layer")
    # L0 out 3,1 -> 4 / (2*4*2) = 1/4, in 0,0 -> 0; L1 in 2,1,1 -> 4 / (2*9*4/3) = 1/6,
    # out 1,1,0 -> 4 / (2*9*2/3) = 1/3; L2: one node -> 0
    assert t["out_gini"].tolist() == pytest.approx([0.25, 1 / 3, 0.0], abs=1e-12)
    assert t["in_gini"].tolist() == pytest.approx([0.0, 1 / 6, 0.0], abs=1e-12)
    m = metrics(HAND)
    assert m["layer_in_gini"] == pytest.approx(1 / 18, abs=1e-12)  # the mean over the three layers
    assert m["layer_out_gini"] == pytest.approx(7 / 36, abs=1e-12)


def test_metrics_of_a_hand_made_layered_graph() -> None:
    """Values, not only keys: degrees (in + out) 3, 1, 3, 2, 1, 2; input-output paths 0-2-5,
    0-3-5, 1-2-5 (three, all of length 2)."""
    m = metrics(HAND)
    assert (m["n_nodes"], m["n_edges"]) == (6.0, 6.0)
    assert m["degree_mean"] == pytest.approx(2.0, abs=1e-12)
    assert m["degree_std"] == pytest.approx(math.sqrt(4 / 6), abs=1e-12)
    # sorted 1,1,2,2,3,3: unordered pairs 4 x 1 + 4 x 2 + 4 x 1 = 16 -> 32 / (2*36*2) = 2/9
    assert m["degree_gini"] == pytest.approx(2 / 9, abs=1e-12)
    assert m["log10_paths"] == pytest.approx(math.log10(3), abs=1e-12)
    assert m["io_path_length"] == pytest.approx(2.0, abs=1e-12)


def _top_two_eigen(b: np.ndarray) -> tuple[float, float]:
    """Largest adjacency eigenvalue of the bipartite graph of ``b`` and the largest one of
    smaller magnitude, from numpy's symmetric eigensolver on the full adjacency."""
    r, c = b.shape
    a = np.zeros((r + c, r + c))
    a[:r, r:], a[r:, :r] = b, b.T
    ev = np.linalg.eigvalsh(a)
    mu0 = float(ev.max())
    smaller = np.abs(ev)[np.abs(ev) < mu0 - 1e-9]
    return mu0, float(smaller.max())


def test_weighted_gap_against_numpy_on_a_dense_matrix() -> None:
    w = np.array([[0.5, -2.0, 0.0, 1.0],
                  [0.0, 1.5, -0.3, 0.0],
                  [2.5, 0.0, 0.7, -1.2]])
    r = ramanujan(w)
    mu0, mu_hat = _top_two_eigen(np.abs(w))
    assert r["weighted_mu0"] == pytest.approx(mu0, rel=1e-10)
    assert r["weighted_mu_hat"] == pytest.approx(mu_hat, rel=1e-10)
    assert r["weighted_gap"] == pytest.approx(mu0 - mu_hat, rel=1e-10)
    b0, b_hat = _top_two_eigen((w != 0).astype(float))
    assert (r["mu0"], r["mu_hat"]) == pytest.approx((b0, b_hat), rel=1e-10)
    assert 0 < r["weighted_mu_hat"] < r["weighted_mu0"]  # a non-trivial gap
