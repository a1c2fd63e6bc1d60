"""Effective masks against a reachability computed by hand (MLP and conv2), effective=True in
distance() and compare(), collapsed tickets."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import graphtickets as gt
from graphtickets.analysis import (
    compare,
    distance,
    effective_density,
    effective_masks,
    effective_ticket,
)
from graphtickets.errors import GraphticketsError


def chain_oracle(masks: list[torch.Tensor], repeats: list[int]) -> list[np.ndarray]:
    """Effective masks of a chain of layers by forward/backward reachability over units.

    ``masks[l]`` is ``(out, in, *kernel)``; layer ``l + 1``'s inputs are layer ``l``'s outputs,
    each repeated ``repeats[l]`` times (a flatten). A weight is effective when its input unit is
    reachable from the inputs and its output unit reaches the outputs.
    """
    adj = [m.reshape(m.shape[0], m.shape[1], -1).any(dim=2).numpy() for m in masks]  # (out, in) units
    fwd = [np.ones(adj[0].shape[1], dtype=bool)]
    for i, a in enumerate(adj):
        reach = (a.astype(int) @ fwd[-1].astype(int)) > 0
        fwd.append(np.repeat(reach, repeats[i]) if i < len(adj) - 1 else reach)
    bwd = [np.ones(adj[-1].shape[0], dtype=bool)]
    for i in range(len(adj) - 1, -1, -1):
        into = (adj[i].T.astype(int) @ bwd[0].astype(int)) > 0  # input units of layer i reaching the outputs
        if i > 0:
            r = repeats[i - 1]
            into = into.reshape(-1, r).any(axis=1)
        bwd.insert(0, into)
    out = []
    for i, m in enumerate(masks):
        ok = np.outer(bwd[i + 1], fwd[i])  # (out, in)
        out.append(m.numpy() & ok.reshape(ok.shape + (1,) * (m.dim() - 2)))
    return out


def test_mlp_effective_masks_equal_reachability() -> None:
    m = gt.models.build("mlp", in_shape=(10,), num_classes=3, widths=(12, 12), seed=0)
    for seed in range(3):
        t = gt.pruning.prune(m, "random", density=0.12, seed=seed)  # sparse: dead units appear
        eff = effective_masks(t, m)
        names = list(t.masks)
        oracle = chain_oracle([t.masks[n] for n in names], [1, 1, 1])
        assert all(np.array_equal(eff[n].numpy(), o) for n, o in zip(names, oracle, strict=True))
        kept = sum(int(v.sum()) for v in eff.values())
        assert kept < t.kept or seed > 0
        assert kept / t.total == pytest.approx(effective_density(t, m))


def test_conv_effective_masks_equal_channel_reachability() -> None:
    m = gt.models.build("conv2", in_shape=(3, 8, 8), num_classes=3, seed=0)  # pool to 4x4, flatten 64 x 16
    t = gt.pruning.prune(m, "random", density=0.004, seed=1)
    eff = effective_masks(t, m)
    names = list(t.masks)
    oracle = chain_oracle([t.masks[n] for n in names], [1, 16, 1, 1, 1])
    assert all(np.array_equal(eff[n].numpy(), o) for n, o in zip(names, oracle, strict=True))
    assert sum(int(v.sum()) for v in eff.values()) < t.kept
    assert sum(int(v.sum()) for v in eff.values()) / t.total == pytest.approx(effective_density(t, m))


def test_resnet_effective_density_agrees() -> None:
    m = gt.models.build("resnet20", in_shape=(3, 8, 8), num_classes=3, seed=0)
    t = gt.pruning.prune(m, "random", density=0.02, seed=0)
    eff = effective_masks(t, m)
    assert all(not (eff[n] & ~t.masks[n]).any() for n in t.masks)
    assert sum(int(v.sum()) for v in eff.values()) / t.total == pytest.approx(effective_density(t, m))
    again = effective_masks(effective_ticket(t, m), m)  # idempotent
    assert all(torch.equal(again[n], eff[n]) for n in eff)


def test_effective_distances() -> None:
    m = gt.models.build("mlp", in_shape=(2,), num_classes=2, widths=(2,), seed=0)
    base = {"fc1.weight": torch.tensor([[True, True], [False, False]]),
            "classifier.weight": torch.tensor([[True, False], [False, False]])}  # fmt: skip
    a = gt.Ticket(base)
    b = gt.Ticket({**base, "fc1.weight": torch.tensor([[True, True], [True, False]])})  # differs on a dead unit
    assert distance(a, b, "jaccard") > 0
    for kind in ("jaccard", "hamming", "layer_density", "ged", "aligned_jaccard", "degree"):
        assert distance(a, b, kind, model=m, effective=True) == 0.0, kind
    with pytest.raises(GraphticketsError, match="model="):
        distance(a, b, "jaccard", effective=True)
    g = [gt.graphs.layered_graph(m, t) for t in (a, b)]
    with pytest.raises(GraphticketsError, match="tickets"):
        distance(g[0], g[1], "jaccard", model=m, effective=True)


def test_compare_effective_and_collapsed_tickets() -> None:
    m = gt.models.build("mlp", in_shape=(10,), num_classes=3, widths=(12, 12), seed=0)
    ts = {f"t{s}": gt.pruning.prune(m, "random", density=0.12, seed=s) for s in range(3)}
    table = compare(ts, m, kinds=["jaccard", "spectral"], effective=True, null_samples=2)
    for r in table.itertuples():
        assert r.value == pytest.approx(distance(ts[r.a], ts[r.b], r.kind, model=m, effective=True))
    assert table["null_mean"].notna().all()
    # a collapsed ticket (no output weight) has no effective weight; two of them are at distance 0
    dead = {n: torch.ones_like(v) for n, v in ts["t0"].masks.items()}
    dead["classifier.weight"] = torch.zeros_like(dead["classifier.weight"])
    c1, c2 = gt.Ticket(dead), gt.Ticket({**dead, "fc1.weight": ~ts["t0"].masks["fc1.weight"]})
    e = effective_ticket(c1, m)
    assert e.kept == 0 and e.meta["effective"] is True
    assert distance(c1, c2, "jaccard", model=m, effective=True) == 0.0
    with pytest.raises(GraphticketsError, match="effective=True needs model"):
        compare(ts, kinds=["jaccard"], effective=True)
