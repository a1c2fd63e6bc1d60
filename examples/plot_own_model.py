"""
Your own model
==============

Any network made of ``Linear``/``Conv`` layers, BatchNorm, activations, pooling, flatten and
residual additions works: graphtickets traces it with ``torch.fx``, so there is no
per-architecture code to write. Here a small 1-D convolutional net of our own, pruned with
SNIP and drawn as its layered graph (conv layers give channel-to-channel edges).
"""

# %%
import matplotlib.pyplot as plt
import networkx as nx
import torch
from torch import nn

import graphtickets as gt


class TinyConv1d(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(1, 8, kernel_size=5, padding=2)
        self.conv2 = nn.Conv1d(8, 8, kernel_size=3, padding=1)
        self.pool = nn.AdaptiveAvgPool1d(1)
        self.head = nn.Linear(8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.unsqueeze(1)  # (batch, 40) -> (batch, 1, 40)
        x = torch.relu(self.conv1(x))  # -> (batch, 8, 40)
        x = torch.relu(self.conv2(x)) + x  # a residual connection
        return self.head(self.pool(x).flatten(1))


torch.manual_seed(0)
model = TinyConv1d()
print(list(gt.prunable(model)))  # conv1.weight, conv2.weight, head.weight

# %%
# SNIP needs a few batches; here a synthetic batch of MNIST-1D-shaped inputs.
gen = torch.Generator().manual_seed(0)
batch = (
    torch.randn(64, 40, generator=gen),
    torch.randint(0, 10, (64,), generator=gen),
)
ticket = gt.pruning.prune(model, "snip", density=0.3, data=[batch])
g = gt.graphs.layered_graph(model, ticket, input_shape=(40,))
print(g)
m = gt.analysis.metrics(g)
for k in ("weight_density", "effective_density", "effective_fraction"):
    print(f"{k}: {m[k]:.3f}")

# %%
# Draw it: one column per layer, edge width = live kernel entries between two channels.
nxg = g.to_networkx()
layers = list(dict.fromkeys(g.nodes["layer"]))
pos = {}
for i, row in g.nodes.iterrows():
    col = layers.index(row["layer"])
    size = int((g.nodes["layer"] == row["layer"]).sum())
    pos[i] = (col, row["unit"] - size / 2)
widths = [0.3 + 0.4 * d["weight"] for _, _, d in nxg.edges(data=True)]
fig, ax = plt.subplots(figsize=(7, 4))
nx.draw_networkx_edges(nxg, pos, ax=ax, width=widths, alpha=0.5, arrows=False)
nx.draw_networkx_nodes(
    nxg,
    pos,
    ax=ax,
    node_size=40,
    node_color=[layers.index(v) for v in g.nodes["layer"]],
    cmap="viridis",
)
for col, name in enumerate(layers):
    ax.text(
        col,
        min(y for _, y in pos.values()) - 1.5,
        name or "input",
        ha="center",
        va="top",
        fontsize=8,
    )
ax.set_title(
    "Layered graph of a SNIP ticket of a custom 1-D conv net (density 0.3)"
)
ax.axis("off")
