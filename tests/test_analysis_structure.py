"""Layered-graph structure: square clustering, path counts, effective density, dead units."""

from __future__ import annotations

import itertools
import math

import networkx as nx
import numpy as np
import pytest
import torch
from torch import nn

import graphtickets as gt
from graphtickets.analysis import (
    average_square_clustering,
    collapsed_layers,
    dead_units,
    degree_stats,
    effective_density,
    effective_fraction,
    from_networkx,
    gini,
    layer_degree_stats,
    log10_paths,
    square_clustering,
)


def test_gini_hand_values() -> None:
    assert gini(np.array([1, 1, 1, 1])) == 0
    assert gini(np.array([0, 0, 0, 4])) == pytest.approx(0.75)  # (n-1)/n for one holder
    assert gini(np.zeros(3)) == 0


@pytest.mark.parametrize("seed", range(3))
def test_square_clustering_equals_networkx(seed: int) -> None:
    G = nx.gnp_random_graph(40, 0.15, seed=seed)
    sq = square_clustering(from_networkx(G))
    ref = nx.square_clustering(G)
    assert np.allclose(sq, [ref[i] for i in range(40)], atol=1e-12)


def test_square_clustering_on_a_layered_dag_uses_the_undirected_graph() -> None:
    R = nx.gnp_random_graph(30, 0.3, seed=5, directed=True)
    D = nx.DiGraph()
    D.add_nodes_from(range(30))
    D.add_edges_from((u, v) for u, v in R.edges if u < v)
    ref = nx.square_clustering(D.to_undirected())
    assert np.allclose(square_clustering(from_networkx(D)), [ref[i] for i in range(30)], atol=1e-12)
    assert average_square_clustering(from_networkx(D)) == pytest.approx(np.mean(list(ref.values())))


def brute_paths(D: nx.DiGraph) -> int:
    src = [v for v in D if D.in_degree(v) == 0]
    dst = [v for v in D if D.out_degree(v) == 0]
    return sum(len(list(nx.all_simple_paths(D, s, t))) for s, t in itertools.product(src, dst) if s != t) + len(set(src) & set(dst))


@pytest.mark.parametrize("seed", range(4))
def test_path_count_equals_brute_force(seed: int) -> None:
    D = nx.gnp_random_graph(10, 0.45, seed=seed, directed=True)
    D = nx.DiGraph([(u, v) for u, v in D.edges if u < v])
    D.add_nodes_from(range(10))
    n = brute_paths(D)
    assert 10 ** log10_paths(from_networkx(D)) == pytest.approx(n, rel=1e-9)


def test_path_count_of_a_deep_dense_mlp_does_not_overflow() -> None:
    widths = [5] + [200] * 200 + [3]
    m = nn.Sequential(*[nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:], strict=True)])
    g = gt.graphs.layered_graph(m, input_shape=(5,))
    expected = math.log10(5) + 200 * math.log10(200) + math.log10(3)  # product of widths
    assert log10_paths(g) == pytest.approx(expected, rel=1e-12)


def test_path_count_with_multiplicity_counts_kernel_entries() -> None:
    m = nn.Sequential(nn.Conv2d(2, 3, 3), nn.Flatten(), nn.Linear(3 * 16, 1))
    mask = torch.zeros(3, 2, 3, 3, dtype=torch.bool)
    mask[0, 0, :2, 0] = True  # 2 live entries on channel pair (0 -> 0)
    t = gt.Ticket({"0.weight": mask, "2.weight": torch.ones(1, 48, dtype=torch.bool)})
    g = gt.graphs.layered_graph(m, t, weights="count", input_shape=(2, 6, 6))
    # channel 0 -> conv out 0 -> 16 flatten features -> output: 16 paths, 32 with multiplicity
    assert 10 ** log10_paths(g) == pytest.approx(16)
    assert 10 ** log10_paths(g, multiplicity=True) == pytest.approx(32)


def hand_mlp() -> tuple[nn.Module, gt.Ticket]:
    m = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 2), nn.ReLU(), nn.Linear(2, 1))
    w0 = torch.tensor([[1, 0], [1, 1], [0, 0]], dtype=torch.bool)  # hidden0: u0 <- x0; u1 <- x0,x1; u2 dead (no input)
    w1 = torch.tensor([[1, 0, 1], [0, 1, 0]], dtype=torch.bool)  # v0 <- u0,u2 ; v1 <- u1
    w2 = torch.tensor([[1, 0]], dtype=torch.bool)  # out <- v0 only: v1 has no output
    return m, gt.Ticket({"0.weight": w0, "2.weight": w1, "4.weight": w2})


def test_effective_density_and_dead_units_by_hand() -> None:
    m, t = hand_mlp()
    g = gt.graphs.layered_graph(m, t, input_shape=(2,))
    # effective: x0->u0, u0->v0, v0->out (3 of 7 live weights)
    assert effective_fraction(g) == pytest.approx(3 / 7)
    assert effective_density(t, m, input_shape=(2,)) == pytest.approx(3 / (6 + 6 + 2))
    d = dead_units(g)
    assert d["dead"] == 2  # u2 (no input), v1 (no output)
    assert d["inactive"] == 3  # plus u1 (its only output v1 is dead)
    assert d["dead_fraction"] == pytest.approx(2 / 5)
    assert collapsed_layers(g) == []


def test_collapsed_layers_agree_with_pruning_collapse() -> None:
    from graphtickets.pruning.collapse import collapsed_layers as prune_collapsed

    m = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1))
    t = gt.Ticket({"0.weight": torch.tensor([[True, True], [False, False]]), "2.weight": torch.tensor([[False, True]])})
    g = gt.graphs.layered_graph(m, t, input_shape=(2,))
    assert collapsed_layers(g) == prune_collapsed(m, t) == ["0.weight", "2.weight"]
    assert effective_fraction(g) == 0.0


def test_degree_statistics() -> None:
    G = nx.star_graph(4)  # centre degree 4, leaves 1
    s = degree_stats(from_networkx(G))
    assert s["degree_mean"] == pytest.approx(8 / 5) and s["degree_std"] == pytest.approx(np.std([4, 1, 1, 1, 1]))
    m, t = hand_mlp()
    table = layer_degree_stats(gt.graphs.layered_graph(m, t, input_shape=(2,))).set_index("layer")
    assert table.loc["input", "out_mean"] == pytest.approx(1.5)  # x0 -> 2, x1 -> 1
    assert table.iloc[1]["in_mean"] == pytest.approx(1.0)  # u0:1, u1:2, u2:0


# --------------------------------------------------------------------------- effective density oracle
def grad_oracle(model: nn.Module, ticket: gt.Ticket, shape: tuple[int, ...]) -> tuple[dict[str, int], dict[str, int]]:
    """Effective weights by autograd, independent of the graphs: weights := |mask| (>= 0), biases
    0, max-pooling -> average pooling, an all-ones input; with non-negative weights every
    pre-activation is >= 0 (ReLU passes it on) and d(sum of outputs)/dw is a sum over the
    input -> output paths through w of non-negative terms, so it is nonzero iff w lies on one."""
    import copy

    m = copy.deepcopy(model).eval()
    for mod in list(m.modules()):
        for cn, ch in list(mod.named_children()):
            if isinstance(ch, nn.MaxPool2d):
                setattr(mod, cn, nn.AvgPool2d(ch.kernel_size, ch.stride))
    params = dict(m.named_parameters())
    with torch.no_grad():
        for n, p in params.items():
            if n in ticket.masks:
                p.copy_(ticket.masks[n].float())
            elif n.endswith("bias"):
                p.zero_()
    m(torch.ones(1, *shape)).sum().backward()
    eff = {n: int((ticket.masks[n] & (params[n].grad != 0)).sum()) for n in ticket.masks}
    return eff, {n: params[n].numel() for n in ticket.masks}


def _random_ticket(model: nn.Module, density: float, seed: int) -> gt.Ticket:
    from graphtickets.ticket import prunable

    g = torch.Generator().manual_seed(seed)
    return gt.Ticket({n: torch.rand(p.shape, generator=g) < density for n, p in prunable(model).items()})


@pytest.mark.parametrize(("density", "seed"), [(0.05, 0), (0.1, 1), (0.2, 2), (0.5, 3)])
def test_effective_density_of_an_mlp_equals_the_gradient_oracle(density: float, seed: int) -> None:
    from graphtickets.analysis import metrics, ticket_metrics, weight_densities

    m = gt.models.build("mlp", in_shape=(8,), num_classes=3, widths=(16, 16, 16), seed=0)
    t = _random_ticket(m, density, seed)
    eff, numel = grad_oracle(m, t, (8,))
    oracle = sum(eff.values()) / sum(numel.values())
    assert effective_density(t, m) == pytest.approx(oracle, abs=1e-12)
    got = metrics(gt.graphs.layered_graph(m, t))  # Linear layer sizes are known to the graph
    assert got["effective_density"] == pytest.approx(oracle, abs=1e-12)
    assert got["weight_density"] == pytest.approx(sum(int(x.sum()) for x in t.masks.values()) / sum(numel.values()), abs=1e-12)
    assert ticket_metrics(t, m)["effective_density"] == pytest.approx(oracle, abs=1e-12)
    per = weight_densities(gt.graphs.layered_graph(m, t, weights=None))  # unweighted: Linear counts still known
    for n in t.masks:
        assert per[f"weight_density/{n}"] == pytest.approx(float(t.masks[n].double().mean()), abs=1e-12)
    if density <= 0.1:
        assert oracle < 0.9 * t.density  # the case is not trivial: many live weights are ineffective


def small_conv() -> nn.Module:
    """No padding, no pooling: every kernel entry of a live channel pair reads live pixels, so the
    channel-level judgement is exact here."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(2, 6, 3), nn.ReLU(), nn.Conv2d(6, 5, 3), nn.ReLU(), nn.Flatten(),
        nn.Linear(5 * 4 * 4, 8), nn.ReLU(), nn.Linear(8, 3),
    )  # fmt: skip


@pytest.mark.parametrize(("density", "seed"), [(0.08, 0), (0.15, 1), (0.3, 2)])
def test_effective_density_of_a_small_conv_net_equals_the_gradient_oracle(density: float, seed: int) -> None:
    from graphtickets.analysis import weight_counts, weight_densities

    m = small_conv()
    t = _random_ticket(m, density, seed)
    eff, numel = grad_oracle(m, t, (2, 8, 8))
    oracle = sum(eff.values()) / sum(numel.values())
    assert effective_density(t, m, input_shape=(2, 8, 8)) == pytest.approx(oracle, abs=1e-12)
    g = gt.graphs.layered_graph(m, t, weights="count", input_shape=(2, 8, 8))
    d = weight_densities(g)  # the graph records every layer's size (edge_params["numel"])
    assert d["effective_density"] == pytest.approx(oracle, abs=1e-12)
    assert d["weight_density"] == pytest.approx(sum(int(x.sum()) for x in t.masks.values()) / sum(numel.values()), abs=1e-12)
    c = weight_counts(g).set_index("param")
    for n in t.masks:
        assert c.loc[n, "effective"] == eff[n]
        assert d[f"weight_density/{n}"] == pytest.approx(float(t.masks[n].double().mean()), abs=1e-12)
    if density <= 0.08:
        assert oracle < 0.9 * t.density


def test_effective_density_with_padding_is_an_upper_bound_of_the_oracle() -> None:
    """conv2 (padding 1, max-pooling): a kernel entry can read only padding where its output
    still matters; channel level then counts it (documented), so ours >= oracle, close."""
    m = gt.models.build("conv2", in_shape=(3, 8, 8), num_classes=3, seed=0)
    for density in (0.005, 0.02):
        t = gt.pruning.prune(m, "random", density=density, seed=0)
        eff, numel = grad_oracle(m, t, (3, 8, 8))
        oracle = sum(eff.values()) / sum(numel.values())
        ours = effective_density(t, m)
        assert oracle <= ours + 1e-15 and ours - oracle <= 0.05 * ours
