"""Shared layer allocation, tested: do the methods spread their density over the layers alike?

Per density and init seed the layer-density profiles of every method's ticket (replicate 0) are
the raters of Kendall's coefficient of concordance ``W`` over the layers
(:func:`graphtickets.analysis.allocation.shared_allocation`: a permutation test that shuffles each
ticket's values across layers on its own), once as they are and once as deviations from the ERK
profile at the same density (Evci et al. 2020: "alike beyond what ERK predicts"). The init seeds
are independent units: per density and reference ``W`` is the mean over seeds and the seeds'
permutation p-values are combined by Fisher's method (valid for independent p; conservative on
discrete permutation p). A model with fewer than two layers has nothing to rank (skipped, said).

References
----------
.. [1] M. G. Kendall, B. Babington Smith, "The problem of m rankings", Ann. Math. Statist. 10, 1939.
.. [2] U. Evci et al., "Rigging the Lottery: Making All Tickets Winners", ICML 2020 (ERK).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from graphtickets.analysis.allocation import shared_allocation
from graphtickets.analysis.inference import combine_independent
from graphtickets.errors import GraphticketsError
from graphtickets.study import sections
from graphtickets.study.sections import Block, Claim, Context, Section
from graphtickets.study.sections._share import (
    fmt_p,
    layer_columns,
    load_model_ticket,
    own_tickets,
    settings,
    tests_table,
)

#: Permutations of each (density, seed) test.
PERMUTATIONS = 9999
FIGURE = "layer_density_profiles.png"


def _erk(ctx: Context, g: pd.DataFrame, cols: list[str], density: float) -> np.ndarray | None:
    """The ERK profile of the setting's layers at ``density`` (None without a store to read shapes from)."""
    from graphtickets.pruning.baselines import erk_densities

    if ctx.store is None or "id" not in g:
        return None
    try:
        _, ticket = load_model_ticket(ctx, str(g["id"].iloc[0]))
    except GraphticketsError:  # no model spec: no ERK reference (the raw test still runs)
        return None
    shapes = {n: tuple(m.shape) for n, m in ticket.masks.items()}
    erk = erk_densities(shapes, float(density))
    return np.array([erk.get(c.removeprefix("layer."), np.nan) for c in cols], dtype=np.float64)


def _rows(ctx: Context, g: pd.DataFrame, prefix: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    cols = [c for c in layer_columns(g) if g[c].notna().all()]
    table: list[dict[str, Any]] = []
    tests: list[dict[str, Any]] = []
    if len(cols) < 2:
        return table, tests
    for d, gd in g.groupby("density", sort=False):
        ref = _erk(ctx, gd, cols, float(d))
        for reference in ("none", "erk"):
            if reference == "erk" and (ref is None or not np.all(np.isfinite(ref))):
                continue
            per_seed = []
            for s, gs in gd.groupby("seed", sort=True):
                if len(gs) < 2:
                    continue
                prof = gs.set_index("method")[cols]
                r = shared_allocation(prof, reference=ref if reference == "erk" else None, permutations=PERMUTATIONS,
                                      seed=[int(s), int(round(float(d) * 1e6)), 1 if reference == "erk" else 0])
                per_seed.append(r)
                table.append({"setting": prefix.rstrip(":"), "density": d, "seed": s, "reference": reference,
                              "W": r.statistic, "mean_spearman": r.mean_spearman, "p": r.p, "n_null": r.n_null,
                              "methods": r.n_tickets, "layers": r.n_layers})  # fmt: skip
            if not per_seed:
                continue
            ps = [r.p for r in per_seed]
            beyond = " beyond the ERK profile" if reference == "erk" else ""
            tests.append({"test": f"{prefix}{reference}:d={d:g}", "family": "shared layer allocation",
                          "question": f"do the methods rank the layers alike by density{beyond} at d = {d:g}?",
                          "statistic": float(np.mean([r.statistic for r in per_seed])),
                          "p": combine_independent(ps) if len(ps) > 1 else ps[0], "unit": "init seed",
                          "n": len(per_seed), "density": d, "reference": reference,
                          "mean_spearman": float(np.mean([r.mean_spearman for r in per_seed])),
                          "methods": per_seed[0].n_tickets, "layers": per_seed[0].n_layers})  # fmt: skip
    return table, tests


def compute(ctx: Context) -> dict[str, pd.DataFrame]:
    """Tables ``allocation`` (per density, seed, reference: W and its p), ``allocation_profiles``
    (mean layer density per method and density) and ``tests``."""
    own = own_tickets(ctx.tickets)
    if own.empty or not layer_columns(own):
        return {}
    table, tests, prof = [], [], []
    for prefix, g in settings(own):
        t, s = _rows(ctx, g, prefix)
        table += t
        tests += s
        cols = layer_columns(g)
        mean = g.groupby(["method", "density"], sort=False)[cols].mean().reset_index()
        mean.insert(0, "setting", prefix.rstrip(":"))
        prof.append(mean.rename(columns={c: c.removeprefix("layer.") for c in cols}))
    if not tests:
        return {}
    return {"allocation": pd.DataFrame(table), "allocation_profiles": pd.concat(prof, ignore_index=True),
            "tests": tests_table(tests)}


def render(tables: Mapping[str, pd.DataFrame], ctx: Context) -> list[Block]:
    tests = tables.get("tests", pd.DataFrame())
    blocks: list[Block] = [
        ("h2", "Shared layer allocation, tested"),
        ("p", "Kendall's W of the methods' layer-density profiles (1 = every method ranks the layers alike by "
              "density, 0 = no agreement), per density and init seed; its p from permuting each ticket's layer "
              f"densities across layers ({PERMUTATIONS} permutations), the seeds combined by Fisher's method. "
              "'erk': the same on the deviations from the ERK profile at that density (alike beyond what ERK "
              "predicts). See the layer-density figure (`figures/layer_density_profiles.png`)."),
    ]  # fmt: skip
    if not tests.empty:
        blocks.append(("ul", [f"d = {r.density:g}, {'deviations from ERK' if r.reference == 'erk' else 'profiles'}: "
                              f"W = {r.statistic:.3f} (mean Spearman {r.mean_spearman:.3f}; {r.methods} methods, "
                              f"{r.layers} layers, {r.n} seeds; p = {fmt_p(r.p)})" for r in tests.itertuples(index=False)]))
    if "allocation_profiles" in tables:
        blocks.append(("table", tables["allocation_profiles"].round(4)))
    return blocks


def claims(tables: Mapping[str, pd.DataFrame]) -> list[Claim]:
    out = []
    tests = tables.get("tests", pd.DataFrame())
    for r in tests.itertuples(index=False):
        beyond = " beyond what ERK predicts" if r.reference == "erk" else ""
        out.append(Claim(test=r.test, figure=FIGURE, priority=30 if r.reference == "none" else 32,
                         text=f"The methods allocate density across layers alike{beyond} at d = {r.density:g}: "
                              f"Kendall's W = {r.statistic:.2f} over {r.methods} methods' layer-density "
                              f"profiles (mean over {r.n} init seeds, permutation test)",
                         absent=f"The data do not show the methods allocating density across layers alike{beyond} "
                                f"at d = {r.density:g} (Kendall's W = {r.statistic:.2f})."))  # fmt: skip
    return out


sections.register(Section(name="allocation", title="Shared layer allocation", order=48, compute=compute,
                          render=render, claims=claims))
