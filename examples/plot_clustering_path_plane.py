"""
Tickets on the clustering / path-length plane
=============================================

You et al. (2020) place neural networks on the plane of their relational graph's clustering
coefficient and average path length. Where do tickets of different methods land, and how do
they move as the density falls?
"""

# %%
import matplotlib.pyplot as plt

import graphtickets as gt

info = gt.data.info("digits")
batches = gt.data.batches(
    gt.data.load("digits", split="train"), batch_size=128, seed=0
)
# four equal hidden layers: the relational graph has one node per unit (n = 32)
model = gt.models.build(
    "mlp",
    in_shape=info.in_shape,
    num_classes=info.num_classes,
    widths=(32, 32, 32, 32),
    seed=0,
)

methods = ["random", "magnitude", "snip", "synflow"]
densities = [0.5, 0.3, 0.2, 0.1, 0.05]
points = {m: [] for m in methods}
for m in methods:
    for d in densities:
        kw = (
            {"data": gt.data.take(batches, 3)}
            if gt.pruning.METHODS[m].needs_data
            else {}
        )
        if m == "synflow":
            kw["rounds"] = (
                20  # fewer rounds than the paper's 100, for a quick example
            )
        t = gt.pruning.prune(model, m, density=d, seed=0, **kw)
        g = gt.graphs.relational_graph(model, t)
        points[m].append(
            (gt.analysis.clustering(g), gt.analysis.path_length(g).value)
        )

# %%
fig, ax = plt.subplots(figsize=(6, 4.5))
for m, pts in points.items():
    c, length = zip(*pts, strict=True)
    (line,) = ax.plot(c, length, marker="o", ms=4, label=m)
    # a large ring marks each method's sparsest ticket
    ax.scatter(
        c[-1],
        length[-1],
        s=120,
        facecolors="none",
        edgecolors=line.get_color(),
    )
ax.set_xlabel("clustering coefficient C")
ax.set_ylabel("average path length L")
ax.set_title("Relational graphs of tickets, density 0.5 → 0.05 (ringed)")
ax.legend()
ax.grid(alpha=0.3)
