"""Rebuild a finished study's tables, figures and report from its store (``graphtickets report DIR``).

:func:`rebuild_report` reads the study config the store recorded, the cells it expands to and
their rows, writes the tables and the report again, and marks them current for the next
``graphtickets run`` (:func:`graphtickets.study.runner.mark_built`). It sits beside
:mod:`graphtickets.study.runner` and imports study modules only (nothing imports it but the CLI).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from graphtickets.errors import GraphticketsError

__all__ = ["rebuild_report"]


def rebuild_report(out: Path) -> tuple[Path, Path]:
    """Rewrite ``out``'s tables, figures and report from its store; return (report.md, report.html).

    Raises :class:`~graphtickets.errors.GraphticketsError` (and writes nothing) when ``out``
    holds no study, its store is empty or damaged, or no cell has finished.
    """
    from graphtickets.study import sections
    from graphtickets.study.config import validate
    from graphtickets.study.grid import expand
    from graphtickets.study.report import write_report
    from graphtickets.study.store import DB_NAME, Store, check_db, folder_lock
    from graphtickets.study.tabular import sibling_table, tables, write_tables

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
        sec = sections.compute_all(sections.Context(out=out, tickets=tk, distances=dist, store=store, study=study,
                                                    cells=cells or []))  # fmt: skip
        write_tables(out, tk, dist, sibling_table(store, cells))
        tests = sections.write_tables(out, sec) if sec else None
        md, page = write_report(out, tk, dist, study=study, store=store, sections=sec, tests=tests)
        _mark_current(out, store, study, cells)
    return md, page


def _mark_current(out: Path, store: Any, study: Any, cells: Any) -> None:
    """Record the inputs the rebuilt tables and report came from (the next ``run`` then skips them)."""
    from graphtickets.study.runner import mark_built, report_inputs

    digest = report_inputs(store, study, cells)
    for what in ("tables", "report"):
        mark_built(out, what, digest)
