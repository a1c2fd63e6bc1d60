"""Baselines every study needs: random pruning (uniform or ERK) and magnitude pruning.

References
----------
.. [1] Evci, Gale, Menick, Castro, Elsen. "Rigging the Lottery: Making All Tickets Winners."
   ICML 2020 (the Erdős–Rényi-Kernel layer densities).
.. [2] Han, Pool, Tran, Dally. "Learning both Weights and Connections for Efficient Neural
   Networks." NeurIPS 2015 (magnitude pruning).
.. [3] Frankle, Dziugaite, Roy, Carbin. "Pruning Neural Networks at Initialization: Why are We
   Missing the Mark?" ICLR 2021 (random and magnitude at initialization as baselines).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from graphtickets._rules import Rule
from graphtickets.errors import GraphticketsError
from graphtickets.pruning.core import (
    MethodResult,
    ScoringOptions,
    register_scorer,
    resolve_params,
    score_prune,
)
from graphtickets.pruning.select import draw_generator, select_topk

__all__ = ["erk_densities", "scaled_densities", "exact_counts", "magnitude_scores", "random_scores"]


def erk_densities(shapes: Mapping[str, tuple[int, ...]], density: float) -> dict[str, float]:
    """Per-layer densities of the Erdős–Rényi-Kernel distribution (Evci et al. 2020).

    Layer ``l`` gets ``eps * sum(shape_l) / prod(shape_l)`` (for a conv weight
    ``(c_out, c_in, kh, kw)`` this is ``(c_out + c_in + kh + kw) / (c_out c_in kh kw)``),
    with ``eps`` chosen so that the total kept equals ``density * N``. A layer whose density
    would exceed 1 is made dense and ``eps`` is solved again for the others.

    >>> d = erk_densities({"a": (100, 10), "b": (10, 10)}, 0.5)   # b is denser: smaller fan
    >>> round(d["a"], 3), round(d["b"], 3), round(1000 * d["a"] + 100 * d["b"])
    (0.465, 0.846, 550)
    >>> d = erk_densities({"a": (1000, 10), "b": (2, 2)}, 0.5)    # b would exceed 1: dense
    >>> d["b"], round(10000 * d["a"] + 4)
    (1.0, 5002)
    """
    sizes = {n: int(np.prod(s)) for n, s in shapes.items()}
    return scaled_densities({n: sum(s) / sizes[n] for n, s in shapes.items()}, sizes, density)


def scaled_densities(raw: Mapping[str, float], sizes: Mapping[str, int], density: float) -> dict[str, float]:
    """Layer densities ``eps * raw_l`` with ``eps`` such that ``sum_l eps raw_l n_l = density N``.

    A layer whose density would exceed 1 is made dense and ``eps`` is solved again for the
    others (the rule of Evci et al.'s ERK, used for ER, ERK and smart-ratio densities).

    >>> d = scaled_densities({"a": 1.0, "b": 3.0}, {"a": 10, "b": 10}, 0.4)
    >>> d["a"], d["b"]
    (0.2, 0.6000000000000001)
    >>> scaled_densities({"a": 1.0, "b": 9.0}, {"a": 10, "b": 10}, 0.6)["b"]
    1.0
    """
    total = sum(sizes.values())
    dense: set[str] = set()
    eps = 0.0
    while True:
        budget = density * total - sum(sizes[n] for n in dense)
        rest = [n for n in raw if n not in dense]
        if not rest:
            break
        eps = budget / sum(raw[n] * sizes[n] for n in rest)
        over = [n for n in rest if eps * raw[n] > 1.0]
        if not over:
            break
        dense.update(over)
    return {n: 1.0 if n in dense else float(eps * raw[n]) for n in raw}


def exact_counts(densities: Mapping[str, float], sizes: Mapping[str, int], k: int) -> dict[str, int]:
    """Integer counts close to ``density * size`` per layer that add up to exactly ``k``
    (floors first, then one more for the largest fractional parts, ties in layer order).

    >>> exact_counts({"a": 0.27, "b": 0.33}, {"a": 10, "b": 10}, 6)   # 2.7 and 3.3: a gets the extra one
    {'a': 3, 'b': 3}
    """
    want = {n: densities[n] * sizes[n] for n in sizes}
    counts = {n: min(sizes[n], int(np.floor(want[n]))) for n in sizes}
    short = k - sum(counts.values())
    order = sorted(sizes, key=lambda n: (-(want[n] - np.floor(want[n])), list(sizes).index(n)))
    i = 0
    while short > 0:
        n = order[i % len(order)]
        if counts[n] < sizes[n]:
            counts[n] += 1
            short -= 1
        i += 1
    return counts


def random_scores(model: nn.Module, masks: Mapping[str, torch.Tensor], data: Any, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Scores drawn uniformly at random from ``generator``."""
    return {n: torch.rand(m.shape, generator=generator) for n, m in masks.items()}


def magnitude_scores(model: nn.Module, masks: Mapping[str, torch.Tensor], data: Any, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Scores ``|w|``."""
    params = dict(model.named_parameters())
    return {n: params[n].detach().abs().cpu() for n in masks}


@register_scorer(
    "random",
    needs_data=False,
    kind="baseline",
    summary="random masks: uniform density per layer, or ERK layer densities",
    reference="Frankle et al. 2021 (ICLR); ERK: Evci et al. 2020 (ICML)",
    constraints={"distribution": Rule.choice("uniform", "erk")},
)
def random_method(
    model: nn.Module,
    *,
    density: float,
    data: Iterable[Any] | None = None,
    seed: int = 0,
    distribution: str = "uniform",
    scope: str = "layer",
    **options: Any,
) -> MethodResult:
    """Random ticket. ``distribution="uniform"``: each layer keeps ``round(density n_l)``
    (``scope="layer"``, the default) or the whole network keeps ``round(density N)`` chosen
    uniformly (``scope="global"``). ``distribution="erk"``: layer densities from
    :func:`erk_densities`, rounded so the total is exactly ``round(density N)`` (one draw:
    ``rounds`` must be 1, ``scope`` and ``schedule`` do not apply, and no prior mask).
    The other shared ``options`` are those of :func:`graphtickets.pruning.score_prune`.
    """
    if distribution == "uniform":
        res = score_prune(model, random_scores, density=density, seed=seed, scope=scope, **options)
        return res.with_meta(distribution="uniform")
    if distribution != "erk":
        raise GraphticketsError(f"distribution must be 'uniform' or 'erk', got {distribution!r}")
    return _erk(model, density=density, seed=seed, options=ScoringOptions(scope=scope, **options))


def _erk(model: nn.Module, *, density: float, seed: int, options: ScoringOptions) -> MethodResult:
    """A random mask with the ERK layer counts (see :func:`random_method`)."""
    if options.rounds != 1:
        raise GraphticketsError("random(distribution='erk') draws one mask: rounds must be 1")
    names, start = resolve_params(
        model, include_bias=options.include_bias, keep_classifier_dense=options.keep_classifier_dense,
        prior=options.prior,
    )
    if any(not bool(m.all()) for m in start.values()):
        raise GraphticketsError("random(distribution='erk') does not take a prior mask")
    shapes = {n: tuple(start[n].shape) for n in names}
    sizes = {n: start[n].numel() for n in names}
    dens = erk_densities(shapes, density)
    counts = exact_counts(dens, sizes, int(round(density * sum(sizes.values()))))
    scores = random_scores(model, start, None, draw_generator(seed))
    if options.invert:
        scores = {n: -s for n, s in scores.items()}
    masks = select_topk(scores, density, counts=counts)
    return MethodResult(masks=masks, meta={"distribution": "erk", "erk_densities": dens})


@register_scorer(
    "magnitude",
    needs_data=False,
    kind="baseline",
    summary="keep the largest |w| (at initialization, or of trained weights)",
    reference="Han et al. 2015 (NeurIPS); at init: Frankle et al. 2021 (ICLR)",
)
def magnitude_method(
    model: nn.Module,
    *,
    density: float,
    data: Iterable[Any] | None = None,
    seed: int = 0,
    **options: Any,
) -> MethodResult:
    """One-shot (or iterated) magnitude pruning of the model's current weights.

    Global scope keeps the ``round(density * N)`` largest ``|w|`` (Python's ``round``: half
    to even). This is the selection of ``torch.nn.utils.prune.global_unstructured`` with
    ``L1Unstructured`` given the same count, i.e. the integer ``amount=N - round(density * N)``.
    With the float ``amount=1 - density`` torch prunes ``round((1 - density) * N)`` instead,
    so when ``density * N`` is half an integer torch keeps one weight more (N = 141,
    density 0.5: we keep 70, torch 71); otherwise the two agree. The shared ``options`` are
    those of :func:`graphtickets.pruning.score_prune`.
    """
    return score_prune(model, magnitude_scores, density=density, seed=seed, **options)
