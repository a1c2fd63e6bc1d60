"""A trained method consumes a ``Batches`` epoch by epoch from where it stands (issue 31).

``gt.data.batches`` draws a new order at every ``iter()``; a method that called ``iter()``
only to tell it from a one-shot iterator skipped an order (Gem-Miner through ``prune``: two),
so its first epoch was not the data's next one.
"""

from __future__ import annotations

import pytest
import torch

import graphtickets as gt

_EVAL = (torch.zeros(4, 10), torch.zeros(4, dtype=torch.long))


def _data() -> gt.data.Batches:
    g = torch.Generator().manual_seed(0)
    ds = torch.utils.data.TensorDataset(torch.randn(48, 10, generator=g), torch.randint(0, 3, (48,), generator=g))
    return gt.data.batches(ds, batch_size=16, seed=1)


@pytest.mark.parametrize(("method", "hparams", "epochs_used"), [
    ("imp", {"epochs": 2}, 2),  # one round (density 0.8): the dense run; the target trains on a copy
    ("early_magnitude", {"epochs": 2}, 2),
    ("gem_miner", {"epochs": 2, "prune_every": 1, "finetune_epochs": 1, "eval_data": [_EVAL]}, 3),
])
def test_a_method_uses_exactly_its_epochs_of_a_batches(method: str, hparams: dict, epochs_used: int) -> None:
    model = gt.models.build("mlp", in_shape=(10,), num_classes=3, widths=(6,), seed=0)
    b = _data()
    gt.pruning.prune(model, method, density=0.8, data=b, seed=0, **hparams)
    assert b.epoch == epochs_used


def test_the_first_epoch_is_the_next_order() -> None:
    """IMP on a fresh Batches equals IMP on the list of its epoch-0 batches (1 epoch, 1 round;
    SGD at a large rate so that the order decides the mask)."""
    model = gt.models.build("mlp", in_shape=(10,), num_classes=3, widths=(6,), seed=0)
    first = list(iter(_data()))
    kw = {"density": 0.5, "epochs": 1, "rate": 0.5, "optimizer": "sgd", "lr": 0.5, "seed": 0}
    a = gt.pruning.prune(model, "imp", data=_data(), **kw)
    b = gt.pruning.prune(model, "imp", data=first, **kw)
    assert all(torch.equal(a.masks[n], b.masks[n]) for n in a.masks)
