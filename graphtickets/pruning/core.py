"""The pruning front end: the method registry, :func:`prune`, and the iterative scorer driver.

A method is a plain function ``fn(model, *, density, data, seed, **hparams)`` that returns
``(masks, meta)`` — boolean masks keyed by parameter name and a dict of what the search found
and cost. It is registered in :data:`METHODS` with :func:`register_method`. :func:`prune`
validates the request, calls the method, and wraps the result in a :class:`~graphtickets.Ticket`
with full provenance.

Methods that score weights (magnitude, SNIP, GraSP, SynFlow, random) go through
:func:`score_prune`, which adds what every scorer gets for free: global or layer scope,
multi-round schedules, a prior mask the result is nested in, a choice of prunable parameters,
and inverted scores.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from graphtickets._registry import Registry
from graphtickets._version import __version__
from graphtickets.data.core import dataset_name
from graphtickets.errors import GraphticketsError
from graphtickets.pruning.select import select_topk
from graphtickets.ticket import Ticket, check_density, prunable

__all__ = [
    "MethodSpec",
    "METHODS",
    "register_method",
    "prune",
    "score_prune",
    "plan_rounds",
    "schedule_densities",
    "masked_copy",
    "resolve_params",
    "Scorer",
    "DATA_USES",
    "set_trajectory",
]

log = logging.getLogger("graphtickets.pruning")

#: A scorer: ``scorer(model, masks, data, generator, **kw) -> {name: score tensor}``.
#: ``model`` is a private copy with ``masks`` already applied; it may be modified freely.
Scorer = Callable[..., dict[str, torch.Tensor]]


@dataclass(frozen=True)
class MethodSpec:
    """A registered pruning method.

    Attributes
    ----------
    name : str
        Registry key.
    fn : callable
        ``fn(model, *, density, data, seed, **hparams) -> (masks, meta)``.
    needs_data : bool
        Whether ``data`` (batches of ``(inputs, targets)``) is required.
    kind : str
        ``"baseline"``, ``"init"`` (pruning at initialization), ``"train"`` (found by
        training) or ``"transform"`` (made from another ticket).
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
        training: a method whose ``data_use`` is ``"epochs"``) or ``"transform"``. Default:
        derived from ``kind`` and ``data_use``.
    trajectory : callable, optional
        ``trajectory(model, *, densities, data, seed, **hparams) -> {density: Ticket}``: one
        run that serves several densities (IMP's rounds). Callers that need several densities
        of one run (the study) use it instead of one ``fn`` call per density.
    """

    name: str
    fn: Callable[..., tuple[dict[str, torch.Tensor], dict[str, Any]]]
    needs_data: bool
    kind: str
    summary: str
    reference: str
    data_use: str = ""
    family: str = ""
    trajectory: Callable[..., dict[float, Ticket]] | None = None

    def __post_init__(self) -> None:
        use = self.data_use or ("none" if not self.needs_data else "epochs" if "epochs" in self.hparams() else "batches")
        if use not in DATA_USES:
            raise GraphticketsError(f"method {self.name!r}: data_use must be one of {DATA_USES}, got {use!r}")
        fam = self.family or (
            "transform" if self.kind == "transform" else "baseline" if self.kind == "baseline"
            else "trained" if self.kind == "train" or use == "epochs" else "at init"
        )
        object.__setattr__(self, "data_use", use)
        object.__setattr__(self, "family", fam)

    def hparams(self) -> dict[str, Any]:
        """The method's hyperparameters and their defaults."""
        sig = inspect.signature(self.fn)
        skip = {"model", "density", "data", "seed"}
        return {
            n: (None if p.default is inspect.Parameter.empty else p.default)
            for n, p in sig.parameters.items()
            if n not in skip and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
        }


#: How a method may use data (:attr:`MethodSpec.data_use`).
DATA_USES = ("none", "batches", "epochs")

#: Every pruning method, by name.
METHODS: Registry[MethodSpec] = Registry("method")


def register_method(
    name: str, *, needs_data: bool, kind: str, summary: str, reference: str,
    data_use: str | None = None, family: str | None = None,
    trajectory: Callable[..., dict[float, Ticket]] | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator registering ``fn`` as the pruning method ``name`` in :data:`METHODS`.

    ``data_use``, ``family`` and ``trajectory`` are described in :class:`MethodSpec`
    (the first two are derived when not given).
    """

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        METHODS.register(
            name,
            MethodSpec(name=name, fn=fn, needs_data=needs_data, kind=kind, summary=summary, reference=reference,
                       data_use=data_use or "", family=family or "", trajectory=trajectory),
        )
        return fn

    return deco


def set_trajectory(name: str, trajectory: Callable[..., dict[float, Ticket]]) -> None:
    """Attach a :attr:`MethodSpec.trajectory` to the registered method ``name``."""
    spec = METHODS.get_or_raise(name)
    METHODS[name] = dataclasses.replace(spec, trajectory=trajectory)


def _plain(value: Any) -> Any:
    """Hyperparameters as JSON-friendly values; objects (tickets, models) as short strings."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, torch.Tensor):
        return f"<tensor {tuple(value.shape)} {str(value.dtype).replace('torch.', '')}>"
    if isinstance(value, (list, tuple)):
        if len(value) > 32 or any(isinstance(v, (torch.Tensor, list, tuple)) for v in value):
            return f"<{type(value).__name__} of {len(value)} items>"
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, Ticket):
        return {"ticket": value.method, "density": value.density, "model": value.config.get("model")}
    if isinstance(value, nn.Module):
        return {"model": getattr(value, "gt_spec", type(value).__name__)}
    if hasattr(value, "__iter__"):  # batches, loaders: never store the data itself
        return f"<{type(value).__name__}>"
    return repr(value)[:200]


_SEED_LIMIT = 2**64  # torch.Generator.manual_seed and numpy's default_rng both take [0, 2**64)


def _check_model_and_seed(model: Any, seed: Any) -> None:
    """Refuse a ``model`` that is not an ``nn.Module`` and a seed outside ``[0, 2**64)``."""
    if not isinstance(model, nn.Module):
        raise GraphticketsError(
            f"model must be a torch nn.Module at initialization, got {type(model).__name__}; "
            f"build one with gt.models.build(name, in_shape=..., num_classes=...)"
        )
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise GraphticketsError(f"seed must be an int, got {seed!r}")
    if not 0 <= seed < _SEED_LIMIT:
        raise GraphticketsError(
            f"seed must be an int in [0, 2**64) (the range random generators accept), got {seed}; "
            f"use e.g. seed % 2**64"
        )


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
        A method may also return weights (``meta["weights"]``: e.g. IMP's rewound weights,
        Elastic's carried ones); they become ``Ticket.weights``.

    Examples
    --------
    >>> import graphtickets as gt
    >>> model = gt.models.build("mlp", in_shape=(8,), num_classes=3, widths=(16,))
    >>> t = gt.pruning.prune(model, "random", density=0.5, seed=1)
    >>> t.method, t.density
    ('random', 0.5)
    """
    _check_model_and_seed(model, seed)
    spec = METHODS.get_or_raise(method)
    if density is None:
        if spec.kind != "transform":
            raise GraphticketsError(f"method {method!r} needs density=<fraction of weights kept, in (0, 1]>")
    else:
        density = check_density(density)
    if spec.needs_data and data is None:
        raise GraphticketsError(
            f"method {method!r} needs data: pass data=<batches of (inputs, targets)>, e.g. "
            f"gt.data.batches(gt.data.load('mnist1d'), batch_size=128)"
        )
    known = spec.hparams()
    unknown = sorted(set(hparams) - set(known))
    if unknown:
        raise GraphticketsError(
            f"method {method!r} does not take {', '.join(map(repr, unknown))}; "
            f"its hyperparameters are: {', '.join(sorted(known)) or '(none)'}"
        )
    t0 = time.perf_counter()
    masks, meta = spec.fn(model, density=density, data=data, seed=seed, **hparams)
    seconds = time.perf_counter() - t0
    meta = dict(meta)
    weights = meta.pop("weights", None)
    cost = dict(meta.pop("cost", {}))
    cost.setdefault("seconds", seconds)
    used = {**{k: v for k, v in known.items()}, **hparams}
    config = {
        "method": method,
        "density": density,
        "seed": seed,
        "hparams": _plain(used),
        "model": getattr(model, "gt_spec", None),
        "dataset": dataset or dataset_name(data),
    }
    ticket = Ticket(
        masks=masks,
        method=method,
        config=config,
        meta={"cost": cost, "version": __version__, **meta},
        weights=weights,
    )
    if spec.kind == "transform" and density is None:
        ticket.config["density"] = ticket.density
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

    Used by :func:`score_prune` and by engines that run the rounds themselves (SynFlow's
    :mod:`~graphtickets.pruning.synflow_engine`), so both check and schedule alike.

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
    scope: str = "global",
    rounds: int = 1,
    schedule: str = "exponential",
    prior: Mapping[str, torch.Tensor] | Ticket | None = None,
    include_bias: bool = False,
    keep_classifier_dense: bool = False,
    invert: bool = False,
    **scorer_kw: Any,
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
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
    scope : {"global", "layer"}
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

    Returns
    -------
    (masks, meta)
    """
    names, masks, targets = plan_rounds(model, density=density, rounds=rounds, schedule=schedule, prior=prior,
                                        include_bias=include_bias, keep_classifier_dense=keep_classifier_dense)
    total = sum(m.numel() for m in masks.values())
    gen = torch.Generator().manual_seed(seed)
    for d in targets:
        work = masked_copy(model, masks)
        scores = scorer(work, masks, data, gen, **scorer_kw)
        scores = {n: scores[n] for n in names}
        if invert:
            scores = {n: -s for n, s in scores.items()}
        masks = select_topk(scores, d, scope=scope, prior=masks)
    meta: dict[str, Any] = {"rounds": rounds}
    if not math.isclose(sum(int(m.count_nonzero()) for m in masks.values()) / total, density, abs_tol=1.0 / total + 1e-12) and scope == "global":
        log.warning("global density differs from the request (rounding)")
    return masks, meta
