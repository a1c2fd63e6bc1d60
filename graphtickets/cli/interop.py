"""The ``import`` and ``export`` subcommands of ``graphtickets`` (tickets from other tools and back).

:data:`COMMANDS` adds them to the top-level parser (:func:`graphtickets.cli.main.build_parser`); the work is
done by :mod:`graphtickets.interop`.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from graphtickets.errors import GraphticketsError

__all__ = ["COMMANDS", "add_commands", "cmd_import", "cmd_export"]


def _model(args: argparse.Namespace) -> Any:
    """The model named on the command line (``--like TICKET``, or ``--model`` + shape)."""
    from graphtickets import data, models
    from graphtickets.cli.common import parse_assignments
    from graphtickets.ticket import Ticket

    if args.like:
        return Ticket.load(args.like).build_model()
    if not args.model:
        raise GraphticketsError("name the architecture: --model NAME (with --dataset or --in-shape/--num-classes), or --like TICKET")
    if args.in_shape:
        in_shape: tuple[int, ...] = tuple(int(x) for x in args.in_shape)
        if args.num_classes is None:
            raise GraphticketsError("--in-shape needs --num-classes")
        num_classes = int(args.num_classes)
    else:
        info = data.info(args.dataset or "mnist1d")
        in_shape, num_classes = tuple(info.in_shape), int(info.num_classes)
    kw = parse_assignments(args.model_arg, "model argument")
    return models.build(args.model, in_shape=in_shape, num_classes=num_classes, seed=args.seed, **kw)


class _Formats:
    """``graphtickets.interop.FORMATS``, read when ``--format`` is checked or listed: building the
    parser does not import the interop module (and torch) for commands that never export."""

    def _names(self) -> tuple[str, ...]:
        from graphtickets.interop import FORMATS

        return tuple(FORMATS)

    def __contains__(self, name: object) -> bool:
        return name in self._names()

    def __iter__(self) -> Any:
        return iter(self._names())


def cmd_import(args: argparse.Namespace) -> int:
    """``graphtickets import FILE --model NAME [...] --out TICKET``."""
    from graphtickets import interop

    model = _model(args)
    ticket = interop.load(
        args.file, model, method=args.method, kind=args.kind, weights=args.weights, dataset=args.dataset,
    )
    out = Path(args.out or Path(args.file).with_suffix("").as_posix() + ".ticket.safetensors")
    if out.resolve() == Path(args.file).resolve():
        raise GraphticketsError(f"--out {str(out)!r} is the input file; give another name")
    ticket.save(out)
    fmt = ticket.meta.get("imported", {}).get("format", "ticket")
    print(f"{out}: {ticket.method} ticket read from {args.file} ({fmt}), density {ticket.density:.4g} "
          f"({ticket.kept}/{ticket.total} weights in {len(ticket.masks)} layers)")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """``graphtickets export TICKET --format FORMAT --out FILE``."""
    from graphtickets import interop
    from graphtickets.ticket import Ticket

    ticket = Ticket.load(args.ticket)
    default_ext = {"npz": ".npz", "ticket": ".safetensors"}.get(args.format, ".pt")
    out = Path(args.out or Path(args.ticket).with_suffix("").as_posix() + f".{args.format}{default_ext}")
    if out.resolve() == Path(args.ticket).resolve():
        raise GraphticketsError(f"--out {str(out)!r} is the ticket file itself; give another name")
    written = interop.save(ticket, out, format=args.format, with_masks=args.with_masks)
    print(f"{written}: {args.format} of {args.ticket} ({ticket.kept}/{ticket.total} weights kept)")
    return 0


def _add_import(subparsers: Any) -> None:
    i = subparsers.add_parser(
        "import", help="read a ticket from another tool's file (sparse state dict, masks, .npz)",
        description="Read a sparse checkpoint (pruned weights stored as zeros), a dict of 0/1 mask "
                    "tensors (open_lth, torch.nn.utils.prune) or an .npz of masks, and write a "
                    "graphtickets ticket. torch files are read with torch.load(weights_only=True) only.",
    )
    i.add_argument("file", help="a .pt/.pth/.bin/.ckpt, .npz or .safetensors file")
    i.add_argument("--model", help="model name (graphtickets models) the file was saved from")
    i.add_argument("--dataset", help="dataset giving the input shape and classes (default mnist1d), recorded")
    i.add_argument("--in-shape", nargs="+", type=int, metavar="N", help="input shape instead of --dataset, e.g. 40")
    i.add_argument("--num-classes", type=int, help="number of classes, with --in-shape")
    i.add_argument("--model-arg", action="append", metavar="KEY=VALUE", help="model keyword, e.g. widths=[100,100]")
    i.add_argument("--seed", type=int, default=0, help="the model's initialisation seed (recorded in the spec)")
    i.add_argument("--like", metavar="TICKET", help="take the model from this ticket file instead of --model")
    i.add_argument("--method", default="imported", help="method name to record (e.g. the tool's name)")
    i.add_argument("--kind", choices=("auto", "state_dict", "masks"), default="auto",
                   help="what the file holds (auto: masks if every prunable entry is 0/1)")
    i.add_argument("--weights", action="store_true", help="keep the checkpoint's weights in the ticket")
    i.add_argument("--out", help="ticket file to write (default: FILE.ticket.safetensors)")
    i.set_defaults(handler=cmd_import)


def _add_export(subparsers: Any) -> None:
    e = subparsers.add_parser(
        "export", help="write a ticket for another tool (state dict, masks, open_lth, .npz)",
        description="state_dict: the model's state dict with pruned weights as zeros; masks: a dict "
                    "of bool tensors; open_lth: int32 0/1 tensors; npz: bool arrays; all keyed by "
                    "parameter name and readable with torch.load(weights_only=True) / numpy.load.",
    )
    e.add_argument("ticket", help="ticket file")
    e.add_argument("--format", choices=_Formats(), default="masks", metavar="FORMAT",
                   help="%(choices)s (default: %(default)s)")
    e.add_argument("--with-masks", action="store_true",
                   help="state_dict: also write <name>_mask entries (exact even where a kept weight is 0)")
    e.add_argument("--out", help="file to write (default: next to the ticket)")
    e.set_defaults(handler=cmd_export)


#: Command name -> the function that adds it to an argparse subparsers object.
COMMANDS: dict[str, Callable[[Any], None]] = {"import": _add_import, "export": _add_export}


def add_commands(subparsers: Any) -> None:
    """Add ``import`` and ``export`` to an argparse subparsers object."""
    for add in COMMANDS.values():
        add(subparsers)
