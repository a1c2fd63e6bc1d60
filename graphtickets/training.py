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
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from graphtickets._lean_optim import LeanOptimizer
from graphtickets._registry import Registry
from graphtickets.errors import GraphticketsError, TicketError
from graphtickets.ticket import Ticket

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

Masks = Mapping[str, torch.Tensor] | Ticket | None
Batch = Any
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

#: Learning-rate schedules :func:`train` knows (``None`` is a constant rate).
SCHEDULES = (None, "cosine", "step")


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
def _mask_dict(model: nn.Module, masks: Masks) -> dict[str, torch.Tensor]:
    """Validate ``masks`` against ``model``; return ``{parameter name: bool mask}``."""
    if masks is None:
        return {}
    if isinstance(masks, Ticket):
        masks.check(model)
        raw: Mapping[str, torch.Tensor] = masks.masks
    elif isinstance(masks, Mapping):
        raw = masks
    else:
        raise TicketError(
            f"masks must be None, a dict {{parameter name: bool tensor}} or a Ticket, "
            f"got {type(masks).__name__}"
        )
    params = dict(model.named_parameters())
    out: dict[str, torch.Tensor] = {}
    for name, m in raw.items():
        key = name if name in params else f"{name}_orig"
        if key not in params:
            sample = ", ".join(list(params)[:6])
            raise TicketError(
                f"mask {name!r} names no parameter of the model (its parameters: [{sample}, ...]); "
                f"masks are keyed by model.named_parameters() names of the same architecture"
            )
        if not isinstance(m, torch.Tensor):
            raise TicketError(f"mask {name!r} must be a torch.bool tensor, got {type(m).__name__}")
        if m.dtype != torch.bool:
            raise TicketError(
                f"mask {name!r} has dtype {m.dtype}; masks must be torch.bool "
                f"(convert with mask.bool() if it holds only 0/1)"
            )
        if tuple(m.shape) != tuple(params[key].shape):
            raise TicketError(
                f"mask {name!r} has shape {tuple(m.shape)} but the parameter has "
                f"{tuple(params[key].shape)}: the masks belong to a model of other widths"
            )
        out[key] = m
    return out


def _pruned_on_device(model: nn.Module, masks: Masks) -> list[tuple[nn.Parameter, torch.Tensor]]:
    """``[(parameter, pruned positions as a bool tensor on the parameter's device)]``."""
    params = dict(model.named_parameters())
    return [
        (params[n], (~m).to(params[n].device))
        for n, m in _mask_dict(model, masks).items()
    ]


@torch.no_grad()
def _zero_state(opt: torch.optim.Optimizer | LeanOptimizer, pairs: list[tuple[nn.Parameter, torch.Tensor]]) -> None:
    """Zero the pruned entries of per-weight optimizer state (momentum, Adam moments) that a
    reused optimizer may carry from dense training."""
    for p, pruned in pairs:
        for value in opt.state.get(p, {}).values():
            if isinstance(value, torch.Tensor) and value.shape == pruned.shape:
                value.masked_fill_(pruned, 0)


@torch.no_grad()
def _zero(pairs: list[tuple[nn.Parameter, torch.Tensor]]) -> None:
    for p, pruned in pairs:
        p.masked_fill_(pruned, 0.0)


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


# ---------------------------------------------------------------------------- optimizers
def _sgd(params: Iterable[Any], *, lr: float, momentum: float, weight_decay: float,
         nesterov: bool) -> torch.optim.Optimizer:
    if nesterov and momentum <= 0:
        raise GraphticketsError("nesterov=True needs momentum > 0; set momentum or nesterov=False")
    return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay,
                           nesterov=nesterov)


def _adam(params: Iterable[Any], *, lr: float, momentum: float, weight_decay: float,
          nesterov: bool) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)


def _adamw(params: Iterable[Any], *, lr: float, momentum: float, weight_decay: float,
           nesterov: bool) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)


#: Optimizer name -> factory ``(params, *, lr, momentum, weight_decay, nesterov)``.
#: ``momentum`` and ``nesterov`` are used by SGD only; Adam/AdamW use torch's default betas.
OPTIMIZERS: Registry[Callable[..., torch.optim.Optimizer]] = Registry("optimizer")
OPTIMIZERS.register("sgd", _sgd)
OPTIMIZERS.register("adam", _adam)
OPTIMIZERS.register("adamw", _adamw)
_BUILTIN: dict[str, Callable[..., torch.optim.Optimizer]] = {"sgd": _sgd, "adam": _adam, "adamw": _adamw}


def make_optimizer(
    params: Iterable[Any],
    name: str,
    *,
    lr: float,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    nesterov: bool = False,
) -> torch.optim.Optimizer:
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

    Returns
    -------
    torch.optim.Optimizer

    Examples
    --------
    >>> from torch import nn
    >>> type(make_optimizer(nn.Linear(2, 1).parameters(), "adamw", lr=1e-3)).__name__
    'AdamW'
    """
    factory = OPTIMIZERS.get_or_raise(name.lower() if isinstance(name, str) else name)
    _check_number("lr", lr, low=0.0, low_open=False)
    _check_number("momentum", momentum, low=0.0, low_open=False)
    _check_number("weight_decay", weight_decay, low=0.0, low_open=False)
    return factory(params, lr=float(lr), momentum=float(momentum),
                   weight_decay=float(weight_decay), nesterov=bool(nesterov))


def _lean_or_torch(params: list[nn.Parameter], name: Any, *, lr: float, momentum: float,
                   weight_decay: float, nesterov: bool) -> torch.optim.Optimizer | LeanOptimizer:
    """:func:`make_optimizer`, but the built-in ``sgd``/``adam``/``adamw`` (while still registered
    as such) as a :class:`~graphtickets._lean_optim.LeanOptimizer`: the same update kernels, bit
    for bit, without ``torch.optim.Optimizer.__init__`` (which imports ``torch._dynamo``, about a
    second on the first call in a process)."""
    key = name.lower() if isinstance(name, str) else name
    if key in _BUILTIN and OPTIMIZERS.get(key) is _BUILTIN[key]:
        _check_number("lr", lr, low=0.0, low_open=False)
        _check_number("momentum", momentum, low=0.0, low_open=False)
        _check_number("weight_decay", weight_decay, low=0.0, low_open=False)
        if key == "sgd" and nesterov and momentum <= 0:
            raise GraphticketsError("nesterov=True needs momentum > 0; set momentum or nesterov=False")
        return LeanOptimizer(params, key, lr=float(lr), momentum=float(momentum) if key == "sgd" else 0.0,
                             weight_decay=float(weight_decay), nesterov=bool(nesterov) and key == "sgd")
    return make_optimizer(params, name, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov)


def _check_number(name: str, value: Any, *, low: float, low_open: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise GraphticketsError(f"{name} must be a finite number, got {value!r}")
    if value < low or (low_open and value == low):
        sign = ">" if low_open else ">="
        raise GraphticketsError(f"{name} must be {sign} {low}, got {value!r}")
    return float(value)


def _check_int(name: str, value: Any, *, low: int, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise GraphticketsError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


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


# ---------------------------------------------------------------------------- schedules
def lr_at_epoch(
    epoch: int,
    *,
    lr: float,
    epochs: int,
    schedule: str | None = None,
    milestones: Iterable[int] | None = None,
    gamma: float = 0.1,
    warmup: int = 0,
) -> float:
    """The learning rate of 0-based ``epoch`` (schedules are stepped once per epoch).

    Linear warmup over the first ``warmup`` epochs (``lr * (epoch + 1) / (warmup + 1)``:
    ``warmup=1`` runs epoch 0 at ``lr / 2``, ``warmup=3`` at ``lr/4, lr/2, 3lr/4``), then
    ``None``: constant ``lr``; ``"cosine"``: ``lr * (1 + cos(pi * t / T)) / 2`` with ``t``
    the epochs since warmup and ``T = epochs - warmup`` (the last epoch stays above zero);
    ``"step"``: ``lr * gamma ** (number of milestones <= epoch)`` (milestones are 0-based
    epoch indices, as in ``torch.optim.lr_scheduler.MultiStepLR`` stepped per epoch).

    Examples
    --------
    >>> [lr_at_epoch(e, lr=1.0, epochs=4, schedule="step", milestones=[2]) for e in range(4)]
    [1.0, 1.0, 0.1, 0.1]
    >>> [lr_at_epoch(e, lr=1.0, epochs=4, warmup=3) for e in range(4)]
    [0.25, 0.5, 0.75, 1.0]
    >>> [round(lr_at_epoch(e, lr=1.0, epochs=4, schedule="cosine"), 4) for e in range(4)]
    [1.0, 0.8536, 0.5, 0.1464]
    """
    if schedule not in SCHEDULES:
        raise GraphticketsError(
            f"unknown schedule {schedule!r}; known schedules: None, 'cosine', 'step'"
        )
    if epoch < warmup:
        return lr * (epoch + 1) / (warmup + 1)
    if schedule == "cosine":
        span = max(epochs - warmup, 1)
        return lr * 0.5 * (1.0 + math.cos(math.pi * (epoch - warmup) / span))
    if schedule == "step":
        return lr * gamma ** sum(1 for m in (milestones or ()) if epoch >= m)
    return lr


# ---------------------------------------------------------------------------- batches
def _split(batch: Batch, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(batch, Mapping) or not isinstance(batch, (tuple, list)) or len(batch) < 2:
        raise GraphticketsError(
            f"each batch must be an (inputs, targets) pair, got {type(batch).__name__}; "
            f"pass a list of (x, y) tuples, a DataLoader or graphtickets.data.batches(...)"
        )
    x, y = batch[0], batch[1]
    return x.to(device), y.to(device)


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


def _known_empty(data: Any) -> bool:
    try:
        return len(data) == 0
    except TypeError:  # no __len__ (generators, iterable datasets)
        return False


def _iterate(data: Iterable[Batch], what: str) -> Iterator[Batch]:
    try:
        return iter(data)
    except TypeError:
        raise GraphticketsError(
            f"{what} must be an iterable of (inputs, targets) batches, got {type(data).__name__}"
        ) from None


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
            for batch in _iterate(data, "data"):
                x, y = _split(batch, device)
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
        Seeds torch's default generator inside a ``fork_rng`` block (dropout, shuffling
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
    epochs_i = _check_int("epochs", epochs, low=0)
    assert epochs_i is not None
    _check_number("lr", lr, low=0.0, low_open=False)
    warmup_i = _check_int("warmup", warmup, low=0)
    assert warmup_i is not None
    rewind_at = _check_int("rewind_iteration", rewind_iteration, low=0, allow_none=True)
    max_steps = _check_int("max_iterations", max_iterations, low=0, allow_none=True)
    first = _check_int("start_epoch", start_epoch, low=0)
    assert first is not None
    if schedule not in SCHEDULES:
        raise GraphticketsError(f"unknown schedule {schedule!r}; known schedules: None, 'cosine', 'step'")
    if schedule == "step" and not milestones:
        raise GraphticketsError("schedule='step' needs milestones (0-based epochs where lr *= gamma)")
    miles = sorted(int(m) for m in (milestones or ()))
    if epochs_i > 1 and isinstance(data, Iterator):
        raise GraphticketsError(
            f"data is a one-shot iterator but epochs={epochs_i}: pass a list of batches, a "
            f"DataLoader or graphtickets.data.batches(...), which can be iterated once per epoch"
        )
    if _known_empty(data):
        raise GraphticketsError("data is empty: training needs at least one (inputs, targets) batch")

    device = resolve_device(device)
    loss_fn = loss_fn or nn.functional.cross_entropy
    model.to(device)
    pairs = _pruned_on_device(model, masks)
    params = [p for p in model.parameters() if p.requires_grad]
    opt: torch.optim.Optimizer | LeanOptimizer
    if isinstance(optimizer, torch.optim.Optimizer):
        opt = optimizer
    else:
        opt = _lean_or_torch(params, optimizer, lr=lr, momentum=momentum,
                             weight_decay=weight_decay, nesterov=nesterov)
    base_lrs = [float(g["lr"]) for g in opt.param_groups]
    hist = History(epochs=[], iterations=0, seconds=0.0, rewind=None, rewind_iteration=rewind_at)
    was_training = model.training
    t0 = time.perf_counter()
    warned_nan = False
    cuda = [device.index if device.index is not None else torch.cuda.current_device()] \
        if device.type == "cuda" else []

    with torch.random.fork_rng(devices=cuda):
        torch.random.default_generator.manual_seed(int(seed))
        if cuda:
            torch.cuda.default_generators[cuda[0]].manual_seed(int(seed))
        _zero(pairs)
        _zero_state(opt, pairs)
        for epoch in range(first, epochs_i):
            if max_steps is not None and hist.iterations >= max_steps:
                hist.stopped = "max_iterations"
                break
            t_epoch = time.perf_counter()
            factor = lr_at_epoch(epoch, lr=1.0, epochs=epochs_i, schedule=schedule,
                                 milestones=miles, gamma=gamma, warmup=warmup_i)
            for group, base in zip(opt.param_groups, base_lrs, strict=True):
                group["lr"] = base * factor
            lr_now = float(opt.param_groups[0]["lr"])
            model.train()
            meter = _Meter(device)
            for batch in _iterate(data, "data"):
                if rewind_at is not None and hist.iterations == rewind_at and hist.rewind is None:
                    hist.rewind = snapshot(model)
                x, y = _split(batch, device)
                opt.zero_grad(set_to_none=True)
                out = model(x)
                loss = loss_fn(out, y)
                total = loss + extra_loss(model) if extra_loss is not None else loss
                total.backward()
                with torch.no_grad():
                    for p, pruned in pairs:
                        if p.grad is not None:
                            p.grad.masked_fill_(pruned, 0.0)
                opt.step()
                _zero(pairs)
                hist.iterations += 1
                meter.add(loss, out, y)
                if max_steps is not None and hist.iterations >= max_steps:
                    hist.stopped = "max_iterations"
                    break
            if meter.n == 0:
                if epoch == first:
                    raise GraphticketsError(
                        "data gave no batches: training needs at least one (inputs, targets) batch"
                    )
                raise GraphticketsError(
                    f"data gave no batches in epoch {epoch + 1}: it was exhausted by the first "
                    f"epoch; pass a re-iterable (a list, a DataLoader, graphtickets.data.batches)"
                )
            train_loss, train_accuracy = meter.means()
            if not math.isfinite(train_loss) and not warned_nan:
                log.warning("training loss is %s in epoch %d (lr too high?)", train_loss, epoch + 1)
                warned_nan = True
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
                ev = evaluate(model, eval_data, device=device, loss_fn=loss_fn)
                row["eval_loss"], row["eval_accuracy"] = ev["loss"], ev["accuracy"]
            row["seconds"] = time.perf_counter() - t_epoch
            hist.epochs.append(row)
            hist.seconds = time.perf_counter() - t0
            log.info(
                "epoch %d/%d: loss %.4f acc %.4f eval_loss %.4f eval_acc %.4f lr %.3g (%d it, %.2fs)",
                epoch + 1, epochs_i, row["loss"], row["accuracy"], row["eval_loss"],
                row["eval_accuracy"], lr_now, hist.iterations, row["seconds"],
            )
            if callback is not None and callback(epoch + 1, model, hist):
                hist.stopped = "callback"
                break
            if hist.stopped == "max_iterations":
                break
        if rewind_at is not None and hist.rewind is None and hist.iterations == rewind_at:
            hist.rewind = snapshot(model)

    model.train(was_training)
    hist.seconds = time.perf_counter() - t0
    if rewind_at is not None and hist.rewind is None:
        log.warning(
            "rewind_iteration=%d was not reached (training took %d iterations): History.rewind is None",
            rewind_at, hist.iterations,
        )
    return hist
