"""Speed and memory of graph conversion vs one ``count_nonzero`` pass over the masks.

Each case runs in its own subprocess (``python -m benchmarks.perf.bench_graphs --case ...``)
so that peak memory is clean: after building the model and a random ticket the child resets
its peak RSS (``/proc/self/clear_refs``) and reports the peak RSS growth of each step
(``VmHWM - VmRSS`` before the step) plus wall seconds. Steps: ``count_nonzero`` (one pass over
all masks), ``layered`` (cold: includes torch.fx tracing and shape propagation),
``layered_warm`` (plan cached; median of 5), ``relational`` (first call) and ``relational_warm``
(median of 5; 3 for 1e8 weights). The pass over the masks is the
median of 5 (after a warm-up). :func:`run` returns one row per figure (``harness.row``).

Targets (issue 5): conversion time within 10x of the mask pass (``ratio`` = pass seconds /
conversion seconds, ``target`` 0.1) and peak extra memory within 3x of the mask bytes (one
byte per weight): the layered rows carry ``mem_ratio`` (peak MB / mask MB), ``mem_target``
(3) and ``mem_met``; the cold row's peak includes torch.fx tracing and the batch-1 shape pass
(a fixed ~10-15 MB, so small cases miss the memory target cold; the warm row is the
conversion itself). ``main`` prints both verdicts per case.

Usage::

    python -m benchmarks.perf.bench_graphs            # MLPs 1e5..1e8 weights, VGG-16, ResNet-56
    python -m benchmarks.perf.bench_graphs --tiny     # smoke test (seconds)
    python -m benchmarks.perf.bench_graphs --out DIR     # writes DIR/bench_graphs.csv
    python -m benchmarks.perf.bench_graphs --case mlp --size 1e6   # one case, raw JSON row
"""

from __future__ import annotations

import argparse
import csv
import gc
import json
import math
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

from benchmarks.perf.harness import Timing, row

DENSITY = 0.2
TIME_TARGET = 0.1  # ratio mask pass / conversion: within 10x
MEM_TARGET = 3.0  # peak extra MB / mask MB
REL_TARGET = 0.5  # layered seconds / relational seconds: relational within 2x (issue 18)


def _status(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    return 0


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _measure(fn: Any) -> tuple[float, float, Any]:
    gc.collect()
    _reset_peak()
    base = _status("VmRSS")
    t = time.perf_counter()
    out = fn()
    dt = time.perf_counter() - t
    peak = _status("VmHWM")
    return dt, max(0, peak - base) / 2**20, out


def _mlp_widths(weights: float) -> tuple[int, int, int]:
    """(in, hidden, out) of the benchmark MLP with about ``weights`` weights: three h x h + head."""
    h = int(math.sqrt(weights / 3))
    return h, h, 10


def _case(name: str, size: float) -> dict[str, Any]:
    import torch
    from torch import nn

    import graphtickets as gt
    from graphtickets.graphs import layered_graph, relational_graph

    torch.set_num_threads(2)
    if name == "mlp":
        i, h, o = _mlp_widths(size)
        model = nn.Sequential(nn.Linear(i, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU(), nn.Linear(h, h),
                              nn.ReLU(), nn.Linear(h, o))  # fmt: skip
        shape: tuple[int, ...] = (i,)
    else:
        kw = {"width": size} if size != 1 else {}
        model = gt.models.build(name, in_shape=(3, 32, 32), num_classes=10, **kw)
        shape = (3, 32, 32)
    gen = torch.Generator().manual_seed(0)
    masks = {}
    for n, p in gt.prunable(model).items():  # chunked: no float tensor of all weights at once
        masks[n] = torch.rand(p.shape, generator=gen) < DENSITY
    ticket = gt.Ticket(masks)
    n_weights = ticket.total
    mask_mb = n_weights / 2**20  # bool: one byte per weight

    row: dict[str, Any] = {"case": name, "size": size, "weights": n_weights, "density": DENSITY, "mask_mb": round(mask_mb, 2)}
    import torch.fx.passes.shape_prop  # noqa: F401  (imports are not part of the conversion)

    def count() -> int:
        return sum(int(m.count_nonzero()) for m in masks.values())

    count()  # warm-up; the median of five passes is the reference (min/max kept)
    passes = [_measure(count) for _ in range(5)]
    cs = sorted(p[0] for p in passes)
    row.update(count_nonzero_s=cs[2], count_nonzero_min=cs[0], count_nonzero_max=cs[-1],
               count_nonzero_mb=max(p[1] for p in passes))  # fmt: skip
    s, mb, g = _measure(lambda: layered_graph(model, ticket, input_shape=shape))
    row.update(layered_s=s, layered_mb=mb, layered_edges=g.n_edges, layered_nodes=g.n_nodes)
    del g
    warm = []
    for _ in range(3 if size >= 1e8 else 5):
        s, mb, g = _measure(lambda: layered_graph(model, ticket, input_shape=shape))
        warm.append((s, mb))
        del g
    ws = sorted(w[0] for w in warm)
    row.update(layered_warm_s=ws[len(ws) // 2], layered_warm_min=ws[0], layered_warm_max=ws[-1],
               layered_warm_n=len(ws), layered_warm_mb=max(w[1] for w in warm))  # fmt: skip
    try:
        s, mb, r = _measure(lambda: relational_graph(model, ticket))
        row.update(relational_s=s, relational_mb=mb, relational_nodes=r.n_nodes)
        del r
        rw = sorted(_measure(lambda: relational_graph(model, ticket))[0] for _ in range(3 if size >= 1e8 else 5))
        row.update(relational_warm_s=rw[len(rw) // 2], relational_warm_min=rw[0], relational_warm_max=rw[-1],
                   relational_warm_n=len(rw))  # fmt: skip
    except gt.GraphticketsError as exc:
        row.update(relational_s=float("nan"), relational_mb=float("nan"), relational_nodes=str(exc)[:40])
    c = row["count_nonzero_s"]
    row["layered_time_ratio"] = row["layered_s"] / c
    row["layered_warm_time_ratio"] = row["layered_warm_s"] / c
    # best-of ratio: on a loaded machine the medians of short torch calls carry thread
    # wake-up latency (the 2-thread mask pass most), so report the minima side by side too
    row["layered_warm_time_ratio_min"] = row["layered_warm_min"] / row["count_nonzero_min"]
    row["layered_mem_ratio"] = row["layered_mb"] / mask_mb
    row["layered_warm_mem_ratio"] = row["layered_warm_mb"] / mask_mb
    return row


def _run_child(name: str, size: float) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "benchmarks.perf.bench_graphs", "--case", name, "--size", str(size)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        return {"case": name, "size": size, "error": (out.stderr.strip().splitlines() or ["?"])[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def _cases(tiny: bool) -> list[tuple[str, float]]:
    if tiny:
        return [("mlp", 1e5), ("vgg16", 0.125), ("resnet56", 0.25)]
    return [("mlp", 1e5), ("mlp", 1e6), ("mlp", 1e7), ("mlp", 1e8), ("vgg16", 1), ("resnet56", 1)]


def _figures(raw: dict[str, Any], cold_runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Harness-format rows of one case: ratio = count_nonzero pass / conversion (target 0.1)."""
    label = f"{raw['case']}" + (f"_{raw['size']:.0e}" if raw["case"] == "mlp" else (f"_w{raw['size']:g}" if raw["size"] != 1 else ""))
    n = raw["weights"]
    cnt = Timing(raw["count_nonzero_s"], raw["count_nonzero_min"], raw["count_nonzero_max"], 5)
    cold_s = sorted(r["layered_s"] for r in cold_runs)
    cold = Timing(statistics.median(cold_s), cold_s[0], cold_s[-1], len(cold_s))
    warm = Timing(raw["layered_warm_s"], raw["layered_warm_min"], raw["layered_warm_max"], raw["layered_warm_n"])
    rel = Timing(raw["relational_s"], raw["relational_s"], raw["relational_s"], 1)
    common = {"edges": raw["layered_edges"], "nodes": raw["layered_nodes"], "mask_mb": raw["mask_mb"]}
    cold_mb = max(r["layered_mb"] for r in cold_runs)
    # the time target is the issue's: a VGG-16 ticket within 10x of the mask pass. An MLP's
    # layered graph has an edge per live weight (12 bytes each in the CSR against 1 byte of
    # mask read), so no conversion of one is within 10x of count_nonzero: shown, not targeted.
    target = TIME_TARGET if raw["case"] == "vgg16" else None
    out = [
        row("graphs", f"{label}_layered_cold", n, cold, cnt, "count_nonzero pass", target=target,
            peak_mb=cold_mb, **_mem(cold_mb, raw["mask_mb"]), **common),
        row("graphs", f"{label}_layered_warm", n, warm, cnt, "count_nonzero pass", target=target,
            peak_mb=raw["layered_warm_mb"], **_mem(raw["layered_warm_mb"], raw["mask_mb"]), **common),
        row("graphs", f"{label}_relational", n, rel, cnt, "count_nonzero pass", peak_mb=raw["relational_mb"],
            relational_nodes=raw["relational_nodes"]),
    ]  # fmt: skip
    if raw.get("relational_warm_s") is not None and not math.isnan(raw["relational_s"]):
        # issue 18: the relational graph of the 1e8-weight MLP within 2x of its layered graph
        # (ratio = layered / relational >= 0.5), first calls against first calls and warm
        # (median of repeats in one process) against warm
        rel_target = REL_TARGET if raw["case"] == "mlp" and raw["size"] >= 1e8 else None
        rel_warm = Timing(raw["relational_warm_s"], raw["relational_warm_min"], raw["relational_warm_max"],
                          raw["relational_warm_n"])  # fmt: skip
        rel_cold = Timing(raw["relational_s"], raw["relational_s"], raw["relational_s"], 1)
        cold_1 = Timing(raw["layered_s"], raw["layered_s"], raw["layered_s"], 1)
        out += [
            row("graphs", f"{label}_relational_vs_layered_cold", n, rel_cold, cold_1, "layered graph, first call",
                target=rel_target, relational_nodes=raw["relational_nodes"]),
            row("graphs", f"{label}_relational_vs_layered_warm", n, rel_warm, warm, "layered graph, warm",
                target=rel_target, relational_nodes=raw["relational_nodes"]),
        ]  # fmt: skip
    return out


def _mem(peak_mb: float, mask_mb: float) -> dict[str, Any]:
    """The memory verdict of a row: peak extra MB over mask MB against ``MEM_TARGET``."""
    ratio = peak_mb / mask_mb if mask_mb > 0 else float("nan")
    return {"mem_ratio": ratio, "mem_target": MEM_TARGET, "mem_met": bool(ratio <= MEM_TARGET)}


def verdicts(df: pd.DataFrame) -> str:
    """One line per layered row: time and memory against their targets."""
    lines = []
    for _, r in df.iterrows():
        if "error" in r and isinstance(r["error"], str):
            lines.append(f"{r['case']}: error {r['error']}")
            continue
        if "mem_ratio" not in r or pd.isna(r.get("mem_ratio")):
            continue
        t_ok = r["ratio"] >= TIME_TARGET
        m_ok = bool(r["mem_met"])
        lines.append(
            f"{r['case']}: time {1 / r['ratio']:.2f}x the mask pass (target <= {1 / TIME_TARGET:g}x: "
            f"{'met' if t_ok else 'NOT met'}); memory {r['mem_ratio']:.2f}x the mask bytes "
            f"(target <= {MEM_TARGET:g}x: {'met' if m_ok else 'NOT met'})"
        )
    return "\n".join(lines)


def run(tiny: bool = False, out: Path | str = Path("results/perf"), *, cold_runs: int | None = None) -> pd.DataFrame:
    """Run every case in fresh subprocesses; return harness-format rows, write the raw CSV.

    Cold conversion (fx trace + shape pass + build) happens once per process, so it is
    repeated over ``cold_runs`` processes (default 3, tiny 1; the 1e8-weight MLP once).
    Ratios are ``count_nonzero seconds / conversion seconds``; the target is >= 0.1 (within
    10x of the pass over the masks).
    """
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    n_cold = cold_runs if cold_runs is not None else (1 if tiny else 3)
    raws, rows = [], []
    for name, size in _cases(tiny):
        runs = [_run_child(name, size) for _ in range(1 if size >= 1e8 else n_cold)]
        bad = [r for r in runs if "error" in r]
        raws += runs
        if bad:
            rows.append({"suite": "graphs", "case": f"{name}_{size:g}", "size": size, "error": bad[0]["error"]})
            continue
        rows += _figures(runs[0], runs)
    keys: list[str] = []
    for r in raws:
        keys += [k for k in r if k not in keys]
    with open(out_dir / "bench_graphs.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(raws)
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiny", action="store_true", help="smoke test: small cases only")
    ap.add_argument("--out", default="results/perf", help="folder for bench_graphs.csv")
    ap.add_argument("--case", help=argparse.SUPPRESS)
    ap.add_argument("--size", type=float, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.case:
        sys.stdout.write(json.dumps(_case(args.case, args.size)) + "\n")
        return 0
    df = run(args.tiny, args.out)
    sys.stdout.write(df.to_string() + "\n")
    sys.stdout.write(verdicts(df) + "\n")
    return 0 if "error" not in df else 1


if __name__ == "__main__":
    raise SystemExit(main())
