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

More keys: ``ablations: [shuffle, reinit]`` (sanity checks: every method's ticket also trained
layer-shuffled and re-initialized, as ``snip+shuffle``, ``snip+reinit``); per method
``regime: study`` (a method that trains takes the study's ``train`` settings it has, e.g. IMP's
rounds) and ``model: {...}`` (the method runs on a variant of the study model that keeps its
prunable weights, e.g. ``batchnorm: true`` for Early-Bird); ``train.schedule``.
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

__all__ = [
    "StudyConfig",
    "DatasetConfig",
    "ModelConfig",
    "MethodConfig",
    "TrainConfig",
    "PruneDataConfig",
    "AnalysisConfig",
    "QuickConfig",
    "load_config",
    "default_config_path",
    "STUDY_SUPPLIED",
    "check_device",
    "ABLATIONS",
    "REGIME_FIELDS",
    "regime_hparams",
]

#: Method hyperparameters the study supplies itself (a config may not set them).
STUDY_SUPPLIED = ("data", "eval_data", "device", "source", "source_model", "dataset", "density", "seed")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DatasetConfig(_Strict):
    """A dataset of the grid: a name of ``gt.data.DATASETS`` and how to load it."""

    name: str
    root: str | None = Field(default=None, description="data folder (default $GRAPHTICKETS_DATA)")
    download: bool = False

    @field_validator("name")
    @classmethod
    def _known(cls, v: str) -> str:
        from graphtickets import data

        if v not in data.DATASETS:
            raise ValueError(f"unknown dataset {v!r}; known datasets: {', '.join(sorted(data.DATASETS))}")
        return v


class ModelConfig(BaseModel):
    """A model of the grid: a name of ``gt.models.MODELS`` and its keyword arguments."""

    model_config = ConfigDict(extra="allow")
    name: str

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
        kw = self.kwargs()
        if not kw:
            return self.name
        vals = [",".join(map(str, v)) if isinstance(v, (list, tuple)) else f"{k}={v}" for k, v in kw.items()]
        return f"{self.name}({';'.join(vals)})"


class SourceConfig(_Strict):
    """Where an elastic ticket comes from: a method run on another depth of the model family."""

    method: str = "imp"
    model: dict[str, Any] = Field(default_factory=dict, description="keyword arguments overriding the target model's")
    hparams: dict[str, Any] = Field(default_factory=dict)
    regime: str = Field(default="own", pattern="^(own|study)$", description="study: train like the tickets (see MethodConfig)")


class MethodConfig(_Strict):
    """One method of the grid: its name, hyperparameters, and (elastic) its source."""

    name: str
    hparams: dict[str, Any] = Field(default_factory=dict)
    source: SourceConfig | None = None
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


class TrainConfig(_Strict):
    """How every ticket is trained (from the model's initial weights, mask enforced) and evaluated."""

    epochs: int = Field(default=10, ge=0)
    optimizer: str = "adam"
    lr: float = Field(default=1.2e-3, gt=0)
    momentum: float = 0.9
    weight_decay: float = Field(default=0.0, ge=0)
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

#: Ablations a study can add for every method's ticket (``ablations: [shuffle, reinit]``).
ABLATIONS = ("shuffle", "reinit")


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


class AnalysisConfig(_Strict):
    """What is compared after the cells."""

    kinds: list[str] | None = Field(default=None, description="distance kinds; default every default kind")
    null_samples: int = Field(default=10, ge=0)
    null_samples_by_kind: dict[str, int] = Field(
        default_factory=dict, description="fewer (or more) nulls for costly kinds, e.g. {spectral: 4}"
    )
    null_model: str = "shuffle"
    mds_kind: str = "netlsd"

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
            if int(n) < 0:
                raise ValueError(f"null samples for {k!r} must be >= 0, got {n}")
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


class QuickConfig(_Strict):
    """Overrides applied by ``--quick``; missing keys: 1 seed, 2 densities, at most 2 epochs."""

    seeds: list[int] | None = None
    densities: list[float] | None = None
    train: dict[str, Any] = Field(default_factory=dict)
    methods: dict[str, dict[str, Any]] = Field(default_factory=dict, description="hparam overrides per method")
    analysis: dict[str, Any] = Field(default_factory=dict)
    ablations: list[str] | None = None


_DEVICE = re.compile(r"^(cpu|cuda(:\d+)?|mps)$")


def check_device(v: str) -> str:
    """``v`` if it names a torch device a study can use (``cpu``, ``cuda``, ``cuda:N``, ``mps``)."""
    if not _DEVICE.match(str(v)):
        raise ValueError(f"unknown device {v!r}; use cpu, cuda, cuda:<index> or mps")
    return str(v)


def _type_name(default: Any) -> str:
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(type(default), type(default).__name__)


def _check_hparam_types(where: str, hparams: Mapping[str, Any], known: Mapping[str, Any]) -> None:
    """Each hyperparameter has the type of its default (an int passes for a float; None defaults pass)."""
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
            ok = isinstance(v, str)
        elif isinstance(d, (list, tuple)):
            ok = isinstance(v, (list, tuple))
        else:
            ok = True
        if not ok:
            raise ValueError(f"{where}.{k}: {v!r} is not {_type_name(d)} (default {d!r}); write e.g. {k}: {d!r}")
        if k == "optimizer" and v not in OPTIMIZERS:
            raise ValueError(f"{where}.{k}: unknown optimizer {v!r}; use one of {', '.join(sorted(OPTIMIZERS))}")


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


def _try_build(where: str, name: str, kwargs: Mapping[str, Any], dataset: str) -> None:
    """Build the model once (cheap) so bad argument values fail now, not in every cell."""
    from graphtickets import data, models

    info = data.info(dataset)
    try:
        models.build(name, in_shape=info.in_shape, num_classes=info.num_classes, seed=0, **dict(kwargs))
    except (GraphticketsError, TypeError, ValueError) as exc:
        raise ValueError(f"{where}: cannot build it for {dataset}: {exc}") from None


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


def _check_densities(v: list[float]) -> list[float]:
    if not v:
        raise ValueError("give at least one density, e.g. densities: [0.2, 0.05]")
    for d in v:
        if not (0.0 < float(d) <= 1.0):
            raise ValueError(
                f"density {d!r} is outside (0, 1]; density is the fraction of weights KEPT "
                f"(sparsity 0.95 is density 0.05)"
            )
    return [float(d) for d in v]


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
                    "each layer), reinit (same masks, new initial weights)",
    )
    quick: QuickConfig = Field(default_factory=QuickConfig)

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
                body = dict(body or {})
                source = body.pop("source", None)
                regime = body.pop("regime", None)
                model = body.pop("model", None)
                entry: dict[str, Any] = {"name": name, "hparams": body}
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
        return v

    @model_validator(mode="after")
    def _check_methods(self) -> StudyConfig:
        from graphtickets.pruning import METHODS

        seen: set[str] = set()
        for i, m in enumerate(self.methods):
            where = f"methods.{m.name}"
            if m.name not in METHODS:
                raise ValueError(f"{where}: unknown method {m.name!r}; known methods: {', '.join(sorted(METHODS))}")
            if m.name in seen:
                raise ValueError(f"{where}: listed twice; list each method once")
            seen.add(m.name)
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
                    self.methods[i] = m = m.model_copy(update={"source": SourceConfig()})
                assert m.source is not None
                src = m.source.method
                if src not in METHODS or METHODS[src].kind == "transform":
                    raise ValueError(
                        f"{where}.source.method: {src!r} is not a method that finds tickets; use one of "
                        f"{', '.join(sorted(k for k, s in METHODS.items() if s.kind != 'transform'))}"
                    )
            elif m.source is not None:
                raise ValueError(f"{where}.source: only transform methods (elastic) take a source; remove it")
            _check_hparam_types(where, m.hparams, known)
            if m.source is not None and m.source.method in METHODS:
                sknown = METHODS[m.source.method].hparams()
                sbad = sorted(set(m.source.hparams) - set(sknown))
                if sbad:
                    raise ValueError(
                        f"{where}.source.hparams: method {m.source.method!r} has no hyperparameter "
                        f"{', '.join(map(repr, sbad))}; its hyperparameters are: "
                        f"{', '.join(sorted(k for k in sknown if k not in STUDY_SUPPLIED))}"
                    )
                _check_hparam_types(f"{where}.source.hparams", m.source.hparams, sknown)
            followers = [(where, m.name, m.hparams, m.regime)]
            if m.source is not None:
                followers.append((f"{where}.source", m.source.method, m.source.hparams, m.source.regime))
            for w, name, hp, regime in followers:
                if regime == "study":
                    if METHODS[name].data_use != "epochs":
                        raise ValueError(f"{w}.regime: method {name!r} does not train; regime: study is for methods that do")
                    regime_hparams(name, hp, self.train)
        return self

    @model_validator(mode="after")
    def _check_models(self) -> StudyConfig:
        for i, mc in enumerate(self.models):
            where = f"models[{i}] ({mc.name})"
            _check_model_kwargs(where, mc.name, mc.kwargs())
            for m in self.methods:
                if m.source is not None and m.source.model:
                    _check_model_kwargs(f"methods.{m.name}.source.model", mc.name, {**mc.kwargs(), **m.source.model})
                if m.model:
                    _check_model_kwargs(f"methods.{m.name}.model", mc.name, {**mc.kwargs(), **m.model})
                    for ds in self.datasets:
                        _same_prunable(f"methods.{m.name}.model", mc.name, mc.kwargs(), m.model, ds.name)
            for ds in self.datasets:
                _try_build(where, mc.name, mc.kwargs(), ds.name)
        return self

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
        for m in data["methods"]:
            m["hparams"] = {**m["hparams"], **q.methods.get(m["name"], {})}
            if m.get("source") is not None:
                over = q.methods.get(f"{m['name']}.source", {})
                m["source"]["hparams"] = {**m["source"]["hparams"], **over}
        data["quick"] = QuickConfig().model_dump()
        return validate(data, source=f"{self.name} (quick)")


def _loc(err: Mapping[str, Any], raw: Mapping[str, Any]) -> str:
    parts: list[str] = []
    node: Any = raw
    for p in err.get("loc", ()):
        if isinstance(p, int) and isinstance(node, list) and p < len(node):
            item = node[p]
            name = item.get("name") if isinstance(item, Mapping) else item if isinstance(item, str) else None
            parts[-1:] = [f"{parts[-1]}[{p}]" if name is None else f"{parts[-1]}.{name}"] if parts else [str(p)]
            node = item
        elif isinstance(p, str):
            parts.append(p)
            node = node.get(p) if isinstance(node, Mapping) else None
        else:
            parts.append(str(p))
    return ".".join(parts)


def validate(raw: Any, *, source: str = "config") -> StudyConfig:
    """Validate a mapping into a :class:`StudyConfig`; a :class:`ConfigError` names key and fix."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{source}: a study config is a YAML mapping (name:, datasets:, ...), got {type(raw).__name__}")
    try:
        return StudyConfig.model_validate(dict(raw))
    except ValidationError as exc:
        msgs = []
        for err in exc.errors():
            key = _loc(err, raw)
            msg = str(err.get("msg", "")).removeprefix("Value error, ")
            if err.get("type") == "extra_forbidden":
                msg = "unknown key; remove it or check its spelling (see graphtickets/study/config.py)"
            elif err.get("type") == "missing":
                msg = "required key is missing; add it"
            msgs.append(f"{key}: {msg}" if key else msg)
        raise ConfigError(f"{source}: " + "; ".join(msgs)) from None


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
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    return validate(raw, source=str(path))
