"""Speed of training: the loop against a plain PyTorch loop, the first call, many tickets at once.

Figures (issue 18), each timed side by side with its baseline in one process, the two runs
interleaved (ours, baseline, ours, ...) so that load from other processes hits both alike;
medians of the repeats are reported with min and max:

``loop_<model>``
    :func:`graphtickets.training.train` against a plain masked PyTorch loop doing the same
    steps (``torch.optim`` optimizer, cross-entropy, gradients and weights of pruned entries
    zeroed with ``masked_fill_`` around every step), on MNIST-1D batches of 128, one ticket at
    density 0.05. Ratio = plain / ours; target ``>= 1 / 1.3`` (train within 1.3x of the loop).
``first_call``
    Seconds of the first ``train()`` call in a fresh process against the first call of the
    plain loop in a fresh process (each in its own subprocess, repeated); both after
    ``import torch, graphtickets``. The plain loop's first ``torch.optim`` optimizer imports
    ``torch._dynamo`` (about a second); ``train()`` with an optimizer name does not.
``batched_<model>_K<k>[_<engine>]``
    :func:`graphtickets.training.batched.train_many` of K tickets (one architecture, K random
    masks at density 0.05, K initialisations) against K one-by-one ``train()`` calls with the
    same arguments and batches (Adam, MNIST-1D, batches of 128, evaluation on the test split
    after every epoch, as the study trains). Ratio = one-by-one / batched; target 3 for the
    MLP and (``_stacked``, the conv engine) for cnn1d and resnet1d at K = 16; ``conv2`` runs on the
    vmap engine. ``max_acc_diff`` (final test accuracy) and ``max_weight_diff`` check that both
    give the same tickets.

``imp_many_<model>_T<n>``
    :func:`graphtickets.pruning.imp_rounds_many` of ``n`` IMP trajectories (seeds 0..n-1: own
    init, own data order; density 0.5 = 4 rounds) against ``n`` :func:`imp_rounds` calls;
    ``max_mask_flips`` (differing mask entries over the kept count, worst ticket) checks the rounds
    agree: 0, or a few weights at the magnitude cut where float32 rounding reorders near-ties.

Everything runs on one thread (``torch.set_num_threads(1)``).

Usage::

    python -m benchmarks.perf.bench_training [--out DIR] [--tiny] [--conv conv2] [--repeats 5]
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn

import graphtickets as gt
from benchmarks.perf.harness import Timing, row
from graphtickets.training.batched import train_many

log = logging.getLogger("bench_training")

DENSITY = 0.05
LOOP_TARGET = 1 / 1.3
BATCHED_TARGET = 3.0


def _timing(xs: list[float]) -> Timing:
    return Timing(statistics.median(xs), min(xs), max(xs), len(xs))


def _interleaved(ours: Any, base: Any, repeats: int) -> tuple[Timing, Timing, list[Any], list[Any]]:
    """Alternate ``ours()`` and ``base()`` ``repeats`` times (after one warm-up of each)."""
    outs_o, outs_b = [ours()], [base()]
    to, tb = [], []
    for i in range(repeats):
        pair = [("o", ours), ("b", base)] if i % 2 == 0 else [("b", base), ("o", ours)]
        for tag, fn in pair:
            t0 = time.perf_counter()
            out = fn()
            dt = time.perf_counter() - t0
            (to if tag == "o" else tb).append(dt)
            (outs_o if tag == "o" else outs_b).append(out)
    return _timing(to), _timing(tb), outs_o, outs_b


def _model(name: str, seed: int) -> nn.Module:
    info = gt.data.info("mnist1d")
    kw: dict[str, Any] = {"widths": (100, 100)} if name == "mlp" else {}
    return gt.models.build(name, in_shape=info.in_shape, num_classes=info.num_classes, seed=seed, **kw)


def _masks(model: nn.Module, seed: int) -> dict[str, torch.Tensor]:
    return dict(gt.pruning.prune(model, "random", density=DENSITY, seed=seed).masks)


def plain_loop(model: nn.Module, batches: Any, masks: dict[str, torch.Tensor], *, epochs: int, lr: float) -> None:
    """The plain masked PyTorch loop: Adam, cross-entropy, pruned grads and weights zeroed."""
    params = dict(model.named_parameters())
    pairs = [(params[n], ~m) for n, m in masks.items()]
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    with torch.no_grad():
        for p, pruned in pairs:
            p.masked_fill_(pruned, 0.0)
    model.train()
    for _ in range(epochs):
        for x, y in batches:
            opt.zero_grad(set_to_none=True)
            loss = nn.functional.cross_entropy(model(x), y)
            loss.backward()
            with torch.no_grad():
                for p, pruned in pairs:
                    p.grad.masked_fill_(pruned, 0.0)  # type: ignore[union-attr]
            opt.step()
            with torch.no_grad():
                for p, pruned in pairs:
                    p.masked_fill_(pruned, 0.0)


def loop_case(name: str, *, epochs: int, repeats: int, max_batches: int | None) -> dict[str, Any]:
    train_ds = gt.data.load("mnist1d", split="train")
    batches = list(gt.data.batches(train_ds, batch_size=128, seed=0))
    if max_batches:
        batches = batches[:max_batches]
    model = _model(name, 0)
    masks = _masks(model, 0)

    def ours() -> nn.Module:
        net = copy.deepcopy(model)
        gt.training.train(net, batches, masks=masks, epochs=epochs, optimizer="adam", lr=1e-3)
        return net

    def base() -> nn.Module:
        net = copy.deepcopy(model)
        plain_loop(net, batches, masks, epochs=epochs, lr=1e-3)
        return net

    t_o, t_b, outs_o, outs_b = _interleaved(ours, base, repeats)
    same = all(torch.equal(a, b) for a, b in zip(outs_o[-1].state_dict().values(), outs_b[-1].state_dict().values(), strict=True))
    steps = epochs * len(batches)
    return row("training", f"loop_{name}", steps, t_o, t_b, "plain masked PyTorch loop", target=LOOP_TARGET,
               steps=steps, ms_per_step=1e3 * t_o.median / steps, same_weights=same)  # fmt: skip


_FIRST = r"""
import sys, time, torch
torch.set_num_threads(1)
import graphtickets as gt
from benchmarks.perf.bench_training import plain_loop
m = gt.models.build("mlp", in_shape=(40,), num_classes=10, widths=(100, 100), seed=0)
g = torch.Generator().manual_seed(0)
data = [(torch.randn(128, 40, generator=g), torch.randint(0, 10, (128,), generator=g)) for _ in range(4)]
masks = {n: torch.rand(p.shape, generator=g) < 0.05 for n, p in gt.prunable(m).items()}
fn = (lambda: gt.training.train(m, data, masks=masks, epochs=1, optimizer="adam", lr=1e-3)) if sys.argv[1] == "ours" \
    else (lambda: plain_loop(m, data, masks, epochs=1, lr=1e-3))
t0 = time.perf_counter(); fn(); first = time.perf_counter() - t0
t0 = time.perf_counter(); fn(); second = time.perf_counter() - t0
print(first, second)
"""


def first_call_case(repeats: int) -> dict[str, Any]:
    root = str(Path(__file__).resolve().parents[2])
    res: dict[str, list[tuple[float, float]]] = {"ours": [], "base": []}
    for i in range(repeats):
        for who in (("ours", "base") if i % 2 == 0 else ("base", "ours")):
            out = subprocess.run([sys.executable, "-c", _FIRST, who], capture_output=True, text=True, check=True, cwd=root)
            first, second = (float(v) for v in out.stdout.split())
            res[who].append((first, second))
    t_o = _timing([f for f, _ in res["ours"]])
    t_b = _timing([f for f, _ in res["base"]])
    return row("training", "first_call", 4, t_o, t_b, "plain loop, first call (torch.optim)",
               ours_second=statistics.median(s for _, s in res["ours"]),
               base_second=statistics.median(s for _, s in res["base"]))  # fmt: skip


def batched_case(name: str, *, k: int, epochs: int, repeats: int, max_batches: int | None,
                 target: float | None, engine: str = "auto", device: str = "cpu") -> dict[str, Any]:
    train_ds = gt.data.load("mnist1d", split="train")
    test_ds = gt.data.load("mnist1d", split="test")
    models = [_model(name, s) for s in range(k)]
    masks = [_masks(m, s) for s, m in enumerate(models)]
    test_b = list(gt.data.batches(test_ds, batch_size=1000, shuffle=False))

    def data() -> Any:
        b = gt.data.batches(train_ds, batch_size=128, seed=1)
        return list(b)[:max_batches] if max_batches else b

    kw: dict[str, Any] = {"epochs": epochs, "optimizer": "adam", "lr": 1.2e-3, "eval_data": test_b, "device": device}

    def ours() -> tuple[list[nn.Module], list[Any]]:
        nets = [copy.deepcopy(m) for m in models]
        hists = train_many(nets, data(), masks=masks, engine=engine, **kw)
        return nets, hists

    def base() -> tuple[list[nn.Module], list[Any]]:
        nets = [copy.deepcopy(m) for m in models]
        hists = [gt.training.train(n, data(), masks=mk, **kw) for n, mk in zip(nets, masks, strict=True)]
        return nets, hists

    t_o, t_b, outs_o, outs_b = _interleaved(ours, base, repeats)
    (nets_o, h_o), (nets_b, h_b) = outs_o[-1], outs_b[-1]
    acc_diff = max(abs(a.final()["eval_accuracy"] - b.final()["eval_accuracy"]) for a, b in zip(h_o, h_b, strict=True))
    w_diff = max(float((a - b).abs().max()) for na, nb in zip(nets_o, nets_b, strict=True)
                 for a, b in zip(na.state_dict().values(), nb.state_dict().values(), strict=True) if a.is_floating_point())  # fmt: skip
    tag = "" if engine == "auto" else f"_{engine}"
    tag += "" if device == "cpu" else f"_{device}"
    return row("training", f"batched_{name}_K{k}{tag}", k, t_o, t_b, f"{k} one-by-one train() calls", target=target,
               max_acc_diff=acc_diff, max_weight_diff=w_diff, epochs=epochs, engine=engine, device=device)  # fmt: skip


def imp_many_case(name: str, *, n: int, epochs: int, density: float, repeats: int) -> dict[str, Any]:
    """``n`` IMP trajectories (seeds 0..n-1, each its own init and data order) by
    :func:`graphtickets.pruning.imp_rounds_many` against ``n`` :func:`imp_rounds` calls (SGD as the
    study trains, batches of 100); checks that both give the same masks."""
    train_ds = gt.data.load("mnist1d", split="train")
    models = [_model(name, s) for s in range(n)]
    kw: dict[str, Any] = {"density": density, "epochs": epochs, "optimizer": "sgd", "lr": 0.1, "momentum": 0.9,
                          "weight_decay": 1e-4}

    def data(s: int) -> Any:
        return gt.data.batches(train_ds, batch_size=100, seed=s)

    def ours() -> list[list[gt.Ticket]]:
        return gt.pruning.imp_rounds_many(models, data=[data(s) for s in range(n)], seeds=list(range(n)), **kw)

    def base() -> list[list[gt.Ticket]]:
        return [gt.pruning.imp_rounds(m, data=data(s), seed=s, **kw) for s, m in enumerate(models)]

    t_o, t_b, outs_o, outs_b = _interleaved(ours, base, repeats)
    flips = max(sum(int((a.masks[k] != b.masks[k]).sum()) for k in a.masks) / max(b.kept, 1)
                for fa, fb in zip(outs_o[-1], outs_b[-1], strict=True) for a, b in zip(fa, fb, strict=True))  # fmt: skip
    return row("training", f"imp_many_{name}_T{n}", n, t_o, t_b, f"{n} imp_rounds() calls", max_mask_flips=flips,
               rounds=len(outs_o[-1][0]), epochs=epochs)  # fmt: skip


def run(tiny: bool = False, out: Path | str = Path("results/perf"), *, conv: str = "conv2",
        repeats: int | None = None) -> pd.DataFrame:
    """All figures of the training suite (harness rows); also writes ``DIR/bench_training.csv``."""
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    r = repeats if repeats is not None else (1 if tiny else 5)
    mb = 4 if tiny else None
    rows = [
        loop_case("mlp", epochs=1 if tiny else 3, repeats=r, max_batches=mb),
        loop_case(conv, epochs=1, repeats=r, max_batches=2 if tiny else 16),
        first_call_case(1 if tiny else 3),
        batched_case("mlp", k=4 if tiny else 16, epochs=1 if tiny else 2, repeats=r, max_batches=mb,
                     target=BATCHED_TARGET),
        batched_case(conv, k=2 if tiny else 8, epochs=1, repeats=1 if tiny else 3, max_batches=2 if tiny else 8,
                     target=None, engine="vmap"),
        # the stacked conv engine (issue 28): K = 16 MNIST-1D conv tickets on one core
        batched_case("cnn1d", k=4 if tiny else 16, epochs=1, repeats=1 if tiny else 3, max_batches=2 if tiny else 16,
                     target=BATCHED_TARGET, engine="stacked"),
        batched_case("resnet1d", k=2 if tiny else 16, epochs=1, repeats=1 if tiny else 3, max_batches=2 if tiny else 6,
                     target=BATCHED_TARGET, engine="stacked"),
        imp_many_case("mlp", n=2 if tiny else 6, epochs=1 if tiny else 3, density=0.5, repeats=1 if tiny else 3),
        imp_many_case("cnn1d", n=2 if tiny else 6, epochs=1, density=0.5, repeats=1 if tiny else 2),
    ]  # fmt: skip
    df = pd.DataFrame(rows)
    df.to_csv(out_dir / "bench_training.csv", index=False)
    return df


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiny", action="store_true")
    ap.add_argument("--out", default="results/perf")
    ap.add_argument("--conv", default="conv2", help="the conv model of the loop and batched figures (a gt.models name)")
    ap.add_argument("--repeats", type=int, default=None)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    df = run(args.tiny, args.out, conv=args.conv, repeats=args.repeats)
    cols = [c for c in ("case", "ours_median", "base_median", "ratio", "target", "max_acc_diff", "max_weight_diff") if c in df]
    sys.stdout.write(df[cols].to_string() + "\n")
    sys.stdout.write(json.dumps({c: df[c].tolist() for c in ("case", "ratio")}) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
