"""Shared helpers of the analysis modules: graph coercion and simple undirected adjacencies."""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from graphtickets.errors import GraphticketsError
from graphtickets.graphs.base import Graph, from_edges

__all__ = ["as_graph", "from_networkx", "from_igraph", "from_scipy", "from_pyg", "simple_undirected", "simple_directed", "to_igraph_simple", "igraph_seed"]


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


def _node_table(n: int, columns: dict[str, list[Any]] | None = None) -> pd.DataFrame:
    """A node table of ``n`` rows: ``layer`` ("" by default), ``unit`` (``0..n-1``), then the rest."""
    cols = dict(columns or {})
    table = pd.DataFrame({"layer": cols.pop("layer", [""] * n), "unit": cols.pop("unit", list(range(n)))})
    for k in sorted(cols):
        table[k] = cols[k]
    return table


def _symmetric(a: sp.csr_matrix) -> bool:
    return bool((abs(a - a.T) > 0).nnz == 0)


def from_scipy(a: Any, *, directed: bool | None = None, kind: str = "custom") -> Graph:
    """A :class:`Graph` from a square adjacency matrix (scipy.sparse or a 2-D numpy array).

    ``a[i, j]`` is the weight of edge i → j; zero entries are no edge. ``directed=None``
    decides by symmetry: a symmetric matrix is an undirected graph.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> g = from_scipy(sp.csr_matrix([[0, 1, 0], [1, 0, 2], [0, 2, 0]]))
    >>> g.directed, g.n_edges
    (False, 2)
    """
    adj = sp.csr_matrix(a, dtype=np.float64)
    if adj.ndim != 2 or adj.shape[0] != adj.shape[1]:
        raise GraphticketsError(f"an adjacency matrix must be square, got shape {adj.shape}")
    adj.eliminate_zeros()
    adj.sort_indices()
    d = (not _symmetric(adj)) if directed is None else bool(directed)
    return Graph(adjacency=adj, nodes=_node_table(adj.shape[0]), directed=d, kind=kind)


def from_igraph(g: Any, *, kind: str = "custom") -> Graph:
    """A :class:`Graph` from an ``igraph.Graph`` (same node order; edge attribute ``weight``,
    default 1; vertex attributes become node-table columns).

    Examples
    --------
    >>> import igraph as ig
    >>> from_igraph(ig.Graph.Ring(5)).n_edges
    5
    """
    n = int(g.vcount())
    edges = np.asarray(g.get_edgelist(), dtype=np.int64).reshape(-1, 2)
    attrs = set(g.es.attributes())
    w = np.asarray(g.es["weight"], dtype=np.float64) if "weight" in attrs else np.ones(len(edges))
    adj = from_edges(n, edges[:, 0], edges[:, 1], w, directed=bool(g.is_directed()))
    columns = {k: list(g.vs[k]) for k in g.vs.attributes()}
    return Graph(adjacency=adj, nodes=_node_table(n, columns), directed=bool(g.is_directed()), kind=kind)


#: Node attributes of a PyG ``Data`` read as node-table columns when they are per-node lists
#: (the layered graph's metrics need ``layer`` and ``role``; PyG keeps only numbers in ``x``).
_PYG_NODE_LISTS = ("layer", "role", "unit")


def from_pyg(data: Any, *, kind: str = "custom") -> Graph:
    """A :class:`Graph` from a ``torch_geometric.data.Data``.

    Edges come from ``edge_index`` with ``edge_weight`` (else a per-edge ``weight``, as
    ``torch_geometric.utils.from_networkx`` writes it, else a one-column ``edge_attr``;
    default 1). The graph is directed when ``data.directed`` says so (graphtickets' own
    export sets it), else when ``edge_index`` is not symmetric; an undirected graph stores
    both directions, as PyG does, and each edge is read once. Node features named in
    ``data.feature_names`` become node-table columns, and so do per-node lists
    ``data.layer``, ``data.role``, ``data.unit`` when set (a layered graph's dead-unit and
    effective-fraction metrics need ``layer`` and ``role``).

    Examples
    --------
    >>> import torch
    >>> from torch_geometric.data import Data
    >>> d = Data(edge_index=torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]]), num_nodes=3)
    >>> g = from_pyg(d)
    >>> g.directed, g.n_edges
    (False, 2)
    """
    n = int(data.num_nodes)
    ei = np.asarray(data.edge_index.detach().cpu().numpy(), dtype=np.int64).reshape(2, -1)
    w = getattr(data, "edge_weight", None)
    if w is None:  # torch_geometric.utils.from_networkx puts an edge attribute "weight" here
        cand: Any = getattr(data, "weight", None)
        w = cand if isinstance(cand, torch.Tensor) and cand.dim() == 1 and cand.shape[0] == ei.shape[1] else None
    if w is None:
        attr = getattr(data, "edge_attr", None)
        if attr is not None and (attr.dim() == 1 or (attr.dim() == 2 and attr.shape[1] == 1)):
            w = attr.reshape(-1)
    weight = np.ones(ei.shape[1]) if w is None else np.asarray(w.detach().cpu().numpy(), dtype=np.float64).reshape(-1)
    full = sp.csr_matrix((weight, (ei[0], ei[1])), shape=(n, n), dtype=np.float64)
    flag = getattr(data, "directed", None)
    directed = bool(flag) if isinstance(flag, bool) else not _symmetric(full)
    if directed:
        adj = from_edges(n, ei[0], ei[1], weight, directed=True)
    else:  # both directions stored: read each edge once
        keep = ei[0] <= ei[1]
        adj = from_edges(n, ei[0][keep], ei[1][keep], weight[keep], directed=False)
    columns: dict[str, list[Any]] = {}
    x, names = getattr(data, "x", None), getattr(data, "feature_names", None)
    if x is not None and names is not None and x.dim() == 2 and x.shape[1] == len(names):
        for i, name in enumerate(names):
            columns[str(name)] = x[:, i].detach().cpu().numpy().tolist()
    for name in _PYG_NODE_LISTS:  # per-node labels a user (or a later export) attached
        value = getattr(data, name, None)
        if isinstance(value, (list, tuple, np.ndarray)) and len(value) == n:
            columns[name] = list(value)
    return Graph(adjacency=adj, nodes=_node_table(n, columns), directed=directed, kind=kind)


def as_graph(x: Any) -> Graph:
    """``x`` as a :class:`Graph`.

    Accepted: a graphtickets :class:`Graph` (as is), a networkx graph, an ``igraph.Graph``, a
    ``torch_geometric.data.Data``, or a square scipy.sparse (or 2-D numpy) adjacency matrix.
    The same graph in any of these forms gives the same metrics and distances.

    Examples
    --------
    >>> import networkx as nx, scipy.sparse as sp
    >>> as_graph(nx.cycle_graph(4)).n_edges == as_graph(sp.csr_matrix(nx.to_numpy_array(nx.cycle_graph(4)))).n_edges
    True
    """
    if isinstance(x, Graph):
        return x
    if sp.issparse(x) or (isinstance(x, np.ndarray) and x.ndim == 2):
        return from_scipy(x)
    module = type(x).__module__ or ""
    if module.startswith("igraph") and hasattr(x, "get_edgelist"):
        return from_igraph(x)
    if hasattr(x, "edge_index") and hasattr(x, "num_nodes"):
        return from_pyg(x)
    if hasattr(x, "is_directed") and hasattr(x, "edges"):
        return from_networkx(x)
    raise GraphticketsError(
        f"expected a graph (graphtickets Graph, networkx, igraph, torch_geometric Data or a square "
        f"scipy.sparse adjacency), got {type(x).__name__}; build one from a ticket with "
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
