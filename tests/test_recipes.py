"""The README's "Adding a metric" and "Adding a distance" recipes work as written (issue 16).

Each test adds a toy entry in a few lines, checks it against a hand computation, and takes
it out of its registry again so other tests see the registries as shipped.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch

import graphtickets as gt
from graphtickets.analysis.distances import DISTANCES, register_distance
from graphtickets.analysis.metrics import METRICS, register_metric


@pytest.fixture
def pair() -> tuple[torch.nn.Module, gt.Ticket, gt.Ticket]:
    model = gt.models.build("mlp", in_shape=(8,), num_classes=3, widths=(6,), seed=0)
    a = gt.pruning.prune(model, "magnitude", density=0.4)
    b = gt.pruning.prune(model, "random", density=0.4, seed=1)
    return model, a, b


@pytest.fixture
def cleanup() -> Iterator[list[tuple[dict, str]]]:
    added: list[tuple[dict, str]] = []
    yield added
    for registry, name in added:
        registry.pop(name, None)


def test_adding_a_metric_recipe(pair, cleanup) -> None:
    # --- the recipe (README "Adding a metric") ---
    @register_metric("edge_per_node", applies=lambda g: True, keys=["edge_per_node"], default=False)
    def edge_per_node(g):
        return {"edge_per_node": g.n_edges / max(g.n_nodes, 1)}
    # ---
    cleanup.append((METRICS, "edge_per_node"))
    model, a, _ = pair
    g = gt.graphs.layered_graph(model, a)
    got = gt.analysis.metrics(g, names=["edge_per_node"])["edge_per_node"]
    # by hand: the layered graph has one node per unit and one edge per kept weight
    units = 8 + 6 + 3
    assert g.n_nodes == units
    assert got == pytest.approx(a.kept / units)


def test_adding_a_distance_recipe(pair, cleanup) -> None:
    # --- the recipe (README "Adding a distance"): a feature of one ticket plus a metric ---
    @register_distance("kept_per_layer", metric=lambda x, y: float(np.abs(x - y).sum()), default=False)
    def kept_per_layer(ticket, ctx):
        return np.array([float(m.sum()) for m in ticket.masks.values()])
    # ---
    cleanup.append((DISTANCES, "kept_per_layer"))
    model, a, b = pair
    by_hand = sum(abs(float(a.masks[n].sum()) - float(b.masks[n].sum())) for n in a.masks)
    assert gt.analysis.distance(a, b, "kept_per_layer", model=model) == pytest.approx(by_hand)
    assert "kept_per_layer" in DISTANCES and DISTANCES["kept_per_layer"].metric is not None
    table = gt.analysis.compare({"a": a, "b": b}, model=model, kinds=["kept_per_layer"], null_samples=0)
    assert table.set_index("kind").loc["kept_per_layer", "value"] == pytest.approx(by_hand)
