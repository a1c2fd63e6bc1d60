"""What :func:`graphtickets.training.train` and :func:`graphtickets.training.batched.train_many`
share (private): the training regime, batches, masks, seeding.

Both trainers check their arguments, iterate their data and seed torch's generator the same
way, so the pieces live here once: :class:`Regime` (epochs, learning-rate schedule, step
budget, checked once), :func:`check_data`, :func:`split_batch` / :func:`iterate`,
:func:`mask_dict` (masks checked against a model), :func:`seeded` (the ``fork_rng`` block)
and :func:`no_batches` (the error of an epoch without batches). :func:`lr_at_epoch` and
:data:`SCHEDULES` are public through :mod:`graphtickets.training`.

Imports go one way: this module imports only :mod:`graphtickets.ticket`, :mod:`graphtickets._rules`
(the number checks) and :mod:`graphtickets.errors`; ``optim``, ``loop`` and ``batched`` import it.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from graphtickets._rules import check_int, check_number
from graphtickets.errors import GraphticketsError, TicketError
from graphtickets.ticket import Ticket, check_mask_tensor, mask_mismatch

__all__ = [
    "Batch",
    "Masks",
    "SCHEDULES",
    "Regime",
    "check_data",
    "iterate",
    "known_empty",
    "lr_at_epoch",
    "mask_dict",
    "no_batches",
    "seeded",
    "set_lr",
    "split_batch",
]

Masks = Mapping[str, torch.Tensor] | Ticket | None
Batch = Any

#: Learning-rate schedules the trainers know (``None`` is a constant rate).
SCHEDULES = (None, "cosine", "step")


# ---------------------------------------------------------------------------- argument checks
def _count(name: str, value: Any) -> int:
    """:func:`check_int` of a count ``>= 0`` that may not be ``None``."""
    out = check_int(name, value, low=0)
    assert out is not None
    return out


# ---------------------------------------------------------------------------- schedule
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


@dataclass(frozen=True)
class Regime:
    """How long and at which learning rate to train: the checked schedule and step budget.

    Build it with :meth:`checked`, which raises :class:`GraphticketsError` for bad values. The
    optimizer's own settings (momentum, weight decay, Nesterov) are checked where the optimizer
    is built (:func:`graphtickets.training.make_optimizer`).
    """

    epochs: int
    lr: float
    schedule: str | None
    milestones: tuple[int, ...]
    gamma: float
    warmup: int
    max_iterations: int | None

    @classmethod
    def checked(
        cls,
        *,
        epochs: Any,
        lr: Any,
        schedule: Any,
        milestones: Iterable[int] | None,
        gamma: float,
        warmup: Any,
        max_iterations: Any,
    ) -> Regime:
        """The regime of these arguments, checked (epochs, lr, warmup, max_iterations, schedule)."""
        epochs_i = _count("epochs", epochs)
        check_number("lr", lr, low=0.0, low_open=False)
        warmup_i = _count("warmup", warmup)
        max_steps = check_int("max_iterations", max_iterations, low=0, allow_none=True)
        if schedule not in SCHEDULES:
            raise GraphticketsError(f"unknown schedule {schedule!r}; known schedules: None, 'cosine', 'step'")
        if schedule == "step" and not milestones:
            raise GraphticketsError("schedule='step' needs milestones (0-based epochs where lr *= gamma)")
        miles = tuple(sorted(int(m) for m in (milestones or ())))
        return cls(epochs=epochs_i, lr=lr, schedule=schedule, milestones=miles, gamma=gamma,
                   warmup=warmup_i, max_iterations=max_steps)  # fmt: skip

    def factor(self, epoch: int) -> float:
        """The schedule's multiplier of the base learning rate in 0-based ``epoch``."""
        return lr_at_epoch(epoch, lr=1.0, epochs=self.epochs, schedule=self.schedule,
                           milestones=self.milestones, gamma=self.gamma, warmup=self.warmup)  # fmt: skip

    def spent(self, iterations: int) -> bool:
        """Whether ``iterations`` optimizer steps use up ``max_iterations``."""
        return self.max_iterations is not None and iterations >= self.max_iterations


def set_lr(opt: Any, base_lrs: list[float], factor: float) -> float:
    """Scale each parameter group's base learning rate by ``factor``; return group 0's rate."""
    for group, base in zip(opt.param_groups, base_lrs, strict=True):
        group["lr"] = base * factor
    return float(opt.param_groups[0]["lr"])


# ---------------------------------------------------------------------------- data
def known_empty(data: Any) -> bool:
    """Whether ``data`` has a length and it is 0 (``False`` when it has no length)."""
    try:
        return len(data) == 0
    except TypeError:  # no __len__ (generators, iterable datasets)
        return False


def check_data(data: Any, epochs: int) -> None:
    """Raise unless ``data`` can give ``epochs`` passes: no one-shot iterator for more than one
    epoch, not known to be empty."""
    if epochs > 1 and isinstance(data, Iterator):
        raise GraphticketsError(
            f"data is a one-shot iterator but epochs={epochs}: pass a list of batches, a "
            f"DataLoader or graphtickets.data.batches(...), which can be iterated once per epoch"
        )
    if known_empty(data):
        raise GraphticketsError("data is empty: training needs at least one (inputs, targets) batch")


def iterate(data: Iterable[Batch], what: str) -> Iterator[Batch]:
    """``iter(data)``, with an error naming ``what`` when it is not iterable."""
    try:
        return iter(data)
    except TypeError:
        raise GraphticketsError(
            f"{what} must be an iterable of (inputs, targets) batches, got {type(data).__name__}"
        ) from None


def split_batch(batch: Batch, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``(inputs, targets)`` of ``batch`` on ``device``."""
    if isinstance(batch, Mapping) or not isinstance(batch, (tuple, list)) or len(batch) < 2:
        raise GraphticketsError(
            f"each batch must be an (inputs, targets) pair, got {type(batch).__name__}; "
            f"pass a list of (x, y) tuples, a DataLoader or graphtickets.data.batches(...)"
        )
    x, y = batch[0], batch[1]
    return x.to(device), y.to(device)


def no_batches(epoch: int, first: int) -> GraphticketsError:
    """The error for 0-based ``epoch`` giving no batches (``first``: the run's first epoch)."""
    if epoch == first:
        return GraphticketsError("data gave no batches: training needs at least one (inputs, targets) batch")
    return GraphticketsError(
        f"data gave no batches in epoch {epoch + 1}: it was exhausted by the first "
        f"epoch; pass a re-iterable (a list, a DataLoader, graphtickets.data.batches)"
    )


# ---------------------------------------------------------------------------- masks, seeding
def mask_dict(model: nn.Module, masks: Masks) -> dict[str, torch.Tensor]:
    """Validate ``masks`` against ``model``; return ``{parameter name: bool mask}`` (a mask
    named ``n`` goes to ``n_orig`` on a model pruned with ``torch.nn.utils.prune``)."""
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
    for name, m in raw.items():
        check_mask_tensor(name, m)
    params = dict(model.named_parameters())
    unknown, bad_shape = mask_mismatch(model, raw)
    if unknown:
        sample = ", ".join(list(params)[:6])
        raise TicketError(
            f"mask {unknown[0]!r} names no parameter of the model (its parameters: [{sample}, ...]); "
            f"masks are keyed by model.named_parameters() names of the same architecture"
        )
    if bad_shape is not None:
        name, mask_shape, param_shape = bad_shape
        raise TicketError(
            f"mask {name!r} has shape {mask_shape} but the parameter has "
            f"{param_shape}: the masks belong to a model of other widths"
        )
    return {(n if n in params else f"{n}_orig"): m for n, m in raw.items()}


@contextlib.contextmanager
def seeded(device: torch.device, seed: int) -> Iterator[None]:
    """A ``torch.random.fork_rng`` block with torch's default generator (and ``device``'s CUDA
    generator) seeded from ``seed``; the caller's global random state is restored after."""
    cuda = [device.index if device.index is not None else torch.cuda.current_device()] \
        if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.random.default_generator.manual_seed(int(seed))
        if cuda:
            torch.cuda.default_generators[cuda[0]].manual_seed(int(seed))
        yield
