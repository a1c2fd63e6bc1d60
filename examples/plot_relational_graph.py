"""
The relational graph
====================

You et al. (2020) describe a network by its *relational graph*: *n* nodes shared by all
layers, with an edge where a layer's weights join two groups of units. Here a ticket's
relational graph, and the other direction: a Watts-Strogatz-flex graph turned into a ticket
(graph2nn's construction), whose relational graph is the graph we started from.
"""

# %%
import matplotlib.pyplot as plt
import networkx as nx

import graphtickets as gt

model = gt.models.build(
    "mlp", in_shape=(64,), num_classes=10, widths=(32, 32, 32, 32), seed=0
)
ticket = gt.pruning.prune(model, "magnitude", density=0.04)
r = gt.graphs.relational_graph(
    model, ticket
)  # n = 32: one node per hidden unit position
print(
    r,
    {
        k: round(v, 3)
        for k, v in gt.analysis.metrics(r).items()
        if k in ("clustering", "path_length")
    },
)

# %%
# Graph → ticket → graph: a WS-flex graph of 32 nodes, average degree 6, rewiring 0.3.
ws = gt.graphs.ws_flex(32, 6, 0.3, seed=1)
from_graph = gt.graphs.masks_from_relational(ws, model, self_loops="graph")
back = gt.graphs.relational_graph(model, from_graph)
same = (back.adjacency != 0).toarray() == (ws.adjacency != 0).toarray()
print(
    f"ticket density {from_graph.density:.3f}; "
    f"graph -> ticket -> graph identical: {bool(same.all())}"
)

# %%
fig, axes = plt.subplots(1, 3, figsize=(11, 3.8))
axes[0].spy(r.adjacency, markersize=2)
axes[0].xaxis.set_ticks_position("bottom")  # keep the title clear
axes[0].set_title("magnitude ticket: relational adjacency", fontsize=9)
nx.draw_circular(r.simple().to_networkx(), ax=axes[1], node_size=25, width=0.3)
axes[1].set_title("the same graph, circular layout", fontsize=9)
nx.draw_circular(
    ws.to_networkx(),
    ax=axes[2],
    node_size=25,
    width=0.5,
    edge_color="tab:green",
)
axes[2].set_title("WS-flex graph (n=32, k=6, p=0.3) as a ticket", fontsize=9)
fig.tight_layout()
