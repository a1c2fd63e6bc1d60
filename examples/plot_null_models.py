"""
Null models: alike, or just the same layer densities?
=====================================================

Two tickets at the same density overlap partly by chance, and more if they spread their
weights over the layers alike. A null model keeps what the comparison should control for and
randomises the rest: :func:`graphtickets.analysis.shuffle_within_layers` keeps each layer's
density and shuffles the positions. The z-score says how far the real distance lies from the
null distances.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np

import graphtickets as gt

info = gt.data.info("digits")
batches = gt.data.batches(
    gt.data.load("digits", split="train"), batch_size=128, seed=0
)
model = gt.models.build(
    "mlp",
    in_shape=info.in_shape,
    num_classes=info.num_classes,
    widths=(64, 64),
    seed=0,
)
snip = gt.pruning.prune(
    model, "snip", density=0.1, data=gt.data.take(batches, 5)
)
magnitude = gt.pruning.prune(model, "magnitude", density=0.1)

real = gt.analysis.distance(snip, magnitude, "jaccard")
nulls = np.array(
    [
        gt.analysis.distance(
            gt.analysis.shuffle_within_layers(snip, seed=2 * i),
            gt.analysis.shuffle_within_layers(magnitude, seed=2 * i + 1),
            "jaccard",
        )
        for i in range(200)
    ]
)
z = (real - nulls.mean()) / nulls.std(ddof=1)
print(
    f"jaccard {real:.3f}; "
    f"null {nulls.mean():.3f} ± {nulls.std(ddof=1):.3f}; z = {z:.1f}"
)

# %%
# ``compare`` does the same for every pair and every distance kind at once.
table = gt.analysis.compare(
    {"snip": snip, "magnitude": magnitude},
    model,
    kinds=["jaccard", "hamming"],
    null_samples=20,
    seed=0,
)
print(table[["a", "b", "kind", "value", "null_mean", "z"]])

# %%
fig, ax = plt.subplots(figsize=(6, 3.6))
ax.hist(nulls, bins=30, color="0.7", label="layer-shuffled nulls (200 pairs)")
ax.axvline(
    real, color="tab:red", lw=2, label=f"SNIP vs magnitude (z = {z:.0f})"
)
ax.set_xlabel("jaccard distance (1 - overlap)")
ax.set_ylabel("count")
ax.set_title("Closer than chance at the same layer densities")
ax.legend(loc="upper left", fontsize=8)
