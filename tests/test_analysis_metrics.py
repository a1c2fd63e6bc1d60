"""Contract over every METRICS entry, and metrics() on each graph kind."""

from __future__ import annotations

import math

import networkx as nx
import pytest

import graphtickets as gt
from graphtickets.analysis import METRICS, from_networkx, metrics
from graphtickets.errors import UnknownNameError
from graphtickets.graphs.base import Graph


@pytest.fixture(scope="module")
def graphs() -> list[Graph]:
    m = gt.models.build("mlp", in_shape=(8,), num_classes=3, widths=(16, 16, 16), seed=0)
    t = gt.pruning.prune(m, "random", density=0.3, seed=0)
    conv = gt.models.build("conv2", in_shape=(3, 8, 8), num_classes=3, seed=0)
    tc = gt.pruning.prune(conv, "random", density=0.2, seed=0)
    return [
        gt.graphs.layered_graph(m, t),
        gt.graphs.layered_graph(conv, tc),
        gt.graphs.relational_graph(m, t),
        gt.graphs.ws_flex(64, 8.19, 0.128, seed=0),
        next(iter(gt.graphs.layer_bipartite(m, t).values())),
        from_networkx(nx.gnp_random_graph(40, 0.1, seed=0)),
    ]


@pytest.mark.parametrize("name", sorted(METRICS))
def test_metric_contract(name: str, graphs: list[Graph]) -> None:
    spec = METRICS[name]
    applicable = [g for g in graphs if spec.applies(g)]
    assert applicable, f"no test graph for metric {name!r}: add one"
    for g in applicable[:3]:
        out = spec.fn(g)
        assert tuple(out)[: len(spec.keys)] == spec.keys, name
        assert all(k.startswith(spec.prefixes) for k in tuple(out)[len(spec.keys) :]) if spec.prefixes else len(out) == len(spec.keys)
        assert all(isinstance(v, float) for v in out.values())
        assert all(math.isfinite(v) or math.isnan(v) or v == -math.inf for v in out.values())
        assert spec.fn(g) == out or all(
            (a == b) or (math.isnan(a) and math.isnan(b)) for a, b in zip(out.values(), spec.fn(g).values(), strict=True)
        ), "metrics are deterministic"


def test_metrics_per_kind(graphs: list[Graph]) -> None:
    layered, _, relational, ws, bip, _ = graphs
    ml = metrics(layered)
    assert {"square_clustering", "log10_paths", "effective_fraction", "dead_fraction", "collapsed_layers"} <= set(ml)
    assert "clustering" not in ml  # identically 0 on a DAG: not reported
    mr = metrics(relational)
    assert {"clustering", "path_length", "path_length_connected_fraction", "spectral_gap", "modularity"} <= set(mr)
    assert mr["n_edges"] == relational.simple().n_edges  # self-loops excluded
    assert {"mu0", "delta_r"} <= set(metrics(bip))
    assert "sigma" not in metrics(ws) and "sigma" in metrics(ws, names=["small_world"])
    with pytest.raises(UnknownNameError, match="clustering"):
        metrics(ws, names=["clusterng"])


def test_complete_graph_metrics() -> None:
    m = metrics(nx.complete_graph(6))
    assert m["clustering"] == 1 and m["path_length"] == 1 and m["edge_density"] == 1


def test_ticket_metrics_equal_metrics_of_the_built_graph() -> None:
    from graphtickets.analysis import ticket_metrics

    m = gt.models.build("mlp", in_shape=(8,), num_classes=3, widths=(16, 16, 16), seed=0)
    t = gt.pruning.prune(m, "random", density=0.3, seed=1)
    assert ticket_metrics(t, m) == metrics(gt.graphs.layered_graph(m, t, weights="count"))
    assert ticket_metrics(t, m, graph="relational") == metrics(gt.graphs.relational_graph(m, t).simple())
