"""The batched trainer's engines on a GPU: K tickets together against K one-by-one ``train()`` calls.

Rows ``batched_<model>_K<k>_<engine>_cuda`` (MLP on the MLP engine, cnn1d and resnet1d on the
stacked conv engine, conv2 on the vmap engine), timed as the CPU rows of
:mod:`benchmarks.perf.bench_training` are, with ``device="cuda"``. Without a usable GPU the suite
gives one ``skipped`` row. One command, under 3 minutes on one GPU::

    python -m benchmarks.perf --only training_gpu
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch

from benchmarks.perf.bench_training import BATCHED_TARGET, batched_case


def run(tiny: bool = False, out: Path | str = Path("results/perf")) -> pd.DataFrame:
    """The GPU rows (or one ``skipped`` row); also writes ``DIR/bench_training_gpu.csv``."""
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    if not torch.cuda.is_available():
        df = pd.DataFrame([{"suite": "training_gpu", "case": "(suite)", "skipped": "no CUDA device"}])
    else:
        r, mb = (1, 2) if tiny else (3, 16)
        rows = [
            batched_case("mlp", k=16, epochs=1, repeats=r, max_batches=mb, target=BATCHED_TARGET, engine="stacked",
                         device="cuda"),
            batched_case("cnn1d", k=16, epochs=1, repeats=r, max_batches=mb, target=BATCHED_TARGET, engine="stacked",
                         device="cuda"),
            batched_case("resnet1d", k=16, epochs=1, repeats=r, max_batches=mb, target=BATCHED_TARGET,
                         engine="stacked", device="cuda"),
            batched_case("conv2", k=8, epochs=1, repeats=r, max_batches=mb, target=None, engine="vmap", device="cuda"),
        ]  # fmt: skip
        df = pd.DataFrame(rows)
    df.to_csv(out_dir / "bench_training_gpu.csv", index=False)
    return df
