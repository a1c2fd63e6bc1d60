"""Report section ``stability``: is each method's ticket stable to SGD noise, and are the stable ones the accurate ones?

Reads the store's ``stability`` table (written by :mod:`graphtickets.study.stability` when the
study sets ``analysis.stability``): per ticket, the error barrier on the linear path between
its own training and a second training from the same weights on another data order (Frankle
et al. 2020). Tables:

* ``stability``: per dataset, model, method and density, the mean error barrier over init
  seeds with its Student t interval, the mean loss barrier, the share of seeds whose ticket is
  stable (barrier at most :data:`STABLE`, Frankle et al.'s threshold) and the mean accuracy;
* ``stability_tickets``: every measured ticket;
* ``tests``: per dataset and model, whether the stable tickets are the accurate ones: the
  Spearman correlation of barrier and accuracy over methods within each density and seed
  (densities combined within the seed first), two-sided p by permuting the method labels
  jointly across blocks (:func:`graphtickets.analysis.stability.joint_rank_correlation`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from graphtickets.study import sections
from graphtickets.study.sections import Block, Claim, Context, Section

#: Frankle et al.'s threshold: a ticket whose error barrier is at most this is stable.
STABLE = 0.02

#: Permutations of the barrier-accuracy test.
PERMUTATIONS = 9999

_TICKET_COLS = ["id", "dataset", "model", "method", "density", "seed", "error_barrier", "loss_barrier",
                "error_a", "error_b", "accuracy", "copy_a", "trained"]


def _tickets(ctx: Context) -> pd.DataFrame:
    """Every measured ticket with its accuracy (empty when the study measured none)."""
    from graphtickets.study.stability import stored

    if ctx.store is None or ctx.tickets.empty:
        return pd.DataFrame(columns=_TICKET_COLS)
    st = stored(ctx.store)
    if st.empty:
        return pd.DataFrame(columns=_TICKET_COLS)
    tk = ctx.tickets[["id", "dataset", "model", "method", "density", "seed", "accuracy"]]
    out = st.rename(columns={"cell_id": "id"}).merge(tk, on="id", how="inner")
    return out[_TICKET_COLS].sort_values(["dataset", "model", "density", "method", "seed"]).reset_index(drop=True)


def _summary(t: pd.DataFrame) -> pd.DataFrame:
    from graphtickets.analysis.inference import t_interval
    from graphtickets.study.methods import method_order

    rows = []
    for (ds, mo, me, d), g in t.groupby(["dataset", "model", "method", "density"], sort=False):
        ci = t_interval(g["error_barrier"])
        rows.append({"dataset": ds, "model": mo, "method": me, "density": d, "n": int(ci.n),
                     "error_barrier": ci.estimate, "barrier_low": ci.low, "barrier_high": ci.high,
                     "loss_barrier": float(g["loss_barrier"].mean()),
                     "stable_share": float((g["error_barrier"] <= STABLE).mean()),
                     "accuracy": float(pd.to_numeric(g["accuracy"], errors="coerce").mean())})
    s = pd.DataFrame(rows)
    order = {m: i for i, m in enumerate(method_order(list(s["method"])))}
    s = s.assign(_o=s["method"].map(order)).sort_values(["dataset", "model", "density", "_o"], ascending=[True, True, False, True])
    return s.drop(columns="_o").reset_index(drop=True)


def _tests(t: pd.DataFrame) -> pd.DataFrame:
    from graphtickets.analysis.stability import joint_rank_correlation

    rows = []
    for (ds, mo), g in t.groupby(["dataset", "model"], sort=True):
        r = joint_rank_correlation(g, "error_barrier", "accuracy", label="method", block=("density", "seed"),
                                   unit="seed", permutations=PERMUTATIONS, seed=0)
        rows.append({"test": f"barrier_vs_accuracy:{ds}/{mo}",
                     "question": f"are the stable tickets (low error barrier) the accurate ones? ({ds}, {mo})",
                     "family": "stability", "statistic": r.rho, "p": r.p,
                     "unit": "method (labels permuted jointly over density x seed; densities averaged within seed)",
                     "n": r.objects, "blocks": r.blocks, "permutations": r.permutations, "exact": r.exact,
                     "dataset": ds, "model": mo})
    return pd.DataFrame(rows, columns=[*sections.TEST_COLUMNS, "blocks", "permutations", "exact", "dataset", "model"])


def compute(ctx: Context) -> dict[str, pd.DataFrame]:
    """The section's tables (none when the study measured no stability)."""
    t = _tickets(ctx)
    if t.empty:
        return {}
    return {"stability": _summary(t), "stability_tickets": t, "tests": _tests(t)}


def _figure(summary: pd.DataFrame, per_ticket: pd.DataFrame, ctx: Context) -> str | None:
    """``figures/stability.png``: barrier per method (t interval) and barrier vs accuracy per ticket."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from graphtickets._io import write_output

    if summary.empty:
        return None
    dens = sorted(summary["density"].unique(), reverse=True)
    methods = list(dict.fromkeys(summary["method"]))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 0.35 * len(methods) + 2.0))
    for j, d in enumerate(dens):
        s = summary[summary["density"] == d].set_index("method").reindex(methods)
        ypos = np.arange(len(methods)) + (j - (len(dens) - 1) / 2) * 0.25
        err = np.vstack([s["error_barrier"] - s["barrier_low"], s["barrier_high"] - s["error_barrier"]])
        ax1.errorbar(s["error_barrier"], ypos, xerr=np.nan_to_num(err), fmt="o", capsize=2, label=f"density {d:g}")
        g = per_ticket[per_ticket["density"] == d]
        ax2.scatter(g["error_barrier"], g["accuracy"], s=14, label=f"density {d:g}")
    ax1.axvline(STABLE, color="grey", ls="--", lw=0.8)
    ax1.set_yticks(np.arange(len(methods)), methods)
    ax1.invert_yaxis()
    ax1.set_xlabel("error barrier (mean over seeds, 95 % t interval)")
    ax1.legend(fontsize=7)
    ax2.axvline(STABLE, color="grey", ls="--", lw=0.8)
    ax2.set_xlabel("error barrier")
    ax2.set_ylabel("test accuracy of the ticket")
    ax2.set_title("each ticket (dashed: stable at 0.02, Frankle et al.)", fontsize=9)
    fig.tight_layout()
    ctx.figures.mkdir(parents=True, exist_ok=True)
    write_output(ctx.figures / "stability.png", lambda f: fig.savefig(f, dpi=120, bbox_inches="tight", format="png"),
                 what="figure")
    plt.close(fig)
    return "stability.png"


def _fmt(v: Any, digits: int = 3) -> str:
    return "" if v is None or (isinstance(v, float) and not np.isfinite(v)) else f"{float(v):.{digits}f}"


def _sentence(r: Mapping[str, Any]) -> str:
    p = r["p"]
    where = f"{r['dataset']}, {r['model']}"
    how = "exact, every permutation" if r["exact"] else f"{int(r['permutations'])} permutations"
    if not np.isfinite(r["statistic"]) or not np.isfinite(p):
        return f"{where}: too few methods or no spread in the barriers to test whether stable tickets are the accurate ones."
    return (f"{where}: Spearman rho between error barrier and accuracy over {int(r['n'])} methods = "
            f"{r['statistic']:.2f} (within density and seed, {int(r['blocks'])} blocks), permutation p = {p:.3g} "
            f"({how}; its q over the whole report is in tables/tests.csv).")


def _shown(s: pd.DataFrame, cols: list[str]) -> pd.DataFrame:
    """``cols`` of ``s`` indexed by method (dataset and model too when the study has several), rounded."""
    several = s[["dataset", "model"]].drop_duplicates().shape[0] > 1
    return s[[*(["dataset", "model"] if several else []), "method", *cols]].set_index("method").round(4)


def render(tables: Mapping[str, pd.DataFrame], ctx: Context) -> list[Block]:
    """The section's blocks: what was measured, the table, the figure, the test."""
    s, t, tests = tables["stability"], tables["stability_tickets"], tables["tests"]
    dens = ", ".join(f"{d:g}" for d in sorted(s["density"].unique(), reverse=True))
    study = getattr(ctx, "study", None)
    pts = study.analysis.stability.points if study is not None and study.analysis.stability is not None else "the"
    blocks: list[Block] = [
        ("h2", "Stability: do two trainings of a ticket end in one basin?"),
        ("p", f"Every method's ticket (replicate 0, no ablation) at density {dens} was trained twice from the same "
              f"starting weights (its own, or the model's init) with the study's regime: once by its cell (the "
              f"training behind its accuracy) and once more on another data order. The error barrier is the "
              f"largest test error on the straight line between the two networks ({pts} points, ends included) "
              f"over the mean error of its ends (Frankle et al. 2020, linear mode connectivity); a ticket is "
              f"stable when it is at most {STABLE:g}. Mean over init seeds with its 95 % t interval; "
              f"`stable_share`: the seeds whose ticket is stable. Per ticket: `tables/stability_tickets.csv`."),
        ("table", _shown(s, ["density", "n", "error_barrier", "barrier_low", "barrier_high", "loss_barrier",
                             "stable_share", "accuracy"])),
    ]
    fig = _figure(s, t, ctx)
    if fig:
        blocks.append(("img", (ctx.figures / fig, "Error barrier per method and density; barrier vs accuracy per ticket")))
    blocks.append(("p", "Are the stable tickets the accurate ones? " + " ".join(_sentence(r) for r in tests.to_dict("records"))))
    return blocks


def claims(tables: Mapping[str, pd.DataFrame]) -> list[Claim]:
    """One sentence per dataset and model: stable tickets are (or are not) the accurate ones."""
    out = []
    for r in tables["tests"].to_dict("records"):
        rho, where = r["statistic"], f"{r['dataset']}, {r['model']}"
        direction = ("the stable tickets are the accurate ones: the lower a method's error barrier between two "
                     "trainings, the higher its accuracy" if np.isfinite(rho) and rho < 0 else
                     "the stable tickets are NOT the accurate ones: the higher a method's error barrier between "
                     "two trainings, the higher its accuracy")
        out.append(Claim(test=r["test"], figure="stability.png", priority=40,
                         text=f"On {where}, {direction} (Spearman rho = {_fmt(rho, 2)} over {int(r['n'])} methods, "
                              f"within density and seed)",
                         absent=f"On {where}, the data do not show that the stable tickets (low error barrier between "
                                f"two trainings, Frankle et al. 2020) are the accurate ones, or the opposite "
                                f"(Spearman rho = {_fmt(rho, 2)}, p = {_fmt(r['p'], 3)})."))
    return out


sections.register(Section(name="stability", title="Stability", order=65, compute=compute, render=render, claims=claims))
