"""RigL (Evci et al. 2020): sparse training that drops small weights and grows by dense gradients.

The network starts from a random mask with the Erdős–Rényi-Kernel layer densities and is
trained sparse (a copy of the model, from its initial weights). Every ``delta_t`` steps
(``t mod delta_t == 0``) before ``t_end = end * T`` (``T`` the run's steps; 75 % by default),
every layer ``l`` with ``n_l`` active connections:

1. drops the ``k_l = floor(f(t) n_l)`` active weights of smallest magnitude, where
   ``f(t) = alpha/2 (1 + cos(pi t / t_end))`` is the cosine-decayed drop fraction
   (:func:`~graphtickets.pruning.sparse_training.schedules.rigl_drop_fraction`);
2. grows ``k_l`` connections where the magnitude of the DENSE gradient is largest, among the
   positions not active after the drop (a just-dropped connection may come back: the
   paper's ``ArgTopK`` over ``i`` not in ``theta \\ I_drop``);
3. sets the grown weights to 0 (new connections do not change the network's output).

So every layer keeps its count through every update, and the final mask keeps exactly
``round(density * N)`` weights. The ticket is the final mask; the accuracy of RigL's own run
is ``meta["run_accuracy"]`` (see :func:`~graphtickets.pruning.sparse_training.common.run_meta`).

Choices and deviations (named):

* ERK over every prunable layer, the first and last included (the paper keeps the first layer
  dense only with its *uniform* distribution); a layer whose ERK density exceeds 1 is dense.
  ``distribution="er"`` or ``"uniform"`` give the paper's other distributions (uniform here
  without the dense first layer).
* The dense gradient is that of the loss on the batch of the update step, taken at the weights
  AFTER that step's optimizer update (the reference code updates the mask in place of that
  step's update); BatchNorm running statistics are left as they were.
* A connection dropped and grown back in one update restarts at weight 0 but keeps its
  momentum; newly grown connections have zero optimizer state (they had zero gradients).
* ``k_l`` is rounded down.

References
----------
.. [1] Evci, Gale, Menick, Castro, Elsen. "Rigging the Lottery: Making All Tickets Winners."
   ICML 2020.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from graphtickets._rules import Rule
from graphtickets.errors import GraphticketsError
from graphtickets.pruning.core import MethodResult, register_method, training_rules
from graphtickets.pruning.select import draw_generator
from graphtickets.pruning.sparse_training.common import (
    DISTRIBUTIONS,
    SparseOptions,
    check_fraction,
    counts_of,
    prepared,
    random_mask,
    run_meta,
    sparse_extras,
    sparse_run,
)
from graphtickets.pruning.sparse_training.schedules import rigl_drop_fraction, rigl_update_steps

__all__ = ["rigl", "dense_gradients", "drop_and_grow"]


def dense_gradients(model: nn.Module, names: Iterable[str], batch: Any) -> dict[str, torch.Tensor]:
    """``d loss / d w`` at every position of the named weights (pruned ones too) on ``batch``.

    Cross-entropy of ``model(inputs)``, in the model's current mode; buffers (BatchNorm running
    statistics) are restored afterwards.
    """
    params = dict(model.named_parameters())
    names = list(names)
    dev = params[names[0]].device
    saved = {n: b.detach().clone() for n, b in model.named_buffers()}
    x, y = batch[0].to(dev), batch[1].to(dev)
    loss = nn.functional.cross_entropy(model(x), y)
    grads = torch.autograd.grad(loss, [params[n] for n in names])
    with torch.no_grad():
        for n, b in model.named_buffers():
            b.copy_(saved[n])
    return {n: g.detach() for n, g in zip(names, grads, strict=True)}


def _smallest_active(w: torch.Tensor, active: torch.Tensor, k: int) -> torch.Tensor:
    """Mask of the ``k`` active entries of smallest ``|w|`` (ties: the lower flat index first)."""
    flat_w, flat_a = w.detach().abs().reshape(-1), active.reshape(-1)
    idx = torch.nonzero(flat_a).reshape(-1)
    order = torch.argsort(flat_w[idx], stable=True)
    out = torch.zeros_like(flat_a)
    out[idx[order[:k]]] = True
    return out.reshape(active.shape)


def _largest_absent(g: torch.Tensor, absent: torch.Tensor, k: int) -> torch.Tensor:
    """Mask of the ``k`` absent entries of largest ``|g|`` (ties: the lower flat index first)."""
    flat_g, flat_a = g.abs().reshape(-1), absent.reshape(-1)
    idx = torch.nonzero(flat_a).reshape(-1)
    order = torch.argsort(-flat_g[idx], stable=True)
    out = torch.zeros_like(flat_a)
    out[idx[order[:k]]] = True
    return out.reshape(absent.shape)


def drop_and_grow(weights: dict[str, torch.Tensor], masks: dict[str, torch.Tensor], grads: dict[str, torch.Tensor],
                  fraction: float) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], dict[str, int]]:
    """One RigL update: ``(new masks, grown positions, dropped count per layer)``.

    Every layer drops ``floor(fraction * n_active)`` of its smallest active ``|w|`` and grows as
    many where ``|grad|`` is largest among the positions not active after the drop.
    """
    new, grown, dropped = {}, {}, {}
    for n, m in masks.items():
        k = int(math.floor(fraction * int(m.count_nonzero())))
        drop = _smallest_active(weights[n], m, k)
        kept = m & ~drop
        grow = _largest_absent(grads[n], ~kept, k)
        new[n], grown[n], dropped[n] = kept | grow, grow, k
    return new, grown, dropped


class _RigLHook:
    """The ``on_step`` hook: a RigL update at the planned steps (state: the current masks)."""

    def __init__(self, masks: dict[str, torch.Tensor], steps: list[int], alpha: float, t_end: float) -> None:
        self.masks = masks
        self.steps = set(steps)
        self.alpha, self.t_end = alpha, t_end
        self.updates: list[dict[str, Any]] = []

    def __call__(self, t: int, model: nn.Module, batch: Any) -> dict[str, torch.Tensor] | None:
        if t not in self.steps:
            return None
        params = dict(model.named_parameters())
        f = rigl_drop_fraction(t, self.alpha, self.t_end)
        dev = {n: self.masks[n].to(params[n].device) for n in self.masks}
        grads = dense_gradients(model, list(dev), batch)
        new, grown, dropped = drop_and_grow({n: params[n] for n in dev}, dev, grads, f)
        with torch.no_grad():
            for n, g in grown.items():
                params[n].masked_fill_(g, 0.0)
        changed = sum(int((new[n] & ~dev[n]).count_nonzero()) for n in new)
        self.updates.append({"step": t, "fraction": f, "dropped": sum(dropped.values()), "changed": changed})
        self.masks = {n: v.cpu() for n, v in new.items()}
        return self.masks


@register_method(
    "rigl",
    needs_data=True,
    kind="train",
    summary="sparse training (ERK): drop the smallest weights, grow by the largest dense gradients, every delta_t steps",
    reference="Evci et al. 2020, Rigging the Lottery: Making All Tickets Winners (ICML)",
    options=SparseOptions,
    extras=sparse_extras,
    constraints={**training_rules(), "distribution": Rule.choice(*DISTRIBUTIONS)},
)
def rigl(
    model: nn.Module,
    *,
    density: float,
    data: Iterable[Any] | None = None,
    seed: int = 0,
    alpha: float = 0.3,
    delta_t: int = 100,
    end: float = 0.75,
    distribution: str = "erk",
    **options: Any,
) -> MethodResult:
    """RigL's final mask at ``density`` (module docstring for the algorithm and its deviations).

    Parameters
    ----------
    model : nn.Module
        Not modified (a copy is trained).
    density : float
        Fraction of prunable weights kept, through the whole run and at its end (exactly
        ``round(density * N)``).
    data : batches of (inputs, targets)
        The training batches (one epoch is one pass); needs a length (steps per epoch).
    seed : int
        Seeds the initial random mask and the training.
    alpha : float, default 0.3
        Initial drop fraction, in (0, 1) (the paper's 0.3).
    delta_t : int, default 100
        Steps between updates (the paper's 100); must be shorter than ``t_end``.
    end : float, default 0.75
        ``t_end`` as a fraction of the run's steps, in (0, 1] (the paper's 75 %).
    distribution : {"erk", "er", "uniform"}, default "erk"
        Layer densities of the (constant) per-layer counts.
    **options
        The training options of :class:`~graphtickets.pruning.sparse_training.common.SparseOptions`
        (``epochs``, ``optimizer``, ``lr``, ..., ``eval_data``, ``device``).

    Returns
    -------
    MethodResult
        ``meta``: ``run_accuracy`` (and ``run_accuracy_on``, ``run_loss``), ``updates`` (per
        update: ``step``, drop ``fraction``, ``dropped``, ``changed`` = connections that moved),
        ``changed``, ``schedule``, ``layer_densities``, ``cost``.

    Examples
    --------
    >>> import torch, graphtickets as gt
    >>> model = gt.models.build("mlp", in_shape=(8,), num_classes=2, widths=(16,))
    >>> g = torch.Generator().manual_seed(0)
    >>> data = [(torch.randn(16, 8, generator=g), torch.randint(0, 2, (16,), generator=g)) for _ in range(4)]
    >>> t = gt.pruning.prune(model, "rigl", density=0.3, data=data, epochs=5, delta_t=2)
    >>> t.kept == round(0.3 * t.total), [u["step"] for u in t.meta["updates"]]
    (True, [2, 4, 6, 8, 10, 12, 14])
    """
    alpha = check_fraction("alpha", alpha)
    end = check_fraction("end", end, high_open=False)
    opts = SparseOptions(**options)
    data, total = prepared(data, "rigl", opts)
    steps, t_end = rigl_update_steps(total, delta_t, end)
    masks, dens = random_mask(model, density, distribution, draw_generator(seed),
                              opts.keep_classifier_dense)
    hook = _RigLHook(masks, steps, alpha, t_end)
    before = counts_of(masks)
    _, hist = sparse_run(model, data, masks, hook, opts, seed)
    if counts_of(hook.masks) != before:  # the algorithm keeps every layer's count; a failure is a bug
        raise GraphticketsError("rigl changed a layer's count of connections; please report this")
    schedule = {"alpha": alpha, "delta_t": delta_t, "t_end": t_end, "total_steps": total, "update_steps": steps,
                "distribution": distribution}
    meta = {**run_meta(hist, opts, hook.updates, schedule), "layer_densities": dens}
    return MethodResult(masks=hook.masks, meta=meta)
