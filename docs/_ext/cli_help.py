"""A Sphinx directive that renders the ``graphtickets`` command's ``--help`` (offline).

``.. graphtickets-commands::`` writes one section per subcommand of
:func:`graphtickets.cli.build_parser`, in the parser's order: the one-line help, then the
full ``graphtickets CMD --help`` text. A new subcommand shows up in the docs without an edit.
``.. graphtickets-help::`` writes the top-level ``graphtickets --help``.
``.. graphtickets-registry:: NAME`` writes the entries of a registry (``methods``,
``distances``, ``metrics``, ``models``, ``datasets``) as a table, so the lists in the user
guide are the code's own.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from docutils import nodes
from docutils.parsers.rst import Directive

WIDTH = "92"


@contextmanager
def _columns() -> Iterator[None]:
    before = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = WIDTH  # argparse wraps to the terminal width
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = before


def _subcommands(parser: argparse.ArgumentParser) -> list[tuple[str, str, argparse.ArgumentParser]]:
    for action in parser._actions:  # argparse keeps the subparsers in a private list
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            return [(name, helps.get(name, ""), sub) for name, sub in action.choices.items()]
    return []


def _block(text: str) -> nodes.literal_block:
    block = nodes.literal_block(text, text)
    block["language"] = "text"
    block["classes"].append("cli-help")
    return block


class HelpDirective(Directive):
    """``graphtickets --help``."""

    has_content = False

    def run(self) -> list[Any]:
        from graphtickets.cli import build_parser

        with _columns():
            return [_block(build_parser().format_help())]


class CommandsDirective(Directive):
    """One section per subcommand with its ``--help``."""

    has_content = False

    def run(self) -> list[Any]:
        from graphtickets.cli import build_parser

        out: list[Any] = []
        with _columns():
            for name, summary, sub in _subcommands(build_parser()):
                section = nodes.section(ids=[f"command-{name}"], names=[f"graphtickets {name}"])
                section += nodes.title(text=f"graphtickets {name}")
                if summary:
                    section += nodes.paragraph(text=summary[0].upper() + summary[1:] + ".")
                section += _block(sub.format_help())
                self.state.document.note_implicit_target(section)
                out.append(section)
        return out


def _esc(text: Any) -> str:
    """Plain text for a reST table cell (markup characters escaped)."""
    out = str(text or "")
    for ch in ("\\", "|", "*", "`", "_", "<", ">"):
        out = out.replace(ch, "\\" + ch)
    return out


def _first_line(obj: Any) -> str:
    doc = (getattr(obj, "__doc__", None) or "").strip().splitlines()
    return _esc(doc[0].strip()) if doc else ""


def _rows(name: str) -> tuple[list[str], list[list[str]]]:
    import graphtickets as gt

    if name == "methods":
        rows = [[f"``{k}``", s.kind, "yes" if s.needs_data else "no", _esc(s.summary), _esc(s.reference)]
                for k, s in gt.pruning.METHODS.items()]
        return ["name", "kind", "needs data", "what it does", "paper"], rows
    if name == "distances":
        rows = [[f"``{k}``", _first_line(s.fn), f"{s.question}{' (tested)' if s.representative else ''}",
                 "yes" if s.needs_model else "no", "yes" if s.kernel_blind else "no", "yes" if s.default else "no"]
                for k, s in gt.analysis.DISTANCES.items()]
        return ["kind", "what it measures", "question", "needs the model", "kernel-blind", "default"], rows
    if name == "metrics":
        rows = [[f"``{k}``", _first_line(s.fn), ", ".join(f"``{x}``" for x in s.keys) or "(per layer)",
                 "yes" if s.default else "no"] for k, s in gt.analysis.METRICS.items()]
        return ["family", "what it measures", "keys in metrics()", "default"], rows
    if name == "models":
        return ["name", "what it is"], [[f"``{k}``", _first_line(v)] for k, v in gt.models.MODELS.items()]
    if name == "datasets":
        rows = []
        for k in gt.data.DATASETS:
            i = gt.data.info(k)
            rows.append([f"``{k}``", " x ".join(map(str, i.in_shape)), str(i.num_classes),
                         _esc(getattr(i, "description", ""))])
        return ["name", "input", "classes", "what it is"], rows
    raise ValueError(f"unknown registry {name!r}; one of methods, distances, metrics, models, datasets")


class RegistryDirective(Directive):
    """A table of one registry's entries."""

    required_arguments = 1
    has_content = False

    def run(self) -> list[Any]:
        from docutils.statemachine import StringList

        header, rows = _rows(self.arguments[0])
        lines = [".. list-table::", "   :header-rows: 1", ""]
        for row in [header, *rows]:
            lines.append("   * - " + (row[0] or " "))
            lines += [f"     - {(c or ' ').replace(chr(10), ' ')}" for c in row[1:]]
        node = nodes.container()
        self.state.nested_parse(StringList(lines, source="graphtickets-registry"), self.content_offset, node)
        return node.children


def setup(app: Any) -> dict[str, Any]:
    app.add_directive("graphtickets-registry", RegistryDirective)
    app.add_directive("graphtickets-help", HelpDirective)
    app.add_directive("graphtickets-commands", CommandsDirective)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
