"""A rerun with nothing new, decided before torch loads: the fast path of ``graphtickets run``.

``graphtickets run CONFIG --out DIR`` on a finished study whose store, tickets, config and
package did not change has nothing to do, but the full path still costs seconds: importing
torch, pandas, pydantic and matplotlib, validating the config, expanding the grid, verifying
every ticket file and digesting the store. This module decides "nothing to do" with the
standard library only, from a stamp that the full path writes after it finished.

**The stamp** (:func:`record`, entry ``rerun`` of ``DIR/report.inputs.json``) is written
after a full run with no failed cell, under the study's folder lock, and only once the
library itself has confirmed, on the store as it is then, that a second full run with the
same arguments would change nothing: the store's ``study``, ``cell_ids`` and ``commands``
are the values that run would write, every cell of the grid is done, every finished cell's
ticket file passes the check the full path makes (:meth:`Store.verified_done_ids`, here
without its side effect), no comparison group is pending (:func:`~graphtickets.study.comparisons.analyze`
finds none to run), and the tables (and the report, unless ``--no-report``) were built from
the current inputs (:func:`~graphtickets.study.runner.report_inputs`). The stamp then holds
the request (command-line options, the config file's resolved path and sha256, the sha256
of every file of the installed package, the ``GRAPHTICKETS_*`` environment) and the state
(sha256 of ``study.db`` and its write-ahead log, of every file under ``DIR/tickets``, of the
ticket files stored elsewhere and of the imported tickets the config names), and the
``tables``/``report`` entries of ``report.inputs.json``.

**The fast path** (:func:`nothing_to_do`) takes the folder lock as the full path does, and
answers "nothing to do" only if the request and every hash are equal and every output file
listed is present. Equal bytes give the full path's checks the same outcome, so anything
else (a changed store, config, package or environment variable, a missing, added or altered
ticket file, a deleted figure, a run in progress, ``--restart``, ``--scheduler``, a batch
cluster, no ``--out``) takes the full path. Not repeated: loading the datasets (the full
path loads them to fail early when files are missing; a rerun with nothing to do needs no
data).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from graphtickets._io import write_output

__all__ = ["nothing_to_do", "record", "STAMP_KEY"]

#: The entry of ``report.inputs.json`` that holds the stamp.
STAMP_KEY = "rerun"
_FORMAT = 1
_BUILT_NAME = "report.inputs.json"  # = runner.BUILT_NAME (runner imports pandas; a test holds them equal)
_DB = "study.db"  # = store.DB_NAME (store imports torch; a test holds them equal)
_PACKAGE = Path(__file__).resolve().parent.parent
# every option of the batch-cluster group (graphtickets.study.cluster.add_arguments): any of them set -> full path
_CLUSTER_OPTIONS = ("cluster", "queue", "account", "cores", "processes", "memory", "walltime", "jobs", "prologue",
                    "print_job_script")


def _sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def package_digest() -> str:
    """sha256 over every file of the installed package (names and bytes; ``__pycache__`` left out)."""
    h = hashlib.sha256()
    files = sorted(p for p in _PACKAGE.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    for p in files:
        h.update(p.relative_to(_PACKAGE).as_posix().encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


def _config_file(config: str | None) -> Path | None:
    """The file :func:`~graphtickets.study.config.load_config` reads for ``config`` (None: not a file)."""
    studies = _PACKAGE / "studies"
    path = studies / "default.yaml" if config is None else Path(config)
    if config is not None and not path.exists() and not path.suffix and (studies / f"{path.name}.yaml").exists():
        path = studies / f"{path.name}.yaml"
    return path.resolve() if path.is_file() else None


def _request(args: argparse.Namespace) -> dict[str, Any] | None:
    """What the outcome of ``run`` depends on besides the study folder; None: always the full path."""
    if args.out is None or getattr(args, "restart", False) or getattr(args, "scheduler", None):
        return None
    if any(getattr(args, name, None) for name in _CLUSTER_OPTIONS):
        return None
    config = _config_file(args.config)
    if config is None:
        return None
    return {
        "format": _FORMAT,
        "config": {"arg": args.config, "path": str(config), "sha256": _sha256(config)},
        "options": {"quick": bool(args.quick), "device": args.device, "workers": args.workers,
                    "report": not args.no_report, "batched": not args.one_by_one},
        "cores": _cores() if args.workers is None else None,  # what --workers defaults to (recorded in the store)
        "package": package_digest(),
        "env": {k: v for k, v in sorted(os.environ.items()) if k.startswith("GRAPHTICKETS_")},
    }


def _cores() -> int:
    """Cores this process may use, as :func:`~graphtickets.study.runner.default_workers` counts them."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


@contextlib.contextmanager
def _try_lock(out: Path) -> Iterator[bool]:
    """The study's folder lock (``out/.lock``, as :func:`~graphtickets.study.store.folder_lock`)
    taken without waiting: yields False when another run holds it or there is no lock file."""
    try:
        fd = os.open(out / ".lock", os.O_RDWR)
    except OSError:
        yield False
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _state(out: Path, extra: Iterable[str]) -> dict[str, Any]:
    """sha256 of the store, of every file under ``out/tickets`` and of the ``extra`` files (None: missing)."""
    tickets = out / "tickets"
    files = sorted(p for p in tickets.rglob("*") if p.is_file()) if tickets.is_dir() else []
    wal = out / f"{_DB}-wal"
    return {
        "db": _sha256(out / _DB) if (out / _DB).is_file() else None,
        "wal": _sha256(wal) if wal.is_file() else None,
        "tickets": {p.relative_to(out).as_posix(): _sha256(p) for p in files},
        "extra": {f: _sha256(Path(f)) if Path(f).is_file() else None for f in sorted(extra)},
    }


def _read_built(out: Path) -> dict[str, Any]:
    try:
        stamp = json.loads((out / _BUILT_NAME).read_text())
    except (OSError, ValueError):
        return {}
    return stamp if isinstance(stamp, dict) else {}


def _outputs_present(out: Path, built: Mapping[str, Any], report: bool) -> bool:
    """The ``tables`` (and ``report``) entries name files that are all there."""
    for what in ("tables", "report") if report else ("tables",):
        entry = built.get(what)
        if not isinstance(entry, dict) or not entry.get("files"):
            return False
        if not all((out / f).is_file() for f in entry["files"]):
            return False
    return True


def nothing_to_do(args: argparse.Namespace) -> str | None:
    """The line ``graphtickets run`` prints when the run ``args`` asks for has nothing to do, else None.

    Standard library only (no torch, pandas, pydantic): see the module docstring for what is
    compared. None means "take the full path", never an error: the full path reports any.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed ``graphtickets run`` arguments.

    Returns
    -------
    str or None
        ``"DIR: N/N cells done (0 run now, 0 failed) in 0s; report: DIR/report.html"``, or None.

    Examples
    --------
    >>> ns = argparse.Namespace(out=None, config=None, restart=False, scheduler=None)
    >>> nothing_to_do(ns) is None  # no --out: the full path
    True
    """
    t0 = time.perf_counter()
    request = _request(args)
    if request is None:
        return None
    out = Path(args.out)
    built = _read_built(out)
    stamp = built.get(STAMP_KEY)
    if not isinstance(stamp, dict) or stamp.get("request") != json.loads(json.dumps(request)):
        return None
    with _try_lock(out) as held:
        if not held:
            return None
        if any(built.get(what) != stamp.get("built", {}).get(what) for what in ("tables", "report")):
            return None
        if not _outputs_present(out, built, request["options"]["report"]):
            return None
        if _state(out, stamp.get("state", {}).get("extra", {})) != stamp.get("state"):
            return None
        n = int(stamp["cells"])
        with contextlib.suppress(OSError), open(out / "study.log", "a") as log:
            log.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} INFO graphtickets.study: rerun: nothing changed since "
                      f"{stamp.get('written', '?')} (store, tickets, config, package); nothing done\n")
    seconds = time.perf_counter() - t0
    return f"{out}: {n}/{n} cells done (0 run now, 0 failed) in {seconds:.0f}s; report: {out / 'report.html'}"


# ---------------------------------------------------------------------------- the full path's side
class _Pending(Exception):
    """Raised by the executor factory given to ``analyze``: a comparison group would run."""


def _refuse_executor() -> Any:
    raise _Pending


def _would_do_nothing(args: argparse.Namespace, out: Path) -> list[str] | None:
    """Whether a full ``run`` with ``args`` would change nothing in ``out`` now (the caller holds
    the lock). Returns the files outside ``out/tickets`` the outcome depends on (ticket files
    stored elsewhere, imported tickets), or None when the run would do something."""
    from graphtickets.study.comparisons import analyze
    from graphtickets.study.config import LIMITS, check_device, import_files, load_config
    from graphtickets.study.grid import expand
    from graphtickets.study.runner import default_workers, report_inputs
    from graphtickets.study.store import Store
    from graphtickets.ticket import Ticket, recorded_digest

    study = load_config(args.config)  # as runner.run builds it from the same arguments
    if args.quick:
        study = study.apply_quick()
    if args.device is not None:
        study = study.model_copy(update={"device": check_device(args.device)})
    workers = args.workers
    if workers is None:
        workers = min(default_workers(), LIMITS["workers"]) if study.device == "cpu" else 1
    cells = expand(study)
    ids = [c.id for c in cells]
    commands = {"config": ((args.config or "") + (" --quick" if args.quick else "")).strip(), "quick": bool(args.quick),
                "workers": workers, "scheduler": None, "device": study.device, "batched": not args.one_by_one}
    extra: list[str] = []
    for m in study.methods:
        if m.imported is not None:
            extra += [p for by_seed in import_files(m.imported, study.densities, study.seeds).values()
                      for p in by_seed.values()]

    def same(a: Any, b: Any) -> bool:
        return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)

    with Store(out) as store:
        if not (same(store.get_meta("study"), study.model_dump(mode="json")) and same(store.get_meta("cell_ids"), ids)
                and same(store.get_meta("commands"), commands)):
            return None
        if not set(ids) <= store.done_ids():
            return None
        rows = store.conn.execute("SELECT id, ticket, ticket_sha256 FROM cells WHERE status = 'done'").fetchall()
        for cid, rel, digest in rows:  # Store.verified_done_ids's checks, without marking anything failed
            path = out / rel if rel else store.ticket_path(cid)
            try:
                Ticket.load(path)
            except Exception:  # the full path would redo the cell (or fail): no stamp
                return None
            if digest is not None and recorded_digest(path) != digest:
                return None
            if (out / "tickets").resolve() not in path.resolve().parents:
                extra.append(str(path.resolve()))
        try:
            analyze(store, study, cells, resume=True, executor=_refuse_executor)
        except _Pending:
            return None
        digest = report_inputs(store, study, cells)
    built = _read_built(out)
    for what in ("tables", "report") if not args.no_report else ("tables",):
        entry = built.get(what)
        if not isinstance(entry, dict) or entry.get("digest") != digest:
            return None
    return extra if _outputs_present(out, built, not args.no_report) else None


def record(args: argparse.Namespace, cells: int) -> bool:
    """After a full ``graphtickets run`` that left no failed cell: write the stamp if a rerun
    with the same ``args`` would have nothing to do (module docstring). Returns whether it did.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed ``graphtickets run`` arguments.
    cells : int
        Cells in the grid (the fast path prints them).

    Returns
    -------
    bool
    """
    request = _request(args)
    if request is None:
        return False
    out = Path(args.out)
    with _try_lock(out) as held:
        if not held:
            return False
        extra = _would_do_nothing(args, out)
        if extra is None:
            return False
        built = _read_built(out)  # the store is closed: its write-ahead log is folded in
        built[STAMP_KEY] = {
            "request": request, "state": _state(out, extra), "cells": int(cells),
            "built": {what: built.get(what) for what in ("tables", "report")},
            "written": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
        write_output(out / _BUILT_NAME, json.dumps(built, indent=1, sort_keys=True) + "\n", what="study file")
    return True
