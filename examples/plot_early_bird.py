"""
The Early-Bird distance curve
=============================

Early-Bird (You et al. 2020) trains the dense network and draws a mask after every epoch;
when the masks of the last few epochs differ by less than a tolerance, the ticket has
emerged and training stops. The paper's masks are *channel* masks, ranked by the BatchNorm
scales ``|gamma|``, so ``early_bird`` needs BatchNorm: on an MLP,
``gt.models.build("mlp", ..., batchnorm=True)``. ``early_magnitude`` runs the same stopping
rule on unstructured magnitude masks. The ticket's ``meta`` keeps the whole curve.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np

import graphtickets as gt

info = gt.data.info("digits")
batches = gt.data.batches(
    gt.data.load("digits", split="train"), batch_size=64, seed=0
)
model = gt.models.build(
    "mlp",
    in_shape=info.in_shape,
    num_classes=info.num_classes,
    widths=(64, 64),
    batchnorm=True,  # a BatchNorm1d after each hidden layer: its units are the channels
    seed=0,
)

curves = {}
for method, d in (("early_bird", 0.3), ("early_bird", 0.1), ("early_magnitude", 0.1)):
    t = gt.pruning.prune(
        model,
        method,
        density=d,
        data=batches,
        epochs=15,
        tol=0.1,
        lr=0.05,
    )
    curves[f"{method}, density {d:g}"] = t
    print(
        f"{method} density {d}: detected={t.meta['detected']}, "
        f"drawn at epoch {t.meta['epoch_drawn']}"
    )

# %%
fig, ax = plt.subplots(figsize=(6, 3.8))
for label, t in curves.items():
    y = np.array(
        [np.nan if v is None else v for v in t.meta["distances"]], dtype=float
    )
    (line,) = ax.plot(
        np.arange(1, len(y) + 1), y, marker=".", label=label
    )
    if t.meta["detected"]:
        ax.axvline(
            t.meta["epoch_drawn"], color=line.get_color(), alpha=0.4, ls="--"
        )
ax.axhline(0.1, color="r", ls=":", label="tolerance")
ax.set_xlabel("epoch")
ax.set_ylabel("mask distance to the last window")
ax.set_title(
    "When does the mask stop changing? (dashed: ticket drawn)", fontsize=10
)
ax.legend()
ax.grid(alpha=0.3)
fig.tight_layout()
