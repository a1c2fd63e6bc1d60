"""A rerun with nothing new: ``graphtickets run CONFIG --out DIR`` on a finished study, cold process.

Timed as a user runs it: a fresh ``python -m graphtickets run ...`` process each time (the
interpreter's start and every import included), on a study folder whose store, tickets,
config and package did not change. Side by side in one run, alternating:

- ``fast``: the command as it is (the stamp of the last full run is there; decided with the
  standard library only, :mod:`graphtickets.study.rerun`);
- ``full``: the same command after removing the stamp (``rerun`` entry of
  ``report.inputs.json``), so it takes the full path: torch, pandas and pydantic imports,
  config validation, grid expansion, ticket verification, store digest, and at the end the
  stamp's own verification (which writes the stamp back for the next ``fast`` run).

Also timed: the import of the command line (``import graphtickets.cli; build_parser()``)
in a fresh process, which is what every ``graphtickets`` command pays before it starts.

Without ``--study DIR`` the study is the bundled default with ``--quick``, built first into a
temporary folder (a few minutes; ``--tiny``: a 3-cell study on ``digits``).

Usage::

    python -m benchmarks.perf.bench_rerun [--study DIR [--config CONFIG]] [--repeat 5] [--tiny] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
from pathlib import Path

import pandas as pd

from benchmarks.perf.harness import Timing, row, study_command, wall_time

log = logging.getLogger("bench_rerun")

TINY = """name: rerun-bench
datasets: [digits]
models: [{name: mlp, widths: [16, 16]}]
methods: {random: {scope: global}, magnitude: {}}
densities: [0.2]
seeds: [0]
train: {epochs: 1}
analysis: {null_samples: 2}
"""


def _drop_stamp(out: Path) -> None:
    path = out / "report.inputs.json"
    stamp = json.loads(path.read_text())
    stamp.pop("rerun", None)
    path.write_text(json.dumps(stamp, indent=1, sort_keys=True) + "\n")


def run(tiny: bool = False, out: Path | str = Path("results/perf"), *, repeat: int | None = None,
        study: Path | None = None, config: str | None = None) -> pd.DataFrame:
    """Time the fast and the full rerun side by side; return the harness rows (ratio = full / fast)."""
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    repeat = repeat or (2 if tiny else 5)
    with tempfile.TemporaryDirectory() as tmp:
        extra: list[str] = []
        if study is None:
            study = Path(tmp) / "study"
            if tiny:
                cfg = Path(tmp) / "tiny.yaml"
                cfg.write_text(TINY)
                config, extra = str(cfg), ["--workers", "1"]
            else:
                config, extra = None, ["--quick"]
            t_build, line = wall_time(study_command(config, study, extra))
            log.info("built the study in %.0f s: %s", t_build, line)
        cmd = study_command(config, study, extra)
        wall_time(cmd)  # the full path if the stamp is missing: writes it
        fast, full, rows = [], [], []
        for r in range(repeat):
            s_fast, line = wall_time(cmd)
            assert "(0 run now, 0 failed)" in line, line
            _drop_stamp(study)
            s_full, line = wall_time(cmd)
            assert "(0 run now, 0 failed)" in line, line
            fast.append(s_fast)
            full.append(s_full)
            rows.append({"repeat": r, "fast": s_fast, "full": s_full})
            log.info("rerun %d: fast %.2f s, full %.2f s", r, s_fast, s_full)
        imp = [wall_time([sys.executable, "-c", "import graphtickets.cli as c; c.build_parser()"])[0] for _ in range(repeat)]
        cells = line.split(":", 1)[1].split("cells")[0].strip()

    def timing(v: list[float]) -> Timing:
        return Timing(statistics.median(v), min(v), max(v), len(v))

    pd.DataFrame(rows).to_csv(out_dir / "bench_rerun.csv", index=False)
    summary = pd.DataFrame([
        row("rerun", "rerun_nothing_new", cells, timing(fast), timing(full), "the full path (stamp removed)",
            target_seconds=3.0, seconds_met=statistics.median(fast) < 3.0),
        row("rerun", "cli_import", "import graphtickets.cli + parser", timing(imp)),
    ])
    summary.to_csv(out_dir / "bench_rerun_summary.csv", index=False)
    return summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path("results/perf"))
    ap.add_argument("--repeat", type=int, default=None)
    ap.add_argument("--tiny", action="store_true", help="a 3-cell study (smoke test)")
    ap.add_argument("--study", type=Path, default=None, help="a finished study folder to rerun (default: build one)")
    ap.add_argument("--config", default=None, help="its config (default: the bundled default study)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    df = run(args.tiny, args.out, repeat=args.repeat, study=args.study, config=args.config)
    log.info("%s", df.to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
