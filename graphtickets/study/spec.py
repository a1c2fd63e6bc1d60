"""Typed cells: one point of a study's grid as a frozen value (:class:`CellSpec`).

:func:`graphtickets.study.grid.expand` builds a :class:`CellSpec` per cell;
:mod:`graphtickets.study.cell` runs it, reading its fields. What a cell is:

- ``data`` (:class:`TaskSpec`: the task by its label, not :class:`graphtickets.data.DataSpec`),
  ``model`` (:class:`ModelSpec`), ``density``, ``seed`` and
  ``replicate`` (the sibling index);
- ``method`` (:class:`MethodCall`): the method's name, hyper-parameters, training regime and
  the model variant it runs on;
- ``ticket``: where its ticket comes from, one of the :data:`TicketSource` kinds --
  :class:`Own` (the method finds it at the cell's density), :class:`FromTrajectory` (one run
  of the method serves every density: IMP's rounds), :class:`Imported` (a file made
  elsewhere), :class:`FromSource` (a transform of another method's ticket on another model:
  Elastic), :class:`Derived` (built from other cells' tickets: the ``derived`` family) and
  :class:`Dense` (the unpruned reference);
- ``ablation``: the sanity check that varies the ticket (``shuffle``, ``reinit``) or None;
- ``train`` (:class:`TrainSpec`: the :class:`~graphtickets.training.TrainSettings` the
  trainers take whole, and the batch sizes) and ``prune_data`` (:class:`PruneDataSpec`).

A cell's id hashes its canonical content, :meth:`CellSpec.config` (the plain dict that
studies have always stored; :func:`graphtickets.study.grid.cell_id`), so the typed cells
keep every id: :meth:`CellSpec.from_config` reads such a dict back, and
``CellSpec.from_config(c).config() == c``. A field added later enters :meth:`~CellSpec.config`
only when it is set, so the cells that do not use it keep their ids.

Imports go one way: this module imports :mod:`graphtickets.training.settings` and
:mod:`graphtickets._json` only; ``config``, ``grid`` and ``cell`` import it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Literal

from graphtickets._json import plain
from graphtickets.errors import GraphticketsError
from graphtickets.training.settings import TrainSettings

__all__ = [
    "DENSE", "CELL_FORMAT", "TRAJECTORY_FORMAT", "TaskSpec", "ModelSpec", "MethodCall", "Own", "FromTrajectory",
    "Imported", "FromSource", "Derived", "Dense", "HELD_OUT", "derived_label", "TicketSource", "TICKET_SOURCES",
    "TrainSpec", "PruneDataSpec", "CellSpec",
    "TrajectorySpec", "model_label",
]

#: The method name of the dense reference (every weight kept, trained like the tickets).
DENSE = "dense"
#: Version of the cell config layout; part of every hash.
CELL_FORMAT = "graphtickets.cell/1"
#: What a held-out derived ticket's method carries in tables: ``consensus`` -> ``consensus:held_out``.
HELD_OUT = ":held_out"
#: Version of the trajectory config layout; part of its hash.
TRAJECTORY_FORMAT = "graphtickets.trajectory/1"


def _plain(obj: Any) -> Any:
    """Mappings as dicts, lists/tuples as lists; leaves kept as they are (config values)."""
    return plain(obj, leaf=lambda v: v)


def model_label(name: str, kwargs: Mapping[str, Any]) -> str:
    """A model's short name in tables: ``mlp(100,100)``, ``resnet1d(depth=8)``.

    >>> model_label("mlp", {"widths": [100, 100], "init": "kaiming_normal"})
    'mlp(100,100;init=kaiming_normal)'
    """
    if not kwargs:
        return name
    vals = [",".join(map(str, v)) if isinstance(v, (list, tuple)) else f"{k}={v}" for k, v in kwargs.items()]
    return f"{name}({';'.join(vals)})"


# ---------------------------------------------------------------------------- parts of a cell
@dataclass(frozen=True)
class TaskSpec:
    """The task a cell trains and evaluates on, by its name: a key of ``gt.data.DATASETS`` or the
    canonical label of a variant (``mnist1d[shuffle_seq]``, :attr:`graphtickets.data.DataSpec.label`).

    Named apart from :class:`graphtickets.data.DataSpec` (the parsed task with its arguments,
    :meth:`data_spec`): a cell keeps only the label, which ``gt.data.load``/``info`` read.
    """

    name: str

    def config(self) -> dict[str, Any]:
        """The canonical form (``{"name": ...}``)."""
        return {"name": self.name}

    def data_spec(self) -> Any:
        """The parsed task (:class:`graphtickets.data.DataSpec`: its name and variant arguments)."""
        from graphtickets.data import DataSpec

        return DataSpec.parse(self.name)


@dataclass(frozen=True)
class ModelSpec:
    """A model: a name of ``gt.models.MODELS`` and its builder's keyword arguments (read-only)."""

    name: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)

    def config(self) -> dict[str, Any]:
        """The canonical form: ``{"name": ..., **kwargs}`` (what ``build_from_spec`` takes)."""
        return {"name": self.name, **_plain(self.kwargs)}

    def label(self) -> str:
        """:func:`model_label` of the model."""
        return model_label(self.name, self.kwargs)

    def updated(self, override: Mapping[str, Any]) -> ModelSpec:
        """This model with ``override`` keyword arguments on top (a method's model variant)."""
        return replace(self, kwargs={**self.kwargs, **override}) if override else self


@dataclass(frozen=True)
class MethodCall:
    """A method as a cell calls it.

    Attributes
    ----------
    name : str
        The method (a name of ``gt.pruning.METHODS``; free for :class:`Imported` tickets).
    hparams : Mapping
        Its hyper-parameters (with the study's regime filled in for ``regime="study"``).
    regime : {"own", "study"}
        ``study``: it trains on the study's training batches (``train.batch_size``).
    model : Mapping
        Keyword arguments of the model variant it runs on (over the cell's model); empty: the
        cell's model.
    """

    name: str
    hparams: Mapping[str, Any] = field(default_factory=dict)
    regime: str = "own"
    model: Mapping[str, Any] = field(default_factory=dict)

    def config(self) -> dict[str, Any]:
        """The canonical form: name and hparams, ``regime`` only for ``study``, ``model`` only when set."""
        out: dict[str, Any] = {"name": self.name, "hparams": _plain(self.hparams)}
        if self.regime == "study":
            out["regime"] = "study"
        if self.model:
            out["model"] = _plain(self.model)
        return out


# ---------------------------------------------------------------------------- ticket sources
@dataclass(frozen=True)
class Own:
    """The method finds the ticket at the cell's density (``prune(model, method, density=...)``)."""

    kind: ClassVar[str] = "own"


@dataclass(frozen=True)
class FromTrajectory:
    """One run of the method serves every density (:attr:`MethodSpec.trajectory`, IMP's rounds).

    ``densities``: those of the study (descending); they enter the cell id.
    """

    densities: tuple[float, ...]
    kind: ClassVar[str] = "trajectory"


@dataclass(frozen=True)
class Imported:
    """Tickets made elsewhere (``methods.<name>.import``): one file per density and seed.

    ``files`` and ``sha256``: ``{repr(density): {str(seed): ...}}``; the digests enter the
    cell id, so a replaced file re-runs its cells.
    """

    files: Mapping[str, Mapping[str, str]]
    sha256: Mapping[str, Mapping[str, str]]
    file_kind: Literal["auto", "state_dict", "masks"] = "auto"
    tolerance: float = 0.0
    kind: ClassVar[str] = "imported"

    @classmethod
    def from_config(cls, entry: Mapping[str, Any]) -> Imported:
        """The source of a canonical ``import`` entry (:func:`graphtickets.study.config.import_entry`)."""
        _only("cell method.import", entry, ("files", "sha256", "kind", "tolerance"))
        return cls(files=entry["files"], sha256=entry["sha256"], file_kind=entry["kind"], tolerance=entry["tolerance"])

    def path(self, density: float, seed: int) -> str:
        """The file of ``(density, seed)``."""
        return self.files[repr(float(density))][str(int(seed))]

    def config(self) -> dict[str, Any]:
        """The canonical form (the cell's ``method.import``)."""
        return {"files": _plain(self.files), "sha256": _plain(self.sha256), "kind": self.file_kind,
                "tolerance": self.tolerance}


@dataclass(frozen=True)
class FromSource:
    """A transform of a source ticket (Elastic): ``source`` finds it on its own model variant.

    ``source.model`` holds the source model's keyword arguments (over the cell's model); the
    transform itself is the cell's :class:`MethodCall`. ``trajectory``: the densities when the
    source method has a trajectory (then one run serves every density), else None.
    """

    source: MethodCall
    trajectory: tuple[float, ...] | None = None
    kind: ClassVar[str] = "source"

    def config(self) -> dict[str, Any]:
        """The canonical form (the cell's ``method.source``: its ``model`` always, ``regime`` for ``study``)."""
        out: dict[str, Any] = {"method": self.source.name, "model": _plain(self.source.model),
                               "hparams": _plain(self.source.hparams)}
        if self.source.regime == "study":
            out["regime"] = "study"
        return out


@dataclass(frozen=True)
class Derived:
    """A ticket built from other cells' tickets (a method of family ``derived``: consensus, profile, ...).

    ``sources``: the ids of the cells whose tickets it is built from (the study's methods at
    the cell's dataset, model and density, replicate 0: of the cell's own init seed, or, with
    ``held_out``, of every other seed only). The ids enter the cell id, so a source that
    changes re-builds the derived ticket; the runner runs the cell after its sources.
    """

    sources: tuple[str, ...]
    held_out: bool = False
    kind: ClassVar[str] = "derived"

    def config(self) -> dict[str, Any]:
        """The canonical form (the cell's ``method.derived``)."""
        return {"held_out": bool(self.held_out), "sources": list(self.sources)}


def derived_label(name: str, held_out: bool) -> str:
    """The name a derived method's cells carry in tables: ``consensus`` or ``consensus:held_out``.

    >>> derived_label("consensus", True), derived_label("consensus", False)
    ('consensus:held_out', 'consensus')
    """
    return f"{name}{HELD_OUT}" if held_out else name


@dataclass(frozen=True)
class Dense:
    """The dense reference: every weight kept (method :data:`DENSE`)."""

    kind: ClassVar[str] = "dense"


#: Where a cell's ticket comes from.
TicketSource = Own | FromTrajectory | Imported | FromSource | Derived | Dense
#: Every ticket-source kind (:mod:`graphtickets.study.cell` has a finder for each).
TICKET_SOURCES: tuple[type, ...] = (Own, FromTrajectory, Imported, FromSource, Derived, Dense)


# ---------------------------------------------------------------------------- training and pruning data
@dataclass(frozen=True)
class TrainSpec:
    """How a cell's ticket is trained: the trainers' settings and the batch sizes of its data."""

    settings: TrainSettings
    batch_size: int
    eval_batch_size: int

    def config(self) -> dict[str, Any]:
        """The canonical form (the study's ``train``; ``schedule`` only when set: stable ids)."""
        s = self.settings
        out: dict[str, Any] = {"epochs": s.epochs, "optimizer": s.optimizer, "lr": s.lr, "momentum": s.momentum,
                               "weight_decay": s.weight_decay, "batch_size": self.batch_size,
                               "eval_batch_size": self.eval_batch_size}
        if s.schedule is not None:
            out["schedule"] = s.schedule
        return out

    @classmethod
    def from_config(cls, train: Mapping[str, Any]) -> TrainSpec:
        """The spec of a canonical ``train`` dict (:meth:`config`'s inverse)."""
        _only("train", train, ("epochs", "optimizer", "lr", "momentum", "weight_decay", "batch_size",
                               "eval_batch_size", "schedule"))
        settings = TrainSettings(epochs=train["epochs"], optimizer=train["optimizer"], lr=train["lr"],
                                 momentum=train["momentum"], weight_decay=train["weight_decay"],
                                 schedule=train.get("schedule"))
        return cls(settings=settings, batch_size=train["batch_size"], eval_batch_size=train["eval_batch_size"])


@dataclass(frozen=True)
class PruneDataSpec:
    """The batches pruning methods see: ``batches`` of ``batch_size`` (pruning-at-init scorers)."""

    batch_size: int
    batches: int

    def config(self) -> dict[str, Any]:
        """The canonical form."""
        return {"batch_size": self.batch_size, "batches": self.batches}


def _only(where: str, config: Mapping[str, Any], known: tuple[str, ...]) -> None:
    unknown = sorted(set(config) - set(known))
    if unknown:
        raise GraphticketsError(f"{where}: unknown keys {', '.join(unknown)} in a cell config; known: {', '.join(known)}")


# ---------------------------------------------------------------------------- the cell
@dataclass(frozen=True)
class CellSpec:
    """One cell of a study, typed and frozen (see the module docstring).

    Build it with :func:`graphtickets.study.grid.expand` (or :meth:`from_config`); its
    :meth:`config` is the canonical content its id hashes.
    """

    data: TaskSpec
    model: ModelSpec
    method: MethodCall
    ticket: TicketSource
    density: float
    seed: int
    train: TrainSpec
    prune_data: PruneDataSpec
    replicate: int = 0
    ablation: str | None = None
    found_on: TaskSpec | None = None

    def config(self) -> dict[str, Any]:
        """The canonical cell config (what the id hashes; fields only where set).

        A transfer cell (``found_on`` set: its ticket is the one found on that task, trained and
        tested on ``data``) adds ``"transfer": {"found_on": ...}``; no other cell has the key.
        """
        method = self.method.config()
        if isinstance(self.ticket, Imported):  # the files (and digests) enter the cell ids
            method["import"] = self.ticket.config()
        if isinstance(self.ticket, FromSource):
            method["source"] = self.ticket.config()
        if isinstance(self.ticket, Derived):
            method["derived"] = self.ticket.config()
        out: dict[str, Any] = {
            "format": CELL_FORMAT, "dataset": self.data.config(), "model": self.model.config(), "method": method,
            "density": self.density, "seed": self.seed, "train": self.train.config(),
            "prune_data": self.prune_data.config(),
        }
        densities = self.trajectory_densities
        if densities is not None:
            out["trajectory"] = {"densities": list(densities)}
        if self.replicate:
            out["replicate"] = self.replicate
        if self.ablation:
            out["ablation"] = {"kind": self.ablation}
        if self.found_on is not None:
            out["transfer"] = {"found_on": self.found_on.config()}
        return out

    @property
    def trajectory_densities(self) -> tuple[float, ...] | None:
        """The densities of the trajectory this cell's ticket (or its source) comes from, if any."""
        if isinstance(self.ticket, FromTrajectory):
            return self.ticket.densities
        if isinstance(self.ticket, FromSource):
            return self.ticket.trajectory
        return None

    @property
    def method_model(self) -> ModelSpec:
        """The model the method runs on: the cell's, with the method's variant on top."""
        return self.model.updated(self.method.model)

    def base(self) -> CellSpec:
        """The cell an ablation varies (this cell without its ablation)."""
        return replace(self, ablation=None)

    def found(self) -> CellSpec:
        """The cell that finds this cell's ticket: without its ablation, on the task it was found on."""
        return replace(self, ablation=None, found_on=None, data=self.found_on or self.data)

    def sibling(self, replicate: int) -> CellSpec:
        """Sibling ``replicate`` of this cell (same initial weights, its own seeds afterwards)."""
        return replace(self, replicate=int(replicate))

    def trajectory(self) -> TrajectorySpec | None:
        """The trajectory this cell takes its ticket (or its transform's source) from; None without one.

        Everything of it follows from the cell: dataset, model (the source's for a transform),
        method and hyper-parameters, seed, and the batch size of the data it trains on.
        """
        if self.found_on is not None:  # a transferred ticket comes from its found-on cell's trajectory
            return self.found().trajectory()
        densities = self.trajectory_densities
        if densities is None:
            return None
        if isinstance(self.ticket, FromSource):
            src = self.ticket.source
            model, method = self.model.updated(src.model), MethodCall(src.name, src.hparams, src.regime)
        else:
            model, method = self.method_model, MethodCall(self.method.name, self.method.hparams, self.method.regime)
        batch = self.train.batch_size if method.regime == "study" else self.prune_data.batch_size
        return TrajectorySpec(data=self.data, model=model, method=method, seed=self.seed, densities=densities,
                              batch_size=batch, eval_batch_size=self.train.eval_batch_size, replicate=self.replicate)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> CellSpec:
        """The typed cell of a canonical cell config (:meth:`config`'s inverse).

        Raises
        ------
        GraphticketsError
            For a config of another format or with keys a cell does not have.
        """
        _only("cell", config, ("format", "dataset", "model", "method", "density", "seed", "train", "prune_data",
                               "trajectory", "replicate", "ablation", "transfer"))
        if config.get("format") != CELL_FORMAT:
            raise GraphticketsError(f"not a cell config of format {CELL_FORMAT!r} (format {config.get('format')!r}); "
                                    f"build cells with graphtickets.study.grid.expand")
        m = config["method"]
        _only("cell method", m, ("name", "hparams", "regime", "model", "import", "source", "derived"))
        method = MethodCall(name=m["name"], hparams=m["hparams"], regime=m.get("regime", "own"), model=m.get("model", {}))
        model = dict(config["model"])
        return cls(
            data=TaskSpec(config["dataset"]["name"]), model=ModelSpec(model.pop("name"), model), method=method,
            ticket=_ticket_of(m, config.get("trajectory")), density=config["density"], seed=config["seed"],
            train=TrainSpec.from_config(config["train"]),
            prune_data=PruneDataSpec(config["prune_data"]["batch_size"], config["prune_data"]["batches"]),
            replicate=config.get("replicate", 0), ablation=(config.get("ablation") or {}).get("kind"),
            found_on=TaskSpec(config["transfer"]["found_on"]["name"]) if "transfer" in config else None,
        )


def _ticket_of(method: Mapping[str, Any], trajectory: Mapping[str, Any] | None) -> TicketSource:
    """The ticket source a canonical cell config describes."""
    densities = tuple(trajectory["densities"]) if trajectory is not None else None
    if method["name"] == DENSE:
        return Dense()
    if "import" in method:
        return Imported.from_config(method["import"])
    if "derived" in method:
        d = method["derived"]
        return Derived(sources=tuple(d["sources"]), held_out=bool(d["held_out"]))
    if "source" in method:
        src = method["source"]
        return FromSource(MethodCall(src["method"], src["hparams"], src.get("regime", "own"), src["model"]), densities)
    if densities is not None:
        return FromTrajectory(densities)
    return Own()


@dataclass(frozen=True)
class TrajectorySpec:
    """One run of a method that serves several densities (IMP's rounds), typed.

    ``method.model`` is empty: ``model`` is already the model the method runs on.
    """

    data: TaskSpec
    model: ModelSpec
    method: MethodCall
    seed: int
    densities: tuple[float, ...]
    batch_size: int
    eval_batch_size: int
    replicate: int = 0

    def config(self) -> dict[str, Any]:
        """The canonical trajectory config (what its id hashes)."""
        out: dict[str, Any] = {
            "format": TRAJECTORY_FORMAT, "dataset": self.data.config(), "model": self.model.config(),
            "method": self.method.config(), "seed": self.seed, "densities": list(self.densities),
            "batch_size": self.batch_size, "eval_batch_size": self.eval_batch_size,
        }
        if self.replicate:  # one trajectory per sibling
            out["replicate"] = self.replicate
        return out

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> TrajectorySpec:
        """The typed trajectory of a canonical trajectory config (:meth:`config`'s inverse)."""
        _only("trajectory", config, ("format", "dataset", "model", "method", "seed", "densities", "batch_size",
                                     "eval_batch_size", "replicate"))
        m, model = config["method"], dict(config["model"])
        _only("trajectory method", m, ("name", "hparams", "regime"))
        return cls(
            data=TaskSpec(config["dataset"]["name"]), model=ModelSpec(model.pop("name"), model),
            method=MethodCall(m["name"], m["hparams"], m.get("regime", "own")), seed=config["seed"],
            densities=tuple(config["densities"]), batch_size=config["batch_size"],
            eval_batch_size=config["eval_batch_size"], replicate=config.get("replicate", 0),
        )
