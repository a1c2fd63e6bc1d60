"""Gem-Miner (Sreenivasan et al. 2022, *Rare Gems*), from the paper and the README's deviations.

Scores ``s ~ U[0, 1)`` (``torch.rand`` of a generator seeded ``seed``, one tensor per prunable
weight in parameter order) over FROZEN weights; the forward uses ``w * 1[s > 0.5] * p`` with
the straight-through estimator (written ``hard + s - s.detach()``) and ``p`` the permanent
mask; loss = cross-entropy + ``lam * sum (s * p)^2``; Adam (lr 0.01) on the scores, clamped to
[0, 1] after every step. After every ``prune_every`` epochs and after the last one the weights
alive are cut, for good, to ``round(density^(j / R) * N)`` (event ``j`` of ``R``), the last
exactly ``round(density * N)``: the highest scores are kept, ties at the cut value drawn by a
permutation from ``numpy.random.default_rng(seed)`` (one per cut, over the tied weights in
flat order over all layers), never by position or magnitude.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.func import functional_call

from oracles.common import Masks, prunable_names


def _cut(scores: dict[str, torch.Tensor], alive: Masks, k: int, rng: np.random.Generator) -> Masks:
    names = list(scores)
    s = torch.cat([scores[n].detach().double().reshape(-1) for n in names]).numpy()
    live = torch.cat([alive[n].reshape(-1) for n in names]).numpy()
    keep = np.zeros(s.size, dtype=bool)
    values = np.sort(s[live])[::-1]
    if k == values.size:
        keep[live] = True
    elif k > 0:
        cut = values[k - 1]                       # the k-th highest alive score
        keep[live & (s > cut)] = True
        tied = np.flatnonzero(live & (s == cut))
        keep[rng.permutation(tied)[: k - int(keep.sum())]] = True
    out, start = {}, 0
    for n in names:
        out[n] = torch.from_numpy(keep[start:start + scores[n].numel()].copy()).reshape(scores[n].shape)
        start += scores[n].numel()
    return out


def gem_miner(model: nn.Module, *, density: float, next_epoch: Callable[[], Iterator[Any]], epochs: int,
              prune_every: int, seed: int = 0, lam: float = 1e-4, lr: float = 0.01) -> dict[str, Any]:
    work = copy.deepcopy(model)
    for p in work.parameters():
        p.requires_grad_(False)
    names = prunable_names(work)
    params = dict(work.named_parameters())
    # the documented stream of a method's random draws (graphtickets.pruning.select.draw_generator:
    # the seed mixed through numpy's SeedSequence, apart from torch.manual_seed(seed))
    state = np.random.SeedSequence([int(seed) % 2**63, 0x6D61736B]).generate_state(1, np.uint64)[0]
    gen = torch.Generator().manual_seed(int(state) >> 1)
    scores = {n: torch.rand(params[n].shape, generator=gen).requires_grad_(True) for n in names}
    alive = {n: torch.ones(params[n].shape, dtype=torch.bool) for n in names}
    total = sum(p.numel() for p in scores.values())
    events = [e for e in range(1, epochs + 1) if e % prune_every == 0 or e == epochs]
    opt, rng = torch.optim.Adam(list(scores.values()), lr=lr), np.random.default_rng(seed)
    cuts = []
    work.train()
    for epoch in range(1, epochs + 1):
        for x, y in next_epoch():
            subs = {}
            for n in names:
                hard = (scores[n] > 0.5).to(scores[n].dtype)
                subs[n] = params[n] * (hard + scores[n] - scores[n].detach()) * alive[n]
            loss = nn.functional.cross_entropy(functional_call(work, subs, (x,)), y)
            loss = loss + lam * sum((scores[n] * alive[n]).pow(2).sum() for n in names)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            with torch.no_grad():
                for s in scores.values():
                    s.clamp_(0.0, 1.0)
        if epoch in events:
            j = events.index(epoch) + 1
            d = density if j == len(events) else density ** (j / len(events))
            alive = _cut(scores, alive, round(d * total), rng)
            cuts.append(alive)
    return {"masks": alive, "cuts": cuts, "scores": {n: s.detach().clone() for n, s in scores.items()}}
