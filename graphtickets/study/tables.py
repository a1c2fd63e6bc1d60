"""The study's tables, read from the store: tickets, distances, siblings (and writing them).

:func:`tables` gives the tickets table (one row per finished cell: accuracy, cost, every
graph metric, every layer density) and the distances table (one row per pair of tickets,
distance kind and comparison group); :func:`sibling_table` the distances between sibling
replicates; :func:`write_tables` writes them as CSV and Parquet.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd

from graphtickets.study.comparisons import SIBLINGS
from graphtickets.study.grid import DENSE, Cell, group_key
from graphtickets.study.store import Store

__all__ = ["tables", "sibling_table", "write_tables", "torch_equal"]


def tables(store: Store, cells: list[Cell] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The tickets table (one row per finished cell) and the distances table of ``cells``.

    Columns of ``tickets``: ``id, dataset, model, method, kind, family, base_method, variant,
    density, seed, accuracy, loss,
    train_accuracy, density_actual, kept, total, search_seconds, search_epochs, train_seconds,
    seconds``, every metric as ``<graph>.<name>``, every layer density as ``layer.<param>``.
    ``distances``: ``group, dataset, model, density, seed, a, b, kind, value, null_mean,
    null_std, z`` (``a``/``b`` are methods; in ``.../all`` groups they are cell ids).
    """
    from graphtickets.pruning import METHODS

    df = store.cells()
    if cells is not None:
        df = df[df["id"].isin({c.id for c in cells})]
    df = df[df["status"] == "done"].reset_index(drop=True)
    rows = []
    for r in df.itertuples(index=False):
        res = r.results
        base = str(r.config.get("method", {}).get("name", r.method))
        row: dict[str, Any] = {
            "id": r.id, "dataset": r.dataset, "model": r.model, "method": r.method,
            "kind": METHODS[base].kind if base in METHODS else ("reference" if base == DENSE else ""),
            "family": METHODS[base].family if base in METHODS else ("reference" if base == DENSE else ""),
            "base_method": base, "variant": str((r.config.get("ablation") or {}).get("kind", "")),
            "density": r.density, "seed": r.seed, "replicate": int(r.config.get("replicate", 0)),
            "accuracy": res.get("accuracy"), "loss": res.get("loss"), "train_accuracy": res.get("train_accuracy"),
            "density_actual": res.get("density"), "kept": res.get("kept"), "total": res.get("total"),
            "search_seconds": res.get("search_seconds"), "search_epochs": res.get("search_epochs"),
            "train_seconds": res.get("train_seconds"), "seconds": r.seconds,
        }
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
    d = store.distances()
    if not d.empty:
        d = d[~d["grp"].str.contains(SIBLINGS, regex=False)]  # the noise floor: sibling_table
    if cells is not None:
        keys = {c.group for c in cells} | {f"{c.dataset}/{c.model}/all" for c in cells}
        d = d[d["grp"].isin(keys)]
    d = d.rename(columns={"grp": "group"}).reset_index(drop=True)
    if not d.empty:
        parts = d["group"].str.rsplit("/", n=2, expand=True)
        d.insert(1, "dataset", parts[0].str.split("/", n=1).str[0])
        d.insert(2, "model", parts[0].str.split("/", n=1).str[1])
        d.insert(3, "density", pd.to_numeric(parts[1].str.removeprefix("d"), errors="coerce"))
        d.insert(4, "seed", pd.to_numeric(parts[2].str.removeprefix("s"), errors="coerce"))
    return tk, d


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
    d = d[d["grp"].str.contains(SIBLINGS, regex=False)].copy()
    if cells is not None:
        keys = {f"{c.group}{SIBLINGS}{c.method}" for c in cells}
        d = d[d["grp"].isin(keys)]
    parts = d["grp"].str.split(SIBLINGS, n=1, regex=False)
    d.insert(0, "group", parts.str[0])
    d.insert(1, "method", parts.str[1])
    d = d.drop(columns=["grp"])
    if not d.empty:
        g = d["group"].str.rsplit("/", n=2, expand=True)
        d.insert(1, "dataset", g[0].str.split("/", n=1).str[0])
        d.insert(2, "model", g[0].str.split("/", n=1).str[1])
        d.insert(3, "density", pd.to_numeric(g[1].str.removeprefix("d"), errors="coerce"))
        d.insert(4, "seed", pd.to_numeric(g[2].str.removeprefix("s"), errors="coerce"))
    same: dict[tuple[str, str, str], bool] = {}
    if not d.empty:
        ids: dict[tuple[str, str, str], str] = {}  # (group, method, r<k>) -> cell id
        for r in store.cells().itertuples(index=False):
            if r.status == "done" and not (r.config.get("ablation") or {}) and r.method != DENSE:
                key = group_key(r.dataset, r.model, float(r.density), int(r.seed))
                ids[(key, str(r.method), f"r{int(r.config.get('replicate', 0))}")] = str(r.id)
        for g, m, a, b in {(r.group, r.method, r.a, r.b) for r in d.itertuples()}:
            if (g, m, a) in ids and (g, m, b) in ids:
                ta, tb = store.load_ticket(ids[(g, m, a)]), store.load_ticket(ids[(g, m, b)])
                same[(g, m, f"{a}|{b}")] = set(ta.masks) == set(tb.masks) and all(
                    torch_equal(ta.masks[n], tb.masks[n]) for n in ta.masks)
    d["identical"] = [same.get((g, m, f"{a}|{b}")) for g, m, a, b in zip(d["group"], d["method"], d["a"], d["b"],
                                                                        strict=True)]
    return d.reset_index(drop=True)


def torch_equal(a: Any, b: Any) -> bool:
    """Whether two mask tensors are equal (shape and values)."""
    import torch

    return bool(a.shape == b.shape and torch.equal(a, b))


def write_tables(out: str | os.PathLike[str], tickets: pd.DataFrame, distances: pd.DataFrame,
                 siblings: pd.DataFrame | None = None) -> list[Path]:
    """``tables/tickets.{csv,parquet}`` and ``tables/distances.{csv,parquet}`` (atomic writes),
    and ``tables/siblings.{csv,parquet}`` when ``siblings`` (:func:`sibling_table`) has rows."""
    folder = Path(out) / "tables"
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    named = [("tickets", tickets), ("distances", distances)]
    if siblings is not None and not siblings.empty:
        named.append(("siblings", siblings))
    for name, df in named:
        for ext in ("csv", "parquet"):
            path = folder / f"{name}.{ext}"
            tmp = path.with_suffix(f".{ext}.tmp")
            if ext == "csv":
                df.to_csv(tmp, index=False)
            else:
                df.to_parquet(tmp, index=False)
            os.replace(tmp, path)
            written.append(path)
    return written
