"""
Functional vs structural similarity of trained tickets
======================================================

Two tickets can keep different weights and still compute alike, or share most weights and
disagree. We train a few tickets of one network, then compare every pair twice: by their
masks (Jaccard distance of the kept weights) and by what they compute on test inputs
(prediction disagreement, and 1 - linear CKA of their hidden representations). A Mantel test
asks whether the structural distance predicts the functional one.
"""

# %%
# Five tickets of one initialised MLP on the bundled 8x8 digits, each trained for a few
# epochs with its mask enforced. Two random tickets (two seeds) show what chance gives.
import matplotlib.pyplot as plt
import numpy as np

import graphtickets as gt

info = gt.data.info("digits")
train = gt.data.load("digits", split="train")
test = gt.data.load("digits", split="test")
test_batches = list(gt.data.batches(test, batch_size=500, shuffle=False))
def build():
    """The same initialised network every time (seed 0)."""
    return gt.models.build(
        "mlp", in_shape=info.in_shape, num_classes=info.num_classes, widths=(64, 64), seed=0
    )


model = build()
density = 0.2
found = {
    "random": gt.pruning.prune(model, "random", density=density, seed=1),
    "random'": gt.pruning.prune(model, "random", density=density, seed=2),
    "magnitude": gt.pruning.prune(model, "magnitude", density=density),
    "snip": gt.pruning.prune(
        model,
        "snip",
        density=density,
        data=gt.data.take(gt.data.batches(train, batch_size=128, seed=0), 5),
    ),
    "synflow": gt.pruning.prune(model, "synflow", density=density),
}
trained = {}
for name, ticket in found.items():
    net = build()  # a fresh copy of the initial weights
    ticket.apply(net)
    gt.training.train(
        net, gt.data.batches(train, batch_size=64, seed=0), masks=ticket, epochs=8, lr=0.05
    )
    acc = gt.training.evaluate(net, test_batches, masks=ticket)["accuracy"]
    print(f"{name:10s} test accuracy {acc:.3f}")
    # the function family reads the trained weights a ticket carries
    trained[name] = gt.analysis.with_trained_weights(ticket, net)

# %%
# Every pair, three kinds: ``jaccard`` (masks), ``agreement`` (1 - fraction of test inputs
# on which both predict the same class) and ``cka`` (1 - linear CKA of hidden layers).
table = gt.analysis.compare(
    trained, model, kinds=["jaccard", "agreement", "cka"], data=test_batches
)
structural = gt.analysis.pivot(table, "jaccard")
disagreement = gt.analysis.pivot(table, "agreement")
cka = gt.analysis.pivot(table, "cka")
print(table[["a", "b", "kind", "value"]].round(3).to_string(index=False))

# %%
# With five tickets there are 5! = 120 ways to relabel them, so the Mantel test enumerates
# them all: its p-value is exact (and cannot go below 1/120).
test_ = gt.analysis.mantel(structural, disagreement, method="spearman", alternative="greater")
print(test_)

iu = np.triu_indices(len(structural), 1)
names = list(structural.index)
pairs = [f"{names[i]}–{names[j]}" for i, j in zip(*iu, strict=True)]
x = structural.to_numpy()[iu]
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9.5, 3.8), sharex=True)
for ax, y, label in (
    (ax1, disagreement.to_numpy()[iu], "prediction disagreement"),
    (ax2, cka.to_numpy()[iu], "1 - linear CKA (hidden layers)"),
):
    ax.scatter(x, y, color="tab:blue")
    for xi, yi, p in zip(x, y, pairs, strict=True):
        if "random" in p and "'" in p or p.startswith("magnitude–snip"):
            ax.annotate(p, (xi, yi), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel("Jaccard distance of the masks")
    ax.set_ylabel(label)
fig.suptitle(
    f"structural vs functional distance of {len(names)} tickets at density {density:g} "
    f"(Spearman rho {test_.statistic:.2f}, exact Mantel p {test_.pvalue:.3f})"
)
fig.tight_layout()
