"""Mesoscale structure: modularity (Leiden), degree assortativity, small-world sigma and omega.

References
----------
.. [1] V. A. Traag, L. Waltman, N. J. van Eck, "From Louvain to Leiden: guaranteeing
   well-connected communities", Sci. Rep. 9, 2019.
.. [2] M. E. J. Newman, "Assortative mixing in networks", PRL 89, 2002.
.. [3] M. D. Humphries, K. Gurney, "Network 'small-world-ness'", PLoS ONE 3, 2008 (sigma).
.. [4] Q. K. Telesford, K. E. Joyce, S. Hayasaka, J. H. Burdette, P. J. Laurienti, "The
   ubiquity of small-world networks", Brain Connectivity 1, 2011 (omega).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from graphtickets.analysis._util import as_graph, igraph_seed, simple_undirected, to_igraph_simple
from graphtickets.analysis.paths import clustering, path_length
from graphtickets.errors import GraphticketsError
from graphtickets.graphs.base import Graph, from_edges

__all__ = ["modularity", "communities", "assortativity", "small_world"]


def communities(graph: Any, *, seed: int = 0, resolution: float = 1.0) -> np.ndarray:
    """Leiden communities maximizing modularity (igraph, seeded); one label per node.

    The simple undirected graph is used (weights and self-loops dropped). Iterates until the
    partition stops changing (``n_iterations=-1``).
    """
    a = simple_undirected(graph)
    g = to_igraph_simple(a)
    with igraph_seed(seed):
        part = g.community_leiden(objective_function="modularity", resolution=resolution, n_iterations=-1)
    return np.asarray(part.membership, dtype=np.int64)


def modularity(graph: Any, *, seed: int = 0, resolution: float = 1.0) -> float:
    """Newman modularity of the Leiden partition of the simple undirected graph.

    Parameters
    ----------
    graph : Graph or networkx graph
    seed : int
        Seed of Leiden's random moves (a local generator; the global ``random`` state is
        untouched).
    resolution : float, default 1

    Returns
    -------
    float
        ``Q = 1/(2m) sum_ij (A_ij - d_i d_j / 2m) [c_i = c_j]``; ``nan`` without edges.

    Examples
    --------
    >>> import networkx as nx
    >>> round(modularity(nx.barbell_graph(5, 0)), 4)
    0.4524

    References
    ----------
    Traag, Waltman, van Eck, "From Louvain to Leiden", Sci. Rep. 2019; Newman & Girvan 2004.
    """
    a = simple_undirected(graph)
    if a.nnz == 0:
        return float("nan")
    g = to_igraph_simple(a)
    with igraph_seed(seed):
        part = g.community_leiden(objective_function="modularity", resolution=resolution, n_iterations=-1)
    return float(g.modularity(part.membership, resolution=resolution))


def assortativity(graph: Any) -> float:
    """Degree assortativity (Pearson correlation of the degrees at both ends of an edge).

    Undirected simple graph; ``nan`` when every edge joins nodes of equal degree (regular
    graphs) or there are no edges -- as networkx ``degree_assortativity_coefficient``.

    References
    ----------
    M. E. J. Newman, "Assortative mixing in networks", PRL 2002.
    """
    a = simple_undirected(graph)
    if a.nnz == 0:
        return float("nan")
    d = np.asarray(a.sum(axis=1)).ravel()
    coo = a.tocoo()  # both directions: symmetric, as Newman's formula for undirected graphs
    x, y = d[coo.row], d[coo.col]
    sx, sy = x.std(), y.std()
    if sx == 0 or sy == 0:
        return float("nan")
    return float(np.mean((x - x.mean()) * (y - y.mean())) / (sx * sy))


def small_world(graph: Any, *, n_references: int = 3, seed: int = 0, swaps_per_edge: int = 10) -> dict[str, float]:
    """Small-world coefficients sigma and omega against seeded reference graphs.

    ``sigma = (C / C_rand) / (L / L_rand)`` and ``omega = L_rand / L - C / C_latt`` with ``C``
    the average clustering (:func:`clustering`) and ``L`` the average path length
    (:func:`path_length`) of the simple undirected graph. ``C_rand``, ``L_rand`` are means over
    ``n_references`` degree-preserving rewirings (igraph ``rewire``, ``swaps_per_edge * m``
    swap trials each); ``C_latt`` is the clustering of the ring lattice with the same number of
    nodes and edges (WS-flex with ``p = 0``), the usual stand-in for a lattice reference.

    Parameters
    ----------
    graph : Graph or networkx graph
    n_references : int, default 3
        Cost: ``n_references`` rewirings plus path lengths, i.e. about ``n_references + 1``
        times :func:`path_length`. networkx's ``sigma`` defaults to 100 references (and
        ``omega`` to 10 plus lattice rewiring) -- minutes on graphs of a thousand nodes.
    seed : int
    swaps_per_edge : int, default 10

    Returns
    -------
    dict[str, float]
        ``sigma``, ``omega``, ``C``, ``L``, ``C_rand``, ``L_rand``, ``C_latt``.

    References
    ----------
    Humphries & Gurney (2008) sigma; Telesford et al. (2011) omega; Watts & Strogatz (1998).
    """
    from graphtickets.graphs.generators import ws_flex

    if n_references < 1:
        raise GraphticketsError(f"n_references must be >= 1, got {n_references}")
    a = simple_undirected(graph)
    n, m = a.shape[0], a.nnz // 2
    c = clustering(as_graph(graph))
    lval = path_length(as_graph(graph), seed=seed).value
    cr, lr = [], []
    for i in range(n_references):
        g = to_igraph_simple(a)
        with igraph_seed(seed + 1 + i):
            g.rewire(n=int(swaps_per_edge * m), allowed_edge_types="simple")
        cr.append(float(np.mean(g.transitivity_local_undirected(mode="zero"))))
        el = np.asarray(g.get_edgelist(), dtype=np.int64).reshape(-1, 2)
        ref = Graph(from_edges(n, el[:, 0], el[:, 1], directed=False), pd.DataFrame({"unit": np.arange(n)}), directed=False)
        lr.append(path_length(ref, seed=seed + 1 + i).value)  # exact or sampled by the same rule as L
    c_rand, l_rand = float(np.mean(cr)), float(np.mean(lr))
    c_latt = clustering(ws_flex(n, 2.0 * m / n, 0.0, seed=seed)) if n >= 2 else float("nan")
    sigma = (c / c_rand) / (lval / l_rand) if c_rand > 0 and lval > 0 else float("nan")
    omega = l_rand / lval - c / c_latt if lval > 0 and c_latt > 0 else float("nan")
    return {"sigma": float(sigma), "omega": float(omega), "C": c, "L": float(lval), "C_rand": c_rand,
            "L_rand": l_rand, "C_latt": float(c_latt)}  # fmt: skip
