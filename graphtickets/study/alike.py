"""What "alike" means in a study: what trained tickets compute, and whether structure predicts it.

The per-group comparison tables (:func:`graphtickets.study.comparisons.analyze`) hold, beside the
structural distance kinds, the function family (:data:`~graphtickets.analysis.FUNCTION_KINDS`:
``agreement``, ``agreement_kappa``, ``error_consistency``, ``cka`` between the trained
tickets on the test split). This module turns them into the report's functional table and the
structure -> function correlation: across all pairs of the study, Spearman's rho between each
structural distance and each functional one, with a permutation (Mantel) p-value, and
Benjamini-Hochberg over the tested combinations.

References
----------
N. Mantel, "The detection of disease clustering and a generalized regression approach",
Cancer Research 1967; Y. Benjamini, Y. Hochberg, "Controlling the false discovery rate",
JRSS B 1995; S. Kornblith et al., "Similarity of Neural Network Representations Revisited",
ICML 2019.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from graphtickets._io import write_output
from graphtickets.study.grid import DENSE, model_rows

__all__ = ["function_kinds", "structure_kinds", "pair_table", "functional_table", "stratified_mantel",
           "structure_function", "structure_function_sentence", "structure_function_figure",
           "accuracy_ci", "distance_ci", "consensus_tables", "consensus_figure",
           "effective_table", "EFFECTIVE_KINDS", "FDR", "sibling_floor", "identical_sibling_methods", "excess_table",
           "paired_difference"]

#: False discovery rate of the Benjamini-Hochberg corrections of the report.
FDR = 0.05


def paired_difference(a: Sequence[float], b: Sequence[float], level: float = 0.95) -> dict[str, float]:
    """Mean of the paired differences ``a - b`` with a Student-t confidence interval and p-value.

    The pairs are seeds (the ticket and its variant share the initialization seed and the
    training data order). With n pairs the interval is ``mean +- t_{(1+level)/2, n-1} *
    sd / sqrt(n)`` and ``p`` the two-sided p-value of the paired t-test; with n < 2 both are
    NaN. When every difference is the same the interval is that point (``p`` 0 if it is not
    zero, else 1).

    Examples
    --------
    >>> r = paired_difference([0.7, 0.72, 0.69], [0.6, 0.61, 0.6])
    >>> round(r["mean"], 3), r["n"], r["low"] > 0
    (0.1, 3, True)
    """
    from scipy import stats

    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    d = d[np.isfinite(d)]
    n = len(d)
    out = {"n": n, "mean": float(d.mean()) if n else float("nan"), "low": float("nan"), "high": float("nan"),
           "p": float("nan")}
    if n < 2:
        return out
    sd = float(d.std(ddof=1))
    if sd == 0.0:
        out.update(low=out["mean"], high=out["mean"], p=0.0 if out["mean"] != 0 else 1.0)
        return out
    half = float(stats.t.ppf(0.5 + level / 2, n - 1) * sd / np.sqrt(n))
    out.update(low=out["mean"] - half, high=out["mean"] + half, p=float(stats.ttest_1samp(d, 0.0).pvalue))
    return out


def function_kinds(kinds: Any) -> list[str]:
    """The kinds of ``kinds`` in the function family of the distance registry (in order)."""
    from graphtickets.analysis import DISTANCES

    return [k for k in dict.fromkeys(kinds) if k in DISTANCES and DISTANCES[k].family == "function"]


def structure_kinds(kinds: Any) -> list[str]:
    """The kinds of ``kinds`` in the structure family of the distance registry (in order)."""
    from graphtickets.analysis import DISTANCES

    return [k for k in dict.fromkeys(kinds) if k in DISTANCES and DISTANCES[k].family == "structure"]


def pair_table(dist: pd.DataFrame) -> pd.DataFrame:
    """One row per compared pair of a same-initialization group, one column per kind (the value).

    Index: ``group, a, b``; the ``.../all`` groups (the MDS map) are left out.
    """
    if dist.empty or "group" not in dist:
        return pd.DataFrame()
    d = dist[~model_rows(dist)]
    if d.empty:
        return pd.DataFrame()
    return d.pivot_table(index=["group", "a", "b"], columns="kind", values="value", aggfunc="mean")


def functional_table(dist: pd.DataFrame) -> pd.DataFrame:
    """Mean functional distance per method pair (over densities and seeds) and kind; ``n`` groups."""
    wide = pair_table(dist)
    fk = function_kinds(wide.columns) if not wide.empty else []
    if not fk:
        return pd.DataFrame()
    w = wide[fk].reset_index()
    w["pair"] = [" ~ ".join(sorted((str(a), str(b)))) for a, b in zip(w["a"], w["b"], strict=True)]
    out = w.groupby("pair")[fk].mean()
    out["n"] = w.groupby("pair").size()
    return out.sort_values(fk[0])


def _group_matrices(wide: pd.DataFrame, kind: str) -> list[np.ndarray]:
    """Per group, the symmetric matrix of ``kind`` over its tickets (NaN where a pair lacks it)."""
    mats = []
    for _, g in wide[kind].groupby(level="group"):
        names = list(dict.fromkeys([*g.index.get_level_values("a"), *g.index.get_level_values("b")]))
        pos = {n: i for i, n in enumerate(names)}
        m = np.full((len(names), len(names)), np.nan)
        np.fill_diagonal(m, 0.0)
        for (_, a, b), v in g.items():
            m[pos[a], pos[b]] = m[pos[b], pos[a]] = v
        mats.append(m)
    return mats


def stratified_mantel(
    d1: list[np.ndarray], d2: list[np.ndarray], *, permutations: int = 999, seed: int = 0,
) -> tuple[float, float, int]:
    """Spearman's rho over the pairs of several groups, with a within-group permutation p-value.

    The pairs of every group (upper triangles of ``d1[g]`` and ``d2[g]``) are pooled and
    ranked; the p-value permutes the objects of ``d2[g]`` (rows and columns together)
    independently within every group -- the Mantel test (:func:`graphtickets.analysis.mantel`)
    with strata, as pairs of different groups (other densities, other initializations) are
    not exchangeable. Two-sided: ``p = (1 + #{|rho_perm| >= |rho|}) / (permutations + 1)``;
    when the product of the groups' ``n!`` is at most ``permutations`` every permutation is
    enumerated and ``p = #{extreme} / total`` (exact). With one group this is
    :func:`~graphtickets.analysis.mantel` with ``method="spearman"``.

    Parameters
    ----------
    d1, d2 : list of numpy.ndarray
        Per group, two symmetric matrices over the same objects; pairs where either is NaN
        are left out (in the statistic and in every permutation).
    permutations : int, default 999
    seed : int, default 0

    Returns
    -------
    (rho, p, n_pairs)
        NaN ``rho`` and ``p`` with fewer than 3 pairs or a constant side.
    """
    tri = [np.triu_indices(a.shape[0], 1) for a in d1]
    x = np.concatenate([a[iu] for a, iu in zip(d1, tri, strict=True)]) if d1 else np.zeros(0)

    def ys(perms: list[np.ndarray]) -> np.ndarray:
        return np.concatenate([b[np.ix_(p, p)][iu] for b, p, iu in zip(d2, perms, tri, strict=True)]) if d2 else np.zeros(0)

    ident = [np.arange(a.shape[0]) for a in d1]
    y0 = ys(ident)
    nan = float("nan")
    if x.size < 3:
        return nan, nan, int(x.size)

    def rho(y: np.ndarray) -> float:
        ok = np.isfinite(x) & np.isfinite(y)
        if ok.sum() < 3:
            return nan
        rx, ry = rankdata(x[ok]), rankdata(y[ok])
        if np.ptp(rx) == 0 or np.ptp(ry) == 0:
            return nan
        return float(np.corrcoef(rx, ry)[0, 1])

    r = rho(y0)
    n_ok = int((np.isfinite(x) & np.isfinite(y0)).sum())
    if not np.isfinite(r):
        return nan, nan, n_ok
    fast = n_ok == x.size  # no NaN: a within-group permutation permutes the pooled values, so their ranks
    zx = rankdata(x)
    zx = (zx - zx.mean()) / zx.std()
    ry = rankdata(y0)
    ry = (ry - ry.mean()) / ry.std()
    rmats, start = [], 0
    for a, iu in zip(d1, tri, strict=True):
        m = np.zeros(a.shape)
        m[iu] = ry[start : start + iu[0].size]
        rmats.append(m + m.T)
        start += iu[0].size

    def stat(perms: list[np.ndarray]) -> float:
        if not fast:
            return rho(ys(perms))
        yp = np.concatenate([m[p[iu[0]], p[iu[1]]] for m, p, iu in zip(rmats, perms, tri, strict=True)])
        return float(np.mean(zx * yp))

    tol = 1e-12 * max(1.0, abs(r))
    total = math.prod(math.factorial(a.shape[0]) for a in d1)
    if total <= int(permutations):
        count = 0
        for perms in itertools.product(*(itertools.permutations(range(a.shape[0])) for a in d1)):
            v = stat([np.asarray(p) for p in perms])
            count += bool(np.isfinite(v) and abs(v) >= abs(r) - tol)
        return r, count / total, n_ok
    rng = np.random.default_rng(seed)
    count = 0
    for _ in range(int(permutations)):
        v = stat([rng.permutation(a.shape[0]) for a in d1])
        count += bool(np.isfinite(v) and abs(v) >= abs(r) - tol)
    return r, (1 + count) / (int(permutations) + 1), n_ok


def structure_function(dist: pd.DataFrame, *, permutations: int = 999, seed: int = 0, alpha: float = FDR) -> pd.DataFrame:
    """Spearman's rho between every structural and every functional distance, across all pairs.

    Parameters
    ----------
    dist : DataFrame
        The study's distances table (:func:`graphtickets.study.tabular.tables`).
    permutations, seed : int
        Of :func:`stratified_mantel` (strata: the same-initialization groups).
    alpha : float
        FDR of the Benjamini-Hochberg correction over the tested combinations.

    Returns
    -------
    DataFrame
        ``structure, function, rho, p, q, significant, pairs``; ``q`` the BH-adjusted p
        (:func:`graphtickets.analysis.fdr_bh`) over the combinations with a finite p.
        Empty when the table holds no functional kinds.
    """
    from graphtickets.analysis import fdr_bh

    cols = ["structure", "function", "rho", "p", "q", "significant", "pairs"]
    wide = pair_table(dist)
    if wide.empty:
        return pd.DataFrame(columns=cols)
    fk, sk = function_kinds(wide.columns), structure_kinds(wide.columns)
    rows = []
    for s in sk:
        ms = _group_matrices(wide, s)
        for f in fk:
            r, p, n = stratified_mantel(ms, _group_matrices(wide, f), permutations=permutations, seed=seed)
            rows.append({"structure": s, "function": f, "rho": r, "p": p, "pairs": n})
    out = pd.DataFrame(rows, columns=["structure", "function", "rho", "p", "pairs"])
    out["q"], out["significant"] = np.nan, False
    ok = out["p"].notna()
    if ok.any():
        q, rej = fdr_bh(out.loc[ok, "p"].to_numpy(), alpha=alpha)
        out.loc[ok, "q"] = q
        out.loc[ok, "significant"] = rej
    return out[cols]


def structure_function_sentence(sf: pd.DataFrame, alpha: float = FDR) -> str | None:
    """The finding: the structural distance that best predicts functional similarity (or that none does)."""
    tested = sf.dropna(subset=["p"]) if not sf.empty else sf
    if tested.empty:
        return None
    n_sig = int(tested["significant"].sum())
    head = (f"Does structure predict function? Across all pairs of tickets, Spearman's rho between each structural "
            f"and each functional distance, with a within-group permutation (Mantel) p, Benjamini-Hochberg over "
            f"{len(tested)} combinations: {n_sig} survive at FDR {alpha:g}")
    sig = tested[tested["significant"] & (tested["rho"] > 0)]
    if sig.empty:
        best = tested.sort_values("rho", ascending=False).iloc[0]
        return (head + f"; no structural distance predicts functional similarity beyond chance (largest: "
                f"{best['structure']} vs {best['function']}, rho = {best['rho']:.2f}, p = {best['p']:.3g}, "
                f"q = {best['q']:.3g}, not significant).")
    best = sig.sort_values(["rho", "q"], ascending=[False, True]).iloc[0]
    return (head + f"; the structural distance that best predicts functional similarity is {best['structure']} "
            f"(rho = {best['rho']:.2f} with {best['function']} distance over {int(best['pairs'])} pairs, "
            f"p = {best['p']:.3g}, BH q = {best['q']:.3g}).")


def structure_function_figure(dist: pd.DataFrame, folder: Path, sf: pd.DataFrame | None = None) -> list[Path]:
    """Scatter of every functional distance (rows) against every structural distance (columns)."""
    wide = pair_table(dist)
    if wide.empty:
        return []
    fk, sk = function_kinds(wide.columns), structure_kinds(wide.columns)
    sk = [k for k in sk if wide[k].notna().any()]
    if not fk or not sk:
        return []
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rho = {} if sf is None or sf.empty else {(r.structure, r.function): (r.rho, r.q) for r in sf.itertuples()}
    fig, axes = plt.subplots(len(fk), len(sk), figsize=(2.1 * len(sk) + 0.5, 2.0 * len(fk) + 0.5), squeeze=False)
    for i, f in enumerate(fk):
        for j, s in enumerate(sk):
            ax = axes[i][j]
            ax.scatter(wide[s], wide[f], s=8, alpha=0.6)
            if (s, f) in rho and np.isfinite(rho[(s, f)][0]):
                r, q = rho[(s, f)]
                ax.set_title(f"rho {r:.2f}, q {q:.2g}", fontsize=7)
            if i == len(fk) - 1:
                ax.set_xlabel(s, fontsize=8)
            if j == 0:
                ax.set_ylabel(f, fontsize=8)
            ax.tick_params(labelsize=6)
    fig.suptitle("structure vs function: one dot per pair of tickets (same init, same density)", fontsize=9)
    fig.tight_layout()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "structure_function.png"
    write_output(path, lambda f: fig.savefig(f, dpi=110, format="png"), what="figure")
    plt.close(fig)
    return [path]


def _ci_text(ci: Any) -> str:
    if not np.isfinite(ci.estimate):
        return ""
    if not (np.isfinite(ci.low) and np.isfinite(ci.high)):
        return f"{ci.estimate:.3f}"
    return f"{ci.estimate:.3f} [{ci.low:.3f}, {ci.high:.3f}]"


def accuracy_ci(tk: pd.DataFrame, *, confidence: float = 0.95) -> pd.DataFrame:
    """Test accuracy per method (rows) and density (columns): mean and Student t interval over init seeds.

    Each init seed contributes one value (the mean over its sibling replicates, if any); the
    cells read ``"mean [low, high]"`` (:func:`graphtickets.analysis.inference.t_interval`, df =
    seeds - 1), the mean alone with one seed. (A percentile bootstrap over 3 seeds is their
    [min, max] and covers ~75 % at "95 %".) The report's accuracy table is the ``accuracy``
    section's (replicate 0).
    """
    from graphtickets.analysis.inference import t_interval

    if tk.empty or "accuracy" not in tk:
        return pd.DataFrame()
    per_seed = tk.groupby(["method", "density", "seed"])["accuracy"].mean().reset_index()
    out: dict[tuple[str, float], str] = {}
    for (m, d), g in per_seed.groupby(["method", "density"]):
        out[(str(m), float(d))] = _ci_text(t_interval(g["accuracy"].to_numpy(), confidence=confidence))
    s = pd.Series(out)
    s.index.names = ["method", "density"]
    table = s.unstack("density")
    return table.reindex(columns=sorted(table.columns, reverse=True)).rename(columns=lambda c: f"d={c:g}")


def distance_ci(dist: pd.DataFrame, *, confidence: float = 0.95) -> pd.DataFrame:
    """Mean distance per (method pair, kind) with a Student t interval over init seeds.

    Per init seed the pair's distances are averaged over densities (the seed is the unit: its
    densities are not independent); the seeds are the independent replicates (df = seeds - 1).
    Columns ``pair, kind, mean, low, high, seeds`` (NaN bounds with one seed).
    """
    from graphtickets.analysis.inference import t_interval

    cols = ["pair", "kind", "mean", "low", "high", "seeds"]
    if dist.empty or "seed" not in dist:
        return pd.DataFrame(columns=cols)
    d = dist[~model_rows(dist)]
    if d.empty:
        return pd.DataFrame(columns=cols)
    d = d.assign(pair=[" ~ ".join(sorted((str(a), str(b)))) for a, b in zip(d["a"], d["b"], strict=True)])
    per_seed = d.groupby(["pair", "kind", "seed"])["value"].mean().reset_index()
    rows = []
    for (p, k), g in per_seed.groupby(["pair", "kind"]):
        ci = t_interval(g["value"].to_numpy(), confidence=confidence)
        rows.append({"pair": p, "kind": k, "mean": ci.estimate, "low": ci.low, "high": ci.high, "seeds": ci.n})
    return pd.DataFrame(rows, columns=cols)


def _method_tickets(tk: pd.DataFrame, store: Any) -> Iterator[tuple[tuple[Any, Any], dict[str, Any]]]:
    """Per (density, seed): ``{method: ticket}`` of the methods' own tickets (no dense reference,
    no ablation variant, one per method), those of the most common architecture; groups of
    fewer than two tickets are skipped."""
    own = tk[(tk["method"] != DENSE) & (tk["variant"].fillna("") == "" if "variant" in tk else True)]
    for key, g in own.groupby(["density", "seed"]):
        g = g.drop_duplicates("method")
        tickets = {str(r.method): store.load_ticket(str(r.id)) for r in g.itertuples()}
        sig = {m: tuple((n, tuple(v.shape)) for n, v in t.masks.items()) for m, t in tickets.items()}
        common = pd.Series(list(sig.values())).value_counts().index[0]
        tickets = {m: t for m, t in tickets.items() if sig[m] == common}
        if len(tickets) >= 2:
            yield key, tickets


def consensus_tables(store: Any, tk: pd.DataFrame) -> dict[str, Any]:
    """Consensus across methods per (density, init seed) (:func:`graphtickets.analysis.consensus`).

    The methods' own tickets (no dense reference, no ablation variant, one per method: the
    first replicate) of one density and init seed; tickets whose masks differ in names or
    shapes from the most common ones are left out.

    Returns
    -------
    dict
        ``cores``: one row per (density, seed): ``tickets``, ``all`` (kept by every method),
        ``expected_all``, ``ratio_all``, ``k`` (a majority, ``n // 2 + 1``), ``core_k``,
        ``expected_k``, ``ratio_k``; ``layers``: per density and layer, the mean over seeds of
        the majority core and its expectation (where the core sits); ``histograms``:
        ``{(density, seed): (observed, expected)}`` frequency distributions (weights kept by
        exactly ``j`` methods). Empty dict when no group has at least 2 tickets.
    """
    from graphtickets.analysis import consensus

    if tk.empty:
        return {}
    cores, layers, hists = [], [], {}
    for (d, s), tickets in _method_tickets(tk, store):
        c = consensus(tickets)
        n = c.n_tickets
        k = n // 2 + 1
        e_all, e_k = c.expected_core(n), c.expected_core(k)
        cores.append({"density": float(d), "seed": int(s), "tickets": n, "all": c.core(n), "expected_all": e_all,
                      "ratio_all": c.core(n) / e_all if e_all > 0 else float("nan"), "k": k, "core_k": c.core(k),
                      "expected_k": e_k, "ratio_k": c.core(k) / e_k if e_k > 0 else float("nan")})
        lay = c.layers.assign(density=float(d), seed=int(s), k=k)
        if k != c.k:  # the layers table holds the default (all) threshold: recompute the majority core
            units = c.units(k)
            per = units[units["side"] == "out"].groupby("layer")[["core_weights", "expected"]].sum()
            lay = lay.drop(columns=["core", "expected_core"]).merge(
                per.rename(columns={"core_weights": "core", "expected": "expected_core"}), left_on="layer",
                right_index=True, how="left")
        layers.append(lay)
        hists[(float(d), int(s))] = (np.asarray(c.histogram, dtype=float), np.asarray(c.expected, dtype=float))
    if not cores:
        return {}
    lay = pd.concat(layers, ignore_index=True)
    by_layer = lay.groupby(["density", "layer"], sort=False)[["numel", "mean_density", "core", "expected_core", "all",
                                                              "expected_all"]].mean()
    by_layer["ratio"] = by_layer["core"] / by_layer["expected_core"].replace(0, np.nan)
    return {"cores": pd.DataFrame(cores).set_index(["density", "seed"]), "layers": by_layer, "histograms": hists}


def consensus_figure(hists: dict[tuple[float, int], tuple[np.ndarray, np.ndarray]], folder: Path) -> list[Path]:
    """Per density: how many weights exactly ``j`` methods keep, observed (bars, mean over seeds) vs expected."""
    if not hists:
        return []
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    densities = sorted({d for d, _ in hists}, reverse=True)
    fig, axes = plt.subplots(1, len(densities), figsize=(4.0 * len(densities), 3.2), squeeze=False)
    for ax, d in zip(axes[0], densities, strict=True):
        hs = [v for (dd, _), v in hists.items() if dd == d]
        size = min(h[0].size for h in hs)
        obs = np.mean([h[0][:size] for h in hs], axis=0)
        exp = np.mean([h[1][:size] for h in hs], axis=0)
        j = np.arange(size)
        ax.bar(j, obs, width=0.6, label="observed")
        ax.plot(j, exp, "k.--", label="expected (independent layer-shuffled masks)")
        ax.set_yscale("symlog", linthresh=1.0)
        ax.set_xlabel("number of methods keeping the weight")
        ax.set_title(f"density {d:g}", fontsize=9)
    axes[0][0].set_ylabel("weights")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "consensus.png"
    write_output(path, lambda f: fig.savefig(f, dpi=110, format="png"), what="figure")
    plt.close(fig)
    return [path]


#: Mask distances taken on the effective masks in the report (cheap: no graphs, no nulls).
EFFECTIVE_KINDS = ("jaccard", "hamming", "layer_density")


def effective_table(store: Any, tk: pd.DataFrame, kinds: tuple[str, ...] = EFFECTIVE_KINDS) -> pd.DataFrame:
    """Mask distances on the plain and on the effective masks, per method pair (mean over groups).

    Per (density, init seed), the methods' own tickets are compared with
    :func:`graphtickets.analysis.compare` twice: as found, and with ``effective=True``
    (weights on no input-output path removed; :func:`~graphtickets.analysis.effective_ticket`).
    Columns ``pair, kind, plain, effective, difference, n``; rows where the two differ come first.
    """
    from graphtickets.analysis import compare

    cols = ["pair", "kind", "plain", "effective", "difference", "n"]
    if tk.empty:
        return pd.DataFrame(columns=cols)
    parts = []
    for _, tickets in _method_tickets(tk, store):
        model = next(iter(tickets.values())).build_model()
        plain = compare(tickets, model, kinds=list(kinds))
        eff = compare(tickets, model, kinds=list(kinds), effective=True)
        parts.append(plain.merge(eff, on=["a", "b", "kind"], suffixes=("_plain", "_effective")))
    if not parts:
        return pd.DataFrame(columns=cols)
    t = pd.concat(parts, ignore_index=True)
    t["pair"] = [" ~ ".join(sorted((str(a), str(b)))) for a, b in zip(t["a"], t["b"], strict=True)]
    out = t.groupby(["pair", "kind"]).agg(plain=("value_plain", "mean"), effective=("value_effective", "mean"),
                                         n=("value_plain", "size")).reset_index()
    out["difference"] = out["effective"] - out["plain"]
    out = out.assign(_d=out["difference"].abs()).sort_values("_d", ascending=False, kind="stable").drop(columns="_d")
    return out[cols].reset_index(drop=True)


# ---------------------------------------------------------------------------- siblings: the noise floor
def sibling_floor(siblings: pd.DataFrame) -> pd.DataFrame:
    """The sibling noise floor per method and kind (mean over densities, init seeds and sibling pairs).

    ``siblings``: :func:`graphtickets.study.tabular.sibling_table` (tickets of one method from the
    same initial weights with other stochastic seeds).

    Returns
    -------
    DataFrame
        ``method, kind, within`` (mean sibling distance), ``null`` (mean null distance of the
        sibling pairs, where the kind has nulls), ``pairs`` (sibling pairs), ``identical``
        (how many of them have the very same masks: a method that draws nothing at random
        given the init, e.g. data-free magnitude or SynFlow); empty without siblings.
    """
    cols = ["method", "kind", "within", "null", "pairs", "identical"]
    if siblings is None or siblings.empty:
        return pd.DataFrame(columns=cols)
    s = siblings.assign(
        null=siblings["null_mean"] if "null_mean" in siblings else np.nan,
        same=siblings["identical"].fillna(False).astype(bool) if "identical" in siblings else False,
    )
    g = s.groupby(["method", "kind"])
    out = pd.DataFrame({"within": g["value"].mean(), "null": g["null"].mean(), "pairs": g.size(),
                        "identical": g["same"].sum().astype(int)}).reset_index()
    return out[cols]


def identical_sibling_methods(siblings: pd.DataFrame) -> list[str]:
    """The methods all of whose sibling pairs have identical masks (sorted)."""
    if siblings is None or siblings.empty or "identical" not in siblings:
        return []
    per = siblings.drop_duplicates(["group", "method", "a", "b"]).groupby("method")["identical"]
    return sorted(str(m) for m, v in per if v.notna().all() and v.astype(bool).all())


def excess_table(dist: pd.DataFrame, siblings: pd.DataFrame) -> pd.DataFrame:
    """Excess over siblings of every method pair and structural kind.

    Per comparison group (density, init seed) and kind, ``excess_over_siblings(d_AB,
    within_A, within_B, null_mean)`` (:func:`graphtickets.analysis.excess_over_siblings`,
    clipped to [0, 1]) with ``within_X`` the mean distance between X's siblings in the same
    group; then the mean over groups.

    Returns
    -------
    DataFrame
        ``pair, kind, excess`` (mean over groups; NaN where no group has a scale, e.g. the
        siblings of a method are as different as the null), ``value, within_a, within_b,
        null`` (the means the excess is read against; ``within_a`` of the pair's first
        method in ``"a ~ b"``), ``n`` (groups with a finite excess);
        empty without siblings or nulls.
    """
    from graphtickets.analysis import excess_over_siblings

    cols = ["pair", "kind", "excess", "value", "within_a", "within_b", "null", "n"]
    if dist.empty or siblings is None or siblings.empty or "null_mean" not in dist:
        return pd.DataFrame(columns=cols)
    within = siblings.groupby(["group", "method", "kind"])["value"].mean()
    d = dist[~model_rows(dist)]
    d = d[d["kind"].isin(structure_kinds(d["kind"].unique())) & d["null_mean"].notna()]
    if d.empty:
        return pd.DataFrame(columns=cols)
    first = [str(a) <= str(b) for a, b in zip(d["a"], d["b"], strict=True)]  # within_a: the pair's first method
    d = d.assign(a=np.where(first, d["a"], d["b"]), b=np.where(first, d["b"], d["a"]))
    wa = [within.get((g, a, k), np.nan) for g, a, k in zip(d["group"], d["a"], d["kind"], strict=True)]
    wb = [within.get((g, b, k), np.nan) for g, b, k in zip(d["group"], d["b"], d["kind"], strict=True)]
    d = d.assign(within_a=wa, within_b=wb)
    d = d.assign(excess=excess_over_siblings(d["value"].to_numpy(), d["within_a"].to_numpy(), d["within_b"].to_numpy(),
                                             d["null_mean"].to_numpy()))
    d = d.assign(pair=[" ~ ".join(sorted((str(a), str(b)))) for a, b in zip(d["a"], d["b"], strict=True)])
    d = d[d["within_a"].notna() | d["within_b"].notna()]
    if d.empty:
        return pd.DataFrame(columns=cols)
    g = d.groupby(["pair", "kind"])
    out = pd.DataFrame({"excess": g["excess"].mean(), "value": g["value"].mean(), "within_a": g["within_a"].mean(),
                        "within_b": g["within_b"].mean(), "null": g["null_mean"].mean(),
                        "n": g["excess"].count()}).reset_index()
    return out[cols]
