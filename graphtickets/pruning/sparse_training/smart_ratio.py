"""Smart-ratio random tickets (Su et al. 2020): random masks at data-free layer-wise keep ratios.

Su et al. find that the tickets pruning-at-initialization methods give keep their accuracy
when the kept positions are shuffled within each layer: what matters is how many weights each
layer keeps. Their *smart ratio* sets those numbers by a formula and draws the positions at
random.

The formula. Number the ``L`` prunable layers (Linear and Conv weights, in the order of
``model.named_parameters()``) ``l = 1, ..., L``. The last layer (the classifier) keeps the
fixed fraction ``p_L = last_keep`` (the paper's 0.3) of its ``n_L`` weights. Every other layer
keeps a fraction that decays with depth,

    ``p_l = c * w_l``,  ``w_l = (L - l + 1)^2 + (L - l + 1)`` (``decay="quadratic"``, the paper's)
    or ``w_l = L - l + 1`` (``decay="linear"``),  ``l = 1, ..., L - 1``,

and ``c`` is the one constant that makes the kept weights add up to the budget:

    ``sum_{l<L} c w_l n_l + p_L n_L = density * N``  =>  ``c = (density N - p_L n_L) / sum_{l<L} w_l n_l``.

A layer whose ``p_l`` would exceed 1 is kept dense and ``c`` is solved again for the rest
(water-filling). The fractions are then rounded to integer counts that add up to exactly
``round(density * N)`` (largest remainders), and each layer keeps that many positions drawn
uniformly at random.

Deviations (named): when the last layer's share ``last_keep * n_L`` is as large as the whole
budget ``density * N`` (very sparse tickets of a network with a large classifier, e.g. a
40-100-100-10 MLP at density 0.01) the rule cannot hold, and the last layer takes its place in
the formula (``w_L = 2`` quadratic, ``1`` linear); ``meta["last_rule"]`` says whether the rule
held. The reference code keeps EVERY Linear layer at 0.3 (its nets have one Linear layer)
and, for its VGG nets, divides the conv layers' ratios by ``l^2``, and it gives the surplus of
a layer over 1 to the earlier layers in order; here only the last layer has the fixed ratio,
no ``l^2`` factor is applied and the surplus is spread by re-solving ``c``.

References
----------
.. [1] Su, Chen, Cai, Wu, Gao, Wang, Lee. "Sanity-Checking Pruning Methods: Random Tickets can
   Win the Jackpot." NeurIPS 2020.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import nn

from graphtickets.errors import GraphticketsError
from graphtickets.pruning.baselines import exact_counts, scaled_densities
from graphtickets.pruning.core import MethodResult, register_method, resolve_params
from graphtickets.pruning.select import draw_generator, select_topk
from graphtickets.pruning.sparse_training.common import check_fraction

__all__ = ["smart_ratio", "smart_ratio_densities"]


def _weights(L: int, decay: str) -> list[float]:
    if decay == "quadratic":
        return [float((L - l + 1) ** 2 + (L - l + 1)) for l in range(1, L + 1)]  # noqa: E741
    if decay == "linear":
        return [float(L - l + 1) for l in range(1, L + 1)]  # noqa: E741
    raise GraphticketsError(f"decay must be 'quadratic' or 'linear', got {decay!r}")


def smart_ratio_densities(sizes: Mapping[str, int], density: float, *, decay: str = "quadratic",
                          last_keep: float = 0.3) -> tuple[dict[str, float], bool]:
    """Su et al.'s keep ratio of every layer (in the order of ``sizes``) at ``density``:
    ``(ratios, whether the last layer's rule held)`` (module docstring for the formula).

    >>> d, held = smart_ratio_densities({"a": 100, "b": 100, "c": 10}, 0.5)
    >>> round(d["a"] / d["b"], 4), d["c"], held          # (3^2 + 3) / (2^2 + 2) = 2
    (2.0, 0.3, True)
    >>> round(100 * d["a"] + 100 * d["b"] + 10 * d["c"], 6)
    105.0
    """
    names = list(sizes)
    w = dict(zip(names, _weights(len(names), decay), strict=True))
    total = sum(sizes.values())
    if len(names) == 1:
        return {names[0]: float(density)}, False
    last, rest = names[-1], names[:-1]
    budget = density * total - last_keep * sizes[last]
    if budget <= 0:  # the rule cannot hold: the last layer joins the formula
        return scaled_densities(w, sizes, density), False
    n_rest = sum(sizes[n] for n in rest)
    if budget >= n_rest:  # every other layer dense; the last takes what is left
        return {**dict.fromkeys(rest, 1.0), last: (density * total - n_rest) / sizes[last]}, True
    dens = scaled_densities({n: w[n] for n in rest}, {n: sizes[n] for n in rest}, budget / n_rest)
    return {**dens, last: float(last_keep)}, True


@register_method(
    "smart_ratio",
    needs_data=False,
    kind="init",
    summary="random ticket at data-free layer-wise keep ratios decaying with depth (classifier at 30 %)",
    reference="Su et al. 2020, Sanity-Checking Pruning Methods: Random Tickets can Win the Jackpot (NeurIPS)",
)
def smart_ratio(
    model: nn.Module,
    *,
    density: float,
    data: Iterable[Any] | None = None,
    seed: int = 0,
    decay: str = "quadratic",
    last_keep: float = 0.3,
    keep_classifier_dense: bool = False,
) -> MethodResult:
    """A random ticket at Su et al.'s smart ratios (module docstring for the formula).

    Parameters
    ----------
    model : nn.Module
        Not modified.
    density : float
        Fraction of prunable weights kept (exactly ``round(density * N)``).
    data : ignored
        The ratios are data-free.
    seed : int
        Seeds the random positions.
    decay : {"quadratic", "linear"}, default "quadratic"
        How the keep ratio decays with depth (the paper's quadratic, or its linear ablation).
    last_keep : float, default 0.3
        Keep ratio of the last layer, in (0, 1] (the paper's 0.3).
    keep_classifier_dense : bool, default False
        Leave the classifier out (the last layer of the formula is then the one before it).

    Returns
    -------
    MethodResult
        ``meta``: ``layer_densities`` (the formula's ratios before rounding), ``last_rule``.

    Examples
    --------
    >>> import graphtickets as gt
    >>> model = gt.models.build("mlp", in_shape=(40,), num_classes=10, widths=(100, 100))
    >>> t = gt.pruning.prune(model, "smart_ratio", density=0.1)
    >>> t.kept, {n: round(d, 3) for n, d in t.layer_densities().items()}
    (1500, {'fc1.weight': 0.133, 'fc2.weight': 0.067, 'classifier.weight': 0.3})
    """
    last_keep = check_fraction("last_keep", last_keep, high_open=False)
    names, start = resolve_params(model, keep_classifier_dense=keep_classifier_dense)
    sizes = {n: start[n].numel() for n in names}
    dens, held = smart_ratio_densities(sizes, density, decay=decay, last_keep=last_keep)
    counts = exact_counts(dens, sizes, int(round(density * sum(sizes.values()))))
    gen = draw_generator(seed)
    scores = {n: torch.rand(start[n].shape, generator=gen) for n in names}
    masks = select_topk(scores, density, counts=counts)
    return MethodResult(masks=masks, meta={"layer_densities": dens, "last_rule": held, "decay": decay})
