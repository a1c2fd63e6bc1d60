"""Report sections: what the analysis stage computes as tables, and how the report renders them.

A :class:`Section` is one part of a study's answer (the null ladder, transfer, stability, tickets
built from structure, ...). It has two halves that never meet in one call:

* ``compute(ctx) -> {table name: DataFrame}`` runs in the analysis stage, after the cells and the
  comparisons (it may load tickets from the store and run :mod:`graphtickets.analysis`); each
  table is written to ``tables/<name>.csv`` (and ``.parquet``). A table named ``"tests"`` holds
  the section's statistical tests, one row each, with :data:`TEST_COLUMNS`; the tests of every
  section are put together in ``tables/tests.csv`` with one Benjamini-Hochberg ``q`` over all of
  them (:func:`collect_tests`), so the report states the number of its tests once.
* ``render(tables, ctx) -> blocks`` runs in report writing and reads only the tables (and may
  draw figures from them into ``ctx.figures``); blocks are the report's
  ``(kind, payload)`` pairs (``h2``/``h3``/``p``/``ul``/``table``/``img``).
* ``claims(tables) -> [Claim]``: the sentences this section offers to the report's *Answer*:
  each names the test (a ``test`` id of its ``tests`` table) it rests on; the Answer shows a
  claim's ``text`` only when that test's global ``q`` is at most :data:`FDR`, else its
  ``absent`` sentence (the data do not show it), and at most :data:`MAX_ANSWER` sentences.

Sections register in :data:`SECTIONS` (:func:`register`); their modules live in this package and
are imported by :func:`load`. Imports: this package imports ``graphtickets.analysis``, the
study's ``grid``/``store``/``tabular``/``methods`` and the low modules; ``report`` and
``runner`` import it, never the other way round.
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from graphtickets.errors import ConfigError, GraphticketsError

log = logging.getLogger(__name__)

__all__ = ["Context", "Claim", "Section", "SECTIONS", "register", "load", "compute_all", "collect_tests",
           "answer", "answer_blocks", "check_skipped", "render_all", "write_tables", "TEST_COLUMNS", "FDR", "MAX_ANSWER", "Block"]

#: One block of the report: ``(kind, payload)``.
Block = tuple[str, Any]

#: The columns every ``tests`` table has: ``test`` (an id unique within the section),
#: ``question`` (what is tested, in words), ``family`` (the question's family: tests of one
#: family answer one question), ``statistic`` (the effect: a mean difference, a z, a rho),
#: ``p`` (a calibrated p-value; NaN: not tested), ``unit`` (the unit of inference: "init seed",
#: "pair of tickets", ...) and ``n`` (how many units).
TEST_COLUMNS = ["test", "question", "family", "statistic", "p", "unit", "n"]

#: False discovery rate of the report's Benjamini-Hochberg correction.
FDR = 0.05

#: The most sentences the Answer has.
MAX_ANSWER = 10

#: The modules of this package that define sections (imported by :func:`load`), in report order.
MODULES: list[str] = ["ladder", "accuracy", "sparse_training", "sanity", "siblings", "structure_function",
                      "consensus", "stability", "transfer", "effective", "prior", "trained_ladder", "geometry",
                      "units", "allocation", "structure_accuracy"]


@dataclass(frozen=True)
class Context:
    """What a section computes from: the study folder, its store and config, and its two tables.

    ``tickets``: the tickets table (every replicate and ablation variant, as
    :func:`graphtickets.study.tabular.tables` gives it); ``distances``: the distances table;
    ``cells``: the study's grid; ``figures``: where figures go (``out/figures``).
    """

    out: Path
    tickets: pd.DataFrame
    distances: pd.DataFrame
    store: Any = None
    study: Any = None
    cells: Sequence[Any] = ()

    @property
    def figures(self) -> Path:
        return self.out / "figures"


@dataclass(frozen=True)
class Claim:
    """A sentence a section offers to the Answer, resting on one test of its ``tests`` table.

    ``text`` is shown when the test's global ``q <= FDR``, ``absent`` (if given) otherwise;
    ``figure`` is a file name under ``figures/`` that shows it; lower ``priority`` comes first.
    """

    test: str
    text: str
    absent: str | None = None
    figure: str | None = None
    priority: int = 50


@dataclass(frozen=True)
class Section:
    """One part of the report: its tables (``compute``), its blocks (``render``), its claims."""

    name: str
    title: str
    order: int
    compute: Callable[[Context], dict[str, pd.DataFrame]]
    render: Callable[[Mapping[str, pd.DataFrame], Context], list[Block]]
    claims: Callable[[Mapping[str, pd.DataFrame]], list[Claim]] = field(default=lambda tables: [])


#: name -> Section, the registry.
SECTIONS: dict[str, Section] = {}


def register(section: Section) -> Section:
    """Add ``section`` to :data:`SECTIONS` (a name or table name already taken is an error)."""
    if section.name in SECTIONS and SECTIONS[section.name] is not section:
        raise GraphticketsError(f"a report section named {section.name!r} is already registered")
    SECTIONS[section.name] = section
    return section


def load() -> dict[str, Section]:
    """Import every section module of this package; the registry in report order."""
    for mod in MODULES:
        importlib.import_module(f"{__name__}.{mod}")
    return dict(sorted(SECTIONS.items(), key=lambda kv: (kv[1].order, kv[0])))


def check_skipped(names: Sequence[str]) -> None:
    """Refuse a name of ``analysis.skip_sections`` that no section has (before the study starts)."""
    known = load()
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ConfigError(f"analysis.skip_sections: no report section is called {', '.join(map(repr, unknown))}; "
                          f"the sections: {', '.join(known)}")


def _skipped(ctx: Context) -> list[str]:
    """The section names the study's ``analysis.skip_sections`` leaves out (none without a study)."""
    return list(getattr(getattr(ctx.study, "analysis", None), "skip_sections", None) or ())


def compute_all(ctx: Context) -> dict[str, dict[str, pd.DataFrame]]:
    """Every section's tables (section name -> table name -> DataFrame), in report order.

    A section whose ``compute`` returns nothing is left out. Two sections naming the same table
    is an error (each table is one file ``tables/<name>.csv``); ``tests`` is the one name each
    section may use. Sections the study's ``analysis.skip_sections`` names are not computed.
    """
    out: dict[str, dict[str, pd.DataFrame]] = {}
    seen: dict[str, str] = {}
    skip = set(_skipped(ctx))
    for name, sec in load().items():
        if name in skip:
            log.info("section %s not computed (analysis.skip_sections)", name)
            continue
        start = time.perf_counter()
        tabs = sec.compute(ctx) or {}
        log.info("section %s computed in %.1f s", name, time.perf_counter() - start)
        for t, df in tabs.items():
            if t != "tests" and t in seen:
                raise GraphticketsError(f"sections {seen[t]!r} and {name!r} both write tables/{t}.csv")
            seen[t] = name
            if t == "tests":
                missing = [c for c in TEST_COLUMNS if c not in df]
                if missing:
                    raise GraphticketsError(f"section {name!r}: its tests table lacks columns {missing}")
        if tabs:
            out[name] = dict(tabs)
    return out


def collect_tests(tables: Mapping[str, Mapping[str, pd.DataFrame]], *, alpha: float = FDR) -> pd.DataFrame:
    """The tests of every section in one table with ``section``, a global BH ``q`` and ``significant``.

    ``attrs["tests"]`` is the number of tests made (a NaN ``p`` is a test not made: kept, with a
    NaN ``q``, not counted).
    """
    from graphtickets.analysis.stats import adjust_tests

    parts = [t["tests"].assign(section=name) for name, t in tables.items() if "tests" in t and not t["tests"].empty]
    if not parts:
        empty = pd.DataFrame(columns=["section", *TEST_COLUMNS, "q", "significant"])
        empty.attrs.update(tests=0, alpha=alpha)
        return empty
    allt = pd.concat(parts, ignore_index=True)
    allt = allt[["section", *TEST_COLUMNS, *[c for c in allt.columns if c not in TEST_COLUMNS and c != "section"]]]
    return adjust_tests(allt, alpha=alpha)


def answer(tables: Mapping[str, Mapping[str, pd.DataFrame]], tests: pd.DataFrame) -> list[tuple[str, str | None]]:
    """The Answer's sentences ``(text, figure)``: each section's claims, held to the global ``q``.

    A claim whose test has ``q <= FDR`` gives its ``text`` with the statistic and ``q``; one
    whose test fails (or was not made) gives its ``absent`` sentence if it has one. At most
    :data:`MAX_ANSWER`: the stated claims first, then the absent ones, each by priority then
    report order.
    """
    q = {(r.section, r.test): (r.q, r.statistic) for r in tests.itertuples(index=False)}
    cands = []
    sections = load()
    for i, (name, tabs) in enumerate(tables.items()):
        for c in sections[name].claims(tabs):
            qv, stat = q.get((name, c.test), (np.nan, np.nan))
            if np.isfinite(qv) and qv <= FDR:
                cands.append((0, c.priority, i, f"{c.text} ({_q(qv)})", c.figure))
            elif c.absent is not None:
                cands.append((1, c.priority, i, c.absent, None))
    cands.sort(key=lambda t: t[:3])  # what holds first, then what the data do not show
    return [(text, fig) for *_, text, fig in cands[:MAX_ANSWER]]


def _q(q: float) -> str:
    return f"q = {q:.2g}" if q >= 1e-3 else "q < 0.001"


def write_tables(out: Path, tables: Mapping[str, Mapping[str, pd.DataFrame]], *, alpha: float = FDR) -> pd.DataFrame:
    """Write every section's tables to ``out/tables/<name>.{csv,parquet}`` and all their tests,
    with the global ``q``, to ``tables/tests.{csv,parquet}``; returns the tests table."""
    from graphtickets.study.tabular import write_named

    tests = collect_tests(tables, alpha=alpha)
    named = [(t, df) for tabs in tables.values() for t, df in tabs.items() if t != "tests"]
    write_named(out, [*named, ("tests", tests)])
    return tests


def answer_blocks(tables: Mapping[str, Mapping[str, pd.DataFrame]], tests: pd.DataFrame, figures: Path) -> list[Block]:
    """The report's opening: the Answer's sentences, the number of tests, the summary figure
    (the first stated sentence's figure, from ``figures``)."""
    said = answer(tables, tests)
    m = int(tests.attrs.get("tests", tests["p"].notna().sum()))  # attrs: set by collect_tests
    blocks: list[Block] = [("h2", "Answer")]
    if not said:
        blocks.append(("p", "No part of the study has a result to state yet (no section made a test)."))
        return blocks
    items = [text + (f" ([figure](figures/{fig}))" if fig else "") for text, fig in said]
    blocks.append(("ul", items))
    blocks.append(("p", f"Every sentence above rests on a test of `tables/tests.csv`: {m} tests in this report, "
                        f"one Benjamini-Hochberg correction over all of them at FDR {FDR:g}; a sentence is "
                        f"stated only when its test holds after it, else the report says the data do not show it."))
    figs = [fig for _, fig in said if fig and (figures / fig).is_file()]
    if figs:
        blocks.append(("img", (figures / figs[0], "Summary: the figure of the Answer's first result")))
    return blocks


def render_all(tables: Mapping[str, Mapping[str, pd.DataFrame]], ctx: Context,
               tests: pd.DataFrame | None = None) -> list[Block]:
    """Every section's blocks, in report order.

    With ``tests`` (:func:`collect_tests`: every section's tests with the global ``q``), each
    section's ``tests`` table is handed to its ``render`` as its rows of ``tests`` (with ``q`` and
    ``significant``), so a verdict it prints is the report's corrected one.
    """
    sections = load()
    blocks: list[Block] = []
    for name, tabs in tables.items():
        if tests is not None and "tests" in tabs and "section" in tests:
            own = [c for c in tabs["tests"].columns if c in tests and c not in ("q", "significant")]
            mine = tests.loc[tests["section"] == name, [*own, "q", "significant"]].reset_index(drop=True)  # its columns only
            tabs = {**tabs, "tests": mine}
        blocks += sections[name].render(tabs, ctx)
    skipped = [sections[n].title for n in _skipped(ctx) if n in sections]
    if skipped:
        blocks.append(("p", f"Not computed in this study (its config's analysis.skip_sections): {'; '.join(skipped)}."))
    return blocks
