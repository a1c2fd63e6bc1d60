"""The study store: atomic cell records, failed-cell bookkeeping, the folder lock."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from graphtickets import Ticket
from graphtickets.study import Store, StudyLockedError, expand, folder_lock, load_config

CFG = {
    "name": "s", "datasets": ["digits"], "models": [{"name": "mlp", "widths": [4]}],
    "methods": ["random", "magnitude"], "densities": [0.5], "seeds": [0],
}


def _ticket() -> Ticket:
    return Ticket(masks={"0.weight": torch.tensor([[True, False], [False, True]])}, method="random")


def test_record_done_then_read_back(tmp_path: Path) -> None:
    cells = expand(load_config(CFG))
    with Store(tmp_path) as s:
        s.record_done(cells[0], _ticket(), {"accuracy": 0.5, "history": [1, 2]}, {"layered": {"n_edges": 2.0}}, seconds=1.5)
        assert s.done_ids() == {cells[0].id}
        assert s.ticket_path(cells[0].id).exists()
        df = s.cells()
        assert df.loc[0, "results"] == {"accuracy": 0.5, "history": [1, 2]}
        assert df.loc[0, "config"] == cells[0].config and df.loc[0, "attempts"] == 1
        assert s.metrics()[["graph", "name", "value"]].values.tolist() == [["layered", "n_edges", 2.0]]
        assert torch.equal(s.load_ticket(cells[0].id).masks["0.weight"], _ticket().masks["0.weight"])
    with Store(tmp_path) as s:  # persisted
        assert s.done_ids() == {cells[0].id}


def test_failed_cell_is_recorded_and_replaced_when_it_succeeds(tmp_path: Path) -> None:
    cells = expand(load_config(CFG))
    with Store(tmp_path) as s:
        s.record_failed(cells[1], "Traceback...\nRuntimeError: boom", seconds=0.1)
        assert s.done_ids() == set() and s.status() == {"failed": 1}
        assert "boom" in s.cells().loc[0, "error"]
        s.record_done(cells[1], _ticket(), {}, {}, seconds=0.2)
        row = s.cells().iloc[0]
        assert row["status"] == "done" and row["error"] is None and row["attempts"] == 2


def test_a_failed_transaction_leaves_no_trace(tmp_path: Path) -> None:
    cells = expand(load_config(CFG))
    with Store(tmp_path) as s:
        with pytest.raises(RuntimeError), s.transaction() as c:
            c.execute("INSERT INTO cells (id, config, status) VALUES ('x', '{}', 'done')")
            raise RuntimeError("killed mid-write")
        assert s.done_ids() == set()
        # metrics that are not numbers make the insert fail: the cell row must roll back with them
        with pytest.raises(Exception):  # noqa: B017
            s.record_done(cells[0], _ticket(), {}, {"layered": {"bad": object()}}, seconds=0.0)  # type: ignore[dict-item]
        assert s.done_ids() == set() and s.metrics().empty


def test_second_lock_in_the_same_process_is_refused(tmp_path: Path) -> None:
    with folder_lock(tmp_path):
        with pytest.raises(StudyLockedError, match="in use by another graphtickets run"), folder_lock(tmp_path):
            pass
    with folder_lock(tmp_path):  # released on exit
        pass


def test_lock_held_by_another_process_and_released_when_it_is_killed(tmp_path: Path) -> None:
    code = textwrap.dedent(f"""
        import time
        from graphtickets.study.store import folder_lock
        with folder_lock({str(tmp_path)!r}):
            print("locked", flush=True)
            time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        with pytest.raises(StudyLockedError, match=rf"pid {proc.pid}"), folder_lock(tmp_path):
            pass
    finally:
        proc.kill()
        proc.wait()
    deadline = time.time() + 10
    while True:  # the kernel drops the flock of a killed process: the stale file does not block
        try:
            with folder_lock(tmp_path):
                break
        except StudyLockedError:
            if time.time() > deadline:
                raise
            time.sleep(0.05)


# ---------------------------------------------------------------------------- healing (issue 17)
def test_check_db_names_an_empty_or_foreign_store_and_restart_moves_it_aside(tmp_path: Path) -> None:
    import sqlite3

    from graphtickets.study import store as st

    assert st.check_db(tmp_path) is None  # no store yet: nothing to check
    db = tmp_path / st.DB_NAME
    db.write_bytes(b"")
    with pytest.raises(st.StoreCorruptError, match=r"is empty \(0 bytes\).*--restart"):
        Store(tmp_path)
    with sqlite3.connect(tmp_path / "other.db") as c:
        c.execute("CREATE TABLE t (x)")
    (tmp_path / "other.db").replace(db)
    with pytest.raises(st.StoreCorruptError, match="not a graphtickets study store"):
        st.check_db(tmp_path)
    moved = st.check_db(tmp_path, restart=True)
    assert moved is not None and moved.name.startswith("study.db.broken-") and moved.exists() and not db.exists()
    with Store(tmp_path) as s:  # a fresh store
        assert s.done_ids() == set()


def test_verified_done_ids_marks_cells_whose_file_is_gone_for_rerun(tmp_path: Path) -> None:
    cells = expand(load_config(CFG))
    with Store(tmp_path) as s:
        for c in cells:
            s.record_done(c, _ticket(), {}, {}, seconds=0.1)
        assert (s.cells()["ticket_sha256"].str.len() == 64).all()
        s.ticket_path(cells[0].id).unlink()
        assert s.verified_done_ids() == {c.id for c in cells[1:]}
        row = s.cells().set_index("id").loc[cells[0].id]
        assert row["status"] == "failed" and "is missing" in row["error"]
