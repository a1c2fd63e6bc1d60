"""Tickets found by training on MNIST-1D with an MLP (CPU): the study's first numbers.

For each density (default 0.2, 0.05, 0.01) and seed:

* **IMP** (rewind 0, rate 0.2, global magnitude): test accuracy of the last ticket trained
  from its initial weights, versus the same masks with **re-initialized** weights and the
  **layer-shuffled** masks (each layer's mask permuted) on the original weights, all trained
  the same way: each by :func:`_train_eval` on a fresh copy of the same batch stream
  (Frankle & Carbin 2019 ablations);
* **Gem-Miner** (its package defaults): test accuracy of the gem with its initial weights
  (before any weight training) and after fine-tuning, the accuracy of the mask the scores
  were last trained through, the overlap with the initial-score top-k, and the gem's
  before-training accuracy with the OTHER initialisation (``--init``);
* **Early-Bird** (weight mode: the MLP has no BatchNorm; distance normalised by the kept
  count): the epoch the ticket was drawn at, whether the rule fired, and the test accuracy of
  that ticket trained from initialization;
* each method's search cost in seconds (IMP: until the last mask is found, its final training
  excluded; Gem-Miner: score training; Early-Bird: training until detection).

Usage::

    python benchmarks/train_methods.py --out results/train_methods [--seeds 0 1 2] [--epochs 30] \
        [--init kaiming_normal]

Writes ``train_methods.csv`` (one row per seed and density) and ``train_methods.md`` (mean
and standard deviation over seeds) into ``--out``.
"""

from __future__ import annotations

import argparse
import copy
import logging
import time
from pathlib import Path
from typing import Any

import pandas as pd

import graphtickets as gt
from graphtickets import training
from graphtickets.pruning.imp import imp_rounds

log = logging.getLogger("benchmarks.train_methods")

OPT: dict[str, Any] = {"optimizer": "adam", "lr": 1.2e-3}


def _shuffle(ticket: gt.Ticket, seed: int) -> gt.Ticket:
    try:
        from graphtickets.pruning.ablations import shuffle

        return shuffle(ticket, seed=seed)
    except ImportError:  # pragma: no cover - ablations module not there
        import torch

        g = torch.Generator().manual_seed(seed)
        masks = {
            n: m.reshape(-1)[torch.randperm(m.numel(), generator=g)].reshape(m.shape)
            for n, m in ticket.masks.items()
        }
        return ticket.replace(masks)


def _reinit(ticket: gt.Ticket, model: Any, seed: int) -> Any:
    try:
        from graphtickets.pruning.ablations import reinit

        return reinit(ticket, model, seed=seed)[1]
    except ImportError:  # pragma: no cover
        spec = {**model.gt_spec, "seed": seed}
        fresh = gt.models.build_from_spec(spec)
        ticket.apply(fresh, weights=False)
        return fresh


def _train_eval(model: Any, masks: Any, train_b: Any, test_b: Any, epochs: int, seed: int) -> float:
    m = copy.deepcopy(model)
    training.enforce_masks(m, masks)
    training.train(m, train_b, masks=masks, epochs=epochs, seed=seed, **OPT)
    return float(training.evaluate(m, test_b, masks=masks)["accuracy"])


def run(
    out: Path, *, densities: list[float], seeds: list[int], epochs: int, gem_epochs: int,
    eb_epochs: int, widths: tuple[int, ...], batch_size: int, init: str = "kaiming_normal",
) -> pd.DataFrame:
    """Run the benchmark; returns the per-(seed, density) table."""
    train_ds = gt.data.load("mnist1d", split="train")
    test_ds = gt.data.load("mnist1d", split="test")
    test_b = gt.data.batches(test_ds, batch_size=1000, shuffle=False)
    rows: list[dict[str, Any]] = []
    for seed in seeds:

        def tb(seed: int = seed) -> Any:  # a fresh Batches: every run sees the same shuffles
            return gt.data.batches(train_ds, batch_size=batch_size, shuffle=True, seed=seed)

        model = gt.models.build("mlp", in_shape=(40,), num_classes=10, widths=widths, seed=seed, init=init)
        other_init = "default" if init == "kaiming_normal" else "kaiming_normal"
        other = gt.models.build("mlp", in_shape=(40,), num_classes=10, widths=widths, seed=seed, init=other_init)
        t0 = time.perf_counter()
        dense_masks = {n: p.detach().abs() >= 0 for n, p in gt.prunable(model).items()}
        dense_acc = _train_eval(model, dense_masks, tb(), test_b, epochs, seed)
        log.info("seed %d dense %.4f (%.1fs)", seed, dense_acc, time.perf_counter() - t0)
        for d in densities:
            row: dict[str, Any] = {"seed": seed, "density": d, "dense_acc": dense_acc}
            fam = imp_rounds(model, density=d, data=tb(), seed=seed, epochs=epochs, train_last=False, **OPT)
            imp = fam[-1]
            row.update(imp_rounds=len(fam), imp_kept=imp.kept, imp_s=imp.meta["cost"]["seconds"])
            # the last ticket trained exactly as its controls (fresh batch stream, same settings)
            row["imp_acc"] = _train_eval(model, imp.masks, tb(), test_b, epochs, seed)
            row["reinit_acc"] = _train_eval(_reinit(imp, model, seed + 1000), imp.masks, tb(), test_b, epochs, seed)
            shuf = _shuffle(imp, seed)
            row["shuffle_acc"] = _train_eval(model, shuf.masks, tb(), test_b, epochs, seed)
            rnd = gt.pruning.prune(model, "random", density=d, seed=seed, scope="global")
            row["random_acc"] = _train_eval(model, rnd.masks, tb(), test_b, epochs, seed)

            gem = gt.pruning.prune(
                model, "gem_miner", density=d, data=tb(), seed=seed, epochs=gem_epochs,
                finetune_epochs=epochs, eval_data=test_b,
            )
            row.update(
                gem_before_acc=gem.meta["accuracy_before_finetune"],
                gem_after_acc=gem.meta["accuracy_after_finetune"],
                gem_used_acc=gem.meta["accuracy_used_mask"],
                gem_overlap=gem.meta["initial_overlap"],
                gem_s=gem.meta["search_seconds"], gem_kept=gem.kept,
            )
            gem_o = gt.pruning.prune(
                other, "gem_miner", density=d, data=tb(), seed=seed, epochs=gem_epochs,
                finetune_epochs=0, eval_data=test_b,
            )
            row[f"gem_before_acc_{other_init}"] = gem_o.meta["accuracy_before_finetune"]
            t1 = time.perf_counter()
            eb = gt.pruning.prune(model, "early_magnitude", density=d, data=tb(), seed=seed, epochs=eb_epochs)
            row.update(
                eb_epoch=eb.meta["epoch_drawn"], eb_detected=eb.meta["detected"],
                eb_s=time.perf_counter() - t1, eb_kept=eb.kept,
            )
            row["eb_acc"] = _train_eval(model, eb.masks, tb(), test_b, epochs, seed)
            rows.append(row)
            log.info("seed %d density %g: %s", seed, d, {k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()})
            out.mkdir(parents=True, exist_ok=True)
            pd.DataFrame(rows).to_csv(out / "train_methods.csv", index=False)
    return pd.DataFrame(rows)


def markdown(df: pd.DataFrame, init: str = "kaiming_normal") -> str:
    """Mean ± std over seeds, one row per density."""
    other = [c for c in df.columns if c.startswith("gem_before_acc_")]
    cols = [
        ("imp_acc", "IMP"), ("reinit_acc", "IMP reinit"), ("shuffle_acc", "IMP shuffled"),
        ("random_acc", "random"), ("gem_before_acc", "Gem before FT"), ("gem_used_acc", "Gem used mask"),
        ("gem_after_acc", "Gem after FT"),
        *[(c, f"Gem before FT ({c.removeprefix('gem_before_acc_')} init)") for c in other],
        ("gem_overlap", "Gem overlap w/ init top-k"),
        ("eb_acc", "early_magnitude trained"), ("eb_epoch", "early_magnitude epoch"), ("imp_s", "IMP s"), ("gem_s", "Gem s"),
        ("eb_s", "early_magnitude s"),
    ]
    n_seeds = df["seed"].nunique()
    lines = [
        f"Test accuracy on MNIST-1D (MLP, init {init}, {n_seeds} seed(s), mean ± std; chance 0.1); dense: "
        f"{df['dense_acc'].mean():.3f} ± {df['dense_acc'].std(ddof=0):.3f}",
        "",
        "| density | " + " | ".join(c[1] for c in cols) + " |",
        "|---" * (len(cols) + 1) + "|",
    ]
    for d, g in df.groupby("density", sort=False):
        cells = []
        for c, _ in cols:
            v = g[c].astype(float)
            fmt = "{:.1f}" if c.endswith("_s") or c == "eb_epoch" else "{:.3f}"
            cells.append(fmt.format(v.mean()) + (" ± " + fmt.format(v.std(ddof=0)) if len(v) > 1 else ""))
        lines.append(f"| {d:g} | " + " | ".join(cells) + " |")
    det = df["eb_detected"].mean()
    lines += ["", f"Early-Bird rule fired in {det:.0%} of runs (otherwise the last epoch's mask is used)."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--densities", type=float, nargs="+", default=[0.2, 0.05, 0.01])
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--epochs", type=int, default=30, help="training epochs per IMP round / per evaluation")
    p.add_argument("--gem-epochs", type=int, default=30)
    p.add_argument("--eb-epochs", type=int, default=30)
    p.add_argument("--widths", type=int, nargs="+", default=[100, 100])
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 is fastest for a small MLP)")
    p.add_argument(
        "--init", choices=["kaiming_normal", "default"], default="kaiming_normal",
        help="initialisation of every model (gt.models.build init=); Gem-Miner is also run with the other one",
    )
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    t0 = time.perf_counter()
    df = run(
        args.out, densities=args.densities, seeds=args.seeds, epochs=args.epochs,
        gem_epochs=args.gem_epochs, eb_epochs=args.eb_epochs, widths=tuple(args.widths),
        batch_size=args.batch_size, init=args.init,
    )
    md = markdown(df, args.init) + f"\nTotal wall time {time.perf_counter() - t0:.0f} s.\n"
    (args.out / "train_methods.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
