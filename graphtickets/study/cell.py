"""Run one cell of a study: find the ticket, train and evaluate it, measure its graphs.

:func:`run_cell` is a pure function of the cell config (plus where the data lives and the
device): it writes nothing, and returns the ticket and its results to the caller (the driver,
which alone writes the store). Everything it draws is seeded from the cell's ``seed``, and it
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
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from graphtickets.errors import GraphticketsError
from graphtickets.study.grid import DENSE
from graphtickets.ticket import Ticket, _jsonable

__all__ = ["CellOutcome", "run_cell", "run_cell_safe", "graph_measures", "derived_seed"]

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
    """

    id: str
    ticket: Ticket | None = None
    results: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    error: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """Whether the cell finished."""
        return self.error is None


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
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
    from graphtickets import analysis, graphs

    out: dict[str, dict[str, float]] = {}
    lg = graphs.layered_graph(model, ticket, weights="count")
    out["layered"] = analysis.metrics(lg)
    try:
        out["relational"] = analysis.metrics(graphs.relational_graph(model, ticket))
    except GraphticketsError as exc:  # e.g. fewer than three prunable layers
        log.info("no relational graph: %s", exc)
    layers = graphs.layer_bipartite(model, ticket, rolled=True, weights="count")
    per = [analysis.metrics(g) for g in layers.values()]
    keys = sorted(set().union(*per)) if per else []
    out["bipartite"] = {
        k: float(np.nanmean([p.get(k, np.nan) for p in per])) if any(np.isfinite(p.get(k, np.nan)) for p in per) else float("nan")
        for k in keys
    }
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
    meta = ticket.meta
    out: dict[str, Any] = {}
    if ticket.method == "imp" and "rounds" in meta:
        out["imp_rounds"] = [
            {k: _finite(r.get(k)) for k in ("round", "density", "accuracy", "eval_accuracy")}
            for r in meta["rounds"]
        ]
    if ticket.method == "early_bird":
        out["eb_distances"] = [_finite(d) for d in meta.get("distances", [])]
        out["eb_epoch"] = meta.get("epoch_drawn")
        out["eb_detected"] = bool(meta.get("detected", False))
        out["eb_tol"] = ticket.config.get("hparams", {}).get("tol")
    if ticket.method == "gem_miner":
        out["gem_accuracy_before_finetune"] = _finite(meta.get("accuracy_before_finetune"))
        out["gem_accuracy_after_finetune"] = _finite(meta.get("accuracy_after_finetune"))
    return out


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


def run_cell(
    config: Mapping[str, Any],
    *,
    cell_id: str = "",
    root: str | None = None,
    device: str = "cpu",
    download: bool = False,
) -> CellOutcome:
    """Find, train, evaluate and measure the ticket of one cell.

    Parameters
    ----------
    config : dict
        A cell config (:attr:`graphtickets.study.grid.Cell.config`).
    cell_id : str
        Recorded in the outcome.
    root : str, optional
        Data folder.
    device : str
        Where to train.
    download : bool
        Allow fetching missing dataset files.

    Returns
    -------
    CellOutcome
        Raises on failure (see :func:`run_cell_safe` for the catching variant).
    """
    import graphtickets as gt

    t_cell = time.perf_counter()
    with _one_thread():
        ds_name = config["dataset"]["name"]
        seed = int(config["seed"])
        train_seed = derived_seed(seed, "train")
        density = float(config["density"])
        tcfg, pcfg = config["train"], config["prune_data"]
        info = gt.data.info(ds_name)
        train_ds = _dataset(ds_name, "train", root, download)
        test_ds = _dataset(ds_name, "test", root, download)
        test_b = gt.data.batches(test_ds, batch_size=tcfg["eval_batch_size"], shuffle=False)

        def prune_b() -> Any:  # a fresh iterator: every pruning method sees the same shuffles
            return gt.data.batches(train_ds, batch_size=pcfg["batch_size"], shuffle=True, seed=train_seed)

        def train_b() -> Any:  # training of the ticket uses train.batch_size
            return gt.data.batches(train_ds, batch_size=tcfg["batch_size"], shuffle=True, seed=train_seed)

        mspec = dict(config["model"])
        mname = mspec.pop("name")
        model = gt.models.build(mname, in_shape=info.in_shape, num_classes=info.num_classes, seed=seed, **mspec)
        method = config["method"]

        def find(target: torch.nn.Module, name: str, hparams: Mapping[str, Any], **extra: Any) -> Ticket:
            spec = gt.pruning.METHODS.get_or_raise(name)
            known = spec.hparams()
            kw = dict(hparams)
            data: Any = None
            if spec.needs_data:
                data = prune_b()
                if spec.kind in ("init", "baseline") and "epochs" not in known:
                    data = gt.data.take(data, int(pcfg["batches"]))
            if "eval_data" in known:
                kw.setdefault("eval_data", test_b)
            if "device" in known:
                kw.setdefault("device", device)
            prune_seed = derived_seed(seed, f"prune:{name}")
            return gt.pruning.prune(target, name, density=density, data=data, seed=prune_seed, dataset=ds_name, **kw, **extra)

        extras: dict[str, Any] = {}
        if method["name"] == DENSE:  # the reference: the dense network, trained like every ticket
            full = gt.pruning.prune(model, "random", density=1.0, seed=seed)
            ticket = full.replace(full.masks, method=DENSE)
            ticket.meta["cost"] = {"seconds": 0.0, "epochs": 0}
        elif "source" in method:
            src = method["source"]
            smodel = gt.models.build(
                mname, in_shape=info.in_shape, num_classes=info.num_classes, seed=seed, **{**mspec, **src["model"]}
            )
            source = find(smodel, src["method"], src["hparams"])
            ticket = find(model, method["name"], method["hparams"], source=source, source_model=smodel)
            # the elastic ticket's cost includes finding its source ticket (seconds, epochs, iterations)
            cost, scost = ticket.meta.setdefault("cost", {}), source.meta.get("cost", {})
            for key in ("seconds", "epochs", "iterations"):
                if scost.get(key) is not None:
                    cost[key] = float(cost.get(key) or 0.0) + float(scost[key])
            extras["source"] = {
                "method": source.method, "density": source.density, "model": smodel.gt_spec,
                "accuracy": _finite(source.meta.get("eval_accuracy")),
            }
            extras.update({f"source_{k}": v for k, v in _method_extras(source).items()})
        else:
            ticket = find(model, method["name"], method["hparams"])
        search_seconds = float(ticket.meta.get("cost", {}).get("seconds", float("nan")))
        extras.update(_method_extras(ticket))

        net = copy.deepcopy(model)
        gt.training.enforce_masks(net, ticket)
        t0 = time.perf_counter()
        history: list[dict[str, Any]] = []
        if int(tcfg["epochs"]) > 0:
            hist = gt.training.train(
                net, train_b(), masks=ticket, epochs=int(tcfg["epochs"]), optimizer=tcfg["optimizer"],
                lr=tcfg["lr"], momentum=tcfg["momentum"], weight_decay=tcfg["weight_decay"],
                eval_data=test_b, device=device, seed=train_seed,
            )
            history = [{k: _finite(v) for k, v in e.items()} for e in hist.epochs]
        final = gt.training.evaluate(net, test_b, masks=ticket, device=device)
        train_seconds = time.perf_counter() - t0

        t1 = time.perf_counter()
        metrics, gextras = graph_measures(ticket, model)
        analysis_seconds = time.perf_counter() - t1

        cost = dict(ticket.meta.get("cost", {}))
        results: dict[str, Any] = {
            "accuracy": _finite(final["accuracy"]),
            "loss": _finite(final["loss"]),
            "train_accuracy": history[-1].get("accuracy") if history else None,
            "density": ticket.density,
            "density_requested": density,
            "kept": ticket.kept,
            "total": ticket.total,
            "layer_densities": ticket.layer_densities(),
            "layer_order": list(ticket.masks),
            "search_seconds": search_seconds,
            "search_epochs": _finite(cost.get("epochs")),
            "search_iterations": _finite(cost.get("iterations")),
            "train_seconds": train_seconds,
            "analysis_seconds": analysis_seconds,
            "history": history,
            **extras,
            **gextras,
        }
        ticket.meta["study"] = {
            "cell": cell_id, "test_accuracy": results["accuracy"], "train": dict(tcfg), "history": history,
        }
    return CellOutcome(
        id=cell_id, ticket=ticket, results=_jsonable(results), metrics=metrics,
        seconds=time.perf_counter() - t_cell,
    )


def run_cell_safe(config: Mapping[str, Any], **kw: Any) -> CellOutcome:
    """:func:`run_cell`, but a failure comes back as an outcome with the traceback in ``error``."""
    t0 = time.perf_counter()
    try:
        return run_cell(config, **kw)
    except Exception:  # noqa: BLE001 - one failing cell never stops the others
        return CellOutcome(id=kw.get("cell_id", ""), error=traceback.format_exc(), seconds=time.perf_counter() - t0)
