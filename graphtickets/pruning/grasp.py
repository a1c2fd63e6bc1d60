"""GraSP: gradient signal preservation at initialization (Wang, Zhang, Grosse 2020).

With logits divided by a temperature ``T`` (200 by default), let ``g`` be the gradient of the
cross-entropy summed over the batches given, and ``Hg`` the Hessian-gradient product, obtained
by double back-propagation: for each batch, the gradient is taken again with a graph and
``z = <g, ∇L_batch>`` is back-propagated, so that the ``.grad`` of the weights accumulates
``Σ_b H_b g``. The paper scores ``S(-w) = -w ⊙ Hg`` and REMOVES the largest; equivalently this
module's score is ``w ⊙ Hg`` and the LARGEST scores are KEPT. (Removing weights with large
negative ``w ⊙ Hg`` is what preserves, even increases, the gradient norm.)

References
----------
.. [1] Wang, Zhang, Grosse. "Picking Winning Tickets Before Training by Preserving Gradient
   Flow." ICLR 2020.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from graphtickets.pruning._data import as_batches, model_device
from graphtickets.pruning.core import MethodResult, register_scorer
from graphtickets.pruning.snip import score_batches

__all__ = ["grasp_scores", "hessian_gradient", "grasp"]


def hessian_gradient(
    model: nn.Module,
    names: Iterable[str],
    data: Iterable[Any],
    *,
    temperature: float = 200.0,
    masks: Mapping[str, torch.Tensor] | None = None,
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """``(g, Hg)`` of the temperature-scaled cross-entropy with respect to parameters ``names``.

    ``g = Σ_b ∇L_b`` (first pass, no graph); ``Hg = Σ_b ∇(<g, ∇L_b>)`` (second pass, double
    back-propagation), where ``L_b`` is the mean cross-entropy of batch ``b`` on
    ``model(x) / temperature``. Only the listed parameters enter ``g`` and ``H``.

    With ``masks`` (the weights still alive), the derivatives are those of the MASKED network
    ``f(w ⊙ m)`` with respect to its live weights: the pruned entries (zero in ``model``, but
    still free parameters whose gradient is not zero) are removed from ``g`` before the
    second pass, and ``g`` and ``Hg`` are zero there. Without this, an iterated or
    prior-constrained GraSP would score ``w ⊙ H g_full`` instead of ``w ⊙ H (g ⊙ m)``.
    """
    batches = as_batches(data, "grasp")
    params = dict(model.named_parameters())
    names = list(names)
    weights = [params[n] for n in names]
    dev = model_device(model)
    g = [torch.zeros_like(w) for w in weights]
    for x, y in batches:  # first pass: the gradient, no graph
        loss = F.cross_entropy(model(x.to(dev)) / temperature, y.to(dev))
        for acc, gi in zip(g, torch.autograd.grad(loss, weights, allow_unused=True), strict=True):
            if gi is not None:
                acc.add_(gi)
    live = [
        None if masks is None or n not in masks else masks[n].to(w.device, w.dtype)
        for n, w in zip(names, weights, strict=True)
    ]
    for acc, m in zip(g, live, strict=True):
        if m is not None:
            acc.mul_(m)  # the masked network has no pruned weights: no direction along them
    hg = [torch.zeros_like(w) for w in weights]
    for x, y in batches:  # second pass: Hessian-gradient product by double backprop
        loss = F.cross_entropy(model(x.to(dev)) / temperature, y.to(dev))
        gf = torch.autograd.grad(loss, weights, create_graph=True, allow_unused=True)
        z = sum((gi * fi).sum() for gi, fi in zip(g, gf, strict=True) if fi is not None)
        if not isinstance(z, torch.Tensor) or not z.requires_grad:
            continue  # the loss does not depend on the weights twice (e.g. a linear model)
        for acc, h in zip(hg, torch.autograd.grad(z, weights, allow_unused=True), strict=True):
            if h is not None:
                acc.add_(h)
    for acc, m in zip(hg, live, strict=True):
        if m is not None:
            acc.mul_(m)
    return dict(zip(names, g, strict=True)), dict(zip(names, hg, strict=True))


def grasp_scores(
    model: nn.Module,
    masks: Mapping[str, torch.Tensor],
    data: Iterable[Any],
    generator: torch.Generator | None = None,
    *,
    temperature: float = 200.0,
    train_mode: bool = False,
) -> dict[str, torch.Tensor]:
    """GraSP scores ``w ⊙ Hg`` (keep the largest; the paper removes the largest ``-w ⊙ Hg``).

    Parameters
    ----------
    model : nn.Module
        A private copy with the current masks applied.
    masks : dict[str, torch.Tensor]
        The parameters to score (keys).
    data : iterable of (inputs, targets)
    generator : torch.Generator, optional
        Unused.
    temperature : float
        Logits are divided by it (the paper uses 200).
    train_mode : bool
        Score in train mode (BatchNorm with batch statistics); by default eval mode, as the
        Synaptic-Flow reference does (see :data:`graphtickets.pruning.snip.SCORING_MODE_NOTE`).

    Returns
    -------
    dict[str, torch.Tensor]
        Signed scores on the CPU; pruned weights score 0.
    """
    model.train(train_mode)
    _, hg = hessian_gradient(model, masks, data, temperature=temperature, masks=masks)
    params = dict(model.named_parameters())
    return {n: (params[n].detach() * hg[n]).cpu() for n in masks}


@register_scorer(
    "grasp",
    needs_data=True,
    kind="init",
    summary="keep the largest w * Hg (remove weights whose removal shrinks gradient flow least)",
    reference="Wang, Zhang, Grosse. Picking Winning Tickets Before Training by Preserving Gradient Flow. ICLR 2020",
)
def grasp(
    model: nn.Module,
    *,
    density: float,
    data: Iterable[Any] | None = None,
    seed: int = 0,
    temperature: float = 200.0,
    train_mode: bool = False,
    **options: Any,
) -> MethodResult:
    """GraSP ticket of ``model`` at ``density``; see :func:`grasp_scores` and
    :func:`graphtickets.pruning.score_prune` for the shared ``options``. Scored in eval mode
    unless ``train_mode=True`` (:data:`graphtickets.pruning.snip.SCORING_MODE_NOTE`).

    Examples
    --------
    >>> import torch, graphtickets as gt
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3))
    >>> data = [(torch.randn(16, 4, generator=torch.Generator().manual_seed(0)), torch.arange(16) % 3)]
    >>> gt.pruning.prune(net, "grasp", density=0.5, data=data).kept
    28
    """
    return score_batches(model, grasp_scores, "grasp", density=density, data=data, seed=seed,
                         train_mode=train_mode, temperature=temperature, **options)
