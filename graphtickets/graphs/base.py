"""One graph representation underneath every graph kind: a CSR adjacency and a node table.

A :class:`Graph` holds ``adjacency`` (a ``scipy.sparse.csr_matrix`` of shape ``(n, n)``,
float64 edge weights; for a directed graph row = source, column = target; an undirected graph
stores both directions), ``nodes`` (a ``pandas.DataFrame`` indexed ``0..n-1`` with at least the
columns ``layer`` and ``unit``), ``directed`` and ``kind``. Exports go to networkx, igraph,
PyTorch Geometric and to GraphML / edge-list files, all lossless (node count included: dead
trailing units do not vanish).
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

from graphtickets._json import py_scalar
from graphtickets.errors import GraphticketsError

__all__ = ["Graph", "edge_arrays", "from_edges"]


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
        import networkx as nx

        g = nx.DiGraph() if self.directed else nx.Graph()
        records = self.nodes.to_dict(orient="records")
        g.add_nodes_from((i, {k: py_scalar(v) for k, v in rec.items()}) for i, rec in enumerate(records))
        src, dst, w = self.edges()
        g.add_weighted_edges_from(zip(src.tolist(), dst.tolist(), w.tolist(), strict=True))
        return g

    def to_igraph(self) -> Any:
        """An ``igraph.Graph`` with the same node order, node attributes and edge ``weight``."""
        import igraph as ig

        src, dst, w = self.edges()
        g = ig.Graph(n=self.n_nodes, edges=np.column_stack([src, dst]), directed=self.directed)
        g.es["weight"] = w
        for col in self.nodes.columns:
            g.vs[col] = [py_scalar(v) for v in self.nodes[col].tolist()]
        return g

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
        import torch
        from torch_geometric.data import Data

        coo = sp.coo_matrix(self.adjacency)
        order = np.lexsort((coo.col, coo.row))
        edge_index = torch.from_numpy(np.vstack([coo.row[order], coo.col[order]]).astype(np.int64))
        edge_weight = torch.from_numpy(coo.data[order].astype(np.float64))
        numeric = self.nodes.select_dtypes(include=[np.number])
        x = torch.from_numpy(np.array(numeric.to_numpy(dtype=np.float32))) if numeric.shape[1] else None
        data = Data(edge_index=edge_index, edge_weight=edge_weight, x=x, num_nodes=self.n_nodes)
        data.feature_names = list(numeric.columns)
        data.directed = self.directed
        return data

    def write(self, path: str | os.PathLike[str], format: str | None = None) -> Path:
        """Write as ``graphml`` or ``edgelist`` (chosen from the suffix when ``format`` is None)."""
        import networkx as nx

        path = Path(path)
        fmt = format or {".graphml": "graphml", ".edgelist": "edgelist", ".txt": "edgelist", ".tsv": "edgelist"}.get(path.suffix)
        if fmt == "graphml":
            nx.write_graphml(self.to_networkx(), path)
        elif fmt == "edgelist":
            src, dst, w = self.edges()
            header = f"# {self.kind} {'directed' if self.directed else 'undirected'} nodes={self.n_nodes}\n# src dst weight\n"
            with open(path, "w") as f:
                f.write(header)
                np.savetxt(f, np.column_stack([src, dst, w]), fmt=["%d", "%d", "%.17g"])
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

