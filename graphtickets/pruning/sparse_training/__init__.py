"""Methods that train sparse or prune while training, and smart-ratio random tickets.

``set`` (:mod:`.evolutionary`, Mocanu et al. 2018), ``rigl`` (:mod:`.rigl`, Evci et al. 2020)
and ``gmp`` (:mod:`.gmp`, Zhu & Gupta 2017) train one network while its mask changes (the
``on_step`` hook of :func:`graphtickets.training.train`); their ticket is the final mask and the
accuracy of their own run is in ``meta["run_accuracy"]``. ``smart_ratio`` (:mod:`.smart_ratio`,
Su et al. 2020) draws a random ticket at data-free layer-wise ratios. Shared pieces live in
:mod:`.common` (training options, ER/ERK layer counts, the run) and :mod:`.schedules` (RigL's
cosine drop fraction, Zhu & Gupta's cubic sparsity).

>>> import graphtickets as gt
>>> {"set", "rigl", "gmp", "smart_ratio"} <= set(gt.pruning.METHODS)
True
"""

from __future__ import annotations

from graphtickets.pruning.sparse_training import evolutionary, gmp, rigl, smart_ratio
from graphtickets.pruning.sparse_training.common import SparseOptions, er_densities
from graphtickets.pruning.sparse_training.schedules import (
    gmp_sparsity,
    gmp_update_steps,
    rigl_drop_fraction,
    rigl_update_steps,
)
from graphtickets.pruning.sparse_training.smart_ratio import smart_ratio_densities

__all__ = [
    "SparseOptions", "er_densities", "smart_ratio_densities", "rigl_drop_fraction", "rigl_update_steps",
    "gmp_sparsity", "gmp_update_steps", "evolutionary", "gmp", "rigl", "smart_ratio",
]
