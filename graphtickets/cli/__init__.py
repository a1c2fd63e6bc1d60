"""The ``graphtickets`` command line.

- :mod:`graphtickets.cli.main`: the parser and :func:`main` (nothing else);
- :mod:`graphtickets.cli.listings`: ``datasets``, ``models``, ``methods`` (what exists);
- :mod:`graphtickets.cli.tickets`: the commands on ticket files (``prune``, ``train``, ``info``,
  ``compare``, ``graph``);
- :mod:`graphtickets.cli.study`: the study commands (``run``, ``report``);
- :mod:`graphtickets.cli.interop`: ``import`` and ``export`` (other tools' ticket files);
- :mod:`graphtickets.cli.common`: what they share (option checks, ``key=value`` parsing, reading a
  ticket, printing a table).

Imports go one way: ``main`` imports the command modules, they import ``common``.
"""

from __future__ import annotations

from graphtickets.cli.main import build_parser, main, parse_assignments

__all__ = ["main", "build_parser", "parse_assignments"]
