"""The study's figures (matplotlib, Agg backend), each written as PNG and SVG.

Every function takes the tables (and, where needed, the per-cell results) and a folder, and
returns the paths it wrote (empty when the study has nothing to show, e.g. no Early-Bird cell).
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from graphtickets._io import write_output
from graphtickets.study.grid import DENSE, model_rows
from graphtickets.study.methods import method_order

__all__ = [
    "FIGURES",
    "make_figures",
    "accuracy_vs_density",
    "layer_density_profiles",
    "distance_heatmaps",
    "mds_map",
    "clustering_path_plane",
    "degree_distributions",
    "laplacian_spectra",
    "early_bird_curves",
    "sanity_checks",
    "imp_rounds",
    "method_order",
]

log = logging.getLogger("graphtickets.study")

def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _colors(methods: Sequence[str]) -> dict[str, Any]:
    """One colour per method: tab10 without its grey (grey marks densities and references)."""
    plt = _plt()
    tab = plt.get_cmap("tab10")
    palette = [tab(i) for i in (0, 1, 2, 3, 4, 5, 6, 8, 9)] + [plt.get_cmap("tab20b")(i) for i in (0, 4, 8, 12, 16)]
    out = {m: palette[i % len(palette)] for i, m in enumerate(m for m in method_order(methods) if m != DENSE)}
    out[DENSE] = (0.0, 0.0, 0.0, 1.0)
    return out


def _tickets(tk: pd.DataFrame) -> pd.DataFrame:
    """The pruned tickets (without the dense reference cells)."""
    return tk[tk["method"] != DENSE] if "method" in tk else tk


def _own(tk: pd.DataFrame) -> pd.DataFrame:
    """Without the ablation variants (they have their own figure)."""
    return tk[tk["variant"].fillna("") == ""] if "variant" in tk else tk


def sanity_checks(tk: pd.DataFrame, folder: Path) -> list[Path]:
    """Test accuracy of each method's ticket beside its ablation variants (mean, min-max over seeds)."""
    if "variant" not in tk or not (tk["variant"].fillna("") != "").any():
        return []
    plt = _plt()
    g = _tickets(tk)
    methods = method_order(list(g.loc[g["variant"].fillna("") != "", "base_method"]))
    variants = [""] + sorted(set(g["variant"].fillna("")) - {""})
    densities = sorted(g["density"].unique(), reverse=True)
    fig, axes = plt.subplots(1, len(densities), figsize=(max(5.0, 0.9 * len(methods)) * len(densities) / 1.4, 3.8),
                             squeeze=False, sharey=True)
    width = 0.8 / len(variants)
    palette = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:gray"]
    shades = {v: palette[i % len(palette)] for i, v in enumerate(variants)}
    for ax, d in zip(axes[0], densities, strict=True):
        for j, v in enumerate(variants):
            sub = g[(g["density"] == d) & (g["variant"].fillna("") == v)]
            stats = sub.groupby("base_method")["accuracy"].agg(["mean", "min", "max"]).reindex(methods)
            x = np.arange(len(methods)) + (j - (len(variants) - 1) / 2) * width
            err = np.vstack([stats["mean"] - stats["min"], stats["max"] - stats["mean"]])
            ax.bar(x, stats["mean"], width, yerr=err, color=shades[v], label=v or "ticket", capsize=2)
        ax.set_xticks(np.arange(len(methods)), methods, rotation=45, ha="right")
        ax.set_title(f"density {d:g}")
    axes[0][0].set_ylabel("test accuracy")
    axes[0][-1].legend(fontsize=8)
    fig.suptitle("Sanity checks: each method's ticket vs its ablation variants")
    return _save(fig, folder, "sanity_checks")


def _chance(dataset: str) -> float | None:
    try:
        from graphtickets import data

        return 1.0 / float(data.info(dataset).num_classes)
    except Exception:  # noqa: BLE001 - an unknown dataset: no chance line
        return None


def _text_color(rgba: Any) -> str:
    """Black on light cells, white on dark ones (relative luminance)."""
    r, g, b = rgba[:3]
    return "black" if 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.45 else "white"


def _savefig(fig: Any, ext: str, f: Any) -> None:
    fig.savefig(f, dpi=120, bbox_inches="tight", format=ext)


def _save(fig: Any, folder: Path, name: str) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for ext in ("png", "svg"):
        p = folder / f"{name}.{ext}"
        write_output(p, functools.partial(_savefig, fig, ext), what="figure")
        paths.append(p)
    _plt().close(fig)
    return paths


def _subsets(tk: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """One (title suffix, frame) per (dataset, model)."""
    return [(f"{d}, {m}", g) for (d, m), g in tk.groupby(["dataset", "model"], sort=False)]


def _suffix(title: str, n: int) -> str:
    return "" if n == 1 else "_" + "".join(ch if ch.isalnum() else "_" for ch in title).strip("_")


# ---------------------------------------------------------------------------- figures
def accuracy_vs_density(tk: pd.DataFrame, folder: Path) -> list[Path]:
    """Test accuracy vs density per method (mean and min/max over seeds), log density axis."""
    plt = _plt()
    out: list[Path] = []
    subsets = _subsets(tk)
    for title, g in subsets:
        colors = _colors(g["method"])
        fig, ax = plt.subplots(figsize=(6.5, 4.2))
        for m in method_order(g["method"]):
            if m == DENSE:
                continue
            s = g[g["method"] == m].groupby("density")["accuracy"].agg(["mean", "min", "max"]).sort_index()
            ax.errorbar(s.index, s["mean"], yerr=[s["mean"] - s["min"], s["max"] - s["mean"]], marker="o",
                        capsize=3, label=m, color=colors[m])
        dense = g[g["method"] == DENSE]["accuracy"].dropna()
        if not dense.empty:
            ax.axhline(dense.mean(), color="k", lw=1.2, label=f"dense network ({dense.mean():.3f})")
            if len(dense) > 1:
                ax.axhspan(dense.min(), dense.max(), color="k", alpha=0.08)
        chance = _chance(str(g["dataset"].iloc[0]))
        if chance is not None:
            ax.axhline(chance, color="grey", ls=":", lw=1, label=f"chance ({chance:.2f})")
        ax.set_xscale("log")
        ax.set_xlabel("density (fraction of weights kept)")
        ax.set_ylabel("test accuracy")
        ax.set_title(f"Accuracy of trained tickets ({title})")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, ncol=2)
        out += _save(fig, folder, "accuracy_vs_density" + _suffix(title, len(subsets)))
    return out


def layer_density_profiles(tk: pd.DataFrame, folder: Path) -> list[Path]:
    """Per-layer density of each method's tickets (mean over seeds), one panel per density."""
    plt = _plt()
    out: list[Path] = []
    subsets = _subsets(tk)
    for title, g in subsets:
        g = _tickets(g)
        cols = [c for c in g.columns if c.startswith("layer.") and g[c].notna().any()]  # network order
        if not cols or g.empty:
            continue
        dens = sorted(g["density"].unique(), reverse=True)
        colors = _colors(g["method"])
        values = g[cols].to_numpy(dtype=float)
        positive = values[np.isfinite(values) & (values > 0)]
        lin = 10.0 ** np.floor(np.log10(positive.min())) if positive.size else 1e-3
        fig, axes = plt.subplots(1, len(dens), figsize=(4.2 * len(dens), 3.8), squeeze=False, sharey=True)
        x = np.arange(len(cols))
        n_zero = 0
        for ax, d in zip(axes[0], dens, strict=True):
            gd = g[g["density"] == d]
            for m in method_order(gd["method"]):
                y = gd[gd["method"] == m][cols].mean().to_numpy(dtype=float)
                ax.plot(x, y, marker="o", ms=4, label=m, color=colors[m])
                zero = y == 0
                if zero.any():  # a layer pruned away: an explicit marker at 0
                    n_zero += int(zero.sum())
                    ax.scatter(x[zero], y[zero], marker="X", s=70, color=colors[m], edgecolor="k", lw=0.6, zorder=5)
            # symlog: linear below the smallest non-zero density, so a density of exactly 0 stays visible
            ax.set_yscale("symlog", linthresh=lin, linscale=0.5)
            ax.set_ylim(bottom=0)
            ax.set_xticks(x, [c.removeprefix("layer.").removesuffix(".weight") for c in cols], rotation=45, fontsize=7)
            ax.set_title(f"density {d:g}")
            ax.grid(alpha=0.3)
        axes[0][0].set_ylabel("layer density (symlog; 0 = layer removed)")
        # outside the last panel (bbox_inches="tight" keeps it): inside it covered the curves
        axes[0][-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
        note = "; X = a layer with no weight left" if n_zero else ""
        fig.suptitle(f"Layer-density profiles, layers in network order ({title}){note}")
        out += _save(fig, folder, "layer_density_profiles" + _suffix(title, len(subsets)))
    return out


def _mean_matrix(sub: pd.DataFrame, value: str = "value") -> pd.DataFrame:
    """Method x method mean of ``value`` over the groups in ``sub`` (0 on the diagonal for values)."""
    methods = method_order(list(sub["a"]) + list(sub["b"]))
    both = pd.concat([sub[["a", "b", value]], sub[["a", "b", value]].rename(columns={"a": "b", "b": "a"})])
    m = both.groupby(["a", "b"])[value].mean().unstack().reindex(index=methods, columns=methods)
    if value == "value":
        for k in methods:
            m.loc[k, k] = 0.0
    return m


def _cluster_order(mat: pd.DataFrame) -> list[str]:
    """Leaf order of an average-linkage hierarchical clustering of a distance matrix."""
    from scipy.cluster.hierarchy import leaves_list, linkage
    from scipy.spatial.distance import squareform

    names = list(mat.index)
    if len(names) < 3:
        return names
    a = mat.to_numpy(dtype=float)
    a = np.nan_to_num((a + a.T) / 2, nan=np.nanmax(a) if np.isfinite(a).any() else 0.0)
    np.fill_diagonal(a, 0.0)
    return [names[i] for i in leaves_list(linkage(squareform(a, checks=False), method="average", optimal_ordering=True))]


def _annotate(ax: Any, im: Any, mat: pd.DataFrame, fmt: Any) -> None:
    size = 6 if mat.shape[0] <= 12 else 5
    for i in range(mat.shape[0]):
        for j in range(mat.shape[1]):
            v = mat.iat[i, j]
            if np.isfinite(v):
                ax.text(j, i, fmt(v), ha="center", va="center", fontsize=size, color=_text_color(im.cmap(im.norm(v))))


def short_number(v: float) -> str:
    """At most 5 characters, so neighbouring heatmap cells never run together.

    >>> [short_number(x) for x in (0.0, 0.004, 0.0512, 0.5, 3.14159, 42.42, 512.3, 3210.0, 45678.0, 2.5e6)]
    ['0', '4e-03', '0.051', '0.50', '3.14', '42.4', '512', '3.2k', '46k', '2.5M']
    """
    a = abs(v)
    if a == 0:
        return "0"
    for scale, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if a >= scale:
            x = v / scale
            return f"{x:.1f}{unit}" if abs(x) < 10 else f"{x:.0f}{unit}"
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 0.1:
        return f"{v:.2f}"
    if a >= 0.01:
        return f"{v:.3f}"
    return f"{v:.0e}"


#: z-scores beyond this are drawn (and labelled) at the limit.
Z_CLIP = 10.0


def distance_heatmaps(dist: pd.DataFrame, folder: Path) -> list[Path]:
    """Per kind: method x method mean distance (over seeds and densities), clustered; and z-scores.

    The diagonal is masked (it is 0 by definition and would set the colour range); colours
    span the off-diagonal values. The z panel shows the mean well-defined z (NaN where the
    nulls do not vary) clipped to +-10.
    """
    plt = _plt()
    out: list[Path] = []
    d = dist[~model_rows(dist)]
    for kind, sub in d.groupby("kind", sort=False):
        mat = _mean_matrix(sub)
        order = _cluster_order(mat)
        vals = mat.loc[order, order].to_numpy(dtype=float, copy=True)
        np.fill_diagonal(vals, np.nan)
        mat = pd.DataFrame(vals, index=order, columns=order)
        has_z = "z" in sub and sub["z"].notna().any()
        fig, axes = plt.subplots(1, 2 if has_z else 1, figsize=(11 if has_z else 5.8, 4.8), squeeze=False)
        ax = axes[0][0]
        cmap = plt.get_cmap("viridis").with_extremes(bad="white")
        fin = vals[np.isfinite(vals)]
        im = ax.imshow(np.ma.masked_invalid(vals), cmap=cmap, vmin=float(fin.min()) if fin.size else 0.0,
                       vmax=float(fin.max()) if fin.size else 1.0)
        ax.set_xticks(range(len(order)), order, rotation=60, fontsize=8)
        ax.set_yticks(range(len(order)), order, fontsize=8)
        _annotate(ax, im, mat, short_number)
        ax.set_title(f"{kind}: mean distance (clustered)")
        fig.colorbar(im, ax=ax, shrink=0.8)
        if has_z:
            zv = _mean_matrix(sub.dropna(subset=["z"]), "z").reindex(index=order, columns=order).to_numpy(dtype=float, copy=True)
            np.fill_diagonal(zv, np.nan)
            z = pd.DataFrame(zv, index=order, columns=order)
            lim = min(Z_CLIP, float(np.nanmax(np.abs(zv)))) if np.isfinite(zv).any() else 1.0
            lim = max(lim, 2.0)
            ax2 = axes[0][1]
            zmap = plt.get_cmap("RdBu").with_extremes(bad="white")
            im2 = ax2.imshow(np.ma.masked_invalid(np.clip(zv, -lim, lim)), cmap=zmap, vmin=-lim, vmax=lim)
            ax2.set_xticks(range(len(order)), order, rotation=60, fontsize=8)
            ax2.set_yticks(range(len(order)), order, fontsize=8)
            _annotate(ax2, im2, z.clip(-Z_CLIP, Z_CLIP),
                      lambda v: (">=" if v > 0 else "<=-") + f"{Z_CLIP:g}" if abs(v) >= Z_CLIP else f"{v:.1f}")
            ax2.set_title("z vs symmetric layer-shuffled null (<0: more alike)", fontsize=9)
            fig.colorbar(im2, ax=ax2, shrink=0.8)
        out += _save(fig, folder, f"distance_heatmap_{kind}")
    return out


def mds_map(dist: pd.DataFrame, tk: pd.DataFrame, folder: Path, *, seed: int = 0) -> list[Path]:
    """Metric MDS of all tickets of each (dataset, model) from the precomputed ``.../all`` distances."""
    from sklearn.manifold import MDS

    plt = _plt()
    out: list[Path] = []
    alls = dist[model_rows(dist)]
    info = tk.set_index("id")
    groups = list(alls.groupby("group", sort=False))
    for key, sub in groups:
        kind = sub["kind"].iloc[0]
        ids = list(dict.fromkeys(list(sub["a"]) + list(sub["b"])))
        ids = [i for i in ids if i in info.index]
        if len(ids) < 3:
            continue
        pos = {k: i for i, k in enumerate(ids)}
        mat = np.zeros((len(ids), len(ids)))
        for a, b, v in zip(sub["a"], sub["b"], sub["value"], strict=True):
            if a in pos and b in pos:
                mat[pos[a], pos[b]] = mat[pos[b], pos[a]] = v
        mat = np.nan_to_num(mat, nan=np.nanmax(mat))
        try:  # scikit-learn >= 1.8 spells it metric="precomputed" and warns on dissimilarity=
            mds = MDS(n_components=2, metric="precomputed", init="classical_mds", random_state=seed, n_init=1)
        except TypeError:
            mds = MDS(n_components=2, dissimilarity="precomputed", random_state=seed, n_init=4)
        xy = mds.fit_transform(mat)
        meth = info.loc[ids, "method"].to_numpy()
        dens = info.loc[ids, "density"].to_numpy()
        colors = _colors(meth)
        dlist = sorted(set(dens), reverse=True)
        markers = dict(zip(dlist, ["o", "s", "^", "D", "v", "P", "X"] * 3, strict=False))
        fig, ax = plt.subplots(figsize=(6.5, 5.2))
        for m in method_order(meth):
            for d in dlist:
                sel = (meth == m) & (dens == d)
                if sel.any():
                    ax.scatter(xy[sel, 0], xy[sel, 1], color=colors[m], marker=markers[d], s=40, edgecolor="k", lw=0.4,
                               label=m if d == dlist[0] else None)
        for d in dlist:  # density legend: marker shapes, hollow black (colours are methods)
            ax.scatter([], [], marker=markers[d], facecolor="white", edgecolor="k", label=f"d={d:g}")
        ax.legend(fontsize=7, ncol=2)
        stress = getattr(mds, "stress_", None)
        ax.set_title(f"MDS of all tickets ({kind} distance; {key.removesuffix('/all')})"
                     + (f"\ncolour = method, marker = density; stress {stress:.3g}" if stress is not None else ""),
                     fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        out += _save(fig, folder, f"mds_{kind}" + _suffix(key, len(groups)))
    return out


def clustering_path_plane(tk: pd.DataFrame, folder: Path) -> list[Path]:
    """Tickets on the relational graph's clustering (C) / average path length (L) plane (You et al. Fig. 1)."""
    plt = _plt()
    c, lcol = "relational.clustering", "relational.path_length"
    if c not in tk or lcol not in tk or tk[[c, lcol]].dropna().empty:
        return []
    g = tk.dropna(subset=[c, lcol])
    colors = _colors(g["method"])
    dlist = sorted(g["density"].unique(), reverse=True)
    markers = dict(zip(dlist, ["o", "s", "^", "D", "v"] * 3, strict=False))
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
    for m in method_order(g["method"]):
        for d in dlist:
            s = g[(g["method"] == m) & (g["density"] == d)]
            axes[0].scatter(s[c], s[lcol], color=colors[m], marker=markers[d], s=40, edgecolor="k", lw=0.4,
                            label=m if d == dlist[0] else None)
    for d in dlist:
        axes[0].scatter([], [], marker=markers[d], facecolor="white", edgecolor="k", label=f"d={d:g}")
    axes[0].legend(fontsize=7, ncol=2)
    axes[0].set_title("by method")
    sc = axes[1].scatter(g[c], g[lcol], c=g["accuracy"], cmap="plasma", s=40, edgecolor="k", lw=0.4)
    fig.colorbar(sc, ax=axes[1], label="test accuracy")
    axes[1].set_title("by test accuracy")
    for ax in axes:
        ax.set_xlabel("clustering coefficient C (relational graph)")
        ax.set_ylabel("average path length L")
        ax.grid(alpha=0.3)
    fig.suptitle("Tickets on the clustering-path-length plane (You et al. 2020, Fig. 1)")
    return _save(fig, folder, "clustering_path_length")


def _per_method_curves(tk: pd.DataFrame, results: Mapping[str, Mapping[str, Any]], key: str) -> dict[float, dict[str, list[np.ndarray]]]:
    out: dict[float, dict[str, list[np.ndarray]]] = {}
    for r in tk.itertuples(index=False):
        v = results.get(r.id, {}).get(key)
        if v:
            out.setdefault(r.density, {}).setdefault(r.method, []).append(np.asarray(v, dtype=float))
    return out


def degree_distributions(tk: pd.DataFrame, results: Mapping[str, Mapping[str, Any]], folder: Path) -> list[Path]:
    """Complementary CDF of hidden-unit degrees in the layered graph, per method and density."""
    plt = _plt()
    curves = _per_method_curves(tk, results, "degree_hist")
    if not curves:
        return []
    colors = _colors(tk["method"])
    dens = sorted(curves, reverse=True)
    fig, axes = plt.subplots(1, len(dens), figsize=(4.2 * len(dens), 3.8), squeeze=False)
    for ax, d in zip(axes[0], dens, strict=True):
        for m in method_order(list(curves[d])):
            n = max(len(h) for h in curves[d][m])
            h = np.mean([np.pad(x, (0, n - len(x))) for x in curves[d][m]], axis=0)
            total = h.sum()
            if total <= 0:
                continue
            ccdf = 1.0 - np.cumsum(h) / total + h / total  # P(degree >= k)
            k = np.arange(n)
            keep = (k > 0) & (ccdf > 0)
            ax.step(k[keep], ccdf[keep], where="post", label=m, color=colors[m])
        ax.set_xscale("symlog", linthresh=1)
        ax.set_yscale("log")
        ax.set_xlabel("degree k (in + out)")
        ax.set_title(f"density {d:g}")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("P(degree >= k), hidden units")
    axes[0][-1].legend(fontsize=7)
    fig.suptitle("Degree distributions of the layered graphs")
    return _save(fig, folder, "degree_distributions")


def laplacian_spectra(tk: pd.DataFrame, results: Mapping[str, Mapping[str, Any]], folder: Path) -> list[Path]:
    """Normalized Laplacian eigenvalues of the layered graph (sorted), per method and density."""
    plt = _plt()
    curves = _per_method_curves(tk, results, "spectrum")
    if not curves:
        return []
    colors = _colors(tk["method"])
    dens = sorted(curves, reverse=True)
    fig, axes = plt.subplots(1, len(dens), figsize=(4.2 * len(dens), 3.8), squeeze=False, sharey=True)
    for ax, d in zip(axes[0], dens, strict=True):
        for m in method_order(list(curves[d])):
            n = min(len(x) for x in curves[d][m])
            s = np.mean([np.sort(x)[:n] for x in curves[d][m]], axis=0)
            ax.plot(np.arange(n) / max(n - 1, 1), s, label=m, color=colors[m])
        ax.set_xlabel("eigenvalue rank (fraction)")
        ax.set_title(f"density {d:g}")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("normalized Laplacian eigenvalue")
    axes[0][-1].legend(fontsize=7)
    fig.suptitle("Laplacian spectra of the layered graphs (a plateau at 0 = disconnected units)")
    return _save(fig, folder, "laplacian_spectra")


def early_bird_curves(tk: pd.DataFrame, results: Mapping[str, Mapping[str, Any]], folder: Path) -> list[Path]:
    """Early-Bird mask distance to the previous masks per epoch, with the tolerance and detection epoch."""
    plt = _plt()
    rows = [(r.density, r.seed, results.get(r.id, {})) for r in tk.itertuples(index=False) if "eb_distances" in results.get(r.id, {})]
    rows = [x for x in rows if x[2].get("eb_distances")]
    if not rows:
        return []
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    cmap = plt.get_cmap("viridis")
    dlist = sorted({r[0] for r in rows}, reverse=True)
    tol = None
    fired = 0
    for d, s, res in rows:
        y = np.array([np.nan if v is None else v for v in res["eb_distances"]], dtype=float)
        col = cmap(dlist.index(d) / max(len(dlist) - 1, 1))
        x = np.arange(1, len(y) + 1)
        detected = bool(res.get("eb_detected") and res.get("eb_epoch"))
        label = f"d={d:g} s={s}" + (f": drawn at epoch {res['eb_epoch']}" if detected else ": never fired")
        ax.plot(x, y, marker=".", color=col, label=label, ls="-" if s == rows[0][1] else "--")
        if detected:
            ax.axvline(res["eb_epoch"], color=col, alpha=0.3)
            fired += 1
        tol = res.get("eb_tol", tol)
    if tol is not None:
        ax.axhline(tol, color="r", ls=":", label=f"tolerance {tol:g}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("max mask distance to the last window")
    if fired:
        ax.set_title("Early-Bird detection (vertical lines: epoch the ticket was drawn)", fontsize=10)
    else:  # say so instead of promising lines that are not there
        ax.set_title("Early-Bird detection: the rule never fired (distance never below the tolerance)\n"
                     "no detection lines; each ticket is its last epoch's mask", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    return _save(fig, folder, "early_bird_distance")


def imp_rounds(tk: pd.DataFrame, results: Mapping[str, Mapping[str, Any]], folder: Path) -> list[Path]:
    """Test accuracy of IMP's ticket after every round (trained from the rewound weights) vs its density."""
    plt = _plt()
    rows = [(r.density, r.seed, results.get(r.id, {}).get("imp_rounds")) for r in tk.itertuples(index=False) if results.get(r.id, {}).get("imp_rounds")]
    rows = [x for x in rows if x[2]]
    if not rows:
        return []
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    cmap = plt.get_cmap("viridis")
    dlist = sorted({r[0] for r in rows}, reverse=True)
    for d, s, rounds_ in rows:
        rounds: list[dict[str, Any]] = list(rounds_ or [])
        x = [r["density"] for r in rounds]
        y = [r["eval_accuracy"] if r.get("eval_accuracy") is not None else r.get("accuracy") for r in rounds]
        y = [np.nan if v is None else v for v in y]
        ax.plot(x, y, marker="o", ms=3, color=cmap(dlist.index(d) / max(len(dlist) - 1, 1)), label=f"to d={d:g}, s={s}")
    ax.set_xscale("log")
    ax.invert_xaxis()
    ax.set_xlabel("density after the round (round 0 = dense)")
    ax.set_ylabel("test accuracy")
    ax.set_title("IMP: accuracy per round")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _save(fig, folder, "imp_rounds")


#: Figure name -> one-line caption, in report order.
FIGURES = {
    "accuracy_vs_density": "Test accuracy of each method's trained tickets against density (mean, min-max over seeds); black line: the dense network trained the same way; dotted: chance.",
    "layer_density_profiles": "How each method spreads its weights over the layers (network order; X = a layer pruned to 0).",
    "distance_heatmap": "Mean pairwise distance between methods' tickets (same initialization, diagonal masked), clustered; right: mean z against the symmetric layer-shuffled null (clipped at +-10; blank where the nulls do not vary).",
    "mds": "All tickets in two dimensions (metric MDS of a precomputed distance).",
    "clustering_path_length": "Relational graphs on the clustering / path-length plane (You et al. 2020, Fig. 1).",
    "degree_distributions": "Degree distributions of the hidden units in the layered graphs.",
    "laplacian_spectra": "Normalized Laplacian spectra of the layered graphs.",
    "sanity_checks": "Sanity checks: test accuracy of each method's ticket (blue) and of its ablation variants (layer-shuffled, fan-in kept, degree-preserving rewired, re-initialized: those the study trains), trained identically (bars: mean over seeds, whiskers: min-max).",
    "early_bird_distance": "Early-Bird: distance between consecutive masks and the detection epoch where the rule fired (epochs before the window fills have no distance; a run where it never fired is labelled so and keeps its last epoch's mask).",
    "imp_rounds": "IMP: test accuracy of every round's ticket (after imp.epochs of training, not the study's full training).",
}


def make_figures(tk: pd.DataFrame, dist: pd.DataFrame, results: Mapping[str, Mapping[str, Any]], folder: str | os.PathLike[str]) -> dict[str, list[Path]]:
    """Every figure; ``{figure name: paths}`` (a figure that fails is logged and skipped)."""
    folder = Path(folder)
    out: dict[str, list[Path]] = {}
    if tk.empty:
        return out
    every = tk
    full, tk = _own(tk), _tickets(_own(tk))
    jobs: list[tuple[str, Any]] = [
        ("accuracy_vs_density", lambda: accuracy_vs_density(full, folder)),
        ("sanity_checks", lambda: sanity_checks(every, folder)),
        ("layer_density_profiles", lambda: layer_density_profiles(tk, folder)),
        ("distance_heatmap", lambda: distance_heatmaps(dist, folder) if not dist.empty else []),
        ("mds", lambda: mds_map(dist, tk, folder) if not dist.empty else []),
        ("clustering_path_length", lambda: clustering_path_plane(tk, folder)),
        ("degree_distributions", lambda: degree_distributions(tk, results, folder)),
        ("laplacian_spectra", lambda: laplacian_spectra(tk, results, folder)),
        ("early_bird_distance", lambda: early_bird_curves(tk, results, folder)),
        ("imp_rounds", lambda: imp_rounds(tk, results, folder)),
    ]
    for name, fn in jobs:
        try:
            paths = fn()
        except Exception:  # noqa: BLE001 - one broken figure must not lose the report
            log.exception("figure %s failed", name)
            continue
        if paths:
            out[name] = paths
    return out
