"""IMP with rewinding: round counts, exact nested densities, rewinding, a hand-checked example."""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

import graphtickets as gt
from graphtickets.errors import GraphticketsError
from graphtickets.pruning.imp import family, imp_at, imp_rounds, n_rounds, round_densities


def _data(n_batches: int = 2, n_in: int = 8, classes: int = 3) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(1)
    return [
        (torch.randn(16, n_in, generator=g), torch.randint(0, classes, (16,), generator=g))
        for _ in range(n_batches)
    ]


def _mlp() -> nn.Module:
    return gt.models.build("mlp", in_shape=(8,), num_classes=3, widths=(10, 10), seed=0)


def test_round_counts() -> None:
    # smallest r with 0.8^r <= d: 0.8^7 = 0.2097 > 0.2 >= 0.8^8; 0.8^13 = 0.055 > 0.05 >= 0.8^14
    assert [n_rounds(d, 0.2) for d in (0.8, 0.64, 0.5, 0.2, 0.05, 0.01)] == [1, 2, 4, 8, 14, 21]
    assert n_rounds(1.0, 0.2) == 1 and n_rounds(0.25, 0.5) == 2
    ds = round_densities(0.3, 0.2)
    assert ds[:-1] == pytest.approx([0.8**r for r in range(1, 6)]) and ds[-1] == 0.3
    with pytest.raises(GraphticketsError):
        n_rounds(0.5, 1.0)


def test_family_is_nested_with_exact_counts() -> None:
    model = _mlp()
    before = copy.deepcopy(model.state_dict())
    fam = imp_rounds(model, density=0.3, data=_data(), epochs=1, train_last=False)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # untouched
    n = fam[0].total
    assert n == 8 * 10 + 10 * 10 + 10 * 3
    expected = [round(0.8**r * n) for r in range(1, 6)] + [round(0.3 * n)]
    assert [t.kept for t in fam] == expected
    assert [t.meta["round"] for t in fam] == list(range(1, 7))
    dens = family(fam)
    assert list(dens) == [t.density for t in fam]
    for a, b in zip(fam, fam[1:], strict=False):
        assert all(not bool((b.masks[k] & ~a.masks[k]).any()) for k in a.masks)
    rounds = fam[-1].meta["rounds"]
    assert [r["round"] for r in rounds] == list(range(7))
    assert all(r["train_accuracy"] is not None for r in rounds[:-1]) and "train_accuracy" not in rounds[-1]
    assert fam[-1].weights is None  # rewind 0: the model's own initialization


def _hand_model() -> nn.Module:
    net = nn.Sequential(nn.Linear(2, 2, bias=False))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[0.5, -0.2], [0.1, 0.3]]))
    return net


def test_two_round_example_by_hand() -> None:
    # One example x = (1, 2), label 0; SGD with lr 1, no momentum, one step per round.
    # CE gradient of a linear layer: (softmax(Wx) - e_y) x^T.
    x, y = torch.tensor([[1.0, 2.0]]), torch.tensor([0])
    w0 = np.array([[0.5, -0.2], [0.1, 0.3]])

    def step(w: np.ndarray, mask: np.ndarray) -> np.ndarray:
        z = w @ np.array([1.0, 2.0])
        p = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
        grad = np.outer(p - np.array([1.0, 0.0]), [1.0, 2.0])
        return (w - grad) * mask

    # round 1: train dense -> W1 = [[1.1457, 1.0913], [-0.5457, -0.9913]]: keep the 2 largest
    w1 = step(w0, np.ones((2, 2)))
    assert np.allclose(w1, [[1.145656, 1.091313], [-0.545656, -0.991313]], atol=1e-6)
    m1 = np.array([[True, True], [False, False]])
    # round 2: rewind to W0 * m1, train -> [[0.975, 0.750], [0, 0]]: keep the largest
    w2 = step(w0 * m1, m1)
    assert np.allclose(w2, [[0.975021, 0.750042], [0.0, 0.0]], atol=1e-6)
    m2 = np.array([[True, False], [False, False]])
    # (pruning the INITIAL magnitudes would have kept (0,0) and (1,1) in round 1)

    fam = imp_rounds(
        _hand_model(), density=0.25, data=[(x, y)], rate=0.5, epochs=1, optimizer="sgd",
        lr=1.0, momentum=0.0,
    )
    assert len(fam) == 2
    assert fam[0].masks["0.weight"].numpy().tolist() == m1.tolist()
    assert fam[1].masks["0.weight"].numpy().tolist() == m2.tolist()
    # recorded accuracy of round 2's ticket trained from W0 * m2: logits (0.5 + 1, 0) -> class 0
    assert fam[1].meta["train_accuracy"] == 1.0


def test_rewind_zero_retrains_from_initialization() -> None:
    from graphtickets import training

    model, data = _mlp(), _data()
    t = gt.pruning.prune(model, "imp", density=0.5, data=data, epochs=2, optimizer="sgd", lr=0.05, seed=3)
    # the last ticket's recorded training equals training the masked init from scratch
    fresh = copy.deepcopy(model)
    training.enforce_masks(fresh, t.masks)
    h = training.train(fresh, data, masks=t.masks, epochs=2, optimizer="sgd", lr=0.05, seed=3)
    assert t.meta["rounds"][-1]["loss"] == h.epochs[-1]["loss"]
    assert t.meta["train_accuracy"] == h.epochs[-1]["accuracy"]  # the running training accuracy
    assert "accuracy" not in t.meta and all("accuracy" not in r for r in t.meta["rounds"])  # no alias
    assert t.weights is None  # rewind 0: no rewound weights to carry
    assert len(t.meta["rounds"]) == n_rounds(0.5, 0.2) + 1
    assert t.meta["cost"]["epochs"] == 2 * len(t.meta["rounds"])
    assert t.config["hparams"]["rewind"] == 0 and t.kept == round(0.5 * t.total)


def test_rewinding_restores_saved_weights_bit_for_bit() -> None:
    from graphtickets import training

    model, data = _mlp(), _data(n_batches=3)
    fam = imp_rounds(model, density=0.6, data=data, rewind=2, epochs=2, seed=5, train_last=False)
    ref = copy.deepcopy(model)
    hist = training.train(ref, data, epochs=2, optimizer="adam", lr=1.2e-3, seed=5, rewind_iteration=2)
    assert hist.rewind is not None
    for t in fam:
        assert t.weights is not None
        assert t.weights.keys() == hist.rewind.keys()  # the whole state (no BatchNorm here)
        for name, w in t.weights.items():  # unmasked: Ticket.apply masks them
            assert torch.equal(w, hist.rewind[name]), name
        # the saved weights differ from the initialization: rewinding is not to init
        assert not torch.equal(t.weights["fc1.weight"], dict(model.named_parameters())["fc1.weight"])
        net = t.apply(copy.deepcopy(model))
        assert torch.equal(net.fc1.weight, hist.rewind["fc1.weight"] * t.masks["fc1.weight"])
    with pytest.raises(GraphticketsError, match="rewind"):
        imp_rounds(model, density=0.8, data=data, rewind=100, epochs=1)
    with pytest.raises(GraphticketsError, match="rewind"):  # k = T: nothing left to train
        imp_rounds(model, density=0.8, data=data, rewind=6, epochs=2)


def test_layer_scope_output_rate_and_dense_classifier() -> None:
    model, data = _mlp(), _data()
    lay = imp_rounds(model, density=0.4, data=data, epochs=1, scope="layer", output_rate=None, train_last=False)
    for t, d in zip(lay, round_densities(0.4, 0.2), strict=True):
        assert t.layer_counts() == {n: (round(d * tot), tot) for n, (_, tot) in t.layer_counts().items()}
    half = imp_rounds(model, density=0.4, data=data, epochs=1, scope="layer", train_last=False)  # Frankle & Carbin
    for r, (t, d) in enumerate(zip(half, round_densities(0.4, 0.2), strict=True), start=1):
        counts = t.layer_counts()
        assert counts["classifier.weight"] == (round(0.9**r * 30), 30)
        assert all(counts[n] == (round(d * tot), tot) for n, (_, tot) in counts.items() if n != "classifier.weight")
    out = imp_rounds(model, density=0.4, data=data, epochs=1, output_rate=0.1, train_last=False)
    for r, (t, d) in enumerate(zip(out, round_densities(0.4, 0.2), strict=True), start=1):
        assert t.kept == round(d * t.total)
        assert t.layer_counts()["classifier.weight"][0] == round(0.9**r * 30)
    kc = gt.pruning.prune(model, "imp", density=0.5, data=data, epochs=1, keep_classifier_dense=True)
    assert "classifier.weight" not in kc.masks and kc.kept == round(0.5 * 180)
    with pytest.raises(GraphticketsError, match="exclude"):
        imp_rounds(model, density=0.5, data=data, output_rate=0.1, keep_classifier_dense=True)


def test_one_shot_iterator_data_is_reused_each_epoch() -> None:
    model = _mlp()
    t = gt.pruning.prune(model, "imp", density=0.8, data=iter(_data()), epochs=2)
    assert t.meta["cost"]["iterations"] == 2 * 2 * 2  # 2 trainings x 2 epochs x 2 batches
    assert math.isclose(t.density, round(0.8 * t.total) / t.total)


def test_output_layer_at_half_the_rate_by_default() -> None:
    # Frankle & Carbin: the classifier loses rate/2 of its remaining weights per round, the
    # total stays exactly (1 - rate)^r (global scope); output_rate=None ranks it with the rest
    model, data = _mlp(), _data()
    fam = imp_rounds(model, density=0.2, data=data, epochs=1, train_last=False)
    assert fam[0].config["hparams"]["output_rate"] == "half"
    for t in fam:
        r = t.meta["round"]
        kept, n_out = t.layer_counts()["classifier.weight"]
        assert kept == round(0.9**r * n_out)
        assert abs(kept / n_out - (1 - 0.2 / 2) ** r) <= 0.5 / n_out
        assert t.kept == round((0.8**r if r < len(fam) else 0.2) * t.total)
    plain = imp_rounds(model, density=0.2, data=data, epochs=1, train_last=False, output_rate=None)
    assert any(p.layer_counts()["classifier.weight"] != t.layer_counts()["classifier.weight"] for p, t in zip(plain, fam, strict=True))
    with pytest.raises(GraphticketsError, match="output_rate"):
        imp_rounds(model, density=0.5, data=data, output_rate="third")


def test_one_trajectory_serves_every_density_exactly() -> None:
    # densities 0.5, 0.3, 0.2 from ONE run: each target has its exact count, equals the last
    # ticket of a separate run to that density, and the family is nested
    model = _mlp()
    for make in (lambda: _data(3), lambda: gt.data.batches(torch.utils.data.TensorDataset(*_data(1)[0]), batch_size=4, seed=2)):
        fam = imp_rounds(model, densities=[0.2, 0.5, 0.3], data=make(), epochs=1, seed=1)
        dens = family(fam)  # nested, densest first
        assert list(dens) == sorted(dens, reverse=True)
        n = fam[0].total
        targets = [t for t in fam if t.meta["target"]]
        assert [t.config["density"] for t in targets] == [0.5, 0.3, 0.2]
        assert [t.kept for t in targets] == [round(d * n) for d in (0.5, 0.3, 0.2)]
        path = [t for t in fam if t.meta["trajectory"]]
        assert [t.meta["round"] for t in path] == list(range(1, n_rounds(0.2, 0.2)))
        assert [t.kept for t in path] == [round(0.8**r * n) for r in range(1, n_rounds(0.2, 0.2))]
        for d in (0.5, 0.3, 0.2):
            alone = imp_rounds(model, density=d, data=make(), epochs=1, seed=1)[-1]
            got = gt.pruning.imp_at(fam, d)
            assert all(torch.equal(got.masks[k], alone.masks[k]) for k in got.masks), d
            assert got.meta["train_accuracy"] == alone.meta["train_accuracy"]
        # every round of the trajectory is trained once; the dense run too
        assert fam[-1].meta["cost"]["epochs"] == n_rounds(0.2, 0.2)
    assert gt.pruning.imp_at(fam, 0.8).meta["round"] == 1  # a round of the trajectory
    with pytest.raises(GraphticketsError, match="densities"):
        gt.pruning.imp_at(fam, 0.1)


def test_every_round_is_trained_with_the_regime_passed_in() -> None:
    # a step schedule with gamma 0 from epoch 0 trains with lr 0: the weights never move, so
    # every round prunes the INITIAL magnitudes, and IMP (classifier ranked with the rest)
    # is global magnitude pruning at init. The same run with a live schedule is not.
    model, data = _mlp(), _data()
    frozen = gt.pruning.prune(model, "imp", density=0.3, data=data, epochs=2, optimizer="sgd", lr=0.5,
                              schedule="step", milestones=[0], gamma=0.0, output_rate=None)
    mag = gt.pruning.prune(model, "magnitude", density=0.3)
    assert all(torch.equal(frozen.masks[k], mag.masks[k]) for k in mag.masks)
    live = gt.pruning.prune(model, "imp", density=0.3, data=data, epochs=2, optimizer="sgd", lr=0.5,
                            schedule="step", milestones=[1], gamma=0.1, output_rate=None)
    assert any(not torch.equal(live.masks[k], mag.masks[k]) for k in mag.masks)
    assert live.config["hparams"]["schedule"] == "step" and live.config["hparams"]["milestones"] == [1]


def test_rewound_rounds_train_the_rest_of_the_run() -> None:
    # T = 3 epochs x 3 batches = 9 steps; rewinding to k = 4 restores the state after 4 steps
    # and each round trains T - k = 5 steps from epoch k // 3 = 1 of the schedule on
    from graphtickets import training

    model, data = _mlp(), _data(n_batches=3)
    regime = dict(epochs=3, optimizer="sgd", lr=0.2, momentum=0.0, schedule="step", milestones=[2], gamma=0.5, seed=4)
    fam = imp_rounds(model, density=0.6, data=data, rewind=4, output_rate=None, **regime)  # type: ignore[arg-type]
    rounds = fam[-1].meta["rounds"]
    assert rounds[0]["iterations"] == 9 and all(r["iterations"] == 5 for r in rounds[1:])
    # oracle: the dense run by hand, then round 1 retrained by hand from the saved state
    ref = copy.deepcopy(model)
    hist = training.train(ref, data, rewind_iteration=4, **regime)  # type: ignore[arg-type]
    assert hist.rewind is not None
    net = copy.deepcopy(model)
    training.restore(net, hist.rewind)
    training.enforce_masks(net, fam[0].masks)
    h = training.train(net, data, masks=fam[0].masks, start_epoch=1, max_iterations=5, **regime)  # type: ignore[arg-type]
    assert [e["lr"] for e in h.epochs] == [0.2, 0.1] and [e["epoch"] for e in h.epochs] == [2, 3]
    assert rounds[1]["loss"] == h.epochs[-1]["loss"]


def test_train_start_epoch_resumes_the_schedule() -> None:
    from graphtickets import training

    data = _data(2)
    full = training.train(_mlp(), data, epochs=4, optimizer="sgd", lr=1.0, schedule="step", milestones=[1, 3], gamma=0.1)
    tail = training.train(_mlp(), data, epochs=4, optimizer="sgd", lr=1.0, schedule="step", milestones=[1, 3], gamma=0.1, start_epoch=2)
    assert [e["lr"] for e in tail.epochs] == [e["lr"] for e in full.epochs[2:]]
    assert [e["epoch"] for e in tail.epochs] == [3, 4] and tail.iterations == 4


def test_a_target_just_below_a_round_keeps_the_classifier_what_the_hidden_layers_cannot_hold() -> None:
    # 8 -> 64 -> 3: hidden 512 weights, classifier 192. Density 0.5 lies just below round 3
    # (0.8^3 = 0.512); the classifier's rate for round 4 (0.9^4) would leave the hidden layer
    # 226 weights where only 220 are alive (it used to raise "cannot keep 226").
    model = gt.models.build("mlp", in_shape=(8,), num_classes=3, widths=(64,), seed=0)
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 8, generator=g), torch.randint(0, 3, (64,), generator=g)
    data = [(x[i : i + 16], y[i : i + 16]) for i in range(0, 64, 16)]
    tickets = gt.pruning.imp_rounds(model, densities=[0.5], data=data, epochs=1, rate=0.2)
    target = gt.pruning.imp_at(tickets, 0.5)
    assert target.kept == round(0.5 * 704)
    rounds = {int(t.meta["round"]): t for t in tickets if t.meta.get("trajectory")}
    before = rounds[3]  # the round the target was cut from: the target is nested in it
    assert all(bool((target.masks[n] <= before.masks[n]).all()) for n in target.masks)
    hidden, cls = list(target.masks)[0], list(target.masks)[-1]
    assert int(target.masks[hidden].sum()) == int(before.masks[hidden].sum())  # every alive hidden weight kept
    assert int(target.masks[cls].sum()) == 352 - int(before.masks[hidden].sum())


def test_imp_rounds_and_prune_read_a_batches_object_alike() -> None:
    # the documented property "imp_rounds(densities=...) serves prune(density=d)'s ticket" with
    # a shuffling Batches (whose every iteration moves it to the next epoch's order): a second
    # look at the data before training once shifted every epoch of imp_rounds' trajectory
    tr = gt.data.load("digits", split="train", seed=0)

    def fresh() -> tuple[nn.Module, object]:
        model = gt.models.build("mlp", in_shape=gt.data.info("digits").in_shape, num_classes=10, widths=(16, 16), seed=0)
        return model, gt.data.batches(tr, batch_size=64, shuffle=True, seed=5)

    kw = {"seed": 3, "epochs": 1, "rate": 0.5, "optimizer": "sgd", "lr": 0.05}
    model, data = fresh()
    family_ = gt.pruning.imp_rounds(model, densities=[0.3, 0.1], data=data, **kw)
    model, data = fresh()
    single = gt.pruning.prune(model, "imp", density=0.3, data=data, **kw)
    assert all(torch.equal(imp_at(family_, 0.3).masks[n], single.masks[n]) for n in single.masks)


# ---------------------------------------------------------------------------- trajectories together
def _families_close(a: list[Any], b: list[Any]) -> None:
    assert [t.meta["round"] for t in a] == [t.meta["round"] for t in b]
    for ta, tb in zip(a, b, strict=True):
        assert ta.config["density"] == tb.config["density"] and ta.meta["target"] == tb.meta["target"]
        for n in ta.masks:
            assert torch.equal(ta.masks[n], tb.masks[n]), (ta.meta["round"], n)
        for key in ("train_accuracy", "eval_accuracy"):
            if ta.meta.get(key) is not None:
                assert abs(ta.meta[key] - tb.meta[key]) <= 0.002


@pytest.mark.parametrize("rewind", [0, 3])
def test_imp_rounds_many_equals_the_runs_alone(rewind: int) -> None:
    """Seeds with their own init and data order advance together; the same rounds and masks."""
    from graphtickets.pruning import imp_rounds_many, imp_trajectory_many

    g = torch.Generator().manual_seed(4)
    ds = torch.utils.data.TensorDataset(torch.randn(96, 40, generator=g), torch.randint(0, 10, (96,), generator=g))
    models = [gt.models.build("cnn1d", in_shape=(40,), num_classes=10, channels=4, batchnorm=True, seed=s) for s in range(3)]
    ev = [(torch.randn(32, 40, generator=g), torch.randint(0, 10, (32,), generator=g))]
    kw: dict[str, Any] = {"densities": [0.6, 0.45], "epochs": 2, "optimizer": "sgd", "lr": 0.05, "rewind": rewind,
                          "eval_data": ev}
    data = lambda s: gt.data.batches(ds, batch_size=24, seed=10 + s)  # noqa: E731
    alone = [imp_rounds(m, data=data(s), seed=s, **kw) for s, m in enumerate(models)]
    together = imp_rounds_many(models, data=[data(s) for s in range(3)], seeds=[0, 1, 2], **kw)
    for a, b in zip(alone, together, strict=True):
        _families_close(a, b)
        assert any(n.startswith("together K=3") for n in b[0].meta["trained_together"])
        if rewind:
            for n, v in a[0].weights.items():
                torch.testing.assert_close(b[0].weights[n], v, atol=1e-5, rtol=1e-4)
    picked = imp_trajectory_many(models, densities=[0.45], data=[data(s) for s in range(3)], seeds=[0, 1, 2],
                                 epochs=1, optimizer="sgd", lr=0.05)  # fmt: skip
    assert [round(p[0.45].density, 2) for p in picked] == [0.45] * 3
