"""The study runner: cells -> store -> comparisons -> tables, figures, report.

:func:`run` is what ``graphtickets run`` calls. It is resumable: finished cells and
comparison groups already in the store are skipped, failed cells are retried.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from graphtickets.errors import DataError
from graphtickets.study.config import StudyConfig, load_config
from graphtickets.study.executors import make_executor
from graphtickets.study.grid import Cell, expand
from graphtickets.study.store import Store, folder_lock

__all__ = ["run", "StudyResult", "analyze", "tables", "write_tables", "default_out"]

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
    """Drops graphtickets records below ``level`` (keeps a console at its verbosity)."""

    def __init__(self, level: int) -> None:
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.name.startswith("graphtickets") and record.levelno < self.level)


@contextlib.contextmanager
def _study_logging(out_dir: Path) -> Iterator[None]:
    logger = logging.getLogger("graphtickets")
    before = logger.level
    effective = logger.getEffectiveLevel()
    handler = logging.FileHandler(out_dir / "study.log")
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    flt = _Below(effective)
    root_handlers = list(logging.getLogger().handlers) + list(logger.handlers)
    for h in root_handlers:
        h.addFilter(flt)
    logger.addHandler(handler)
    logger.setLevel(min(effective, logging.INFO))
    try:
        yield
    finally:
        logger.removeHandler(handler)
        handler.close()
        logger.setLevel(before)
        for h in root_handlers:
            h.removeFilter(flt)


def _progress(total: int, initial: int, desc: str, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    on = enabled and sys.stderr.isatty()
    return tqdm(total=total, initial=initial, desc=desc, unit="cell", file=sys.stderr, disable=not on, dynamic_ncols=True)


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
    workers: int = 1,
    scheduler: str | None = None,
    resume: bool = True,
    quick: bool = False,
    progress: bool = True,
    report: bool = True,
) -> StudyResult:
    """Run a study: every cell of the grid, then the comparisons, tables, figures and report.

    Parameters
    ----------
    config : path, mapping, StudyConfig or None
        The study (None: the bundled default study).
    out_dir : path, optional
        Output folder; default ``results/<study name>`` (``<name>-quick`` with ``quick``).
    workers : int, default 1
        1: run cells in this process; N > 1: on a Dask LocalCluster of N processes.
    scheduler : str, optional
        Address of an existing Dask scheduler (``tcp://host:port``).
    resume : bool, default True
        Skip cells (and comparison groups) already finished in ``out_dir``; False redoes all.
    quick : bool, default False
        Apply the config's ``quick`` overrides (1 seed, 2 densities, few epochs).
    progress : bool, default True
        Show a progress bar on stderr (only when it is a terminal).
    report : bool, default True
        Write figures, ``report.md`` and ``report.html``.

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
    out = Path(out_dir) if out_dir is not None else default_out(study)
    out.mkdir(parents=True, exist_ok=True)
    cells = expand(study)
    with folder_lock(out), _study_logging(out), Store(out) as store:
        log.info("study %s: %d cells -> %s", study.name, len(cells), out)
        _check_data(study)
        store.set_meta("study", study.model_dump(mode="json"))
        store.set_meta("cell_ids", [c.id for c in cells])
        cfg_arg = str(config) if isinstance(config, (str, os.PathLike)) else ("" if config is None else "CONFIG.yaml")
        store.set_meta("commands", {"config": (cfg_arg + (" --quick" if quick else "")).strip(), "quick": quick,
                                    "workers": workers, "scheduler": scheduler})
        done = store.done_ids() if resume else set()
        todo = [c for c in cells if c.id not in done]
        ran = failed = 0
        errors: dict[str, str] = {}
        root = study.datasets[0].root if len(study.datasets) == 1 else None
        bar = _progress(len(cells), len(cells) - len(todo), study.name, progress)
        try:
            if todo:
                executor = make_executor(workers=workers, scheduler=scheduler, root=root, device=study.device,
                                         download=any(d.download for d in study.datasets))
                log.info("running %d cells (%d already done) with %s", len(todo), len(cells) - len(todo), executor.description)
                with executor:
                    for cell, outcome in executor.map(todo, on_start=lambda c: bar.set_postfix_str(c.label, refresh=True)):
                        ran += 1
                        if outcome.ok and outcome.ticket is not None:
                            store.record_done(cell, outcome.ticket, outcome.results, outcome.metrics, seconds=outcome.seconds)
                            log.info("done %s [%s] accuracy %s in %.1fs", cell.label, cell.id,
                                     outcome.results.get("accuracy"), outcome.seconds)
                        else:
                            failed += 1
                            err = outcome.error or "unknown error"
                            store.record_failed(cell, err, seconds=outcome.seconds)
                            errors[cell.label] = err.strip().splitlines()[-1]
                            log.error("FAILED %s [%s]:\n%s", cell.label, cell.id, err)
                        bar.set_postfix_str(f"{cell.label}" + (f" | {failed} failed" if failed else ""), refresh=False)
                        bar.update(1)
        finally:
            bar.close()
        analyze(store, study, cells, resume=resume)
        tk, dist = tables(store, cells)
        write_tables(out, tk, dist)
        if report:
            from graphtickets.study.report import write_report

            write_report(out, tk, dist, study=study, store=store)
        n_done = len(store.done_ids() & {c.id for c in cells})
        seconds = time.perf_counter() - t_start
        log.info("study %s: %d/%d cells done, %d failed, %.1fs", study.name, n_done, len(cells), failed, seconds)
    return StudyResult(out_dir=out, cells=len(cells), done=n_done, failed=failed, ran=ran, seconds=seconds,
                       tickets=tk, distances=dist, errors=errors)


# ---------------------------------------------------------------------------- comparisons
def _groups(cells: list[Cell], done: set[str]) -> dict[str, list[Cell]]:
    out: dict[str, list[Cell]] = {}
    for c in cells:
        if c.id in done:
            out.setdefault(c.group, []).append(c)
    return out


def _signature(ids: list[str], what: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps({"ids": sorted(ids), **what}, sort_keys=True).encode()).hexdigest()[:16]


def analyze(store: Store, study: StudyConfig, cells: list[Cell], *, resume: bool = True) -> None:
    """Compare the tickets of each group (one transaction per group; finished groups skipped).

    Per ``(dataset, model, density, seed)``: every pair of methods' tickets with every distance
    kind, against ``null_samples`` shuffled nulls (layer densities kept). Per ``(dataset,
    model)``: all tickets with ``mds_kind`` (for the MDS map), without nulls.
    """
    import graphtickets as gt

    a = study.analysis
    done = store.done_ids()
    groups = _groups(cells, done)
    by_model: dict[str, list[Cell]] = {}
    for c in cells:
        if c.id in done:
            by_model.setdefault(f"{c.dataset}/{c.model}/all", []).append(c)
    jobs: list[tuple[str, list[Cell], dict[str, Any], dict[str, Any]]] = []
    for key, members in groups.items():
        if len(members) >= 2:
            jobs.append((key, members, {"kinds": a.kinds, "null_samples": a.null_samples, "null": a.null_model,
                                        "by_kind": a.null_samples_by_kind}, {"by": "method"}))
    for key, members in by_model.items():
        if len(members) >= 2:
            jobs.append((key, members, {"kinds": [a.mds_kind], "null_samples": 0, "null": a.null_model}, {"by": "id"}))
    for key, members, opts, naming in jobs:
        sig = _signature([c.id for c in members], {**opts, "format": 1})
        if resume and store.group_signature(key) == sig:
            continue
        t0 = time.perf_counter()
        tickets = {(c.method if naming["by"] == "method" else c.id): store.load_ticket(c.id) for c in members}
        model = next(iter(tickets.values())).build_model()
        kinds = opts["kinds"] or [k for k, s in gt.analysis.DISTANCES.items() if s.default]
        by_count: dict[int, list[str]] = {}
        for k in kinds:
            by_count.setdefault(int(opts.get("by_kind", {}).get(k, opts["null_samples"])), []).append(k)
        parts = [gt.analysis.compare(tickets, model, kinds=ks, null_samples=n, seed=0, null=opts["null"])
                 for n, ks in by_count.items()]
        table = pd.concat([p for p in parts if not p.empty] or parts, ignore_index=True)
        store.record_distances(key, sig, table, seconds=time.perf_counter() - t0)
        log.info("compared %s: %d tickets, %d rows in %.1fs", key, len(tickets), len(table), time.perf_counter() - t0)


# ---------------------------------------------------------------------------- tables
def tables(store: Store, cells: list[Cell] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The tickets table (one row per finished cell) and the distances table of ``cells``.

    Columns of ``tickets``: ``id, dataset, model, method, kind, density, seed, accuracy, loss,
    train_accuracy, density_actual, kept, total, search_seconds, search_epochs, train_seconds,
    seconds``, every metric as ``<graph>.<name>``, every layer density as ``layer.<param>``.
    ``distances``: ``group, dataset, model, density, seed, a, b, kind, value, null_mean,
    null_std, z`` (``a``/``b`` are methods; in ``.../all`` groups they are cell ids).
    """
    from graphtickets.pruning import METHODS

    df = store.cells()
    if cells is not None:
        df = df[df["id"].isin({c.id for c in cells})]
    df = df[df["status"] == "done"].reset_index(drop=True)
    rows = []
    for r in df.itertuples(index=False):
        res = r.results
        row: dict[str, Any] = {
            "id": r.id, "dataset": r.dataset, "model": r.model, "method": r.method,
            "kind": METHODS[r.method].kind if r.method in METHODS else "",
            "density": r.density, "seed": r.seed,
            "accuracy": res.get("accuracy"), "loss": res.get("loss"), "train_accuracy": res.get("train_accuracy"),
            "density_actual": res.get("density"), "kept": res.get("kept"), "total": res.get("total"),
            "search_seconds": res.get("search_seconds"), "search_epochs": res.get("search_epochs"),
            "train_seconds": res.get("train_seconds"), "seconds": r.seconds,
        }
        for name, v in (res.get("layer_densities") or {}).items():
            row[f"layer.{name}"] = v
        rows.append(row)
    tk = pd.DataFrame(rows)
    m = store.metrics()
    if not tk.empty and not m.empty:
        m = m[m["cell_id"].isin(set(tk["id"]))]
        wide = m.assign(col=m["graph"] + "." + m["name"]).pivot(index="cell_id", columns="col", values="value")
        tk = tk.merge(wide, left_on="id", right_index=True, how="left")
    if not tk.empty:
        order = {c.id: i for i, c in enumerate(cells)} if cells is not None else {}
        tk = tk.sort_values(by=["id"], key=lambda s: s.map(order) if order else s).reset_index(drop=True)
    d = store.distances()
    if cells is not None:
        keys = {c.group for c in cells} | {f"{c.dataset}/{c.model}/all" for c in cells}
        d = d[d["grp"].isin(keys)]
    d = d.rename(columns={"grp": "group"}).reset_index(drop=True)
    if not d.empty:
        parts = d["group"].str.rsplit("/", n=2, expand=True)
        d.insert(1, "dataset", parts[0].str.split("/", n=1).str[0])
        d.insert(2, "model", parts[0].str.split("/", n=1).str[1])
        d.insert(3, "density", pd.to_numeric(parts[1].str.removeprefix("d"), errors="coerce"))
        d.insert(4, "seed", pd.to_numeric(parts[2].str.removeprefix("s"), errors="coerce"))
    return tk, d


def write_tables(out: str | os.PathLike[str], tickets: pd.DataFrame, distances: pd.DataFrame) -> list[Path]:
    """``tables/tickets.{csv,parquet}`` and ``tables/distances.{csv,parquet}`` (atomic writes)."""
    folder = Path(out) / "tables"
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, df in (("tickets", tickets), ("distances", distances)):
        for ext in ("csv", "parquet"):
            path = folder / f"{name}.{ext}"
            tmp = path.with_suffix(f".{ext}.tmp")
            if ext == "csv":
                df.to_csv(tmp, index=False)
            else:
                df.to_parquet(tmp, index=False)
            os.replace(tmp, path)
            written.append(path)
    return written

