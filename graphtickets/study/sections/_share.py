"""What the sections on shared structure (issue 24) have in common: the tickets they read, seed-level tests.

Not a section itself (no ``register``): the helpers of :mod:`.trained_ladder`, :mod:`.geometry`,
:mod:`.units`, :mod:`.allocation` and :mod:`.structure_accuracy`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

from graphtickets.analysis.inference import t_interval
from graphtickets.study.grid import DENSE
from graphtickets.study.methods import method_order
from graphtickets.study.sections import TEST_COLUMNS

__all__ = ["own_tickets", "settings", "seed_t_test", "tests_table", "load_model_ticket", "fmt_p", "layer_columns",
           "ordered_methods", "by_seed_mean"]


def own_tickets(tk: pd.DataFrame) -> pd.DataFrame:
    """The methods' own tickets: replicate 0, no ablation variant, no dense reference."""
    if tk is None or tk.empty or "method" not in tk:
        return pd.DataFrame()
    out = tk[tk["method"] != DENSE]
    if "variant" in out:
        out = out[out["variant"].fillna("") == ""]
    if "replicate" in out:
        out = out[out["replicate"].fillna(0) == 0]
    return out.reset_index(drop=True)


def settings(tk: pd.DataFrame) -> Iterator[tuple[str, pd.DataFrame]]:
    """``(prefix, rows)`` per (dataset, model): the prefix names a setting in test ids when there are several."""
    if tk.empty:
        return
    keys = [k for k in ("dataset", "model") if k in tk]
    if not keys:
        yield "", tk
        return
    groups = list(tk.groupby(keys, sort=False))
    for key, g in groups:
        key = key if isinstance(key, tuple) else (key,)
        yield ("" if len(groups) == 1 else "/".join(str(k) for k in key) + ":"), g


def seed_t_test(values: Sequence[float] | np.ndarray, *, null: float = 0.0) -> dict[str, Any]:
    """The mean over independent units (init seeds) with its 95 % t-interval and the two-sided t test
    of ``mean == null``: ``estimate, low, high, df, n, p`` (``p`` NaN with fewer than 2 units or
    no spread -- a test not made)."""
    ci = t_interval(values)
    x = np.asarray(ci.values, dtype=np.float64)
    p = float("nan")
    if ci.n >= 2 and np.std(x) > 1e-12 * max(1.0, float(np.abs(x).max())):
        p = float(sps.ttest_1samp(x, null).pvalue)
    return {"estimate": ci.estimate, "low": ci.low, "high": ci.high, "df": ci.df, "n": ci.n, "p": p}


def tests_table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Rows as a tests table (:data:`~graphtickets.study.sections.TEST_COLUMNS` first, extras after)."""
    df = pd.DataFrame(rows)
    if df.empty:
        return pd.DataFrame(columns=TEST_COLUMNS)
    return df[[*TEST_COLUMNS, *[c for c in df.columns if c not in TEST_COLUMNS]]]


def load_model_ticket(ctx: Any, cell_id: str) -> tuple[Any, Any]:
    """``(model, ticket)`` of a finished cell: the ticket from the store, its model rebuilt from its spec."""
    from graphtickets.errors import GraphticketsError
    from graphtickets.models import build_from_spec

    ticket = ctx.store.load_ticket(cell_id)
    spec = ticket.config.get("model")
    if not isinstance(spec, dict) or "name" not in spec:
        raise GraphticketsError(f"the ticket of cell {cell_id} records no model spec to rebuild its network from")
    return build_from_spec(spec), ticket


def fmt_p(q: float) -> str:
    return "not tested" if not np.isfinite(q) else f"{q:.2g}"


def layer_columns(tk: pd.DataFrame) -> list[str]:
    """The ``layer.<param>`` layer-density columns (network order)."""
    return [c for c in tk.columns if c.startswith("layer.")]


def ordered_methods(methods: Any) -> list[str]:
    return method_order(sorted(set(map(str, methods))))


def by_seed_mean(df: pd.DataFrame, value: str, keys: Sequence[str]) -> pd.DataFrame:
    """Mean of ``value`` per ``keys`` + seed (densities of one seed combined within the seed first)."""
    return df.groupby([*keys, "seed"], sort=False)[value].mean().reset_index()
