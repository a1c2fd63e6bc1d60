"""The listing subcommands of ``graphtickets``: ``datasets``, ``models``, ``methods`` (what exists).

:data:`COMMANDS` maps each command name to the function that adds it to the top-level parser
(:func:`graphtickets.cli.main.build_parser`); each handler prints a table and returns 0.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from graphtickets.cli.common import table

__all__ = ["COMMANDS", "cmd_datasets", "cmd_models", "cmd_methods"]


def cmd_datasets(args: argparse.Namespace) -> int:
    """``graphtickets datasets``: every registered dataset, its input shape and classes."""
    from graphtickets import data

    rows = []
    for name in sorted(data.DATASETS):
        i = data.info(name)
        rows.append((name, "x".join(map(str, i.in_shape)), str(i.num_classes), getattr(i, "description", "")))
    print(table(rows, ("dataset", "input", "classes", "description")))
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    """``graphtickets models``: every registered model and the first line of its docstring."""
    from graphtickets import models

    rows = []
    for name in sorted(models.MODELS):
        entry = models.MODELS[name]
        doc = (getattr(entry, "__doc__", None) or "").strip().splitlines()
        rows.append((name, doc[0] if doc else ""))
    print(table(rows, ("model", "description")))
    return 0


def cmd_methods(args: argparse.Namespace) -> int:
    """``graphtickets methods``: every registered pruning method, its kind, data use and paper."""
    from graphtickets import pruning

    rows = []
    for name in sorted(pruning.METHODS):
        spec = pruning.METHODS[name]
        rows.append((name, spec.kind, "yes" if spec.needs_data else "no", spec.summary, spec.reference))
    print(table(rows, ("method", "kind", "data", "summary", "paper")))
    return 0


def _listing(name: str, help: str, handler: Callable[[argparse.Namespace], int]) -> Callable[[Any], None]:
    def add(subparsers: Any) -> None:
        subparsers.add_parser(name, help=help).set_defaults(handler=handler)

    return add


#: Command name -> the function that adds it to an argparse subparsers object.
COMMANDS: dict[str, Callable[[Any], None]] = {
    "datasets": _listing("datasets", "list datasets", cmd_datasets),
    "models": _listing("models", "list models", cmd_models),
    "methods": _listing("methods", "list pruning methods", cmd_methods),
}
