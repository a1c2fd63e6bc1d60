"""The comparison study: a config-driven grid of cells, a resumable store, Dask scale-out, figures, report.

>>> from graphtickets.study import load_config, expand
>>> cfg = load_config({"name": "t", "datasets": ["digits"], "models": [{"name": "mlp", "widths": [8]}],
...                    "methods": ["random", "magnitude"], "densities": [0.5], "seeds": [0, 1]})
>>> len(expand(cfg))  # 2 methods x 1 density x 2 seeds, plus a dense reference cell per seed
6
>>> sorted({c.method for c in expand(cfg)})
['dense', 'magnitude', 'random']
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from graphtickets.study.cell import CellOutcome, run_cell, run_cell_safe
    from graphtickets.study.config import StudyConfig, default_config_path, load_config
    from graphtickets.study.grid import Cell, cell_id, expand
    from graphtickets.study.runner import StudyResult, analyze, run, tables, write_tables
    from graphtickets.study.store import Store, StudyLockedError, folder_lock

__all__ = [
    "run",
    "StudyResult",
    "StudyConfig",
    "load_config",
    "default_config_path",
    "Cell",
    "expand",
    "cell_id",
    "run_cell",
    "run_cell_safe",
    "CellOutcome",
    "Store",
    "StudyLockedError",
    "folder_lock",
    "analyze",
    "tables",
    "write_tables",
]

#: Where each public name lives; the modules load on first use (torch, pandas and pydantic
#: stay out of ``graphtickets run`` when a rerun has nothing to do: :mod:`graphtickets.study.rerun`).
_HOME = {
    "cell": ("CellOutcome", "run_cell", "run_cell_safe"),
    "config": ("StudyConfig", "default_config_path", "load_config"),
    "grid": ("Cell", "cell_id", "expand"),
    "runner": ("StudyResult", "analyze", "run", "tables", "write_tables"),
    "store": ("Store", "StudyLockedError", "folder_lock"),
}
_WHERE = {name: module for module, names in _HOME.items() for name in names}


_MODULES = {"alike", "cell", "cli", "cluster", "config", "executors", "figures", "grid", "report", "rerun", "runner",
            "store"}


def __getattr__(name: str) -> Any:
    if name in _MODULES:  # graphtickets.study.runner etc. as attributes, as before they loaded lazily
        return importlib.import_module(f"graphtickets.study.{name}")
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'graphtickets.study' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"graphtickets.study.{module}"), name)
    globals()[name] = value
    return value
