"""Stability (Frankle et al. 2020): the error barrier on the linear path, against hand-built networks."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

import graphtickets as gt
from graphtickets.errors import GraphticketsError


def _pair() -> tuple[nn.Module, nn.Module, list]:
    """Two 1-2-2 ReLU nets computing the same function with their hidden units swapped.

    a: h = (relu(x), relu(-x)), logits = h + (0, 0.1); b: h = (relu(-x), relu(x)), logits swap h back.
    Both classify x = +1 as 0 and x = -1 as 1 (error 0). At alpha = 1/2 the first layer is 0, the
    logits are (0, 0.1) for every input: class 1 everywhere, error 1/2.
    """
    def net(w1: list[list[float]], w2: list[list[float]]) -> nn.Module:
        m = nn.Sequential(nn.Linear(1, 2), nn.ReLU(), nn.Linear(2, 2))
        with torch.no_grad():
            m[0].weight.copy_(torch.tensor(w1))
            m[0].bias.zero_()
            m[2].weight.copy_(torch.tensor(w2))
            m[2].bias.copy_(torch.tensor([0.0, 0.1]))
        return m

    a = net([[1.0], [-1.0]], [[1.0, 0.0], [0.0, 1.0]])
    b = net([[-1.0], [1.0]], [[0.0, 1.0], [1.0, 0.0]])
    data = [(torch.tensor([[1.0], [-1.0]]), torch.tensor([0, 1]))]
    return a, b, data


def test_the_barrier_of_two_identical_networks_is_zero() -> None:
    a, _, data = _pair()
    path = gt.analysis.linear_path(a, copy.deepcopy(a), data, points=7)
    assert path.error_barrier == 0.0 and path.loss_barrier == pytest.approx(0.0, abs=1e-7)
    assert path.alphas == pytest.approx([i / 6 for i in range(7)])


def test_a_hand_built_pair_with_a_worse_midpoint_gives_the_expected_barrier() -> None:
    a, b, data = _pair()
    path = gt.analysis.linear_path(a, b, data, points=3)
    assert path.errors == pytest.approx((0.0, 0.5, 0.0))
    assert path.error_barrier == pytest.approx(0.5)
    # losses by hand: the ends have logits (1, 0.1) for x=+1 (label 0) and (0, 1.1) for x=-1 (label 1)
    end = ((math.log(math.exp(1.0) + math.exp(0.1)) - 1.0) + (math.log(1.0 + math.exp(1.1)) - 1.1)) / 2
    mid = (math.log(1.0 + math.exp(0.1)) + (math.log(1.0 + math.exp(0.1)) - 0.1)) / 2
    assert path.losses == pytest.approx((end, mid, end))
    assert path.loss_barrier == pytest.approx(mid - end)
    # more points: alpha = 1/4 still classifies both inputs right (hidden (1/2, 0), logits (3/8, 1/8 + 0.1))
    five = gt.analysis.linear_path(a, b, data, points=5)
    assert five.errors == pytest.approx((0.0, 0.0, 0.5, 0.0, 0.0)) and five.error_barrier == pytest.approx(0.5)


def test_path_barrier_is_the_max_over_the_mean_of_the_ends() -> None:
    assert gt.analysis.path_barrier([0.2, 0.5, 0.4]) == pytest.approx(0.5 - 0.3)
    assert gt.analysis.path_barrier([0.2, 0.1, 0.4]) == pytest.approx(0.4 - 0.3)  # an end is the max
    with pytest.raises(GraphticketsError, match="two ends"):
        gt.analysis.path_barrier([0.1])


def test_stability_trains_two_data_orders_of_a_ticket() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(96, 8, generator=g)
    ds = torch.utils.data.TensorDataset(x, (x[:, 0] > 0).long())
    model = gt.models.build("mlp", in_shape=(8,), num_classes=2, widths=(16,), seed=0)
    ticket = gt.pruning.prune(model, "random", density=0.5, seed=1)
    test = [ds[:]]
    same = gt.analysis.stability(ticket, model, data=ds, eval_data=test, seeds=(4, 4), epochs=2, batch_size=16)
    assert same.error_barrier == 0.0 and same.path.error_barrier == 0.0
    r = gt.analysis.stability(ticket, model, data=ds, eval_data=test, seeds=(0, 1), epochs=2, batch_size=16, lr=0.05)
    assert r.seeds == (0, 1) and len(r.path.alphas) == 11 and r.error_barrier >= 0.0
    assert r.errors == (r.path.errors[0], r.path.errors[-1]) and r.path.errors[0] < 0.5
    # a data order given as a function of the seed, the same as the dataset shuffled by that seed
    order = gt.analysis.stability(ticket, model, data=lambda s: gt.data.batches(ds, batch_size=16, seed=s),
                                  eval_data=test, seeds=(0, 1), epochs=2, lr=0.05)
    assert order.path.errors == r.path.errors
    # the model is untouched; the ticket's mask holds along the path (both ends are masked)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(),
                                                 gt.models.build_from_spec(model.gt_spec).state_dict().values(), strict=True))
    with pytest.raises(GraphticketsError, match="two data-order seeds"):
        gt.analysis.stability(ticket, model, data=ds, eval_data=test, seeds=(0, 1, 2))
    with pytest.raises(GraphticketsError, match="points must be"):
        gt.analysis.linear_path(model, model, test, points=1)
