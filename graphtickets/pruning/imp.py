"""Iterative magnitude pruning (IMP) with rewinding: the lottery ticket procedure.

Train the dense network; prune ``rate`` (20 %) of the remaining weights by magnitude; rewind
the survivors to their values at iteration ``rewind`` of the first training (0 = the
original initialization); train again; repeat. Round ``r`` keeps exactly
``round((1 - rate)^r * N)`` of the ``N`` prunable weights (global scope). Masks are nested:
a weight pruned once never comes back.

The protocol, as in the papers:

* **Every round is trained with the regime passed in**: ``epochs``, ``optimizer``, ``lr``,
  ``momentum``, ``weight_decay``, ``nesterov``, ``schedule`` (with ``milestones``, ``gamma``,
  ``warmup``) go to :func:`graphtickets.training.train` in every round. Frankle & Carbin
  train every round to convergence: pass the regime the tickets are trained with.
* **The output layer at half the rate** (Frankle & Carbin 2019 prune the output layer of
  LeNet and the Conv nets at ``rate / 2``): ``output_rate="half"`` (the default) keeps
  ``round((1 - rate/2)^r * n_out)`` classifier weights after round ``r``; in global scope
  the other layers share the rest of the round's count, so the total stays exact.
  ``output_rate=None`` ranks the classifier with the other layers, a number sets its rate,
  ``keep_classifier_dense=True`` leaves it unpruned (open_lth). The default scope is global
  (Frankle et al. 2020 for the deeper nets); ``scope="layer"`` prunes every layer at
  ``rate`` (Frankle & Carbin's LeNet/Conv protocol), the classifier at its own rate.
  Consequence on small networks: at density 0.01 of a 40-100-100-10 MLP the classifier
  keeps ``0.9^21`` ≈ 11 % of its 1000 weights (109 of the 150 kept), the hidden layers 41.
* **Rewinding to iteration k** (Frankle et al. 2020): the whole state (weights and
  BatchNorm buffers) after ``k`` steps of the dense training is restored each round and
  the round trains the rest of the run, ``T - k`` steps, the learning-rate schedule
  continuing from the epoch of step ``k`` (see ``rewind`` in :func:`imp_rounds`).
  ``rewind=0`` restores the initialization and trains the full run.
* **Exact densities from ONE trajectory**: the last round to a target ``d`` prunes to
  exactly ``round(d * N)``, from the network trained in the round before; the number of
  rounds is the smallest ``R`` with ``(1 - rate)^R <= d``. Several targets share one
  trajectory: ``imp_rounds(model, densities=[0.2, 0.05, 0.01], ...)`` runs the rounds down
  to the lowest target once and cuts each target from the round where it falls (a side
  branch; the trajectory continues at ``(1 - rate)^r``); :func:`imp_at` picks a target's
  ticket. Each target ticket equals the last ticket of a separate run to that density.

Every round's ticket is kept: :func:`imp_rounds` returns the whole family (a list of
:class:`~graphtickets.Ticket`, densest first), each with the accuracy it reached when
trained from its rewound weights. The registered method ``"imp"`` (``prune(model, "imp",
...)``) returns the ticket at its density; its ``meta["rounds"]`` lists every round's
density and accuracy; :func:`family` checks that a list of tickets is nested and keys it by
density (all are exported from :mod:`graphtickets.pruning`). Tickets with ``rewind > 0``,
from :func:`imp_rounds` and from ``prune()`` alike, carry the rewound state
(``Ticket.weights``, unmasked: :meth:`~graphtickets.Ticket.apply` masks it, and a shuffled
mask finds the rewound values at its new positions).

Accuracies. ``train_accuracy`` is the running mean of the training-batch accuracy over the
last epoch of a round's training (measured on the fly, before each step: not a held-out
number); ``eval_accuracy`` is measured on ``eval_data`` after that training (NaN without
``eval_data``).

Defaults (Adam, learning rate 1.2e-3 as Frankle & Carbin used for LeNet, ``epochs=10`` per
round) are only a small-data starting point; a study passes its own training regime. For the
CIFAR ResNets of Frankle et al. (2020) pass ``optimizer="sgd", lr=0.1, momentum=0.9,
weight_decay=1e-4`` with their schedule and a rewind point of a few hundred iterations.

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
from collections.abc import Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import torch
from torch import nn

from graphtickets._json import finite_or_none
from graphtickets._rules import Rule
from graphtickets.errors import GraphticketsError
from graphtickets.pruning.core import (
    MethodResult,
    make_ticket,
    register_method,
    resolve_params,
    training_rules,
)
from graphtickets.pruning.select import keep_count, select_topk
from graphtickets.ticket import Ticket, check_density

__all__ = ["ImpOptions", "imp_rounds", "imp_rounds_many", "imp_at", "imp_extras", "classifier_rate", "n_rounds", "round_densities", "reiterable", "family"]

log = logging.getLogger("graphtickets.pruning.imp")


def reiterable(data: Iterable[Any] | None, method: str = "this method") -> Iterable[Any]:
    """``data`` as something that can be iterated once per epoch.

    Re-iterable objects (lists, :class:`graphtickets.data.Batches`) are returned as they
    are, untouched: a ``Batches`` is not iterated here, so the method's first epoch is the
    next order it gives (``data.epoch``). A one-shot iterator or generator is read once into
    a list (its batches then repeat every epoch in the same order). Nothing is resampled.
    """
    if data is None:
        raise GraphticketsError(
            f"{method} trains the network: pass data=<batches of (inputs, targets)>, e.g. "
            f"gt.data.batches(gt.data.load('mnist1d'), batch_size=128)"
        )
    if isinstance(data, Iterator):  # never iter() a re-iterable: a Batches would skip an epoch's order
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
    alive_rest = sum(int(masks[n].count_nonzero()) for n in rest)
    if k_rest > alive_rest:
        # a target just below a round: the classifier's rate would cut past what the other layers
        # still hold (they only lose weights); the classifier keeps the difference instead
        k_cls += k_rest - alive_rest
        k_rest = alive_rest
    out = select_topk({n: scores[n] for n in rest}, k_rest / n_rest, prior={n: masks[n] for n in rest})
    out.update(select_topk({classifier: scores[classifier]}, k_cls / sizes[classifier], prior={classifier: masks[classifier]}))
    return {n: out[n] for n in scores}


def _trained(hist: Any) -> dict[str, Any]:
    last = hist.epochs[-1] if hist.epochs else {}
    return {
        "train_accuracy": last.get("accuracy"),
        "loss": last.get("loss"),
        "eval_accuracy": last.get("eval_accuracy"),
        "eval_loss": last.get("eval_loss"),
        "epochs": len(hist.epochs),
        "iterations": hist.iterations,
        "seconds": hist.seconds,
    }


def classifier_rate(output_rate: float | str | None, rate: float, keep_classifier_dense: bool) -> float | None:
    """The classifier's own pruning rate per round, or None (ranked with the other layers).

    ``"half"`` is ``rate / 2`` (Frankle & Carbin 2019 prune the output layer at half the
    rate); a number is that rate; None turns the special rate off. With
    ``keep_classifier_dense`` the classifier is not pruned at all: ``"half"`` is then moot
    (None) and a number is an error.

    >>> classifier_rate("half", 0.2, False), classifier_rate(None, 0.2, False), classifier_rate("half", 0.2, True)
    (0.1, None, None)
    """
    if output_rate is None:
        return None
    if output_rate == "half":
        return None if keep_classifier_dense else rate / 2.0
    if isinstance(output_rate, bool) or not isinstance(output_rate, (int, float)) or not (0.0 <= output_rate < 1.0):
        raise GraphticketsError(f"output_rate must be 'half', None or a number in [0, 1), got {output_rate!r}")
    if keep_classifier_dense:
        raise GraphticketsError("output_rate and keep_classifier_dense exclude each other: choose one")
    return float(output_rate)


def _own_data(data: Iterable[Any]) -> Iterable[Any]:
    """A view of ``data`` with its own epoch counter (for a side training that must not shift
    the data order of the main trajectory); lists and loaders are returned as they are."""
    if isinstance(getattr(data, "epoch", None), int):
        return copy.copy(data)
    return data


def _targets(density: float | None, densities: Iterable[float] | None) -> list[float]:
    got = [] if densities is None else [check_density(d) for d in densities]
    if density is not None:
        got.append(check_density(density))
    if not got:
        raise GraphticketsError("imp needs density=<fraction kept> or densities=[...] (the targets of the trajectory)")
    return sorted(set(got), reverse=True)


@dataclass(frozen=True)
class ImpOptions:
    """IMP's options and their defaults (declared here only; see :func:`imp_rounds`)."""

    rate: float = 0.2
    rewind: int = 0
    epochs: int = 10
    optimizer: str = "adam"
    lr: float = 1.2e-3
    momentum: float = 0.9
    weight_decay: float = 0.0
    nesterov: bool = False
    schedule: str | None = None
    milestones: Sequence[int] | None = None
    gamma: float = 0.1
    warmup: int = 0
    scope: str = "global"
    output_rate: float | str | None = "half"
    keep_classifier_dense: bool = False
    train_last: bool = True
    eval_data: Iterable[Any] | None = None
    device: str = "cpu"

    def provenance(self) -> dict[str, Any]:
        """The options a ticket records (the data and the device are not hyperparameters)."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("eval_data", "device")}
        out["milestones"] = None if self.milestones is None else list(self.milestones)
        return out

    def training(self, seed: int) -> dict[str, Any]:
        """Keyword arguments of :func:`graphtickets.training.train` for every round."""
        keys = ("epochs", "optimizer", "lr", "momentum", "weight_decay", "nesterov", "schedule", "milestones",
                "gamma", "warmup", "device", "eval_data")
        return {**{k: getattr(self, k) for k in keys}, "seed": seed}


@dataclass
class _Train:
    """One training a trajectory asks for: ``train(net, data, masks=masks, **settings)``; the
    driver (:func:`_drive` alone, :func:`imp_rounds_many` together) sends the History back."""

    net: nn.Module
    data: Iterable[Any]
    masks: dict[str, torch.Tensor] | None
    settings: dict[str, Any]


@dataclass
class _Trajectory:
    """One IMP run: the network trained round after round, and the tickets found on the way."""

    work: nn.Module
    data: Iterable[Any]
    settings: dict[str, Any]
    rewind_state: dict[str, torch.Tensor]
    train_last: bool
    total: int
    n_last: int
    cost: dict[str, Any]
    t0: float = field(default_factory=time.perf_counter)
    summary: list[dict[str, Any]] = field(default_factory=list)
    found: list[tuple[float, MethodResult]] = field(default_factory=list)

    def record(self, r: int, m: dict[str, torch.Tensor], d: float, *, target: bool, on_path: bool,
               side: bool) -> Generator[_Train, Any, None]:
        """Train ``m`` from the rewind point (a copy when ``side``) and keep the ticket."""
        from graphtickets import training

        info: dict[str, Any] = {
            "round": r, "density": sum(int(v.count_nonzero()) for v in m.values()) / self.total,
            "target": target, "trajectory": on_path,
        }
        cost_now = {**self.cost, "seconds": time.perf_counter() - self.t0}
        if not side or self.train_last:
            net = self.work if not side else copy.deepcopy(self.work)
            training.restore(net, self.rewind_state)
            training.enforce_masks(net, m)
            h = yield _Train(net, _own_data(self.data) if side else self.data, m, dict(self.settings))
            info.update(_trained(h))
            if not side:
                self.cost["epochs"] += len(h.epochs)
                self.cost["iterations"] += h.iterations
        self.summary.append(info)
        meta = {k: info.get(k) for k in ("round", "target", "trajectory", "train_accuracy", "eval_accuracy")}
        self.found.append((d, MethodResult({n: v.clone() for n, v in m.items()}, {**meta, "cost": cost_now})))
        log.info("imp round %d/%d: density %.4g%s, train accuracy %s", r, self.n_last, info["density"],
                 " (target)" if target else "", info.get("train_accuracy"))


def _start(model: nn.Module, data: Iterable[Any], seed: int, opts: ImpOptions, n_last: int,
           names: list[str], total: int) -> Generator[_Train, Any, tuple[_Trajectory, dict[str, Any]]]:
    """Train the dense network (a copy); the trajectory starts from its rewind point."""
    from graphtickets import training

    work = copy.deepcopy(model)
    t0 = time.perf_counter()
    settings = opts.training(seed)
    init_state = training.snapshot(work)
    hist = yield _Train(work, data, None, {**settings, "rewind_iteration": opts.rewind if opts.rewind > 0 else None})
    if opts.rewind > 0:
        if hist.rewind is None or opts.rewind >= hist.iterations:
            raise GraphticketsError(
                f"rewind={opts.rewind} is not before the end of one round's training ({hist.iterations} "
                f"iterations); use a smaller rewind or more epochs"
            )
        per_epoch = int(hist.epochs[0]["iterations"])
        settings.update(start_epoch=opts.rewind // per_epoch, max_iterations=hist.iterations - opts.rewind)
    run = _Trajectory(work=work, data=data, settings=settings,
                      rewind_state=hist.rewind if opts.rewind > 0 else init_state, train_last=opts.train_last,
                      total=total, n_last=n_last, cost={"epochs": len(hist.epochs), "iterations": hist.iterations},
                      t0=t0)
    dense = _trained(hist)
    run.summary.append({"round": 0, "density": 1.0, **dense})
    return run, dense


def _train_one(req: _Train) -> Any:
    from graphtickets import training

    return training.train(req.net, req.data, masks=req.masks, **req.settings)


def _drive(steps: Generator[_Train, Any, Any]) -> Any:
    """Run a trajectory's generator, each training it asks for by :func:`~graphtickets.training.train`."""
    try:
        req = next(steps)
        while True:
            req = steps.send(_train_one(req))
    except StopIteration as stop:
        return stop.value


def _search(
    model: nn.Module, targets: list[float], data: Iterable[Any], seed: int, opts: ImpOptions
) -> list[tuple[float, MethodResult]]:
    """The IMP trajectory to the lowest of ``targets`` (trained alone): see :func:`_steps`."""
    result: list[tuple[float, MethodResult]] = _drive(_steps(model, targets, data, seed, opts))
    return result


def _steps(
    model: nn.Module, targets: list[float], data: Iterable[Any], seed: int, opts: ImpOptions
) -> Generator[_Train, Any, list[tuple[float, MethodResult]]]:
    """The IMP trajectory to the lowest of ``targets``: ``(requested density, result)`` per ticket,
    as a generator that yields every training it needs (:class:`_Train`) and takes its History.

    ``data`` comes through :func:`reiterable` already (which leaves a
    :class:`~graphtickets.data.Batches` at its epoch: every ``iter()`` of one is an epoch).
    """
    out_rate = classifier_rate(opts.output_rate, opts.rate, opts.keep_classifier_dense)
    n_last = n_rounds(targets[-1], opts.rate)
    if isinstance(opts.rewind, bool) or not isinstance(opts.rewind, int) or opts.rewind < 0:
        raise GraphticketsError(f"rewind must be an iteration number >= 0, got {opts.rewind!r}")
    if opts.scope not in ("global", "layer"):
        raise GraphticketsError(f"scope must be 'global' or 'layer', got {opts.scope!r}")
    names, masks = resolve_params(model, keep_classifier_dense=opts.keep_classifier_dense)
    # a single prunable layer is all there is: no separate classifier rate
    classifier = names[-1] if out_rate is not None and len(names) > 1 else None
    run, dense = yield from _start(model, data, seed, opts, n_last, names, sum(m.numel() for m in masks.values()))
    for r in range(1, n_last + 1):
        params = dict(run.work.named_parameters())
        scores = {n: params[n].detach().abs().cpu() for n in names}
        out_d = None if out_rate is None else (1.0 - out_rate) ** r
        d_round = (1.0 - opts.rate) ** r
        main = _select(scores, masks, d_round, out_d, classifier, opts.scope) if r < n_last else None
        # targets cut at this round: (1 - rate)^r <= d < (1 - rate)^(r - 1), so never sparser
        # than the round itself (densest first: they are recorded before it)
        main_target: float | None = None
        for d in (d for d in targets if n_rounds(d, opts.rate) == r):
            cut = _select(scores, masks, d, out_d, classifier, opts.scope)
            if main is not None and all(torch.equal(cut[n], main[n]) for n in names):
                main_target = d  # the target is this round of the trajectory
            else:
                yield from run.record(r, cut, d, target=True, on_path=False, side=True)
        if main is not None:
            yield from run.record(r, main, d_round if main_target is None else main_target,
                                  target=main_target is not None, on_path=True, side=False)
            masks = main
    carried = {k: v for k, v in run.rewind_state.items() if v.is_floating_point()} if opts.rewind > 0 else None
    family_seconds = time.perf_counter() - run.t0
    for _, res in run.found:
        res.meta.update(dense=dense, rounds=run.summary, family_seconds=family_seconds)
        res.weights = None if carried is None else {k: v.clone() for k, v in carried.items()}
    return run.found


def imp_rounds(
    model: nn.Module,
    *,
    density: float | None = None,
    densities: Iterable[float] | None = None,
    data: Iterable[Any] | None,
    seed: int = 0,
    dataset: str | None = None,
    **options: Any,
) -> list[Ticket]:
    """Run ONE IMP trajectory down to the lowest target density; return every round's ticket.

    Parameters
    ----------
    model : nn.Module
        The network at initialization. Not modified (IMP works on a copy).
    density : float, optional
        A target density, in (0, 1].
    densities : iterable of float, optional
        Several target densities served by the same trajectory (with ``density``, the union).
        Each gets a ticket at exactly its count (see Returns); pick them with :func:`imp_at`.
    data : iterable of (inputs, targets)
        Training batches, iterated once per epoch.
    seed : int
        Seed of the training (passed to :func:`graphtickets.training.train`).
    dataset : str, optional
        Name recorded in the provenance.
    **options
        The fields of :class:`ImpOptions`:

        rate : float, default 0.2
            Fraction of the remaining weights pruned per round.
        rewind : int, default 0
            Iteration ``k`` of the FIRST (dense) training the survivors are rewound to; 0 is
            the original initialization (Frankle & Carbin 2019), ``k > 0`` is rewinding
            (Frankle et al. 2020): every round restores the whole state (weights and
            BatchNorm buffers) saved after ``k`` steps and trains for the REST of the run,
            ``T - k`` steps (``T`` the dense run's steps), the schedule continuing at the
            epoch of step ``k`` (:func:`graphtickets.training.train` with
            ``start_epoch = k // B``, ``max_iterations = T - k``, ``B`` steps per epoch; when
            ``k`` is not a multiple of ``B`` the epochs of the retraining are shifted by
            ``k mod B`` steps against the dense run's). Must be below ``T``.
        epochs, optimizer, lr, momentum, weight_decay, nesterov, schedule, milestones, gamma, warmup
            The training regime of every round (see :func:`graphtickets.training.train`;
            defaults 10 epochs of Adam at 1.2e-3): pass the regime the tickets themselves are
            trained with, so that each round is trained to the same convergence (Frankle &
            Carbin train every round fully).
        scope : {"global", "layer"}
            Rank weights across the network, or prune every layer at ``rate``.
        output_rate : "half", float or None, default "half"
            The classifier's own rate per round (:func:`classifier_rate`): ``"half"`` =
            ``rate / 2`` as Frankle & Carbin; in global scope the other layers then share the
            rest of the round's count so the total stays exact. None ranks the classifier
            with the rest.
        keep_classifier_dense : bool, default False
            Leave the classifier out of the masks.
        train_last : bool, default True
            Also train each target ticket that is not on the trajectory (from its rewound
            weights, on a copy) to record its accuracy; the trajectory's own rounds are always
            trained (the next round needs them).
        eval_data : iterable of (inputs, targets), optional
            Evaluated after every training epoch (``eval_accuracy``).
        device : str, default "cpu"
            Where to train.

    Returns
    -------
    list of Ticket
        Densest first, nested. The trajectory's rounds ``r = 1 .. R - 1`` at density
        ``(1 - rate)^r`` (``R = n_rounds(min target, rate)``), and for every target ``d`` the
        ticket with exactly ``round(d * N)`` weights, cut at round ``n_rounds(d, rate)`` from
        the network trained in the round before (a target equal to a round's density IS that
        round). The target tickets are exactly the last tickets of separate runs
        ``imp_rounds(model, density=d, ...)`` (same seed, same data order). Each ticket's
        ``config["density"]`` is its round's density or its target; ``meta``: ``round``,
        ``target`` (a requested density), ``trajectory`` (a round the trajectory went
        through), ``train_accuracy`` (running training accuracy of the last epoch) and ``eval_accuracy`` of the ticket trained from its rewound weights
        (None when not trained), ``dense`` (the dense network's), ``rounds`` (the summary of
        every ticket, round 0 the dense network) and ``cost`` (cumulative ``seconds``,
        ``epochs``, ``iterations`` spent until the ticket was found). With ``rewind > 0``
        every ticket carries the whole rewound state (``Ticket.weights``: weights unmasked,
        biases, floating BatchNorm buffers); :meth:`Ticket.apply` masks it.

    Examples
    --------
    >>> import torch, graphtickets as gt
    >>> model = gt.models.build("mlp", in_shape=(8,), num_classes=2, widths=(6,))
    >>> g = torch.Generator().manual_seed(0)
    >>> data = [(torch.randn(16, 8, generator=g), torch.randint(0, 2, (16,), generator=g))]
    >>> fam = imp_rounds(model, density=0.5, data=data, epochs=1)
    >>> [t.meta["round"] for t in fam], round(fam[-1].density, 3)
    ([1, 2, 3, 4], 0.5)
    >>> fam = imp_rounds(model, densities=[0.7, 0.5], data=data, epochs=1, train_last=False)
    >>> [round(t.density, 3) for t in fam if t.meta["target"]], imp_at(fam, 0.7).kept
    ([0.7, 0.5], 42)
    """
    opts = ImpOptions(**options)
    targets = _targets(density, densities)
    data = reiterable(data, "imp")
    found = _search(model, targets, data, seed, opts)
    return [make_ticket(model, "imp", res, density=d, seed=seed, hparams=opts.provenance(), data=data,
                        dataset=dataset) for d, res in found]  # fmt: skip


def _batch_key(req: _Train) -> tuple[Any, ...]:
    """Trainings with equal keys may be trained together (everything but the seed and the data)."""
    return tuple((k, id(v) if k == "eval_data" else v) for k, v in sorted(req.settings.items()) if k != "seed")


def _lengths_equal(reqs: list[_Train]) -> bool:
    try:
        return len({len(r.data) for r in reqs}) == 1  # type: ignore[arg-type]
    except TypeError:  # no length: cannot be checked before training, so train them alone
        return False


def _train_group(reqs: list[_Train], engine: str) -> tuple[list[Any], str]:
    """Train ``reqs`` (equal :func:`_batch_key`) together where :func:`can_batch` allows it, else
    one by one; returns their Histories and how they were trained."""
    from graphtickets.training import can_batch, train_many

    st = {k: v for k, v in reqs[0].settings.items() if k != "seed"}
    why = "one training" if len(reqs) < 2 else None
    why = why or (None if _lengths_equal(reqs) else "the data give different (or unknown) numbers of batches")
    why = why or can_batch([r.net for r in reqs], [r.masks for r in reqs], optimizer=st["optimizer"],
                           rewind_iteration=st.get("rewind_iteration"), engine=engine)  # fmt: skip
    if why is not None:
        return [_train_one(r) for r in reqs], f"alone: {why}"
    hists = train_many([r.net for r in reqs], [r.data for r in reqs], masks=[r.masks for r in reqs],
                       per_ticket_data=True, seed=int(reqs[0].settings["seed"]), engine=engine, **st)  # fmt: skip
    return hists, f"together K={len(reqs)}"


def imp_rounds_many(
    models: Sequence[nn.Module],
    *,
    data: Sequence[Iterable[Any]],
    seeds: Sequence[int],
    density: float | None = None,
    densities: Iterable[float] | None = None,
    dataset: str | None = None,
    engine: str = "stacked",
    **options: Any,
) -> list[list[Ticket]]:
    """Several IMP trajectories of one architecture, their trainings advanced together.

    Trajectory ``i`` is exactly :func:`imp_rounds` ``(models[i], data=data[i], seed=seeds[i],
    density=..., densities=..., **options)``: its own initial weights, data order, masks and
    rewinding point. Round by round, the trainings the trajectories ask for at the same time (the
    dense training, then each round's retraining and side cuts) are trained by one
    :func:`graphtickets.training.train_many` call with per-ticket data, where
    :func:`~graphtickets.training.can_batch` allows it (else one by one, as alone). The result
    equals the separate runs' to float32 rounding (the batched products sum in another order).

    Parameters
    ----------
    models : sequence of nn.Module
        The networks at initialization (not modified), one per trajectory.
    data : sequence of iterables
        Trajectory ``i``'s training batches (its own object: a :class:`graphtickets.data.Batches`
        counts its epochs, so two trajectories never share one).
    seeds : sequence of int
        Trajectory ``i``'s training seed. Trainings batched together run under the first one's
        seed: only draws from torch's default generator inside training depend on it (a
        ``DataLoader(shuffle=True)`` without its own generator; dropout is never batched), so
        pass :func:`graphtickets.data.batches` or lists when seeds differ.
    density, densities, dataset, **options
        As :func:`imp_rounds` (the same for every trajectory; ``eval_data`` is shared).
    engine : {"stacked", "auto", "vmap"}, default "stacked"
        The batched trainer's engine (``"stacked"``: only where it is faster than one by one).

    Returns
    -------
    list of list of Ticket
        Trajectory ``i``'s family, as :func:`imp_rounds` returns it; each ticket's
        ``meta["trained_together"]`` lists how its trajectory's trainings ran.

    Examples
    --------
    >>> import torch, graphtickets as gt
    >>> models = [gt.models.build("mlp", in_shape=(8,), num_classes=2, widths=(6,), seed=s) for s in range(2)]
    >>> g = torch.Generator().manual_seed(0)
    >>> data = [[(torch.randn(16, 8, generator=g), torch.randint(0, 2, (16,), generator=g))] for _ in models]
    >>> fams = imp_rounds_many(models, data=data, seeds=[0, 1], density=0.5, epochs=1)
    >>> [[t.meta["round"] for t in fam] for fam in fams]
    [[1, 2, 3, 4], [1, 2, 3, 4]]
    """
    if len(models) != len(data) or len(models) != len(seeds) or not models:
        raise GraphticketsError("imp_rounds_many needs one data source and one seed per model (and at least one model)")
    opts = ImpOptions(**options)
    targets = _targets(density, densities)
    datas = [reiterable(d, "imp") for d in data]
    gens = [_steps(m, targets, d, int(s), opts) for m, d, s in zip(models, datas, seeds, strict=True)]
    found: dict[int, list[tuple[float, MethodResult]]] = {}
    how: list[list[str]] = [[] for _ in gens]
    pending = {i: next(g) for i, g in enumerate(gens)}
    while pending:
        groups: dict[tuple[Any, ...], list[int]] = {}
        for i, req in pending.items():
            groups.setdefault(_batch_key(req), []).append(i)
        for idx in groups.values():
            hists, note = _train_group([pending[i] for i in idx], engine)
            for i, h in zip(idx, hists, strict=True):
                how[i].append(note)
                try:
                    pending[i] = gens[i].send(h)
                except StopIteration as stop:
                    found[i] = stop.value
                    del pending[i]
    out = []
    for i, m in enumerate(models):
        fam = [make_ticket(m, "imp", res, density=d, seed=int(seeds[i]), hparams=opts.provenance(), data=datas[i],
                           dataset=dataset) for d, res in found[i]]  # fmt: skip
        for t in fam:
            t.meta["trained_together"] = sorted(set(how[i]))
        out.append(fam)
    return out


def _at(densities: Sequence[float | None], kept: Sequence[int], total: int, density: float) -> int | None:
    """Index of the ticket at ``density``: by requested density first, then by exact count."""
    for i, d in enumerate(densities):
        if d == density:
            return i
    k = keep_count(density, total)
    return next((i for i, n in enumerate(kept) if n == k), None)


def imp_at(tickets: Sequence[Ticket], density: float) -> Ticket:
    """The ticket of an :func:`imp_rounds` trajectory at ``density`` (a target or a round).

    Matched by the requested density (``config["density"]``) first, then by the exact count
    ``round(density * N)``.

    Examples
    --------
    >>> import torch, graphtickets as gt
    >>> model = gt.models.build("mlp", in_shape=(8,), num_classes=2, widths=(6,))
    >>> data = [(torch.randn(16, 8), torch.randint(0, 2, (16,)))]
    >>> fam = imp_rounds(model, densities=[0.5, 0.3], data=data, epochs=1, train_last=False)
    >>> imp_at(fam, 0.3).kept == round(0.3 * fam[0].total)
    True
    """
    d = check_density(density)
    i = _at([t.config.get("density") for t in tickets], [t.kept for t in tickets],
            tickets[0].total if tickets else 0, d)  # fmt: skip
    if i is not None:
        return tickets[i]
    have = ", ".join(f"{t.config.get('density'):.4g}" for t in tickets)
    raise GraphticketsError(
        f"the trajectory has no ticket at density {d}; it has {have}: run imp_rounds with "
        f"densities=[..., {d}]"
    )


def family(tickets: list[Ticket]) -> dict[float, Ticket]:
    """``{density: ticket}`` of an :func:`imp_rounds` family (checks that it is nested)."""
    for a, b in zip(tickets, tickets[1:], strict=False):
        for n, m in b.masks.items():
            if bool((m & ~a.masks[n]).any()):
                raise GraphticketsError(f"tickets are not nested: {n!r} of round {b.meta.get('round')} revives weights")
    return {t.density: t for t in tickets}


def imp_extras(ticket: Ticket) -> dict[str, Any]:
    """IMP's extra output (:attr:`MethodSpec.extras <graphtickets.pruning.MethodSpec>`): every
    round's ``round, density, accuracy, eval_accuracy`` (non-finite numbers as None) as
    ``imp_rounds``."""
    rounds = ticket.meta.get("rounds")
    if not (isinstance(rounds, list) and rounds and all(isinstance(r, Mapping) for r in rounds)):
        return {}
    # the study's stored column is ``accuracy``: the round's running training accuracy
    return {"imp_rounds": [{"round": finite_or_none(r.get("round")), "density": finite_or_none(r.get("density")),
                            "accuracy": finite_or_none(r.get("train_accuracy")),
                            "eval_accuracy": finite_or_none(r.get("eval_accuracy"))} for r in rounds]}  # fmt: skip


@register_method(
    "imp",
    needs_data=True,
    kind="train",
    summary="iterative magnitude pruning with rewinding (the lottery ticket procedure)",
    reference="Frankle & Carbin 2019 (ICLR); rewinding: Frankle et al. 2020 (ICML)",
    options=ImpOptions,
    extras=imp_extras,
    constraints={**training_rules(), "output_rate": Rule.floats(0.0, 1.0, high_open=True, words=("half",))},
)
def imp(
    model: nn.Module,
    *,
    density: float,
    data: Iterable[Any] | None = None,
    seed: int = 0,
    **options: Any,
) -> MethodResult:
    """IMP's ticket at ``density`` (see :func:`imp_rounds` for the ``options``; its
    ``meta["rounds"]`` lists every round).

    With ``rewind > 0`` the ticket carries the rewound state (``Ticket.weights``). To serve
    several densities from one trajectory call :func:`imp_rounds` with ``densities=`` and
    pick with :func:`imp_at`.
    """
    found = _search(model, _targets(density, None), reiterable(data, "imp"), seed, ImpOptions(**options))
    i = _at([d for d, _ in found], [sum(int(m.count_nonzero()) for m in r.masks.values()) for _, r in found],
            sum(m.numel() for m in found[0][1].masks.values()), density)  # fmt: skip
    assert i is not None  # the target is always cut
    last = found[i][1]
    meta = {k: v for k, v in last.meta.items() if k != "family_seconds"}
    meta["cost"] = {k: v for k, v in meta["cost"].items() if k != "seconds"}
    final = next(r for r in reversed(meta["rounds"]) if r["round"] == last.meta["round"] and r["target"])
    if "epochs" in final:  # training the ticket itself is part of what prune() spent
        meta["cost"]["epochs"] += final["epochs"]
        meta["cost"]["iterations"] += final["iterations"]
    return MethodResult(last.masks, meta, last.weights)
