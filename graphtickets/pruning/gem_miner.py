"""Gem-Miner ("Rare Gems"): find a sparse mask over the frozen initial weights by training scores.

Every prunable weight ``w`` gets a score ``s`` in [0, 1], drawn uniformly at random (seeded).
The weights never change; the forward pass uses ``w * 1[s > 0.5] * p``, where ``p`` is the
permanent mask, and the gradient reaches ``s`` through a straight-through estimator (as if
``1[s > 0.5]`` were ``s``: :func:`ste_mask`). The loss is cross-entropy plus
``lam * ||s||^2`` (over scores still alive); after each optimizer step the scores are
clamped to [0, 1]. At the end of every ``prune_every`` epochs the lowest-scoring weights
still alive are pruned for good, on the geometric schedule ``density^(j / R)`` of
:func:`graphtickets.pruning.schedule_densities` whose last event (at the end of the last
epoch) keeps exactly ``round(density * N)`` weights: the gem is that permanent mask.

Ties. Clamping piles scores up at exactly 0 and 1 (at density 0.01 on MNIST-1D about two
thirds of the weights alive before the last cut have score 1.0), so a cut often falls inside
a pile of equal scores. The reference code (``pruning_is_enough``) takes the gem as the
weights whose score rounds to 1 (``score > 0.5``, within the permanent mask), whose count is
not the one asked for. Here every cut keeps the exact count and breaks ties at the cut by a
seeded random permutation (:func:`select_random_ties`; seeded from ``seed``): never by the
weights' magnitude nor by their position, which would make the last cut magnitude pruning
(or layer order) in disguise. ``meta`` records the reference's set too: ``above_half`` (the
weights alive before the last cut with score > 0.5) and ``above_half_density`` (its actual
density), with ``tied_at_cut`` (alive weights whose score equals the cut value at the last
cut) and ``tied_kept`` (how many of them the permutation kept); every epoch row of
``meta["epochs"]`` with a cut has its own ``tied`` and ``tied_kept``.

The method records the gem's accuracy with the initial weights, before any weight training
(``meta["accuracy_before_finetune"]``: the paper's claim is that it is well above chance),
and, with ``finetune_epochs > 0`` (the default, 10), after training the gem's weights
(``meta["accuracy_after_finetune"]``). Both are measured on ``eval_data`` when given,
otherwise on the training batches (``meta["accuracy_on"]`` says which). Two diagnostics go
with them: ``meta["accuracy_used_mask"]``, the accuracy of the mask the scores were actually
trained through at the end (the gem AND ``score > 0.5``; it is sparser than the gem when the
penalty pushed scores of kept weights below 0.5, ``meta["active_density"]``), and
``meta["initial_overlap"]``, the fraction of the gem's weights that are also in the top-k of
the INITIAL random scores (a random mask gives about ``density``; 1 means mining did not
move the ranking at all).

Defaults are scaled to the small data sets the package runs on (MNIST-1D: ~30 batches an
epoch, where the paper runs tens of thousands of steps): Adam with lr 0.01 on the scores
(with the paper's SGD 0.1 the scores barely move in a thousand steps and the gem stays close
to the random initial ranking), 30 epochs, a pruning event every 5 epochs. The frozen
weights matter: with PyTorch's default Linear initialisation (uniform, small) the gem is
only modestly above chance; with ``gt.models.build(..., init="kaiming_normal")``, the
initialisation supermask methods and the reference code use, it is clearly better (see
``benchmarks/train_methods.py``).

The forward with substituted weights uses :func:`torch.func.functional_call`: no model code
is touched. BatchNorm running statistics are updated by the masked forward passes (all
parameters, BatchNorm affine ones included, stay frozen).

References
----------
.. [1] Sreenivasan, K., Sohn, J., Yang, L., Grinde, M., Nagle, A., Wang, H., Xing, E., Lee, K.
   & Papailiopoulos, D. (2022). Rare Gems: Finding Lottery Tickets at Initialization.
   NeurIPS 2022.
.. [2] Ramanujan, V., Wortsman, M., Kembhavi, A., Farhadi, A. & Rastegari, M. (2020). What's
   Hidden in a Randomly Weighted Neural Network? CVPR 2020 (scores with straight-through).
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from graphtickets._json import finite_or_none
from graphtickets.errors import GraphticketsError
from graphtickets.pruning.core import (
    MethodResult,
    register_method,
    resolve_params,
    schedule_densities,
)
from graphtickets.pruning.imp import reiterable
from graphtickets.pruning.select import draw_generator, keep_count
from graphtickets.ticket import Ticket, check_density
from graphtickets.training import make_optimizer

__all__ = [
    "ste_mask", "prune_epochs", "select_random_ties", "MiningOptions", "GemMinerResult", "gem_mine", "gem_miner_extras",
]

log = logging.getLogger("graphtickets.pruning.gem_miner")


def ste_mask(scores: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """``1[scores > threshold]`` in the forward pass, the identity in the backward pass.

    >>> s = torch.tensor([0.2, 0.7], requires_grad=True)
    >>> m = ste_mask(s); m.tolist()
    [0.0, 1.0]
    >>> (m * torch.tensor([3.0, 5.0])).sum().backward(); s.grad.tolist()
    [3.0, 5.0]
    """
    hard = (scores > threshold).to(scores.dtype)
    return hard + scores - scores.detach()


def prune_epochs(epochs: int, prune_every: int) -> list[int]:
    """Epochs (1-based) after which Gem-Miner prunes: every ``prune_every``, and the last.

    >>> prune_epochs(10, 3)
    [3, 6, 9, 10]
    >>> prune_epochs(4, 1)
    [1, 2, 3, 4]
    """
    if epochs < 1 or prune_every < 1:
        raise GraphticketsError(f"epochs and prune_every must be >= 1, got {epochs} and {prune_every}")
    out = list(range(prune_every, epochs + 1, prune_every))
    if not out or out[-1] != epochs:
        out.append(epochs)
    return out


@dataclass(frozen=True)
class MiningOptions:
    """The options of the score training (declared here only; see :func:`gem_mine`)."""

    epochs: int = 30
    prune_every: int = 5
    lam: float = 1e-4
    optimizer: str = "adam"
    lr: float = 0.01
    momentum: float = 0.9
    keep_classifier_dense: bool = False
    device: str = "cpu"


@dataclass
class GemMinerResult(MethodResult):
    """What :func:`gem_mine` found: a :class:`~graphtickets.pruning.MethodResult` and more.

    Attributes
    ----------
    masks : dict[str, torch.Tensor]
        The gem: the permanent mask after the last pruning event (exact density).
    meta : dict
        Schedule, per-epoch losses, densities after each event, cost.
    scores : dict[str, torch.Tensor]
        The final scores (in [0, 1]).
    event_masks : list of dict[str, torch.Tensor]
        The permanent mask after each pruning event (nested).
    model : nn.Module, optional
        The copy the scores were trained on.
    """

    scores: dict[str, torch.Tensor] = field(default_factory=dict)
    event_masks: list[dict[str, torch.Tensor]] = field(default_factory=list)
    model: nn.Module | None = None


def select_random_ties(
    scores: Mapping[str, torch.Tensor],
    density: float,
    rng: np.random.Generator,
    prior: Mapping[str, torch.Tensor] | None = None,
) -> tuple[dict[str, torch.Tensor], dict[str, int]]:
    """Keep the ``round(density * N)`` highest scores (global); ties at the cut drawn at random.

    The weights still alive (``prior``) whose score is above the cut value are kept; of
    those whose score EQUALS it, as many as the exact count needs are taken in the order of a
    seeded random permutation (``rng``). Nothing else decides between equal scores: not the
    weight's magnitude, not its position. Clamping piles many scores up at exactly 0 or 1,
    so a cut often falls inside such a pile.

    Parameters
    ----------
    scores : dict[str, torch.Tensor]
        A score per weight.
    density : float
        Fraction of ALL ``N`` weights in ``scores`` to keep.
    rng : numpy.random.Generator
        Draws the permutation of the tied weights.
    prior : dict[str, torch.Tensor], optional
        Weights still alive; pruned ones are never kept.

    Returns
    -------
    (masks, info)
        ``info``: ``kept``, ``alive``, ``above`` (kept for being above the cut value),
        ``tied`` (alive weights whose score equals the cut value) and ``tied_kept``.

    Examples
    --------
    >>> m, info = select_random_ties({"w": torch.ones(6)}, 0.5, np.random.default_rng(0))
    >>> int(m["w"].sum()), info["tied"], info["tied_kept"]
    (3, 6, 3)
    """
    names = list(scores)
    flat = [scores[n].detach().cpu().double().reshape(-1).numpy() for n in names]
    sizes = [f.size for f in flat]
    total = sum(sizes)
    alive = np.concatenate([
        np.ones(f.size, dtype=bool) if prior is None else prior[n].detach().cpu().reshape(-1).numpy().astype(bool)
        for n, f in zip(names, flat, strict=True)
    ])
    cat = np.concatenate(flat)
    if np.isnan(cat[alive]).any():
        raise GraphticketsError("gem_miner: scores contain NaN; cannot rank them (lower lr)")
    k = keep_count(density, total)
    idx = np.flatnonzero(alive)
    if k > idx.size:
        raise GraphticketsError(
            f"only {idx.size} of {total} weights are alive, cannot keep {k}: pruned weights never come back"
        )
    keep = np.zeros(total, dtype=bool)
    above = tied = tied_kept = 0
    if k == idx.size:
        keep[idx] = True
    elif k > 0:
        s = cat[idx]
        thr = np.partition(s, s.size - k)[s.size - k]  # the k-th largest alive score
        up = s > thr
        above = int(np.count_nonzero(up))
        keep[idx[up]] = True
        ties = idx[s == thr]
        tied = int(ties.size)
        tied_kept = k - above
        keep[rng.permutation(ties)[:tied_kept]] = True
    out: dict[str, torch.Tensor] = {}
    start = 0
    for n, size in zip(names, sizes, strict=True):
        out[n] = torch.from_numpy(keep[start : start + size].copy()).reshape(scores[n].shape)
        start += size
    info = {"kept": k, "alive": int(idx.size), "above": above, "tied": tied, "tied_kept": tied_kept}
    return out, info


@dataclass
class _Miner:
    """The state of one score training: frozen copy, scores, permanent mask, optimizer."""

    work: nn.Module
    names: list[str]
    scores: dict[str, torch.Tensor]
    permanent: dict[str, torch.Tensor]  # the weights not pruned for good (on the device)
    opt: Any  # torch.optim.Optimizer (training.make_optimizer)
    lam: float
    device: str
    iterations: int = 0

    def epoch(self, data: Iterable[Any]) -> dict[str, float]:
        """One epoch of score training: ``loss`` (cross-entropy) and ``accuracy`` of the batches."""
        params = dict(self.work.named_parameters())
        loss_sum, correct, seen = 0.0, 0, 0
        for batch in data:
            x, y = batch[0].to(self.device), batch[1].to(self.device)
            subs = {n: params[n] * ste_mask(self.scores[n]) * self.permanent[n] for n in self.names}
            out = functional_call(self.work, subs, (x,))
            ce = F.cross_entropy(out, y)
            reg = sum((self.scores[n] * self.permanent[n]).pow(2).sum() for n in self.names)
            loss = ce + self.lam * reg
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            with torch.no_grad():
                for s in self.scores.values():
                    s.clamp_(0.0, 1.0)
            self.iterations += 1
            loss_sum += float(ce.detach()) * len(y)
            correct += int((out.argmax(1) == y).sum())
            seen += len(y)
        if not math.isfinite(loss_sum):
            raise GraphticketsError("gem_miner: the loss is not finite; lower lr")
        return {"loss": loss_sum / max(seen, 1), "accuracy": correct / max(seen, 1)}

    def cut(self, density: float, ties: np.random.Generator) -> tuple[dict[str, torch.Tensor], dict[str, int]]:
        """Prune for good to ``density`` (ties at the cut by ``ties``); the mask before the cut."""
        before = {n: m.detach().cpu().clone() for n, m in self.permanent.items()}
        new, info = select_random_ties(self.scores, density, ties, prior=before)
        self.permanent = {n: m.to(self.device) for n, m in new.items()}
        return before, info

    def active(self) -> int:
        """Weights alive whose score is above 0.5 (those the forward pass uses)."""
        with torch.no_grad():
            return sum(int(((self.scores[n] > 0.5) & self.permanent[n]).count_nonzero()) for n in self.names)


def _start_mining(model: nn.Module, density: float, seed: int, opts: MiningOptions) -> tuple[_Miner, dict[str, torch.Tensor]]:
    """A frozen copy with seeded uniform scores; also the top-k of the initial scores."""
    names, permanent = resolve_params(model, keep_classifier_dense=opts.keep_classifier_dense)
    work = copy.deepcopy(model).to(opts.device)
    for p in work.parameters():
        p.requires_grad_(False)
    gen = draw_generator(seed)
    scores = {n: torch.rand(permanent[n].shape, generator=gen).to(opts.device).requires_grad_(True) for n in names}
    initial, _ = select_random_ties(scores, density, np.random.default_rng([seed, 1]))
    if opts.optimizer not in ("sgd", "adam"):
        raise GraphticketsError(f"optimizer must be 'sgd' or 'adam', got {opts.optimizer!r}")
    miner = _Miner(work=work, names=names, scores=scores, permanent={n: m.to(opts.device) for n, m in permanent.items()},
                   opt=make_optimizer(list(scores.values()), opts.optimizer, lr=opts.lr, momentum=opts.momentum),
                   lam=opts.lam, device=opts.device)
    return miner, initial


def gem_mine(
    model: nn.Module,
    *,
    density: float,
    data: Iterable[Any] | None,
    seed: int = 0,
    **options: Any,
) -> GemMinerResult:
    """Train scores over the frozen weights of a copy of ``model`` and prune on schedule.

    Parameters
    ----------
    model : nn.Module
        At initialization; not modified.
    density : float
        Density of the gem.
    data : iterable of (inputs, targets)
        Batches, iterated once per epoch.
    seed : int
        Seed of the initial scores (uniform in [0, 1]).
    **options
        The fields of :class:`MiningOptions`:

        epochs : int, default 30
            Epochs of score training.
        prune_every : int, default 5
            Epochs between pruning events (:func:`prune_epochs`).
        lam : float, default 1e-4
            Weight of the ``||s||^2`` penalty.
        optimizer : {"adam", "sgd"}, default "adam"
            Optimizer of the scores. The paper's SGD (lr 0.1, momentum 0.9) is meant for runs
            of tens of thousands of steps; Adam at lr 0.01 is the small-data default (module
            docstring).
        lr : float, default 0.01
        momentum : float, default 0.9
            SGD only.
        keep_classifier_dense : bool
            Leave the classifier out of the masks.
        device : str, default "cpu"

    Returns
    -------
    GemMinerResult
        ``model`` is the copy the scores were trained on (initial weights, BatchNorm
        statistics of the masked forward passes). Ties at every cut are broken by a
        permutation seeded with ``seed`` (module docstring); ``meta`` has ``above_half``,
        ``above_half_density``, ``tied_at_cut`` and ``tied_kept``.
    """
    opts = MiningOptions(**options)
    density = check_density(density)
    data = reiterable(data, "gem_miner")
    miner, initial = _start_mining(model, density, seed, opts)
    ties = np.random.default_rng(seed)  # the permutations that break ties at every cut
    events = prune_epochs(opts.epochs, opts.prune_every)
    targets = schedule_densities(density, len(events))
    total = sum(m.numel() for m in miner.permanent.values())
    event_masks: list[dict[str, torch.Tensor]] = []
    history: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    miner.work.train()
    for epoch in range(1, opts.epochs + 1):
        row: dict[str, Any] = {"epoch": epoch, **miner.epoch(data)}
        if epoch in events:
            before, cut = miner.cut(targets[events.index(epoch)], ties)
            event_masks.append({n: m.detach().cpu().clone() for n, m in miner.permanent.items()})
            row["density"] = cut["kept"] / total
            row["tied"], row["tied_kept"] = cut["tied"], cut["tied_kept"]
        row["active_density"] = miner.active() / total
        history.append(row)
        log.info("gem_miner epoch %d: loss %.4g, active density %.4g", epoch, row["loss"], row["active_density"])
    masks = {n: m.detach().cpu().clone() for n, m in miner.permanent.items()}
    meta = {
        "schedule": [{"epoch": e, "density": d} for e, d in zip(events, targets, strict=True)],
        "epochs": history,
        **_gem_summary(miner, masks, before, initial, density, history),
        "tied_at_cut": cut["tied"],
        "tied_kept": cut["tied_kept"],
        "cost": {"epochs": opts.epochs, "iterations": miner.iterations, "seconds": time.perf_counter() - t0},
    }
    return GemMinerResult(masks=masks, meta=meta, event_masks=event_masks, model=miner.work,
                          scores={n: s.detach().cpu().clone() for n, s in miner.scores.items()})


def _gem_summary(miner: _Miner, masks: dict[str, torch.Tensor], before: dict[str, torch.Tensor],
                 initial: dict[str, torch.Tensor], density: float, history: list[dict[str, Any]]) -> dict[str, Any]:
    """The gem's diagnostics: active density, the reference's ``score > 0.5`` set, initial overlap."""
    total = sum(m.numel() for m in masks.values())
    kept = sum(int(m.count_nonzero()) for m in masks.values())
    with torch.no_grad():  # the reference's gem: weights alive before the last cut with score > 0.5
        above_half = sum(int(((miner.scores[n].detach().cpu() > 0.5) & before[n]).count_nonzero()) for n in miner.names)
    overlap = sum(int((masks[n] & initial[n].cpu()).count_nonzero()) for n in miner.names) / max(kept, 1)
    if history[-1]["active_density"] < density - 1.0 / total:
        log.warning(
            "gem_miner: only %.4g of the weights have score > 0.5 at the end, below the gem's density "
            "%.4g: the gem contains weights that were off while mining (see accuracy_used_mask)",
            history[-1]["active_density"], density,
        )
    return {"active_density": history[-1]["active_density"], "above_half": above_half,
            "above_half_density": above_half / total, "initial_overlap": overlap}


def _accuracies(res: GemMinerResult, data: Iterable[Any], eval_data: Iterable[Any] | None, seed: int, *,
                finetune_epochs: int, finetune_optimizer: str, finetune_lr: float, device: str) -> dict[str, Any]:
    """The gem's accuracy before and after fine-tuning its weights, and the cost with it."""
    from graphtickets import training

    assert res.model is not None
    target = eval_data if eval_data is not None else data
    meta = dict(res.meta)
    meta["accuracy_on"] = "eval_data" if eval_data is not None else "train"
    meta["search_seconds"] = meta["cost"]["seconds"]
    gem = res.model
    with torch.no_grad():
        training.enforce_masks(gem, res.masks)
    meta["accuracy_before_finetune"] = training.evaluate(gem, target, masks=res.masks, device=device)["accuracy"]
    used = {n: m & (res.scores[n] > 0.5) for n, m in res.masks.items()}
    meta["accuracy_used_mask"] = training.evaluate(copy.deepcopy(gem), target, masks=used, device=device)["accuracy"]
    if finetune_epochs > 0:
        for p in gem.parameters():
            p.requires_grad_(True)
        hist = training.train(gem, data, masks=res.masks, epochs=finetune_epochs, optimizer=finetune_optimizer,
                              lr=finetune_lr, device=device, seed=seed)  # fmt: skip
        meta["accuracy_after_finetune"] = training.evaluate(gem, target, masks=res.masks, device=device)["accuracy"]
        meta["cost"] = {
            "epochs": meta["cost"]["epochs"] + len(hist.epochs),
            "iterations": meta["cost"]["iterations"] + hist.iterations,
        }
    else:
        meta["accuracy_after_finetune"] = None
        meta["cost"] = {k: v for k, v in meta["cost"].items() if k != "seconds"}
    return meta


def gem_miner_extras(ticket: Ticket) -> dict[str, Any]:
    """Gem-Miner's extra outputs (:attr:`MethodSpec.extras <graphtickets.pruning.MethodSpec>`):
    its accuracy before and after fine-tuning (non-finite as None)."""
    meta = ticket.meta
    if "accuracy_before_finetune" not in meta:
        return {}
    return {"gem_accuracy_before_finetune": finite_or_none(meta.get("accuracy_before_finetune")),
            "gem_accuracy_after_finetune": finite_or_none(meta.get("accuracy_after_finetune"))}


@register_method(
    "gem_miner",
    needs_data=True,
    kind="train",
    summary="train scores over frozen initial weights (straight-through), prune on a geometric schedule",
    reference="Sreenivasan et al. 2022, Rare Gems: Finding Lottery Tickets at Initialization (NeurIPS)",
    options=MiningOptions,
    extras=gem_miner_extras,
)
def gem_miner(
    model: nn.Module,
    *,
    density: float,
    data: Iterable[Any] | None = None,
    seed: int = 0,
    finetune_epochs: int = 10,
    finetune_optimizer: str = "adam",
    finetune_lr: float = 1.2e-3,
    eval_data: Iterable[Any] | None = None,
    **options: Any,
) -> MethodResult:
    """The gem (see :func:`gem_mine` for the ``options``), with its accuracy before and after fine-tuning.

    ``finetune_epochs`` > 0 (default 10) trains the gem's weights (from the initial values,
    mask enforced) with ``finetune_optimizer``/``finetune_lr`` (Adam 1.2e-3 by default, as
    IMP); 0 skips it (``meta["accuracy_after_finetune"]`` is then None). The fine-tuning
    epochs are part of ``meta["cost"]`` but not of ``meta["search_seconds"]`` (the mining
    alone). ``meta`` also holds ``accuracy_used_mask`` and ``initial_overlap`` (module
    docstring). Found by training (the scores over the frozen weights, epochs of data): kind
    ``"train"``, family ``"trained"``, as the README's method table has it.
    """
    data = reiterable(data, "gem_miner")  # once: a one-shot iterator serves the mining and the fine-tuning
    res = gem_mine(model, density=density, data=data, seed=seed, **options)
    device = MiningOptions(**options).device
    meta = _accuracies(res, data, eval_data, seed, finetune_epochs=finetune_epochs,
                       finetune_optimizer=finetune_optimizer, finetune_lr=finetune_lr, device=device)
    return MethodResult(masks=res.masks, meta=meta)
