"""What do tickets share? Metrics of one graph, distances between tickets, null models, compare().

>>> import networkx as nx
>>> import graphtickets as gt
>>> gt.analysis.clustering(nx.complete_graph(4)), gt.analysis.path_length(nx.complete_graph(4)).value
(1.0, 1.0)

What lives where
----------------
======================  ======================================================================
``metrics``             the metric registry :data:`METRICS`, ``metrics(graph)`` and the
                        per-ticket table :func:`ticket_measures` (``ticket_metrics``,
                        ``summarize`` and the study read it)
``paths``               clustering and path lengths (You et al.)
``structure``           densities, effective density, dead units, layer collapse, path counts,
                        degrees, square clustering of layered graphs
``spectral``            Laplacian spectra, spectral gap, NetLSD heat trace, Ramanujan gaps
``community``           modularity, communities, assortativity, small-world coefficients
``distances/``          the distance registry :data:`DISTANCES` and ``distance()``, one module
                        per family: ``overlap``, ``ged``, ``alignment``, ``features``
``function``            the function family of distances (agreement, kappa, CKA), loss barrier
``stability``           stability to SGD noise: two trainings, the error barrier between them
``compare``             ``compare()`` many tickets (with nulls), ``pivot``, ``summarize``
``consensus``           how many tickets keep each weight, against shuffled masks
``nulls``               null tickets: shuffled within layers, rewired keeping degrees
``geometry``            input geometry of the first layer: locality, fan-out per position,
                        receptive-field centres
``units``               live hidden units, and their overlap between tickets (hypergeometric)
``allocation``          shared allocation: Kendall's W of layer-density profiles, permutation test
``ladder``              the ladder of nulls (global, layer, fan-in, degrees) per pair and kind,
                        and the share of the likeness each level explains
``effective``           effective masks (live weights on some input -> output path)
``stats``               multiple testing, bootstrap, Mantel test, excess over siblings
``correlation``         joint-permutation Mantel over groups, partial (rank) correlation
``inference``           empirical p-values against null draws (fixed or sequential), the
                        init seed as the unit (joint within-seed test, Fisher/Stouffer over
                        seeds), t intervals
``_util``               reading graphs from networkx / igraph / PyG / scipy; simple adjacencies
======================  ======================================================================

Imports go one way: ``ticket``, ``pruning`` and ``graphs`` <- ``analysis`` <- ``study``, ``cli``.
Nothing here imports ``graphtickets.study`` or the ``graphtickets`` front end; inside the
package, ``compare`` and ``consensus`` build on the registries, metrics and nulls, never the
other way round. Each family module's ``__all__`` is what this package exports from it.
"""

from __future__ import annotations

from graphtickets.analysis import allocation as _allocation
from graphtickets.analysis import community as _community
from graphtickets.analysis import consensus as _consensus
from graphtickets.analysis import correlation as _correlation
from graphtickets.analysis import effective as _effective
from graphtickets.analysis import function as _function
from graphtickets.analysis import geometry as _geometry
from graphtickets.analysis import inference as _inference
from graphtickets.analysis import ladder as _ladder
from graphtickets.analysis import metrics as _metrics
from graphtickets.analysis import spectral as _spectral
from graphtickets.analysis import stability as _stability
from graphtickets.analysis import stats as _stats
from graphtickets.analysis import structure as _structure
from graphtickets.analysis import units as _units
from graphtickets.analysis._util import as_graph, from_networkx, gini, simple_undirected
from graphtickets.analysis.allocation import *  # noqa: F403
from graphtickets.analysis.community import *  # noqa: F403
from graphtickets.analysis.compare import compare, compare_joint, pivot, summarize
from graphtickets.analysis.consensus import *  # noqa: F403
from graphtickets.analysis.correlation import *  # noqa: F403
from graphtickets.analysis.distances import (
    DISTANCES,
    QUESTIONS,
    DistanceSpec,
    align_units,
    distance,
    distance_details,
    ged_bounds,
    question_representatives,
)
from graphtickets.analysis.effective import *  # noqa: F403
from graphtickets.analysis.function import *  # noqa: F403
from graphtickets.analysis.geometry import *  # noqa: F403
from graphtickets.analysis.inference import *  # noqa: F403
from graphtickets.analysis.ladder import *  # noqa: F403
from graphtickets.analysis.metrics import *  # noqa: F403
from graphtickets.analysis.nulls import rewire_preserving_degrees, shuffle_within_layers
from graphtickets.analysis.paths import (
    PathLength,
    clustering,
    layer_path_lengths,
    local_clustering,
    path_length,
)
from graphtickets.analysis.spectral import *  # noqa: F403
from graphtickets.analysis.stability import *  # noqa: F403
from graphtickets.analysis.stats import *  # noqa: F403
from graphtickets.analysis.structure import *  # noqa: F403
from graphtickets.analysis.units import *  # noqa: F403

__all__ = [
    "DISTANCES", "QUESTIONS", "question_representatives", "DistanceSpec", "distance", "distance_details", "ged_bounds", "align_units",
    "compare", "compare_joint", "pivot", "summarize",
    "shuffle_within_layers", "rewire_preserving_degrees",
    "PathLength", "clustering", "local_clustering", "path_length", "layer_path_lengths",
    "as_graph", "from_networkx", "gini", "simple_undirected",
]  # fmt: skip
__all__ += _metrics.__all__
__all__ += _spectral.__all__
__all__ += _community.__all__
__all__ += _structure.__all__
__all__ += _stats.__all__
__all__ += _inference.__all__
__all__ += _correlation.__all__
__all__ += _consensus.__all__
__all__ += _effective.__all__
__all__ += _function.__all__
__all__ += _stability.__all__
__all__ += _units.__all__
__all__ += _allocation.__all__
__all__ += _geometry.__all__
__all__ += _ladder.__all__
