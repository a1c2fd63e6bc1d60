"""Sparse training: train and evaluate a network with a ticket's masks enforced.

:func:`train` runs plain mini-batch training (SGD, Adam or AdamW; optional warmup, cosine
or step schedule) while keeping every pruned weight **exactly** zero: the pruned entries
are zeroed before training, their gradients are zeroed before every optimizer step (so
SGD momentum buffers and Adam moments stay zero there, weight decay included) and the
weights are zeroed again after every step. It can save the full ``state_dict`` at a chosen
iteration, the *rewind point* of lottery-ticket rewinding (Frankle et al. 2020), and stop
early on a callback (Early-Bird, You et al. 2020) or after a number of optimizer steps.

Determinism: training is deterministic, bit for bit on CPU, given the same ``seed``, the
same initial model and the same sequence of batches. Anything random that happens *inside*
training (dropout, a ``DataLoader(shuffle=True)`` without its own generator) draws from
torch's default generator, which :func:`train` seeds from ``seed`` inside a
:func:`torch.random.fork_rng` block, so the caller's global random state is left exactly as
it was. A :func:`graphtickets.data.batches` object shuffles with its own seed and counts its
epochs: iterate a fresh one (or a list of batches) to repeat a run.

What lives where: this module holds :func:`train` (argument checks, then one function per
step: ``_train_epoch`` over the batches, ``_step`` for one optimizer step,
``_history_row`` for one row of :class:`History`), :func:`evaluate`, the mask helpers
(:func:`enforce_masks`, :func:`snapshot` / :func:`restore` for rewinding) and
:func:`resolve_device`. Private neighbours: :mod:`graphtickets.training.regime` holds what
:func:`train` shares with :func:`graphtickets.training.batched.train_many` (the checked
training regime, the learning-rate schedule :func:`lr_at_epoch`, batches, masks, seeding);
:mod:`graphtickets.training.optim` the optimizers (:data:`OPTIMIZERS`, the one factory
:func:`make_optimizer`, which Gem-Miner also uses, and the lean SGD/Adam). Their public names
are exported from this module. :mod:`graphtickets.training.batched` trains many tickets at once.

Imports go one way: ``data``, ``models``, ``ticket`` ← ``training`` ← ``pruning`` ← ``graphs``
← ``analysis`` ← ``study`` ← ``cli``. This module imports ``ticket`` and ``errors`` (and its
private neighbours), never ``pruning`` or anything to its right.

References
----------
Frankle & Carbin, "The Lottery Ticket Hypothesis", ICLR 2019.
Frankle, Dziugaite, Roy & Carbin, "Linear Mode Connectivity and the Lottery Ticket
Hypothesis", ICML 2020 (rewinding to iteration k).
You et al., "Drawing Early-Bird Tickets", ICLR 2020.
"""

from __future__ import annotations

import functools
import logging
import math
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from graphtickets._rules import check_int, check_seed
from graphtickets.errors import GraphticketsError
from graphtickets.training.optim import OPTIMIZERS, LeanOptimizer, make_optimizer
from graphtickets.training.regime import (
    SCHEDULES,
    Batch,
    Masks,
    Regime,
    check_data,
    iterate,
    lr_at_epoch,
    mask_dict,
    no_batches,
    seeded,
    set_lr,
    split_batch,
)
from graphtickets.training.settings import TrainSettings

if TYPE_CHECKING:  # pragma: no cover
    import pandas

__all__ = [
    "History",
    "train",
    "evaluate",
    "enforce_masks",
    "snapshot",
    "restore",
    "make_optimizer",
    "lr_at_epoch",
    "OPTIMIZERS",
    "SCHEDULES",
    "resolve_device",
]

log = logging.getLogger("graphtickets.training")

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Optimizer = torch.optim.Optimizer | LeanOptimizer
Pairs = list[tuple[nn.Parameter, torch.Tensor]]
#: ``on_step(iteration, model, batch) -> new masks or None`` (see :func:`train`).
StepHook = Callable[[int, nn.Module, Batch], Masks]


# ---------------------------------------------------------------------------- history
@dataclass
class History:
    """What :func:`train` did.

    Attributes
    ----------
    epochs : list of dict
        One dict per epoch (also a last, partial one when ``max_iterations`` stopped
        training mid-epoch): ``epoch`` (1-based count of passes over the data), ``loss`` and
        ``accuracy`` (means over that epoch's training batches, measured on the fly, without
        ``extra_loss``), ``eval_loss`` and ``eval_accuracy`` (on ``eval_data`` after the
        epoch; NaN without it), ``seconds`` (wall time of the epoch, evaluation included),
        ``lr`` (the learning rate used in the epoch) and ``iterations`` (optimizer steps so
        far).
    iterations : int
        Optimizer steps taken.
    seconds : float
        Wall time of the whole call.
    rewind : dict or None
        ``state_dict`` (CPU clones) taken just before step ``rewind_iteration + 1``, i.e.
        after exactly ``rewind_iteration`` steps; ``None`` if not asked for or if training
        took fewer steps.
    rewind_iteration : int or None
        The iteration of ``rewind`` (as asked).
    stopped : str
        Why training ended: ``"epochs"``, ``"max_iterations"`` or ``"callback"``.
    """

    epochs: list[dict[str, Any]]
    iterations: int
    seconds: float
    rewind: dict[str, torch.Tensor] | None
    rewind_iteration: int | None = None
    stopped: str = "epochs"

    def final(self) -> dict[str, Any]:
        """The last epoch's dict (an empty dict if no epoch ran)."""
        return dict(self.epochs[-1]) if self.epochs else {}

    def to_frame(self) -> pandas.DataFrame:
        """The epochs as a :class:`pandas.DataFrame`, one row per epoch."""
        import pandas as pd

        cols = ["epoch", "loss", "accuracy", "eval_loss", "eval_accuracy", "seconds", "lr", "iterations"]
        return pd.DataFrame(self.epochs, columns=cols if not self.epochs else None)


# ---------------------------------------------------------------------------- state
def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    """A CPU copy of ``model.state_dict()`` (parameters and buffers), detached.

    Examples
    --------
    >>> from torch import nn
    >>> m = nn.Linear(2, 1)
    >>> s = snapshot(m)
    >>> with torch.no_grad():
    ...     _ = m.weight.add_(1.0)
    >>> bool(torch.equal(s["weight"] + 1.0, m.weight))
    True
    """
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def restore(model: nn.Module, state: Mapping[str, torch.Tensor]) -> None:
    """Copy ``state`` (from :func:`snapshot`) into ``model`` in place.

    Parameters keep their identity (values are copied), so an optimizer built on the model
    stays attached to it. Raises :class:`GraphticketsError` if the keys or shapes do not match.
    """
    try:
        model.load_state_dict(dict(state), strict=True)
    except RuntimeError as exc:
        raise GraphticketsError(
            f"the saved state does not fit this model ({exc}); restore a snapshot taken from "
            f"the same architecture"
        ) from None


# ---------------------------------------------------------------------------- masks
def _pruned_on_device(model: nn.Module, masks: Masks) -> Pairs:
    """``[(parameter, pruned positions as a bool tensor on the parameter's device)]``."""
    params = dict(model.named_parameters())
    return [
        (params[n], (~m).to(params[n].device))
        for n, m in mask_dict(model, masks).items()
    ]


@torch.no_grad()
def _zero_state(opt: Optimizer, pairs: Pairs) -> None:
    """Zero the pruned entries of per-weight optimizer state (momentum, Adam moments) that a
    reused optimizer may carry from dense training."""
    for p, pruned in pairs:
        for value in opt.state.get(p, {}).values():
            if isinstance(value, torch.Tensor) and value.shape == pruned.shape:
                value.masked_fill_(pruned, 0)


@torch.no_grad()
def _zero(pairs: Pairs) -> None:
    """Set the pruned weights to exactly 0."""
    for p, pruned in pairs:
        p.masked_fill_(pruned, 0.0)


@torch.no_grad()
def _zero_grads(pairs: Pairs) -> None:
    """Zero the gradients of the pruned weights (their momentum and Adam moments then stay 0)."""
    for p, pruned in pairs:
        if p.grad is not None:
            p.grad.masked_fill_(pruned, 0.0)


def enforce_masks(model: nn.Module, masks: Masks) -> None:
    """Set the pruned weights of ``model`` to exactly ``0.0``, in place.

    Parameters
    ----------
    model : nn.Module
        The network.
    masks : dict or Ticket or None
        ``{parameter name: bool tensor}`` (``True`` = kept) or a :class:`Ticket`. Names and
        shapes are checked (:class:`TicketError` on a mismatch); ``None`` does nothing.

    Examples
    --------
    >>> from torch import nn
    >>> m = nn.Linear(2, 2)
    >>> enforce_masks(m, {"weight": torch.tensor([[True, False], [False, True]])})
    >>> m.weight[0, 1].item(), m.weight[1, 0].item()
    (0.0, 0.0)
    """
    _zero(_pruned_on_device(model, masks))


# ---------------------------------------------------------------------------- devices
def resolve_device(device: str | torch.device) -> torch.device:
    """``torch.device(device)``, with a clear error for a bad name or a missing accelerator.

    Parameters
    ----------
    device : str or torch.device
        ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``, ...

    Returns
    -------
    torch.device

    Raises
    ------
    GraphticketsError
        If the name is not a device, or it names CUDA (or MPS) that this torch cannot use.

    Examples
    --------
    >>> resolve_device("cpu")
    device(type='cpu')
    """
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise GraphticketsError(f"{device!r} is not a device; use 'cpu' or 'cuda'") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            build = "a CPU-only build" if torch.version.cuda is None else "no usable GPU"
            raise GraphticketsError(
                f"device {str(device)!r} requested but torch has no CUDA here ({build}); use device 'cpu'"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise GraphticketsError(
                f"device {str(device)!r} requested but only {torch.cuda.device_count()} CUDA device(s) exist"
            )
    if dev.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise GraphticketsError(f"device {str(device)!r} requested but MPS is not available; use device 'cpu'")
    return dev


# ---------------------------------------------------------------------------- batches
def _correct(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor | None:
    """Number of correct predictions (a 0-d tensor on the batch's device, no host sync);
    ``None`` when the targets are not class labels."""
    if out.dim() < 2 or out.shape[1] < 2:  # a single output: regression, not classes
        return None
    if not y.is_floating_point() and not y.is_complex() and y.dim() == out.dim() - 1:
        return (out.argmax(dim=1) == y).sum()
    if y.shape == out.shape:  # one-hot or soft targets
        return (out.argmax(dim=1) == y.argmax(dim=1)).sum()
    return None


class _Meter:
    """Example-weighted sums of loss and correct predictions, kept on the device (float64)
    so the loop never waits for the accelerator; read once per epoch."""

    def __init__(self, device: torch.device) -> None:
        self.loss = torch.zeros((), dtype=torch.float64, device=device)
        self.correct = torch.zeros((), dtype=torch.float64, device=device)
        self.labels = True
        self.n = 0

    def add(self, loss: torch.Tensor, out: torch.Tensor, y: torch.Tensor) -> None:
        b = int(y.shape[0])
        self.loss += loss.detach().to(torch.float64) * b
        right = _correct(out.detach(), y)
        if right is None:
            self.labels = False
        else:
            self.correct += right
        self.n += b

    def means(self) -> tuple[float, float]:
        accuracy = float(self.correct) / self.n if self.labels else math.nan
        return float(self.loss) / self.n, accuracy


# ---------------------------------------------------------------------------- input errors
_MATMUL = re.compile(r"mat1 and mat2 shapes cannot be multiplied \((\d+)x(\d+) and (\d+)x(\d+)\)")
_CONV_IN = re.compile(r"expected input\[([\d, ]+)\] to have (\d+) channels, but got (\d+) channels")
_TARGET = re.compile(r"Target (-?\d+) is out of bounds")
_FLOAT_TARGET = re.compile(r"expected (?:target dtype to be Long|scalar type Long)")
_BATCH = re.compile(r"Expected input batch_size \((\d+)\) to match target batch_size \((\d+)\)")


def _classes(model: nn.Module) -> str:
    spec = getattr(model, "gt_spec", None)
    if isinstance(spec, dict) and spec.get("num_classes") is not None:
        return str(spec["num_classes"])
    last = [m for m in model.modules() if isinstance(m, nn.Linear)]
    return str(last[-1].out_features) if last else "num_classes"


def _input_problem(exc: BaseException, model: nn.Module) -> str | None:
    """A message the user can act on for a batch that does not fit ``model`` (None: not such an error)."""
    text = str(exc)
    spec = getattr(model, "gt_spec", None)
    expects = f" (the model is built for inputs of shape {tuple(spec['in_shape'])})" \
        if isinstance(spec, dict) and spec.get("in_shape") is not None else ""
    if m := _MATMUL.search(text):
        return (f"a Linear layer of the model expects {m.group(3)} input features, the batch gives it {m.group(2)}"
                f"{expects}: the data does not fit this model; use data of that shape or build the model for yours")
    if m := _CONV_IN.search(text):
        return (f"a convolution of the model expects {m.group(2)} input channels, the batch has {m.group(3)} "
                f"(input of shape [{m.group(1)}]){expects}: use data of that shape or build the model for yours")
    if m := _TARGET.search(text):
        c = _classes(model)
        top = str(int(c) - 1) if c.isdigit() else f"{c}-1"
        return (f"label {m.group(1)} is outside [0, {c}): the model has {c} outputs (classes), so labels must "
                f"be 0..{top}; check the dataset's labels or build the model with the right num_classes")
    if _FLOAT_TARGET.search(text):
        return ("the labels are floats; class labels must be integers (torch.long): convert them with y.long() "
                "(or pass loss_fn= for float targets)")
    if "multi-target not supported" in text:
        return ("the targets must be one class index per example (shape (batch,)), or one row per example "
                "of the outputs' shape (one-hot / probabilities)")
    if m := _BATCH.search(text):
        return f"a batch has {m.group(1)} inputs but {m.group(2)} targets; give one target per input"
    return None


def _explain_input_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Check ``model`` is a module, and turn torch's errors for a batch that does not fit it
    (wrong width, labels out of range, float labels) into :class:`GraphticketsError`."""

    @functools.wraps(fn)
    def wrapper(model: Any, *args: Any, **kwargs: Any) -> Any:
        if not isinstance(model, nn.Module):
            raise GraphticketsError(
                f"model must be a torch.nn.Module, got {type(model).__name__}; build one with gt.models.build(...)"
            )
        try:
            return fn(model, *args, **kwargs)
        except (RuntimeError, IndexError, ValueError) as exc:
            if isinstance(exc, GraphticketsError):
                raise
            msg = _input_problem(exc, model)
            if msg is None:
                raise
            raise GraphticketsError(msg) from exc

    return wrapper


# ---------------------------------------------------------------------------- evaluate
@_explain_input_errors
def evaluate(
    model: nn.Module,
    data: Iterable[Batch],
    *,
    masks: Masks = None,
    device: str | torch.device = "cpu",
    loss_fn: LossFn | None = None,
) -> dict[str, float]:
    """Loss and accuracy of ``model`` on ``data``, in eval mode without gradients.

    Parameters
    ----------
    model : nn.Module
        The network; moved to ``device``. Its train/eval mode is restored afterwards.
    data : iterable of (inputs, targets)
        One pass is made.
    masks : dict or Ticket, optional
        If given, the pruned weights are set to zero **in place** first (as :func:`train`
        keeps them), so the model evaluated is the sparse one.
    device : str or torch.device, default "cpu"
    loss_fn : callable, optional
        ``loss_fn(outputs, targets)`` returning a batch mean; cross-entropy by default.

    Returns
    -------
    dict
        ``loss`` (example-weighted mean), ``accuracy`` (argmax of the outputs against class
        targets; NaN for targets that are not class labels) and ``n`` (examples).

    Examples
    --------
    >>> from torch import nn
    >>> m = nn.Linear(2, 2, bias=False)
    >>> with torch.no_grad():
    ...     _ = m.weight.copy_(torch.eye(2))
    >>> x = torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 1.0]])
    >>> evaluate(m, [(x, torch.tensor([0, 1, 1]))])["accuracy"]
    0.6666666666666666
    """
    device = resolve_device(device)
    loss_fn = loss_fn or nn.functional.cross_entropy
    was_training = model.training
    model.to(device)
    enforce_masks(model, masks)
    model.eval()
    meter = _Meter(device)
    try:
        with torch.no_grad():
            for batch in iterate(data, "data"):
                x, y = split_batch(batch, device)
                out = model(x)
                meter.add(loss_fn(out, y), out, y)
    finally:
        model.train(was_training)
    if meter.n == 0:
        raise GraphticketsError("evaluate got no batches: the data is empty (or an exhausted iterator)")
    loss, accuracy = meter.means()
    return {"loss": loss, "accuracy": accuracy, "n": meter.n}


# ---------------------------------------------------------------------------- train
@_explain_input_errors
def train(
    model: nn.Module,
    data: Iterable[Batch],
    *,
    masks: Masks = None,
    settings: TrainSettings | None = None,
    epochs: int = 1,
    optimizer: str | torch.optim.Optimizer = "sgd",
    lr: float = 0.1,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    nesterov: bool = False,
    schedule: str | None = None,
    milestones: Iterable[int] | None = None,
    gamma: float = 0.1,
    warmup: int = 0,
    eval_data: Iterable[Batch] | None = None,
    device: str | torch.device = "cpu",
    seed: int = 0,
    rewind_iteration: int | None = None,
    max_iterations: int | None = None,
    start_epoch: int = 0,
    loss_fn: LossFn | None = None,
    callback: Callable[[int, nn.Module, History], bool | None] | None = None,
    extra_loss: Callable[[nn.Module], torch.Tensor] | None = None,
    on_step: StepHook | None = None,
) -> History:
    """Train ``model`` in place on ``data`` with the pruned weights held at exactly zero.

    Parameters
    ----------
    model : nn.Module
        Trained in place; moved to ``device``. Its train/eval mode is restored at the end.
    data : re-iterable of (inputs, targets)
        A list of batches, a ``DataLoader`` or :func:`graphtickets.data.batches`. One epoch
        is one pass (``iter(data)``). A one-shot iterator is accepted for ``epochs=1`` only.
    masks : dict or Ticket, optional
        ``{parameter name: bool tensor}`` (``True`` = kept) or a :class:`Ticket`. Pruned
        weights are zeroed first; their gradients are zeroed before every step (momentum,
        Adam moments and weight decay then stay zero there) and the weights are zeroed again
        after every step.
    settings : TrainSettings, optional
        The training settings whole (``epochs`` .. ``warmup``, ``max_iterations``): the same
        as giving them as keywords, which are then left at their defaults
        (:meth:`TrainSettings.of`).
    epochs : int, default 1
        Passes over ``data`` (0: nothing is trained).
    optimizer : {"sgd", "adam", "adamw"} or torch.optim.Optimizer, default "sgd"
        See :func:`make_optimizer`; all parameters that require gradients are optimized.
        An optimizer instance (built on ``model``'s parameters, after moving the model to
        ``device``) is used as given: ``lr``, ``momentum``, ``weight_decay`` and
        ``nesterov`` are then ignored and a schedule scales each group's own learning rate.
    lr : float, default 0.1
        Base learning rate (``>= 0``; 0 keeps the weights frozen, which Early-Bird's tests use).
    momentum, weight_decay, nesterov
        SGD momentum and Nesterov flag (SGD only); weight decay on every parameter.
    schedule : {None, "cosine", "step"}, default None
        Learning-rate schedule, stepped once per epoch (:func:`lr_at_epoch`); ``milestones``
        (0-based epochs) and ``gamma`` for ``"step"``; ``warmup`` epochs of linear warmup.
    eval_data : iterable, optional
        Evaluated (:func:`evaluate`) after every epoch.
    device : str or torch.device, default "cpu"
        Model and batches are moved here with ``.to(device)``.
    seed : int, default 0
        In ``[0, 2**63 - 1]``. Seeds torch's default generator inside a ``fork_rng`` block (dropout, shuffling
        loaders); the caller's global random state is unchanged.
    rewind_iteration : int, optional
        Save the ``state_dict`` after exactly this many optimizer steps (before step
        ``rewind_iteration + 1``; 0 = the initial, masked weights) into ``History.rewind``.
    max_iterations : int, optional
        Stop after this many optimizer steps (the last epoch may be partial).
    start_epoch : int, default 0
        Resume a run of ``epochs`` epochs at this 0-based epoch: train epochs
        ``start_epoch .. epochs - 1`` with the schedule's rates of those epochs (as the full
        run would), numbered ``start_epoch + 1 ..`` in ``History.epochs``. IMP's rewinding
        retrains from the rewind point this way (Frankle et al. 2020).
    loss_fn : callable, optional
        ``loss_fn(outputs, targets)`` returning a batch mean; cross-entropy by default.
    callback : callable, optional
        ``callback(epoch, model, history)`` after each epoch (after evaluation), ``epoch``
        1-based; returning ``True`` stops training.
    extra_loss : callable, optional
        ``extra_loss(model) -> scalar tensor`` added to the loss of every step (e.g. the L1
        penalty on BatchNorm scales of network slimming). Not included in ``History`` losses.
    on_step : callable, optional
        ``on_step(iteration, model, batch) -> masks or None`` after every optimizer step
        (``iteration`` 1-based, ``batch`` the one just used). Returning masks (a dict or a
        Ticket) replaces the enforced masks from then on: newly pruned weights and their
        optimizer state (momentum, Adam moments) are zeroed, newly kept ones train from the
        value they have (0 unless the hook set one). The sparse-training methods (SET, RigL,
        gradual magnitude pruning) move their masks this way.

    Returns
    -------
    History

    Examples
    --------
    >>> from torch import nn
    >>> g = torch.Generator().manual_seed(0)
    >>> data = [(torch.randn(8, 4, generator=g), torch.randint(0, 2, (8,), generator=g))]
    >>> model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    >>> mask = {"0.weight": torch.rand(3, 4, generator=g) > 0.5}
    >>> hist = train(model, data, masks=mask, epochs=3, lr=0.1)
    >>> hist.iterations, bool((model[0].weight[~mask["0.weight"]] == 0).all())
    (3, True)

    References
    ----------
    Frankle & Carbin, ICLR 2019 (sparse retraining with a fixed mask); Frankle et al.,
    ICML 2020 (rewinding to iteration k).
    """
    s = TrainSettings.of(settings, epochs=epochs, optimizer=optimizer, lr=lr, momentum=momentum,
                         weight_decay=weight_decay, nesterov=nesterov, schedule=schedule, milestones=milestones,
                         gamma=gamma, warmup=warmup, max_iterations=max_iterations)  # fmt: skip
    regime = Regime.checked(epochs=s.epochs, lr=s.lr, schedule=s.schedule, milestones=s.milestones,
                            gamma=s.gamma, warmup=s.warmup, max_iterations=s.max_iterations)  # fmt: skip
    rewind_at = check_int("rewind_iteration", rewind_iteration, low=0, allow_none=True)
    first = check_int("start_epoch", start_epoch, low=0)
    assert first is not None
    seed = check_seed(seed)
    check_data(data, regime.epochs)
    device = resolve_device(device)
    model.to(device)
    pairs = _pruned_on_device(model, masks)
    opt = s.optimizer if isinstance(s.optimizer, torch.optim.Optimizer) else make_optimizer(
        [p for p in model.parameters() if p.requires_grad], s.optimizer, lr=s.lr, momentum=s.momentum,
        weight_decay=s.weight_decay, nesterov=s.nesterov, lean=True)  # fmt: skip
    loop = _Loop(model=model, opt=opt, pairs=pairs, loss_fn=loss_fn or nn.functional.cross_entropy,
                 extra_loss=extra_loss, device=device, base_lrs=[float(g["lr"]) for g in opt.param_groups],
                 on_step=on_step)  # fmt: skip
    hist = History(epochs=[], iterations=0, seconds=0.0, rewind=None, rewind_iteration=rewind_at)
    was_training = model.training
    t0 = time.perf_counter()
    with seeded(device, seed):
        _zero(pairs)
        _zero_state(opt, pairs)
        for epoch in range(first, regime.epochs):
            if regime.spent(hist.iterations):
                hist.stopped = "max_iterations"
                break
            t_epoch = time.perf_counter()
            lr_now = set_lr(opt, loop.base_lrs, regime.factor(epoch))
            meter = _train_epoch(loop, data, hist, regime)
            if meter.n == 0:
                raise no_batches(epoch, first)
            row = _history_row(loop, epoch, meter, lr_now, hist, eval_data)
            row["seconds"] = time.perf_counter() - t_epoch
            hist.epochs.append(row)
            hist.seconds = time.perf_counter() - t0
            _log_epoch(row, regime.epochs)
            if callback is not None and callback(epoch + 1, model, hist):
                hist.stopped = "callback"
                break
            if hist.stopped == "max_iterations":
                break
        _take_rewind(hist, model)
    model.train(was_training)
    hist.seconds = time.perf_counter() - t0
    if rewind_at is not None and hist.rewind is None:
        log.warning(
            "rewind_iteration=%d was not reached (training took %d iterations): History.rewind is None",
            rewind_at, hist.iterations,
        )
    return hist


# ---------------------------------------------------------------------------- train's steps
@dataclass
class _Loop:
    """What every step of one :func:`train` call uses (fixed for the call)."""

    model: nn.Module
    opt: Optimizer
    pairs: Pairs
    loss_fn: LossFn
    extra_loss: Callable[[nn.Module], torch.Tensor] | None
    device: torch.device
    base_lrs: list[float]
    on_step: StepHook | None = None


def _step(loop: _Loop, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One optimizer step on ``batch`` with the pruned weights held at 0: ``(loss, outputs,
    targets)`` (the loss without ``extra_loss``)."""
    x, y = split_batch(batch, loop.device)
    loop.opt.zero_grad(set_to_none=True)
    out = loop.model(x)
    loss = loop.loss_fn(out, y)
    total = loss + loop.extra_loss(loop.model) if loop.extra_loss is not None else loss
    total.backward()
    _zero_grads(loop.pairs)
    loop.opt.step()
    _zero(loop.pairs)
    return loss, out, y


def _after_step(loop: _Loop, iteration: int, batch: Batch) -> None:
    """Run ``loop.on_step``; masks it returns replace the enforced ones (pruned weights and
    their optimizer state zeroed)."""
    if loop.on_step is None:
        return
    new = loop.on_step(iteration, loop.model, batch)
    if new is not None:
        loop.pairs = _pruned_on_device(loop.model, new)
        _zero(loop.pairs)
        _zero_state(loop.opt, loop.pairs)


def _take_rewind(hist: History, model: nn.Module) -> None:
    """Snapshot ``model`` into ``hist.rewind`` if exactly ``rewind_iteration`` steps are done."""
    at = hist.rewind_iteration
    if at is not None and hist.rewind is None and hist.iterations == at:
        hist.rewind = snapshot(model)


def _train_epoch(loop: _Loop, data: Iterable[Batch], hist: History, regime: Regime) -> _Meter:
    """One pass over ``data`` in train mode (stopping early, with ``hist.stopped`` set, when
    ``max_iterations`` is reached); ``hist.iterations`` and ``hist.rewind`` are updated."""
    loop.model.train()
    meter = _Meter(loop.device)
    for batch in iterate(data, "data"):
        _take_rewind(hist, loop.model)
        loss, out, y = _step(loop, batch)
        hist.iterations += 1
        meter.add(loss, out, y)
        _after_step(loop, hist.iterations, batch)
        if regime.spent(hist.iterations):
            hist.stopped = "max_iterations"
            break
    return meter


def _history_row(loop: _Loop, epoch: int, meter: _Meter, lr_now: float, hist: History,
                 eval_data: Iterable[Batch] | None) -> dict[str, Any]:
    """The :class:`History` row of 0-based ``epoch`` (``seconds`` left at 0 for the caller),
    evaluated on ``eval_data`` if given; warns once per call about a non-finite loss."""
    train_loss, train_accuracy = meter.means()
    if not math.isfinite(train_loss) and all(math.isfinite(r["loss"]) for r in hist.epochs):
        log.warning("training loss is %s in epoch %d (lr too high?)", train_loss, epoch + 1)
    row: dict[str, Any] = {
        "epoch": epoch + 1,
        "loss": train_loss,
        "accuracy": train_accuracy,
        "eval_loss": math.nan,
        "eval_accuracy": math.nan,
        "seconds": 0.0,
        "lr": lr_now,
        "iterations": hist.iterations,
    }
    if eval_data is not None:
        ev = evaluate(loop.model, eval_data, device=loop.device, loss_fn=loop.loss_fn)
        row["eval_loss"], row["eval_accuracy"] = ev["loss"], ev["accuracy"]
    return row


def _log_epoch(row: dict[str, Any], epochs: int) -> None:
    log.info(
        "epoch %d/%d: loss %.4f acc %.4f eval_loss %.4f eval_acc %.4f lr %.3g (%d it, %.2fs)",
        row["epoch"], epochs, row["loss"], row["accuracy"], row["eval_loss"],
        row["eval_accuracy"], row["lr"], row["iterations"], row["seconds"],
    )
