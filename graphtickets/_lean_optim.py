"""SGD, Adam and AdamW without the ``torch.optim.Optimizer`` machinery (private).

:class:`LeanOptimizer` keeps the same per-parameter state as ``torch.optim.SGD``/``Adam``/
``AdamW`` and calls the same update kernels (the functional ``torch.optim.sgd.sgd`` and
``torch.optim.adam.adam``, with torch's own choice of single-tensor/foreach kernel), so its
steps are bit-for-bit those of the torch classes built with the same arguments (tested). What
it avoids is ``torch.optim.Optimizer.__init__``: in torch 2.x it imports ``torch._dynamo``
(about one second of CPU, once per process), which :func:`graphtickets.training.train` would
otherwise pay on its first call although it never compiles anything.

It is also what the batched trainer (:mod:`graphtickets.training_batched`) runs on stacked
weights: every update is elementwise, so one step on the ``(K, ...)`` stack of K tickets'
weights is K independent per-ticket steps.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch.optim import adam as _adam
from torch.optim import sgd as _sgd

__all__ = ["LeanOptimizer", "LEAN_KINDS"]

#: The optimizers :class:`LeanOptimizer` implements.
LEAN_KINDS = ("sgd", "adam", "adamw")


class LeanOptimizer:
    """One parameter group of SGD (momentum, Nesterov, weight decay), Adam or AdamW.

    Parameters
    ----------
    params : iterable of tensors
        Leaf tensors to update in place from their ``.grad`` (``None`` grads are skipped, as
        torch does).
    kind : {"sgd", "adam", "adamw"}
    lr, momentum, weight_decay, nesterov
        As ``torch.optim.SGD`` / ``Adam`` / ``AdamW`` (``momentum``, ``nesterov``: SGD only;
        Adam/AdamW use torch's default betas ``(0.9, 0.999)`` and ``eps=1e-8``).
    fused : bool, optional
        Passed to the Adam kernel (``None``: torch's default choice). ``True`` uses torch's
        fused CPU/GPU Adam kernel: the same update up to float rounding, several times faster
        on large stacked tensors.

    Attributes
    ----------
    param_groups : list of dict
        One group (``params``, ``lr``, ...): a learning-rate schedule writes ``lr`` here, as
        with a torch optimizer.
    state : dict
        Per-parameter state (``momentum_buffer``; ``step``, ``exp_avg``, ``exp_avg_sq``) under
        the names torch uses.

    Examples
    --------
    >>> w = torch.ones(3, requires_grad=True)
    >>> opt = LeanOptimizer([w], "sgd", lr=0.5, momentum=0.0)
    >>> w.grad = torch.tensor([1.0, 2.0, 0.0])
    >>> opt.step()
    >>> w.tolist()
    [0.5, 0.0, 1.0]
    """

    def __init__(
        self,
        params: Iterable[torch.Tensor],
        kind: str,
        *,
        lr: float,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
        fused: bool | None = None,
    ) -> None:
        if kind not in LEAN_KINDS:
            raise ValueError(f"kind must be one of {LEAN_KINDS}, got {kind!r}")
        self.kind = kind
        group: dict[str, Any] = {
            "params": list(params),
            "lr": float(lr),
            "momentum": float(momentum),
            "weight_decay": float(weight_decay),
            "nesterov": bool(nesterov),
        }
        self.param_groups = [group]
        self.state: dict[torch.Tensor, dict[str, Any]] = {}
        self.fused = fused

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Drop (or zero) every parameter's gradient."""
        for p in self.param_groups[0]["params"]:
            if p.grad is None:
                continue
            if set_to_none:
                p.grad = None
            else:
                p.grad.zero_()

    @torch.no_grad()
    def step(self) -> None:
        """One update of every parameter that has a gradient."""
        group = self.param_groups[0]
        params = [p for p in group["params"] if p.grad is not None]
        grads = [p.grad for p in params]
        if not params:
            return
        if self.kind == "sgd":
            bufs: list[torch.Tensor | None] = [self.state.get(p, {}).get("momentum_buffer") for p in params]
            _sgd.sgd(
                params, grads, bufs, weight_decay=group["weight_decay"], momentum=group["momentum"],
                lr=group["lr"], dampening=0.0, nesterov=group["nesterov"], maximize=False,
                foreach=None, fused=None,
            )  # fmt: skip
            if group["momentum"] != 0:
                for p, buf in zip(params, bufs, strict=True):
                    self.state.setdefault(p, {})["momentum_buffer"] = buf
            return
        steps, avgs, sqs = [], [], []
        for p in params:
            st = self.state.get(p)
            if not st:
                if self.fused:
                    step = torch.zeros((), dtype=torch.float32, device=p.device)
                else:
                    step = torch.tensor(0.0, dtype=torch.float32)
                st = self.state[p] = {
                    "step": step,
                    "exp_avg": torch.zeros_like(p, memory_format=torch.preserve_format),
                    "exp_avg_sq": torch.zeros_like(p, memory_format=torch.preserve_format),
                }
            steps.append(st["step"])
            avgs.append(st["exp_avg"])
            sqs.append(st["exp_avg_sq"])
        _adam.adam(
            params, grads, avgs, sqs, [], steps, foreach=None, capturable=False, differentiable=False,
            fused=self.fused, grad_scale=None, found_inf=None, has_complex=False,
            decoupled_weight_decay=self.kind == "adamw", amsgrad=False, beta1=0.9, beta2=0.999,
            lr=group["lr"], weight_decay=group["weight_decay"], eps=1e-8, maximize=False,
        )  # fmt: skip
