"""Optimizers: the :data:`OPTIMIZERS` registry, the one factory :func:`make_optimizer`, and
:class:`LeanOptimizer` (a private module; its public names are public through
:mod:`graphtickets.training`).

:func:`make_optimizer` builds every optimizer the package uses: :func:`graphtickets.training.train`
and :func:`graphtickets.training.batched.train_many` (with ``lean=True``) and Gem-Miner's score
optimizer (:mod:`graphtickets.pruning.gem_miner`).

:class:`LeanOptimizer` keeps the same per-parameter state as ``torch.optim.SGD``/``Adam``/
``AdamW`` and calls the same update kernels (the functional ``torch.optim.sgd.sgd`` and
``torch.optim.adam.adam``, with torch's own choice of single-tensor/foreach kernel), so its
steps are bit-for-bit those of the torch classes built with the same arguments (tested). What
it avoids is ``torch.optim.Optimizer.__init__``: in torch 2.x it imports ``torch._dynamo``
(about one second of CPU, once per process), which :func:`graphtickets.training.train` would
otherwise pay on its first call although it never compiles anything.

It is also what the batched trainer (:mod:`graphtickets.training.batched`) runs on stacked
weights: every update is elementwise, so one step on the ``(K, ...)`` stack of K tickets'
weights is K independent per-ticket steps.

Imports go one way: this module imports :mod:`graphtickets.training.regime` (argument checks);
``loop`` and ``batched`` import it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch.optim import adam as _adam
from torch.optim import sgd as _sgd

from graphtickets._registry import Registry
from graphtickets._rules import check_number
from graphtickets.errors import GraphticketsError

__all__ = ["LeanOptimizer", "LEAN_KINDS", "OPTIMIZERS", "make_optimizer", "lean_kind"]

#: The optimizers :class:`LeanOptimizer` implements.
LEAN_KINDS = ("sgd", "adam", "adamw")


# ---------------------------------------------------------------------------- the registry
def _sgd_factory(params: Iterable[Any], *, lr: float, momentum: float, weight_decay: float,
                 nesterov: bool) -> torch.optim.Optimizer:
    _check_nesterov(nesterov, momentum)
    return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay,
                           nesterov=nesterov)


def _adam_factory(params: Iterable[Any], *, lr: float, momentum: float, weight_decay: float,
                  nesterov: bool) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)


def _adamw_factory(params: Iterable[Any], *, lr: float, momentum: float, weight_decay: float,
                   nesterov: bool) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)


#: Optimizer name -> factory ``(params, *, lr, momentum, weight_decay, nesterov)``.
#: ``momentum`` and ``nesterov`` are used by SGD only; Adam/AdamW use torch's default betas.
OPTIMIZERS: Registry[Callable[..., torch.optim.Optimizer]] = Registry("optimizer")
_BUILTIN: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "sgd": _sgd_factory, "adam": _adam_factory, "adamw": _adamw_factory,
}
for _name, _factory in _BUILTIN.items():
    OPTIMIZERS.register(_name, _factory)


def _check_nesterov(nesterov: bool, momentum: float) -> None:
    if nesterov and momentum <= 0:
        raise GraphticketsError("nesterov=True needs momentum > 0; set momentum or nesterov=False")


def check_settings(name: str, *, lr: float, momentum: float, weight_decay: float, nesterov: bool) -> None:
    """Raise :class:`GraphticketsError` for a negative or non-finite ``lr``, ``momentum`` or
    ``weight_decay``, or (SGD) Nesterov without momentum."""
    check_number("lr", lr, low=0.0, low_open=False)
    check_number("momentum", momentum, low=0.0, low_open=False)
    check_number("weight_decay", weight_decay, low=0.0, low_open=False)
    if name == "sgd":
        _check_nesterov(nesterov, momentum)


def lean_kind(name: Any) -> str | None:
    """The kind (``"sgd"``, ``"adam"``, ``"adamw"``) :class:`LeanOptimizer` runs for optimizer
    ``name``, or ``None`` when ``name`` is not one of the built-in three still registered as
    such in :data:`OPTIMIZERS` (a registry entry replaced by the user is honoured)."""
    key = name.lower() if isinstance(name, str) else name
    if key in _BUILTIN and OPTIMIZERS.get(key) is _BUILTIN[key]:
        return str(key)
    return None


def make_optimizer(
    params: Iterable[Any],
    name: str,
    *,
    lr: float,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    nesterov: bool = False,
    lean: bool = False,
    fused: bool | None = None,
) -> torch.optim.Optimizer | LeanOptimizer:
    """Build the optimizer called ``name`` (a key of :data:`OPTIMIZERS`).

    Parameters
    ----------
    params : iterable
        Parameters (or parameter groups) to optimize.
    name : {"sgd", "adam", "adamw"}
        Unknown names raise :class:`~graphtickets.errors.UnknownNameError` listing the known.
    lr, momentum, weight_decay, nesterov
        Learning rate; SGD momentum and Nesterov flag (ignored by Adam/AdamW); weight decay
        (L2 for SGD and Adam, decoupled for AdamW).
    lean : bool, default False
        Build the built-in ``sgd``/``adam``/``adamw`` (while still registered as such) as a
        :class:`~graphtickets.training.optim.LeanOptimizer`: the same update kernels, bit for bit,
        without ``torch.optim.Optimizer.__init__`` (which imports ``torch._dynamo``, about a
        second on the first call in a process). Other names give their registered optimizer.
    fused : bool, optional
        With ``lean``, Adam/AdamW only: use torch's fused Adam kernel (``None``: torch's choice).

    Returns
    -------
    torch.optim.Optimizer or LeanOptimizer
        A ``torch.optim.Optimizer`` unless ``lean`` picked a :class:`LeanOptimizer`.

    Examples
    --------
    >>> from torch import nn
    >>> type(make_optimizer(nn.Linear(2, 1).parameters(), "adamw", lr=1e-3)).__name__
    'AdamW'
    >>> type(make_optimizer(nn.Linear(2, 1).parameters(), "adamw", lr=1e-3, lean=True)).__name__
    'LeanOptimizer'
    """
    kind = lean_kind(name) if lean else None
    if kind is not None:
        check_settings(kind, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov)
        sgd = kind == "sgd"
        return LeanOptimizer(params, kind, lr=float(lr), momentum=float(momentum) if sgd else 0.0,
                             weight_decay=float(weight_decay), nesterov=bool(nesterov) and sgd,
                             fused=None if sgd or fused is None else bool(fused))  # fmt: skip
    factory = OPTIMIZERS.get_or_raise(name.lower() if isinstance(name, str) else name)
    check_number("lr", lr, low=0.0, low_open=False)
    check_number("momentum", momentum, low=0.0, low_open=False)
    check_number("weight_decay", weight_decay, low=0.0, low_open=False)
    return factory(params, lr=float(lr), momentum=float(momentum),
                   weight_decay=float(weight_decay), nesterov=bool(nesterov))


# ---------------------------------------------------------------------------- lean optimizer
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
