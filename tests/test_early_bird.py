"""Early-Bird: the detection rule on synthetic masks, channel pairing, the method on tiny nets."""

from __future__ import annotations

import copy
import math

import numpy as np
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
    # conv 3: rows of its own pruned channels off AND the inputs from conv 0's pruned channels
    # (1 and 3) off: a kept row keeps 2 input channels x 3 taps
    assert w["3.weight"].sum(dim=(1, 2)).tolist() == [0, 6, 0, 6, 6, 0]
    assert not bool(w["3.weight"][:, [1, 3]].any()) and bool(w["3.weight"][1][[0, 2]].all())
    # classifier after the flatten: channel c of BatchNorm 4 owns inputs 8c .. 8c + 7
    cols = w["7.weight"].all(dim=0)
    assert cols.tolist() == [bool(ch["4"][i // 8]) for i in range(48)]
    assert w["7.weight"].any(dim=0).tolist() == cols.tolist()  # whole columns on or off
    rows_only = eb.channel_to_weight_masks(net, ch, ["3.weight", "7.weight"], consumers=False)
    assert rows_only["3.weight"].sum(dim=(1, 2)).tolist() == [0, 12, 0, 12, 12, 0]
    assert bool(rows_only["7.weight"].all())


def test_channel_consumers_traced_through_activation_flatten_and_residuals() -> None:
    assert eb.channel_consumers(_tiny_bn_net()) == {"1": ["3.weight"], "4": ["7.weight"]}
    r = gt.models.build("resnet20", in_shape=(3, 8, 8), num_classes=10, width=0.25)
    cons = eb.channel_consumers(r)
    assert cons["stage1.0.bn1"] == ["stage1.0.conv2.weight"]  # inside a block: BN -> ReLU -> conv
    # a block's output BN and the stem feed a residual '+': their outgoing weights stay
    assert cons["stage1.0.bn2"] == [] and cons["bn1"] == [] and cons["stage2.0.shortcut.1"] == []
    v = gt.models.build("vgg11", in_shape=(3, 8, 8), num_classes=10, width=0.25)
    vc = eb.channel_consumers(v)
    assert vc[max(vc, key=lambda n: int(n.split(".")[1]))] == ["classifier.weight"]  # through pool+flatten
    names = list(gt.prunable(r))
    c = eb.solve_channel_density(r, 0.3, names)
    assert 0.3 < c < 1.0  # a channel costs weights on both sides: more channels than weights kept


def test_weight_mode_distance_normalised_by_kept_count() -> None:
    # density 0.01: masks keep 100 of 10000 positions. Each of the first masks moves 50 of its
    # kept positions, so any two differ in 100 positions: 0.01 of all positions (the paper's
    # normalisation would fire as soon as the window fills), but 100 / (100 + 100) = 0.5 of
    # the kept ones. From mask 5 on the masks are equal.
    n, k = 10000, 100
    seq = []
    for i in range(10):
        m = torch.zeros(n, dtype=torch.bool)
        m[:50] = True
        off = 50 + 50 * min(i, 5)
        m[off : off + 50] = True
        seq.append(m)
    assert all(int(m.sum()) == k for m in seq)
    assert eb.mask_distance(seq[0], seq[1]) == pytest.approx(0.01)
    assert eb.mask_distance(seq[0], seq[1], normalize="kept") == pytest.approx(0.5)
    assert eb.detect(seq, tol=0.1, window=5) == 4  # the artefact: bounded by 2 * density
    assert eb.detect(seq, tol=0.1, window=5, normalize="kept") == 9  # masks 5..9 all equal
    curve = eb.distance_curve(seq, window=5, normalize="kept")
    assert curve[4:] == pytest.approx([0.5, 0.5, 0.5, 0.5, 0.5, 0.0])
    det = eb.EarlyBirdDetector(tol=0.1, window=5, normalize="kept")
    assert [det.update(m) for m in seq].index(True) == 9
    assert eb.mask_distance(torch.zeros(3, dtype=torch.bool), torch.zeros(3, dtype=torch.bool), "kept") == 0.0
    with pytest.raises(GraphticketsError, match="normalize"):
        eb.mask_distance(seq[0], seq[1], normalize="all")


def _data(n_batches: int = 2) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(1)
    return [(torch.randn(16, 8, generator=g), torch.randint(0, 3, (16,), generator=g)) for _ in range(n_batches)]


def test_frozen_training_fires_after_window_epochs() -> None:
    # lr = 0: the weights never move, every epoch gives the same mask, the rule fires as soon
    # as the window is full: at epoch 5, and training stops there.
    model = gt.models.build("mlp", in_shape=(8,), num_classes=3, widths=(10,), seed=0)
    t = gt.pruning.prune(model, "early_magnitude", density=0.3, data=_data(), lr=0.0, epochs=20)
    assert t.meta["mode"] == "weight" and t.meta["detected"] and t.meta["normalize"] == "kept"
    assert t.meta["epoch_drawn"] == 5 and t.meta["cost"]["epochs"] == 5
    assert t.meta["distances"] == [None] * 4 + [0.0]
    assert t.kept == round(0.3 * t.total)
    # the mask is the global magnitude mask of the (unchanged) initial weights
    mag = gt.pruning.prune(model, "magnitude", density=0.3)
    assert all(torch.equal(t.masks[n], mag.masks[n]) for n in mag.masks)
    alias = gt.pruning.prune(model, "early_magnitude", density=0.3, data=_data(), lr=0.0, max_epochs=20)
    assert alias == t  # max_epochs: the deprecated alias of epochs
    with pytest.raises(GraphticketsError, match="alias"):
        gt.pruning.prune(model, "early_magnitude", density=0.3, data=_data(), lr=0.0, epochs=4, max_epochs=20)


def test_weight_mode_training_records_curve() -> None:
    model = gt.models.build("mlp", in_shape=(8,), num_classes=3, widths=(10,), seed=0)
    before = {n: p.clone() for n, p in model.named_parameters()}
    t = gt.pruning.prune(model, "early_magnitude", density=0.2, data=_data(), lr=0.05, epochs=7, tol=0.0)
    assert all(torch.equal(before[n], p) for n, p in model.named_parameters())
    assert len(t.meta["distances"]) == t.meta["cost"]["epochs"] <= 7
    assert t.kept == round(0.2 * t.total)
    fired = [i for i, d in enumerate(t.meta["distances"]) if d is not None and d <= 0.0]  # the rule at tol 0
    assert t.meta["detected"] == bool(fired)
    assert t.meta["epoch_drawn"] == (fired[0] + 1 if fired else 7)
    assert all(d is None for d in t.meta["distances"][:4]) and all(d is not None for d in t.meta["distances"][4:])


def test_channel_mode_exact_density() -> None:
    net = _tiny_bn_net()
    g = torch.Generator().manual_seed(2)
    data = [(torch.randn(16, 1, 8, generator=g), torch.randint(0, 3, (16,), generator=g)) for _ in range(2)]
    t = gt.pruning.prune(net, "early_bird", density=0.5, data=data, epochs=6, lr=0.01)
    assert t.meta["mode"] == "channel" and t.meta["normalize"] == "positions"
    assert t.kept == round(0.5 * t.total) and t.meta["exact"]
    assert t.meta["structured_density"] >= 0.5 and 0.5 < t.meta["channel_density"] < 1.0
    loose = gt.pruning.prune(net, "early_bird", density=0.5, data=data, epochs=6, lr=0.01, exact=False)
    assert loose.density == pytest.approx(loose.meta["structured_density"])
    # structured: conv 3's mask is (kept output rows) x (kept input channels), and the
    # classifier's inputs are on exactly for the kept channels of conv 3
    w3 = loose.masks["3.weight"]
    rows, cols = w3.any(dim=(1, 2)), w3.any(dim=(0, 2))
    assert torch.equal(w3, rows[:, None, None] & cols[None, :, None] & torch.ones_like(w3))
    assert torch.equal(cols, loose.masks["0.weight"].any(dim=(1, 2)))  # producer rows = consumer inputs
    assert torch.equal(loose.masks["7.weight"].any(dim=0), rows.repeat_interleave(8))
    # the exact ticket keeps the drawn channels (grown by the next-ranked ones if it fell short)
    assert t.meta["channels_kept"] >= loose.meta["channels_kept"]


def test_early_bird_is_channel_mode_only() -> None:
    plain = gt.models.build("mlp", in_shape=(8,), num_classes=3, widths=(10,), seed=0)
    with pytest.raises(GraphticketsError, match=r"batchnorm=True.*early_magnitude"):
        gt.pruning.prune(plain, "early_bird", density=0.3, data=_data(), epochs=2)
    bn = gt.models.build("mlp", in_shape=(8,), num_classes=3, widths=(10,), seed=0, batchnorm=True)
    with pytest.raises(GraphticketsError, match="early_magnitude"):
        gt.pruning.prune(bn, "early_bird", density=0.3, data=_data(), epochs=2, mode="weight")
    assert "mode" not in gt.pruning.METHODS["early_magnitude"].hparams()
    assert "l1" not in gt.pruning.METHODS["early_magnitude"].hparams()
    assert gt.pruning.METHODS["early_bird"].hparams()["lr"] == 0.1  # the paper's SGD setting
    assert gt.pruning.METHODS["early_bird"].hparams()["l1"] == 1e-4


def test_l1_penalty_on_gamma_is_applied() -> None:
    # one SGD step (momentum and weight decay 0) from gamma = 1: the cross-entropy gradient is
    # the same with and without the penalty, so sum |gamma| differs by exactly lr * l1 * C
    net = gt.models.build("mlp", in_shape=(8,), num_classes=3, widths=(10, 6), seed=0, batchnorm=True)
    data = _data(1)
    kw = dict(density=0.5, data=data, epochs=1, lr=0.05, momentum=0.0, weight_decay=0.0)
    with_l1 = gt.pruning.prune(net, "early_bird", l1=0.5, **kw)
    without = gt.pruning.prune(net, "early_bird", l1=0.0, **kw)
    channels = 10 + 6
    diff = without.meta["gamma_l1"][0] - with_l1.meta["gamma_l1"][0]
    assert diff == pytest.approx(0.05 * 0.5 * channels, rel=1e-4)
    assert with_l1.meta["l1"] == 0.5 and without.meta["l1"] == 0.0
    # by hand: gamma after the step is 1 - lr * (dCE/dgamma + l1)
    ref = copy.deepcopy(net).train()
    x, y = data[0]
    torch.nn.functional.cross_entropy(ref(x), y).backward()
    g = torch.cat([ref.bn1.weight.grad, ref.bn2.weight.grad])
    assert with_l1.meta["gamma_l1"][0] == pytest.approx(float((1 - 0.05 * (g + 0.5)).abs().sum()), rel=1e-5)


def test_early_bird_on_an_mlp_with_batchnorm_units_are_channels() -> None:
    g = torch.Generator().manual_seed(3)
    data = [(torch.randn(32, 12, generator=g), torch.randint(0, 4, (32,), generator=g)) for _ in range(3)]
    net = gt.models.build("mlp", in_shape=(12,), num_classes=4, widths=(16, 16), seed=0, batchnorm=True)
    assert eb.bn_channels(net) == {"bn1": "fc1.weight", "bn2": "fc2.weight"}
    assert eb.channel_consumers(net) == {"bn1": ["fc2.weight"], "bn2": ["classifier.weight"]}
    loose = gt.pruning.prune(net, "early_bird", density=0.3, data=data, epochs=6, exact=False, seed=1)
    assert loose.meta["mode"] == "channel"
    m1, m2, mc = loose.masks["fc1.weight"], loose.masks["fc2.weight"], loose.masks["classifier.weight"]
    u1, u2 = m1.any(dim=1), m2.any(dim=1)  # kept units
    assert torch.equal(m1, u1[:, None].expand_as(m1))  # a pruned unit loses every input weight
    assert torch.equal(m2, u2[:, None] & u1[None, :])  # ... and every outgoing one
    assert torch.equal(mc, u2[None, :].expand_as(mc))
    assert int(u1.sum()) + int(u2.sum()) == loose.meta["channels_kept"]
    t = gt.pruning.prune(net, "early_bird", density=0.3, data=data, epochs=6, seed=1)
    assert t.kept == round(0.3 * t.total) and t.meta["exact"]
    # graphs: BatchNorm1d keeps unit identity; a pruned unit has no edge in the layered graph
    lg = gt.graphs.layered_graph(net, loose)
    nodes = lg.nodes.reset_index(drop=True)
    deg = np.asarray(lg.adjacency.sum(axis=0)).ravel() + np.asarray(lg.adjacency.sum(axis=1)).ravel()
    assert lg.adjacency.nnz == loose.kept
    hidden = [i for i in range(len(nodes)) if deg[i] == 0]
    assert len(hidden) >= int((~u1).sum()) + int((~u2).sum())
    rg = gt.graphs.relational_graph(net, t)
    assert rg.adjacency.shape[0] == 16
    m = gt.analysis.metrics(lg)
    assert m["n_edges"] == loose.kept and m["weight_density"] == pytest.approx(loose.density, abs=1e-12)
