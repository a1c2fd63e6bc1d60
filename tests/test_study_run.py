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
from graphtickets.cli import study as study_cli
from graphtickets.cli import tickets as tickets_cli
from graphtickets.study import run

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
    sub = p.add_subparsers(dest="command", required=True)
    study_cli.add_commands(sub)  # run, report
    for add in tickets_cli.COMMANDS.values():  # compare, graph, ...
        add(sub)
    return p


def _cli(*argv: str) -> int:
    args = _parser().parse_args(list(argv))
    return int(args.handler(args))


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tiny") / "out"
    res = run(TINY, out, progress=False)
    assert (res.done, res.failed, res.cells) == (4, 0, 4)  # 3 tickets + the dense reference
    return out


def test_tiny_study_writes_tables_figures_and_report(tiny_run: Path) -> None:
    tk = pd.read_csv(tiny_run / "tables" / "tickets.csv")
    assert sorted(tk["method"]) == ["dense", "imp", "magnitude", "random"]
    dense = tk[tk["method"] == "dense"].iloc[0]
    assert dense["density_actual"] == 1.0 and dense["kind"] == "reference" and 0 <= dense["accuracy"] <= 1
    layers = [c for c in tk.columns if c.startswith("layer.")]
    assert layers == ["layer.fc1.weight", "layer.fc2.weight", "layer.classifier.weight"]  # network order
    tickets = tk[tk["method"] != "dense"]
    assert tk["accuracy"].between(0, 1).all() and (tickets["density_actual"].round(3) == 0.2).all()
    for col in ("layered.effective_fraction", "relational.clustering", "bipartite.delta_r", "layer.fc1.weight"):
        assert col in tk and tk[col].notna().all(), col
    assert pd.read_parquet(tiny_run / "tables" / "tickets.parquet").shape == tk.shape
    dist = pd.read_csv(tiny_run / "tables" / "distances.csv")
    pairs = dist[dist["group"] == "digits/mlp(16,16)/d0.2/s0"]
    assert set(pairs["kind"]) >= {"jaccard", "hamming", "spectral"} and pairs["z"].notna().any()
    assert len(pairs[pairs["kind"] == "jaccard"]) == 3 and "dense" not in set(pairs["a"]) | set(pairs["b"])
    assert {"null_n", "p_closer", "p_farther", "note"} <= set(dist.columns)
    ld = pairs[pairs["kind"] == "layer_density"]
    assert ld["z"].isna().all()  # the shuffle null keeps layer densities: no null variation, no z
    figs = {p.name for p in (tiny_run / "figures").iterdir()}
    for name in ("accuracy_vs_density", "layer_density_profiles", "distance_heatmap_jaccard", "mds_netlsd",
                 "clustering_path_length", "degree_distributions", "laplacian_spectra", "imp_rounds"):
        assert f"{name}.png" in figs and f"{name}.svg" in figs, name
    md = (tiny_run / "report.md").read_text()
    assert "## Findings" in md and "Most alike pairs per distance kind" in md and "shuffled null" in md
    assert "## Answer" in md and "tests in this report" in md and "## Test accuracy per method and density" in md
    assert "dense network" in md and "explained by layer densities alone" not in md
    assert "nulls per pair" in md and "layer_density" in md
    assert "IMP vs pruning at init" not in md or "snip" in md  # no PaI method in the tiny study
    assert "graphtickets run" in md and "figures/accuracy_vs_density.png" in md
    page = (tiny_run / "report.html").read_text()
    assert page.count("data:image/png;base64,") >= 8 and "<img src=\"figures" not in page
    assert (tiny_run / "study.log").read_text().count("done random") == 1


def test_rerun_skips_finished_cells_and_report_rebuilds(tiny_run: Path) -> None:
    before = pd.read_csv(tiny_run / "tables" / "tickets.csv")
    res = run(TINY, tiny_run, progress=False, report=False)
    assert res.ran == 0 and res.done == 4
    (tiny_run / "report.md").unlink()
    assert _cli("report", str(tiny_run)) == 0
    assert "## Findings" in (tiny_run / "report.md").read_text()
    pd.testing.assert_frame_equal(pd.read_csv(tiny_run / "tables" / "tickets.csv"), before)


def test_compare_and_graph_commands(tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tk = pd.read_csv(tiny_run / "tables" / "tickets.csv")
    tickets = [tiny_run / "tickets" / f"{i}.safetensors" for i in tk[tk["method"] != "dense"]["id"]]
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


def test_a_failing_cell_is_recorded_does_not_stop_others_and_is_retried(tmp_path: Path, flaky_method: str) -> None:
    cfg = {**TINY, "methods": [flaky_method, "random", "magnitude"], "analysis": {"null_samples": 0},
           "dense_reference": False}
    res = run(cfg, tmp_path, progress=False, report=False)
    assert (res.done, res.failed) == (2, 1)
    assert "flaky method failed on purpose" in next(iter(res.errors.values()))
    with sqlite3.connect(tmp_path / "study.db") as c:
        status, error = c.execute("SELECT status, error FROM cells WHERE method = ?", (flaky_method,)).fetchone()
    assert status == "failed" and "RuntimeError" in error
    res2 = run(cfg, tmp_path, progress=False, report=False)
    assert (res2.ran, res2.done, res2.failed) == (1, 3, 0)


KILL = {
    **TINY,
    "name": "killme",
    "methods": {"random": {"scope": "global"}, "magnitude": {}, "imp": {"epochs": 3}},
    "seeds": [0, 1],
    "train": {"epochs": 25},
    "analysis": {"null_samples": 2, "kinds": ["jaccard", "degree"]},
    "dense_reference": False,
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


def test_training_uses_train_batch_size_and_pruning_the_prune_data_one(monkeypatch: pytest.MonkeyPatch) -> None:
    from graphtickets.study.cell import run_cell
    from graphtickets.study.config import load_config

    cfg = {**TINY, "methods": ["snip"], "train": {"epochs": 1, "batch_size": 32},
           "prune_data": {"batch_size": 64, "batches": 2}, "dense_reference": False}
    (cell,) = expand_cells(cfg)
    seen: dict[str, int] = {}
    real_train, real_prune = gt.training.train, gt.pruning.prune

    def train(net, data, **kw):  # type: ignore[no-untyped-def]
        data = list(data)
        seen["train"] = len(data[0][0])
        return real_train(net, data, **kw)

    def prune(model, method, *, data=None, **kw):  # type: ignore[no-untyped-def]
        data = list(data) if data is not None else None
        seen["prune"] = len(data[0][0]) if data else -1
        return real_prune(model, method, data=data, **kw)

    monkeypatch.setattr(gt.training, "train", train)
    monkeypatch.setattr(gt.pruning, "prune", prune)
    out = run_cell(cell.config, cell_id=cell.id)
    assert out.ok and seen == {"train": 32, "prune": 64}
    assert load_config(cfg).train.batch_size == 32


def expand_cells(cfg: dict) -> list:  # type: ignore[type-arg]
    from graphtickets.study import expand, load_config

    return expand(load_config(cfg))


def _tiny_yaml(tmp_path: Path, **over: object) -> Path:
    cfg = {**TINY, "name": "tinyq", "densities": [0.2, 0.1], "seeds": [0, 1],
           "quick": {"seeds": [0], "densities": [0.2], "train": {"epochs": 1}}, **over}
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_quick_through_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _tiny_yaml(tmp_path)
    out = tmp_path / "quick"
    assert _cli("run", str(cfg), "--quick", "--out", str(out), "--no-progress", "--device", "cpu") == 0
    assert "4/4 cells done" in capsys.readouterr().out  # 3 methods x 1 density x 1 seed + dense
    tk = pd.read_csv(out / "tables" / "tickets.csv")
    assert set(tk["seed"]) == {0} and set(tk["density"]) == {0.2, 1.0}
    assert "--quick" in (out / "report.md").read_text()
    with pytest.raises(gt.errors.ConfigError, match="--device: unknown device 'tpu'"):
        _cli("run", str(cfg), "--quick", "--out", str(out), "--device", "tpu")


def test_progress_off_a_terminal_is_one_line_per_finished_cell(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = {**TINY, "methods": ["random", "magnitude"], "dense_reference": False, "analysis": {"null_samples": 2}}
    run(cfg, tmp_path / "p", progress=True, report=False)
    err = capsys.readouterr().err.splitlines()
    cells = [ln for ln in err if "tiny cells:" in ln]
    assert len(cells) == 2 and cells[0].startswith("[1/2 ") and "accuracy" in cells[0]
    assert any("tiny comparisons:" in ln for ln in err)


def test_scheduler_address_of_a_running_local_cluster(tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    from dask.distributed import LocalCluster

    cfg = {**KILL, "name": "sched", "seeds": [0], "train": {"epochs": 1}}
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        res = run(cfg, tmp_path / "s", scheduler=cluster.scheduler_address, progress=False, report=False)
    assert (res.done, res.failed, res.ran) == (3, 0, 3)
    assert not res.distances.empty and set(res.distances["kind"]) == {"jaccard", "degree", "netlsd"}
    local = run(cfg, tmp_path / "l", progress=False, report=False)
    pd.testing.assert_frame_equal(local.distances, res.distances, check_exact=True)
    with pytest.raises(gt.GraphticketsError, match="cannot reach the Dask scheduler"):
        run(cfg, tmp_path / "x", scheduler="tcp://127.0.0.1:9", progress=False, report=False, resume=False)


def test_a_second_run_on_the_same_folder_refuses_with_one_line(tmp_path: Path) -> None:
    cfg = tmp_path / "kill.yaml"
    cfg.write_text(yaml.safe_dump(KILL))
    env = {**os.environ, "PYTHONPATH": str(Path(gt.__file__).resolve().parents[1])}
    out = tmp_path / "busy"
    first = subprocess.Popen([*_cmd(), str(cfg), "--out", str(out), "--no-progress", "--no-report"], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not (out / "study.db").exists():
            time.sleep(0.05)
        assert first.poll() is None, "the first run ended before the second started"
        second = subprocess.run([*_cmd(), str(cfg), "--out", str(out), "--no-progress"], env=env,
                                capture_output=True, text=True, timeout=120)
        assert second.returncode == 2
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and "in use by another graphtickets run" in lines[0] and "--out" in lines[0]
    finally:
        first.kill()
        first.wait()
