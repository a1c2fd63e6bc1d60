"""Aggregate the suites' rows: ``perf.csv`` (all rows), ``perf.md`` (tables), ``perf.png`` (ratios).

Every row is in :func:`benchmarks.perf.harness.row` format: ``ours_median/min/max/repeat``,
``base_median/min/max/repeat``, ``baseline`` and ``ratio = base_median / ours_median`` (> 1:
ours is faster), optionally ``target`` (the ratio the issue asks for) and ``identical_mask``
(a ratio whose mask differs from the baseline's does not meet its target).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = ["met", "labels", "write_csv", "markdown", "plot", "write_all"]


def _num(v: Any) -> float:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return math.nan
    return x


def met(r: pd.Series) -> bool | None:
    """Whether a row meets its target (None: no target); a differing mask never meets it."""
    target, ratio = _num(r.get("target")), _num(r.get("ratio"))
    if math.isnan(target):
        return None
    if math.isnan(ratio):
        return False
    same = r.get("identical_mask")
    if same is False or (isinstance(same, str) and same.lower() == "false"):
        return False
    return ratio >= target


def write_csv(df: pd.DataFrame, out_dir: Path) -> Path:
    path = Path(out_dir) / "perf.csv"
    df.to_csv(path, index=False)
    return path


def _t(median: Any, lo: Any, hi: Any, n: Any) -> str:
    m = _num(median)
    if math.isnan(m):
        return ""
    s = f"{m:.3g} s"
    lo_, hi_ = _num(lo), _num(hi)
    if not (math.isnan(lo_) or math.isnan(hi_)) and _num(n) > 1:
        s += f" [{lo_:.3g}, {hi_:.3g}]"
    if not math.isnan(_num(n)):
        s += f" ×{int(_num(n))}"
    return s


def labels(df: pd.DataFrame) -> list[str]:
    """``suite/case``, with ``@size`` added where one case appears at several sizes."""
    base = [f"{s}/{c}" for s, c in zip(df["suite"], df["case"], strict=True)]
    dup = {b for b in base if base.count(b) > 1}
    sizes = df["size"] if "size" in df else pd.Series([""] * len(df), index=df.index)
    return [f"{b} @{sz}" if b in dup else b for b, sz in zip(base, sizes, strict=True)]


def _table(df: pd.DataFrame) -> list[str]:
    lines = [
        "| figure | ours (median [min, max] ×runs) | baseline | ratio | target | met? |",
        "|---|---|---|---|---|---|",
    ]
    for label, (_, r) in zip(labels(df), df.iterrows(), strict=True):
        ok = met(r)
        target = _num(r.get("target"))
        extra = ""
        if r.get("identical_mask") is not None and str(r.get("identical_mask")) in ("True", "False"):
            extra = " (same mask)" if str(r.get("identical_mask")) == "True" else " (**mask differs**)"
        base = f"{r.get('baseline', '')}: {_t(r.get('base_median'), r.get('base_min'), r.get('base_max'), r.get('base_repeat'))}"
        ratio = _num(r.get("ratio"))
        lines.append(
            f"| {label} | {_t(r.get('ours_median'), r.get('ours_min'), r.get('ours_max'), r.get('ours_repeat'))} "
            f"| {base if not math.isnan(_num(r.get('base_median'))) else ''} "
            f"| {'' if math.isnan(ratio) else f'{ratio:.3g}×'}{extra} "
            f"| {'' if math.isnan(target) else f'≥ {target:g}×'} "
            f"| {'' if ok is None else ('yes' if ok else '**no**')} |"
        )
    return lines


def markdown(df: pd.DataFrame, *, command: str = "", machine: str = "") -> str:
    """Two tables: the figures with a target, then every other ratio against a baseline."""
    has_target = df["target"].map(lambda v: not math.isnan(_num(v))) if "target" in df else pd.Series(False, index=df.index)
    has_ratio = df["ratio"].map(lambda v: not math.isnan(_num(v))) if "ratio" in df else pd.Series(False, index=df.index)
    out = ["# Performance", ""]
    if command:
        out += [f"Command: `{command}`", ""]
    if machine:
        out += [f"Machine: {machine}", ""]
    out += [
        "Ratio = baseline seconds / our seconds (> 1: faster than the baseline), both timed in the "
        "same process; the graph-conversion ratio is the mask pass over the conversion (target: "
        "within 10×, i.e. ≥ 0.1). Times: median [min, max] × number of runs.",
        "",
        "## Targets",
        "",
    ]
    out += _table(df[has_target])
    rest = df[~has_target & has_ratio]
    if not rest.empty:
        out += ["", "## Other figures against a baseline", ""]
        out += _table(rest)
    errors = df[df["error"].notna()] if "error" in df else df.iloc[0:0]
    if not errors.empty:
        out += ["", "## Errors", ""]
        out += [f"- {r['suite']}/{r['case']}: {r['error']}" for _, r in errors.iterrows()]
    return "\n".join(out) + "\n"


def plot(df: pd.DataFrame, path: Path) -> Path:
    """Horizontal bars of the ratios of the figures with a target (log scale), targets as marks."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    has_target = df["target"].map(lambda v: not math.isnan(_num(v))) if "target" in df else pd.Series(False, index=df.index)
    sub = df[has_target & df["ratio"].map(lambda v: _num(v) > 0)] if "ratio" in df else df.iloc[0:0]
    fig, ax = plt.subplots(figsize=(8, 0.45 * max(len(sub), 2) + 1.2))
    if sub.empty:
        ax.text(0.5, 0.5, "no ratios with a target", ha="center", va="center", transform=ax.transAxes)
    else:
        names = labels(sub)
        ratios = [_num(v) for v in sub["ratio"]]
        targets = [_num(v) for v in sub["target"]]
        colors = ["tab:green" if met(r) else "tab:red" for _, r in sub.iterrows()]
        y = list(range(len(sub)))
        ax.barh(y, ratios, color=colors, alpha=0.8)
        ax.scatter(targets, y, marker="|", s=300, color="black", label="target", zorder=3)
        ax.set_yticks(y, names, fontsize=8)
        ax.set_xscale("log")
        ax.axvline(1.0, color="gray", lw=0.8, ls=":")
        ax.invert_yaxis()
        ax.set_xlabel("ratio baseline / ours (log; green = target met)")
        ax.legend(loc="lower right", fontsize=8)
    ax.set_title("graphtickets performance: ratios against in-process baselines")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_all(df: pd.DataFrame, out_dir: Path | str, *, command: str = "", machine: str = "") -> dict[str, Path]:
    """Write ``perf.csv``, ``perf.md`` and ``perf.png`` under ``out_dir``; return their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"csv": write_csv(df, out), "md": out / "perf.md", "png": out / "perf.png"}
    paths["md"].write_text(markdown(df, command=command, machine=machine))
    plot(df, paths["png"])
    return paths
