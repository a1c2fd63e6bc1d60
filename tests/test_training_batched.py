"""The batched trainer against one-by-one training, and the lean optimizers against torch.optim.

Oracle: :func:`graphtickets.training.train` run on each ticket separately (the batched
trainer shares no forward/backward code with it: the stacked engine writes its own backward,
the vmap engine runs torch.func) and torch's own optimizer classes.
"""

from __future__ import annotations

import copy
import subprocess
import sys
from typing import Any

import pytest
import torch
from torch import nn

import graphtickets as gt
from graphtickets.training import train
from graphtickets.training.batched import can_batch, train_many
from graphtickets.training.optim import LeanOptimizer

K = 4


def _data(shape: tuple[int, ...], n_batches: int = 4, batch: int = 24, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    out = [(torch.randn(batch, *shape, generator=g), torch.randint(0, 5, (batch,), generator=g)) for _ in range(n_batches)]
    out.append((torch.randn(7, *shape, generator=g), torch.randint(0, 5, (7,), generator=g)))  # a smaller last batch
    return out


def _mlp(seed: int) -> nn.Module:
    return gt.models.build("mlp", in_shape=(12,), num_classes=5, widths=(16, 16), seed=seed)


def _conv_bn(seed: int) -> nn.Module:
    torch.manual_seed(seed)  # test-only: the layers' own init
    return nn.Sequential(
        nn.Unflatten(1, (1, 12)), nn.Conv1d(1, 6, 3, padding=1, bias=False), nn.BatchNorm1d(6), nn.ReLU(), nn.MaxPool1d(2),
        nn.Conv1d(6, 8, 3, padding=1, bias=False), nn.BatchNorm1d(8), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 6, 5),
    )


def _masks(models: list[nn.Module], density: float = 0.4) -> list[dict[str, torch.Tensor]]:
    out = []
    for i, m in enumerate(models):
        g = torch.Generator().manual_seed(100 + i)
        out.append({n: torch.rand(p.shape, generator=g) < density for n, p in gt.prunable(m).items()})
    return out


def _both(make: Any, data: list[Any], masks_density: float = 0.4, **kw: Any) -> tuple[list[nn.Module], list[nn.Module], list[Any], list[Any], list[Any]]:
    models = [make(s) for s in range(K)]
    masks = _masks(models, masks_density)
    seq = [copy.deepcopy(m) for m in models]
    bat = [copy.deepcopy(m) for m in models]
    engine = kw.pop("engine", "auto")
    hs = [train(m, data, masks=mk, **kw) for m, mk in zip(seq, masks, strict=True)]
    hb = train_many(bat, data, masks=masks, engine=engine, **kw)
    return seq, bat, masks, hs, hb


def _close(seq: list[nn.Module], bat: list[nn.Module], *, atol: float = 2e-5, rtol: float = 1e-4) -> None:
    for a, b in zip(seq, bat, strict=True):
        sa, sb = a.state_dict(), b.state_dict()
        assert list(sa) == list(sb)
        for name in sa:
            if sa[name].is_floating_point():
                torch.testing.assert_close(sb[name], sa[name], atol=atol, rtol=rtol, msg=name)
            else:
                assert torch.equal(sa[name], sb[name]), name


def _pruned_zero(models: list[nn.Module], masks: list[dict[str, torch.Tensor]]) -> None:
    for m, mk in zip(models, masks, strict=True):
        params = dict(m.named_parameters())
        for n, keep in mk.items():
            assert bool((params[n].detach()[~keep] == 0).all()), n


OPTS = [
    {"optimizer": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 1e-3},
    {"optimizer": "sgd", "lr": 0.05, "momentum": 0.9, "nesterov": True},
    {"optimizer": "adam", "lr": 3e-3, "weight_decay": 1e-4},
    {"optimizer": "adamw", "lr": 3e-3, "weight_decay": 1e-2},
]


@pytest.mark.parametrize("engine", ["stacked", "vmap"])
@pytest.mark.parametrize("opt", OPTS, ids=[f"{o['optimizer']}{'-nesterov' if o.get('nesterov') else ''}" for o in OPTS])
def test_mlp_batched_matches_one_by_one(opt: dict[str, Any], engine: str) -> None:
    data = _data((12,))
    seq, bat, masks, hs, hb = _both(_mlp, data, epochs=3, engine=engine, **opt)
    _close(seq, bat)
    _pruned_zero(bat, masks)
    for a, b in zip(hs, hb, strict=True):
        assert b.iterations == a.iterations == 15
        for ea, eb in zip(a.epochs, b.epochs, strict=True):
            assert eb["loss"] == pytest.approx(ea["loss"], rel=1e-5, abs=1e-6)
            assert eb["accuracy"] == ea["accuracy"]
            assert eb["lr"] == ea["lr"] and eb["iterations"] == ea["iterations"]


@pytest.mark.parametrize("opt", [OPTS[0], OPTS[2]], ids=["sgd-momentum", "adam"])
def test_conv_with_batchnorm_batched_matches_one_by_one(opt: dict[str, Any]) -> None:
    data = _data((12,))
    seq, bat, masks, hs, hb = _both(_conv_bn, data, epochs=2, eval_data=data[:2], **opt)
    _close(seq, bat)  # weights, BatchNorm running statistics and num_batches_tracked
    _pruned_zero(bat, masks)
    for a, b in zip(hs, hb, strict=True):
        assert abs(a.final()["eval_accuracy"] - b.final()["eval_accuracy"]) <= 0.002
        assert b.final()["eval_loss"] == pytest.approx(a.final()["eval_loss"], rel=1e-4)
    assert all(m.training for m in bat)  # their mode (train) is restored


def test_registered_conv_model_and_resnet_block() -> None:
    data = [(x.view(x.shape[0], 12), y) for x, y in _data((12,), n_batches=2)]
    make = lambda s: gt.models.build("resnet20", in_shape=(12,), num_classes=5, seed=s, width=0.25)  # noqa: E731
    seq, bat, masks, _, _ = _both(make, data, epochs=1, optimizer="sgd", lr=0.02, momentum=0.9)
    _close(seq, bat, atol=1e-5, rtol=1e-4)
    _pruned_zero(bat, masks)


def test_schedules_max_iterations_and_eval_history() -> None:
    data = _data((12,))
    kw = {"optimizer": "adam", "lr": 1e-2, "epochs": 4, "schedule": "cosine", "warmup": 1, "max_iterations": 13,
          "eval_data": data[:2]}
    seq, bat, _, hs, hb = _both(_mlp, data, **kw)
    _close(seq, bat)
    for a, b in zip(hs, hb, strict=True):
        assert b.stopped == a.stopped == "max_iterations"
        assert [e["lr"] for e in b.epochs] == [e["lr"] for e in a.epochs]
        assert [e["iterations"] for e in b.epochs] == [e["iterations"] for e in a.epochs]
        for ea, eb in zip(a.epochs, b.epochs, strict=True):
            assert eb["eval_loss"] == pytest.approx(ea["eval_loss"], rel=1e-5)
            assert abs(eb["eval_accuracy"] - ea["eval_accuracy"]) <= 0.002


def test_same_batches_object_as_fresh_batches_per_ticket() -> None:
    g = torch.Generator().manual_seed(3)
    ds = torch.utils.data.TensorDataset(torch.randn(100, 12, generator=g), torch.randint(0, 5, (100,), generator=g))
    models = [_mlp(s) for s in range(3)]
    masks = _masks(models)
    seq = [copy.deepcopy(m) for m in models]
    for m, mk in zip(seq, masks, strict=True):  # each one-by-one run gets a fresh, equally seeded Batches
        train(m, gt.data.batches(ds, batch_size=16, seed=5), masks=mk, epochs=2, optimizer="adam", lr=1e-2)
    bat = [copy.deepcopy(m) for m in models]
    train_many(bat, gt.data.batches(ds, batch_size=16, seed=5), masks=masks, epochs=2, optimizer="adam", lr=1e-2)
    _close(seq, bat)


def test_masks_by_ticket_and_none() -> None:
    models = [_mlp(s) for s in range(3)]
    masks: list[Any] = [gt.Ticket(_masks(models[:1])[0]), None, _masks(models[2:])[0]]
    seq = [copy.deepcopy(m) for m in models]
    for m, mk in zip(seq, masks, strict=True):
        train(m, _data((12,)), masks=mk, epochs=1, lr=0.05)
    bat = [copy.deepcopy(m) for m in models]
    train_many(bat, _data((12,)), masks=masks, epochs=1, lr=0.05)
    _close(seq, bat)


def test_can_batch_reasons() -> None:
    mlps = [_mlp(s) for s in range(2)]
    assert can_batch(mlps) is None
    assert can_batch(mlps, optimizer="adam", engine="stacked") is None
    assert "instance" in can_batch(mlps, optimizer=torch.optim.SGD(mlps[0].parameters(), lr=0.1))  # type: ignore[operator]
    assert "rmsprop" in can_batch(mlps, optimizer="rmsprop")  # type: ignore[operator]
    assert "callback" in can_batch(mlps, callback=lambda *a: None)  # type: ignore[operator]
    assert can_batch(mlps, rewind_iteration=3) is None  # rewinding is batched too
    assert "loss_fn" in can_batch(mlps, loss_fn=nn.functional.mse_loss)  # type: ignore[operator]
    assert "differs" in can_batch([_mlp(0), gt.models.build("mlp", in_shape=(12,), num_classes=5, widths=(16, 8))])  # type: ignore[operator]
    drop = [nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5), nn.Linear(4, 2)) for _ in range(2)]
    assert "dropout" in can_batch(drop)  # type: ignore[operator]
    rnn = [nn.Sequential(nn.Linear(4, 4), nn.GRU(4, 4)) for _ in range(2)]
    assert "GRU" in can_batch(rnn)  # type: ignore[operator]
    assert can_batch([_conv_bn(0), _conv_bn(1)], engine="stacked") is None  # the conv engine runs it
    grouped = [nn.Sequential(nn.Unflatten(1, (4, 3)), nn.Conv1d(4, 4, 3, groups=2), nn.Flatten()) for _ in range(2)]
    assert "grouped" in can_batch(grouped, engine="stacked")  # type: ignore[operator]
    assert can_batch(grouped) is None  # the vmap engine runs it
    assert "masks[1]" in can_batch(mlps, [None, {"nope": torch.ones(2, dtype=torch.bool)}])  # type: ignore[operator]
    assert "one entry" in can_batch(mlps, [None])  # type: ignore[operator]
    with pytest.raises(gt.GraphticketsError, match="rmsprop"):
        train_many(mlps, _data((12,)), optimizer="rmsprop")


def test_bad_targets_and_empty_data_raise() -> None:
    mlps = [_mlp(s) for s in range(2)]
    with pytest.raises(gt.GraphticketsError, match="class-index targets"):
        train_many(mlps, [(torch.randn(4, 12), torch.randn(4, 5))])
    with pytest.raises(gt.GraphticketsError, match="empty"):
        train_many(mlps, [])


# ---------------------------------------------------------------------------- lean optimizers
@pytest.mark.parametrize("opt", OPTS, ids=[f"{o['optimizer']}{'-nesterov' if o.get('nesterov') else ''}" for o in OPTS])
def test_lean_optimizer_is_bitwise_torch(opt: dict[str, Any]) -> None:
    """train() with an optimizer name (the lean path) gives the bits of train() with torch's class."""
    data = _data((12,))
    a, b = _mlp(0), _mlp(0)
    mask = _masks([a])[0]
    kw = {k: v for k, v in opt.items() if k != "optimizer"}
    train(a, data, masks=mask, epochs=2, optimizer=opt["optimizer"], **kw)
    cls = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[opt["optimizer"]]
    if opt["optimizer"] != "sgd":
        kw.pop("momentum", None)
    train(b, data, masks=mask, epochs=2, optimizer=cls(b.parameters(), **kw))
    for (n, pa), pb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(pa, pb), n


def test_lean_optimizer_fused_adam_close_and_state_names() -> None:
    w1 = torch.randn(50, requires_grad=True)
    w2 = w1.detach().clone().requires_grad_(True)
    o1, o2 = LeanOptimizer([w1], "adam", lr=1e-2), LeanOptimizer([w2], "adam", lr=1e-2, fused=True)
    g = torch.Generator().manual_seed(0)
    for _ in range(5):
        grad = torch.randn(50, generator=g)
        w1.grad, w2.grad = grad.clone(), grad.clone()
        o1.step()
        o2.step()
    torch.testing.assert_close(w2, w1, atol=1e-6, rtol=1e-5)
    assert set(o1.state[w1]) == {"step", "exp_avg", "exp_avg_sq"}
    o1.zero_grad()
    assert w1.grad is None


def test_first_train_call_does_not_import_dynamo() -> None:
    """The first-call cost: train() with an optimizer name never builds a torch.optim.Optimizer,
    whose __init__ imports torch._dynamo (about a second)."""
    code = (
        "import sys, torch, graphtickets as gt\n"
        "m = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))\n"
        "data = [(torch.randn(8, 4), torch.randint(0, 2, (8,)))]\n"
        "for o in ('sgd', 'adam', 'adamw'):\n"
        "    gt.training.train(m, data, epochs=1, optimizer=o, lr=0.01)\n"
        "print('torch._dynamo' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False"
