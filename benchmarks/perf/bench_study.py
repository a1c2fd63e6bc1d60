"""Study throughput: cells per minute in one process vs a Dask LocalCluster of 2 workers.

The same grid (MNIST-1D, an MLP, 4 pruning methods x 4 densities x 2 seeds = 32 cells, 1
training epoch) is
run with :func:`graphtickets.study.run` twice into separate temporary folders: ``workers=1``
(cells one after the other in this process) and ``workers=2`` (a fresh ``LocalCluster`` of
two one-thread worker processes). Both use ONE torch thread per cell: the study's cells set
``torch.set_num_threads(1)`` themselves, Dask's workers start with ``OMP_NUM_THREADS=1``,
``OPENBLAS_NUM_THREADS=1`` (Dask's defaults) and the executor sets one torch thread on them,
and this benchmark pins the driver to one torch thread AND one thread in every native pool
(``threadpoolctl``: numpy/scipy's OpenBLAS, OpenMP) while it runs. Without the latter the
in-process run borrows the second core for its BLAS calls and the comparison is not 1 vs 2. So the comparison is one core against two cores, and
the ideal ratio is 2 (the machine here has two cores; the target is 1.6).

The time of a run is the wall time of ``gt.study.run(..., report=False)`` with the cheapest
analysis (one distance kind, no nulls), including the start and the shutdown of the
cluster, so the ratio is what a user gets. The cells are coarse (a 2x1024 MLP trained for one
epoch, graph measures of the ticket: 3-7 s each) and numerous enough (32) that scheduling,
the cluster's start and each worker's warm-up (imports, loading the data) are a small share.
The dataset is generated once into a shared cache before either run is timed.
Runs alternate (in-process, Dask, in-process, ...) ``repeat`` times (2 by default: a run
takes a minute; tiny: 1).

Usage::

    python -m benchmarks.perf.bench_study [--tiny] [--out DIR] [--repeat 3]
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from benchmarks.perf.harness import Timing, row

log = logging.getLogger("bench_study")


def grid(tiny: bool, root: str) -> dict[str, Any]:
    """The study config timed here (a plain mapping, as a YAML file would give)."""
    if tiny:
        model: dict[str, Any] = {"name": "mlp", "widths": [32, 32]}
        methods: dict[str, Any] = {"random": {}, "magnitude": {}}
        densities = [0.2, 0.05]
    else:
        model = {"name": "mlp", "widths": [1024, 1024]}
        methods = {"random": {}, "magnitude": {}, "snip": {}, "synflow": {}}
        densities = [0.2, 0.1, 0.05, 0.02]
    return {
        "name": "perf-study-tiny" if tiny else "perf-study",
        "datasets": [{"name": "mnist1d", "root": root}],
        "models": [model],
        "methods": methods,
        "densities": densities,
        "seeds": [0] if tiny else [0, 1],
        "train": {"epochs": 1, "batch_size": 128},
        "prune_data": {"batch_size": 128, "batches": 2},
        "analysis": {"kinds": ["jaccard"], "null_samples": 0, "mds_kind": "jaccard"},
    }


def _study_run() -> Any:
    import graphtickets as gt

    fn = getattr(gt.study, "run", None)
    if fn is None:  # the package's __init__ may not re-export it yet
        from graphtickets.study.runner import run as fn
    return fn


@contextlib.contextmanager
def _threads(n: int) -> Iterator[None]:
    """``n`` torch threads and ``n`` threads in every native pool (OpenBLAS of numpy/scipy,
    OpenMP) of this process, as Dask's workers get from ``OMP_NUM_THREADS=1`` etc."""
    import torch
    from threadpoolctl import threadpool_limits  # installed with scikit-learn

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        with threadpool_limits(limits=n):
            yield
    finally:
        torch.set_num_threads(before)


def _one(config: dict[str, Any], workers: int) -> tuple[float, int]:
    """Wall seconds of one fresh run and the number of finished cells."""
    run = _study_run()
    with tempfile.TemporaryDirectory(prefix=f"perf-study-w{workers}-") as tmp, _threads(1):
        t0 = time.perf_counter()
        res = run(config, Path(tmp) / "out", workers=workers, resume=False, progress=False, report=False)
        dt = time.perf_counter() - t0
    if res.failed:
        raise RuntimeError(f"{res.failed} of {res.cells} cells failed with workers={workers}: {res.errors}")
    return dt, int(res.done)


def run(tiny: bool = False, out: Path | str = Path("results/perf"), *, repeat: int | None = None) -> pd.DataFrame:
    """Time the grid in-process and on 2 Dask workers; one row (ratio = cells/min ratio, target 1.6)."""
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    rep = repeat if repeat is not None else (1 if tiny else 2)
    import graphtickets as gt

    with tempfile.TemporaryDirectory(prefix="perf-study-data-") as root:
        gt.data.load("mnist1d", split="train", root=root)  # generate the cache outside the timings
        gt.data.load("mnist1d", split="test", root=root)
        config = grid(tiny, root)
        local, dask, cells = [], [], 0
        for r in range(rep):
            s1, cells = _one(config, 1)
            s2, c2 = _one(config, 2)
            if c2 != cells:
                raise RuntimeError(f"in-process run finished {cells} cells, Dask run {c2}")
            local.append(s1)
            dask.append(s2)
            log.info("study repeat %d: %d cells in-process %.1fs, 2 Dask workers %.1fs", r, cells, s1, s2)
    ours = Timing(statistics.median(dask), min(dask), max(dask), rep)
    base = Timing(statistics.median(local), min(local), max(local), rep)
    df = pd.DataFrame([
        row("study", "dask2_vs_inprocess", cells, ours, base, "in-process (1 thread)", target=1.6,
            cells_per_min_dask=60 * cells / ours.median, cells_per_min_inprocess=60 * cells / base.median,
            grid=f"{config['models'][0]['name']}{tuple(config['models'][0]['widths'])} x "
                 f"{len(config['methods'])} methods x {len(config['densities'])} densities x {len(config['seeds'])} seeds, 1 epoch"),
    ])  # fmt: skip
    df.to_csv(out_dir / "bench_study.csv", index=False)
    return df


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiny", action="store_true", help="a 4-cell grid of a tiny MLP (smoke test)")
    ap.add_argument("--out", default="results/perf", help="folder for bench_study.csv")
    ap.add_argument("--repeat", type=int, default=None, help="alternating runs of each (default 2, tiny 1)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    df = run(args.tiny, args.out, repeat=args.repeat)
    sys.stdout.write(df.T.to_string() + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
