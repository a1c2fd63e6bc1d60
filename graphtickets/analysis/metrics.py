"""The metric registry and ``metrics(graph)``: every metric that applies to a graph, as floats.

Each entry of :data:`METRICS` is a :class:`MetricSpec`: a function ``graph -> dict[str,
float]``, a predicate saying which graphs it applies to, and whether :func:`metrics` runs it
by default. :func:`ticket_measures` is the per-ticket metric table: it builds a ticket's
layered, relational and per-layer bipartite graphs (:func:`ticket_graph`) and measures each;
:func:`ticket_metrics`, :func:`~graphtickets.analysis.summarize` and the study's cells read
it. The one-function-per-metric API lives in the family modules
(:mod:`~graphtickets.analysis.paths`, :mod:`~graphtickets.analysis.structure`,
:mod:`~graphtickets.analysis.spectral`, :mod:`~graphtickets.analysis.community`).

Examples
--------
>>> import networkx as nx
>>> from graphtickets.analysis import metrics
>>> m = metrics(nx.complete_graph(5))
>>> m["clustering"], m["path_length"]
(1.0, 1.0)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, overload

import numpy as np
from torch import nn

from graphtickets._registry import Registry
from graphtickets.analysis import community, geometry, paths, spectral, structure
from graphtickets.analysis._util import as_graph
from graphtickets.errors import GraphticketsError
from graphtickets.graphs import layer_bipartite, layered_graph, relational_graph
from graphtickets.graphs.base import Graph
from graphtickets.ticket import Ticket, prunable

__all__ = [
    "MetricSpec", "METRICS", "metrics", "register_metric", "ticket_metrics", "ticket_measures", "ticket_graph",
    "TICKET_GRAPHS",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MetricSpec:
    """One registered metric family.

    Attributes
    ----------
    fn : callable
        ``fn(graph) -> dict[str, float]`` (keys prefixed by the metric's name where there are
        several).
    applies : callable
        ``applies(graph) -> bool``: whether the metric means something on this graph.
    default : bool
        Run by :func:`metrics` unless asked for by name (False for costly ones).
    keys : tuple of str
        The keys ``fn`` always returns, first and in this order (stable, for tables).
    prefixes : tuple of str
        Prefixes of the further, graph-dependent keys ``fn`` may return after ``keys``
        (one per layer, e.g. ``"weight_density/"`` + parameter name).
    """

    fn: Callable[[Graph], dict[str, float]]
    applies: Callable[[Graph], bool]
    default: bool
    keys: tuple[str, ...]
    prefixes: tuple[str, ...] = ()


METRICS: Registry[MetricSpec] = Registry("metric")


def register_metric(
    name: str, applies: Callable[[Graph], bool], keys: Iterable[str], *, default: bool = True, prefixes: Iterable[str] = ()
) -> Callable[[Callable[[Graph], dict[str, float]]], Callable[[Graph], dict[str, float]]]:
    """Decorator registering ``fn(graph) -> dict[str, float]`` as metric ``name``.

    Parameters
    ----------
    name : str
        The registry key.
    applies : callable
        ``applies(graph) -> bool``.
    keys : iterable of str
        The keys ``fn`` always returns, in order.
    default : bool, default True
        Run by :func:`metrics` without ``names``.
    prefixes : iterable of str
        Prefixes of the per-layer keys ``fn`` may add after ``keys``.

    Returns
    -------
    callable
        The decorator (it returns ``fn`` unchanged).
    """

    def deco(fn: Callable[[Graph], dict[str, float]]) -> Callable[[Graph], dict[str, float]]:
        METRICS.register(name, MetricSpec(fn=fn, applies=applies, default=default, keys=tuple(keys), prefixes=tuple(prefixes)))
        return fn

    return deco


def _any(g: Graph) -> bool:
    return True


def _undirected(g: Graph) -> bool:
    return not g.directed


def _unipartite(g: Graph) -> bool:
    return not g.directed and g.kind != "bipartite"


def _directed(g: Graph) -> bool:
    return g.directed


def _layered(g: Graph) -> bool:
    ep = getattr(g, "edge_params", None)
    return g.directed and ep is not None and len(ep) > 0


def _has_roles(g: Graph) -> bool:
    return g.directed and "role" in g.nodes


def _bipartite(g: Graph) -> bool:
    return hasattr(g, "biadjacency")


@register_metric("size", _any, ("n_nodes", "n_edges", "edge_density"))
def _size(g: Graph) -> dict[str, float]:
    return {"n_nodes": float(g.n_nodes), "n_edges": float(g.n_edges), "edge_density": structure.edge_density(g)}


@register_metric("degree", _any, ("degree_mean", "degree_std", "degree_gini"))
def _degree(g: Graph) -> dict[str, float]:
    return structure.degree_stats(g)


@register_metric("clustering", _unipartite, ("clustering",))
def _clustering(g: Graph) -> dict[str, float]:
    return {"clustering": paths.clustering(g)}


@register_metric(
    "path_length",
    _undirected,
    ("path_length", "path_length_connected_fraction", "path_length_exact", "path_length_n_sources", "path_length_stderr"),
)
def _path_length(g: Graph) -> dict[str, float]:
    r = paths.path_length(g)
    return {"path_length": r.value, "path_length_connected_fraction": r.connected_fraction,
            "path_length_exact": float(r.exact), "path_length_n_sources": float(r.n_sources),
            "path_length_stderr": r.stderr}  # fmt: skip


@register_metric("spectral", _undirected, ("algebraic_connectivity", "spectral_gap"))
def _spectral(g: Graph) -> dict[str, float]:
    return {"algebraic_connectivity": spectral.algebraic_connectivity(g), "spectral_gap": spectral.spectral_gap(g)}


@register_metric("modularity", _unipartite, ("modularity",))
def _modularity(g: Graph) -> dict[str, float]:
    return {"modularity": community.modularity(g, seed=0)}


@register_metric("assortativity", _any, ("assortativity",))
def _assortativity(g: Graph) -> dict[str, float]:
    return {"assortativity": community.assortativity(g)}


@register_metric("small_world", _unipartite, ("sigma", "omega"), default=False)
def _small_world(g: Graph) -> dict[str, float]:
    r = community.small_world(g, seed=0)
    return {"sigma": r["sigma"], "omega": r["omega"]}


@register_metric("square_clustering", lambda g: g.directed or g.kind == "bipartite", ("square_clustering",))
def _square(g: Graph) -> dict[str, float]:
    return {"square_clustering": structure.average_square_clustering(g)}


@register_metric("log10_paths", _directed, ("log10_paths",))
def _paths(g: Graph) -> dict[str, float]:
    return {"log10_paths": structure.log10_paths(g)}


@register_metric("densities", _layered, ("weight_density", "effective_density"), prefixes=("weight_density/",))
def _densities(g: Graph) -> dict[str, float]:
    return structure.weight_densities(g)


@register_metric("effective", _directed, ("effective_fraction",))
def _effective(g: Graph) -> dict[str, float]:
    return {"effective_fraction": structure.effective_fraction(g)}


@register_metric("dead_units", _directed, ("dead", "dead_fraction", "inactive", "inactive_fraction"))
def _dead(g: Graph) -> dict[str, float]:
    return structure.dead_units(g)


@register_metric("live_units", _layered, ("live_units", "live_fraction"), prefixes=("live_units/",))
def _live_units(g: Graph) -> dict[str, float]:
    """Hidden units on some input -> output path (:func:`~graphtickets.analysis.units.live_units`):
    ``live_units`` (count), ``live_fraction`` (of the hidden units) and ``live_units/<layer>`` per
    hidden layer (network order)."""
    on_path, _ = structure.effective_mask(g)
    hidden = (g.nodes["role"].astype(str) == "hidden").to_numpy()
    layer = g.nodes["layer"].astype(str).to_numpy()
    live = np.asarray(on_path, dtype=bool) & hidden
    out = {"live_units": float(live.sum()), "live_fraction": float(live.sum() / max(int(hidden.sum()), 1))}
    for name in dict.fromkeys(layer[hidden]):
        out[f"live_units/{name}"] = float((live & (layer == name)).sum())
    return out


@register_metric("collapsed_layers", _layered, ("collapsed_layers",))
def _collapsed(g: Graph) -> dict[str, float]:
    return {"collapsed_layers": float(len(structure.collapsed_layers(g)))}


@register_metric("layer_degree", _directed, ("layer_in_gini", "layer_out_gini"))
def _layer_degree(g: Graph) -> dict[str, float]:
    t = structure.layer_degree_stats(g)
    return {"layer_in_gini": float(t["in_gini"].mean()), "layer_out_gini": float(t["out_gini"].mean())}


@register_metric("layer_path_length", _has_roles, ("io_path_length", "io_connected_fraction"))
def _layer_paths(g: Graph) -> dict[str, float]:
    t = paths.layer_path_lengths(g)
    outs = g.nodes.loc[g.nodes["role"].astype(str) == "output", "layer"].astype(str).unique()
    row = t[t["layer"].isin(outs)]
    if row.empty:
        return {"io_path_length": float("nan"), "io_connected_fraction": float("nan")}
    return {"io_path_length": float(row["mean"].mean()), "io_connected_fraction": float(row["connected_fraction"].mean())}


@register_metric(
    "ramanujan",
    _bipartite,
    ("mu0", "mu_hat", "delta_s", "delta_r", "weighted_gap", "disconnected"),
)
def _ramanujan(g: Graph) -> dict[str, float]:
    r = spectral.ramanujan(g)
    return {k: float(r[k]) for k in ("mu0", "mu_hat", "delta_s", "delta_r", "weighted_gap", "disconnected")}


def _reads_ordered_input(g: Graph) -> bool:
    return geometry.graph_first_layer(g) is not None


@register_metric("locality", _reads_ordered_input, ("locality", "locality_span", "locality_pairwise"))
def _locality(g: Graph) -> dict[str, float]:
    """Input locality of the Linear first layer (:func:`~graphtickets.analysis.locality`); NaN
    when no unit keeps two inputs. A graph whose ``meta['ordered_inputs']`` is False is skipped."""
    layer = geometry.graph_first_layer(g)
    return geometry.locality_of_mask(layer).as_dict() if layer is not None else {"locality": float("nan"),
            "locality_span": float("nan"), "locality_pairwise": float("nan")}  # fmt: skip


def metrics(graph: Any, *, names: Iterable[str] | None = None) -> dict[str, float]:
    """Every metric of :data:`METRICS` that applies to ``graph``, flattened into floats.

    Parameters
    ----------
    graph : Graph or networkx graph
        A layered graph gets the DAG metrics (square clustering, path counts, effective
        fraction, dead units, collapsed layers, per-layer degrees, input->output path length)
        and, when it was built from a ticket, the ticket's densities;
        a relational (undirected) graph gets clustering, path length, spectrum, modularity,
        assortativity (You et al. 2020); a bipartite layer graph its Ramanujan gaps.
    names : iterable of str, optional
        Metric names to run (also non-default ones such as ``"small_world"``); default:
        every default metric that applies.

    Returns
    -------
    dict[str, float]
        Relational graphs are measured without self-loops (You et al.). Densities, which are
        easy to confuse: ``edge_density`` is the graph-theoretic density (edges / node
        pairs); on layered graphs ``weight_density`` is the ticket's density (live / all
        weights of its Linear/Conv layers), ``weight_density/<param>`` the same per layer,
        ``effective_fraction`` the share of *live* weights on some input -> output path and
        ``effective_density`` Vysogorets & Kempe's effective density (effective / *all*
        weights, ``= effective_fraction * weight_density``). A conv layer's size is only
        known to a graph that records it (see :func:`~graphtickets.analysis.weight_counts`;
        :func:`ticket_metrics` does), else its densities are NaN.

    Examples
    --------
    >>> import graphtickets as gt
    >>> m = gt.models.build("mlp", in_shape=(8,), num_classes=3, widths=(16, 16), seed=0)
    >>> t = gt.pruning.prune(m, "random", density=0.25, seed=0)
    >>> out = metrics(gt.graphs.layered_graph(m, t))
    >>> round(out["weight_density"], 4) == round(t.density, 4), out["effective_density"] <= out["weight_density"]
    (True, True)

    References
    ----------
    You et al. (2020); Vysogorets & Kempe (2023); Hoang et al. (2023) -- see each metric.
    """
    g = as_graph(graph)
    if g.kind == "relational" and hasattr(g, "simple"):
        g = g.simple()  # You et al. measure the graph without self-loops
    out: dict[str, float] = {}
    if names is None:
        chosen = [n for n, s in METRICS.items() if s.default and s.applies(g)]
    else:
        chosen = list(names)
        for n in chosen:
            METRICS.get_or_raise(n)
    for name in chosen:
        spec = METRICS[name]
        for k, v in spec.fn(g).items():
            out[k] = float(v) if v is not None else float(np.nan)
    return out


#: The graphs of a ticket that :func:`ticket_measures` measures, in this order.
TICKET_GRAPHS = ("layered", "relational", "bipartite")


@overload
def ticket_graph(ticket: Ticket | None, model: nn.Module, graph: Literal["layered", "relational"] = ...) -> Graph: ...
@overload
def ticket_graph(ticket: Ticket | None, model: nn.Module, graph: Literal["bipartite"]) -> dict[str, Graph]: ...
@overload
def ticket_graph(ticket: Ticket | None, model: nn.Module, graph: str) -> Graph | dict[str, Graph]: ...
def ticket_graph(ticket: Ticket | None, model: nn.Module, graph: str = "layered") -> Graph | dict[str, Graph]:
    """One of the graphs of a ticket on ``model``, as :func:`ticket_measures` measures it.

    Parameters
    ----------
    ticket : Ticket or None
        None: the dense network.
    model : nn.Module
    graph : {"layered", "relational", "bipartite"}
        The layered graph (``weights="count"``, with each weight layer's size recorded in
        ``meta["param_numel"]`` for the densities), the relational graph (You et al.), or the
        per-layer bipartite graphs (rolled: conv channels; ``weights="count"``) as a dict.

    Returns
    -------
    Graph or dict[str, Graph]
        A dict ``{parameter: BipartiteGraph}`` for ``"bipartite"``.

    Raises
    ------
    GraphticketsError
        For another ``graph``, or when the relational graph cannot be built (fewer than three
        prunable layers).
    """
    if graph == "layered":
        g: Graph = layered_graph(model, ticket, weights="count")
        g.meta["param_numel"] = {n: p.numel() for n, p in prunable(model).items()}  # conv sizes for the densities
        return g
    if graph == "relational":
        return relational_graph(model, ticket)
    if graph == "bipartite":
        return dict(layer_bipartite(model, ticket, rolled=True, weights="count"))
    raise GraphticketsError(f"graph must be one of {', '.join(map(repr, TICKET_GRAPHS))}, got {graph!r}")


def _layer_mean(per: list[dict[str, float]]) -> dict[str, float]:
    """Each key's mean over the layers' metrics, NaNs ignored (NaN where no layer has a finite value)."""
    keys = sorted(set().union(*per)) if per else []
    return {
        k: float(np.nanmean([p.get(k, np.nan) for p in per])) if any(np.isfinite(p.get(k, np.nan)) for p in per) else float("nan")
        for k in keys
    }


def ticket_measures(
    ticket: Ticket | None,
    model: nn.Module,
    *,
    graphs: Iterable[str] = TICKET_GRAPHS,
    names: Mapping[str, Iterable[str] | None] | None = None,
    built: Mapping[str, Any] | None = None,
    strict: bool = False,
) -> dict[str, dict[str, float]]:
    """:func:`metrics` of each of a ticket's graphs: the per-ticket metric table.

    :func:`ticket_metrics`, :func:`~graphtickets.analysis.summarize` and the study's cells
    all measure tickets through this function.

    Parameters
    ----------
    ticket : Ticket or None
    model : nn.Module
    graphs : iterable of str
        Which graphs (:data:`TICKET_GRAPHS`; built with :func:`ticket_graph`).
    names : mapping, optional
        ``{graph: metric names}`` (as :func:`metrics`' ``names``); a graph not in it gets
        every default metric that applies.
    built : mapping, optional
        ``{graph: graph already built by ticket_graph}``, reused instead of built again.
    strict : bool, default False
        Raise when a graph cannot be built; by default it is left out (and logged).

    Returns
    -------
    dict[str, dict[str, float]]
        ``{graph: {metric: value}}`` in the order of ``graphs``; ``"bipartite"`` holds the
        mean over layers of each metric (NaNs ignored).

    Examples
    --------
    >>> import graphtickets as gt
    >>> m = gt.models.build("mlp", in_shape=(8,), num_classes=3, widths=(16, 16), seed=0)
    >>> t = gt.pruning.prune(m, "random", density=0.25, seed=0)
    >>> out = ticket_measures(t, m, graphs=("layered", "bipartite"), names={"layered": ["size"]})
    >>> list(out), list(out["layered"])
    (['layered', 'bipartite'], ['n_nodes', 'n_edges', 'edge_density'])
    """
    names = dict(names or {})
    out: dict[str, dict[str, float]] = {}
    for kind in graphs:
        try:
            g = built[kind] if built is not None and kind in built else ticket_graph(ticket, model, kind)
        except GraphticketsError as exc:  # e.g. no relational graph with fewer than three prunable layers
            if strict or kind not in TICKET_GRAPHS:
                raise
            log.info("no %s graph: %s", kind, exc)
            continue
        chosen = names.get(kind)
        if isinstance(g, dict):
            out[kind] = _layer_mean([metrics(layer, names=chosen) for layer in g.values()])
        else:
            out[kind] = metrics(g, names=chosen)
    return out


def ticket_metrics(ticket: Any, model: Any, *, graph: str = "layered", names: Iterable[str] | None = None) -> dict[str, float]:
    """:func:`metrics` of a ticket's graph built on ``model`` (one graph of :func:`ticket_measures`).

    Parameters
    ----------
    ticket : Ticket
    model : nn.Module
    graph : {"layered", "relational", "bipartite"}
        The layered graph (``weights="count"``: DAG metrics, effective fraction, dead units),
        the relational graph (You et al.: clustering, path length, spectrum) or the per-layer
        bipartite graphs (the mean over layers).
    names : iterable of str, optional
        As in :func:`metrics`.

    Examples
    --------
    >>> import graphtickets as gt
    >>> m = gt.models.build("mlp", in_shape=(8,), num_classes=3, widths=(16, 16, 16), seed=0)
    >>> ticket_metrics(None, m, graph="relational")["clustering"]
    1.0
    """
    return ticket_measures(ticket, model, graphs=(graph,), names={graph: names}, strict=True)[graph]
