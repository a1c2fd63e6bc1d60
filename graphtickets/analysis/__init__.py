"""What do tickets share? Metrics of one graph, distances between tickets, null models, compare().

>>> import networkx as nx
>>> import graphtickets as gt
>>> gt.analysis.clustering(nx.complete_graph(4)), gt.analysis.path_length(nx.complete_graph(4)).value
(1.0, 1.0)
"""

from __future__ import annotations

from graphtickets.analysis._util import as_graph, from_networkx, gini, simple_undirected
from graphtickets.analysis.community import assortativity, communities, modularity, small_world
from graphtickets.analysis.compare import compare, pivot, summarize
from graphtickets.analysis.consensus import Consensus, consensus, poisson_binomial
from graphtickets.analysis.distances import (
    DISTANCES,
    DistanceSpec,
    align_units,
    distance,
    distance_details,
    ged_bounds,
)
from graphtickets.analysis.effective import effective_masks, effective_ticket
from graphtickets.analysis.function import (
    FUNCTION_KINDS,
    BarrierResult,
    FunctionProfile,
    agreement,
    cka_layers,
    cohen_kappa,
    error_consistency,
    functional_details,
    linear_cka,
    loss_barrier,
    profile,
    with_trained_weights,
)
from graphtickets.analysis.metrics import (
    METRICS,
    TICKET_GRAPHS,
    MetricSpec,
    metrics,
    register_metric,
    ticket_graph,
    ticket_measures,
    ticket_metrics,
)
from graphtickets.analysis.nulls import rewire_preserving_degrees, shuffle_within_layers
from graphtickets.analysis.paths import (
    PathLength,
    clustering,
    layer_path_lengths,
    local_clustering,
    path_length,
)
from graphtickets.analysis.spectral import (
    algebraic_connectivity,
    laplacian,
    laplacian_spectrum,
    ramanujan,
    ramanujan_layers,
    spectral_gap,
)
from graphtickets.analysis.stats import (
    BootstrapCI,
    MantelResult,
    bootstrap_ci,
    excess_over_siblings,
    fdr_bh,
    mantel,
)
from graphtickets.analysis.structure import (
    average_square_clustering,
    collapsed_layers,
    dead_units,
    degree_stats,
    edge_density,
    effective_density,
    effective_fraction,
    effective_mask,
    layer_degree_stats,
    layer_densities,
    log10_paths,
    square_clustering,
    weight_counts,
    weight_densities,
)

__all__ = [
    "METRICS",
    "MetricSpec",
    "metrics",
    "register_metric",
    "ticket_metrics",
    "ticket_measures",
    "ticket_graph",
    "TICKET_GRAPHS",
    "DISTANCES",
    "DistanceSpec",
    "distance",
    "distance_details",
    "ged_bounds",
    "align_units",
    "compare",
    "pivot",
    "summarize",
    "shuffle_within_layers",
    "rewire_preserving_degrees",
    "PathLength",
    "clustering",
    "local_clustering",
    "path_length",
    "layer_path_lengths",
    "laplacian",
    "laplacian_spectrum",
    "algebraic_connectivity",
    "spectral_gap",
    "ramanujan",
    "ramanujan_layers",
    "modularity",
    "communities",
    "assortativity",
    "small_world",
    "edge_density",
    "layer_densities",
    "weight_counts",
    "weight_densities",
    "effective_mask",
    "effective_fraction",
    "effective_density",
    "dead_units",
    "collapsed_layers",
    "degree_stats",
    "layer_degree_stats",
    "log10_paths",
    "square_clustering",
    "average_square_clustering",
    "as_graph",
    "from_networkx",
    "gini",
    "simple_undirected",
    "fdr_bh",
    "bootstrap_ci",
    "BootstrapCI",
    "mantel",
    "MantelResult",
    "excess_over_siblings",
    "consensus",
    "Consensus",
    "poisson_binomial",
    "effective_masks",
    "effective_ticket",
    "FUNCTION_KINDS",
    "FunctionProfile",
    "profile",
    "with_trained_weights",
    "agreement",
    "cohen_kappa",
    "error_consistency",
    "linear_cka",
    "cka_layers",
    "functional_details",
    "BarrierResult",
    "loss_barrier",
]
