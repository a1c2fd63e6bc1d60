"""The ``graphtickets`` command: its parser and :func:`main` (the commands live in their modules).

Subcommands: ``datasets``, ``models``, ``methods`` list what exists
(:mod:`graphtickets.cli.listings`); ``prune`` writes a ticket file, ``train`` trains a ticket
and records its accuracy, ``info`` prints a ticket's provenance and layer densities,
``compare`` and ``graph`` compare tickets and export their graphs
(:mod:`graphtickets.cli.tickets`); ``run`` and ``report`` drive studies
(:mod:`graphtickets.cli.study`); ``import`` and ``export`` read and write other tools' files
(:mod:`graphtickets.cli.interop`).

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

from graphtickets._version import __version__
from graphtickets.cli import interop, listings, study, tickets
from graphtickets.cli.common import parse_assignments
from graphtickets.errors import GraphticketsError

__all__ = ["main", "build_parser", "parse_assignments", "COMMANDS"]

#: The subcommands in the order ``graphtickets --help`` lists them (each module's ``COMMANDS`` adds its own).
COMMANDS = ("datasets", "models", "methods", "prune", "train", "info", "run", "report", "compare", "graph",
            "import", "export")

log = logging.getLogger("graphtickets")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"graphtickets: error: {message} (see `{self.prog} --help`)\n")


# ---------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of the ``graphtickets`` command."""
    p = _Parser(prog="graphtickets", description="Lottery tickets as graphs: find, convert, compare.")
    p.add_argument("--version", action="version", version=f"graphtickets {__version__}")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    adders = {**listings.COMMANDS, **tickets.COMMANDS, **study.COMMANDS, **interop.COMMANDS}
    for name in COMMANDS:
        adders[name](sub)
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
