"""SET, RigL, gradual magnitude pruning and smart-ratio tickets against their papers' formulas.

Every oracle here is computed in the test (hand-picked numbers, numpy, torch.autograd), never
by the implementation's helpers.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

import graphtickets as gt
from graphtickets.errors import GraphticketsError
from graphtickets.pruning.sparse_training import evolutionary, gmp, rigl
from graphtickets.pruning.sparse_training.schedules import gmp_sparsity, rigl_drop_fraction


def _data(n_batches: int = 4, batch: int = 16, d_in: int = 8, classes: int = 3, seed: int = 0) -> list:
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(batch, d_in, generator=g), torch.randint(0, classes, (batch,), generator=g))
            for _ in range(n_batches)]


def _mlp(widths: tuple[int, ...] = (12, 10), d_in: int = 8, classes: int = 3) -> nn.Module:
    return gt.models.build("mlp", in_shape=(d_in,), num_classes=classes, widths=widths, seed=0)


def _spy(monkeypatch: pytest.MonkeyPatch, cls: type) -> list[dict[str, Any]]:
    """Record, after every mask update of ``cls``'s hook, the masks before/after and the weights."""
    seen: list[dict[str, Any]] = []
    original = cls.__call__

    def wrapped(self: Any, t: int, model: nn.Module, batch: Any) -> Any:
        before = {n: m.clone() for n, m in self.masks.items()}
        out = original(self, t, model, batch)
        if out is not None:
            params = dict(model.named_parameters())
            seen.append({"t": t, "before": before, "after": {n: m.clone() for n, m in out.items()},
                         "weights": {n: params[n].detach().clone() for n in out}})
        return out

    monkeypatch.setattr(cls, "__call__", wrapped)
    return seen


# ---------------------------------------------------------------------------- schedules
def test_rigl_drop_fraction_follows_the_cosine_at_hand_picked_steps() -> None:
    # alpha/2 (1 + cos(pi t / T_end)): cos(0) = 1, cos(pi/3) = 1/2, cos(pi/2) = 0, cos(2pi/3) = -1/2
    assert rigl_drop_fraction(0, 0.3, 600) == pytest.approx(0.3)
    assert rigl_drop_fraction(200, 0.3, 600) == pytest.approx(0.15 * 1.5)
    assert rigl_drop_fraction(300, 0.3, 600) == pytest.approx(0.15)
    assert rigl_drop_fraction(400, 0.3, 600) == pytest.approx(0.15 * 0.5)
    assert rigl_drop_fraction(600, 0.3, 600) == 0.0 and rigl_drop_fraction(700, 0.3, 600) == 0.0


def test_gmp_sparsity_follows_the_cubic_at_hand_picked_steps() -> None:
    # s_f (1 - (1 - k/n)^3) with s_i = 0, s_f = 0.9, n = 4: k = 1: 0.9 * 37/64, k = 2: 0.9 * 7/8, k = 3: 0.9 * 63/64
    assert gmp_sparsity(5, 0.9, 5, 4, 10) == 0.0
    assert gmp_sparsity(15, 0.9, 5, 4, 10) == pytest.approx(0.9 * 37 / 64)
    assert gmp_sparsity(25, 0.9, 5, 4, 10) == pytest.approx(0.9 * 7 / 8)
    assert gmp_sparsity(35, 0.9, 5, 4, 10) == pytest.approx(0.9 * 63 / 64)
    assert gmp_sparsity(45, 0.9, 5, 4, 10) == 0.9 and gmp_sparsity(90, 0.9, 5, 4, 10) == 0.9
    # with s_i > 0: s_f + (s_i - s_f)(1/2)^3 halfway
    assert gmp_sparsity(20, 0.8, 0, 2, 20, initial=0.4) == pytest.approx(0.8 - 0.4 / 8)


# ---------------------------------------------------------------------------- ER / ERK
def test_er_and_erk_layer_densities_match_the_formula() -> None:
    model = _mlp((30, 20), d_in=10, classes=5)  # weights (30, 10), (20, 30), (5, 20)
    shapes = [(30, 10), (20, 30), (5, 20)]
    total = sum(a * b for a, b in shapes)
    d = 0.3
    # ER: eps (n_in + n_out)/(n_in n_out), eps from sum_l eps (n_in + n_out) = d N (none exceeds 1 here)
    eps = d * total / sum(a + b for a, b in shapes)
    er = [eps * (a + b) / (a * b) for a, b in shapes]
    assert max(er) < 1
    got = gt.pruning.sparse_training.er_densities(dict(zip("abc", shapes, strict=True)), d)
    assert [got[k] for k in "abc"] == pytest.approx(er)
    # RigL's initial (and constant) layer counts are ERK's (same as ER for Linear layers), summing to round(dN)
    t = gt.pruning.prune(model, "rigl", density=d, data=_data(2, d_in=10, classes=5), epochs=1, delta_t=1)
    counts = [int(m.sum()) for m in t.masks.values()]
    assert sum(counts) == round(d * total)
    assert all(abs(c - e * a * b) < 1 for c, e, (a, b) in zip(counts, er, shapes, strict=True))
    # a conv weight: ERK adds the kernel dims to the fan, ER does not
    conv = {"c": (8, 4, 3, 3), "f": (10, 72)}
    n_c, n_f = 8 * 4 * 9, 720
    erk = gt.pruning.baselines.erk_densities(conv, 0.2)
    e2 = 0.2 * (n_c + n_f) / ((8 + 4 + 3 + 3) + (10 + 72))
    assert erk["c"] == pytest.approx(e2 * 18 / n_c) and erk["f"] == pytest.approx(e2 * 82 / n_f)
    er2 = gt.pruning.sparse_training.er_densities(conv, 0.2)
    e3 = 0.2 * (n_c + n_f) / ((8 + 4) * 9 + (10 + 72))  # eps (c_in + c_out)/(c_in c_out) kept of each
    assert er2["c"] == pytest.approx(e3 * 12 / 32) and er2["f"] == pytest.approx(e3 * 82 / 720)


# ---------------------------------------------------------------------------- RigL
def test_rigl_grows_where_the_hand_computed_dense_gradient_is_largest() -> None:
    torch.manual_seed(0)  # the test's own tensors only
    net = nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 3))
    g = torch.Generator().manual_seed(3)
    masks = {"0.weight": torch.rand(4, 5, generator=g) < 0.5, "2.weight": torch.rand(3, 4, generator=g) < 0.5}
    with torch.no_grad():
        for n, p in net.named_parameters():
            if n in masks:
                p.mul_(masks[n])
    x, y = torch.randn(6, 5, generator=g), torch.randint(0, 3, (6,), generator=g)
    # the dense gradient, by autograd on the masked net (pruned weights at 0 but with their gradients)
    params = dict(net.named_parameters())
    loss = nn.functional.cross_entropy(net(x), y)
    grads = dict(zip(masks, torch.autograd.grad(loss, [params[n] for n in masks]), strict=True))
    lib = rigl.dense_gradients(net, list(masks), (x, y))
    assert all(torch.allclose(lib[n], grads[n]) for n in masks)
    fraction = 0.5
    new, grown, dropped = rigl.drop_and_grow({n: params[n] for n in masks}, masks, grads, fraction)
    for n, m in masks.items():
        w, gr = params[n].detach().numpy().ravel(), grads[n].numpy().ravel()
        active = np.flatnonzero(m.numpy().ravel())
        k = math.floor(fraction * active.size)
        drop = set(active[np.argsort(np.abs(w[active]), kind="stable")[:k]].tolist())
        candidates = np.array([i for i in range(w.size) if i not in set(active.tolist()) - drop])
        grow = set(candidates[np.argsort(-np.abs(gr[candidates]), kind="stable")[:k]].tolist())
        assert dropped[n] == k
        assert set(np.flatnonzero(grown[n].numpy().ravel()).tolist()) == grow
        want = (set(active.tolist()) - drop) | grow
        assert set(np.flatnonzero(new[n].numpy().ravel()).tolist()) == want
        assert int(new[n].sum()) == int(m.sum())  # the count is kept


def test_rigl_keeps_every_layer_count_through_every_update(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _spy(monkeypatch, rigl._RigLHook)
    model, data = _mlp(), _data(4)
    t = gt.pruning.prune(model, "rigl", density=0.25, data=data, epochs=6, delta_t=3, alpha=0.4, end=0.75)
    total_steps, t_end = 6 * 4, 0.75 * 24
    assert [u["t"] for u in seen] == [3, 6, 9, 12, 15]  # t mod 3 == 0 and t < 18
    first = seen[0]["before"]
    for u in seen:
        assert {n: int(m.sum()) for n, m in u["after"].items()} == {n: int(m.sum()) for n, m in first.items()}
        for n, m in u["after"].items():
            grown = m & ~u["before"][n]
            assert bool((u["weights"][n][grown] == 0).all())  # new connections start at 0
    assert sum(int(m.sum()) for m in first.values()) == round(0.25 * t.total) == t.kept
    assert any(u["after"][n].ne(u["before"][n]).any() for u in seen for n in u["after"])  # it moves
    # the recorded schedule is the cosine, computed here by hand
    fr = [u["fraction"] for u in t.meta["updates"]]
    assert fr == pytest.approx([0.2 * (1 + math.cos(math.pi * s / t_end)) for s in (3, 6, 9, 12, 15)])
    assert t.meta["schedule"]["total_steps"] == total_steps and t.meta["changed"] == [u["changed"] for u in t.meta["updates"]]
    assert t == gt.pruning.prune(model, "rigl", density=0.25, data=data, epochs=6, delta_t=3, alpha=0.4)  # seeded


def test_rigl_records_its_own_run_accuracy_on_the_eval_data() -> None:
    data = _data(4)
    t = gt.pruning.prune(_mlp(), "rigl", density=0.3, data=data, epochs=2, delta_t=2, eval_data=data[:1])
    assert t.meta["run_accuracy_on"] == "eval" and 0.0 <= t.meta["run_accuracy"] <= 1.0
    assert gt.pruning.METHODS["rigl"].result_extras(t)["sparse_run_accuracy"] == t.meta["run_accuracy"]
    t2 = gt.pruning.prune(_mlp(), "rigl", density=0.3, data=data, epochs=2, delta_t=2)
    assert t2.meta["run_accuracy_on"] == "train" and t.weights is None  # the ticket trains from the init


# ---------------------------------------------------------------------------- SET
def test_set_removes_the_weights_closest_to_zero_on_each_side_and_regrows_elsewhere() -> None:
    w = torch.tensor([[0.5, -0.1, 0.2, 0.0, -0.9], [0.05, -0.3, 0.0, 0.7, -0.02], [0.0] * 5])
    mask = torch.tensor([[True, True, True, False, True], [True, True, False, True, True], [False] * 5])
    # active positive: 0.5, 0.2, 0.05, 0.7 (4) -> floor(0.5*4) = 2 smallest: 0.05, 0.2
    # active negative: -0.1, -0.9, -0.3, -0.02 (4) -> 2 closest to zero: -0.02, -0.1
    new, removed, added = evolutionary.set_update(w, mask, 0.5, torch.Generator().manual_seed(0))
    want_removed = torch.zeros_like(mask)
    for i, j in [(1, 0), (0, 2), (1, 4), (0, 1)]:
        want_removed[i, j] = True
    assert torch.equal(removed, want_removed)
    assert int(added.sum()) == 4 and not bool((added & removed).any()) and not bool((added & mask).any())
    assert int(new.sum()) == int(mask.sum())
    # only two free positions in the first two rows: only two are removed (and regrown)
    new2, removed2, added2 = evolutionary.set_update(w[:2], mask[:2], 0.5, torch.Generator().manual_seed(0))
    assert int(removed2.sum()) == int(added2.sum()) == 2 and torch.equal(added2, ~mask[:2])
    assert bool((removed2 <= want_removed[:2]).all()) and int(new2.sum()) == int(mask[:2].sum())


def test_set_regrowth_lands_outside_the_dropped_set_in_a_run(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _spy(monkeypatch, evolutionary._SetHook)
    data = _data(3)
    t = gt.pruning.prune(_mlp(), "set", density=0.3, data=data, epochs=4, zeta=0.3)
    assert [u["t"] for u in seen] == [3, 6, 9]  # after every epoch but the last
    for u in seen:
        for n, after in u["after"].items():
            before = u["before"][n]
            removed, added = before & ~after, after & ~before
            assert int(after.sum()) == int(before.sum())
            assert int(added.sum()) == int(removed.sum()) > 0
            assert not bool((added & before).any())  # grown where nothing was, never on a removed weight
            assert bool((u["weights"][n][added] == 0).all())
    assert t.kept == round(0.3 * t.total) and t.meta["changed"] == [u["changed"] for u in t.meta["updates"]]


# ---------------------------------------------------------------------------- GMP
def test_gmp_follows_the_cubic_schedule_to_the_exact_density(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _spy(monkeypatch, gmp._GmpHook)
    model, data = _mlp(), _data(5)
    n_total = sum(p.numel() for p in gt.prunable(model).values())
    d = 0.15
    t = gt.pruning.prune(model, "gmp", density=d, data=data, epochs=8, start=0.25, end=0.75, frequency=4)
    # T = 40 steps, t0 = 10, end = 30: n = 5 prunings at 14, 18, ..., 30
    assert [u["t"] for u in seen] == [14, 18, 22, 26, 30]
    s_f = 1 - d
    for k, u in enumerate(seen, start=1):
        s = s_f * (1 - (1 - k / 5) ** 3)
        assert sum(int(m.sum()) for m in u["after"].values()) == round((1 - s) * n_total)
        assert all(not bool((u["after"][n] & ~u["before"][n]).any()) for n in u["after"])  # nested
        assert t.meta["updates"][k - 1]["sparsity"] == pytest.approx(s)
    assert t.kept == round(d * n_total)
    # layer scope: every layer near the same density (within one weight)
    for m in t.masks.values():
        assert abs(int(m.sum()) - d * m.numel()) < 1.0 + 1e-9
    g = gt.pruning.prune(model, "gmp", density=d, data=data, epochs=8, start=0.25, frequency=4, scope="global")
    assert g.kept == round(d * n_total)


# ---------------------------------------------------------------------------- smart ratio
def _smart_by_hand(sizes: list[int], density: float, quadratic: bool = True) -> list[float]:
    L = len(sizes)
    w = [((L - l + 1) ** 2 + (L - l + 1)) if quadratic else (L - l + 1) for l in range(1, L)]  # noqa: E741
    c = (density * sum(sizes) - 0.3 * sizes[-1]) / sum(wi * n for wi, n in zip(w, sizes[:-1], strict=True))
    return [c * wi for wi in w] + [0.3]


def test_smart_ratio_layer_densities_on_an_mlp_equal_the_paper_formula() -> None:
    model = gt.models.build("mlp", in_shape=(40,), num_classes=10, widths=(100, 100), seed=0)
    # L = 3: w_1 = 3^2 + 3 = 12, w_2 = 2^2 + 2 = 6, the classifier at 0.3; c = (1500 - 300) / (12*4000 + 6*10000)
    t = gt.pruning.prune(model, "smart_ratio", density=0.1, seed=2)
    c = 1200 / 108000
    assert list(t.meta["layer_densities"].values()) == pytest.approx([12 * c, 6 * c, 0.3])
    assert [int(m.sum()) for m in t.masks.values()] == [533, 667, 300] and t.kept == 1500
    lin = gt.pruning.prune(model, "smart_ratio", density=0.1, decay="linear")
    assert list(lin.meta["layer_densities"].values()) == pytest.approx(_smart_by_hand([4000, 10000, 1000], 0.1, False))
    # too sparse for the classifier's 30 % (300 > 150 kept): the rule gives way, the count stays exact
    low = gt.pruning.prune(model, "smart_ratio", density=0.01)
    assert low.meta["last_rule"] is False and low.kept == 150
    assert t != gt.pruning.prune(model, "smart_ratio", density=0.1, seed=3)  # random positions


def test_smart_ratio_layer_densities_on_a_conv_net_equal_the_paper_formula() -> None:
    model = gt.models.build("cnn1d", in_shape=(40,), num_classes=10, seed=0)
    sizes = [p.numel() for p in gt.prunable(model).values()]
    d = 0.1
    want = _smart_by_hand(sizes, d)
    assert max(want) <= 1.0
    t = gt.pruning.prune(model, "smart_ratio", density=d)
    assert list(t.meta["layer_densities"].values()) == pytest.approx(want)
    counts = [int(m.sum()) for m in t.masks.values()]
    assert sum(counts) == round(d * sum(sizes))
    assert all(abs(c - w * n) < 1 for c, w, n in zip(counts, want, sizes, strict=True))


# ---------------------------------------------------------------------------- bad options
@pytest.mark.parametrize(("method", "hp", "match"), [
    ("rigl", {"delta_t": 100}, r"delta_t=100 .*use delta_t in \[1, 5\]"),
    ("rigl", {"alpha": 1.2}, r"alpha must be a number in \(0, 1\)"),
    ("rigl", {"alpha": 0.0}, r"alpha must be a number in \(0, 1\)"),
    ("rigl", {"end": 0.0}, r"end must be a number in \(0, 1\]"),
    ("set", {"zeta": 1.0}, r"zeta must be a number in \(0, 1\)"),
    ("gmp", {"start": 0.6, "end": 0.5}, r"end must come after start"),
    ("gmp", {"frequency": 50}, r"frequency=50 is longer .*use frequency in \[1, 6\]"),
    ("rigl", {"distribution": "gaussian", "delta_t": 1}, r"distribution must be one of"),
    ("smart_ratio", {"decay": "cubic"}, r"decay must be 'quadratic' or 'linear'"),
])
def test_bad_options_name_the_option_and_its_range(method: str, hp: dict, match: str) -> None:
    data = _data(4)  # x 2 epochs = 8 steps: t_end = 6 (rigl), the pruning span 6 (gmp)
    kw = {"epochs": 2} if method != "smart_ratio" else {}
    with pytest.raises(GraphticketsError, match=match):
        gt.pruning.prune(_mlp(), method, density=0.3, data=data if kw else None, **kw, **hp)


def test_the_cli_lists_the_four_methods_with_their_papers(capsys: pytest.CaptureFixture[str]) -> None:
    from graphtickets.cli import main

    assert main(["methods"]) == 0
    out = capsys.readouterr().out
    for name, paper in [("rigl", "Evci"), ("set", "Mocanu"), ("gmp", "Zhu & Gupta"), ("smart_ratio", "Su et al.")]:
        line = next(row for row in out.splitlines() if row.split() and row.split()[0] == name)
        assert paper in line
