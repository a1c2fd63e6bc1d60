"""The study's tables, read from the store: tickets, distances, siblings (and writing them).

:func:`tables` gives the tickets table (one row per finished cell: accuracy, cost, every
graph metric, every layer density) and the distances table (one row per pair of tickets,
distance kind and comparison group); :func:`sibling_table` the distances between sibling
replicates; :func:`write_tables` writes them as CSV and Parquet.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import pandas as pd

from graphtickets._io import write_output
from graphtickets.study.grid import DENSE, Cell, GroupKey, ModelKey, SiblingKey
from graphtickets.study.methods import family_of, kind_of
from graphtickets.study.store import Store

__all__ = ["tables", "sibling_table", "write_tables", "write_named", "torch_equal"]


def tables(store: Store, cells: list[Cell] | None = None, *, transferred: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The tickets table (one row per finished cell) and the distances table of ``cells``.

    Transfer cells (a ticket found on another task) are not in it: ``transferred=True`` gives
    the table of those alone instead, with a ``found_on`` column (the task the ticket was found on).

    Columns of ``tickets``: ``id, dataset, model, method, kind, family, base_method, variant,
    density, seed, accuracy, loss,
    train_accuracy, density_actual, kept, total, search_seconds, search_epochs, train_seconds,
    seconds``, every metric as ``<graph>.<name>``, every layer density as ``layer.<param>``.
    ``distances``: ``group, dataset, model, density, seed, a, b, kind, value, null_mean,
    null_std, z`` (``a``/``b`` are methods; in the per-model ``.../all`` groups they are cell ids,
    and ``density``/``seed`` are empty).
    """
    df = store.cells()
    if cells is not None:
        df = df[df["id"].isin({c.id for c in cells})]
    df = df[df["status"] == "done"].reset_index(drop=True)
    moved = pd.Series([bool(cfg.get("transfer")) for cfg in df["config"]], index=df.index, dtype=bool)
    df = df[moved == transferred].reset_index(drop=True)
    rows = []
    for r in df.itertuples(index=False):
        res = r.results
        base = str(r.config.get("method", {}).get("name", r.method))
        row: dict[str, Any] = {
            "id": r.id, "dataset": r.dataset, "model": r.model, "method": r.method,
            "kind": kind_of(base), "family": family_of(base),
            "base_method": base, "variant": str((r.config.get("ablation") or {}).get("kind", "")),
            "density": r.density, "seed": r.seed, "replicate": int(r.config.get("replicate", 0)),
            "accuracy": res.get("accuracy"), "loss": res.get("loss"), "train_accuracy": res.get("train_accuracy"),
            "density_actual": res.get("density"), "kept": res.get("kept"), "total": res.get("total"),
            "search_seconds": res.get("search_seconds"), "search_epochs": res.get("search_epochs"),
            "train_seconds": res.get("train_seconds"), "seconds": r.seconds,
        }
        if transferred:
            row["found_on"] = str(r.config["transfer"]["found_on"]["name"])
        lds = res.get("layer_densities") or {}
        for name in res.get("layer_order") or []:  # network order (the JSON mapping is sorted)
            if name in lds:
                row[f"layer.{name}"] = lds[name]
        for name, v in lds.items():
            row.setdefault(f"layer.{name}", v)
        rows.append(row)
    tk = pd.DataFrame(rows)
    m = store.metrics()
    if not tk.empty and not m.empty:
        m = m[m["cell_id"].isin(set(tk["id"]))]
        wide = m.assign(col=m["graph"] + "." + m["name"]).pivot(index="cell_id", columns="col", values="value")
        tk = tk.merge(wide, left_on="id", right_index=True, how="left")
    if not tk.empty:
        order = {c.id: i for i, c in enumerate(cells)} if cells is not None else {}
        tk = tk.sort_values(by=["id"], key=lambda s: s.map(order) if order else s).reset_index(drop=True)
    return tk, _distances(store, cells)


#: A comparison group's key (:mod:`graphtickets.study.grid`).
Key = GroupKey | ModelKey | SiblingKey


def _group_keys(store: Store, cells: list[Cell] | None) -> dict[str, Key]:
    """Every comparison group key ``cells`` (default: every cell of the store) can have, by its stored label.

    The tables find a distance row's group by its label here, instead of reading the key back
    from the label.
    """
    if cells is not None:
        rows: Any = [(c.dataset, c.model, c.density, c.seed, c.method) for c in cells]
    else:
        df = store.cells()
        rows = zip(df["dataset"], df["model"], df["density"], df["seed"], df["method"], strict=True)
    out: dict[str, Key] = {}
    for dataset, model, density, seed, method in rows:
        g = GroupKey(str(dataset), str(model), float(density), int(seed))
        for k in (g, ModelKey(g.dataset, g.model), SiblingKey(g, str(method))):
            out.setdefault(k.label, k)
    return out


def _insert_group_columns(d: pd.DataFrame, groups: list[GroupKey | ModelKey | None], at: int) -> None:
    """Insert ``dataset, model, density, seed`` of each row's group into ``d`` from column ``at`` on.

    A per-model group (:class:`~graphtickets.study.grid.ModelKey`, ``.../all``) fills its dataset
    and model; its density and seed stay empty (its rows span densities and seeds).
    """
    nan = float("nan")
    d.insert(at, "dataset", [g.dataset if g is not None else nan for g in groups])
    d.insert(at + 1, "model", [g.model if g is not None else nan for g in groups])
    d.insert(at + 2, "density", pd.to_numeric(pd.Series([g.density if isinstance(g, GroupKey) else None for g in groups],
                                                        index=d.index, dtype=object), errors="coerce"))
    d.insert(at + 3, "seed", pd.to_numeric(pd.Series([g.seed if isinstance(g, GroupKey) else None for g in groups],
                                                     index=d.index, dtype=object), errors="coerce"))


def _distances(store: Store, cells: list[Cell] | None) -> pd.DataFrame:
    """The distances table of :func:`tables`: comparison and per-model groups (siblings: :func:`sibling_table`)."""
    d = store.distances()
    keys = _group_keys(store, cells)
    kept = [not isinstance(keys.get(g), SiblingKey) and (cells is None or g in keys) for g in d["grp"]]
    d = d[pd.Series(kept, index=d.index, dtype=bool)] if not d.empty else d
    d = d.rename(columns={"grp": "group"}).reset_index(drop=True)
    if not d.empty:
        _insert_group_columns(d, [_not_siblings(keys.get(g)) for g in d["group"]], at=1)
    return d


def _not_siblings(key: Key | None) -> GroupKey | ModelKey | None:
    return None if isinstance(key, SiblingKey) else key


def sibling_table(store: Store, cells: list[Cell] | None = None) -> pd.DataFrame:
    """The distances between siblings (same method, density and init seed; ``replicates: R``).

    Columns: ``group`` (the comparison group of replicate 0), ``dataset, model, density,
    seed, method``, ``a, b`` (``r0``, ``r1``, ...), ``kind, value`` and the null columns of
    :func:`tables`' distances, and ``identical``: whether the two siblings' masks are the same
    (a method that draws nothing at random given the init: data-free magnitude, SynFlow).
    Empty without replicates.
    """
    d = store.distances()
    if d.empty:
        return pd.DataFrame(columns=["group", "dataset", "model", "density", "seed", "method", "a", "b", "kind",
                                     "value", "identical"])
    keys = _group_keys(store, cells)
    sib = [k if isinstance(k, SiblingKey) else None for k in (keys.get(g) for g in d["grp"])]
    d = d[pd.Series([k is not None for k in sib], index=d.index, dtype=bool)].copy()
    found = [k for k in sib if k is not None]
    d.insert(0, "group", pd.Series([k.group.label for k in found], index=d.index, dtype=object))
    d.insert(1, "method", pd.Series([k.method for k in found], index=d.index, dtype=object))
    d = d.drop(columns=["grp"])
    if not d.empty:
        _insert_group_columns(d, [k.group for k in found], at=1)
    same = _identical_siblings(store, d, found)
    d["identical"] = [same.get((k, a, b)) for k, a, b in zip(found, d["a"], d["b"], strict=True)]
    return d.reset_index(drop=True)


def _identical_siblings(store: Store, d: pd.DataFrame, keys: list[SiblingKey]) -> dict[tuple[SiblingKey, str, str], bool]:
    """For each sibling pair of ``d`` (rows keyed by ``keys``): whether the two tickets' masks are equal."""
    if d.empty:
        return {}
    ids: dict[tuple[SiblingKey, str], str] = {}  # (sibling group, r<k>) -> cell id
    for r in store.cells().itertuples(index=False):
        if r.status == "done" and not (r.config.get("ablation") or {}) and r.method != DENSE:
            key = SiblingKey(GroupKey(str(r.dataset), str(r.model), float(r.density), int(r.seed)), str(r.method))
            ids[(key, f"r{int(r.config.get('replicate', 0))}")] = str(r.id)
    same: dict[tuple[SiblingKey, str, str], bool] = {}
    for k, a, b in set(zip(keys, d["a"], d["b"], strict=True)):
        if (k, a) in ids and (k, b) in ids:
            ta, tb = store.load_ticket(ids[(k, a)]), store.load_ticket(ids[(k, b)])
            same[(k, a, b)] = set(ta.masks) == set(tb.masks) and all(torch_equal(ta.masks[n], tb.masks[n])
                                                                     for n in ta.masks)
    return same


def torch_equal(a: Any, b: Any) -> bool:
    """Whether two mask tensors are equal (shape and values)."""
    import torch

    return bool(a.shape == b.shape and torch.equal(a, b))


def _parquet(df: pd.DataFrame, f: Any) -> None:
    df.to_parquet(f, index=False) if not _mixed(df) else _plain(df).to_parquet(f, index=False)


def _mixed(df: pd.DataFrame) -> list[str]:
    """Object columns holding values of more than one type (e.g. the tests of several sections
    put together, where one section's extra column holds names and another's counts)."""
    return [c for c in df.columns if df[c].dtype == object
            and len({type(v) for v in df[c] if v is not None and not (isinstance(v, float) and v != v)}) > 1]


def _plain(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with its mixed object columns as text (missing values stay missing): Parquet needs one type."""
    return df.assign(**{c: df[c].map(lambda v: v if v is None or (isinstance(v, float) and v != v) else str(v))
                        for c in _mixed(df)})


def write_tables(out: str | os.PathLike[str], tickets: pd.DataFrame, distances: pd.DataFrame,
                 siblings: pd.DataFrame | None = None) -> list[Path]:
    """``tables/tickets.{csv,parquet}`` and ``tables/distances.{csv,parquet}`` (atomic writes),
    and ``tables/siblings.{csv,parquet}`` when ``siblings`` (:func:`sibling_table`) has rows."""
    named = [("tickets", tickets), ("distances", distances)]
    if siblings is not None and not siblings.empty:
        named.append(("siblings", siblings))
    return write_named(out, named)


def write_named(out: str | os.PathLike[str], named: list[tuple[str, pd.DataFrame]]) -> list[Path]:
    """Each ``(name, table)`` as ``out/tables/<name>.csv`` and ``.parquet`` (atomic writes)."""
    folder = Path(out) / "tables"
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, df in named:
        for ext in ("csv", "parquet"):
            path = folder / f"{name}.{ext}"
            if ext == "csv":
                write_output(path, df.to_csv(index=False), what="table")
            else:
                write_output(path, functools.partial(_parquet, df), what="table")
            written.append(path)
    return written
