"""Laplacian spectra, algebraic connectivity, spectral gap and Ramanujan gaps."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp

import graphtickets as gt
from graphtickets.analysis import (
    algebraic_connectivity,
    from_networkx,
    laplacian_spectrum,
    ramanujan,
    ramanujan_layers,
    spectral_gap,
)
from graphtickets.analysis import spectral as S


def test_normalized_spectrum_equals_networkx_with_isolated_node() -> None:
    G = nx.gnp_random_graph(40, 0.12, seed=1)
    G.add_node(40)
    ref = np.linalg.eigvalsh(nx.normalized_laplacian_matrix(G, nodelist=range(41)).toarray())
    assert np.allclose(laplacian_spectrum(from_networkx(G)), np.clip(np.sort(ref), 0, None), atol=1e-10)
    ref = np.linalg.eigvalsh(nx.laplacian_matrix(G, nodelist=range(41)).toarray().astype(float))
    assert np.allclose(laplacian_spectrum(from_networkx(G), normalized=False), np.clip(ref, 0, None), atol=1e-9)


def test_algebraic_connectivity_and_gap_equal_networkx() -> None:
    G = nx.connected_watts_strogatz_graph(80, 4, 0.2, seed=0)
    g = from_networkx(G)
    assert algebraic_connectivity(g) == pytest.approx(nx.algebraic_connectivity(G, tol=1e-12, method="lanczos"), abs=1e-8)
    assert spectral_gap(g) == pytest.approx(nx.algebraic_connectivity(G, normalized=True, tol=1e-12, method="lanczos"), abs=1e-8)
    assert algebraic_connectivity(from_networkx(nx.disjoint_union(G, G))) == pytest.approx(0, abs=1e-9)
    # path P4: 2 - sqrt(2)
    assert algebraic_connectivity(from_networkx(nx.path_graph(4))) == pytest.approx(2 - np.sqrt(2))


def test_sparse_path_equals_dense(monkeypatch: pytest.MonkeyPatch) -> None:
    G = nx.connected_watts_strogatz_graph(300, 6, 0.3, seed=2)
    g = from_networkx(G)
    dense = (algebraic_connectivity(g), spectral_gap(g), laplacian_spectrum(g)[:5])
    monkeypatch.setattr(S, "DENSE_MAX_NODES", 100)
    assert algebraic_connectivity(g) == pytest.approx(dense[0], abs=1e-7)
    assert spectral_gap(g) == pytest.approx(dense[1], abs=1e-7)
    assert np.allclose(laplacian_spectrum(g, k=5), dense[2], atol=1e-7)
    b = sp.random(300, 200, density=0.05, random_state=1, format="csr")
    with monkeypatch.context() as mp:
        mp.setattr(S, "DENSE_MAX_NODES", 10_000)
        ref = ramanujan(b)
    r = ramanujan(b)
    for k in ("mu0", "mu_hat", "weighted_gap"):
        assert r[k] == pytest.approx(ref[k], rel=1e-6)


def test_ramanujan_of_complete_and_regular_bipartite_graphs() -> None:
    r = ramanujan(np.ones((3, 5)))  # K_{3,5}: spectrum +-sqrt(15), zeros
    assert r["mu0"] == pytest.approx(np.sqrt(15)) and r["mu_hat"] == pytest.approx(0.0, abs=1e-9)
    assert r["delta_s"] == pytest.approx(2 * np.sqrt(np.sqrt(15) - 1))
    assert r["delta_r"] == pytest.approx(np.sqrt(5 - 1) + np.sqrt(3 - 1))
    # 2-regular bipartite graph = cycle C_8 (as biadjacency 4x4): eigenvalues 2cos(2 pi k / 8)
    b = np.eye(4) + np.roll(np.eye(4), 1, axis=1)
    r = ramanujan(b)
    assert r["mu0"] == pytest.approx(2) and r["mu_hat"] == pytest.approx(np.sqrt(2))
    assert r["disconnected"] == 0


def test_ramanujan_removes_isolated_nodes_and_flags_disconnected_layers() -> None:
    b = np.zeros((6, 6))
    b[:2, :2] = 1  # K_{2,2}
    b[3, 4] = 1  # one separate edge; rows 2, 4, 5 and columns 2, 3, 5 are isolated
    r = ramanujan(b)
    assert r["n_left"] == 3 and r["n_right"] == 3
    assert r["components"] == 2 and r["disconnected"] == 1
    assert r["mu0"] == pytest.approx(2) and r["mu_hat"] == pytest.approx(1)  # the other component's top


def test_ramanujan_layers_of_a_ticket() -> None:
    m = gt.models.build("mlp", in_shape=(8,), num_classes=3, widths=(16, 16), seed=0)
    t = gt.pruning.prune(m, "random", density=0.3, seed=0)
    table = ramanujan_layers(m, t)
    assert list(table["layer"]) == list(t.masks)
    assert np.all(np.isfinite(table[["mu0", "mu_hat", "delta_r", "weighted_gap"]].to_numpy()))
    w = m.fc1.weight.detach().abs().numpy() * t.masks["fc1.weight"].numpy()
    assert table.iloc[0]["weighted_mu0"] == pytest.approx(np.linalg.svd(w, compute_uv=False)[0])
