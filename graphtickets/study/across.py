"""Findings across architectures: which of a study's main statements hold on every model, which on one.

A study with two or more ``(dataset, model)`` settings (e.g. the MLP and a ResNet on MNIST-1D)
reports its findings per setting (:func:`graphtickets.study.report.findings` on each one's
tickets, distances and siblings) and a short table of the main statements, each tested on
every setting with the statistics the report uses, never a bare ranking:

* **accuracy order** -- "A's tickets are more accurate than B's at density d": a paired
  t-test over init seeds (:func:`~graphtickets.study.alike.paired_difference`), Benjamini-
  Hochberg over every (pair, density) of the setting;
* **sanity checks** -- "A beats (is worse than) its layer-shuffled / re-initialized variant at
  d": the report's paired sanity intervals (:func:`~graphtickets.study.report.sanity_table`),
  their p-values Benjamini-Hochberg corrected over the setting's checks;
* **most alike** -- "P is among the 3 most alike pairs relative to the sibling floor": the
  excess-over-siblings ranking (the mean percentile rank over distance families without
  siblings) -- a ranking, not a test, and said so in its detail; whether a pair is more alike
  than a null is tested once, by the null ladder (:mod:`graphtickets.study.sections.ladder`,
  calibrated empirical p-values in ``tables/tests.csv``);
* **structure -> function** -- "distance S predicts functional distance F": Spearman's rho with
  the within-group permutation p, BH over the combinations
  (:func:`~graphtickets.study.alike.structure_function`).

A statement *holds* on a setting when its test rejects there at FDR
:data:`~graphtickets.study.alike.FDR` in the stated direction; it is *not tested* where a
method is missing (or a test could not be made). Each function returns one row per statement
(both directions of an order), so a statement found on one setting is looked up on the others.

References
----------
Y. Benjamini, Y. Hochberg, "Controlling the false discovery rate", JRSS B 1995.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from graphtickets._io import write_output
from graphtickets.study.alike import FDR, paired_difference
from graphtickets.study.grid import DENSE

__all__ = ["settings", "setting_label", "accuracy_statements", "sanity_statements", "alike_statements",
           "structure_function_statements", "statements", "holds_table", "holds_sentences", "TOPICS", "TOP_ALIKE",
           "STATEMENT_COLUMNS"]

#: The topics of the main statements, in report order.
TOPICS = ("accuracy order", "sanity check", "most alike", "structure -> function")
#: How many of the most alike pairs a setting names.
TOP_ALIKE = 3
#: Columns of every statements table (``test``: the test a statement comes from; both directions of an
#: order share one).
STATEMENT_COLUMNS = ["topic", "statement", "holds", "detail", "test"]
_VARIANT_NAMES = {"shuffle": "layer-shuffled", "reinit": "re-initialized"}


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=STATEMENT_COLUMNS)


def settings(tk: pd.DataFrame) -> list[tuple[str, str]]:
    """The ``(dataset, model)`` settings of a tickets table, in order of appearance.

    >>> settings(pd.DataFrame({"dataset": ["d", "d", "d"], "model": ["mlp", "cnn", "mlp"]}))
    [('d', 'mlp'), ('d', 'cnn')]
    """
    if tk.empty or "model" not in tk:
        return []
    return list(dict.fromkeys(zip(tk["dataset"].astype(str), tk["model"].astype(str), strict=True)))


def setting_label(setting: tuple[str, str], many_datasets: bool) -> str:
    """The model label, with its dataset when the study has several (``mlp(100,100) on mnist1d``)."""
    return f"{setting[1]} on {setting[0]}" if many_datasets else setting[1]


def _own(tk: pd.DataFrame) -> pd.DataFrame:
    """The methods' own tickets: replicate 0, no ablation variant, no dense reference."""
    out = tk[tk["method"] != DENSE]
    if "variant" in out:
        out = out[out["variant"].fillna("") == ""]
    if "replicate" in out:
        out = out[out["replicate"].fillna(0) == 0]
    return out


def accuracy_statements(tk: pd.DataFrame, alpha: float = FDR) -> pd.DataFrame:
    """"A's tickets are more accurate than B's at density d", both directions of every pair.

    Per density and method pair, the paired t-test over the init seeds both have
    (:func:`~graphtickets.study.alike.paired_difference` of A - B); the p-values of all pairs
    and densities of this table are Benjamini-Hochberg corrected together. A statement holds
    when its pair is rejected at FDR ``alpha`` with the stated sign. Pairs with fewer than two
    common seeds are not tested (no rows).
    """
    from graphtickets.analysis import fdr_bh

    own = _own(tk)
    tests = []
    for d, g in own.groupby("density"):
        acc = g.groupby(["method", "seed"])["accuracy"].mean()
        methods = sorted(set(g["method"]))
        for i, a in enumerate(methods):
            for b in methods[i + 1:]:
                sa, sb = acc.xs(a, level="method"), acc.xs(b, level="method")
                seeds = sorted(set(sa.index) & set(sb.index))
                r = paired_difference(sa.reindex(seeds).to_numpy(), sb.reindex(seeds).to_numpy())
                if r["n"] >= 2 and np.isfinite(r["p"]):
                    tests.append((float(d), a, b, r))
    if not tests:
        return _frame([])
    q, rej = fdr_bh([t[3]["p"] for t in tests], alpha=alpha)
    rows = []
    for (d, a, b, r), qi, ri in zip(tests, q, rej, strict=True):
        for x, y, sign in ((a, b, 1.0), (b, a, -1.0)):
            diff = sign * r["mean"]
            rows.append({"topic": "accuracy order", "statement": f"{x} more accurate than {y} at d={d:g}",
                         "holds": bool(ri and diff > 0),
                         "detail": f"{diff:+.3f} (q = {qi:.2g}, {r['n']} seeds)", "test": f"{a} vs {b} d={d:g}"})
    return _frame(rows)


def sanity_statements(sanity: pd.DataFrame | None, alpha: float = FDR) -> pd.DataFrame:
    """"A beats / is worse than its <variant> variant at d", from :func:`~graphtickets.study.report.sanity_table`.

    The table's paired p-values (rows with a test: two or more seeds) are Benjamini-Hochberg
    corrected together; a statement holds when its check is rejected at FDR ``alpha`` with
    the stated sign (unlike the report's per-check 95 % intervals, which are uncorrected).
    """
    from graphtickets.analysis import fdr_bh

    if sanity is None or sanity.empty:
        return _frame([])
    t = sanity[sanity["p"].notna()]
    if t.empty:
        return _frame([])
    q, rej = fdr_bh(t["p"].to_numpy(dtype=float), alpha=alpha)
    rows = []
    for r, qi, ri in zip(t.itertuples(index=False), q, rej, strict=True):
        v = _VARIANT_NAMES.get(str(r.variant), str(r.variant))
        for word, sign in (("beats", 1.0), ("is worse than", -1.0)):
            rows.append({"topic": "sanity check", "statement": f"{r.method} {word} its {v} variant at d={r.density:g}",
                         "holds": bool(ri and sign * r.difference > 0),
                         "detail": f"{r.difference:+.3f} (q = {qi:.2g}, {r.n} seeds)",
                         "test": f"{r.method} vs {r.variant} d={r.density:g}"})
    return _frame(rows)


def alike_statements(f: Mapping[str, Any], top: int = TOP_ALIKE) -> pd.DataFrame:
    """"P is among the ``top`` most alike pairs ...", one row per ranked pair.

    The ranking is the findings' excess over siblings (``f["excess_ranking"]``: 0 = as alike
    as siblings, 1 = as different as the layer-shuffled null) or, without siblings, the mean
    percentile rank over distance families (``f["consensus"]``). A pair's statement holds when
    it ranks within ``top``; it is a ranking, not a test (the detail says so): the tests against
    nulls are the null ladder's (:mod:`graphtickets.study.sections.ladder`).
    """
    siblings = f.get("excess_ranking")
    ranking = siblings if siblings is not None and len(siblings) else f.get("consensus")
    if ranking is None or not len(ranking):
        return _frame([])
    what = "relative to the sibling floor" if ranking is siblings else "by mean rank over distance families"
    rows = []
    for rank, (pair, value) in enumerate(ranking.items(), start=1):
        rows.append({"topic": "most alike",
                     "statement": f"{pair} among the {top} most alike pairs ({what})",
                     "holds": bool(rank <= top),
                     "detail": f"rank {rank} ({float(value):.2f}); a ranking, not a test (tests against nulls: the "
                               f"null ladder, tables/tests.csv)",
                     "test": str(pair)})
    return _frame(rows)


def structure_function_statements(sf: pd.DataFrame | None) -> pd.DataFrame:
    """"Distance S predicts functional distance F" per tested combination of :func:`~graphtickets.study.alike.structure_function`.

    Holds when the combination survives Benjamini-Hochberg (``significant``) with rho > 0.
    """
    if sf is None or sf.empty:
        return _frame([])
    rows = []
    for r in sf[sf["p"].notna()].itertuples(index=False):
        rows.append({"topic": "structure -> function",
                     "statement": f"{r.structure} distance predicts {r.function} distance (Spearman rho > 0)",
                     "holds": bool(r.significant and r.rho > 0),
                     "detail": f"rho = {r.rho:.2f} (q = {r.q:.2g}, {int(r.pairs)} pairs)",
                     "test": f"{r.structure} vs {r.function}"})
    return _frame(rows)


def statements(tk: pd.DataFrame, f: Mapping[str, Any], alpha: float = FDR) -> pd.DataFrame:
    """Every main statement of one setting: its tickets ``tk`` and its findings ``f`` (:func:`~graphtickets.study.report.findings`)."""
    parts = [accuracy_statements(tk, alpha), sanity_statements(f.get("sanity"), alpha), alike_statements(f),
             structure_function_statements(f.get("structure_function"))]
    nonempty = [p for p in parts if not p.empty]
    return pd.concat(nonempty, ignore_index=True) if nonempty else _frame([])


def holds_table(per_setting: Mapping[str, pd.DataFrame], *, keep_all: bool = False) -> pd.DataFrame:
    """Statement x setting: where each statement holds.

    Parameters
    ----------
    per_setting : mapping
        ``{setting label: statements table}`` (:func:`statements`).
    keep_all : bool, default False
        Keep statements that hold on no setting (by default only those holding on one or more).

    Returns
    -------
    DataFrame
        ``topic, statement, holds_on`` (``both`` -- ``all`` with more than two settings --,
        ``only <label>``, the labels where it holds, or ``neither``/``none``), and per setting
        ``<label>`` (``yes``, ``no``, ``not tested``) and ``<label> detail``; sorted by topic,
        then statements that hold everywhere first.
    """
    labels = list(per_setting)
    cols = ["topic", "statement", "holds_on", *[c for lb in labels for c in (lb, f"{lb} detail")]]
    frames = [df.assign(setting=lb) for lb, df in per_setting.items() if not df.empty]
    if not frames:
        return pd.DataFrame(columns=cols)
    long = pd.concat(frames, ignore_index=True)
    rows = []
    for (topic, statement), g in long.groupby(["topic", "statement"], sort=False):
        by = {str(r.setting): r for r in g.itertuples(index=False)}
        where = [lb for lb in labels if lb in by and bool(by[lb].holds)]
        if not where and not keep_all:
            continue
        everywhere = len(where) == len(labels)
        holds_on = (("both" if len(labels) == 2 else "all") if everywhere
                    else f"only {where[0]}" if len(where) == 1
                    else ", ".join(where) if where else ("neither" if len(labels) == 2 else "none"))
        row: dict[str, Any] = {"topic": topic, "statement": statement, "holds_on": holds_on,
                               "_order": (TOPICS.index(topic) if topic in TOPICS else len(TOPICS), -len(where))}
        for lb in labels:
            row[lb] = ("yes" if bool(by[lb].holds) else "no") if lb in by else "not tested"
            row[f"{lb} detail"] = by[lb].detail if lb in by else ""
        rows.append(row)
    if not rows:
        return pd.DataFrame(columns=cols)
    out = pd.DataFrame(rows)
    out = out.sort_values("_order", kind="stable").drop(columns="_order").reset_index(drop=True)
    return out[cols]


def holds_sentences(per_setting: Mapping[str, pd.DataFrame], table: pd.DataFrame) -> list[str]:
    """Per topic: how many statements hold on every setting, on some only, and how many were tested."""
    labels = list(per_setting)
    out = []
    for topic in TOPICS:
        tested = {lb: df[df["topic"] == topic] for lb, df in per_setting.items()}
        if all(t.empty for t in tested.values()):
            continue
        t = table[table["topic"] == topic] if not table.empty else table
        every = int((t["holds_on"].isin(["both", "all"])).sum()) if not t.empty else 0
        some = len(t) - every
        per = ", ".join(f"{int(x['holds'].sum())} holding of {x['test'].nunique()} tested on {lb}"
                        for lb, x in tested.items())
        out.append(f"{topic}: {every} statement(s) hold on {'both' if len(labels) == 2 else 'all'} architectures, "
                   f"{some} on only {'one' if len(labels) == 2 else 'some'} ({per}).")
    return out


def slug(label: str) -> str:
    """A folder name for a setting label (``mlp(100,100)`` -> ``mlp_100_100``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", label).strip("_") or "model"


def write_holds(out: str | Path, table: pd.DataFrame) -> Path:
    """``tables/architectures.csv`` (atomic)."""

    folder = Path(out) / "tables"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "architectures.csv"
    write_output(path, table.to_csv(index=False), what="table")
    return path


def split(tk: pd.DataFrame, dist: pd.DataFrame, sib: pd.DataFrame | None,
          setting: tuple[str, str]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame | None]:
    """The rows of one ``(dataset, model)`` setting of the tickets, distances and siblings tables.

    Rows are kept by their ``dataset`` and ``model`` columns; the distances table fills both for
    its per-model (MDS) groups too (:func:`graphtickets.study.grid.model_rows`), so each setting
    keeps its own MDS distances.
    """
    def part(df: pd.DataFrame) -> pd.DataFrame:
        if df is None or df.empty or "model" not in df:
            return df
        return df[(df["dataset"].astype(str) == setting[0]) & (df["model"].astype(str) == setting[1])]

    return part(tk), part(dist), (part(sib) if sib is not None else None)


def table_blocks(labels: Sequence[str], per_setting: Mapping[str, pd.DataFrame],
                 table: pd.DataFrame) -> list[tuple[str, Any]]:
    """The report section: a short explanation, the per-topic counts and the holds table."""
    n = "both" if len(labels) == 2 else "all"
    blocks: list[tuple[str, Any]] = [
        ("h2", f"Across architectures: what holds on {n} ({', '.join(labels)}) and what on only "
               f"{'one' if len(labels) == 2 else 'some'}"),
        ("p", "Each main statement is tested on every architecture with the report's statistics: accuracy order by "
              "a paired t-test over init seeds, sanity checks by the paired intervals' p-values, both "
              f"Benjamini-Hochberg corrected per architecture at FDR {FDR:g}; 'most alike' = within the top "
              f"{TOP_ALIKE} of the ranking and closer than the layer-shuffled null (BH) in at least half of its "
              "kinds; structure -> function by the BH-corrected Spearman/Mantel test. Rows: statements that hold on "
              "at least one architecture (all of them in `tables/architectures.csv`); 'not tested': a method or "
              "test missing there."),
        ("ul", holds_sentences(per_setting, table) or ["No statement could be tested."]),
    ]
    if not table.empty:
        show = table[["topic", "statement", "holds_on"]].copy()
        for lb in labels:
            show[lb] = [f"{v}: {d}" if d else v for v, d in zip(table[lb], table[f"{lb} detail"], strict=True)]
        blocks.append(("table", show.set_index(["topic", "statement"])))
    return blocks
