"""Which hidden units stay alive, and do the methods keep the same ones?

A hidden unit is live when it lies on an input -> output path of the ticket
(:func:`graphtickets.analysis.units.live_units`). Per (density, init seed) and pair of methods'
tickets (replicate 0) the live sets overlap (``both``) against the hypergeometric expectation of
two random sets of the same sizes per layer (``expected``; :func:`~graphtickets.analysis.units.unit_overlap`
gives the exact per-pair p, reported in ``units_overlap``). The test, one per density: the mean
over pairs of ``(both - expected) / units``, against :data:`NULL_DRAWS` draws where every ticket's
live set of every layer is redrawn uniformly with its size kept, independently per ticket;
the init seeds are the units (:func:`graphtickets.analysis.inference.joint_null_test`: the
seeds' standardized statistics averaged, each draw of the mean from one draw per seed; exact).
A density where every ticket keeps every unit (or none) of every layer alive has nothing to
test (NaN p, said in the report).

References
----------
.. [1] A. Vysogorets, J. Kempe, "Connectivity Matters: Neural Network Pruning Through the Lens of
   Effective Sparsity", JMLR 2023.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from graphtickets.analysis.inference import joint_null_test
from graphtickets.analysis.units import live_units, overlap_tail
from graphtickets.errors import GraphticketsError
from graphtickets.study import sections
from graphtickets.study.sections import Block, Claim, Context, Section
from graphtickets.study.sections._share import (
    fmt_p,
    load_model_ticket,
    own_tickets,
    settings,
    tests_table,
)

#: Null draws of every (density, seed) group.
NULL_DRAWS = 999


def _live(ctx: Context, g: pd.DataFrame) -> dict[str, pd.DataFrame]:
    out = {}
    for r in g.itertuples(index=False):
        model, ticket = load_model_ticket(ctx, str(r.id))
        out[str(r.method)] = live_units(model, ticket)
    return out


def _excess(live: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Mean over pairs of ``(both - expected) / units`` for live sets ``(..., tickets, units)``
    of one layer (``sizes``: its live counts per ticket); summed over layers by the caller."""
    n = live.shape[-1]
    both = np.einsum("...iu,...ju->...ij", live.astype(np.float32), live.astype(np.float32))
    exp = np.outer(sizes, sizes) / n
    iu = np.triu_indices(live.shape[-2], 1)
    return (both[..., iu[0], iu[1]] - exp[iu]).mean(-1)


def _group(live: dict[str, pd.DataFrame], seed: int) -> tuple[float, np.ndarray, list[dict[str, Any]], float]:
    """The group's statistic, its null draws, its pair rows and how many units it has."""
    methods = list(live)
    layers = list(dict.fromkeys(live[methods[0]]["layer"]))
    rng = np.random.default_rng(seed)
    stat, null, total = 0.0, np.zeros(NULL_DRAWS), 0
    pairs: dict[tuple[str, str], list[Any]] = {}
    for layer in layers:
        m = np.stack([live[k].loc[live[k]["layer"] == layer, "live"].to_numpy(bool) for k in methods])
        sizes = m.sum(1)
        n = m.shape[1]
        total += n
        stat += float(_excess(m, sizes))
        keys = rng.random((NULL_DRAWS, len(methods), n)).argsort(-1)
        draws = keys < sizes[None, :, None]  # a uniform set of each ticket's size, per draw
        null += _excess(draws, sizes)
        for i, j in itertools.combinations(range(len(methods)), 2):
            b = pairs.setdefault((methods[i], methods[j]), [0, 0.0, []])
            b[0] += int((m[i] & m[j]).sum())
            b[1] += sizes[i] * sizes[j] / n
            b[2].append((n, int(sizes[i]), int(sizes[j])))
    rows = [{"a": a, "b": b, "both": v[0], "expected": v[1], "p": overlap_tail(v[0], v[2])} for (a, b), v in pairs.items()]
    return stat / total, null / total, rows, float(total)


def compute(ctx: Context) -> dict[str, pd.DataFrame]:
    """Tables ``units`` (live units per method, density, seed, layer), ``units_overlap`` (per pair) and ``tests``."""
    own = own_tickets(ctx.tickets)
    if own.empty or ctx.store is None or "id" not in own:
        return {}
    counts, overlap, tests, skipped = [], [], [], []
    for prefix, g in settings(own):
        try:
            c, o, t = _setting(ctx, g, prefix)
        except GraphticketsError as e:  # a ticket without its model spec, a graph that cannot be built
            skipped.append({"setting": prefix.rstrip(":") or "all", "reason": str(e)})
            continue
        counts += c
        overlap += o
        tests += t
    out: dict[str, pd.DataFrame] = {}
    if counts:
        out.update(units=pd.DataFrame(counts), units_overlap=pd.DataFrame(overlap), tests=tests_table(tests))
    if skipped:
        out["units_skipped"] = pd.DataFrame(skipped)
    return out


def _setting(ctx: Context, g: pd.DataFrame, prefix: str) -> tuple[list[Any], list[Any], list[Any]]:
    """The live-unit counts, pair overlaps and tests of one (dataset, model)."""
    counts: list[dict[str, Any]] = []
    overlap: list[dict[str, Any]] = []
    tests: list[dict[str, Any]] = []
    by_density: dict[float, list[tuple[Any, Any]]] = {}
    for (d, s), gg in g.groupby(["density", "seed"], sort=False):
        live = _live(ctx, gg)
        for m, lu in live.items():
            for layer, gl in lu.groupby("layer", sort=False):
                counts.append({"setting": prefix.rstrip(":"), "method": m, "density": d, "seed": s, "layer": layer,
                               "units": len(gl), "live": int(gl["live"].sum())})  # fmt: skip
        if len(live) < 2:
            continue
        stat, null, rows, _ = _group(live, seed=int(s) * 7919 + int(round(float(d) * 1e6)))
        overlap += [{"setting": prefix.rstrip(":"), "density": d, "seed": s, **r} for r in rows]
        by_density.setdefault(float(d), []).append((np.array([stat]), null[None, :]))
    for d, units in by_density.items():
        jt = joint_null_test(units)
        tests.append({"test": f"{prefix}d={d:g}", "question": f"do the methods keep the same hidden units alive at d = {d:g}?",
                      "family": "shared live units", "statistic": float(np.mean([u[0][0] for u in units])),
                      "p": jt.test.p_farther, "unit": "init seed", "n": len(units), "density": d,
                      "effect_z": jt.effect, "n_null": NULL_DRAWS})  # fmt: skip
    return counts, overlap, tests


def render(tables: Mapping[str, pd.DataFrame], ctx: Context) -> list[Block]:
    counts = tables.get("units", pd.DataFrame())
    blocks: list[Block] = [("h2", "Live hidden units: which stay alive, and whether methods keep the same ones")]
    for r in tables.get("units_skipped", pd.DataFrame()).itertuples(index=False):
        blocks.append(("p", f"Live units skipped ({r.setting}): {r.reason}."))
    blocks += [
        ("p", "A hidden unit is live when it lies on an input -> output path of the ticket. Overlap of two tickets' "
              "live units against two random sets of the same sizes per layer (hypergeometric; per pair in "
              f"`tables/units_overlap.csv`); the test per density: the mean over pairs of (both - expected) / units "
              f"against {NULL_DRAWS} draws of random live sets of the same sizes, the init seed as the unit."),
    ]  # fmt: skip
    if not counts.empty:
        live = counts.groupby(["method", "density", "layer"], sort=False)[["live", "units"]].mean().reset_index()
        blocks.append(("table", live.round(2)))
    tests = tables.get("tests", pd.DataFrame())
    items = []
    for r in tests.itertuples(index=False):
        what = ("nothing to test: every ticket keeps every unit of every layer alive (or none)" if not np.isfinite(r.p)
                else f"p = {fmt_p(r.p)}")
        items.append(f"d = {r.density:g}: mean excess overlap {r.statistic:+.4f} of the units over the hypergeometric "
                     f"expectation ({r.n} seeds; {what})")
    if items:
        blocks.append(("ul", items))
    return blocks


def claims(tables: Mapping[str, pd.DataFrame]) -> list[Claim]:
    out = []
    for r in tables.get("tests", pd.DataFrame()).itertuples(index=False):
        out.append(Claim(test=r.test, priority=35,
                         text=f"The methods keep the same hidden units alive beyond chance at d = {r.density:g}: "
                              f"mean excess overlap {r.statistic:+.3f} of the units over random live sets of the "
                              f"same sizes ({r.n} init seeds)",
                         absent=f"The data do not show the methods keeping the same hidden units alive at d = "
                                f"{r.density:g} beyond random sets of the same sizes."))  # fmt: skip
    return out


sections.register(Section(name="units", title="Live hidden units", order=46, compute=compute, render=render,
                          claims=claims))
