"""Tickets as graphs: layered, relational (You et al. 2020) and per-layer bipartite graphs.

``derived`` registers the derived pruning method ``relational`` (a WS-flex graph at the
sources' clustering and path length); imports go down to ``pruning``, never up to ``analysis``.

>>> import graphtickets as gt
>>> from torch import nn
>>> g = gt.graphs.layered_graph(nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)), input_shape=(3,))
>>> g.n_edges
20
"""

from __future__ import annotations

from graphtickets.graphs import derived as _derived  # noqa: F401  (registers the method "relational")
from graphtickets.graphs.base import (
    Graph,
    as_graph,
    edge_arrays,
    from_edges,
    from_igraph,
    from_networkx,
    from_pyg,
    from_scipy,
    to_igraph,
    to_networkx,
    to_pyg,
)
from graphtickets.graphs.bipartite import BipartiteGraph, layer_bipartite
from graphtickets.graphs.compact import compact
from graphtickets.graphs.generators import ws_flex
from graphtickets.graphs.layered import LayeredGraph, layered_graph
from graphtickets.graphs.relational import (
    RelationalGraph,
    default_layers,
    group_ids,
    group_sizes,
    masks_from_relational,
    relational_graph,
)

__all__ = [
    "Graph",
    "LayeredGraph",
    "RelationalGraph",
    "BipartiteGraph",
    "edge_arrays",
    "from_edges",
    "as_graph",
    "to_networkx",
    "from_networkx",
    "to_igraph",
    "from_igraph",
    "to_pyg",
    "from_pyg",
    "from_scipy",
    "layered_graph",
    "relational_graph",
    "layer_bipartite",
    "masks_from_relational",
    "ws_flex",
    "default_layers",
    "group_ids",
    "group_sizes",
    "compact",
]
