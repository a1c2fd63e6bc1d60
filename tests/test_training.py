"""Tests of graphtickets.training.

Oracles: hand-computed gradients and updates, manual torch loops (no graphtickets code),
torch.nn.utils.prune (masking in the forward pass), closed-form schedules.
"""

from __future__ import annotations

import copy
import logging
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import prune as tprune
from torch.utils.data import DataLoader, TensorDataset

from graphtickets import Ticket
from graphtickets.errors import GraphticketsError, TicketError, UnknownNameError
from graphtickets.training import (
    History,
    enforce_masks,
    evaluate,
    lr_at_epoch,
    make_optimizer,
    restore,
    snapshot,
    train,
)


def _mlp(seed: int = 0, dropout: float = 0.0) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Linear(6, 8), nn.ReLU()]
    if dropout:
        layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(8, 3))
    model = nn.Sequential(*layers)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():  # fixed weights from a local generator (no global seeding)
        for p in model.parameters():
            p.copy_(torch.rand(p.shape, generator=g) - 0.5)
    return model


def _data(n_batches: int = 2, bs: int = 10, seed: int = 1) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(bs, 6, generator=g), torch.randint(0, 3, (bs,), generator=g)) for _ in range(n_batches)]


def _masks(model: nn.Module, seed: int = 2) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        n: torch.rand(p.shape, generator=g) < 0.4
        for n, p in model.named_parameters()
        if n.endswith("weight")
    }


def _equal_states(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ---------------------------------------------------------------------------- masks held at zero
@pytest.mark.parametrize(
    ("name", "state_keys"),
    [("sgd", ["momentum_buffer"]), ("adam", ["exp_avg", "exp_avg_sq"]), ("adamw", ["exp_avg", "exp_avg_sq"])],
)
def test_pruned_weights_and_optimizer_state_stay_exactly_zero(name: str, state_keys: list[str]) -> None:
    model = _mlp()
    masks = _masks(model)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    assert any(bool((before[n][~m] != 0).any()) for n, m in masks.items())  # starts dense
    opt = make_optimizer(model.parameters(), name, lr=0.05, momentum=0.9, weight_decay=5e-4)
    hist = train(model, _data(), masks=masks, epochs=4, optimizer=opt, seed=0)
    assert hist.iterations == 8
    params = dict(model.named_parameters())
    for n, m in masks.items():
        p = params[n]
        assert (p[~m] == 0.0).all(), n
        assert not torch.signbit(p[~m]).any(), n  # +0.0, not -0.0
        assert (p[m] != before[n][m]).all(), n  # every kept weight moved
        for key in state_keys:
            buf = opt.state[p][key]
            assert (buf[~m] == 0.0).all(), (n, key)
            assert (buf[m] != 0.0).any(), (n, key)
    # unmasked parameters (biases) train normally
    assert not torch.equal(params["0.bias"], before["0.bias"])


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_matches_torch_prune_forward_masking(optimizer: str) -> None:
    # oracle: torch.nn.utils.prune masks in the forward pass (weight = weight_orig * mask);
    # the trained effective weights must agree with our in-place masking.
    ours, ref = _mlp(), _mlp()
    masks = _masks(ours)
    for n, m in masks.items():
        tprune.custom_from_mask(ref[int(n.split(".")[0])], "weight", mask=m)
    data = _data(n_batches=3)
    train(ours, data, masks=masks, epochs=3, optimizer=optimizer, lr=0.05, momentum=0.9, weight_decay=5e-4)
    opt: torch.optim.Optimizer
    if optimizer == "sgd":
        opt = torch.optim.SGD(ref.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    else:
        opt = torch.optim.Adam(ref.parameters(), lr=0.05, weight_decay=5e-4)
    for _ in range(3):
        for x, y in data:
            opt.zero_grad()
            F.cross_entropy(ref(x), y).backward()
            opt.step()
    for i in (0, 2):
        # (module.weight is only recomputed in the next forward: read weight_orig * mask)
        layer = ref[i]
        effective = getattr(layer, "weight_orig") * getattr(layer, "weight_mask")  # noqa: B009
        torch.testing.assert_close(ours[i].weight, effective, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(ours[i].bias, ref[i].bias, rtol=1e-5, atol=1e-6)


def test_masks_from_ticket_and_torch_prune_names() -> None:
    model = _mlp()
    masks = _masks(model)
    ticket = Ticket(masks=masks, method="test")
    train(model, _data(), masks=ticket, epochs=1, lr=0.1)
    for n, m in masks.items():
        assert (dict(model.named_parameters())[n][~m] == 0).all()
    # a model pruned with torch.nn.utils.prune exposes `weight_orig`; names still resolve
    pruned = _mlp()
    tprune.l1_unstructured(pruned[0], "weight", amount=0.5)
    layer0 = pruned[0]
    mask0 = getattr(layer0, "weight_mask").bool()  # noqa: B009
    train(pruned, _data(), masks={"0.weight": mask0}, epochs=2, lr=0.1)
    assert (getattr(layer0, "weight_orig")[~mask0] == 0).all()  # noqa: B009


def test_enforce_masks_zeroes_in_place() -> None:
    lin = nn.Linear(2, 2)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, -2.0], [3.0, 4.0]]))
    enforce_masks(lin, {"weight": torch.tensor([[True, False], [False, True]])})
    assert lin.weight.tolist() == [[1.0, 0.0], [0.0, 4.0]]
    enforce_masks(lin, None)  # no-op
    assert lin.weight.tolist() == [[1.0, 0.0], [0.0, 4.0]]


# ---------------------------------------------------------------------------- hand-computed updates
def test_one_sgd_step_cross_entropy_by_hand() -> None:
    lin = nn.Linear(2, 2)
    w0 = [[0.5, -1.0], [2.0, 0.25]]
    b0 = [0.1, -0.2]
    with torch.no_grad():
        lin.weight.copy_(torch.tensor(w0))
        lin.bias.copy_(torch.tensor(b0))
    xs = [[1.0, 2.0], [-1.0, 0.5]]
    ys = [1, 0]
    lr = 0.5
    # by hand: dL/dz = (softmax(z) - onehot(y)) / B ; dW = sum_i dz_i x_i^T ; db = sum_i dz_i
    gw = [[0.0, 0.0], [0.0, 0.0]]
    gb = [0.0, 0.0]
    for x, y in zip(xs, ys, strict=True):
        z = [w0[k][0] * x[0] + w0[k][1] * x[1] + b0[k] for k in range(2)]
        e = [math.exp(v) for v in z]
        s = [v / sum(e) for v in e]
        for k in range(2):
            d = (s[k] - (1.0 if k == y else 0.0)) / len(xs)
            gb[k] += d
            for j in range(2):
                gw[k][j] += d * x[j]
    data = [(torch.tensor(xs), torch.tensor(ys))]
    hist = train(lin, data, epochs=1, lr=lr, momentum=0.0)
    assert hist.iterations == 1
    expect_w = [[w0[k][j] - lr * gw[k][j] for j in range(2)] for k in range(2)]
    expect_b = [b0[k] - lr * gb[k] for k in range(2)]
    torch.testing.assert_close(lin.weight.detach(), torch.tensor(expect_w), rtol=0, atol=1e-6)
    torch.testing.assert_close(lin.bias.detach(), torch.tensor(expect_b), rtol=0, atol=1e-6)


def test_two_sgd_steps_mse_momentum_weight_decay_by_hand() -> None:
    # f(x) = w . x (no bias); MSE; SGD with momentum mu and weight decay wd:
    # g_t = grad + wd * w ; buf_1 = g_1, buf_t = mu * buf_{t-1} + g_t ; w <- w - lr * buf_t
    lin = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[0.3, -0.6]]))
    xs, ys = [[1.0, 2.0], [0.5, -1.0]], [1.0, 0.0]
    lr, mu, wd = 0.1, 0.9, 0.01
    w = [0.3, -0.6]
    buf = [0.0, 0.0]
    for t in range(2):
        r = [w[0] * x[0] + w[1] * x[1] - y for x, y in zip(xs, ys, strict=True)]
        grad = [sum(2 * r[i] * xs[i][j] for i in range(2)) / 2 + wd * w[j] for j in range(2)]
        buf = grad if t == 0 else [mu * buf[j] + grad[j] for j in range(2)]
        w = [w[j] - lr * buf[j] for j in range(2)]
    data = [(torch.tensor(xs), torch.tensor(ys).unsqueeze(1))]
    hist = train(lin, data, epochs=2, lr=lr, momentum=mu, weight_decay=wd, loss_fn=F.mse_loss)
    torch.testing.assert_close(lin.weight.detach(), torch.tensor([w]), rtol=0, atol=1e-6)
    assert math.isnan(hist.final()["accuracy"])  # regression targets: no accuracy


def test_extra_loss_gradient_is_applied() -> None:
    # data loss 0, extra loss = L1 of the weight: one SGD step is w - lr * sign(w)
    lin = nn.Linear(3, 2)
    w0 = torch.tensor([[0.5, -0.3, 0.2], [-0.05, 1.0, -2.0]])
    with torch.no_grad():
        lin.weight.copy_(w0)
    b0 = lin.bias.detach().clone()
    data = [(torch.randn(4, 3), torch.zeros(4, dtype=torch.long))]
    hist = train(
        lin, data, epochs=1, lr=0.01, momentum=0.0,
        loss_fn=lambda out, y: out.sum() * 0.0,
        extra_loss=lambda m: dict(m.named_parameters())["weight"].abs().sum(),
    )
    torch.testing.assert_close(lin.weight.detach(), w0 - 0.01 * torch.sign(w0), rtol=0, atol=1e-7)
    assert (lin.weight.abs() < w0.abs()).all()
    assert torch.equal(lin.bias.detach(), b0)
    assert hist.final()["loss"] == 0.0  # extra loss is not part of the recorded loss


# ---------------------------------------------------------------------------- determinism, rewinding
def test_same_seed_same_bits_and_global_rng_untouched() -> None:
    base = _mlp(dropout=0.3)
    data = _data(n_batches=3)
    state = torch.get_rng_state()
    runs = []
    for seed in (7, 7, 8):
        m = copy.deepcopy(base)
        train(m, data, masks=_masks(m), epochs=3, optimizer="adam", lr=0.01, seed=seed)
        runs.append(snapshot(m))
    assert torch.equal(torch.get_rng_state(), state)
    assert _equal_states(runs[0], runs[1])
    assert not _equal_states(runs[0], runs[2])  # the seed drives dropout


def test_shuffling_dataloader_is_deterministic_for_a_seed() -> None:
    g = torch.Generator().manual_seed(3)
    ds = TensorDataset(torch.randn(40, 6, generator=g), torch.randint(0, 3, (40,), generator=g))
    finals = []
    for _ in range(2):
        m = _mlp()
        train(m, DataLoader(ds, batch_size=8, shuffle=True), epochs=2, lr=0.05, seed=11)
        finals.append(snapshot(m))
    assert _equal_states(finals[0], finals[1])


def test_rewind_iterations_against_a_manual_loop() -> None:
    base = _mlp()
    data = _data(n_batches=2)
    init = copy.deepcopy(base.state_dict())
    h0 = train(copy.deepcopy(base), data, epochs=3, lr=0.05, momentum=0.9, weight_decay=5e-4, rewind_iteration=0)
    assert h0.rewind is not None and _equal_states(h0.rewind, init)
    h3 = train(copy.deepcopy(base), data, epochs=3, lr=0.05, momentum=0.9, weight_decay=5e-4, rewind_iteration=3)
    # manual: exactly 3 steps (into the second epoch)
    ref = copy.deepcopy(base)
    opt = torch.optim.SGD(ref.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    batches = (data + data)[:3]
    for x, y in batches:
        opt.zero_grad()
        F.cross_entropy(ref(x), y).backward()
        opt.step()
    assert h3.rewind is not None and _equal_states(h3.rewind, ref.state_dict())
    assert all(t.device.type == "cpu" for t in h3.rewind.values())
    assert h3.rewind_iteration == 3 and h3.iterations == 6


def test_rewind_at_the_last_step_and_past_the_end() -> None:
    m = _mlp()
    h = train(m, _data(), epochs=2, lr=0.05, rewind_iteration=4)
    assert h.rewind is not None and _equal_states(h.rewind, snapshot(m))
    assert train(_mlp(), _data(), epochs=2, lr=0.05, rewind_iteration=5).rewind is None
    assert train(_mlp(), _data(), epochs=1).rewind is None


def test_snapshot_and_restore_round_trip() -> None:
    m = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3))
    s = snapshot(m)
    train(m, [(torch.randn(5, 3), torch.randint(0, 3, (5,)))], epochs=2, lr=0.1)
    assert not _equal_states(snapshot(m), s)  # weights and running stats moved
    w = m[0].weight
    restore(m, s)
    assert _equal_states(snapshot(m), s) and m[0].weight is w
    with pytest.raises(GraphticketsError, match="does not fit"):
        restore(nn.Linear(2, 2), s)


# ---------------------------------------------------------------------------- evaluate
def test_evaluate_hand_made_logits_and_mode_restored() -> None:
    m = nn.Linear(3, 3, bias=False)
    with torch.no_grad():
        m.weight.copy_(torch.eye(3))
    x = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 3.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    y = torch.tensor([0, 1, 2, 0])
    # argmax of the logits (= x): 0, 2, 2, 0 -> 3 of 4 right
    m.train()
    out = evaluate(m, [(x[:2], y[:2]), (x[2:], y[2:])])
    assert out["accuracy"] == 0.75 and out["n"] == 4
    ce = [
        -(2.0 - math.log(math.exp(2) + 2)),
        -(1.0 - math.log(1 + math.e + math.exp(3))),
        -(1.0 - math.log(2 + math.e)),
        -(1.0 - math.log(2 + math.e)),
    ]
    assert out["loss"] == pytest.approx(sum(ce) / 4, rel=1e-6)
    assert m.training
    m.eval()
    evaluate(m, [(x, y)])
    assert not m.training
    # one-hot targets count too; masks are enforced before evaluating
    onehot = F.one_hot(y, 3).float()
    assert evaluate(m, [(x, onehot)])["accuracy"] == 0.75
    keep = torch.ones(3, 3, dtype=torch.bool)
    keep[2, 2] = False  # logit 2 is now always 0 -> row 1 predicts class 1, row 2 class 0
    assert evaluate(m, [(x, y)], masks={"weight": keep})["accuracy"] == 0.75
    assert m.weight[2, 2] == 0.0


def test_evaluate_sets_eval_mode_during_the_pass() -> None:
    seen = []

    class Probe(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            seen.append(self.training)
            return x

    evaluate(Probe().train(), [(torch.eye(2), torch.tensor([0, 1]))])
    train(nn.Sequential(Probe(), nn.Linear(2, 2)).eval(), [(torch.eye(2), torch.tensor([0, 1]))])
    assert seen == [False, True]


# ---------------------------------------------------------------------------- control flow, history
def test_callback_stops_training_early() -> None:
    calls = []

    def cb(epoch: int, model: nn.Module, history: History) -> bool:
        calls.append((epoch, len(history.epochs), history.iterations))
        return epoch == 2

    h = train(_mlp(), _data(n_batches=3), epochs=10, lr=0.05, callback=cb)
    assert calls == [(1, 1, 3), (2, 2, 6)]
    assert len(h.epochs) == 2 and h.iterations == 6 and h.stopped == "callback"


def test_max_iterations_stops_mid_epoch() -> None:
    h = train(_mlp(), _data(n_batches=2), epochs=10, lr=0.05, max_iterations=5)
    assert h.iterations == 5 and h.stopped == "max_iterations"
    assert [e["iterations"] for e in h.epochs] == [2, 4, 5]
    h0 = train(_mlp(), _data(), epochs=3, max_iterations=0, rewind_iteration=0)
    assert h0.iterations == 0 and h0.epochs == [] and h0.rewind is not None and h0.final() == {}


def test_history_fields_eval_and_frame(caplog: pytest.LogCaptureFixture) -> None:
    data = _data(n_batches=2)
    with caplog.at_level(logging.INFO, logger="graphtickets.training"):
        h = train(_mlp(), data, epochs=3, lr=0.05, eval_data=data[:1])
    assert len([r for r in caplog.records if r.name == "graphtickets.training"]) == 3
    keys = {"epoch", "loss", "accuracy", "eval_loss", "eval_accuracy", "seconds", "lr"}
    assert all(keys <= set(e) for e in h.epochs)
    assert [e["epoch"] for e in h.epochs] == [1, 2, 3]
    assert h.iterations == 6 and h.seconds >= sum(e["seconds"] for e in h.epochs) * 0.99
    assert h.rewind is None and h.stopped == "epochs"
    assert h.final() == h.epochs[-1]
    for e in h.epochs:
        assert 0.0 <= e["accuracy"] <= 1.0 and 0.0 <= e["eval_accuracy"] <= 1.0 and e["loss"] > 0
    frame = h.to_frame()
    assert list(frame["epoch"]) == [1, 2, 3] and keys <= set(frame.columns)
    assert h.epochs[-1]["eval_loss"] == evaluate(_trained_copy(data), data[:1])["loss"]
    no_eval = train(_mlp(), data, epochs=1)
    assert math.isnan(no_eval.final()["eval_accuracy"])
    assert len(History([], 0, 0.0, None).to_frame()) == 0


def _trained_copy(data: list[tuple[torch.Tensor, torch.Tensor]]) -> nn.Module:
    m = _mlp()
    train(m, data, epochs=3, lr=0.05)
    return m


def test_loss_goes_down_on_a_learnable_problem() -> None:
    g = torch.Generator().manual_seed(4)
    x = torch.randn(64, 6, generator=g)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0).long()
    data = [(x[i : i + 16], y[i : i + 16]) for i in range(0, 64, 16)]
    m = _mlp()
    h = train(m, data, masks=_masks(m), epochs=30, optimizer="adam", lr=0.05)
    assert h.epochs[-1]["loss"] < 0.6 * h.epochs[0]["loss"]
    assert evaluate(m, data)["accuracy"] > 0.65  # majority class: 34 / 64 = 0.53


@pytest.mark.parametrize(
    ("kw", "expect"),
    [
        ({"schedule": "step", "milestones": [1, 3], "gamma": 0.5}, [0.1, 0.05, 0.05, 0.025]),
        ({"warmup": 1}, [0.05, 0.1, 0.1, 0.1]),
        ({"warmup": 3}, [0.025, 0.05, 0.075, 0.1]),
        ({"schedule": "cosine"}, [0.1 * (1 + math.cos(math.pi * e / 4)) / 2 for e in range(4)]),
        ({"schedule": "cosine", "warmup": 1}, [0.05] + [0.1 * (1 + math.cos(math.pi * e / 3)) / 2 for e in range(3)]),
    ],
)
def test_schedules_per_epoch(kw: dict, expect: list[float]) -> None:
    lin = nn.Linear(6, 3)
    opt = torch.optim.SGD(lin.parameters(), lr=0.1)
    h = train(lin, _data(n_batches=1), epochs=4, optimizer=opt, **kw)
    assert [e["lr"] for e in h.epochs] == pytest.approx(expect, rel=1e-12)
    assert opt.param_groups[0]["lr"] == pytest.approx(expect[-1], rel=1e-12)
    assert [lr_at_epoch(e, lr=0.1, epochs=4, **kw) for e in range(4)] == pytest.approx(expect, rel=1e-12)


def test_lr_zero_freezes_and_frozen_params_stay() -> None:
    m = _mlp()
    before = snapshot(m)
    train(m, _data(), epochs=2, lr=0.0)
    assert _equal_states(snapshot(m), before)
    first, last = m[0], m[2]
    assert isinstance(first, nn.Linear) and isinstance(last, nn.Linear)
    first.weight.requires_grad_(False)
    train(m, _data(), epochs=2, lr=0.1)
    assert torch.equal(first.weight, before["0.weight"])
    assert not torch.equal(last.weight, before["2.weight"])


# ---------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"epochs": -1}, "epochs"),
        ({"lr": -0.1}, "lr"),
        ({"lr": float("nan")}, "lr"),
        ({"schedule": "onecycle"}, "schedule"),
        ({"schedule": "step"}, "milestones"),
        ({"rewind_iteration": -2}, "rewind_iteration"),
        ({"max_iterations": 1.5}, "max_iterations"),
        ({"optimizer": "sgd", "nesterov": True, "momentum": 0.0}, "nesterov"),
    ],
)
def test_bad_settings_raise(kw: dict, match: str) -> None:
    with pytest.raises(GraphticketsError, match=match):
        train(_mlp(), _data(), **kw)


def test_unknown_optimizer_lists_names() -> None:
    with pytest.raises(UnknownNameError, match="adam.*adamw.*sgd"):
        train(_mlp(), _data(), optimizer="rmsprop")


def test_bad_data_raises() -> None:
    with pytest.raises(GraphticketsError, match="empty"):
        train(_mlp(), [])
    with pytest.raises(GraphticketsError, match="no batches"):
        train(_mlp(), iter([]))
    with pytest.raises(GraphticketsError, match="one-shot iterator"):
        train(_mlp(), iter(_data()), epochs=2)
    assert train(_mlp(), iter(_data()), epochs=1).iterations == 2  # one pass is fine
    with pytest.raises(GraphticketsError, match="no batches"):
        evaluate(_mlp(), [])
    with pytest.raises(GraphticketsError, match="inputs, targets"):
        train(_mlp(), [torch.randn(3, 6)])


def test_bad_masks_raise_ticket_errors() -> None:
    m = _mlp()
    with pytest.raises(TicketError, match="names no parameter"):
        train(m, _data(), masks={"5.weight": torch.ones(3, 3, dtype=torch.bool)})
    with pytest.raises(TicketError, match="shape"):
        train(m, _data(), masks={"0.weight": torch.ones(3, 3, dtype=torch.bool)})
    with pytest.raises(TicketError, match="bool"):
        enforce_masks(m, {"0.weight": torch.ones(8, 6)})
    with pytest.raises(TicketError, match="architecture"):
        train(m, _data(), masks=Ticket(masks={"9.weight": torch.ones(2, 2, dtype=torch.bool)}, method="x"))
    with pytest.raises(TicketError, match="dict"):
        train(m, _data(), masks=[torch.ones(8, 6, dtype=torch.bool)])  # type: ignore[arg-type]


def test_diverging_loss_logs_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    x = torch.full((4, 6), 1e30)
    with caplog.at_level(logging.WARNING, logger="graphtickets.training"):
        h = train(_mlp(), [(x, torch.zeros(4, dtype=torch.long))], epochs=2, lr=1e10)
    assert not math.isfinite(h.epochs[-1]["loss"])
    assert sum("lr too high" in r.getMessage() for r in caplog.records) == 1


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_training_keeps_masks_and_matches_cpu() -> None:
    data = _data()
    cpu, gpu = _mlp(), _mlp()
    masks = _masks(cpu)
    train(cpu, data, masks=masks, epochs=3, optimizer="adam", lr=0.01)
    h = train(gpu, data, masks=masks, epochs=3, optimizer="adam", lr=0.01, device="cuda",
              eval_data=data, rewind_iteration=1)
    assert h.rewind is not None and all(t.device.type == "cpu" for t in h.rewind.values())
    params = dict(gpu.named_parameters())
    for n, m in masks.items():
        assert params[n].device.type == "cuda"
        assert (params[n][~m.to("cuda")] == 0.0).all()
        torch.testing.assert_close(params[n].cpu(), dict(cpu.named_parameters())[n], rtol=1e-4, atol=1e-5)


def test_reused_optimizer_state_is_cleaned_at_pruned_positions() -> None:
    model = _mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    train(model, _data(), epochs=1, optimizer=opt)  # dense: momentum everywhere
    masks = _masks(model)
    w = dict(model.named_parameters())["0.weight"]
    assert (opt.state[w]["momentum_buffer"][~masks["0.weight"]] != 0).all()
    train(model, _data(), masks=masks, epochs=1, optimizer=opt)
    assert (opt.state[w]["momentum_buffer"][~masks["0.weight"]] == 0).all()
    assert (w[~masks["0.weight"]] == 0).all()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
@pytest.mark.parametrize("fn", ["train", "evaluate"])
def test_cuda_without_cuda_is_a_clear_error(fn: str) -> None:
    import graphtickets.training as tr

    model = nn.Linear(2, 2)
    data = [(torch.zeros(1, 2), torch.zeros(1, dtype=torch.long))]
    with pytest.raises(GraphticketsError, match="requested but torch has no CUDA"):
        getattr(tr, fn)(model, data, device="cuda")
    assert next(model.parameters()).device.type == "cpu"


def test_bad_device_name_is_a_clear_error() -> None:
    from graphtickets.training import resolve_device

    with pytest.raises(GraphticketsError, match="is not a device"):
        resolve_device("gpu0")
    assert resolve_device("cpu") == torch.device("cpu")
