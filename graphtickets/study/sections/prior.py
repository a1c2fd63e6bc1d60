"""Section "structure as a prior": how far tickets built from shared structure get on their own.

A derived method (family ``derived``: consensus, profile, degrees, local, relational) builds a
ticket from the study's methods' tickets -- of the same init, or held out (only the other
seeds' tickets, nothing of this init). This section asks, per dataset and model:

* **gap closed**: ``(acc(prior) - acc(random)) / (acc(best) - acc(random))`` per init seed, where
  ``best`` is the method (not a baseline, not derived) with the highest mean accuracy of the
  study (chosen on the same data, so the gap is, if anything, widened: the winner's curse),
  and ``random`` the random baseline. Accuracies of one seed at several densities are averaged
  within the seed first; the interval is a Student t interval over seeds. Its test
  (``prior_vs_random:<method>``): the paired mean accuracy difference prior - random over
  seeds, a two-sided one-sample t test (the init seed is the unit);
* **held out vs same init** (``held_out_vs_same:<prior>``): the paired difference of the two;
* **the best data-free prior vs data-free pruning at init** (``beats_at_init:<method>``): each
  held-out prior (data-free for the network it is applied to) against the best data-free
  pruning-at-init method of the study (``at init`` family without ``needs_data``: SynFlow in
  the default study), one paired t test each; the Answer's claim rests on the test of the
  held-out prior with the highest mean accuracy (every test enters the global BH).

Table ``compact``: for replicate 0, the first seed and the lowest density of each dataset and
model, one network per method (the derived methods' held-out tickets only: kept cheap), the ticket as an architecture
(:func:`graphtickets.graphs.compact.compact`) trained dense from the same initial weights with
the study's regime, against the sparse ticket: parameters (the sparse ticket's live weights
plus every non-prunable parameter; the compact net's every parameter) and test accuracy.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import scipy.stats as sps

from graphtickets.study import sections
from graphtickets.study.methods import at_init, method_order, random_baseline
from graphtickets.study.spec import HELD_OUT

log = logging.getLogger(__name__)

NAME = "prior"
FIGURE = "prior_gap_closed"


def _own(tk: pd.DataFrame) -> pd.DataFrame:
    """Replicate 0, no ablation, no dense reference."""
    if tk.empty or "family" not in tk:
        return tk.iloc[0:0]
    keep = (tk["variant"].fillna("") == "") & (tk["family"] != "reference")
    if "replicate" in tk:
        keep &= tk["replicate"].fillna(0) == 0
    return tk[keep]


def _by_seed(sub: pd.DataFrame) -> pd.DataFrame:
    """Accuracy per seed (rows) and method (columns), averaged over densities within each seed."""
    return sub.groupby(["seed", "method"])["accuracy"].mean().unstack("method")


def _paired(x: pd.Series, y: pd.Series) -> tuple[float, float, int]:
    """Mean of ``x - y`` over the seeds both have, its two-sided one-sample t p-value, n."""
    d = (x - y).dropna().to_numpy(dtype=np.float64)
    n = int(d.size)
    if n < 2 or not np.isfinite(d).all():
        return (float(d.mean()) if n else float("nan")), float("nan"), n
    if np.allclose(d, d[0]):  # no spread: equal everywhere is no difference; a constant shift has no t test
        return float(d.mean()), (1.0 if d[0] == 0 else float("nan")), n
    return float(d.mean()), float(sps.ttest_1samp(d, 0.0).pvalue), n


def _test(test: str, question: str, family: str, stat: float, p: float, n: int) -> dict[str, Any]:
    return {"test": test, "question": question, "family": family, "statistic": stat, "p": p, "unit": "init seed",
            "n": n}


def _rows(acc: pd.DataFrame, derived: list[str], rnd: str, finders: list[str], dfree: list[str],
          key: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The ``prior`` rows and the tests of one dataset and model."""
    from graphtickets.analysis.inference import t_interval

    best = max(finders, key=lambda m: acc[m].mean())
    gap = acc[best] - acc[rnd]
    where = f"{key['dataset']}/{key['model']}"
    rows, tests = [], []
    for m in derived:
        base = m.removesuffix(HELD_OUT)
        frac = ((acc[m] - acc[rnd]) / gap.where(gap.abs() > 1e-12)).dropna()
        ci = t_interval(frac.to_numpy())
        diff, p, n = _paired(acc[m], acc[rnd])
        tid = f"prior_vs_random:{m}:{where}"
        tests.append(_test(tid, f"does {m} differ from random in accuracy ({where})?", "prior vs random", diff, p, n))
        rows.append({**key, "method": m, "prior": base, "held_out": m != base, "best_method": best,
                     "accuracy": acc[m].mean(), "accuracy_random": acc[rnd].mean(), "accuracy_best": acc[best].mean(),
                     "gap_closed": ci.estimate, "gap_closed_low": ci.low, "gap_closed_high": ci.high,
                     "diff_vs_random": diff, "p": p, "n_seeds": n, "test": tid})
    for m in [d for d in derived if d.endswith(HELD_OUT) and d.removesuffix(HELD_OUT) in derived]:
        diff, p, n = _paired(acc[m], acc[m.removesuffix(HELD_OUT)])
        tests.append(_test(f"held_out_vs_same:{m.removesuffix(HELD_OUT)}:{where}",
                           f"does held-out {m.removesuffix(HELD_OUT)} differ from same-init ({where})?",
                           "held out vs same init", diff, p, n))
    if dfree:
        ref = max(dfree, key=lambda m: acc[m].mean())
        for r in rows:
            if r["held_out"]:
                diff, p, n = _paired(acc[r["method"]], acc[ref])
                tests.append(_test(f"beats_at_init:{r['method']}:{where}",
                                   f"does held-out {r['prior']} differ from {ref} in accuracy ({where})?",
                                   "prior vs data-free pruning at init", diff, p, n))
                r["at_init_reference"], r["diff_vs_at_init"] = ref, diff
    return rows, tests


def _data_free_at_init(names: list[str]) -> list[str]:
    from graphtickets.pruning import METHODS

    return [m for m in at_init(names) if not METHODS[m].needs_data]


def _prior_tables(tk: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ``prior`` table and its tests, over every dataset and model with derived tickets."""
    rnd = random_baseline()
    own = _own(tk)
    rows: list[dict[str, Any]] = []
    tests: list[dict[str, Any]] = []
    for (ds, model), sub in own.groupby(["dataset", "model"], sort=False):
        derived = method_order(sub.loc[sub["family"] == "derived", "method"].unique())
        finders = [m for m in sub["method"].unique() if sub.loc[sub["method"] == m, "family"].iloc[0]
                   not in ("baseline", "derived")]
        if not derived or rnd is None or rnd not in set(sub["method"]) or not finders:
            continue
        acc = _by_seed(sub)
        r, t = _rows(acc, derived, rnd, finders, _data_free_at_init(finders), {"dataset": ds, "model": model})
        rows += r
        tests += t
    return pd.DataFrame(rows), pd.DataFrame(tests, columns=sections.TEST_COLUMNS)


def _train_compact(ctx: sections.Context, cell: Any, net: Any) -> float:
    """Train ``net`` dense with the cell's regime (its data order) and return its test accuracy."""
    from graphtickets import data, training
    from graphtickets.study.cell import one_thread, sibling_seed

    spec = cell.spec
    root = next((d.root for d in ctx.study.datasets if d.name == spec.data.name), None)
    train_ds, test_ds = data.load(spec.data.name, split="train", root=root), data.load(spec.data.name, split="test", root=root)
    test = data.batches(test_ds, batch_size=spec.train.eval_batch_size, shuffle=False)
    seed = sibling_seed(spec.seed, "train", spec.replicate)
    with one_thread():
        if spec.train.settings.epochs > 0:
            training.train(net, data.batches(train_ds, batch_size=spec.train.batch_size, shuffle=True, seed=seed),
                           settings=spec.train.settings, seed=seed)
        return float(training.evaluate(net, test)["accuracy"])


def _compact_table(ctx: sections.Context, own: pd.DataFrame) -> pd.DataFrame:
    """The ``compact`` table (see the module docstring): first seed, lowest density, replicate 0."""
    from graphtickets import data as gdata
    from graphtickets import models
    from graphtickets.graphs.compact import compact

    if ctx.store is None or not ctx.cells or own.empty:
        return pd.DataFrame()
    cells = {c.id: c for c in ctx.cells}
    rows = []
    for (_ds, _model), sub in own.groupby(["dataset", "model"], sort=False):
        sub = sub[(sub["seed"] == sub["seed"].min()) & (sub["density"] == sub["density"].min())
                  & ~((sub["family"] == "derived") & ~sub["method"].str.endswith(HELD_OUT))]
        for r in sub.itertuples(index=False):
            cell = cells.get(r.id)
            if cell is None:
                continue
            ticket = ctx.store.load_ticket(r.id)
            spec = cell.spec
            info = gdata.info(spec.data.name)
            mspec = spec.method_model
            base = models.build(mspec.name, in_shape=info.in_shape, num_classes=info.num_classes, seed=spec.seed,
                                **mspec.kwargs)
            net = compact(base, ticket)
            sizes: dict[str, Any] = getattr(net, "gt_compact")  # noqa: B009  (set by compact, not an nn attribute)
            prunable_total = int(ticket.total)
            others = sum(p.numel() for p in base.parameters()) - prunable_total
            rows.append({"dataset": r.dataset, "model": r.model, "method": r.method, "density": r.density,
                         "seed": r.seed, "params_sparse": int(ticket.kept) + others,
                         "params_compact": int(sizes["params_after"]),
                         "params_dense": int(sizes["params_before"]),
                         "accuracy_sparse": r.accuracy, "accuracy_compact": _train_compact(ctx, cell, net)})
    return pd.DataFrame(rows)


def compute(ctx: sections.Context) -> dict[str, pd.DataFrame]:
    """Tables ``prior``, ``compact`` and the tests (nothing when the study has no derived tickets)."""
    own = _own(ctx.tickets)
    if own.empty or not (own["family"] == "derived").any():
        return {}
    prior, tests = _prior_tables(ctx.tickets)
    out = {"prior": prior, "tests": tests}
    try:
        out["compact"] = _compact_table(ctx, own)
    except Exception as exc:  # noqa: BLE001 - a network compact() cannot narrow leaves the rest of the section
        log.warning("compact architectures not built: %s", exc)
    return out


def _figure(prior: pd.DataFrame, ctx: sections.Context) -> Any:
    from graphtickets.study.figures import _plt, _save

    plt = _plt()
    groups = list(prior.groupby(["dataset", "model"], sort=False))
    fig, axes = plt.subplots(1, len(groups), figsize=(1.0 + 0.7 * prior["prior"].nunique() * 2, 3.4), squeeze=False)
    for ax, ((ds, model), g) in zip(axes[0], groups, strict=True):
        priors = list(dict.fromkeys(g["prior"]))
        for j, held in enumerate((False, True)):
            s = g[g["held_out"] == held].set_index("prior").reindex(priors)
            x = np.arange(len(priors)) + (j - 0.5) * 0.38
            err = np.vstack([s["gap_closed"] - s["gap_closed_low"], s["gap_closed_high"] - s["gap_closed"]])
            ax.bar(x, s["gap_closed"], width=0.36, label="held out" if held else "same init",
                   yerr=np.nan_to_num(err), capsize=3, alpha=0.6 if held else 0.9)
        ax.axhline(0, color="k", lw=0.8)
        ax.axhline(1, color="k", lw=0.8, ls="--")
        ax.set_xticks(np.arange(len(priors)), priors, rotation=30)
        ax.set_title(f"{ds}, {model}", fontsize=9)
        ax.set_ylabel("gap closed (0: random, 1: best method)")
    axes[0][0].legend(fontsize=8)
    return _save(fig, ctx.figures, FIGURE)[0]


def render(tables: Mapping[str, pd.DataFrame], ctx: sections.Context) -> list[sections.Block]:
    """The section's blocks: what it measures, the figure, the tables."""
    prior = tables.get("prior", pd.DataFrame())
    blocks: list[sections.Block] = [("h2", "Structure as a prior")]
    if prior.empty:
        blocks.append(("p", "The study has derived tickets but no random baseline or no method to compare them with."))
        return blocks
    blocks.append(("p", "Tickets built only from the structure the methods' tickets share, trained like every "
                        "ticket: the fraction of the accuracy gap between the random baseline and the best method "
                        "each closes (per init seed, densities averaged within the seed; 95 % t interval over seeds; "
                        "the best method is chosen on these data). Held-out priors are built from the other seeds' "
                        "tickets only. Tests in `tables/tests.csv` (section prior)."))
    blocks.append(("img", (_figure(prior, ctx), "Gap between random and the best method closed by each prior")))
    cols = ["dataset", "model", "method", "gap_closed", "gap_closed_low", "gap_closed_high", "accuracy",
            "accuracy_random", "accuracy_best", "best_method", "n_seeds"]
    blocks.append(("table", prior[cols].round(3)))
    comp = tables.get("compact", pd.DataFrame())
    if not comp.empty:
        blocks.append(("h3", "Tickets as architectures"))
        blocks.append(("p", "Each method's ticket (first seed, lowest density; of the derived methods the held-out "
                            "ones) compacted into a smaller dense network "
                            "(dead and cut-off units removed) and trained dense with the study's regime from the same "
                            "initial weights, against the sparse ticket."))
        blocks.append(("table", comp.round(4)))
    return blocks


def claims(tables: Mapping[str, pd.DataFrame]) -> list[sections.Claim]:
    """The best held-out prior against random and against data-free pruning at init."""
    prior = tables.get("prior", pd.DataFrame())
    if prior.empty:
        return []
    out = []
    held = prior[prior["held_out"]]
    if not held.empty:
        b = held.loc[held["gap_closed"].idxmax()] if held["gap_closed"].notna().any() else held.iloc[0]
        out.append(sections.Claim(
            test=str(b["test"]), figure=f"{FIGURE}.png", priority=40,
            text=f"Structure alone is a prior: {b['prior']} built from other inits' tickets closes "
                 f"{b['gap_closed']:.2f} of the gap between random and {b['best_method']} ({b['dataset']}, {b['model']})",
            absent=f"The data do not show that {b['prior']} built from other inits' tickets differs from random "
                   f"({b['dataset']}, {b['model']})."))
        if "at_init_reference" in held and held["at_init_reference"].notna().any():
            top = held.loc[held["accuracy"].idxmax()]
            ref = top["at_init_reference"]
            tid = f"beats_at_init:{top['method']}:{top['dataset']}/{top['model']}"
            out.append(sections.Claim(
                test=tid, priority=45,
                text=f"The best data-free prior, held-out {top['prior']}, differs from {ref} in accuracy by "
                     f"{top['diff_vs_at_init']:+.3f}",
                absent=f"The data do not show that the best data-free prior (held-out {top['prior']}) beats {ref}."))
    return out


sections.register(sections.Section(name=NAME, title="Structure as a prior", order=60, compute=compute,
                                   render=render, claims=claims))
