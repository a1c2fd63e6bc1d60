"""A study's grid: every ``dataset x model x method x density x seed`` cell, with a stable id.

A cell's id is the first 16 hex digits of the SHA-256 of the canonical JSON (sorted keys, no
spaces) of everything that decides its result: dataset, model spec, method with its
hyperparameters (and source, for elastic), density, seed, training and pruning-data
settings. Where results are stored, how many workers run them and the device do not enter it.
The same config therefore finds its finished cells again, and changing one hyperparameter
re-runs only the cells it touches (the idea of open_lth's hashed run folders).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from graphtickets.study.config import StudyConfig

#: The method name of the dense reference cells.
DENSE = "dense"

__all__ = ["Cell", "expand", "cell_id", "canonical_json", "CELL_FORMAT", "DENSE"]

#: Version of the cell config layout; part of every hash.
CELL_FORMAT = "graphtickets.cell/1"


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no whitespace (tuples become lists)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def cell_id(config: Mapping[str, Any]) -> str:
    """The stable id of a cell config: 16 hex digits of the SHA-256 of its canonical JSON.

    Examples
    --------
    >>> cell_id({"a": 1, "b": [1, 2]}) == cell_id({"b": [1, 2], "a": 1})
    True
    >>> len(cell_id({"a": 1}))
    16
    """
    return hashlib.sha256(canonical_json(dict(config)).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Cell:
    """One point of the grid.

    Attributes
    ----------
    id : str
        :func:`cell_id` of ``config``.
    config : dict
        The canonical cell config (what :func:`graphtickets.study.cell.run_cell` takes).
    dataset, model, method : str
        Names for tables (``model`` is a label such as ``mlp(100,100)``).
    density : float
    seed : int
    """

    id: str
    config: dict[str, Any]
    dataset: str
    model: str
    method: str
    density: float
    seed: int

    @property
    def group(self) -> str:
        """The comparison group: tickets of one dataset, model, density and seed."""
        return group_key(self.dataset, self.model, self.density, self.seed)

    @property
    def label(self) -> str:
        """``method d=0.05 s=0 (mnist1d, mlp(100,100))``."""
        return f"{self.method} d={self.density:g} s={self.seed} ({self.dataset}, {self.model})"


def group_key(dataset: str, model: str, density: float, seed: int) -> str:
    """Key of a comparison group."""
    return f"{dataset}/{model}/d{density:g}/s{seed}"


def _plain(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


def expand(study: StudyConfig) -> list[Cell]:
    """All cells of ``study``, in grid order (dataset, model, density, seed, method).

    Parameters
    ----------
    study : StudyConfig

    Returns
    -------
    list of Cell
        With ``dense_reference`` (the default), also one ``dense`` cell (density 1) per
        dataset, model and seed: the unpruned network trained like every ticket.
    """
    cells: list[Cell] = []
    train = study.train.model_dump()
    pdata = study.prune_data.model_dump()
    for ds in study.datasets:
        for mc in study.models:
            model = {"name": mc.name, **_plain(mc.kwargs())}
            for density in study.densities:
                for seed in study.seeds:
                    for m in study.methods:
                        method: dict[str, Any] = {"name": m.name, "hparams": _plain(m.hparams)}
                        if m.source is not None:
                            method["source"] = _plain(m.source.model_dump())
                        config = {
                            "format": CELL_FORMAT,
                            "dataset": {"name": ds.name},
                            "model": model,
                            "method": method,
                            "density": float(density),
                            "seed": int(seed),
                            "train": train,
                            "prune_data": pdata,
                        }
                        cells.append(
                            Cell(
                                id=cell_id(config), config=config, dataset=ds.name, model=mc.label(),
                                method=m.name, density=float(density), seed=int(seed),
                            )
                        )
            if study.dense_reference:  # one dense network per dataset, model and seed, after the tickets
                for seed in study.seeds:
                    config = {
                        "format": CELL_FORMAT, "dataset": {"name": ds.name}, "model": model,
                        "method": {"name": DENSE, "hparams": {}}, "density": 1.0, "seed": int(seed),
                        "train": train, "prune_data": pdata,
                    }
                    cells.append(Cell(id=cell_id(config), config=config, dataset=ds.name, model=mc.label(),
                                      method=DENSE, density=1.0, seed=int(seed)))
    return cells
