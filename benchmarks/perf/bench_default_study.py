"""The default study's wall time, the whole ``graphtickets run`` command, before and after issue 18.

Timed as a user runs it: a fresh ``python -m graphtickets run [CONFIG] --out DIR`` process into
a new temporary folder each time (set-up aside: the package is installed), so every run does
all the work (cells, IMP trajectories, comparisons, functional distances, report and figures).
Three ways, one after the other, ``repeat`` times:

- ``default``: the command as it is (all cores: two worker processes on a 2-core machine,
  tickets of one density, seed and replicate trained together);
- ``one_process``: ``--workers 1`` (everything in the command's own process, still batched);
- ``before``: ``--workers 1 --one-by-one``, the study as it ran before issue 18 (one process
  unless ``--workers`` was given, one ticket trained at a time).

Writes ``bench_default_study.csv`` (one row per run) and ``bench_default_study_summary.csv``.
Rows (harness format): ``default_study_default_vs_one_process`` (ratio = one process / default)
and ``default_study_default_vs_before`` (ratio = before / default), with the cell count. The
default study takes ~6 minutes with two workers and ~11 in one process on the 2-core machine,
so this suite is not part of ``python -m benchmarks.perf``'s default list: run it with
``--only default_study`` or directly. ``--tiny`` times a 4-cell study on ``digits`` instead.

Usage::

    python -m benchmarks.perf.bench_default_study [--config CONFIG] [--repeat 1] [--tiny] [--out DIR]
"""

from __future__ import annotations

import argparse
import logging
import re
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from benchmarks.perf.harness import Timing, row, study_command, wall_time

log = logging.getLogger("bench_default_study")

TINY = """name: default-study-bench
datasets: [digits]
models: [{name: mlp, widths: [16, 16]}]
methods: {random: {scope: global}, magnitude: {}}
densities: [0.2, 0.05]
seeds: [0]
train: {epochs: 1}
analysis: {null_samples: 2}
"""

MODES: dict[str, list[str]] = {
    "default": [],
    "one_process": ["--workers", "1"],
    "before": ["--workers", "1", "--one-by-one"],
}


def _cells(line: str) -> int | None:
    """The cell count of the command's last line (``243/243 cells done (...)``)."""
    m = re.search(r"(\d+)/(\d+) cells done", line)
    return int(m.group(2)) if m else None


def run(tiny: bool = False, out: Path | str = Path("results/perf"), *, repeat: int | None = None,
        config: str | None = None) -> pd.DataFrame:
    """Time the three ways (see the module docstring); return the harness rows."""
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    repeat = repeat or 1
    raw: list[dict[str, Any]] = []
    cells: int | None = None
    with tempfile.TemporaryDirectory() as tmp:
        if tiny:
            cfg = Path(tmp) / "tiny.yaml"
            cfg.write_text(TINY)
            config = str(cfg)
        for r in range(repeat):
            for mode, extra in MODES.items():
                s, line = wall_time(study_command(config, Path(tmp) / f"{mode}{r}", extra))
                assert ", 0 failed)" in line, line
                cells = _cells(line) or cells
                raw.append({"mode": mode, "repeat": r, "seconds": s, "cells": cells, "last_line": line})
                log.info("%s repeat %d: %.1f s (%s)", mode, r, s, line)
    pd.DataFrame(raw).to_csv(out_dir / "bench_default_study.csv", index=False)
    summary = summarize(pd.DataFrame(raw), "tiny" if tiny else (config or "bundled default"))
    summary.to_csv(out_dir / "bench_default_study_summary.csv", index=False)
    return summary


def summarize(raw: pd.DataFrame, config: str) -> pd.DataFrame:
    """The harness rows from the raw runs (``mode``, ``seconds``, ``cells`` columns)."""

    def timing(mode: str) -> Timing:
        v = raw.loc[raw["mode"] == mode, "seconds"].tolist()
        return Timing(statistics.median(v), min(v), max(v), len(v))

    cells = int(raw["cells"].dropna().iloc[-1]) if raw["cells"].notna().any() else None
    d = timing("default")
    return pd.DataFrame([
        row("study", "default_study_default_vs_one_process", cells, d, timing("one_process"), "--workers 1 (one process)",
            config=config),
        row("study", "default_study_default_vs_before", cells, d, timing("before"),
            "--workers 1 --one-by-one (before issue 18)", config=config),
    ])  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path("results/perf"))
    ap.add_argument("--repeat", type=int, default=None)
    ap.add_argument("--tiny", action="store_true", help="a 4-cell study on digits (smoke test)")
    ap.add_argument("--config", default=None, help="a study config (default: the bundled default study)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    df = run(args.tiny, args.out, repeat=args.repeat, config=args.config)
    log.info("%s", df.to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
