"""The subcommands of ``graphtickets`` on ticket files: ``prune``, ``train``, ``info``, ``compare``, ``graph``.

:data:`COMMANDS` maps each command name to the function that adds it to the top-level parser
(:func:`graphtickets.cli.main.build_parser`); each handler takes the parsed arguments and
returns an exit code. Bad input raises a :class:`~graphtickets.errors.GraphticketsError`, which
the top level prints as one line. Every option is checked before any file is written.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from graphtickets._io import write_output
from graphtickets.cli.common import (
    check_fits,
    check_out_file,
    checked,
    load_ticket,
    number_option,
    parse_assignments,
    seed_option,
    size_option,
    table,
)
from graphtickets.errors import GraphticketsError

__all__ = ["COMMANDS", "cmd_prune", "cmd_train", "cmd_info", "cmd_compare", "cmd_graph"]


def cmd_prune(args: argparse.Namespace) -> int:
    """``graphtickets prune --method NAME --density D [...]``: find a ticket and write its file."""
    from graphtickets import data, models, pruning
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
    checked(spec.check_values, "-p", hparams, allow_large=args.allow_large)
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


def cmd_train(args: argparse.Namespace) -> int:
    """``graphtickets train TICKET [...]``: train the ticket (mask enforced), record its accuracy."""
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


def cmd_info(args: argparse.Namespace) -> int:
    """``graphtickets info TICKET [--json]``: the ticket's provenance and layer densities."""
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
    print(table(rows, ("layer", "kept", "density")))
    return 0


def _out_file(path: str | Path, what: str) -> Path:
    """``path`` as a file to write: its folder is created; a directory there is an error."""
    check_out_file(str(path), what)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    return out


def cmd_compare(args: argparse.Namespace) -> int:
    """``graphtickets compare T1 T2 ... [--kinds ...] [--nulls N] [--out CSV]``."""
    from graphtickets import analysis
    from graphtickets.data import batches, load

    if len(args.tickets) < 2:
        raise GraphticketsError("compare needs at least two ticket files")
    size_option(args, "nulls", low=0, limit="null_samples")
    seed_option(args)
    for k in args.kinds or []:
        analysis.DISTANCES.get_or_raise(k)
    if args.out:
        check_out_file(args.out, "CSV")
    tickets = {}
    for p in args.tickets:
        name = Path(p).stem
        while name in tickets:
            name += "'"
        tickets[name] = load_ticket(p, args)
    first = next(iter(tickets.values()))
    model = first.build_model() if first.config.get("model") else None
    data, kinds = None, args.kinds
    if args.functional:  # what trained tickets compute on the dataset's test split
        dataset = args.dataset or first.config.get("dataset")
        if not dataset:
            raise GraphticketsError("the tickets record no dataset; pass --dataset NAME for --functional")
        check_fits(first, dataset, args.tickets[0])
        test = load(dataset, split="test", root=args.root)
        data = batches(test, batch_size=1000, shuffle=False)
        kinds = kinds or list(analysis.FUNCTION_KINDS)
    frame = analysis.compare(tickets, model, kinds=kinds, null_samples=args.nulls, seed=args.seed, data=data,
                             effective=args.effective)
    print(frame.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    if args.out:
        write_output(_out_file(args.out, "CSV"), frame.to_csv(index=False), what="CSV table")
        print(f"wrote {args.out}")
    return 0


def cmd_graph(args: argparse.Namespace) -> int:
    """``graphtickets graph TICKET --format graphml|edgelist|pyg [--kind layered|relational] [--out PATH]``."""
    from graphtickets.graphs import layered_graph, relational_graph

    if args.out:
        check_out_file(args.out, "graph")
    ticket = load_ticket(args.ticket, args)
    if not ticket.config.get("model"):
        raise GraphticketsError(f"{args.ticket} records no model spec; graphs need the architecture")
    model = ticket.build_model()
    g = layered_graph(model, ticket) if args.kind == "layered" else relational_graph(model, ticket)
    ext = {"graphml": ".graphml", "edgelist": ".edgelist", "pyg": ".pt"}[args.format]
    out = _out_file(args.out or Path(args.ticket).with_suffix("").as_posix() + f".{args.kind}{ext}", "graph")
    if args.format == "pyg":
        import torch

        data = g.to_pyg()
        write_output(out, lambda f: torch.save(data, f), what="graph")
    else:
        g.write(out, args.format)
    n_edges = int(g.adjacency.nnz)
    print(f"{out}: {args.kind} graph, {g.adjacency.shape[0]} nodes, {n_edges} edges ({args.format})")
    return 0


# ---------------------------------------------------------------------------- parser
def _add_prune(subparsers: Any) -> None:
    q = subparsers.add_parser("prune", help="find a ticket and write it to a file")
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
    q.set_defaults(handler=cmd_prune)


def _add_train(subparsers: Any) -> None:
    t = subparsers.add_parser("train", help="train a ticket (mask enforced) and record its accuracy")
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
    t.set_defaults(handler=cmd_train)


def _add_info(subparsers: Any) -> None:
    i = subparsers.add_parser("info", help="a ticket's provenance and layer densities")
    i.add_argument("ticket", help="ticket file")
    i.add_argument("--json", action="store_true", help="print JSON")
    i.add_argument("--no-verify", action="store_true",
                   help="read a ticket whose sha256 is missing or wrong (shown as unverified)")
    i.set_defaults(handler=cmd_info)


def _add_compare(subparsers: Any) -> None:
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


def _add_graph(subparsers: Any) -> None:
    g = subparsers.add_parser("graph", help="export a ticket's graph")
    g.add_argument("ticket", help="ticket file")
    g.add_argument("--format", choices=("graphml", "edgelist", "pyg"), default="graphml")
    g.add_argument("--kind", choices=("layered", "relational"), default="layered")
    g.add_argument("--out", default=None, help="output file (default: next to the ticket)")
    g.add_argument("--no-verify", action="store_true", help="read a ticket whose sha256 is missing or wrong")
    g.set_defaults(handler=cmd_graph)


#: Command name -> the function that adds it to an argparse subparsers object.
COMMANDS: dict[str, Callable[[Any], None]] = {
    "prune": _add_prune, "train": _add_train, "info": _add_info, "compare": _add_compare, "graph": _add_graph,
}
