"""The stacked conv engine (:mod:`graphtickets.training.stacked`) against one-by-one training.

Oracles that share no code with the engine: each ticket's own model run by torch (its forward
in train and eval mode, ``torch.nn.functional.conv*d`` for the convolutions and their
gradients) and :func:`graphtickets.training.train` run on each ticket separately.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import graphtickets as gt
from graphtickets.training import train
from graphtickets.training.batched import _engine, _stack, can_batch, train_many
from graphtickets.training.stacked import ConvPlan, _Conv, conv_plan

K = 3


def _data(shape: tuple[int, ...], n_batches: int = 3, batch: int = 16, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    out = [(torch.randn(batch, *shape, generator=g), torch.randint(0, 10, (batch,), generator=g)) for _ in range(n_batches)]
    out.append((torch.randn(5, *shape, generator=g), torch.randint(0, 10, (5,), generator=g)))  # a smaller last batch
    return out


MODELS: dict[str, tuple[tuple[int, ...], dict[str, Any]]] = {
    "cnn1d": ((40,), {"name": "cnn1d", "channels": 6}),
    "cnn1d_bn": ((40,), {"name": "cnn1d", "channels": 6, "batchnorm": True}),
    "resnet1d": ((40,), {"name": "resnet1d", "depth": 8, "widths": (4, 6, 8)}),
    "conv2": ((1, 8, 8), {"name": "conv2", "width": 0.1}),
    "conv4": ((2, 8, 8), {"name": "conv4", "width": 0.08}),
    "resnet20": ((3, 8, 8), {"name": "resnet20", "width": 0.25}),
}


def _build(key: str, seed: int) -> nn.Module:
    shape, spec = MODELS[key]
    spec = dict(spec)
    return gt.models.build(spec.pop("name"), in_shape=shape, num_classes=10, seed=seed, **spec)


def _masks(models: list[nn.Module], density: float = 0.4) -> list[dict[str, torch.Tensor]]:
    out = []
    for i, m in enumerate(models):
        g = torch.Generator().manual_seed(200 + i)
        out.append({n: torch.rand(p.shape, generator=g) < density for n, p in gt.prunable(m).items()})
    return out


def _close(seq: list[nn.Module], bat: list[nn.Module], atol: float = 3e-5, rtol: float = 1e-4) -> None:
    for a, b in zip(seq, bat, strict=True):
        sa, sb = a.state_dict(), b.state_dict()
        assert list(sa) == list(sb)
        for name in sa:
            if sa[name].is_floating_point():
                torch.testing.assert_close(sb[name], sa[name], atol=atol, rtol=rtol, msg=name)
            else:
                assert torch.equal(sa[name], sb[name]), name  # num_batches_tracked


def _plan(models: list[nn.Module]) -> ConvPlan:
    st = _stack(models, None, torch.device("cpu"))
    eng = _engine(models[0], st, "stacked")
    assert isinstance(eng, ConvPlan)
    return eng


@pytest.mark.parametrize("key", list(MODELS))
def test_forward_is_each_tickets_own_forward(key: str) -> None:
    """Ticket k's logits (train and eval mode) are model k's own; BatchNorm statistics per ticket."""
    models = [_build(key, s) for s in range(K)]
    for m in models:  # give BatchNorm running statistics that differ per ticket
        for mod in m.modules():
            if isinstance(mod, nn.modules.batchnorm._BatchNorm):
                mod.running_mean.uniform_(-0.5, 0.5)
                mod.running_var.uniform_(0.5, 1.5)
    x = _data(MODELS[key][0])[0][0]
    st = _stack(models, None, torch.device("cpu"))
    plan = _engine(models[0], st, "stacked")
    assert isinstance(plan, ConvPlan)
    with torch.no_grad():
        ev = plan.forward(x.unsqueeze(0).expand(K, *x.shape), train=False)
        for k, m in enumerate(models):
            torch.testing.assert_close(ev[k], m.eval()(x), atol=1e-5, rtol=1e-4)
        tr = plan.forward(x.unsqueeze(0).expand(K, *x.shape), train=True)
        for k, m in enumerate(models):
            torch.testing.assert_close(tr[k], m.train()(x), atol=1e-5, rtol=1e-4)  # updates m's running stats too
    for n, b in st.buffers.items():  # the stacked running statistics moved as each model's did
        for k, m in enumerate(models):
            torch.testing.assert_close(b[k], dict(m.named_buffers())[n], atol=1e-6, rtol=1e-5)


OPTS = [
    {"optimizer": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 1e-3},
    {"optimizer": "adam", "lr": 3e-3, "weight_decay": 1e-4},
]


@pytest.mark.parametrize("key", ["cnn1d_bn", "resnet1d", "conv2", "resnet20"])
@pytest.mark.parametrize("opt", OPTS, ids=["sgd-momentum", "adam"])
def test_stacked_training_matches_one_by_one(key: str, opt: dict[str, Any]) -> None:
    data = _data(MODELS[key][0])
    models = [_build(key, s) for s in range(K)]
    masks = _masks(models)
    seq, bat = [copy.deepcopy(m) for m in models], [copy.deepcopy(m) for m in models]
    # ResNet-20 on this tiny data is chaotic after a few steps (a 1e-7 perturbation of one
    # one-by-one run moves some of its BatchNorm biases by 60 % after 2 epochs): 1 epoch there
    epochs = 1 if key == "resnet20" else 2
    kw = {"epochs": epochs, "eval_data": data[:2], **opt}
    hs = [train(m, data, masks=mk, **kw) for m, mk in zip(seq, masks, strict=True)]
    hb = train_many(bat, data, masks=masks, engine="stacked", **kw)
    _close(seq, bat)
    for m, mk in zip(bat, masks, strict=True):
        params = dict(m.named_parameters())
        assert all(bool((params[n][~keep] == 0).all()) for n, keep in mk.items())
    for a, b in zip(hs, hb, strict=True):
        assert b.iterations == a.iterations == 4 * epochs
        assert abs(a.final()["eval_accuracy"] - b.final()["eval_accuracy"]) <= 0.002
        assert b.final()["loss"] == pytest.approx(a.final()["loss"], rel=1e-4)


def test_per_ticket_data_rewind_and_start_epoch() -> None:
    """Each ticket on its own batches, its state kept at a rewind point, a resumed schedule."""
    models = [_build("cnn1d_bn", s) for s in range(K)]
    masks = _masks(models)
    datas = [_data((40,), seed=10 + k) for k in range(K)]
    big = _data((40,), n_batches=1, batch=450, seed=3)[:1]  # evaluated in chunks by the engine
    kw: dict[str, Any] = {"epochs": 3, "optimizer": "sgd", "lr": 0.05, "schedule": "cosine", "start_epoch": 1,
                          "eval_data": big}
    seq, bat = [copy.deepcopy(m) for m in models], [copy.deepcopy(m) for m in models]
    hs = [train(m, d, masks=mk, rewind_iteration=3, **kw) for m, d, mk in zip(seq, datas, masks, strict=True)]
    hb = train_many(bat, datas, masks=masks, per_ticket_data=True, rewind_iteration=3, **kw)
    _close(seq, bat)
    for a, b in zip(hs, hb, strict=True):
        assert [e["lr"] for e in b.epochs] == [e["lr"] for e in a.epochs] and len(b.epochs) == 2
        assert b.final()["eval_loss"] == pytest.approx(a.final()["eval_loss"], rel=1e-4)
        assert a.rewind is not None and b.rewind is not None and list(a.rewind) == list(b.rewind)
        for n in a.rewind:
            torch.testing.assert_close(b.rewind[n], a.rewind[n], atol=2e-5, rtol=1e-4)
    with pytest.raises(gt.GraphticketsError, match="different numbers of batches"):
        train_many([copy.deepcopy(m) for m in models], [datas[0], datas[1], datas[2][:2]], per_ticket_data=True)


@pytest.mark.parametrize("dims, stride, padding, dilation, kernel", [
    (1, 2, 1, 1, 5), (1, 1, 0, 2, 3), (2, 1, 1, 1, 3), (2, 2, 0, 1, 2),
])  # fmt: skip
def test_conv_and_its_gradients_are_torchs(dims: int, stride: int, padding: int, dilation: int, kernel: int) -> None:
    g = torch.Generator().manual_seed(1)
    size = (9,) * dims
    x = torch.randn(K, 4, 3, *size, generator=g, dtype=torch.float64, requires_grad=True)  # (K, B, C, *S)
    w = torch.randn(K, 5, 3, *(kernel,) * dims, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(K, 5, generator=g, dtype=torch.float64, requires_grad=True)
    conv = F.conv1d if dims == 1 else F.conv2d
    ref = torch.stack([conv(x[k], w[k], b[k], stride=stride, padding=padding, dilation=dilation) for k in range(K)])
    t = (1,) * dims
    ours = _Conv.apply(x.movedim(2, -1), w, b, tuple(s * stride for s in t), tuple(s * padding for s in t),
                       tuple(s * dilation for s in t)).movedim(-1, 2)  # fmt: skip
    torch.testing.assert_close(ours, ref)
    up = torch.randn(ref.shape, generator=g, dtype=torch.float64)
    want = torch.autograd.grad(ref, (x, w, b), up)
    got = torch.autograd.grad(ours, (x, w, b), up)
    for a, e in zip(got, want, strict=True):
        torch.testing.assert_close(a, e)


class _Viewer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(1, 4, 3)
        self.fc = nn.Linear(4 * 6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv(x.unsqueeze(1))
        return self.fc(h.view(h.shape[0], -1))


def test_can_batch_names_what_the_stacked_engine_cannot_run() -> None:
    viewers = [_Viewer(), _Viewer()]
    reason = can_batch(viewers, engine="stacked")
    assert reason is not None and "stacked" in reason and ("unsqueeze" in reason or "view" in reason)
    assert can_batch(viewers) is None  # "auto" falls back to the vmap engine
    assert "differs" in (can_batch([_build("cnn1d", 0), _build("resnet1d", 0)], engine="stacked") or "")
    with pytest.raises(gt.GraphticketsError, match="cannot be trained together"):
        train_many(viewers, [(torch.randn(4, 8), torch.randint(0, 3, (4,)))], engine="stacked")
    with pytest.raises(gt.GraphticketsError, match="stacked engine"):
        conv_plan(_Viewer(), {}, {})
