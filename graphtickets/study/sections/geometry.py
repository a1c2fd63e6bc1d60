"""Input geometry: do tickets keep local inputs together, and do methods keep the same input positions?

For ordered inputs (MNIST-1D's 40 positions, an image's pixels; conv first layers by their kernel
taps) every method's ticket (replicate 0) is measured by
:func:`graphtickets.analysis.geometry.locality`: the mean over first-layer units of the unit's
kept-input gap (sequences) or pairwise distance (images, 2-D kernels) over its mean under the
per-unit shuffle null (each unit's fan-in kept; 1 = as random, < 1 = local). Its expectation
under that null is exactly 1, so per method the test is a two-sided t test of ``locality = 1``
over init seeds (densities averaged within each seed first; df = seeds - 1). "Data-driven
tickets keep local inputs closer together than data-free ones": per seed, the mean locality of
the methods that read data (``needs_data``) minus that of the data-free baselines and
pruning-at-init methods (transforms and derived tickets in neither group), t over seeds.

Which positions survive: each ticket's kept fan-out per input position
(:func:`~graphtickets.analysis.geometry.input_fanout`); how alike the methods' profiles are: per
(density, seed) the mean pairwise Spearman rho over methods, against :data:`NULL_DRAWS` draws
where every ticket's first layer is redrawn with each unit's kept inputs shuffled (fan-ins
kept), the seeds as units (:func:`graphtickets.analysis.inference.joint_null_test`, exact), one
test per density. Inputs without order (a dataset variant with ``shuffle_seq``, a dataset that
says so) are skipped with the reason in the report.

References
----------
.. [1] S. Greydanus, "Scaling down Deep Learning", arXiv:2011.14439, 2020.
.. [2] F. Pellegrini, G. Biroli, "Neural network pruning denoises the features and makes local
   connectivity emerge in visual tasks", ICML 2022.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import scipy.stats

from graphtickets.analysis import geometry as geo
from graphtickets.analysis.inference import joint_null_test
from graphtickets.errors import GraphticketsError
from graphtickets.pruning.randomize import draw_fan_in
from graphtickets.study import sections
from graphtickets.study.sections import Block, Claim, Context, Section
from graphtickets.study.sections._share import (
    load_model_ticket,
    ordered_methods,
    own_tickets,
    seed_t_test,
    settings,
    tests_table,
)

#: Null draws of the fan-out agreement per (density, seed).
NULL_DRAWS = 199
FIGURE = "input_fanout.png"


def _group_of(method: str) -> str:
    """``"data-driven"``, ``"data-free"`` or ``""`` (transforms and derived tickets: neither)."""
    from graphtickets.pruning import METHODS

    spec = METHODS.get(method)
    if spec is None or spec.family in ("transform", "derived"):
        return ""
    return "data-driven" if spec.needs_data else "data-free"


def _mean_rho(profiles: np.ndarray) -> np.ndarray:
    """Mean pairwise Spearman rho over the rows of ``(..., tickets, positions)`` (constant rows: left out)."""
    r = scipy.stats.rankdata(profiles, axis=-1)
    r = r - r.mean(-1, keepdims=True)
    norm = np.sqrt((r**2).sum(-1, keepdims=True))
    z = np.where(norm > 0, r / np.where(norm > 0, norm, 1.0), np.nan)
    c = np.einsum("...ip,...jp->...ij", z, z)
    iu = np.triu_indices(profiles.shape[-2], 1)
    return np.nanmean(c[..., iu[0], iu[1]], axis=-1)


def _measure(ctx: Context, g: pd.DataFrame) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[Any, Any], str | None]:
    """Per ticket: locality rows, fan-out rows, first layers by (density, seed); or the skip reason."""
    loc: list[dict[str, Any]] = []
    fan: list[dict[str, Any]] = []
    layers: dict[Any, Any] = {}
    for r in g.itertuples(index=False):
        model, ticket = load_model_ticket(ctx, str(r.id))
        res = geo.locality(model, ticket)
        if res.reason is not None:
            return [], [], {}, res.reason
        layer = geo.first_layer(model, ticket)
        prof = layer.mask.sum(0).reshape(layer.channels, -1).sum(0)
        loc.append({"method": r.method, "density": r.density, "seed": r.seed, "kind": res.kind, "locality": res.value,
                    "locality_span": res.span, "locality_pairwise": res.pairwise, "group": _group_of(str(r.method))})
        fan += [{"method": r.method, "density": r.density, "seed": r.seed, "position": i, "fanout": int(v)}
                for i, v in enumerate(prof)]  # fmt: skip
        layers.setdefault((r.density, r.seed), {})[str(r.method)] = layer
    return loc, fan, layers, None


def _locality_tests(loc: pd.DataFrame, prefix: str) -> list[dict[str, Any]]:
    rows = []
    per_seed = loc.groupby(["method", "seed"], sort=False)["locality"].mean().reset_index()
    for m, g in per_seed.groupby("method", sort=False):
        t = seed_t_test(g["locality"].to_numpy(float), null=1.0)
        rows.append({"test": f"{prefix}locality:{m}", "question": f"are {m}'s first-layer units' kept inputs more "
                     "(or less) local than the per-unit shuffle?", "family": "input locality", "statistic": t["estimate"],
                     "p": t["p"], "unit": "init seed", "n": t["n"], "low": t["low"], "high": t["high"], "df": t["df"],
                     "what": m})  # fmt: skip
    grp = loc[loc["group"] != ""].groupby(["group", "seed"])["locality"].mean().unstack("group")
    if {"data-driven", "data-free"} <= set(grp.columns):
        for name, vals, null in (("data-driven", grp["data-driven"], 1.0), ("data-free", grp["data-free"], 1.0),
                                 ("driven-free", grp["data-driven"] - grp["data-free"], 0.0)):
            t = seed_t_test(vals.to_numpy(float), null=null)
            q = ("do data-driven tickets keep inputs more local than data-free ones?" if name == "driven-free"
                 else f"are {name} tickets' kept inputs more (or less) local than the per-unit shuffle?")
            rows.append({"test": f"{prefix}locality:{name}", "question": q, "family": "input locality",
                         "statistic": t["estimate"], "p": t["p"], "unit": "init seed", "n": t["n"], "low": t["low"],
                         "high": t["high"], "df": t["df"], "what": name})  # fmt: skip
    return rows


def _agreement(layers: dict[Any, Any], prefix: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    table: list[dict[str, Any]] = []
    by_density: dict[Any, list[Any]] = {}
    for (d, s), per in layers.items():
        if len(per) < 2:
            continue
        names = list(per)
        obs = np.stack([per[n].mask.sum(0).reshape(per[n].channels, -1).sum(0) for n in names]).astype(float)
        ss = np.random.SeedSequence([int(s), int(round(float(d) * 1e6)), 11]).spawn(len(names))
        draws = np.stack([draw_fan_in(per[n].mask, NULL_DRAWS, np.random.default_rng(ss[i])).sum(1)
                          .reshape(NULL_DRAWS, per[n].channels, -1).sum(1) for i, n in enumerate(names)], axis=1)  # fmt: skip
        rho, null = float(_mean_rho(obs)), _mean_rho(draws.astype(float))
        table.append({"density": d, "seed": s, "mean_rho": rho, "null_mean": float(np.nanmean(null)),
                      "null_sd": float(np.nanstd(null, ddof=1)), "methods": len(names), "n_null": NULL_DRAWS})
        by_density.setdefault(d, []).append((np.array([rho]), null[None, :]))
    tests = []
    for d, units in by_density.items():
        jt = joint_null_test(units)
        tests.append({"test": f"{prefix}fanout:d={d:g}", "question": f"do the methods keep the same input positions "
                      f"(kept fan-out per position) at d = {d:g}?", "family": "input fan-out agreement",
                      "statistic": float(np.mean([u[0][0] for u in units])), "p": jt.test.p_farther, "unit": "init seed",
                      "n": len(units), "what": f"d={d:g}", "null_mean": float(np.mean([np.nanmean(u[1]) for u in units]))})  # fmt: skip
    return table, tests


def compute(ctx: Context) -> dict[str, pd.DataFrame]:
    """Tables ``geometry`` (locality per ticket), ``geometry_fanout`` (mean kept fan-out per method,
    density and position), ``geometry_agreement`` (per density and seed) and ``tests``; a table
    ``geometry_skipped`` (setting, reason) for inputs without order."""
    own = own_tickets(ctx.tickets)
    if own.empty or ctx.store is None or "id" not in own:
        return {}
    locs, fans, agree, tests, skipped = [], [], [], [], []
    for prefix, g in settings(own):
        try:
            loc, fan, layers, why = _measure(ctx, g)
        except GraphticketsError as e:  # a first layer neither Linear nor Conv1d/2d, a ticket without its model
            loc, fan, layers, why = [], [], {}, str(e)
        if why is not None:
            skipped.append({"setting": prefix.rstrip(":") or "all", "reason": why})
            continue
        lt = pd.DataFrame(loc).assign(setting=prefix.rstrip(":"))
        locs.append(lt)
        fans.append(pd.DataFrame(fan).groupby(["method", "density", "position"], sort=False)["fanout"].mean()
                    .reset_index().assign(setting=prefix.rstrip(":")))  # fmt: skip
        tests += _locality_tests(lt, prefix)
        a, t = _agreement(layers, prefix)
        agree += [{"setting": prefix.rstrip(":"), **r} for r in a]
        tests += t
    out: dict[str, pd.DataFrame] = {}
    if locs:
        out.update(geometry=pd.concat(locs, ignore_index=True), geometry_fanout=pd.concat(fans, ignore_index=True),
                   geometry_agreement=pd.DataFrame(agree), tests=tests_table(tests))
    if skipped:
        out["geometry_skipped"] = pd.DataFrame(skipped)
    return out


def _figure(fan: pd.DataFrame, ctx: Context) -> str | None:
    from graphtickets.study.figures import _colors, _plt, _save

    if fan.empty:
        return None
    plt = _plt()
    densities = sorted(fan["density"].unique(), reverse=True)
    methods = ordered_methods(fan["method"])
    colors = _colors(methods)
    names = list(dict.fromkeys(fan["setting"].fillna("").astype(str))) if "setting" in fan else [""]
    fig, axes = plt.subplots(len(names), len(densities), figsize=(5.5 * len(densities), 3.6 * len(names)), squeeze=False)
    for (i, name), (j, d) in itertools.product(enumerate(names), enumerate(densities)):
        ax = axes[i][j]
        here = fan[(fan["setting"].fillna("").astype(str) == name)] if "setting" in fan else fan
        for m in methods:
            s = here[(here["density"] == d) & (here["method"] == m)].sort_values("position")
            share = s["fanout"] / max(float(s["fanout"].sum()), 1.0)
            ax.plot(s["position"], share, color=colors.get(m), lw=1.2, label=m)
        ax.set_title(f"{name + ', ' if name else ''}density {d:g}", fontsize=9)
        ax.set_xlabel("input position (flattened)")
    axes[0][0].set_ylabel("share of kept first-layer weights")
    axes[0][-1].legend(fontsize=6, ncol=2)
    fig.suptitle("Kept fan-out per input position, per method (mean over seeds)")
    _save(fig, ctx.figures, FIGURE.removesuffix(".png"))
    return FIGURE


def render(tables: Mapping[str, pd.DataFrame], ctx: Context) -> list[Block]:
    blocks: list[Block] = [("h2", "Input geometry: local inputs and shared input positions")]
    for r in tables.get("geometry_skipped", pd.DataFrame()).itertuples(index=False):
        blocks.append(("p", f"Input geometry skipped ({r.setting}): {r.reason}."))
    if "geometry" not in tables:
        return blocks
    blocks.append(("p", "locality: each first-layer unit's mean gap between kept input positions (images: mean "
                        "pairwise distance) over its mean under the per-unit shuffle (fan-in kept), averaged over "
                        "units: 1 = as random, < 1 = local. t test of locality = 1 over init seeds (densities "
                        "averaged within each seed); fan-out agreement: mean pairwise Spearman rho of the methods' "
                        f"kept fan-out per position against {NULL_DRAWS} per-unit shuffles of every ticket."))
    fig = _figure(tables["geometry_fanout"], ctx)
    if fig:
        blocks.append(("img", (ctx.figures / fig, "Kept fan-out per input position, per method")))
    tests = tables.get("tests", pd.DataFrame())
    if not tests.empty:
        show = tests[["what", "family", "statistic", "low", "high", "df", "n", "p"]] if "low" in tests else tests
        blocks.append(("table", show.round(4)))
    return blocks


def claims(tables: Mapping[str, pd.DataFrame]) -> list[Claim]:
    tests = tables.get("tests", pd.DataFrame())
    out = []
    for r in tests.itertuples(index=False):
        if r.what == "driven-free":
            out.append(Claim(test=r.test, figure=FIGURE, priority=25,
                             text=f"Data-driven tickets keep local inputs {'closer together' if r.statistic < 0 else 'farther apart'} than data-free ones: first-layer "
                                  f"locality differs by {r.statistic:+.2f} [{r.low:+.2f}, {r.high:+.2f}] (1 = as the "
                                  f"per-unit shuffle; t over {r.n} init seeds, df = {r.df:g})",
                             absent="The data do not show data-driven tickets keeping local inputs closer together "
                                    f"than data-free ones (locality difference {r.statistic:+.2f})."))  # fmt: skip
        elif r.what == "data-driven":
            out.append(Claim(test=r.test, figure=FIGURE, priority=26,
                             text=f"Data-driven tickets keep their inputs {'local' if r.statistic < 1 else 'spread out'}: mean "
                                  f"first-layer locality {r.statistic:.2f} of the per-unit shuffle's gap (t over {r.n} "
                                  f"init seeds, df = {r.df:g})"))
        elif r.family == "input fan-out agreement":
            out.append(Claim(test=r.test, figure=FIGURE, priority=27,
                             text=f"The methods keep the same input positions at {r.what.replace('d=', 'd = ')}: mean "
                                  f"pairwise Spearman rho of kept fan-out per position {r.statistic:.2f} against "
                                  f"{r.null_mean:.2f} under per-unit shuffles ({r.n} init seeds)",
                             absent=f"The data do not show the methods keeping the same input positions at "
                                    f"{r.what.replace('d=', 'd = ')} beyond per-unit shuffles."))  # fmt: skip
    return out


sections.register(Section(name="geometry", title="Input geometry", order=44, compute=compute, render=render,
                          claims=claims))
