"""Shared helpers of the analysis modules: simple (un)directed adjacencies, igraph seeding, Gini.

Graph coercion (:func:`as_graph`) and the graph formats (``from_networkx``, ...) live in
:mod:`graphtickets.graphs.base`; they are re-exported here for the analysis modules.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import scipy.sparse as sp

from graphtickets.graphs.base import (
    Graph,
    as_graph,
    from_igraph,
    from_networkx,
    from_pyg,
    from_scipy,
)

__all__ = ["as_graph", "from_networkx", "from_igraph", "from_scipy", "from_pyg", "simple_undirected", "simple_directed", "to_igraph_simple", "igraph_seed"]


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
