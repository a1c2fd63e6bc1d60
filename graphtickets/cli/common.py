"""Helpers every command-line module shares (:mod:`graphtickets.cli.listings`,
:mod:`graphtickets.cli.tickets`, :mod:`graphtickets.cli.study`, :mod:`graphtickets.cli.interop`):
option checks, ``key=value`` parsing, reading a ticket, printing a table.

They live here, below the command modules, so that those import this one and never each
other's private helpers (no import cycle between them).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from graphtickets.errors import GraphticketsError

__all__ = ["parse_assignments", "checked", "size_option", "seed_option", "number_option", "check_out_file",
           "load_ticket", "check_fits", "table"]


def table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    """``rows`` under ``header`` as left-aligned text columns, with a dashed rule under the header."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(header, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines)


def parse_assignments(items: Sequence[str] | None, what: str = "hyperparameter") -> dict[str, Any]:
    """Parse ``key=value`` strings; values are read as YAML (``3``, ``0.1``, ``[100, 100]``, ``true``).

    >>> parse_assignments(["rounds=10", "widths=[64, 64]", "scope=layer"])
    {'rounds': 10, 'widths': [64, 64], 'scope': 'layer'}
    """
    import yaml

    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise GraphticketsError(f"{what} {item!r} must look like key=value, e.g. rounds=10")
        try:
            out[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            out[key.strip()] = value
    return out


def checked(check: Any, *args: Any, **kw: Any) -> Any:
    """``check(*args, **kw)`` with its ``ValueError`` turned into a :class:`GraphticketsError`."""
    try:
        return check(*args, **kw)
    except GraphticketsError:
        raise
    except ValueError as exc:
        raise GraphticketsError(str(exc)) from None


def size_option(args: argparse.Namespace, option: str, *, low: int, limit: str | None = None) -> int:
    """The integer option ``--<option>``, checked: ``>= low`` and within ``LIMITS[limit]`` unless --allow-large."""
    from graphtickets._rules import check_size

    value = getattr(args, option.replace("-", "_"))
    return int(checked(check_size, f"--{option}", value, low=low, limit=limit,
                        allow_large=bool(getattr(args, "allow_large", False))))


def seed_option(args: argparse.Namespace) -> int:
    from graphtickets._rules import check_seed

    return int(checked(check_seed, args.seed, "--seed"))


def number_option(value: float, option: str, *, low: float, low_open: bool) -> float:
    import math

    if not math.isfinite(value) or value < low or (low_open and value == low):
        raise GraphticketsError(f"--{option} must be a finite number {'>' if low_open else '>='} {low:g}, got {value!r}")
    return value


def check_out_file(path: str | None, what: str) -> None:
    """Refuse an --out that cannot be written as a file (a folder, or under a file), before any work."""
    if path is None:
        return
    out = Path(path)
    if out.is_dir():
        raise GraphticketsError(f"--out {str(out)!r} is a directory; give the {what} file's name")
    for parent in out.parents:
        if parent.exists():
            if not parent.is_dir():
                raise GraphticketsError(f"--out {str(out)!r}: {str(parent)!r} is a file, not a folder; give another --out")
            break


def load_ticket(path: str, args: argparse.Namespace) -> Any:
    """``Ticket.load(path)``, verified unless --no-verify."""
    from graphtickets.ticket import Ticket

    return Ticket.load(path, verify=not getattr(args, "no_verify", False))


def check_fits(ticket: Any, dataset: str, where: str) -> None:
    """Raise unless ``dataset``'s input shape and class count are those of the ticket's model."""
    from graphtickets import data

    spec = ticket.config.get("model")
    if not isinstance(spec, dict) or "in_shape" not in spec or "num_classes" not in spec:
        raise GraphticketsError(f"{where} records no model spec; cannot rebuild its model to train it")
    info = data.info(dataset)
    want_shape = tuple(int(d) for d in spec["in_shape"])
    want_classes = int(spec["num_classes"])
    if tuple(info.in_shape) != want_shape or int(info.num_classes) != want_classes:
        recorded = ticket.config.get("dataset") or "unknown"
        raise GraphticketsError(
            f"{where} holds a {spec.get('name')} for inputs {want_shape} and {want_classes} classes "
            f"(dataset {recorded}), but dataset {dataset!r} has inputs {tuple(info.in_shape)} and "
            f"{info.num_classes} classes; train it on a dataset of that shape"
        )
