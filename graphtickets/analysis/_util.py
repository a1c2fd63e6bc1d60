"""Shared helpers of the analysis modules: graph coercion and simple undirected adjacencies."""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from graphtickets.errors import GraphticketsError
from graphtickets.graphs.base import Graph, from_edges

__all__ = ["as_graph", "from_networkx", "simple_undirected", "simple_directed", "to_igraph_simple", "igraph_seed"]


def from_networkx(g: Any, *, kind: str = "custom", layer: str | None = None) -> Graph:
    """A :class:`Graph` from a networkx graph (nodes relabelled ``0..n-1`` in iteration order).

    Node attributes ``layer``/``unit`` are kept when present (``layer`` defaults to ``layer``
    argument or ``""``); edge attribute ``weight`` is kept (default 1).

    Examples
    --------
    >>> import networkx as nx
    >>> from_networkx(nx.path_graph(3)).n_edges
    2
    """
    nodes = list(g.nodes)
    index = {v: i for i, v in enumerate(nodes)}
    n = len(nodes)
    edges = list(g.edges(data="weight", default=1.0))
    src = np.array([index[u] for u, _, _ in edges], dtype=np.int64)
    dst = np.array([index[v] for _, v, _ in edges], dtype=np.int64)
    w = np.array([float(x) for _, _, x in edges], dtype=np.float64)
    directed = bool(g.is_directed())
    adj = from_edges(n, src, dst, w, directed=directed)
    table = pd.DataFrame(
        {
            "layer": [g.nodes[v].get("layer", layer if layer is not None else "") for v in nodes],
            "unit": [g.nodes[v].get("unit", i) for i, v in enumerate(nodes)],
        }
    )
    extra = {k for v in nodes for k in g.nodes[v]} - {"layer", "unit"}
    for k in sorted(extra):
        table[k] = [g.nodes[v].get(k) for v in nodes]
    return Graph(adjacency=adj, nodes=table, directed=directed, kind=kind)


def as_graph(x: Any) -> Graph:
    """``x`` as a :class:`Graph` (a Graph as is; a networkx graph converted)."""
    if isinstance(x, Graph):
        return x
    if hasattr(x, "is_directed") and hasattr(x, "edges"):
        return from_networkx(x)
    raise GraphticketsError(
        f"expected a graphtickets Graph (or a networkx graph), got {type(x).__name__}; build one with "
        f"gt.graphs.layered_graph / relational_graph / layer_bipartite"
    )


def simple_undirected(graph: Graph | Any) -> sp.csr_matrix:
    """Symmetric 0/1 CSR adjacency without self-loops (directions and weights dropped).

    This is the graph You et al. (2020) measure: undirected, unweighted, no self-loops.
    """
    a = as_graph(graph).adjacency
    a = (a != 0).astype(np.int8)
    a = ((a + a.T) > 0).astype(np.float64).tocsr()
    a.setdiag(0)
    a.eliminate_zeros()
    a.sort_indices()
    return sp.csr_matrix(a)


def simple_directed(graph: Graph | Any) -> sp.csr_matrix:
    """0/1 CSR adjacency without self-loops, keeping directions (undirected graphs: symmetric)."""
    a = sp.csr_matrix((as_graph(graph).adjacency != 0).astype(np.float64))
    a.setdiag(0)
    a.eliminate_zeros()
    a.sort_indices()
    return a


def to_igraph_simple(adj: sp.csr_matrix, *, directed: bool = False) -> Any:
    """An ``igraph.Graph`` from a 0/1 adjacency (undirected: upper triangle, each edge once)."""
    import igraph as ig

    coo = sp.triu(adj, k=1).tocoo() if not directed else adj.tocoo()
    edges = np.column_stack([coo.row, coo.col]).astype(np.int64)
    return ig.Graph(n=int(adj.shape[0]), edges=edges, directed=directed)


@contextmanager
def igraph_seed(seed: int) -> Iterator[None]:
    """Run igraph's randomized routines with a local ``random.Random(seed)``.

    igraph draws from a process-wide generator (Python's ``random`` module by default); this
    swaps in a seeded local generator for the duration and restores the default afterwards, so
    the caller's global ``random`` state is neither read nor advanced.
    """
    import igraph as ig

    ig.set_random_number_generator(random.Random(seed))
    try:
        yield
    finally:
        ig.set_random_number_generator(random)


def gini(x: np.ndarray) -> float:
    """Gini coefficient of non-negative values (0 = all equal; 0 for an all-zero vector)."""
    x = np.sort(np.asarray(x, dtype=np.float64).ravel())
    n = x.size
    total = x.sum()
    if n == 0 or total == 0:
        return 0.0
    ranks = np.arange(1, n + 1)
    return float((2.0 * np.sum(ranks * x) / (n * total)) - (n + 1.0) / n)
