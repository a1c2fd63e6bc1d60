"""The relational graph's chunked sparse construction against a naive dense oracle.

The oracle (written here, loops over groups) follows You et al.'s definition as the module
docstring states it: the block density of output group u x input group v is its live
fraction; a layer's weight on u - v is the mean of the two directed densities; "union" puts
1 where any layer has an edge, "mean" the mean over layers.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import graphtickets as gt
from graphtickets.graphs import relational as R


def _naive(masks: list[np.ndarray], n: int, aggregate: str) -> tuple[np.ndarray, list[np.ndarray]]:
    per = []
    for live in masks:
        out, inn = live.shape
        go, gi = np.array_split(np.arange(out), n), np.array_split(np.arange(inn), n)
        dens = np.zeros((n, n))
        for u in range(n):
            for v in range(n):
                dens[u, v] = live[np.ix_(go[u], gi[v])].mean()
        per.append((dens + dens.T) / 2)
    stack = np.stack(per)
    if aggregate == "union":
        return (stack > 0).any(0).astype(float), per
    return np.where((stack > 0).any(0), stack.mean(0), 0.0), per


@pytest.mark.parametrize("aggregate", ["union", "mean"])
@pytest.mark.parametrize("width,n", [(24, 24), (24, 7), (23, 23)])
def test_chunked_sparse_matches_naive(width: int, n: int, aggregate: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(R, "_ROWS_PER_CHUNK_ENTRIES", 3 * width + 5)  # several chunks, ragged last one
    model = nn.Sequential(nn.Linear(5, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(),
                          nn.Linear(width, width), nn.ReLU(), nn.Linear(width, 3))  # fmt: skip
    g = torch.Generator().manual_seed(width + n)
    masks = {name: torch.rand(p.shape, generator=g) < 0.15 for name, p in gt.prunable(model).items()}
    ticket = gt.Ticket(masks)
    graph = R.relational_graph(model, ticket, n_nodes=n, aggregate=aggregate)
    layers = ["2.weight", "4.weight"]
    want, per = _naive([masks[name].numpy() for name in layers], n, aggregate)
    a = graph.adjacency
    assert a.has_sorted_indices and a.dtype == np.float64
    np.testing.assert_allclose(a.toarray(), want, rtol=1e-12, atol=0)
    assert a.nnz == np.count_nonzero(want)  # no explicit zeros
    for name, ref in zip(layers, per, strict=True):
        np.testing.assert_allclose(graph.per_layer[name].toarray(), ref, rtol=1e-12, atol=0)
        assert graph.per_layer[name].nnz == np.count_nonzero(ref)
