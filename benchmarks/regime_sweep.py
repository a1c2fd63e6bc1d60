"""Choose the study's training regime by a small sweep on the VALIDATION split of MNIST-1D.

The regime (optimizer, learning rate, schedule, epochs, batch size, weight decay) trains the
dense reference and every ticket of a study (and IMP's rounds). It is chosen here, on a
seeded validation split of the training set (``gt.data.load(..., split="val",
val_fraction=...)``); the test split is touched only once, at the end, by the chosen regime
(trained on the full training split, as the study trains).

The grid (documented, small enough for ~10 minutes on a shared 2-core machine):

* stage A: optimizer x learning rate x schedule x epochs at batch 100, no weight decay:
  Adam lr {1e-3, 3e-3, 1e-2} and SGD (momentum 0.9) lr {0.03, 0.1}; constant rate read at
  {30, 60, 150} epochs (one run of 150 epochs, the validation accuracy after each budget;
  a constant rate does not depend on the budget) and cosine decay over {30, 60} epochs.
  The MNIST-1D reference (Greydanus 2020, ``notebooks/train.py`` and the classification
  notebook: Adam lr 1e-2, batch 100, 6000 steps = 150 epochs of 4000 examples, no weight
  decay) is the "adam 1e-2 constant 150" point of this grid.
* stage B: around the stage-A choice, one change at a time: batch size {50, 200}, weight
  decay {1e-4, 1e-3} (L2 through the optimizer's ``weight_decay``).

Selection rule (fixed before looking at the numbers): the highest mean final validation
accuracy over the validation seeds; among the configurations within ``--tolerance``
(default 0.01) of it, the one with the fewest optimizer steps (the study trains hundreds of
tickets, so a cheaper regime of equal validation accuracy wins).

Outputs in ``--out`` (default ``benchmarks/results/regime/<model>``): ``sweep.csv`` (one row
per configuration and seed), ``summary.csv`` (mean/min/max per configuration, stage,
chosen flag), ``chosen.json`` (the regime and its validation and test numbers) and
``test.csv`` (the chosen regime on the test split, one row per seed).

Run::

    OMP_NUM_THREADS=1 python -m benchmarks.regime_sweep --model mlp
    OMP_NUM_THREADS=1 python -m benchmarks.regime_sweep --model cnn1d   # when registered
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd
import torch

import graphtickets as gt
from graphtickets.study.cell import derived_seed

log = logging.getLogger("benchmarks.regime_sweep")

#: Default model keyword arguments per model (the study's default models).
MODEL_KW: dict[str, dict[str, Any]] = {
    "mlp": {"widths": [100, 100], "init": "kaiming_normal"},
    "cnn1d": {"init": "kaiming_normal"},
}


@dataclass(frozen=True)
class Regime:
    """One training regime (the fields of the study's ``train:`` section)."""

    optimizer: str
    lr: float
    schedule: str | None
    epochs: int
    batch_size: int = 100
    weight_decay: float = 0.0
    momentum: float = 0.9

    def label(self) -> str:
        return (f"{self.optimizer} lr={self.lr:g} {self.schedule or 'constant'} {self.epochs}ep "
                f"b={self.batch_size} wd={self.weight_decay:g}")

    def steps(self, n_train: int) -> int:
        return self.epochs * -(-n_train // self.batch_size)


def stage_a(quick: bool = False) -> list[tuple[Regime, list[int]]]:
    """Stage A: ``(regime, epochs at which to read it)``; a constant rate is read at several budgets."""
    lrs = {"adam": [1e-3, 3e-3, 1e-2], "sgd": [0.03, 0.1]}
    const_epochs, cos_epochs = ([2, 4], [3]) if quick else ([30, 60, 150], [30, 60])
    if quick:
        lrs = {"adam": [1e-2], "sgd": [0.1]}
    out: list[tuple[Regime, list[int]]] = []
    for opt, values in lrs.items():
        for lr in values:
            out.append((Regime(opt, lr, None, max(const_epochs)), const_epochs))
            for e in cos_epochs:
                out.append((Regime(opt, lr, "cosine", e), [e]))
    return out


def stage_b(best: Regime, quick: bool = False) -> list[Regime]:
    """Stage B: one change at a time around ``best``: batch size, then weight decay."""
    sizes, decays = ([200], [1e-3]) if quick else ([50, 200], [1e-4, 1e-3])
    return [replace(best, batch_size=b) for b in sizes if b != best.batch_size] + [
        replace(best, weight_decay=w) for w in decays if w != best.weight_decay
    ]


def build(model: str, model_kw: dict[str, Any], seed: int) -> torch.nn.Module:
    info = gt.data.info("mnist1d")
    return gt.models.build(model, in_shape=info.in_shape, num_classes=info.num_classes, seed=seed, **model_kw)


def run_one(regime: Regime, read_at: Sequence[int], *, model: str, model_kw: dict[str, Any], seed: int,
            train: Any, evaluate_on: Any) -> dict[int, dict[str, float]]:
    """Train one model; ``{epoch: {accuracy, train_accuracy, seconds}}`` at the epochs in ``read_at``.

    The model is initialised with ``seed`` and the batches are shuffled with the study's
    training seed (``derived_seed(seed, "train")``), exactly as a study cell does.
    """
    net = build(model, model_kw, seed)
    data = gt.data.batches(train, batch_size=regime.batch_size, shuffle=True, seed=derived_seed(seed, "train"))
    ev = gt.data.batches(evaluate_on, batch_size=1000, shuffle=False)
    read = set(read_at)
    out: dict[int, dict[str, float]] = {}
    t0 = time.perf_counter()

    def callback(epoch: int, m: torch.nn.Module, history: Any) -> bool:
        if epoch in read:
            res = gt.training.evaluate(m, ev)
            out[epoch] = {"accuracy": float(res["accuracy"]), "train_accuracy": float(history.epochs[-1]["accuracy"]),
                          "seconds": time.perf_counter() - t0}
        return False

    gt.training.train(net, data, epochs=regime.epochs, optimizer=regime.optimizer, lr=regime.lr,
                      momentum=regime.momentum, weight_decay=regime.weight_decay, schedule=regime.schedule,
                      seed=derived_seed(seed, "train"), callback=callback)
    return out


def sweep(configs: Sequence[tuple[Regime, list[int]]], stage: str, *, seeds: Sequence[int], n_train: int,
          **kw: Any) -> list[dict[str, Any]]:
    rows = []
    for regime, read_at in configs:
        for seed in seeds:
            res = run_one(regime, read_at, seed=seed, **kw)
            for e in read_at:
                r = replace(regime, epochs=e)
                rows.append({"stage": stage, "label": r.label(), **asdict(r), "seed": seed,
                             "steps": r.steps(n_train), "val_accuracy": res[e]["accuracy"],
                             "train_accuracy": res[e]["train_accuracy"], "seconds": res[e]["seconds"]})
                log.info("%s %s seed %d: val %.3f", stage, r.label(), seed, res[e]["accuracy"])
    return rows


def summarize(rows: list[dict[str, Any]]) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    df["schedule"] = df["schedule"].fillna("constant")
    keys = ["label", "optimizer", "lr", "schedule", "epochs", "batch_size", "weight_decay", "momentum", "steps"]
    g = df.groupby(keys, dropna=False).agg(
        stage=("stage", "first"), val_mean=("val_accuracy", "mean"), val_min=("val_accuracy", "min"),
        val_max=("val_accuracy", "max"), train_mean=("train_accuracy", "mean"), seconds=("seconds", "mean"),
        n=("seed", "size"),
    )
    return g.reset_index().sort_values("val_mean", ascending=False).reset_index(drop=True)


def choose(summary: pd.DataFrame, tolerance: float) -> pd.Series:
    """The selection rule: best mean val accuracy; within ``tolerance`` of it, fewest steps."""
    best = float(summary["val_mean"].max())
    near = summary[summary["val_mean"] >= best - tolerance]
    return near.sort_values(["steps", "val_mean"], ascending=[True, False]).iloc[0]


def regime_of(row: pd.Series) -> Regime:
    sched = None if row["schedule"] in (None, "constant") or pd.isna(row["schedule"]) else str(row["schedule"])
    return Regime(str(row["optimizer"]), float(row["lr"]), sched, int(row["epochs"]), int(row["batch_size"]),
                  float(row["weight_decay"]), float(row["momentum"]))


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="mlp", help="a model of gt.models.MODELS (mlp, cnn1d, ...)")
    p.add_argument("--model-kw", default=None, help="JSON keyword arguments of the model (default: the study's)")
    p.add_argument("--val-fraction", type=float, default=0.2)
    p.add_argument("--split-seed", type=int, default=0, help="seed of the train/val split")
    p.add_argument("--val-seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--test-seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--tolerance", type=float, default=0.01)
    p.add_argument("--out", default=None)
    p.add_argument("--quick", action="store_true", help="a tiny grid (a smoke test, not a result)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    torch.set_num_threads(1)
    if args.model not in gt.models.MODELS:
        log.warning("model %r is not registered here (known: %s); nothing to sweep", args.model,
                    ", ".join(sorted(gt.models.MODELS)))
        return 0
    model_kw = json.loads(args.model_kw) if args.model_kw else dict(MODEL_KW.get(args.model, {}))
    out = Path(args.out or f"benchmarks/results/regime/{args.model}")
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    train = gt.data.load("mnist1d", split="train", val_fraction=args.val_fraction, seed=args.split_seed)
    val = gt.data.load("mnist1d", split="val", val_fraction=args.val_fraction, seed=args.split_seed)
    kw = {"model": args.model, "model_kw": model_kw, "train": train, "evaluate_on": val,
          "seeds": args.val_seeds, "n_train": len(train)}
    rows = sweep(stage_a(args.quick), "A", **kw)
    best_a = regime_of(choose(summarize(rows), args.tolerance))
    rows += sweep([(r, [r.epochs]) for r in stage_b(best_a, args.quick)], "B", **kw)
    summary = summarize(rows)
    chosen = choose(summary, args.tolerance)
    regime = regime_of(chosen)
    summary["chosen"] = summary["label"] == chosen["label"]
    pd.DataFrame(rows).to_csv(out / "sweep.csv", index=False)
    summary.to_csv(out / "summary.csv", index=False)
    sweep_seconds = time.perf_counter() - t_start

    # the test split, once, for the chosen regime only (trained on the full training split)
    full = gt.data.load("mnist1d", split="train")
    test = gt.data.load("mnist1d", split="test")
    test_rows = []
    for seed in args.test_seeds:
        res = run_one(regime, [regime.epochs], model=args.model, model_kw=model_kw, seed=seed, train=full, evaluate_on=test)
        test_rows.append({"seed": seed, "test_accuracy": res[regime.epochs]["accuracy"],
                          "train_accuracy": res[regime.epochs]["train_accuracy"], "seconds": res[regime.epochs]["seconds"]})
    tdf = pd.DataFrame(test_rows)
    tdf.to_csv(out / "test.csv", index=False)
    acc = tdf["test_accuracy"].to_numpy()
    record = {
        "model": args.model, "model_kw": model_kw, "dataset": "mnist1d",
        "val_fraction": args.val_fraction, "split_seed": args.split_seed, "val_seeds": args.val_seeds,
        "tolerance": args.tolerance, "quick": bool(args.quick),
        "regime": {**asdict(regime), "steps_full_train": regime.steps(len(full))},
        "val_accuracy": {"mean": float(chosen["val_mean"]), "min": float(chosen["val_min"]), "max": float(chosen["val_max"])},
        "best_val_accuracy": float(summary["val_mean"].max()),
        "best_val_label": str(summary.iloc[0]["label"]),
        "test_accuracy": {"mean": float(acc.mean()), "std": float(acc.std(ddof=1)) if len(acc) > 1 else 0.0,
                          "min": float(acc.min()), "max": float(acc.max()), "seeds": args.test_seeds},
        "seconds": {"sweep": sweep_seconds, "total": time.perf_counter() - t_start},
        "configurations": int(len(summary)),
    }
    (out / "chosen.json").write_text(json.dumps(record, indent=2) + "\n")
    log.info("chosen %s: val %.3f, test %.3f +- %.3f (%.0f s)", regime.label(), chosen["val_mean"], acc.mean(),
             record["test_accuracy"]["std"], record["seconds"]["total"])
    print(json.dumps(record, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
