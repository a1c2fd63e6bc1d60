"""Speed of pruning at initialization: SNIP, GraSP and SynFlow on VGG-16 and ResNet-20 (CPU).

SynFlow is timed side by side with a straightforward implementation written here, the
Synaptic-Flow way: the model in float64, every round multiplying the masks into the absolute
weights, a forward+backward of one all-ones input, scores of ALL weights, and a global
``torch.kthvalue`` over all of them (then ties broken by position, as graphtickets does, so
the two masks can be compared bit for bit). Runs alternate (ours, straightforward, ours, ...)
in one process so that load from other processes hits both alike; the median of the repeats
is reported, and whether the masks are identical.

Since issue 18 graphtickets runs ResNets and MLPs on an autograd-free program
(``synflow_program``); the same rounds on its autograd engine are timed alongside.

Usage::

    python -m benchmarks.perf.bench_pruning [--out DIR] [--repeats 5] [--tiny] [--models resnet20] [--threads 1]

Writes ``DIR/bench_pruning.csv`` (one row per timed SynFlow run) and
``DIR/bench_pruning_summary.csv`` (one row per figure: median/min/max, ratio, mask identity);
:func:`run` returns the summary as a DataFrame (``python -m benchmarks.perf`` collects it).
Global magnitude pruning is timed against ``torch.nn.utils.prune.global_unstructured``.
"""

from __future__ import annotations

import argparse
import copy
import csv
import functools
import logging
import math
import statistics
import time
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn

import graphtickets as gt
from benchmarks.perf.harness import Timing, row, time_it

log = logging.getLogger("bench_pruning")


def straightforward_synflow(model: nn.Module, density: float, in_shape: tuple[int, ...], rounds: int = 100) -> dict[str, torch.Tensor]:
    """SynFlow the Synaptic-Flow way (float64, full k-th value selection in every round).

    As the reference code does it: the model in float64 and eval mode, its parameters
    replaced by their absolute values once (biases, BatchNorm shifts and running means zero:
    SynFlow is data-free, so no flow enters but through the input), and in each round the masks multiplied into the
    weights in place, gradients zeroed in place, one forward+backward of an all-ones input,
    ``|grad * w|`` of every prunable weight concatenated, pruned entries set to -inf, and one
    ``torch.kthvalue`` over all of them. Ties at the threshold are then kept by position (the
    reference prunes every tie; graphtickets keeps exact counts), so the masks can be
    compared bit for bit.
    """
    work = copy.deepcopy(model).double().eval()
    params = dict(work.named_parameters())
    names = list(gt.prunable(model))
    with torch.no_grad():
        for p in work.parameters():
            p.abs_()
        for mod in work.modules():  # data-free: biases, BatchNorm shifts and means carry no flow
            if isinstance(getattr(mod, "bias", None), torch.Tensor):
                mod.bias.zero_()
            if isinstance(mod, nn.modules.batchnorm._BatchNorm) and mod.running_mean is not None:
                mod.running_mean.zero_()
    ws = [params[n] for n in names]
    masks = [torch.ones(w.shape, dtype=torch.bool) for w in ws]
    total = sum(m.numel() for m in masks)
    x = torch.ones((1, *in_shape), dtype=torch.float64)
    for k in range(1, rounds + 1):
        d = density ** (k / rounds) if k < rounds else density
        with torch.no_grad():
            for w, m in zip(ws, masks, strict=True):
                w.mul_(m)
        for p in work.parameters():
            if p.grad is not None:
                p.grad.zero_()
        work(x).sum().backward()
        with torch.no_grad():
            scores = torch.cat([(w.grad * w).abs_().reshape(-1) for w in ws])  # type: ignore[operator]
            scores.masked_fill_(~torch.cat([m.reshape(-1) for m in masks]), -float("inf"))
            keep_n = int(round(d * total))
            if keep_n < total:
                thr, _ = torch.kthvalue(scores, total - keep_n)
                keep = scores > thr
                need = keep_n - int(keep.sum())
                if need > 0:
                    keep[torch.nonzero(scores == thr).reshape(-1)[:need]] = True
            else:
                keep = torch.ones(total, dtype=torch.bool)
            masks = [v.reshape(m.shape) for v, m in zip(torch.split(keep, [m.numel() for m in masks]), masks, strict=True)]
    return dict(zip(names, masks, strict=True))


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


def magnitude_vs_torch(model: nn.Module, density: float, repeats: int) -> dict[str, Any]:
    """Global magnitude pruning: graphtickets vs ``torch.nn.utils.prune.global_unstructured``."""
    from torch.nn.utils import prune as tprune

    names = list(gt.prunable(model))

    def ours() -> dict[str, torch.Tensor]:
        return gt.pruning.prune(model, "magnitude", density=density).masks

    def theirs() -> dict[str, torch.Tensor]:
        work = copy.deepcopy(model)
        mods = [(work.get_submodule(n.rpartition(".")[0]), n.rpartition(".")[2]) for n in names]
        total = sum(getattr(m, a).numel() for m, a in mods)
        tprune.global_unstructured(mods, pruning_method=tprune.L1Unstructured, amount=total - int(round(density * total)))
        return {n: getattr(m, a + "_mask").bool() for n, (m, a) in zip(names, mods, strict=True)}

    t_ours = time_it(ours, repeat=repeats)
    t_base = time_it(theirs, repeat=repeats)
    a, b = ours(), theirs()
    same = all(torch.equal(a[n], b[n]) for n in names)
    diff = sum(int((a[n] ^ b[n]).count_nonzero()) for n in names)
    return {"ours": t_ours, "base": t_base, "identical_mask": same, "mask_diff": diff}


def synflow_arithmetic_floor(model: nn.Module, in_shape: tuple[int, ...], density: float, rounds: int, *,
                             dense_rate: float = 18e9, sparse_rate: float = 4e9) -> dict[str, float] | None:
    """Seconds the products of SynFlow's rounds need at least, on the program's own trajectory.

    Runs graphtickets' SynFlow once and, before every round, takes each layer's live fraction
    ``rho``; a layer with ``w`` weights at ``P`` output positions costs three products of
    ``w * P`` multiply-adds (forward, input gradient, weight gradient) at ``dense_rate``, or,
    on CSR products, ``3 * rho * w * P`` at ``sparse_rate``. ``dense`` sums the dense cost;
    ``floor`` the cheaper of the two per layer and round. Nothing else is counted (no im2col
    copies, selection or per-call overhead). The default rates are what MKL reaches on this
    machine's ResNet-20 layer shapes with one thread (float64: dense ~18 G/s, CSR ~4 G/s).
    ``None`` when the network runs on the autograd engine (no program)."""
    from graphtickets.pruning import synflow_program

    total = {"dense": 0.0, "floor": 0.0, "rounds": 0.0}
    positions: dict[int, dict[str, int]] = {}  # id(program) -> layer -> output positions
    flow = synflow_program.Program.flow

    def counted(self: Any) -> float:
        for name, lay in self.layers.items():
            mac = lay.W.numel() * positions[id(self)][name]
            rho = float((lay.W != 0).double().mean())
            total["dense"] += 3 * mac / dense_rate
            total["floor"] += min(3 * mac / dense_rate, 3 * rho * mac / sparse_rate)
        total["rounds"] += 1
        return flow(self)

    build = synflow_program.build

    def with_positions(work: nn.Module, names: Any, shape: tuple[int, ...]) -> Any:
        prog = build(work, names, shape)
        if prog is not None:
            gm = work if isinstance(work, torch.fx.GraphModule) else torch.fx.symbolic_trace(work)
            synflow_program._record_shapes(gm, prog.x)
            positions[id(prog)] = {str(n.target): math.prod(n.meta["gt_shape"][2:]) for n in gm.graph.nodes
                              if n.op == "call_module" and str(n.target) in prog.layers}  # fmt: skip
        return prog

    from graphtickets.pruning import synflow_engine

    synflow_program.Program.flow, synflow_engine.build_program = counted, with_positions  # type: ignore[method-assign,assignment]
    try:
        gt.pruning.prune(model, "synflow", density=density, rounds=rounds, in_shape=in_shape)
    finally:
        synflow_program.Program.flow, synflow_engine.build_program = flow, build  # type: ignore[method-assign]
    return total if total["rounds"] else None


def _synflow_rows(name: str, model: nn.Module, in_shape: tuple[int, ...], d: float, rounds: int, reps: int,
                  n_weights: int, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """SynFlow timed three ways, alternating in one process: graphtickets (the autograd-free
    program where it applies), graphtickets on its autograd engine (``synflow_engine.PROGRAM =
    False``), and :func:`straightforward_synflow`. Summary rows: ours against the
    straightforward version (target 5 on VGG-16, 3 on ResNet-20); where the program runs, also
    the program against the autograd engine and, with one thread (the floor's rates are one
    thread's), the arithmetic floor (:func:`synflow_arithmetic_floor`) against the
    straightforward version."""
    from graphtickets.pruning import synflow_engine

    def ours() -> Any:
        return gt.pruning.prune(model, "synflow", density=d, rounds=rounds, in_shape=in_shape)

    def autograd_engine() -> Any:
        synflow_engine.PROGRAM = False
        try:
            return ours()
        finally:
            synflow_engine.PROGRAM = True

    times: dict[str, list[float]] = {"graphtickets": [], "autograd_engine": [], "straightforward": []}
    same, diff = True, 0
    for r in range(reps):
        s1, t = _timed(ours)
        s3, t_auto = _timed(autograd_engine)
        s2, base = _timed(lambda: straightforward_synflow(model, d, in_shape, rounds))
        same = same and all(torch.equal(t.masks[n], base[n]) for n in base) and t == t_auto
        diff = max(diff, sum(int((t.masks[n] ^ base[n]).count_nonzero()) for n in base))
        for impl, sec in (("graphtickets", s1), ("autograd_engine", s3), ("straightforward", s2)):
            times[impl].append(sec)
            rows.append({"model": name, "method": "synflow", "impl": impl, "density": d, "repeat": r, "seconds": sec})
        log.info("%s synflow repeat %d: ours %.2fs, autograd engine %.2fs, straightforward %.2fs, identical so far=%s",
                 name, r, s1, s3, s2, same)  # fmt: skip

    def timing(v: list[float]) -> Timing:
        return Timing(statistics.median(v), min(v), max(v), reps)

    to, ta, tb = timing(times["graphtickets"]), timing(times["autograd_engine"]), timing(times["straightforward"])
    log.info("%s synflow d=%g: %s vs straightforward %s (x%.1f), identical=%s", name, d, to, tb, tb.median / to.median, same)
    floor = synflow_arithmetic_floor(model, in_shape, d, rounds)
    extra = []
    if floor is not None and torch.get_num_threads() == 1:  # its rates are one thread's; the ratio: the most
        # any implementation with these kernels could reach
        log.info("%s synflow d=%g: the products alone need %.3f s (all dense: %.3f s)", name, d, floor["floor"], floor["dense"])
        fl = Timing(floor["floor"], floor["floor"], floor["floor"], 1)
        extra.append(row("pruning", f"{name}_synflow{rounds}_arithmetic_floor", n_weights, fl, tb, "straightforward float64",
                         density=d, rounds=rounds, threads=torch.get_num_threads(), all_dense_seconds=floor["dense"]))
    main = row("pruning", f"{name}_synflow{rounds}", n_weights, to, tb, "straightforward float64",
               target=5.0 if name.startswith("vgg") else 3.0, identical_mask=same, mask_diff=diff, density=d, rounds=rounds,
               threads=torch.get_num_threads())  # fmt: skip
    if floor is None:  # the program declined this network: both timings ran the autograd engine
        return [main]
    return [*extra, main, row("pruning", f"{name}_synflow{rounds}_vs_autograd_engine", n_weights, to, ta,
                              "graphtickets' autograd engine", identical_mask=same, density=d, rounds=rounds,
                              threads=torch.get_num_threads())]  # fmt: skip


def run(tiny: bool = False, out: Path | str = Path("results/perf"), *, repeats: int | None = None,
        models: list[str] | None = None, densities: list[float] | None = None) -> pd.DataFrame:
    """Time everything; return one row per figure (harness format) and write CSVs under ``out``.

    Rows: ``snip``/``grasp`` (seconds only), ``synflow`` (ratio = straightforward / ours, with
    ``identical_mask``; target 5), ``magnitude`` (ratio = torch.nn.utils.prune / ours).
    """
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    explicit = repeats
    wanted = list(densities) if densities else None
    if repeats is None:
        repeats = 1 if tiny else 5
    cases: list[tuple[str, dict[str, Any], tuple[int, ...]]]
    if tiny:
        cases = [("conv2", {}, (3, 16, 16)), ("mlp", {"widths": (64, 32)}, (40,))]
        rounds, densities, batch_size, n_batches = 10, [0.05], 16, 1
    else:
        cases = [("vgg16", {}, (3, 32, 32)), ("resnet20", {}, (3, 32, 32))]
        rounds, densities, batch_size, n_batches = 100, [0.01], 128, 1
    if models:
        cases = [c for c in cases if c[0] in models]
    if wanted:
        densities = wanted
    rows: list[dict[str, Any]] = []
    out_rows: list[dict[str, Any]] = []
    for name, kw, in_shape in cases:
        model = gt.models.build(name, in_shape=in_shape, num_classes=10, seed=0, **kw)
        n_weights = sum(p.numel() for p in gt.prunable(model).values())
        data = _batches(in_shape, 10, n_batches, batch_size)
        for method in ("snip", "grasp"):
            t = time_it(functools.partial(gt.pruning.prune, model, method, density=densities[0], data=data),
                        repeat=repeats, warmup=0 if tiny else 1)  # fmt: skip
            out_rows.append(row("pruning", f"{name}_{method}", n_weights, t, density=densities[0],
                                batch=f"{n_batches}x{batch_size}"))  # fmt: skip
            log.info("%s %s: %s", name, method, t)
        # SynFlow on VGG-16 costs ~10-30 s per run and side (100 float64 rounds): 3 alternating
        # runs of each unless repeats is given explicitly (the row's *_repeat says how many)
        syn_reps = min(repeats, 3) if (explicit is None and n_weights > 5_000_000) else repeats
        for d in densities:
            out_rows += _synflow_rows(name, model, in_shape, d, rounds, syn_reps, n_weights, rows)
        m = magnitude_vs_torch(model, densities[0], repeats)
        out_rows.append(row("pruning", f"{name}_magnitude", n_weights, m["ours"], m["base"],
                            "torch.nn.utils.prune.global_unstructured", identical_mask=m["identical_mask"],
                            mask_diff=m["mask_diff"], density=densities[0]))  # fmt: skip
        log.info("%s magnitude: %s vs torch %s, identical=%s", name, m["ours"], m["base"], m["identical_mask"])
    with open(out_dir / "bench_pruning.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else ["model"])
        w.writeheader()
        w.writerows(rows)
    df = pd.DataFrame(out_rows)
    df.to_csv(out_dir / "bench_pruning_summary.csv", index=False)
    return df


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path("results/perf"))
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--models", default=None, help="comma-separated subset of the models (default: vgg16,resnet20)")
    ap.add_argument("--densities", default=None, help="comma-separated SynFlow densities (default 0.01)")
    ap.add_argument("--tiny", action="store_true", help="small models, 10 rounds, 1 repeat (smoke test)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's; the README's figures: 1)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    summary = run(args.tiny, args.out, repeats=1 if args.tiny else args.repeats,
                  models=args.models.split(",") if args.models else None,
                  densities=[float(x) for x in args.densities.split(",")] if args.densities else None)
    log.info("%s", summary.to_string())


if __name__ == "__main__":
    main()
