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
    up = gt.pruning.prune(r32, "elastic", source=src, source_model=r20)  # the transform alone
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

    down = gt.pruning.prune(r20, "elastic", source=up, source_model=r32)
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


def test_resnet32_to_resnet20_squeeze_of_an_independent_ticket() -> None:
    # a ResNet-32 ticket whose five blocks per stage all differ: squeezing must keep blocks
    # [0, 1, 3] of every stage (the default table), and nothing else
    r20, r32 = _resnets()
    src32 = gt.pruning.prune(r32, "random", density=0.3, seed=7, scope="layer")
    src32 = src32.replace({n: m if not n.startswith("stage") else m & (torch.rand(m.shape, generator=torch.Generator().manual_seed(len(n) + i)) < 0.5 + 0.08 * i) for i, (n, m) in enumerate(src32.masks.items())})
    down = gt.pruning.prune(r20, "elastic", source=src32, source_model=r32)  # no density
    down.check(r20)
    assert down.config["density"] == pytest.approx(down.density)
    assert "density_requested" not in down.meta
    sd, dd = src32.layer_densities(), down.layer_densities()
    for stage in ("stage1", "stage2", "stage3"):
        assert down.meta["mapping"][stage] == [0, 1, 3]
        for i, j in enumerate([0, 1, 3]):
            for conv in ("conv1", "conv2"):
                t_name, s_name = f"{stage}.{i}.{conv}.weight", f"{stage}.{j}.{conv}.weight"
                assert dd[t_name] == sd[s_name]
                assert torch.equal(down.masks[t_name], src32.masks[s_name])
            # the dropped blocks 2 and 4 are really different, so the test pins the choice
            assert not torch.equal(src32.masks[f"{stage}.2.conv1.weight"], src32.masks[f"{stage}.3.conv1.weight"])
    for name in ("conv1.weight", "classifier.weight", "stage3.0.shortcut.0.weight"):
        assert torch.equal(down.masks[name], src32.masks[name])


def test_prune_carries_weights_and_batchnorm_buffers() -> None:
    r20, r32 = _resnets()
    with torch.no_grad():  # make the source's running statistics recognisable
        for n, b in r20.named_buffers():
            if b.is_floating_point():
                b.copy_(torch.arange(b.numel(), dtype=b.dtype) + len(n))
    src = gt.pruning.prune(r20, "magnitude", density=0.2)
    up = gt.pruning.prune(r32, "elastic", source=src, source_model=r20, carry_weights=True)
    assert up.weights is not None and up.config["hparams"]["carry_weights"] is True
    s_params, s_bufs = dict(r20.named_parameters()), dict(r20.named_buffers())
    assert torch.equal(up.weights["stage2.4.conv1.weight"], s_params["stage2.2.conv1.weight"])
    assert torch.equal(up.weights["stage2.4.bn1.running_mean"], s_bufs["stage2.2.bn1.running_mean"])
    assert torch.equal(up.weights["stage3.0.shortcut.1.running_var"], s_bufs["stage3.0.shortcut.1.running_var"])
    assert "stage1.0.bn1.num_batches_tracked" not in up.weights  # integer counters are not carried
    fresh = gt.models.build("resnet32", in_shape=(3, 8, 8), num_classes=10, width=0.5, seed=5)
    up.apply(fresh)  # Ticket.apply loads the carried BatchNorm statistics too
    f_bufs = dict(fresh.named_buffers())
    assert torch.equal(f_bufs["stage2.4.bn1.running_mean"], s_bufs["stage2.2.bn1.running_mean"])
    assert torch.equal(f_bufs["stage3.0.shortcut.1.running_var"], s_bufs["stage3.0.shortcut.1.running_var"])
    assert gt.pruning.prune(r32, "elastic", source=src, source_model=r20).weights is not None  # the default
    plain = gt.pruning.prune(r32, "elastic", source=src, source_model=r20, carry_weights=False)
    assert plain.weights is None
    with pytest.raises(GraphticketsError, match="density"):
        gt.pruning.prune(r32, "magnitude")  # only transforms may omit the density


def test_imp_rewound_weights_survive_prune_and_elastic() -> None:
    a = gt.models.build("mlp", in_shape=(10,), num_classes=3, widths=(6, 6, 6), seed=0)
    b = gt.models.build("mlp", in_shape=(10,), num_classes=3, widths=(6, 6), seed=0)
    g = torch.Generator().manual_seed(0)
    data = [(torch.randn(16, 10, generator=g), torch.randint(0, 3, (16,), generator=g)) for _ in range(3)]
    t = gt.pruning.prune(a, "imp", density=0.6, data=data, rewind=2, epochs=2, seed=1)
    assert t.weights is not None  # prune() keeps the rewound weights IMP returns
    fam = gt.pruning.imp_rounds(a, density=0.6, data=data, rewind=2, epochs=2, seed=1)
    assert all(torch.equal(t.weights[n], fam[-1].weights[n]) for n in fam[-1].weights)
    e = gt.pruning.prune(b, "elastic", source=t, source_model=a, carry_weights=True)
    assert e.weights is not None
    assert e.meta["mapping"]["fc"] == [0, 1]
    assert torch.equal(e.weights["fc2.weight"], t.weights["fc2.weight"])  # the rewound weights,
    assert not torch.equal(e.weights["fc2.weight"], dict(a.named_parameters())["fc2.weight"])  # not init


def _flat(d: dict[str, torch.Tensor], names: list[str]) -> torch.Tensor:
    return torch.cat([d[n].reshape(-1) for n in names])


def _nz(x: torch.Tensor) -> torch.Tensor:
    return torch.nonzero(x).flatten()


def test_elastic_at_a_density_trims_by_carried_magnitude() -> None:
    # 3 hidden layers squeezed to 2 drop a sparse block: the transform alone is denser than
    # the source; with density= the ticket keeps exactly round(d * N), all inside the
    # transformed mask, the ones with the largest carried |w| (checked by a plain sort)
    a = gt.models.build("mlp", in_shape=(10,), num_classes=3, widths=(8, 8, 8), seed=0)
    b = gt.models.build("mlp", in_shape=(10,), num_classes=3, widths=(8, 8), seed=4)
    src = gt.pruning.prune(a, "magnitude", density=0.3, seed=0, scope="layer")
    dense_blocks = {n: m | (torch.rand(m.shape, generator=torch.Generator().manual_seed(1)) < 0.5) if n != "fc3.weight" else m for n, m in src.masks.items()}
    src = src.replace(dense_blocks)  # fc1, fc2 denser than fc3, which the squeeze drops
    only = gt.pruning.prune(b, "elastic", source=src, source_model=a)
    t = gt.pruning.prune(b, "elastic", density=src.density, source=src, source_model=a)
    assert only.density > src.density  # too dense before the adjustment
    assert t.kept == round(src.density * t.total) and t.config["density"] == src.density
    assert t.meta["density_before_adjustment"] == pytest.approx(only.density)
    assert t.meta["adjustment"] == "trimmed" and t.meta["changed"] == only.kept - t.kept
    names = list(t.masks)
    inside, kept = _flat(only.masks, names), _flat(t.masks, names)
    assert not bool((kept & ~inside).any())
    assert t.weights is not None  # carried by default
    w = _flat(t.weights, names).abs()
    order = sorted(_nz(inside).tolist(), key=lambda i: (-float(w[i]), i))
    assert set(_nz(kept).tolist()) == set(order[: t.kept])
    # the carried weights are the SOURCE's (mapped), not the target's own init
    assert torch.equal(t.weights["fc2.weight"], dict(a.named_parameters())["fc2.weight"])
    own = gt.pruning.prune(b, "elastic", density=src.density, source=src, source_model=a, carry_weights=False)
    assert own.weights is None and own.kept == t.kept
    wb = _flat({n: p.detach() for n, p in b.named_parameters()}, names).abs()
    order_b = sorted(_nz(inside).tolist(), key=lambda i: (-float(wb[i]), i))
    assert set(_nz(_flat(own.masks, names)).tolist()) == set(order_b[: own.kept])


def test_elastic_at_a_density_grows_by_magnitude_outside() -> None:
    # 2 hidden layers stretched to 4 replicate a sparse block: the transform alone is sparser
    # than asked; the whole transformed mask stays and the largest |w| outside it are added
    a = gt.models.build("mlp", in_shape=(10,), num_classes=3, widths=(8, 8), seed=0)
    b = gt.models.build("mlp", in_shape=(10,), num_classes=3, widths=(8, 8, 8, 8), seed=0)
    g = torch.Generator().manual_seed(2)
    masks = {n: torch.rand(p.shape, generator=g) < (0.05 if n == "fc2.weight" else 0.9) for n, p in gt.prunable(a).items()}
    src = gt.Ticket(masks=masks, method="manual")
    only = gt.pruning.prune(b, "elastic", source=src, source_model=a)
    t = gt.pruning.prune(b, "elastic", density=0.5, source=src, source_model=a)
    assert only.density < 0.5 and t.kept == round(0.5 * t.total)
    assert t.meta["adjustment"] == "grown" and t.meta["density_before_adjustment"] == pytest.approx(only.density)
    names = list(t.masks)
    inside, kept = _flat(only.masks, names), _flat(t.masks, names)
    assert bool((kept | ~inside).all())  # nothing of the transformed mask is lost
    assert t.weights is not None
    w = _flat(t.weights, names).abs()
    outside = sorted(_nz(~inside).tolist(), key=lambda i: (-float(w[i]), i))
    assert set(_nz(kept & ~inside).tolist()) == set(outside[: t.kept - only.kept])
    exact = gt.pruning.prune(b, "elastic", density=only.density, source=src, source_model=a)
    assert exact.meta["adjustment"] == "none" and all(torch.equal(exact.masks[n], only.masks[n]) for n in names)
