"""SNIP: connection sensitivity at initialization (Lee et al. 2019).

The score of a weight is ``|g ⊙ w|`` where ``g`` is the gradient of the cross-entropy loss,
summed over the batches given (each batch's loss is its mean). The top scores are kept.
One round by default; ``rounds > 1`` gives iterative SNIP (de Jorge et al. 2021).

References
----------
.. [1] Lee, Ajanthan, Torr. "SNIP: Single-shot Network Pruning based on Connection
   Sensitivity." ICLR 2019.
.. [2] de Jorge, Sanyal, Behl, Torr, Rogez, Dokania. "Progressive Skeletonization: Trimming
   more fat from a network at initialization." ICLR 2021 (iterative SNIP).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from graphtickets.pruning._data import as_batches, model_device
from graphtickets.pruning.core import MethodResult, Scorer, register_scorer, score_prune

__all__ = ["snip_scores", "snip", "score_batches", "SCORING_MODE_NOTE"]

#: Why the data-based scorers (SNIP, GraSP) run the model in eval mode by default.
SCORING_MODE_NOTE = (
    "Scores are computed on a private copy of the model in eval mode unless train_mode=True: "
    "BatchNorm then normalizes with its running statistics (at initialization mean 0, variance 1, "
    "so the layer is an affine map that does not depend on the batch) instead of the batch's "
    "statistics, and dropout is off. This is what the Synaptic-Flow reference code does for every "
    "pruner (prune_loop calls model.eval() unless train_mode), and Tanaka et al.'s Fig. 1 was "
    "made that way. Train mode changes the scores of networks with BatchNorm (batch statistics "
    "rescale each channel by the batch's spread). The model's own mode and training are untouched."
)


def snip_scores(
    model: nn.Module,
    masks: Mapping[str, torch.Tensor],
    data: Iterable[Any],
    generator: torch.Generator | None = None,
    *,
    train_mode: bool = False,
) -> dict[str, torch.Tensor]:
    """SNIP scores ``|∂L/∂w ⊙ w|`` of the masked parameters of ``model``.

    Parameters
    ----------
    model : nn.Module
        A private copy with the current masks applied (its ``.grad`` fields are overwritten).
    masks : dict[str, torch.Tensor]
        The parameters to score (keys) and the weights still alive.
    data : iterable of (inputs, targets)
        The loss is the sum over batches of each batch's mean cross-entropy.
    generator : torch.Generator, optional
        Unused (SNIP draws nothing); part of the scorer signature.
    train_mode : bool
        Score in train mode (BatchNorm normalizes by the batch's statistics, dropout drops).
        By default the copy is scored in eval mode (BatchNorm uses its running statistics),
        as the Synaptic-Flow reference code scores every pruner (Tanaka et al. 2020,
        ``prune_loop(..., train_mode=False)``); see :data:`SCORING_MODE_NOTE`.

    Returns
    -------
    dict[str, torch.Tensor]
        A score per weight, on the CPU. Pruned weights score 0.
    """
    batches = as_batches(data, "snip")
    model.train(train_mode)
    params = dict(model.named_parameters())
    weights = [params[n] for n in masks]
    dev = model_device(model)
    grads = [torch.zeros_like(w) for w in weights]
    for x, y in batches:
        loss = F.cross_entropy(model(x.to(dev)), y.to(dev))
        gs = torch.autograd.grad(loss, weights, allow_unused=True)
        for acc, g in zip(grads, gs, strict=True):
            if g is not None:
                acc.add_(g)
    return {n: (g * w.detach()).abs().cpu() for n, g, w in zip(masks, grads, weights, strict=True)}


@register_scorer(
    "snip",
    needs_data=True,
    kind="init",
    summary="keep the largest |g * w| (connection sensitivity) at initialization",
    reference="Lee, Ajanthan, Torr. SNIP. ICLR 2019",
)
def snip(
    model: nn.Module,
    *,
    density: float,
    data: Iterable[Any] | None = None,
    seed: int = 0,
    train_mode: bool = False,
    **options: Any,
) -> MethodResult:
    """SNIP ticket of ``model`` at ``density``; see :func:`snip_scores` and
    :func:`graphtickets.pruning.score_prune` for the shared ``options``. ``train_mode=False``
    (default) scores in eval mode, as the Synaptic-Flow reference does (:data:`SCORING_MODE_NOTE`).

    Examples
    --------
    >>> import torch, graphtickets as gt
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    >>> data = [(torch.randn(16, 4, generator=torch.Generator().manual_seed(0)), torch.arange(16) % 3)]
    >>> gt.pruning.prune(net, "snip", density=0.25, data=data).kept
    14
    """
    return score_batches(model, snip_scores, "snip", density=density, data=data, seed=seed,
                         train_mode=train_mode, **options)


def score_batches(
    model: nn.Module, scorer: Scorer, method: str, *, density: float, data: Iterable[Any] | None, seed: int,
    train_mode: bool, **options: Any,
) -> MethodResult:
    """:func:`~graphtickets.pruning.score_prune` of a scorer of a few batches (SNIP, GraSP).

    The batches are read once (:func:`~graphtickets.pruning._data.as_batches`) so that every
    round sees the same ones; ``meta`` records their number and the scoring mode.
    """
    batches = as_batches(data, method)
    res = score_prune(model, scorer, density=density, data=batches, seed=seed, train_mode=train_mode, **options)
    return res.with_meta(batches=len(batches), scoring_mode="train" if train_mode else "eval")
