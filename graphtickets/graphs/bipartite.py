"""Per-layer bipartite graphs of a ticket (the object of the Ramanujan-graph analyses).

Each prunable layer is the bipartite graph of its inputs (left, ``side=0``) and outputs
(right, ``side=1``). A Linear layer: ``in_features x out_features`` with one edge per live
weight. A conv layer *unrolled* (Hoang et al. 2023; Pal et al. 2022): ``C_in*kh*kw`` left
nodes (input channel ``c``, kernel offset ``k`` -> node ``c*kh*kw + k``) x ``C_out`` right
nodes, one edge per live kernel entry; *rolled*: ``C_in x C_out`` with one edge per channel
pair that has a live entry.

References
----------
D. N. Hoang, S. Liu, R. Marculescu, Z. Wang, "Revisiting Pruning at Initialization through
the Lens of Ramanujan Graph", ICLR 2023.
B. Pal, A. Biswas, S. Kolay, P. Mitra, B. Basu, "A Study on the Ramanujan Graph Property of
Winning Lottery Tickets", ICML 2022.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp
from torch import nn

from graphtickets._trace import check_supported
from graphtickets.errors import GraphticketsError
from graphtickets.graphs import _common as C
from graphtickets.graphs.base import Graph
from graphtickets.ticket import Ticket

__all__ = ["BipartiteGraph", "layer_bipartite"]


@dataclass(repr=False)
class BipartiteGraph(Graph):
    """An undirected bipartite graph (``kind="bipartite"``): left nodes first, then right.

    Besides the attributes of :class:`~graphtickets.graphs.Graph`:

    Attributes
    ----------
    biadjacency : scipy.sparse.csr_matrix
        ``(n_left, n_right)``; ``adjacency = [[0, B], [B.T, 0]]``.
    """

    biadjacency: sp.csr_matrix = field(default_factory=lambda: sp.csr_matrix((0, 0)))

    def __post_init__(self) -> None:
        super().__post_init__()
        self.kind = "bipartite"
        self.directed = False

    @property
    def n_left(self) -> int:
        return int(self.biadjacency.shape[0])

    @property
    def n_right(self) -> int:
        return int(self.biadjacency.shape[1])


def _biadjacency(live: np.ndarray, values: np.ndarray | None, offsets: np.ndarray | None, n_left: int) -> sp.csr_matrix:
    """``(n_left, out)`` CSR from an ``(out, cols)`` live array (rows = outputs)."""
    out = live.shape[0]
    counts = C.row_counts(live)
    indptr = np.zeros(out + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    indices = np.empty(int(indptr[-1]), dtype=np.int64)
    data = np.empty(int(indptr[-1]), dtype=np.float64)
    C.fill_rows(live, indices, data, values, col_offset=0 if offsets is None else offsets)
    csc = sp.csc_matrix((data, indices, indptr), shape=(n_left, out))
    return csc.tocsr()


def layer_bipartite(
    model: nn.Module,
    ticket: Ticket | None = None,
    *,
    rolled: bool = False,
    weights: str | None = "abs",
    layers: list[str] | None = None,
) -> dict[str, BipartiteGraph]:
    """The bipartite graph of each prunable layer.

    Parameters
    ----------
    model : nn.Module
    ticket : Ticket, optional
        ``None`` is the dense network.
    rolled : bool, default False
        Conv layers as ``C_in x C_out`` channel graphs instead of ``C_in*kh*kw x C_out``.
    weights : {"abs", "count", None}
        Edge weights: ``|w|`` (rolled: sum of ``|w|`` over live entries), the number of live
        entries (1 unrolled), or 1.
    layers : list of str, optional
        Parameter names; default every prunable weight.

    Returns
    -------
    dict[str, BipartiteGraph]
        Keyed by parameter name, in model order. Node table columns ``layer``, ``unit``
        (index on its side), ``side`` (0 left/inputs, 1 right/outputs).

    Examples
    --------
    >>> from torch import nn
    >>> gs = layer_bipartite(nn.Sequential(nn.Conv2d(2, 3, 3), nn.Flatten(), nn.Linear(3, 1)))
    >>> gs["0.weight"].n_left, gs["0.weight"].n_right, gs["0.weight"].n_edges
    (18, 3, 54)
    """
    C.check_weights(weights)
    check_supported(model)  # refuses what layered_graph refuses (LSTM, attention, control flow, ...)
    C.check_ticket(model, ticket)
    names = C.prunable_names(model) if layers is None else list(layers)
    known = set(C.prunable_names(model))
    bad = [n for n in names if n not in known]
    if bad:
        raise GraphticketsError(f"{bad} are not prunable weights of the model (prunable: {sorted(known)})")
    out: dict[str, BipartiteGraph] = {}
    for name in names:
        mask = C.mask_of(model, ticket, name)
        w = C.param_tensor(model, name)
        groups = C.groups_of(C.module_of(model, name))
        n_in, n_out = C.in_out_width(model, name)
        if mask.ndim == 2 or not rolled:
            live = mask.reshape(mask.shape[0], -1).numpy()
            k = 1 if mask.ndim == 2 else int(np.prod(mask.shape[2:]))
            values = w.reshape(w.shape[0], -1).double().abs().numpy() if weights == "abs" else None
        else:
            k = 1
            live = C.kernel_counts(mask)
            values = (C.kernel_abs(w, mask) if weights == "abs" else live if weights == "count" else None)
        n_left = n_in * k
        offsets = None
        if groups > 1:
            cols_g = live.shape[1]
            offsets = (np.arange(n_out, dtype=np.int64) // (n_out // groups)) * cols_g
        b = _biadjacency(live, values, offsets, n_left)
        if weights is None:
            b.data[:] = 1.0
        adj = sp.bmat([[None, b], [b.T, None]], format="csr")
        mod = name.rpartition(".")[0] or name
        nodes = pd.DataFrame(
            {
                "layer": [mod] * (n_left + n_out),
                "unit": np.concatenate([np.arange(n_left), np.arange(n_out)]).astype(np.int64),
                "side": np.concatenate([np.zeros(n_left, np.int64), np.ones(n_out, np.int64)]),
            }
        )
        meta = {"param": name, "rolled": bool(rolled), "weights": weights, "kernel": k}
        out[name] = BipartiteGraph(adjacency=adj, nodes=nodes, directed=False, kind="bipartite",
                                   meta=meta, biadjacency=b)  # fmt: skip
    return out

