"""Gem-Miner: straight-through mask, score update, clamping, pruning schedule, exact density."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import graphtickets as gt
from graphtickets.pruning.gem_miner import GemMinerResult, gem_mine, prune_epochs, ste_mask
from graphtickets.pruning.select import draw_generator


def _data(n_batches: int = 2) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(1)
    return [(torch.randn(16, 6, generator=g), torch.randint(0, 3, (16,), generator=g)) for _ in range(n_batches)]


def test_ste_forward_is_hard_backward_is_identity() -> None:
    s = torch.tensor([0.0, 0.5, 0.5001, 1.0, 0.3], requires_grad=True)
    m = ste_mask(s)
    assert m.tolist() == [0.0, 0.0, 1.0, 1.0, 0.0]  # strictly above 0.5
    c = torch.tensor([1.0, -2.0, 3.0, 4.0, 5.0])
    (m * c).sum().backward()
    assert s.grad is not None and s.grad.tolist() == c.tolist()


def test_one_score_step_matches_hand_update() -> None:
    # one layer, one batch, one SGD step (no momentum, no penalty): the score update is
    # s - lr * w * dL/dW_eff, with W_eff = w * 1[s > 0.5] and dL/dW_eff from plain autograd.
    net = nn.Sequential(nn.Linear(6, 3, bias=False))
    with torch.no_grad():
        net[0].weight.copy_(torch.randn((3, 6), generator=torch.Generator().manual_seed(0)))
    x, y = _data(1)[0]
    w = net[0].weight.detach().clone()
    s0 = torch.rand(w.shape, generator=draw_generator(7))
    w_eff = (w * (s0 > 0.5)).requires_grad_(True)
    F.cross_entropy(F.linear(x, w_eff), y).backward()
    assert w_eff.grad is not None
    expect = (s0 - 0.05 * w * w_eff.grad).clamp(0, 1)
    res = gem_mine(net, density=1.0, data=[(x, y)], seed=7, epochs=1, lam=0.0, optimizer="sgd", lr=0.05, momentum=0.0)
    assert torch.allclose(res.scores["0.weight"], expect, atol=1e-7)
    assert torch.equal(net[0].weight, w)  # weights frozen, the model untouched
    assert res.model is not None and torch.equal(res.model[0].weight, w)


def test_penalty_enters_the_score_gradient() -> None:
    net = nn.Sequential(nn.Linear(6, 3, bias=False))
    nn.init.zeros_(net[0].weight)  # no CE gradient reaches the scores: only the penalty acts
    s0 = torch.rand((3, 6), generator=draw_generator(3))
    res = gem_mine(net, density=1.0, data=_data(1), seed=3, epochs=1, lam=0.5, optimizer="sgd", lr=0.1, momentum=0.0)
    assert torch.allclose(res.scores["0.weight"], (s0 - 0.1 * 0.5 * 2 * s0).clamp(0, 1), atol=1e-7)


def test_scores_are_clamped() -> None:
    net = gt.models.build("mlp", in_shape=(6,), num_classes=3, widths=(8,), seed=0)
    res = gem_mine(net, density=0.5, data=_data(), epochs=2, optimizer="sgd", lr=1e3, momentum=0.0)
    allv = torch.cat([s.reshape(-1) for s in res.scores.values()])
    assert float(allv.min()) >= 0.0 and float(allv.max()) <= 1.0
    assert bool((allv == 0.0).any()) and bool((allv == 1.0).any())  # clamping did act


def test_clamping_after_every_step_by_hand() -> None:
    # Penalty only (zero weights: no CE gradient), SGD without momentum: one step maps s to
    # s - lr * lam * 2 s = (1 - 2 lr lam) s. With 2 lr lam = 3 a step sends s to -2 s. Step 1
    # overshoots below 0 and is clamped to 0; step 2 then starts from 0 and stays at 0. Had
    # the clamp been applied only at the end, step 2 would start from -2 s and give 4 s > 0.
    net = nn.Sequential(nn.Linear(6, 3, bias=False))
    nn.init.zeros_(net[0].weight)
    s0 = torch.rand((3, 6), generator=draw_generator(3))
    one = gem_mine(net, density=1.0, data=_data(1), seed=3, epochs=1, lam=0.5, optimizer="sgd", lr=3.0, momentum=0.0)
    assert torch.equal(one.scores["0.weight"], torch.zeros(3, 6))  # -2 s clamped
    two = gem_mine(net, density=1.0, data=_data(2), seed=3, epochs=1, lam=0.5, optimizer="sgd", lr=3.0, momentum=0.0)
    assert torch.equal(two.scores["0.weight"], torch.zeros(3, 6))  # not (-2)(-2) s = 4 s
    assert bool((4 * s0 > 0).all())
    # two steps, both clamped: the same as applying the clamped one-step map twice
    up = gem_mine(net, density=1.0, data=_data(2), seed=3, epochs=1, lam=-0.5, optimizer="sgd", lr=3.0, momentum=0.0)
    assert torch.allclose(up.scores["0.weight"], (4 * (4 * s0).clamp(0, 1)).clamp(0, 1), atol=1e-6)


def test_gem_is_well_above_chance_before_weight_training() -> None:
    # An easy task: 4 well separated Gaussian classes in 10 dimensions (chance 0.25). The gem,
    # with the frozen initial weights and no weight training at all, classifies most points;
    # the same-density random mask does not.
    g = torch.Generator().manual_seed(0)
    centers = torch.randn(4, 10, generator=g) * 3.0
    y = torch.randint(0, 4, (512,), generator=g)
    x = centers[y] + torch.randn(512, 10, generator=g)
    data = [(x[i : i + 64], y[i : i + 64]) for i in range(0, 512, 64)]
    for init in ("default", "kaiming_normal"):
        net = gt.models.build("mlp", in_shape=(10,), num_classes=4, widths=(64, 64), seed=0, init=init)
        t = gt.pruning.prune(net, "gem_miner", density=0.2, data=data, epochs=15, finetune_epochs=0, seed=0)
        assert t.meta["accuracy_before_finetune"] >= 0.6, (init, t.meta["accuracy_before_finetune"])
        assert t.meta["initial_overlap"] < 0.6  # mining moved the ranking away from the initial scores
        rnd = gt.pruning.prune(net, "random", density=0.2, seed=0)
        acc_rnd = gt.training.evaluate(copy.deepcopy(net), data, masks=rnd.masks)["accuracy"]
        assert t.meta["accuracy_before_finetune"] > acc_rnd + 0.2


def test_schedule_nested_and_exact() -> None:
    assert prune_epochs(10, 3) == [3, 6, 9, 10] and prune_epochs(3, 5) == [3]
    net = gt.models.build("mlp", in_shape=(6,), num_classes=3, widths=(8, 8), seed=0)
    n = 6 * 8 + 8 * 8 + 8 * 3
    res = gem_mine(net, density=0.1, data=_data(), epochs=4, prune_every=1)
    dens = [e["density"] for e in res.meta["schedule"]]
    assert dens == pytest.approx([0.1 ** (j / 4) for j in range(1, 5)])
    counts = [sum(int(m.sum()) for m in em.values()) for em in res.event_masks]
    assert counts == [round(d * n) for d in dens]
    for a, b in zip(res.event_masks, res.event_masks[1:], strict=False):
        assert all(not bool((b[k] & ~a[k]).any()) for k in a)
    assert all(torch.equal(res.masks[k], res.event_masks[-1][k]) for k in res.masks)
    # the last event keeps the highest final scores among the weights alive before it
    alive = res.event_masks[-2]
    flat_s = torch.cat([res.scores[k][alive[k]] for k in res.masks])
    kept_s = torch.cat([res.scores[k][res.masks[k]] for k in res.masks])
    assert float(kept_s.min()) >= float(flat_s.sort(descending=True).values[round(0.1 * n) - 1])


def test_method_records_accuracy_before_and_after_finetune() -> None:
    net = gt.models.build("mlp", in_shape=(6,), num_classes=3, widths=(8,), seed=0)
    state = copy.deepcopy(net.state_dict())
    data = _data()
    t = gt.pruning.prune(net, "gem_miner", density=0.2, data=data, epochs=2, prune_every=1, finetune_epochs=1, seed=4)
    assert all(torch.equal(state[k], v) for k, v in net.state_dict().items())
    assert t.kept == round(0.2 * t.total)
    assert 0.0 <= t.meta["accuracy_before_finetune"] <= 1.0
    assert 0.0 <= t.meta["accuracy_after_finetune"] <= 1.0
    assert 0.0 <= t.meta["accuracy_used_mask"] <= 1.0 and 0.0 <= t.meta["initial_overlap"] <= 1.0
    assert t.meta["accuracy_on"] == "train"
    assert t.meta["cost"]["epochs"] == 3
    again = gt.pruning.prune(
        net, "gem_miner", density=0.2, data=data, epochs=2, prune_every=1, finetune_epochs=0, seed=4, eval_data=data[:1]
    )
    assert again == t  # same seed, same bits
    assert again.meta["accuracy_after_finetune"] is None and again.meta["accuracy_on"] == "eval_data"


def test_select_random_ties_exact_count_and_no_order() -> None:
    import numpy as np

    from graphtickets.pruning.gem_miner import select_random_ties

    scores = {"a": torch.tensor([0.9, 0.5, 0.5, 0.1]), "b": torch.tensor([0.5, 0.5, 0.5, 1.0])}
    prior = {"a": torch.tensor([True, True, True, True]), "b": torch.tensor([True, True, False, True])}
    masks, info = select_random_ties(scores, 0.5, np.random.default_rng(0), prior=prior)
    # 4 of 8 kept: 1.0 and 0.9 above the cut, 2 of the 4 alive 0.5s (b[2] is pruned)
    assert sum(int(m.sum()) for m in masks.values()) == 4
    assert bool(masks["a"][0]) and bool(masks["b"][3]) and not bool(masks["b"][2]) and not bool(masks["a"][3])
    assert info == {"kept": 4, "alive": 7, "above": 2, "tied": 4, "tied_kept": 2}
    # over many seeds every tied weight is kept sometimes: no fixed order decides
    seen = torch.zeros(8)
    for s in range(40):
        m, _ = select_random_ties(scores, 0.5, np.random.default_rng(s), prior=prior)
        seen += torch.cat([m["a"], m["b"]]).float()
    assert all(0 < seen[i] < 40 for i in (1, 2, 4, 5)) and seen[6] == 0 and seen[0] == seen[7] == 40


def test_all_scores_tied_the_gem_is_random_not_top_magnitude() -> None:
    # lam << 0 pushes every score to exactly 1 in the first step (clamped), so the one cut at
    # the end falls inside a pile of N equal scores: what decides is the tie rule alone.
    net = gt.models.build("mlp", in_shape=(6,), num_classes=3, widths=(16,), seed=0)
    params = dict(net.named_parameters())

    def mine(seed: int) -> GemMinerResult:
        return gem_mine(net, density=0.2, data=_data(1), seed=seed, epochs=1, lam=-1e6, optimizer="sgd", lr=1.0, momentum=0.0)

    res = mine(0)
    assert all(bool((s == 1.0).all()) for s in res.scores.values())
    n = sum(m.numel() for m in res.masks.values())
    assert res.meta["tied_at_cut"] == n and res.meta["tied_kept"] == round(0.2 * n)
    assert res.meta["above_half"] == n and res.meta["above_half_density"] == 1.0
    kept = sum(int(m.sum()) for m in res.masks.values())
    assert kept == round(0.2 * n)
    top_w = gt.pruning.select_topk({k: params[k].detach().abs() for k in res.masks}, 0.2)
    first = gt.pruning.select_topk({k: torch.ones_like(params[k]) for k in res.masks}, 0.2)  # by position
    for other in (top_w, first):
        inter = sum(int((res.masks[k] & other[k]).sum()) for k in res.masks)
        assert inter < 0.5 * kept  # about 0.2 * kept by chance; 1.0 * kept if it were that rule
    again, other_seed = mine(0), mine(1)
    assert all(torch.equal(res.masks[k], again.masks[k]) for k in res.masks)  # reproducible
    assert any(not torch.equal(res.masks[k], other_seed.masks[k]) for k in res.masks)  # seed-dependent


def test_one_shot_iterator_serves_mining_and_finetuning() -> None:
    # a generator is read once: the fine-tuning must see the same batches as the mining (it
    # used to get the exhausted generator and train on nothing)
    net = gt.models.build("mlp", in_shape=(6,), num_classes=3, widths=(8,), seed=0)
    batches = _data(2)
    a = gt.pruning.prune(net, "gem_miner", density=0.5, data=iter(batches), epochs=1, finetune_epochs=1, seed=0)
    b = gt.pruning.prune(net, "gem_miner", density=0.5, data=batches, epochs=1, finetune_epochs=1, seed=0)
    work = [{k: t.meta["cost"][k] for k in ("epochs", "iterations")} for t in (a, b)]
    assert work[0] == work[1] == {"epochs": 2, "iterations": 2 * len(batches)}
    assert a.meta["accuracy_after_finetune"] == b.meta["accuracy_after_finetune"]
