"""A study's grid: every ``dataset x model x method x density x seed`` cell, with a stable id.

A cell's id is the first 16 hex digits of the SHA-256 of the canonical JSON (sorted keys, no
spaces) of everything that decides its result: dataset, model spec, method with its
hyperparameters (and source, for elastic), density, seed, training and pruning-data
settings. Where results are stored, how many workers run them and the device do not enter it.
The same config therefore finds its finished cells again, and changing one hyperparameter
re-runs only the cells it touches (the idea of open_lth's hashed run folders).
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from graphtickets._json import plain
from graphtickets.study.config import StudyConfig, TrainConfig, regime_hparams
from graphtickets.study.spec import (
    CELL_FORMAT,
    DENSE,
    TRAJECTORY_FORMAT,
    CellSpec,
    Dense,
    Derived,
    FromSource,
    FromTrajectory,
    Imported,
    MethodCall,
    ModelSpec,
    Own,
    PruneDataSpec,
    TaskSpec,
    TicketSource,
    TrainSpec,
    TrajectorySpec,
    derived_label,
)

__all__ = [
    "Cell", "Trajectory", "expand", "trajectories", "trajectory_config", "base_config", "cell_id", "canonical_json",
    "CELL_FORMAT", "TRAJECTORY_FORMAT", "DENSE", "variant_label", "siblings", "GroupKey", "ModelKey", "SiblingKey",
    "SIBLINGS", "model_rows", "CellSpec", "TrajectorySpec", "transfer_cells", "data_free",
]

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
    """One point of the grid: its typed :class:`~graphtickets.study.spec.CellSpec` and its id.

    Attributes
    ----------
    spec : CellSpec
        What the cell is (what :func:`graphtickets.study.cell.run_cell` takes).
    id : str
        :func:`cell_id` of ``config``.
    config : dict
        The canonical cell config, ``spec.config()`` (what the id hashes and the store keeps).

    The names for tables follow from ``spec``: ``dataset``, ``model`` (a label such as
    ``mlp(100,100)``), ``method`` (``snip+shuffle`` for an ablation), ``density``, ``seed``
    (the init seed: the model's initial weights) and ``replicate`` (the sibling index:
    ``replicates: R`` gives 0..R-1; everything stochastic after the initialization is seeded
    from ``(seed, replicate)``; replicate 0 is the study's ticket, compared with the other
    methods, the others are its siblings).
    """

    spec: CellSpec
    id: str = field(init=False)
    config: dict[str, Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        config = self.spec.config()
        object.__setattr__(self, "config", config)
        object.__setattr__(self, "id", cell_id(config))

    @property
    def dataset(self) -> str:
        """The dataset's name."""
        return self.spec.data.name

    @property
    def model(self) -> str:
        """The model's label (``mlp(100,100)``)."""
        return self.spec.model.label()

    @property
    def method(self) -> str:
        """The method's name in tables (``snip+shuffle`` for an ablation of ``snip``; a held-out
        derived ticket's ``consensus:held_out``, :func:`~graphtickets.study.spec.derived_label`)."""
        held = isinstance(self.spec.ticket, Derived) and self.spec.ticket.held_out
        return variant_label(derived_label(self.spec.method.name, held), self.variant)

    @property
    def density(self) -> float:
        """The density the cell asks for."""
        return self.spec.density

    @property
    def seed(self) -> int:
        """The init seed."""
        return self.spec.seed

    @property
    def replicate(self) -> int:
        """The sibling index (0: the study's ticket)."""
        return self.spec.replicate

    @property
    def group(self) -> GroupKey:
        """The comparison group: tickets of one dataset, model, density and seed."""
        return GroupKey(self.dataset, self.model, self.density, self.seed)

    @property
    def model_group(self) -> ModelKey:
        """The group of every ticket of this cell's dataset and model (the MDS map)."""
        return ModelKey(self.dataset, self.model)

    @property
    def sibling_group(self) -> SiblingKey:
        """The group of this cell's method's siblings (same density and init seed)."""
        return SiblingKey(self.group, self.method)

    @property
    def base_method(self) -> str:
        """The method that finds the ticket (``snip`` for the ``snip+shuffle`` ablation)."""
        return self.spec.method.name

    @property
    def variant(self) -> str:
        """The ablation (``shuffle``, ``reinit``) or ``""`` for the method's own ticket."""
        return self.spec.ablation or ""

    @property
    def base(self) -> str | None:
        """Id of the cell whose ticket this ablation or transfer cell takes (None for a method's own cell)."""
        return cell_id(self.spec.found().config()) if self.variant or self.found_on else None

    @property
    def found_on(self) -> str:
        """The task a transfer cell's ticket was found on (``""``: its own task, every other cell)."""
        return self.spec.found_on.name if self.spec.found_on is not None else ""

    @property
    def trajectory(self) -> str | None:
        """Id of the trajectory that finds this cell's ticket (or its elastic source), if any."""
        tc = self.spec.trajectory()
        return cell_id(tc.config()) if tc is not None else None

    @property
    def label(self) -> str:
        """``method d=0.05 s=0 (mnist1d, mlp(100,100))``."""
        r = f" r={self.replicate}" if self.replicate else ""
        found = f" found on {self.found_on}" if self.found_on else ""
        return f"{self.method} d={self.density:g} s={self.seed}{r} ({self.dataset}{found}, {self.model})"


@dataclass(frozen=True)
class Trajectory:
    """One run of a method that serves several densities (IMP's rounds): a unit of work.

    Attributes
    ----------
    spec : TrajectorySpec
        What the run is (:meth:`CellSpec.trajectory` of its cells): dataset, model, method
        with its hyperparameters, seed, densities, the batch size of its data.
    label : str
        ``imp s=0 (mnist1d, mlp(100,100)) d=0.2,0.05``.
    id : str
        :func:`cell_id` of ``config`` (the same stable hash as cells).
    config : dict
        ``spec.config()``, the canonical trajectory config.
    """

    spec: TrajectorySpec
    label: str
    id: str = field(init=False)
    config: dict[str, Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        config = self.spec.config()
        object.__setattr__(self, "config", config)
        object.__setattr__(self, "id", cell_id(config))


def variant_label(method: str, variant: str) -> str:
    """The name an ablation carries in tables: ``snip+shuffle``."""
    return f"{method}+{variant}" if variant else method


def base_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The config of the cell an ablation cell varies (``config`` without its ``ablation``)."""
    return CellSpec.from_config(config).base().config()


def trajectory_config(config: Mapping[str, Any]) -> dict[str, Any] | None:
    """The trajectory a cell config takes its ticket from (None when it has none).

    :meth:`CellSpec.trajectory` of the config's cell, as its canonical config.
    """
    tc = CellSpec.from_config(config).trajectory()
    return tc.config() if tc is not None else None


def trajectories(cells: list[Cell]) -> list[Trajectory]:
    """The distinct trajectories the cells take their tickets from, in grid order."""
    out: dict[str, Trajectory] = {}
    for c in cells:
        tc = c.spec.trajectory()
        if tc is not None:
            tid = cell_id(tc.config())
            if tid not in out:
                ds = ",".join(f"{d:g}" for d in tc.densities)
                r = f" r={c.replicate}" if c.replicate else ""
                source = ", source" if isinstance(c.spec.ticket, FromSource) else ""
                out[tid] = Trajectory(spec=tc, label=f"{tc.method.name} s={c.seed}{r} ({c.dataset}, {c.model}{source}) d={ds}")
    return list(out.values())


#: Marks the comparison group of one method's siblings in its label: ``<group>#siblings:<method>``.
SIBLINGS = "#siblings:"


@dataclass(frozen=True)
class GroupKey:
    """A comparison group: the tickets of one dataset, model, density and init seed.

    ``str(key)`` (:attr:`label`) is the group's name in the store and the tables, e.g.
    ``mnist1d/mlp(100,100)/d0.05/s0``; the key is never read back from it.

    >>> str(GroupKey("digits", "mlp(16)", 0.2, 0))
    'digits/mlp(16)/d0.2/s0'
    """

    dataset: str
    model: str
    density: float
    seed: int

    @property
    def label(self) -> str:
        """The stored name of the group."""
        return f"{self.dataset}/{self.model}/d{self.density:g}/s{self.seed}"

    def __str__(self) -> str:
        return self.label


@dataclass(frozen=True)
class ModelKey:
    """The group of every ticket of one dataset and model (compared for the MDS map).

    >>> str(ModelKey("digits", "mlp(16)"))
    'digits/mlp(16)/all'
    """

    dataset: str
    model: str

    @property
    def label(self) -> str:
        """The stored name of the group (ends in ``/all``)."""
        return f"{self.dataset}/{self.model}/all"

    def __str__(self) -> str:
        return self.label


@dataclass(frozen=True)
class SiblingKey:
    """The group of one method's sibling replicates in a comparison group (the noise floor).

    >>> str(SiblingKey(GroupKey("digits", "mlp(16)", 0.2, 0), "snip"))
    'digits/mlp(16)/d0.2/s0#siblings:snip'
    """

    group: GroupKey
    method: str

    @property
    def label(self) -> str:
        """The stored name of the group: its comparison group's, :data:`SIBLINGS` and the method."""
        return f"{self.group.label}{SIBLINGS}{self.method}"

    def __str__(self) -> str:
        return self.label


def model_rows(dist: Any) -> Any:
    """Which rows of a distances table belong to a per-model group (:class:`ModelKey`).

    A row is a per-model row when its group is the :class:`ModelKey` of its own ``dataset``
    and ``model`` columns (the tables fill both for these rows, and leave ``density`` and
    ``seed`` empty). A table without those columns, or a row whose model is empty (a table
    written before the model was filled), falls back on the stored name's ``/all`` ending.

    Parameters
    ----------
    dist : DataFrame
        A distances table (``group``; ``dataset`` and ``model`` where it has them).

    Returns
    -------
    Series of bool
        Aligned with ``dist``'s index.

    Examples
    --------
    >>> import pandas as pd
    >>> d = pd.DataFrame({"group": ["digits/mlp(16)/all", "digits/mlp(16)/d0.2/s0"],
    ...                   "dataset": ["digits", "digits"], "model": ["mlp(16)", "mlp(16)"]})
    >>> model_rows(d).tolist()
    [True, False]
    """
    import pandas as pd

    group = dist["group"].astype(str) if "group" in dist else pd.Series("", index=dist.index, dtype=object)
    by_suffix = group.str.endswith("/all")
    if "dataset" not in dist or "model" not in dist:
        return by_suffix
    known = dist["model"].notna() & dist["dataset"].notna()
    label = [ModelKey(str(d), str(m)).label if k else "" for d, m, k in zip(dist["dataset"], dist["model"], known,
                                                                           strict=True)]
    return (group == pd.Series(label, index=dist.index, dtype=object)) | (~known & by_suffix)


def _plain(obj: Any) -> Any:
    """Mappings as dicts, lists/tuples as lists; leaves kept as they are (config values)."""
    return plain(obj, leaf=lambda v: v)


def _method_of(m: Any, study: StudyConfig, train: TrainConfig, densities: tuple[float, ...]) -> tuple[MethodCall, TicketSource]:
    """A method entry as a cell calls it, and where its tickets come from (the model's regime ``train`` filled in)."""
    from graphtickets.pruning import METHODS

    hparams = regime_hparams(m.name, m.hparams, train) if m.regime == "study" else dict(m.hparams)
    method = MethodCall(name=m.name, hparams=_plain(hparams), regime=m.regime, model=_plain(m.model))
    if m.imported is not None:  # tickets made elsewhere: their files (and digests) enter the cell ids
        from graphtickets.study.config import import_entry

        return method, Imported.from_config(import_entry(m.imported, study.densities, study.seeds))
    finder = m.source.method if m.source is not None else m.name
    trajectory = densities if finder in METHODS and METHODS[finder].trajectory is not None else None  # one run serves every density
    if m.source is not None:
        src = m.source
        shp = regime_hparams(src.method, src.hparams, train) if src.regime == "study" else dict(src.hparams)
        return method, FromSource(MethodCall(src.method, _plain(shp), src.regime, _plain(src.model)), trajectory)
    return method, (FromTrajectory(trajectory) if trajectory is not None else Own())


def _is_derived(m: Any) -> bool:
    """Whether a method entry is a derived method (built from the other methods' tickets)."""
    from graphtickets.pruning import METHODS

    return m.imported is None and m.name in METHODS and METHODS[m.name].family == "derived"


def _derived_cells(study: StudyConfig, entries: list[Any], found: list[Cell], cell: Any) -> list[Cell]:
    """The cells of the derived methods of one dataset and model, built from the ``found`` cells.

    At each density and seed, a derived method's same-init cell takes the tickets of the source
    methods (:func:`~graphtickets.study.config.derived_sources`) at that density and seed; its
    held-out cell those at that density and every *other* seed (``built_from`` says which cells
    the method has). The source cells' ids enter the cell's config (:class:`Derived`).
    """
    from graphtickets.study.config import derived_sources

    derived = [m for m in entries if _is_derived(m)]
    if not derived:
        return []
    names = {m.name for m in derived_sources(entries)}
    pool = [c for c in found if c.base_method in names]
    out = []
    for density in study.densities:
        for seed in study.seeds:
            for m in derived:
                call = MethodCall(name=m.name, hparams=_plain(m.hparams), model=_plain(m.model))
                for held in {"both": (False, True), "same_init": (False,), "held_out": (True,)}[m.built_from]:
                    ids = sorted(c.id for c in pool if c.density == float(density) and (c.seed != int(seed)) == held)
                    out.append(Cell(cell(method=call, ticket=Derived(tuple(ids), held), density=float(density),
                                         seed=int(seed))))
    return out


def siblings(cells: list[Cell], replicates: int) -> list[Cell]:
    """The sibling cells of ``cells`` (replicates 1..R-1 of each; none for R = 1).

    A sibling's config is its cell's plus ``"replicate": r`` (only for r > 0, so the ids of
    replicate 0 -- every cell of a study without replicates -- stay what they were).

    >>> from graphtickets.study.config import load_config
    >>> c = expand(load_config({"name": "s", "datasets": ["digits"], "models": [{"name": "mlp", "widths": [8]}],
    ...                         "methods": ["random"], "densities": [0.5], "dense_reference": False}))[0]
    >>> [(s.replicate, s.config["replicate"], s.base_method) for s in siblings([c], 3)]
    [(1, 1, 'random'), (2, 2, 'random')]
    """
    return [Cell(c.spec.sibling(r)) for r in range(1, int(replicates)) for c in cells]


def expand(study: StudyConfig) -> list[Cell]:
    """All cells of ``study``, in grid order (dataset, model, density, seed, method).

    Parameters
    ----------
    study : StudyConfig

    Returns
    -------
    list of Cell
        With ``dense_reference`` (the default), also one ``dense`` cell (density 1) per
        dataset, model and seed: the unpruned network trained like every ticket. With
        ``ablations``, one cell per ablation and method cell (method ``snip+shuffle``;
        its config is the method cell's plus ``"ablation": {"kind": ...}``). A cell whose
        method has a trajectory (IMP) records the densities it serves
        (``"trajectory": {"densities": [...]}``, see :meth:`CellSpec.trajectory`). With
        ``replicates: R``, R - 1 sibling cells per method cell (:func:`siblings`), after the
        method cells and before the ablations (which vary replicate 0 only). A model's own
        settings (:meth:`~graphtickets.study.config.StudyConfig.methods_for`,
        :meth:`~graphtickets.study.config.StudyConfig.train_for`) decide its cells; a model
        without them has the cells (and ids) it would have without the feature.
    """
    cells: list[Cell] = []
    pdata = PruneDataSpec(**study.prune_data.model_dump())
    densities = tuple(sorted({float(d) for d in study.densities}, reverse=True))
    for ds in study.datasets:
        for mc in study.models:
            # a model's own settings (models[i].methods / .train) replace the study's for its cells only
            model_train = study.train_for(mc)
            train = TrainSpec.from_config(model_train.fields())
            entries = study.methods_for(mc)
            finders = [m for m in entries if not _is_derived(m)]
            methods = [_method_of(m, study, model_train, densities) for m in finders]
            cell = functools.partial(CellSpec, data=TaskSpec(ds.name), model=ModelSpec(mc.name, _plain(mc.kwargs())),
                                     train=train, prune_data=pdata)
            base_cells = [Cell(cell(method=method, ticket=ticket, density=float(density), seed=int(seed)))
                          for density in study.densities for seed in study.seeds for method, ticket in methods]
            base_cells += _derived_cells(study, entries, base_cells, cell)
            cells += base_cells
            cells += siblings(base_cells, study.replicates)
            for kind in study.ablations:  # the sanity checks of replicate 0's tickets (siblings are not varied)
                cells += [Cell(replace(c.spec, ablation=kind)) for c in base_cells]
            if study.dense_reference:  # one dense network per dataset, model and seed, after the tickets
                cells += [Cell(cell(method=MethodCall(DENSE), ticket=Dense(), density=1.0, seed=int(seed)))
                          for seed in study.seeds]
    return cells + transfer_cells(study, cells)


def data_free(spec: CellSpec) -> bool:
    """Whether a cell's ticket is found without data (its mask is the same whatever the task).

    True for methods whose :attr:`~graphtickets.pruning.MethodSpec.data_use` is ``"none"``
    (random, magnitude at init, SynFlow, Smart-Ratio), and for a transform whose source is such
    a method; imported tickets and the dense reference count as data-free too (no task finds them).
    """
    from graphtickets.pruning import METHODS

    if isinstance(spec.ticket, (Dense, Imported)):
        return True
    name = spec.ticket.source.name if isinstance(spec.ticket, FromSource) else spec.method.name
    return name in METHODS and METHODS[name].data_use == "none" and (
        not isinstance(spec.ticket, FromSource) or METHODS[spec.method.name].data_use == "none")


def transfer_cells(study: StudyConfig, cells: list[Cell]) -> list[Cell]:
    """The transfer cells of ``study`` (none without ``transfer:``): for every pair ``(X, Y)`` of
    :meth:`~graphtickets.study.config.TransferConfig.pairs`, each method cell of ``X`` (every
    replicate) trained and tested on ``Y`` from the same initial weights, and the ablations of
    replicate 0's, as the own cells have them.

    Data-free tickets (:func:`data_free`) get no transfer cell: their mask on ``X`` is their mask
    on ``Y``, so ``X -> Y`` is ``Y``'s own cell (the report says so).
    """
    if study.transfer is None:
        return []
    out: list[Cell] = []
    for x, y in study.transfer.pairs():
        own = [c for c in cells if c.dataset == x and not c.variant and not data_free(c.spec)]
        moved = [Cell(replace(c.spec, data=TaskSpec(y), found_on=TaskSpec(x))) for c in own]
        out += moved
        for kind in study.ablations:
            out += [Cell(replace(c.spec, ablation=kind)) for c in moved if not c.replicate]
    return out
