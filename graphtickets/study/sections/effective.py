"""Report section ``effective``: mask distances on the effective masks (weights on no input-output path removed).

Computed in the analysis stage (:func:`graphtickets.study.alike.effective_table` loads the
tickets); the report only reads ``tables/effective.csv``. Descriptive: no test.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from graphtickets.study.sections import Block, Context, Section, register
from graphtickets.study.sections._common import of_setting, own_tickets, settings

__all__: list[str] = []


def compute(ctx: Context) -> dict[str, pd.DataFrame]:
    from graphtickets.study.alike import effective_table

    if ctx.store is None or ctx.tickets.empty:
        return {}
    own = own_tickets(ctx.tickets)
    parts = [effective_table(ctx.store, of_setting(own, st)).assign(dataset=st[0], model=st[1]) for st in settings(own)]
    parts = [p for p in parts if not p.empty]
    if not parts:
        return {}
    t = pd.concat(parts, ignore_index=True)
    return {"effective": t[["dataset", "model", *[c for c in t.columns if c not in ("dataset", "model")]]]}


def render(tables: Mapping[str, pd.DataFrame], ctx: Context) -> list[Block]:
    eff = tables.get("effective")
    if eff is None or eff.empty:
        return []
    differ = eff[eff["difference"].abs() > 1e-12]
    note = (f"{len(differ)} of {len(eff)} (pair, kind) mean distances change when the weights on no "
            "input-output path are removed (shown); the others are equal." if len(differ) else
            f"All {len(eff)} (pair, kind) mean distances are the same on the effective masks: no ticket "
            "keeps weights off every input-output path that another removes.")
    blocks: list[Block] = [("h2", "Effective-mask distances (weights on no input-output path removed) vs plain, mean over "
                                  "densities and seeds"), ("p", note + " Table: `tables/effective.csv`.")]
    if len(differ):
        idx = ["dataset", "model", "pair", "kind"] if len(settings(eff)) > 1 else ["pair", "kind"]
        blocks.append(("table", differ.drop(columns=[c for c in ("dataset", "model") if c not in idx]).set_index(idx)))
    return blocks


register(Section(name="effective", title="Effective masks", order=70, compute=compute, render=render))
