"""Null models: layer-wise shuffles and degree-preserving rewiring."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import graphtickets as gt
from graphtickets.analysis import rewire_preserving_degrees, shuffle_within_layers
from graphtickets.analysis.nulls import rewire_matrix


@pytest.fixture(scope="module")
def conv_ticket() -> gt.Ticket:
    m = gt.models.build("conv2", in_shape=(3, 8, 8), num_classes=3, seed=0)
    return gt.pruning.prune(m, "magnitude", density=0.1, seed=0)


def test_shuffle_keeps_layer_counts(conv_ticket: gt.Ticket) -> None:
    s = shuffle_within_layers(conv_ticket, seed=0)
    assert s.layer_counts() == conv_ticket.layer_counts()
    assert s != conv_ticket and s == shuffle_within_layers(conv_ticket, seed=0)


def test_rewire_keeps_every_degree_and_changes_edges(conv_ticket: gt.Ticket) -> None:
    r = rewire_preserving_degrees(conv_ticket, seed=1, swaps_per_edge=5)
    changed = 0
    for name, m in conv_ticket.masks.items():
        a = m.reshape(m.shape[0], -1)
        b = r.masks[name].reshape(m.shape[0], -1)
        assert r.masks[name].shape == m.shape and r.masks[name].dtype == torch.bool
        assert torch.equal(a.sum(1), b.sum(1)), name  # out-degree of every output unit
        assert torch.equal(a.sum(0), b.sum(0)), name  # fan-out of every (input, kernel position)
        if m.dim() == 4:  # hence every input channel keeps its fan-out
            assert torch.equal(m.sum((0, 2, 3)), r.masks[name].sum((0, 2, 3)))
        changed += int((a ^ b).sum())
    assert changed > 0.5 * conv_ticket.kept
    assert r.meta["ablation"]["kind"] == "rewire"
    assert r == rewire_preserving_degrees(conv_ticket, seed=1, swaps_per_edge=5)
    assert r != rewire_preserving_degrees(conv_ticket, seed=2, swaps_per_edge=5)


@pytest.mark.parametrize("density", [0.05, 0.5, 0.9])
def test_rewire_matrix_dense_and_sparse(density: float) -> None:
    rng = np.random.default_rng(0)
    m = rng.random((30, 40)) < density
    out = rewire_matrix(m, np.random.default_rng(1))
    assert np.array_equal(m.sum(0), out.sum(0)) and np.array_equal(m.sum(1), out.sum(1))
    assert (m ^ out).sum() > 0.3 * min(m.sum(), (~m).sum())


def test_rewire_of_an_unrewirable_matrix_returns_it() -> None:
    m = np.zeros((4, 4), bool)
    m[:2, :2] = True  # a full block: every swap would duplicate an edge
    assert np.array_equal(rewire_matrix(m, np.random.default_rng(0)), m)
