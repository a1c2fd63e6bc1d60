"""Reruns with nothing new rebuild nothing; a changed store rebuilds; ``run`` uses every core by default."""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import time
from pathlib import Path

import pandas as pd
import pytest

from graphtickets.study import run
from graphtickets.study.cli import add_commands
from graphtickets.study.runner import BUILT_NAME, default_workers

TINY = {
    "name": "rerun",
    "datasets": ["digits"],
    "models": [{"name": "mlp", "widths": [16, 16]}],
    "methods": {"random": {"scope": "global"}, "magnitude": {}},
    "densities": [0.2],
    "seeds": [0],
    "train": {"epochs": 1},
    "analysis": {"null_samples": 2},
}


def _outputs(out: Path) -> dict[str, int]:
    """mtime (ns) of every table, figure and report file."""
    files = [out / "report.md", out / "report.html", *sorted((out / "figures").iterdir()),
             *sorted((out / "tables").iterdir())]
    return {str(p.relative_to(out)): p.stat().st_mtime_ns for p in files}


@pytest.fixture()
def built(tmp_path: Path) -> Path:
    out = tmp_path / "out"
    res = run(TINY, out, progress=False)
    assert res.done == 3 and res.failed == 0
    return out


def test_rerun_with_nothing_new_rewrites_nothing(built: Path) -> None:
    before = _outputs(built)
    stamp = json.loads((built / BUILT_NAME).read_text())
    assert set(stamp) == {"tables", "report"} and stamp["tables"]["digest"] == stamp["report"]["digest"]
    time.sleep(0.02)  # mtimes would differ if anything were written again
    res = run(TINY, built, progress=False)
    assert res.ran == 0 and res.done == 3
    assert _outputs(built) == before
    assert not res.tickets.empty  # the result still carries the tables
    # another number of workers is how the cells ran, not what they are: still nothing rebuilt
    run(TINY, built, progress=False, workers=2)
    assert _outputs(built) == before


def test_a_changed_store_rebuilds_tables_and_report(built: Path) -> None:
    before = _outputs(built)
    con = sqlite3.connect(built / "study.db")
    row = con.execute("SELECT id, results FROM cells WHERE method = 'random'").fetchone()
    results = json.loads(row[1])
    results["accuracy"] = 0.123456
    con.execute("UPDATE cells SET results = ? WHERE id = ?", (json.dumps(results), row[0]))
    con.commit()
    con.close()
    time.sleep(0.02)
    run(TINY, built, progress=False)
    after = _outputs(built)
    assert all(after[k] != before[k] for k in ("report.md", "report.html", "tables/tickets.csv"))
    assert all(after[k] != v for k, v in before.items() if k.startswith("figures/"))
    tk = pd.read_csv(built / "tables" / "tickets.csv")
    assert tk.loc[tk["id"] == row[0], "accuracy"].item() == pytest.approx(0.123456)


def test_a_missing_output_or_a_new_cell_rebuilds(built: Path) -> None:
    (built / "figures" / "accuracy_vs_density.png").unlink()
    run(TINY, built, progress=False)
    assert (built / "figures" / "accuracy_vs_density.png").is_file()
    before = _outputs(built)
    time.sleep(0.02)
    more = {**TINY, "methods": {**TINY["methods"], "snip": {}}}  # a new cell: the store changes
    res = run(more, built, progress=False)
    assert res.ran == 1 and res.done == 4
    assert _outputs(built)["report.md"] != before["report.md"]
    assert "snip" in set(pd.read_csv(built / "tables" / "tickets.csv")["method"])


def test_report_only_run_then_full_run_builds_the_report(tmp_path: Path) -> None:
    out = tmp_path / "out"
    run(TINY, out, progress=False, report=False)
    assert not (out / "report.md").exists() and (out / "tables" / "tickets.csv").is_file()
    tables = {p.name: p.stat().st_mtime_ns for p in (out / "tables").iterdir()}
    time.sleep(0.02)
    run(TINY, out, progress=False)
    assert (out / "report.md").is_file()
    assert {p.name: p.stat().st_mtime_ns for p in (out / "tables").iterdir()} == tables  # tables were current


def test_the_report_command_marks_its_outputs_current(built: Path) -> None:
    p = argparse.ArgumentParser(prog="graphtickets")
    add_commands(p.add_subparsers(dest="command", required=True))
    (built / BUILT_NAME).unlink()
    args = p.parse_args(["report", str(built)])
    assert args.handler(args) == 0
    before = _outputs(built)
    time.sleep(0.02)
    run(TINY, built, progress=False)
    assert _outputs(built) == before


def test_run_uses_every_usable_core_by_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    expected = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    assert default_workers() == expected
    p = argparse.ArgumentParser(prog="graphtickets")
    add_commands(p.add_subparsers(dest="command", required=True))
    assert p.parse_args(["run"]).workers is None and p.parse_args(["run", "--workers", "1"]).workers == 1
    seen: dict[str, object] = {}

    import graphtickets.study.runner as runner

    real = runner.make_executor

    def spy(**kw: object) -> object:
        seen.update(kw)
        return real(**{**kw, "workers": 1})  # the choice is what is tested; run it in-process here

    monkeypatch.setattr(runner, "make_executor", spy)
    monkeypatch.setattr(runner, "default_workers", lambda: 3)
    res = run(TINY, tmp_path / "a", progress=False, report=False, workers=None)
    assert seen["workers"] == 3 and res.done == 3
    con = sqlite3.connect(tmp_path / "a" / "study.db")
    commands = json.loads(con.execute("SELECT value FROM meta WHERE key = 'commands'").fetchone()[0])
    con.close()
    assert commands["workers"] == 3
    seen.clear()
    run(TINY, tmp_path / "b", progress=False, report=False, workers=None, device="cpu")
    assert seen["workers"] == 3
    seen.clear()
    run({**TINY, "methods": {}}, tmp_path / "c", progress=False, report=False, workers=None)
    assert seen["workers"] == 1  # a single cell (the dense reference): no cluster for it
