"""Masked training: one ticket (:func:`train`) or many stacked (:func:`train_many`).

What lives where:

- :mod:`graphtickets.training.loop`: :func:`train`, :func:`evaluate`, the mask helpers
  (:func:`enforce_masks`, :func:`snapshot` / :func:`restore` for rewinding) and
  :func:`resolve_device`;
- :mod:`graphtickets.training.batched`: :func:`train_many` and :func:`can_batch` (many tickets
  of one architecture trained together);
- :mod:`graphtickets.training.settings`: :class:`TrainSettings`, the settings both trainers
  take whole (``settings=``) beside their keyword form;
- :mod:`graphtickets.training.regime`: what both share (the checked training regime, the
  learning-rate schedule :func:`lr_at_epoch`, batches, masks, seeding);
- :mod:`graphtickets.training.optim`: the optimizers (:data:`OPTIMIZERS`, the one factory
  :func:`make_optimizer`, the lean SGD/Adam).

Imports go one way: ``data``, ``models``, ``ticket`` <- ``training`` <- ``pruning`` <- ``graphs``
<- ``analysis`` <- ``study`` <- ``cli``.
"""

from __future__ import annotations

from graphtickets.training.batched import ENGINES, SUPPORTED_MODULES, can_batch, train_many
from graphtickets.training.loop import (
    OPTIMIZERS,
    SCHEDULES,
    History,
    enforce_masks,
    evaluate,
    lr_at_epoch,
    make_optimizer,
    resolve_device,
    restore,
    snapshot,
    train,
)
from graphtickets.training.settings import TrainSettings

__all__ = [
    "History", "TrainSettings", "train", "evaluate", "enforce_masks", "snapshot", "restore", "make_optimizer",
    "lr_at_epoch", "OPTIMIZERS", "SCHEDULES", "resolve_device",
    "can_batch", "train_many", "ENGINES", "SUPPORTED_MODULES",
]
