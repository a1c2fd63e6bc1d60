"""Relational graphs of a ticket, as in You et al. (2020), and masks built from them.

You et al. describe a network by one *relational graph* of ``n`` nodes shared by all layers:
a layer of width ``w`` splits its units (channels) into ``n`` contiguous groups whose sizes
differ by at most one (``numpy.array_split``: the first ``w % n`` groups get the extra unit;
graph2nn's ``compute_size`` permutes those sizes with a fixed seed instead), and group ``u``
of a layer's outputs exchanges messages with group ``v`` of its inputs. Here the weight mask
decides: in a layer's graph the edge ``u - v`` exists when any live weight joins input group
``v`` to output group ``u`` or input group ``u`` to output group ``v``, with weight the block
density (the mean of the two directed block densities). The relational graph aggregates the
layers' graphs: ``"union"`` (an edge if any layer has it, weight 1) or ``"mean"`` (same
edges, weight = the mean over layers of the per-layer weight, 0 for layers without it).

Self-loops (a group talking to itself, the diagonal blocks) are recorded in the adjacency's
diagonal, but graph metrics must exclude them: use :meth:`RelationalGraph.simple`.

.. caution::
   In a plain MLP, pairing unit ``i`` of one layer with unit ``i`` of the next (and so group
   ``u`` with group ``u``) is a convention: hidden units are permutation-symmetric, and
   permuting a layer's units changes the relational graph without changing the function.
   Inside a ResNet stage the skip connections tie channel ``i`` of consecutive layers
   together, so there the pairing is meaningful. Read relational graphs of MLP tickets as
   one labelling among many.

References
----------
J. You, J. Leskovec, K. He, S. Xie, "Graph Structure of Neural Networks", ICML 2020
(code: facebookresearch/graph2nn).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from torch import nn

from graphtickets._json import plain, py_scalar
from graphtickets._trace import check_supported
from graphtickets.errors import GraphticketsError
from graphtickets.graphs import _common as C
from graphtickets.graphs.base import Graph
from graphtickets.ticket import Ticket

__all__ = [
    "RelationalGraph",
    "relational_graph",
    "masks_from_relational",
    "group_sizes",
    "group_ids",
    "default_layers",
]

_DEFAULT_GROUPS = 64


def group_sizes(width: int, n: int) -> np.ndarray:
    """Sizes of ``n`` contiguous groups of ``width`` units (the first ``width % n`` get one more).

    >>> group_sizes(10, 4).tolist()
    [3, 3, 2, 2]
    """
    base, extra = divmod(int(width), int(n))
    sizes = np.full(int(n), base, dtype=np.int64)
    sizes[:extra] += 1
    return sizes


def group_ids(width: int, n: int) -> np.ndarray:
    """Group of each of ``width`` units split into ``n`` contiguous groups."""
    return np.repeat(np.arange(int(n)), group_sizes(width, n))


@dataclass(repr=False)
class RelationalGraph(Graph):
    """An undirected relational graph (``kind="relational"``) of ``n`` nodes.

    Besides the attributes of :class:`~graphtickets.graphs.Graph`:

    Attributes
    ----------
    per_layer : dict[str, scipy.sparse.csr_matrix]
        Each layer's symmetric ``(n, n)`` message-exchange graph (weight = block density,
        self-loops on the diagonal), keyed by parameter name.
    """

    per_layer: dict[str, sp.csr_matrix] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.kind = "relational"
        self.directed = False

    @property
    def n_self_loops(self) -> int:
        return int(np.count_nonzero(self.adjacency.diagonal()))

    def simple(self) -> RelationalGraph:
        """The same graph without self-loops and with every edge weight 1 (for metrics)."""
        a = sp.csr_matrix(self.adjacency, copy=True)
        a.setdiag(0)
        a.eliminate_zeros()
        a.data[:] = 1.0
        return RelationalGraph(
            adjacency=a,
            nodes=self.nodes.copy(),
            directed=False,
            kind="relational",
            meta={**self.meta, "simple": True},
            per_layer=self.per_layer,
        )


def default_layers(model: nn.Module) -> list[str]:
    """All prunable weights but the first (stem) and the last (head), as graph2nn keeps those dense."""
    names = C.prunable_names(model)
    if len(names) < 3:
        raise GraphticketsError(
            f"{type(model).__name__} has {len(names)} prunable layers; the default relational "
            f"layers (all but the stem and the head) are empty: pass layers=[...] explicitly"
        )
    return names[1:-1]


def _check_layers(model: nn.Module, layers: list[str] | None) -> list[str]:
    if layers is None:
        return default_layers(model)
    names = set(C.prunable_names(model))
    layers = list(layers)
    bad = [name for name in layers if name not in names]
    if bad or not layers:
        raise GraphticketsError(
            f"relational layers must be prunable weights of the model; {bad or 'none given'} are not "
            f"(prunable: {sorted(names)})"
        )
    return layers


def _default_n(model: nn.Module, layers: list[str]) -> int:
    widths = [C.in_out_width(model, name) for name in layers]
    flat = {w for pair in widths for w in pair}
    if len(flat) == 1:
        return flat.pop()
    return min(_DEFAULT_GROUPS, min(flat))


def _layer_mask(model: nn.Module, ticket: Ticket | None, name: str) -> np.ndarray:
    """``(out, in)`` bool channel/unit mask of one layer."""
    mask = C.mask_of(model, ticket, name)
    if mask.ndim == 2:
        return mask.numpy()
    return C.channel_mask(mask, C.groups_of(C.module_of(model, name)))


def _block_counts(live: np.ndarray, n: int) -> np.ndarray:
    """``B[u, v]`` = live entries between output group ``u`` and input group ``v`` (int64)."""
    out, inn = live.shape
    in_starts = np.concatenate([[0], np.cumsum(group_sizes(inn, n))[:-1]])
    g_out = group_ids(out, n)
    acc = np.zeros((n, n), dtype=np.int64)
    step = max(1, C._CHUNK // max(inn, 1))
    for a in range(0, out, step):
        b = min(out, a + step)
        s = np.add.reduceat(live[a:b], in_starts, axis=1, dtype=np.int64)
        ids = g_out[a:b]
        first = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
        acc[ids[first]] += np.add.reduceat(s, first, axis=0)
    return acc


_ROWS_PER_CHUNK_ENTRIES = 1 << 22  # entries of (rows x n) handled at once by the chunked passes


def _csr(support: np.ndarray, values: Any = None) -> sp.csr_matrix:
    """The CSR matrix with the bool ``support`` as its structure (sorted, int32 indices when
    they fit) and ``values(a, b, f)`` as its data: the values at the flat positions ``f`` of
    rows ``a:b`` (``None``: ones). Rows are handled in chunks written straight into the
    output arrays: on large graphs first-touch page faults of fresh memory cost more than the
    arithmetic, so no temporary as large as the output is made."""
    n_rows, n = support.shape
    counts = np.count_nonzero(support, axis=1)
    nnz = int(counts.sum())
    idx = np.int32 if max(n_rows, n, nnz) < 2**31 - 1 else np.int64
    indptr = np.zeros(n_rows + 1, dtype=idx)
    np.cumsum(counts, out=indptr[1:])
    cols = np.empty(nnz, dtype=idx)
    data = np.ones(nnz) if values is None else np.empty(nnz)
    step = max(1, _ROWS_PER_CHUNK_ENTRIES // max(n, 1))
    for a in range(0, n_rows, step):
        b = min(n_rows, a + step)
        f = np.flatnonzero(support[a:b])
        lo, hi = int(indptr[a]), int(indptr[b])
        np.remainder(f, n, out=cols[lo:hi], casting="unsafe")
        if values is not None:
            data[lo:hi] = values(a, b, f)
    return sp.csr_matrix((data, cols, indptr), shape=support.shape)


def _transposed(a: np.ndarray) -> np.ndarray:
    """A C-contiguous copy of the bool matrix ``a.T`` (torch's blocked copy, ~2x numpy's)."""
    return torch.from_numpy(a.view(np.uint8)).t().contiguous().numpy().view(bool)


def _layer_graph(live: np.ndarray, n: int) -> tuple[sp.csr_matrix, np.ndarray]:
    """One layer's symmetric ``(n, n)`` graph (the mean of the two directed block densities)
    and its bool support.

    Only the nonzero entries are ever computed: the support ``S = (B > 0) | (B > 0)^T`` of
    the block counts ``B`` is found on bools, and the densities are gathered at its
    positions (no dense float ``(n, n)`` arrays, which for an MLP whose width is ``n``, one
    unit per group, are as large as the layer). With one unit per group (``n`` equal to both
    widths) the block counts are the mask itself and no reduction runs.
    """
    out, inn = live.shape
    if out == n and inn == n:
        nz = np.ascontiguousarray(live, dtype=bool)
        nz_t = _transposed(nz)
        sup = nz | nz_t

        def values(a: int, b: int, f: np.ndarray) -> np.ndarray:
            v = nz[a:b].reshape(-1)[f].astype(np.float64)
            v += nz_t[a:b].reshape(-1)[f]
            v *= 0.5
            return v

        return _csr(sup, values), sup
    counts = _block_counts(live, n)
    d = counts / np.outer(group_sizes(out, n), group_sizes(inn, n))
    d_t = np.ascontiguousarray(d.T)
    sup = (counts > 0) | (counts.T > 0)

    def dvalues(a: int, b: int, f: np.ndarray) -> np.ndarray:
        return (d[a:b].reshape(-1)[f] + d_t[a:b].reshape(-1)[f]) * 0.5

    return _csr(sup, dvalues), sup


def relational_graph(
    model: nn.Module,
    ticket: Ticket | None = None,
    *,
    n_nodes: int | None = None,
    layers: list[str] | None = None,
    aggregate: str = "union",
) -> RelationalGraph:
    """The relational graph of ``ticket`` on ``model`` (You et al. 2020).

    Parameters
    ----------
    model : nn.Module
    ticket : Ticket, optional
        ``None`` is the dense network (a complete graph with self-loops).
    n_nodes : int, optional
        Number of relational nodes ``n``. Default: the hidden width when every chosen layer
        has the same input and output width, else ``min(64, narrowest width)`` (64 is
        graph2nn's default).
    layers : list of str, optional
        Parameter names of the layers to use. Default: every prunable weight but the first
        (stem) and the last (head), which graph2nn keeps dense.
    aggregate : {"union", "mean"}
        ``"union"``: edge if any layer has it, weight 1. ``"mean"``: the same edges, weight =
        mean over layers of the per-layer block density.

    Returns
    -------
    RelationalGraph
        Undirected, ``n`` nodes; self-loops on the diagonal (``.simple()`` drops them);
        ``per_layer`` holds each layer's graph; ``meta`` records ``n_nodes``, ``layers``,
        ``aggregate``.

    Notes
    -----
    A layer whose input and output widths differ splits its inputs and its outputs into ``n``
    groups each. A conv layer is read at the channel level: a channel pair is live when any of
    its kernel entries is. In a plain MLP the pairing of unit ``i`` across layers is a
    convention (hidden units are permutation-symmetric); inside a ResNet stage the skip
    connections make it meaningful.

    Examples
    --------
    >>> from torch import nn
    >>> m = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))
    >>> g = relational_graph(m, n_nodes=4)
    >>> g.n_nodes, g.simple().n_edges, g.n_self_loops
    (4, 6, 4)

    References
    ----------
    J. You, J. Leskovec, K. He, S. Xie, "Graph Structure of Neural Networks", ICML 2020.
    """
    if aggregate not in ("union", "mean"):
        raise GraphticketsError(f"aggregate must be 'union' or 'mean', got {aggregate!r}")
    if n_nodes is not None and (isinstance(n_nodes, bool) or not isinstance(n_nodes, (int, np.integer))):
        raise GraphticketsError(f"n_nodes must be an integer, got {type(n_nodes).__name__} {n_nodes!r}")
    check_supported(model)  # refuses what layered_graph refuses (LSTM, attention, control flow, ...)
    C.check_ticket(model, ticket)
    layers = _check_layers(model, layers)
    n = _default_n(model, layers) if n_nodes is None else int(n_nodes)
    narrowest = min(min(C.in_out_width(model, name)) for name in layers)
    if n < 1 or n > narrowest:
        raise GraphticketsError(
            f"n_nodes={n} must be between 1 and the narrowest layer width ({narrowest}); every group "
            f"needs at least one unit"
        )
    per_layer: dict[str, sp.csr_matrix] = {}
    support = np.zeros((n, n), dtype=bool)
    total: sp.csr_matrix | None = None
    for name in layers:
        sym, sup = _layer_graph(_layer_mask(model, ticket, name), n)
        per_layer[name] = sym
        support |= sup
        if aggregate == "mean":
            total = sym if total is None else total + sym
    if aggregate == "mean":
        assert total is not None
        adjacency = sp.csr_matrix(total / len(layers))
        adjacency.sort_indices()
    else:
        adjacency = _csr(support)
    nodes = pd.DataFrame({"layer": ["relational"] * n, "unit": np.arange(n, dtype=np.int64)})
    return RelationalGraph(
        adjacency=adjacency,
        nodes=nodes,
        directed=False,
        kind="relational",
        meta={"n_nodes": n, "layers": layers, "aggregate": aggregate, "model": type(model).__name__},
        per_layer=per_layer,
    )


def masks_from_relational(
    graph: Graph,
    model: nn.Module,
    *,
    layers: list[str] | None = None,
    self_loops: str = "always",
) -> Ticket:
    """Turn a relational graph into a ticket: You et al.'s network built from a graph.

    For each chosen layer, a unit of output group ``u`` is connected to a unit of input group
    ``v`` iff the graph has the edge ``u - v`` or (``self_loops="always"``) ``u == v``: every
    node exchanges messages with itself (You et al. define the neighbourhood of a node to
    include the node; graph2nn keeps the diagonal blocks dense). Conv layers get every kernel
    entry of a live channel pair. Prunable weights outside ``layers`` (by default the stem and
    the head) stay dense.

    A grouped convolution only has weights inside its groups: a pair of relational groups
    whose units all lie in different conv groups cannot talk through it, and such an edge
    raises (rather than vanishing from the ticket); the pairs inside the conv groups of an
    edge that straddles them are kept.

    Parameters
    ----------
    graph : Graph
        Undirected graph of ``n`` nodes (e.g. :func:`ws_flex` or a :class:`RelationalGraph`);
        edge weights are ignored (any stored edge counts).
    model : nn.Module
    layers : list of str, optional
        Default: all prunable weights but the stem and the head.
    self_loops : {"always", "graph"}
        ``"always"`` (graph2nn): every group talks to itself. ``"graph"``: only where the graph
        has the self-loop (a :class:`RelationalGraph` of a ticket records them on its
        diagonal), so ``relational_graph(model, masks_from_relational(g, model,
        self_loops="graph"))`` gives back ``g``'s edges, self-loops included.

    Returns
    -------
    Ticket
        ``method="relational"``; ``config`` records the model spec (``model``, the model's
        ``gt_spec``, so ``ticket.build_model()`` rebuilds it from the ticket file alone),
        ``n_nodes``, ``layers``, ``self_loops`` and the graph's own parameters
        (``graph_meta``, e.g. ws_flex's ``n, k, p, seed``).

    Raises
    ------
    GraphticketsError
        For a directed graph, a graph with more nodes than the narrowest chosen layer has
        units, or an edge that a grouped convolution cannot carry.

    Examples
    --------
    >>> from torch import nn
    >>> from graphtickets.graphs.generators import ws_flex
    >>> m = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))
    >>> t = masks_from_relational(ws_flex(4, 2, 0.0, seed=0), m)
    >>> t.masks["2.weight"].sum().item()  # a ring of 4: each group meets itself and 2 others
    48
    """
    if graph.directed:
        raise GraphticketsError("masks_from_relational needs an undirected graph (a relational graph)")
    if self_loops not in ("always", "graph"):
        raise GraphticketsError(f"self_loops must be 'always' or 'graph', got {self_loops!r}")
    layers = _check_layers(model, layers)
    n = graph.n_nodes
    narrowest = min(min(C.in_out_width(model, name)) for name in layers)
    if n > narrowest:
        raise GraphticketsError(
            f"the graph has {n} nodes but the narrowest chosen layer has {narrowest} units; "
            f"use a graph with at most {narrowest} nodes or other layers"
        )
    a = graph.adjacency.tocoo()
    talk = np.eye(n, dtype=bool) if self_loops == "always" else np.zeros((n, n), dtype=bool)
    talk[a.row, a.col] = True
    talk |= talk.T
    masks: dict[str, torch.Tensor] = {}
    for name in C.prunable_names(model):
        shape = tuple(C.param_tensor(model, name).shape)
        if name not in layers:
            masks[name] = torch.ones(shape, dtype=torch.bool)
            continue
        inn, out = C.in_out_width(model, name)
        ch = talk[np.ix_(group_ids(out, n), group_ids(inn, n))]  # (out, in)
        if len(shape) > 2:
            groups = C.groups_of(C.module_of(model, name))
            if groups > 1:
                _check_conv_groups(name, talk, out, inn, groups, n)
                cin_g = shape[1]
                g_of_out = np.arange(out) // (out // groups)
                ch = np.take_along_axis(ch, g_of_out[:, None] * cin_g + np.arange(cin_g)[None, :], axis=1)
            ch = np.broadcast_to(ch.reshape(ch.shape + (1,) * (len(shape) - 2)), shape)
        masks[name] = torch.from_numpy(np.array(ch, dtype=bool, order="C"))  # a writable copy
    return Ticket(
        masks=masks,
        method="relational",
        config={
            "model": getattr(model, "gt_spec", None),
            "n_nodes": n,
            "layers": layers,
            "self_loops": self_loops,
            "graph_meta": _jsonable_meta(graph.meta),
        },
    )


def _check_conv_groups(name: str, talk: np.ndarray, out: int, inn: int, groups: int, n: int) -> None:
    """Raise when an edge of ``talk`` joins relational groups that no weight of a grouped conv can."""
    same = (np.arange(out)[:, None] // (out // groups)) == (np.arange(inn)[None, :] // (inn // groups))
    reach = _block_counts(same, n) > 0  # (out group, in group) pairs some weight can join
    lost = talk & ~(reach | reach.T)
    if lost.any():
        u, v = (int(x) for x in np.argwhere(lost)[0])
        raise GraphticketsError(
            f"layer {name!r} is a grouped convolution (groups={groups}): the relational edge {u}-{v} joins "
            f"units in different conv groups, which no weight connects ({int(np.triu(lost).sum())} such "
            f"edges); use a graph without them, n_nodes aligned with the conv groups, or leave "
            f"the layer out of layers=[...]"
        )


def _jsonable_meta(meta: dict[str, Any]) -> dict[str, Any]:
    """The plain-typed entries of a graph's meta (numpy scalars as Python ones; others left out)."""
    kept = (str, int, float, bool, type(None), list, tuple, dict)
    return {k: plain(v, leaf=py_scalar) for k, v in meta.items() if isinstance(py_scalar(v), kept)}
