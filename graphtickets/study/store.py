"""The study store: a SQLite database plus one ticket file per cell, and the folder lock.

Layout of an output folder::

    study.db                  cells, trajectories, metrics, distances, groups, meta (SQLite)
    tickets/<cell id>.safetensors
    tickets/<cell id>.trained.safetensors    the same ticket with its trained weights (function family)
    tickets/trajectories/<id>/NN.safetensors   the tickets of one trajectory (IMP's rounds), densest first
    study.log, tables/, figures/, report.md, report.html
    .lock                     held (flock) while a run writes the folder

A finished cell is written in this order: its ticket file (atomic: temp file + rename, by
:meth:`graphtickets.Ticket.save`), then ONE SQLite transaction with its row, the sha256 its
ticket file records, and its metrics. A run killed at any point leaves either a finished cell
or no trace of it (a ticket file without a row is simply redone), so a re-run loses nothing
and redoes only what is missing.

A store that heals or says why: a resumed run checks the ticket file of every finished cell
(:meth:`Store.verified_done_ids`: present, its own sha256 matches, and it is the file the
store recorded) and re-runs, with a warning naming it, any cell whose file is missing or
fails; a ``study.db`` that is empty or not a readable study store is named
(:class:`StoreCorruptError`), and ``--restart`` moves it aside as ``study.db.broken-<time>``
(:func:`check_db`).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from graphtickets._io import OutputError
from graphtickets.errors import GraphticketsError, TicketError
from graphtickets.ticket import Ticket, recorded_digest

__all__ = ["Store", "StudyLockedError", "StoreCorruptError", "folder_lock", "check_db", "DB_NAME"]

log = logging.getLogger("graphtickets.study")

DB_NAME = "study.db"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cells (
    id TEXT PRIMARY KEY,
    config TEXT NOT NULL,
    dataset TEXT, model TEXT, method TEXT, density REAL, seed INTEGER,
    status TEXT NOT NULL,
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    started REAL, finished REAL, seconds REAL,
    ticket TEXT,
    results TEXT
);
CREATE TABLE IF NOT EXISTS metrics (
    cell_id TEXT NOT NULL, graph TEXT NOT NULL, name TEXT NOT NULL, value REAL,
    PRIMARY KEY (cell_id, graph, name)
);
CREATE TABLE IF NOT EXISTS groups (
    key TEXT PRIMARY KEY, signature TEXT NOT NULL, finished REAL, seconds REAL
);
CREATE TABLE IF NOT EXISTS trajectories (
    id TEXT PRIMARY KEY, config TEXT NOT NULL, status TEXT NOT NULL, error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0, finished REAL, seconds REAL, tickets TEXT
);
CREATE TABLE IF NOT EXISTS distances (
    grp TEXT NOT NULL, a TEXT NOT NULL, b TEXT NOT NULL, kind TEXT NOT NULL,
    value REAL, null_mean REAL, null_std REAL, z REAL,
    null_n REAL, p_closer REAL, p_farther REAL, note TEXT,
    PRIMARY KEY (grp, a, b, kind)
);
"""


class StudyLockedError(GraphticketsError):
    """Another run holds the output folder."""


def _write_cell(c: Any, cell: Any, status: str, error: str | None, started: float, finished: float,
                seconds: float, ticket: str | None, results: str | None) -> None:
    """Insert or replace ``cell``'s row (its attempt count one more than before)."""
    prev = c.execute("SELECT attempts FROM cells WHERE id = ?", (cell.id,)).fetchone()
    c.execute(
        "INSERT OR REPLACE INTO cells (id, config, dataset, model, method, density, seed, status, error,"
        " attempts, started, finished, seconds, ticket, results) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (cell.id, _dumps(cell.config), cell.dataset, cell.model, cell.method, cell.density, cell.seed,
         status, error, (prev[0] if prev else 0) + 1, started, finished, seconds, ticket, results),
    )


class StoreCorruptError(GraphticketsError):
    """A ``study.db`` that is empty, damaged, or not a study store."""


def _db_problem(path: Path) -> str | None:
    """What is wrong with the study store at ``path`` (None: a readable study store)."""
    if not path.is_file():
        return "is not a file"
    if path.stat().st_size == 0:
        return "is empty (0 bytes)"
    try:
        conn = sqlite3.connect(f"file:{path}?mode=rw", uri=True, timeout=30.0)
        try:
            check = conn.execute("PRAGMA quick_check").fetchone()
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        return f"is not a readable SQLite database ({exc})"
    if not check or check[0] != "ok":
        return f"is damaged (SQLite quick_check: {check[0] if check else 'no answer'})"
    if not {"cells", "meta"} <= tables:
        return "is a SQLite database but not a graphtickets study store (no cells/meta tables)"
    return None


def check_db(folder: str | os.PathLike[str], *, restart: bool = False) -> Path | None:
    """Check ``folder/study.db``; with ``restart`` move a broken one aside instead of failing.

    Parameters
    ----------
    folder : path
        A study's output folder (a missing folder or store is fine: nothing to check).
    restart : bool, default False
        Move a broken store (with its ``-wal``/``-shm`` files) aside as
        ``study.db.broken-<YYYYmmdd-HHMMSS>`` so the run starts anew.

    Returns
    -------
    Path or None
        Where a broken store was moved (None when nothing was moved).

    Raises
    ------
    StoreCorruptError
        The store is empty, damaged or not a study store (and ``restart`` is False).
    """
    path = Path(folder) / DB_NAME
    if not path.exists():
        return None
    problem = _db_problem(path)
    if problem is None:
        return None
    if not restart:
        raise StoreCorruptError(
            f"the study store {str(path)!r} {problem}; nothing was changed. To start the study anew, run it "
            f"again with --restart (the broken file is kept as {DB_NAME}.broken-<time>)"
        )
    stamp = time.strftime("%Y%m%d-%H%M%S")
    dest = path.with_name(f"{DB_NAME}.broken-{stamp}")
    n = 1
    while dest.exists():
        n += 1
        dest = path.with_name(f"{DB_NAME}.broken-{stamp}-{n}")
    os.replace(path, dest)
    for suffix in ("-wal", "-shm"):
        side = path.with_name(DB_NAME + suffix)
        if side.exists():
            os.replace(side, dest.with_name(dest.name + suffix))
    log.warning("%s %s: moved aside to %s; starting anew", path, problem, dest)
    return dest


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike[str]) -> Iterator[Path]:
    """Hold an exclusive ``flock`` on ``folder/.lock`` for the duration of the block.

    The kernel drops the lock when the holder exits in any way (``kill -9`` included), so a
    stale lock file never blocks a later run.

    Raises
    ------
    StudyLockedError
        Another process holds the lock.
    """
    path = Path(folder) / ".lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                holder = Path(path).read_text().strip() or "unknown"
            except OSError:
                holder = "unknown"
            raise StudyLockedError(
                f"{folder} is in use by another graphtickets run (pid {holder}); wait for it to finish, "
                f"or pass another --out folder"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        os.fsync(fd)
        yield path
    finally:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


#: SQLite's messages for a write that the disk refused, and the errno each stands for.
_DISK_ERRORS = (("disk is full", "ENOSPC"), ("disk i/o error", "EIO"), ("readonly database", "EROFS"),
                ("read-only file system", "EROFS"), ("quota", "EDQUOT"))


def _disk_error(path: Path, exc: sqlite3.Error) -> OutputError | None:
    """The one-line error for a store write the disk refused (None for any other SQLite error)."""
    text = str(exc).lower()
    for needle, code in _DISK_ERRORS:
        if needle in text:
            return OutputError(
                f"cannot write the study store {str(path)!r}: {exc} ({code}); every finished cell is kept: "
                "free space (or fix the disk) and run the same command again to resume"
            )
    return None


def _dumps(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, allow_nan=True)


class Store:
    """The SQLite store of one study folder.

    Parameters
    ----------
    folder : path
        The output folder (created if missing).

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     s = Store(d)
    ...     s.done_ids()
    set()
    """

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        check_db(self.folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "tickets").mkdir(exist_ok=True)
        self.path = self.folder / DB_NAME
        self.conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=FULL")
        self.conn.executescript(_SCHEMA)
        have = {r[1] for r in self.conn.execute("PRAGMA table_info(distances)")}
        for col, typ in (("null_n", "REAL"), ("p_closer", "REAL"), ("p_farther", "REAL"), ("note", "TEXT")):
            if col not in have:  # a store written before these columns existed
                self.conn.execute(f"ALTER TABLE distances ADD COLUMN {col} {typ}")
        if "ticket_sha256" not in {r[1] for r in self.conn.execute("PRAGMA table_info(cells)")}:
            self.conn.execute("ALTER TABLE cells ADD COLUMN ticket_sha256 TEXT")

    # ------------------------------------------------------------------ basics
    def close(self) -> None:
        """Close the connection."""
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic transaction (committed at the end of the block, rolled back on error).

        A write that fails for want of space or on a failing disk (SQLite's "database or disk is
        full", "disk I/O error", a read-only file system) raises :class:`~graphtickets._io.OutputError`
        naming ``study.db`` and the cause: the transaction is rolled back, every cell finished
        before is kept, and a re-run once space is back resumes from there.
        """
        try:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                with contextlib.suppress(sqlite3.Error):  # SQLite may have rolled back already
                    self.conn.execute("ROLLBACK")
                raise
            try:
                self.conn.execute("COMMIT")
            except sqlite3.Error:
                with contextlib.suppress(sqlite3.Error):
                    self.conn.execute("ROLLBACK")
                raise
        except sqlite3.OperationalError as exc:
            raise _disk_error(self.path, exc) or exc from None

    def set_meta(self, key: str, value: Any) -> None:
        """Store a JSON value under ``key``."""
        with self.transaction() as c:
            c.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, _dumps(value)))

    def get_meta(self, key: str, default: Any = None) -> Any:
        """The JSON value stored under ``key``."""
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    # ------------------------------------------------------------------ cells
    def ticket_path(self, cell_id: str) -> Path:
        """Where the ticket of ``cell_id`` lives."""
        return self.folder / "tickets" / f"{cell_id}.safetensors"

    def trained_path(self, cell_id: str) -> Path:
        """Where the trained ticket of ``cell_id`` lives (its masks with the trained weights).

        Beside the ticket file, not in it: the ticket file keeps the weights a ticket is
        trained *from* (an ablation of the cell and a rerun start from them).
        """
        return self.folder / "tickets" / f"{cell_id}.trained.safetensors"

    def load_trained(self, cell_id: str) -> Ticket | None:
        """The trained ticket of a finished cell (None for a cell finished before they were kept)."""
        path = self.trained_path(cell_id)
        return Ticket.load(path) if path.is_file() else None

    def done_ids(self) -> set[str]:
        """Ids of finished cells."""
        return {r[0] for r in self.conn.execute("SELECT id FROM cells WHERE status = 'done'")}

    def verified_done_ids(self) -> set[str]:
        """Ids of finished cells whose ticket file is present, intact and the one recorded.

        Every other finished cell is marked failed (so the run redoes it), with a warning that
        names the cell, its file and what is wrong. Files of the older ticket format (no
        whole-file hash) pass when their mask digests match.
        """
        rows = self.conn.execute("SELECT id, ticket, ticket_sha256 FROM cells WHERE status = 'done'").fetchall()
        ok: set[str] = set()
        for cid, rel, digest in rows:
            path = self.folder / rel if rel else self.ticket_path(cid)
            problem = None
            if not path.is_file():
                problem = "is missing"
            else:
                try:
                    Ticket.load(path)
                except TicketError as exc:
                    problem = f"fails its check ({str(exc).removeprefix(repr(str(path)) + ': ')})"
                else:
                    if digest is not None and recorded_digest(path) != digest:
                        problem = "is not the file this cell wrote (its sha256 differs from the store's)"
            if problem is None:
                ok.add(cid)
                continue
            log.warning("cell %s: its ticket file %s %s; re-running the cell", cid, path, problem)
            with self.transaction() as c:
                c.execute("UPDATE cells SET status = 'failed', error = ? WHERE id = ?",
                          (f"ticket file {path} {problem}; re-run", cid))
        return ok

    def status(self) -> dict[str, int]:
        """Number of cells per status."""
        return dict(self.conn.execute("SELECT status, COUNT(*) FROM cells GROUP BY status").fetchall())

    def record_done(
        self,
        cell: Any,
        ticket: Ticket,
        results: Mapping[str, Any],
        metrics: Mapping[str, Mapping[str, float]],
        *,
        seconds: float,
        trained: Ticket | None = None,
    ) -> None:
        """Write a finished cell: its ticket file (atomic), then its row and metrics (one transaction).

        ``trained`` (the ticket with its trained weights) is written first, to :meth:`trained_path`.
        """
        if trained is not None:
            trained.save(self.trained_path(cell.id))
        path = ticket.save(self.ticket_path(cell.id))
        digest = recorded_digest(path)
        now = time.time()
        rows = [(cell.id, g, k, float(v) if v is not None else None) for g, ms in metrics.items() for k, v in ms.items()]
        with self.transaction() as c:
            _write_cell(c, cell, "done", None, now - seconds, now, seconds, str(path.relative_to(self.folder)),
                        _dumps(results))
            c.execute("UPDATE cells SET ticket_sha256 = ? WHERE id = ?", (digest, cell.id))
            c.execute("DELETE FROM metrics WHERE cell_id = ?", (cell.id,))
            c.executemany("INSERT INTO metrics VALUES (?, ?, ?, ?)", rows)

    def record_failed(self, cell: Any, error: str, *, seconds: float) -> None:
        """Record a failed cell (retried by the next run)."""
        now = time.time()
        with self.transaction() as c:
            _write_cell(c, cell, "failed", error, now - seconds, now, seconds, None, None)

    def cells(self, ids: Iterable[str] | None = None) -> pd.DataFrame:
        """The cells table (``results`` and ``config`` parsed), optionally only ``ids``, in id order."""
        df = pd.read_sql_query("SELECT * FROM cells ORDER BY id", self.conn)
        if ids is not None:
            keep = set(ids)
            df = df[df["id"].isin(keep)].reset_index(drop=True)
        df["config"] = [json.loads(x) for x in df["config"]]
        df["results"] = [json.loads(x) if isinstance(x, str) and x else {} for x in df["results"]]
        return df

    def metrics(self) -> pd.DataFrame:
        """The metrics table: ``cell_id, graph, name, value``."""
        return pd.read_sql_query("SELECT * FROM metrics ORDER BY cell_id, graph, name", self.conn)

    def load_ticket(self, cell_id: str) -> Ticket:
        """The ticket of a finished cell."""
        return Ticket.load(self.ticket_path(cell_id))

    # ------------------------------------------------------------------ trajectories
    def trajectory_dir(self, trajectory_id: str) -> Path:
        """Where the tickets of a trajectory live (``tickets/trajectories/<id>/``)."""
        return self.folder / "tickets" / "trajectories" / trajectory_id

    def trajectory_done_ids(self) -> set[str]:
        """Ids of finished trajectories."""
        return {r[0] for r in self.conn.execute("SELECT id FROM trajectories WHERE status = 'done'")}

    def record_trajectory(self, trajectory: Any, tickets: Mapping[float, Ticket], *, seconds: float) -> None:
        """Write a finished trajectory: its ticket files (atomic each), then its row (one transaction).

        As for cells, a run killed in between leaves files without a row: the trajectory is redone.
        """
        folder = self.trajectory_dir(trajectory.id)
        folder.mkdir(parents=True, exist_ok=True)
        paths = {}
        for i, (d, t) in enumerate(sorted(tickets.items(), key=lambda kv: -kv[0])):
            path = t.save(folder / f"{i:02d}.safetensors")
            paths[repr(float(d))] = str(path.relative_to(self.folder))
        with self.transaction() as c:
            prev = c.execute("SELECT attempts FROM trajectories WHERE id = ?", (trajectory.id,)).fetchone()
            c.execute(
                "INSERT OR REPLACE INTO trajectories (id, config, status, error, attempts, finished, seconds, tickets)"
                " VALUES (?,?,?,?,?,?,?,?)",
                (trajectory.id, _dumps(trajectory.config), "done", None, (prev[0] if prev else 0) + 1, time.time(),
                 seconds, _dumps(paths)),
            )

    def record_trajectory_failed(self, trajectory: Any, error: str, *, seconds: float) -> None:
        """Record a failed trajectory (retried by the next run)."""
        with self.transaction() as c:
            prev = c.execute("SELECT attempts FROM trajectories WHERE id = ?", (trajectory.id,)).fetchone()
            c.execute(
                "INSERT OR REPLACE INTO trajectories (id, config, status, error, attempts, finished, seconds, tickets)"
                " VALUES (?,?,?,?,?,?,?,?)",
                (trajectory.id, _dumps(trajectory.config), "failed", error, (prev[0] if prev else 0) + 1, time.time(),
                 seconds, None),
            )

    def load_trajectory(self, trajectory_id: str) -> dict[float, Ticket]:
        """``{density: Ticket}`` of a finished trajectory."""
        row = self.conn.execute(
            "SELECT tickets FROM trajectories WHERE id = ? AND status = 'done'", (trajectory_id,)
        ).fetchone()
        if row is None:
            raise GraphticketsError(f"trajectory {trajectory_id} is not finished in {self.folder}; run the study again")
        return {float(d): Ticket.load(self.folder / rel) for d, rel in json.loads(row[0]).items()}

    def trajectories(self) -> pd.DataFrame:
        """The trajectories table (``config`` and ``tickets`` parsed)."""
        df = pd.read_sql_query("SELECT * FROM trajectories ORDER BY id", self.conn)
        df["config"] = [json.loads(x) for x in df["config"]]
        df["tickets"] = [json.loads(x) if isinstance(x, str) and x else {} for x in df["tickets"]]
        return df

    # ------------------------------------------------------------------ distances
    def group_signature(self, key: str) -> str | None:
        """The signature the distances of group ``key`` were computed with (None if never)."""
        row = self.conn.execute("SELECT signature FROM groups WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def record_distances(self, key: str, signature: str, table: pd.DataFrame, *, seconds: float) -> None:
        """Replace the distances of group ``key`` (one transaction)."""
        cols = ["a", "b", "kind", "value", "null_mean", "null_std", "z", "null_n", "p_closer", "p_farther"]
        t = table.reindex(columns=[*cols, "note"])
        rows = [
            (key, r[0], r[1], r[2], *[None if pd.isna(v) else float(v) for v in r[3:-1]],
             None if not isinstance(r[-1], str) else r[-1])
            for r in t.itertuples(index=False, name=None)
        ]
        with self.transaction() as c:
            c.execute("DELETE FROM distances WHERE grp = ?", (key,))
            c.executemany(f"INSERT INTO distances (grp, {', '.join(cols)}, note) VALUES ({', '.join('?' * (len(cols) + 2))})",
                          rows)
            c.execute("INSERT OR REPLACE INTO groups VALUES (?, ?, ?, ?)", (key, signature, time.time(), seconds))

    def distances(self, groups: Iterable[str] | None = None) -> pd.DataFrame:
        """The distances table: ``grp, a, b, kind, value, null_mean, null_std, z, null_n, p_closer, p_farther, note``."""
        df = pd.read_sql_query("SELECT * FROM distances ORDER BY grp, a, b, kind", self.conn)
        if groups is not None:
            df = df[df["grp"].isin(set(groups))].reset_index(drop=True)
        return df
