"""Ablations of a ticket every study needs: shuffled masks, fresh weights, inverted scores.

Frankle et al. (2021) and Su et al. (2020) test what a method's ticket really carries by
(i) shuffling its mask within each layer (keeps the layer densities, destroys positions),
(ii) reinitializing the weights under the same mask, and (iii) inverting the scores (keeping
the weights the method ranks lowest). All three are seeded and return new Tickets whose
``meta['ablation']`` records what was done.

References
----------
.. [1] Frankle, Dziugaite, Roy, Carbin. "Pruning Neural Networks at Initialization: Why are We
   Missing the Mark?" ICLR 2021.
.. [2] Su, Chen, Cai, Wu, Gao, Wang, Lee. "Sanity-Checking Pruning Methods: Random Tickets can
   Win the Jackpot." NeurIPS 2020.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from graphtickets.errors import GraphticketsError
from graphtickets.pruning.core import METHODS, prune
from graphtickets.ticket import Ticket

__all__ = ["shuffle", "reinit", "invert_scores"]


def shuffle(ticket: Ticket, seed: int = 0) -> Ticket:
    """The ticket with each layer's mask randomly permuted (same count per layer).

    Parameters
    ----------
    ticket : Ticket
    seed : int
        Seed of the permutations (a local generator; layers drawn in mask order).

    Returns
    -------
    Ticket
        Same method and config; ``meta['ablation'] = {'kind': 'shuffle', 'seed': seed}``.
        A ticket that carries ``weights`` (rewound IMP, carried elastic) keeps them: the
        same values, now under the shuffled mask (the shuffle ablation of Frankle et al.
        2021 changes WHERE the kept weights are, not the values they start from; positions
        the shuffle turns on start from the carried value there, which is the rewound value
        when the weights were stored unmasked, as IMP stores them).

    Examples
    --------
    >>> import torch
    >>> t = Ticket({"w": torch.tensor([True, True, False, False, False])}, method="manual")
    >>> s = shuffle(t, seed=3)
    >>> s.layer_counts() == t.layer_counts(), s.meta["ablation"]["kind"]
    (True, 'shuffle')
    """
    gen = torch.Generator().manual_seed(seed)
    masks = {}
    for n, m in ticket.masks.items():
        flat = m.reshape(-1)
        masks[n] = flat[torch.randperm(flat.numel(), generator=gen)].reshape(m.shape)
    out = ticket.replace(masks, ablation={"kind": "shuffle", "seed": seed, "of": ticket.method})
    if ticket.weights is not None:
        out.weights = {n: w.clone() for n, w in ticket.weights.items()}
    return out


def _reset_all(model: nn.Module) -> None:
    for mod in model.modules():
        reset = getattr(mod, "reset_parameters", None)
        if callable(reset):
            reset()


def reinit(ticket: Ticket, model: nn.Module, seed: int = 1) -> tuple[Ticket, nn.Module]:
    """Same mask, fresh weights: ``(ticket, new model)`` with the mask applied.

    If ``model`` carries a ``gt_spec`` (built by :func:`graphtickets.models.build`) the new
    model is rebuilt from the spec with ``seed``; otherwise every module of a deep copy runs
    ``reset_parameters()`` under a forked RNG seeded with ``seed`` (the global RNG is left as
    it was). ``model`` itself is not modified.

    Returns
    -------
    (Ticket, nn.Module)
        The ticket (``meta['ablation'] = {'kind': 'reinit', 'seed': seed}``; its
        ``config['model']`` records the new spec when there is one) and the masked model.
    """
    ticket.check(model)
    spec = getattr(model, "gt_spec", None)
    if isinstance(spec, dict) and "name" in spec:
        from graphtickets.models import build_from_spec

        new_spec = {**spec, "seed": seed}
        if spec.get("seed") == seed:
            raise GraphticketsError(
                f"reinit with seed={seed} would rebuild the same weights (the model was built "
                f"with seed {seed}); pass another seed"
            )
        fresh = build_from_spec(new_spec)
    else:
        new_spec = None
        fresh = copy.deepcopy(model)
        devices = [p.device for p in fresh.parameters() if p.device.type == "cuda"]
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            _reset_all(fresh)
    out = ticket.replace(
        {n: m.clone() for n, m in ticket.masks.items()},
        ablation={"kind": "reinit", "seed": seed, "of": ticket.method},
    )
    if new_spec is not None:
        out.config["model"] = new_spec
    ticket.apply(fresh, weights=False)
    return out, fresh


def invert_scores(
    model: nn.Module,
    method: str,
    *,
    density: float,
    data: Iterable[Any] | None = None,
    seed: int = 0,
    **hparams: Any,
) -> Ticket:
    """The ticket of ``method`` with inverted scores: keep the weights it ranks LOWEST.

    A thin wrapper of :func:`graphtickets.pruning.prune` with ``invert=True``; the method must
    take an ``invert`` hyperparameter (the scoring methods do: magnitude, snip, grasp, synflow).

    Examples
    --------
    >>> import graphtickets as gt
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    >>> t = invert_scores(net, "magnitude", density=0.5)
    >>> t.config["hparams"]["invert"], t.meta["ablation"]["kind"]
    (True, 'invert')
    """
    spec = METHODS.get_or_raise(method)
    if "invert" not in spec.hparams():
        takes = sorted(n for n, s in METHODS.items() if "invert" in s.hparams())
        raise GraphticketsError(
            f"method {method!r} has no scores to invert; methods that take invert=True: {', '.join(takes)}"
        )
    t = prune(model, method, density=density, data=data, seed=seed, invert=True, **hparams)
    t.meta["ablation"] = {"kind": "invert", "of": method}
    return t
