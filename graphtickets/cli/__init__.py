"""The ``graphtickets`` command line.

- :mod:`graphtickets.cli.main`: the parser, :func:`main` and the ticket commands
  (``prune``, ``train``, ``info``, ...);
- :mod:`graphtickets.cli.study`: the study commands (``run``, ``report``, ...) and ``compare`` / ``graph``;
- :mod:`graphtickets.cli.interop`: ``import`` and ``export`` (other tools' ticket files);
- :mod:`graphtickets.cli.common`: what they share (option checks, ``key=value`` parsing, reading a ticket).
"""

from __future__ import annotations

from graphtickets.cli.main import build_parser, main, parse_assignments

__all__ = ["main", "build_parser", "parse_assignments"]
