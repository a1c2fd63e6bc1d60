"""Iterative magnitude pruning (IMP) with rewinding: the lottery ticket procedure.

Train the dense network; prune ``rate`` (20 %) of the remaining weights by magnitude; rewind
the survivors to their values at iteration ``rewind`` of the first training (0 = the
original initialization); train again; repeat until ``density``. Round ``r`` keeps exactly
``round((1 - rate)^r * N)`` of the ``N`` prunable weights (global scope), the last round
exactly ``round(density * N)``; the number of rounds is the smallest ``R`` with
``(1 - rate)^R <= density``. Masks are nested: a weight pruned once never comes back.

Every round's ticket is kept: :func:`imp_rounds` returns the whole family (a list of
:class:`~graphtickets.Ticket`, densest first), each with the accuracy it reached when
trained from its rewound weights. The registered method ``"imp"`` (``prune(model, "imp",
...)``) returns the last one; its ``meta["rounds"]`` lists every round's density and
accuracy; :func:`family` checks that a list of tickets is nested and keys it by density (both
are exported from :mod:`graphtickets.pruning`). Tickets with ``rewind > 0``, from
:func:`imp_rounds` and from ``prune()`` alike, carry the rewound weights (``Ticket.weights``).

Accuracies. ``train_accuracy`` is the running mean of the training-batch accuracy over the
last epoch of a round's training (measured on the fly, before each step: not a held-out
number); ``eval_accuracy`` is measured on ``eval_data`` after that training (NaN without
``eval_data``). ``accuracy`` is kept as an alias of ``train_accuracy`` for older readers.

Defaults are scaled for the small data sets the package runs on (MNIST-1D, digits): Adam
with learning rate 1.2e-3, as Frankle & Carbin (2019) used for LeNet, and ``epochs=10`` per
round. For the CIFAR ResNets of Frankle et al. (2020) pass ``optimizer="sgd", lr=0.1,
momentum=0.9, weight_decay=1e-4`` and a rewind point of a few hundred iterations.

Options from the papers: ``scope="layer"`` prunes ``rate`` of every layer separately;
``output_rate`` prunes the classifier at its own rate (Frankle & Carbin prune the output
layer of LeNet and the Conv nets at half the rate: ``output_rate=rate / 2``), the other
layers then share the rest of the round's budget so the total stays exact (global scope);
``keep_classifier_dense`` leaves the classifier out of the masks, as open_lth does.

References
----------
.. [1] Frankle, J. & Carbin, M. (2019). The Lottery Ticket Hypothesis: Finding Sparse,
   Trainable Neural Networks. ICLR 2019.
.. [2] Frankle, J., Dziugaite, G. K., Roy, D. M. & Carbin, M. (2020). Linear Mode
   Connectivity and the Lottery Ticket Hypothesis. ICML 2020 (rewinding).
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from graphtickets._version import __version__
from graphtickets.data.core import dataset_name
from graphtickets.errors import GraphticketsError
from graphtickets.pruning.core import _plain, register_method, resolve_params
from graphtickets.pruning.select import keep_count, select_topk
from graphtickets.ticket import Ticket, check_density

__all__ = ["imp_rounds", "n_rounds", "round_densities", "reiterable", "family"]

log = logging.getLogger("graphtickets.pruning.imp")


def reiterable(data: Iterable[Any] | None, method: str = "this method") -> Iterable[Any]:
    """``data`` as something that can be iterated once per epoch.

    Re-iterable objects (lists, :class:`graphtickets.data.Batches`) are returned as they
    are; a one-shot iterator or generator is read once into a list (its batches then repeat
    every epoch in the same order). Nothing is resampled.
    """
    if data is None:
        raise GraphticketsError(
            f"{method} trains the network: pass data=<batches of (inputs, targets)>, e.g. "
            f"gt.data.batches(gt.data.load('mnist1d'), batch_size=128)"
        )
    if iter(data) is data:
        data = list(data)
    return data


def n_rounds(density: float, rate: float) -> int:
    """Number of IMP rounds: the smallest ``r >= 1`` with ``(1 - rate)^r <= density``.

    >>> n_rounds(0.2, 0.2), n_rounds(0.64, 0.2), n_rounds(0.01, 0.2)
    (8, 2, 21)
    """
    density = check_density(density)
    if not (0.0 < rate < 1.0):
        raise GraphticketsError(f"rate must be in (0, 1) (the fraction pruned per round), got {rate!r}")
    r = 1
    while (1.0 - rate) ** r > density * (1.0 + 1e-9):
        r += 1
    return r


def round_densities(density: float, rate: float) -> list[float]:
    """Target density after each round: ``(1 - rate)^r``, the last one exactly ``density``.

    >>> [round(d, 4) for d in round_densities(0.5, 0.2)]
    [0.8, 0.64, 0.512, 0.5]
    """
    r = n_rounds(density, rate)
    return [(1.0 - rate) ** k for k in range(1, r)] + [float(density)]


def _select(
    scores: dict[str, torch.Tensor],
    masks: dict[str, torch.Tensor],
    d: float,
    out_d: float | None,
    classifier: str | None,
    scope: str,
) -> dict[str, torch.Tensor]:
    """Masks at density ``d`` nested in ``masks`` (classifier at ``out_d`` when given)."""
    if out_d is None or classifier is None:
        return select_topk(scores, d, scope=scope, prior=masks)
    sizes = {n: s.numel() for n, s in scores.items()}
    k_cls = keep_count(out_d, sizes[classifier])
    rest = [n for n in scores if n != classifier]
    if scope == "layer":
        counts = {n: keep_count(d, sizes[n]) for n in rest}
        counts[classifier] = k_cls
        return select_topk(scores, d, counts=counts, prior=masks)
    k_rest = keep_count(d, sum(sizes.values())) - k_cls
    n_rest = sum(sizes[n] for n in rest)
    if not rest or k_rest <= 0:
        raise GraphticketsError(
            f"output_rate leaves no weight for the other layers at density {d:.4g}; "
            f"use a larger output_rate or a larger density"
        )
    out = select_topk({n: scores[n] for n in rest}, k_rest / n_rest, prior={n: masks[n] for n in rest})
    out.update(select_topk({classifier: scores[classifier]}, k_cls / sizes[classifier], prior={classifier: masks[classifier]}))
    return {n: out[n] for n in scores}


def _trained(hist: Any) -> dict[str, Any]:
    last = hist.epochs[-1] if hist.epochs else {}
    return {
        "train_accuracy": last.get("accuracy"),
        "accuracy": last.get("accuracy"),  # alias of train_accuracy (older readers)
        "loss": last.get("loss"),
        "eval_accuracy": last.get("eval_accuracy"),
        "eval_loss": last.get("eval_loss"),
        "epochs": len(hist.epochs),
        "iterations": hist.iterations,
        "seconds": hist.seconds,
    }


def imp_rounds(
    model: nn.Module,
    *,
    density: float,
    data: Iterable[Any] | None,
    seed: int = 0,
    rate: float = 0.2,
    rewind: int = 0,
    epochs: int = 10,
    optimizer: str = "adam",
    lr: float = 1.2e-3,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    scope: str = "global",
    output_rate: float | None = None,
    keep_classifier_dense: bool = False,
    train_last: bool = True,
    eval_data: Iterable[Any] | None = None,
    device: str = "cpu",
    dataset: str | None = None,
) -> list[Ticket]:
    """Run IMP to ``density`` and return every round's ticket (a nested family).

    Parameters
    ----------
    model : nn.Module
        The network at initialization. Not modified (IMP works on a copy).
    density : float
        Density of the last ticket, in (0, 1].
    data : iterable of (inputs, targets)
        Training batches, iterated once per epoch.
    seed : int
        Seed of the training (passed to :func:`graphtickets.training.train`).
    rate : float, default 0.2
        Fraction of the remaining weights pruned per round.
    rewind : int, default 0
        Iteration of the FIRST (dense) training the survivors are rewound to; 0 is the
        original initialization (Frankle & Carbin 2019), ``k > 0`` is rewinding (Frankle
        et al. 2020). Must not exceed the iterations of one round's training.
    epochs : int, default 10
        Training epochs per round.
    optimizer, lr, momentum, weight_decay
        Training settings (see the module docstring for the defaults).
    scope : {"global", "layer"}
        Rank weights across the network, or prune every layer at ``rate``.
    output_rate : float, optional
        Prune the classifier at this rate instead (e.g. ``rate / 2``).
    keep_classifier_dense : bool, default False
        Leave the classifier out of the masks.
    train_last : bool, default True
        Also train the last ticket (from its rewound weights) to record its accuracy.
    eval_data : iterable of (inputs, targets), optional
        Evaluated after every training (``eval_accuracy``).
    device : str
        Where to train.
    dataset : str, optional
        Name recorded in the provenance.

    Returns
    -------
    list of Ticket
        Round 1 .. R, densities ``round_densities(density, rate)``. Each ticket's ``meta``:
        ``round``, ``train_accuracy`` (running training accuracy of the last epoch; alias
        ``accuracy``) and ``eval_accuracy`` (on ``eval_data``) of the ticket trained from its
        rewound weights (None for the last one when ``train_last=False``), ``dense`` (the dense
        network's), ``rounds`` (the summary of all rounds) and ``cost`` (cumulative:
        ``seconds``, ``epochs``, ``iterations`` spent until the ticket was found).
        With ``rewind > 0`` each ticket carries the rewound weights.

    Examples
    --------
    >>> import torch, graphtickets as gt
    >>> model = gt.models.build("mlp", in_shape=(8,), num_classes=2, widths=(6,))
    >>> g = torch.Generator().manual_seed(0)
    >>> data = [(torch.randn(16, 8, generator=g), torch.randint(0, 2, (16,), generator=g))]
    >>> fam = imp_rounds(model, density=0.5, data=data, epochs=1)
    >>> [t.meta["round"] for t in fam], round(fam[-1].density, 3)
    ([1, 2, 3, 4], 0.5)
    """
    from graphtickets import training

    density = check_density(density)
    targets = round_densities(density, rate)
    if output_rate is not None and not (0.0 <= output_rate < 1.0):
        raise GraphticketsError(f"output_rate must be in [0, 1), got {output_rate!r}")
    if output_rate is not None and keep_classifier_dense:
        raise GraphticketsError("output_rate and keep_classifier_dense exclude each other: choose one")
    if isinstance(rewind, bool) or not isinstance(rewind, int) or rewind < 0:
        raise GraphticketsError(f"rewind must be an iteration number >= 0, got {rewind!r}")
    if scope not in ("global", "layer"):
        raise GraphticketsError(f"scope must be 'global' or 'layer', got {scope!r}")
    data = reiterable(data, "imp")
    names, masks = resolve_params(model, keep_classifier_dense=keep_classifier_dense)
    classifier = names[-1] if output_rate is not None else None
    hparams = {
        "rate": rate, "rewind": rewind, "epochs": epochs, "optimizer": optimizer, "lr": lr,
        "momentum": momentum, "weight_decay": weight_decay, "scope": scope,
        "output_rate": output_rate, "keep_classifier_dense": keep_classifier_dense,
        "train_last": train_last,
    }
    settings: dict[str, Any] = {
        "epochs": epochs, "optimizer": optimizer, "lr": lr, "momentum": momentum,
        "weight_decay": weight_decay, "device": device, "seed": seed, "eval_data": eval_data,
    }
    work = copy.deepcopy(model)
    t0 = time.perf_counter()
    init_state = training.snapshot(work)
    hist = training.train(work, data, rewind_iteration=rewind if rewind > 0 else None, **settings)
    cost = {"epochs": len(hist.epochs), "iterations": hist.iterations}
    if rewind > 0:
        if hist.rewind is None:
            raise GraphticketsError(
                f"rewind={rewind} is past the end of one round's training ({hist.iterations} "
                f"iterations); use a smaller rewind or more epochs"
            )
        rewind_state = hist.rewind
    else:
        rewind_state = init_state
    dense = _trained(hist)
    summary: list[dict[str, Any]] = [{"round": 0, "density": 1.0, **dense}]
    found: list[tuple[dict[str, torch.Tensor], dict[str, Any]]] = []
    for r, d in enumerate(targets, start=1):
        params = dict(work.named_parameters())
        scores = {n: params[n].detach().abs().cpu() for n in names}
        out_d = None if output_rate is None else (1.0 - output_rate) ** r
        masks = _select(scores, masks, d, out_d, classifier, scope)
        training.restore(work, rewind_state)
        training.enforce_masks(work, masks)
        weights = (
            {n: p.detach().cpu().clone() for n, p in work.named_parameters()} if rewind > 0 else None
        )
        cost_now = {**cost, "seconds": time.perf_counter() - t0}
        info: dict[str, Any] = {"round": r, "density": sum(int(m.count_nonzero()) for m in masks.values()) / sum(m.numel() for m in masks.values())}
        if r < len(targets) or train_last:
            hist = training.train(work, data, masks=masks, **settings)
            cost["epochs"] += len(hist.epochs)
            cost["iterations"] += hist.iterations
            info.update(_trained(hist))
        summary.append(info)
        found.append(({n: m.clone() for n, m in masks.items()}, {"weights": weights, "cost": cost_now, "info": info}))
        log.info("imp round %d/%d: density %.4g, train accuracy %s", r, len(targets), info["density"], info.get("train_accuracy"))
    total_seconds = time.perf_counter() - t0
    tickets: list[Ticket] = []
    for (m, extra), d in zip(found, targets, strict=True):
        info = extra["info"]
        config = {
            "method": "imp", "density": d, "seed": seed, "hparams": _plain(hparams),
            "model": getattr(model, "gt_spec", None),
            "dataset": dataset or dataset_name(data),
        }
        meta = {
            "round": info["round"],
            "train_accuracy": info.get("train_accuracy"),
            "accuracy": info.get("accuracy"),
            "eval_accuracy": info.get("eval_accuracy"),
            "dense": dense,
            "rounds": summary,
            "cost": extra["cost"],
            "family_seconds": total_seconds,
            "version": __version__,
        }
        tickets.append(Ticket(masks=m, method="imp", config=config, meta=meta, weights=extra["weights"]))
    return tickets


def family(tickets: list[Ticket]) -> dict[float, Ticket]:
    """``{density: ticket}`` of an :func:`imp_rounds` family (checks that it is nested)."""
    for a, b in zip(tickets, tickets[1:], strict=False):
        for n, m in b.masks.items():
            if bool((m & ~a.masks[n]).any()):
                raise GraphticketsError(f"tickets are not nested: {n!r} of round {b.meta.get('round')} revives weights")
    return {t.density: t for t in tickets}


@register_method(
    "imp",
    needs_data=True,
    kind="train",
    summary="iterative magnitude pruning with rewinding (the lottery ticket procedure)",
    reference="Frankle & Carbin 2019 (ICLR); rewinding: Frankle et al. 2020 (ICML)",
)
def imp_method(
    model: nn.Module,
    *,
    density: float,
    data: Iterable[Any] | None = None,
    seed: int = 0,
    rate: float = 0.2,
    rewind: int = 0,
    epochs: int = 10,
    optimizer: str = "adam",
    lr: float = 1.2e-3,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    scope: str = "global",
    output_rate: float | None = None,
    keep_classifier_dense: bool = False,
    train_last: bool = True,
    eval_data: Iterable[Any] | None = None,
    device: str = "cpu",
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """IMP's last ticket (see :func:`imp_rounds`; its ``meta["rounds"]`` lists every round).

    With ``rewind > 0`` the ticket carries the rewound weights (``Ticket.weights``).
    """
    fam = imp_rounds(
        model, density=density, data=data, seed=seed, rate=rate, rewind=rewind, epochs=epochs,
        optimizer=optimizer, lr=lr, momentum=momentum, weight_decay=weight_decay, scope=scope,
        output_rate=output_rate, keep_classifier_dense=keep_classifier_dense,
        train_last=train_last, eval_data=eval_data, device=device,
    )
    last = fam[-1]
    meta = {k: v for k, v in last.meta.items() if k not in ("version", "family_seconds")}
    if last.weights is not None:
        meta["weights"] = last.weights  # prune() turns it into Ticket.weights
    meta["cost"] = {k: v for k, v in last.meta["cost"].items() if k != "seconds"}
    final = meta["rounds"][-1]
    if "epochs" in final:  # training the last ticket is part of what prune() spent
        meta["cost"]["epochs"] += final["epochs"]
        meta["cost"]["iterations"] += final["iterations"]
    return last.masks, meta

