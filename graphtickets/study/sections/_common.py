"""What the statistics sections share: the rows they read, settings, the tests-table builder.

Not a section (no ``register``): helpers of :mod:`~graphtickets.study.sections.accuracy`,
``sanity``, ``siblings``, ``structure_function``, ``consensus`` and ``effective``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from graphtickets.study.grid import DENSE, model_rows

__all__ = ["first_replicate", "own_tickets", "settings", "setting_label", "tests_frame", "pair_name", "group_rows",
           "of_setting", "FAMILIES", "family", "representatives",
           "q_of", "SETTING"]

#: The columns that name a setting (one dataset and one model: an architecture).
SETTING = ["dataset", "model"]


def first_replicate(tk: pd.DataFrame) -> pd.DataFrame:
    """Replicate 0 of every cell (siblings enter only the sibling floor): the rows of every accuracy table."""
    return tk[tk["replicate"].fillna(0) == 0] if "replicate" in tk else tk


def own_tickets(tk: pd.DataFrame) -> pd.DataFrame:
    """The methods' own tickets of replicate 0: no dense reference, no ablation variant."""
    t = first_replicate(tk)
    t = t[t["method"] != DENSE]
    return t[t["variant"].fillna("") == ""] if "variant" in t else t


def settings(df: pd.DataFrame) -> list[tuple[str, str]]:
    """The ``(dataset, model)`` settings of a table, in order of appearance."""
    if df.empty or any(c not in df for c in SETTING):
        return []
    return list(dict.fromkeys(zip(df["dataset"].astype(str), df["model"].astype(str), strict=True)))


def setting_label(setting: tuple[str, str], many: bool) -> str:
    """``"dataset/model"``, or an empty string when the study has one setting (tests need no prefix)."""
    return f"{setting[0]}/{setting[1]}" if many else ""


def of_setting(df: pd.DataFrame, setting: tuple[str, str]) -> pd.DataFrame:
    """The rows of ``df`` of one setting."""
    return df[(df["dataset"].astype(str) == setting[0]) & (df["model"].astype(str) == setting[1])]


def pair_name(a: Any, b: Any) -> str:
    """An unordered method pair, ``"a ~ b"`` with the names sorted."""
    return " ~ ".join(sorted((str(a), str(b))))


def group_rows(dist: pd.DataFrame) -> pd.DataFrame:
    """The rows of the per-(density, init seed) comparison groups (no per-model map rows)."""
    if dist.empty or "group" not in dist:
        return dist.iloc[0:0]
    return dist[~model_rows(dist)]


def tests_frame(rows: Iterable[Mapping[str, Any]], extra: Sequence[str] = ()) -> pd.DataFrame:
    """A ``tests`` table (:data:`~graphtickets.study.sections.TEST_COLUMNS` then ``extra``) from row dicts."""
    from graphtickets.study.sections import TEST_COLUMNS

    cols = [*TEST_COLUMNS, *extra]
    out = pd.DataFrame(list(rows), columns=cols)
    out["p"] = pd.to_numeric(out["p"], errors="coerce").astype(float)
    return out


def q_of(tables: Mapping[str, pd.DataFrame]) -> dict[str, float]:
    """test id -> global ``q`` of a section's tests table (NaN where the report has not adjusted it yet)."""
    t = tables.get("tests")
    if t is None or t.empty:
        return {}
    q = t["q"] if "q" in t else pd.Series(np.nan, index=t.index)
    return {str(k): float(v) for k, v in zip(t["test"], q, strict=True)}


#: Families of structural distance kinds that carry (nearly) the same information: a section
#: reports per family and never averages across families.
FAMILIES = {
    "jaccard": "mask overlap", "hamming": "mask overlap", "ged": "mask overlap", "ged_normalized": "mask overlap",
    "aligned_jaccard": "overlap after unit matching", "ged_approx": "overlap after unit matching",
    "layer_density": "layer allocation", "spectral": "spectrum", "netlsd": "spectrum", "degree": "degrees",
    "agreement": "predictions", "agreement_kappa": "predictions", "error_consistency": "errors",
    "cka": "representations",
}


def family(kind: str) -> str:
    """The family of a distance kind (the kind itself when it has none)."""
    return FAMILIES.get(str(kind), str(kind))


def representatives(kinds: Iterable[str]) -> dict[str, str]:
    """family -> its representative kind: of each family, the first of ``kinds`` in :data:`FAMILIES` order
    (jaccard for mask overlap, agreement for predictions); kinds of no family represent themselves."""
    order = {k: i for i, k in enumerate(FAMILIES)}
    out: dict[str, str] = {}
    for k in sorted(map(str, kinds), key=lambda k: order.get(k, len(order))):
        out.setdefault(family(k), str(k))
    return out
