"""The pruning front end: the method registry, :func:`prune`, and the iterative scorer driver.

A method is a plain function ``fn(model, *, density, data, seed, **hparams)`` that returns a
:class:`MethodResult` (boolean masks keyed by parameter name, a dict of what the search found
and cost, and optionally weights the ticket starts from). It is registered in :data:`METHODS`
with :func:`register_method`. :func:`prune` validates the request, calls the method, and
turns the result into a :class:`~graphtickets.Ticket` with full provenance
(:func:`make_ticket`, the one place a ticket's provenance is built).

Methods that score weights (magnitude, SNIP, GraSP, SynFlow, random) are registered with
:func:`register_scorer` and go through :func:`score_prune`, which adds what every scorer gets
for free: the options of :class:`ScoringOptions` (global or layer scope, multi-round
schedules, a prior mask the result is nested in, a choice of prunable parameters, inverted
scores), declared there once with their defaults. A scoring method's signature lists only its
own options (and a shared option whose default it changes, e.g. SynFlow's ``rounds=100``)
and passes the rest on as ``**options``.

Imports: ``ticket``, ``data``, ``_json`` and ``pruning.select`` only (the method modules
import this one).
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import logging
import math
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from graphtickets._json import WALK_ON, plain
from graphtickets._registry import Registry
from graphtickets._rules import COMMON_RULES, Rule, check_seed
from graphtickets._version import __version__
from graphtickets.data.core import dataset_name
from graphtickets.errors import GraphticketsError
from graphtickets.pruning.select import draw_generator, select_topk
from graphtickets.ticket import Ticket, check_density, prunable

__all__ = [
    "MethodResult",
    "MethodSpec",
    "ScoringOptions",
    "SCORING_OPTIONS",
    "METHODS",
    "register_method",
    "register_scorer",
    "prune",
    "make_ticket",
    "score_prune",
    "plan_rounds",
    "schedule_densities",
    "masked_copy",
    "resolve_params",
    "Scorer",
    "Engine",
    "DATA_USES",
    "set_trajectory",
]

log = logging.getLogger("graphtickets.pruning")

#: A scorer: ``scorer(model, masks, data, generator, **kw) -> {name: score tensor}``.
#: ``model`` is a private copy with ``masks`` already applied; it may be modified freely.
Scorer = Callable[..., dict[str, torch.Tensor]]

#: An engine runs every round of :func:`score_prune` itself (SynFlow's fast rounds):
#: ``engine(model, names, masks, targets, *, scope, invert) -> (masks, meta)`` with ``masks``
#: the starting masks (all ones or the prior) and ``targets`` the density after each round.
Engine = Callable[..., tuple[dict[str, torch.Tensor], dict[str, Any]]]


# ---------------------------------------------------------------------------- result and options
@dataclass
class MethodResult:
    """What a method returns: masks, what it found and cost, and optionally weights.

    Attributes
    ----------
    masks : dict[str, torch.Tensor]
        Boolean masks keyed by parameter name.
    meta : dict
        What the search found; ``meta["cost"]`` (``epochs``, ``iterations``, optionally
        ``seconds``) is what it spent.
    weights : dict[str, torch.Tensor], optional
        Values the ticket starts from (IMP's rewound state, Elastic's carried weights);
        they become :attr:`Ticket.weights <graphtickets.Ticket>`.
    """

    masks: dict[str, torch.Tensor]
    meta: dict[str, Any] = field(default_factory=dict)
    weights: dict[str, torch.Tensor] | None = None

    def with_meta(self, **meta: Any) -> MethodResult:
        """The same result with ``meta`` entries added (a new object)."""
        return dataclasses.replace(self, meta={**self.meta, **meta})

    def __iter__(self) -> Iterator[Any]:
        """Deprecated: ``masks, meta = result`` (the former ``(masks, meta)`` return value)."""
        warnings.warn(
            "unpacking a MethodResult as (masks, meta) is deprecated; use result.masks and result.meta",
            DeprecationWarning, stacklevel=2,
        )
        return iter((self.masks, self.meta))


@dataclass(frozen=True)
class ScoringOptions:
    """The options every scoring method takes, and their defaults (declared here only).

    Attributes
    ----------
    scope : {"global", "layer"}
        Rank all weights together, or keep the density in every layer.
    rounds : int
        Number of prune-rescore rounds (SynFlow uses 100).
    schedule : {"exponential", "linear"}
        Density after round k (see :func:`schedule_densities`).
    prior : masks or Ticket, optional
        Start from these masks; pruned weights never come back.
    include_bias, keep_classifier_dense : bool
        Which parameters are prunable (see :func:`graphtickets.prunable`).
    invert : bool
        Keep the LOWEST scores instead (the "inverted" ablation of Frankle et al. 2021).
    """

    scope: str = "global"
    rounds: int = 1
    schedule: str = "exponential"
    prior: Mapping[str, torch.Tensor] | Ticket | None = None
    include_bias: bool = False
    keep_classifier_dense: bool = False
    invert: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.rounds, bool) or not isinstance(self.rounds, int) or self.rounds < 1:
            raise GraphticketsError(f"rounds must be an integer >= 1, got {self.rounds!r}")
        if self.scope not in ("global", "layer"):
            raise GraphticketsError(f"scope must be 'global' or 'layer', got {self.scope!r}")

    @classmethod
    def split(cls, kw: Mapping[str, Any]) -> tuple[ScoringOptions, dict[str, Any]]:
        """``(the shared options in kw, the rest)``."""
        shared = {k: v for k, v in kw.items() if k in SCORING_OPTIONS}
        return cls(**shared), {k: v for k, v in kw.items() if k not in SCORING_OPTIONS}


#: The shared scoring options and their defaults (the fields of :class:`ScoringOptions`).
SCORING_OPTIONS: dict[str, Any] = {f.name: f.default for f in dataclasses.fields(ScoringOptions)}


# ---------------------------------------------------------------------------- the registry
#: How a method may use data (:attr:`MethodSpec.data_use`).
DATA_USES = ("none", "batches", "epochs")

_CALL_ARGS = {"model", "density", "data", "seed"}


@dataclass(frozen=True)
class MethodSpec:
    """A registered pruning method.

    Attributes
    ----------
    name : str
        Registry key.
    fn : callable
        ``fn(model, *, density, data, seed, **hparams) -> MethodResult``.
    needs_data : bool
        Whether ``data`` (batches of ``(inputs, targets)``) is required.
    kind : str
        ``"baseline"``, ``"init"`` (pruning at initialization), ``"train"`` (found by
        training), ``"transform"`` (made from another ticket) or ``"derived"`` (built from the
        structure several tickets share: :mod:`graphtickets.pruning.derived`).
    summary : str
        One line for listings.
    reference : str
        The paper.
    data_use : str
        How the method uses ``data``, for callers that supply it (the study): ``"none"``
        (data-free), ``"batches"`` (a few batches, e.g. SNIP's gradients) or ``"epochs"``
        (it trains: epochs of training batches). Default: derived from ``needs_data`` and
        whether the method takes ``epochs``.
    family : str
        For tables and reports: ``"baseline"``, ``"at init"``, ``"trained"`` (found by
        training: a method whose ``data_use`` is ``"epochs"``), ``"transform"`` or
        ``"derived"``. Default: derived from ``kind`` and ``data_use``.
    trajectory : callable, optional
        ``trajectory(model, *, densities, data, seed, **hparams) -> {density: Ticket}``: one
        run that serves several densities (IMP's rounds). Callers that need several densities
        of one run (the study) use it instead of one ``fn`` call per density.
    options : type, optional
        A dataclass whose fields (with their defaults) the method takes as ``**options``
        besides the options of its signature: :class:`ScoringOptions` for every scoring
        method (:func:`register_scorer`), IMP's ``ImpOptions``. Declared once there.
    extras : callable, optional
        ``extras(ticket) -> dict``: the method's extra outputs as JSON-plain values, read
        from the ticket's ``meta`` (IMP's rounds, Early-Bird's distance curve, Gem-Miner's
        accuracies), under the result keys the study's figures read. Callers read them here
        instead of knowing methods by name.
    min_sources : int
        How many source tickets (``sources=[...]``) the method needs at least; 0 for a
        method that builds from the model (and data) alone. Callers (the study, the contract
        test) supply that many tickets of other methods to a method with ``min_sources > 0``.
    constraints : mapping of str to Rule
        The allowed values of the method's own hyper-parameters (:class:`graphtickets._rules.Rule`);
        a hyper-parameter without one follows :data:`graphtickets._rules.COMMON_RULES` by name
        (the training options many methods share), and ``optimizer`` names must be known
        optimizers. :meth:`check_values` applies them (a study config at load, ``graphtickets
        prune``), so a bad value fails before anything runs.
    """

    name: str
    fn: Callable[..., MethodResult]
    needs_data: bool
    kind: str
    summary: str
    reference: str
    data_use: str = ""
    family: str = ""
    trajectory: Callable[..., dict[float, Ticket]] | None = None
    options: type | None = None
    extras: Callable[[Ticket], dict[str, Any]] | None = None
    min_sources: int = 0
    constraints: Mapping[str, Rule] = field(default_factory=dict)

    def __post_init__(self) -> None:
        use = self.data_use or ("none" if not self.needs_data else "epochs" if "epochs" in self.hparams() else "batches")
        if use not in DATA_USES:
            raise GraphticketsError(f"method {self.name!r}: data_use must be one of {DATA_USES}, got {use!r}")
        fam = self.family or (
            self.kind if self.kind in ("transform", "derived") else "baseline" if self.kind == "baseline"
            else "trained" if self.kind == "train" or use == "epochs" else "at init"
        )
        object.__setattr__(self, "data_use", use)
        object.__setattr__(self, "family", fam)

    def _own(self) -> dict[str, inspect.Parameter]:
        params = inspect.signature(self.fn).parameters.items()
        return {n: p for n, p in params if n not in _CALL_ARGS and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}

    @property
    def scoring(self) -> bool:
        """Whether this is a scoring method (it takes the :class:`ScoringOptions`)."""
        return self.options is ScoringOptions

    def hparams(self) -> dict[str, Any]:
        """The method's hyperparameters and their defaults (those of :attr:`options` too)."""
        shared = {f.name: f.default for f in dataclasses.fields(self.options)} if self.options else {}
        own = {n: (None if p.default is inspect.Parameter.empty else p.default) for n, p in self._own().items()}
        return {**shared, **own}

    def annotations(self) -> dict[str, str]:
        """The type annotation of every hyperparameter, as written (e.g. ``"float | str | None"``)."""
        shared = {f.name: str(f.type) for f in dataclasses.fields(self.options)} if self.options else {}
        return {**shared, **{n: str(p.annotation) for n, p in self._own().items()}}

    def rules(self) -> dict[str, Rule]:
        """The rule of every hyper-parameter that has one: the method's own, else the common one."""
        from graphtickets.training import OPTIMIZERS

        names = set(self.hparams()) | set(self.constraints)
        out = {n: self.constraints.get(n) or COMMON_RULES.get(n) for n in names}
        for n in ("optimizer", "finetune_optimizer"):
            if n in names and n not in self.constraints:
                out[n] = Rule.choice(*sorted(OPTIMIZERS))
        return {n: r for n, r in sorted(out.items()) if r is not None}

    def check_values(self, where: str, hparams: Mapping[str, Any], *, allow_large: bool = False) -> None:
        """Raise :class:`GraphticketsError` naming ``where.<name>``, the value and the allowed ones for
        the first value of ``hparams`` that breaks its rule (:meth:`rules`); ``None`` values (the
        method's default) and names without a rule pass.

        >>> METHODS["imp"].check_values("methods.imp", {"epochs": 2, "rate": 0.2})
        """
        rules = self.rules()
        for k, v in hparams.items():
            if v is not None and k in rules:
                rules[k].check(f"{where}.{k}", v, allow_large=allow_large)

    def result_extras(self, ticket: Ticket) -> dict[str, Any]:
        """:attr:`extras` of ``ticket`` (empty for a method without extra outputs)."""
        return {} if self.extras is None else self.extras(ticket)


#: Every pruning method, by name.
METHODS: Registry[MethodSpec] = Registry("method")


def register_method(
    name: str, *, needs_data: bool, kind: str, summary: str, reference: str,
    data_use: str | None = None, family: str | None = None,
    trajectory: Callable[..., dict[float, Ticket]] | None = None,
    extras: Callable[[Ticket], dict[str, Any]] | None = None,
    options: type | None = None,
    min_sources: int = 0,
    constraints: Mapping[str, Rule] | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator registering ``fn`` as the pruning method ``name`` in :data:`METHODS`.

    ``data_use``, ``family``, ``trajectory``, ``extras``, ``options``, ``min_sources`` and
    ``constraints`` are described in :class:`MethodSpec` (the first two are derived when not given).
    """

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        if options and not any(p.kind == p.VAR_KEYWORD for p in inspect.signature(fn).parameters.values()):
            raise GraphticketsError(
                f"method {name!r} must take **options (the fields of {options.__name__}) and pass them on"
            )
        METHODS.register(
            name,
            MethodSpec(name=name, fn=fn, needs_data=needs_data, kind=kind, summary=summary, reference=reference,
                       data_use=data_use or "", family=family or "", trajectory=trajectory, extras=extras,
                       options=options, min_sources=min_sources, constraints=dict(constraints or {})),
        )
        return fn

    return deco


#: The rules of :class:`ScoringOptions` that every scoring method declares (``schedule``: the
#: pruning schedule over ``rounds``).
SCORING_RULES: dict[str, Rule] = {"schedule": Rule.choice("exponential", "linear")}


def training_rules() -> dict[str, Rule]:
    """The rules of a method that runs a training (``schedule``: the learning-rate schedule of
    :func:`graphtickets.training.train`), for the methods that take the training options."""
    from graphtickets.training.regime import SCHEDULES

    return {"schedule": Rule.choice(*[s for s in SCHEDULES if s is not None])}


def register_scorer(
    name: str, *, needs_data: bool, kind: str, summary: str, reference: str,
    data_use: str | None = None, family: str | None = None, constraints: Mapping[str, Rule] | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator registering a scoring method: ``fn(model, *, density, data, seed, <own options>,
    **options)`` that calls :func:`score_prune` with ``**options``.

    The method takes every option of :class:`ScoringOptions` (with their defaults there)
    besides its own; its signature names a shared option only to change its default.

    Examples
    --------
    >>> import graphtickets as gt
    >>> def cube_scores(model, masks, data, generator):
    ...     params = dict(model.named_parameters())
    ...     return {n: params[n].detach().abs() ** 3 for n in masks}
    >>> @register_scorer("doc_cube", needs_data=False, kind="init", summary="keep the largest |w|^3",
    ...                  reference="-")
    ... def doc_cube(model, *, density, data=None, seed=0, **options):
    ...     return score_prune(model, cube_scores, density=density, seed=seed, **options)
    >>> sorted(METHODS["doc_cube"].hparams()) == sorted(SCORING_OPTIONS)
    True
    >>> del METHODS["doc_cube"]
    """
    return register_method(name, needs_data=needs_data, kind=kind, summary=summary, reference=reference,
                           data_use=data_use, family=family, options=ScoringOptions,
                           constraints={**SCORING_RULES, **(constraints or {})})


def set_trajectory(name: str, trajectory: Callable[..., dict[float, Ticket]]) -> None:
    """Attach a :attr:`MethodSpec.trajectory` to the registered method ``name``."""
    spec = METHODS.get_or_raise(name)
    METHODS[name] = dataclasses.replace(spec, trajectory=trajectory)


# ---------------------------------------------------------------------------- provenance
def _summary(value: Any) -> Any:
    """Provenance of a hyperparameter: objects (tickets, models, tensors, long lists) as short summaries."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, torch.Tensor):
        return f"<tensor {tuple(value.shape)} {str(value.dtype).replace('torch.', '')}>"
    if isinstance(value, (list, tuple)) and (
        len(value) > 32 or any(isinstance(v, (torch.Tensor, list, tuple)) for v in value)
    ):
        return f"<{type(value).__name__} of {len(value)} items>"
    if isinstance(value, Ticket):
        return {"ticket": value.method, "density": value.density, "model": value.config.get("model")}
    if isinstance(value, nn.Module):
        return {"model": getattr(value, "gt_spec", type(value).__name__)}
    return WALK_ON


def _summary_leaf(value: Any) -> Any:
    if hasattr(value, "__iter__"):  # batches, loaders: never store the data itself
        return f"<{type(value).__name__}>"
    return repr(value)[:200]


def make_ticket(
    model: nn.Module,
    method: str,
    result: MethodResult,
    *,
    density: float | None,
    seed: int | None,
    hparams: Mapping[str, Any],
    data: Iterable[Any] | None = None,
    dataset: str | None = None,
    seconds: float | None = None,
) -> Ticket:
    """The ticket of a method's result, with its provenance (the one place it is built).

    Parameters
    ----------
    model : nn.Module
        The model the ticket belongs to (its ``gt_spec`` is recorded).
    method : str
    result : MethodResult
    density : float or None
        The requested density; None (a transform without one) records the ticket's own.
    seed : int or None
    hparams : mapping
        Recorded as JSON-plain values; objects (tickets, models, tensors, data) as summaries.
    data, dataset
        ``dataset``, else the name ``data`` carries, is recorded.
    seconds : float, optional
        Recorded as ``meta["cost"]["seconds"]`` unless the result's cost has it.

    Returns
    -------
    Ticket
        ``config``: method, density, seed, hparams, model, dataset; ``meta``: cost, version
        and the result's meta; ``weights``: the result's.
    """
    meta = dict(result.meta)
    cost = dict(meta.pop("cost", {}))
    if seconds is not None:
        cost.setdefault("seconds", seconds)
    config = {
        "method": method,
        "density": density,
        "seed": seed,
        "hparams": plain(dict(hparams), before=_summary, leaf=_summary_leaf),
        "model": getattr(model, "gt_spec", None),
        "dataset": dataset or dataset_name(data),
    }
    ticket = Ticket(masks=result.masks, method=method, config=config,
                    meta={"cost": cost, "version": __version__, **meta}, weights=result.weights)
    if density is None:
        ticket.config["density"] = ticket.density
    return ticket


# ---------------------------------------------------------------------------- prune
def _check_model_and_seed(model: Any, seed: Any) -> int:
    """The seed as an int; refuse a ``model`` that is not an ``nn.Module`` and a seed outside
    ``[0, 2**63 - 1]`` (:func:`graphtickets._rules.check_seed`)."""
    if not isinstance(model, nn.Module):
        raise GraphticketsError(
            f"model must be a torch nn.Module at initialization, got {type(model).__name__}; "
            f"build one with gt.models.build(name, in_shape=..., num_classes=...)"
        )
    return check_seed(seed)


def _check_request(spec: MethodSpec, density: float | None, data: Any, hparams: Mapping[str, Any]) -> float | None:
    """The checked density; errors for a missing density or data and unknown hyperparameters."""
    if density is None:
        if spec.kind != "transform":
            raise GraphticketsError(f"method {spec.name!r} needs density=<fraction of weights kept, in (0, 1]>")
    else:
        density = check_density(density)
    if spec.needs_data and data is None:
        raise GraphticketsError(
            f"method {spec.name!r} needs data: pass data=<batches of (inputs, targets)>, e.g. "
            f"gt.data.batches(gt.data.load('mnist1d'), batch_size=128)"
        )
    known = spec.hparams()
    unknown = sorted(set(hparams) - set(known))
    if unknown:
        raise GraphticketsError(
            f"method {spec.name!r} does not take {', '.join(map(repr, unknown))}; "
            f"its hyperparameters are: {', '.join(sorted(known)) or '(none)'}"
        )
    return density


def _as_result(out: Any, method: str) -> MethodResult:
    """A method's return value as a :class:`MethodResult` (a legacy ``(masks, meta)`` pair warns)."""
    if isinstance(out, MethodResult):
        return out
    if isinstance(out, tuple) and len(out) == 2:
        warnings.warn(
            f"method {method!r} returns (masks, meta); return a MethodResult(masks, meta, weights) instead",
            DeprecationWarning, stacklevel=3,
        )
        meta = dict(out[1])
        return MethodResult(masks=out[0], meta=meta, weights=meta.pop("weights", None))
    raise GraphticketsError(f"method {method!r} returned {type(out).__name__}; a method returns a MethodResult")


def prune(
    model: nn.Module,
    method: str,
    *,
    density: float | None = None,
    data: Iterable[Any] | None = None,
    seed: int = 0,
    dataset: str | None = None,
    **hparams: Any,
) -> Ticket:
    """Find a ticket of ``model`` with ``method`` at ``density`` (the fraction of weights kept).

    Parameters
    ----------
    model : nn.Module
        The network, at initialization. Its weights are not modified.
    method : str
        A key of :data:`METHODS` (``graphtickets methods`` lists them).
    density : float
        Fraction of prunable weights to keep, in (0, 1]. Required, except for methods of
        ``kind="transform"`` (``elastic``), which may omit it: their density is then whatever
        the transform gives and ``config["density"]`` records the ticket's actual density.
    data : iterable of (inputs, targets), optional
        Batches, consumed as given (no hidden resampling). Required by data-driven methods.
    seed : int
        Seed of everything the method draws.
    dataset : str, optional
        Name of the dataset ``data`` comes from, recorded in the provenance.
    **hparams
        The method's hyperparameters (see ``METHODS[method].hparams()``).

    Returns
    -------
    Ticket
        With provenance: method, density, seed, hyperparameters, model spec, dataset, cost.
        A method may also return weights (:attr:`MethodResult.weights`: e.g. IMP's rewound
        weights, Elastic's carried ones); they become ``Ticket.weights``.

    Examples
    --------
    >>> import graphtickets as gt
    >>> model = gt.models.build("mlp", in_shape=(8,), num_classes=3, widths=(16,))
    >>> t = gt.pruning.prune(model, "random", density=0.5, seed=1)
    >>> t.method, t.density
    ('random', 0.5)
    """
    seed = _check_model_and_seed(model, seed)
    spec = METHODS.get_or_raise(method)
    density = _check_request(spec, density, data, hparams)
    t0 = time.perf_counter()
    result = _as_result(spec.fn(model, density=density, data=data, seed=seed, **hparams), method)
    seconds = time.perf_counter() - t0
    ticket = make_ticket(model, method, result, density=density, seed=seed, hparams={**spec.hparams(), **hparams},
                         data=data, dataset=dataset, seconds=seconds)
    log.info("%s: density %.4g in %.2fs", method, ticket.density, seconds)
    return ticket


# ---------------------------------------------------------------------------- scorer driver
def resolve_params(
    model: nn.Module,
    *,
    include_bias: bool = False,
    keep_classifier_dense: bool = False,
    exclude: Iterable[str] = (),
    prior: Mapping[str, torch.Tensor] | Ticket | None = None,
) -> tuple[list[str], dict[str, torch.Tensor]]:
    """The names of the parameters to prune and the starting masks (all-ones, or ``prior``)."""
    params = prunable(
        model, include_bias=include_bias, keep_classifier_dense=keep_classifier_dense, exclude=exclude
    )
    if not params:
        raise GraphticketsError(
            "the model has no prunable parameters (Linear/Conv weights); nothing to prune"
        )
    pmasks: Mapping[str, torch.Tensor] = prior.masks if isinstance(prior, Ticket) else (prior or {})
    masks: dict[str, torch.Tensor] = {}
    for n, p in params.items():
        if n in pmasks:
            m = pmasks[n]
            if tuple(m.shape) != tuple(p.shape) or m.dtype != torch.bool:
                raise GraphticketsError(
                    f"prior mask {n!r} must be a bool tensor of shape {tuple(p.shape)}, "
                    f"got {m.dtype} {tuple(m.shape)}"
                )
            masks[n] = m.detach().cpu().clone()
        else:
            masks[n] = torch.ones(p.shape, dtype=torch.bool)
    extra = sorted(set(pmasks) - set(params))
    if extra:
        raise GraphticketsError(f"prior masks parameters that are not prunable here: {extra[:5]}")
    return list(params), masks


def masked_copy(model: nn.Module, masks: Mapping[str, torch.Tensor]) -> nn.Module:
    """A deep copy of ``model`` with ``masks`` applied (the original is untouched)."""
    clone = copy.deepcopy(model)
    params = dict(clone.named_parameters())
    with torch.no_grad():
        for n, m in masks.items():
            params[n].mul_(m.to(params[n].device, params[n].dtype))
    return clone


def schedule_densities(density: float, rounds: int, schedule: str = "exponential", start: float = 1.0) -> list[float]:
    """Target density after each of ``rounds`` rounds, ending exactly at ``density``.

    ``"exponential"``: ``start * (density/start)^(k/rounds)`` (SynFlow's schedule; with
    ``start=1`` this is ``density^(k/rounds)``); ``"linear"``: equal steps in density.

    >>> [round(d, 3) for d in schedule_densities(0.01, 2)]
    [0.1, 0.01]
    """
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
        raise GraphticketsError(f"rounds must be an integer >= 1, got {rounds!r}")
    if schedule == "exponential":
        ds = [start * (density / start) ** (k / rounds) for k in range(1, rounds + 1)]
    elif schedule == "linear":
        ds = [start - (start - density) * k / rounds for k in range(1, rounds + 1)]
    else:
        raise GraphticketsError(f"schedule must be 'exponential' or 'linear', got {schedule!r}")
    ds[-1] = density
    return ds


def plan_rounds(
    model: nn.Module,
    *,
    density: float,
    rounds: int,
    schedule: str,
    prior: Mapping[str, torch.Tensor] | Ticket | None,
    include_bias: bool,
    keep_classifier_dense: bool,
) -> tuple[list[str], dict[str, torch.Tensor], list[float]]:
    """The start of every multi-round scoring method: the scored parameters, their starting
    masks (all ones or ``prior``) and the density after each round.

    Used by :func:`score_prune`, whose ``engine`` hook (SynFlow's
    :mod:`~graphtickets.pruning.synflow.engine`) runs the rounds it plans.

    Raises
    ------
    GraphticketsError
        ``rounds`` is not an integer >= 1, or ``density`` is above the prior's density.
    """
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
        raise GraphticketsError(f"rounds must be an integer >= 1, got {rounds!r}")
    names, masks = resolve_params(
        model, include_bias=include_bias, keep_classifier_dense=keep_classifier_dense, prior=prior
    )
    total = sum(m.numel() for m in masks.values())
    start = sum(int(m.count_nonzero()) for m in masks.values()) / total
    if density > start + 1e-12:
        raise GraphticketsError(
            f"density {density} is above the prior mask's density {start:.4g}: pruned weights never come back"
        )
    targets = schedule_densities(density, rounds, schedule, start=start) if rounds > 1 else [density]
    return names, masks, targets


def score_prune(
    model: nn.Module,
    scorer: Scorer,
    *,
    density: float,
    data: Iterable[Any] | None = None,
    seed: int = 0,
    engine: Engine | None = None,
    **options: Any,
) -> MethodResult:
    """Prune by a scorer, in one or more rounds; the generic body of every scoring method.

    Each round re-scores the weights still alive (on a copy of the model with the current mask
    applied) and keeps the top ones at the round's target density. The final mask is nested
    in ``prior`` and keeps exactly ``round(density * N)`` weights (global scope).

    Parameters
    ----------
    model : nn.Module
        Not modified.
    scorer : Scorer
        ``scorer(model_copy, masks, data, generator, **scorer_kw) -> {name: scores}``.
    density, data, seed
        As in :func:`prune`.
    engine : Engine, optional
        Runs all the rounds instead of the loop here (SynFlow's fast rounds), from the same
        starting masks and round targets; ``scorer`` is then not called.
    **options
        The shared options of :class:`ScoringOptions` (``scope``, ``rounds``, ``schedule``,
        ``prior``, ``include_bias``, ``keep_classifier_dense``, ``invert``; defaults there);
        every other keyword goes to ``scorer``.

    Returns
    -------
    MethodResult
        ``meta["rounds"]`` and whatever the engine adds.
    """
    opts, scorer_kw = ScoringOptions.split(options)
    names, masks, targets = plan_rounds(model, density=density, rounds=opts.rounds, schedule=opts.schedule,
                                        prior=opts.prior, include_bias=opts.include_bias,
                                        keep_classifier_dense=opts.keep_classifier_dense)
    total = sum(m.numel() for m in masks.values())
    meta: dict[str, Any] = {"rounds": opts.rounds}
    if engine is not None:
        masks, found = engine(model, names, masks, targets, scope=opts.scope, invert=opts.invert)
        meta.update(found)
    else:
        gen = draw_generator(seed)
        for d in targets:
            scores = scorer(masked_copy(model, masks), masks, data, gen, **scorer_kw)
            scores = {n: -scores[n] if opts.invert else scores[n] for n in names}
            masks = select_topk(scores, d, scope=opts.scope, prior=masks)
    kept = sum(int(m.count_nonzero()) for m in masks.values())
    if opts.scope == "global" and not math.isclose(kept / total, density, abs_tol=1.0 / total + 1e-12):
        log.warning("global density differs from the request (rounding)")
    return MethodResult(masks=masks, meta=meta)
