"""IMP with rewinding (Frankle & Carbin 2019; Frankle et al. 2020), written from the papers.

Train the dense net, recording the whole state after ``rewind`` steps (0: the initial
state). Each round ranks the surviving weights by ``|w|`` of the net trained last and keeps
``round((1 - rate)^r * N)`` of them, globally; the output layer is pruned at half the rate
(keeps ``round((1 - rate/2)^r * n_out)``) and the other layers share the rest. The last round
cuts to exactly ``round(density * N)``; it is round ``R``, the first with
``(1 - rate)^R <= density``. Between rounds the state is rewound and the net trained for the
rest of the dense run (``T - k`` steps), from the epoch that contains step ``k``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn

from oracles.common import (
    Masks,
    count,
    magnitudes,
    masked_step,
    optimizer,
    prunable_names,
    state_of,
    top_k,
    zero_pruned,
)


def _cut(model: nn.Module, names: list[str], alive: Masks, k_total: int, k_out: int | None) -> Masks:
    scores = magnitudes(model, names)
    if k_out is None:
        return top_k(scores, k_total, alive)
    out, rest = names[-1], names[:-1]
    k_rest = k_total - k_out
    alive_rest = count({n: alive[n] for n in rest})
    if k_rest > alive_rest:  # documented: the output layer keeps what the others cannot
        k_out, k_rest = k_out + k_rest - alive_rest, alive_rest
    masks = top_k({n: scores[n] for n in rest}, k_rest, {n: alive[n] for n in rest})
    masks.update(top_k({out: scores[out]}, k_out, {out: alive[out]}))
    return {n: masks[n] for n in names}


def imp(model: nn.Module, *, density: float, next_epoch: Callable[[], Iterator[Any]], epochs: int,
        rate: float = 0.2, rewind: int = 0, output_rate: str | None = "half", opt: str = "adam",
        lr: float = 1.2e-3) -> dict[str, Any]:
    """``{"rounds": [mask per round], "rewind_state": state at step k, "steps": T}``."""
    work = copy.deepcopy(model)
    names = prunable_names(work)
    sizes = {n: p.numel() for n, p in work.named_parameters() if n in names}
    total = sum(sizes.values())
    state = state_of(work)
    o, steps = optimizer(work, opt, lr), 0
    for _ in range(epochs):
        for x, y in next_epoch():
            if steps == rewind:
                state = state_of(work)
            masked_step(work, o, x, y, None)
            steps += 1
    per_epoch = steps // epochs
    last = 1
    while (1 - rate) ** last > density * (1 + 1e-9):
        last += 1
    alive: Masks = {n: torch.ones(work.get_parameter(n).shape, dtype=torch.bool) for n in names}
    rounds = []
    for r in range(1, last + 1):
        k_total = round((1 - rate) ** r * total) if r < last else round(density * total)
        k_out = round((1 - rate / 2) ** r * sizes[names[-1]]) if output_rate == "half" else None
        alive = _cut(work, names, alive, k_total, k_out)
        rounds.append(alive)
        if r == last:
            break
        work.load_state_dict(state)
        zero_pruned(work, alive)
        o, done = optimizer(work, opt, lr), 0
        for _ in range(rewind // per_epoch, epochs):
            for x, y in next_epoch():
                masked_step(work, o, x, y, alive)
                done += 1
                if done == steps - rewind:
                    break
            if done == steps - rewind:
                break
    return {"rounds": rounds, "rewind_state": state, "steps": steps}
