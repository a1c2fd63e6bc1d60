"""Early-Bird: the detection rule on synthetic masks, channel pairing, the method on tiny nets."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import graphtickets as gt
from graphtickets.errors import GraphticketsError
from graphtickets.pruning import early_bird as eb

N = 100
# flips[i]: mask i is the base mask with its first flips[i] entries inverted, so the
# distance between masks i and j is |flips[i] - flips[j]| / N (hand-computable).
FLIPS = [50, 40, 30, 20, 15, 12, 11, 10, 10, 10]


def _masks(flips: list[int]) -> list[torch.Tensor]:
    base = torch.arange(N) % 3 == 0
    out = []
    for f in flips:
        m = base.clone()
        m[:f] = ~m[:f]
        out.append(m)
    return out


def test_distance_curve_by_hand() -> None:
    curve = eb.distance_curve(_masks(FLIPS), window=5)
    assert all(math.isnan(d) for d in curve[:4])
    # i=4: max |15 - {50,40,30,20}| = 35; i=5: |12 - 40| = 28; i=6: |11 - 30| = 19;
    # i=7: |10 - 20| = 10; i=8: |10 - 15| = 5; i=9: |10 - 12| = 2
    assert curve[4:] == [0.35, 0.28, 0.19, 0.10, 0.05, 0.02]


def test_detect_fires_exactly_where_the_rule_says() -> None:
    masks = _masks(FLIPS)
    assert eb.detect(masks, tol=0.1, window=5) == 7  # distance 0.10 <= 0.10: fires on equality
    assert eb.detect(masks, tol=0.099, window=5) == 8
    assert eb.detect(masks, tol=0.19, window=5) == 6
    assert eb.detect(masks, tol=0.01, window=5) is None
    assert eb.detect(masks, tol=1.0, window=5) == 4  # never before the window is full
    # window 2: compares consecutive masks only; 12 -> 11 first differs by <= 0.01
    assert eb.detect(masks, tol=0.01, window=2) == 6


def test_detector_matches_detect_on_dict_masks() -> None:
    masks = _masks(FLIPS)
    det = eb.EarlyBirdDetector(tol=0.1, window=5)
    fired = []
    for m in masks:  # split each mask into two "layers"
        fired.append(det.update({"a": m[:30].reshape(5, 6), "b": m[30:]}))
    assert det.fired_at == 7
    assert fired == [False] * 7 + [True] * 3
    assert det.distances[4:] == [0.35, 0.28, 0.19, 0.10, 0.05, 0.02]


def test_mask_distance_validates() -> None:
    assert eb.mask_distance(torch.ones(4, dtype=torch.bool), torch.zeros(4, dtype=torch.bool)) == 1.0
    with pytest.raises(GraphticketsError, match="sizes"):
        eb.mask_distance(torch.ones(4, dtype=torch.bool), torch.ones(5, dtype=torch.bool))


def _tiny_bn_net() -> nn.Module:
    g = torch.Generator().manual_seed(0)
    net = nn.Sequential(
        nn.Conv1d(1, 4, 3, padding=1), nn.BatchNorm1d(4), nn.ReLU(),
        nn.Conv1d(4, 6, 3, padding=1), nn.BatchNorm1d(6), nn.ReLU(),
        nn.Flatten(), nn.Linear(6 * 8, 3),
    )
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
    return net


def test_bn_channels_fx_and_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    assert eb.bn_channels(_tiny_bn_net()) == {"1": "0.weight", "4": "3.weight"}
    r = gt.models.build("resnet20", in_shape=(3, 8, 8), num_classes=10, width=0.25)
    pairs = eb.bn_channels(r)
    assert pairs["bn1"] == "conv1.weight"
    assert pairs["stage2.0.bn2"] == "stage2.0.conv2.weight"
    assert pairs["stage3.0.shortcut.1"] == "stage3.0.shortcut.0.weight"
    assert len(pairs) == 1 + 3 * 3 * 2 + 2  # stem, two per block, two shortcut BNs
    import torch.fx

    def boom(*a: object, **k: object) -> None:
        raise RuntimeError("untraceable")

    monkeypatch.setattr(torch.fx, "symbolic_trace", boom)
    assert eb.bn_channels(r) == pairs


def test_channel_mask_and_weight_masks() -> None:
    net = _tiny_bn_net()
    with torch.no_grad():
        net[1].weight.copy_(torch.tensor([0.9, -0.1, 0.5, 0.05]))
        net[4].weight.copy_(torch.tensor([0.2, -0.8, 0.01, 0.3, 0.6, -0.02]))
    ch = eb.channel_mask(net, 0.5)  # 5 of 10 channels: 0.9, -0.8, 0.6, 0.5, 0.3
    assert ch["1"].tolist() == [True, False, True, False]
    assert ch["4"].tolist() == [False, True, False, True, True, False]
    w = eb.channel_to_weight_masks(net, ch, ["0.weight", "3.weight", "7.weight"])
    assert w["0.weight"][:, 0, 0].tolist() == [True, False, True, False]
    assert bool(w["0.weight"][0].all()) and not bool(w["0.weight"][1].any())
    assert w["3.weight"].sum(dim=(1, 2)).tolist() == [0, 12, 0, 12, 12, 0]
    assert bool(w["7.weight"].all())  # no BatchNorm after the classifier: dense


def _data(n_batches: int = 2) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(1)
    return [(torch.randn(16, 8, generator=g), torch.randint(0, 3, (16,), generator=g)) for _ in range(n_batches)]


def test_frozen_training_fires_after_window_epochs() -> None:
    # lr = 0: the weights never move, every epoch gives the same mask, the rule fires as soon
    # as the window is full: at epoch 5, and training stops there.
    model = gt.models.build("mlp", in_shape=(8,), num_classes=3, widths=(10,), seed=0)
    t = gt.pruning.prune(model, "early_bird", density=0.3, data=_data(), lr=0.0, max_epochs=20)
    assert t.meta["mode"] == "weight" and t.meta["detected"]
    assert t.meta["epoch_drawn"] == 5 and t.meta["cost"]["epochs"] == 5
    assert t.meta["distances"] == [None] * 4 + [0.0]
    assert t.kept == round(0.3 * t.total)
    # the mask is the global magnitude mask of the (unchanged) initial weights
    mag = gt.pruning.prune(model, "magnitude", density=0.3)
    assert all(torch.equal(t.masks[n], mag.masks[n]) for n in mag.masks)


def test_weight_mode_training_records_curve() -> None:
    model = gt.models.build("mlp", in_shape=(8,), num_classes=3, widths=(10,), seed=0)
    before = {n: p.clone() for n, p in model.named_parameters()}
    t = gt.pruning.prune(model, "early_bird", density=0.2, data=_data(), lr=0.05, max_epochs=7, tol=0.0)
    assert all(torch.equal(before[n], p) for n, p in model.named_parameters())
    assert len(t.meta["distances"]) == t.meta["cost"]["epochs"] <= 7
    assert t.kept == round(0.2 * t.total)
    if not t.meta["detected"]:
        assert t.meta["epoch_drawn"] == 7


def test_channel_mode_exact_density() -> None:
    net = _tiny_bn_net()
    g = torch.Generator().manual_seed(2)
    data = [(torch.randn(16, 1, 8, generator=g), torch.randint(0, 3, (16,), generator=g)) for _ in range(2)]
    t = gt.pruning.prune(net, "early_bird", density=0.5, data=data, max_epochs=6, lr=0.01)
    assert t.meta["mode"] == "channel"
    assert t.kept == round(0.5 * t.total) and t.meta["exact"]
    assert t.meta["structured_density"] > 0.5
    # every weight of a pruned channel is off (the trim only removes more)
    rows = t.masks["0.weight"].reshape(4, -1).any(dim=1)
    assert int(rows.sum()) <= 4
    loose = gt.pruning.prune(net, "early_bird", density=0.5, data=data, max_epochs=6, lr=0.01, exact=False)
    assert loose.density == pytest.approx(loose.meta["structured_density"])
    per_row = loose.masks["3.weight"].reshape(6, -1)
    assert all(bool(r.all()) or not bool(r.any()) for r in per_row)  # whole channels only
