"""
Tickets from other tools
========================

A ticket made by ``torch.nn.utils.prune`` (or saved by any tool as a sparse checkpoint, an
open_lth mask, an ``.npz``) becomes a graphtickets ticket and can be compared with the
built-in methods. Here PyTorch's own global magnitude pruning against graphtickets'
``magnitude``: given the same number of weights to prune, they keep the same weights.
"""

# %%
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn
from torch.nn.utils import prune

import graphtickets as gt
from graphtickets import interop

model = gt.models.build(
    "mlp", in_shape=(64,), num_classes=10, widths=(64, 64), seed=0
)
ours = gt.pruning.prune(model, "magnitude", density=0.1)

# PyTorch's way, on a copy of the same network
theirs_model = gt.models.build(
    "mlp", in_shape=(64,), num_classes=10, widths=(64, 64), seed=0
)
params = [
    (m, "weight") for m in theirs_model.modules() if isinstance(m, nn.Linear)
]
n_total = sum(m.weight.numel() for m, _ in params)
prune.global_unstructured(
    params, pruning_method=prune.L1Unstructured, amount=n_total - ours.kept
)

# %%
# Three ways in: the ``weight_mask`` buffers, the model's state dict (``weight_orig`` and
# ``weight_mask``), and a sparse checkpoint written to disk and read back with
# ``torch.load(weights_only=True)``.
from_buffers = gt.Ticket.from_torch_prune(theirs_model, method="torch_prune")
from_state = gt.Ticket.from_state_dict(
    model, theirs_model.state_dict(), method="torch_prune"
)
with tempfile.TemporaryDirectory() as tmp:
    for m, name in params:
        prune.remove(
            m, name
        )  # bake the masks in: pruned weights are now stored as zeros
    torch.save(theirs_model.state_dict(), Path(tmp) / "sparse.pt")
    from_file = interop.load(
        Path(tmp) / "sparse.pt", model, method="torch_prune"
    )
    interop.save(
        from_file, Path(tmp) / "masks.npz", format="npz"
    )  # and out again
    round_trip = interop.load(Path(tmp) / "masks.npz", model)

for t in (from_buffers, from_state, from_file, round_trip):
    print(
        f"{t.meta.get('imported', {}).get('format', 'buffers'):>12}: "
        "jaccard to ours "
        f"{gt.analysis.distance(ours, t, 'jaccard'):.3g}"
    )

# %%
layers = list(ours.masks)
x = np.arange(len(layers))
fig, ax = plt.subplots(figsize=(6, 3.6))
ax.bar(
    x - 0.2,
    [ours.layer_densities()[n] for n in layers],
    0.4,
    label="graphtickets magnitude",
)
ax.bar(
    x + 0.2,
    [from_file.layer_densities()[n] for n in layers],
    0.4,
    label="torch.nn.utils.prune (imported)",
)
ax.set_xticks(x, layers)
ax.set_ylabel("layer density")
ax.set_title(
    "Same weights kept: jaccard distance "
    f"{gt.analysis.distance(ours, from_file, 'jaccard'):g}"
)
ax.legend(fontsize=8)
