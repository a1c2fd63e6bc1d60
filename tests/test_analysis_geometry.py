"""Input geometry against hand-made masks: a contiguous block, a comb, a random draw."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

import graphtickets as gt
from graphtickets.analysis import (
    fanout_agreement,
    input_fanout,
    locality,
    metrics,
    receptive_field_centres,
)
from graphtickets.analysis.geometry import FirstLayer, locality_of_mask

L, U = 40, 30


def _mlp(in_shape: tuple[int, ...] = (L,)) -> torch.nn.Module:
    return gt.models.build("mlp", in_shape=in_shape, num_classes=3, widths=(U,), seed=0)


def _ticket(first: np.ndarray, **config: object) -> gt.Ticket:
    t = gt.Ticket({"fc1.weight": torch.from_numpy(first), "classifier.weight": torch.ones(3, U, dtype=torch.bool)})
    t.config.update(config)
    return t


def _exact_gap(k: int, length: int) -> float:
    """E[span] / (k - 1) for k of L positions drawn without replacement, by enumeration."""
    spans = [max(c) - min(c) for c in itertools.combinations(range(length), k)]
    return float(np.mean(spans)) / (k - 1)


def test_contiguous_block_comb_and_random() -> None:
    m = _mlp()
    k = 4
    block = np.zeros((U, L), dtype=bool)
    for u in range(U):
        block[u, u : u + k] = True  # gap 1
    assert locality(m, _ticket(block)).value == pytest.approx((k + 1) / (L + 1))  # gap 1 over E[gap] = (L + 1) / (k + 1)
    comb = np.zeros((U, L), dtype=bool)
    comb[:, ::10] = True  # 4 teeth, gap 10
    loc = locality(m, _ticket(comb))
    assert loc.value == pytest.approx(10 / ((L + 1) / 5)) and loc.span == pytest.approx(30 / (3 * (L + 1) / 5))
    rng = np.random.default_rng(0)
    rand = np.zeros((300, L), dtype=bool)
    for u in range(300):
        rand[u, rng.choice(L, 5, replace=False)] = True
    layer = FirstLayer("fc1.weight", rand, (L,), 1, "sequence")
    r = locality_of_mask(layer)
    assert r.value == pytest.approx(1.0, abs=0.05) and r.pairwise == pytest.approx(1.0, abs=0.05)


def test_exact_null_against_enumeration_and_sampled_null_with_channels() -> None:
    for k in (2, 3, 5):
        assert _exact_gap(k, 12) == pytest.approx(13 / (k + 1))
    # two channels: the sampled null of a random draw gives ~1, a block far below
    rng = np.random.default_rng(1)
    rand = np.zeros((200, 2 * 20), dtype=bool)
    for u in range(200):
        rand[u, rng.choice(40, 4, replace=False)] = True
    assert locality_of_mask(FirstLayer("w", rand, (20,), 2, "sequence")).value == pytest.approx(1.0, abs=0.06)
    block = np.zeros((5, 40), dtype=bool)
    block[:, 3:6] = True
    block[:, 23:26] = True  # the same three positions in both channels
    assert locality_of_mask(FirstLayer("w", block, (20,), 2, "sequence")).value < 0.5


def test_images_pairwise_distance_and_centres() -> None:
    m = _mlp((1, 6, 6))
    sq = np.zeros((U, 36), dtype=bool)
    sq[:, [0, 1, 6, 7]] = True  # a 2x2 square in the corner: mean pairwise (4 * 1 + 2 * sqrt 2) / 6
    coords = np.array([(i, j) for i in range(6) for j in range(6)], dtype=float)
    d = np.sqrt(((coords[:, None] - coords[None]) ** 2).sum(-1))
    null = d.sum() / (36 * 35)
    loc = locality(m, _ticket(sq))
    assert loc.kind == "image" and loc.value == pytest.approx((4 + 2 * np.sqrt(2)) / 6 / null)
    c = receptive_field_centres(m, _ticket(sq))
    assert np.allclose(c[["centre_0", "centre_1"]].to_numpy(), 0.5) and np.allclose(c["radius"], np.sqrt(0.5))
    assert input_fanout(m, _ticket(sq)).shape == (6, 6) and input_fanout(m, _ticket(sq))[0, 0] == U


def test_conv_first_layer_reads_kernel_taps() -> None:
    m = gt.models.build("cnn1d", in_shape=(40,), num_classes=3, seed=0)
    t = gt.pruning.prune(m, "random", density=0.5, seed=0)
    name = next(iter(t.masks))
    w = torch.zeros_like(t.masks[name])
    w[..., :2] = True  # the first two taps of every kernel: gap 1
    t.masks[name] = w
    loc = locality(m, t)
    ksize = w.shape[-1]
    assert loc.kind == "kernel" and loc.value == pytest.approx(3 / (ksize + 1))


def test_unordered_inputs_are_skipped_with_a_reason() -> None:
    m = _mlp()
    block = np.zeros((U, L), dtype=bool)
    block[:, :3] = True
    r = locality(m, _ticket(block, dataset={"name": "mnist1d", "shuffle_seq": True}))
    assert np.isnan(r.value) and "without order" in str(r.reason)
    assert "without order" in str(locality(m, _ticket(block), ordered=False).reason)
    g = gt.graphs.layered_graph(m, _ticket(block))
    g.meta["ordered_inputs"] = False
    assert "locality" not in metrics(g)


def test_registered_metric_matches_the_function_and_fanout_agreement() -> None:
    m = _mlp()
    t = gt.pruning.prune(m, "random", density=0.2, seed=0)
    g = gt.graphs.layered_graph(m, t)
    assert metrics(g, names=["locality"]) == locality(m, t).as_dict()
    ts = {"a": t, "b": gt.Ticket({k: v.clone() for k, v in t.masks.items()}), "c": gt.pruning.prune(m, "random", density=0.2, seed=1)}
    tab = fanout_agreement(ts, m, samples=300, seed=0).set_index(["a", "b"])
    assert tab.loc[("a", "b"), "rho"] == pytest.approx(1.0) and tab.loc[("a", "b"), "n_as_extreme"] == 0
    assert abs(tab.loc[("a", "c"), "null_mean"]) < 0.1 and tab.loc[("a", "c"), "n_as_extreme"] > 10
