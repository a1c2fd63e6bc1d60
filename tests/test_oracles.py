"""The trained methods against plain reference implementations (tests/oracles, issue 31).

Each method and its oracle run on the same model, seed and data order (a fresh
``gt.data.batches`` each, reshuffled every epoch) for a few real epochs, on a small MLP and a
small conv net. Tolerance: none. The oracles use ``torch.optim.SGD``/``Adam`` and the same
order of floating-point operations where it decides a bit (the loss as cross-entropy plus the
penalty, the straight-through estimator as ``hard + s - s.detach()``), so masks, rewind states
and scores agree bit for bit (IoU 1.0); a looser comparison would hide a one-weight error.

The mutation tests at the end change one line of a method (monkeypatched for the test only)
and check that its oracle comparison then fails: the comparison can catch a wrong method.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from oracles.common import epochs_of
from oracles.early_bird import draw
from oracles.elastic import elastic as elastic_oracle
from oracles.gem_miner import gem_miner as gem_oracle
from oracles.imp import imp as imp_oracle
from torch import nn

import graphtickets as gt

Masks = dict[str, torch.Tensor]


# ---------------------------------------------------------------------------- models and data
def _mlp(batchnorm: bool = False, widths: tuple[int, ...] = (16, 16), seed: int = 0, **kw: Any) -> nn.Module:
    return gt.models.build("mlp", in_shape=(20,), num_classes=4, widths=widths, seed=seed, batchnorm=batchnorm, **kw)


def _conv(batchnorm: bool = False, seed: int = 0) -> nn.Module:
    """Two 3x3 convolutions on 1x8x8 (BatchNorm after each when asked), a Linear classifier."""
    torch.manual_seed(seed)
    norm = (lambda c: [nn.BatchNorm2d(c)]) if batchnorm else (lambda c: [])
    return nn.Sequential(
        nn.Conv2d(1, 6, 3, padding=1, bias=not batchnorm), *norm(6), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 8, 3, padding=1, bias=not batchnorm), *norm(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32, 10),
    )


def _teacher() -> torch.utils.data.TensorDataset:
    """256 Gaussian points in 20-d labelled by a random linear teacher (4 classes)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 20, generator=g)
    return torch.utils.data.TensorDataset(x, (x @ torch.randn(20, 4, generator=g)).argmax(1))


_DIGITS: list[Any] = []


def _digits() -> torch.utils.data.Dataset:
    """The first 256 scikit-learn digits (1x8x8)."""
    if not _DIGITS:
        _DIGITS.append(torch.utils.data.Subset(gt.data.load("digits"), range(256)))
    return _DIGITS[0]


NETS: dict[str, tuple[Callable[..., nn.Module], Callable[[], Any]]] = {"mlp": (_mlp, _teacher), "conv": (_conv, _digits)}


def _setup(net: str, batchnorm: bool = False) -> tuple[nn.Module, Callable[[], gt.data.Batches]]:
    build, dataset = NETS[net]
    return build(batchnorm=batchnorm), lambda: gt.data.batches(dataset(), batch_size=32, seed=3)


def _same(a: Masks, b: Masks) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[n], b[n]) for n in a)


def patch_everywhere(monkeypatch: pytest.MonkeyPatch, original: Any, replacement: Any) -> None:
    """Replace every module-level binding of ``original`` in graphtickets (wherever a split put it)."""
    hits = 0
    for name, mod in list(sys.modules.items()):
        if name.startswith("graphtickets") and mod is not None:
            for attr, value in list(vars(mod).items()):
                if value is original:
                    monkeypatch.setattr(mod, attr, replacement)
                    hits += 1
    assert hits, f"{original!r} is bound nowhere in graphtickets"


# ---------------------------------------------------------------------------- IMP
IMP_CASES = {  # rewind 3 is not a multiple of the 8 steps per epoch; 0.3 is below round 5's 0.328
    "mlp": {"density": 0.3, "epochs": 2, "rewind": 3},
    "conv": {"density": 0.3, "epochs": 2, "rewind": 11, "output_rate": None, "optimizer": "sgd", "lr": 0.05},
}


def _imp_matches(net: str) -> None:
    model, data = _setup(net)
    kw = dict(IMP_CASES[net])
    fam = gt.pruning.imp_rounds(model, data=data(), seed=0, **kw)
    opt, lr = kw.pop("optimizer", "adam"), kw.pop("lr", 1.2e-3)
    ref = imp_oracle(model, next_epoch=epochs_of(data()), opt=opt, lr=lr, **kw)
    assert [t.meta["round"] for t in fam] == list(range(1, len(ref["rounds"]) + 1))
    for t, m in zip(fam, ref["rounds"], strict=True):  # every round's mask, hence its density
        assert _same(t.masks, m), f"round {t.meta['round']}"
    total = fam[0].total
    assert [r["density"] for r in fam[-1].meta["rounds"]] == [1.0] + [sum(int(v.sum()) for v in m.values()) / total
                                                                    for m in ref["rounds"]]
    weights = fam[-1].weights  # the rewind point: the whole floating state after k steps
    assert weights is not None and weights.keys() == {k for k, v in ref["rewind_state"].items() if v.is_floating_point()}
    assert all(torch.equal(weights[k], ref["rewind_state"][k]) for k in weights)
    assert fam[-1].kept == round(kw["density"] * total)


@pytest.mark.parametrize("net", ["mlp", "conv"])
def test_imp_matches_its_oracle(net: str) -> None:
    _imp_matches(net)


def test_imp_output_layer_at_half_rate_by_count() -> None:
    """The classifier keeps round(0.9^r * n_out) after round r (rate 0.2), also in the last cut."""
    model, data = _setup("mlp")
    fam = gt.pruning.imp_rounds(model, data=data(), seed=0, **IMP_CASES["mlp"])
    assert [int(t.masks["classifier.weight"].sum()) for t in fam] == [round(0.9**r * 64) for r in range(1, 7)]


# ---------------------------------------------------------------------------- Early-Bird
EB = {"epochs": 12}


def _early_bird_matches(net: str, density: float, channel_density: float | None) -> gt.Ticket:
    model, data = _setup(net, batchnorm=True)
    extra = {} if channel_density is None else {"channel_density": channel_density}
    t = gt.pruning.prune(model, "early_bird", density=density, data=data(), seed=0, **EB, **extra)
    c = t.meta["channel_density"]
    ref = draw(model, density=density, channel_density=c, next_epoch=epochs_of(data()), **EB)
    assert (t.meta["epoch_drawn"], t.meta["detected"]) == (ref["epoch"], ref["detected"])
    assert round(t.meta["structured_density"] * t.total) == ref["structured"]
    assert t.meta["channels_kept"] == sum(int(m.sum()) for m in ref["channels"].values())
    assert _same(t.masks, ref["masks"])
    assert t.kept == round(density * t.total)
    return t


@pytest.mark.parametrize("net", ["mlp", "conv"])
@pytest.mark.parametrize("channel_density", [0.6, None])
def test_early_bird_matches_its_oracle(net: str, channel_density: float | None) -> None:
    _early_bird_matches(net, 0.3, channel_density)


def test_early_bird_grows_a_too_sparse_channel_mask_like_its_oracle() -> None:
    """A low channel density whose |gamma| ranking keeps fewer weights than asked: grown by channels."""
    t = _early_bird_matches("mlp", 0.3, 0.35)
    assert t.meta["channels_kept"] > round(0.35 * 32)  # 32 BatchNorm channels: the mask was grown


def test_early_bird_default_channel_density_is_the_smallest_that_keeps_enough() -> None:
    from oracles.early_bird import weight_mask

    model, data = _setup("conv", batchnorm=True)
    t = gt.pruning.prune(model, "early_bird", density=0.3, data=data(), seed=0, epochs=1)
    c, k = t.meta["channel_density"], round(0.3 * t.total)

    def kept(c: float) -> int:  # every BatchNorm keeps its first round(c * C) channels
        bns = {n: m.num_features for n, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)}
        ch = {n: torch.arange(size) < round(c * size) for n, size in bns.items()}
        names = [n for n in t.masks]
        return sum(int(m.sum()) for m in weight_mask(model, ch, names).values())

    assert kept(c) >= k > kept(c - 2e-4)


@pytest.mark.parametrize("net", ["mlp", "conv"])
def test_early_magnitude_matches_its_oracle(net: str) -> None:
    model, data = _setup(net)
    t = gt.pruning.prune(model, "early_magnitude", density=0.2, data=data(), seed=0, epochs=12, tol=0.2)
    ref = draw(model, density=0.2, next_epoch=epochs_of(data()), epochs=12, tol=0.2)
    assert t.meta["detected"] and ref["detected"]  # the rule fires: the epoch drawn is compared
    assert t.meta["epoch_drawn"] == ref["epoch"]
    assert _same(t.masks, ref["masks"])


# ---------------------------------------------------------------------------- Gem-Miner
GEM = {"epochs": 3, "prune_every": 1, "lr": 0.2}  # a large rate piles scores up at 0 and 1: ties at the cuts


@pytest.mark.parametrize("net", ["mlp", "conv"])
def test_gem_miner_matches_its_oracle(net: str) -> None:
    from graphtickets.pruning.gem_miner import gem_mine

    model, data = _setup(net)
    if net == "mlp":
        model = _mlp(init="kaiming_normal")
    res = gem_mine(model, density=0.1, data=data(), seed=0, **GEM)
    ref = gem_oracle(model, density=0.1, next_epoch=epochs_of(data()), seed=0, **GEM)
    assert any(e.get("tied", 0) > e.get("tied_kept", 0) > 0 for e in res.meta["epochs"])  # ties were drawn
    assert len(res.event_masks) == len(ref["cuts"]) == 3
    assert all(_same(a, b) for a, b in zip(res.event_masks, ref["cuts"], strict=True))
    assert all(torch.equal(res.scores[n], ref["scores"][n]) for n in res.scores)
    t = gt.pruning.prune(model, "gem_miner", density=0.1, data=data(), seed=0, finetune_epochs=0, **GEM)
    assert _same(t.masks, ref["masks"]) and t.kept == round(0.1 * t.total)


# ---------------------------------------------------------------------------- Elastic
def _floating_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items() if v.is_floating_point()}


@pytest.mark.parametrize("target_widths", [(16, 16), (16,) * 5])
def test_elastic_of_an_imp_ticket_on_batchnorm_mlps_matches_its_oracle(target_widths: tuple[int, ...]) -> None:
    """IMP (rewind 3) on a 3-hidden-layer MLP with BatchNorm, squeezed to 2 / stretched to 5.

    The oracle's source is the IMP oracle's own: its last mask and its rewound state."""
    source, target = _mlp(True, (16, 16, 16)), _mlp(True, target_widths, seed=1)
    data = lambda: gt.data.batches(_teacher(), batch_size=32, seed=3)  # noqa: E731
    kw = {"density": 0.5, "epochs": 2, "rewind": 3}
    t = gt.pruning.prune(source, "imp", data=data(), seed=0, **kw)
    ref = imp_oracle(source, next_epoch=epochs_of(data()), **kw)
    e = gt.pruning.prune(target, "elastic", density=0.4, source=t, source_model=source)
    src_state = {**_floating_state(source), **{k: v for k, v in ref["rewind_state"].items() if v.is_floating_point()}}
    masks, carried = elastic_oracle(ref["rounds"][-1], src_state, _floating_state(target), 0.4)
    assert _same(e.masks, masks) and e.kept == round(0.4 * e.total)
    assert e.weights is not None and e.weights.keys() == carried.keys()
    assert all(torch.equal(e.weights[k], carried[k]) for k in carried)  # BatchNorm running stats included


def test_elastic_on_batchnorm_resnets_matches_its_oracle() -> None:
    """resnet1d 8 -> 14 (one block per stage -> two) with trained BatchNorm statistics."""
    source = gt.models.build("resnet1d", in_shape=(40,), num_classes=4, depth=8, widths=(4, 4, 4), seed=0)
    target = gt.models.build("resnet1d", in_shape=(40,), num_classes=4, depth=14, widths=(4, 4, 4), seed=1)
    with torch.no_grad():  # running statistics that differ from the defaults
        source.train()(torch.randn(64, 40, generator=torch.Generator().manual_seed(0)))
    t = gt.pruning.prune(source, "magnitude", density=0.3)
    e = gt.pruning.prune(target, "elastic", density=0.25, source=t, source_model=source)
    masks, carried = elastic_oracle(t.masks, _floating_state(source), _floating_state(target), 0.25)
    assert _same(e.masks, masks) and e.weights is not None
    assert all(torch.equal(e.weights[k], carried[k]) for k in carried) and e.weights.keys() == carried.keys()


# ---------------------------------------------------------------------------- mutations
def _fails(check: Callable[[], None]) -> bool:
    try:
        check()
    except AssertionError:
        return True
    return False


def test_mutant_imp_rewinding_one_step_late_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    train = gt.training.train

    def late(*args: Any, rewind_iteration: int | None = None, **kw: Any) -> Any:
        return train(*args, rewind_iteration=None if rewind_iteration is None else rewind_iteration + 1, **kw)

    patch_everywhere(monkeypatch, train, late)
    assert _fails(lambda: _imp_matches("mlp"))


def test_mutant_imp_output_layer_at_the_full_rate_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    from graphtickets.pruning.imp import classifier_rate

    patch_everywhere(monkeypatch, classifier_rate, lambda out, rate, dense: rate if out == "half" else None)
    assert _fails(lambda: _imp_matches("mlp"))


def test_mutant_early_bird_window_off_by_one_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    from graphtickets.pruning.early_bird import EarlyBirdDetector

    class Short(EarlyBirdDetector):
        def __init__(self, tol: float = 0.1, window: int = 5, normalize: str = "positions") -> None:
            super().__init__(tol, window - 1, normalize)

    patch_everywhere(monkeypatch, EarlyBirdDetector, Short)
    assert _fails(lambda: _early_bird_matches("mlp", 0.3, 0.6))


def test_mutant_early_magnitude_normalised_by_positions_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    from graphtickets.pruning.early_bird import mask_distance

    patch_everywhere(monkeypatch, mask_distance, lambda a, b, normalize="positions": mask_distance(a, b))
    assert _fails(lambda: test_early_magnitude_matches_its_oracle("mlp"))


def test_mutant_gem_miner_ties_by_position_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    from graphtickets.pruning.gem_miner import select_random_ties

    class InOrder:  # "permutes" the tied weights into position order: ties kept by lowest index
        def permutation(self, x: Any) -> np.ndarray:
            return np.asarray(x)

    patch_everywhere(monkeypatch, select_random_ties,
                     lambda scores, density, rng, prior=None: select_random_ties(scores, density, InOrder(), prior))
    assert _fails(lambda: test_gem_miner_matches_its_oracle("mlp"))


def test_mutant_elastic_block_order_reversed_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    from graphtickets.pruning.elastic import block_mapping

    patch_everywhere(monkeypatch, block_mapping, lambda n_s, n_t: [0] + block_mapping(n_s, n_t)[:0:-1])
    assert _fails(lambda: test_elastic_of_an_imp_ticket_on_batchnorm_mlps_matches_its_oracle((16,) * 5))
