"""Pruning methods: one module per method, a registry, and the :func:`prune` front end.

What lives where: ``core`` (the registry :data:`METHODS`, :class:`MethodSpec`,
:class:`MethodResult` that every method returns, :func:`prune` and :func:`make_ticket` that
turn it into a Ticket with provenance, :class:`ScoringOptions` and :func:`score_prune`, the
driver of every scoring method); ``select`` (top-k selection); one module per method
(``baselines``: random and magnitude, ``snip``, ``grasp``, the ``synflow`` subpackage (the method,
its fast ``engine`` and its autograd-free flow ``program``), ``imp`` with ``trajectory``,
``early_bird`` with its rule ``early_bird_rule`` and the channel structure ``channels``,
``gem_miner``, ``elastic``; the ``sparse_training`` subpackage: ``set``, ``rigl``, ``gmp`` and
``smart_ratio``); ``derived`` (tickets built from the structure other tickets share: consensus,
profile, degrees, local; with ``_counting``, the mask counting shared with ``analysis``;
``relational`` is registered by :mod:`graphtickets.graphs.derived`, which needs the graph code);
``ablations`` (shuffle, in_degree, rewire, reinit, inverted scores; the registry
:data:`ABLATIONS`), ``randomize`` (the ladder of null masks, drawn in batches) and ``collapse`` (layer collapse).

Imports point one way: this package imports ``ticket``, ``models``, ``data``, ``training`` and
the low modules ``_json``/``_trace``/``_registry``, never ``graphs``, ``analysis`` or ``study``.

>>> import graphtickets as gt
>>> "magnitude" in gt.pruning.METHODS
True
"""

from __future__ import annotations

import importlib
import sys

from graphtickets.pruning.ablations import (
    ABLATIONS,
    AblationSpec,
    in_degree,
    invert_scores,
    reinit,
    rewire,
    shuffle,
)
from graphtickets.pruning.collapse import collapsed_layers
from graphtickets.pruning.core import (
    DATA_USES,
    METHODS,
    SCORING_OPTIONS,
    MethodResult,
    MethodSpec,
    ScoringOptions,
    make_ticket,
    masked_copy,
    prune,
    register_method,
    register_scorer,
    resolve_params,
    schedule_densities,
    score_prune,
)
from graphtickets.pruning.select import keep_count, select_topk

__all__ = [
    "METHODS",
    "MethodSpec",
    "MethodResult",
    "ScoringOptions",
    "SCORING_OPTIONS",
    "DATA_USES",
    "prune",
    "make_ticket",
    "register_method",
    "register_scorer",
    "score_prune",
    "schedule_densities",
    "select_topk",
    "keep_count",
    "masked_copy",
    "resolve_params",
    "shuffle",
    "in_degree",
    "rewire",
    "reinit",
    "ABLATIONS",
    "AblationSpec",
    "invert_scores",
    "collapsed_layers",
    "imp_rounds",
    "imp_rounds_many",
    "imp_trajectory_many",
    "imp_at",
    "family",
    "held_out_sources",
    "init_seed",
]

# Each module registers its methods on import. Add new method modules here.
_METHOD_MODULES = [
    "baselines",
    "snip",
    "grasp",
    "synflow",
    "imp",
    "early_bird",
    "gem_miner",
    "elastic",
    "derived",  # tickets built from other tickets (consensus, profile, degrees, local)
    "sparse_training",  # set, rigl, gmp (train sparse / prune while training), smart_ratio
    "trajectory",  # after the methods: attaches MethodSpec.trajectory (IMP's rounds)
]

for _m in _METHOD_MODULES:
    importlib.import_module(f"graphtickets.pruning.{_m}")

from graphtickets.pruning.derived import held_out_sources, init_seed  # noqa: E402  (after the registrations)
from graphtickets.pruning.imp import family, imp_at, imp_rounds, imp_rounds_many  # noqa: E402  (after the registrations)
from graphtickets.pruning.synflow import engine as synflow_engine  # noqa: E402
from graphtickets.pruning.synflow import program as synflow_program  # noqa: E402
from graphtickets.pruning.trajectory import imp_trajectory_many  # noqa: E402

# The flat names of SynFlow's modules before the subpackage (issue 29): the same module objects,
# so ``graphtickets.pruning.synflow_engine.PROGRAM = False`` still switches the engine.
sys.modules[f"{__name__}.synflow_engine"] = synflow_engine
sys.modules[f"{__name__}.synflow_program"] = synflow_program
