"""The training settings as one typed value: :class:`TrainSettings`.

:func:`graphtickets.training.train` and :func:`graphtickets.training.train_many` take them
whole (``train(net, data, masks=t, settings=TrainSettings(epochs=5, lr=0.01))``) or, as
before, as keyword arguments (``train(net, data, masks=t, epochs=5, lr=0.01)``). The settings
are what decides how a ticket is trained (length, optimizer, learning-rate schedule, step
budget); what a call trains on and where (data, masks, evaluation data, device, seed) stays an
argument of the call. A study cell carries one (:class:`graphtickets.study.spec.TrainSpec`)
and hands it to the trainers unchanged.

Imports go one way: this module imports only :mod:`graphtickets.errors` (and torch for the
optimizer type); ``loop`` and ``batched`` import it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import torch

from graphtickets.errors import GraphticketsError

__all__ = ["TrainSettings", "SETTING_NAMES"]


@dataclass(frozen=True)
class TrainSettings:
    """How a ticket is trained; the defaults are :func:`~graphtickets.training.train`'s.

    Attributes
    ----------
    epochs : int
        Passes over the data (0: nothing is trained).
    optimizer : str
        ``"sgd"``, ``"adam"`` or ``"adamw"`` (:func:`~graphtickets.training.make_optimizer`).
        :func:`~graphtickets.training.train`'s keyword form also takes an optimizer instance.
    lr, momentum, weight_decay, nesterov
        Base learning rate; SGD momentum and Nesterov flag; weight decay on every parameter.
    schedule : {None, "cosine", "step"}
        Learning-rate schedule stepped once per epoch, with ``milestones`` and ``gamma`` for
        ``"step"`` and ``warmup`` epochs of linear warmup
        (:func:`~graphtickets.training.lr_at_epoch`).
    max_iterations : int, optional
        Stop after this many optimizer steps.

    The values are checked where they are used (by the trainers), with the same errors as the
    keyword form.

    Examples
    --------
    >>> s = TrainSettings(epochs=3, optimizer="adam", lr=1e-3)
    >>> s.epochs, s.momentum
    (3, 0.9)
    >>> TrainSettings.of(s, epochs=1, lr=0.1) is s  # keywords left at their defaults: the settings whole
    True
    """

    epochs: int = 1
    optimizer: str | torch.optim.Optimizer = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 0.0
    nesterov: bool = False
    schedule: str | None = None
    milestones: Any = None
    gamma: float = 0.1
    warmup: int = 0
    max_iterations: int | None = None

    @classmethod
    def of(cls, settings: TrainSettings | None, **keywords: Any) -> TrainSettings:
        """The settings of a trainer call: ``settings`` whole, else the keyword form's ``keywords``.

        A keyword given beside ``settings`` must be left at its default (GraphticketsError
        naming it otherwise: the two forms are not mixed, so no value is silently ignored).
        """
        if settings is None:
            return cls(**keywords)
        if not isinstance(settings, TrainSettings):
            raise GraphticketsError(
                f"settings must be a TrainSettings, got {type(settings).__name__}; build one with "
                f"graphtickets.training.TrainSettings(epochs=..., lr=...)"
            )
        default = cls()
        clash = sorted(k for k, v in keywords.items() if not _is_default(v, getattr(default, k)))
        if clash:
            raise GraphticketsError(
                f"give the training settings either whole (settings=...) or as keywords, not both: "
                f"{', '.join(clash)} given beside settings; put them into the settings "
                f"(dataclasses.replace(settings, {clash[0]}=...))"
            )
        return settings


def _is_default(value: Any, default: Any) -> bool:
    """Whether a keyword argument is at its default (same type and value; None is None)."""
    return value is default or (type(value) is type(default) and value == default)


#: The names of the settings, in their order (the trainers' keyword arguments of the same names).
SETTING_NAMES: tuple[str, ...] = tuple(f.name for f in fields(TrainSettings))
