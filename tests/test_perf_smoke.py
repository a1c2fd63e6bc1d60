"""Smoke test of the performance suite: every benchmark once on tiny sizes, so it cannot rot.

Timings are not checked (they are noisy and belong to ``python -m benchmarks.perf``); the
rows are: every figure has a finite positive time, every baseline row a finite ratio equal
to baseline / ours, and the suite runner writes perf.csv / perf.md / perf.png.
"""

from __future__ import annotations

import importlib
import math
from pathlib import Path

import pandas as pd
import pytest

from benchmarks.perf import report

SUITES = ("training", "pruning", "graphs", "analysis", "study")


def _check_rows(df: pd.DataFrame, suite: str) -> None:
    assert not df.empty, f"{suite}: no rows"
    assert "error" not in df or df["error"].isna().all(), df.get("error")
    assert (df["ours_median"] > 0).all() and df["ours_median"].map(math.isfinite).all()
    with_base = df[df["base_median"].notna()] if "base_median" in df else df.iloc[0:0]
    assert not with_base.empty, f"{suite}: no figure against a baseline"
    for _, r in with_base.iterrows():
        assert math.isfinite(r["ratio"]) and r["ratio"] > 0
        assert r["ratio"] == pytest.approx(r["base_median"] / r["ours_median"])
        assert r["ours_min"] <= r["ours_median"] <= r["ours_max"]


@pytest.mark.parametrize("suite", SUITES)
def test_benchmark_runs_tiny(suite: str, tmp_path: Path) -> None:
    mod = importlib.import_module(f"benchmarks.perf.bench_{suite}")
    df = mod.run(True, tmp_path)
    _check_rows(df, suite)
    assert list(tmp_path.glob(f"bench_{suite}*.csv")), "the suite's own CSV is written"
    assert df["target"].notna().any(), f"{suite}: a figure with a target"  # every suite has one
    if suite == "pruning":
        syn = df[df["case"].str.contains("synflow")]
        assert not syn.empty and syn["identical_mask"].astype(bool).all(), "SynFlow must give the straightforward mask"
    if suite == "training":
        batched, loop = df[df["case"].str.startswith("batched_")], df[df["case"].str.startswith("loop_")]
        assert not batched.empty and not loop.empty, "the training suite compares batched and loop training"
        assert (batched["max_acc_diff"] <= 0.002).all(), "batched and one-by-one training give the same tickets"
        assert loop["same_weights"].astype(bool).all(), "train() = the plain loop"


def test_report_tables_and_met(tmp_path: Path) -> None:
    df = pd.DataFrame([
        {"suite": "a", "case": "fast", "ours_median": 1.0, "ours_min": 0.9, "ours_max": 1.1, "ours_repeat": 5,
         "base_median": 6.0, "base_min": 6.0, "base_max": 6.0, "base_repeat": 5, "baseline": "b", "ratio": 6.0,
         "target": 5.0, "identical_mask": True},
        {"suite": "a", "case": "differs", "ours_median": 1.0, "base_median": 9.0, "baseline": "b", "ratio": 9.0,
         "target": 5.0, "identical_mask": False},
        {"suite": "a", "case": "slow", "ours_median": 2.0, "base_median": 1.0, "baseline": "b", "ratio": 0.5,
         "target": 0.1},
        {"suite": "a", "case": "free", "ours_median": 2.0, "base_median": 3.0, "baseline": "b", "ratio": 1.5},
    ])  # fmt: skip
    assert [report.met(r) for _, r in df.iterrows()] == [True, False, True, None]
    paths = report.write_all(df, tmp_path, command="python -m benchmarks.perf")
    md = paths["md"].read_text()
    assert "| a/fast |" in md and "| yes |" in md and "**no**" in md and "mask differs" in md
    targets, other = md.split("## Other figures")
    assert "a/free" in other and "a/free" not in targets
    assert paths["png"].stat().st_size > 0
    assert len(pd.read_csv(paths["csv"])) == 4


def test_suite_runner_writes_outputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from benchmarks.perf import bench_pruning
    from benchmarks.perf.__main__ import main

    # the runner's plumbing (the suites themselves ran above): one real figure, then a failing suite
    mask_rows = bench_pruning.magnitude_vs_torch(bench_pruning.gt.models.build("mlp", in_shape=(8,), num_classes=3), 0.5, 1)
    fig = {"suite": "pruning", "case": "mlp_magnitude", "ours_median": mask_rows["ours"].median,
                        "base_median": mask_rows["base"].median, "baseline": "torch",
                        "ratio": mask_rows["base"].median / mask_rows["ours"].median, "target": 0.0}  # fmt: skip
    monkeypatch.setattr(bench_pruning, "run", lambda tiny, out: pd.DataFrame([fig] * 4))
    assert main(["--tiny", "--only", "pruning", "--out", str(tmp_path)]) == 0
    df = pd.read_csv(tmp_path / "perf.csv")
    assert (df["bench"] == "pruning").all() and len(df) == 4
    assert df["ratio"].tolist() == pytest.approx([fig["ratio"]] * 4)  # the suite's figures, as returned
    assert "## Targets" in (tmp_path / "perf.md").read_text()
    assert (tmp_path / "perf.png").exists()
    assert main(["--only", "nonsense", "--out", str(tmp_path)]) == 2

    def broken(tiny: bool, out: Path) -> pd.DataFrame:
        raise RuntimeError("boom")

    monkeypatch.setattr(bench_pruning, "run", broken)
    assert main(["--tiny", "--only", "pruning", "--out", str(tmp_path)]) == 1
    assert "boom" in (tmp_path / "perf.md").read_text()


def test_layer_collapse_sweep_runs_tiny(tmp_path: Path) -> None:
    """benchmarks/layer_collapse (Tanaka et al. Fig. 1) end to end on a tiny model, 2 values of c."""
    from benchmarks import layer_collapse

    rows = layer_collapse.sweep(tmp_path, cs=[1.0, 3.0], model_name="conv2", width=0.125, n_batches=1,
                                batch_size=8, num_classes=10, rounds=3, dataset="synthetic")  # fmt: skip
    assert {r["method"] for r in rows} == set(layer_collapse.METHODS) and len(rows) == 2 * len(layer_collapse.METHODS)
    for r in rows:
        assert 0 <= r["empty"] <= r["collapsed"] <= r["layers"] and r["data"] == "synthetic"
        assert isinstance(r["kept"], int) and r["kept"] > 0
    assert (tmp_path / "layer_collapse.csv").exists() and (tmp_path / "layer_collapse.png").stat().st_size > 0
    first = layer_collapse.first_collapse(rows)
    assert set(first) == set(layer_collapse.METHODS)


def test_default_study_benchmark_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``bench_default_study`` (not in the tiny suite run: three whole studies take ~50 s even on
    digits) with the command timer replaced: the three ways are run with their flags, the rows
    give one process / default and before / default, and the cell count comes from the command's
    last line."""
    from benchmarks.perf import bench_default_study as B

    calls: list[list[str]] = []
    fake = {"default": 2.0, "one_process": 3.0, "before": 5.0}

    def wall(cmd: list[str]) -> tuple[float, str]:
        calls.append(cmd)
        mode = Path(cmd[cmd.index("--out") + 1]).name.rstrip("0123456789")
        return fake[mode], f"{mode}: 7/7 cells done (7 run now, 0 failed) in 1s; report: x"

    monkeypatch.setattr(B, "wall_time", wall)
    df = B.run(True, tmp_path, repeat=2)
    assert [c[c.index("--out") + 2 :] for c in calls[:3]] == [["--no-progress"], ["--no-progress", "--workers", "1"],
                                                               ["--no-progress", "--workers", "1", "--one-by-one"]]
    assert len(calls) == 6
    _check_rows(df, "default_study")
    rows = df.set_index("case")
    assert rows.loc["default_study_default_vs_one_process", "ratio"] == pytest.approx(1.5)
    assert rows.loc["default_study_default_vs_before", "ratio"] == pytest.approx(2.5)
    assert (df["size"] == 7).all()
    assert len(pd.read_csv(tmp_path / "bench_default_study.csv")) == 6
