"""The distance registry and its front end: :data:`DISTANCES`, :func:`register_distance`,
:func:`distance`.

A kind is registered in one of two ways (both give a :class:`DistanceSpec` whose ``fn``
compares two operands):

* a pairwise function ``fn(a, b, ctx) -> float`` (overlap, edit distance, alignment, the
  function family);
* a *feature* ``feature(x, ctx) -> numpy.ndarray`` of one operand plus a ``metric(fx, fy) ->
  float`` between two features (``spectral``, ``netlsd``, ``degree``). :func:`distance` then
  computes ``metric(feature(a), feature(b))``, and
  :func:`~graphtickets.analysis.compare` computes each ticket's features once and a pair
  costs one metric call.

The family modules (:mod:`~graphtickets.analysis.distances.overlap`,
:mod:`~graphtickets.analysis.distances.ged`,
:mod:`~graphtickets.analysis.distances.alignment`,
:mod:`~graphtickets.analysis.distances.graph`,
:mod:`~graphtickets.analysis.function`) import this module and register their kinds on
import; this module imports none of them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from torch import nn

from graphtickets._registry import Registry
from graphtickets.analysis._util import as_graph
from graphtickets.analysis.effective import effective_ticket
from graphtickets.errors import GraphticketsError
from graphtickets.graphs import layered_graph, relational_graph
from graphtickets.graphs.base import Graph
from graphtickets.ticket import Ticket

__all__ = ["Context", "DistanceSpec", "DISTANCES", "QUESTIONS", "register_distance", "distance", "effective_pair",
           "question_representatives"]

#: ``feature(x, ctx) -> array``: what a feature kind measures of one ticket or graph.
Feature = Callable[[Any, "Context"], np.ndarray]
#: ``metric(fx, fy) -> float``: the distance between two features.
Metric = Callable[[np.ndarray, np.ndarray], float]


@dataclass
class Context:
    """What a distance may need besides its operands: the model and a per-call graph cache."""

    model: nn.Module | None = None
    cache: dict[Any, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    data: Any = None

    def graph(self, x: Ticket | Graph, kind: str) -> Graph:
        """``x`` as a graph of ``kind`` (``layered`` unweighted / ``layered_count`` / ``relational``)."""
        if isinstance(x, Graph):
            if kind == "relational" and x.kind == "relational" and hasattr(x, "simple"):
                return x.simple()
            return x
        key = (id(x), kind)
        if key not in self.cache:
            if self.model is None:
                raise GraphticketsError(
                    f"this distance compares {kind} graphs; pass model=<the tickets' architecture> so "
                    f"they can be built from the tickets (or pass graphs instead of tickets)"
                )
            if kind == "relational":
                g: Graph = relational_graph(self.model, x).simple()
            elif kind == "layered_count":
                g = layered_graph(self.model, x, weights="count")
            else:
                g = layered_graph(self.model, x, weights=None)
            self.cache[key] = (x, g)  # keep x alive so its id is not reused
        return self.cache[key][1]


@dataclass(frozen=True)
class DistanceSpec:
    """One registered distance.

    Attributes
    ----------
    fn : callable
        ``fn(a, b, ctx) -> float`` on two tickets or two graphs (``ctx``: :class:`Context`).
    needs_model : bool
        Whether tickets alone are not enough (a graph must be built from them).
    default : bool
        Computed by :func:`~graphtickets.analysis.compare` when ``kinds`` is not given.
    kernel_blind : bool
        Blind by construction to positions inside a conv kernel (channel-level graphs or
        counts only): 0 between conv tickets that differ only there.
    family : str
        ``"structure"`` (masks or graphs) or ``"function"`` (what trained tickets compute).
    needs_data : bool
        Needs ``data=`` (test batches) and tickets carrying trained weights.
    feature, metric : callable or None
        For a kind declared as a feature plus a metric: ``feature(x, ctx) -> array`` of one
        operand and ``metric(fx, fy) -> float``; ``fn`` is ``metric(feature(a), feature(b))``.
        None for a pairwise kind.
    question : str or None
        Its test family, a key of :data:`QUESTIONS` (None only for a kind registered without
        one; the registry contract test refuses it).
    representative : bool
        The kind that tests its question (one per question).
    """

    fn: Callable[[Any, Any, Context], float]
    needs_model: bool
    default: bool = True
    kernel_blind: bool = False
    family: str = "structure"
    needs_data: bool = False
    feature: Feature | None = None
    metric: Metric | None = None
    question: str | None = None
    representative: bool = False


DISTANCES: Registry[DistanceSpec] = Registry("distance")

#: The questions kinds answer (their *test family*): kinds of one question measure the same thing and
#: are tested once, by the kind registered ``representative=True``. Measured on random and pruned MLP
#: tickets against the layer shuffle: ``hamming``, ``ged`` and ``ged_normalized`` give identical z
#: (affine in one another once the layer counts are fixed) and the same exceedance counts as
#: ``jaccard`` (monotone in the overlap), whose z correlates at 0.999 with theirs; ``spectral`` and
#: ``netlsd`` z correlate at 0.98, ``degree`` at 0.70-0.74 with them.
QUESTIONS: dict[str, str] = {
    "mask overlap": "which exact weights both keep (positions aligned by identity)",
    "aligned overlap": "which weights both keep once units are matched layer by layer",
    "layer allocation": "how much of each layer both keep",
    "graph shape": "the shape of the ticket's graph: spectrum, heat trace, degree distribution",
    "function": "what the trained tickets compute on test data",
}


def _of_features(feature: Feature, metric: Metric) -> Callable[[Any, Any, Context], float]:
    """The pairwise function of a feature kind (its docstring is the feature's: what the kind measures)."""

    def fn(a: Any, b: Any, ctx: Context) -> float:
        return metric(feature(a, ctx), feature(b, ctx))

    fn.__doc__ = feature.__doc__
    fn.__name__ = getattr(feature, "__name__", "fn")
    return fn


def register_distance(
    name: str, *, needs_model: bool = False, default: bool = True, kernel_blind: bool = False,
    family: str = "structure", needs_data: bool = False, metric: Metric | None = None,
    question: str | None = None, representative: bool = False,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator registering distance ``name``.

    Without ``metric`` the decorated function is the distance, ``fn(a, b, ctx) -> float``.
    With ``metric`` it is a feature, ``feature(x, ctx) -> numpy.ndarray`` of one ticket or
    graph, and the distance is ``metric(feature(a, ctx), feature(b, ctx))``.

    Parameters
    ----------
    name : str
        The registry key.
    needs_model, default, kernel_blind, needs_data : bool
    family, question, representative : str, str, bool
        See :class:`DistanceSpec` (``question``: a key of :data:`QUESTIONS`).
    metric : callable, optional
        ``metric(fx, fy) -> float`` between two features.

    Returns
    -------
    callable
        The decorator (it returns the decorated function unchanged).
    """

    if question is not None and question not in QUESTIONS:
        raise GraphticketsError(f"distance {name!r}: question must be one of {sorted(QUESTIONS)}, got {question!r}")

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        pairwise = fn if metric is None else _of_features(fn, metric)
        DISTANCES.register(name, DistanceSpec(
            fn=pairwise, needs_model=needs_model, default=default, kernel_blind=kernel_blind, family=family,
            needs_data=needs_data, feature=None if metric is None else fn, metric=metric, question=question,
            representative=representative,
        ))  # fmt: skip
        return fn

    return deco


def question_representatives(kinds: Any = None) -> dict[str, str]:
    """``{kind: the kind that tests its question}`` over ``kinds`` (default: every registered kind).

    Examples
    --------
    >>> question_representatives(["hamming", "ged", "spectral"])
    {'hamming': 'jaccard', 'ged': 'jaccard', 'spectral': 'spectral'}
    """
    rep = {s.question: k for k, s in DISTANCES.items() if s.representative}
    return {str(k): rep.get(DISTANCES.get_or_raise(k).question or "", str(k)) for k in (kinds if kinds is not None else DISTANCES)}


def distance(
    a: Ticket | Graph,
    b: Ticket | Graph,
    kind: str = "jaccard",
    *,
    model: nn.Module | None = None,
    data: Any = None,
    effective: bool = False,
    **options: Any,
) -> float:
    """Distance of ``kind`` between two tickets or two graphs.

    Parameters
    ----------
    a, b : Ticket or Graph
        Two tickets of the same architecture (same mask names and shapes) or two graphs
        (graphtickets Graphs, or networkx / igraph / PyG ``Data`` / scipy.sparse adjacency,
        read with :func:`graphtickets.analysis.as_graph`).
    kind : str
        A key of :data:`DISTANCES` (see :mod:`graphtickets.analysis.distances` for the list).
    model : nn.Module, optional
        The architecture; needed when ``kind`` compares graphs and ``a``, ``b`` are tickets,
        and with ``effective=True``. Function kinds fall back to the tickets' recorded spec.
    data : iterable of (inputs, targets), optional
        Test batches; needed by the function family (read once, in order, for both tickets).
    effective : bool, default False
        Compare the effective masks (:func:`~graphtickets.analysis.effective_ticket`: live
        weights on some input -> output path) instead of the masks; structural kinds only.
    **options
        Passed to the distance (e.g. ``weighted=False`` for ``ged``; ``conv``,
        ``cka_examples``, ``device`` for the function family).

    Returns
    -------
    float
        ``>= 0``; 0 for ``a`` with itself.

    Examples
    --------
    >>> import torch
    >>> from graphtickets import Ticket
    >>> a = Ticket({"w": torch.tensor([True, True, False, False])})
    >>> b = Ticket({"w": torch.tensor([True, False, True, False])})
    >>> distance(a, b, "jaccard"), distance(a, b, "hamming"), distance(a, b, "ged")
    (0.6666666666666667, 0.5, 2.0)
    """
    spec = DISTANCES.get_or_raise(kind)
    if isinstance(a, Ticket) != isinstance(b, Ticket):
        raise GraphticketsError("compare two tickets or two graphs, not a ticket with a graph")
    if not isinstance(a, (Ticket, Graph)):  # networkx, igraph, PyG Data, scipy.sparse: as Graphs
        a, b = as_graph(a), as_graph(b)
    if effective:
        a, b = effective_pair(a, b, model, spec)
    return float(spec.fn(a, b, Context(model=model, options=options, data=data)))


def effective_pair(a: Any, b: Any, model: nn.Module | None, spec: DistanceSpec) -> tuple[Ticket, Ticket]:
    """``a`` and ``b`` as effective tickets, for ``effective=True`` (clear errors otherwise)."""
    if spec.family != "structure":
        raise GraphticketsError(
            "effective=True applies to structural (mask and graph) distances; functional distances already "
            "compare what the tickets compute"
        )
    if not isinstance(a, Ticket) or model is None:
        raise GraphticketsError("effective=True takes tickets and model=<their architecture> (paths are traced on it)")
    return effective_ticket(a, model), effective_ticket(b, model)
