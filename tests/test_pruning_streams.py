"""A method's random draws are independent of the model's initial weights of the same seed.

A model built with ``seed`` is initialised from torch's generator seeded with ``seed``; a
method drawing uniform scores from a generator seeded the same way would repeat those draws
and keep the largest *signed* weights of the default (Kaiming-uniform) initialisation
(correlation 0.86 between mask and weight before the fix). Checked against the plain
correlation of mask and weight, which shares no code with the methods.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import graphtickets as gt
from graphtickets.pruning.select import draw_generator
from graphtickets.pruning.sparse_training.common import random_mask


def _model(seed: int) -> torch.nn.Module:
    return gt.models.build("mlp", in_shape=(40,), num_classes=10, widths=[100, 100], seed=seed)


def _corr(model: torch.nn.Module, masks: dict[str, torch.Tensor]) -> float:
    w = dict(model.named_parameters())["fc1.weight"].detach().flatten().numpy()
    m = masks["fc1.weight"].float().flatten().numpy()
    return float(np.corrcoef(w, m)[0, 1])


@pytest.mark.parametrize("method, options", [
    ("random", {}), ("random", {"scope": "global"}), ("random", {"distribution": "erk"}), ("smart_ratio", {}),
])
def test_a_random_mask_of_seed_s_ignores_the_weights_of_seed_s(method: str, options: dict) -> None:
    # 3 seeds x 4,000 weights: under independence |r| has sd 1/sqrt(4000) = 0.016; 0.08 is 5 sd
    for s in range(3):
        model = _model(s)
        ticket = gt.pruning.prune(model, method, density=0.5, seed=s, **options)
        assert abs(_corr(model, ticket.masks)) < 0.08, (method, options, s)


def test_sparse_training_initial_masks_ignore_the_weights_of_their_seed() -> None:
    # SET and RigL start from random_mask(..., draw_generator(seed))
    for s in range(3):
        model = _model(s)
        masks, _ = random_mask(model, 0.5, "uniform", draw_generator(s))
        assert abs(_corr(model, masks)) < 0.08


def test_draw_generator_is_a_pure_function_of_the_seed_and_not_torchs_stream() -> None:
    a = torch.rand(1000, generator=draw_generator(7))
    assert torch.equal(a, torch.rand(1000, generator=draw_generator(7)))
    assert not torch.equal(a, torch.rand(1000, generator=draw_generator(8)))
    # the stream torch.manual_seed(7) gives (the one a model of seed 7 is initialised from) differs
    assert not torch.equal(a, torch.rand(1000, generator=torch.Generator().manual_seed(7)))
