"""Overlap distances: which weights (or edges) two tickets share.

Kinds ``jaccard``, ``hamming`` and ``layer_density``, and :func:`distance_details` (per-layer
overlap against its value for independent masks). The mask and adjacency helpers here
(:func:`pair_masks`, :func:`mask_counts`, :func:`paired_adjacency`, :func:`binary`) are shared
by the other distance families and by :func:`~graphtickets.analysis.consensus`.

References
----------
.. [1] J. Frankle, G. K. Dziugaite, D. M. Roy, M. Carbin, "Pruning Neural Networks at
   Initialization: Why are We Missing the Mark?", ICLR 2021 (layer-wise shuffled masks).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from graphtickets.analysis.distances.registry import Context, register_distance
from graphtickets.analysis.structure import layer_densities
from graphtickets.errors import GraphticketsError, TicketError
from graphtickets.graphs.base import Graph
from graphtickets.ticket import Ticket

__all__ = ["distance_details", "check_one_architecture", "pair_masks", "mask_counts", "paired_adjacency", "binary"]


# --------------------------------------------------------------------------- mask helpers
def check_one_architecture(tickets: Mapping[str, Ticket], purpose: str) -> None:
    """Raise :class:`~graphtickets.errors.TicketError` unless all tickets mask the same parameters
    with the same shapes.

    Parameters
    ----------
    tickets : mapping of str to Ticket
        Named tickets (the names go into the message); the first one is the reference.
    purpose : str
        Who needs one architecture, for the message (``"distances compare"``).
    """
    items = list(tickets.items())
    n0, t0 = items[0]
    for nm, t in items[1:]:
        if t.masks.keys() != t0.masks.keys():
            raise TicketError(
                f"tickets {n0!r} and {nm!r} mask different parameters ({sorted(set(t0.masks) ^ set(t.masks))[:5]} "
                f"differ); {purpose} tickets of one architecture"
            )
        for p, m in t.masks.items():
            if m.shape != t0.masks[p].shape:
                raise TicketError(f"mask {p!r} has shape {tuple(m.shape)} in {nm!r} but {tuple(t0.masks[p].shape)} in {n0!r}")


def pair_masks(a: Ticket, b: Ticket) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    """``(name, mask of a, mask of b)`` for every masked parameter, in ``a``'s order."""
    check_one_architecture({"a": a, "b": b}, "distances compare")
    return [(n, a.masks[n], b.masks[n]) for n in a.masks]


def mask_counts(a: Ticket, b: Ticket) -> pd.DataFrame:
    """Per layer: ``layer``, ``numel``, ``kept_a``, ``kept_b``, ``intersection``."""
    rows = []
    for n, ma, mb in pair_masks(a, b):
        rows.append((n, ma.numel(), int(ma.count_nonzero()), int(mb.count_nonzero()), int((ma & mb).count_nonzero())))
    return pd.DataFrame(rows, columns=["layer", "numel", "kept_a", "kept_b", "intersection"])


def _totals(a: Ticket, b: Ticket) -> tuple[float, float, float, float]:
    """``(numel, kept_a, kept_b, intersection)`` summed over layers (what jaccard and hamming read;
    no table: a null distribution calls this thousands of times)."""
    numel = kept_a = kept_b = inter = 0
    for _, ma, mb in pair_masks(a, b):
        numel += ma.numel()
        kept_a += int(ma.count_nonzero())
        kept_b += int(mb.count_nonzero())
        inter += int((ma & mb).count_nonzero())
    return float(numel), float(kept_a), float(kept_b), float(inter)


def paired_adjacency(a: Graph, b: Graph) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """The two adjacencies on the same nodes (upper triangles of undirected graphs)."""
    if a.adjacency.shape != b.adjacency.shape:
        raise GraphticketsError(
            f"the graphs have {a.n_nodes} and {b.n_nodes} nodes; identity-aligned distances need the same "
            f"nodes (use 'ged_approx', 'spectral', 'netlsd' or 'degree' for graphs of other sizes)"
        )
    if a.directed != b.directed:
        raise GraphticketsError("one graph is directed and the other is not")
    if a.directed:
        return sp.csr_matrix(a.adjacency), sp.csr_matrix(b.adjacency)
    return sp.csr_matrix(sp.triu(a.adjacency)), sp.csr_matrix(sp.triu(b.adjacency))


def binary(x: sp.csr_matrix) -> sp.csr_matrix:
    """A copy of ``x`` with every stored nonzero set to 1."""
    y = sp.csr_matrix(x, copy=True)
    y.eliminate_zeros()
    y.data[:] = 1.0
    return y


# --------------------------------------------------------------------------- registered kinds
@register_distance("jaccard", question="mask overlap", representative=True)
def jaccard_distance(a: Any, b: Any, ctx: Context) -> float:
    """1 - intersection over union of the live weights (graphs: of the edge sets)."""
    if isinstance(a, Ticket):
        _, kept_a, kept_b, inter = _totals(a, b)
        union = kept_a + kept_b - inter
    else:
        x, y = (binary(m) for m in paired_adjacency(a, b))
        inter = float(x.multiply(y).sum())
        union = float(x.sum() + y.sum()) - inter
    return 1.0 - inter / union if union else 0.0


@register_distance("hamming", question="mask overlap")
def _hamming(a: Any, b: Any, ctx: Context) -> float:
    """Fraction of weights kept by exactly one ticket (graphs: of the possible edges)."""
    if isinstance(a, Ticket):
        numel, kept_a, kept_b, inter = _totals(a, b)
        return (kept_a + kept_b - 2 * inter) / numel
    x, y = (binary(m) for m in paired_adjacency(a, b))
    n = a.n_nodes
    possible = n * (n - 1) if a.directed else n * (n + 1) / 2
    return float(abs(x - y).sum()) / possible if possible else 0.0


@register_distance("layer_density", kernel_blind=True, question="layer allocation", representative=True)
def _layer_density(a: Any, b: Any, ctx: Context) -> float:
    """L1 distance between the per-layer density profiles (tickets; layered graphs per layer)."""
    if isinstance(a, Ticket):
        c = mask_counts(a, b)
        return float(np.abs((c["kept_a"] - c["kept_b"]) / c["numel"]).sum())
    da, db = layer_densities(a), layer_densities(b)
    if da.keys() != db.keys():
        raise GraphticketsError("the layered graphs have different layers")
    return float(sum(abs(da[k] - db[k]) for k in da))


# --------------------------------------------------------------------------- details
def distance_details(a: Ticket, b: Ticket) -> pd.DataFrame:
    """Per-layer and overall jaccard/hamming distances with their value under independence.

    For independent random masks with the same per-layer kept counts ``k_a``, ``k_b`` out of
    ``N`` weights, the intersection ``X`` is hypergeometric: ``E[X] = k_a k_b / N``,
    ``Var[X] = k_a k_b (N - k_a)(N - k_b) / (N^2 (N - 1))``. The expected jaccard distance is
    summed exactly over the hypergeometric pmf (per layer; the overall row uses the delta
    method on the sum of the layers' independent intersections). ``overlap_z`` is
    ``(X - E[X]) / sd[X]``: large and positive when the tickets share far more weights than
    random masks of the same layer densities would (the hamming distance is then lower and the
    jaccard distance lower than expected).

    Parameters
    ----------
    a, b : Ticket

    Returns
    -------
    pandas.DataFrame
        One row per masked parameter plus a final ``"total"`` row: ``layer``, ``numel``,
        ``kept_a``, ``kept_b``, ``intersection``, ``jaccard``, ``hamming``,
        ``expected_jaccard``, ``expected_hamming``, ``overlap_z``.

    References
    ----------
    Frankle et al. (2021) compare tickets with layer-wise shuffled masks; the hypergeometric
    null is the exact distribution of that comparison.
    """
    c = mask_counts(a, b)
    total = c[["numel", "kept_a", "kept_b", "intersection"]].sum()
    c = pd.concat([c, pd.DataFrame([{"layer": "total", **total.to_dict()}])], ignore_index=True)
    n, ka, kb, x = (c[k].to_numpy(dtype=np.float64) for k in ("numel", "kept_a", "kept_b", "intersection"))
    union = ka + kb - x
    c["jaccard"] = np.where(union > 0, 1.0 - x / np.where(union > 0, union, 1), 0.0)
    c["hamming"] = (ka + kb - 2 * x) / n
    ex = ka * kb / n
    var = ka * kb * (n - ka) * (n - kb) / (n**2 * np.maximum(n - 1, 1))
    var[-1] = var[:-1].sum()
    ex[-1] = ex[:-1].sum()
    c["expected_hamming"] = (ka + kb - 2 * ex) / n
    ej = np.empty(len(c))
    for i in range(len(c) - 1):
        ej[i] = _expected_jaccard(int(n[i]), int(ka[i]), int(kb[i]), ex[i], var[i])
    ej[-1] = _expected_jaccard_delta(ka[-1] + kb[-1], ex[-1], var[-1])
    c["expected_jaccard"] = ej
    sd = np.sqrt(var)
    c["overlap_z"] = np.where(sd > 0, (x - ex) / np.where(sd > 0, sd, 1), 0.0)
    return c


def _expected_jaccard(N: int, A: int, B: int, ex: float, var: float) -> float:
    """E[jaccard distance] of one layer: summed over the hypergeometric pmf within 12 sd of its mean."""
    from scipy.stats import hypergeom

    sd = math.sqrt(var)
    lo, hi = max(0, A + B - N, int(ex - 12 * sd - 1)), min(A, B, int(ex + 12 * sd + 2))
    xs = np.arange(lo, hi + 1)
    p = hypergeom.pmf(xs, N, A, B)
    u = A + B - xs
    return float(np.sum(p * np.where(u > 0, 1.0 - xs / np.where(u > 0, u, 1), 0.0)) / p.sum()) if p.sum() > 0 else 0.0


def _expected_jaccard_delta(K: float, mu: float, var: float) -> float:
    """E[jaccard distance] of the total by the delta method: ``X / (K - X)`` around ``mu`` to second order."""
    if K <= mu:
        return 0.0
    g = mu / (K - mu)
    g2 = 2 * K / (K - mu) ** 3
    return float(1.0 - (g + 0.5 * g2 * var))
