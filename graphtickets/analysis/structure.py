"""Structure of a layered ticket graph: densities, effective density, dead units, paths, degrees.

Everything here is vectorized over scipy.sparse (no loop over edges or weights). The
functions take a :class:`~graphtickets.graphs.Graph` (or anything
:func:`~graphtickets.analysis.as_graph` reads), except the two ticket-level ones:
:func:`effective_density` builds the layered graph of a ticket on a model with
:func:`graphtickets.graphs.layered_graph`, and :func:`kept_total` counts a ticket's weights
on a model.

References
----------
.. [1] A. Vysogorets, J. Kempe, "Connectivity Matters: Neural Network Pruning Through the Lens
   of Effective Sparsity", JMLR 24, 2023.
.. [2] H. Tanaka, D. Kunin, D. Yamins, S. Ganguli, "Pruning neural networks without any data
   by iteratively conserving synaptic flow", NeurIPS 2020 (layer collapse, path counts).
.. [3] P. G. Lind, M. C. Gonzalez, H. J. Herrmann, "Cycles and clustering in bipartite
   networks", Phys. Rev. E 72, 2005 (square clustering).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import scipy.sparse.csgraph as csg
from torch import nn

from graphtickets.analysis._util import as_graph, gini, simple_directed, simple_undirected
from graphtickets.errors import GraphticketsError
from graphtickets.graphs.base import Graph
from graphtickets.ticket import Ticket

__all__ = [
    "edge_density",
    "layer_densities",
    "weight_counts",
    "weight_densities",
    "effective_mask",
    "effective_fraction",
    "effective_density",
    "dead_units",
    "collapsed_layers",
    "degree_stats",
    "layer_degree_stats",
    "log10_paths",
    "square_clustering",
    "average_square_clustering",
]

_PARAM_KINDS = ("linear", "conv")


def edge_density(graph: Any) -> float:
    """Graph-theoretic density: edges over possible edges (``n(n-1)`` directed, ``n(n-1)/2``
    undirected; loops excluded).

    On a layered graph this is *not* the ticket's density (most node pairs are not in
    consecutive layers); that is :func:`weight_densities`' ``weight_density``.

    Parameters
    ----------
    graph : Graph or networkx graph

    Returns
    -------
    float
        NaN for fewer than two nodes.

    Examples
    --------
    >>> import networkx as nx
    >>> edge_density(nx.complete_graph(4))
    1.0
    """
    g = as_graph(graph)
    n = g.n_nodes
    if n < 2:
        return float("nan")
    a = simple_directed(g)
    m = a.nnz if g.directed else a.nnz / 2
    return float(m / (n * (n - 1) / (1 if g.directed else 2)))


def _param_rows(g: Graph) -> pd.DataFrame:
    ep = getattr(g, "edge_params", None)
    if ep is None or len(ep) == 0:
        raise GraphticketsError(
            "this metric needs a layered graph with its edge table (gt.graphs.layered_graph); "
            f"got a {g.kind!r} graph"
        )
    return ep[ep["kind"].isin(_PARAM_KINDS)]


def _roles(g: Graph) -> tuple[np.ndarray, np.ndarray]:
    """Boolean input and output node vectors (role column, else in-/out-degree 0)."""
    if "role" in g.nodes:
        role = g.nodes["role"].astype(str).to_numpy()
        return role == "input", role == "output"
    a = simple_directed(g)
    indeg = np.diff(a.tocsc().indptr)
    outdeg = np.diff(a.indptr)
    return indeg == 0, outdeg == 0


def _reach(a: sp.csr_matrix, start: np.ndarray) -> np.ndarray:
    """Nodes reachable (directed) from any node in ``start`` (bool), by BFS from a super-source."""
    n = a.shape[0]
    if not start.any():
        return np.zeros(n, dtype=bool)
    link = sp.csr_matrix((np.ones(int(start.sum())), (np.zeros(int(start.sum()), dtype=np.int64), np.flatnonzero(start))), shape=(1, n + 1))
    big = sp.bmat([[sp.csr_matrix((1, 1)), link[:, :n]], [sp.csr_matrix((n, 1)), a]], format="csr")
    order = csg.breadth_first_order(big, 0, directed=True, return_predecessors=False)
    out = np.zeros(n + 1, dtype=bool)
    out[order] = True
    return out[1:]


def effective_mask(graph: Any) -> tuple[np.ndarray, sp.csr_matrix]:
    """Which nodes and edges lie on some input -> output path of a directed graph.

    Parameters
    ----------
    graph : Graph
        Directed; inputs/outputs from the ``role`` column (else: in-/out-degree 0 nodes).

    Returns
    -------
    (numpy.ndarray, scipy.sparse.csr_matrix)
        Boolean vector of the nodes on such a path, and the adjacency restricted to the edges
        ``u -> v`` with ``u`` reachable from an input and ``v`` reaching an output.

    References
    ----------
    Vysogorets & Kempe (2023), "Connectivity Matters", JMLR.
    """
    g = as_graph(graph)
    if not g.directed:
        raise GraphticketsError("effective paths need a directed (layered) graph")
    a = sp.csr_matrix(g.adjacency)
    inputs, outputs = _roles(g)
    fwd = _reach(a, inputs)
    bwd = _reach(sp.csr_matrix(a.T), outputs)
    coo = a.tocoo()
    keep = fwd[coo.row] & bwd[coo.col]
    eff = sp.csr_matrix((coo.data[keep], (coo.row[keep], coo.col[keep])), shape=a.shape)
    return fwd & bwd, eff


def _param_dst(g: Graph) -> np.ndarray:
    """Bool vector of the nodes produced by Linear/Conv ops (their in-edges are weights)."""
    dst = np.zeros(g.n_nodes, dtype=bool)
    for r in _param_rows(g).itertuples():
        dst[int(r.dst_start) : int(r.dst_stop)] = True
    return dst


def effective_fraction(graph: Any) -> float:
    """Fraction of live weights that lie on some input -> output path.

    On a layered graph built with ``weights="count"`` edge weights count live weights (a conv
    channel edge weighs its number of live kernel entries); structural edges (residual
    identity, flatten) are not weights and are left out. On another directed graph every edge
    counts 1.

    Returns
    -------
    float
        ``effective live weights / live weights``; multiply by the density to get
        Vysogorets & Kempe's effective density (:func:`effective_density`).

    References
    ----------
    Vysogorets & Kempe (2023), "Connectivity Matters", JMLR.
    """
    g = as_graph(graph)
    _, eff = effective_mask(g)
    a = sp.csr_matrix(g.adjacency)
    if getattr(g, "edge_params", None) is not None and len(getattr(g, "edge_params", [])):
        dst = _param_dst(g)
        weighted = g.meta.get("weights") == "count"
        col = a.tocoo()
        ecol = eff.tocoo()
        wa = col.data if weighted else np.ones_like(col.data)
        we = ecol.data if weighted else np.ones_like(ecol.data)
        total = float(wa[dst[col.col]].sum())
        live = float(we[dst[ecol.col]].sum())
    else:
        total, live = float(a.nnz), float(eff.nnz)
    return live / total if total else float("nan")


def effective_density(ticket: Ticket, model: nn.Module, *, input_shape: tuple[int, ...] | None = None) -> float:
    """Effective density of a ticket: weights on some input -> output path over all weights.

    A live weight none of whose input -> output paths survives cannot affect the output;
    Vysogorets & Kempe call the fraction of weights that remain *effective* the effective
    density (always <= the density). Conv weights are judged at channel level (a kernel entry
    is effective when its channel pair lies on a live path): exact for Linear layers and for
    convs whose every kernel entry reaches a pixel of every live feature map (no padding, no
    pooling), an upper bound otherwise -- with padding and sparse downstream layers a kernel
    entry can read only padding at the few positions that still reach the output (about one
    weight in 10^4 on ``conv2`` at density 0.005).

    Parameters
    ----------
    ticket : Ticket
    model : nn.Module
        The architecture the ticket belongs to.
    input_shape : tuple of int, optional
        One sample's shape, for models without ``gt_spec`` (see ``layered_graph``).

    Returns
    -------
    float

    References
    ----------
    Vysogorets & Kempe (2023), "Connectivity Matters: Neural Network Pruning Through the Lens
    of Effective Sparsity", JMLR 24.
    """
    from graphtickets.graphs import layered_graph

    g = layered_graph(model, ticket, weights="count", input_shape=input_shape)
    kept, total = kept_total(ticket, model)
    return float(effective_fraction(g) * kept / total)


def kept_total(ticket: Ticket, model: nn.Module) -> tuple[int, int]:
    """Live and all prunable weights of ``model`` under ``ticket`` (unmasked ones count as live)."""
    from graphtickets.ticket import prunable

    params = prunable(model)
    kept = sum(int(ticket.masks[n].count_nonzero()) if n in ticket.masks else p.numel() for n, p in params.items())
    return kept, sum(p.numel() for p in params.values())


def dead_units(graph: Any) -> dict[str, float]:
    """Hidden units with no input or no output, and units on no input -> output path.

    Parameters
    ----------
    graph : Graph
        Directed layered graph (hidden = ``role`` not ``input``/``output``).

    Returns
    -------
    dict
        ``dead`` (count of hidden nodes with in- or out-degree 0), ``dead_fraction``,
        ``inactive`` (hidden nodes on no input -> output path, a superset) and
        ``inactive_fraction``.

    References
    ----------
    Vysogorets & Kempe (2023); Tanaka et al. (2020).
    """
    g = as_graph(graph)
    inputs, outputs = _roles(g)
    hidden = ~(inputs | outputs)
    a = sp.csr_matrix(g.adjacency)
    indeg = np.diff(a.tocsc().indptr)
    outdeg = np.diff(a.indptr)
    dead = hidden & ((indeg == 0) | (outdeg == 0))
    on_path, _ = effective_mask(g)
    inactive = hidden & ~on_path
    h = max(int(hidden.sum()), 1)
    return {
        "dead": float(dead.sum()),
        "dead_fraction": float(dead.sum() / h),
        "inactive": float(inactive.sum()),
        "inactive_fraction": float(inactive.sum() / h),
    }


def collapsed_layers(graph: Any) -> list[str]:
    """Weight layers of a layered graph with no edge on an input -> output path (layer collapse).

    The graph's reading of :func:`graphtickets.pruning.collapsed_layers` (which takes a model
    and a ticket and is exact at the level of single weights and pixels): here a layer is
    collapsed when none of its edges is effective (:func:`effective_mask`), at channel level
    for convs (a channel pair is an edge when any kernel entry lives). On the networks of
    ``gt.models`` the two agree (a test checks it).

    Returns
    -------
    list of str
        Parameter names (rows of ``graph.edge_params`` of kind linear/conv) whose every live
        weight is ineffective -- including layers pruned entirely. A collapsed layer
        disconnects the network (Tanaka et al. 2020).

    References
    ----------
    Tanaka et al., "Pruning neural networks without any data by iteratively conserving
    synaptic flow", NeurIPS 2020.
    """
    return [str(r.param) for r, _, eff in _layer_blocks(as_graph(graph)) if eff.nnz == 0]


def _layer_blocks(g: Graph) -> list[tuple[Any, sp.csc_matrix, sp.csc_matrix]]:
    """Each weight layer's row of ``edge_params`` with its block of the adjacency and of the
    effective adjacency (:func:`effective_mask`), sources x destinations."""
    a = sp.csc_matrix(g.adjacency)
    _, eff = effective_mask(g)
    e = sp.csc_matrix(eff)
    out = []
    for r in _param_rows(g).itertuples():
        s0, s1, d0, d1 = int(r.src_start), int(r.src_stop), int(r.dst_start), int(r.dst_stop)
        out.append((r, a[s0:s1, d0:d1], e[s0:s1, d0:d1]))
    return out


def layer_densities(graph: Any) -> dict[str, float]:
    """Edge density of each weight layer of a layered graph (channel-level for convs).

    Parameters
    ----------
    graph : Graph
        A layered graph.

    Returns
    -------
    dict[str, float]
        ``edges / (inputs x outputs)`` per parameter (a conv channel pair counts once; the
        weight-level density per layer is :func:`weight_densities`).

    References
    ----------
    You et al. (2020) and Hoang et al. (2023) read a conv layer at channel level.
    """
    g = as_graph(graph)
    out = {}
    for r in _param_rows(g).itertuples():
        size = (int(r.src_stop) - int(r.src_start)) * (int(r.dst_stop) - int(r.dst_start))
        out[str(r.param)] = float(r.n_edges) / size if size else float("nan")
    return out


def weight_counts(graph: Any) -> pd.DataFrame:
    """Live, effective and total weights of each weight layer of a layered graph.

    The graph records the live weights (a Linear edge is one weight; with ``weights="count"``
    a conv channel edge weighs its number of live kernel entries) but not every layer's size:
    a Linear layer has ``inputs x outputs`` weights, a conv layer that times its kernel size,
    which is read from an ``edge_params["numel"]`` column or ``graph.meta["param_numel"]``
    (``{param: numel}``, set by :func:`~graphtickets.analysis.ticket_metrics`) when there is
    one. What cannot be known is NaN: a conv layer's size without that record, and its live
    count on a graph not built with ``weights="count"``.

    Parameters
    ----------
    graph : Graph
        A layered graph (``gt.graphs.layered_graph``).

    Returns
    -------
    pandas.DataFrame
        One row per weight layer: ``param``, ``kind`` (``linear``/``conv``), ``live``,
        ``effective`` (live weights on some input -> output path, judged at channel level for
        convs, see :func:`effective_fraction`) and ``numel`` (all weights, pruned or not).

    Examples
    --------
    >>> import graphtickets as gt
    >>> m = gt.models.build("mlp", in_shape=(4,), num_classes=2, widths=(3,), seed=0)
    >>> weight_counts(gt.graphs.layered_graph(m))[["param", "live", "numel"]].values.tolist()
    [['fc1.weight', 12.0, 12.0], ['classifier.weight', 6.0, 6.0]]

    References
    ----------
    Vysogorets & Kempe (2023), "Connectivity Matters", JMLR 24 (density and effective density
    count weights over all prunable weights).
    """
    g = as_graph(graph)
    has_numel = "numel" in _param_rows(g).columns
    counted = g.meta.get("weights") == "count"
    recorded = dict(g.meta.get("param_numel") or {})
    out = []
    for r, blk, eblk in _layer_blocks(g):
        conv = str(r.kind) == "conv"
        if counted:
            live, effective = float(np.abs(blk.data).sum()), float(np.abs(eblk.data).sum())
        elif not conv:
            live, effective = float(blk.count_nonzero()), float(eblk.count_nonzero())
        else:
            live = effective = float("nan")
        numel = float("nan")
        if has_numel and pd.notna(getattr(r, "numel", None)):
            numel = float(r.numel)
        elif str(r.param) in recorded:
            numel = float(recorded[str(r.param)])
        elif not conv:
            numel = float(blk.shape[0] * blk.shape[1])
        out.append({"param": str(r.param), "kind": str(r.kind), "live": live, "effective": effective, "numel": numel})
    return pd.DataFrame(out, columns=["param", "kind", "live", "effective", "numel"])


def weight_densities(graph: Any) -> dict[str, float]:
    """The ticket's weight densities read from its layered graph (Vysogorets & Kempe's terms).

    Parameters
    ----------
    graph : Graph
        A layered graph built from a ticket (see :func:`weight_counts` for what a graph of a
        conv net must record).

    Returns
    -------
    dict[str, float]
        ``weight_density``: live weights / all weights of the graph's Linear/Conv layers (the
        ticket's density, not the graph-theoretic :func:`edge_density`);
        ``effective_density``: effective weights (on some input -> output path) / all weights
        -- Vysogorets & Kempe's effective density, ``<= weight_density``; it equals
        ``effective_fraction * weight_density``, where :func:`effective_fraction` is
        effective / *live* weights; ``weight_density/<param>``: live / all weights per layer.
        NaN where a count is unknown.

    Examples
    --------
    >>> import torch, graphtickets as gt
    >>> m = gt.models.build("mlp", in_shape=(4,), num_classes=2, widths=(3,), seed=0)
    >>> t = gt.Ticket({"fc1.weight": torch.ones(3, 4, dtype=torch.bool),
    ...                "classifier.weight": torch.tensor([[1, 0, 0], [0, 0, 0]], dtype=torch.bool)})
    >>> d = weight_densities(gt.graphs.layered_graph(m, t))
    >>> d["weight_density"], d["effective_density"], d["weight_density/classifier.weight"]
    (0.7222222222222222, 0.2777777777777778, 0.16666666666666666)

    References
    ----------
    A. Vysogorets, J. Kempe, "Connectivity Matters: Neural Network Pruning Through the Lens of
    Effective Sparsity", JMLR 24, 2023.
    """
    c = weight_counts(graph)
    numel = float(c["numel"].sum(skipna=False))
    out = {
        "weight_density": float(c["live"].sum(skipna=False)) / numel if numel else float("nan"),
        "effective_density": float(c["effective"].sum(skipna=False)) / numel if numel else float("nan"),
    }
    for r in c.itertuples():
        out[f"weight_density/{r.param}"] = float(r.live) / float(r.numel) if r.numel else float("nan")  # type: ignore[operator,arg-type]
    return out


def degree_stats(graph: Any) -> dict[str, float]:
    """Mean, standard deviation and Gini coefficient of node degrees (unweighted, no loops).

    Directed graphs: total degree (in + out). Returns ``degree_mean``, ``degree_std``,
    ``degree_gini``.
    """
    g = as_graph(graph)
    a = simple_directed(g)
    deg = np.diff(a.indptr) + (np.diff(a.tocsc().indptr) if g.directed else 0)
    return {"degree_mean": float(deg.mean()), "degree_std": float(deg.std()), "degree_gini": gini(deg)}


def layer_degree_stats(graph: Any) -> pd.DataFrame:
    """In- and out-degree statistics per layer (node column ``layer``).

    Returns
    -------
    pandas.DataFrame
        One row per layer in node order: ``layer``, ``n``, ``in_mean``, ``in_std``,
        ``in_gini``, ``out_mean``, ``out_std``, ``out_gini`` (undirected graphs: in = out =
        degree).
    """
    g = as_graph(graph)
    a = simple_directed(g)
    outdeg = np.diff(a.indptr).astype(np.float64)
    indeg = np.diff(a.tocsc().indptr).astype(np.float64) if g.directed else outdeg
    layers = g.nodes["layer"].astype(str).to_numpy()
    rows = []
    for name in dict.fromkeys(layers):
        sel = layers == name
        i, o = indeg[sel], outdeg[sel]
        rows.append({"layer": name, "n": int(sel.sum()), "in_mean": i.mean(), "in_std": i.std(), "in_gini": gini(i),
                     "out_mean": o.mean(), "out_std": o.std(), "out_gini": gini(o)})  # fmt: skip
    return pd.DataFrame(rows)


def _levels(a: sp.csr_matrix) -> list[np.ndarray]:
    """Topological levels of a DAG (Kahn's algorithm, one vectorized step per level)."""
    n = a.shape[0]
    indeg = np.diff(a.tocsc().indptr).astype(np.int64)
    frontier = np.flatnonzero(indeg == 0)
    levels, seen = [], 0
    while frontier.size:
        levels.append(frontier)
        seen += frontier.size
        sub = a[frontier]
        dec = np.bincount(sub.indices, minlength=n)
        indeg -= dec
        nxt = np.flatnonzero((dec > 0) & (indeg == 0))
        frontier = nxt
    if seen != n:
        raise GraphticketsError("the graph has a directed cycle; path counts need a DAG (a layered graph)")
    return levels


def log10_paths(graph: Any, *, multiplicity: bool = False) -> float:
    """log10 of the number of input -> output paths of a DAG, by dynamic programming in log space.

    ``N(v) = sum_{u -> v} m(u, v) N(u)`` over a topological order, ``N = 1`` on the inputs;
    the result is ``log10 sum_{outputs} N``. Computed with log-sum-exp per level, so it does
    not overflow for deep networks (VGG-16 has far more than 1e308 paths).

    Parameters
    ----------
    graph : Graph
        Directed acyclic; inputs/outputs from ``role`` (else in-/out-degree 0 nodes).
    multiplicity : bool, default False
        Weigh each edge by its weight (e.g. the number of live kernel entries of a conv channel
        pair with ``weights="count"``: then paths are counted through individual weights, as
        SynFlow's path norm does); default: each edge counts once.

    Returns
    -------
    float
        ``-inf`` when no path exists.

    Examples
    --------
    >>> import networkx as nx
    >>> from graphtickets.analysis._util import from_networkx
    >>> g = nx.DiGraph([(0, 2), (1, 2), (0, 3), (2, 4), (3, 4)])
    >>> round(10 ** log10_paths(from_networkx(g)))
    3

    References
    ----------
    Tanaka et al. (2020), SynFlow (path counting); Vysogorets & Kempe (2023).
    """
    g = as_graph(graph)
    if not g.directed:
        raise GraphticketsError("path counts need a directed acyclic (layered) graph")
    a = sp.csr_matrix(g.adjacency)
    a.eliminate_zeros()
    inputs, outputs = _roles(g)
    logn = np.full(a.shape[0], -np.inf)
    logn[inputs] = 0.0
    at = sp.csr_matrix(a.T)  # rows = targets, columns = predecessors
    logw = np.log(np.abs(at.data)) if multiplicity else np.zeros(at.nnz)
    for level in _levels(a)[1:]:
        starts, stops = at.indptr[level], at.indptr[level + 1]
        has = stops > starts
        lv, starts, stops = level[has], starts[has], stops[has]
        if lv.size == 0:
            continue
        idx = _ranges(starts, stops)
        vals = logn[at.indices[idx]] + logw[idx]
        seg = np.concatenate([[0], np.cumsum(stops - starts)[:-1]])
        mx = np.maximum.reduceat(vals, seg)
        safe = np.where(np.isfinite(mx), mx, 0.0)
        rep = np.repeat(safe, stops - starts)
        sums = np.add.reduceat(np.exp(vals - rep), seg)
        with np.errstate(divide="ignore"):
            res = np.where(np.isfinite(mx), safe + np.log(sums), -np.inf)
        keep = ~inputs[lv]
        logn[lv[keep]] = res[keep]
    out = logn[outputs]
    if not np.isfinite(out).any():
        return float("-inf")
    m = out[np.isfinite(out)].max()
    return float((m + np.log(np.exp(out[np.isfinite(out)] - m).sum())) / np.log(10.0))


def _ranges(starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(s, e)`` for every pair (vectorized)."""
    lens = stops - starts
    total = int(lens.sum())
    offs = np.repeat(starts - np.concatenate([[0], np.cumsum(lens)[:-1]]), lens)
    return np.arange(total, dtype=np.int64) + offs


def square_clustering(graph: Any) -> np.ndarray:
    """Square clustering coefficient of every node (networkx ``square_clustering`` semantics).

    Computed on the undirected simple graph from sparse products: with ``P = A A``,
    ``q_v = ((A^4)_vv - sum_{u in N(v)} d_u) / 2 - C(d_v, 2)`` squares through ``v`` and the
    potential ``(d_v - 1) sum_{u in N(v)} d_u - q_v - d_v (d_v - 1) - 2 T_v``
    (``T_v`` = triangles), which is exactly the sum networkx accumulates pair by pair.

    Notes
    -----
    The triangle clustering of a layered graph is identically 0 (consecutive layers are
    bipartite); squares (a pair of units sharing two neighbours) are its smallest cycles.
    Directions are dropped (networkx on a DiGraph would only look at successors).

    Returns
    -------
    numpy.ndarray
        One value per node in ``[0, 1]`` (0 where the potential is 0).

    References
    ----------
    Lind, Gonzalez, Herrmann, "Cycles and clustering in bipartite networks", PRE 2005;
    networkx ``square_clustering``.
    """
    a = simple_undirected(graph)
    d = np.asarray(a.sum(axis=1)).ravel()
    p = a @ a
    a4 = np.asarray(p.multiply(p).sum(axis=1)).ravel()
    s = a @ d
    tri = np.asarray(p.multiply(a).sum(axis=1)).ravel() / 2.0
    q = (a4 - s) / 2.0 - d * (d - 1) / 2.0
    potential = (d - 1) * s - q - d * (d - 1) - 2.0 * tri
    out = np.zeros_like(d)
    np.divide(q, potential, out=out, where=potential > 0)
    return out


def average_square_clustering(graph: Any) -> float:
    """Mean of :func:`square_clustering` over all nodes (the layered graph's clustering)."""
    c = square_clustering(graph)
    return float(c.mean()) if c.size else float("nan")
