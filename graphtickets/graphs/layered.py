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
import torch
from torch import nn

from graphtickets._trace import Op, Plan, check_supported, get_plan, resolve_input_shape
from graphtickets.graphs import _common as C
from graphtickets.graphs.base import Graph
from graphtickets.ticket import Ticket

__all__ = ["LayeredGraph", "layered_graph"]


@dataclass(repr=False)
class LayeredGraph(Graph):
    """A directed layered graph (``kind="layered"``).

    Besides the attributes of :class:`~graphtickets.graphs.Graph`:

    Attributes
    ----------
    layer_blocks : list of (str, range)
        The blocks of nodes in creation (topological) order: the layer (module or fx node)
        that produced them and their node ids.
    edge_params : pandas.DataFrame
        One row per op that contributes edges: ``layer``, ``param`` (parameter name or None for
        structural edges), ``kind`` (``linear``, ``conv``, ``identity``, ``flatten``,
        ``reshape``, ``concat``, ``pad``), ``src_layer``, ``src_start``, ``src_stop``,
        ``dst_start``, ``dst_stop``, ``n_edges`` and ``numel`` (the parameter's number of
        weights, pruned or not; 0 for structural edges). ``layer_adjacency(param)`` slices the
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
    if not isinstance(model, nn.Module):
        check_supported(model)  # the shared check names a model that is not a module
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
            columns=["layer", "param", "kind", "src_layer", "src_start", "src_stop", "dst_start", "dst_stop", "n_edges",
                     "numel"],
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


@dataclass
class _Part:
    """One op's edges, source-major: a dense ``(dst, src)`` live array or a fixed piece."""

    op: Any
    live: np.ndarray | None = None  # (dst units, src units) of one conv group / the whole layer
    values: np.ndarray | None = None  # same shape as live (float or count), None = weight 1
    src0: int = 0  # global node id of live's column 0
    dst0: int = 0  # global node id of live's row 0
    rows: np.ndarray | None = None  # piece: global src ids, sorted
    cols: np.ndarray | None = None  # piece: global dst ids (ascending within a src)
    weight: np.ndarray | None = None  # piece: weights
    mask_elems: int = 0  # entries of the op's mask (on its first part), for the chunk size


def _build(
    plan: Plan, model: nn.Module, ticket: Ticket | None, weights: str | None
) -> tuple[sp.csr_matrix, list[tuple[Any, ...]]]:
    """Assemble the CSR adjacency (rows = source nodes) directly, without a CSC copy.

    Pass 1 counts every op's edges per source node (column sums of its mask) and gives the
    CSR ``indptr``. Pass 2 visits the ops in the order of their destination blocks (so that
    the columns of every row come out sorted) and writes each op's entries at its source
    rows' cursors, a chunk of source units at a time: the transposed mask chunk and the
    int64 positions are the only transients, bounded by ``_chunk_elems``. Peak memory is the
    result (int32 indices + float64 weights: 12 bytes per edge) plus those chunks.
    """
    producer = plan.producer()
    n = plan.n_nodes
    ops = [producer[bi] for bi in range(len(plan.blocks)) if bi in producer]
    parts, counts, edges_of = _count_edges(plan, ops, model, ticket, weights)  # pass 1
    nnz = int(counts.sum())
    idx_dtype = np.int32 if max(n, nnz) < np.iinfo(np.int32).max else np.int64
    indptr = np.zeros(n + 1, dtype=idx_dtype)
    np.cumsum(counts, out=indptr[1:])
    del counts
    cursor = indptr[:-1].astype(np.int64)
    indices = np.empty(nnz, dtype=idx_dtype)
    data = np.ones(nnz, dtype=np.float64) if weights is None else np.empty(nnz, dtype=np.float64)
    consumers = np.zeros(len(plan.blocks), dtype=np.int64)  # ops reading each source block
    for op in ops:
        consumers[list(set(op.srcs))] += 1
    _write_parts(parts, cursor, indices, None if weights is None else data, weights, sole=consumers == 1)  # pass 2
    if not np.array_equal(cursor, indptr[1:]):  # pragma: no cover - an internal invariant
        raise RuntimeError("layered graph: pass 2 wrote a different number of edges than pass 1 counted")
    csr = sp.csr_matrix((data, indices, indptr), shape=(n, n))
    csr.has_sorted_indices = True
    return csr, _edge_rows(plan, ops, model, edges_of)


def _count_edges(
    plan: Plan, ops: list[Op], model: nn.Module, ticket: Ticket | None, weights: str | None
) -> tuple[list[_Part], np.ndarray, dict[int, int]]:
    """Pass 1 of :func:`_build`: every op's parts, the edges per source node, the edges per op."""
    counts = np.zeros(plan.n_nodes, dtype=np.int64)
    parts: list[_Part] = []
    edges_of: dict[int, int] = {}
    for op in ops:
        new = [_piece_part(op, plan)] if op.piece is not None else _weight_parts(op, plan, model, ticket, weights)
        for part in new:
            if part.rows is not None:
                counts += np.bincount(part.rows, minlength=plan.n_nodes)
                k = int(part.rows.shape[0])
            else:
                assert part.live is not None
                per_src = np.count_nonzero(part.live, axis=0)
                counts[part.src0 : part.src0 + part.live.shape[1]] += per_src
                k = int(per_src.sum())
            edges_of[id(op)] = edges_of.get(id(op), 0) + k
        parts.extend(new)
    return parts, counts, edges_of


def _piece_part(op: Op, plan: Plan) -> _Part:
    """A structural op's fixed edges (identity, flatten, ...), sorted by source node."""
    dst = plan.blocks[op.dst]
    assert op.piece is not None
    per_dst, src_ids, w = op.piece
    dst_ids = np.repeat(np.arange(dst.start, dst.start + dst.size, dtype=np.int64), per_dst)
    order = np.argsort(src_ids, kind="stable")
    rows = np.asarray(src_ids, dtype=np.int64)[order]
    return _Part(op, rows=rows, cols=dst_ids[order], weight=np.asarray(w, dtype=np.float64)[order])


def _weight_parts(op: Op, plan: Plan, model: nn.Module, ticket: Ticket | None, weights: str | None) -> list[_Part]:
    """A Linear/Conv op's live ``(dst, src)`` arrays: one per group (a grouped conv is ``groups``
    independent dense blocks), with the edge values ``weights`` asks for."""
    assert op.param is not None
    mask = C.mask_of(model, ticket, op.param)
    src, dst = plan.blocks[op.srcs[0]], plan.blocks[op.dst]
    values: np.ndarray | None
    if op.kind == "linear":
        live = mask.numpy()
        values = _float_numpy(C.param_tensor(model, op.param)) if weights == "abs" else None  # |.| per chunk
    else:
        live = C.kernel_counts(mask)
        if weights == "abs":
            values = C.kernel_abs(C.param_tensor(model, op.param), mask)
        else:
            values = live if weights == "count" else None
    out, cin_g = live.shape
    out_g = out // op.groups
    parts = []
    for g in range(op.groups):
        r = slice(g * out_g, (g + 1) * out_g)
        sub = live[r]
        parts.append(_Part(op, live=sub, values=sub if values is live else None if values is None else values[r],
                           src0=src.start + g * cin_g, dst0=dst.start + g * out_g, mask_elems=mask.numel() if g == 0 else 0))  # fmt: skip
    return parts


def _write_parts(
    parts: list[_Part], cursor: np.ndarray, indices: np.ndarray, data: np.ndarray | None, weights: str | None,
    *, sole: np.ndarray,
) -> None:
    """Pass 2 of :func:`_build`: each part's entries at its source rows' cursors (in dst-block
    order); ``sole[b]``: source block ``b`` feeds one op only (its entries are contiguous)."""
    elems = _chunk_elems(sum(p.mask_elems for p in parts))
    for part in parts:
        op = part.op
        if part.rows is not None:
            assert part.cols is not None and part.weight is not None
            _scatter(cursor, part.rows, part.cols, part.weight, indices, data)
        else:
            assert part.live is not None
            _fill_part(part, cursor, indices, data, elems, abs_values=weights == "abs" and op.kind == "linear",
                       contiguous=bool(sole[op.srcs[0]]))  # fmt: skip


def _edge_rows(plan: Plan, ops: list[Op], model: nn.Module, edges_of: dict[int, int]) -> list[tuple[Any, ...]]:
    """The rows of ``edge_params``, one per op."""
    rows_out: list[tuple[Any, ...]] = []
    numel = {_base_name(n): int(p.numel()) for n, p in model.named_parameters()}  # also prune's weight_orig
    for op in ops:
        dst = plan.blocks[op.dst]
        srcs = [plan.blocks[s] for s in op.srcs]
        rows_out.append(
            (op.layer, op.param, op.kind, ",".join(s.layer for s in srcs), min(s.start for s in srcs),
             max(s.start + s.size for s in srcs), dst.start, dst.start + dst.size, edges_of.get(id(op), 0),
             numel.get(op.param, 0) if op.param is not None else 0)
        )  # fmt: skip
    return rows_out


def _base_name(param: str) -> str:
    """``fc.weight`` for ``fc.weight`` and for a ``torch.nn.utils.prune``'d ``fc.weight_orig``."""
    return param[: -len("_orig")] if param.endswith("_orig") else param


def _float_numpy(t: torch.Tensor) -> np.ndarray:
    """A numpy view of a float32/float64 tensor (other dtypes: a float64 copy)."""
    return (t if t.dtype in (torch.float32, torch.float64) else t.double()).numpy()


def _chunk_elems(mask_elems: int) -> int:
    """Mask entries transposed at once: about 1/64 of the model's mask, within [2^15, 2^21].

    A chunk costs its bool copy plus about 48 bytes per live entry (int64 positions and
    columns), so this keeps the transients a small fraction of the mask bytes at any scale.
    """
    return int(min(1 << 21, max(1 << 15, mask_elems // 64)))


def _fill_part(
    part: _Part,
    cursor: np.ndarray,
    indices: np.ndarray,
    data: np.ndarray | None,
    elems: int,
    *,
    abs_values: bool,
    contiguous: bool,
) -> None:
    """Write the entries of one dense ``(dst, src)`` block, a chunk of source units at a time.

    Each chunk is transposed (``(src, dst)``, row-major = CSR order); its nonzero positions
    give the columns (``flat % n_dst``) and, when weights are wanted, index the transposed
    values. ``contiguous``: the source block feeds this op only, so the chunk's entries are
    one run of the CSR arrays and need no per-entry positions.
    """
    live = part.live
    assert live is not None
    n_dst, n_src = live.shape
    if n_dst == 0 or n_src == 0:
        return
    pow2 = n_dst & (n_dst - 1) == 0
    step = max(1, elems // n_dst)
    for a in range(0, n_src, step):
        b = min(n_src, a + step)
        t = np.ascontiguousarray(live[:, a:b].T)
        nz = t if t.dtype == np.bool_ else t != 0
        flat = np.flatnonzero(nz)
        k = flat.shape[0]
        if k == 0:
            continue
        cnt = np.count_nonzero(nz, axis=1)
        del nz
        cur = cursor[part.src0 + a : part.src0 + b]
        if contiguous:
            p0 = int(cur[0])
            pos: slice | np.ndarray = slice(p0, p0 + k)
        else:
            start = cur - (np.cumsum(cnt) - cnt)
            at = np.repeat(start, cnt)
            at += np.arange(k, dtype=np.int64)
            pos = at
        if data is not None:
            if part.values is None:
                data[pos] = 1.0
            elif abs_values:
                v = np.ascontiguousarray(part.values[:, a:b].T).reshape(-1)[flat]
                data[pos] = np.abs(v, out=v)
            else:
                data[pos] = t.reshape(-1)[flat] if part.values is live else (
                    np.ascontiguousarray(part.values[:, a:b].T).reshape(-1)[flat])
        del t
        col = np.bitwise_and(flat, n_dst - 1, out=flat) if pow2 else np.remainder(flat, n_dst, out=flat)
        col += part.dst0
        indices[pos] = col
        cur += cnt


def _scatter(
    cursor: np.ndarray, rows: np.ndarray, cols: np.ndarray, weight: np.ndarray, indices: np.ndarray, data: np.ndarray | None
) -> None:
    """Entries sorted by (global) source row go to each row's cursor, in order (small pieces)."""
    k = rows.shape[0]
    if k == 0:
        return
    first = np.searchsorted(rows, rows, side="left")
    pos = cursor[rows] + (np.arange(k, dtype=np.int64) - first)
    indices[pos] = cols
    if data is not None:
        data[pos] = weight
    uniq, cnt = np.unique(rows, return_counts=True)
    cursor[uniq] += cnt
