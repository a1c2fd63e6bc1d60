"""The comparison study: a config-driven grid of cells, a resumable store, Dask scale-out, figures, report.

What lives where (each module imports only modules above it in this list; nothing in the
package imports :mod:`graphtickets.study`, which sits on top of data, models, training,
pruning, graphs and analysis):

- ``store`` -- the SQLite store of cells, tickets, trajectories, distances (imports no study module);
- ``spec`` -- typed cells: :class:`~graphtickets.study.spec.CellSpec` (data, model, method, ticket
  source, training, ...) and its canonical content, ``DENSE`` (imports no study module);
- ``config`` -- the study config (pydantic), its checks, ``--quick``, ``DENSE``; reads ``store.check_db``;
- ``grid`` -- the cells of a config (typed :class:`~graphtickets.study.spec.CellSpec`), their
  stable ids, the comparison group keys, ``DENSE``;
- ``methods`` -- what the study reads from the method registry (kind, family, order, the
  pruning-at-init set, the trained method with a trajectory, the random baseline): the study
  holds no method names;
- ``progress`` -- the progress display of units of work (imports no study module);
- ``cell`` -- one cell or trajectory: find the ticket, train it, measure its graphs;
- ``executors`` -- where cells and jobs run: in-process or on Dask;
- ``comparisons`` -- which tickets are compared with which distances, and running the groups;
- ``tabular`` -- the tickets, distances and siblings tables read from the store;
- ``figures``, ``alike`` (statistics of likeness), ``across`` (per-architecture statements),
  ``report`` -- the figures and the report, computed from the tables;
- ``runner`` -- :func:`run`: cells -> store -> comparisons -> tables -> report, resumable;
- ``rebuild`` -- ``graphtickets report DIR``: the tables and report rebuilt from a finished store;
- ``cluster`` -- cluster jobs (``graphtickets run --cluster ...``); the command line itself is
  :mod:`graphtickets.cli`.

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
    from graphtickets.study.comparisons import analyze
    from graphtickets.study.config import StudyConfig, default_config_path, load_config
    from graphtickets.study.grid import Cell, cell_id, expand
    from graphtickets.study.runner import StudyResult, run
    from graphtickets.study.spec import CellSpec
    from graphtickets.study.store import Store, StudyLockedError, folder_lock
    from graphtickets.study.tabular import tables, write_tables

__all__ = [
    "run",
    "StudyResult",
    "StudyConfig",
    "load_config",
    "default_config_path",
    "Cell",
    "CellSpec",
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
    "spec": ("CellSpec",),
    "comparisons": ("analyze",),
    "runner": ("StudyResult", "run"),
    "tabular": ("tables", "write_tables"),
    "store": ("Store", "StudyLockedError", "folder_lock"),
}
_WHERE = {name: module for module, names in _HOME.items() for name in names}


_MODULES = {"across", "alike", "cell", "cluster", "comparisons", "config", "executors", "figures", "grid",
            "methods", "progress", "rebuild", "report", "rerun", "runner", "sections", "spec", "store", "tabular"}


def __getattr__(name: str) -> Any:
    if name in _MODULES:  # graphtickets.study.runner etc. as attributes, as before they loaded lazily
        return importlib.import_module(f"graphtickets.study.{name}")
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'graphtickets.study' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"graphtickets.study.{module}"), name)
    globals()[name] = value
    return value
