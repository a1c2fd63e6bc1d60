"""Distances between two tickets (or two graphs) of the same architecture.

``distance(a, b, kind, *, model=None)`` looks ``kind`` up in :data:`DISTANCES`. ``a`` and
``b`` are :class:`~graphtickets.Ticket` objects or :class:`~graphtickets.graphs.Graph` objects;
kinds that need graphs build them from tickets with ``model`` (layered graphs for ``ged_approx``
and ``degree``, relational graphs for ``spectral`` and ``netlsd``). Every distance is
symmetric, non-negative and 0 between a ticket and itself (a contract test checks each entry,
on MLP and conv tickets and on graphs).

Kinds marked *kernel-blind* below are by construction blind to where the live entries sit
inside a conv kernel: the layered and relational graphs of a conv layer have one edge per
(input channel, output channel) pair (weighted by its number of live entries), and
``layer_density`` only sees counts. Two conv tickets that differ only by moving live entries
within their kernels are at distance 0 for them; ``jaccard``, ``hamming`` and
``aligned_jaccard`` see every kernel entry. (On Linear layers every kind sees every weight.)

========================  ==============================================================
``jaccard``               1 - |A and B| / |A or B| over live weights (graphs: edges)
``hamming``               |A xor B| / number of weights (graphs: / possible edges)
``layer_density``         L1 distance between the layer-density profiles (kernel-blind)
``ged``                   graph edit distance, nodes aligned by identity (L1 cost model;
                          kernel-blind)
``ged_normalized``        ``ged / (|A|_1 + |B|_1)`` in ``[0, 1]`` (kernel-blind)
``ged_approx``            permutation-invariant GED (units matched within layers; upper bound;
                          kernel-blind)
``aligned_jaccard``       jaccard after matching units layer by layer (Hungarian)
``spectral``              L2 distance of normalized-Laplacian spectra (relational graphs;
                          kernel-blind)
``netlsd``                L2 distance of NetLSD heat-trace signatures (relational graphs;
                          kernel-blind)
``degree``                Wasserstein-1 distance between degree distributions (kernel-blind)
========================  ==============================================================

The *function* family (:mod:`graphtickets.analysis.function`) compares what two trained
tickets compute on test data: ``agreement``, ``agreement_kappa``, ``error_consistency`` and
``cka``. They need tickets carrying trained ``weights``, the architecture (``model=``, or
the ticket's recorded model spec) and ``data=`` (an iterable of ``(inputs, targets)`` test
batches); they take no graphs.

Each kind names the *question* it answers (:data:`QUESTIONS`, its test family) and one kind per
question is its representative, the one a study tests (:func:`question_representatives`):
``mask overlap`` (``jaccard``; ``hamming``, ``ged``, ``ged_normalized``), ``aligned overlap``
(``aligned_jaccard``; ``ged_approx``), ``layer allocation`` (``layer_density``), ``graph shape``
(``spectral``; ``netlsd``, ``degree``) and ``function`` (``agreement``; ``agreement_kappa``,
``error_consistency``, ``cka``).

``effective=True`` (with ``model=``) takes any structural kind on the tickets' effective masks
(:func:`~graphtickets.analysis.effective_masks`: live weights on some input -> output path).

What lives where (each module registers its kinds when imported; this package imports them
in the order of the table):

==========================  ==================================================================
``distances.registry``      :data:`DISTANCES`, :class:`DistanceSpec`, :func:`register_distance`,
                            :func:`distance` and the per-call :class:`Context` (graph cache)
``distances.overlap``       ``jaccard``, ``hamming``, ``layer_density``,
                            :func:`distance_details`; the shared mask/adjacency helpers
``distances.ged``           ``ged``, ``ged_normalized``, ``ged_approx``, :func:`ged_bounds`
``distances.alignment``     ``aligned_jaccard``, :func:`align_units`
``distances.features``      ``spectral``, ``netlsd``, ``degree``: a feature of one graph plus a
                            metric (:func:`heat_trace` and the spectra live in
                            :mod:`graphtickets.analysis.spectral`)
==========================  ==================================================================

References
----------
Each family module names its papers: ``overlap`` (Frankle et al., ICLR 2021), ``ged`` (Riesen &
Bunke 2009; Fischer et al. 2015), ``alignment`` (Ainsworth et al., Git Re-Basin, ICLR 2023),
``features`` (Tsitsulin et al., NetLSD, KDD 2018). The graphs compared are those of
Vysogorets & Kempe (JMLR 2023) and You et al. (ICML 2020).
"""

from __future__ import annotations

import importlib

from graphtickets.analysis.distances.registry import (
    DISTANCES,
    QUESTIONS,
    Context,
    DistanceSpec,
    distance,
    effective_pair,
    question_representatives,
    register_distance,
)
from graphtickets.analysis.spectral import NETLSD_TIMESCALES, heat_trace

__all__ = [
    "DISTANCES",
    "QUESTIONS",
    "question_representatives",
    "DistanceSpec",
    "Context",
    "distance",
    "distance_details",
    "ged_bounds",
    "align_units",
    "heat_trace",
    "register_distance",
    "effective_pair",
    "NETLSD_TIMESCALES",
]

# Each family module registers its kinds on import, in this order (the order of DISTANCES,
# hence of compare()'s default kinds). The function family registers from analysis.function.
for _m in ("overlap", "ged", "alignment", "features"):
    importlib.import_module(f"graphtickets.analysis.distances.{_m}")

from graphtickets.analysis.distances.alignment import align_units  # noqa: E402  (after the registrations)
from graphtickets.analysis.distances.ged import ged_bounds  # noqa: E402
from graphtickets.analysis.distances.overlap import distance_details  # noqa: E402
