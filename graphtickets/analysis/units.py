"""Which hidden units a ticket keeps alive, and whether two tickets keep the same ones.

A hidden unit is *live* when it lies on some input -> output path of the ticket's layered
graph (:func:`~graphtickets.analysis.effective_mask`): in- and out-degree above zero all the
way through the layers, not only locally. Two tickets keep the same units beyond chance when
their live sets overlap more than two random sets of the same sizes would: per layer the
overlap is hypergeometric, and over layers the sum of independent hypergeometrics (its exact
law by convolution).

References
----------
.. [1] A. Vysogorets, J. Kempe, "Connectivity Matters: Neural Network Pruning Through the Lens
   of Effective Sparsity", JMLR 2023 (units on no input -> output path).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import scipy.stats
from torch import nn

from graphtickets.analysis.metrics import ticket_graph
from graphtickets.analysis.structure import effective_mask
from graphtickets.ticket import Ticket

__all__ = ["live_units", "unit_overlap", "overlap_tail"]


def live_units(model: nn.Module, ticket: Ticket | None) -> pd.DataFrame:
    """Every hidden unit of the layered graph: ``layer``, ``unit``, ``in_degree``,
    ``out_degree`` and ``live`` (on some input -> output path).

    Examples
    --------
    >>> import graphtickets as gt, torch
    >>> m = gt.models.build("mlp", in_shape=(3,), num_classes=2, widths=(2,), seed=0)
    >>> t = gt.Ticket({"fc1.weight": torch.tensor([[1, 0, 0], [0, 0, 0]], dtype=torch.bool),
    ...                "classifier.weight": torch.ones(2, 2, dtype=torch.bool)})
    >>> live_units(m, t)["live"].tolist()
    [True, False]
    """
    g = ticket_graph(ticket, model, "layered")
    on_path, _ = effective_mask(g)
    a = g.adjacency
    hidden = (g.nodes["role"].astype(str) == "hidden").to_numpy()
    idx = np.flatnonzero(hidden)
    return pd.DataFrame({
        "layer": g.nodes["layer"].astype(str).to_numpy()[idx],
        "unit": g.nodes["unit"].to_numpy()[idx],
        "in_degree": np.diff(a.tocsc().indptr)[idx],
        "out_degree": np.diff(a.tocsr().indptr)[idx],
        "live": on_path[idx],
    })  # fmt: skip


def overlap_tail(observed: int, sizes: list[tuple[int, int, int]]) -> float:
    """``P(S >= observed)`` for ``S`` the sum of independent hypergeometric overlaps.

    Each ``(n, k_a, k_b)`` is a layer of ``n`` units where one set of ``k_a`` and one of
    ``k_b`` units are drawn at random; the overlap is hypergeometric and the layers add up
    (the exact law of the sum by convolving the pmfs).

    Examples
    --------
    >>> round(overlap_tail(2, [(4, 2, 2)]), 4)   # both pick the same 2 of 4: 1 / C(4, 2)
    0.1667
    """
    pmf = np.array([1.0])
    for n, ka, kb in sizes:
        support = np.arange(0, min(ka, kb) + 1)
        pmf = np.convolve(pmf, scipy.stats.hypergeom.pmf(support, n, ka, kb))
    return float(min(1.0, pmf[int(observed):].sum())) if observed < pmf.size else 0.0


def unit_overlap(model: nn.Module, a: Ticket, b: Ticket) -> pd.DataFrame:
    """Do two tickets keep the same hidden units alive? One row per layer and one ``"all"``.

    Returns
    -------
    pandas.DataFrame
        ``layer``, ``units``, ``live_a``, ``live_b``, ``both`` (live in both), ``expected``
        (``live_a * live_b / units`` per layer, summed for ``all``), ``p`` (``P(overlap >=
        both)`` for two random sets of the same sizes: ``hypergeom.sf`` per layer, the exact
        convolution over layers for ``all``) and ``note`` (a layer where one ticket keeps all
        units or none cannot show anything: ``p = 1``).

    References
    ----------
    Vysogorets & Kempe (2023).
    """
    ua, ub = live_units(model, a), live_units(model, b)
    rows: list[dict[str, Any]] = []
    sizes = []
    for layer, ga in ua.groupby("layer", sort=False):
        la = ga["live"].to_numpy()
        lb = ub.loc[ub["layer"] == layer, "live"].to_numpy()
        n, ka, kb, both = la.size, int(la.sum()), int(lb.sum()), int((la & lb).sum())
        sizes.append((n, ka, kb))
        trivial = ka in (0, n) or kb in (0, n)
        p = 1.0 if trivial else float(scipy.stats.hypergeom.sf(both - 1, n, ka, kb))
        rows.append({"layer": layer, "units": n, "live_a": ka, "live_b": kb, "both": both, "expected": ka * kb / n,
                     "p": p, "note": "a ticket keeps all units or none: nothing to test" if trivial else ""})  # fmt: skip
    tot = pd.DataFrame(rows)
    rows.append({"layer": "all", "units": int(tot["units"].sum()), "live_a": int(tot["live_a"].sum()),
                 "live_b": int(tot["live_b"].sum()), "both": int(tot["both"].sum()),
                 "expected": float(tot["expected"].sum()), "p": overlap_tail(int(tot["both"].sum()), sizes), "note": ""})  # fmt: skip
    return pd.DataFrame(rows)
