"""One graph representation underneath every graph kind: a CSR adjacency and a node table.

A :class:`Graph` holds ``adjacency`` (a ``scipy.sparse.csr_matrix`` of shape ``(n, n)``,
float64 edge weights; for a directed graph row = source, column = target; an undirected graph
stores both directions), ``nodes`` (a ``pandas.DataFrame`` indexed ``0..n-1`` with at least the
columns ``layer`` and ``unit``), ``directed`` and ``kind``. Exports go to networkx, igraph,
PyTorch Geometric and to GraphML / edge-list files, all lossless (node count included: dead
trailing units do not vanish); imports come back from networkx, igraph, PyG and scipy.sparse.
Every format's pair sits side by side in this module (``to_networkx`` / ``from_networkx``, ...),
and :func:`as_graph` turns any of them into a :class:`Graph` (the analysis takes all of them).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from graphtickets._io import write_output
from graphtickets._json import py_scalar
from graphtickets.errors import GraphticketsError

__all__ = [
    "Graph",
    "edge_arrays",
    "from_edges",
    "as_graph",
    "to_networkx",
    "from_networkx",
    "to_igraph",
    "from_igraph",
    "to_pyg",
    "from_pyg",
    "from_scipy",
]


def from_edges(
    n: int, src: np.ndarray, dst: np.ndarray, weight: np.ndarray | None = None, *, directed: bool = True
) -> sp.csr_matrix:
    """CSR adjacency of ``n`` nodes from edge arrays (duplicates summed; undirected: symmetrized)."""
    src = np.asarray(src, dtype=np.int64)
    dst = np.asarray(dst, dtype=np.int64)
    w = np.ones(src.shape[0]) if weight is None else np.asarray(weight, dtype=np.float64)
    if not directed:
        off = src != dst
        src, dst, w = (
            np.concatenate([src, dst[off]]),
            np.concatenate([dst, src[off]]),
            np.concatenate([w, w[off]]),
        )
    a = sp.csr_matrix((w, (src, dst)), shape=(n, n))
    a.sum_duplicates()
    a.sort_indices()
    return a


def edge_arrays(adjacency: sp.spmatrix, *, directed: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(src, dst, weight)`` of every edge once; undirected edges canonical with ``src <= dst``."""
    coo = sp.coo_matrix(adjacency)
    r, c, w = coo.row.astype(np.int64), coo.col.astype(np.int64), coo.data.astype(np.float64)
    if not directed:
        keep = r <= c
        r, c, w = r[keep], c[keep], w[keep]
    order = np.lexsort((c, r))
    return r[order], c[order], w[order]


@dataclass
class Graph:
    """A graph of a ticket.

    Attributes
    ----------
    adjacency : scipy.sparse.csr_matrix
        ``(n, n)`` float64 weights. Directed: ``A[i, j]`` is the edge i → j. Undirected:
        symmetric.
    nodes : pandas.DataFrame
        One row per node (index ``0..n-1``); columns ``layer`` (name of the layer or tensor the
        node belongs to) and ``unit`` (its index there), plus kind-specific columns.
    directed : bool
    kind : str
        ``"layered"``, ``"relational"``, ``"bipartite"`` or ``"custom"``.
    meta : dict
        Anything else (how it was built).
    """

    adjacency: sp.csr_matrix
    nodes: pd.DataFrame
    directed: bool = True
    kind: str = "custom"
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        a = self.adjacency
        if not sp.issparse(a) or a.shape[0] != a.shape[1]:
            raise GraphticketsError("adjacency must be a square scipy.sparse matrix")
        self.adjacency = sp.csr_matrix(a, dtype=np.float64)
        if len(self.nodes) != a.shape[0]:
            raise GraphticketsError(
                f"the node table has {len(self.nodes)} rows but the adjacency has {a.shape[0]} nodes"
            )

    # ------------------------------------------------------------------ sizes
    @property
    def n_nodes(self) -> int:
        return int(self.adjacency.shape[0])

    @property
    def n_edges(self) -> int:
        """Number of edges (an undirected edge counts once; a self-loop once)."""
        if self.directed:
            return int(self.adjacency.nnz)
        diag = int(np.count_nonzero(self.adjacency.diagonal()))
        return (int(self.adjacency.nnz) - diag) // 2 + diag

    def edges(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(src, dst, weight)`` arrays, each edge once, sorted; undirected with ``src <= dst``."""
        return edge_arrays(self.adjacency, directed=self.directed)

    def __repr__(self) -> str:
        d = "directed" if self.directed else "undirected"
        return f"{type(self).__name__}({self.kind}, {d}, nodes={self.n_nodes}, edges={self.n_edges})"

    # ------------------------------------------------------------------ exports
    def to_networkx(self) -> Any:
        """A ``networkx.DiGraph``/``Graph`` with node attributes from the node table and edge ``weight``."""
        return to_networkx(self)

    def to_igraph(self) -> Any:
        """An ``igraph.Graph`` with the same node order, node attributes and edge ``weight``."""
        return to_igraph(self)

    def to_pyg(self) -> Any:
        """A ``torch_geometric.data.Data`` with ``edge_index``, ``edge_weight`` and node features.

        ``num_nodes`` is set explicitly (PyG would otherwise infer it from the largest index and
        drop dead trailing units). An undirected graph gets both directions, as PyG expects, so
        ``to_networkx(data, to_undirected=True)`` (which keeps the upper triangle) loses nothing.
        ``edge_weight`` is float64, the adjacency's own dtype, so the export is lossless (conv
        ``abs`` sums, relational ``mean`` densities); GNN layers that want float32 need
        ``data.edge_weight.float()``. Node features ``x``: the numeric columns of the node table
        (float32; their names in ``data.feature_names``), None when there are none.
        """
        return to_pyg(self)

    def write(self, path: str | os.PathLike[str], format: str | None = None) -> Path:
        """Write as ``graphml`` or ``edgelist`` (chosen from the suffix when ``format`` is None)."""
        import networkx as nx

        path = Path(path)
        fmt = format or {".graphml": "graphml", ".edgelist": "edgelist", ".txt": "edgelist", ".tsv": "edgelist"}.get(path.suffix)
        if fmt == "graphml":
            g = self.to_networkx()
            write_output(path, lambda f: nx.write_graphml(g, f), what="graph")
        elif fmt == "edgelist":
            src, dst, w = self.edges()
            header = f"# {self.kind} {'directed' if self.directed else 'undirected'} nodes={self.n_nodes}\n# src dst weight\n"

            def body(f: Any) -> None:
                f.write(header.encode())
                np.savetxt(f, np.column_stack([src, dst, w]), fmt=["%d", "%d", "%.17g"])

            write_output(path, body, what="graph")
        else:
            raise GraphticketsError(
                f"unknown graph format {format or path.suffix!r}; use 'graphml' or 'edgelist'"
            )
        return path

    @classmethod
    def read_edgelist(cls, path: str | os.PathLike[str]) -> Graph:
        """Read a file written by ``write(..., "edgelist")`` (node attributes are not kept)."""
        with open(path) as f:
            first = f.readline().split()
        if len(first) < 4 or first[0] != "#" or not first[3].startswith("nodes="):
            raise GraphticketsError(f"{str(path)!r} is not an edge list written by graphtickets")
        kind, directed, n = first[1], first[2] == "directed", int(first[3].split("=")[1])
        with warnings.catch_warnings():  # a graph without edges is a valid, empty edge list
            warnings.filterwarnings("ignore", message="loadtxt: input contained no data", category=UserWarning)
            arr = np.loadtxt(path, comments="#", ndmin=2)
        src, dst, w = (arr[:, 0], arr[:, 1], arr[:, 2]) if arr.size else (np.zeros(0), np.zeros(0), np.zeros(0))
        adj = from_edges(n, src.astype(np.int64), dst.astype(np.int64), w, directed=directed)
        nodes = pd.DataFrame({"layer": [""] * n, "unit": np.arange(n)})
        return cls(adjacency=adj, nodes=nodes, directed=directed, kind=kind)


# ---------------------------------------------------------------------------- formats
# Each format's pair side by side: to_X(graph) (also ``graph.to_X()``) and from_X(...). Files are
# ``Graph.write`` / ``Graph.read_edgelist``; a scipy adjacency is ``graph.adjacency`` one way
# and :func:`from_scipy` the other. :func:`as_graph` takes any of them.
def _node_table(n: int, columns: dict[str, list[Any]] | None = None) -> pd.DataFrame:
    """A node table of ``n`` rows: ``layer`` ("" by default), ``unit`` (``0..n-1``), then the rest."""
    cols = dict(columns or {})
    table = pd.DataFrame({"layer": cols.pop("layer", [""] * n), "unit": cols.pop("unit", list(range(n)))})
    for k in sorted(cols):
        table[k] = cols[k]
    return table


def _symmetric(a: sp.csr_matrix) -> bool:
    return bool((abs(a - a.T) > 0).nnz == 0)


def to_networkx(graph: Graph) -> Any:
    """A ``networkx.DiGraph``/``Graph`` with node attributes from the node table and edge ``weight``."""
    import networkx as nx

    g = nx.DiGraph() if graph.directed else nx.Graph()
    records = graph.nodes.to_dict(orient="records")
    g.add_nodes_from((i, {k: py_scalar(v) for k, v in rec.items()}) for i, rec in enumerate(records))
    src, dst, w = graph.edges()
    g.add_weighted_edges_from(zip(src.tolist(), dst.tolist(), w.tolist(), strict=True))
    return g


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


def to_igraph(graph: Graph) -> Any:
    """An ``igraph.Graph`` with the same node order, node attributes and edge ``weight``."""
    import igraph as ig

    src, dst, w = graph.edges()
    g = ig.Graph(n=graph.n_nodes, edges=np.column_stack([src, dst]), directed=graph.directed)
    g.es["weight"] = w
    for col in graph.nodes.columns:
        g.vs[col] = [py_scalar(v) for v in graph.nodes[col].tolist()]
    return g


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


def to_pyg(graph: Graph) -> Any:
    """A ``torch_geometric.data.Data`` with ``edge_index``, ``edge_weight`` and node features.

    ``num_nodes`` is set explicitly (PyG would otherwise infer it from the largest index and
    drop dead trailing units). An undirected graph gets both directions, as PyG expects, so
    ``to_networkx(data, to_undirected=True)`` (which keeps the upper triangle) loses nothing.
    ``edge_weight`` is float64, the adjacency's own dtype, so the export is lossless (conv
    ``abs`` sums, relational ``mean`` densities); GNN layers that want float32 need
    ``data.edge_weight.float()``. Node features ``x``: the numeric columns of the node table
    (float32; their names in ``data.feature_names``), None when there are none.
    """
    import torch
    from torch_geometric.data import Data

    coo = sp.coo_matrix(graph.adjacency)
    order = np.lexsort((coo.col, coo.row))
    edge_index = torch.from_numpy(np.vstack([coo.row[order], coo.col[order]]).astype(np.int64))
    edge_weight = torch.from_numpy(coo.data[order].astype(np.float64))
    numeric = graph.nodes.select_dtypes(include=[np.number])
    x = torch.from_numpy(np.array(numeric.to_numpy(dtype=np.float32))) if numeric.shape[1] else None
    data = Data(edge_index=edge_index, edge_weight=edge_weight, x=x, num_nodes=graph.n_nodes)
    data.feature_names = list(numeric.columns)
    data.directed = graph.directed
    return data


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
    import torch

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
