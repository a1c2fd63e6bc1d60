"""graphtickets: find lottery tickets with every major method, turn them into graphs, compare them.

>>> import graphtickets as gt
>>> model = gt.models.build("mlp", in_shape=(40,), num_classes=10, widths=(32, 32))
>>> ticket = gt.pruning.prune(model, "magnitude", density=0.2)
>>> round(ticket.density, 2)
0.2
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from graphtickets._version import __version__
from graphtickets.errors import GraphticketsError

if TYPE_CHECKING:  # pragma: no cover
    import graphtickets.analysis as analysis
    import graphtickets.data as data
    import graphtickets.graphs as graphs
    import graphtickets.models as models
    import graphtickets.pruning as pruning
    import graphtickets.study as study
    import graphtickets.training as training
    from graphtickets.ticket import Ticket, check_density, prunable

__all__ = [
    "__version__",
    "Ticket",
    "prunable",
    "check_density",
    "GraphticketsError",
    "data",
    "models",
    "training",
    "pruning",
    "graphs",
    "analysis",
    "study",
]

_SUBMODULES = {"data", "models", "training", "pruning", "graphs", "analysis", "study", "ticket", "interop"}
_FROM_TICKET = {"Ticket", "prunable", "check_density"}


def __getattr__(name: str) -> Any:
    # Subpackages (and torch, which the ticket module needs) load on first use, so that
    # `import graphtickets` and the command line's start stay light (a rerun with nothing
    # to do never imports torch: graphtickets.study.rerun).
    if name in _SUBMODULES:
        return importlib.import_module(f"graphtickets.{name}")
    if name in _FROM_TICKET:
        value = getattr(importlib.import_module("graphtickets.ticket"), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module 'graphtickets' has no attribute {name!r}")
