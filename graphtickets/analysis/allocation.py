"""Do methods allocate density alike? Concordance of layer-density profiles, tested.

Each ticket's layer-density profile ranks the layers from the one it keeps most of to the one
it prunes hardest. Tickets that allocate alike rank the layers alike: Kendall's coefficient
of concordance ``W`` over the tickets (1 = the same ranking, 0 = none in common) measures it,
and a permutation test -- each ticket's values shuffled across layers on its own -- gives its
p-value under "no shared allocation". With a ``reference`` profile (e.g. the ERK or
uniform-random profile at the same density) the test is run on the deviations from it, so
that "alike" means alike beyond what the reference predicts.

References
----------
.. [1] M. G. Kendall, B. Babington Smith, "The problem of m rankings", Ann. Math. Statist. 10,
   1939 (the coefficient of concordance).
.. [2] U. Evci, T. Gale, J. Menick, P. S. Castro, E. Elsen, "Rigging the Lottery: Making All
   Tickets Winners", ICML 2020 (the ERK allocation).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.stats

from graphtickets.errors import GraphticketsError
from graphtickets.pruning.randomize import SeedLike, seed_sequence
from graphtickets.ticket import Ticket

__all__ = ["AllocationTest", "kendall_w", "shared_allocation", "density_profiles"]


@dataclass(frozen=True)
class AllocationTest:
    """:func:`shared_allocation`'s result.

    Attributes
    ----------
    statistic : float
        Kendall's W (tie-corrected) of the profiles across layers.
    p : float
        ``(1 + n_as_extreme) / (1 + n_null)``: the one-sided permutation p-value.
    n_null, n_as_extreme : int
        Permutations drawn, and those with ``W >= statistic``.
    mean_spearman : float
        The mean pairwise Spearman correlation, ``(m W - 1) / (m - 1)`` without ties.
    n_tickets, n_layers : int
    """

    statistic: float
    p: float
    n_null: int
    n_as_extreme: int
    mean_spearman: float
    n_tickets: int
    n_layers: int


def _w(ranks: np.ndarray) -> np.ndarray:
    """Kendall's W of rank arrays ``(..., m, n)`` with the tie correction."""
    m, n = ranks.shape[-2], ranks.shape[-1]
    total = ranks.sum(-2)
    s = ((total - total.mean(-1, keepdims=True)) ** 2).sum(-1)
    ties = np.zeros(ranks.shape[:-1])
    srt = np.sort(ranks, axis=-1)
    # tie correction sum(t^3 - t) per rater: count of equal average ranks
    for j in range(n):
        t = (srt == srt[..., j : j + 1]).sum(-1)
        ties += (t**3 - t) / t  # each tied group of t adds t^3 - t once (t members, /t each)
    denom = m**2 * (n**3 - n) - m * ties.sum(-1)
    return np.where(denom > 0, 12.0 * s / np.where(denom > 0, denom, 1.0), np.nan)


def kendall_w(x: np.ndarray) -> float:
    """Kendall's coefficient of concordance of ``x`` ``(raters, items)`` (ties: average ranks).

    Examples
    --------
    >>> kendall_w(np.array([[1, 2, 3], [1, 2, 3]]))
    1.0
    >>> kendall_w(np.array([[1, 2, 3], [3, 2, 1]]))
    0.0
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 2:
        raise GraphticketsError(f"Kendall's W needs at least 2 raters x 2 items, got shape {x.shape}")
    return float(_w(scipy.stats.rankdata(x, axis=1)))


def density_profiles(tickets: Mapping[str, Ticket]) -> pd.DataFrame:
    """The layer densities of each ticket: rows tickets, columns layers (mask order)."""
    return pd.DataFrame({n: t.layer_densities() for n, t in tickets.items()}).T


def shared_allocation(
    profiles: pd.DataFrame | np.ndarray | Mapping[str, Ticket],
    *,
    reference: Sequence[float] | np.ndarray | None = None,
    permutations: int = 9999,
    seed: SeedLike = 0,
) -> AllocationTest:
    """Test whether several tickets allocate density across layers alike.

    Parameters
    ----------
    profiles : DataFrame, array or mapping of str to Ticket
        ``(tickets, layers)`` layer densities (tickets of one model at one global density),
        or the tickets themselves (:func:`density_profiles`).
    reference : sequence of float, optional
        A profile subtracted from every row first (ERK's or another method's), so that the
        concordance is of the deviations from it.
    permutations : int, default 9999
        Null draws: every ticket's values permuted across layers independently.
    seed : int, sequence of int or SeedSequence

    Returns
    -------
    AllocationTest
        Kendall's W, its permutation p-value, the counts behind it and the mean Spearman rho.

    Examples
    --------
    >>> r = shared_allocation(np.array([[0.1, 0.3, 0.2, 0.9]] * 4), permutations=999)
    >>> r.statistic, r.p
    (1.0, 0.001)

    References
    ----------
    Kendall & Babington Smith (1939).
    """
    if isinstance(profiles, Mapping):
        profiles = density_profiles(profiles)
    x = np.asarray(profiles, dtype=np.float64)
    if reference is not None:
        ref = np.asarray(reference, dtype=np.float64)
        if ref.shape != (x.shape[1],):
            raise GraphticketsError(f"reference has shape {ref.shape}; the profiles have {x.shape[1]} layers")
        x = x - ref
    w = kendall_w(x)
    ranks = scipy.stats.rankdata(x, axis=1)
    rng = np.random.default_rng(seed_sequence(seed))
    null = _w(rng.permuted(np.broadcast_to(ranks, (int(permutations), *ranks.shape)), axis=2))
    hits = int(np.sum(null >= w - 1e-12))
    m = x.shape[0]
    return AllocationTest(statistic=w, p=(1 + hits) / (1 + int(permutations)), n_null=int(permutations),
                          n_as_extreme=hits, mean_spearman=(m * w - 1) / (m - 1), n_tickets=m, n_layers=x.shape[1])  # fmt: skip
