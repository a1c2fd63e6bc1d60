"""Distances between features of one graph each: its spectrum, NetLSD heat trace, degrees.

Each kind is declared as a feature of one ticket or graph plus a metric between two features
(see :func:`~graphtickets.analysis.distances.register_distance`), so
:func:`~graphtickets.analysis.compare` computes every ticket's features once. The graphs
may differ in size for ``netlsd`` and ``degree``; ``spectral`` needs the same number of nodes.

References
----------
.. [1] A. Tsitsulin, D. Mottin, P. Karras, A. Bronstein, E. Mueller, "NetLSD: Hearing the
   Shape of a Graph", KDD 2018.
.. [2] J. You, J. Leskovec, K. He, S. Xie, "Graph Structure of Neural Networks", ICML 2020
   (the relational graph compared).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.stats import wasserstein_distance

from graphtickets.analysis._util import simple_directed
from graphtickets.analysis.distances.registry import Context, register_distance
from graphtickets.analysis.spectral import heat_trace, laplacian_spectrum
from graphtickets.errors import GraphticketsError
from graphtickets.ticket import Ticket

__all__ = ["l2", "same_size_l2", "wasserstein"]


# --------------------------------------------------------------------------- metrics
def l2(x: np.ndarray, y: np.ndarray) -> float:
    """Euclidean distance of two feature vectors of one length."""
    return float(np.linalg.norm(x - y))


def same_size_l2(x: np.ndarray, y: np.ndarray) -> float:
    """:func:`l2` of two spectra, with an error naming the sizes when they differ."""
    if x.size != y.size:
        raise GraphticketsError(f"spectral distance needs graphs of the same size, got {x.size} and {y.size} nodes")
    return l2(x, y)


def wasserstein(x: np.ndarray, y: np.ndarray) -> float:
    """Wasserstein-1 distance between two samples (their empirical distributions)."""
    return float(wasserstein_distance(x, y))


# --------------------------------------------------------------------------- registered kinds
@register_distance("spectral", needs_model=True, kernel_blind=True, metric=same_size_l2, question="graph shape",
                   representative=True)
def _spectrum(x: Any, ctx: Context) -> np.ndarray:
    """Euclidean distance between the sorted normalized-Laplacian spectra of the relational graphs.

    Self-loops and weights are dropped (You et al.'s graph). Both graphs need the same number
    of nodes. Dense ``eigvalsh``: about a second per 2048-node graph, seconds at 4096.
    Feature: the spectrum of one graph.
    """
    return np.asarray(laplacian_spectrum(ctx.graph(x, "relational")), dtype=np.float64)


@register_distance("netlsd", needs_model=True, kernel_blind=True, metric=l2, question="graph shape")
def _netlsd(x: Any, ctx: Context) -> np.ndarray:
    """L2 distance between NetLSD heat-trace signatures (:func:`heat_trace`) of the relational graphs.

    Feature: the heat trace of one graph.
    """
    return np.asarray(heat_trace(ctx.graph(x, "relational")), dtype=np.float64)


@register_distance("degree", needs_model=True, kernel_blind=True, metric=wasserstein, question="graph shape")
def _degrees(x: Any, ctx: Context) -> np.ndarray:
    """Wasserstein-1 distance between the degree distributions (tickets: of the layered graphs).

    Unweighted, loops excluded; directed graphs use the total degree (in + out). Feature: the
    degree sequence of one graph.
    """
    g = ctx.graph(x, "layered") if isinstance(x, Ticket) else x
    a = simple_directed(g)
    d = np.diff(a.indptr)
    return np.asarray((d + np.diff(a.tocsc().indptr)) if g.directed else d)
