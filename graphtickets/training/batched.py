"""Train many tickets of one architecture at once, on the same batches, as one batched model.

A study trains dozens of tickets of one small network on the same data in the same order (one
density and seed: every method, ablation and replicate). Trained one after another, each
step of such a network costs mostly per-call overhead. :func:`train_many` stacks the K
tickets' weights along a new leading dimension and trains them together: one forward and one
backward pass per batch for all K, per-ticket masks, per-ticket optimizer state (the update
rules are elementwise, so one step on the ``(K, ...)`` stacks is K independent steps) and
per-ticket BatchNorm statistics. It is the same math as calling
:func:`graphtickets.training.train` on each ticket with the same arguments and the same
batches: the results agree to float32 rounding (tested), not bit for bit (batched matrix
products sum in another order).

Two engines compute the batched passes:

``"stacked"``
    Plain MLPs (``nn.Sequential`` of an optional ``Flatten``, then ``Linear`` layers with
    ``ReLU`` between them): forward and backward written out with batched matrix products
    (``torch.baddbmm``/``bmm``) into buffers allocated once; the cross-entropy gradient is
    ``(softmax - onehot) / batch``. No autograd graph, no per-step allocation.
    Conv nets (convolutions, BatchNorm, residual adds, pooling, flatten, Linear layers; see
    :mod:`graphtickets.training.stacked`): the model's fx trace run on stacked channels-last
    tensors, convolutions as batched matrix products, differentiated by autograd.
``"vmap"``
    Any other supported network (convolutions, BatchNorm, residual blocks): the model is run
    with :func:`torch.func.functional_call` under :func:`torch.func.vmap` over the stacked
    parameters and buffers (a convolution with K weight sets becomes one grouped
    convolution), and autograd differentiates the sum of the K losses (ticket k's weights
    only reach ticket k's loss, so each gets exactly its own gradient).

:func:`can_batch` says up front whether a set of models and options can be batched, and if
not, why (a sentence), so that a caller (the study) can fall back to :func:`train` per cell.

Speed (one CPU thread, ``benchmarks/perf``): 16 MNIST-1D MLP (100, 100) tickets trained
together with the stacked engine take 3-4.5x less time than 16 one-by-one :func:`train`
calls; 16 cnn1d tickets 2.2-3x, 16 resnet1d tickets 1.0-1.2x (compute-bound: one-by-one
training already spends about 70 % of its time in the convolution kernels). The vmap engine is *not* faster than one-by-one training for small conv nets on a CPU
(0.8-1.2x on Conv-2, K = 2-8: the grouped convolutions are compute-bound either way); it
gives the same results and may pay off on a GPU. A caller that batches for speed on a CPU
asks ``can_batch(..., engine="stacked")``.

What lives where: :func:`train_many` checks its arguments, stacks the tickets (``_stack``),
picks the engine (``_engine``), runs the epochs (``_run_epochs``; one epoch in
``_train_epoch``, each step in ``_Batched.step``) and writes the weights back
(``_unstack``). The checks, the training regime, batches, masks and seeding are the ones
:func:`~graphtickets.training.train` uses (:mod:`graphtickets.training.regime`), and the optimizer
comes from the same factory (:func:`~graphtickets.training.make_optimizer` with
``lean=True``). Imports go one way: this module imports :mod:`graphtickets.training`, never
the other way round; ``study`` imports it.

References
----------
Frankle & Carbin, "The Lottery Ticket Hypothesis", ICLR 2019 (sparse training with a mask).
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from graphtickets._rules import check_seed
from graphtickets.errors import GraphticketsError
from graphtickets.training.loop import History, resolve_device
from graphtickets.training.optim import LEAN_KINDS, check_settings, lean_kind, make_optimizer
from graphtickets.training.regime import (
    Masks,
    Regime,
    check_data,
    check_int,
    iterate,
    mask_dict,
    no_batches,
    seeded,
    set_lr,
    split_batch,
)
from graphtickets.training.settings import TrainSettings
from graphtickets.training.stacked import ConvPlan, conv_plan, plan_problem

__all__ = ["can_batch", "train_many", "ENGINES", "SUPPORTED_MODULES"]

log = logging.getLogger("graphtickets.training")

#: Examples per forward pass of the conv engine in evaluation (larger batches are split).
_EVAL_CHUNK = 200

#: Engines of :func:`train_many` (``"auto"`` picks ``"stacked"`` where it applies).
ENGINES = ("auto", "stacked", "vmap")

#: Leaf module types the batched trainer runs (containers such as ``nn.Sequential`` or a
#: ResNet block are fine as long as their leaves are among these).
SUPPORTED_MODULES: tuple[type[nn.Module], ...] = (
    nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d,
    nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d,
    nn.ReLU, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Tanh, nn.Sigmoid, nn.Softplus, nn.Identity,
    nn.Flatten, nn.Unflatten,
    nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d,
    nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d,
    nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d,
)  # fmt: skip


# ---------------------------------------------------------------------------- can_batch
def _signature(model: nn.Module) -> list[tuple[Any, ...]]:
    mods = [(n, type(m).__name__) for n, m in model.named_modules()]
    params = [(n, tuple(p.shape), p.dtype, p.requires_grad) for n, p in model.named_parameters()]
    bufs = [(n, tuple(b.shape), b.dtype) for n, b in model.named_buffers()]
    return [tuple(mods), tuple(params), tuple(bufs)]


def _stacked_plan(model: nn.Module) -> list[nn.Module] | None:
    """The layers of a plain MLP (``[Flatten], Linear, ReLU, ..., Linear``), else ``None``."""
    if type(model) is not nn.Sequential:
        return None
    mods = list(model.children())
    if mods and isinstance(mods[0], nn.Flatten) and mods[0].start_dim == 1 and mods[0].end_dim == -1:
        mods = mods[1:]
    if not mods or len(mods) % 2 == 0:
        return None
    for i, m in enumerate(mods):
        want = nn.Linear if i % 2 == 0 else nn.ReLU
        if type(m) is not want:
            return None
    return mods


def can_batch(
    models: Sequence[nn.Module],
    masks: Sequence[Masks] | None = None,
    *,
    optimizer: Any = "sgd",
    loss_fn: Any = None,
    callback: Any = None,
    extra_loss: Any = None,
    rewind_iteration: Any = None,
    engine: str = "auto",
) -> str | None:
    """Why ``models`` cannot be trained together by :func:`train_many`, or ``None`` if they can.

    Parameters
    ----------
    models : sequence of nn.Module
        The tickets' networks (one per ticket).
    masks : sequence of dict or Ticket or None, optional
        One per model (checked against its model).
    optimizer, loss_fn, callback, extra_loss, rewind_iteration
        The options the caller would pass to :func:`graphtickets.training.train`; the batched
        trainer supports an optimizer *name* among ``"sgd"``, ``"adam"``, ``"adamw"``, the
        default cross-entropy loss, ``rewind_iteration``, and neither of the other two.
    engine : {"auto", "stacked", "vmap"}
        ``"stacked"``: the two fast engines only (plain MLPs, and the conv nets of
        :mod:`graphtickets.training.stacked`); the reason names what they cannot run.

    Returns
    -------
    str or None
        A sentence naming the first obstacle (the caller falls back to one
        :func:`~graphtickets.training.train` per model), or ``None``.

    Examples
    --------
    >>> from torch import nn
    >>> mlp = lambda: nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    >>> can_batch([mlp(), mlp()]) is None
    True
    >>> can_batch([mlp(), mlp()], optimizer="rmsprop")
    "optimizer 'rmsprop' is not one of the batched optimizers ('sgd', 'adam', 'adamw')"
    """
    if engine not in ENGINES:
        return f"engine {engine!r} is not one of {ENGINES}"
    if isinstance(models, nn.Module) or not isinstance(models, Sequence) or not models:
        return "models must be a non-empty sequence of nn.Module"
    if not all(isinstance(m, nn.Module) for m in models):
        return "every model must be an nn.Module"
    if masks is not None and (not isinstance(masks, Sequence) or len(masks) != len(models)):
        return "masks must be a sequence with one entry (dict, Ticket or None) per model"
    if isinstance(optimizer, torch.optim.Optimizer) or not isinstance(optimizer, str):
        return "an optimizer instance cannot be batched; pass its name ('sgd', 'adam', 'adamw')"
    if lean_kind(optimizer) is None:
        return f"optimizer {optimizer!r} is not one of the batched optimizers {LEAN_KINDS}"
    for name, value in (("loss_fn", loss_fn), ("callback", callback), ("extra_loss", extra_loss)):
        if value is not None:
            return f"{name} is not supported by the batched trainer (train these tickets one by one)"
    sig = _signature(models[0])
    for i, m in enumerate(models[1:], start=1):
        if _signature(m) != sig:
            return f"model {i} differs from model 0 (modules, parameter names/shapes/dtypes or buffers)"
    devices = {t.device for m in models for t in [*m.parameters(), *m.buffers()]}
    if len(devices) > 1:
        return f"the models' tensors are on several devices ({sorted(map(str, devices))})"
    for name, mod in models[0].named_modules():
        if next(iter(mod.children()), None) is not None:
            continue  # a container: its leaves are checked
        if type(mod) not in SUPPORTED_MODULES:
            return f"module {name!r} ({type(mod).__name__}) is not supported by the batched trainer"
        if isinstance(mod, nn.modules.dropout._DropoutNd) and mod.p > 0:
            return (f"module {name!r} is dropout with p={mod.p}: its random draws cannot match "
                    f"one-by-one training")  # fmt: skip
        if isinstance(mod, nn.modules.batchnorm._BatchNorm) and mod.track_running_stats and mod.momentum is None:
            return f"module {name!r} is BatchNorm with momentum=None (cumulative averages) — not batched"
    if engine == "stacked" and _stacked_plan(models[0]) is None:
        problem = plan_problem(models[0])
        if problem is not None:
            return f"engine 'stacked' cannot run this network: {problem}"
    if masks is not None:
        for i, (m, mk) in enumerate(zip(models, masks, strict=True)):
            try:
                mask_dict(m, mk)
            except GraphticketsError as exc:
                return f"masks[{i}]: {exc}"
    return None


# ---------------------------------------------------------------------------- engines
def _keep_(t: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """``t`` where ``keep > 0.5``, else exactly 0, in place (also where ``t`` is NaN or inf).

    ``masked_fill_`` with a bool mask does the same, but on CPU it is up to 10x slower on the
    stacked tensors; this is ReLU's backward kernel (a select), vectorised."""
    return torch.ops.aten.threshold_backward.grad_input(t, keep, 0.5, grad_input=t)


class _Stacked:
    """Plain-MLP engine: explicit forward/backward with batched matmuls into reused buffers.

    Hidden activations are ``(K, B, width)``; the last layer writes its logits as ``(K, C, B)``
    so that softmax and log-softmax run over a strided class axis with the batch axis
    vectorised (over a last axis of 10 classes they are ~20x slower on CPU).
    """

    def __init__(self, params: dict[str, torch.Tensor], names: list[tuple[str, str | None]]) -> None:
        self.w = [params[w] for w, _ in names]
        self.b = [params[b] if b is not None else None for _, b in names]
        for p in (*self.w, *[b for b in self.b if b is not None]):
            p.grad = torch.zeros_like(p)
        self._bufs: dict[int, tuple[list[torch.Tensor], list[torch.Tensor]]] = {}

    def _buffers(self, batch: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Every layer's input ``(K, batch, in)`` and a gradient buffer of the same shape for
        each but the first, allocated once per batch size (a few sizes are kept: the training
        batch, a smaller last batch, evaluation batches). Fresh multi-megabyte tensors each
        step would cost more in page faults than the arithmetic on them."""
        bufs = self._bufs.get(batch)
        if bufs is None:
            k, w0 = self.w[0].shape[0], self.w[0]
            h = [torch.empty(k, batch, w.shape[2], dtype=w0.dtype, device=w0.device) for w in self.w]
            if len(self._bufs) > 3:
                self._bufs.clear()
            bufs = self._bufs[batch] = (h, [torch.empty_like(t) for t in h])
        return bufs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(K, C, B)`` of inputs ``(K, B, ...)``; the layers' inputs stay in the buffers
        for :meth:`backward`."""
        k, batch = self.w[0].shape[0], x.shape[1]
        hs, _ = self._buffers(batch)
        hs[0].copy_(x.reshape(k, batch, -1))
        last = len(self.w) - 1
        for i in range(last):
            w, b, out = self.w[i], self.b[i], hs[i + 1]
            if b is not None:
                torch.baddbmm(b.unsqueeze(1), hs[i], w.transpose(1, 2), out=out)
            else:
                torch.bmm(hs[i], w.transpose(1, 2), out=out)
            out.clamp_(min=0)
        w, b = self.w[last], self.b[last]
        if b is not None:
            return torch.baddbmm(b.unsqueeze(2), w, hs[last].transpose(1, 2))
        return torch.bmm(w, hs[last].transpose(1, 2))

    def backward(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Gradients of the per-ticket mean cross-entropy (targets ``y`` ``(K, B)``) into ``.grad``;
        returns the losses ``(K,)``."""
        k, _, batch = logits.shape
        hs, dhs = self._buffers(batch)
        yk = y.unsqueeze(1)
        logp = torch.log_softmax(logits, dim=1)
        losses = logp.gather(1, yk).view(k, batch).mean(dim=1).neg_()
        dz = logp.exp_()  # softmax; gradient of the mean cross-entropy: (softmax - onehot) / B
        dz.scatter_add_(1, yk, torch.full((1, 1, 1), -1.0, dtype=dz.dtype, device=dz.device).expand(k, 1, batch))
        dz.div_(batch)
        last = len(self.w) - 1
        dz_t = dz.transpose(1, 2)  # (K, B, C)
        for i in range(last, -1, -1):
            w, b = self.w[i], self.b[i]
            assert w.grad is not None
            torch.bmm(dz_t.transpose(1, 2), hs[i], out=w.grad)
            if b is not None:
                assert b.grad is not None
                torch.sum(dz_t, dim=1, out=b.grad)
            if i > 0:
                dh = dhs[i]
                torch.bmm(dz_t, w, out=dh)
                # ReLU's backward (pass where its output > 0), in place
                torch.ops.aten.threshold_backward.grad_input(dh, hs[i], 0.0, grad_input=dh)
                dz_t = dh
        return losses


def _vmap_forward(skeleton: nn.Module, params: dict[str, torch.Tensor],
                  buffers: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    from torch.func import functional_call, vmap

    def one(p: dict[str, torch.Tensor], b: dict[str, torch.Tensor], xx: torch.Tensor) -> torch.Tensor:
        return functional_call(skeleton, (p, b), (xx,))

    return vmap(one, in_dims=(0, 0, 0), randomness="error")(params, buffers, x)


def _labels(y: torch.Tensor, logits: torch.Tensor) -> None:
    if y.is_floating_point() or y.is_complex() or y.dim() != 2 or logits.dim() != 3:
        raise GraphticketsError(
            "the batched trainer needs class-index targets (a 1-D integer tensor per batch) and "
            "(batch, classes) outputs; train these tickets one by one with graphtickets.training.train"
        )


def _ce(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-ticket mean cross-entropy ``(K,)`` of logits ``(K, B, C)`` and targets ``(K, B)``."""
    k, batch, c = logits.shape
    per = nn.functional.cross_entropy(logits.reshape(k * batch, c), y.reshape(k * batch), reduction="none")
    return per.view(k, batch).mean(dim=1)


# ---------------------------------------------------------------------------- train_many
def train_many(
    models: Sequence[nn.Module],
    data: Iterable[Any],
    *,
    masks: Sequence[Masks] | None = None,
    settings: TrainSettings | None = None,
    epochs: int = 1,
    optimizer: str = "sgd",
    lr: float = 0.1,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    nesterov: bool = False,
    schedule: str | None = None,
    milestones: Iterable[int] | None = None,
    gamma: float = 0.1,
    warmup: int = 0,
    eval_data: Iterable[Any] | None = None,
    device: str | torch.device = "cpu",
    seed: int = 0,
    max_iterations: int | None = None,
    engine: str = "auto",
    fused: bool | None = None,
    per_ticket_data: bool = False,
    rewind_iteration: int | None = None,
    start_epoch: int = 0,
) -> list[History]:
    """Train K models of one architecture together, each with its own mask, on the same batches.

    The result is what K calls ``train(models[k], data_k, masks=masks[k], ...)`` with the same
    keyword arguments would give, where every ``data_k`` yields the batches that one pass over
    ``data`` yields in each epoch (e.g. a fresh :func:`graphtickets.data.batches` with the same
    seed per ticket): the same steps, the same per-ticket optimizer state, to float32 rounding.

    Parameters
    ----------
    models : sequence of nn.Module
        K networks of one architecture (same modules, parameter names and shapes); trained
        **in place** (their final weights and buffers are written back) and moved to
        ``device``. Their train/eval mode is restored.
    data : re-iterable of (inputs, targets), or K of them with ``per_ticket_data``
        Iterated **once per epoch for all tickets**; targets are class indices. With
        ``per_ticket_data=True``, a sequence of K re-iterables: ``data[k]`` is ticket k's own
        (each iterated once per epoch, as ``train(models[k], data[k], ...)`` would; they must
        give equal numbers of batches of equal shapes).
    masks : sequence of dict or Ticket or None, optional
        One per model (``True`` = kept). Pruned weights are zeroed first and their gradients
        zeroed before every step, so they, their momentum and Adam moments stay exactly zero.
    settings : TrainSettings, optional
        The training settings whole, as :func:`graphtickets.training.train` takes them (the
        keywords below then stay at their defaults).
    epochs, optimizer, lr, momentum, weight_decay, nesterov, schedule, milestones, gamma, warmup
        As in :func:`graphtickets.training.train` (``optimizer`` by name: ``"sgd"``, ``"adam"``
        or ``"adamw"``), the same for every ticket.
    eval_data : iterable, optional
        Evaluated after every epoch (eval mode, no gradients), per ticket.
    device : str or torch.device, default "cpu"
    seed : int, default 0
        In ``[0, 2**63 - 1]``. Seeds torch's default generator inside a ``fork_rng`` block, as :func:`train` does
        (a shuffling ``DataLoader`` then gives the order each one-by-one run would see).
    max_iterations : int, optional
        Stop after this many optimizer steps (the same for every ticket).
    engine : {"auto", "stacked", "vmap"}, default "auto"
        ``"auto"``: ``"stacked"`` for plain MLPs, else ``"vmap"`` (see the module docstring).
    fused : bool, optional
        Adam/AdamW only: use torch's fused Adam kernel on the stacks (``None``: on for CPU and
        CUDA float32 weights). The same update up to float rounding, several times faster.
    per_ticket_data : bool, default False
        ``data`` holds one data source per ticket (see ``data``).
    rewind_iteration, start_epoch
        As in :func:`graphtickets.training.train`: each ticket's ``History.rewind`` is its
        state after that many steps; training starts at 0-based epoch ``start_epoch`` of the
        schedule (IMP's rewound rounds).

    Returns
    -------
    list of History
        One per model, as :func:`train` returns: per-epoch ``loss``/``accuracy`` (means over
        the epoch's training batches, that ticket's own), ``eval_loss``/``eval_accuracy``,
        ``lr``, ``iterations``; ``seconds`` are each ticket's share (the batched wall time
        divided by K). ``rewind``: each ticket's state after ``rewind_iteration`` steps.

    Raises
    ------
    GraphticketsError
        With :func:`can_batch`'s reason when the models or options cannot be batched, and for
        bad settings as :func:`train` raises them.

    Examples
    --------
    >>> from torch import nn
    >>> g = torch.Generator().manual_seed(0)
    >>> data = [(torch.randn(8, 4, generator=g), torch.randint(0, 2, (8,), generator=g))]
    >>> nets = [nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2)) for _ in range(3)]
    >>> masks = [{"0.weight": torch.rand(3, 4, generator=g) > 0.5} for _ in nets]
    >>> hists = train_many(nets, data, masks=masks, epochs=2, lr=0.1)
    >>> [h.iterations for h in hists], bool((nets[2][0].weight[~masks[2]["0.weight"]] == 0).all())
    ([2, 2, 2], True)
    """
    s = TrainSettings.of(settings, epochs=epochs, optimizer=optimizer, lr=lr, momentum=momentum,
                         weight_decay=weight_decay, nesterov=nesterov, schedule=schedule, milestones=milestones,
                         gamma=gamma, warmup=warmup, max_iterations=max_iterations)  # fmt: skip
    reason = can_batch(models, masks, optimizer=s.optimizer, engine=engine)
    if reason is not None:
        raise GraphticketsError(f"these tickets cannot be trained together: {reason}")
    assert isinstance(s.optimizer, str)  # can_batch takes names only
    regime = Regime.checked(epochs=s.epochs, lr=s.lr, schedule=s.schedule, milestones=s.milestones,
                            gamma=s.gamma, warmup=s.warmup, max_iterations=s.max_iterations)  # fmt: skip
    kind = s.optimizer.lower()
    check_settings(kind, lr=s.lr, momentum=s.momentum, weight_decay=s.weight_decay, nesterov=s.nesterov)
    rewind_at = check_int("rewind_iteration", rewind_iteration, low=0, allow_none=True)
    first = check_int("start_epoch", start_epoch, low=0)
    _check_data(data, regime.epochs, len(models), per_ticket_data)
    seed = check_seed(seed)
    dev = resolve_device(device)
    k = len(models)
    was_training = [m.training for m in models]
    for m in models:
        m.to(dev)
    st = _stack(models, masks, dev)
    eng = _engine(models[0], st, engine)
    if fused is None:
        fused = kind != "sgd" and dev.type in ("cpu", "cuda") and all(
            st.params[n].dtype == torch.float32 for n in st.trainable)  # fmt: skip
    opt = make_optimizer([st.params[n] for n in st.trainable], kind, lr=s.lr, momentum=s.momentum,
                         weight_decay=s.weight_decay, nesterov=s.nesterov, lean=True, fused=fused)  # fmt: skip
    run = _Batched(st, eng, opt, dev, per_ticket=per_ticket_data, rewind_at=rewind_at,
                   keys=list(models[0].state_dict()))  # fmt: skip
    hists = [History(epochs=[], iterations=0, seconds=0.0, rewind=None, rewind_iteration=rewind_at) for _ in range(k)]
    t0 = time.perf_counter()
    with seeded(dev, seed):
        iterations, stopped = _run_epochs(run, data, regime, eval_data, hists, first or 0)
        run.take_rewind(iterations)
    if run.rewinds is not None:
        for h, rw in zip(hists, run.rewinds, strict=True):
            h.rewind = rw
    _unstack(st, models)
    for m, was in zip(models, was_training, strict=True):
        m.train(was)
    total = time.perf_counter() - t0
    for h in hists:
        h.iterations = iterations
        h.seconds = total / k
        h.stopped = stopped
    return hists


# ---------------------------------------------------------------------------- train_many's steps
@dataclass
class _Stacks:
    """The K models' parameters and buffers stacked along a new leading dimension.

    ``params`` are leaf tensors (``requires_grad`` where the model's parameter has it) holding
    the training state; ``pruned`` is ``True`` where ticket k prunes a weight; ``own_params`` /
    ``own_buffers`` are each model's own tensors, written back by ``_unstack``."""

    params: dict[str, torch.Tensor]
    buffers: dict[str, torch.Tensor]
    pruned: dict[str, torch.Tensor]
    trainable: list[str]
    own_params: list[dict[str, nn.Parameter]]
    own_buffers: list[dict[str, torch.Tensor]]


def _stack(models: Sequence[nn.Module], masks: Sequence[Masks] | None, dev: torch.device) -> _Stacks:
    """Stack the models' weights and buffers, with every pruned weight set to exactly 0."""
    mask_list = [mask_dict(m, masks[i] if masks is not None else None) for i, m in enumerate(models)]
    pnames = [n for n, _ in models[0].named_parameters()]
    bnames = [n for n, _ in models[0].named_buffers()]
    own_p = [dict(m.named_parameters()) for m in models]
    own_b = [dict(m.named_buffers()) for m in models]
    with torch.no_grad():
        params = {n: torch.stack([pm[n].detach() for pm in own_p]).clone() for n in pnames}
        buffers = {n: torch.stack([bm[n].detach() for bm in own_b]).clone() for n in bnames}
    pruned: dict[str, torch.Tensor] = {}
    for n in pnames:
        if any(n in md for md in mask_list):
            pruned[n] = torch.stack([
                ~md[n].to(dev) if n in md else torch.zeros(params[n].shape[1:], dtype=torch.bool, device=dev)
                for md in mask_list
            ])  # fmt: skip
            params[n].masked_fill_(pruned[n], 0.0)
    trainable = [n for n in pnames if own_p[0][n].requires_grad]
    for n in trainable:
        params[n].requires_grad_(True)
    return _Stacks(params=params, buffers=buffers, pruned=pruned, trainable=trainable,
                   own_params=own_p, own_buffers=own_b)  # fmt: skip


@torch.no_grad()
def _unstack(st: _Stacks, models: Sequence[nn.Module]) -> None:
    """Write ticket k's stacked weights (pruned ones re-zeroed) and buffers back into model k."""
    for n, pr in st.pruned.items():
        st.params[n].masked_fill_(pr, 0.0)
    for i in range(len(models)):
        for n, p in st.own_params[i].items():
            p.copy_(st.params[n][i])
        for n, b in st.own_buffers[i].items():
            b.copy_(st.buffers[n][i])


def _engine(model: nn.Module, st: _Stacks, engine: str) -> _Stacked | ConvPlan | nn.Module:
    """The engine: for ``engine`` "auto" or "stacked", the MLP engine for a plain MLP with every
    parameter trainable, else the conv engine's plan where it runs the network; otherwise
    ("vmap", or "auto" when neither applies) the vmap engine's skeleton, a copy of ``model``
    on the meta device."""
    plan = _stacked_plan(model) if engine in ("auto", "stacked") else None
    if plan is not None and len(st.trainable) == len(st.params):
        names_of = {id(p): n for n, p in model.named_parameters()}
        layer_names: list[tuple[str, str | None]] = []
        for lin in plan[::2]:
            assert isinstance(lin, nn.Linear)
            layer_names.append((names_of[id(lin.weight)], names_of[id(lin.bias)] if lin.bias is not None else None))
        return _Stacked(st.params, layer_names)
    if engine in ("auto", "stacked"):
        try:
            return conv_plan(model, st.params, st.buffers)
        except GraphticketsError:
            if engine == "stacked":
                raise
    return copy.deepcopy(model).to("meta")


class _Batched:
    """The K tickets as one batched model: forward passes and training steps on the stacks."""

    def __init__(self, st: _Stacks, engine: _Stacked | ConvPlan | nn.Module, opt: Any, dev: torch.device, *,
                 per_ticket: bool = False, rewind_at: int | None = None, keys: Sequence[str] = ()) -> None:
        self.st = st
        self.per_ticket = per_ticket
        self.rewind_at = rewind_at
        self.keys = list(keys)
        self.rewinds: list[dict[str, torch.Tensor]] | None = None
        self.stacked = engine if isinstance(engine, _Stacked) else None
        self.plan = engine if isinstance(engine, ConvPlan) else None
        self.skeleton = engine if isinstance(engine, nn.Module) else None
        self.opt = opt
        self.dev = dev
        self.k = len(st.own_params)
        self.masked = [(st.params[n], (~st.pruned[n]).to(st.params[n].dtype))
                       for n in st.trainable if n in st.pruned]  # fmt: skip

    def forward(self, x: torch.Tensor, *, train: bool) -> torch.Tensor:
        """Logits ``(K, B, C)`` of inputs ``(K, B, ...)`` (for the MLP engine a transposed view
        of ``(K, C, B)``)."""
        if self.stacked is not None:
            return self.stacked.forward(x).transpose(1, 2)
        if self.plan is not None:
            if train or x.shape[1] <= _EVAL_CHUNK:
                return self.plan.forward(x, train=train)
            # eval mode (running statistics): chunks of the batch give the same logits, and keep
            # K tickets' patch matrices of a large evaluation batch within the caches
            return torch.cat([self.plan.forward(c, train=False) for c in x.split(_EVAL_CHUNK, dim=1)], dim=1)
        assert self.skeleton is not None
        self.skeleton.train(train)
        return _vmap_forward(self.skeleton, self.st.params, self.st.buffers, x)

    def _backward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One forward/backward pass: per-ticket losses ``(K,)`` and logits ``(K, B, C)``."""
        if self.stacked is not None:
            with torch.no_grad():
                logits_t = self.stacked.forward(x)
                _labels(y, logits_t)
                return self.stacked.backward(logits_t, y), logits_t.transpose(1, 2)
        self.opt.zero_grad(set_to_none=True)
        logits = self.forward(x, train=True)
        _labels(y, logits)
        losses = _ce(logits, y)
        losses.sum().backward()
        return losses.detach(), logits.detach()

    @torch.no_grad()
    def take_rewind(self, iterations: int) -> None:
        """Keep each ticket's state (CPU clones, ``state_dict`` keys) if exactly ``rewind_at``
        steps are done (and it was not kept yet)."""
        if self.rewind_at is None or self.rewinds is not None or iterations != self.rewind_at:
            return
        both = {**self.st.params, **self.st.buffers}
        for n, pr in self.st.pruned.items():
            self.st.params[n].masked_fill_(pr, 0.0)
        self.rewinds = [{n: both[n][i].detach().to("cpu", copy=True) for n in self.keys} for i in range(self.k)]

    def step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimizer step of every ticket; returns the losses ``(K,)`` and logits."""
        losses, logits = self._backward(x, y)
        with torch.no_grad():
            for p, keep in self.masked:
                if p.grad is not None:
                    _keep_(p.grad, keep)
        self.opt.step()
        # pruned weights stay exactly 0: their gradient, momentum, Adam moments and
        # weight-decay term are all 0, so the update there is 0 (re-zeroed at the end)
        return losses, logits


class _Meter:
    """Per-ticket example-weighted sums of loss and correct predictions (float64, on device)."""

    def __init__(self, k: int, dev: torch.device) -> None:
        self.loss = torch.zeros(k, dtype=torch.float64, device=dev)
        self.correct = torch.zeros(k, dtype=torch.float64, device=dev)
        self.n = 0

    @torch.no_grad()
    def add(self, losses: torch.Tensor, logits: torch.Tensor, y: torch.Tensor) -> None:
        b = int(y.shape[-1])
        self.loss += losses.to(torch.float64) * b
        self.correct += (logits.contiguous().argmax(dim=-1) == y).sum(dim=1)
        self.n += b

    def means(self) -> tuple[list[float], list[float]]:
        return (self.loss / self.n).tolist(), (self.correct / self.n).tolist()


def _check_data(data: Any, epochs: int, k: int, per_ticket: bool) -> None:
    if not per_ticket:
        check_data(data, epochs)
        return
    if not isinstance(data, Sequence) or len(data) != k:
        raise GraphticketsError(f"per_ticket_data=True needs data as a sequence of {k} data sources (one per model)")
    for d in data:
        check_data(d, epochs)


def _run_epochs(run: _Batched, data: Iterable[Any], regime: Regime, eval_data: Iterable[Any] | None,
                hists: list[History], first: int = 0) -> tuple[int, str]:
    """Train epochs ``first ..`` of ``regime`` (appending each ticket's rows to ``hists``);
    returns the optimizer steps taken and why training ended."""
    iterations, stopped, k = 0, "epochs", run.k
    for epoch in range(first, regime.epochs):
        if regime.spent(iterations):
            return iterations, "max_iterations"
        t_epoch = time.perf_counter()
        lr_now = set_lr(run.opt, [float(regime.lr)], regime.factor(epoch))
        meter, iterations = _train_epoch(run, data, iterations, regime)
        if meter.n == 0:
            raise no_batches(epoch, first)
        if regime.spent(iterations):
            stopped = "max_iterations"
        losses, accs = meter.means()
        ev_loss, ev_acc = [math.nan] * k, [math.nan] * k
        if eval_data is not None:
            ev_loss, ev_acc = _evaluate_many(run.forward, eval_data, run.dev, k)
        seconds = (time.perf_counter() - t_epoch) / k
        for i, h in enumerate(hists):
            h.epochs.append({
                "epoch": epoch + 1, "loss": losses[i], "accuracy": accs[i], "eval_loss": ev_loss[i],
                "eval_accuracy": ev_acc[i], "seconds": seconds, "lr": lr_now, "iterations": iterations,
            })  # fmt: skip
        _log_epoch(losses, epoch, regime.epochs, iterations, seconds * k)
        if stopped == "max_iterations":
            break
    return iterations, stopped


def _batches(data: Any, k: int, dev: torch.device, per_ticket: bool,
             what: str = "data") -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One pass: inputs ``(K, B, ...)`` and targets ``(K, B)`` per step (expanded views of one
    batch, or with ``per_ticket`` ticket k's batch from ``data[k]``)."""
    if not per_ticket:
        for batch in iterate(data, what):
            x, y = split_batch(batch, dev)
            yield x.unsqueeze(0).expand(k, *x.shape), y.unsqueeze(0).expand(k, *y.shape)
        return
    its = [iterate(d, f"{what}[{i}]") for i, d in enumerate(data)]
    while True:
        got = [next(it, None) for it in its]
        if all(b is None for b in got):
            return
        if any(b is None for b in got):
            raise GraphticketsError(f"the tickets' {what} give different numbers of batches; "
                                    f"per-ticket data must give equal numbers of equal-sized batches")  # fmt: skip
        pairs = [split_batch(b, dev) for b in got]
        if len({(tuple(x.shape), tuple(y.shape)) for x, y in pairs}) > 1:
            raise GraphticketsError(f"the tickets' {what} give batches of different shapes in one step; "
                                    f"per-ticket data must give equal numbers of equal-sized batches")  # fmt: skip
        yield torch.stack([x for x, _ in pairs]), torch.stack([y for _, y in pairs])


def _train_epoch(run: _Batched, data: Iterable[Any], iterations: int, regime: Regime) -> tuple[_Meter, int]:
    """One pass over ``data`` for all K tickets (stopping at ``max_iterations``); returns the
    epoch's meter and the optimizer steps taken so far."""
    meter = _Meter(run.k, run.dev)
    for x, y in _batches(data, run.k, run.dev, run.per_ticket):
        run.take_rewind(iterations)
        losses, logits = run.step(x, y)
        iterations += 1
        meter.add(losses, logits, y)
        if regime.spent(iterations):
            break
    return meter, iterations


def _log_epoch(losses: list[float], epoch: int, epochs: int, iterations: int, seconds: float) -> None:
    k = len(losses)
    if not all(math.isfinite(v) for v in losses):
        log.warning("training loss is not finite for %d of %d tickets in epoch %d (lr too high?)",
                    sum(not math.isfinite(v) for v in losses), k, epoch + 1)  # fmt: skip
    log.info("epoch %d/%d: %d tickets together, mean loss %.4f (%d it, %.2fs)", epoch + 1, epochs, k,
             sum(losses) / k, iterations, seconds)  # fmt: skip


def _evaluate_many(forward: Callable[..., torch.Tensor], data: Iterable[Any], dev: torch.device,
                   k: int) -> tuple[list[float], list[float]]:
    meter = _Meter(k, dev)
    with torch.no_grad():
        for x, y in _batches(data, k, dev, False, "eval_data"):
            logits = forward(x, train=False)
            _labels(y, logits)
            b = int(y.shape[1])
            logp = torch.log_softmax(logits.transpose(1, 2).contiguous(), dim=1)  # (K, C, B): vectorised over B
            yk = y.unsqueeze(1)
            meter.add(logp.gather(1, yk).view(k, b).mean(dim=1).neg(), logits, y)
    if meter.n == 0:
        raise GraphticketsError("eval_data gave no batches")
    return meter.means()
