"""The derived method ``relational``: a WS-flex relational graph at the sources' structure.

Registered in :data:`graphtickets.pruning.METHODS` (family ``"derived"``) when
:mod:`graphtickets.graphs` is imported: it needs :func:`relational_graph`, :func:`ws_flex` and
:func:`masks_from_relational`, which pruning may not import.

The sources' relational graphs (``relational_graph(model, t, n_nodes=n_nodes).simple()``)
give a target average degree ``k*``, clustering ``C*`` and path length ``L*`` (medians over the
sources; :func:`clustering_and_path` says how they are measured). WS-flex graphs of ``k*`` are
drawn on a grid of rewiring probabilities, ``draws`` per probability, and the one closest to
the target (``|C - C*| / C* + |L - L*| / L*``) is turned into a support with
:func:`masks_from_relational` (graph2nn: groups talk to themselves; stem and head dense).
The exact count: the sources' median layer profile (as the ``profile`` method), each layer's
weights drawn at random inside the support first, then (only if the support is smaller than
the layer's count) outside it (``meta["outside_support"]``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from scipy.sparse import csgraph
from torch import nn

from graphtickets.graphs.generators import ws_flex
from graphtickets.graphs.relational import masks_from_relational, relational_graph
from graphtickets.pruning.core import MethodResult, register_method
from graphtickets.pruning.derived import (
    check_sources,
    profile_counts,
    source_record,
)
from graphtickets.pruning.select import keep_count, topk_flat
from graphtickets.ticket import Ticket

__all__ = ["clustering_and_path", "relational", "P_GRID"]

#: Rewiring probabilities searched (You et al. sweep p on [0, 1]).
P_GRID = (0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0)


def clustering_and_path(adjacency: sp.spmatrix) -> tuple[float, float]:
    """Average clustering and average shortest-path length of an undirected graph.

    Clustering: the mean over nodes of ``2 t_i / (d_i (d_i - 1))`` (0 for ``d_i < 2``), as
    networkx's ``average_clustering``. Path length: the mean hop count over ordered pairs of
    distinct nodes joined by a path (unreachable pairs left out; NaN without any). Self-loops
    and weights are ignored.
    """
    a = sp.csr_matrix(adjacency, dtype=np.float64)
    a = ((a + a.T) != 0).astype(np.float64).tolil()
    a.setdiag(0)
    a = sp.csr_matrix(a)
    a.eliminate_zeros()
    deg = np.asarray(a.sum(axis=1)).ravel()
    tri = np.asarray((a @ a).multiply(a).sum(axis=1)).ravel() / 2
    pairs = deg * (deg - 1)
    clustering = float(np.mean(np.where(pairs > 0, 2 * tri / np.where(pairs > 0, pairs, 1), 0.0)))
    dist = csgraph.shortest_path(a, unweighted=True, directed=False)
    off = ~np.eye(dist.shape[0], dtype=bool) & np.isfinite(dist)
    path = float(dist[off].mean()) if off.any() else float("nan")
    return clustering, path


def _target(model: nn.Module, sources: Sequence[Ticket], n_nodes: int | None) -> tuple[int, float, float, float]:
    rows = []
    for t in sources:
        g = relational_graph(model, t, n_nodes=n_nodes).simple()
        c, p = clustering_and_path(g.adjacency)
        rows.append((g.n_nodes, 2.0 * g.n_edges / g.n_nodes, c, p))
    arr = np.array(rows, dtype=np.float64)
    return int(arr[0, 0]), float(np.median(arr[:, 1])), float(np.median(arr[:, 2])), float(np.nanmedian(arr[:, 3]))


def _closest_graph(n: int, k: float, c_star: float, l_star: float, draws: int, rng: np.random.Generator) -> Any:
    best, best_score = None, np.inf
    for p in P_GRID:
        for _ in range(draws):
            g = ws_flex(n, min(k, n - 1), p, seed=int(rng.integers(0, 2**63)))
            c, length = clustering_and_path(g.adjacency)
            score = abs(c - c_star) / max(c_star, 1e-9) + abs(length - l_star) / max(l_star, 1e-9)
            if np.isfinite(score) and score < best_score:
                best, best_score = (g, c, length), score
    if best is None:
        raise RuntimeError("no WS-flex graph with a finite path length")  # pragma: no cover - p=0 ring is connected
    return best


@register_method("relational", needs_data=False, kind="derived", min_sources=1, reference=(
    "You, Leskovec, He & Xie (2020). Graph Structure of Neural Networks. ICML (WS-flex, graph2nn)"),
    summary="a WS-flex relational graph at the sources' median clustering and path length, as a ticket")  # fmt: skip
def relational(
    model: nn.Module, *, density: float, data: Any = None, seed: int = 0,
    sources: Sequence[Ticket] | None = None, held_out: bool = False,
    n_nodes: int | None = None, draws: int = 2,
) -> MethodResult:
    """A ticket from the WS-flex graph closest to the sources' relational structure (see the module)."""
    names, masks = check_sources(model, sources, "relational", 1, held_out=held_out)
    assert sources is not None
    rng = np.random.default_rng(seed)
    n, k, c_star, l_star = _target(model, sources, n_nodes)
    graph, c_got, l_got = _closest_graph(n, k, c_star, l_star, max(1, int(draws)), rng)
    support = masks_from_relational(graph, model).masks
    total = keep_count(density, sum(masks[0][nm].size for nm in names))
    counts = profile_counts(names, masks, total)
    out, outside = {}, 0
    for nm, c in zip(names, counts.tolist(), strict=True):
        sup = support[nm].numpy().reshape(-1)
        keep = topk_flat(sup.astype(np.float64) + rng.random(sup.shape[0]) * 0.5, int(c))
        outside += int((keep & ~sup).sum())
        out[nm] = torch.from_numpy(keep.reshape(masks[0][nm].shape))
    own = (getattr(model, "gt_spec", {}) or {}).get("seed")
    seeds = sorted({r["init_seed"] for r in (source_record(t) for t in sources) if r["init_seed"] is not None})
    meta = {"sources": [source_record(t) for t in sources], "source_init_seeds": seeds,
            "held_out": own is not None and own not in seeds,
            "target": {"n_nodes": n, "k": k, "clustering": c_star, "path_length": l_star},
            "graph": {**graph.meta, "clustering": c_got, "path_length": l_got},
            "layer_counts": dict(zip(names, counts.tolist(), strict=True)), "outside_support": outside}  # fmt: skip
    return MethodResult(masks=out, meta=meta)
