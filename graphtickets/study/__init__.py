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
