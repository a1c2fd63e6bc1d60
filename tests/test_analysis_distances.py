"""Distances: contract over every DISTANCES entry, hand values, networkx GED as oracle."""

from __future__ import annotations

import itertools

import networkx as nx
import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import graphtickets as gt
from graphtickets.analysis import (
    DISTANCES,
    align_units,
    distance,
    distance_details,
    from_networkx,
    ged_bounds,
)
from graphtickets.analysis import distances as D
from graphtickets.errors import GraphticketsError, TicketError
from graphtickets.graphs.base import Graph, from_edges


@pytest.fixture(scope="module")
def setup() -> tuple[nn.Module, list[gt.Ticket]]:
    m = gt.models.build("mlp", in_shape=(8,), num_classes=3, widths=(16, 16, 16), seed=0)
    ts = [gt.pruning.prune(m, "random", density=d, seed=s) for s, d in enumerate([0.2, 0.25])]
    ts.append(gt.pruning.prune(m, "magnitude", density=0.3, seed=0))
    return m, ts


def kernel_shuffled(a: gt.Ticket, seed: int) -> gt.Ticket:
    """``a`` with the live entries of every conv kernel moved to other positions of that kernel
    (the channel-level structure, and every count, unchanged)."""
    g = torch.Generator().manual_seed(seed)
    masks = {}
    for n, mk in a.masks.items():
        if mk.dim() == 4:
            o, i, kh, kw = mk.shape
            perm = torch.stack([torch.randperm(kh * kw, generator=g) for _ in range(o * i)]).reshape(o, i, -1)
            masks[n] = torch.gather(mk.reshape(o, i, -1), 2, perm).reshape(mk.shape)
        else:
            masks[n] = mk.clone()
    return a.replace(masks)


@pytest.fixture(scope="module")
def conv_setup() -> tuple[nn.Module, list[gt.Ticket], gt.Ticket]:
    """conv2 tickets that differ in channel-level structure, and a kernel-position shuffle of the
    first. Sparse enough that the relational graph (64 nodes, union of 64-weight blocks of the
    fc layers) is not complete -- at density 0.05 it is K64 for every ticket -- and with other
    layer densities (random pruning keeps each layer's density, so one density gives one
    profile)."""
    m = gt.models.build("conv2", in_shape=(3, 8, 8), num_classes=3, seed=0)
    ts = [gt.pruning.prune(m, "random", density=d, seed=s) for s, d in ((0, 0.005), (1, 0.008))]
    ts.append(gt.pruning.prune(m, "magnitude", density=0.01, seed=0))
    assert all(gt.graphs.relational_graph(m, t).simple().n_edges < 64 * 63 // 2 for t in ts)
    return m, ts, kernel_shuffled(ts[0], 1)


def check_contract(kind: str, xs: list, m: nn.Module | None, data: list | None = None, *, strict: bool = True) -> None:
    for a in xs:
        assert distance(a, a, kind, model=m, data=data) == pytest.approx(0.0, abs=1e-12)
    for a, b in itertools.combinations(xs, 2):
        d = distance(a, b, kind, model=m, data=data)
        assert d > 0 if strict else d >= 0, kind
        assert distance(b, a, kind, model=m, data=data) == pytest.approx(d, rel=1e-12, abs=1e-12)


def _trained(model: nn.Module, tickets: list[gt.Ticket], in_shape: tuple[int, ...], n: int, epochs: int, lr: float = 1e-2
             ) -> tuple[list[gt.Ticket], list]:
    """The tickets with trained weights (Adam on a synthetic 3-class task), and two test batches."""
    g = torch.Generator().manual_seed(0)
    w = torch.randn(int(np.prod(in_shape)), 3, generator=g)
    x = torch.randn(n + 128, *in_shape, generator=g)
    y = (x.reshape(len(x), -1) @ w).argmax(dim=1)
    train = [(x[i : i + 64], y[i : i + 64]) for i in range(0, n, 64)]
    out = []
    for i, t in enumerate(tickets):
        net = gt.models.build_from_spec(t.config["model"])
        t.apply(net)
        gt.training.train(net, train, masks=t, epochs=epochs, optimizer="adam", lr=lr, seed=i)
        out.append(gt.analysis.with_trained_weights(t, net))
    data = [(x[n : n + 64], y[n : n + 64]), (x[n + 64 :], y[n + 64 :])]
    assert all(len(set(gt.analysis.profile(t, model, data).predictions.tolist())) > 1 for t in out)  # they learned
    return out, data


@pytest.fixture(scope="module")
def trained_setup(setup: tuple[nn.Module, list[gt.Ticket]]) -> tuple[nn.Module, list[gt.Ticket], list]:
    m, ts = setup
    return (m, *_trained(m, ts, (8,), 1024, 10))


@pytest.fixture(scope="module")
def trained_conv_setup() -> tuple[nn.Module, list[gt.Ticket], gt.Ticket, list]:
    """Trained conv2 tickets (denser than conv_setup's, so that they learn), and the first with
    its live entries moved within kernels (its trained weights kept: another network)."""
    m = gt.models.build("conv2", in_shape=(3, 8, 8), num_classes=3, seed=0)
    ts = [gt.pruning.prune(m, "random", density=d, seed=s) for s, d in ((0, 0.3), (1, 0.5))]
    ts.append(gt.pruning.prune(m, "magnitude", density=0.4, seed=0))
    trained, data = _trained(m, ts, (3, 8, 8), 512, 8, lr=1e-3)
    moved = kernel_shuffled(trained[0], 1)
    return m, trained, gt.Ticket(moved.masks, config=trained[0].config, weights=trained[0].weights), data


@pytest.mark.parametrize("kind", sorted(DISTANCES))
def test_distance_contract(kind: str, request: pytest.FixtureRequest) -> None:
    if DISTANCES[kind].needs_data:  # the function family: trained tickets on test batches
        m, ts, data = request.getfixturevalue("trained_setup")
        check_contract(kind, ts, m, data)
    else:
        m, ts = request.getfixturevalue("setup")
        check_contract(kind, ts, m)


@pytest.mark.parametrize("kind", sorted(k for k, s in DISTANCES.items() if s.family == "structure"))
def test_distance_contract_on_effective_masks(kind: str, setup: tuple[nn.Module, list[gt.Ticket]]) -> None:
    m, ts = setup
    for a in ts:
        assert distance(a, a, kind, model=m, effective=True) == pytest.approx(0.0, abs=1e-12)
    for a, b in itertools.combinations(ts, 2):
        d = distance(a, b, kind, model=m, effective=True)
        assert d >= 0 and distance(b, a, kind, model=m, effective=True) == pytest.approx(d, rel=1e-12, abs=1e-12)
        ea, eb = (gt.analysis.effective_ticket(t, m) for t in (a, b))
        assert d == pytest.approx(distance(ea, eb, kind, model=m), abs=1e-12)


@pytest.mark.parametrize("kind", sorted(DISTANCES))
def test_distance_contract_on_conv_tickets(kind: str, request: pytest.FixtureRequest) -> None:
    data = None
    if DISTANCES[kind].needs_data:
        m, ts, shuffled, data = request.getfixturevalue("trained_conv_setup")
    else:
        m, ts, shuffled = request.getfixturevalue("conv_setup")
    check_contract(kind, ts, m, data)
    # the documented blind spot: only positions inside kernels differ
    assert any((ts[0].masks[n] ^ shuffled.masks[n]).any() for n in ts[0].masks)
    d = distance(ts[0], shuffled, kind, model=m, data=data)
    assert distance(shuffled, ts[0], kind, model=m, data=data) == pytest.approx(d, rel=1e-12, abs=1e-12)
    if DISTANCES[kind].kernel_blind:
        assert d == pytest.approx(0.0, abs=1e-12), f"{kind} is documented kernel-blind"
    else:
        assert d > 0, f"{kind} must see kernel positions"


#: graph kinds each distance accepts (every other one must be refused with an explanation)
GRAPH_INPUTS = {k: ("layered", "layered_count", "relational") for k in DISTANCES}
GRAPH_INPUTS["layer_density"] = ("layered", "layered_count")
GRAPH_INPUTS.update({k: () for k, s in DISTANCES.items() if s.family == "function"})  # trained tickets only


def test_graph_inputs_table_covers_every_distance() -> None:
    assert set(GRAPH_INPUTS) == set(DISTANCES)


@pytest.mark.parametrize("kind", sorted(DISTANCES))
def test_distance_contract_on_graphs(kind: str, setup: tuple[nn.Module, list[gt.Ticket]]) -> None:
    m, ts = setup
    built = {
        "layered": [gt.graphs.layered_graph(m, t, weights=None) for t in ts],
        "layered_count": [gt.graphs.layered_graph(m, t, weights="count") for t in ts],
        "relational": [gt.graphs.relational_graph(m, t).simple() for t in ts],
    }
    for gkind, gs in built.items():
        if gkind in GRAPH_INPUTS[kind]:
            check_contract(kind, gs, None)
        else:
            with pytest.raises(GraphticketsError):
                distance(gs[0], gs[1], kind)


def test_graph_distances_of_tickets_equal_those_of_their_graphs(setup: tuple[nn.Module, list[gt.Ticket]]) -> None:
    m, ts = setup
    a, b = ts[0], ts[2]
    lg = [gt.graphs.layered_graph(m, t, weights=None) for t in (a, b)]
    rg = [gt.graphs.relational_graph(m, t).simple() for t in (a, b)]
    for kind in ("ged_approx", "degree"):
        assert distance(a, b, kind, model=m) == pytest.approx(distance(*lg, kind), abs=1e-12)
    for kind in ("spectral", "netlsd"):
        assert distance(a, b, kind, model=m) == pytest.approx(distance(*rg, kind), abs=1e-12)


def test_hand_values() -> None:
    a = gt.Ticket({"w": torch.tensor([[1, 1, 0, 0]], dtype=torch.bool), "v": torch.tensor([True, False])})
    b = gt.Ticket({"w": torch.tensor([[1, 0, 1, 0]], dtype=torch.bool), "v": torch.tensor([True, True])})
    assert distance(a, b, "jaccard") == pytest.approx(1 - 2 / 5)
    assert distance(a, b, "hamming") == pytest.approx(3 / 6)
    assert distance(a, b, "layer_density") == pytest.approx(0 + 0.5)
    assert distance(a, b, "ged") == 3 and distance(a, b, "ged_normalized") == pytest.approx(3 / 7)


def test_mismatched_tickets_and_missing_model_raise(setup: tuple[nn.Module, list[gt.Ticket]]) -> None:
    _, ts = setup
    other = gt.Ticket({"x": torch.ones(2, dtype=torch.bool)})
    with pytest.raises(TicketError, match="different parameters"):
        distance(ts[0], other, "jaccard")
    with pytest.raises(GraphticketsError, match="model="):
        distance(ts[0], ts[1], "spectral")
    with pytest.raises(GraphticketsError, match="known distances"):
        distance(ts[0], ts[1], "jacard")


def test_ged_from_masks_equals_ged_of_layered_graphs() -> None:
    m = gt.models.build("conv2", in_shape=(3, 8, 8), num_classes=3, seed=0)
    a = gt.pruning.prune(m, "random", density=0.05, seed=0)
    b = gt.pruning.prune(m, "magnitude", density=0.05, seed=0)
    ga, gb = (gt.graphs.layered_graph(m, t, weights="count") for t in (a, b))
    for weighted in (True, False):
        via_masks = distance(a, b, "ged", weighted=weighted)
        if weighted:
            oracle = float(np.abs((ga.adjacency - gb.adjacency).toarray()).sum())
        else:
            xa, xb = (g.adjacency.toarray() != 0 for g in (ga, gb))
            oracle = float((xa ^ xb).sum())
        assert via_masks == oracle
        assert distance(ga, gb, "ged", weighted=weighted) == oracle
    assert distance(ga, gb, "jaccard") == pytest.approx(
        1 - ((ga.adjacency != 0).multiply(gb.adjacency != 0)).sum() / ((ga.adjacency + gb.adjacency) != 0).sum()
    )


def test_distance_details_expectation_and_z() -> None:
    g = torch.Generator().manual_seed(0)
    shape = (40, 50)
    a = gt.Ticket({"w": torch.rand(shape, generator=g) < 0.3})
    b = gt.Ticket({"w": torch.rand(shape, generator=g) < 0.2})
    det = distance_details(a, b).set_index("layer")
    # Monte Carlo over independent random masks with the same counts (the oracle)
    ka, kb, n = int(a.masks["w"].sum()), int(b.masks["w"].sum()), 2000
    rng = np.random.default_rng(0)
    js, hs = [], []
    for _ in range(2000):
        x = np.zeros(n, bool)
        x[rng.choice(n, ka, replace=False)] = True
        y = np.zeros(n, bool)
        y[rng.choice(n, kb, replace=False)] = True
        inter = (x & y).sum()
        js.append(1 - inter / (ka + kb - inter))
        hs.append((ka + kb - 2 * inter) / n)
    assert det.loc["w", "expected_jaccard"] == pytest.approx(np.mean(js), abs=3 * np.std(js) / np.sqrt(2000) + 1e-4)
    assert det.loc["w", "expected_hamming"] == pytest.approx(np.mean(hs), abs=3 * np.std(hs) / np.sqrt(2000) + 1e-4)
    assert abs(det.loc["w", "overlap_z"]) < 4  # independent masks
    assert det.loc["w", "jaccard"] == pytest.approx(distance(a, b, "jaccard"))
    same = distance_details(a, a).set_index("layer")
    assert same.loc["total", "overlap_z"] > 10 and same.loc["total", "jaccard"] == 0


def layered(sizes: list[int], edges: list[tuple[int, int]]) -> Graph:
    n = sum(sizes)
    layer = np.repeat([f"L{i}" for i in range(len(sizes))], sizes)
    role = np.where(layer == "L0", "input", np.where(layer == f"L{len(sizes) - 1}", "output", "hidden"))
    unit = np.concatenate([np.arange(s) for s in sizes])
    e = np.array(edges, dtype=np.int64).reshape(-1, 2)
    return Graph(from_edges(n, e[:, 0], e[:, 1]), pd.DataFrame({"layer": layer, "unit": unit, "role": role}), directed=True)


def nx_ged(a: Graph, b: Graph) -> float:
    """networkx's exact GED restricted to layer-preserving matches (inputs/outputs fixed)."""
    ga, gb = a.to_networkx(), b.to_networkx()

    def subst(x: dict, y: dict) -> float:
        if x["layer"] != y["layer"]:
            return 1e6
        if x["role"] != "hidden" and x["unit"] != y["unit"]:
            return 1e6
        return 0.0

    return float(nx.graph_edit_distance(ga, gb, node_subst_cost=subst, node_del_cost=lambda x: 1e6, node_ins_cost=lambda x: 1e6, timeout=20))


def random_layered(rng: np.random.Generator, sizes: list[int], p: float) -> Graph:
    starts = np.cumsum([0] + sizes)
    edges = []
    for i in range(len(sizes) - 1):
        for u in range(starts[i], starts[i + 1]):
            for v in range(starts[i + 1], starts[i + 2]):
                if rng.random() < p:
                    edges.append((u, v))
    return layered(sizes, edges)


@pytest.mark.parametrize("seed", range(4))
def test_ged_bounds_bracket_networkx_exact_ged(seed: int) -> None:
    rng = np.random.default_rng(seed)
    sizes = [2, 3, 2]  # 7 nodes: networkx's exact GED stays fast
    a, b = random_layered(rng, sizes, 0.5), random_layered(rng, sizes, 0.5)
    exact = nx_ged(a, b)
    r = ged_bounds(a, b)
    assert r["lower"] - 1e-9 <= exact <= r["upper"] + 1e-9
    assert r["upper"] <= r["identity"]


@pytest.mark.parametrize(("a_edges", "b_edges", "lower", "exact"), [
    # 2-2-2 layers (inputs 0, 1; hidden 2, 3; outputs 4, 5). Degrees (out, in), A / B:
    # inputs 0: (1,0)/(1,0), 1: (1,0)/(0,0) -> 1; outputs 4: (0,2)/(0,1), 5: (0,1)/(0,0) -> 2;
    # hidden A2 (2,2), A3 (1,0) vs B2 (1,1), B3 (0,0): costs [[2, 4], [1, 1]], best 2 + 1 = 3.
    # lower = (1 + 2 + 3) / 2 = 3; B is A minus 3 edges, so the exact GED is 3 too.
    ([(0, 2), (1, 2), (2, 4), (2, 5), (3, 4)], [(0, 2), (2, 4)], 3.0, 3.0),
    # inputs 0: (1,0)/(2,0), 1: (1,0)/(0,0) -> 2; outputs 4: (0,1)/(0,2), 5: (0,1)/(0,0) -> 2;
    # hidden all (1,1): 0. lower = 4 / 2 = 2; B is symmetric in 2 <-> 3, so every mapping costs 4.
    ([(0, 2), (1, 3), (2, 4), (3, 5)], [(0, 2), (0, 3), (2, 4), (3, 4)], 2.0, 4.0),
])
def test_ged_lower_bound_by_hand(a_edges: list, b_edges: list, lower: float, exact: float) -> None:
    a, b = layered([2, 2, 2], a_edges), layered([2, 2, 2], b_edges)
    r = ged_bounds(a, b)
    assert r["lower"] == lower and r["upper"] == exact and nx_ged(a, b) == exact


def test_ged_approx_is_zero_for_a_permuted_copy() -> None:
    rng = np.random.default_rng(3)
    sizes = [3, 6, 6, 2]
    a = random_layered(rng, sizes, 0.5)
    p = np.arange(sum(sizes))
    p[3:9] = 3 + rng.permutation(6)
    p[9:15] = 9 + rng.permutation(6)
    b = Graph(a.adjacency[p][:, p], a.nodes.copy(), directed=True)
    r = ged_bounds(a, b)
    assert r["identity"] > 0 and r["upper"] == 0 and r["lower"] == 0
    assert distance(a, b, "ged_approx") == 0 and distance(a, b, "aligned_jaccard") == 0


def test_aligned_jaccard_recovers_a_unit_permutation() -> None:
    m = gt.models.build("mlp", in_shape=(8,), num_classes=3, widths=(16, 12), seed=0)
    a = gt.pruning.prune(m, "random", density=0.3, seed=0)
    rng = np.random.default_rng(0)
    p1, p2 = torch.from_numpy(rng.permutation(16)), torch.from_numpy(rng.permutation(12))
    masks = dict(a.masks)
    masks["fc1.weight"] = masks["fc1.weight"][p1]
    masks["fc2.weight"] = masks["fc2.weight"][p2][:, p1]
    masks["classifier.weight"] = masks["classifier.weight"][:, p2]
    b = a.replace(masks)
    assert distance(a, b, "jaccard") > 0.3
    assert distance(a, b, "aligned_jaccard") == 0.0
    perms = align_units(a, b)
    assert np.array_equal(a.masks["fc1.weight"].numpy(), b.masks["fc1.weight"][perms["fc1.weight"]].numpy())


def netlsd_oracle(G: nx.Graph, normalization: str | None) -> np.ndarray:
    """NetLSD (Tsitsulin et al. 2018) from scratch: eigvalsh of networkx's normalized Laplacian,
    h(t) = sum_j exp(-t lambda_j) at 250 timescales over logspace(-2, 2); 'empty' divides by
    n, 'complete' by 1 + (n - 1) exp(-t) (the paper's and the netlsd package's definition)."""
    lam = np.linalg.eigvalsh(nx.normalized_laplacian_matrix(G).toarray())
    t = np.logspace(-2, 2, 250)
    h = np.exp(-np.outer(t, lam)).sum(axis=1)
    n = G.number_of_nodes()
    return {"empty": h / n, "complete": h / (1 + (n - 1) * np.exp(-t)), None: h}[normalization]


@pytest.mark.parametrize("normalization", ["empty", "complete", None])
def test_netlsd_exact_signature_equals_an_independent_computation(normalization: str | None) -> None:
    G = nx.connected_watts_strogatz_graph(300, 8, 0.2, seed=0)
    G.add_nodes_from([300, 301])  # isolated nodes: zero rows of the Laplacian
    assert D.NETLSD_TIMESCALES.shape == (250,) and np.allclose(D.NETLSD_TIMESCALES, np.logspace(-2, 2, 250))
    ours = D.heat_trace(from_networkx(G), normalization=normalization)
    assert np.allclose(ours, netlsd_oracle(G, normalization), rtol=1e-10, atol=1e-12)


def test_netlsd_matches_the_reference_package_when_installed() -> None:
    netlsd = pytest.importorskip("netlsd")
    G = nx.connected_watts_strogatz_graph(200, 6, 0.3, seed=1)
    for norm in ("empty", "complete"):
        assert np.allclose(D.heat_trace(from_networkx(G), normalization=norm), netlsd.heat(G, normalization=norm), atol=1e-12)


def test_netlsd_interpolated_spectrum_against_exact_at_1500_nodes() -> None:
    """Beyond 1024 nodes: 150 eigenvalues from each end by eigsh, the middle interpolated. Stated
    tolerance (measured 0.0445 / 1.2e-3 / 5.8e-8 on this graph): max |error| < 0.05 overall,
    < 2e-3 for t <= 0.012, < 1e-6 for t >= 30 (the exact low end dominates)."""
    G = nx.connected_watts_strogatz_graph(1500, 8, 0.2, seed=0)
    exact = netlsd_oracle(G, "empty")
    approx = D.heat_trace(from_networkx(G))
    err = np.abs(approx - exact)
    t = D.NETLSD_TIMESCALES
    assert err.max() < 0.05
    assert err[t <= 0.012].max() < 2e-3
    assert err[t >= 30].max() < 1e-6


def test_spectral_and_degree_on_graphs() -> None:
    a = from_networkx(nx.cycle_graph(10))
    b = from_networkx(nx.path_graph(10))
    la = np.sort(np.linalg.eigvalsh(nx.normalized_laplacian_matrix(nx.cycle_graph(10)).toarray()))
    lb = np.sort(np.linalg.eigvalsh(nx.normalized_laplacian_matrix(nx.path_graph(10)).toarray()))
    assert distance(a, b, "spectral") == pytest.approx(np.linalg.norm(la - lb), abs=1e-9)
    assert distance(a, b, "degree") == pytest.approx(2 / 10)  # two degree-2 nodes become degree 1


# --------------------------------------------------------------------------- aligned jaccard
def _random_chain(seed: int, shapes: list[tuple[int, ...]], densities: list[float]) -> gt.Ticket:
    g = torch.Generator().manual_seed(seed)
    return gt.Ticket({f"l{i}": torch.rand(s, generator=g) < d for i, (s, d) in enumerate(zip(shapes, densities, strict=True))})


MLP_SHAPES = [(6, 5), (7, 6), (3, 7)]
CONV_SHAPES = [(4, 2, 3, 3), (5, 4, 3, 3), (6, 5 * 4), (3, 6)]  # conv, conv, flatten (2x2) -> fc, fc


@settings(max_examples=25, deadline=None)
@given(
    shapes=st.sampled_from([MLP_SHAPES, CONV_SHAPES]),
    seeds=st.tuples(st.integers(0, 10**6), st.integers(0, 10**6)),
    dens=st.lists(st.floats(0.05, 0.95), min_size=8, max_size=8),
)
def test_aligned_jaccard_never_exceeds_jaccard(shapes: list[tuple[int, ...]], seeds: tuple[int, int], dens: list[float]) -> None:
    a = _random_chain(seeds[0], shapes, dens[: len(shapes)])
    b = _random_chain(seeds[1], shapes, dens[4 : 4 + len(shapes)])
    aj, j = distance(a, b, "aligned_jaccard"), distance(a, b, "jaccard")
    assert 0.0 <= aj <= j + 1e-12
    assert distance(b, a, "aligned_jaccard") == pytest.approx(aj, abs=1e-12)
    assert distance(a, a, "aligned_jaccard") == 0.0


def test_aligned_jaccard_of_conv_tickets_differing_in_kernel_positions() -> None:
    """The auditor's case: only positions inside kernels differ, so no channel permutation helps;
    the identity (jaccard 0.139) must not be lost (it was 0.834 before the identity start)."""
    m = gt.models.build("conv2", in_shape=(3, 8, 8), num_classes=3, seed=0)
    a = gt.pruning.prune(m, "random", density=0.2, seed=0)
    b = kernel_shuffled(a, seed=1)
    j = distance(a, b, "jaccard")
    assert 0.1 < j < 0.2
    assert distance(a, b, "aligned_jaccard") <= j


def _permuted_conv_ticket(a: gt.Ticket, rng: np.random.Generator) -> gt.Ticket:
    """``a`` with the hidden channels/units of every layer permuted consistently (same network)."""
    names = list(a.masks)
    masks = {n: a.masks[n].clone() for n in names}
    prev: torch.Tensor | None = None
    for k, n in enumerate(names):
        m = masks[n]
        if prev is not None:
            r = m.shape[1] // prev.numel()
            idx = (prev[:, None] * r + torch.arange(r)[None, :]).reshape(-1) if r > 1 else prev
            m = m[:, idx]
        if k < len(names) - 1:
            p = torch.from_numpy(rng.permutation(m.shape[0]))
            m, prev = m[p], p
        masks[n] = m
    return a.replace(masks)


def test_aligned_jaccard_recovers_a_channel_permutation_through_flatten() -> None:
    m = gt.models.build("conv2", in_shape=(3, 8, 8), num_classes=3, seed=0)  # conv, conv, pool, flatten (4x4), fc, fc, fc
    a = gt.pruning.prune(m, "magnitude", density=0.3, seed=0)
    b = _permuted_conv_ticket(a, np.random.default_rng(0))
    assert b.masks["fc.0.weight"].sum() == a.masks["fc.0.weight"].sum()
    assert distance(a, b, "jaccard") > 0.5
    assert distance(a, b, "aligned_jaccard") == pytest.approx(0.0, abs=1e-12)
    perms = align_units(a, b)
    assert torch.equal(a.masks["features.0.weight"], b.masks["features.0.weight"][torch.from_numpy(perms["features.0.weight"])])


@pytest.mark.parametrize("seed", range(3))
def test_aligned_jaccard_is_exact_for_one_hidden_layer(seed: int) -> None:
    """Brute force over all 5! permutations of the one hidden layer is the oracle."""
    g = torch.Generator().manual_seed(seed)
    a = gt.Ticket({"h": torch.rand(5, 4, generator=g) < 0.5, "o": torch.rand(3, 5, generator=g) < 0.5})
    b = gt.Ticket({"h": torch.rand(5, 4, generator=g) < 0.5, "o": torch.rand(3, 5, generator=g) < 0.5})
    total = sum(int(a.masks[n].sum() + b.masks[n].sum()) for n in a.masks)
    best = 1.0
    for p in itertools.permutations(range(5)):
        pt = torch.tensor(p)
        inter = int((a.masks["h"] & b.masks["h"][pt]).sum() + (a.masks["o"] & b.masks["o"][:, pt]).sum())
        best = min(best, 1 - inter / (total - inter))
    assert distance(a, b, "aligned_jaccard") == pytest.approx(best, abs=1e-12)


# --------------------------------------------------------------------------- hypothesis invariants
@settings(max_examples=40, deadline=None)
@given(
    shape=st.sampled_from([(7,), (4, 5), (3, 2, 3, 3)]),
    seeds=st.tuples(st.integers(0, 10**6), st.integers(0, 10**6)),
    da=st.floats(0.0, 1.0),
    db=st.floats(0.0, 1.0),
)
def test_overlap_distances_invariants(shape: tuple[int, ...], seeds: tuple[int, int], da: float, db: float) -> None:
    ga, gb = torch.Generator().manual_seed(seeds[0]), torch.Generator().manual_seed(seeds[1])
    x, y = torch.rand(shape, generator=ga) < da, torch.rand(shape, generator=gb) < db
    x.view(-1)[seeds[0] % x.numel()] = True  # a ticket keeps at least one weight
    y.view(-1)[seeds[1] % y.numel()] = True
    a, b = gt.Ticket({"w": x}), gt.Ticket({"w": y})
    x, y = a.masks["w"], b.masks["w"]
    j, h = distance(a, b, "jaccard"), distance(a, b, "hamming")
    assert 0.0 <= j <= 1.0 and 0.0 <= h <= 1.0
    assert distance(b, a, "jaccard") == j and distance(b, a, "hamming") == h
    assert h == pytest.approx(float((x ^ y).sum()) / x.numel(), abs=1e-12)
    union = float((x | y).sum())
    assert j == pytest.approx(1 - float((x & y).sum()) / union if union else 0.0, abs=1e-12)
    assert (j == 0) == torch.equal(x, y)
    if len(shape) <= 2:  # Linear: the identity-aligned GED is the xor count
        assert distance(a, b, "ged") == float((x ^ y).sum())
        assert 0.0 <= distance(a, b, "ged_normalized") <= 1.0


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 10**6), sizes=st.sampled_from([[2, 2, 2], [2, 3, 2], [1, 3, 3]]), p=st.floats(0.2, 0.8))
def test_ged_bounds_bracket_exact_ged_hypothesis(seed: int, sizes: list[int], p: float) -> None:
    rng = np.random.default_rng(seed)
    a, b = random_layered(rng, sizes, p), random_layered(rng, sizes, p)
    exact = nx_ged(a, b)
    r = ged_bounds(a, b)
    assert r["lower"] >= -1e-9 and r["lower"] - 1e-9 <= exact <= r["upper"] + 1e-9 <= r["identity"] + 2e-9
    assert distance(a, b, "ged_approx") == pytest.approx(distance(b, a, "ged_approx"))
    assert distance(a, b, "ged_approx") <= distance(a, b, "ged", weighted=False)


# --------------------------------------------------------------------------- test families
@pytest.mark.parametrize("kind", sorted(DISTANCES))
def test_every_distance_declares_its_question(kind: str) -> None:
    spec = DISTANCES[kind]
    assert spec.question in gt.analysis.QUESTIONS, f"register {kind!r} with question=<one of QUESTIONS>"
    reps = [k for k, s in DISTANCES.items() if s.question == spec.question and s.representative]
    assert len(reps) == 1, f"question {spec.question!r} needs exactly one representative kind, has {reps}"
    assert DISTANCES[reps[0]].family == spec.family  # a question never mixes structure and function


def test_one_statistic_counted_once_mask_overlap_kinds_give_the_same_exceedances() -> None:
    # Under the layer shuffle the layer counts are fixed, so hamming, ged and ged_normalized are
    # affine in the overlap |A & B| and jaccard is monotone in it: identical z (the first three)
    # and identical exceedance counts (all four) -- one question, one test.
    m = gt.models.build("mlp", in_shape=(12,), num_classes=3, widths=(16,), seed=0)
    ts = {f"r{s}": gt.pruning.prune(m, "random", density=0.3, seed=s) for s in range(3)}
    t = gt.analysis.compare(ts, m, kinds=["jaccard", "hamming", "ged", "ged_normalized"], null_samples=15, seed=1)
    z = t.pivot_table(index=["a", "b"], columns="kind", values="z")
    n = t.pivot_table(index=["a", "b"], columns="kind", values="n_closer")
    assert np.allclose(z["hamming"], z["ged"], atol=1e-9) and np.allclose(z["hamming"], z["ged_normalized"], atol=1e-9)
    assert (n.nunique(axis=1) == 1).all()
    assert gt.analysis.question_representatives(["hamming", "ged", "spectral"]) == {
        "hamming": "jaccard", "ged": "jaccard", "spectral": "spectral"}
