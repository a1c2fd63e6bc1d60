"""Random masks that keep one statistic of a ticket: the ladder of nulls, drawn in batches.

Every draw keeps exactly one statistic of a ticket's masks and randomizes everything else,
uniformly among the masks that share it. From least to most kept (:data:`LEVELS`):

=============  ===========================================================================
``global``     the total number of kept weights (all prunable layers shuffled together:
               uniform random at the ticket's global density; the reference "nothing kept")
``layer``      every layer's kept count (each layer's mask permuted; Frankle et al. 2021)
``fan_in``     every unit's kept fan-in: each row of a layer's ``(out, -1)`` matrix permuted
``degrees``    every unit's fan-in and every input's fan-out: the layer's bipartite graph
               rewired by checkerboard swaps (Maslov & Sneppen 2002)
=============  ===========================================================================

A layer is its mask seen as an ``(out, -1)`` matrix: a Linear weight's ``(out, in)`` mask; a
conv weight's ``(out, in * prod(kernel))`` mask, unrolled with its kernel positions (Hoang et
al. 2023). For a conv layer ``fan_in`` keeps every output channel's number of live kernel
entries (positions inside the row of ``in * k * k`` entries permuted), and ``degrees`` keeps in
addition the fan-out of every (input channel, kernel position) -- hence of every input
channel. A 1-D mask is one row.

This module sits below both :mod:`graphtickets.pruning` (the trained ablations
:func:`~graphtickets.pruning.in_degree` and :func:`~graphtickets.pruning.rewire`) and
:mod:`graphtickets.analysis` (:func:`~graphtickets.analysis.null_ladder`); it draws numpy
arrays ``(n, *shape)``, vectorized over draws and weights.

References
----------
.. [1] J. Frankle, G. K. Dziugaite, D. M. Roy, M. Carbin, "Pruning Neural Networks at
   Initialization: Why are We Missing the Mark?", ICLR 2021 (layer-wise shuffling).
.. [2] S. Maslov, K. Sneppen, "Specificity and stability in topology of protein networks",
   Science 296, 2002 (degree-preserving edge swaps).
.. [3] H. J. Ryser, "Combinatorial properties of matrices of zeros and ones", Canadian J.
   Math. 9, 1957 (any two 0/1 matrices with the same margins are joined by checkerboard swaps).
.. [4] R. Milo, N. Kashtan, S. Itzkovitz, M. E. J. Newman, U. Alon, "On the uniform generation
   of random graphs with prescribed degree sequences", arXiv:cond-mat/0312028, 2003.
.. [5] D. N. Hoang et al., "Revisiting Pruning at Initialization through the Lens of Ramanujan
   Graph", ICLR 2023 (the unrolled conv layer).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from graphtickets.errors import GraphticketsError

__all__ = [
    "LEVELS", "SeedLike", "as_rows", "draw_layer", "draw_fan_in", "draw_degrees", "fixed_reason", "draw_masks",
    "seed_sequence",
]  # fmt: skip

#: The null levels, from least to most kept.
LEVELS = ("global", "layer", "fan_in", "degrees")

#: The chance that a pair of edges is proposed for a swap in a round of :func:`draw_degrees`.
_ACTIVE = 0.8

#: Draws of :func:`draw_degrees` run together (one chain per draw, in blocks of this many).
_BLOCK = 64

#: A seed: an int, a sequence of ints (e.g. ``(base, group, sample)``) or a SeedSequence.
SeedLike = int | Sequence[int] | np.random.SeedSequence


def seed_sequence(seed: SeedLike) -> np.random.SeedSequence:
    """``seed`` as a :class:`numpy.random.SeedSequence` (ints and tuples of ints as entropy)."""
    if isinstance(seed, np.random.SeedSequence):
        return seed
    if isinstance(seed, (int, np.integer)):
        return np.random.SeedSequence(int(seed) % 2**63)
    return np.random.SeedSequence([int(s) % 2**63 for s in seed])


def as_rows(mask: np.ndarray | torch.Tensor) -> np.ndarray:
    """A mask as the boolean ``(out, -1)`` matrix the levels work on (a 1-D mask is one row)."""
    m = mask.detach().cpu().numpy() if isinstance(mask, torch.Tensor) else np.asarray(mask)
    m = m.astype(bool, copy=False)
    return m.reshape(1, -1) if m.ndim < 2 else m.reshape(m.shape[0], -1)


def draw_layer(mask: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` uniform random permutations of a mask (any shape): ``(n, *mask.shape)``, same count.

    Each draw is a uniform random set of ``count`` positions (``Generator.choice`` without
    replacement of the rarer of kept and pruned positions: cheap for sparse tickets).

    Examples
    --------
    >>> d = draw_layer(np.array([True, False, False]), 4, np.random.default_rng(0))
    >>> d.shape, d.sum(axis=1).tolist()
    ((4, 3), [1, 1, 1, 1])
    """
    m = np.asarray(mask, dtype=bool)
    k, size = int(m.sum()), m.size
    minority = min(k, size - k)  # draw the rarer of kept / pruned positions
    out = np.full((n, size), k > size - k)
    for d in range(n):  # a loop over draws; each draw picks its positions in C (Floyd / a partial shuffle)
        out[d, rng.choice(size, minority, replace=False)] = k <= size - k
    return out.reshape((n, *m.shape))


def draw_fan_in(mask: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` draws of a 2-D mask with each row permuted on its own: every row sum kept.

    Examples
    --------
    >>> m = np.array([[True, True, False, False], [False, False, False, True]])
    >>> d = draw_fan_in(m, 3, np.random.default_rng(0))
    >>> d.sum(axis=2).tolist()
    [[2, 1], [2, 1], [2, 1]]
    """
    m = np.asarray(mask, dtype=bool)
    if m.ndim != 2:
        raise GraphticketsError(f"draw_fan_in takes a 2-D mask (rows = units), got shape {m.shape}; see as_rows")
    return rng.permuted(np.broadcast_to(m, (n, *m.shape)), axis=2)


def _rigid(m: np.ndarray) -> bool:
    """True when no checkerboard swap applies: the only matrix with these row and column sums.

    Ryser (1957): two matrices with the same margins are joined by checkerboard swaps, so the
    margins have one realization exactly when ``m`` has no 2x2 submatrix ``[[1, 0], [0, 1]]``
    (or its mirror): no rows ``r1 != r2`` where each keeps a column the other does not.
    """
    a = m.astype(np.float32)
    only = a @ (1.0 - a).T  # only[r1, r2]: columns kept by r1 and not by r2
    return not bool(np.any((only > 0) & (only.T > 0)))


def fixed_reason(mask: np.ndarray, level: str) -> str | None:
    """Why ``level`` cannot change this 2-D mask at all (None when it can).

    ``layer``: the layer is empty or full; ``fan_in``: every row is empty or full;
    ``degrees``: its row and column sums have one realization (no checkerboard swap: e.g. a
    complete bipartite block, or all-or-nothing rows). ``global`` is decided on the whole
    ticket by :func:`draw_masks`.

    Examples
    --------
    >>> fixed_reason(np.eye(3, dtype=bool), "fan_in") is None
    True
    >>> fixed_reason(np.ones((2, 3), dtype=bool), "degrees")
    'full (all weights kept)'
    """
    m = np.asarray(mask, dtype=bool)
    k, size = int(m.sum()), m.size
    if k == 0:
        return "empty (no weight kept)"
    if k == size:
        return "full (all weights kept)"
    if level == "layer" or level == "global":
        return None
    rows = m.sum(axis=1)
    if level == "fan_in":
        return None if np.any((rows > 0) & (rows < m.shape[1])) else "every unit keeps all or none of its inputs"
    if level == "degrees":
        return "one realization of its fan-ins and fan-outs (no checkerboard swap)" if _rigid(m) else None
    raise GraphticketsError(f"level must be one of {', '.join(LEVELS)}, got {level!r}")


def _clashing(cells: np.ndarray, scratch: np.ndarray) -> np.ndarray:
    """``(4, K)`` cell ids of K proposals (old, old, new, new) -> bool ``(K,)``: the proposal's
    box shares a cell with another proposal's box.

    Old cells are distinct edges (and never the same proposal's new cells), so a clash is a new cell proposed twice (found by sorting
    the new cells) or a new cell that is another proposal's old cell (found by marking the new
    cells in ``scratch``, an all-False bool array over every cell, left all-False again).
    """
    new = cells[2:].reshape(-1)
    order = np.argsort(new)
    s = new[order]
    eq = s[1:] == s[:-1]
    dup_sorted = np.zeros(new.size, dtype=bool)
    dup_sorted[1:] |= eq
    dup_sorted[:-1] |= eq
    dup = np.empty_like(dup_sorted)
    dup[order] = dup_sorted
    clash = dup.reshape(2, -1).any(axis=0)
    scratch[new] = True
    old_hit = scratch[cells[:2]]  # an old cell another proposal wants
    scratch[new] = False
    return clash | old_hit.any(axis=0)


def _swap_round(
    occ: np.ndarray, cols: np.ndarray, rows: np.ndarray, ncols: int, rng: np.random.Generator, scratch: np.ndarray
) -> np.ndarray:
    """One round of the chain on every draw at once; returns the accepted swaps per draw.

    ``occ``: flat ``(n * R * C,)`` occupancy; ``cols``: ``(n, E)`` column of every edge (edge
    ``e`` stays in row ``rows[e]``). The edges of each draw are paired at random and each pair
    is active with probability :data:`_ACTIVE`, both independently of the state; an active
    pair ``(r1, c1), (r2, c2)`` with ``r1 != r2``, ``c1 != c2`` is a candidate, its *box* the
    cells ``{r1, r2} x {c1, c2}``. A candidate whose box shares a cell with another
    candidate's box is dropped; the others swap to ``(r1, c2), (r2, c1)`` when both cells are
    empty. Boxes do not change under their own swap and touch no other kept box, so for a
    fixed pairing and activity the round is an involution between states: the chain is
    symmetric and its stationary law is uniform over the matrices with the given margins.
    A round with a single active pair is a single swap, so every swap of Ryser's theorem can
    happen alone (without the activity coin, swaps can be forced to come in groups and
    some matrices are never reached).
    """
    n, e = cols.shape
    half = e // 2
    perm = rng.permuted(np.broadcast_to(np.arange(e, dtype=cols.dtype), (n, e)), axis=1)
    i, j = perm[:, :half], perm[:, half : 2 * half]
    r1, r2 = rows[i], rows[j]
    c1, c2 = np.take_along_axis(cols, i, 1), np.take_along_axis(cols, j, 1)
    active = rng.random(r1.shape) < _ACTIVE  # drawn before looking at the state
    d, p = np.nonzero(active & (r1 != r2) & (c1 != c2))
    if d.size == 0:
        return np.zeros(n, dtype=np.int64)
    r1, r2, c1, c2 = r1[d, p], r2[d, p], c1[d, p], c2[d, p]
    base = d.astype(cols.dtype) * (occ.size // n)
    cells = np.stack([base + r1 * ncols + c1, base + r2 * ncols + c2, base + r1 * ncols + c2, base + r2 * ncols + c1])
    ok = ~_clashing(cells, scratch) & ~occ[cells[2]] & ~occ[cells[3]]
    cells = cells[:, ok]
    occ[cells[0]] = False
    occ[cells[1]] = False
    occ[cells[2]] = True
    occ[cells[3]] = True
    d, p = d[ok], p[ok]
    cols[d, i[d, p]] = c2[ok]
    cols[d, j[d, p]] = c1[ok]
    return np.bincount(d, minlength=n)


def draw_degrees(
    mask: np.ndarray, n: int, rng: np.random.Generator, *, swaps_per_edge: float = 10.0, max_rounds: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` degree-preserving rewirings of a 2-D mask (every row and column sum kept).

    A Markov chain of checkerboard swaps ``(r1, c1), (r2, c2) -> (r1, c2), (r2, c1)``
    (Maslov & Sneppen 2002), run on all ``n`` draws at once from the mask itself. Each round
    pairs up every draw's edges at random and applies all non-overlapping swaps together
    (see :func:`_swap_round`: the rounds are symmetric, so the chain samples uniformly among
    the matrices with these margins; Ryser 1957 makes it irreducible). Rounds go on until
    every draw has made ``ceil(swaps_per_edge * edges)`` accepted swaps (Milo et al. 2003
    find mixing after a few swaps per edge; 10 is conservative) or ``max_rounds`` (default
    ``50 * swaps_per_edge + 100``) ran. A mask more than half full is rewired through its
    complement (same margins, more room). Margins with a single realization (see
    :func:`fixed_reason`) come back unchanged, with 0 swaps.

    Parameters
    ----------
    mask : numpy.ndarray
        2-D boolean.
    n : int
        Number of draws.
    rng : numpy.random.Generator
    swaps_per_edge : float, default 10
    max_rounds : int, optional

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        The draws ``(n, R, C)`` and the accepted swaps of each draw ``(n,)``.

    Examples
    --------
    >>> m = np.eye(4, dtype=bool)
    >>> d, swaps = draw_degrees(m, 2, np.random.default_rng(0))
    >>> d.sum(axis=1).tolist(), d.sum(axis=2).tolist()
    ([[1, 1, 1, 1], [1, 1, 1, 1]], [[1, 1, 1, 1], [1, 1, 1, 1]])
    """
    m = np.asarray(mask, dtype=bool)
    if m.ndim != 2:
        raise GraphticketsError(f"draw_degrees takes a 2-D mask (rows = units), got shape {m.shape}; see as_rows")
    if n > _BLOCK:  # blocks of draws keep the occupancy in cache (about a third faster than one block)
        parts = [draw_degrees(m, min(_BLOCK, n - s), rng, swaps_per_edge=swaps_per_edge, max_rounds=max_rounds)
                 for s in range(0, n, _BLOCK)]  # fmt: skip
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    if 2 * int(m.sum()) > m.size:
        out, swaps = draw_degrees(~m, n, rng, swaps_per_edge=swaps_per_edge, max_rounds=max_rounds)
        return ~out, swaps
    out = np.tile(m, (n, 1, 1))
    rows, cols0 = np.nonzero(m)
    small = np.int32 if out.size < 2**31 else np.int64  # cell ids fit: half the memory traffic
    rows, cols0 = rows.astype(small), cols0.astype(small)
    swaps = np.zeros(n, dtype=np.int64)
    if rows.size < 2 or _rigid(m):
        return out, swaps
    occ = out.reshape(-1)  # a view (out is C-contiguous): the rounds write into out
    cols = np.tile(cols0, (n, 1))
    target = math.ceil(swaps_per_edge * rows.size)
    rounds = int(50 * swaps_per_edge + 100) if max_rounds is None else int(max_rounds)
    scratch = np.zeros(occ.size, dtype=bool)
    for _ in range(rounds):
        swaps += _swap_round(occ, cols, rows, m.shape[1], rng, scratch)
        if swaps.min() >= target:
            break
    return out, swaps


def _layer_streams(seed: SeedLike, names: Sequence[str]) -> dict[str, np.random.Generator]:
    return {nm: np.random.default_rng(ss) for nm, ss in zip(names, seed_sequence(seed).spawn(len(names)), strict=True)}


def draw_masks(
    masks: Mapping[str, torch.Tensor | np.ndarray], level: str, n: int, seed: SeedLike = 0, *, swaps_per_edge: float = 10.0,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """``n`` null draws of a ticket's masks at one level of :data:`LEVELS`.

    Parameters
    ----------
    masks : mapping of str to tensor or array
        The ticket's masks (``ticket.masks``).
    level : {"global", "layer", "fan_in", "degrees"}
    n : int
        Number of draws.
    seed : int, sequence of int or SeedSequence
        Layers draw from independent streams (``SeedSequence(seed).spawn``, in mask order;
        ``global`` from one stream); the same seed gives the same bits.
    swaps_per_edge : float, default 10
        For ``degrees`` (see :func:`draw_degrees`).

    Returns
    -------
    (dict, dict)
        ``{name: bool array (n, *mask.shape)}`` and what was done: ``fixed`` (``{layer:
        reason}`` for layers the level cannot change, kept as they are -- see
        :func:`fixed_reason`) and, for ``degrees``, ``swaps`` (``{layer: accepted swaps per
        edge, least over the draws}``).

    Examples
    --------
    >>> import torch
    >>> draws, info = draw_masks({"w": torch.eye(3, dtype=torch.bool)}, "fan_in", 5, seed=0)
    >>> draws["w"].shape, (draws["w"].sum(axis=2) == 1).all()
    ((5, 3, 3), np.True_)
    """
    if level not in LEVELS:
        raise GraphticketsError(f"level must be one of {', '.join(LEVELS)}, got {level!r}")
    if n < 1:
        raise GraphticketsError(f"the number of draws must be at least 1, got {n}")
    arrays = {nm: (m.detach().cpu().numpy() if isinstance(m, torch.Tensor) else np.asarray(m)).astype(bool) for nm, m in masks.items()}
    info: dict[str, Any] = {"fixed": {}}
    if level == "global":
        flat = np.concatenate([a.reshape(-1) for a in arrays.values()])
        reason = fixed_reason(flat.reshape(1, -1), "global")
        if reason is not None:
            info["fixed"] = {"(all layers)": reason}
        drawn = draw_layer(flat, n, np.random.default_rng(seed_sequence(seed)))
        bounds = np.cumsum([0] + [a.size for a in arrays.values()])
        return {nm: drawn[:, bounds[k] : bounds[k + 1]].reshape((n, *a.shape)) for k, (nm, a) in enumerate(arrays.items())}, info
    rngs = _layer_streams(seed, list(arrays))
    out: dict[str, np.ndarray] = {}
    if level == "degrees":
        info["swaps"] = {}
    for nm, a in arrays.items():
        rows = as_rows(a)
        reason = fixed_reason(rows, level)
        if reason is not None:
            info["fixed"][nm] = reason
        if level == "layer":
            out[nm] = draw_layer(a, n, rngs[nm])
        elif level == "fan_in":
            out[nm] = draw_fan_in(rows, n, rngs[nm]).reshape((n, *a.shape))
        else:
            d, swaps = draw_degrees(rows, n, rngs[nm], swaps_per_edge=swaps_per_edge)
            out[nm] = d.reshape((n, *a.shape))
            info["swaps"][nm] = float(swaps.min() / max(int(min(rows.sum(), (~rows).sum())), 1))
    return out, info
