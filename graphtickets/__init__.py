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
from graphtickets.ticket import Ticket, check_density, prunable

if TYPE_CHECKING:  # pragma: no cover
    import graphtickets.analysis as analysis
    import graphtickets.data as data
    import graphtickets.graphs as graphs
    import graphtickets.models as models
    import graphtickets.pruning as pruning
    import graphtickets.study as study
    import graphtickets.training as training

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

_SUBMODULES = {"data", "models", "training", "pruning", "graphs", "analysis", "study"}


def __getattr__(name: str) -> Any:
    # Subpackages load on first use so that `import graphtickets` stays light.
    if name in _SUBMODULES:
        return importlib.import_module(f"graphtickets.{name}")
    raise AttributeError(f"module 'graphtickets' has no attribute {name!r}")
