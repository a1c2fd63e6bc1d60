"""A study whose store hits a full disk keeps every finished cell and resumes (issue 30)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
import yaml

from graphtickets.cli import main
from graphtickets.study import store as store_mod

TINY = {
    "name": "fulldisk",
    "datasets": ["digits"],
    "models": [{"name": "mlp", "widths": [8]}],
    "methods": {"random": {"scope": "global"}, "magnitude": {}, "snip": {}},
    "densities": [0.2],
    "seeds": [0],
    "train": {"epochs": 1},
    "dense_reference": False,
    "analysis": {"null_samples": 0},
}


class _FillingConnection:
    """A SQLite connection that fails as on a full disk at the commit of the ``budget + 1``-th finished cell."""

    def __init__(self, real: sqlite3.Connection, budget: int) -> None:
        self.real, self.budget, self.cell_pending = real, budget, False

    def execute(self, sql: str, *args: Any) -> Any:
        text = sql.strip().upper()
        if text.startswith("INSERT OR REPLACE INTO CELLS"):
            self.cell_pending = True
        if text == "COMMIT" and self.cell_pending:
            self.cell_pending = False
            if self.budget <= 0:
                raise sqlite3.OperationalError("database or disk is full")
            self.budget -= 1
        return self.real.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def test_a_full_disk_stops_the_study_with_one_line_and_it_resumes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(TINY))
    out = tmp_path / "out"
    real_connect = sqlite3.connect
    holder: dict[str, int] = {"cells": 1}

    def connect(*a: Any, **k: Any) -> Any:
        return _FillingConnection(real_connect(*a, **k), holder["cells"])

    monkeypatch.setattr(store_mod.sqlite3, "connect", connect)
    rc = main(["run", str(cfg), "--out", str(out), "--workers", "1", "--no-report"])
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("graphtickets: error")]
    assert rc == 2 and len(err) == 1
    assert "study.db" in err[0] and "ENOSPC" in err[0] and "run the same command again" in err[0]
    monkeypatch.undo()
    con = real_connect(out / "study.db")
    done_before = dict(con.execute("SELECT id, finished FROM cells WHERE status = 'done'").fetchall())
    con.close()
    assert len(done_before) == 1
    assert main(["run", str(cfg), "--out", str(out), "--workers", "1", "--no-report"]) == 0
    con = real_connect(out / "study.db")
    after = dict(con.execute("SELECT id, finished FROM cells WHERE status = 'done'").fetchall())
    con.close()
    assert len(after) == 3
    assert all(after[i] == t for i, t in done_before.items())  # finished cells were kept, not redone
