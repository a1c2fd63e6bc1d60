"""
A 1-D CNN ticket's layered graph
================================

The 1-D models (``cnn1d``, ``resnet1d``) run on MNIST-1D, a dataset of signals of length 40
generated locally (nothing to download). A conv layer becomes graph edges at channel level:
an edge joins input channel *i* to output channel *o* when any kernel entry between them is
kept, and the flatten before the classifier gives one node per (channel, position). We draw
the layered graph of a SynFlow ticket and of a magnitude ticket of the same network.
"""

# %%
import matplotlib.pyplot as plt
import networkx as nx

import graphtickets as gt

info = gt.data.info("mnist1d")
model = gt.models.build(
    "cnn1d", in_shape=info.in_shape, num_classes=info.num_classes, channels=25, seed=0
)
print(model)
density = 0.05
tickets = {
    "synflow": gt.pruning.prune(model, "synflow", density=density),
    "magnitude": gt.pruning.prune(model, "magnitude", density=density),
}

# %%
# Per ticket: its layer densities and a few metrics of the layered graph. ``dead_fraction``
# counts units with no path from the input or none to the output.
graphs = {}
for name, ticket in tickets.items():
    g = gt.graphs.layered_graph(model, ticket, weights="count")
    graphs[name] = g
    m = gt.analysis.metrics(g)
    print(
        name,
        {k: round(v, 3) for k, v in ticket.layer_densities().items()},
        {k: round(m[k], 3) for k in ("n_edges", "dead_fraction", "io_path_length")},
    )

# %%
# Nodes placed by depth (input, three conv layers, the flattened features, the classes);
# grey nodes have lost every edge. At this density magnitude pruning empties the classifier
# layer (its weights at initialisation are the smallest): layer collapse, no input -> output
# path left (``io_path_length`` is NaN), while SynFlow keeps every layer connected.
fig, axes = plt.subplots(1, 2, figsize=(10, 4.6))
for ax, (name, g) in zip(axes, graphs.items(), strict=True):
    nxg = g.to_networkx()  # nodes carry the graph's node table (layer, unit, depth, ...)
    pos = nx.multipartite_layout(nxg, subset_key="depth")
    live = {n for n in nxg if nxg.degree(n) > 0}
    nx.draw_networkx_edges(nxg, pos, ax=ax, width=0.3, alpha=0.5, arrows=False)
    nx.draw_networkx_nodes(
        nxg,
        pos,
        ax=ax,
        node_size=6,
        node_color=["tab:blue" if n in live else "0.8" for n in nxg],
    )
    ax.set_title(f"{name} ticket, density {density:g}: {g.adjacency.nnz} edges", fontsize=9)
    ax.axis("off")
fig.tight_layout()
