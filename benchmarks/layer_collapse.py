"""Tanaka et al. (2020) Fig. 1: the order of layer collapse on VGG-16 at initialization.

For compression ratios ``10^c`` (density ``10^-c``), prune an untrained VGG-16 (CIFAR
shape, 3x32x32, 100 classes as in Fig. 1's CIFAR-100 panel by default) with magnitude, GraSP, random, SNIP and SynFlow, all with global
scope as in the paper, and count the layers :func:`graphtickets.pruning.collapsed_layers`
finds collapsed (no live weight, or no input-to-output path through the layer; on a chain
like VGG, once one layer is cut no layer has a path, so this count jumps from 0 to all) and,
separately, the ``empty`` layers (no live weight at all, Tanaka et al.'s definition). No training,
CPU only. Paper: magnitude and GraSP collapse first, then random and SNIP, while SynFlow keeps
every layer alive up to about 10^5 ... its maximal compression.

SNIP and GraSP need data: CIFAR-100 from a local root when it loads (``--data``, ``--root``),
else SYNTHETIC batches of CIFAR shape (standard normal inputs, uniform random labels, fixed
seed); the CSV's ``data`` column says which. They score in eval mode (BatchNorm with running
statistics), as the Synaptic-Flow reference does (``--train-mode`` for batch statistics).

The one-shot methods (magnitude, GraSP, SNIP) score once and select at each density with the
same code as ``gt.pruning.prune`` (``score_prune`` with one round is exactly: score the model,
keep the top ``round(d N)``); random and SynFlow (100 rounds per density) run through
``gt.pruning.prune`` at each density.

Usage::

    python -m benchmarks.layer_collapse --out DIR [--cs 0.5,1,...,6] [--batches 2] [--rounds 100]

Writes ``DIR/layer_collapse.csv`` (method, c, density, collapsed layers, fraction, names) and
``DIR/layer_collapse.png``.
"""

from __future__ import annotations

import argparse
import csv
import functools
import logging
import time
from pathlib import Path
from typing import Any

import torch

import graphtickets as gt
from graphtickets.pruning.baselines import magnitude_scores
from graphtickets.pruning.core import masked_copy, resolve_params
from graphtickets.pruning.grasp import grasp_scores
from graphtickets.pruning.select import select_topk
from graphtickets.pruning.snip import snip_scores
from graphtickets.ticket import Ticket

log = logging.getLogger("layer_collapse")

METHODS = ("magnitude", "grasp", "random", "snip", "synflow")


def _data(dataset: str, root: Path | None, in_shape: tuple[int, ...], num_classes: int, n_batches: int,
          batch_size: int, seed: int) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], str]:
    """Batches for SNIP/GraSP: the real dataset from a local root when it loads, else synthetic."""
    if dataset != "synthetic":
        try:
            ds = gt.data.load(dataset, split="train", root=root, seed=seed)
            g = torch.Generator().manual_seed(seed)
            idx = torch.randperm(len(ds), generator=g)[: n_batches * batch_size].tolist()
            xs = torch.stack([torch.as_tensor(ds[i][0]) for i in idx]).float()
            ys = torch.as_tensor([int(ds[i][1]) for i in idx])
            return [(xs[i : i + batch_size], ys[i : i + batch_size]) for i in range(0, len(idx), batch_size)], dataset
        except Exception as exc:  # no local files: fall back, and say so in the CSV
            log.warning("%s not available (%s); using synthetic batches", dataset, str(exc).splitlines()[0])
    g = torch.Generator().manual_seed(seed)
    data = [(torch.randn((batch_size, *in_shape), generator=g), torch.randint(0, num_classes, (batch_size,), generator=g))
            for _ in range(n_batches)]  # fmt: skip
    return data, "synthetic"


def sweep(out_dir: Path, *, cs: list[float], model_name: str = "vgg16", n_batches: int = 2,
          batch_size: int = 64, seed: int = 0, num_classes: int = 100, rounds: int = 100,
          dataset: str = "cifar100", root: Path | None = None, width: float = 1.0,
          train_mode: bool = False, synflow_cs: list[float] | None = None,
          init: str = "default") -> list[dict[str, Any]]:
    """Run the sweep; write CSV and PNG; return the rows.

    SNIP and GraSP score in eval mode (``train_mode=False``, BatchNorm with running
    statistics) like the Synaptic-Flow reference code; ``rounds`` is SynFlow's, and
    ``synflow_cs`` (default ``cs``) its own grid (100 float64 rounds per value of c cost
    minutes on VGG-16 on a shared CPU).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    in_shape = (3, 32, 32)
    kw: dict[str, Any] = {} if width == 1.0 else {"width": width}
    model = gt.models.build(model_name, in_shape=in_shape, num_classes=num_classes, seed=seed, init=init, **kw)
    data, data_name = _data(dataset, root, in_shape, num_classes, n_batches, batch_size, seed)
    names, ones = resolve_params(model)
    n_layers = len(names)
    one_shot: dict[str, Any] = {
        "magnitude": magnitude_scores,
        "snip": functools.partial(snip_scores, train_mode=train_mode),
        "grasp": functools.partial(grasp_scores, train_mode=train_mode),
    }
    scores: dict[str, dict[str, torch.Tensor]] = {}
    for m, fn in one_shot.items():
        t0 = time.perf_counter()
        s = fn(masked_copy(model, ones), ones, data, None)
        scores[m] = {n: s[n] for n in names}
        log.info("%s scores in %.1fs", m, time.perf_counter() - t0)
    rows: list[dict[str, Any]] = []
    for method in METHODS:
        for c in (synflow_cs if method == "synflow" and synflow_cs is not None else cs):
            d = 10.0 ** (-c)
            t0 = time.perf_counter()
            if method in one_shot:
                ticket = Ticket(select_topk(scores[method], d), method=method)
            elif method == "random":
                ticket = gt.pruning.prune(model, "random", density=d, seed=seed, scope="global")
            else:
                ticket = gt.pruning.prune(model, "synflow", density=d, seed=seed, rounds=rounds)
            dead = gt.pruning.collapsed_layers(model, ticket)
            empty = [n for n, m in ticket.masks.items() if not bool(m.any())]
            rows.append({"method": method, "c": c, "density": d, "kept": ticket.kept,
                         "collapsed": len(dead), "empty": len(empty), "layers": n_layers,
                         "fraction": len(dead) / n_layers, "names": " ".join(dead),
                         "model": model_name, "init": init, "classes": num_classes, "data": data_name,
                         "scoring_mode": "train" if train_mode else "eval", "synflow_rounds": rounds,
                         "seconds": round(time.perf_counter() - t0, 3)})  # fmt: skip
            log.info("%s c=%.1f: %d/%d collapsed (%.1fs)", method, c, len(dead), n_layers, rows[-1]["seconds"])
    with open(out_dir / "layer_collapse.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    _plot(rows, out_dir / "layer_collapse.png", model_name)
    return rows


def first_collapse(rows: list[dict[str, Any]]) -> dict[str, float | None]:
    """The smallest ``c`` at which each method has a collapsed layer (None if never)."""
    out: dict[str, float | None] = {}
    for r in rows:
        out.setdefault(r["method"], None)
        if r["collapsed"] > 0 and (out[r["method"]] is None or r["c"] < out[r["method"]]):
            out[r["method"]] = r["c"]
    return out


def _plot(rows: list[dict[str, Any]], path: Path, model_name: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for method in METHODS:
        rs = [r for r in rows if r["method"] == method]
        ax.plot([r["c"] for r in rs], [r["fraction"] for r in rs], marker="o", label=method)
    ax.set_xlabel("compression 10^c (c)")
    ax.set_ylabel("fraction of layers collapsed")
    ax.set_title(f"Layer collapse at initialization, {model_name} (Tanaka et al. 2020, Fig. 1)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/layer_collapse"))
    ap.add_argument("--cs", default=",".join(str(c / 2) for c in range(1, 13)),
                    help="comma-separated exponents c (compression 10^c); default 0.5,1,...,6")
    ap.add_argument("--model", default="vgg16")
    ap.add_argument("--width", type=float, default=1.0, help="channel multiplier of the model")
    ap.add_argument("--classes", type=int, default=100, help="classes (Fig. 1: CIFAR-100)")
    ap.add_argument("--data", default="cifar100",
                    help="dataset for SNIP/GraSP from a local root, or 'synthetic' (the fallback)")
    ap.add_argument("--root", type=Path, default=None, help="data root for --data")
    ap.add_argument("--batches", type=int, default=2, help="batches of 64 for SNIP/GraSP")
    ap.add_argument("--rounds", type=int, default=100, help="SynFlow rounds")
    ap.add_argument("--synflow-cs", default=None, help="SynFlow's own grid of c (default: --cs)")
    ap.add_argument("--train-mode", action="store_true", help="score SNIP/GraSP in train mode")
    ap.add_argument("--init", default="default",
                    help="weight init: 'default' (PyTorch's) or 'kaiming_normal' (the Synaptic-Flow models')")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    rows = sweep(args.out, cs=[float(c) for c in args.cs.split(",")], model_name=args.model,
                 n_batches=args.batches, num_classes=args.classes, rounds=args.rounds,
                 dataset=args.data, root=args.root, width=args.width, train_mode=args.train_mode,
                 synflow_cs=[float(c) for c in args.synflow_cs.split(",")] if args.synflow_cs else None,
                 init=args.init)  # fmt: skip
    log.info("first collapse (c): %s", first_collapse(rows))


if __name__ == "__main__":
    main()
