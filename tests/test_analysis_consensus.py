"""Consensus: identical masks, hand counts, the Poisson-binomial expectation against brute force
and against sampled shuffled nulls, where the core sits."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

import graphtickets as gt
from graphtickets.analysis import consensus, poisson_binomial
from graphtickets.errors import GraphticketsError, TicketError


def test_consensus_of_identical_masks_is_the_mask() -> None:
    m = gt.models.build("mlp", in_shape=(8,), num_classes=3, widths=(16, 16), seed=0)
    t = gt.pruning.prune(m, "random", density=0.3, seed=0)
    for k in (1, 3, 5):
        c = consensus([t] * k)
        assert c.core() == t.kept and c.core(1) == t.kept
        assert c.histogram[k] == t.kept and c.histogram[0] == t.total - t.kept
        ct = c.ticket()
        assert all(torch.equal(ct.masks[n], t.masks[n]) for n in t.masks)
        assert ct.method == "consensus" and ct.config["model"] == t.config["model"]
    assert consensus([t] * 3).expected_core() < t.kept  # shuffled copies share less


def test_counts_histogram_and_units_by_hand() -> None:
    a = gt.Ticket({"w": torch.tensor([[1, 1, 0], [0, 1, 0]], dtype=torch.bool), "b": torch.tensor([True, False])})
    b = gt.Ticket({"w": torch.tensor([[1, 0, 0], [0, 1, 1]], dtype=torch.bool), "b": torch.tensor([True, True])})
    c = gt.Ticket({"w": torch.tensor([[1, 1, 0], [0, 0, 1]], dtype=torch.bool), "b": torch.tensor([False, True])})
    r = consensus({"a": a, "b": b, "c": c}, k=2)
    assert r.counts["w"].tolist() == [[3, 2, 0], [0, 2, 2]] and r.counts["b"].tolist() == [2, 2]
    assert r.histogram.tolist() == [2, 0, 5, 1]
    assert r.core() == 6 and r.core(3) == 1 and r.core(1) == 6
    u = r.units().set_index(["layer", "side", "unit"])["core_weights"]
    assert u[("w", "out", 0)] == 2 and u[("w", "out", 1)] == 2
    assert [u[("w", "in", i)] for i in range(3)] == [1, 2, 1]
    assert ("b", "in", 0) not in u.index
    lay = r.layers.set_index("layer")
    assert lay.loc["w", "all"] == 1 and lay.loc["w", "any"] == 4 and lay.loc["w", "core"] == 4
    # expectation by hand: layer w, densities 3/6, 3/6, 3/6 -> P(count >= 2) = 1/2
    assert lay.loc["w", "expected_core"] == pytest.approx(6 * 0.5)
    assert r.ticket().masks["w"].tolist() == [[True, True, False], [False, True, True]]
    with pytest.raises(GraphticketsError, match="k must be"):
        r.core(4)


def test_poisson_binomial_against_enumeration() -> None:
    p = [0.1, 0.5, 0.7, 0.95]
    ref = np.zeros(5)
    for bits in itertools.product([0, 1], repeat=4):
        ref[sum(bits)] += np.prod([q if b else 1 - q for q, b in zip(p, bits, strict=True)])
    assert np.allclose(poisson_binomial(p), ref, atol=1e-15)
    assert poisson_binomial([]).tolist() == [1.0]


def test_exact_expectation_matches_sampled_shuffled_nulls() -> None:
    m = gt.models.build("mlp", in_shape=(10,), num_classes=4, widths=(20, 20), seed=0)
    ts = {f"t{i}": gt.pruning.prune(m, "magnitude" if i == 0 else "random", density=d, seed=i)
          for i, d in enumerate([0.2, 0.3, 0.5])}  # fmt: skip
    c = consensus(ts, samples=400, seed=1)
    mean_h = c.null_histograms.mean(axis=0)
    sd_h = c.null_histograms.std(axis=0)
    assert np.all(np.abs(mean_h - c.expected) <= 4 * sd_h / np.sqrt(400) + 1e-9)
    assert c.expected.sum() == pytest.approx(sum(t.total for t in ts.values()) / 3)
    nc = c.null_core()
    assert nc["n"] == 400 and nc["mean"] == pytest.approx(c.expected_core(), rel=0.1)
    s = c.summary()
    assert list(s["k"]) == [1, 2, 3] and "z" in s


def test_mismatched_tickets_raise() -> None:
    a = gt.Ticket({"w": torch.ones(3, dtype=torch.bool)})
    b = gt.Ticket({"v": torch.ones(3, dtype=torch.bool)})
    with pytest.raises(TicketError, match="architecture"):
        consensus([a, b])
    x = gt.Ticket({"w": torch.tensor([True, False])})
    y = gt.Ticket({"w": torch.tensor([False, True])})
    with pytest.raises(TicketError, match="lower k"):
        consensus([x, y]).ticket()
