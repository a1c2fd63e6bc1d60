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
from typing import Any

import pandas as pd

from graphtickets.study.cell import one_thread
from graphtickets.study.config import StudyConfig
from graphtickets.study.executors import InProcessExecutor
from graphtickets.study.grid import DENSE, Cell
from graphtickets.study.progress import Progress
from graphtickets.study.store import Store

__all__ = ["analyze", "compare_group", "function_rows", "function_kinds", "null_counts", "sibling_groups", "SIBLINGS"]

log = logging.getLogger("graphtickets.study")


def _compared(c: Cell, done: set[str]) -> bool:
    """Whether a finished cell's ticket enters the comparisons: not the dense reference, not an ablation.

    Ablation variants are sanity checks of a method's ticket, not tickets of another method:
    a re-initialized variant has the very masks of its method (distance 0), a shuffled one is
    the layer-shuffled null itself. Kept out of the pairwise distances, they cannot make the
    "most alike" ranking; the report compares them by accuracy only.
    """
    return c.id in done and c.method != DENSE and not c.variant and not c.replicate


def _groups(cells: list[Cell], done: set[str]) -> dict[str, list[Cell]]:
    out: dict[str, list[Cell]] = {}
    for c in cells:
        if _compared(c, done):
            out.setdefault(c.group, []).append(c)
    return out


#: Marks the comparison group of one method's siblings: ``<group>#siblings:<method>``.
SIBLINGS = "#siblings:"


def sibling_groups(cells: list[Cell], done: set[str]) -> dict[str, list[Cell]]:
    """The sibling groups: per method, density and init seed, its finished replicates (>= 2).

    Keyed ``<group>#siblings:<method>``; their tickets are named ``r0``, ``r1``, ... in the
    comparison tables. Only methods' own tickets (no dense reference, no ablation variants).
    """
    out: dict[str, list[Cell]] = {}
    for c in cells:
        if c.id in done and c.method != DENSE and not c.variant:
            out.setdefault(f"{c.group}{SIBLINGS}{c.method}", []).append(c)
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


def _member_name(c: Cell, naming: str) -> str:
    """A ticket's name in its comparison group: method, cell id, or ``r<replicate>`` (siblings)."""
    return c.method if naming == "method" else c.id if naming == "id" else f"r{c.replicate}"


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
    a = study.analysis
    done = store.done_ids()
    groups = _groups(cells, done)
    by_model: dict[str, list[Cell]] = {}
    for c in cells:
        if _compared(c, done):
            by_model.setdefault(f"{c.dataset}/{c.model}/all", []).append(c)
    counts = null_counts(study)
    plan: list[tuple[str, list[Cell], dict[str, int], str]] = []
    for key, members in groups.items():
        if len(members) >= 2:
            plan.append((key, members, counts, "method"))
    for key, members in by_model.items():
        if len(members) >= 2:
            plan.append((key, members, {a.mds_kind: 0}, "id"))
    for key, members in sibling_groups(cells, done).items():  # the noise floor
        plan.append((key, members, counts, "replicate"))
    todo: list[tuple[str, str, list[Cell], dict[str, int], str]] = []
    fkinds = function_kinds(study)
    functional = {key: bool(fkinds) and naming != "id" and all(store.trained_path(c.id).is_file() for c in members)
                  for key, members, _cnt, naming in plan}
    for key, members, cnt, naming in plan:
        sig = _signature([c.id for c in members], {"counts": cnt, "null": a.null_model, "format": 2,
                                                   **({"functional": fkinds} if functional[key] else {})})
        if not (resume and store.group_signature(key) == sig):
            todo.append((key, sig, members, cnt, naming))
    if not todo:
        return
    ex = executor() if executor is not None else InProcessExecutor()
    bar = Progress(len(plan), len(plan) - len(todo), f"{study.name} comparisons", "group", progress)
    jobs, sigs, t0 = [], {}, time.perf_counter()
    test_data: dict[str, list[Any]] = {}
    for key, sig, members, cnt, naming in todo:
        names = {c.id: _member_name(c, naming) for c in members}
        tickets = {names[c.id]: store.load_ticket(c.id) for c in members}
        extra: tuple[Any, ...] = ()
        if functional[key]:
            ds = members[0].dataset
            if ds not in test_data:
                test_data[ds] = _test_batches(study, ds)
            extra = ({names[c.id]: store.load_trained(c.id) for c in members}, test_data[ds], fkinds)
        jobs.append((key, (tickets, cnt, a.null_model, *extra)))
        sigs[key] = (sig, len(members))
    log.info("comparing %d groups with %s", len(jobs), ex.description)
    try:
        for key, table, err in ex.calls(compare_group, jobs, on_start=bar.running):
            if err is not None or table is None:
                log.error("comparison of %s FAILED (retried on the next run):\n%s", key, err)
                bar.finished(key, "FAILED")
                continue
            store.record_distances(key, sigs[key][0], table, seconds=time.perf_counter() - t0)
            log.info("compared %s: %d tickets, %d rows (%.1fs since the comparisons started)", key, sigs[key][1],
                     len(table), time.perf_counter() - t0)
            bar.finished(key, f"{sigs[key][1]} tickets, {len(table)} rows")
    finally:
        bar.close()
