"""The study subcommands of ``graphtickets``: ``run`` and ``report``.

:func:`add_commands` adds them to a parser's subcommands (:data:`COMMANDS` one by one, for
:func:`graphtickets.cli.main.build_parser`); each handler takes the parsed arguments and
returns an exit code. Bad input raises a :class:`~graphtickets.errors.GraphticketsError`,
which the top level prints as one line. The commands on ticket files (``compare``, ``graph``,
...) are in :mod:`graphtickets.cli.tickets`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from graphtickets.errors import GraphticketsError

__all__ = ["COMMANDS", "add_commands", "cmd_run", "cmd_report"]


def cmd_run(args: argparse.Namespace) -> int:
    """``graphtickets run [CONFIG] [--out DIR] [--quick] [--workers N] [--scheduler ADDR | --cluster ...] [--device DEV]``.

    A rerun that has nothing to do is answered before torch loads
    (:func:`graphtickets.study.rerun.nothing_to_do`); a full run that leaves nothing to do
    records that for the next one (:func:`graphtickets.study.rerun.record`).
    """
    from graphtickets.study import rerun

    done = rerun.nothing_to_do(args)
    if done is not None:
        print(done)
        return 0
    from graphtickets.study import cluster
    from graphtickets.study.runner import run

    if args.config is not None and Path(args.config).is_dir():
        raise GraphticketsError(f"{args.config!r} is a folder; give a study YAML file (see benchmarks/studies/)")
    if cluster.print_job_script(args):
        return 0
    with cluster.from_args(args) as scheduler:  # --scheduler, or the scheduler of a --cluster
        res = run(
            args.config, args.out, workers=args.workers, scheduler=scheduler, resume=not args.restart,
            quick=args.quick, progress=not args.no_progress, report=not args.no_report, device=args.device,
            batched=not args.one_by_one,
        )
    print(f"{res.out_dir}: {res.done}/{res.cells} cells done ({res.ran} run now, {res.failed} failed) "
          f"in {res.seconds:.0f}s; report: {res.out_dir / 'report.html'}")
    for label, err in res.errors.items():
        print(f"  failed: {label}: {err}", file=sys.stderr)
    if res.failed:
        print(f"{res.failed} cell(s) failed (see {res.out_dir / 'study.log'}); run the same command again to retry them",
              file=sys.stderr)
        return 1
    if res.done == res.cells:
        rerun.record(args, res.cells)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """``graphtickets report DIR``: rebuild tables, figures and report from the store
    (:func:`graphtickets.study.rebuild.rebuild_report`)."""
    from graphtickets.study.rebuild import rebuild_report

    md, page = rebuild_report(Path(args.dir))
    print(f"{md}\n{page}")
    return 0


# ---------------------------------------------------------------------------- parser
def _add_run(subparsers: Any) -> None:
    r = subparsers.add_parser("run", help="run a study (default: the bundled MNIST-1D study)")
    r.add_argument("config", nargs="?", default=None,
                   help="study YAML (default: the bundled default study; a bare name like 'quick' picks a bundled one)")
    r.add_argument("--out", default=None, help="output folder (default: results/<study name>)")
    r.add_argument("--quick", action="store_true", help="the config's quick variant: 1 seed, 2 densities, few epochs")
    r.add_argument("--workers", type=int, default=None,
                   help="processes to run cells in (a Dask LocalCluster when N > 1); default: every usable core; "
                        "1: this process only")
    r.add_argument("--scheduler", default=None, metavar="ADDRESS", help="an existing Dask scheduler, tcp://host:port")
    r.add_argument("--device", default=None, metavar="DEVICE",
                   help="override the config's device: cpu, cuda, cuda:N or mps (cell ids do not change)")
    r.add_argument("--restart", action="store_true",
                   help="redo every cell instead of resuming (a broken study.db is moved aside as study.db.broken-<time>)")
    r.add_argument("--no-progress", action="store_true",
                   help="no progress bar (off a terminal: no per-cell lines on stderr)")
    r.add_argument("--no-report", action="store_true", help="write the tables but no figures or report")
    r.add_argument("--one-by-one", action="store_true",
                   help="train every ticket alone (default: tickets that train on the same batches together, where they can)")
    from graphtickets.study.cluster import add_arguments as add_cluster_arguments

    add_cluster_arguments(r)
    r.set_defaults(handler=cmd_run)


def _add_report(subparsers: Any) -> None:
    p = subparsers.add_parser("report", help="rebuild a study's tables, figures and report from its store")
    p.add_argument("dir", help="the study's output folder")
    p.set_defaults(handler=cmd_report)


#: Command name -> the function that adds it to an argparse subparsers object.
COMMANDS: dict[str, Callable[[Any], None]] = {"run": _add_run, "report": _add_report}


def add_commands(subparsers: Any) -> None:
    """Add ``run`` and ``report`` to an argparse subparsers object."""
    for add in COMMANDS.values():
        add(subparsers)
