"""The study runner: cells -> store -> comparisons -> tables, figures, report.

:func:`run` is what ``graphtickets run`` calls. It is resumable: finished cells and
comparison groups already in the store are skipped, failed cells are retried. It runs, in
order, the comparisons (:mod:`~graphtickets.study.comparisons`), the stability step
(:mod:`~graphtickets.study.stability`, with ``analysis.stability``), the tables
(:mod:`~graphtickets.study.tabular`) and the report (:mod:`~graphtickets.study.report`), and rebuilds only what
changed (:func:`report_inputs`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from graphtickets._io import write_output
from graphtickets.errors import ConfigError, DataError
from graphtickets.study import sections
from graphtickets.study.cell import (
    CellOutcome,
    run_cells_batched_safe,
    run_trajectories_together_safe,
    train_key,
)
from graphtickets.study.comparisons import analyze
from graphtickets.study.config import (
    LIMITS,
    StudyConfig,
    check_device,
    check_run_options,
    load_config,
)
from graphtickets.study.executors import make_executor, priority
from graphtickets.study.grid import Cell, expand, trajectories
from graphtickets.study.progress import Progress
from graphtickets.study.spec import Derived, FromSource
from graphtickets.study.stability import check_stability, run_stability
from graphtickets.study.store import Store, folder_lock
from graphtickets.study.tabular import sibling_table, tables, write_tables

__all__ = ["run", "StudyResult", "default_out", "report_inputs", "mark_built", "default_workers", "BUILT_NAME"]

log = logging.getLogger("graphtickets.study")


@dataclass
class StudyResult:
    """What :func:`run` did.

    Attributes
    ----------
    out_dir : Path
    cells : int
        Cells in the grid.
    done, failed, ran : int
        Finished cells (in total), failed cells (this run), cells run by this run.
    seconds : float
        Wall time of the run.
    tickets, distances : DataFrame
        The two tables.
    errors : dict[str, str]
        Cell label -> last line of its error, for failed cells.
    """

    out_dir: Path
    cells: int
    done: int
    failed: int
    ran: int
    seconds: float
    tickets: pd.DataFrame = field(repr=False, default_factory=pd.DataFrame)
    distances: pd.DataFrame = field(repr=False, default_factory=pd.DataFrame)
    errors: dict[str, str] = field(default_factory=dict)


def default_out(study: StudyConfig) -> Path:
    """``results/<study name>`` in the current directory."""
    return Path("results") / study.name


class _Below(logging.Filter):
    """What a console shows during a study: graphtickets records at ``level`` or above, and
    other libraries' records (Dask's scheduler, ...) only from WARNING up; the rest goes to
    ``study.log`` alone."""

    def __init__(self, level: int) -> None:
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith("graphtickets"):
            return record.levelno >= self.level
        return record.levelno >= logging.WARNING


@contextlib.contextmanager
def _study_logging(out_dir: Path) -> Iterator[None]:
    """Write every record of the study (graphtickets' and third-party, INFO and up) to
    ``out_dir/study.log``; keep the consoles at their verbosity, without third-party INFO."""
    logger, root = logging.getLogger("graphtickets"), logging.getLogger()
    before = logger.level
    effective = logger.getEffectiveLevel()
    handler = logging.FileHandler(out_dir / "study.log")
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    flt = _Below(effective)
    root_handlers = list(root.handlers) + list(logger.handlers)
    for h in root_handlers:
        h.addFilter(flt)
    root.addHandler(handler)  # graphtickets' records reach it by propagation, once
    logger.setLevel(min(effective, logging.INFO))
    try:
        yield
    finally:
        root.removeHandler(handler)
        handler.close()
        logger.setLevel(before)
        for h in root_handlers:
            h.removeFilter(flt)


class _LazyExecutor:
    """The study's executor, started on first use (a LocalCluster costs seconds) and closed once."""

    def __init__(self, **kw: Any) -> None:
        self.kw = kw
        self.executor: Any = None

    def get(self) -> Any:
        if self.executor is None:
            self.executor = make_executor(**self.kw)
            self.executor.__enter__()
        return self.executor

    def close(self) -> None:
        if self.executor is not None:
            self.executor.close()


def _check_data(study: StudyConfig) -> None:
    """Load every dataset once in the driver: missing files fail early (and MNIST-1D is cached)."""
    from graphtickets import data

    for ds in study.datasets:
        try:
            for split in ("train", "test"):
                data.load(ds.name, split=split, root=ds.root, download=ds.download)
        except DataError as exc:
            raise DataError(f"datasets.{ds.name}: {exc}") from None


def run(
    config: str | os.PathLike[str] | Mapping[str, Any] | StudyConfig | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    *,
    workers: int | None = 1,
    scheduler: str | None = None,
    resume: bool = True,
    quick: bool = False,
    progress: bool = True,
    report: bool = True,
    device: str | None = None,
    batched: bool = True,
) -> StudyResult:
    """Run a study: every cell of the grid, then the comparisons, tables, figures and report.

    Parameters
    ----------
    config : path, mapping, StudyConfig or None
        The study (None: the bundled default study).
    out_dir : path, optional
        Output folder; default ``results/<study name>`` (``<name>-quick`` with ``quick``).
    workers : int or None, default 1
        1: run cells in this process; N > 1: on a Dask LocalCluster of N processes; None: as
        many processes as this process may use cores (:func:`default_workers`, what
        ``graphtickets run`` does without ``--workers``) when the device is ``cpu``, else 1. Cells run single-threaded and seeded,
        so the tables are the same whatever the number, up to the timing columns.
    scheduler : str, optional
        Address of an existing Dask scheduler (``tcp://host:port``).
    resume : bool, default True
        Skip cells (and comparison groups) already finished in ``out_dir``; False redoes all.
    quick : bool, default False
        Apply the config's ``quick`` overrides (1 seed, 2 densities, few epochs).
    progress : bool, default True
        Show progress on stderr: a bar (counts, ETA, running cell) on a terminal, else one line
        per finished cell and comparison group.
    report : bool, default True
        Write figures, ``report.md`` and ``report.html``.
    device : str, optional
        Overrides the config's ``device`` (``cpu``, ``cuda``, ``cuda:N``, ``mps``); it does
        not enter the cell ids, so finished cells are reused whatever device ran them.
    batched : bool, default True
        Train the tickets of cells that train on the same batches (every method, or every
        ablation, at one density and seed) together, as one batched model, where
        :func:`~graphtickets.training.batched.can_batch` allows it (plain MLPs), each cell
        alone where not (:func:`~graphtickets.study.cell.run_cells_batched_safe`; results
        equal one-by-one training to float32 rounding); the IMP trajectories of one
        architecture that differ only in seed and replicate train together too
        (:func:`~graphtickets.pruning.imp_trajectory_many`). False: every cell and every
        trajectory alone. Not part of the cell ids.

    Returns
    -------
    StudyResult

    Raises
    ------
    ConfigError, DataError
        Bad config, missing dataset files.
    StudyLockedError
        Another run is using ``out_dir``.
    """
    t_start = time.perf_counter()
    study = load_config(config)
    if quick:
        study = study.apply_quick()
    if device is not None:
        try:
            study = study.model_copy(update={"device": check_device(device)})
        except ValueError as exc:
            raise ConfigError(f"--device: {exc}") from None
    out = Path(out_dir) if out_dir is not None else default_out(study)
    if workers is None:  # every usable core on a CPU; one process drives an accelerator
        workers = min(default_workers(), LIMITS["workers"]) if study.device == "cpu" else 1
    check_run_options(study, out, workers=workers, scheduler=scheduler, resume=resume)  # before any file
    check_stability(study)
    sections.check_skipped(study.analysis.skip_sections)
    _check_data(study)
    out.mkdir(parents=True, exist_ok=True)
    cells = expand(study)
    with folder_lock(out), _study_logging(out), Store(out) as store:
        log.info("study %s: %d cells -> %s", study.name, len(cells), out)
        store.set_meta("study", study.model_dump(mode="json"))
        store.set_meta("cell_ids", [c.id for c in cells])
        cfg_arg = str(config) if isinstance(config, (str, os.PathLike)) else ("" if config is None else "CONFIG.yaml")
        store.set_meta("commands", {"config": (cfg_arg + (" --quick" if quick else "")).strip(), "quick": quick,
                                    "workers": workers, "scheduler": scheduler, "device": study.device,
                                    "batched": batched})
        done = store.verified_done_ids() if resume else set()  # a missing or failing ticket file: redone
        todo = [c for c in cells if c.id not in done]
        if 1 < workers and len(todo) == 1:  # one cell: a LocalCluster would only cost its start
            workers = 1
        ran = failed = 0
        errors: dict[str, str] = {}
        root = study.datasets[0].root if len(study.datasets) == 1 else None
        lazy = _LazyExecutor(workers=workers, scheduler=scheduler, root=root, device=study.device,
                             download=any(d.download for d in study.datasets))
        try:
            if todo:
                ran, failed = _run_cells(store, study, cells, todo, lazy, progress, errors, resume, batched)
            analyze(store, study, cells, resume=resume, executor=lazy.get, progress=progress)
            run_stability(store, study, cells, resume=resume, executor=lazy.get, progress=progress)
        finally:
            lazy.close()
        tk, dist = tables(store, cells)
        digest = report_inputs(store, study, cells)
        need_tables, need_report = not _built(out, "tables", digest), report and not _built(out, "report", digest)
        sec: dict[str, dict[str, pd.DataFrame]] = {}
        if need_tables or need_report:  # the sections' analysis: their tables, then the report reads them
            sec = sections.compute_all(sections.Context(out=out, tickets=tk, distances=dist, store=store,
                                                        study=study, cells=cells))  # fmt: skip
        if need_tables:
            write_tables(out, tk, dist, sibling_table(store, cells))
            tests = sections.write_tables(out, sec) if sec else None
            mark_built(out, "tables", digest)
        else:
            tests = sections.collect_tests(sec) if need_report and sec else None
        if need_report:
            from graphtickets.study.report import write_report

            write_report(out, tk, dist, study=study, store=store, sections=sec, tests=tests)
            mark_built(out, "report", digest)
        elif report:
            log.info("report: inputs unchanged since it was built (%s), not rebuilt", digest)
        n_done = len(store.done_ids() & {c.id for c in cells})
        seconds = time.perf_counter() - t_start
        log.info("study %s: %d/%d cells done, %d failed, %.1fs", study.name, n_done, len(cells), failed, seconds)
    return StudyResult(out_dir=out, cells=len(cells), done=n_done, failed=failed, ran=ran, seconds=seconds,
                       tickets=tk, distances=dist, errors=errors)


# ---------------------------------------------------------------------------- units of work
def _trajectory_jobs(units: Mapping[str, Any], together: bool) -> list[tuple[str, list[str]]]:
    """The trajectory jobs: ``(key, [trajectory ids])``; with ``together``, the trajectories that
    differ only in seed and replicate (one method, model, data, densities) are one job."""
    if not together:
        return [(tid, [tid]) for tid in units]
    groups: dict[str, list[str]] = {}
    for tid, t in units.items():
        cfg = {k: v for k, v in t.spec.config().items() if k not in ("seed", "replicate")}
        groups.setdefault(json.dumps(cfg, sort_keys=True, default=str), []).append(tid)
    return [(ids[0], ids) for ids in groups.values()]


def _run_trajectories(store: Store, todo: list[Cell], lazy: _LazyExecutor, resume: bool = True,
                      together: bool = False) -> dict[str, str]:
    """Run the trajectories the ``todo`` cells need that the store lacks; ``{id: error}`` of failed ones.

    With ``together``, the trajectories of one method and architecture that differ only in seed
    and replicate run as one job (:func:`~graphtickets.study.cell.run_trajectories_together_safe`:
    IMP's rounds of all of them trained together), else each alone.
    """
    import functools

    done = store.trajectory_done_ids() if resume else set()
    units = {t.id: t for t in trajectories([c for c in todo if c.base is None]) if t.id not in done}
    failed: dict[str, str] = {}
    if not units:
        return failed
    ex = lazy.get()
    jobs = _trajectory_jobs(units, together)
    log.info("running %d trajectories as %d jobs (one run serves every density) with %s", len(units), len(jobs),
             ex.description)
    fn = functools.partial(run_trajectories_together_safe, **ex.kw)
    members = dict(jobs)
    calls = [(key, ([units[i].spec for i in ids], ids)) for key, ids in jobs]
    for key, outcomes, err in ex.calls(fn, calls):
        for i, tid in enumerate(members[key]):
            t, outcome = units[tid], (outcomes[i] if err is None and outcomes else None)
            if outcome is not None and outcome.ok:
                store.record_trajectory(t, outcome.tickets, seconds=outcome.seconds)
                log.info("trajectory %s [%s] done in %.1fs%s: densities %s", t.label, t.id, outcome.seconds,
                         f" (with {len(members[key]) - 1} others)" if len(members[key]) > 1 else "",
                         ", ".join(f"{tk.density:.4g}" for tk in outcome.tickets.values()))
            else:
                error = err or (outcome.error if outcome is not None else None) or "unknown error"
                store.record_trajectory_failed(t, error, seconds=getattr(outcome, "seconds", 0.0) or 0.0)
                failed[tid] = error.strip().splitlines()[-1]
                log.error("FAILED trajectory %s [%s]:\n%s", t.label, t.id, error)
    return failed


def _inputs(store: Store, cells: list[Cell], failed: Mapping[str, str]) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """Tickets found before, per cell (``given``), and the cells that cannot run (``{id: why}``).

    A trajectory cell gets its trajectory's ticket at its density (``source`` for a
    transform); an ablation cell gets its method cell's ticket; a derived cell its source
    cells' tickets (``sources``, in the order of its config).
    """
    inputs: dict[str, dict[str, Any]] = {}
    blocked: dict[str, str] = {}
    done = store.done_ids()
    loaded: dict[str, dict[float, Any]] = {}
    for c in cells:
        if isinstance(c.spec.ticket, Derived) and c.base is None:
            missing = [i for i in c.spec.ticket.sources if i not in done]
            if missing:
                blocked[c.id] = f"{len(missing)} of the {len(c.spec.ticket.sources)} cells it is built from did not finish"
            else:
                inputs[c.id] = {"sources": [store.load_ticket(i) for i in c.spec.ticket.sources]}
            continue
        if c.base is not None:  # an ablation or a transfer cell: the ticket of the cell that found it
            if c.base in done:
                inputs[c.id] = {"ticket": store.load_ticket(str(c.base))}
            else:
                what = "it varies" if not c.found_on else f"found its ticket on {c.found_on}"
                blocked[c.id] = f"the cell {what} ({c.base_method} d={c.density:g} s={c.seed}) did not finish"
            continue
        tid = c.trajectory
        if tid is None:
            continue
        if tid in failed:
            blocked[c.id] = f"its trajectory {tid} failed: {failed[tid]}"
            continue
        if tid not in loaded:
            loaded[tid] = store.load_trajectory(tid)
        inputs[c.id] = {("source" if isinstance(c.spec.ticket, FromSource) else "ticket"): loaded[tid][c.density]}
    return inputs, blocked


def _run_cells(store: Store, study: StudyConfig, cells: list[Cell], todo: list[Cell], lazy: _LazyExecutor,
               progress: bool, errors: dict[str, str], resume: bool = True, batched: bool = False) -> tuple[int, int]:
    """Trajectories, then the method cells, then the derived cells (built from the method cells'
    tickets), then the ablation and transfer cells; ``(ran, failed)``.

    Every unit is written to the store as it finishes (a trajectory's tickets, a cell's
    ticket and row), so a run killed at any point resumes where it stopped.
    """
    ran = failed = 0
    bar = Progress(len(cells), len(cells) - len(todo), f"{study.name} cells", "cell", progress)
    try:
        t_failed = _run_trajectories(store, todo, lazy, resume, together=batched)
        later = {c.id for c in todo if isinstance(c.spec.ticket, Derived) and c.base is None}
        for phase in ([c for c in todo if c.base is None and c.id not in later],
                      [c for c in todo if c.id in later], [c for c in todo if c.base is not None]):
            if not phase:
                continue
            inputs, blocked = _inputs(store, phase, t_failed)
            for c in phase:
                if c.id in blocked:
                    store.record_failed(c, blocked[c.id], seconds=0.0)
                    errors[c.label] = blocked[c.id]
                    failed += 1
                    ran += 1
                    bar.finished(c.label, f"FAILED: {blocked[c.id]}")
            runnable = [c for c in phase if c.id not in blocked]
            if not runnable:
                continue
            executor = lazy.get()
            log.info("running %d cells (%d already done) with %s", len(runnable), len(cells) - len(todo),
                     executor.description)
            done_cells = (_batched_map(executor, runnable, inputs, bar) if batched else
                          executor.map(runnable, on_start=lambda c: bar.running(c.label), inputs=inputs))
            for cell, outcome in done_cells:
                ran += 1
                status = _record(store, cell, outcome, errors)
                failed += status.startswith("FAILED")
                bar.finished(cell.label, status + (f" ({failed} failed so far)" if failed else ""))
    finally:
        bar.close()
    return ran, failed


def _batched_map(executor: Any, cells: list[Cell], inputs: Mapping[str, Mapping[str, Any]],
                 bar: Progress) -> Iterator[tuple[Cell, Any]]:
    """Like ``executor.map``, one job per group of cells that train on the same batches
    (:func:`~graphtickets.study.cell.train_key`), run by
    :func:`~graphtickets.study.cell.run_cells_batched_safe`: ``(cell, outcome)`` as groups finish."""
    import functools

    groups: dict[str, list[Cell]] = {}
    for c in cells:
        groups.setdefault(train_key(c.spec), []).append(c)
    order = sorted(groups.values(), key=lambda g: max(priority(c) for c in g), reverse=True)  # longest first
    jobs = [(f"{g[0].group}/{i}",
             ([c.spec for c in g], [c.id for c in g], {c.id: inputs[c.id] for c in g if c.id in inputs}))
            for i, g in enumerate(order)]
    members = {key: g for (key, _), g in zip(jobs, order, strict=True)}
    fn = functools.partial(run_cells_batched_safe, **executor.kw)
    for key, outcomes, err in executor.calls(fn, jobs, on_start=bar.running):
        group = members[key]
        if err is not None or outcomes is None:
            outcomes = [CellOutcome(id=c.id, error=err or "unknown error") for c in group]
        yield from zip(group, outcomes, strict=True)


def _record(store: Store, cell: Cell, outcome: Any, errors: dict[str, str]) -> str:
    """Write one cell's outcome to the store; the status line for the progress display."""
    if outcome.ok and outcome.ticket is not None:
        store.record_done(cell, outcome.ticket, outcome.results, outcome.metrics, seconds=outcome.seconds,
                          trained=getattr(outcome, "trained", None))
        log.info("done %s [%s] accuracy %s in %.1fs", cell.label, cell.id, outcome.results.get("accuracy"), outcome.seconds)
        acc = outcome.results.get("accuracy")
        return f"accuracy {acc:.3f} in {outcome.seconds:.1f}s" if acc is not None else "done"
    err = outcome.error or "unknown error"
    store.record_failed(cell, err, seconds=outcome.seconds)
    errors[cell.label] = err.strip().splitlines()[-1]
    log.error("FAILED %s [%s]:\n%s", cell.label, cell.id, err)
    return f"FAILED: {errors[cell.label]}"


# ---------------------------------------------------------------------------- comparisons
# ---------------------------------------------------------------------------- rebuild only what changed
#: The file next to the report recording the digest of the inputs the tables and report were built from.
BUILT_NAME = "report.inputs.json"

#: ``commands`` entries that do not enter the report (how the cells ran, not what they are).
_NOT_REPORTED = ("workers", "scheduler")


def report_inputs(store: Store, study: StudyConfig | None, cells: list[Cell] | None) -> str:
    """Digest of everything the tables, figures and report are built from.

    It covers every row of every table of the store except ``meta`` (cells with their
    results and timings, metrics, trajectories, comparison groups, distances, and any table
    added later), the study config, the cell ids, the run command (without ``workers`` and
    ``scheduler``), the package version and the source of :mod:`graphtickets.study` (a code
    change rebuilds once). Rows are read in content order, so the digest does not depend on
    the order they were written in.

    Parameters
    ----------
    store : Store
    study : StudyConfig or None
    cells : list of Cell or None

    Returns
    -------
    str
        A 32-hex-digit digest; equal digests mean the outputs built from them are current.

    Examples
    --------
    >>> with Store("results/quick") as store:  # doctest: +SKIP
    ...     report_inputs(store, study, expand(study))
    """
    from graphtickets import __version__

    h = hashlib.sha256()

    def feed(tag: str, obj: Any) -> None:
        h.update(tag.encode() + b"\0" + json.dumps(obj, sort_keys=True, default=str).encode() + b"\0")

    feed("version", __version__)
    src = Path(__file__).parent
    for path in sorted(src.glob("*.py")):
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    feed("study", study.model_dump(mode="json") if study is not None else None)
    feed("cells", [c.id for c in cells] if cells is not None else None)
    commands = dict(store.get_meta("commands") or {})
    feed("commands", {k: v for k, v in commands.items() if k not in _NOT_REPORTED})
    names = [r[0] for r in store.conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name != 'meta' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
    for name in names:
        ncols = len(store.conn.execute(f'SELECT * FROM "{name}" LIMIT 0').description)
        order = ", ".join(str(i) for i in range(1, ncols + 1))
        h.update(b"table\0" + name.encode() + b"\0")
        for row in store.conn.execute(f'SELECT * FROM "{name}" ORDER BY {order}'):
            h.update(repr(row).encode() + b"\n")
    return h.hexdigest()[:32]


def _built(out: Path, what: str, digest: str) -> bool:
    """Whether ``what`` (``tables`` or ``report``) was built from ``digest`` and its files are all there."""
    try:
        stamp = json.loads((out / BUILT_NAME).read_text())
    except (OSError, ValueError):
        return False
    entry = stamp.get(what) if isinstance(stamp, dict) else None
    if not isinstance(entry, dict) or entry.get("digest") != digest:
        return False
    return all((out / f).is_file() for f in entry.get("files", [])) and bool(entry.get("files"))


def mark_built(out: Path, what: str, digest: str) -> None:
    """Record that ``what`` was built from ``digest`` (with the files it wrote, checked on the next run)."""
    path = out / BUILT_NAME
    try:
        stamp = json.loads(path.read_text())
        stamp = stamp if isinstance(stamp, dict) else {}
    except (OSError, ValueError):
        stamp = {}
    if what == "tables":
        files = [f"tables/{n}.{e}" for n in ("tickets", "distances") for e in ("csv", "parquet")]
    else:
        files = ["report.md", "report.html"]
        figs = out / "figures"
        if figs.is_dir():
            files += sorted(f"figures/{p.name}" for p in figs.iterdir() if p.is_file())
    stamp[what] = {"digest": digest, "files": files}
    write_output(path, json.dumps(stamp, indent=1, sort_keys=True) + "\n", what="study file")


#: The old name, still imported by ``graphtickets/study/cli.py`` (owned elsewhere): use :func:`mark_built`.


def default_workers() -> int:
    """Cores this process may use (its CPU affinity where the OS tells it, else the CPU count), at least 1."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    return max(1, int(n))
