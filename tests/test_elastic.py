"""Elastic LTH: mapping tables, ResNet-20 <-> ResNet-32 and MLP depth transforms."""

from __future__ import annotations

import pytest
import torch

import graphtickets as gt
from graphtickets.errors import GraphticketsError
from graphtickets.pruning.elastic import (
    block_layout,
    block_mapping,
    elastic_transform,
    name_mapping,
)


@pytest.mark.parametrize(
    ("n_s", "n_t", "expected"),
    [
        (3, 5, [0, 1, 1, 2, 2]),  # ResNet-20 -> ResNet-32: blocks 1, 2 each copied twice
        (5, 3, [0, 1, 3]),  # ResNet-32 -> ResNet-20: blocks 2 and 4 dropped
        (3, 9, [0, 1, 1, 1, 1, 2, 2, 2, 2]),  # ResNet-20 -> ResNet-56
        (9, 3, [0, 1, 5]),
        (3, 3, [0, 1, 2]),
        (4, 1, [0]),
        (1, 3, [0, 0, 0]),
        (2, 4, [0, 1, 1, 1]),
    ],
)
def test_block_mapping_tables(n_s: int, n_t: int, expected: list[int]) -> None:
    assert block_mapping(n_s, n_t) == expected


@pytest.mark.parametrize("n_s", range(1, 8))
@pytest.mark.parametrize("n_t", range(1, 8))
def test_block_mapping_properties(n_s: int, n_t: int) -> None:
    m = block_mapping(n_s, n_t)
    assert len(m) == n_t and m[0] == 0
    assert m == sorted(m) and all(0 <= i < n_s for i in m)
    if n_t >= n_s:  # stretching uses every source block
        assert set(m) == set(range(n_s))
    else:  # squeezing never copies a block twice
        assert len(set(m)) == n_t
    # copies are adjacent: each source block occupies a contiguous run of slots
    for b in set(m):
        idx = [i for i, v in enumerate(m) if v == b]
        assert idx == list(range(idx[0], idx[-1] + 1))


def test_block_mapping_rejects_bad_counts() -> None:
    with pytest.raises(GraphticketsError):
        block_mapping(0, 3)


def _resnets() -> tuple[torch.nn.Module, torch.nn.Module]:
    r20 = gt.models.build("resnet20", in_shape=(3, 8, 8), num_classes=10, width=0.5, seed=0)
    r32 = gt.models.build("resnet32", in_shape=(3, 8, 8), num_classes=10, width=0.5, seed=1)
    return r20, r32


def test_resnet20_to_resnet32_and_back() -> None:
    r20, r32 = _resnets()
    src = gt.pruning.prune(r20, "random", density=0.3, seed=3, scope="global")
    up = gt.pruning.prune(r32, "elastic", density=src.density, source=src, source_model=r20)
    up.check(r32)  # masks fit the target's shapes
    assert set(up.masks) == set(gt.prunable(r32))
    assert up.meta["mapping"]["stage2"] == [0, 1, 1, 2, 2]
    sd, td = src.layer_densities(), up.layer_densities()
    for stage in ("stage1", "stage2", "stage3"):
        for t_blk, s_blk in enumerate([0, 1, 1, 2, 2]):
            for conv in ("conv1", "conv2"):
                t_name, s_name = f"{stage}.{t_blk}.{conv}.weight", f"{stage}.{s_blk}.{conv}.weight"
                assert td[t_name] == sd[s_name]
                assert torch.equal(up.masks[t_name], src.masks[s_name])
    for name in ("conv1.weight", "classifier.weight", "stage2.0.shortcut.0.weight"):
        assert torch.equal(up.masks[name], src.masks[name])

    down = gt.pruning.prune(r20, "elastic", density=up.density, source=up, source_model=r32)
    down.check(r20)
    assert down.meta["mapping"]["stage3"] == [0, 1, 3]
    # 20 -> 32 -> 20 maps block i to 32's block [0,1,3][i], which holds 20's block [0,1,2][i]
    assert all(torch.equal(down.masks[n], src.masks[n]) for n in src.masks)


def test_resnet_custom_mapping_and_weights() -> None:
    r20, r32 = _resnets()
    src = gt.pruning.prune(r20, "magnitude", density=0.2)
    t = elastic_transform(src, r20, r32, mapping=[0, 2, 2, 2, 1], carry_weights=True)
    assert t.meta["mapping"] == {s: [0, 2, 2, 2, 1] for s in ("stage1", "stage2", "stage3")}
    s_params = dict(r20.named_parameters())
    assert t.weights is not None
    assert torch.equal(t.weights["stage3.3.conv2.weight"], s_params["stage3.2.conv2.weight"])
    assert torch.equal(t.weights["stage1.4.bn1.weight"], s_params["stage1.1.bn1.weight"])
    model = t.build_model() if t.config.get("model") else t.apply(r32)
    assert model is not None
    with pytest.raises(GraphticketsError, match="block shapes differ|mapping"):
        # block 0 of stage 2 (downsampling) cannot fill slot 1
        elastic_transform(src, r20, r32, mapping={"stage1": [0, 1, 1, 2, 2], "stage2": [0, 0, 1, 2, 2], "stage3": [0, 1, 1, 2, 2]})
    with pytest.raises(GraphticketsError, match="mapping for"):
        elastic_transform(src, r20, r32, mapping=[0, 1, 2])


def test_mlp_depth_transform() -> None:
    a = gt.models.build("mlp", in_shape=(10,), num_classes=3, widths=(6, 6, 6), seed=0)
    b = gt.models.build("mlp", in_shape=(10,), num_classes=3, widths=(6, 6, 6, 6, 6), seed=0)
    src = gt.pruning.prune(a, "random", density=0.5, seed=1, scope="global")
    t = elastic_transform(src, a, b)
    assert block_layout(t.masks) == {"fc": 5}
    assert [torch.equal(t.masks[f"fc{i + 1}.weight"], src.masks[f"fc{j + 1}.weight"]) for i, j in enumerate([0, 1, 1, 2, 2])] == [True] * 5
    assert torch.equal(t.masks["classifier.weight"], src.masks["classifier.weight"])
    back = elastic_transform(t, b, a)
    assert all(torch.equal(back.masks[n], src.masks[n]) for n in src.masks)


def test_unrelated_networks_are_rejected() -> None:
    a = gt.models.build("mlp", in_shape=(10,), num_classes=3, widths=(6, 6), seed=0)
    r20, _ = _resnets()
    src = gt.pruning.prune(a, "random", density=0.5)
    with pytest.raises(GraphticketsError, match="family"):
        elastic_transform(src, a, r20)
    with pytest.raises(GraphticketsError, match="source"):
        gt.pruning.prune(r20, "elastic", density=0.5)
    # unequal widths: the copied mask does not fit
    c = gt.models.build("mlp", in_shape=(10,), num_classes=3, widths=(6, 5, 5), seed=0)
    with pytest.raises(GraphticketsError, match="shape"):
        elastic_transform(src, a, c)


def test_name_mapping_identity_outside_blocks() -> None:
    names = ["conv1.weight", "stage1.0.conv1.weight", "stage1.1.conv1.weight", "classifier.weight"]
    assert name_mapping(names, names) == {n: n for n in names}
