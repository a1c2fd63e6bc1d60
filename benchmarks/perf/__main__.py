"""Run the performance suite: ``python -m benchmarks.perf [--tiny] [--only ...] [--out DIR]``.

Runs the benchmark modules (``training``, ``pruning``, ``graphs``, ``analysis``, ``study``, ``rerun``;
``default_study``, the whole default study three ways, only with ``--only``), each of which
times its figures side by side with a baseline in the same process, and writes
``DIR/perf.csv`` (every row of every suite), ``DIR/perf.md`` (tables: figure, ours, baseline,
ratio, target, met?) and ``DIR/perf.png`` (ratios vs targets, log scale), plus each suite's
own CSV. A suite that fails is recorded as an error row and the others still run.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import platform
import sys
import time
import traceback
from pathlib import Path

import pandas as pd

from benchmarks.perf import report

SUITES = ("training", "pruning", "graphs", "analysis", "study", "rerun")
#: Suites run only when named in ``--only`` (too long for the default run).
EXTRA_SUITES = ("default_study", "training_gpu")

log = logging.getLogger("benchmarks.perf")


def machine() -> str:
    """One line about where the numbers come from (CPU count, load, torch version)."""
    import torch

    load = ""
    try:
        load = " load " + ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        pass
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs,{load}; "
            f"Python {platform.python_version()}, torch {torch.__version__}")  # fmt: skip


def run_suites(names: list[str], *, tiny: bool, out: Path) -> pd.DataFrame:
    """Run the named suites in order; return all their rows (an error row for a failed suite)."""
    frames = []
    for name in names:
        t0 = time.perf_counter()
        log.info("== %s%s", name, " (tiny)" if tiny else "")
        try:
            mod = importlib.import_module(f"benchmarks.perf.bench_{name}")
            df = mod.run(tiny, out)
        except Exception as exc:  # noqa: BLE001 - one broken suite must not lose the others
            log.error("suite %s failed:\n%s", name, traceback.format_exc())
            df = pd.DataFrame([{"suite": name, "case": "(suite)", "error": f"{type(exc).__name__}: {exc}"}])
        df = df.copy()
        df.insert(0, "bench", name)
        frames.append(df)
        log.info("== %s done in %.1f s", name, time.perf_counter() - t0)
    return pd.concat(frames, ignore_index=True, sort=False) if frames else pd.DataFrame()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.perf", description=__doc__.splitlines()[0])
    ap.add_argument("--tiny", action="store_true", help="tiny sizes, 1-2 repeats (a smoke run: seconds)")
    ap.add_argument("--only", default=",".join(SUITES), help=f"comma-separated suites (default: {','.join(SUITES)})")
    ap.add_argument("--out", type=Path, default=Path("results/perf"), help="output folder (default results/perf)")
    ap.add_argument("--merge", action="store_true",
                    help="keep the other suites' rows of an existing DIR/perf.csv (re-run one suite when the machine is quieter)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in SUITES + EXTRA_SUITES]
    if unknown:
        sys.stderr.write(f"unknown suite(s) {', '.join(unknown)}; choose from {', '.join(SUITES + EXTRA_SUITES)}\n")
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    before = machine()
    cmd = "python -m benchmarks.perf" + (" --tiny" if args.tiny else "") + (
        f" --only {','.join(names)}" if names != list(SUITES) else "") + (" --merge" if args.merge else "")  # fmt: skip
    df = run_suites(names, tiny=args.tiny, out=args.out)
    old = args.out / "perf.csv"
    if args.merge and old.exists():
        kept = pd.read_csv(old)
        kept = kept[~kept["bench"].isin(names)]
        df = pd.concat([kept, df], ignore_index=True, sort=False)
        cmd += f" (after an earlier run of {', '.join(sorted(set(kept['bench'])))})"
    paths = report.write_all(df, args.out, command=cmd, machine=f"before: {before}; after: {machine()}")
    sys.stdout.write(paths["md"].read_text())
    sys.stdout.write(f"\nwrote {paths['csv']}, {paths['md']}, {paths['png']}\n")
    return 1 if "error" in df and df["error"].notna().any() else 0


if __name__ == "__main__":
    raise SystemExit(main())
