"""The ladder of null masks: each level keeps exactly what it claims and nothing more."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from scipy import stats

import graphtickets as gt
from graphtickets.pruning.randomize import (
    draw_degrees,
    draw_fan_in,
    draw_layer,
    draw_masks,
    fixed_reason,
)


def _mask(shape: tuple[int, ...], density: float, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random(shape) < density


def test_layer_keeps_the_count_and_reaches_every_position() -> None:
    m = _mask((6, 7), 0.2)
    d = draw_layer(m, 400, np.random.default_rng(0))
    assert (d.sum(axis=(1, 2)) == m.sum()).all()
    assert d.any(axis=0).all()  # every position is kept by some draw
    assert not (d == m).all(axis=(1, 2)).all()


def test_fan_in_keeps_rows_not_columns_and_reaches_every_admissible_cell() -> None:
    m = _mask((8, 9), 0.3, seed=1)
    m[0] = True  # a full row and an empty row cannot move
    m[1] = False
    d = draw_fan_in(m, 500, np.random.default_rng(0))
    assert (d.sum(axis=2) == m.sum(axis=1)).all()
    assert (d[:, 0] == m[0]).all() and (d[:, 1] == m[1]).all()
    assert not (d.sum(axis=1) == m.sum(axis=0)).all()  # fan-outs are not kept
    partial = (m.sum(1) > 0) & (m.sum(1) < m.shape[1])
    assert d.any(axis=0)[partial].all()


def test_degrees_keep_rows_and_columns_and_change_the_mask() -> None:
    for density in (0.05, 0.3, 0.8):
        m = _mask((20, 30), density, seed=2)
        d, swaps = draw_degrees(m, 50, np.random.default_rng(0))
        assert (d.sum(axis=2) == m.sum(axis=1)).all() and (d.sum(axis=1) == m.sum(axis=0)).all()
        changed = (d ^ m).sum(axis=(1, 2))
        assert (changed > 0.5 * min(m.sum(), (~m).sum())).all(), density
        assert (swaps >= 10 * min(m.sum(), (~m).sum())).all()


def _realizations(rows: list[int], cols: list[int]) -> list[np.ndarray]:
    """Every 0/1 matrix with these margins, by brute force (the oracle)."""
    r, c = len(rows), len(cols)
    out = []
    for bits in itertools.product([0, 1], repeat=r * c):
        a = np.array(bits, dtype=bool).reshape(r, c)
        if a.sum(1).tolist() == rows and a.sum(0).tolist() == cols:
            out.append(a)
    return out


def test_degrees_sample_uniformly_among_the_realizations() -> None:
    m = np.array([[1, 1, 0, 0], [1, 0, 1, 0], [0, 1, 0, 1]], dtype=bool)
    real = _realizations(m.sum(1).tolist(), m.sum(0).tolist())
    assert len(real) > 5
    d, _ = draw_degrees(m, 6000, np.random.default_rng(3), swaps_per_edge=10)
    keys = {a.tobytes(): k for k, a in enumerate(real)}
    counts = np.bincount([keys[x.tobytes()] for x in d], minlength=len(real))
    assert counts.min() > 0
    assert stats.chisquare(counts).pvalue > 1e-3


def test_degrees_reach_every_admissible_cell() -> None:
    m = np.zeros((10, 12), dtype=bool)
    rng = np.random.default_rng(4)
    for r in range(10):  # two per row, spread so no cell is forced
        m[r, rng.choice(12, 2, replace=False)] = True
    d, _ = draw_degrees(m, 2000, np.random.default_rng(5))
    partial_cols = m.sum(0) > 0
    assert d.any(axis=0)[:, partial_cols].all()


def test_rigid_margins_are_reported_and_kept() -> None:
    m = np.zeros((4, 4), dtype=bool)
    m[:2, :2] = True  # all-or-nothing: one realization
    assert fixed_reason(m, "degrees") is not None
    d, swaps = draw_degrees(m, 3, np.random.default_rng(0))
    assert (d == m).all() and (swaps == 0).all()
    assert fixed_reason(np.ones((3, 3), bool), "layer") == "full (all weights kept)"
    assert fixed_reason(np.zeros((3, 3), bool), "fan_in") == "empty (no weight kept)"
    assert "all or none" in str(fixed_reason(np.array([[1, 1], [0, 0]], bool), "fan_in"))
    assert fixed_reason(np.eye(3, dtype=bool), "degrees") is None


@pytest.mark.parametrize("level", ["global", "layer", "fan_in", "degrees"])
def test_draw_masks_reproducible_and_independent(level: str) -> None:
    masks = {"a": torch.from_numpy(_mask((12, 10), 0.2, 6)), "b": torch.from_numpy(_mask((5, 12), 0.3, 7))}
    d1, _ = draw_masks(masks, level, 30, seed=(1, 2))
    d2, _ = draw_masks(masks, level, 30, seed=(1, 2))
    d3, _ = draw_masks(masks, level, 30, seed=(1, 3))
    assert all(np.array_equal(d1[k], d2[k]) for k in masks)
    assert not all(np.array_equal(d1[k], d3[k]) for k in masks)
    total = sum(int(m.sum()) for m in masks.values())
    assert (sum(d1[k].sum(axis=tuple(range(1, d1[k].ndim))) for k in masks) == total).all()
    # two seeds agree on a kept weight no more than independent draws do
    same = sum((d1[k] & d3[k]).sum() for k in masks) / sum(d1[k].sum() for k in masks)
    within = sum((d1[k][:-1] & d1[k][1:]).sum() for k in masks) / sum(d1[k][:-1].sum() for k in masks)
    assert abs(same - within) < 0.1 or level == "degrees"


def test_conv_levels_keep_output_channel_fan_in_and_input_channel_fan_out() -> None:
    m = gt.models.build("conv2", in_shape=(3, 8, 8), num_classes=3, seed=0)
    t = gt.pruning.prune(m, "random", density=0.2, seed=0)
    conv = next(n for n, x in t.masks.items() if x.dim() == 4)
    x = t.masks[conv]
    d, _ = draw_masks({conv: x}, "fan_in", 4, seed=0)
    assert (d[conv].sum(axis=(2, 3, 4)) == x.sum((1, 2, 3)).numpy()).all()
    r, _ = draw_masks({conv: x}, "degrees", 4, seed=0)
    assert (r[conv].sum(axis=(2, 3, 4)) == x.sum((1, 2, 3)).numpy()).all()
    assert (r[conv].sum(axis=1) == x.sum(0).numpy()).all()  # every (input channel, tap)


def test_in_degree_and_rewire_ablations() -> None:
    m = gt.models.build("mlp", in_shape=(10,), num_classes=3, widths=(12,), seed=0)
    t = gt.pruning.prune(m, "magnitude", density=0.3, seed=0)
    t.weights = {n: torch.randn(p.shape) for n, p in gt.prunable(m).items()}
    i = gt.pruning.in_degree(t, m, seed=1)
    r = gt.pruning.rewire(t, m, seed=1)
    for n, x in t.masks.items():
        assert torch.equal(i.masks[n].sum(1), x.sum(1)) and not torch.equal(i.masks[n], x)
        assert torch.equal(r.masks[n].sum(1), x.sum(1)) and torch.equal(r.masks[n].sum(0), x.sum(0))
        assert not torch.equal(r.masks[n], x)
        assert torch.equal(i.weights[n], t.weights[n]) and torch.equal(r.weights[n], t.weights[n])
    assert i.meta["ablation"]["kind"] == "in_degree" and r.meta["ablation"]["kind"] == "rewire"
    assert i == gt.pruning.in_degree(t, m, seed=1) and r != gt.pruning.rewire(t, m, seed=2)
    assert list(gt.pruning.ABLATIONS) == ["shuffle", "in_degree", "rewire", "reinit"]
    for name, spec in gt.pruning.ABLATIONS.items():
        out, net = spec.fn(t, m, 5)
        assert out.layer_counts() == t.layer_counts() and isinstance(net, torch.nn.Module), name


def test_conv_transpose_rows_are_output_channels() -> None:
    net = torch.nn.Sequential(torch.nn.ConvTranspose1d(2, 3, 3))
    mask = torch.zeros(2, 3, 3, dtype=torch.bool)  # (in, out, k)
    mask[0, 0] = True
    mask[1, 2, 1] = True
    t = gt.Ticket({"0.weight": mask}, method="manual")
    i = gt.pruning.in_degree(t, net, seed=0)
    assert torch.equal(i.masks["0.weight"].sum((0, 2)), mask.sum((0, 2)))  # per output channel
