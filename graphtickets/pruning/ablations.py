"""Ablations of a ticket every study needs: shuffled and rewired masks, fresh weights, inverted scores.

Frankle et al. (2021) and Su et al. (2020) test what a method's ticket really carries by
(i) shuffling its mask within each layer (keeps the layer densities, destroys positions),
(ii) reinitializing the weights under the same mask, and (iii) inverting the scores (keeping
the weights the method ranks lowest). The trained ladder adds two rungs between the shuffle
and the ticket: (iv) ``in_degree`` keeps every unit's fan-in (each row of a layer's mask
permuted) and (v) ``rewire`` keeps every unit's fan-in and fan-out (degree-preserving swaps,
Maslov & Sneppen 2002); both draw with :mod:`graphtickets.pruning.randomize`. All are seeded
and return new Tickets whose ``meta['ablation']`` records what was done; :data:`ABLATIONS`
names the mask ablations a study can train.

References
----------
.. [1] Frankle, Dziugaite, Roy, Carbin. "Pruning Neural Networks at Initialization: Why are We
   Missing the Mark?" ICLR 2021.
.. [2] Su, Chen, Cai, Wu, Gao, Wang, Lee. "Sanity-Checking Pruning Methods: Random Tickets can
   Win the Jackpot." NeurIPS 2020.
.. [3] S. Maslov, K. Sneppen, "Specificity and stability in topology of protein networks",
   Science 296, 2002 (degree-preserving edge swaps).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from graphtickets.errors import GraphticketsError
from graphtickets.pruning.core import METHODS, prune
from graphtickets.pruning.randomize import draw_masks
from graphtickets.ticket import Ticket

__all__ = ["shuffle", "in_degree", "rewire", "reinit", "invert_scores", "AblationSpec", "ABLATIONS"]


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


def _rows_view(ticket: Ticket, model: nn.Module | None) -> dict[str, torch.Tensor]:
    """The masks with each unit's inputs on a row (ConvTranspose weights ``(in, out, ...)``
    are transposed to ``(out, in, ...)``; every other weight already is ``(out, ...)``)."""
    if model is None:
        return dict(ticket.masks)
    ticket.check(model)
    owners = {f"{mn}.{pn}" if mn else pn: mod for mn, mod in model.named_modules() for pn, _ in mod.named_parameters(recurse=False)}
    transposed = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
    return {n: m.transpose(0, 1) if isinstance(owners.get(n), transposed) and m.dim() > 1 else m for n, m in ticket.masks.items()}


def _redraw(ticket: Ticket, model: nn.Module | None, level: str, seed: int, **kw: Any) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """One draw of ``level`` of :func:`~graphtickets.pruning.randomize.draw_masks`, back in the
    ticket's own mask layout."""
    view = _rows_view(ticket, model)
    draws, info = draw_masks(view, level, 1, seed, **kw)
    masks = {}
    for n, m in ticket.masks.items():
        d = torch.from_numpy(np.ascontiguousarray(draws[n][0]))
        masks[n] = d.transpose(0, 1).contiguous() if view[n].shape != m.shape else d
    return masks, info


def _carry(out: Ticket, ticket: Ticket) -> Ticket:
    if ticket.weights is not None:  # as shuffle: the same values, under the new mask
        out.weights = {n: w.clone() for n, w in ticket.weights.items()}
    return out


def in_degree(ticket: Ticket, model: nn.Module | None = None, seed: int = 0) -> Ticket:
    """The ticket with each unit's kept inputs moved at random: every unit keeps its fan-in.

    Each row of a layer's ``(out, -1)`` mask (a Linear unit's inputs; a conv output channel's
    ``in * prod(kernel)`` kernel entries) is permuted on its own
    (:func:`~graphtickets.pruning.randomize.draw_fan_in`): the layer densities and every
    unit's number of kept inputs stay, which inputs (and so the fan-outs) change.

    Parameters
    ----------
    ticket : Ticket
    model : nn.Module, optional
        Checked against the ticket; tells ConvTranspose weights (``(in, out, ...)``) apart.
    seed : int
        Layers draw from independent streams (``SeedSequence(seed).spawn``, in mask order).

    Returns
    -------
    Ticket
        Same method and config; ``meta['ablation'] = {'kind': 'in_degree', 'seed', 'of',
        'fixed'}`` (``fixed``: ``{layer: reason}`` for layers no row of which can move, kept as
        they are). Carried ``weights`` are kept as :func:`shuffle` keeps them.

    Examples
    --------
    >>> t = Ticket({"w": torch.tensor([[True, False, False], [True, True, False]])}, method="manual")
    >>> in_degree(t, seed=1).masks["w"].sum(1).tolist()
    [1, 2]

    References
    ----------
    Frankle et al., ICLR 2021 (the layer shuffle this refines).
    """
    masks, info = _redraw(ticket, model, "fan_in", seed)
    out = ticket.replace(masks, ablation={"kind": "in_degree", "seed": seed, "of": ticket.method, "fixed": info["fixed"]})
    return _carry(out, ticket)


def rewire(ticket: Ticket, model: nn.Module | None = None, seed: int = 0, *, swaps_per_edge: float = 10.0) -> Ticket:
    """The ticket rewired keeping every unit's fan-in and fan-out (degree-preserving swaps).

    Each layer's ``(out, -1)`` mask is the bipartite graph of a Linear layer, or the unrolled
    graph of a conv layer (output channels x (input channel, kernel position)): checkerboard
    swaps (:func:`~graphtickets.pruning.randomize.draw_degrees`, Maslov & Sneppen 2002) keep
    every row and column sum -- every unit's fan-in and every input's fan-out (for a conv,
    every (input channel, kernel position)'s fan-out, hence every input channel's).

    Parameters
    ----------
    ticket : Ticket
    model : nn.Module, optional
        As in :func:`in_degree`.
    seed : int
    swaps_per_edge : float, default 10
        Accepted swaps per live weight of each layer (the chain's length).

    Returns
    -------
    Ticket
        ``meta['ablation'] = {'kind': 'rewire', 'seed', 'of', 'swaps_per_edge', 'swaps',
        'fixed'}`` (``swaps``: the accepted swaps per edge of each layer; ``fixed``: layers
        whose degrees have one realization, kept as they are). Carried weights as
        :func:`shuffle`.

    Examples
    --------
    >>> t = Ticket({"w": torch.eye(4, dtype=torch.bool)}, method="manual")
    >>> r = rewire(t, seed=0)
    >>> r.masks["w"].sum(0).tolist(), r.masks["w"].sum(1).tolist(), r.meta["ablation"]["kind"]
    ([1, 1, 1, 1], [1, 1, 1, 1], 'rewire')

    References
    ----------
    Maslov & Sneppen, Science 2002; Hoang et al., ICLR 2023 (the unrolled conv layer).
    """
    masks, info = _redraw(ticket, model, "degrees", seed, swaps_per_edge=swaps_per_edge)
    out = ticket.replace(masks, ablation={"kind": "rewire", "seed": seed, "of": ticket.method, "swaps_per_edge": swaps_per_edge,
                                          "swaps": info["swaps"], "fixed": info["fixed"]})  # fmt: skip
    return _carry(out, ticket)


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


@dataclass(frozen=True)
class AblationSpec:
    """One mask ablation a study can train beside a ticket.

    Attributes
    ----------
    fn : callable
        ``fn(ticket, model, seed) -> (ticket, model)``: the ablated ticket and the network it
        trains from.
    label : str
        How a report names the variant (``"layer-shuffled"``).
    keeps : str
        What the variant keeps of the ticket, for a table or a sentence.
    """

    fn: Callable[[Ticket, nn.Module, int], tuple[Ticket, nn.Module]]
    label: str
    keeps: str


#: The ablations of the trained ladder, from least to most kept of the mask, then ``reinit``.
ABLATIONS: dict[str, AblationSpec] = {
    "shuffle": AblationSpec(lambda t, m, s: (shuffle(t, seed=s), m), "layer-shuffled", "layer densities"),
    "in_degree": AblationSpec(lambda t, m, s: (in_degree(t, m, seed=s), m), "fan-in-kept", "every unit's fan-in"),
    "rewire": AblationSpec(lambda t, m, s: (rewire(t, m, seed=s), m), "degree-preserving rewired",
                           "every unit's fan-in and fan-out"),
    "reinit": AblationSpec(lambda t, m, s: reinit(t, m, seed=s), "re-initialized", "the mask (new initial weights)"),
}
