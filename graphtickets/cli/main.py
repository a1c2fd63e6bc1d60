"""The ``graphtickets`` command.

Subcommands: ``datasets``, ``models``, ``methods`` list what exists; ``prune`` writes a ticket
file; ``train`` trains a ticket and records its accuracy; ``info`` prints a ticket's provenance
and layer densities; ``run``, ``report``, ``compare``, ``graph`` drive studies (see
:mod:`graphtickets.cli.study`); ``import`` and ``export`` read and write other tools' files
(:mod:`graphtickets.interop`).

Exit codes: 0 done; 1 a study finished with failed cells (``run``; re-run to retry them);
2 bad input or a failure, as one line ``graphtickets: error: ...`` on stderr (``-vv`` adds the
traceback); 130 interrupted (Ctrl-C); 141 the reader of our output went away (``| head``),
quietly. Every option is checked before any file is written.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from graphtickets._version import __version__
from graphtickets.cli.common import (
    check_fits,
    check_out_file,
    checked,
    load_ticket,
    number_option,
    parse_assignments,
    seed_option,
    size_option,
)
from graphtickets.errors import GraphticketsError

__all__ = ["main", "build_parser", "parse_assignments"]

log = logging.getLogger("graphtickets")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"graphtickets: error: {message} (see `{self.prog} --help`)\n")


def _table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(header, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines)


# ---------------------------------------------------------------------------- listings
def _cmd_datasets(args: argparse.Namespace) -> int:
    from graphtickets import data

    rows = []
    for name in sorted(data.DATASETS):
        i = data.info(name)
        rows.append((name, "x".join(map(str, i.in_shape)), str(i.num_classes), getattr(i, "description", "")))
    print(_table(rows, ("dataset", "input", "classes", "description")))
    return 0


def _cmd_models(args: argparse.Namespace) -> int:
    from graphtickets import models

    rows = []
    for name in sorted(models.MODELS):
        entry = models.MODELS[name]
        doc = (getattr(entry, "__doc__", None) or "").strip().splitlines()
        rows.append((name, doc[0] if doc else ""))
    print(_table(rows, ("model", "description")))
    return 0


def _cmd_methods(args: argparse.Namespace) -> int:
    from graphtickets import pruning

    rows = []
    for name in sorted(pruning.METHODS):
        spec = pruning.METHODS[name]
        rows.append((name, spec.kind, "yes" if spec.needs_data else "no", spec.summary, spec.reference))
    print(_table(rows, ("method", "kind", "data", "summary", "paper")))
    return 0


# ---------------------------------------------------------------------------- tickets
def _cmd_prune(args: argparse.Namespace) -> int:
    from graphtickets import data, models, pruning
    from graphtickets.study.config import check_hparam_values
    from graphtickets.ticket import check_density

    spec = pruning.METHODS.get_or_raise(args.method)
    check_density(args.density, "--density")
    seed_option(args)
    size_option(args, "batch-size", low=1, limit="batch_size")
    size_option(args, "batches", low=1, limit="batches")
    check_out_file(args.out, "ticket")
    info = data.info(args.dataset)
    model_kw = parse_assignments(args.model_arg, "model argument")
    hparams = parse_assignments(args.hparam)
    supplied = sorted(set(hparams) & {"data", "eval_data", "dataset", "density", "seed"})
    if supplied:
        raise GraphticketsError(
            f"-p {', '.join(supplied)}: set by the command itself (--density, --seed, --dataset); remove it"
        )
    checked(check_hparam_values, "-p", hparams, allow_large=args.allow_large)
    model = models.build(
        args.model, in_shape=info.in_shape, num_classes=info.num_classes, seed=args.seed, **model_kw
    )
    batches: Any = None
    if spec.needs_data:
        train = data.load(args.dataset, split="train", root=args.root, seed=args.seed,
                          download=args.download)
        batches = data.batches(train, batch_size=args.batch_size, shuffle=True, seed=args.seed)
        if spec.data_use == "batches" and args.batches:
            batches = data.take(batches, args.batches)
    ticket = pruning.prune(
        model, args.method, density=args.density, data=batches, seed=args.seed,
        dataset=args.dataset, **hparams,
    )
    out = Path(args.out or f"{args.method}-{args.model}-{args.dataset}-d{args.density:g}-s{args.seed}.safetensors")
    ticket.save(out)
    print(f"{out}: {ticket.method} ticket of {args.model}, density {ticket.density:.4g} "
          f"({ticket.kept}/{ticket.total} weights), {ticket.meta['cost']['seconds']:.2f}s")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from graphtickets import data, training
    from graphtickets.analysis import with_trained_weights

    size_option(args, "epochs", low=1, limit="epochs")
    size_option(args, "batch-size", low=1, limit="batch_size")
    seed_option(args)
    number_option(args.lr, "lr", low=0.0, low_open=True)
    number_option(args.weight_decay, "weight-decay", low=0.0, low_open=False)
    training.OPTIMIZERS.get_or_raise(args.optimizer)
    training.resolve_device(args.device)
    check_out_file(args.out, "ticket")
    ticket = load_ticket(args.ticket, args)
    dataset = args.dataset or ticket.config.get("dataset")
    if not dataset:
        raise GraphticketsError("the ticket records no dataset; pass --dataset NAME")
    check_fits(ticket, dataset, args.ticket)
    model = ticket.build_model()
    train = data.load(dataset, split="train", root=args.root, seed=args.seed, download=args.download)
    test = data.load(dataset, split="test", root=args.root, seed=args.seed, download=args.download)
    hist = training.train(
        model,
        data.batches(train, batch_size=args.batch_size, shuffle=True, seed=args.seed),
        masks=ticket,
        epochs=args.epochs,
        optimizer=args.optimizer,
        lr=args.lr,
        weight_decay=args.weight_decay,
        eval_data=data.batches(test, batch_size=1024, shuffle=False),
        device=args.device,
        seed=args.seed,
    )
    final = hist.final()
    if args.save_weights:
        ticket = with_trained_weights(ticket, model)
    ticket.meta["train"] = {
        "dataset": dataset, "epochs": args.epochs, "optimizer": args.optimizer, "lr": args.lr,
        "seed": args.seed, "history": hist.epochs, "test_accuracy": final.get("eval_accuracy"),
        "seconds": hist.seconds,
    }
    out = Path(args.out or args.ticket)
    ticket.save(out)
    print(f"{out}: test accuracy {final.get('eval_accuracy', float('nan')):.4f} after {args.epochs} "
          f"epochs ({hist.seconds:.1f}s)")
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    import json


    t = load_ticket(args.ticket, args)
    if args.json:
        print(json.dumps({**t.provenance(), "density": t.density, "layers": t.layer_densities(),
                          "verified": t.verified, "verification": t.verify_note}, indent=2))
        return 0
    cfg, meta = t.config, t.meta
    print(f"ticket    {args.ticket}")
    print(f"verified  {'yes' if t.verified else 'NO'} ({t.verify_note})")
    print(f"method    {t.method}")
    print(f"density   {t.density:.6g}  ({t.kept}/{t.total} weights kept, sparsity {t.sparsity:.6g})")
    print(f"model     {cfg.get('model')}")
    print(f"dataset   {cfg.get('dataset')}")
    print(f"seed      {cfg.get('seed')}")
    print(f"hparams   {cfg.get('hparams')}")
    print(f"cost      {meta.get('cost')}")
    print(f"version   {meta.get('version')}")
    if "train" in meta:
        print(f"trained   test accuracy {meta['train'].get('test_accuracy')} ({meta['train'].get('epochs')} epochs)")
    rows = [(n, f"{k}/{tot}", f"{k / tot:.4f}") for n, (k, tot) in t.layer_counts().items()]
    print()
    print(_table(rows, ("layer", "kept", "density")))
    return 0


# ---------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of the ``graphtickets`` command."""
    p = _Parser(prog="graphtickets", description="Lottery tickets as graphs: find, convert, compare.")
    p.add_argument("--version", action="version", version=f"graphtickets {__version__}")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    sub.add_parser("datasets", help="list datasets").set_defaults(handler=_cmd_datasets)
    sub.add_parser("models", help="list models").set_defaults(handler=_cmd_models)
    sub.add_parser("methods", help="list pruning methods").set_defaults(handler=_cmd_methods)

    q = sub.add_parser("prune", help="find a ticket and write it to a file")
    q.add_argument("--model", default="mlp", help="model name (graphtickets models)")
    q.add_argument("--dataset", default="mnist1d", help="dataset name (graphtickets datasets)")
    q.add_argument("--method", required=True, help="pruning method (graphtickets methods)")
    q.add_argument("--density", type=float, required=True, help="fraction of weights kept, in (0, 1]")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--out", help="ticket file to write (.safetensors)")
    q.add_argument("--root", help="data folder (default: $GRAPHTICKETS_DATA or ~/.cache/graphtickets)")
    q.add_argument("--download", action="store_true",
                   help="fetch missing dataset files with torchvision (pip install 'graphtickets[vision]')")
    q.add_argument("--batch-size", type=int, default=128)
    q.add_argument("--batches", type=int, default=10, help="batches given to pruning-at-init scorers")
    q.add_argument("--model-arg", action="append", metavar="KEY=VALUE", help="model keyword, e.g. widths=[100,100]")
    q.add_argument("--hparam", "-p", action="append", metavar="KEY=VALUE", help="method hyperparameter, e.g. rounds=100")
    q.add_argument("--allow-large", action="store_true",
                   help="lift the documented size limits (batches, batch size, epochs, rounds)")
    q.set_defaults(handler=_cmd_prune)

    t = sub.add_parser("train", help="train a ticket (mask enforced) and record its accuracy")
    t.add_argument("ticket", help="ticket file")
    t.add_argument("--dataset", help="dataset (default: the one the ticket records)")
    t.add_argument("--epochs", type=int, default=10)
    t.add_argument("--optimizer", default="adam", help="sgd | adam | adamw")
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--weight-decay", type=float, default=0.0)
    t.add_argument("--batch-size", type=int, default=128)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--device", default="cpu", help="cpu or cuda")
    t.add_argument("--root", help="data folder")
    t.add_argument("--download", action="store_true",
                   help="fetch missing dataset files with torchvision (pip install 'graphtickets[vision]')")
    t.add_argument("--out", help="write the trained ticket here instead of updating TICKET")
    t.add_argument("--allow-large", action="store_true", help="lift the documented size limits (epochs, batch size)")
    t.add_argument("--no-verify", action="store_true", help="read a ticket whose sha256 is missing or wrong")
    t.add_argument("--save-weights", action="store_true",
                   help="store the trained weights in the ticket (for `graphtickets compare --functional`)")
    t.set_defaults(handler=_cmd_train)

    i = sub.add_parser("info", help="a ticket's provenance and layer densities")
    i.add_argument("ticket", help="ticket file")
    i.add_argument("--json", action="store_true", help="print JSON")
    i.add_argument("--no-verify", action="store_true",
                   help="read a ticket whose sha256 is missing or wrong (shown as unverified)")
    i.set_defaults(handler=_cmd_info)

    from graphtickets.cli import study as study_cli

    study_cli.add_commands(sub)
    from graphtickets.cli import interop as _cli_interop

    _cli_interop.add_commands(sub)
    for cmd in sub.choices.values():  # -v also after the command name
        cmd.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS,
                         help="more logging (-vv for debug); tracebacks of unexpected errors")
    return p


def _one_line(text: str) -> str:
    """``text`` with every run of whitespace (newlines included) collapsed to one space."""
    return " ".join(str(text).split())


def _os_message(exc: OSError) -> str:
    if exc.strerror and exc.filename is not None:
        return f"{exc.strerror}: {exc.filename}"
    return str(exc) or type(exc).__name__


def _broken_pipe() -> int:
    """The reader of stdout went away (``graphtickets info x | head -1``): end quietly with 141."""
    try:  # later writes (and the flush at exit) go nowhere instead of raising again
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # stdout without a file descriptor (captured)
        pass
    return 141


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``graphtickets`` console script.

    Bad input (a :class:`~graphtickets.errors.GraphticketsError`, a file that cannot be read or
    written) prints one line ``graphtickets: error: ...`` on stderr and returns 2 (``-vv`` adds
    the traceback). Any other exception also prints one line and returns 2; with ``-v`` its
    traceback is printed first. A closed stdout (``| head``) ends quietly with 141; Ctrl-C
    with 130.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    verbose = int(getattr(args, "verbose", 0) or 0)
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        print("graphtickets: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return _broken_pipe()
    except GraphticketsError as exc:
        if verbose >= 2:  # bad input: the message says it all; -vv shows where it was raised
            traceback.print_exc()
        print(f"graphtickets: error: {_one_line(str(exc))}", file=sys.stderr)
        return 2
    except OSError as exc:
        if verbose >= 2:
            traceback.print_exc()
        print(f"graphtickets: error: {_one_line(_os_message(exc))}", file=sys.stderr)
        return 2
    except Exception as exc:
        if verbose:
            traceback.print_exc()
        hint = "" if verbose else " (run `graphtickets -v ...` to see the traceback)"
        print(f"graphtickets: error: {type(exc).__name__}: {_one_line(str(exc))}{hint}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
