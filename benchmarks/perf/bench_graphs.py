"""Speed and memory of graph conversion vs one ``count_nonzero`` pass over the masks.

Each case runs in its own subprocess (``python -m benchmarks.perf.bench_graphs --case ...``)
so that peak memory is clean: after building the model and a random ticket the child resets
its peak RSS (``/proc/self/clear_refs``) and reports the peak RSS growth of each step
(``VmHWM - VmRSS`` before the step) plus wall seconds. Steps: ``count_nonzero`` (one pass over
all masks), ``layered`` (cold: includes torch.fx tracing and shape propagation),
``layered_warm`` (plan cached), ``relational``.

Usage::

    python -m benchmarks.perf.bench_graphs            # MLPs 1e5..1e8 weights, VGG-16, ResNet-56
    python -m benchmarks.perf.bench_graphs --tiny     # smoke test (seconds)
    python -m benchmarks.perf.bench_graphs --out results.csv
"""

from __future__ import annotations

import argparse
import csv
import gc
import json
import math
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

DENSITY = 0.2


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
    """(in, hidden, out) of a 3-layer MLP with about ``weights`` weights: in=h, two h x h + head."""
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

    count()  # warm-up; the best of three passes is the reference
    best = min((_measure(count) for _ in range(3)), key=lambda r: r[0])
    s, mb = best[0], best[1]
    row.update(count_nonzero_s=s, count_nonzero_mb=mb)
    s, mb, g = _measure(lambda: layered_graph(model, ticket, input_shape=shape))
    row.update(layered_s=s, layered_mb=mb, layered_edges=g.n_edges, layered_nodes=g.n_nodes)
    del g
    s, mb, g = _measure(lambda: layered_graph(model, ticket, input_shape=shape))
    row.update(layered_warm_s=s, layered_warm_mb=mb)
    del g
    try:
        s, mb, r = _measure(lambda: relational_graph(model, ticket))
        row.update(relational_s=s, relational_mb=mb, relational_nodes=r.n_nodes)
    except gt.GraphticketsError as exc:
        row.update(relational_s=float("nan"), relational_mb=float("nan"), relational_nodes=str(exc)[:40])
    c = row["count_nonzero_s"]
    row["layered_time_ratio"] = row["layered_s"] / c
    row["layered_warm_time_ratio"] = row["layered_warm_s"] / c
    row["layered_mem_ratio"] = row["layered_mb"] / mask_mb
    return row


def _run_child(name: str, size: float) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "benchmarks.perf.bench_graphs", "--case", name, "--size", str(size)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        return {"case": name, "size": size, "error": (out.stderr.strip().splitlines() or ["?"])[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiny", action="store_true", help="smoke test: small cases only")
    ap.add_argument("--out", default="bench_graphs.csv", help="CSV file to write")
    ap.add_argument("--case", help=argparse.SUPPRESS)
    ap.add_argument("--size", type=float, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.case:
        sys.stdout.write(json.dumps(_case(args.case, args.size)) + "\n")
        return 0
    if args.tiny:
        cases = [("mlp", 1e5), ("vgg16", 0.125), ("resnet56", 0.25)]
    else:
        cases = [("mlp", 1e5), ("mlp", 1e6), ("mlp", 1e7), ("mlp", 1e8), ("vgg16", 1), ("resnet56", 1)]
    rows = [_run_child(n, s) for n, s in cases]
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    path = Path(args.out)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)
    for r in rows:
        sys.stdout.write(
            " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in r.items()) + "\n"
        )
    sys.stdout.write(f"wrote {path}\n")
    return 0 if all("error" not in r for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
