"""Elastic Lottery Ticket Hypothesis (Chen et al. 2021), from the paper and the README.

A ticket of one depth of a family becomes a ticket of another by copying whole blocks: per
group (an MLP's hidden layers after the first, with their BatchNorm; a ResNet stage), target
block 0 takes source block 0 and target slots ``1 .. n_t - 1`` take source blocks
``1 .. n_s - 1`` spread evenly (each block to adjacent slots when stretching, blocks dropped
evenly when squeezing: slot ``j`` takes ``1 + floor((j - 1) (n_s - 1) / (n_t - 1))``). Masks,
weights (the ticket's rewound ones) and BatchNorm running statistics travel with their block;
everything outside the blocks is copied as is. Then (README deviation) the ticket is brought
to exactly ``round(d * N)``: the largest carried ``|w|`` inside it, or all of it plus the
largest ``|w|`` outside it.
"""

from __future__ import annotations

import re

import torch

from oracles.common import Masks, count, top_k


def slot_source(n_source: int, n_target: int, slot: int) -> int:
    if slot == 0 or n_source == 1:
        return 0
    return 1 + (slot - 1) * (n_source - 1) // (n_target - 1)


def source_name(name: str, n_source: dict[str, int], n_target: dict[str, int]) -> str:
    """The source entry that fills the target's ``name`` (MLP: fc<i>/bn<i>; ResNet: stage<s>.<i>)."""
    m = re.match(r"^(stage\d+)\.(\d+)\.(.*)$", name)
    if m:
        g, i = m.group(1), int(m.group(2))
        return f"{g}.{slot_source(n_source[g], n_target[g], i)}.{m.group(3)}"
    m = re.match(r"^(fc|bn)(\d+)\.(.*)$", name)
    if m and "fc" in n_source:
        i = int(m.group(2)) - 1  # fc1 is block 0
        return f"{m.group(1)}{slot_source(n_source['fc'], n_target['fc'], i) + 1}.{m.group(3)}"
    return name


def blocks(names: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for n in names:
        if m := re.match(r"^(stage\d+)\.(\d+)\.", n):
            out[m.group(1)] = max(out.get(m.group(1), 0), int(m.group(2)) + 1)
        elif m := re.match(r"^fc(\d+)\.", n):
            out["fc"] = max(out.get("fc", 0), int(m.group(1)))
    return out


def elastic(source_masks: Masks, source_state: dict[str, torch.Tensor], target_state: dict[str, torch.Tensor],
            density: float) -> tuple[Masks, dict[str, torch.Tensor]]:
    """``(masks, carried state)`` of the target (state: weights and floating buffers by name)."""
    n_s, n_t = blocks(list(source_state)), blocks(list(target_state))
    carried = {n: source_state[source_name(n, n_s, n_t)].clone() for n, v in target_state.items()
               if v.is_floating_point()}
    masks = {n: source_masks[source_name(n, n_s, n_t)].clone() for n in target_state
             if source_name(n, n_s, n_t) in source_masks}
    total = sum(m.numel() for m in masks.values())
    k, kept = round(density * total), count(masks)
    scores = {n: carried[n].abs() for n in masks}
    if kept > k:
        masks = top_k(scores, k, masks)
    elif kept < k:
        grown = top_k(scores, k - kept, {n: ~m for n, m in masks.items()})
        masks = {n: masks[n] | grown[n] for n in masks}
    return masks, carried
