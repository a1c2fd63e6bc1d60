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

from graphtickets.errors import GraphticketsError
from graphtickets.pruning.randomize import draw_degrees
from graphtickets.ticket import Ticket

__all__ = ["shuffle_within_layers", "rewire_preserving_degrees", "rewire_matrix"]

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

    One draw of :func:`graphtickets.pruning.randomize.draw_degrees`: a chain of checkerboard
    swaps whose rounds apply many non-overlapping swaps at once and sample uniformly among
    the matrices with the same margins; ``swaps_per_edge * edges`` accepted swaps. A matrix
    more than half full is rewired through its complement; margins with a single realization
    (a full block, all-or-nothing rows) come back unchanged.

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
    out, _ = draw_degrees(m, 1, rng, swaps_per_edge=swaps_per_edge)
    return out[0]


def rewire_preserving_degrees(ticket: Ticket, seed: int = 0, *, swaps_per_edge: float = 10.0) -> Ticket:
    """The ticket with each layer's edges rewired keeping every unit's in- and out-degree.

    Each layer is the bipartite graph of its mask as an ``(out, in * prod(kernel))`` matrix:
    a Linear layer's ``(out, in)`` mask; a conv layer unrolled (Hoang et al. 2023), so every
    output channel keeps its number of live weights and every (input channel, kernel
    position) keeps its fan-out -- hence every input channel keeps its total fan-out.
    Delegates to :func:`graphtickets.pruning.rewire` (checkerboard swaps, Maslov & Sneppen
    2002; ``swaps_per_edge`` accepted swaps per live weight).

    Parameters
    ----------
    ticket : Ticket
    seed : int
        Each layer draws from its own stream (``SeedSequence(seed).spawn``, in mask order).
    swaps_per_edge : float, default 10
        Milo et al. (2003) find mixing after a few swaps per edge; 10 is conservative.

    Returns
    -------
    Ticket
        Same method and config; ``meta['ablation']`` as :func:`graphtickets.pruning.rewire`
        writes it (``kind='rewire'``, ``seed``, ``swaps_per_edge``, ``swaps``, ``fixed``).

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
    from graphtickets.pruning.ablations import rewire

    return rewire(ticket, seed=seed, swaps_per_edge=swaps_per_edge)
