"""The cluster path: dask-jobqueue job scripts for SLURM/PBS, and a real multi-process Dask
cluster (the ``dask scheduler`` / ``dask worker`` commands on localhost) running a study."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from graphtickets.cli import main
from graphtickets.errors import ConfigError, GraphticketsError
from graphtickets.study import cluster, run
from graphtickets.study.cluster import ClusterSpec, job_script

pytest.importorskip("dask_jobqueue")

ROOT = Path(__file__).resolve().parents[1]
ADDRESS = "tcp://10.9.8.7:8786"


def _lines(script: str) -> list[str]:
    return [ln.strip() for ln in script.splitlines() if ln.strip()]


def test_slurm_job_script():
    spec = ClusterSpec(system="slurm", queue="cpu", account="lab42", cores=8, memory="32GB", walltime="02:30:00",
                       jobs=4, prologue=("module load python/3.11", "source ~/venvs/gt/bin/activate"),
                       directives=("--gres=gpu:1",), python="/opt/py/bin/python")
    lines = _lines(job_script(spec, scheduler=ADDRESS))
    assert lines[0] == "#!/usr/bin/env bash"
    directives = [ln for ln in lines if ln.startswith("#SBATCH")]
    for want in ("#SBATCH -J graphtickets", "#SBATCH -p cpu", "#SBATCH -A lab42", "#SBATCH -n 1",
                 "#SBATCH --cpus-per-task=8", "#SBATCH -t 02:30:00", "#SBATCH --gres=gpu:1"):
        assert want in directives, (want, directives)
    mem = [d for d in directives if d.startswith("#SBATCH --mem=")]
    assert len(mem) == 1 and mem[0].endswith("G")  # 32 GB = 29.8 GiB, written in whole GiB
    # the prologue runs before the worker, in order
    body = [ln for ln in lines if not ln.startswith("#")]
    assert body[:2] == ["module load python/3.11", "source ~/venvs/gt/bin/activate"]
    cmd = body[-1].split()
    assert cmd[0] == "/opt/py/bin/python" and ADDRESS in cmd
    assert cmd[cmd.index("--nworkers") + 1] == "8" and cmd[cmd.index("--nthreads") + 1] == "1"
    # each of the 8 processes gets an eighth of the job's memory
    limit = cmd[cmd.index("--memory-limit") + 1]
    assert limit.endswith("GiB") and float(limit[:-3]) == pytest.approx(32e9 / 8 / 2**30, abs=0.01)
    assert spec.workers == 32


def test_pbs_job_script():
    spec = ClusterSpec(system="pbs", queue="workq", account="proj", cores=6, processes=3, memory="12GB",
                       walltime="10:00:00", directives=("-l place=scatter",))
    lines = _lines(job_script(spec, scheduler=ADDRESS))
    directives = [ln for ln in lines if ln.startswith("#PBS")]
    assert "#PBS -q workq" in directives and "#PBS -A proj" in directives
    assert "#PBS -l walltime=10:00:00" in directives and "#PBS -l place=scatter" in directives
    select = [d for d in directives if "select=" in d]
    assert len(select) == 1 and "ncpus=6" in select[0] and "mem=" in select[0]
    cmd = lines[-1].split()
    assert cmd[0] == sys.executable  # default: the driver's interpreter
    assert cmd[cmd.index("--nworkers") + 1] == "3" and cmd[cmd.index("--nthreads") + 1] == "2"


@pytest.mark.parametrize("bad,match", [
    ({"system": "lsf"}, "not supported"),
    ({"walltime": "2h"}, "HH:MM:SS"),
    ({"memory": "lots"}, "16GB"),
    ({"cores": 0}, ">= 1"),
    ({"cores": 2, "processes": 4}, "1..cores"),
    ({"partition": "cpu"}, "unknown cluster setting"),
])
def test_bad_settings_are_named(bad, match):
    with pytest.raises(ConfigError, match=match):
        ClusterSpec.from_mapping(bad, source="c.yaml")


def test_cli_prints_the_job_script_from_a_file_and_options(tmp_path, capsys):
    conf = tmp_path / "slurm.yaml"
    conf.write_text(yaml.safe_dump({"system": "slurm", "queue": "short", "cores": 4, "memory": "8GB",
                                    "walltime": "00:30:00", "jobs": 2, "prologue": ["source venv/bin/activate"]}))
    rc = main(["run", "--cluster", str(conf), "--queue", "long", "--walltime", "04:00:00",
               "--prologue", "export OMP_NUM_THREADS=1", "--print-job-script"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "#SBATCH -p long" in out and "#SBATCH -t 04:00:00" in out  # options win over the file
    assert out.index("source venv/bin/activate") < out.index("export OMP_NUM_THREADS=1")
    assert main(["run", "--cluster", "pbs", "--cores", "2", "--print-job-script"]) == 0
    assert "#PBS" in capsys.readouterr().out
    # options without --cluster, and --cluster with --scheduler: one line, exit 2
    assert main(["run", "--queue", "cpu"]) == 2
    assert "need --cluster" in capsys.readouterr().err
    assert main(["run", "--cluster", "slurm", "--scheduler", ADDRESS, "--print-job-script"]) == 2
    assert "not both" in capsys.readouterr().err
    assert main(["run", "--cluster", "nowhere.yaml"]) == 2


def test_from_args_starts_and_stops_a_cluster(monkeypatch):
    """``--cluster`` hands the started cluster's scheduler address to the study and closes it."""
    events = []

    class FakeCluster:
        scheduler_address = "tcp://127.0.0.1:1234"

        def __init__(self, **kw):
            events.append(("init", kw["cores"], kw["queue"]))

        def scale(self, jobs):
            events.append(("scale", jobs))

        def close(self):
            events.append(("close",))

    import dask_jobqueue

    monkeypatch.setattr(dask_jobqueue, "SLURMCluster", FakeCluster)
    args = type("A", (), {"cluster": "slurm", "queue": "q", "cores": 3, "jobs": 5, "scheduler": None})()
    with cluster.from_args(args) as address:
        assert address == FakeCluster.scheduler_address
    assert events == [("init", 3, "q"), ("scale", 5), ("close",)]


# ---------------------------------------------------------------------------- a real cluster
TINY = {
    "name": "tiny",
    "datasets": ["digits"],
    "models": [{"name": "mlp", "widths": [16, 16]}],
    "methods": {"random": {"scope": "global"}, "magnitude": {}},
    "densities": [0.2],
    "seeds": [0],
    "train": {"epochs": 1},
    "analysis": {"null_samples": 2},
}
TIMING = ["seconds", "search_seconds", "train_seconds"]


def _stable(df: pd.DataFrame) -> pd.DataFrame:
    return df.drop(columns=[c for c in TIMING if c in df]).sort_values("id").reset_index(drop=True)


@pytest.fixture
def dask_cluster(tmp_path):
    """``dask scheduler`` and ``dask worker --nworkers 2`` as separate processes on localhost."""
    dask_cmd = Path(sys.executable).parent / "dask"
    if not dask_cmd.exists():
        pytest.skip("the dask command is not installed next to this Python")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    sched_file = tmp_path / "scheduler.json"
    logs = [open(tmp_path / f"{n}.log", "w") for n in ("scheduler", "worker")]  # noqa: SIM115
    procs = [subprocess.Popen([str(dask_cmd), "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                               "--scheduler-file", str(sched_file)], env=env, stdout=logs[0], stderr=logs[0],
                              cwd=tmp_path)]
    try:
        deadline = time.monotonic() + 60
        while not sched_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert sched_file.exists(), (tmp_path / "scheduler.log").read_text()
        time.sleep(0.2)  # the file is written whole, but give the writer a moment
        address = json.loads(sched_file.read_text())["address"]
        procs.append(subprocess.Popen([str(dask_cmd), "worker", address, "--nworkers", "2", "--nthreads", "1",
                                       "--host", "127.0.0.1", "--no-dashboard", "--local-directory", str(tmp_path)],
                                      env=env, stdout=logs[1], stderr=logs[1], cwd=tmp_path))
        from dask.distributed import Client

        with Client(address, timeout="30s") as client:
            client.wait_for_workers(2, timeout=90)
        yield address
    finally:
        if len(procs) == 2:  # ask the scheduler to close itself and its workers (quicker than signals)
            from dask.distributed import Client

            with contextlib.suppress(Exception), Client(address, timeout="10s") as client:
                client.shutdown()
        for p in reversed(procs):
            if p.poll() is None:
                p.terminate()
        for p in reversed(procs):
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        for f in logs:
            f.close()


@pytest.mark.slow
def test_study_on_a_real_multiprocess_cluster(tmp_path, dask_cluster, capsys):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(TINY, sort_keys=False))  # the grid (and pair) order is the file's
    assert main(["run", str(cfg), "--out", str(tmp_path / "remote"), "--scheduler", dask_cluster,
                 "--no-progress", "--no-report"]) == 0
    assert "Dask scheduler" in (tmp_path / "remote" / "study.log").read_text()
    local = run(TINY, tmp_path / "local", progress=False, report=False)
    assert local.failed == 0 and local.done == 3  # two tickets and the dense reference
    for table in ("tickets", "distances"):
        a = pd.read_csv(tmp_path / "local" / "tables" / f"{table}.csv")
        b = pd.read_csv(tmp_path / "remote" / "tables" / f"{table}.csv")
        if table == "tickets":
            a, b = _stable(a), _stable(b)
        else:
            keys = ["group", "kind", "a", "b"]
            a = a.sort_values(keys).reset_index(drop=True)
            b = b.sort_values(keys).reset_index(drop=True)
        pd.testing.assert_frame_equal(a, b, check_exact=True)


def test_cluster_errors_are_one_line():
    with pytest.raises(GraphticketsError, match="need --cluster"):
        cluster.spec_from_args(type("A", (), {"cluster": None, "jobs": 3})())
