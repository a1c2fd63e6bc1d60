"""Derived tickets: tickets built from the structure other tickets share (family ``"derived"``).

Each method takes ``sources=[Ticket, ...]`` (tickets of other methods on the same architecture)
and builds a ticket of ``model`` at exactly ``round(density * N)`` weights, seeded:

``consensus``
    Votes: the weights kept by the most sources, ranked by vote count; ties at the cut by one
    seeded permutation. At least two sources.
``profile``
    The shared allocation alone: random within each layer, at the sources' median layer
    density. Layer counts: the medians' shares of the exact total, by largest remainder
    (:func:`~graphtickets.pruning._counting.allocate`; a layer never above its size).
``degrees``
    A configuration model: in each layer (at the ``profile`` counts), each unit's fan-in and
    fan-out is the sources' median, scaled to the layer count and rounded by largest
    remainder; stubs paired at random, collisions repaired by swaps. Tolerance: every unit's
    degree equals its rounded target (within 1 of the scaled median) except for the stubs that
    no swap could place (``meta["degree_misses"]``, each moving one fan-in and one fan-out by 1).
``local``
    The ``profile`` allocation with the first layer drawn at the locality of the data-driven
    sources (methods with ``needs_data``; all sources if none is): each first-layer unit keeps
    the sources' median fan-in (scaled) in a contiguous window whose mean gap between kept
    inputs is the sources' mean gap (:func:`~graphtickets.pruning._counting.mean_gap`); the
    other layers random.

``relational`` (a WS-flex graph at the sources' median clustering and path length) is built
with the graph code and registered by :mod:`graphtickets.graphs.derived`.

Held out or same init: which sources a caller passes. Every derived ticket records its
sources (method, seed, init seed, density, mask digest) and ``held_out`` (whether no source
shares the model's init seed); :func:`held_out_sources` keeps the tickets of other inits, and
``held_out=True`` makes a builder refuse a source of the model's own init.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from graphtickets.errors import GraphticketsError
from graphtickets.pruning._counting import (
    allocate,
    configuration_mask,
    mean_gap,
    unit_degrees,
    window_mask,
)
from graphtickets.pruning.core import METHODS, MethodResult, register_method
from graphtickets.pruning.select import keep_count, topk_flat
from graphtickets.ticket import Ticket, prunable

__all__ = ["held_out_sources", "init_seed", "check_sources", "profile_counts", "source_record", "DERIVED_REFERENCE"]

DERIVED_REFERENCE = "graphtickets (issue 26): tickets built from the structure of other tickets"


def init_seed(ticket: Ticket) -> int | None:
    """The seed of the initial weights ``ticket`` was found on: its model spec's, else its own seed."""
    spec = ticket.config.get("model")
    if isinstance(spec, dict) and isinstance(spec.get("seed"), int):
        return int(spec["seed"])
    seed = ticket.config.get("seed")
    return int(seed) if isinstance(seed, int) else None


def held_out_sources(tickets: Sequence[Ticket], seed: int) -> list[Ticket]:
    """The tickets of ``tickets`` found on another init than ``seed`` (the held-out sources).

    Raises
    ------
    GraphticketsError
        When a ticket records no init seed (then nothing guarantees it is held out).
    """
    unknown = [i for i, t in enumerate(tickets) if init_seed(t) is None]
    if unknown:
        raise GraphticketsError(f"tickets {unknown} record no init seed (config['model']['seed'] or config['seed'])")
    return [t for t in tickets if init_seed(t) != int(seed)]


def _digest(masks: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for name in sorted(masks):
        h.update(name.encode())
        h.update(masks[name].to(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


def source_record(t: Ticket) -> dict[str, Any]:
    """What a derived ticket records of one source: method, seed, init seed, density, digest."""
    return {"method": t.method, "seed": t.config.get("seed"), "init_seed": init_seed(t),
            "density": round(float(t.density), 6), "digest": _digest(t.masks)}  # fmt: skip


def check_sources(
    model: nn.Module, sources: Any, method: str, minimum: int, *, held_out: bool = False
) -> tuple[list[str], list[dict[str, np.ndarray]]]:
    """The prunable names of ``model`` and each source's masks on them as numpy arrays.

    Raises
    ------
    GraphticketsError
        No sources, fewer than ``minimum``, a source that is not a Ticket or does not fit the
        model's prunable weights (another architecture), or (``held_out``) a source of the
        model's own init.
    """
    if sources is None or (isinstance(sources, Sequence) and len(sources) == 0):
        raise GraphticketsError(
            f"method {method!r} builds a ticket from other tickets: pass sources=[Ticket, ...] "
            f"(at least {minimum}), e.g. gt.pruning.held_out_sources(tickets, seed) of other methods' tickets"
        )
    if isinstance(sources, Ticket) or not isinstance(sources, Sequence):
        raise GraphticketsError(f"method {method!r}: sources must be a list of tickets, got {type(sources).__name__}")
    if len(sources) < minimum:
        raise GraphticketsError(
            f"method {method!r} needs at least {minimum} source tickets (votes of one ticket are that ticket), "
            f"got {len(sources)}; pass tickets of several methods or seeds"
        )
    params = prunable(model)
    names = list(params)
    own = getattr(model, "gt_spec", {}) or {}
    out = []
    for i, t in enumerate(sources):
        if not isinstance(t, Ticket):
            raise GraphticketsError(f"method {method!r}: source {i} is a {type(t).__name__}, not a Ticket")
        shapes = {n: tuple(m.shape) for n, m in t.masks.items()}
        want = {n: tuple(p.shape) for n, p in params.items()}
        if shapes != want:
            diff = sorted(set(shapes) ^ set(want)) or [n for n in want if shapes[n] != want[n]]
            raise GraphticketsError(
                f"method {method!r}: source {i} ({t.method}) does not fit the model's prunable weights "
                f"(differs at {diff[:3]}): sources must be tickets of the same architecture"
            )
        if held_out and init_seed(t) == own.get("seed"):
            raise GraphticketsError(
                f"method {method!r} with held_out=True: source {i} ({t.method}) was found on the model's own "
                f"init (seed {own.get('seed')}); pass gt.pruning.held_out_sources(tickets, {own.get('seed')})"
            )
        out.append({n: t.masks[n].numpy() for n in names})
    return names, out


def _meta(model: nn.Module, sources: Sequence[Ticket], **extra: Any) -> dict[str, Any]:
    own = (getattr(model, "gt_spec", {}) or {}).get("seed")
    seeds = sorted({s for s in (init_seed(t) for t in sources) if s is not None})
    return {"sources": [source_record(t) for t in sources], "source_init_seeds": seeds,
            "held_out": own is not None and own not in seeds, **extra}  # fmt: skip


def profile_counts(names: list[str], masks: list[dict[str, np.ndarray]], total: int) -> np.ndarray:
    """Per-layer counts: the sources' median layer densities' shares of ``total`` (largest remainder)."""
    sizes = np.array([masks[0][n].size for n in names], dtype=np.int64)
    med = np.median(np.array([[m[n].mean() for n in names] for m in masks]), axis=0)
    return allocate(med * sizes, total, sizes)


def _random_layer(shape: tuple[int, ...], count: int, rng: np.random.Generator) -> np.ndarray:
    flat = np.zeros(int(np.prod(shape)), dtype=bool)
    flat[rng.permutation(flat.shape[0])[:count]] = True
    return flat.reshape(shape)


def _result(names: list[str], arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> MethodResult:
    return MethodResult(masks={n: torch.from_numpy(np.ascontiguousarray(arrays[n])) for n in names}, meta=meta)


@register_method("consensus", needs_data=False, kind="derived", min_sources=2, reference=DERIVED_REFERENCE,
                 summary="the weights kept by the most source tickets (votes; ties by a seeded permutation)")
def consensus(
    model: nn.Module, *, density: float, data: Any = None, seed: int = 0,
    sources: Sequence[Ticket] | None = None, held_out: bool = False,
) -> MethodResult:
    """Keep the ``round(density * N)`` weights with the most votes among ``sources``.

    Weights kept by a majority come first, then fewer votes; at the cut, weights of equal
    votes are taken in the order of one permutation drawn from ``numpy.random.default_rng(seed)``.

    Examples
    --------
    >>> import graphtickets as gt
    >>> m = gt.models.build("mlp", in_shape=(8,), num_classes=3, widths=(16,))
    >>> src = [gt.pruning.prune(m, "random", density=0.5, seed=s) for s in range(3)]
    >>> t = gt.pruning.prune(m, "consensus", density=0.2, sources=src)
    >>> t.kept == round(0.2 * t.total), t.meta["source_init_seeds"]
    (True, [0])
    """
    names, masks = check_sources(model, sources, "consensus", 2, held_out=held_out)
    votes = np.concatenate([np.sum([m[n].reshape(-1) for m in masks], axis=0) for n in names]).astype(np.int64)
    n_all = votes.shape[0]
    k = keep_count(density, n_all)
    prio = np.random.default_rng(seed).permutation(n_all)
    keep = topk_flat(votes.astype(np.float64) * n_all + prio, k)
    out, at = {}, 0
    for n in names:
        size = masks[0][n].size
        out[n] = keep[at: at + size].reshape(masks[0][n].shape)
        at += size
    kept_votes = votes[keep]
    assert sources is not None
    meta = _meta(model, sources, min_votes_kept=int(kept_votes.min()) if k else 0,
                 majority=int((votes * 2 > len(masks)).sum()), n_sources=len(masks))  # fmt: skip
    return _result(names, out, meta)


@register_method("profile", needs_data=False, kind="derived", min_sources=1, reference=DERIVED_REFERENCE,
                 summary="random within each layer at the sources' median layer densities (the allocation alone)")
def profile(
    model: nn.Module, *, density: float, data: Any = None, seed: int = 0,
    sources: Sequence[Ticket] | None = None, held_out: bool = False,
) -> MethodResult:
    """Random weights in each layer, at the median layer density of ``sources`` (exact total)."""
    names, masks = check_sources(model, sources, "profile", 1, held_out=held_out)
    total = keep_count(density, sum(masks[0][n].size for n in names))
    counts = profile_counts(names, masks, total)
    rng = np.random.default_rng(seed)
    out = {n: _random_layer(masks[0][n].shape, int(c), rng) for n, c in zip(names, counts, strict=True)}
    assert sources is not None
    return _result(names, out, _meta(model, sources, layer_counts=dict(zip(names, counts.tolist(), strict=True))))


def _degree_targets(masks: list[dict[str, np.ndarray]], name: str, count: int) -> tuple[np.ndarray, np.ndarray]:
    """The sources' median fan-in and fan-out of layer ``name``, scaled to ``count`` (largest remainder)."""
    shape = masks[0][name].shape
    per = [unit_degrees(m[name]) for m in masks]
    fin, fout = np.median([p[0] for p in per], axis=0), np.median([p[1] for p in per], axis=0)
    cap = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    rows = allocate(fin, count, np.full(shape[0], shape[1] * cap))
    cols = allocate(fout, count, np.full(shape[1], shape[0] * cap))
    return rows, cols


@register_method("degrees", needs_data=False, kind="derived", min_sources=1, reference=DERIVED_REFERENCE,
                 summary="a configuration model at the sources' median fan-in/fan-out of every unit")
def degrees(
    model: nn.Module, *, density: float, data: Any = None, seed: int = 0,
    sources: Sequence[Ticket] | None = None, held_out: bool = False,
) -> MethodResult:
    """A configuration-model ticket with the median per-unit degrees of ``sources`` in each layer."""
    names, masks = check_sources(model, sources, "degrees", 1, held_out=held_out)
    total = keep_count(density, sum(masks[0][n].size for n in names))
    counts = profile_counts(names, masks, total)
    rng = np.random.default_rng(seed)
    out, misses = {}, {}
    for n, c in zip(names, counts.tolist(), strict=True):
        rows, cols = _degree_targets(masks, n, int(c))
        out[n], misses[n] = configuration_mask(rows, cols, masks[0][n].shape, rng)
    assert sources is not None
    return _result(names, out, _meta(model, sources, layer_counts=dict(zip(names, counts.tolist(), strict=True)),
                                     degree_misses=misses))  # fmt: skip


@register_method("local", needs_data=False, kind="derived", min_sources=1, reference=DERIVED_REFERENCE,
                 summary="the sources' allocation with first-layer windows at the data-driven sources' locality")
def local(
    model: nn.Module, *, density: float, data: Any = None, seed: int = 0,
    sources: Sequence[Ticket] | None = None, held_out: bool = False,
) -> MethodResult:
    """The ``profile`` allocation; first-layer units keep contiguous windows at the sources' mean gap."""
    names, masks = check_sources(model, sources, "local", 1, held_out=held_out)
    assert sources is not None
    driven = [i for i, t in enumerate(sources) if t.method in METHODS and METHODS[t.method].needs_data]
    use = driven or list(range(len(sources)))
    first = names[0]
    gaps = [mean_gap(masks[i][first]) for i in use]
    gap = float(np.nanmean(gaps)) if not np.isnan(gaps).all() else 1.0
    total = keep_count(density, sum(masks[0][n].size for n in names))
    counts = profile_counts(names, masks, total)
    rng = np.random.default_rng(seed)
    shape = masks[0][first].shape
    rows, _ = _degree_targets(masks, first, int(counts[0]))
    out = {first: window_mask(rows, int(np.prod(shape[1:])), gap, rng).reshape(shape)}
    for n, c in zip(names[1:], counts[1:].tolist(), strict=True):
        out[n] = _random_layer(masks[0][n].shape, int(c), rng)
    meta = _meta(model, sources, layer_counts=dict(zip(names, counts.tolist(), strict=True)), target_gap=gap,
                 gap=mean_gap(out[first]), locality_from=sorted({sources[i].method for i in use}))  # fmt: skip
    return _result(names, out, meta)
