"""The study subcommands of ``graphtickets``: ``run``, ``report``, ``compare``, ``graph``.

:func:`add_commands` adds them to the top-level parser (:mod:`graphtickets.cli`); each
handler takes the parsed arguments and returns an exit code. Bad input raises a
:class:`~graphtickets.errors.GraphticketsError`, which the top level prints as one line.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from graphtickets.errors import GraphticketsError

__all__ = ["add_commands", "cmd_run", "cmd_report", "cmd_compare", "cmd_graph"]


def _out_file(path: str | Path, what: str) -> Path:
    """``path`` as a file to write: its folder is created; a directory there is an error."""
    from graphtickets.cli.common import check_out_file as check_out

    check_out(str(path), what)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    return out


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
    """``graphtickets report DIR``: rebuild tables, figures and report from the store."""
    from graphtickets.study.config import validate
    from graphtickets.study.grid import expand
    from graphtickets.study.report import write_report
    from graphtickets.study.store import DB_NAME, Store, check_db, folder_lock
    from graphtickets.study.tabular import sibling_table, tables, write_tables

    out = Path(args.dir)
    if not (out / DB_NAME).is_file():
        raise GraphticketsError(f"{out} holds no study ({DB_NAME} is missing); run `graphtickets run --out {out}` first")
    check_db(out)  # an empty or damaged store is named, and nothing is written
    with folder_lock(out), Store(out) as store:
        raw = store.get_meta("study")
        study = validate(raw, source=str(out / DB_NAME)) if raw else None
        cells = expand(study) if study is not None else None
        tk, dist = tables(store, cells)
        if tk.empty:  # never replace good outputs with an empty report
            raise GraphticketsError(
                f"{out / DB_NAME} holds no finished cell, so there is nothing to report; the existing tables and "
                f"report were left as they are (run `graphtickets run CONFIG --out {out}` to compute the cells)"
            )
        write_tables(out, tk, dist, sibling_table(store, cells))
        md, page = write_report(out, tk, dist, study=study, store=store)
        _mark_current(out, store, study, cells)
    print(f"{md}\n{page}")
    return 0


def _mark_current(out: Path, store: Any, study: Any, cells: Any) -> None:
    """Record the inputs the rebuilt tables and report came from (the next ``run`` then skips them)."""
    from graphtickets.study.runner import mark_built as _mark_built
    from graphtickets.study.runner import report_inputs

    digest = report_inputs(store, study, cells)
    for what in ("tables", "report"):
        _mark_built(out, what, digest)


def _out_file_check(path: str, what: str) -> None:
    from graphtickets.cli.common import check_out_file as check_out

    check_out(path, what)


def cmd_compare(args: argparse.Namespace) -> int:
    """``graphtickets compare T1 T2 ... [--kinds ...] [--nulls N] [--out CSV]``."""
    from graphtickets import analysis
    from graphtickets.cli.common import load_ticket as _load
    from graphtickets.cli.common import seed_option as _seed
    from graphtickets.cli.common import size_option as _size
    from graphtickets.data import batches, load

    if len(args.tickets) < 2:
        raise GraphticketsError("compare needs at least two ticket files")
    _size(args, "nulls", low=0, limit="null_samples")
    _seed(args)
    for k in args.kinds or []:
        analysis.DISTANCES.get_or_raise(k)
    if args.out:
        _out_file_check(args.out, "CSV")
    tickets = {}
    for p in args.tickets:
        name = Path(p).stem
        while name in tickets:
            name += "'"
        tickets[name] = _load(p, args)
    first = next(iter(tickets.values()))
    model = first.build_model() if first.config.get("model") else None
    data, kinds = None, args.kinds
    if args.functional:  # what trained tickets compute on the dataset's test split
        from graphtickets.cli.common import check_fits as _check_fits

        dataset = args.dataset or first.config.get("dataset")
        if not dataset:
            raise GraphticketsError("the tickets record no dataset; pass --dataset NAME for --functional")
        _check_fits(first, dataset, args.tickets[0])
        test = load(dataset, split="test", root=args.root)
        data = batches(test, batch_size=1000, shuffle=False)
        kinds = kinds or list(analysis.FUNCTION_KINDS)
    table = analysis.compare(tickets, model, kinds=kinds, null_samples=args.nulls, seed=args.seed, data=data,
                                effective=args.effective)
    with_pd = table.copy()
    print(with_pd.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    if args.out:
        table.to_csv(_out_file(args.out, "CSV"), index=False)
        print(f"wrote {args.out}")
    return 0


def cmd_graph(args: argparse.Namespace) -> int:
    """``graphtickets graph TICKET --format graphml|edgelist|pyg [--kind layered|relational] [--out PATH]``."""
    from graphtickets.cli.common import load_ticket as _load
    from graphtickets.graphs import layered_graph, relational_graph

    if args.out:
        _out_file_check(args.out, "graph")
    ticket = _load(args.ticket, args)
    if not ticket.config.get("model"):
        raise GraphticketsError(f"{args.ticket} records no model spec; graphs need the architecture")
    model = ticket.build_model()
    g = layered_graph(model, ticket) if args.kind == "layered" else relational_graph(model, ticket)
    ext = {"graphml": ".graphml", "edgelist": ".edgelist", "pyg": ".pt"}[args.format]
    out = _out_file(args.out or Path(args.ticket).with_suffix("").as_posix() + f".{args.kind}{ext}", "graph")
    if args.format == "pyg":
        import torch

        torch.save(g.to_pyg(), out)
    else:
        g.write(out, args.format)
    n_edges = int(g.adjacency.nnz)
    print(f"{out}: {args.kind} graph, {g.adjacency.shape[0]} nodes, {n_edges} edges ({args.format})")
    return 0


def add_commands(subparsers: Any) -> None:
    """Add ``run``, ``report``, ``compare`` and ``graph`` to an argparse subparsers object."""
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

    p = subparsers.add_parser("report", help="rebuild a study's tables, figures and report from its store")
    p.add_argument("dir", help="the study's output folder")
    p.set_defaults(handler=cmd_report)

    c = subparsers.add_parser("compare", help="pairwise distances between ticket files")
    c.add_argument("tickets", nargs="+", help="ticket files (.safetensors)")
    c.add_argument("--kinds", nargs="+", default=None, help="distance kinds (default: every default kind)")
    c.add_argument("--nulls", type=int, default=0, help="shuffled null samples per pair (adds z-scores)")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--out", default=None, help="also write the table as CSV")
    c.add_argument("--allow-large", action="store_true", help="lift the documented limit of --nulls")
    c.add_argument("--no-verify", action="store_true", help="read tickets whose sha256 is missing or wrong")
    c.add_argument("--functional", action="store_true",
                   help="functional distances (agreement, kappa, error consistency, CKA) of trained tickets "
                        "(files from `graphtickets train --save-weights`) on the dataset's test split")
    c.add_argument("--dataset", default=None, help="dataset for --functional (default: the one the tickets record)")
    c.add_argument("--root", default=None, help="data folder")
    c.add_argument("--effective", action="store_true", help="structural distances on the effective masks")
    c.set_defaults(handler=cmd_compare)

    g = subparsers.add_parser("graph", help="export a ticket's graph")
    g.add_argument("ticket", help="ticket file")
    g.add_argument("--format", choices=("graphml", "edgelist", "pyg"), default="graphml")
    g.add_argument("--kind", choices=("layered", "relational"), default="layered")
    g.add_argument("--out", default=None, help="output file (default: next to the ticket)")
    g.add_argument("--no-verify", action="store_true", help="read a ticket whose sha256 is missing or wrong")
    g.set_defaults(handler=cmd_graph)
