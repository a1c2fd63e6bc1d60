"""
Layer collapse
==============

At high sparsity a ticket can cut a layer off entirely, so no signal flows from input to
output (Tanaka et al. 2020). Global magnitude pruning at initialisation empties the layer
whose weights start smallest (here the one with the largest fan-in) long before the others;
random pruning keeps every layer at the overall density, until so few weights are left that
no input-to-output path survives; SynFlow is built to keep every layer alive down to very
small densities.
:func:`graphtickets.pruning.collapsed_layers` names the layers a ticket cuts off.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np

import graphtickets as gt

# PyTorch's default init draws a layer's weights from
# U(-1/sqrt(fan_in), 1/sqrt(fan_in)): fc2 (fan-in 256) starts smallest
model = gt.models.build(
    "mlp", in_shape=(64,), num_classes=10, widths=(256, 64, 64), seed=0
)
print({n: p.numel() for n, p in gt.prunable(model).items()})

densities = np.geomspace(0.5, 0.0005, 12)
methods = ["magnitude", "random", "synflow"]
emptiest = {m: [] for m in methods}  # density of the emptiest layer
collapse_at = {}
for m in methods:
    for d in densities:
        # SynFlow: 100 rounds in the paper; 30 keep this example fast
        kw = {"rounds": 30} if m == "synflow" else {}
        t = gt.pruning.prune(model, m, density=float(d), seed=0, **kw)
        emptiest[m].append(min(t.layer_densities().values()))
        # every layer is cut off once no input reaches the output
        cut = gt.pruning.collapsed_layers(model, t)
        if cut and m not in collapse_at:
            collapse_at[m] = float(d)
            empty = [n for n, v in t.layer_densities().items() if v == 0]
            print(f"{m}: collapse at density {d:.4f}; empty layers: {empty}")

# %%
# The emptiest layer's density against the overall density; an ``X`` marks a ticket with a
# layer pruned to nothing (drawn at the bottom of the log axis).
fig, ax = plt.subplots(figsize=(6.2, 4))
floor = 2e-5
for m in methods:
    y = np.array(emptiest[m])
    (line,) = ax.plot(
        densities, np.where(y > 0, y, np.nan), marker="o", ms=4, label=m
    )
    dead = y == 0
    ax.scatter(
        densities[dead],
        np.full(dead.sum(), floor),
        marker="X",
        s=60,
        color=line.get_color(),
    )
ax.plot(
    densities, densities, color="k", lw=0.8, ls=":", label="overall density"
)
ax.set_xscale("log")
ax.set_yscale("log")
ax.set_ylim(floor / 2, 1)
ax.invert_xaxis()
ax.set_xlabel("density (fraction of weights kept)")
ax.set_ylabel("density of the emptiest layer")
ax.set_title("Layer collapse (X: a layer pruned to nothing)")
ax.legend(loc="lower left")
ax.grid(alpha=0.3)
