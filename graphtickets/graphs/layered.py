"""The layered graph of a ticket: the network traced with ``torch.fx``, one node per unit.

Nodes are the input features/channels, the outputs of every Linear/Conv layer (one node per
feature or channel), the results of residual adds (*merge* nodes) and of reshapes that change
the unit dimension (``flatten``). Edges point from a layer's inputs to its outputs:

* ``Linear``: one edge per live weight, input unit -> output unit;
* ``Conv``: one edge per (input channel, output channel) pair with at least one live kernel
  entry; its weight is the number of live entries (``weights="count"``) or their sum of
  ``|w|`` (``"abs"``);
* residual ``add``: the sum is a new block of nodes; node ``i`` of each summand gets an
  ``identity`` edge (weight 1) to node ``i`` of the sum (a 1x1 downsampling convolution on
  the shortcut contributes its own conv edges into the summand it produces);
* ``flatten``: channel ``c`` of a ``(C, H, W)`` activation gets an edge (weight 1) to each of
  its features ``c*H*W .. (c+1)*H*W - 1``, which are new nodes;
* BatchNorm, activations, pooling, dropout and identity keep the channel's node.

Fully pruned units stay in the graph as isolated nodes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from torch import nn

from graphtickets.graphs import _common as C
from graphtickets.graphs._trace import Plan, get_plan, resolve_input_shape
from graphtickets.graphs.base import Graph
from graphtickets.ticket import Ticket

__all__ = ["LayeredGraph", "layered_graph"]


@dataclass(repr=False)
class LayeredGraph(Graph):
    """A directed layered graph (``kind="layered"``).

    Extra attributes
    ----------------
    layer_blocks : list of (str, range)
        The blocks of nodes in creation (topological) order: the layer (module or fx node)
        that produced them and their node ids.
    edge_params : pandas.DataFrame
        One row per op that contributes edges: ``layer``, ``param`` (parameter name or None for
        structural edges), ``kind`` (``linear``, ``conv``, ``identity``, ``flatten``,
        ``reshape``, ``concat``, ``pad``), ``src_layer``, ``src_start``, ``src_stop``,
        ``dst_start``, ``dst_stop`` and ``n_edges``. ``layer_adjacency(param)`` slices the
        adjacency of one layer with it.
    """

    layer_blocks: list[tuple[str, range]] = field(default_factory=list)
    edge_params: pd.DataFrame = field(default_factory=pd.DataFrame)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.kind = "layered"

    def layer_adjacency(self, name: str) -> sp.csr_matrix:
        """The ``(src units, dst units)`` block of the adjacency of one layer or parameter."""
        rows = self.edge_params[(self.edge_params["param"] == name) | (self.edge_params["layer"] == name)]
        if rows.empty:
            from graphtickets.errors import GraphticketsError

            raise GraphticketsError(
                f"no layer or parameter {name!r} in this graph; known: {self.edge_params['layer'].tolist()}"
            )
        r = rows.iloc[0]
        return self.adjacency[int(r.src_start) : int(r.src_stop), int(r.dst_start) : int(r.dst_stop)]


def layered_graph(
    model: nn.Module,
    ticket: Ticket | None = None,
    *,
    weights: str | None = "count",
    input_shape: tuple[int, ...] | None = None,
) -> LayeredGraph:
    """The layered graph of ``ticket`` on ``model``, traced with ``torch.fx``.

    Parameters
    ----------
    model : nn.Module
        A network made of Linear/Conv/BatchNorm/activation/pooling/dropout/flatten/add
        (e.g. every model of ``gt.models.MODELS``).
    ticket : Ticket, optional
        The masks. ``None`` is the dense network (all ones); a prunable parameter the ticket
        does not mask counts as dense.
    weights : {"count", "abs", None}
        Edge weights: ``"count"`` = 1 per Linear weight and the number of live kernel entries
        per conv channel pair; ``"abs"`` = ``|w|`` (sum over live kernel entries for convs),
        taken from the model's current parameters (apply the ticket's weights first if it
        carries some); ``None`` = 1 for every edge. Structural edges (identity, flatten) weigh 1.
    input_shape : tuple of int, optional
        One sample's shape (no batch dimension); default ``model.gt_spec["in_shape"]``.

    Returns
    -------
    LayeredGraph
        Directed; node table columns ``layer``, ``unit``, ``depth`` (longest path from the
        input, in blocks), ``role`` (``input``/``hidden``/``merge``/``output``), ``block``
        (index into ``layer_blocks``) and ``unit_kind`` (``feature``/``channel``).

    Raises
    ------
    UnsupportedModuleError
        For a module or operation that has no graph meaning here (attention, LSTM, an
        arbitrary function), naming it.

    Examples
    --------
    >>> from torch import nn
    >>> g = layered_graph(nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)), input_shape=(3,))
    >>> g.n_nodes, g.n_edges
    (9, 20)

    References
    ----------
    Frankle & Carbin (2019), "The Lottery Ticket Hypothesis"; the channel-level convolution
    graph follows the unrolled/rolled views of Pal et al. (2022) and Hoang et al. (2023).
    """
    C.check_weights(weights)
    C.check_ticket(model, ticket)
    plan = get_plan(model, resolve_input_shape(model, input_shape))
    adjacency, edge_rows = _build(plan, model, ticket, weights)
    nodes = _node_table(plan)
    return LayeredGraph(
        adjacency=adjacency,
        nodes=nodes,
        directed=True,
        kind="layered",
        meta={"weights": weights, "input_shape": plan.input_shape, "model": type(model).__name__},
        layer_blocks=[(b.layer, range(b.start, b.start + b.size)) for b in plan.blocks],
        edge_params=pd.DataFrame(
            edge_rows,
            columns=["layer", "param", "kind", "src_layer", "src_start", "src_stop", "dst_start", "dst_stop", "n_edges"],
        ),
    )


def _node_table(plan: Plan) -> pd.DataFrame:
    sizes = np.array([b.size for b in plan.blocks], dtype=np.int64)
    block = np.repeat(np.arange(len(plan.blocks)), sizes)
    starts = np.array([b.start for b in plan.blocks], dtype=np.int64)
    unit = np.arange(plan.n_nodes, dtype=np.int64) - starts[block]

    def col(attr: str) -> pd.Categorical:
        values = [getattr(b, attr) for b in plan.blocks]
        cats = list(dict.fromkeys(values))
        codes = np.array([cats.index(v) for v in values], dtype=np.int32)[block]
        return pd.Categorical.from_codes(codes, categories=cats)

    return pd.DataFrame(
        {
            "layer": col("layer"),
            "unit": unit,
            "depth": np.array([b.depth for b in plan.blocks], dtype=np.int64)[block],
            "role": col("role"),
            "block": block,
            "unit_kind": col("unit"),
        }
    )


def _build(
    plan: Plan, model: nn.Module, ticket: Ticket | None, weights: str | None
) -> tuple[sp.csr_matrix, list[tuple[Any, ...]]]:
    """Columns (dst nodes) come block by block, each block from its one producing op: the
    adjacency is assembled directly in CSC form and converted to CSR once (no sort)."""
    producer = plan.producer()
    n = plan.n_nodes
    # pass 1: what each op needs (live arrays, values) and its per-dst counts
    work: list[tuple[Any, ...]] = []
    counts = np.zeros(n, dtype=np.int64)
    for bi, block in enumerate(plan.blocks):
        op = producer.get(bi)
        if op is None:
            continue
        if op.piece is not None:
            c = op.piece[0]
            work.append((op, None, None, None))
        else:
            assert op.param is not None
            mask = C.mask_of(model, ticket, op.param)
            src = plan.blocks[op.srcs[0]]
            if op.kind == "linear":
                live = mask.numpy()
                values = C.param_tensor(model, op.param).double().abs().numpy() if weights == "abs" else None
            else:
                live = C.kernel_counts(mask)
                if weights == "abs":
                    values = C.kernel_abs(C.param_tensor(model, op.param), mask)
                elif weights == "count":
                    values = live
                else:
                    values = None
            offset: int | np.ndarray = src.start
            if op.groups > 1:
                out, cin_g = live.shape
                offset = src.start + (np.arange(out, dtype=np.int64) // (out // op.groups)) * cin_g
            c = C.row_counts(live)
            work.append((op, live, values, offset))
        counts[block.start : block.start + block.size] = c
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    nnz = int(indptr[-1])
    idx_dtype = np.int32 if max(n, nnz) < np.iinfo(np.int32).max else np.int64
    indices = np.empty(nnz, dtype=idx_dtype)
    data = np.empty(nnz, dtype=np.float64)
    rows: list[tuple[Any, ...]] = []
    # pass 2: fill
    for op, live, values, offset in work:
        dst = plan.blocks[op.dst]
        a, b = int(indptr[dst.start]), int(indptr[dst.start + dst.size])
        if op.piece is not None:
            indices[a:b] = op.piece[1]
            data[a:b] = op.piece[2]
        else:
            C.fill_rows(live, indices[a:b], data[a:b], values, col_offset=offset)
        srcs = [plan.blocks[s] for s in op.srcs]
        rows.append(
            (op.layer, op.param, op.kind, ",".join(s.layer for s in srcs), min(s.start for s in srcs),
             max(s.start + s.size for s in srcs), dst.start, dst.start + dst.size, b - a)
        )  # fmt: skip
    if weights is None:
        data[:] = 1.0
    csc = sp.csc_matrix((data, indices, indptr.astype(idx_dtype)), shape=(n, n))
    del data, indices
    csr = csc.tocsr()
    csr.has_sorted_indices = True
    return csr, rows
