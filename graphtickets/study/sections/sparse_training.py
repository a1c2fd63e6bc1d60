"""Report section ``sparse_training``: the methods that train sparse, their own run beside their ticket.

SET, RigL and gradual magnitude pruning (and any method whose ticket records
``meta["run_accuracy"]``, the study's ``sparse_run_accuracy`` result) train one network while
its mask changes. The lottery comparison trains their final mask from the model's init like
every ticket; a reader of these papers expects the accuracy of the method's own sparse run as
well. Table ``sparse_training``: per dataset, model, method and density, both accuracies (mean
over init seeds, replicate 0), the gap (ticket minus own run, paired by seed, with its 95 % t
interval) and where the run's accuracy was measured (``eval``: the test split; ``train``: the
running training accuracy of its last epoch). The report also names each such method's
deviations from its paper, read from the method's module docstring (the same text as the
README's method table).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping

import numpy as np
import pandas as pd

from graphtickets.study import sections
from graphtickets.study.grid import DENSE
from graphtickets.study.sections import Block, Context, Section


def _rows(ctx: Context) -> pd.DataFrame:
    """One row per finished own cell (replicate 0) whose results carry the method's own run accuracy."""
    if ctx.store is None:
        return pd.DataFrame()
    df = ctx.store.cells(ids=[c.id for c in ctx.cells] if ctx.cells else None)
    rows = []
    for r in df[df["status"] == "done"].itertuples(index=False):
        res, cfg = r.results, r.config
        if r.method == DENSE or (cfg.get("ablation") or {}).get("kind") or int(cfg.get("replicate", 0)):
            continue
        if res.get("sparse_run_accuracy") is None:
            continue
        rows.append({"dataset": r.dataset, "model": r.model, "method": r.method, "density": r.density, "seed": r.seed,
                     "run_accuracy": float(res["sparse_run_accuracy"]),
                     "run_accuracy_on": str(res.get("sparse_run_accuracy_on") or ""),
                     "ticket_accuracy": float(res["accuracy"]) if res.get("accuracy") is not None else np.nan})
    return pd.DataFrame(rows)


def compute(ctx: Context) -> dict[str, pd.DataFrame]:
    """The ``sparse_training`` table (none when no method recorded its own run)."""
    from graphtickets.analysis.inference import t_interval
    from graphtickets.study.methods import method_order

    t = _rows(ctx)
    if t.empty:
        return {}
    out = []
    for (ds, mo, me, d), g in t.groupby(["dataset", "model", "method", "density"], sort=False):
        gap = t_interval(g["ticket_accuracy"] - g["run_accuracy"])
        out.append({"dataset": ds, "model": mo, "method": me, "density": d, "n": int(len(g)),
                    "run_accuracy": float(g["run_accuracy"].mean()), "ticket_accuracy": float(g["ticket_accuracy"].mean()),
                    "gap": gap.estimate, "gap_low": gap.low, "gap_high": gap.high,
                    "run_accuracy_on": "/".join(sorted(set(g["run_accuracy_on"])))})
    s = pd.DataFrame(out)
    order = {m: i for i, m in enumerate(method_order(list(s["method"])))}
    s = s.assign(_o=s["method"].map(order)).sort_values(["dataset", "model", "density", "_o"],
                                                        ascending=[True, True, False, True])
    return {"sparse_training": s.drop(columns="_o").reset_index(drop=True)}


def deviations(method: str) -> str:
    """The deviations from its paper that ``method``'s module docstring names ("" when none).

    The paragraph(s) from the one starting with "Deviation" (or "Choices and deviations") up to
    the references, as plain text.

    >>> deviations("gmp").startswith("`start` and `end` are fractions of the run")
    True
    """
    from graphtickets.pruning import METHODS

    spec = METHODS.get(method)
    mod = sys.modules.get(spec.fn.__module__) if spec is not None else None
    doc = (mod.__doc__ or "") if mod is not None else ""
    m = re.search(r"^((?:Choices and d|D)eviations?\b.*?)(?=^References\n|\Z)", doc, flags=re.S | re.M)
    if m is None:
        return ""
    text = re.sub(r":\w+:`~?([^`]+)`", lambda k: k.group(1).split(".")[-1], m.group(1))
    text = text.replace("``", "`")
    text = re.sub(r"^(?:Choices and deviations|Deviations?)(?: \(named\))?:\s*", "", text)
    text = re.sub(r"(^|\n)\s*\* ", r"\1; ", text)
    return re.sub(r"\s+", " ", text).strip().lstrip("; ")


def _sparse_module(method: str) -> bool:
    """Whether ``method`` is one of :mod:`graphtickets.pruning.sparse_training`."""
    from graphtickets.pruning import METHODS

    spec = METHODS.get(method)
    return spec is not None and spec.fn.__module__.startswith("graphtickets.pruning.sparse_training")


def _shown(s: pd.DataFrame, cols: list[str]) -> pd.DataFrame:
    """``cols`` of ``s`` indexed by method (dataset and model too when the study has several), rounded."""
    several = s[["dataset", "model"]].drop_duplicates().shape[0] > 1
    return s[[*(["dataset", "model"] if several else []), "method", *cols]].set_index("method").round(4)


def render(tables: Mapping[str, pd.DataFrame], ctx: Context) -> list[Block]:
    """The table and each method's named deviations."""
    s = tables["sparse_training"]
    blocks: list[Block] = [
        ("h2", "Methods that train sparse: their own run beside their ticket"),
        ("p", "SET, RigL and gradual magnitude pruning train one network while its mask changes; their ticket is "
              "the final mask, trained from the model's init like every ticket (`ticket_accuracy`, the accuracy the "
              "other tables use). `run_accuracy` is the method's own sparse run at its end (on `eval`: the test "
              "split; on `train`: its last epoch's running training accuracy); `gap` = ticket minus own run, mean "
              "over init seeds (paired) with its 95 % t interval."),
        ("table", _shown(s, ["density", "n", "run_accuracy", "ticket_accuracy", "gap", "gap_low", "gap_high",
                             "run_accuracy_on"])),
    ]
    family = [m for m in dict.fromkeys(ctx.tickets.get("method", pd.Series(dtype=str)))
              if _sparse_module(str(m)) and m not in set(s["method"])]  # smart_ratio: no run of its own
    items = [f"`{m}`: {deviations(m)}" for m in [*dict.fromkeys(s["method"]), *family] if deviations(m)]
    if items:
        blocks.append(("p", "Where these implementations deviate from their papers (from each method's documentation):"))
        blocks.append(("ul", items))
    return blocks


sections.register(Section(name="sparse_training", title="Methods that train sparse", order=15, compute=compute,
                          render=render))
