"""Speed of pruning at initialization: SNIP, GraSP and SynFlow on VGG-16 and ResNet-20 (CPU).

SynFlow is timed side by side with a straightforward implementation written here, the
Synaptic-Flow way: the model in float64, every round re-applying the masks to the absolute
weights, a forward+backward of one all-ones input, scores of ALL weights, and a global
``torch.kthvalue`` over all of them (then ties broken by position, as graphtickets does, so
the two masks can be compared bit for bit). Runs alternate (ours, straightforward, ours, ...)
in one process so that load from other processes hits both alike; the median of the repeats
is reported, and whether the masks are identical.

Usage::

    python -m benchmarks.perf.bench_pruning [--out DIR] [--repeats 5] [--tiny]

Writes ``DIR/bench_pruning.csv`` (one row per timed run) and ``DIR/bench_pruning_summary.csv``
(medians, ratio, mask identity) and logs the summary.
"""

from __future__ import annotations

import argparse
import copy
import csv
import logging
import statistics
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

import graphtickets as gt

log = logging.getLogger("bench_pruning")


def straightforward_synflow(model: nn.Module, density: float, in_shape: tuple[int, ...], rounds: int = 100) -> dict[str, torch.Tensor]:
    """SynFlow the Synaptic-Flow way (float64, full k-th value selection in every round)."""
    work = copy.deepcopy(model).double().eval()
    params = dict(work.named_parameters())
    names = list(gt.prunable(model))
    with torch.no_grad():
        for p in work.parameters():
            p.abs_()
    orig = {n: params[n].detach().clone() for n in names}
    masks = {n: torch.ones_like(orig[n]) for n in names}
    total = sum(m.numel() for m in masks.values())
    x = torch.ones((1, *in_shape), dtype=torch.float64)
    for k in range(1, rounds + 1):
        d = density ** (k / rounds) if k < rounds else density
        with torch.no_grad():
            for n in names:
                params[n].copy_(orig[n] * masks[n])
        work.zero_grad()
        work(x).sum().backward()
        scores = torch.cat([(params[n].grad * params[n]).detach().abs().reshape(-1) for n in names])
        alive = torch.cat([masks[n].reshape(-1) for n in names]).bool()
        scores[~alive] = -float("inf")
        keep_n = int(round(d * total))
        if keep_n < total:
            thr, _ = torch.kthvalue(scores, total - keep_n)
            keep = scores > thr
            need = keep_n - int(keep.sum())
            if need > 0:
                keep[torch.nonzero(scores == thr).reshape(-1)[:need]] = True
        else:
            keep = torch.ones(total, dtype=torch.bool)
        start = 0
        for n in names:
            size = masks[n].numel()
            masks[n] = keep[start : start + size].reshape(masks[n].shape).double()
            start += size
    return {n: m.bool() for n, m in masks.items()}


def _batches(in_shape: tuple[int, ...], num_classes: int, n_batches: int, batch_size: int, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [
        (torch.randn((batch_size, *in_shape), generator=g), torch.randint(0, num_classes, (batch_size,), generator=g))
        for _ in range(n_batches)
    ]


def _timed(fn: Any) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def run(out_dir: Path, *, repeats: int = 5, tiny: bool = False, models: list[str] | None = None) -> list[dict[str, Any]]:
    """Time everything; return the summary rows (also written as CSV under ``out_dir``)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if tiny:
        cases = [("conv2", {}, (3, 16, 16)), ("mlp", {"widths": (64, 32)}, (40,))]
        rounds, densities, batch_size, n_batches = 10, [0.05], 16, 1
    else:
        cases = [("vgg16", {}, (3, 32, 32)), ("resnet20", {}, (3, 32, 32))]
        rounds, densities, batch_size, n_batches = 100, [0.01], 128, 1
    if models:
        cases = [c for c in cases if c[0] in models]
    rows: list[dict[str, Any]] = []
    summary: list[dict[str, Any]] = []
    for name, kw, in_shape in cases:
        model = gt.models.build(name, in_shape=in_shape, num_classes=10, seed=0, **kw)
        n_weights = sum(p.numel() for p in gt.prunable(model).values())
        data = _batches(in_shape, 10, n_batches, batch_size)
        for method in ("snip", "grasp"):
            times = []
            for r in range(repeats):
                sec, _ = _timed(lambda m=method, mo=model, da=data: gt.pruning.prune(mo, m, density=densities[0], data=da))
                times.append(sec)
                rows.append({"model": name, "method": method, "impl": "graphtickets", "density": densities[0], "repeat": r, "seconds": sec})
            summary.append({"model": name, "weights": n_weights, "method": method, "density": densities[0],
                            "rounds": 1, "batch": f"{n_batches}x{batch_size}", "repeats": repeats,
                            "seconds": statistics.median(times), "straightforward_seconds": "", "speedup": "",
                            "identical_mask": ""})
            log.info("%s %s: %.2fs", name, method, statistics.median(times))
        for d in densities:
            ours_t, base_t, same = [], [], True
            for r in range(repeats):
                s1, t = _timed(lambda dd=d, mo=model, sh=in_shape: gt.pruning.prune(mo, "synflow", density=dd, rounds=rounds, in_shape=sh))
                s2, base = _timed(lambda dd=d, mo=model, sh=in_shape: straightforward_synflow(mo, dd, sh, rounds))
                same = same and all(torch.equal(t.masks[n], base[n]) for n in base)
                ours_t.append(s1)
                base_t.append(s2)
                log.info("%s synflow repeat %d: ours %.2fs, straightforward %.2fs, identical so far=%s", name, r, s1, s2, same)
                rows.append({"model": name, "method": "synflow", "impl": "graphtickets", "density": d, "repeat": r, "seconds": s1})
                rows.append({"model": name, "method": "synflow", "impl": "straightforward", "density": d, "repeat": r, "seconds": s2})
            mo, mb = statistics.median(ours_t), statistics.median(base_t)
            summary.append({"model": name, "weights": n_weights, "method": "synflow", "density": d, "rounds": rounds,
                            "batch": "1 (ones)", "repeats": repeats, "seconds": mo,
                            "straightforward_seconds": mb, "speedup": mb / mo, "identical_mask": same})
            log.info("%s synflow d=%g: %.2fs vs straightforward %.2fs (x%.1f), identical=%s", name, d, mo, mb, mb / mo, same)
    for fname, table in (("bench_pruning.csv", rows), ("bench_pruning_summary.csv", summary)):
        with open(out_dir / fname, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(table[0]))
            w.writeheader()
            w.writerows(table)
    return summary


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path("benchmarks/perf/results"))
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--models", default=None, help="comma-separated subset of the models (default: vgg16,resnet20)")
    ap.add_argument("--tiny", action="store_true", help="small models, 10 rounds, 1 repeat (smoke test)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    summary = run(args.out, repeats=1 if args.tiny else args.repeats, tiny=args.tiny,
                  models=args.models.split(",") if args.models else None)
    for row in summary:
        log.info("%s", row)


if __name__ == "__main__":
    main()
