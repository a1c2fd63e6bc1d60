"""Graph edit distance between tickets: exact with nodes aligned by identity, and bounds when
units may be permuted within layers.

Kinds ``ged``, ``ged_normalized`` (identity-aligned, from masks or graphs) and ``ged_approx``
(permutation-invariant upper bound), and :func:`ged_bounds` (upper and lower bounds with the
node mapping). :func:`assign` (one linear assignment) and :func:`permuted` are shared with
:mod:`~graphtickets.analysis.distances.alignment`.

References
----------
.. [1] K. Riesen, H. Bunke, "Approximate graph edit distance computation by means of bipartite
   graph matching", Image and Vision Computing 27, 2009.
.. [2] A. Fischer, C. Y. Suen, V. Frinken, K. Riesen, H. Bunke, "Approximation of graph edit
   distance based on Hausdorff matching", Pattern Recognition 48, 2015.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from scipy.optimize import linear_sum_assignment
from torch import nn

from graphtickets.analysis._util import simple_directed, simple_undirected
from graphtickets.analysis.distances.overlap import binary, pair_masks, paired_adjacency
from graphtickets.analysis.distances.registry import Context, register_distance
from graphtickets.errors import GraphticketsError
from graphtickets.graphs.base import Graph
from graphtickets.ticket import Ticket

__all__ = ["ged_bounds", "assign", "permuted"]


def _ged_masks(a: Ticket, b: Ticket, weighted: bool) -> tuple[float, float]:
    """(ged, |A|_1 + |B|_1) of the layered graphs, from masks: Linear = xor, conv = channel counts."""
    ged, norm = 0.0, 0.0
    for _, ma, mb in pair_masks(a, b):
        if ma.dim() <= 2:
            ged += float((ma ^ mb).count_nonzero())
            norm += float(ma.count_nonzero() + mb.count_nonzero())
            continue
        dims = tuple(range(2, ma.dim()))
        ca = ma.sum(dim=dims, dtype=torch.int32)
        cb = mb.sum(dim=dims, dtype=torch.int32)
        if weighted:
            ged += float((ca - cb).abs().sum())
            norm += float(ca.sum() + cb.sum())
        else:
            ged += float(((ca > 0) ^ (cb > 0)).count_nonzero())
            norm += float((ca > 0).count_nonzero() + (cb > 0).count_nonzero())
    return ged, norm


def _ged_graphs(a: Graph, b: Graph, weighted: bool) -> tuple[float, float]:
    x, y = paired_adjacency(a, b)
    if not weighted:
        x, y = binary(x), binary(y)
    return float(abs(x - y).sum()), float(abs(x).sum() + abs(y).sum())


@register_distance("ged", kernel_blind=True, question="mask overlap")
def _ged(a: Any, b: Any, ctx: Context) -> float:
    """Exact graph edit distance with nodes aligned by identity (same units in both tickets).

    Cost model: inserting or deleting an edge of weight ``w`` costs ``|w|`` and changing a
    weight costs ``|w_a - w_b|`` -- on unweighted graphs simply ``|E_a symmetric-difference
    E_b|``; with aligned nodes no edit path is cheaper, so this is the exact GED. Tickets are
    compared on their layered graphs with ``weights="count"`` computed straight from the masks:
    a Linear layer contributes its xor count, a conv layer ``sum |c_a - c_b|`` over channel
    pairs of live-kernel-entry counts (structural edges are equal in both). ``weighted=False``
    counts channel-pair edges once. On conv layers this is therefore blind to positions inside
    a kernel (moving a live entry within its kernel costs nothing); ``hamming`` counts those.
    """
    weighted = bool(ctx.options.get("weighted", True))
    return (_ged_masks(a, b, weighted) if isinstance(a, Ticket) else _ged_graphs(a, b, weighted))[0]


@register_distance("ged_normalized", kernel_blind=True, question="mask overlap")
def _ged_normalized(a: Any, b: Any, ctx: Context) -> float:
    """:func:`ged` over its maximum ``|A|_1 + |B|_1`` (delete everything, insert everything)."""
    weighted = bool(ctx.options.get("weighted", True))
    ged, norm = _ged_masks(a, b, weighted) if isinstance(a, Ticket) else _ged_graphs(a, b, weighted)
    return ged / norm if norm else 0.0


def _groups(g: Graph, fixed_roles: tuple[str, ...]) -> tuple[list[np.ndarray], np.ndarray]:
    """Node groups (one per layer, in node order) and the bool vector of fixed nodes."""
    nodes = g.nodes
    col = "block" if "block" in nodes else "layer"
    labels = nodes[col].astype(str).to_numpy()
    fixed = np.zeros(g.n_nodes, dtype=bool)
    if "role" in nodes and fixed_roles:
        fixed = nodes["role"].astype(str).isin(fixed_roles).to_numpy()
    _, first, inv = np.unique(labels, return_index=True, return_inverse=True)
    order = np.argsort(first)
    groups = [np.flatnonzero(inv == k) for k in order]
    return groups, fixed


def _check_groups(a: Graph, b: Graph, fixed_roles: tuple[str, ...]) -> tuple[list[np.ndarray], np.ndarray]:
    if a.n_nodes != b.n_nodes or a.directed != b.directed:
        raise GraphticketsError("ged_approx compares graphs of the same architecture (same nodes per layer)")
    ga, fa = _groups(a, fixed_roles)
    gb, fb = _groups(b, fixed_roles)
    if len(ga) != len(gb) or any(not np.array_equal(x, y) for x, y in zip(ga, gb, strict=True)) or not np.array_equal(fa, fb):
        raise GraphticketsError("the graphs' node tables differ (other layers or layer sizes): not one architecture")
    return ga, fa


def _degrees(x: sp.csr_matrix, directed: bool) -> tuple[np.ndarray, np.ndarray]:
    out = np.diff(x.indptr).astype(np.float64)
    inn = np.diff(x.tocsc().indptr).astype(np.float64) if directed else np.zeros_like(out)
    return out, inn


def assign(cost: np.ndarray) -> np.ndarray:
    """Column matched to each row minimizing the total cost (rows and columns equal)."""
    r, c = linear_sum_assignment(cost)
    out = np.empty(cost.shape[0], dtype=np.int64)
    out[r] = c
    return out


def _greedy_mapping(x: sp.csr_matrix, y: sp.csr_matrix, groups: list[np.ndarray], fixed: np.ndarray, directed: bool) -> np.ndarray:
    """``p`` with ``p[i]`` = node of ``y`` matched to node ``i`` of ``x`` (layer by layer)."""
    n = x.shape[0]
    p = np.arange(n, dtype=np.int64)
    mapped = np.zeros(n, dtype=bool)
    xc, yc = x.tocsc(), y.tocsc()
    xo, xi = _degrees(x, directed)
    yo, yi = _degrees(y, directed)
    for grp in groups:
        free = grp[~fixed[grp]]
        if free.size > 1:
            m_idx = np.flatnonzero(mapped)
            cost = np.zeros((free.size, free.size))
            if m_idx.size:
                ym = p[m_idx]
                # out-edges (rows) into mapped nodes, aligned through p
                xa = x[free][:, m_idx]
                yb = y[free][:, ym]
                cost += _mismatch(xa, yb)
                xo_rest = xo[free] - np.diff(xa.indptr)
                yo_rest = yo[free] - np.diff(yb.indptr)
                if directed:
                    xa2 = sp.csr_matrix(xc[:, free][m_idx].T)
                    yb2 = sp.csr_matrix(yc[:, free][ym].T)
                    cost += _mismatch(xa2, yb2)
                    xi_rest = xi[free] - np.diff(xa2.indptr)
                    yi_rest = yi[free] - np.diff(yb2.indptr)
                else:
                    xi_rest, yi_rest = xi[free], yi[free]
            else:
                xo_rest, yo_rest, xi_rest, yi_rest = xo[free], yo[free], xi[free], yi[free]
            cost += np.abs(xo_rest[:, None] - yo_rest[None, :]) + np.abs(xi_rest[:, None] - yi_rest[None, :])
            p[free] = free[assign(cost)]
        mapped[grp] = True
    return p


def _mismatch(xa: sp.csr_matrix, yb: sp.csr_matrix) -> np.ndarray:
    """``|row_i(xa) xor row_j(yb)|`` for all pairs (dense)."""
    ov = (xa @ yb.T).toarray()
    return np.diff(xa.indptr)[:, None] + np.diff(yb.indptr)[None, :] - 2.0 * ov


def permuted(y: sp.csr_matrix, p: np.ndarray) -> sp.csr_matrix:
    """``y`` with rows and columns reordered by ``p`` (node ``i`` becomes ``y``'s node ``p[i]``)."""
    return sp.csr_matrix(y[p][:, p])


def _edit_cost(x: sp.csr_matrix, y: sp.csr_matrix, p: np.ndarray, directed: bool) -> float:
    d = abs(x - permuted(y, p))
    return float(d.sum()) if directed else float(d.sum()) / 2.0


def ged_bounds(
    a: Ticket | Graph,
    b: Ticket | Graph,
    *,
    model: nn.Module | None = None,
    fixed_roles: tuple[str, ...] = ("input", "output"),
) -> dict[str, Any]:
    """Upper and lower bounds of the graph edit distance when units may be permuted within layers.

    Neurons of a hidden layer are interchangeable, so two tickets that differ by a permutation
    of units are the same network. This computes the edit distance (edge insertions and
    deletions, cost 1; weights ignored) minimized over bijections that map every node to a
    node of the same layer (node column ``block``, else ``layer``), with the nodes whose
    ``role`` is in ``fixed_roles`` (inputs and outputs: their order has meaning) kept in place.

    Upper bound (Riesen & Bunke's bipartite GED, propagated layer by layer): layers are
    matched in node (topological) order by :func:`scipy.optimize.linear_sum_assignment` on the
    cost ``|N(i) xor p(N(j))|`` over neighbours already matched plus the difference of the
    degrees towards nodes not yet matched; the bound is the exact edit cost of the resulting
    bijection (never above the identity's, which is also tried).
    Lower bound: every edit path with a layer-preserving bijection ``p`` costs at least
    ``1/2 sum_i |d_out(i) - d_out(p(i))| + |d_in(i) - d_in(p(i))|`` (each changed edge is seen
    from both ends); its minimum is a linear assignment per layer (a Hausdorff-style bound,
    Fischer et al. 2015, made one-to-one).

    Parameters
    ----------
    a, b : Ticket or Graph
        Tickets are turned into unweighted layered graphs with ``model``.
    model : nn.Module, optional
    fixed_roles : tuple of str

    Returns
    -------
    dict
        ``upper``, ``lower`` (floats), ``mapping`` (``p[i]`` = node of ``b`` matched to node
        ``i`` of ``a``), ``identity`` (the identity-aligned edit distance).

    References
    ----------
    K. Riesen, H. Bunke, Image and Vision Computing 27, 2009; A. Fischer et al., Pattern
    Recognition 48, 2015.
    """
    ctx = Context(model=model)
    ga, gb = ctx.graph(a, "layered"), ctx.graph(b, "layered")
    groups, fixed = _check_groups(ga, gb, tuple(fixed_roles))
    directed = ga.directed
    x = simple_directed(ga) if directed else simple_undirected(ga)
    y = simple_directed(gb) if directed else simple_undirected(gb)
    p = _greedy_mapping(x, y, groups, fixed, directed)
    ident = np.arange(x.shape[0])
    up, idc = _edit_cost(x, y, p, directed), _edit_cost(x, y, ident, directed)
    if idc < up:
        up, p = idc, ident
    xo, xi = _degrees(x, directed)
    yo, yi = _degrees(y, directed)
    lower = 0.0
    for grp in groups:
        f = fixed[grp]
        lower += float(np.sum(np.abs(xo[grp][f] - yo[grp][f]) + np.abs(xi[grp][f] - yi[grp][f])))
        free = grp[~f]
        if free.size:
            cost = np.abs(xo[free][:, None] - yo[free][None, :]) + np.abs(xi[free][:, None] - yi[free][None, :])
            lower += float(cost[np.arange(free.size), assign(cost)].sum())
    return {"upper": up, "lower": lower / 2.0, "mapping": p, "identity": idc}


@register_distance("ged_approx", needs_model=True, default=False, kernel_blind=True, question="aligned overlap")
def _ged_approx(a: Any, b: Any, ctx: Context) -> float:
    """Permutation-invariant GED upper bound (:func:`ged_bounds`), symmetrized (min of both ways)."""
    ga, gb = (ctx.graph(a, "layered"), ctx.graph(b, "layered")) if isinstance(a, Ticket) else (a, b)
    roles = tuple(ctx.options.get("fixed_roles", ("input", "output")))
    return min(ged_bounds(ga, gb, fixed_roles=roles)["upper"], ged_bounds(gb, ga, fixed_roles=roles)["upper"])
