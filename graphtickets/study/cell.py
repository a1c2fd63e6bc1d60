"""Run one cell of a study: find the ticket, train and evaluate it, measure its graphs.

:func:`run_cell` is a pure function of the cell config (plus where the data lives and the
device): it writes nothing, and returns the ticket and its results to the caller (the driver,
which alone writes the store). Its steps: :func:`find_ticket` (the method's ticket; from a
trajectory for methods that have one, see :func:`run_trajectory`), :func:`vary` (an
ablation's variant), :func:`start_network` (the ticket's own weights when it carries them,
else the model's initial weights), :func:`train_ticket`, :func:`graph_measures`. Everything it draws is seeded from the cell's ``seed``, and it
runs torch with one intra-op thread, so a cell gives the same numbers in the driver process,
in a Dask worker, and on a re-run.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from graphtickets._json import plain
from graphtickets.errors import GraphticketsError
from graphtickets.study.spec import (
    DENSE,
    CellSpec,
    Dense,
    Derived,
    FromSource,
    FromTrajectory,
    Imported,
    MethodCall,
    ModelSpec,
    Own,
    TicketSource,
    TrajectorySpec,
)
from graphtickets.ticket import Ticket
from graphtickets.training.settings import TrainSettings

__all__ = [
    "CellOutcome", "TrajectoryOutcome", "run_cell", "run_cell_safe", "run_trajectory", "run_trajectory_safe", "run_trajectories_together_safe",
    "find_ticket", "imported", "vary", "start_network", "train_ticket", "graph_measures", "derived_seed", "sibling_seed",
    "prepare_cell", "finish_cell", "run_cells_batched_safe", "train_key", "one_thread",
]

log = logging.getLogger("graphtickets.study")

_DATA_CACHE: dict[tuple[str, str, str | None], Any] = {}


@dataclass
class CellOutcome:
    """What a cell returns to the driver.

    Attributes
    ----------
    id : str
        The cell id.
    ticket : Ticket or None
        The ticket found (None when the cell failed).
    results : dict
        JSON-able results: accuracy, cost, training history, method extras, degree histogram,
        Laplacian spectrum (empty on failure).
    metrics : dict[str, dict[str, float]]
        Graph metrics keyed by graph (``layered``, ``relational``, ``bipartite``).
    error : str or None
        The traceback when the cell failed.
    seconds : float
        Wall time of the cell.
    trained : Ticket or None
        ``ticket`` carrying the trained network's weights
        (:func:`~graphtickets.analysis.with_trained_weights`), for the function family.
    """

    id: str
    ticket: Ticket | None = None
    results: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    error: str | None = None
    seconds: float = 0.0
    trained: Ticket | None = None

    @property
    def ok(self) -> bool:
        """Whether the cell finished."""
        return self.error is None


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run torch with one intra-op thread inside the block (a unit's numbers do not depend on the machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _dataset(name: str, split: str, root: str | None, download: bool) -> Any:
    from graphtickets import data

    key = (name, split, root)
    if key not in _DATA_CACHE:
        _DATA_CACHE[key] = data.load(name, split=split, root=root, download=download)
    return _DATA_CACHE[key]


def _plain(obj: Any) -> Any:
    """Mappings as dicts, lists/tuples as lists; leaves kept as they are (config values)."""
    return plain(obj, leaf=lambda v: v)


def _finite(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def graph_measures(ticket: Ticket, model: torch.nn.Module) -> tuple[dict[str, dict[str, float]], dict[str, Any]]:
    """Metrics of a ticket's layered, relational and per-layer bipartite graphs, and its spectra.

    Returns
    -------
    (metrics, extras)
        ``metrics[graph][name]``; ``extras``: ``degree_hist`` (counts of total degree of the
        layered graph's hidden units, index = degree), ``spectrum`` (normalized Laplacian
        eigenvalues of the layered graph, ascending; the 200 smallest for large graphs).
    """
    from graphtickets import analysis

    lg = analysis.ticket_graph(ticket, model, "layered")
    out = analysis.ticket_measures(ticket, model, built={"layered": lg})  # a relational graph may be left out
    adj = lg.adjacency
    deg = np.asarray((adj != 0).sum(axis=0)).ravel() + np.asarray((adj != 0).sum(axis=1)).ravel()
    roles = lg.nodes["role"].to_numpy() if "role" in lg.nodes.columns else None
    hidden = deg[roles == "hidden"] if roles is not None and (roles == "hidden").any() else deg
    extras: dict[str, Any] = {"degree_hist": np.bincount(hidden.astype(np.int64)).tolist()}
    try:
        spec = analysis.laplacian_spectrum(lg)
    except (GraphticketsError, MemoryError):
        spec = analysis.laplacian_spectrum(lg, k=200)
    extras["spectrum"] = [round(float(v), 6) for v in np.asarray(spec)]
    return out, extras


def _method_extras(ticket: Ticket) -> dict[str, Any]:
    """What a method found on the way (IMP's rounds, Early-Bird's distance curve, Gem-Miner's
    accuracies): its spec's :meth:`~graphtickets.pruning.MethodSpec.result_extras`, so the
    study names no method (a ticket of an unregistered method has none)."""
    from graphtickets.pruning import METHODS

    spec = METHODS.get(ticket.method)
    return {} if spec is None else spec.result_extras(ticket)


def derived_seed(seed: int, purpose: str) -> int:
    """A seed for ``purpose`` ("prune", "train") derived from the cell seed.

    The model is initialized with the cell seed itself. A pruning method seeded with the same
    number would draw the same random stream as the initialization (the random baseline's
    scores then correlate with the weights' magnitudes), and two methods seeded alike draw the
    same stream (Gem-Miner's initial scores equal the random baseline's scores). So training
    gets ``derived_seed(seed, "train")`` and each method ``derived_seed(seed, "prune:<name>")``.

    >>> derived_seed(0, "prune:random") != derived_seed(0, "prune:gem_miner") != derived_seed(0, "train")
    True
    """
    import hashlib

    return int(hashlib.sha256(f"{int(seed)}:{purpose}".encode()).hexdigest()[:8], 16)


def sibling_seed(seed: int, purpose: str, replicate: int = 0) -> int:
    """The seed for ``purpose`` of sibling ``replicate`` (``replicates: R`` in a study).

    Siblings share the initial weights (the init seed ``seed``) and differ in everything
    stochastic afterwards: data order, pruning batches, random tie-breaks and scores.
    Replicate 0 gets :func:`derived_seed` itself (a study without replicates keeps its
    numbers); replicate r > 0 gets ``derived_seed(seed, "<purpose>#r<r>")``.

    >>> sibling_seed(3, "train") == derived_seed(3, "train") != sibling_seed(3, "train", 1)
    True
    """
    return derived_seed(seed, purpose if not replicate else f"{purpose}#r{int(replicate)}")


@dataclass
class _Context:
    """What every step of a cell (or a trajectory) needs: data, seeds, batch sizes, the model at init."""

    dataset: str
    seed: int
    train_seed: int
    replicate: int
    settings: TrainSettings | None
    batch_size: int
    prune_batch_size: int
    prune_batches: int
    train_ds: Any
    test_batches: Any
    model: ModelSpec
    device: str

    @classmethod
    def of(cls, spec: CellSpec | TrajectorySpec, *, root: str | None, download: bool, device: str) -> _Context:
        """The context of a cell, or of a trajectory (its batch size serves training and pruning, one batch)."""
        from graphtickets import data

        if isinstance(spec, CellSpec):
            settings, batch, eval_batch = spec.train.settings, spec.train.batch_size, spec.train.eval_batch_size
            prune_batch, prune_batches = spec.prune_data.batch_size, spec.prune_data.batches
        else:
            settings, batch, eval_batch, prune_batch, prune_batches = None, spec.batch_size, spec.eval_batch_size, spec.batch_size, 1
        ds_name, seed, replicate = spec.data.name, int(spec.seed), int(spec.replicate)
        test_ds = _dataset(ds_name, "test", root, download)
        return cls(
            dataset=ds_name, seed=seed, train_seed=sibling_seed(seed, "train", replicate), replicate=replicate,
            settings=settings, batch_size=int(batch), prune_batch_size=int(prune_batch), prune_batches=int(prune_batches),
            train_ds=_dataset(ds_name, "train", root, download),
            test_batches=data.batches(test_ds, batch_size=int(eval_batch), shuffle=False),
            model=spec.model, device=device,
        )

    @property
    def train(self) -> TrainSettings:
        """The settings the cell's tickets are trained with (a trajectory has none)."""
        if self.settings is None:
            raise GraphticketsError("a trajectory trains no ticket of its own; its method trains as it is set")
        return self.settings

    def prune_seed(self, method: str) -> int:
        """The seed method ``method`` is given (:func:`sibling_seed` of ``"prune:<method>"``)."""
        return sibling_seed(self.seed, f"prune:{method}", self.replicate)

    def build(self, override: Mapping[str, Any] | None = None) -> torch.nn.Module:
        """The model at initialization (cell seed), with ``override`` keyword arguments."""
        from graphtickets import data, models

        spec = self.model.updated(override or {})
        info = data.info(self.dataset)
        return models.build(spec.name, in_shape=info.in_shape, num_classes=info.num_classes, seed=self.seed,
                            **spec.kwargs)

    def batches(self, batch_size: int) -> Any:
        """A fresh shuffled iterator of training batches (every method sees the same shuffles)."""
        from graphtickets import data

        return data.batches(self.train_ds, batch_size=int(batch_size), shuffle=True, seed=self.train_seed)

    def method_data(self, spec: Any, regime: str) -> Any:
        """The data a method gets, by how it uses data (:attr:`MethodSpec.data_use`).

        ``none``: no data; ``batches``: ``prune_data.batches`` batches of
        ``prune_data.batch_size``; ``epochs``: the training batches, of ``train.batch_size``
        when the method follows the study's regime, else of ``prune_data.batch_size``.
        """
        from graphtickets import data

        if spec.data_use == "none":
            return None
        if spec.data_use == "batches":
            return data.take(self.batches(self.prune_batch_size), self.prune_batches)
        return self.batches(self.batch_size if regime == "study" else self.prune_batch_size)

    def method_kw(self, spec: Any, hparams: Mapping[str, Any]) -> dict[str, Any]:
        """``hparams`` plus what the study supplies where the method takes it (eval data, device)."""
        known = spec.hparams()
        kw = dict(hparams)
        if "eval_data" in known:
            kw.setdefault("eval_data", self.test_batches)
        if "device" in known:
            kw.setdefault("device", self.device)
        return kw


def _find(ctx: _Context, target: torch.nn.Module, method: MethodCall, density: float, **extra: Any) -> Ticket:
    """``prune(target, method.name, ...)`` with the data, seed and extras the study supplies."""
    from graphtickets import pruning

    spec = pruning.METHODS.get_or_raise(method.name)
    return pruning.prune(
        target, method.name, density=density, data=ctx.method_data(spec, method.regime),
        seed=ctx.prune_seed(method.name), dataset=ctx.dataset, **ctx.method_kw(spec, method.hparams), **extra,
    )


def run_trajectory(
    spec: TrajectorySpec | Mapping[str, Any], *, root: str | None = None, device: str = "cpu", download: bool = False
) -> dict[float, Ticket]:
    """Run one trajectory (:meth:`graphtickets.study.spec.CellSpec.trajectory`): ``{density: Ticket}``.

    The method's :attr:`~graphtickets.pruning.core.MethodSpec.trajectory` is called once for
    all densities, with the data, seed and extras a cell would give the method. ``spec`` may
    also be its canonical config (:meth:`TrajectorySpec.config`).
    """
    from graphtickets import pruning

    if not isinstance(spec, TrajectorySpec):
        spec = TrajectorySpec.from_config(spec)
    with one_thread():
        ctx = _Context.of(spec, root=root, download=download, device=device)
        method = pruning.METHODS.get_or_raise(spec.method.name)
        if method.trajectory is None:
            raise GraphticketsError(f"method {method.name!r} has no trajectory; run it per density")
        return method.trajectory(
            ctx.build(), densities=[float(d) for d in spec.densities], data=ctx.method_data(method, spec.method.regime),
            seed=ctx.prune_seed(method.name), **ctx.method_kw(method, spec.method.hparams),
        )


@dataclass
class TrajectoryOutcome:
    """What a trajectory returns to the driver: its tickets by density, or the error."""

    id: str
    tickets: dict[float, Ticket] = field(default_factory=dict)
    error: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """Whether the trajectory finished."""
        return self.error is None


def run_trajectory_safe(spec: TrajectorySpec | Mapping[str, Any], trajectory_id: str = "", **kw: Any) -> TrajectoryOutcome:
    """:func:`run_trajectory`, a failure coming back as an outcome with the traceback."""
    t0 = time.perf_counter()
    try:
        tickets = run_trajectory(spec, **kw)
        return TrajectoryOutcome(id=trajectory_id, tickets=tickets, seconds=time.perf_counter() - t0)
    except Exception:  # noqa: BLE001 - one failing unit never stops the others
        return TrajectoryOutcome(id=trajectory_id, error=traceback.format_exc(), seconds=time.perf_counter() - t0)


def run_trajectories_together(
    specs: Sequence[TrajectorySpec], *, root: str | None = None, device: str = "cpu", download: bool = False
) -> list[dict[float, Ticket]]:
    """Several trajectories that differ only in seed and replicate, trained together.

    Entry ``i`` equals :func:`run_trajectory` ``(specs[i])`` to float32 rounding: the method's
    batched trajectory (:data:`graphtickets.pruning.trajectory.TRAJECTORIES_MANY`) gets every
    trajectory's own model (its seed), data order and pruning seed; a method without one runs
    them one after another.
    """
    from graphtickets import pruning
    from graphtickets.pruning.trajectory import TRAJECTORIES_MANY

    many = TRAJECTORIES_MANY.get(specs[0].method.name) if specs else None
    if many is None or len(specs) == 1:
        return [run_trajectory(s, root=root, device=device, download=download) for s in specs]
    with one_thread():
        ctxs = [_Context.of(s, root=root, download=download, device=device) for s in specs]
        method = pruning.METHODS.get_or_raise(specs[0].method.name)
        return many(
            [c.build() for c in ctxs], densities=[float(d) for d in specs[0].densities],
            data=[c.method_data(method, specs[0].method.regime) for c in ctxs],
            seeds=[c.prune_seed(method.name) for c in ctxs], **ctxs[0].method_kw(method, specs[0].method.hparams),
        )


def run_trajectories_together_safe(specs: Sequence[TrajectorySpec], ids: Sequence[str],
                                   **kw: Any) -> list[TrajectoryOutcome]:
    """:func:`run_trajectories_together`, a failure coming back as one failed outcome per trajectory
    (``seconds``: the group's wall time shared out evenly)."""
    t0 = time.perf_counter()
    try:
        found = run_trajectories_together(specs, **kw)
        share = (time.perf_counter() - t0) / len(specs)
        return [TrajectoryOutcome(id=i, tickets=t, seconds=share) for i, t in zip(ids, found, strict=True)]
    except Exception:  # noqa: BLE001 - one failing unit never stops the others
        err, share = traceback.format_exc(), (time.perf_counter() - t0) / max(len(specs), 1)
        return [TrajectoryOutcome(id=i, error=err, seconds=share) for i in ids]


@dataclass
class _Finding:
    """What a ticket finder gets: the cell, its context and model, the tickets found before."""

    ctx: _Context
    spec: CellSpec
    model: torch.nn.Module
    given: Mapping[str, Ticket]
    root: str | None
    download: bool

    def from_trajectory(self, key: str) -> Ticket:
        """The trajectory's ticket at the cell's density: given by the driver (``given[key]``), or run here."""
        if key in self.given:
            return self.given[key]
        tc = self.spec.trajectory()
        assert tc is not None
        return run_trajectory(tc, root=self.root, device=self.ctx.device, download=self.download)[float(self.spec.density)]


def _own_ticket(f: _Finding, source: Own) -> tuple[Ticket, dict[str, Any]]:
    """The method's ticket at the cell's density."""
    return _find(f.ctx, f.model, f.spec.method, float(f.spec.density)), {}


def _trajectory_ticket(f: _Finding, source: FromTrajectory) -> tuple[Ticket, dict[str, Any]]:
    """The ticket of the method's trajectory at the cell's density."""
    return f.from_trajectory("ticket"), {}


def _imported_ticket(f: _Finding, source: Imported) -> tuple[Ticket, dict[str, Any]]:
    """The cell's file (:func:`imported`)."""
    return imported(f.ctx, f.spec, f.model), {}


def _transformed_ticket(f: _Finding, source: FromSource) -> tuple[Ticket, dict[str, Any]]:
    """The transform (Elastic) of the source method's ticket, found on the source's model variant."""
    ctx, density = f.ctx, float(f.spec.density)
    smodel = ctx.build(source.source.model)
    found = f.from_trajectory("source") if source.trajectory is not None else _find(ctx, smodel, source.source, density)
    ticket = _find(ctx, f.model, f.spec.method, density, source=found, source_model=smodel)
    _add_source_cost(ticket, found)
    extras: dict[str, Any] = {"source": {
        "method": found.method, "density": found.density, "model": smodel.gt_spec,
        "accuracy": _finite(found.meta.get("eval_accuracy")),
    }}
    extras.update({f"source_{k}": v for k, v in _method_extras(found).items()})
    return ticket, extras


def _derived_ticket(f: _Finding, source: Derived) -> tuple[Ticket, dict[str, Any]]:
    """A derived method's ticket, built from its source cells' tickets (``given["sources"]``, in the
    order of ``source.sources``; the driver loads them from the store after their cells finished)."""
    from graphtickets.pruning import init_seed

    sources: Any = f.given.get("sources")  # a list of tickets (given maps names to tickets or lists)
    if sources is None or len(sources) != len(source.sources):
        raise GraphticketsError(
            f"the derived cell {f.spec.method.name} d={f.spec.density:g} s={f.spec.seed} is built from the tickets of "
            f"{len(source.sources)} other cells; pass them as given={{'sources': [...]}} (the study runner does, "
            f"after those cells finished)"
        )
    ticket = _find(f.ctx, f.model, f.spec.method, float(f.spec.density), sources=list(sources),
                   held_out=bool(source.held_out))
    ticket.meta["source_cells"] = list(source.sources)
    return ticket, {"derived": {"held_out": bool(source.held_out), "source_cells": list(source.sources),
                                "source_methods": sorted({t.method for t in sources}),
                                "source_seeds": sorted({s for t in sources if (s := init_seed(t)) is not None})}}


def _dense_ticket(f: _Finding, source: Dense) -> tuple[Ticket, dict[str, Any]]:
    """The reference: the dense network (every weight kept), trained like every ticket."""
    from graphtickets import pruning

    full = pruning.prune(f.model, _random_baseline(), density=1.0, seed=f.ctx.seed)
    ticket = full.replace(full.masks, method=DENSE)
    ticket.meta["cost"] = {"seconds": 0.0, "epochs": 0}
    return ticket, {}


#: How a cell's ticket is found, by the kind of its ticket source (one finder per kind).
FINDERS: dict[type, Callable[[_Finding, Any], tuple[Ticket, dict[str, Any]]]] = {
    Own: _own_ticket, FromTrajectory: _trajectory_ticket, Imported: _imported_ticket, FromSource: _transformed_ticket,
    Derived: _derived_ticket, Dense: _dense_ticket,
}


def find_ticket(
    ctx: _Context, spec: CellSpec, model: torch.nn.Module, given: Mapping[str, Ticket],
    *, root: str | None = None, download: bool = False,
) -> tuple[Ticket, dict[str, Any]]:
    """The method's ticket of a cell (not yet varied by an ablation) and its extra results.

    ``given["ticket"]`` (found before: by a trajectory, or the base cell of an ablation) is
    taken as it is; else the finder of the cell's ticket source (:data:`FINDERS`) finds it.
    The dense reference is always built anew and gets no method extras.
    """
    source: TicketSource = spec.ticket
    if isinstance(source, Dense):
        return _dense_ticket(_Finding(ctx, spec, model, given, root, download), source)
    extras: dict[str, Any] = {}
    if "ticket" in given:
        ticket = given["ticket"]
    else:
        ticket, extras = FINDERS[type(source)](_Finding(ctx, spec, model, given, root, download), source)
    extras.update(_method_extras(ticket))
    if "density_requested" in ticket.meta:
        extras["density_served"] = _finite(ticket.density)
    return ticket, extras


def _random_baseline() -> str:
    """The random baseline (:func:`graphtickets.study.methods.random_baseline`): at density 1 it keeps every weight."""
    from graphtickets.study.methods import random_baseline

    name = random_baseline()
    if name is None:
        raise GraphticketsError("the dense reference needs the random baseline, and no such method is registered")
    return name


def imported(ctx: _Context, spec: CellSpec, model: torch.nn.Module) -> Ticket:
    """The ticket of an imported "method" (``methods.<name>.import``): the cell's file, for its model.

    Read with :func:`graphtickets.interop.imported_ticket` (masks only: it trains from the
    model's initial weights, like every ticket without weights of its own). What the other
    tool spent finding it is not known here: its ``search_seconds`` is the time spent reading
    the file, and ``meta["imported_from"]`` names the file.
    """
    from graphtickets import interop

    imp, density = spec.ticket, float(spec.density)
    assert isinstance(imp, Imported)
    path = imp.path(density, spec.seed)
    t0 = time.perf_counter()
    ticket = interop.imported_ticket(path, model, method=spec.method.name, density=density, tolerance=float(imp.tolerance),
                                     kind=imp.file_kind, dataset=ctx.dataset)
    ticket.meta["cost"] = {"seconds": time.perf_counter() - t0}
    ticket.meta["imported_from"] = path
    return ticket


def _add_source_cost(ticket: Ticket, source: Ticket) -> None:
    """A transform's cost includes finding its source ticket (seconds, epochs, iterations)."""
    cost, scost = ticket.meta.setdefault("cost", {}), source.meta.get("cost", {})
    for key in ("seconds", "epochs", "iterations"):
        if scost.get(key) is not None:
            cost[key] = float(cost.get(key) or 0.0) + float(scost[key])


def vary(ticket: Ticket, model: torch.nn.Module, kind: str, seed: int) -> tuple[Ticket, torch.nn.Module]:
    """An ablation of ``ticket`` and the model it trains from (Frankle et al. 2021; Su et al. 2020).

    ``kind`` names an entry of :data:`graphtickets.pruning.ablations.ABLATIONS`, drawn with the
    seed ``derived_seed(seed, "ablation:<kind>")``: ``shuffle`` (every layer's mask permuted,
    same count per layer), ``in_degree`` (every unit's fan-in kept), ``rewire`` (every unit's
    fan-in and fan-out kept, degree-preserving swaps) -- each trained from the same initial
    weights (the ticket's own weights when it carries them) -- and ``reinit`` (the same masks on
    a network initialized anew).
    """
    from graphtickets.pruning.ablations import ABLATIONS

    spec = ABLATIONS.get(kind)
    if spec is None:
        raise GraphticketsError(f"unknown ablation {kind!r}; use any of {', '.join(ABLATIONS)}")
    return spec.fn(ticket, model, derived_seed(seed, f"ablation:{kind}"))


def start_network(model: torch.nn.Module, ticket: Ticket) -> tuple[torch.nn.Module, str]:
    """The network a ticket is trained from: a copy of ``model`` with the ticket applied.

    A ticket that carries weights (IMP rewound to iteration k, an Elastic ticket with
    ``carry_weights``) starts from them (and from the BatchNorm buffers it carries); any
    other ticket from ``model``'s initial weights. Pruned weights are zero either way.

    Returns
    -------
    (nn.Module, str)
        The network and where its weights come from: ``"ticket"`` or ``"init"``.
    """
    net = copy.deepcopy(model)
    ticket.apply(net, weights=True)
    return net, "ticket" if ticket.weights is not None else "init"


def train_ticket(ctx: _Context, net: torch.nn.Module, ticket: Ticket) -> tuple[list[dict[str, Any]], dict[str, Any], float]:
    """Train ``net`` with the study's regime (mask enforced); ``(history, final test numbers, seconds)``."""
    from graphtickets import training

    t0 = time.perf_counter()
    history: list[dict[str, Any]] = []
    if int(ctx.train.epochs) > 0:
        hist = training.train(net, ctx.batches(ctx.batch_size), masks=ticket, settings=ctx.train,
                              eval_data=ctx.test_batches, device=ctx.device, seed=ctx.train_seed)
        history = [{k: _finite(v) for k, v in e.items()} for e in hist.epochs]
    final = training.evaluate(net, ctx.test_batches, masks=ticket, device=ctx.device)
    return history, final, time.perf_counter() - t0


@dataclass
class _Prepared:
    """A cell found and varied, its network ready to train (what :func:`prepare_cell` returns)."""

    spec: CellSpec
    cell_id: str
    ctx: _Context
    model: torch.nn.Module
    ticket: Ticket
    base: Ticket
    kind: str | None
    extras: dict[str, Any]
    search_seconds: float | None
    net: torch.nn.Module
    start: str
    seconds: float


def _spec(cell: CellSpec | Mapping[str, Any]) -> CellSpec:
    """``cell`` as a :class:`CellSpec` (a canonical cell config is read back)."""
    return cell if isinstance(cell, CellSpec) else CellSpec.from_config(cell)


def prepare_cell(
    cell: CellSpec | Mapping[str, Any], *, cell_id: str = "", root: str | None = None, device: str = "cpu",
    download: bool = False, given: Mapping[str, Ticket] | None = None,
) -> _Prepared:
    """The first part of :func:`run_cell`: find the ticket, vary it, build the network it trains from."""
    t0 = time.perf_counter()
    given = dict(given or {})
    with one_thread():
        spec = _spec(cell)
        ctx = _Context.of(spec, root=root, download=download, device=device)
        model = ctx.build(spec.method.model)  # a method may run on a variant of the model
        found = spec.found()  # a transfer cell's ticket is found on its found-on task (same initial weights)
        fctx = ctx if found.data == spec.data else _Context.of(found, root=root, download=download, device=device)
        ticket, extras = find_ticket(fctx, found, model, given, root=root, download=download)
        if spec.found_on is not None:
            extras["transfer"] = {"found_on": spec.found_on.name, "trained_on": spec.data.name}
        # None when unknown (e.g. a ticket read back from a file, which never stores timings)
        search_seconds = _finite(ticket.meta.get("cost", {}).get("seconds"))
        kind = spec.ablation
        base = ticket
        if kind:
            ticket, model = vary(ticket, model, kind, ctx.seed)
            extras["ablation"] = {"kind": kind, "of": spec.method.name}
        net, start = start_network(model, ticket)
    return _Prepared(spec=spec, cell_id=cell_id, ctx=ctx, model=model, ticket=ticket, base=base, kind=kind,
                     extras=extras, search_seconds=search_seconds, net=net, start=start,
                     seconds=time.perf_counter() - t0)


def finish_cell(p: _Prepared, history: list[dict[str, Any]], final: Mapping[str, Any], train_seconds: float,
                trained: str | None = None) -> CellOutcome:
    """The last part of :func:`run_cell`: graph measures and results of a trained cell.

    ``trained`` (how it was trained, e.g. ``"batched K=8"`` or ``"alone: <why>"``) is
    recorded as ``results["trained"]`` when given.
    """
    t_cell = time.perf_counter()
    with one_thread():
        ticket, model, kind, spec = p.ticket, p.model, p.kind, p.spec
        t1 = time.perf_counter()
        same = kind is not None and all(torch.equal(m, p.base.masks[n]) for n, m in ticket.masks.items())
        metrics, gextras = ({}, {}) if same else graph_measures(ticket, model)  # reinit: the base cell's graphs
        analysis_seconds = time.perf_counter() - t1

        cost = dict(ticket.meta.get("cost", {}))
        results: dict[str, Any] = {
            "accuracy": _finite(final["accuracy"]),
            "loss": _finite(final["loss"]),
            "train_accuracy": history[-1].get("accuracy") if history else None,
            "density": ticket.density,
            "density_requested": float(spec.density),
            "kept": ticket.kept,
            "total": ticket.total,
            "layer_densities": ticket.layer_densities(),
            "layer_order": list(ticket.masks),
            "search_seconds": _finite(p.search_seconds),
            "search_epochs": _finite(cost.get("epochs")),
            "search_iterations": _finite(cost.get("iterations")),
            "train_seconds": train_seconds,
            "analysis_seconds": analysis_seconds,
            "start": p.start,
            "history": history,
            **p.extras,
            **gextras,
        }
        if trained is not None:
            results["trained"] = trained
        ticket.meta["study"] = {
            "cell": p.cell_id, "test_accuracy": results["accuracy"], "train": spec.train.config(), "history": history,
            "start": p.start,
        }
    from graphtickets.analysis.function import with_trained_weights

    return CellOutcome(
        id=p.cell_id, ticket=ticket, results=plain(results), metrics=metrics,
        seconds=p.seconds + train_seconds + time.perf_counter() - t_cell, trained=with_trained_weights(ticket, p.net),
    )


def run_cell(
    cell: CellSpec | Mapping[str, Any],
    *,
    cell_id: str = "",
    root: str | None = None,
    device: str = "cpu",
    download: bool = False,
    given: Mapping[str, Ticket] | None = None,
) -> CellOutcome:
    """Find, train, evaluate and measure the ticket of one cell.

    Parameters
    ----------
    cell : CellSpec or dict
        The cell (:attr:`graphtickets.study.grid.Cell.spec`), or its canonical config
        (:attr:`~graphtickets.study.grid.Cell.config`).
    cell_id : str
        Recorded in the outcome.
    root : str, optional
        Data folder.
    device : str
        Where to train.
    download : bool
        Allow fetching missing dataset files.
    given : dict, optional
        Tickets found before, by the driver's store: ``"ticket"`` (the cell's ticket from its
        trajectory, or the method's ticket an ablation varies), ``"source"`` (an elastic
        cell's source ticket from its trajectory) and ``"sources"`` (a derived cell's source
        tickets, required: a derived cell does not find them itself). Without them the cell finds them itself
        (same result, more work).

    Returns
    -------
    CellOutcome
        Raises on failure (see :func:`run_cell_safe` for the catching variant).
    """
    p = prepare_cell(cell, cell_id=cell_id, root=root, device=device, download=download, given=given)
    with one_thread():
        history, final, train_seconds = train_ticket(p.ctx, p.net, p.ticket)
    return finish_cell(p, history, final, train_seconds)


def run_cell_safe(cell: CellSpec | Mapping[str, Any], **kw: Any) -> CellOutcome:
    """:func:`run_cell`, but a failure comes back as an outcome with the traceback in ``error``."""
    t0 = time.perf_counter()
    try:
        return run_cell(cell, **kw)
    except Exception:  # noqa: BLE001 - one failing cell never stops the others
        return CellOutcome(id=kw.get("cell_id", ""), error=traceback.format_exc(), seconds=time.perf_counter() - t0)


def train_key(cell: CellSpec | Mapping[str, Any]) -> str:
    """Cells with equal keys train on the same batches and may be trained together (:func:`run_cells_batched_safe`).

    The key holds what the batches and the network's architecture depend on: dataset, model
    (with a method's model variant), seed (the training seed derives from it), density, and
    the whole training config, and the sibling index (a sibling's data order is its own).
    Every method and ablation at one density, seed and replicate share it.
    """
    import json

    spec = _spec(cell)
    what = {"dataset": spec.data.config(), "model": spec.model.config(), "variant": _plain(spec.method.model),
            "seed": spec.seed, "replicate": int(spec.replicate), "density": spec.density, "train": spec.train.config()}
    return json.dumps(what, sort_keys=True, default=str)


def _train_together(ps: list[_Prepared]) -> list[tuple[list[dict[str, Any]], dict[str, Any], float]]:
    """Train the prepared cells' networks together (:func:`~graphtickets.training.batched.train_many`),
    with exactly the arguments :func:`train_ticket` gives :func:`~graphtickets.training.train`."""
    from graphtickets import training
    from graphtickets.training.batched import train_many

    ctx = ps[0].ctx
    t0 = time.perf_counter()
    hists = train_many([p.net for p in ps], ctx.batches(ctx.batch_size), masks=[p.ticket for p in ps],
                       settings=ctx.train, eval_data=ctx.test_batches, device=ctx.device, seed=ctx.train_seed,
                       engine="stacked")
    share = (time.perf_counter() - t0) / len(ps)
    out = []
    for p, hist in zip(ps, hists, strict=True):
        t1 = time.perf_counter()
        final = training.evaluate(p.net, p.ctx.test_batches, masks=p.ticket, device=p.ctx.device)
        history = [{k: _finite(v) for k, v in e.items()} for e in hist.epochs]
        out.append((history, final, share + time.perf_counter() - t1))
    return out


def _why_alone(ps: list[_Prepared]) -> str | None:
    """Why the prepared cells cannot be trained together (None: they can)."""
    from graphtickets.training.batched import can_batch

    if len(ps) < 2:
        return "one cell"
    if int(ps[0].ctx.train.epochs) <= 0:
        return "no training (epochs = 0)"
    keys = {train_key(p.spec) for p in ps}
    if len(keys) > 1:
        return "the cells train on different batches or models"
    return can_batch([p.net for p in ps], [p.ticket for p in ps], optimizer=ps[0].ctx.train.optimizer, engine="stacked")


def run_cells_batched_safe(
    configs: Sequence[CellSpec | Mapping[str, Any]], ids: Sequence[str], givens: Mapping[str, Mapping[str, Ticket]] | None = None,
    **kw: Any,
) -> list[CellOutcome]:
    """Run cells that train on the same batches (equal :func:`train_key`), training their tickets together.

    Each cell is prepared as :func:`run_cell` does (a failure fails that cell only); then the
    networks are trained by one :func:`~graphtickets.training.batched.train_many` call (the
    ``"stacked"`` engine: plain MLPs) when
    :func:`~graphtickets.training.batched.can_batch` allows it, else each by
    :func:`train_ticket` as :func:`run_cell` does. ``results["trained"]`` records which:
    ``"batched K=<n>"`` or ``"alone: <why>"``. Batched results equal one-by-one training to
    float32 rounding (not bit for bit); cells trained alone give exactly :func:`run_cell`'s.

    Parameters
    ----------
    configs, ids : list
        The cells (:class:`CellSpec` or canonical configs) and their ids (same length).
    givens : dict, optional
        ``{cell id: given}`` as :func:`run_cell` takes ``given``.
    **kw
        ``root``, ``device``, ``download`` as :func:`run_cell` takes them.

    Returns
    -------
    list of CellOutcome
        One per cell, in the order of ``ids``; failures carry their traceback.
    """
    givens = givens or {}
    outcomes: dict[int, CellOutcome] = {}
    ready: list[tuple[int, _Prepared]] = []
    for i, (config, cid) in enumerate(zip(configs, ids, strict=True)):
        t0 = time.perf_counter()
        try:
            ready.append((i, prepare_cell(config, cell_id=cid, given=givens.get(cid), **kw)))
        except Exception:  # noqa: BLE001 - one failing cell never stops the others
            outcomes[i] = CellOutcome(id=cid, error=traceback.format_exc(), seconds=time.perf_counter() - t0)
    ps = [p for _, p in ready]
    trained: list[tuple[list[dict[str, Any]], dict[str, Any], float]] | None = None
    how = ""
    why = _why_alone(ps) if ps else None
    if ps and why is None:
        try:
            with one_thread():
                trained = _train_together(ps)
            how = f"batched K={len(ps)}"
        except Exception as exc:  # noqa: BLE001 - fall back to one by one (fresh networks: train_many trains in place)
            log.warning("training %d cells together failed (%s); training them one by one", len(ps), exc)
            why = f"batched training failed: {exc}"
            redo = []
            for i, p in ready:
                try:
                    redo.append((i, prepare_cell(p.spec, cell_id=p.cell_id, given=givens.get(p.cell_id), **kw)))
                except Exception:  # noqa: BLE001
                    outcomes[i] = CellOutcome(id=p.cell_id, error=traceback.format_exc(), seconds=p.seconds)
            ready = redo
    for j, (i, p) in enumerate(ready):
        try:
            if trained is not None:
                history, final, secs = trained[j]
            else:
                how = f"alone: {why}"
                with one_thread():
                    history, final, secs = train_ticket(p.ctx, p.net, p.ticket)
            outcomes[i] = finish_cell(p, history, final, secs, trained=how)
        except Exception:  # noqa: BLE001 - one failing cell never stops the others
            outcomes[i] = CellOutcome(id=p.cell_id, error=traceback.format_exc(), seconds=p.seconds)
    return [outcomes[i] for i in range(len(ids))]
