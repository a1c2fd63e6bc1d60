"""The transfer section: are tickets general? (Morcos et al. 2019, *One ticket to win them all*.)

For a study with ``transfer: {found_on, trained_on}`` (:class:`~graphtickets.study.config.TransferConfig`)
it answers, per method and density, with the init seed as the unit of inference (replicate 0,
the method's own ticket; ablation variants are left out):

* the **transfer matrix**: test accuracy on ``Y`` of the ticket found on ``X`` and trained on
  ``Y`` from the same initial weights (``X -> Y``; ``Y -> Y`` is ``Y``'s own cell), mean and
  Student t interval over seeds (table ``transfer``);
* the **task-specificity gap** ``acc(Y -> Y) - acc(X -> Y)``, paired by seed, with a paired t
  test (columns ``gap``, ``gap_low``, ``gap_high``, ``p`` of ``transfer``; one test each in
  ``tests``). A data-free ticket (random, magnitude at init, SynFlow, Smart-Ratio:
  :func:`~graphtickets.study.grid.data_free`) has the same mask whatever the data, so its
  ``X -> Y`` is its ``Y -> Y``: ``same_mask`` is True and the gap is left empty rather than 0;
* **data-free against transferred**: a data-free ticket on ``Y`` minus a data-driven ticket
  transferred ``X -> Y``, paired by seed, t test (table ``transfer_free``);
* **the same ticket on two tasks?**: the Jaccard distance between a method's tickets found on
  ``X`` and on ``Y`` (same seed), its mean over seeds against the same mean with ``Y``'s
  ticket shuffled within each layer (the layer-shuffle null, ``null_draws`` joint draws; one
  sided, calibrated ``p = (1 + k) / (1 + n)``: smaller than chance is "more alike than two
  unrelated tickets of those layer densities"), and beside it the sibling floor (the distance
  between two siblings found on ``X``) when the study has ``replicates >= 2`` (table
  ``transfer_same``). Tickets of one init seed share their initial weights, so even on two
  unrelated tasks they overlap beyond the layer-shuffle null (magnitude-correlated scores):
  the sibling floor is the reference for "the same ticket up to the method's own noise".

A study without ``transfer:`` gets nothing from this section.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

from graphtickets.analysis.inference import t_interval
from graphtickets.study import sections
from graphtickets.study.grid import DENSE, data_free
from graphtickets.study.sections import TEST_COLUMNS, Block, Claim, Context, Section

__all__ = ["compute", "render", "claims", "NULL_DRAWS", "SECTION"]

#: Joint layer-shuffle draws of the same-ticket test (p >= 1 / (1 + NULL_DRAWS)).
NULL_DRAWS = 199


def _accuracies(ctx: Context) -> pd.DataFrame:
    """``method, density, seed, found_on, trained_on, accuracy``: own cells (``X = Y``) and transfer cells."""
    from graphtickets.study.tabular import tables

    t = ctx.study.transfer
    tasks = set(t.found_on) | set(t.trained_on)
    own = ctx.tickets
    own = own[(own["method"] != DENSE) & (own["variant"].fillna("") == "") & (own["replicate"] == 0)
              & own["dataset"].isin(tasks)]
    own = own.assign(found_on=own["dataset"], trained_on=own["dataset"])
    moved, _ = tables(ctx.store, list(ctx.cells), transferred=True)
    if not moved.empty:
        moved = moved[(moved["variant"].fillna("") == "") & (moved["replicate"] == 0)]
        moved = moved.assign(trained_on=moved["dataset"])
    cols = ["method", "model", "density", "seed", "found_on", "trained_on", "accuracy"]
    return pd.concat([own[cols], moved[cols] if not moved.empty else None], ignore_index=True)


def _free_methods(ctx: Context) -> set[str]:
    """The methods whose tickets are found without data (the same mask on every task)."""
    return {c.base_method for c in ctx.cells if not c.found_on and c.method != DENSE and data_free(c.spec)}


def _matrix(acc: pd.DataFrame, pairs: list[tuple[str, str]], free: set[str]) -> pd.DataFrame:
    """The ``transfer`` table: per method, model, density and (X, Y) the mean and interval, and the gap."""
    rows = []
    diag = {(x, x) for p in pairs for x in p}
    for (m, model, d), g in acc.groupby(["method", "model", "density"], sort=False):
        by = {k: s.set_index("seed")["accuracy"] for k, s in g.groupby(["found_on", "trained_on"])}
        for x, y in [*sorted(diag), *pairs]:
            same = m in free and x != y
            vals = by.get((y, y) if same else (x, y))
            if vals is None:
                continue
            ci = t_interval(vals.to_numpy())
            row: dict[str, Any] = {"method": m, "model": model, "density": d, "found_on": x, "trained_on": y,
                                   "mean": ci.estimate, "low": ci.low, "high": ci.high, "n": ci.n,
                                   "same_mask": bool(m in free), "gap": np.nan, "gap_low": np.nan,
                                   "gap_high": np.nan, "n_pairs": 0, "p": np.nan}
            if x != y and not same and (y, y) in by:
                diff = (by[(y, y)] - vals).dropna()  # paired by seed
                gi = t_interval(diff.to_numpy())
                p = float(sps.ttest_1samp(diff.to_numpy(), 0.0).pvalue) if len(diff) >= 2 and diff.std() > 0 else np.nan
                row.update(gap=gi.estimate, gap_low=gi.low, gap_high=gi.high, n_pairs=gi.n, p=p)
            rows.append(row)
    return pd.DataFrame(rows)


def _free_vs_moved(acc: pd.DataFrame, pairs: list[tuple[str, str]], free: set[str]) -> pd.DataFrame:
    """The ``transfer_free`` table: a data-free ticket on Y minus a data-driven one transferred X -> Y."""
    rows = []
    for (model, d), g in acc.groupby(["model", "density"], sort=False):
        idx = g.set_index(["method", "found_on", "trained_on", "seed"])["accuracy"].sort_index()
        methods = list(dict.fromkeys(g["method"]))
        for x, y in pairs:
            for f in (m for m in methods if m in free):
                for m in (m for m in methods if m not in free):
                    try:
                        a, b = idx.loc[(f, y, y)], idx.loc[(m, x, y)]
                    except KeyError:
                        continue
                    diff = (a - b).dropna()
                    ci = t_interval(diff.to_numpy())
                    p = float(sps.ttest_1samp(diff.to_numpy(), 0.0).pvalue) if len(diff) >= 2 and diff.std() > 0 else np.nan
                    rows.append({"free": f, "method": m, "model": model, "density": d, "found_on": x, "trained_on": y,
                                 "difference": ci.estimate, "low": ci.low, "high": ci.high, "n": ci.n, "p": p})
    return pd.DataFrame(rows)


def _flat(ticket: Any) -> list[np.ndarray]:
    return [m.detach().cpu().numpy().ravel().astype(bool) for m in ticket.masks.values()]


def _jaccard(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    inter = sum(int((x & y).sum()) for x, y in zip(a, b, strict=True))
    union = sum(int((x | y).sum()) for x, y in zip(a, b, strict=True))
    return 1.0 - inter / union if union else 0.0


def _shuffled(masks: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
    return [rng.permutation(m) for m in masks]


def _same_rows(ctx: Context, tasks: list[str], free: set[str], draws: int) -> pd.DataFrame:
    """The ``transfer_same`` table (see the module docstring)."""
    own: dict[tuple[str, str, str, float, int, int], str] = {
        (c.base_method, c.model, c.dataset, float(c.density), int(c.seed), int(c.replicate)): c.id
        for c in ctx.cells if not c.found_on and not c.variant and c.method != DENSE}
    done = ctx.store.done_ids()
    combos = sorted({k[:2] + (k[3],) for k in own})
    rows = []
    for i, x in enumerate(tasks):
        for y in tasks[i + 1:]:
            for m, model, d in combos:
                if m in free:
                    rows.append({"method": m, "model": model, "density": d, "task_a": x, "task_b": y, "same_mask": True,
                                 "distance": 0.0, "null_mean": np.nan, "sibling_floor": np.nan, "n": 0,
                                 "draws": 0, "p": np.nan})
                    continue
                row = _same_one(ctx, own, done, (m, model, d), x, y, draws)
                if row is not None:
                    rows.append(row)
    return pd.DataFrame(rows)


def _same_one(ctx: Context, own: Mapping[tuple[Any, ...], str], done: set[str], key: tuple[str, str, float],
              x: str, y: str, draws: int) -> dict[str, Any] | None:
    """One method's tickets found on ``x`` and ``y``: observed mean distance, its joint null, the floor."""
    m, model, d = key
    seeds = sorted({k[4] for k in own if k[:2] == (m, model) and k[3] == d})
    obs, nulls, floors = [], [], []
    for s in seeds:
        ia, ib = own.get((m, model, x, d, s, 0)), own.get((m, model, y, d, s, 0))
        if ia not in done or ib not in done:
            continue
        a, b = _flat(ctx.store.load_ticket(ia)), _flat(ctx.store.load_ticket(ib))
        obs.append(_jaccard(a, b))
        rng = np.random.default_rng([int(s), 25])
        nulls.append([_jaccard(a, _shuffled(b, rng)) for _ in range(draws)])
        sib = own.get((m, model, x, d, s, 1))
        if sib in done:
            floors.append(_jaccard(a, _flat(ctx.store.load_ticket(sib))))
    if not obs:
        return None
    value, null = float(np.mean(obs)), np.asarray(nulls).mean(axis=0)  # draw j: the mean over seeds of their j-th
    k = int((null <= value).sum())
    return {"method": m, "model": model, "density": d, "task_a": x, "task_b": y, "same_mask": False, "distance": value,
            "null_mean": float(null.mean()), "sibling_floor": float(np.mean(floors)) if floors else np.nan,
            "n": len(obs), "draws": draws, "p": (1 + k) / (1 + draws)}


def _tests(tr: pd.DataFrame, free_tab: pd.DataFrame, same: pd.DataFrame) -> pd.DataFrame:
    """The section's tests: gaps, data-free vs transferred, same ticket (``TEST_COLUMNS``)."""
    rows = []
    for r in tr[tr["n_pairs"] > 0].itertuples(index=False):
        rows.append({"test": f"gap:{r.method}:{r.model}:d{r.density:g}:{r.found_on}->{r.trained_on}",
                     "question": f"does {r.method}'s ticket found on {r.found_on} lose accuracy on {r.trained_on} "
                                 f"against the one found there (d={r.density:g})?",
                     "family": "task-specificity gap", "statistic": r.gap, "p": r.p, "unit": "init seed",
                     "n": r.n_pairs})
    for r in free_tab.itertuples(index=False):
        rows.append({"test": f"free:{r.free}-{r.method}:{r.model}:d{r.density:g}:{r.found_on}->{r.trained_on}",
                     "question": f"is data-free {r.free} on {r.trained_on} better than {r.method} transferred from "
                                 f"{r.found_on} (d={r.density:g})?",
                     "family": "data-free vs transferred", "statistic": r.difference, "p": r.p, "unit": "init seed",
                     "n": r.n})
    for r in same[~same["same_mask"]].itertuples(index=False) if not same.empty else ():
        rows.append({"test": f"same:{r.method}:{r.model}:d{r.density:g}:{r.task_a}~{r.task_b}",
                     "question": f"are {r.method}'s tickets on {r.task_a} and {r.task_b} more alike than "
                                 f"layer-shuffled ones (d={r.density:g})?",
                     "family": "same ticket on two tasks", "statistic": r.distance - r.null_mean, "p": r.p,
                     "unit": "init seeds (mean)", "n": r.n})
    return pd.DataFrame(rows, columns=TEST_COLUMNS)


def compute(ctx: Context) -> dict[str, pd.DataFrame]:
    """The section's tables (none for a study without ``transfer:``)."""
    study = getattr(ctx, "study", None)
    if study is None or getattr(study, "transfer", None) is None or ctx.tickets.empty or ctx.store is None:
        return {}
    t = study.transfer
    free = _free_methods(ctx)
    acc = _accuracies(ctx)
    tr = _matrix(acc, t.pairs(), free)
    free_tab = _free_vs_moved(acc, t.pairs(), free)
    tasks = list(dict.fromkeys([*t.found_on, *t.trained_on]))
    same = _same_rows(ctx, tasks, free, NULL_DRAWS)
    out = {"transfer": tr, "transfer_free": free_tab, "transfer_same": same, "tests": _tests(tr, free_tab, same)}
    return {k: v for k, v in out.items() if k == "tests" or not v.empty}


def _q_of(ctx: Context) -> dict[str, float]:
    """The global q of this section's tests, from ``tables/tests.csv`` (empty before it is written)."""
    path = ctx.out / "tables" / "tests.csv"
    if not path.is_file():
        return {}
    t = pd.read_csv(path)
    t = t[t["section"] == "transfer"]
    return dict(zip(t["test"], t["q"], strict=True))


def _figure(tr: pd.DataFrame, ctx: Context) -> str | None:
    """The transfer matrices (found on x trained on, mean accuracy), one panel per method and density."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from graphtickets._io import write_output

    keys = list(dict.fromkeys(zip(tr["method"], tr["density"], strict=True)))
    if not keys:
        return None
    tasks = list(dict.fromkeys([*tr["found_on"], *tr["trained_on"]]))
    cols = min(4, len(keys))
    rows = -(-len(keys) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.9 * rows), squeeze=False)
    for ax, (m, d) in zip(axes.ravel(), keys, strict=False):
        g = tr[(tr["method"] == m) & (tr["density"] == d)]
        mat = g.pivot_table(index="found_on", columns="trained_on", values="mean").reindex(index=tasks, columns=tasks)
        im = ax.imshow(mat.to_numpy(dtype=float), vmin=0, vmax=1, cmap="viridis")
        ax.set_title(f"{m} d={d:g}" + (" (same mask)" if bool(g["same_mask"].any()) else ""), fontsize=8)
        ax.set_xticks(range(len(tasks)), tasks, rotation=60, fontsize=6, ha="right")
        ax.set_yticks(range(len(tasks)), tasks, fontsize=6)
    for ax in axes.ravel()[len(keys):]:
        ax.axis("off")
    fig.supylabel("found on", fontsize=8)
    fig.supxlabel("trained and tested on", fontsize=8)
    fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.6, label="test accuracy")
    name = "transfer_matrices.png"
    ctx.figures.mkdir(parents=True, exist_ok=True)
    write_output(ctx.figures / name, lambda f: fig.savefig(f, dpi=110, bbox_inches="tight", format="png"),
                 what="figure")
    plt.close(fig)
    return name


def render(tables: Mapping[str, pd.DataFrame], ctx: Context) -> list[Block]:
    """The section's blocks: what it measures, the matrices (figure and table), gaps, same ticket."""
    tr = tables.get("transfer")
    if tr is None or tr.empty:
        return []
    q = _q_of(ctx)
    blocks: list[Block] = [("h2", "Transfer across tasks: are tickets general?")]
    blocks.append(("p", "Each ticket found on task X is trained from the same initial weights on task Y and tested "
                        "on Y (X -> Y); Y -> Y is Y's own ticket. Gap = acc(Y -> Y) - acc(X -> Y), paired by init "
                        "seed (t interval and paired t test; q: one Benjamini-Hochberg over every test of the "
                        "report). Data-free methods find the same mask whatever the data: for them X -> Y is "
                        "Y -> Y (same mask), and no gap is shown."))
    free = sorted(set(tr.loc[tr["same_mask"], "method"]))
    if free:
        blocks.append(("p", f"Same mask on every task (data-free): {', '.join(free)}."))
    fig = _figure(tr, ctx)
    if fig:
        blocks.append(("img", (ctx.figures / fig, "Transfer matrices: mean test accuracy, found on x trained on")))
    show = tr.copy()
    show["q"] = [q.get(f"gap:{r.method}:{r.model}:d{r.density:g}:{r.found_on}->{r.trained_on}", np.nan)
                 for r in tr.itertuples(index=False)]
    blocks.append(("table", show.set_index(["method", "density", "found_on", "trained_on"])[
        ["mean", "low", "high", "n", "same_mask", "gap", "gap_low", "gap_high", "p", "q"]]))
    for name, title in (("transfer_free", "A data-free ticket on Y against data-driven tickets transferred to Y"),
                        ("transfer_same", "Does a method find the same ticket on two tasks? (Jaccard distance "
                                          "against the layer-shuffle null and the sibling floor)")):
        t = tables.get(name)
        if t is not None and not t.empty:
            blocks += [("h3", title), ("table", t)]
    return blocks


def claims(tables: Mapping[str, pd.DataFrame]) -> list[Claim]:
    """Per family, the claim of its strongest test (smallest p), with an absent sentence."""
    tests = tables.get("tests")
    if tests is None or tests.empty:
        return []
    out = []
    words = {
        "task-specificity gap": ("{m}'s ticket found on {x} does {how} on {y} than the one found on {y} "
                                 "(gap {s:+.3f} accuracy at d={d})",
                                 "The data do not show tickets found on one task doing worse on another than "
                                 "tickets found there."),
        "data-free vs transferred": ("data-free {m} on {y} is {cmp} {o} transferred from {x} "
                                     "(difference {s:+.3f} at d={d})",
                                     "The data do not show a data-free ticket differing from data-driven tickets "
                                     "transferred to the task."),
        "same ticket on two tasks": ("{m} finds overlapping tickets on {x} and {y}, closer than layer-shuffled "
                                     "ones (distance {s:+.3f} from the null at d={d})",
                                     "The data do not show a method finding more alike tickets on two tasks than "
                                     "layer shuffling gives."),
    }
    for fam, (text, absent) in words.items():
        t = tests[(tests["family"] == fam) & np.isfinite(pd.to_numeric(tests["p"], errors="coerce"))]
        if t.empty:
            continue
        r = t.sort_values("p").iloc[0]
        parts = str(r["test"]).split(":")
        m, d = parts[1], parts[3].removeprefix("d")
        tail = parts[4]
        x, y = tail.split("->") if "->" in tail else tail.split("~")
        m, o = (m.split("-", 1) + [""])[:2] if fam == "data-free vs transferred" else (m, "")
        s = float(r["statistic"])
        out.append(Claim(test=str(r["test"]), text=text.format(m=m, o=o, x=x, y=y, s=s, d=d,
                                                               cmp="better than" if s > 0 else "worse than",
                                                               how="worse" if s > 0 else "better"),
                         absent=absent, figure="transfer_matrices.png", priority=35))
    return out


SECTION = sections.register(Section(name="transfer", title="Transfer across tasks", order=60, compute=compute,
                                    render=render, claims=claims))
