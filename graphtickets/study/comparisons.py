"""The study's comparisons: which tickets are compared, with which distances, and running them.

Per comparison group (one dataset, model, density and init seed) every pair of methods'
tickets is compared with every structural distance kind against its nulls (and, with
``analysis.functional``, the function family on the trained tickets); per dataset and model
all tickets with the MDS kind; per method its sibling replicates (the noise floor).
:func:`analyze` runs the groups the store lacks and records their tables.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from graphtickets.study.cell import one_thread
from graphtickets.study.config import StudyConfig
from graphtickets.study.executors import InProcessExecutor
from graphtickets.study.grid import DENSE, SIBLINGS, Cell, GroupKey, ModelKey, SiblingKey
from graphtickets.study.progress import Progress
from graphtickets.study.store import Store

__all__ = ["analyze", "compare_group", "function_rows", "function_kinds", "null_counts", "sibling_groups", "SIBLINGS"]

log = logging.getLogger("graphtickets.study")

#: A comparison group's key: per density and seed, per model (the MDS map), or siblings.
Key = GroupKey | ModelKey | SiblingKey


def _compared(c: Cell, done: set[str]) -> bool:
    """Whether a finished cell's ticket enters the comparisons: not the dense reference, not an ablation,
    not a transfer cell (its ticket is its found-on cell's, compared there).

    Ablation variants are sanity checks of a method's ticket, not tickets of another method:
    a re-initialized variant has the very masks of its method (distance 0), a shuffled one is
    the layer-shuffled null itself. Kept out of the pairwise distances, they cannot make the
    "most alike" ranking; the report compares them by accuracy only.
    """
    return c.id in done and c.method != DENSE and not c.variant and not c.replicate and not c.found_on


def _groups(cells: list[Cell], done: set[str]) -> dict[GroupKey, list[Cell]]:
    out: dict[GroupKey, list[Cell]] = {}
    for c in cells:
        if _compared(c, done):
            out.setdefault(c.group, []).append(c)
    return out


def _model_groups(cells: list[Cell], done: set[str]) -> dict[ModelKey, list[Cell]]:
    """Every compared ticket of a dataset and model, across densities and seeds (for the MDS map)."""
    out: dict[ModelKey, list[Cell]] = {}
    for c in cells:
        if _compared(c, done):
            out.setdefault(c.model_group, []).append(c)
    return out


def sibling_groups(cells: list[Cell], done: set[str]) -> dict[SiblingKey, list[Cell]]:
    """The sibling groups: per method, density and init seed, its finished replicates (>= 2).

    Keyed by :class:`~graphtickets.study.grid.SiblingKey` (stored as ``<group>#siblings:<method>``);
    their tickets are named ``r0``, ``r1``, ... in the comparison tables. Only methods' own
    tickets (no dense reference, no ablation variants).
    """
    out: dict[SiblingKey, list[Cell]] = {}
    for c in cells:
        if c.id in done and c.method != DENSE and not c.variant and not c.found_on:
            out.setdefault(c.sibling_group, []).append(c)
    return {k: sorted(v, key=lambda c: c.replicate) for k, v in out.items() if len(v) >= 2}


def _signature(ids: list[str], what: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps({"ids": sorted(ids), **what}, sort_keys=True).encode()).hexdigest()[:16]


def null_counts(study: StudyConfig) -> dict[str, int]:
    """Nulls drawn per structural distance kind in the per-group comparisons (``null_samples_by_kind`` wins).

    Kinds that compare trained networks (the function family) are not here: they have no
    null and enter the groups through ``analysis.functional``.
    """
    from graphtickets import analysis

    a = study.analysis
    kinds = [k for k in (a.kinds or [k for k, s in analysis.DISTANCES.items() if s.default])
             if not analysis.DISTANCES[k].needs_data]  # the function family: analysis.functional
    return {k: int(a.null_samples_by_kind.get(k, a.null_samples)) for k in kinds}


def function_kinds(study: StudyConfig) -> list[str]:
    """The function-family kinds the study compares: none without ``analysis.functional``;
    those listed in ``analysis.kinds`` when it is given; else all of
    :data:`~graphtickets.analysis.FUNCTION_KINDS`."""
    from graphtickets import analysis

    a = study.analysis
    if not a.functional:
        return []
    if a.kinds:
        return [k for k in a.kinds if analysis.DISTANCES[k].needs_data]
    return list(analysis.FUNCTION_KINDS)


def compare_group(tickets: Mapping[str, Any], counts: Mapping[str, int], null: str,
                  trained: Mapping[str, Any] | None = None, data: Any = None,
                  function_kinds: list[str] | None = None) -> pd.DataFrame:
    """The comparison table of one group: every kind with its number of nulls (runs on a worker too).

    The ticket of the first name supplies the architecture (all tickets of a group share it).
    With ``trained`` (the same names, tickets with trained weights) and ``data`` (test
    batches), the function family (``function_kinds``; default all of it) is added (:func:`function_rows`).
    """
    from graphtickets import analysis

    with one_thread():
        model = next(iter(tickets.values())).build_model()
        by_count: dict[int, list[str]] = {}
        for k, n in counts.items():
            by_count.setdefault(int(n), []).append(k)
        parts = [analysis.compare(dict(tickets), model, kinds=ks, null_samples=n, seed=0, null=null)
                 for n, ks in by_count.items()]
    nonempty = [p for p in parts if not p.empty]
    table = pd.concat(nonempty or parts, ignore_index=True)
    order = {k: i for i, k in enumerate(counts)}
    table = table.sort_values(by=["kind"], key=lambda s: s.map(order), kind="stable").reset_index(drop=True)
    if trained is not None and data is not None:
        fn = function_rows(trained, data, function_kinds)
        table = pd.concat([table, fn.reindex(columns=table.columns)], ignore_index=True)
        if "note" in table:
            from graphtickets.analysis.compare import NO_FUNCTION_NULL

            table.loc[table["kind"].isin(set(fn["kind"])), "note"] = NO_FUNCTION_NULL
    return table


def function_rows(trained: Mapping[str, Any], data: Any, kinds: list[str] | None = None) -> pd.DataFrame:
    """Functional distances (:data:`~graphtickets.analysis.FUNCTION_KINDS`) between trained tickets.

    Each ticket is run on its own architecture (built from its spec: a method may train a
    variant of the study model), on the test batches ``data``; no nulls.
    """
    from graphtickets import analysis

    with one_thread():
        return analysis.compare(dict(trained), None, kinds=list(kinds or analysis.FUNCTION_KINDS), data=data)


def _test_batches(study: StudyConfig, dataset: str) -> list[Any]:
    """The test split of ``dataset`` as a list of batches (what the function family reads)."""
    from graphtickets import data

    ds = next((d for d in study.datasets if d.name == dataset), None)
    root = ds.root if ds is not None else None
    test = data.load(dataset, split="test", root=root, download=bool(ds is not None and ds.download))
    return list(data.batches(test, batch_size=1000, shuffle=False))


def _member_name(c: Cell, key: Key) -> str:
    """A ticket's name in its comparison group: its method (a comparison group), its cell id (a
    model's group, across methods, densities and seeds), or ``r<replicate>`` (siblings)."""
    return c.method if isinstance(key, GroupKey) else c.id if isinstance(key, ModelKey) else f"r{c.replicate}"


@dataclass
class _Unit:
    """One comparison group to compare: its members, nulls per kind, and whether it adds the function family."""

    key: Key
    members: list[Cell]
    counts: dict[str, int]
    functional: bool = False
    signature: str = ""


def _plan(store: Store, study: StudyConfig, cells: list[Cell], fkinds: list[str]) -> list[_Unit]:
    """Every comparison group of ``cells`` with two or more finished tickets, with its signature.

    The per-group comparisons (every kind with its nulls), the per-model groups (the MDS
    kind, no nulls) and the sibling groups (the noise floor). The function family is added
    where every member's trained network is in the store (never to the per-model groups).
    """
    a = study.analysis
    done = store.done_ids()
    counts = null_counts(study)
    units = [_Unit(k, m, counts) for k, m in _groups(cells, done).items() if len(m) >= 2]
    units += [_Unit(k, m, {a.mds_kind: 0}) for k, m in _model_groups(cells, done).items() if len(m) >= 2]
    units += [_Unit(k, m, counts) for k, m in sibling_groups(cells, done).items()]
    for u in units:
        u.functional = bool(fkinds) and not isinstance(u.key, ModelKey) and all(
            store.trained_path(c.id).is_file() for c in u.members)
        u.signature = _signature([c.id for c in u.members], {"counts": u.counts, "null": a.null_model, "format": 2,
                                                             **({"functional": fkinds} if u.functional else {})})
    return units


def _job(store: Store, study: StudyConfig, u: _Unit, fkinds: list[str],
         test_data: dict[str, list[Any]]) -> tuple[Any, ...]:
    """The arguments of :func:`compare_group` for one unit (tickets read from the store)."""
    names = {c.id: _member_name(c, u.key) for c in u.members}
    tickets = {names[c.id]: store.load_ticket(c.id) for c in u.members}
    if not u.functional:
        return (tickets, u.counts, study.analysis.null_model)
    ds = u.members[0].dataset
    if ds not in test_data:
        test_data[ds] = _test_batches(study, ds)
    trained = {names[c.id]: store.load_trained(c.id) for c in u.members}
    return (tickets, u.counts, study.analysis.null_model, trained, test_data[ds], fkinds)


def analyze(store: Store, study: StudyConfig, cells: list[Cell], *, resume: bool = True,
            executor: Callable[[], Any] | None = None, progress: bool = False) -> None:
    """Compare the tickets of each group (one transaction per group; finished groups skipped).

    Per ``(dataset, model, density, seed)``: every pair of methods' tickets with every distance
    kind, against ``null_samples`` (per kind: :func:`null_counts`) symmetric nulls of
    ``null_model``. Per ``(dataset, model)``: all tickets with ``mds_kind`` (for the MDS map),
    without nulls. Dense reference cells are not compared. The groups run through
    ``executor()`` (an :class:`~graphtickets.study.executors.Executor`; default in-process),
    so ``--workers`` compares groups in parallel; the driver alone writes the store, and a
    failing group is logged and retried on the next run.
    """
    fkinds = function_kinds(study)
    plan = _plan(store, study, cells, fkinds)
    todo = [u for u in plan if not (resume and store.group_signature(str(u.key)) == u.signature)]
    if not todo:
        return
    ex = executor() if executor is not None else InProcessExecutor()
    bar = Progress(len(plan), len(plan) - len(todo), f"{study.name} comparisons", "group", progress)
    test_data: dict[str, list[Any]] = {}
    units = {str(u.key): u for u in todo}  # executors key their jobs by the stored label
    jobs = [(label, _job(store, study, u, fkinds, test_data)) for label, u in units.items()]
    t0 = time.perf_counter()
    log.info("comparing %d groups with %s", len(jobs), ex.description)
    try:
        for label, table, err in ex.calls(compare_group, jobs, on_start=bar.running):
            if err is not None or table is None:
                log.error("comparison of %s FAILED (retried on the next run):\n%s", label, err)
                bar.finished(label, "FAILED")
                continue
            n = len(units[label].members)
            store.record_distances(label, units[label].signature, table, seconds=time.perf_counter() - t0)
            log.info("compared %s: %d tickets, %d rows (%.1fs since the comparisons started)", label, n,
                     len(table), time.perf_counter() - t0)
            bar.finished(label, f"{n} tickets, {len(table)} rows")
    finally:
        bar.close()
