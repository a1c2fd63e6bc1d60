"""Choose the default study's conv net on the VALIDATION split of MNIST-1D (issue 28, item 3).

Two measurements, both with the default study's regime (SGD momentum 0.9, lr 0.1, weight decay
1e-4, batch 100, constant rate) and one thread per process:

``val``
    Dense validation accuracy (20 % hold-out of the training split, ``seed=0`` of
    :func:`graphtickets.data.load`) after each epoch, per candidate and init seed; the seeds train
    together on the stacked engine, each with its own data order (``per_ticket_data``), which
    equals three one-by-one trainings to float32 rounding. The test split is not touched.
``cost``
    Seconds per ticket: K random tickets (density 0.05, K initialisations) of one candidate
    trained together on the stacked engine for E epochs on the full training split (as a study
    cell group trains them, with the test split evaluated after every epoch), divided by K.

Usage::

    OMP_NUM_THREADS=1 python -m benchmarks.conv_default_sweep val --out benchmarks/results/conv_default
    OMP_NUM_THREADS=1 python -m benchmarks.conv_default_sweep cost --out benchmarks/results/conv_default
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import torch

import graphtickets as gt
from graphtickets.training.batched import can_batch, train_many

REGIME: dict[str, Any] = {"optimizer": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4}
CANDIDATES: dict[str, tuple[str, dict[str, Any]]] = {
    "cnn1d_c8": ("cnn1d", {"channels": 8, "init": "kaiming_normal"}),
    "cnn1d_c16": ("cnn1d", {"channels": 16, "init": "kaiming_normal"}),
    "cnn1d_c25": ("cnn1d", {"channels": 25, "init": "kaiming_normal"}),
    "cnn1d_c16_bn": ("cnn1d", {"channels": 16, "batchnorm": True, "init": "kaiming_normal"}),
    "cnn1d_c8_bn": ("cnn1d", {"channels": 8, "batchnorm": True, "init": "kaiming_normal"}),
    "resnet1d_d8": ("resnet1d", {"depth": 8, "init": "kaiming_normal"}),
}


def _build(cand: str, seed: int) -> torch.nn.Module:
    name, kw = CANDIDATES[cand]
    info = gt.data.info("mnist1d")
    return gt.models.build(name, in_shape=info.in_shape, num_classes=info.num_classes, seed=seed, **kw)


def val_run(cand: str, seeds: list[int], epochs: int) -> list[dict[str, Any]]:
    tr = gt.data.load("mnist1d", split="train", seed=0, val_fraction=0.2)
    va = gt.data.load("mnist1d", split="val", seed=0, val_fraction=0.2)
    nets = [_build(cand, s) for s in seeds]
    data = [gt.data.batches(tr, batch_size=100, shuffle=True, seed=s) for s in seeds]
    ev = list(gt.data.batches(va, batch_size=1000, shuffle=False))
    t0 = time.perf_counter()
    hists = train_many(nets, data, epochs=epochs, eval_data=ev, engine="stacked", per_ticket_data=True, **REGIME)
    secs = time.perf_counter() - t0
    rows = []
    for s, h in zip(seeds, hists, strict=True):
        for r in h.epochs:
            rows.append({"candidate": cand, "seed": s, "epoch": int(r["epoch"]), "val_accuracy": float(r["eval_accuracy"]),
                         "train_accuracy": float(r["accuracy"]), "seconds_all_seeds": secs})
    return rows


def cost_run(cand: str, k: int, epochs: int) -> dict[str, Any]:
    tr = gt.data.load("mnist1d", split="train")
    te = gt.data.load("mnist1d", split="test")
    nets = [_build(cand, s) for s in range(k)]
    masks = [dict(gt.pruning.prune(n, "random", density=0.05, seed=s).masks) for s, n in enumerate(nets)]
    ok = can_batch(nets, engine="stacked")
    ev = list(gt.data.batches(te, batch_size=1000, shuffle=False))
    data = gt.data.batches(tr, batch_size=100, shuffle=True, seed=0)
    t0 = time.perf_counter()
    train_many(nets, data, masks=masks, epochs=epochs, eval_data=ev, engine="stacked", **REGIME)
    secs = time.perf_counter() - t0
    one = _build(cand, 0)
    t1 = time.perf_counter()
    gt.training.train(one, data, masks=masks[0], epochs=epochs, eval_data=ev, **REGIME)
    alone = time.perf_counter() - t1
    return {"candidate": cand, "K": k, "epochs": epochs, "seconds_K": secs, "seconds_per_ticket": secs / k,
            "seconds_per_ticket_epoch": secs / k / epochs, "seconds_one_alone": alone,
            "seconds_one_alone_epoch": alone / epochs, "can_batch": str(ok), "load_avg": " ".join(f"{x:.2f}" for x in os.getloadavg())}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["val", "cost"])
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/conv_default"))
    ap.add_argument("--candidates", default=",".join(CANDIDATES))
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--k", type=int, default=14)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    cands = args.candidates.split(",")
    if args.what == "val":
        rows = [r for c in cands for r in val_run(c, [int(s) for s in args.seeds.split(",")], args.epochs)]
        path = args.out / "val.csv"
    else:
        rows = [cost_run(c, args.k, args.epochs) for c in cands]
        path = args.out / "cost.csv"
    df = pd.DataFrame(rows)
    if path.exists():
        old = pd.read_csv(path)
        keys = ["candidate", "seed", "epoch"] if args.what == "val" else ["candidate", "K", "epochs"]
        df = pd.concat([old, df]).drop_duplicates(keys, keep="last")
    df.to_csv(path, index=False)
    sys.stdout.write(json.dumps(rows[-3:], default=str) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
