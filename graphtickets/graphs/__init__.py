"""Tickets as graphs: layered, relational (You et al. 2020) and per-layer bipartite graphs."""

from __future__ import annotations

from graphtickets.graphs.base import Graph, edge_arrays, from_edges

__all__ = ["Graph", "edge_arrays", "from_edges"]
