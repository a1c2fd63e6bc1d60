"""Null models of a ticket: masks shuffled within layers, and masks rewired keeping degrees.

A property a ticket shares with its nulls is explained by what the null keeps: the layer
densities (``shuffle_within_layers``) or, in addition, every unit's fan-in and fan-out
(``rewire_preserving_degrees``).

References
----------
.. [1] J. Frankle, G. K. Dziugaite, D. M. Roy, M. Carbin, "Pruning Neural Networks at
   Initialization: Why are We Missing the Mark?", ICLR 2021 (layer-wise shuffling).
.. [2] S. Maslov, K. Sneppen, "Specificity and stability in topology of protein networks",
   Science 296, 2002 (degree-preserving edge swaps).
.. [3] R. Milo, N. Kashtan, S. Itzkovitz, M. E. J. Newman, U. Alon, "On the uniform generation
   of random graphs with prescribed degree sequences", arXiv:cond-mat/0312028, 2003.
"""

from __future__ import annotations

import numpy as np
import torch

from graphtickets.errors import GraphticketsError
from graphtickets.ticket import Ticket

__all__ = ["shuffle_within_layers", "rewire_preserving_degrees", "rewire_matrix"]

_MAX_ROUNDS = 10_000


def shuffle_within_layers(ticket: Ticket, seed: int = 0) -> Ticket:
    """The ticket with each layer's mask randomly permuted (same kept count per layer).

    Delegates to :func:`graphtickets.pruning.ablations.shuffle` (torch generator seeded with
    ``seed``); ``meta['ablation']`` records it.

    Examples
    --------
    >>> import torch
    >>> t = Ticket({"w": torch.tensor([[True, False], [False, False]])})
    >>> shuffle_within_layers(t, seed=1).layer_counts() == t.layer_counts()
    True

    References
    ----------
    Frankle et al., ICLR 2021.
    """
    from graphtickets.pruning.ablations import shuffle

    return shuffle(ticket, seed=seed)


def rewire_matrix(m: np.ndarray, rng: np.random.Generator, swaps_per_edge: float = 10.0) -> np.ndarray:
    """Degree-preserving random rewiring of a boolean matrix (row and column sums kept).

    Vectorized checkerboard swaps: each round pairs up the edges at random (disjoint pairs),
    proposes ``(r1, c1), (r2, c2) -> (r1, c2), (r2, c1)`` for every pair, and accepts the
    proposals whose two new cells are empty and not proposed twice in the round; accepted
    swaps touch disjoint edges and disjoint empty cells, so they apply at once. Rounds repeat
    until ``swaps_per_edge * edges`` swaps were accepted (or no swap can be). A matrix more
    than half full is rewired through its complement (same degrees, more room to swap).

    Parameters
    ----------
    m : numpy.ndarray
        2-D boolean.
    rng : numpy.random.Generator
    swaps_per_edge : float, default 10

    Returns
    -------
    numpy.ndarray
        Boolean, same shape, same row and column sums.
    """
    m = np.asarray(m, dtype=bool)
    if m.ndim != 2:
        raise GraphticketsError("rewire_matrix takes a 2-D boolean matrix")
    if m.sum() * 2 > m.size:
        return ~rewire_matrix(~m, rng, swaps_per_edge)
    rows, cols = np.nonzero(m)
    e = rows.size
    if e < 2 or m.shape[0] < 2 or m.shape[1] < 2:
        return m.copy()
    cur = m.copy()
    ncols = m.shape[1]
    target = int(swaps_per_edge * e)
    done, stale = 0, 0
    for _ in range(_MAX_ROUNDS):
        if done >= target:
            break
        perm = rng.permutation(e)
        half = e // 2
        i, j = perm[:half], perm[half : 2 * half]
        r1, c1, r2, c2 = rows[i], cols[i], rows[j], cols[j]
        ok = (r1 != r2) & (c1 != c2) & ~cur[r1, c2] & ~cur[r2, c1]
        new = np.concatenate([r1 * ncols + c2, r2 * ncols + c1])
        uniq, counts = np.unique(new[np.concatenate([ok, ok])], return_counts=True)
        dup = uniq[counts > 1]
        if dup.size:
            ok &= ~np.isin(r1 * ncols + c2, dup) & ~np.isin(r2 * ncols + c1, dup)
        k = int(ok.sum())
        if k == 0:
            stale += 1
            if stale > 50:  # no admissible swap (e.g. a full block): nothing to rewire
                break
            continue
        stale = 0
        i, j = i[ok], j[ok]
        r1, c1, r2, c2 = r1[ok], c1[ok], r2[ok], c2[ok]
        cur[r1, c1] = False
        cur[r2, c2] = False
        cur[r1, c2] = True
        cur[r2, c1] = True
        cols[i], cols[j] = c2, c1
        done += k
    return cur


def rewire_preserving_degrees(ticket: Ticket, seed: int = 0, *, swaps_per_edge: float = 10.0) -> Ticket:
    """The ticket with each layer's edges rewired keeping every unit's in- and out-degree.

    Each layer is the bipartite graph of its mask as an ``(out, in * prod(kernel))`` matrix:
    a Linear layer's ``(out, in)`` mask; a conv layer unrolled (Hoang et al. 2023), so every
    output channel keeps its number of live weights and every (input channel, kernel
    position) keeps its fan-out -- hence every input channel keeps its total fan-out. Swaps
    are the checkerboard swaps of :func:`rewire_matrix` (Maslov & Sneppen 2002),
    ``swaps_per_edge`` accepted swaps per live weight.

    Parameters
    ----------
    ticket : Ticket
    seed : int
        Each layer draws from its own stream (``SeedSequence(seed).spawn``), in mask order.
    swaps_per_edge : float, default 10
        Milo et al. (2003) find mixing after a few swaps per edge; 10 is conservative.

    Returns
    -------
    Ticket
        Same method and config; ``meta['ablation'] = {'kind': 'rewire', 'seed', 'swaps_per_edge'}``.

    Examples
    --------
    >>> import torch
    >>> t = Ticket({"w": torch.eye(4, dtype=torch.bool)})
    >>> r = rewire_preserving_degrees(t, seed=0)
    >>> r.masks["w"].sum(0).tolist(), r.masks["w"].sum(1).tolist()
    ([1, 1, 1, 1], [1, 1, 1, 1])

    References
    ----------
    Maslov & Sneppen, Science 2002; Milo et al. 2003; Hoang et al., ICLR 2023 (unrolled convs).
    """
    streams = np.random.SeedSequence(seed).spawn(len(ticket.masks))
    masks = {}
    for (name, m), ss in zip(ticket.masks.items(), streams, strict=True):
        if m.dim() < 2:
            masks[name] = m.clone()
            continue
        flat = m.reshape(m.shape[0], -1).numpy()
        out = rewire_matrix(flat, np.random.default_rng(ss), swaps_per_edge)
        masks[name] = torch.from_numpy(out.reshape(tuple(m.shape)).copy())
    return ticket.replace(masks, ablation={"kind": "rewire", "seed": seed, "swaps_per_edge": swaps_per_edge, "of": ticket.method})
