"""
Compare two methods' tickets
============================

SNIP (a data-driven score at initialisation) and SynFlow (data-free) prune the same
initialised network to the same density. Do they keep the same weights? We look at how each
spreads its weights over the layers, and at the overlap of the two masks layer by layer.
"""

# %%
# A small MLP on scikit-learn's 8x8 digits (bundled, nothing to download).
import matplotlib.pyplot as plt
import numpy as np

import graphtickets as gt

info = gt.data.info("digits")
train = gt.data.load("digits", split="train")
batches = gt.data.batches(train, batch_size=128, seed=0)
model = gt.models.build(
    "mlp",
    in_shape=info.in_shape,
    num_classes=info.num_classes,
    widths=(64, 64),
    seed=0,
)

density = 0.1
snip = gt.pruning.prune(
    model, "snip", density=density, data=gt.data.take(batches, 5)
)
synflow = gt.pruning.prune(model, "synflow", density=density)
print(snip, synflow, sep="\n")

# %%
# Per layer: each ticket's density, and the Jaccard similarity of the two masks
# (intersection over union of the kept weights). Random masks of these densities would
# overlap by about ``d_a * d_b / (d_a + d_b - d_a * d_b)``.
layers = list(snip.masks)
dens_a = [snip.layer_densities()[n] for n in layers]
dens_b = [synflow.layer_densities()[n] for n in layers]
overlap = []
chance = []
for n, da, db in zip(layers, dens_a, dens_b, strict=True):
    a, b = snip.masks[n], synflow.masks[n]
    overlap.append(float((a & b).sum()) / max(float((a | b).sum()), 1.0))
    chance.append(da * db / (da + db - da * db))

x = np.arange(len(layers))
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.6))
ax1.bar(x - 0.2, dens_a, 0.4, label="snip")
ax1.bar(x + 0.2, dens_b, 0.4, label="synflow")
ax1.axhline(density, color="k", ls=":", lw=1, label=f"overall {density:g}")
ax1.set_xticks(x, layers, rotation=20)
ax1.set_ylabel("layer density (fraction kept)")
ax1.legend()
ax2.bar(x, overlap, 0.5, color="tab:purple", label="snip vs synflow")
ax2.scatter(x, chance, marker="_", s=400, color="k", label="two random masks")
ax2.set_xticks(x, layers, rotation=20)
ax2.set_ylabel("Jaccard similarity of the masks")
ax2.legend()
fig.suptitle(
    f"SNIP vs SynFlow at density {density:g}: "
    f"jaccard distance {gt.analysis.distance(snip, synflow, 'jaccard'):.3f}"
)
fig.tight_layout()
