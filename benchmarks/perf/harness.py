"""Shared timing helpers of the performance suite.

Every figure is measured side by side with its baseline in the same process: ``compare``
times both (median of ``repeat`` runs, with min/max as the spread) and reports the ratio
``baseline / ours`` (> 1 means we are faster).
"""

from __future__ import annotations

import gc
import os
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = ["Timing", "time_it", "peak_mb", "row", "wall_time", "study_command"]


@dataclass
class Timing:
    median: float
    min: float
    max: float
    repeat: int

    def __str__(self) -> str:
        return f"{self.median:.4g}s [{self.min:.3g}, {self.max:.3g}] x{self.repeat}"


def time_it(fn: Callable[[], Any], *, repeat: int = 5, warmup: int = 1) -> Timing:
    """Median, min and max wall time of ``fn()`` over ``repeat`` runs (after ``warmup`` runs)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return Timing(statistics.median(times), min(times), max(times), repeat)


def peak_mb(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Peak Python-heap + numpy memory (tracemalloc, MB) allocated while running ``fn()``."""
    gc.collect()
    tracemalloc.start()
    try:
        out = fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak / 2**20, out


def row(suite: str, case: str, size: Any, ours: Timing, baseline: Timing | None = None,
        baseline_name: str = "", **extra: Any) -> dict[str, Any]:
    """One CSV row: ours and the baseline's timings, and the ratio baseline/ours."""
    out: dict[str, Any] = {"suite": suite, "case": case, "size": size}
    out.update({f"ours_{k}": v for k, v in asdict(ours).items()})
    if baseline is not None:
        out.update({f"base_{k}": v for k, v in asdict(baseline).items()})
        out["baseline"] = baseline_name
        out["ratio"] = baseline.median / ours.median if ours.median > 0 else float("inf")
    out.update(extra)
    return out


def _env() -> dict[str, str]:
    root = str(Path(__file__).resolve().parents[2])
    return {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}


def wall_time(cmd: list[str]) -> tuple[float, str]:
    """Run ``cmd`` as a fresh process (the repository on its path); its wall seconds and the last
    line of its output. A failing command raises with the end of its stderr."""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_env(), check=False)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return seconds, proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""


def study_command(config: str | None, out: Path, extra: list[str]) -> list[str]:
    """``python -m graphtickets run [CONFIG] --out OUT --no-progress EXTRA...``."""
    return [sys.executable, "-m", "graphtickets", "run", *([config] if config else []), "--out", str(out),
            "--no-progress", *extra]
