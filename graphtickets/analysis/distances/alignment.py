"""Unit alignment: hidden units matched between two tickets before their masks are compared.

:func:`align_units` finds, layer by layer, the permutation of one ticket's hidden units that
shares the most live weights with the other (Git Re-Basin's weight matching on masks); kind
``aligned_jaccard`` is the jaccard distance after that matching (on graphs: after
:func:`~graphtickets.analysis.ged_bounds`' node mapping).

References
----------
.. [1] S. K. Ainsworth, J. Hayase, S. Srinivasa, "Git Re-Basin: Merging Models modulo
   Permutation Symmetries", ICLR 2023 (unit matching by linear assignment).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from graphtickets.analysis._util import simple_directed
from graphtickets.analysis.distances.ged import assign, ged_bounds, permuted
from graphtickets.analysis.distances.overlap import jaccard_distance, pair_masks
from graphtickets.analysis.distances.registry import Context, register_distance
from graphtickets.ticket import Ticket

__all__ = ["align_units"]


def align_units(a: Ticket, b: Ticket, *, sweeps: int = 5) -> dict[str, np.ndarray]:
    """Permutations of ``b``'s hidden units that maximize the live weights shared with ``a``.

    Masks are taken in order as a chain: layer ``l``'s output units are layer ``l+1``'s input
    units (a flatten repeats each channel over its features; a layer whose input width does
    not fit the previous output breaks the chain there, and the units before the break stay
    in place). The first layer's inputs and the last layer's outputs (classes) stay fixed.
    The objective is the number of live weights both tickets keep,
    ``sum_l |A_l and P_l B_l P_{l-1}^T|``, where a conv weight ``(out, in, kh, kw)`` counts
    each kernel entry separately (a channel permutation moves whole kernels; positions inside
    a kernel are compared as they are). It is maximized by coordinate ascent, as Git Re-Basin's
    weight matching: each pass re-solves one layer's permutation with both neighbours fixed (a
    linear assignment, :func:`scipy.optimize.linear_sum_assignment`, on the incoming plus
    outgoing overlap), until no layer improves or after ``sweeps`` passes. The ascent is
    started twice, from a greedy forward pass (each layer matched on its inputs alone) and
    from the identity, and the start with the larger final overlap wins. Each step can only
    increase the overlap, so the result never shares fewer weights than the identity (hence
    ``aligned_jaccard <= jaccard``); it is a local optimum (the joint problem is NP-hard),
    exact for one hidden layer.

    Parameters
    ----------
    a, b : Ticket
        Tickets of one chain-shaped architecture (same mask names and shapes).
    sweeps : int, default 5
        Maximum number of coordinate-ascent passes per start.

    Returns
    -------
    dict[str, numpy.ndarray]
        ``perm[name][i]`` = output unit of ``b`` matched to unit ``i`` of ``a`` (the identity
        for the last layer, for 1-D masks and for layers whose outputs leave the chain).

    Notes
    -----
    For residual networks (skip connections tie channels across layers) the chain assumption
    does not hold; use ``ged_approx`` on layered graphs there.

    Examples
    --------
    >>> import torch
    >>> from graphtickets import Ticket
    >>> a = Ticket({"h": torch.tensor([[1, 0], [0, 1], [1, 1]], dtype=torch.bool),
    ...             "o": torch.tensor([[1, 1, 0]], dtype=torch.bool)})
    >>> b = Ticket({"h": a.masks["h"][[2, 0, 1]], "o": a.masks["o"][:, [2, 0, 1]]})
    >>> align_units(a, b)["h"].tolist()
    [1, 2, 0]

    References
    ----------
    Ainsworth, Hayase, Srinivasa, "Git Re-Basin", ICLR 2023 (weight matching).
    """
    chain = _Chain.of(a, b)
    ident = chain.identity()
    best, best_ov = ident, -1.0
    for start in (chain.greedy(), list(ident)):
        perms = chain.ascend(start, int(sweeps))
        ov = chain.overlap(perms)
        if ov > best_ov:
            best, best_ov = perms, ov
    return dict(zip(chain.names, best, strict=True))


def _expand(perm: np.ndarray, r: int) -> np.ndarray:
    """A permutation of ``n`` units as one of ``n * r`` features (unit ``c`` -> features ``c*r .. c*r+r-1``)."""
    return (perm[:, None] * r + np.arange(r)[None, :]).ravel()


@dataclass
class _Chain:
    """Two tickets' masks as a chain of layers, and the steps of :func:`align_units` on it.

    ``ma[l]``, ``mb[l]``: masks as float ``(out, in, prod(kernel))``; ``link[l] = r`` when layer
    ``l+1`` takes layer ``l``'s outputs (each repeated ``r`` times: a flatten), else None;
    ``free[l]``: layer ``l``'s output units may be permuted. ``perms[l]`` (one per layer) maps
    unit ``i`` of ``a`` to unit ``perms[l][i]`` of ``b``.
    """

    names: list[str]
    ma: list[torch.Tensor]
    mb: list[torch.Tensor]
    link: list[int | None]
    free: list[bool]

    @classmethod
    def of(cls, a: Ticket, b: Ticket) -> _Chain:
        pairs = pair_masks(a, b)
        ma = [_as3(x) for _, x, _ in pairs]
        n = len(pairs)
        link: list[int | None] = []
        for i in range(n - 1):
            out, nxt = ma[i].shape[0], ma[i + 1].shape[1]
            link.append(nxt // out if out and nxt % out == 0 and pairs[i + 1][1].dim() >= 2 else None)
        link.append(None)
        free = [i < n - 1 and pairs[i][1].dim() >= 2 and link[i] is not None for i in range(n)]
        return cls([nm for nm, _, _ in pairs], ma, [_as3(y) for _, _, y in pairs], link, free)

    def identity(self) -> list[np.ndarray]:
        return [np.arange(x.shape[0]) for x in self.ma]

    def inputs_perm(self, perms: list[np.ndarray], i: int) -> np.ndarray | None:
        """How layer ``i``'s inputs are permuted by the permutation of layer ``i-1``'s outputs."""
        r = self.link[i - 1] if i > 0 else None
        return None if r is None else _expand(perms[i - 1], r)

    def incoming(self, perms: list[np.ndarray], i: int) -> np.ndarray:
        """Overlap of every unit pair's incoming weights (``b``'s inputs permuted)."""
        ma, p_in = self.ma[i], self.inputs_perm(perms, i)
        yb = self.mb[i] if p_in is None else self.mb[i][:, torch.from_numpy(p_in)]
        return (ma.reshape(ma.shape[0], -1) @ yb.reshape(yb.shape[0], -1).T).double().numpy()

    def outgoing(self, perms: list[np.ndarray], i: int) -> np.ndarray:
        """Overlap of every unit pair's outgoing weights (``b``'s next layer permuted)."""
        out = self.ma[i].shape[0]
        xa = self.ma[i + 1].reshape(self.ma[i + 1].shape[0], out, -1).permute(1, 0, 2).reshape(out, -1)
        yb = self.mb[i + 1][torch.from_numpy(perms[i + 1])]
        yb = yb.reshape(yb.shape[0], out, -1).permute(1, 0, 2).reshape(out, -1)
        return (xa @ yb.T).double().numpy()

    def overlap(self, perms: list[np.ndarray]) -> float:
        """The objective: live weights both tickets keep, ``b`` permuted by ``perms``."""
        total = 0.0
        for i, ma in enumerate(self.ma):
            p_in = self.inputs_perm(perms, i)
            yb = self.mb[i][torch.from_numpy(perms[i])]
            if p_in is not None:
                yb = yb[:, torch.from_numpy(p_in)]
            total += float((ma * yb).sum(dtype=torch.float64))
        return total

    def greedy(self) -> list[np.ndarray]:
        """The greedy forward start: each free layer matched on its incoming weights alone."""
        perms = self.identity()
        for i, free in enumerate(self.free):
            if free:
                perms[i] = assign(-self.incoming(perms, i))
        return perms

    def ascend(self, perms: list[np.ndarray], sweeps: int) -> list[np.ndarray]:
        """Coordinate ascent: re-solve one free layer at a time (``perms`` is updated in place)."""
        for _ in range(sweeps):
            changed = False
            for i, free in enumerate(self.free):
                if not free:
                    continue
                gain = self.incoming(perms, i) + self.outgoing(perms, i)
                p = assign(-gain)
                rows = np.arange(p.size)
                if gain[rows, p].sum() > gain[rows, perms[i]].sum() + 0.5:  # overlaps are integers
                    perms[i], changed = p, True
            if not changed:
                break
        return perms


def _as3(m: torch.Tensor) -> torch.Tensor:
    """A mask as float ``(out, in, prod(kernel))`` (a 1-D mask as ``(n, 1, 1)``)."""
    if m.dim() < 2:
        return m.reshape(-1, 1, 1).to(torch.float32)
    return m.reshape(m.shape[0], m.shape[1], -1).to(torch.float32)


def _aligned_overlap(a: Ticket, b: Ticket) -> tuple[float, float]:
    perms = align_units(a, b)
    inter, total = 0.0, 0.0
    prev: np.ndarray | None = None
    for name, ma, mb in pair_masks(a, b):
        mb = _permute_inputs(mb, prev)[torch.from_numpy(perms[name])]
        inter += float((ma & mb).count_nonzero())
        total += float(ma.count_nonzero() + mb.count_nonzero())
        prev = perms[name]
    return inter, total - inter


def _permute_inputs(m: torch.Tensor, prev: np.ndarray | None) -> torch.Tensor:
    if prev is None or m.dim() < 2:
        return m
    n_in = m.shape[1]
    if n_in % prev.size:
        return m
    return m[:, torch.from_numpy(_expand(prev, n_in // prev.size))]


@register_distance("aligned_jaccard", question="aligned overlap", representative=True)
def _aligned_jaccard(a: Any, b: Any, ctx: Context) -> float:
    """Jaccard distance after matching units (tickets: :func:`align_units`; graphs: :func:`ged_bounds`'s
    mapping), the better of both directions (so the distance is symmetric)."""
    if isinstance(a, Ticket):
        best = jaccard_distance(a, b, ctx)  # the identity is one admissible matching
        for x, y in ((a, b), (b, a)):
            inter, union = _aligned_overlap(x, y)
            best = min(best, 1.0 - inter / union if union else 0.0)
        return best
    best = jaccard_distance(a, b, ctx)
    for x, y in ((a, b), (b, a)):
        xs, ys = simple_directed(x), simple_directed(y)
        p = ged_bounds(x, y, fixed_roles=tuple(ctx.options.get("fixed_roles", ("input", "output"))))["mapping"]
        yp = permuted(ys, p)
        inter = float(xs.multiply(yp).sum())
        union = float(xs.sum() + yp.sum()) - inter
        best = min(best, 1.0 - inter / union if union else 0.0)
    return best
