"""Study configuration: a YAML file validated with pydantic, with errors that name the key and the fix.

A study is a grid ``dataset x model x method x density x seed``. Every cell finds a ticket
with its method, trains it from the model's initial weights with the ``train`` settings,
evaluates it on the test split and measures its graphs. Afterwards the tickets of each
``(dataset, model, density, seed)`` are compared pairwise (``analysis``).

Example (``benchmarks/studies/quick.yaml`` has a complete one)::

    name: tiny
    datasets: [mnist1d]
    models:
      - {name: mlp, widths: [32, 32]}
    methods:
      random: {}
      magnitude: {}
      imp: {epochs: 2}
      elastic: {source: {method: imp, model: {widths: [32, 32, 32]}, hparams: {epochs: 2}}}
    densities: [0.2]
    seeds: [0]
    train: {epochs: 3}
    quick: {seeds: [0], densities: [0.2], train: {epochs: 1}}

More keys: ``ablations: [shuffle, in_degree, rewire, reinit]`` (the trained ladder: every method's
ticket also trained layer-shuffled, with each unit's fan-in kept, rewired keeping fan-ins and
fan-outs, and re-initialized, as ``snip+shuffle``, ``snip+in_degree``, ...); per method
``regime: study`` (a method that trains takes the study's ``train`` settings it has, e.g. IMP's
rounds) and ``model: {...}`` (the method runs on a variant of the study model that keeps its
prunable weights, e.g. ``batchnorm: true`` for Early-Bird); ``train.schedule``; ``replicates: R``
(R sibling tickets per method, density and init seed: the same initial weights, other seeds for
data order, pruning batches and random draws; the noise floor of the comparisons).

Derived methods (family ``derived``: consensus, profile, degrees, local, relational) are built
from the study's other methods' tickets (every method but the baselines and the derived ones)
of the same dataset, model and density: at each seed a same-init cell (the tickets of that
seed) and a held-out cell (``<method>:held_out``: the tickets of every other seed only);
``built_from: same_init`` or ``held_out`` keeps one of the two (default ``both``)::

    methods: {random: {}, snip: {}, synflow: {}, consensus: {}, profile: {built_from: held_out}}
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from graphtickets.errors import ConfigError, GraphticketsError
from graphtickets.study.spec import (  # DENSE: the dense reference, not a registered method
    DENSE,
    model_label,
)

__all__ = [
    "DENSE",
    "StudyConfig",
    "DatasetConfig",
    "TransferConfig",
    "task_label",
    "ModelConfig",
    "MethodConfig",
    "ImportConfig",
    "import_files",
    "import_entry",
    "TrainConfig",
    "PruneDataConfig",
    "AnalysisConfig",
    "QuickConfig",
    "load_config",
    "default_config_path",
    "STUDY_SUPPLIED",
    "BUILT_FROM",
    "derived_sources",
    "check_device",
    "LIMITS",
    "MAX_SEED",
    "check_seed",
    "check_size",
    "check_hparam_values",
    "check_run_options",
    "read_yaml",
    "ABLATIONS",
    "REGIME_FIELDS",
    "regime_hparams",
]


#: Method hyperparameters the study supplies itself (a config may not set them).
STUDY_SUPPLIED = ("data", "eval_data", "device", "source", "source_model", "dataset", "density", "seed", "sources",
                  "held_out")

#: Which tickets a derived method's cells are built from (``methods.<name>.built_from``).
BUILT_FROM = ("both", "same_init", "held_out")


#: Size bounds and the seed range are the rules module's (one home: graphtickets/_rules.py).
from graphtickets._rules import LIMITS, MAX_SEED  # noqa: E402


def check_seed(v: Any, what: str = "seed") -> int:
    """``v`` if it is an integer seed in ``[0, MAX_SEED]`` (``True``, ``1.0``, ``"1"`` are refused).

    >>> check_seed(7)
    7
    """
    if isinstance(v, bool) or not isinstance(v, int):
        raise ValueError(f"{what} must be an integer in [0, 2**63 - 1], got {type(v).__name__} {v!r}")
    if not 0 <= v <= MAX_SEED:
        raise ValueError(f"{what} {v} is outside [0, 2**63 - 1]; use a smaller non-negative integer")
    return v


def check_size(what: str, v: Any, *, low: int, limit: str | None = None, allow_large: bool = False) -> int:
    """``v`` if it is an integer ``>= low`` and (unless ``allow_large``) ``<= LIMITS[limit]``."""
    if isinstance(v, bool) or not isinstance(v, int):
        raise ValueError(f"{what} must be an integer >= {low}, got {type(v).__name__} {v!r}")
    if v < low:
        raise ValueError(f"{what} must be an integer >= {low}, got {v}")
    if limit is not None and not allow_large and v > LIMITS[limit]:
        raise ValueError(
            f"{what} = {v} is above the limit {LIMITS[limit]}; lower it, or lift the limit with "
            f"allow_large: true in the config (CLI: --allow-large)"
        )
    return v


def check_hparam_values(where: str, method: str, hparams: Mapping[str, Any], *, allow_large: bool = False) -> None:
    """Check the VALUES of ``method``'s hyperparameters against the rules its ``MethodSpec`` declares.

    Raises ``ValueError`` naming ``where.<name>``, the value and the allowed range
    (:meth:`graphtickets.pruning.MethodSpec.check_values`); an unknown method passes (it is
    named by the method check). Used at config load, so a bad value fails before any cell runs.

    >>> check_hparam_values("methods.imp", "imp", {"epochs": 2, "rate": 0.2})
    """
    from graphtickets.pruning import METHODS

    if method in METHODS:
        METHODS[method].check_values(where, hparams, allow_large=allow_large)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class DatasetConfig(_Strict):
    """A dataset (a task) of the grid: a name of ``gt.data.DATASETS``, its variant arguments, how to load it.

    An entry is a name (``mnist1d``), a label (``mnist1d[shuffle_seq]``) or a mapping whose keys
    beside ``name``, ``root`` and ``download`` are the dataset's variant arguments
    (``{name: mnist1d, shuffle_seq: true, data_seed: 7}``; :class:`graphtickets.data.DataSpec`
    checks them strictly). ``name`` holds the task's canonical label afterwards (the plain
    dataset's name when no argument differs from its default), which cells, tables and tickets
    carry and ``gt.data.load`` reads back.
    """

    name: str
    root: str | None = Field(default=None, description="data folder (default $GRAPHTICKETS_DATA)")
    download: bool = False

    @model_validator(mode="before")
    @classmethod
    def _variant(cls, v: Any) -> Any:
        if not isinstance(v, Mapping) or not isinstance(v.get("name"), str):
            return v
        entry = dict(v)
        args = {k: entry.pop(k) for k in list(entry) if k not in ("name", "root", "download")}
        entry["name"] = task_label({"name": entry["name"], **args})
        return entry

    @field_validator("name")
    @classmethod
    def _known(cls, v: str) -> str:
        return task_label(v)

    def data_spec(self) -> Any:
        """The task as a :class:`graphtickets.data.DataSpec` (name and variant arguments)."""
        from graphtickets import data

        return data.DataSpec.parse(self.name)


def task_label(entry: Any) -> str:
    """The canonical label of a dataset entry (a name, a label or ``{name: ..., <argument>: ...}``).

    Raises
    ------
    ValueError
        An unknown dataset (the message lists the known ones) or a variant argument the dataset
        does not take, of a wrong type or out of range (the message lists those it takes).
    """
    from graphtickets import data

    if isinstance(entry, str) and entry.split("[", 1)[0] not in data.DATASETS:
        raise ValueError(f"unknown dataset {entry!r}; known datasets: {', '.join(sorted(data.DATASETS))}")
    try:
        return str(data.DataSpec.parse(entry).label)
    except GraphticketsError as exc:
        raise ValueError(str(exc)) from None


class ModelConfig(BaseModel):
    """A model of the grid: a name of ``gt.models.MODELS``, its keyword arguments, and its own settings.

    Beside the builder's keyword arguments, two keys give the model settings of its own (they
    are not passed to the builder and not part of its label):

    ``methods``
        ``{method: overrides}``: the study-level entry of that method, changed for this model
        only. Hyperparameters are merged key by key; ``regime`` replaces the study's; a
        ``model:`` (a method's model variant) is replaced whole (``model: {}`` removes the
        study-level variant); ``source:`` is merged key by key (its ``method`` and ``regime``
        replace, its ``hparams`` merge, its ``model`` is replaced whole; a source of another
        ``method`` starts anew). ``false`` leaves the method out for this model.
    ``train``
        Training settings of this model's tickets (and of its methods with ``regime:
        study``), merged key by key over the study's ``train``.

    Examples
    --------
    >>> mc = ModelConfig.model_validate({"name": "resnet1d", "depth": 8, "train": {"epochs": 20},
    ...                                  "methods": {"elastic": {"source": {"model": {"depth": 14}}}}})
    >>> mc.kwargs(), mc.label()
    ({'depth': 8}, 'resnet1d(depth=8)')
    """

    model_config = ConfigDict(extra="allow", strict=True)
    name: str
    methods: dict[str, Any] = Field(
        default_factory=dict,
        description="per-method overrides for this model ({method: {hyperparameters, model, source, regime}}, "
                    "or false to leave the method out)",
    )
    train: dict[str, Any] = Field(default_factory=dict, description="training settings of this model, over the study's")

    @field_validator("methods", mode="before")
    @classmethod
    def _methods(cls, v: Any) -> Any:
        if not isinstance(v, Mapping):
            raise ValueError(f"give {{method: {{overrides}}}} (or method: false), got {type(v).__name__} {_short_repr(v)}")
        out: dict[str, Any] = {}
        for name, body in v.items():
            if body is None:
                body = {}
            if body is not False and not isinstance(body, Mapping):
                raise ValueError(
                    f"{name}: give the method's settings for this model as a mapping (e.g. {name}: {{epochs: 2}}) or "
                    f"false to leave it out, got {type(body).__name__} {_short_repr(body)}"
                )
            if isinstance(body, Mapping):
                if "import" in body or "imported" in body:
                    raise ValueError(f"{name}.import: imported tickets cannot be set per model; list them under the "
                                     f"study's methods (and write {name}: false for a model they do not fit)")
                if "source" in body and not isinstance(body["source"], Mapping):
                    raise ValueError(f"{name}.source: give a mapping (method, model, hparams, regime), got "
                                     f"{type(body['source']).__name__} {_short_repr(body['source'])}")
                body = dict(body)
            out[str(name)] = body
        return out

    @field_validator("train")
    @classmethod
    def _train(cls, v: dict[str, Any]) -> dict[str, Any]:
        try:
            TrainConfig.model_validate(v)  # each key given is a TrainConfig field of the right type and range
        except ValidationError as exc:
            raise ValueError(_errors_text(exc)) from None
        return v

    @field_validator("name")
    @classmethod
    def _known(cls, v: str) -> str:
        from graphtickets import models

        if v not in models.MODELS:
            raise ValueError(f"unknown model {v!r}; known models: {', '.join(sorted(models.MODELS))}")
        return v

    def kwargs(self) -> dict[str, Any]:
        """The keyword arguments given to ``gt.models.build``."""
        return dict(self.model_extra or {})

    def label(self) -> str:
        """A short name: ``mlp(100,100)``."""
        return model_label(self.name, self.kwargs())


class SourceConfig(_Strict):
    """Where an elastic ticket comes from: a method run on another depth of the model family."""

    method: str = "imp"
    model: dict[str, Any] = Field(default_factory=dict, description="keyword arguments overriding the target model's")
    hparams: dict[str, Any] = Field(default_factory=dict)
    regime: str = Field(default="own", pattern="^(own|study)$", description="study: train like the tickets (see MethodConfig)")


class ImportConfig(_Strict):
    """Tickets made elsewhere, listed as a "method" of the study (``methods.<name>.import``).

    One file per ``(density, seed)`` of the grid, read with
    :func:`graphtickets.interop.imported_ticket` for the cell's model. ``files`` is either a
    path template with ``{density}`` and ``{seed}`` (Python format fields: ``{density}``
    gives ``0.2``, ``{density:g}`` too, ``{seed:02d}`` gives ``03``), or a mapping
    ``{density: {seed: path}}``. Relative paths are taken from the config file's folder
    (from the working directory for a config given as a mapping)::

        methods:
          magnitude: {}
          other_tool:
            import: {files: "tickets/other_d{density}_s{seed}.pt"}
          hand_made:
            import:
              files: {0.2: {0: a.npz, 1: b.npz}}
              kind: masks
    """

    files: str | dict[float | str, dict[int | str, str]] = Field(
        description="a path template with {density} and {seed}, or {density: {seed: path}}"
    )
    kind: str = Field(default="auto", pattern="^(auto|state_dict|masks)$",
                      description="auto, state_dict (a sparse checkpoint, pruned weights stored as zeros) or masks")
    tolerance: float = Field(default=0.0, ge=0, allow_inf_nan=False,
                             description="allowed |ticket density - cell density| beyond one weight")


def _import_path(imp: ImportConfig, density: float, seed: int) -> str:
    """The file of ``(density, seed)`` (ValueError naming what is missing)."""
    if isinstance(imp.files, str):
        try:
            return imp.files.format(density=density, seed=seed)
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(
                f"files {imp.files!r} is not a template of {{density}} and {{seed}} only ({type(exc).__name__}: "
                f"{exc}); write e.g. tickets/t_d{{density}}_s{{seed}}.pt"
            ) from None
    def number(x: Any, kind: type) -> float | None:
        try:
            return float(kind(x))
        except (TypeError, ValueError):
            return None

    by_seed = next((v for d, v in imp.files.items() if number(d, float) == float(density)), None)
    path = next((p for s, p in (by_seed or {}).items() if number(s, int) == int(seed)), None)
    if path is None:
        raise ValueError(f"files lists no file for density {density:g}, seed {seed}; add {density:g}: {{{seed}: <path>}}")
    return path


def import_files(imp: ImportConfig, densities: list[float], seeds: list[int]) -> dict[str, dict[str, str]]:
    """The file of every ``(density, seed)``: ``{str(density): {str(seed): path}}``.

    ``ValueError`` when one is not listed or is not an existing file.

    >>> import_files(ImportConfig(files="/no/such/t_d{density}_s{seed}.pt"), [0.2], [0])
    Traceback (most recent call last):
    ValueError: file of density 0.2, seed 0: '/no/such/t_d0.2_s0.pt' does not exist; write the ticket there or fix files
    """
    out: dict[str, dict[str, str]] = {}
    for d in densities:
        for seed in seeds:
            path = _import_path(imp, float(d), int(seed))
            p = Path(path)
            if not p.exists():
                raise ValueError(f"file of density {float(d):g}, seed {seed}: {path!r} does not exist; "
                                 f"write the ticket there or fix files")
            if not p.is_file():
                raise ValueError(f"file of density {float(d):g}, seed {seed}: {path!r} is not a file; give the ticket's file")
            out.setdefault(repr(float(d)), {})[str(int(seed))] = path
    return out


def import_entry(imp: ImportConfig, densities: list[float], seeds: list[int]) -> dict[str, Any]:
    """The ``import`` part of a cell config: the files, how to read them, and their SHA-256.

    The digests enter the cell ids, so a ticket file replaced by another re-runs its cells.
    """
    import hashlib

    files = import_files(imp, densities, seeds)
    sha = {
        d: {s: hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16] for s, path in by_seed.items()}
        for d, by_seed in files.items()
    }
    return {"files": files, "sha256": sha, "kind": imp.kind, "tolerance": imp.tolerance}


def _absolute_import(imp: ImportConfig, base: Path | None) -> ImportConfig:
    """``imp`` with relative paths taken from ``base`` (the config file's folder; else the working directory)."""
    root = (base or Path.cwd()).resolve()

    def absolute(path: str) -> str:
        return path if Path(path).is_absolute() else str(root / path)

    if isinstance(imp.files, str):
        return imp.model_copy(update={"files": absolute(imp.files)})
    return imp.model_copy(update={"files": {d: {s: absolute(p) for s, p in v.items()} for d, v in imp.files.items()}})


class MethodConfig(_Strict):
    """One method of the grid: its name, hyperparameters, and (elastic) its source."""

    name: str
    hparams: dict[str, Any] = Field(default_factory=dict)
    source: SourceConfig | None = None
    imported: ImportConfig | None = Field(
        default=None, description="tickets made elsewhere (YAML key `import`); the name is then free, not a method's"
    )
    model: dict[str, Any] = Field(
        default_factory=dict,
        description="keyword arguments overriding the study model's for this method only (e.g. batchnorm: true "
                    "for Early-Bird's channel mode); its tickets still join the comparisons of the study model",
    )
    regime: str = Field(
        default="own", pattern="^(own|study)$",
        description="own: the method's own training settings; study: those it takes of the study's `train` "
                    "(epochs, optimizer, lr, momentum, weight_decay, schedule; unless set here) and training "
                    "batches of train.batch_size",
    )
    built_from: str = Field(
        default="both", pattern="^(both|same_init|held_out)$",
        description="derived methods only: build each ticket from the study's methods' tickets of the same init "
                    "(same_init), of the other seeds only (held_out: table name <method>:held_out), or both",
    )


class TrainConfig(_Strict):
    """How every ticket is trained (from the model's initial weights, mask enforced) and evaluated."""

    epochs: int = Field(default=10, ge=0, description="0: evaluate the untrained ticket (limit: LIMITS['epochs'])")
    optimizer: str = "adam"
    lr: float = Field(default=1.2e-3, gt=0, allow_inf_nan=False)
    momentum: float = Field(default=0.9, ge=0, lt=1, allow_inf_nan=False)
    weight_decay: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    batch_size: int = Field(default=128, ge=1)
    eval_batch_size: int = Field(default=1000, ge=1)
    schedule: str | None = Field(default=None, description="learning-rate schedule: none (constant), cosine or step")

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, v: str | None) -> str | None:
        from graphtickets.training import SCHEDULES

        if v not in SCHEDULES:
            raise ValueError(f"unknown schedule {v!r}; use one of {', '.join(str(s) for s in SCHEDULES if s)} or leave it out")
        return v

    def fields(self) -> dict[str, Any]:
        """The settings as the cell config records them (``schedule`` only when set: stable cell ids)."""
        out = self.model_dump()
        if out.get("schedule") is None:
            out.pop("schedule", None)
        return out


#: The training settings a method with ``regime: study`` takes from ``train`` (where it has them).
REGIME_FIELDS = ("epochs", "optimizer", "lr", "momentum", "weight_decay", "schedule")

#: Ablations a study can add for every method's ticket (``ablations: [shuffle, in_degree, rewire,
#: reinit]``): the names of :data:`graphtickets.pruning.ablations.ABLATIONS`, the registry.
from graphtickets.pruning.ablations import ABLATIONS as _ABLATION_REGISTRY  # noqa: E402

ABLATIONS = tuple(_ABLATION_REGISTRY)


def regime_hparams(method: str, hparams: Mapping[str, Any], train: TrainConfig) -> dict[str, Any]:
    """``hparams`` with the study's training regime filled in (``regime: study``).

    Every field of :data:`REGIME_FIELDS` the method takes and the config does not set is
    taken from ``train``. A field the method does not take must be at its default in
    ``train`` (otherwise the method could not follow the regime: ValueError naming it).
    """
    from graphtickets.pruning import METHODS

    known = METHODS[method].hparams()
    out = dict(hparams)
    default = TrainConfig()
    for f in REGIME_FIELDS:
        value = getattr(train, f)
        if f in known:
            out.setdefault(f, value)
        elif value != getattr(default, f):
            raise ValueError(
                f"method {method!r} cannot follow the study's regime: it takes no {f!r} (train.{f} = {value!r}); "
                f"use regime: own for it, or leave train.{f} at its default"
            )
    return out


class PruneDataConfig(_Strict):
    """The batches pruning methods see: ``batches`` of them for pruning-at-init scorers."""

    batch_size: int = Field(default=128, ge=1)
    batches: int = Field(default=10, ge=1, description="batches given to snip/grasp/... (init methods)")


class StabilityConfig(_Strict):
    """``analysis.stability``: a second training of every method's ticket and the error barrier
    between the two (Frankle et al. 2020; :mod:`graphtickets.study.stability`)."""

    densities: list[float] | None = Field(
        default=None, description="the densities whose tickets are measured; default every density of the study"
    )
    points: int = Field(default=11, ge=2, le=101, description="points on the linear path, its two ends included")

    @field_validator("densities")
    @classmethod
    def _densities(cls, v: list[float] | None) -> list[float] | None:
        for d in v or []:
            if not 0.0 < d <= 1.0:
                raise ValueError(f"a density is a fraction of weights kept in (0, 1], got {d!r}")
        _no_duplicates("", v or [])
        return v


class AnalysisConfig(_Strict):
    """What is compared after the cells."""

    kinds: list[str] | None = Field(default=None, description="distance kinds; default every default kind")
    null_samples: int = Field(default=10, ge=0, description="limit: LIMITS['null_samples']")
    null_samples_by_kind: dict[str, int] = Field(
        default_factory=dict, description="fewer (or more) nulls for costly kinds, e.g. {spectral: 4}"
    )
    null_model: str = "shuffle"
    mds_kind: str = "netlsd"
    functional: bool = Field(
        default=True,
        description="also compare what the trained tickets compute (agreement, agreement_kappa, "
        "error_consistency, cka on the test split) and correlate structure with function",
    )
    stability: StabilityConfig | None = Field(
        default=None,
        description="train every method's ticket (replicate 0, no ablation) a second time with another data "
        "order and measure the error barrier on the linear path between the two trainings; true or a mapping "
        "{densities: [...], points: 11}; default off",
    )
    skip_sections: list[str] = Field(
        default_factory=list,
        description="report sections not computed (their names as in graphtickets.study.sections), e.g. "
        "[ladder] for a study about something else whose budget the ladder's nulls would exceed; default none",
    )

    @field_validator("skip_sections")
    @classmethod
    def _skip(cls, v: list[str]) -> list[str]:
        # the names are checked against the registered sections when the study starts
        # (graphtickets.study.runner: config sits below the sections and does not import them)
        _no_duplicates("", v)
        return v

    @field_validator("stability", mode="before")
    @classmethod
    def _stability(cls, v: Any) -> Any:
        if isinstance(v, bool):
            return {} if v else None
        return v

    @field_validator("kinds")
    @classmethod
    def _kinds(cls, v: list[str] | None) -> list[str] | None:
        from graphtickets.analysis import DISTANCES

        for k in v or []:
            if k not in DISTANCES:
                raise ValueError(f"unknown distance kind {k!r}; known kinds: {', '.join(sorted(DISTANCES))}")
        return v

    @field_validator("null_samples_by_kind")
    @classmethod
    def _by_kind(cls, v: dict[str, int]) -> dict[str, int]:
        from graphtickets.analysis import DISTANCES

        for k, n in v.items():
            if k not in DISTANCES:
                raise ValueError(f"unknown distance kind {k!r}; known kinds: {', '.join(sorted(DISTANCES))}")
            check_size(f"null samples for {k!r}", n, low=0)
        return v

    @field_validator("mds_kind")
    @classmethod
    def _mds(cls, v: str) -> str:
        from graphtickets.analysis import DISTANCES

        if v not in DISTANCES:
            raise ValueError(f"unknown distance kind {v!r}; known kinds: {', '.join(sorted(DISTANCES))}")
        return v

    @field_validator("null_model")
    @classmethod
    def _null(cls, v: str) -> str:
        if v not in ("shuffle", "rewire"):
            raise ValueError(f"null_model must be 'shuffle' or 'rewire', got {v!r}")
        return v

    @field_validator("kinds")
    @classmethod
    def _kinds_once(cls, v: list[str] | None) -> list[str] | None:
        _no_duplicates("", v or [])
        return v


def _no_duplicates(what: str, values: list[Any]) -> None:
    """Refuse a value listed twice (``what`` prefixes the message; empty inside a field validator)."""
    seen: list[Any] = []
    for x in values:
        if x in seen:
            raise ValueError(f"{what + ': ' if what else ''}{x!r} is listed twice; list each once "
                             f"(every cell would run twice)")
        seen.append(x)


class QuickConfig(_Strict):
    """Overrides applied by ``--quick``; missing keys: 1 seed, 2 densities, at most 2 epochs."""

    seeds: list[int] | None = None
    densities: list[float] | None = None
    train: dict[str, Any] = Field(default_factory=dict)
    methods: dict[str, dict[str, Any]] = Field(default_factory=dict, description="hparam overrides per method")
    analysis: dict[str, Any] = Field(default_factory=dict)
    ablations: list[str] | None = None
    replicates: int | None = None


_DEVICE = re.compile(r"^(cpu|cuda(:\d+)?|mps)$")


def check_device(v: str) -> str:
    """``v`` if it names a torch device a study can use (``cpu``, ``cuda``, ``cuda:N``, ``mps``)."""
    if not _DEVICE.match(str(v)):
        raise ValueError(f"unknown device {v!r}; use cpu, cuda, cuda:<index> or mps")
    return str(v)


def _type_name(default: Any) -> str:
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(type(default), type(default).__name__)


def _numeric_ok(method: str) -> set[str]:
    """Hyperparameters of ``method`` whose annotation admits a number (e.g. ``float | str``)."""
    from graphtickets.pruning import METHODS

    return {n for n, a in METHODS[method].annotations().items() if "float" in a or "int" in a}


def _check_hparam_types(
    where: str, hparams: Mapping[str, Any], known: Mapping[str, Any], numeric: set[str] | frozenset[str] = frozenset()
) -> None:
    """Each hyperparameter has the type of its default (an int passes for a float; None defaults pass).

    A string default also admits a number where the method's annotation says so (``numeric``).
    """
    from graphtickets.training import OPTIMIZERS

    for k, v in hparams.items():
        if k not in known or v is None:
            continue
        d = known[k]
        if d is None:
            ok = True
        elif isinstance(d, bool):
            ok = isinstance(v, bool)
        elif isinstance(d, int):
            ok = isinstance(v, int) and not isinstance(v, bool)
        elif isinstance(d, float):
            ok = isinstance(v, (int, float)) and not isinstance(v, bool)
        elif isinstance(d, str):
            ok = isinstance(v, str) or (k in numeric and isinstance(v, (int, float)) and not isinstance(v, bool))
        elif isinstance(d, (list, tuple)):
            ok = isinstance(v, (list, tuple))
        else:
            ok = True
        if not ok:
            raise ValueError(f"{where}.{k}: {v!r} is not {_type_name(d)} (default {d!r}); write e.g. {k}: {d!r}")
        if k == "optimizer" and v not in OPTIMIZERS:
            raise ValueError(f"{where}.{k}: unknown optimizer {v!r}; use one of {', '.join(sorted(OPTIMIZERS))}")


def _errors_text(exc: ValidationError) -> str:
    """A pydantic error as one line: ``key: message; key: message`` (unknown keys named as such)."""
    msgs = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err.get("loc", ()))
        msg = str(err.get("msg", "")).removeprefix("Value error, ")
        if err.get("type") == "extra_forbidden":
            msg = "unknown key; remove it or check its spelling"
        elif str(err.get("type", "")).endswith(("_type", "_parsing")) and "input" in err:
            msg = f"{msg}, got {type(err['input']).__name__} {_short_repr(err['input'])}"
        msgs.append(f"{key}: {msg}" if key else msg)
    return "; ".join(msgs)


def merge_method(m: MethodConfig, over: Mapping[str, Any]) -> MethodConfig:
    """The study-level method entry ``m`` with the overrides ``over`` of a model (:class:`ModelConfig` ``methods``).

    Hyperparameters merge key by key; ``regime`` replaces; ``model`` is replaced whole;
    ``source`` merges key by key (``hparams`` merged, ``model`` replaced whole), unless it
    names another ``method``: then it replaces the study's source. ``ValueError`` names a bad key.

    >>> m = MethodConfig(name="elastic", source=SourceConfig(model={"widths": [8, 8, 8]}, hparams={"rate": 0.2}))
    >>> r = merge_method(m, {"source": {"model": {"depth": 14}}})
    >>> r.source.model, r.source.hparams, r.source.method
    ({'depth': 14}, {'rate': 0.2}, 'imp')
    """
    data = m.model_dump()
    body = dict(over)
    for key in ("model", "regime", "built_from"):
        if key in body:
            data[key] = body.pop(key)
    if "source" in body:
        src, base = dict(body.pop("source")), data.get("source")
        if base is None or ("method" in src and src["method"] != base["method"]):
            data["source"] = src
        else:
            hp = src.pop("hparams", {})
            if not isinstance(hp, Mapping):
                raise ValueError(f"source.hparams: give a mapping of hyperparameters, got {type(hp).__name__} {_short_repr(hp)}")
            data["source"] = {**base, **src, "hparams": {**base["hparams"], **hp}}
    data["hparams"] = {**data["hparams"], **body}
    try:
        return MethodConfig.model_validate(data)
    except ValidationError as exc:
        raise ValueError(_errors_text(exc)) from None


def _check_model_kwargs(where: str, name: str, kwargs: Mapping[str, Any]) -> None:
    """The keyword arguments are parameters of the model builder (unless it takes ``**kwargs``)."""
    import inspect

    from graphtickets import models

    params = inspect.signature(models.MODELS[name]).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    fixed = {"in_shape", "num_classes", "seed", "name"}
    allowed = sorted(k for k, p in params.items() if k not in fixed and p.kind is not inspect.Parameter.VAR_POSITIONAL)
    bad = sorted(set(kwargs) - set(params) - {"init"}) + sorted(set(kwargs) & fixed)
    if bad:
        raise ValueError(
            f"{where}: model {name!r} takes no argument {', '.join(map(repr, bad))}; its arguments are: "
            f"{', '.join(allowed + ['init'])}"
        )


def _try_build(where: str, name: str, kwargs: Mapping[str, Any], dataset: str, *, allow_large: bool = False) -> None:
    """Build the model once (cheap) so bad argument values fail now, not in every cell.

    It is first built on torch's ``meta`` device (no memory) to count its parameters: above
    ``LIMITS["params"]`` it is refused unless ``allow_large``.
    """
    import torch

    from graphtickets import data, models

    info = data.info(dataset)

    def build(count_only: bool = False) -> Any:
        kw = dict(kwargs)
        if count_only:  # the count does not depend on the initialization, and kaiming_normal_ on the meta
            kw["init"] = "default"  # device imports torch._dynamo (1.5 s of every command's start-up)
        return models.build(name, in_shape=info.in_shape, num_classes=info.num_classes, seed=0, **kw)

    try:
        try:
            with torch.device("meta"):
                n_params = sum(p.numel() for p in build(count_only=True).parameters())
        except (GraphticketsError, TypeError, ValueError):
            raise
        except Exception:  # noqa: BLE001 - a builder that cannot run on the meta device: count for real below
            n_params = None
        if n_params is not None and n_params > LIMITS["params"] and not allow_large:
            raise ValueError(
                f"it has {n_params:,} parameters, above the limit {LIMITS['params']:,}; make it smaller, or lift "
                f"the limit with allow_large: true"
            )
        build()
    except (GraphticketsError, TypeError, ValueError, RuntimeError, OverflowError) as exc:
        raise ValueError(f"{where}: cannot build it for {dataset}: {' '.join(str(exc).split())}") from None


def _same_prunable(where: str, name: str, kwargs: Mapping[str, Any], override: Mapping[str, Any], dataset: str) -> None:
    """A method's model variant keeps the prunable weights (names, shapes): its tickets join the comparisons."""
    from graphtickets import data, models
    from graphtickets.ticket import prunable

    _try_build(where, name, {**kwargs, **override}, dataset)
    info = data.info(dataset)
    shapes = [
        {n: tuple(p.shape) for n, p in prunable(models.build(name, in_shape=info.in_shape, num_classes=info.num_classes,
                                                              seed=0, **dict(kw))).items()}
        for kw in (kwargs, {**kwargs, **override})
    ]
    if shapes[0] != shapes[1]:
        raise ValueError(
            f"{where}: {dict(override)} changes the prunable weights of {name} (names or shapes); a method's model "
            f"variant may add e.g. BatchNorm but must keep them, since its tickets are compared with the others"
        )


def derived_sources(methods: list[MethodConfig]) -> list[MethodConfig]:
    """The methods whose tickets a derived method is built from: every one but baselines, derived
    methods (and the dense reference, which is not a method entry); imported tickets count."""
    from graphtickets.pruning import METHODS

    return [m for m in methods if m.imported is not None or METHODS[m.name].family not in ("baseline", "derived")]


def _check_densities(v: list[float]) -> list[float]:
    if not v:
        raise ValueError("give at least one density, e.g. densities: [0.2, 0.05]")
    _no_duplicates("", [float(d) for d in v])
    for d in v:
        if not (0.0 < float(d) <= 1.0):
            raise ValueError(
                f"density {d!r} is outside (0, 1]; density is the fraction of weights KEPT "
                f"(sparsity 0.95 is density 0.05)"
            )
    return [float(d) for d in v]


def _check_method(where: str, m: MethodConfig, train: TrainConfig, *, allow_large: bool = False) -> MethodConfig:
    """Check one method entry (name, hyperparameters, source, regime); ``m`` with a transform's default source.

    Imported methods pass unchecked here (:meth:`StudyConfig._check_imports` checks them).
    """
    import graphtickets.graphs  # noqa: F401  (registers the derived method relational)
    from graphtickets.pruning import METHODS

    if m.imported is not None:
        return m
    if m.name not in METHODS:
        raise ValueError(f"{where}: unknown method {m.name!r}; known methods: {', '.join(sorted(METHODS))}")
    known = METHODS[m.name].hparams()
    bad = sorted(k for k in m.hparams if k in STUDY_SUPPLIED)
    if bad:
        raise ValueError(f"{where}: {', '.join(bad)} are set by the study; remove them from the config")
    unknown = sorted(set(m.hparams) - set(known))
    if unknown:
        raise ValueError(
            f"{where}: method {m.name!r} has no hyperparameter {', '.join(map(repr, unknown))}; "
            f"its hyperparameters are: {', '.join(sorted(k for k in known if k not in STUDY_SUPPLIED))}"
        )
    if METHODS[m.name].kind == "transform":
        if m.source is None:
            m = m.model_copy(update={"source": SourceConfig()})
        assert m.source is not None
        src = m.source.method
        if src not in METHODS or METHODS[src].kind == "transform":
            raise ValueError(
                f"{where}.source.method: {src!r} is not a method that finds tickets; use one of "
                f"{', '.join(sorted(k for k, s in METHODS.items() if s.kind != 'transform'))}"
            )
    elif m.source is not None:
        raise ValueError(f"{where}.source: only transform methods (elastic) take a source; remove it")
    if m.built_from != "both" and METHODS[m.name].family != "derived":
        raise ValueError(f"{where}.built_from: only derived methods (family derived: "
                         f"{', '.join(sorted(k for k, s in METHODS.items() if s.family == 'derived'))}) take it; remove it")
    _check_hparam_types(where, m.hparams, known, _numeric_ok(m.name))
    check_hparam_values(where, m.name, m.hparams, allow_large=allow_large)
    if m.source is not None and m.source.method in METHODS:
        sknown = METHODS[m.source.method].hparams()
        sbad = sorted(set(m.source.hparams) - set(sknown))
        if sbad:
            raise ValueError(
                f"{where}.source.hparams: method {m.source.method!r} has no hyperparameter "
                f"{', '.join(map(repr, sbad))}; its hyperparameters are: "
                f"{', '.join(sorted(k for k in sknown if k not in STUDY_SUPPLIED))}"
            )
        _check_hparam_types(f"{where}.source.hparams", m.source.hparams, sknown, _numeric_ok(m.source.method))
        check_hparam_values(f"{where}.source.hparams", m.source.method, m.source.hparams, allow_large=allow_large)
    followers = [(where, m.name, m.hparams, m.regime)]
    if m.source is not None:
        followers.append((f"{where}.source", m.source.method, m.source.hparams, m.source.regime))
    for w, name, hp, regime in followers:
        if regime == "study":
            if METHODS[name].data_use != "epochs":
                raise ValueError(f"{w}.regime: method {name!r} does not train; regime: study is for methods that do")
            regime_hparams(name, hp, train)
    return m


class TransferConfig(_Strict):
    """The transfer axis (Morcos et al. 2019): tickets found on one task, trained and tested on another.

    ``found_on`` and ``trained_on`` are dataset entries (names, labels or ``{name: ..., <argument>:
    ...}``) of the study's ``datasets:``; for every ``X`` of ``found_on`` and ``Y != X`` of
    ``trained_on`` each ticket of ``X``'s cells is trained from the same initial weights on ``Y``
    and tested on ``Y`` (``Y``'s own cells are the ``Y -> Y`` reference).
    """

    found_on: list[str]
    trained_on: list[str]

    @field_validator("found_on", "trained_on", mode="before")
    @classmethod
    def _labels(cls, v: Any) -> Any:
        if isinstance(v, (str, Mapping)):
            v = [v]
        if not isinstance(v, list) or not v:
            raise ValueError("give a list of tasks (dataset entries of datasets:), e.g. [mnist1d]")
        return [task_label(x) for x in v]

    def pairs(self) -> list[tuple[str, str]]:
        """``(found on, trained on)`` label pairs of different tasks, in config order."""
        return [(x, y) for x in self.found_on for y in self.trained_on if x != y]


class StudyConfig(_Strict):
    """A whole study (see the module docstring for the YAML form)."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    datasets: list[DatasetConfig]
    models: list[ModelConfig]
    methods: list[MethodConfig]
    densities: list[float]
    seeds: list[int] = Field(default_factory=lambda: [0])
    train: TrainConfig = Field(default_factory=TrainConfig)
    prune_data: PruneDataConfig = Field(default_factory=PruneDataConfig)
    analysis: AnalysisConfig = Field(default_factory=AnalysisConfig)
    device: str = Field(default="cpu", description="cpu, cuda, cuda:N or mps (`graphtickets run --device` overrides it)")
    dense_reference: bool = Field(default=True, description="also train the dense network once per dataset, model and seed")
    ablations: list[str] = Field(
        default_factory=list,
        description="sanity checks for every method's ticket, trained like it: shuffle (masks shuffled within "
                    "each layer), in_degree (each unit's fan-in kept), rewire (each unit's fan-in and fan-out "
                    "kept), reinit (same masks, new initial weights)",
    )
    replicates: int = Field(
        default=1,
        description="sibling tickets per (method, density, init seed): same initial weights, other seeds for "
                    "everything stochastic afterwards (data order, pruning batches, random draws); 1 = none",
    )
    quick: QuickConfig = Field(default_factory=QuickConfig)
    transfer: TransferConfig | None = Field(
        default=None, description="tickets found on one task trained and tested on another (TransferConfig)")
    allow_large: bool = Field(default=False, description="lift the documented size limits (LIMITS); not part of cell ids")

    @field_validator("ablations")
    @classmethod
    def _ablations(cls, v: list[str]) -> list[str]:
        for a in v:
            if a not in ABLATIONS:
                raise ValueError(f"unknown ablation {a!r}; use any of {', '.join(ABLATIONS)}")
        if len(set(v)) != len(v):
            raise ValueError("an ablation is listed twice; list each once")
        return v

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        return check_device(v)

    @field_validator("datasets", mode="before")
    @classmethod
    def _datasets(cls, v: Any) -> Any:
        if isinstance(v, str):
            v = [v]
        if isinstance(v, list):
            return [{"name": x} if isinstance(x, str) else x for x in v]
        return v

    @field_validator("models", mode="before")
    @classmethod
    def _models(cls, v: Any) -> Any:
        if isinstance(v, (str, Mapping)):
            v = [v]
        if isinstance(v, list):
            return [{"name": x} if isinstance(x, str) else x for x in v]
        return v

    @field_validator("methods", mode="before")
    @classmethod
    def _methods(cls, v: Any) -> Any:
        # accepted: [random, snip], {random: {}, imp: {epochs: 3}}, [{name: imp, hparams: {...}}]
        if isinstance(v, Mapping):
            out = []
            for name, body in v.items():
                if body is not None and not isinstance(body, Mapping):
                    raise ValueError(
                        f"methods.{name}: give its hyperparameters as a mapping (e.g. {name}: {{epochs: 2}}) "
                        f"or nothing, got {_short_repr(body)}"
                    )
                body = dict(body or {})
                source = body.pop("source", None)
                regime = body.pop("regime", None)
                model = body.pop("model", None)
                imported = body.pop("import", body.pop("imported", None))
                built_from = body.pop("built_from", None)
                entry: dict[str, Any] = {"name": name, "hparams": body}
                if built_from is not None:
                    entry["built_from"] = built_from
                if imported is not None:
                    entry["imported"] = imported
                if source is not None:
                    entry["source"] = source
                if model is not None:
                    entry["model"] = model
                if regime is not None:
                    entry["regime"] = regime
                out.append(entry)
            return out
        if isinstance(v, list):
            return [{"name": x} if isinstance(x, str) else x for x in v]
        return v

    @field_validator("densities", mode="before")
    @classmethod
    def _densities_list(cls, v: Any) -> Any:
        return [v] if isinstance(v, (int, float)) and not isinstance(v, bool) else v

    @field_validator("densities")
    @classmethod
    def _densities(cls, v: list[float]) -> list[float]:
        return _check_densities(v)

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: list[int]) -> list[int]:
        if not v:
            raise ValueError("give at least one seed, e.g. seeds: [0]")
        for x in v:
            check_seed(x)
        _no_duplicates("", v)
        return v

    @model_validator(mode="after")
    def _check_once_and_sizes(self) -> StudyConfig:
        _no_duplicates("datasets", [d.name for d in self.datasets])
        _no_duplicates("models", [m.model_dump() for m in self.models])
        big = self.allow_large
        check_size("train.epochs", self.train.epochs, low=0, limit="epochs", allow_large=big)
        for key in ("batch_size", "eval_batch_size"):
            check_size(f"train.{key}", getattr(self.train, key), low=1, limit="batch_size", allow_large=big)
        check_size("prune_data.batch_size", self.prune_data.batch_size, low=1, limit="batch_size", allow_large=big)
        check_size("prune_data.batches", self.prune_data.batches, low=1, limit="batches", allow_large=big)
        check_size("analysis.null_samples", self.analysis.null_samples, low=0, limit="null_samples", allow_large=big)
        check_size("replicates", self.replicates, low=1, limit="replicates", allow_large=big)
        for k, n in self.analysis.null_samples_by_kind.items():
            check_size(f"analysis.null_samples_by_kind.{k}", n, low=0, limit="null_samples", allow_large=big)
        return self

    @model_validator(mode="after")
    def _check_transfer(self) -> StudyConfig:
        """Every transfer task one of the datasets, each pair of the same input shape and class count."""
        from graphtickets import data

        t = self.transfer
        if t is None:
            return self
        names = [d.name for d in self.datasets]
        for key in ("found_on", "trained_on"):
            tasks = getattr(t, key)
            _no_duplicates(f"transfer.{key}", tasks)
            for label in tasks:
                if label not in names:
                    raise ValueError(f"transfer.{key}: {label!r} is not one of the study's datasets ({', '.join(names)}); "
                                     f"add it to datasets: (its own cells find the tickets and are the reference)")
        if not t.pairs():
            raise ValueError("transfer: no pair of different tasks (found_on and trained_on are one task); "
                             "give trained_on a task other than found_on")
        for x, y in t.pairs():
            a, b = data.info(x), data.info(y)
            if (tuple(a.in_shape), a.num_classes) != (tuple(b.in_shape), b.num_classes):
                raise ValueError(f"transfer: {x} (input {tuple(a.in_shape)}, {a.num_classes} classes) and {y} (input "
                                 f"{tuple(b.in_shape)}, {b.num_classes} classes) differ; a ticket found on one does not "
                                 f"fit the other's model: transfer between tasks of one input shape and class count")
        return self

    @model_validator(mode="after")
    def _check_methods(self) -> StudyConfig:
        seen: set[str] = set()
        for i, m in enumerate(self.methods):
            where = f"methods.{m.name}"
            if m.name in seen:
                raise ValueError(f"{where}: listed twice; list each method once")
            seen.add(m.name)
            self.methods[i] = _check_method(where, m, self.train, allow_large=self.allow_large)
        return self

    @model_validator(mode="after")
    def _check_imports(self, info: Any) -> StudyConfig:
        """Imported methods: a free name, nothing a method takes, and an existing file per (density, seed)."""
        from graphtickets.pruning import METHODS

        base = (info.context or {}).get("base")
        for i, m in enumerate(self.methods):
            if m.imported is None:
                continue
            where = f"methods.{m.name}"
            if m.name in METHODS or m.name == DENSE:
                raise ValueError(f"{where}: {m.name!r} is a built-in method; give the imported tickets another "
                                 f"name (e.g. {m.name}_imported)")
            extra = [k for k, v in (("hyperparameters " + ", ".join(sorted(m.hparams)), m.hparams),
                                    ("source", m.source), ("model", m.model)) if v]
            if m.regime != "own":
                extra.append("regime")
            if extra:
                raise ValueError(f"{where}: imported tickets take only import: {{files, kind, tolerance}}; "
                                 f"remove {', '.join(extra)}")
            self.methods[i] = m = m.model_copy(update={"imported": _absolute_import(m.imported, base)})
            assert m.imported is not None
            try:
                import_files(m.imported, self.densities, self.seeds)
            except ValueError as exc:
                raise ValueError(f"{where}.import: {exc}") from None
        return self

    @model_validator(mode="after")
    def _check_models(self) -> StudyConfig:
        labels = [mc.label() for mc in self.models]
        for label in labels:
            if labels.count(label) > 1:
                raise ValueError(
                    f"models: two entries are the architecture {label} (they differ only in methods or train); the "
                    f"tables key a model by its architecture, so list it once with its own settings"
                )
        names = [m.name for m in self.methods]
        for i, mc in enumerate(self.models):
            where = f"models[{i}] ({mc.name})"
            _check_model_kwargs(where, mc.name, mc.kwargs())
            unknown = [k for k in mc.methods if k not in names]
            if unknown:
                raise ValueError(
                    f"{where}.methods.{unknown[0]}: not a method of this study; a model's methods change the study's "
                    f"methods for that model: add it to methods: first, or use one of {', '.join(names)}"
                )
            if mc.methods and all(mc.methods.get(n) is False for n in names):
                raise ValueError(f"{where}.methods: every method is left out (false) for this model; keep at least one")
            train = self._model_train(where, mc)
            for m in self.methods:
                over = mc.methods.get(m.name)
                if over is False:
                    continue
                mwhere = f"{where}.methods.{m.name}" if over is not None else f"methods.{m.name}"
                hint = "" if over is not None else f" (for {where}; give {where}.methods.{m.name} to change it for this model)"
                try:
                    try:
                        m = merge_method(m, over) if over else m
                    except ValueError as exc:
                        raise ValueError(f"{mwhere}.{exc}") from None
                    m = _check_method(mwhere, m, train, allow_large=self.allow_large)
                    if m.source is not None and m.source.model:
                        _check_model_kwargs(f"{mwhere}.source.model", mc.name, {**mc.kwargs(), **m.source.model})
                        for ds in self.datasets:
                            _try_build(f"{mwhere}.source.model", mc.name, {**mc.kwargs(), **m.source.model}, ds.name,
                                       allow_large=self.allow_large)
                    if m.model:
                        _check_model_kwargs(f"{mwhere}.model", mc.name, {**mc.kwargs(), **m.model})
                        for ds in self.datasets:
                            _same_prunable(f"{mwhere}.model", mc.name, mc.kwargs(), m.model, ds.name)
                except ValueError as exc:
                    raise ValueError(f"{exc}{hint}") from None
            for ds in self.datasets:
                _try_build(where, mc.name, mc.kwargs(), ds.name, allow_large=self.allow_large)
        return self

    @model_validator(mode="after")
    def _check_derived(self) -> StudyConfig:
        """A derived method needs two source methods on its model, and held-out tickets two seeds."""
        from graphtickets.pruning import METHODS

        for i, mc in enumerate(self.models):
            methods = self.methods_for(mc)
            derived = [m for m in methods if m.imported is None and METHODS[m.name].family == "derived"]
            if not derived:
                continue
            names = ", ".join(m.name for m in derived)
            where = f"models[{i}] ({mc.name})" if len(self.models) > 1 else "methods"
            sources = derived_sources(methods)
            if len(sources) < 2:
                have = f"only {sources[0].name}" if sources else "none"
                raise ValueError(
                    f"{where}: the derived methods {names} are built from the tickets of the study's other methods "
                    f"(not baselines, not derived) and need at least two of them; this study has {have}: add methods "
                    f"that find tickets, e.g. snip and synflow"
                )
            held = [m.name for m in derived if m.built_from in ("both", "held_out")]
            if held and len(self.seeds) < 2:
                raise ValueError(
                    f"methods.{held[0]}: held-out tickets are built from the other seeds' tickets, and this study "
                    f"has one seed ({self.seeds[0]}); give two or more seeds, or built_from: same_init"
                )
        return self

    def _model_train(self, where: str, mc: ModelConfig) -> TrainConfig:
        """:meth:`train_for` with the size limits and the optimizer checked (ValueError naming ``where.train``)."""
        from graphtickets.training import OPTIMIZERS

        train = self.train_for(mc)
        if mc.train:
            big = self.allow_large
            if "epochs" in mc.train:
                check_size(f"{where}.train.epochs", train.epochs, low=0, limit="epochs", allow_large=big)
            for key in ("batch_size", "eval_batch_size"):
                if key in mc.train:
                    check_size(f"{where}.train.{key}", getattr(train, key), low=1, limit="batch_size", allow_large=big)
            if train.optimizer not in OPTIMIZERS:
                raise ValueError(f"{where}.train.optimizer: unknown optimizer {train.optimizer!r}; use one of "
                                 f"{', '.join(sorted(OPTIMIZERS))}")
        return train

    def methods_for(self, mc: ModelConfig) -> list[MethodConfig]:
        """The study's methods as they run on model ``mc``: its ``methods`` overrides applied, those it
        leaves out (``false``) dropped (:func:`merge_method`)."""
        out = []
        for m in self.methods:
            over = mc.methods.get(m.name, {})
            if over is False:
                continue
            out.append(merge_method(m, over) if over else m)
        return out

    def train_for(self, mc: ModelConfig) -> TrainConfig:
        """The training settings of model ``mc``: its ``train`` over the study's, key by key."""
        if not mc.train:
            return self.train
        return TrainConfig.model_validate({**self.train.model_dump(), **mc.train})

    @model_validator(mode="after")
    def _check_train(self) -> StudyConfig:
        from graphtickets.training import OPTIMIZERS

        if self.train.optimizer not in OPTIMIZERS:
            raise ValueError(
                f"train.optimizer: unknown optimizer {self.train.optimizer!r}; use one of {', '.join(sorted(OPTIMIZERS))}"
            )
        return self

    @model_validator(mode="after")
    def _check_quick(self) -> StudyConfig:
        q = self.quick
        names = {m.name: m for m in self.methods}
        for key in q.methods:
            base, _, rest = key.partition(".")
            if base not in names or rest not in ("", "source") or (rest == "source" and names[base].source is None):
                known = sorted([*names, *(f"{n}.source" for n, m in names.items() if m.source is not None)])
                raise ValueError(f"quick.methods.{key}: not a method of this study; use one of {', '.join(known)}")
        if q != QuickConfig():  # the quick variant must validate too (it is checked with an empty quick)
            try:
                self.apply_quick()
            except ConfigError as exc:
                raise ValueError(f"quick (the --quick variant): {str(exc).split(': ', 1)[-1]}") from None
        return self

    def apply_quick(self) -> StudyConfig:
        """The ``--quick`` variant: the ``quick`` overrides (default 1 seed, 2 densities, <= 2 epochs)."""
        q = self.quick
        data = self.model_dump()
        data["name"] = f"{self.name}-quick"
        data["seeds"] = q.seeds if q.seeds is not None else self.seeds[:1]
        data["densities"] = q.densities if q.densities is not None else self.densities[:2]
        data["train"] = {**data["train"], **({"epochs": min(self.train.epochs, 2)} if not q.train else q.train)}
        data["analysis"] = {**data["analysis"], **q.analysis}
        if q.ablations is not None:
            data["ablations"] = q.ablations
        if q.replicates is not None:
            data["replicates"] = q.replicates
        for m in data["methods"]:
            m["hparams"] = {**m["hparams"], **q.methods.get(m["name"], {})}
            if m.get("source") is not None:
                over = q.methods.get(f"{m['name']}.source", {})
                m["source"]["hparams"] = {**m["source"]["hparams"], **over}
        for mc in data["models"]:  # quick's settings win over a model's own too
            if mc["train"]:
                own = {"epochs": min(int(mc["train"]["epochs"]), 2)} if "epochs" in mc["train"] else {}
                mc["train"] = {**mc["train"], **(own if not q.train else q.train)}
            for name, over in mc["methods"].items():
                if isinstance(over, dict):
                    mc["methods"][name] = over = {**over, **q.methods.get(name, {})}
                    if isinstance(over.get("source"), dict) and f"{name}.source" in q.methods:
                        src = over["source"]
                        over["source"] = {**src, "hparams": {**src.get("hparams", {}), **q.methods[f"{name}.source"]}}
        data["quick"] = QuickConfig().model_dump()
        return validate(data, source=f"{self.name} (quick)")


def _loc(err: Mapping[str, Any], raw: Mapping[str, Any]) -> str:
    parts: list[str] = []
    node: Any = raw
    for p in err.get("loc", ()):
        if isinstance(p, int) and isinstance(node, list) and p < len(node):
            item = node[p]
            named = parts and parts[-1] in ("datasets", "models", "methods")  # lists of names
            name = item.get("name") if isinstance(item, Mapping) else item if isinstance(item, str) and named else None
            parts[-1:] = [f"{parts[-1]}[{p}]" if name is None else f"{parts[-1]}.{name}"] if parts else [str(p)]
            node = item
        elif isinstance(p, str):
            parts.append(p)
            node = node.get(p) if isinstance(node, Mapping) else None
        else:
            parts.append(str(p))
    return ".".join(parts)


def check_run_options(
    study: StudyConfig,
    out: str | os.PathLike[str],
    *,
    workers: Any = 1,
    scheduler: Any = None,
    resume: bool = True,
) -> None:
    """Check how a study is to be run, before any folder or file is created.

    ``workers`` an integer in ``[1, LIMITS["workers"]]`` (unless ``allow_large``); ``scheduler``
    a non-empty address; the device usable here (without a scheduler the cells run on this
    machine: ``cuda`` without CUDA is refused now, not in every cell); ``out`` not an existing
    file; its ``study.db``, if any, a readable study store (with ``resume=False``, i.e.
    ``--restart``, a broken one is moved aside as ``study.db.broken-<time>`` instead).

    Raises
    ------
    ConfigError, GraphticketsError
        Naming the option, the problem and the fix.
    """
    from graphtickets.study.store import check_db
    from graphtickets.training import resolve_device

    try:
        check_size("--workers", workers, low=1, limit="workers", allow_large=study.allow_large)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if scheduler is not None and (not isinstance(scheduler, str) or not scheduler.strip()):
        raise ConfigError(f"--scheduler must be a Dask scheduler address such as tcp://host:8786, got {scheduler!r}")
    if scheduler is None:
        try:
            resolve_device(study.device)
        except GraphticketsError as exc:
            raise ConfigError(f"{exc} (the config's device:, or --device)") from None
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"--out {str(path)!r} is an existing file, not a folder; give a folder for the study's outputs")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(f"--out {str(path)!r}: {str(parent)!r} is a file, not a folder; give another --out")
            break
    check_db(path, restart=not resume)


def validate(raw: Any, *, source: str = "config", base: str | os.PathLike[str] | None = None) -> StudyConfig:
    """Validate a mapping into a :class:`StudyConfig`; a :class:`ConfigError` names key and fix.

    ``base``: the folder relative paths of imported tickets are taken from (default: the
    working directory).
    """
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{source}: a study config is a YAML mapping (name:, datasets:, ...), got {type(raw).__name__}")
    try:
        return StudyConfig.model_validate(dict(raw), context={"base": Path(base) if base is not None else None})
    except ValidationError as exc:
        msgs = []
        for err in exc.errors():
            key = _loc(err, raw)
            msg = str(err.get("msg", "")).removeprefix("Value error, ")
            if err.get("type") == "extra_forbidden":
                msg = "unknown key; remove it or check its spelling (see graphtickets/study/config.py)"
            elif err.get("type") == "missing":
                msg = "required key is missing; add it"
            elif str(err.get("type", "")).endswith(("_type", "_parsing")) and "input" in err:
                msg = f"{msg}, got {type(err['input']).__name__} {_short_repr(err['input'])}"
            msgs.append(f"{key}: {msg}" if key else msg)
        raise ConfigError(f"{source}: " + "; ".join(msgs)) from None


def _short_repr(v: Any) -> str:
    r = repr(v)
    return r if len(r) <= 60 else r[:57] + "..."


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping (YAML keeps the last silently)."""


def _unique_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)  # type: ignore[no-untyped-call]
        try:
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is given twice; give each key once", key_node.start_mark
                )
            seen.add(key)
        except TypeError:  # an unhashable key: SafeLoader reports it
            pass
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)


def read_yaml(path: str | os.PathLike[str]) -> Any:
    """Parse a YAML file safely (no Python objects, no duplicate keys); a :class:`ConfigError` names the file."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except IsADirectoryError:
        raise ConfigError(f"study config {str(path)!r} is a folder; give a YAML file (see benchmarks/studies/)") from None
    except OSError as exc:
        raise ConfigError(f"cannot read the study config {str(path)!r}: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not a text YAML file (byte {exc.start} is not UTF-8 text); give a study YAML"
        ) from None
    if "\x00" in text:
        raise ConfigError(f"{path}: not a text YAML file (it holds NUL bytes); give a study YAML")
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{path}: not valid YAML: nested too deeply") from None


def default_config_path() -> Path:
    """The bundled default study (``graphtickets/studies/default.yaml``)."""
    return Path(__file__).resolve().parent.parent / "studies" / "default.yaml"


def load_config(config: str | os.PathLike[str] | Mapping[str, Any] | StudyConfig | None = None) -> StudyConfig:
    """Read and validate a study config.

    Parameters
    ----------
    config : path, mapping, StudyConfig or None
        A YAML file, an already-parsed mapping, a config, or None for the bundled default
        study. A bare name (``"quick"``) is looked up in the bundled studies.

    Returns
    -------
    StudyConfig

    Raises
    ------
    ConfigError
        The file is missing, is not YAML, or does not validate (the message names the key).
    """
    if config is None:
        config = default_config_path()
    if isinstance(config, StudyConfig):
        return config
    if isinstance(config, Mapping):
        return validate(copy.deepcopy(dict(config)))
    path = Path(config)
    if not path.exists() and not path.suffix:
        bundled = default_config_path().parent / f"{path.name}.yaml"
        if bundled.exists():
            path = bundled
    if not path.exists():
        raise ConfigError(f"study config {str(path)!r} does not exist; give a YAML file (see benchmarks/studies/)")
    return validate(read_yaml(path), source=str(path), base=path.parent)
