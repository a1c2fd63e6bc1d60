"""The study runner end to end: a tiny study, its report, failures, kill -9 resume, Dask parity, CLI."""

from __future__ import annotations

import argparse
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

import graphtickets as gt
from graphtickets.study import run
from graphtickets.study.cli import add_commands

TIMING = ["seconds", "search_seconds", "train_seconds"]

TINY = {
    "name": "tiny",
    "datasets": ["digits"],
    "models": [{"name": "mlp", "widths": [16, 16]}],
    "methods": {"random": {"scope": "global"}, "magnitude": {}, "imp": {"epochs": 1}},
    "densities": [0.2],
    "seeds": [0],
    "train": {"epochs": 1},
    "analysis": {"null_samples": 3},
}


def _stable(df: pd.DataFrame) -> pd.DataFrame:
    return df.drop(columns=[c for c in TIMING if c in df]).reset_index(drop=True)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="graphtickets")
    add_commands(p.add_subparsers(dest="command", required=True))
    return p


def _cli(*argv: str) -> int:
    args = _parser().parse_args(list(argv))
    return int(args.handler(args))


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tiny") / "out"
    res = run(TINY, out, progress=False)
    assert (res.done, res.failed, res.cells) == (3, 0, 3)
    return out


def test_tiny_study_writes_tables_figures_and_report(tiny_run: Path) -> None:
    tk = pd.read_csv(tiny_run / "tables" / "tickets.csv")
    assert sorted(tk["method"]) == ["imp", "magnitude", "random"]
    assert tk["accuracy"].between(0, 1).all() and (tk["density_actual"].round(3) == 0.2).all()
    for col in ("layered.effective_fraction", "relational.clustering", "bipartite.delta_r", "layer.fc1.weight"):
        assert col in tk and tk[col].notna().all(), col
    assert pd.read_parquet(tiny_run / "tables" / "tickets.parquet").shape == tk.shape
    dist = pd.read_csv(tiny_run / "tables" / "distances.csv")
    pairs = dist[dist["group"] == "digits/mlp(16,16)/d0.2/s0"]
    assert set(pairs["kind"]) >= {"jaccard", "hamming", "spectral"} and pairs["z"].notna().any()
    assert len(pairs[pairs["kind"] == "jaccard"]) == 3
    figs = {p.name for p in (tiny_run / "figures").iterdir()}
    for name in ("accuracy_vs_density", "layer_density_profiles", "distance_heatmap_jaccard", "mds_netlsd",
                 "clustering_path_length", "degree_distributions", "laplacian_spectra", "imp_rounds"):
        assert f"{name}.png" in figs and f"{name}.svg" in figs, name
    md = (tiny_run / "report.md").read_text()
    assert "## Findings" in md and "Most alike tickets" in md and "shuffled nulls" in md
    assert "IMP vs pruning at init" not in md or "snip" in md  # no PaI method in the tiny study
    assert "graphtickets run" in md and "figures/accuracy_vs_density.png" in md
    page = (tiny_run / "report.html").read_text()
    assert page.count("data:image/png;base64,") >= 8 and "<img src=\"figures" not in page
    assert (tiny_run / "study.log").read_text().count("done random") == 1


def test_rerun_skips_finished_cells_and_report_rebuilds(tiny_run: Path) -> None:
    before = pd.read_csv(tiny_run / "tables" / "tickets.csv")
    res = run(TINY, tiny_run, progress=False, report=False)
    assert res.ran == 0 and res.done == 3
    (tiny_run / "report.md").unlink()
    assert _cli("report", str(tiny_run)) == 0
    assert "## Findings" in (tiny_run / "report.md").read_text()
    pd.testing.assert_frame_equal(pd.read_csv(tiny_run / "tables" / "tickets.csv"), before)


def test_compare_and_graph_commands(tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tickets = sorted((tiny_run / "tickets").glob("*.safetensors"))
    csv = tmp_path / "cmp.csv"
    assert _cli("compare", *map(str, tickets), "--kinds", "jaccard", "hamming", "--out", str(csv)) == 0
    table = pd.read_csv(csv)
    assert len(table) == 3 * 2 and set(table["kind"]) == {"jaccard", "hamming"}
    a, b = gt.Ticket.load(tickets[0]), gt.Ticket.load(tickets[1])
    row = table[(table["a"] == tickets[0].stem) & (table["b"] == tickets[1].stem) & (table["kind"] == "jaccard")]
    assert row["value"].item() == pytest.approx(gt.analysis.distance(a, b, "jaccard"))
    assert "jaccard" in capsys.readouterr().out
    out = tmp_path / "g.graphml"
    assert _cli("graph", str(tickets[0]), "--format", "graphml", "--out", str(out)) == 0
    import networkx as nx

    g = nx.read_graphml(out)
    assert g.number_of_edges() == a.kept  # layered graph of an MLP: one edge per kept weight
    assert _cli("graph", str(tickets[0]), "--format", "edgelist", "--kind", "relational", "--out", str(tmp_path / "r.edgelist")) == 0
    assert _cli("graph", str(tickets[0]), "--format", "pyg", "--out", str(tmp_path / "g.pt")) == 0
    with pytest.raises(gt.GraphticketsError, match="no study"):
        _cli("report", str(tmp_path))


def test_a_failing_cell_is_recorded_does_not_stop_others_and_is_retried(tmp_path: Path) -> None:
    from graphtickets.pruning import METHODS, register_method

    calls = {"n": 0}

    @register_method("test_flaky", needs_data=False, kind="baseline", summary="fails once", reference="-")
    def _flaky(model, *, density, data=None, seed=0):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("flaky method failed on purpose")
        return gt.pruning.METHODS["random"].fn(model, density=density, seed=seed)

    try:
        cfg = {**TINY, "methods": ["test_flaky", "random", "magnitude"], "analysis": {"null_samples": 0}}
        res = run(cfg, tmp_path, progress=False, report=False)
        assert (res.done, res.failed) == (2, 1)
        assert "flaky method failed on purpose" in next(iter(res.errors.values()))
        with sqlite3.connect(tmp_path / "study.db") as c:
            status, error = c.execute("SELECT status, error FROM cells WHERE method = 'test_flaky'").fetchone()
        assert status == "failed" and "RuntimeError" in error
        res2 = run(cfg, tmp_path, progress=False, report=False)
        assert (res2.ran, res2.done, res2.failed) == (1, 3, 0)
    finally:
        METHODS.pop("test_flaky", None)


KILL = {
    **TINY,
    "name": "killme",
    "methods": {"random": {"scope": "global"}, "magnitude": {}, "imp": {"epochs": 3}},
    "seeds": [0, 1],
    "train": {"epochs": 25},
    "analysis": {"null_samples": 2, "kinds": ["jaccard", "degree"]},
}


def _cmd() -> list[str]:
    return [sys.executable, "-m", "graphtickets.cli", "run"]


def _done(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as c:
            return int(c.execute("SELECT COUNT(*) FROM cells WHERE status = 'done'").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def test_kill_9_then_rerun_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    cfg = tmp_path / "kill.yaml"
    cfg.write_text(yaml.safe_dump(KILL))
    env = {**os.environ, "PYTHONPATH": str(Path(gt.__file__).resolve().parents[1])}
    killed = tmp_path / "killed"
    proc = subprocess.Popen([*_cmd(), str(cfg), "--out", str(killed), "--no-progress"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    n = 0
    while time.time() < deadline and proc.poll() is None:
        n = _done(killed / "study.db")
        if n >= 1:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.01)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read() if proc.stderr else ""
    assert 1 <= _done(killed / "study.db") < 6  # killed in the middle: some cells done, not all
    assert not (killed / "report.md").exists()
    again = subprocess.run([*_cmd(), str(cfg), "--out", str(killed), "--no-progress", "--no-report"], env=env,
                           capture_output=True, text=True, timeout=180)
    assert again.returncode == 0, again.stderr
    whole = run(str(cfg), tmp_path / "whole", progress=False, report=False)
    assert whole.done == 6
    for name in ("tickets", "distances"):
        a = pd.read_csv(killed / "tables" / f"{name}.csv")
        b = pd.read_csv(tmp_path / "whole" / "tables" / f"{name}.csv")
        pd.testing.assert_frame_equal(_stable(a), _stable(b), check_exact=True)


def test_local_cluster_equals_in_process(tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    cfg = {**KILL, "name": "dask", "seeds": [0], "train": {"epochs": 3}}
    local = run(cfg, tmp_path / "local", progress=False, report=False)
    dask = run(cfg, tmp_path / "dask", workers=2, progress=False, report=False)
    assert local.done == dask.done == 3 and dask.ran == 3
    pd.testing.assert_frame_equal(_stable(local.tickets), _stable(dask.tickets), check_exact=True)
    pd.testing.assert_frame_equal(local.distances, dask.distances, check_exact=True)
    for cell_id in local.tickets["id"]:
        a = gt.Ticket.load(tmp_path / "local" / "tickets" / f"{cell_id}.safetensors")
        b = gt.Ticket.load(tmp_path / "dask" / "tickets" / f"{cell_id}.safetensors")
        assert all((a.masks[k] == b.masks[k]).all() for k in a.masks)
