"""SynFlow (Tanaka et al. 2020): the method, its fast round engine and its autograd-free flow.

- :mod:`~graphtickets.pruning.synflow.method` -- the method (:func:`synflow`, its scores
  :func:`synflow_scores`, the linearized copy :func:`linearized_copy`) and its registration;
  its docstring states the rules and the deviations from the paper;
- :mod:`~graphtickets.pruning.synflow.engine` -- the rounds on one float64 copy: Conv2d/Linear
  gradients by matrix products, the selection over the survivors (``engine.PROGRAM`` turns the
  program below on or off);
- :mod:`~graphtickets.pruning.synflow.program` -- the flow of a traced network as explicit
  matrix products (im2col, CSR and sampled products), without autograd.

Imports go one way: ``method`` imports ``engine``, which imports ``program``; all three import
only :mod:`graphtickets.pruning.core`, :mod:`graphtickets.pruning.select` and the layers below.
The old flat names ``graphtickets.pruning.synflow_engine`` and ``synflow_program`` are the same
module objects (registered by :mod:`graphtickets.pruning`), so code that sets
``synflow_engine.PROGRAM`` still reaches the engine.
"""

from __future__ import annotations

from graphtickets.pruning.synflow import engine, program
from graphtickets.pruning.synflow.method import (  # _fold_batchnorm: for the tests that compare the engines
    _fold_batchnorm,  # noqa: F401
    bias_names,
    infer_in_shape,
    linearized_copy,
    synflow,
    synflow_scores,
)

__all__ = ["synflow_scores", "synflow", "linearized_copy", "bias_names", "infer_in_shape", "engine", "program"]
