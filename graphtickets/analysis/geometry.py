"""Input geometry of a ticket's first layer: are a unit's kept inputs close together?

On ordered inputs (the 40 positions of an MNIST-1D sequence, the pixels of an image) a
data-driven ticket can keep *local* inputs per unit -- neighbouring positions, as a
convolution would -- while a data-free one spreads them like a random draw (Greydanus 2020;
Pellegrini & Biroli 2022 find such local receptive fields emerge in pruned fully-connected
networks). What is measured, per first-layer unit with at least two kept inputs:

* **sequences** (a Linear layer on ``(L,)`` or ``(C, L)`` inputs): the mean gap between
  consecutive kept positions (``span / (k - 1)`` for ``k`` kept inputs) and the span
  ``max - min``; also the mean pairwise distance ``|i - j|``;
* **images** (a Linear layer on flattened ``(C, H, W)`` inputs): the mean pairwise Euclidean
  distance between the kept pixels;
* **conv first layers**: each (output channel, input channel) filter is a unit and its
  kernel taps the positions (a 1-D kernel: gap and span of the kept taps; a 2-D kernel:
  their mean pairwise distance) -- whether a filter's kept taps cluster inside its kernel.

Each is compared with the same unit's kept inputs shuffled uniformly over its inputs (the
per-unit shuffle null, which keeps the unit's fan-in): for one channel the null means are
exact (``E[span] = (k - 1)(L + 1)/(k + 1)`` for ``k`` of ``L`` positions; a pair of distinct
inputs is uniform for the pairwise distance), with channels the gap and span nulls are
averaged over seeded shuffles. Over the units that keep two inputs or more (``< 1`` local,
``~ 1`` as random, ``> 1`` spread out):

* ``locality``: the mean over units of the unit's observed over its null mean gap (a unit's
  gap ratio equals its span ratio, both having ``k - 1`` in the denominator); on images and
  2-D kernels the pairwise-distance ratio;
* ``locality_span``: the pooled span ratio, ``sum(span) / sum(null span)`` (every kept gap
  weighs the same: units with wide spans count more);
* ``locality_pairwise``: mean pairwise distance over its null mean (the null is the same
  for every unit, so pooled and per-unit means agree).

References
----------
.. [1] S. Greydanus, "Scaling down Deep Learning" (MNIST-1D), arXiv:2011.14439, 2020.
.. [2] F. Pellegrini, G. Biroli, "Neural network pruning denoises the features and makes local
   connectivity emerge in visual tasks", ICML 2022.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.stats
from torch import nn

from graphtickets.errors import GraphticketsError
from graphtickets.graphs.base import Graph
from graphtickets.pruning.randomize import SeedLike, draw_fan_in, seed_sequence
from graphtickets.ticket import Ticket

__all__ = ["Locality", "FirstLayer", "first_layer", "locality", "input_fanout", "fanout_agreement",
           "receptive_field_centres", "locality_of_mask", "graph_first_layer"]  # fmt: skip

#: Shuffles per unit for the null of the gap and span when inputs have several channels.
NULL_SHUFFLES = 200


@dataclass
class FirstLayer:
    """The first layer of a ticket as units x ordered inputs.

    Attributes
    ----------
    param : str
        Its parameter name.
    mask : numpy.ndarray
        Bool ``(units, inputs)``: a Linear layer's ``(out, in)`` mask; a conv layer's
        ``(out * in_channels, prod(kernel))`` (one unit per filter).
    grid : tuple of int
        The positions' shape: ``(L,)``, ``(H, W)`` or the kernel's.
    channels : int
        Inputs per position (a Linear layer on ``(C, L)`` / ``(C, H, W)``: C; conv: 1).
    kind : str
        ``"sequence"``, ``"image"`` or ``"kernel"``.
    """

    param: str
    mask: np.ndarray
    grid: tuple[int, ...]
    channels: int
    kind: str

    def coords(self) -> np.ndarray:
        """``(inputs, len(grid))`` coordinates of every input (channel-major, as torch flattens)."""
        pos = np.stack(np.unravel_index(np.arange(int(np.prod(self.grid))), self.grid), axis=1).astype(np.float64)
        return np.tile(pos, (self.channels, 1))


@dataclass
class Locality:
    """:func:`locality`'s result (``value`` NaN and ``reason`` set when skipped)."""

    value: float
    span: float = float("nan")
    pairwise: float = float("nan")
    kind: str = ""
    units: pd.DataFrame = field(default_factory=pd.DataFrame)
    reason: str | None = None

    def as_dict(self) -> dict[str, float]:
        return {"locality": self.value, "locality_span": self.span, "locality_pairwise": self.pairwise}


def _grid_of(in_shape: Sequence[int]) -> tuple[tuple[int, ...], int, str]:
    shape = tuple(int(x) for x in in_shape)
    if len(shape) == 1:
        return shape, 1, "sequence"
    if len(shape) == 2:
        return shape[1:], shape[0], "sequence"
    if len(shape) == 3:
        return shape[1:], shape[0], "image"
    raise GraphticketsError(f"input geometry reads (L,), (C, L) or (C, H, W) inputs; got in_shape {shape}")


def first_layer(model: nn.Module, ticket: Ticket, *, in_shape: Sequence[int] | None = None) -> FirstLayer:
    """The layer reading the input: Linear (positions from ``in_shape``) or conv (kernel taps).

    ``in_shape`` defaults to ``model.gt_spec["in_shape"]``, else the ticket's recorded model
    spec. The first prunable parameter in the model's order is taken to read the input.
    """
    ticket.check(model)
    spec = getattr(model, "gt_spec", None) or ticket.config.get("model") or {}
    shape = in_shape if in_shape is not None else spec.get("in_shape") if isinstance(spec, dict) else None
    owners = {f"{mn}.{pn}" if mn else pn: mod for mn, mod in model.named_modules() for pn, _ in mod.named_parameters(recurse=False)}
    name = next((n for n in owners if n in ticket.masks), None)
    if name is None:
        raise GraphticketsError("the ticket masks no parameter of this model")
    mod, m = owners[name], ticket.masks[name].numpy()
    if isinstance(mod, (nn.Conv1d, nn.Conv2d)):
        return FirstLayer(name, m.reshape(m.shape[0] * m.shape[1], -1), tuple(m.shape[2:]), 1, "kernel")
    if not isinstance(mod, nn.Linear):
        raise GraphticketsError(f"input geometry reads a Linear or Conv1d/2d first layer; {name!r} is {type(mod).__name__}")
    if shape is None:
        raise GraphticketsError("input geometry needs the input shape: pass in_shape=... (or build the model with gt.models.build)")
    grid, channels, kind = _grid_of(shape)
    if int(np.prod(grid)) * channels != m.shape[1]:
        raise GraphticketsError(f"in_shape {tuple(shape)} has {int(np.prod(grid)) * channels} inputs but {name!r} reads {m.shape[1]}")
    return FirstLayer(name, m.astype(bool), grid, channels, kind)


def _span(mask: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Span ``max - min`` of the kept positions of each row (last axis), NaN below two kept."""
    hi = np.where(mask, pos, -np.inf).max(-1)
    lo = np.where(mask, pos, np.inf).min(-1)
    return np.where(mask.sum(-1) >= 2, hi - lo, np.nan)


def _pairwise(mask: np.ndarray, dist: np.ndarray) -> np.ndarray:
    """Mean distance over the pairs of kept inputs of each row (NaN below two kept)."""
    m = mask.astype(np.float64)
    k = m.sum(1)
    tot = np.einsum("uf,uf->u", m @ dist, m) / 2.0
    return np.where(k >= 2, tot / np.maximum(k * (k - 1) / 2.0, 1.0), np.nan)


def _span_null(layer: FirstLayer, k: np.ndarray, pos: np.ndarray, seed: SeedLike) -> np.ndarray:
    """Null mean span per unit under the per-unit shuffle: exact for one channel, else sampled."""
    if layer.channels == 1:
        length = float(layer.grid[0])
        return np.where(k >= 2, (k - 1) * (length + 1) / (k + 1), np.nan)
    draws = draw_fan_in(layer.mask, NULL_SHUFFLES, np.random.default_rng(seed_sequence(seed)))
    return np.nanmean(np.where(k >= 2, _span(draws, pos), np.nan), axis=0)


def locality_of_mask(layer: FirstLayer, *, seed: SeedLike = 0) -> Locality:
    """:func:`locality` of a :class:`FirstLayer` (see the module docstring for the definitions)."""
    coords = layer.coords()
    k = layer.mask.sum(1).astype(np.float64)
    two = k >= 2
    dist = np.sqrt(((coords[:, None, :] - coords[None, :, :]) ** 2).sum(-1))
    n_in = dist.shape[0]
    pair_null = dist.sum() / (n_in * (n_in - 1)) if n_in > 1 else float("nan")
    pw = _pairwise(layer.mask, dist)
    units = pd.DataFrame({"unit": np.arange(layer.mask.shape[0]), "n_kept": k.astype(int), "pairwise": pw,
                          "pairwise_null": np.where(two, pair_null, np.nan)})  # fmt: skip
    if not two.any():
        return Locality(float("nan"), kind=layer.kind, units=units, reason="no unit keeps two inputs or more")
    pairwise = float(np.nanmean(pw) / pair_null)
    if len(layer.grid) == 1:
        pos = coords[:, 0]
        span = _span(layer.mask, pos)
        span_null = _span_null(layer, k, pos, seed)
        units = units.assign(span=span, span_null=span_null, gap=span / np.maximum(k - 1, 1),
                             gap_null=span_null / np.maximum(k - 1, 1))  # fmt: skip
        gap = float(np.mean(span[two] / span_null[two]))  # per unit, gap ratio = span ratio (same k)
        return Locality(gap, float(np.sum(span[two]) / np.sum(span_null[two])), pairwise, layer.kind, units)
    return Locality(pairwise, float("nan"), pairwise, layer.kind, units)


def _ordered(ticket: Ticket, ordered: bool | None) -> str | None:
    """Why the inputs have no order (None: they have one)."""
    if ordered is not None:
        return None if ordered else "inputs without order (ordered=False)"
    ds = ticket.config.get("dataset")
    if isinstance(ds, Mapping):
        if ds.get("shuffle_seq") or ds.get("ordered_inputs") is False:
            return f"inputs without order (dataset {dict(ds)} permutes the positions)"
        ds = ds.get("name")
    if isinstance(ds, str):
        from graphtickets import data

        try:
            info = data.info(ds)
        except GraphticketsError:
            return None
        if getattr(info, "ordered_inputs", True) is False:
            return f"inputs without order (dataset {ds!r})"
    return None


def locality(model: nn.Module, ticket: Ticket, *, in_shape: Sequence[int] | None = None, ordered: bool | None = None,
             seed: SeedLike = 0) -> Locality:  # fmt: skip
    """How local each first-layer unit's kept inputs are, against the per-unit shuffle.

    Parameters
    ----------
    model : nn.Module
    ticket : Ticket
    in_shape : sequence of int, optional
        One input's shape (default: the model's spec).
    ordered : bool, optional
        Whether input positions mean something. Default: from the ticket's dataset (a
        dataset whose :class:`~graphtickets.data.DatasetInfo` says ``ordered_inputs=False``,
        or a variant with ``shuffle_seq``, has none); unordered inputs are skipped.
    seed : int
        Of the sampled nulls (several input channels only).

    Returns
    -------
    Locality
        ``value`` (sequences and 1-D kernels: the mean gap ratio; images and 2-D kernels: the
        mean pairwise distance ratio), ``span``, ``pairwise``, ``kind``, ``units`` (per unit:
        ``n_kept``, ``gap``, ``gap_null``, ``span``, ``span_null``, ``pairwise``,
        ``pairwise_null``) and ``reason`` (why it was skipped; then ``value`` is NaN).

    Examples
    --------
    >>> import graphtickets as gt, torch
    >>> m = gt.models.build("mlp", in_shape=(10,), num_classes=2, widths=(3,), seed=0)
    >>> w = torch.zeros(3, 10, dtype=torch.bool); w[:, 2:5] = True   # three neighbours each
    >>> t = gt.Ticket({"fc1.weight": w, "classifier.weight": torch.ones(2, 3, dtype=torch.bool)})
    >>> round(locality(m, t).value, 3)   # gap 1 against (L + 1) / (k + 1) = 11 / 4
    0.364

    References
    ----------
    Greydanus (2020); Pellegrini & Biroli (2022).
    """
    why = _ordered(ticket, ordered)
    if why is not None:
        return Locality(float("nan"), reason=why)
    return locality_of_mask(first_layer(model, ticket, in_shape=in_shape), seed=seed)


def input_fanout(model: nn.Module, ticket: Ticket, *, in_shape: Sequence[int] | None = None) -> np.ndarray:
    """Kept fan-out of every input position (summed over channels), shaped like the grid.

    For a Linear first layer: how many kept weights leave each position; for a conv first
    layer: how many filters keep each kernel tap.
    """
    layer = first_layer(model, ticket, in_shape=in_shape)
    per_input = layer.mask.sum(0)
    return per_input.reshape(layer.channels, *layer.grid).sum(0)


def _rank_rows(x: np.ndarray) -> np.ndarray:
    return scipy.stats.rankdata(x, axis=-1)


def _spearman_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman correlation of matching rows (average ranks for ties; NaN for a constant row)."""
    ra, rb = _rank_rows(a), _rank_rows(b)
    ra = ra - ra.mean(-1, keepdims=True)
    rb = rb - rb.mean(-1, keepdims=True)
    den = np.sqrt((ra**2).sum(-1) * (rb**2).sum(-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (ra * rb).sum(-1) / np.where(den > 0, den, 1.0), np.nan)


def fanout_agreement(tickets: Mapping[str, Ticket], model: nn.Module, *, samples: int = 1000, seed: SeedLike = 0,
                     in_shape: Sequence[int] | None = None) -> pd.DataFrame:  # fmt: skip
    """Do two tickets keep the same input positions? Spearman rho of their fan-out profiles.

    The null redraws both tickets' first layers with every unit's kept inputs shuffled (the
    per-unit shuffle; fan-ins kept), ``samples`` times, independently per ticket.

    Returns
    -------
    pandas.DataFrame
        ``a``, ``b``, ``rho`` (:func:`input_fanout` profiles, average ranks for ties),
        ``null_mean``, ``null_sd``, ``z``, ``n_null`` and ``n_as_extreme`` (nulls with rho >=
        the observed: the one-sided test "more alike than the null").
    """
    layers = {n: first_layer(model, t, in_shape=in_shape) for n, t in tickets.items()}
    profiles, nulls = {}, {}
    for i, (n, layer) in enumerate(layers.items()):
        c, grid = layer.channels, layer.grid
        profiles[n] = layer.mask.sum(0).reshape(c, -1).sum(0).astype(np.float64)
        rng = np.random.default_rng(seed_sequence(seed).spawn(len(layers))[i])
        draws = draw_fan_in(layer.mask, samples, rng)
        nulls[n] = draws.sum(1).reshape(samples, c, int(np.prod(grid))).sum(1).astype(np.float64)
    rows = []
    for a, b in itertools.combinations(layers, 2):
        rho = float(_spearman_rows(profiles[a], profiles[b]))
        null = _spearman_rows(nulls[a], nulls[b])
        null = null[np.isfinite(null)]
        sd = float(null.std(ddof=1)) if null.size > 1 else float("nan")
        mu = float(null.mean()) if null.size else float("nan")
        rows.append({"a": a, "b": b, "rho": rho, "null_mean": mu, "null_sd": sd,
                     "z": (rho - mu) / sd if sd > 0 else float("nan"), "n_null": int(null.size),
                     "n_as_extreme": int(np.sum(null >= rho - 1e-12)) if np.isfinite(rho) else 0})  # fmt: skip
    return pd.DataFrame(rows, columns=["a", "b", "rho", "null_mean", "null_sd", "z", "n_null", "n_as_extreme"])


def receptive_field_centres(model: nn.Module, ticket: Ticket, *, in_shape: Sequence[int] | None = None) -> pd.DataFrame:
    """Every first-layer unit's receptive-field centre: the mean position of its kept inputs.

    Returns
    -------
    pandas.DataFrame
        ``unit``, ``n_kept``, ``centre_0`` (and ``centre_1`` on a 2-D grid; NaN for a unit
        that keeps nothing) and ``radius`` (mean distance of the kept inputs to the centre).
    """
    layer = first_layer(model, ticket, in_shape=in_shape)
    coords = layer.coords()
    m = layer.mask.astype(np.float64)
    k = m.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        centre = (m @ coords) / k[:, None]
    d = np.sqrt(((coords[None, :, :] - centre[:, None, :]) ** 2).sum(-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        radius = (m * d).sum(1) / k
    out = pd.DataFrame({"unit": np.arange(m.shape[0]), "n_kept": k.astype(int)})
    for j in range(coords.shape[1]):
        out[f"centre_{j}"] = centre[:, j]
    out["radius"] = radius
    return out


def graph_first_layer(g: Graph) -> FirstLayer | None:
    """The Linear layer of a layered graph that reads its input block, with the graph's
    ``meta['input_shape']`` (None when there is none: conv first layers lose their kernel
    taps in the channel-level graph, use :func:`locality` on the ticket)."""
    ep = getattr(g, "edge_params", None)
    shape = g.meta.get("input_shape")
    if ep is None or len(ep) == 0 or shape is None or g.meta.get("ordered_inputs") is False:
        return None
    rows = ep[(ep["src_layer"].astype(str) == "input") & (ep["kind"] == "linear")]
    if rows.empty or len(tuple(shape)) > 3:
        return None
    r = rows.iloc[0]
    block = g.adjacency[int(r.src_start) : int(r.src_stop), int(r.dst_start) : int(r.dst_stop)]
    mask = np.asarray((block != 0).T.todense(), dtype=bool)
    grid, channels, kind = _grid_of(shape)
    if int(np.prod(grid)) * channels != mask.shape[1]:
        return None
    return FirstLayer(str(r.param), mask, grid, channels, kind)
