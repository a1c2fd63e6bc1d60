"""What the sparse-training methods share: their training options, layer densities, the first
random mask, the training run with a moving mask, and the record of the run.

SET, RigL and gradual magnitude pruning train ONE network while its mask changes (a hook
after every optimizer step, :func:`graphtickets.training.train`'s ``on_step``). The ticket is
the mask at the end of that run; the accuracy of the run itself is recorded in ``meta``
(:func:`run_meta`), beside the accuracy the ticket reaches when a study trains it from the
model's initialization like every other ticket.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch
from torch import nn

from graphtickets._json import finite_or_none
from graphtickets.errors import GraphticketsError
from graphtickets.pruning.baselines import erk_densities, exact_counts, scaled_densities
from graphtickets.pruning.core import resolve_params
from graphtickets.pruning.imp import reiterable
from graphtickets.pruning.select import select_topk
from graphtickets.ticket import Ticket

__all__ = [
    "SparseOptions", "DISTRIBUTIONS", "er_densities", "layer_counts", "random_mask", "steps_per_epoch",
    "check_fraction", "sparse_run", "run_meta", "sparse_extras", "counts_of",
]

#: Layer-density distributions of the first sparse mask (SET: ``"er"``, RigL: ``"erk"``).
DISTRIBUTIONS = ("er", "erk", "uniform")


@dataclass(frozen=True)
class SparseOptions:
    """The training options of the sparse-training methods (declared here only).

    Attributes
    ----------
    epochs, optimizer, lr, momentum, weight_decay, nesterov, schedule, milestones, gamma, warmup
        The training regime, passed to :func:`graphtickets.training.train` (defaults: 10
        epochs of SGD, lr 0.1, momentum 0.9; a study passes its own with ``regime: study``).
    keep_classifier_dense : bool
        Leave the classifier out of the masks (see :func:`graphtickets.prunable`).
    eval_data : iterable of (inputs, targets), optional
        Evaluated after every epoch; the run's accuracy in ``meta`` is then the last
        evaluation (else the last epoch's training accuracy).
    device : str
        Where to train.
    """

    epochs: int = 10
    optimizer: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 0.0
    nesterov: bool = False
    schedule: str | None = None
    milestones: Sequence[int] | None = None
    gamma: float = 0.1
    warmup: int = 0
    keep_classifier_dense: bool = False
    eval_data: Iterable[Any] | None = None
    device: str = "cpu"

    def training(self, seed: int) -> dict[str, Any]:
        """Keyword arguments of :func:`graphtickets.training.train`."""
        skip = ("keep_classifier_dense",)
        return {**{f.name: getattr(self, f.name) for f in fields(self) if f.name not in skip}, "seed": seed}


def check_fraction(name: str, value: Any, *, low_open: bool = True, high_open: bool = True) -> float:
    """``value`` as a float in (0, 1) (ends closed where asked), or an error naming ``name``."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (value > 0 if low_open else value >= 0) and (value < 1 if high_open else value <= 1)
    if not ok:
        lo, hi = "(" if low_open else "[", ")" if high_open else "]"
        raise GraphticketsError(f"{name} must be a number in {lo}0, 1{hi}, got {value!r}")
    return float(value)


def er_densities(shapes: Mapping[str, tuple[int, ...]], density: float) -> dict[str, float]:
    """Per-layer densities of the Erdős–Rényi topology of SET (Mocanu et al. 2018).

    A layer of ``n_out`` outputs and ``n_in`` inputs keeps the fraction
    ``eps (n_in + n_out) / (n_in n_out)`` of its connections, ``eps`` solved so that the whole
    network keeps ``density * N`` (a layer that would exceed 1 is dense; :func:`scaled_densities
    <graphtickets.pruning.baselines.scaled_densities>`). For a conv weight ``(c_out, c_in, kh, kw)``
    the fan is ``c_in + c_out`` (the kernel size does not enter: that is ERK,
    :func:`~graphtickets.pruning.baselines.erk_densities`).

    >>> d = er_densities({"a": (100, 10), "b": (10, 10)}, 0.5)
    >>> round(d["a"] / d["b"], 4), round(1000 * d["a"] + 100 * d["b"])   # (110/1000) / (20/100)
    (0.55, 550)
    """
    sizes = {n: int(np.prod(s)) for n, s in shapes.items()}
    raw = {n: (s[0] + s[1]) / (s[0] * s[1]) if len(s) >= 2 else 1.0 for n, s in shapes.items()}
    return scaled_densities(raw, sizes, density)


def layer_counts(shapes: Mapping[str, tuple[int, ...]], density: float, distribution: str) -> tuple[dict[str, int], dict[str, float]]:
    """``(exact kept count per layer, layer densities)`` of ``distribution`` at ``density``;
    the counts add up to ``round(density * N)``."""
    if distribution == "er":
        dens = er_densities(shapes, density)
    elif distribution == "erk":
        dens = erk_densities(shapes, density)
    elif distribution == "uniform":
        dens = {n: float(density) for n in shapes}
    else:
        raise GraphticketsError(f"distribution must be one of {', '.join(DISTRIBUTIONS)}, got {distribution!r}")
    sizes = {n: int(np.prod(s)) for n, s in shapes.items()}
    return exact_counts(dens, sizes, int(round(density * sum(sizes.values())))), dens


def random_mask(model: nn.Module, density: float, distribution: str, generator: torch.Generator,
                keep_classifier_dense: bool = False) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
    """A random mask of ``model`` with the layer counts of ``distribution``: ``(masks, layer densities)``."""
    names, start = resolve_params(model, keep_classifier_dense=keep_classifier_dense)
    counts, dens = layer_counts({n: tuple(start[n].shape) for n in names}, density, distribution)
    scores = {n: torch.rand(start[n].shape, generator=generator) for n in names}
    return select_topk(scores, density, counts=counts), dens


def counts_of(masks: Mapping[str, torch.Tensor]) -> dict[str, int]:
    """Kept count per layer."""
    return {n: int(m.count_nonzero()) for n, m in masks.items()}


def steps_per_epoch(data: Iterable[Any]) -> int:
    """Optimizer steps per epoch: ``len(data)`` (a list, :func:`graphtickets.data.batches`, a loader)."""
    try:
        n = len(data)  # type: ignore[arg-type]
    except TypeError:
        raise GraphticketsError(
            "the sparse-training methods plan their schedule in steps and need the number of batches per "
            "epoch: pass data with a length (a list of batches or gt.data.batches(...))"
        ) from None
    if n < 1:
        raise GraphticketsError("data holds no batch; pass at least one (inputs, targets) batch")
    return int(n)


Hook = Callable[[int, nn.Module, Any], Any]


def sparse_run(model: nn.Module, data: Iterable[Any], masks: Mapping[str, torch.Tensor], hook: Hook,
               opts: SparseOptions, seed: int) -> tuple[nn.Module, Any]:
    """Train a copy of ``model`` from its initial weights with ``masks``, ``hook`` moving them
    after every step: ``(the trained copy, its History)``."""
    from graphtickets import training

    work = copy.deepcopy(model)
    hist = training.train(work, data, masks=dict(masks), on_step=hook, **opts.training(seed))
    return work, hist


def prepared(data: Iterable[Any] | None, method: str, opts: SparseOptions) -> tuple[Iterable[Any], int]:
    """``(data as re-iterable batches, total optimizer steps of the run)``."""
    data = reiterable(data, method)
    if isinstance(opts.epochs, bool) or not isinstance(opts.epochs, int) or opts.epochs < 1:
        raise GraphticketsError(f"{method} trains while it prunes: epochs must be an integer >= 1, got {opts.epochs!r}")
    return data, opts.epochs * steps_per_epoch(data)


def run_meta(hist: Any, opts: SparseOptions, updates: list[dict[str, Any]], schedule: dict[str, Any]) -> dict[str, Any]:
    """``meta`` of a sparse-training ticket: the run's accuracy, the updates, the schedule, the cost.

    ``run_accuracy`` is the test accuracy of the run's own sparse network at its end when
    ``eval_data`` was given (``run_accuracy_on="eval"``), else the last epoch's running
    training accuracy (``"train"``); ``run_loss`` likewise. ``updates`` lists every mask
    update (its step and the connections it changed); ``changed`` the counts alone.
    """
    last = hist.epochs[-1] if hist.epochs else {}
    on_eval = opts.eval_data is not None and math.isfinite(last.get("eval_accuracy", math.nan))
    return {
        "run_accuracy": finite_or_none(last.get("eval_accuracy" if on_eval else "accuracy")),
        "run_loss": finite_or_none(last.get("eval_loss" if on_eval else "loss")),
        "run_accuracy_on": "eval" if on_eval else "train",
        "run_train_accuracy": finite_or_none(last.get("accuracy")),
        "updates": updates,
        "changed": [int(u["changed"]) for u in updates],
        "schedule": schedule,
        "cost": {"epochs": len(hist.epochs), "iterations": hist.iterations},
    }


def sparse_extras(ticket: Ticket) -> dict[str, Any]:
    """The extra outputs of a sparse-training ticket (:attr:`MethodSpec.extras
    <graphtickets.pruning.MethodSpec>`): the accuracy of the method's own run
    (``sparse_run_accuracy``, on ``sparse_run_accuracy_on``) and the connections changed per
    update (``sparse_changed``)."""
    meta = ticket.meta
    if "run_accuracy" not in meta:
        return {}
    return {
        "sparse_run_accuracy": finite_or_none(meta.get("run_accuracy")),
        "sparse_run_accuracy_on": meta.get("run_accuracy_on"),
        "sparse_changed": [int(c) for c in meta.get("changed", [])],
    }
