"""Reruns with nothing new rebuild nothing; a changed store rebuilds; ``run`` uses every core by default."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sqlite3
import time
from pathlib import Path

import pandas as pd
import pytest

from graphtickets.cli.study import add_commands
from graphtickets.study import run
from graphtickets.study.rerun import STAMP_KEY
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
    assert {"tables", "report"} <= set(stamp) and stamp["tables"]["digest"] == stamp["report"]["digest"]
    time.sleep(0.02)  # mtimes would differ if anything were written again
    res = run(TINY, built, progress=False)
    assert res.ran == 0 and res.done == 3
    assert _outputs(built) == before
    assert not res.tickets.empty  # the result still carries the tables
    # another number of workers is how the cells ran, not what they are: still nothing rebuilt
    run(TINY, built, progress=False, workers=2)
    assert _outputs(built) == before


def _set_accuracy(db: Path, method: str, value: float) -> str:
    """Change the stored accuracy of one cell of ``method`` (the store changes, nothing else);
    return that cell's id."""
    con = sqlite3.connect(db)
    row = con.execute("SELECT id, results FROM cells WHERE method = ?", (method,)).fetchone()
    results = json.loads(row[1])
    results["accuracy"] = value
    con.execute("UPDATE cells SET results = ? WHERE id = ?", (json.dumps(results), row[0]))
    con.commit()
    con.close()
    return str(row[0])


def test_a_changed_store_rebuilds_tables_and_report(built: Path) -> None:
    before = _outputs(built)
    cell = _set_accuracy(built / "study.db", "random", 0.123456)
    time.sleep(0.02)
    run(TINY, built, progress=False)
    after = _outputs(built)
    assert all(after[k] != before[k] for k in ("report.md", "report.html", "tables/tickets.csv"))
    assert all(after[k] != v for k, v in before.items() if k.startswith("figures/"))
    tk = pd.read_csv(built / "tables" / "tickets.csv")
    assert tk.loc[tk["id"] == cell, "accuracy"].item() == pytest.approx(0.123456)


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


# ---------------------------------------------------------------------------- the fast path (no torch)
def _cli_run(config: Path, out: Path, *extra: str) -> int:
    from graphtickets.cli import main

    return main(["run", str(config), "--out", str(out), "--workers", "1", "--no-progress", *extra])


def _run_args(config: Path, out: Path, *extra: str) -> argparse.Namespace:
    from graphtickets.cli import build_parser

    return build_parser().parse_args(["run", str(config), "--out", str(out), "--workers", "1", "--no-progress", *extra])


def _stamp(tmp_path: Path, *extra: str) -> tuple[Path, Path]:
    import yaml

    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY))
    out = tmp_path / "out"
    assert _cli_run(config, out, *extra) == 0
    assert STAMP_KEY in json.loads((out / BUILT_NAME).read_text())
    return config, out


@pytest.fixture()
def stamped(tmp_path: Path) -> tuple[Path, Path]:
    """A finished study run through the command line (which writes the rerun stamp)."""
    return _stamp(tmp_path)


@pytest.fixture()
def stamped_tables(tmp_path: Path) -> tuple[Path, Path]:
    """The same with ``--no-report`` (no figures to draw: the tests that rerun are quicker)."""
    return _stamp(tmp_path, "--no-report")


def test_fast_path_constants_match_the_library() -> None:
    from graphtickets.cli.study import add_commands as add
    from graphtickets.study import rerun
    from graphtickets.study.store import DB_NAME

    assert rerun._BUILT_NAME == BUILT_NAME and rerun._DB == DB_NAME
    p = argparse.ArgumentParser()
    add(p.add_subparsers(dest="command"))
    run_parser = p._subparsers._group_actions[0].choices["run"]  # type: ignore[union-attr]
    group = next(g for g in run_parser._action_groups if g.title and g.title.startswith("batch cluster"))
    assert set(rerun._CLUSTER_OPTIONS) == {a.dest for a in group._group_actions}


def test_fast_rerun_in_a_fresh_process_imports_no_torch_and_rewrites_nothing(stamped: tuple[Path, Path]) -> None:
    import subprocess
    import sys

    config, out = stamped
    before = _outputs(out)
    db = (out / "study.db").read_bytes()
    code = ("import sys; from graphtickets.cli import main; rc = main(sys.argv[1:]); "
            "heavy = sorted(m for m in ('torch', 'pandas', 'numpy', 'pydantic', 'matplotlib') if m in sys.modules); "
            "print('HEAVY', heavy); sys.exit(rc)")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.run([sys.executable, "-c", code, "run", str(config), "--out", str(out), "--workers", "1"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY []" in proc.stdout
    assert "3/3 cells done (0 run now, 0 failed)" in proc.stdout
    assert _outputs(out) == before and (out / "study.db").read_bytes() == db
    assert "rerun: nothing changed" in (out / "study.log").read_text().splitlines()[-1]


def test_what_takes_the_full_path(stamped: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    import fcntl

    from graphtickets.study import rerun

    config, out = stamped
    assert rerun.nothing_to_do(_run_args(config, out)) is not None
    # other options than the stamped run's, or ones the fast path never takes
    for extra in (["--restart"], ["--quick"], ["--no-report"], ["--one-by-one"], ["--device", "cpu"],
                  ["--scheduler", "tcp://nowhere:1"], ["--cluster", "slurm"], ["--workers", "2"]):
        assert rerun.nothing_to_do(_run_args(config, out, *extra)) is None, extra
    monkeypatch.setenv("GRAPHTICKETS_DATA", "/elsewhere")
    assert rerun.nothing_to_do(_run_args(config, out)) is None
    monkeypatch.delenv("GRAPHTICKETS_DATA")
    monkeypatch.setattr(rerun, "package_digest", lambda: "another package")
    assert rerun.nothing_to_do(_run_args(config, out)) is None
    monkeypatch.undo()
    assert rerun.nothing_to_do(_run_args(config, out)) is not None
    default = _run_args(config, out)
    default.workers = None  # --workers left out: the core count it resolves to is part of the request
    before = rerun._request(default)
    monkeypatch.setattr(rerun, "_cores", lambda: 999)
    assert rerun._request(default) != before
    monkeypatch.undo()
    # another run holds the folder
    fd = os.open(out / ".lock", os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        assert rerun.nothing_to_do(_run_args(config, out)) is None
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
    assert rerun.nothing_to_do(_run_args(config, out)) is not None
    # a file added under tickets/, a figure gone
    (out / "tickets" / "stray.bin").write_bytes(b"x")
    assert rerun.nothing_to_do(_run_args(config, out)) is None
    (out / "tickets" / "stray.bin").unlink()
    fig = out / "figures" / "accuracy_vs_density.png"
    data = fig.read_bytes()
    fig.unlink()
    assert rerun.nothing_to_do(_run_args(config, out)) is None
    fig.write_bytes(data)
    assert rerun.nothing_to_do(_run_args(config, out)) is not None


def test_a_changed_store_takes_the_full_path_and_rebuilds(stamped_tables: tuple[Path, Path]) -> None:
    from graphtickets.study import rerun

    config, out = stamped_tables
    before = (out / "tables" / "tickets.csv").stat().st_mtime_ns
    cell = _set_accuracy(out / "study.db", "magnitude", 0.654321)
    assert rerun.nothing_to_do(_run_args(config, out, "--no-report")) is None
    time.sleep(0.02)
    assert _cli_run(config, out, "--no-report") == 0
    assert (out / "tables" / "tickets.csv").stat().st_mtime_ns != before
    tk = pd.read_csv(out / "tables" / "tickets.csv")
    assert tk.loc[tk["id"] == cell, "accuracy"].item() == pytest.approx(0.654321)
    assert rerun.nothing_to_do(_run_args(config, out, "--no-report")) is not None  # the full run stamped the new state


def test_a_changed_config_takes_the_full_path(stamped_tables: tuple[Path, Path]) -> None:
    import yaml

    from graphtickets.study import rerun

    config, out = stamped_tables
    config.write_text(yaml.safe_dump({**TINY, "methods": {**TINY["methods"], "snip": {}}}))
    assert rerun.nothing_to_do(_run_args(config, out, "--no-report")) is None
    assert _cli_run(config, out, "--no-report") == 0
    assert "snip" in set(pd.read_csv(out / "tables" / "tickets.csv")["method"])
    assert rerun.nothing_to_do(_run_args(config, out, "--no-report")) is not None
    config.write_text(config.read_text() + "\n# only a comment\n")  # any byte: the full path decides
    assert rerun.nothing_to_do(_run_args(config, out, "--no-report")) is None


@pytest.mark.parametrize("damage", ["tamper", "delete"])
def test_a_damaged_ticket_file_takes_the_full_path_which_redoes_its_cell(stamped_tables: tuple[Path, Path], damage: str) -> None:
    from graphtickets.study import rerun

    config, out = stamped_tables
    con = sqlite3.connect(out / "study.db")
    cid, rel = con.execute("SELECT id, ticket FROM cells WHERE method = 'random'").fetchone()
    con.close()
    path = out / rel if rel else out / "tickets" / f"{cid}.safetensors"
    if damage == "tamper":
        raw = bytearray(path.read_bytes())
        raw[-1] ^= 0xFF
        path.write_bytes(bytes(raw))
    else:
        path.unlink()
    assert rerun.nothing_to_do(_run_args(config, out, "--no-report")) is None
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert _cli_run(config, out, "--no-report") == 0
    assert "(1 run now, 0 failed)" in buf.getvalue()
    assert rerun.nothing_to_do(_run_args(config, out, "--no-report")) is not None


def test_no_stamp_while_a_comparison_group_is_pending(stamped_tables: tuple[Path, Path]) -> None:
    from graphtickets.study import rerun

    config, out = stamped_tables
    con = sqlite3.connect(out / "study.db")
    con.execute("DELETE FROM groups WHERE rowid = (SELECT MIN(rowid) FROM groups)")
    con.commit()
    con.close()
    assert rerun.nothing_to_do(_run_args(config, out, "--no-report")) is None  # the store changed
    assert rerun.record(_run_args(config, out, "--no-report"), 3) is False  # and the full path would compare that group again
