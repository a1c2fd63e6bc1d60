"""Stability to SGD noise (Frankle et al. 2020): do two trainings of a ticket end in one linear basin?

A ticket is *stable* when two copies of it, trained from the same starting weights with
different data orders, end where the straight line between them has no higher error than its
ends. :func:`stability` trains the two copies (the batch order drawn with two seeds) and
measures the path; :func:`linear_path` measures the path between any two networks of one
architecture, and :func:`path_barrier` reads the barrier off a path.
:func:`joint_rank_correlation` asks whether the stable tickets are the accurate ones: the
Spearman correlation of two values over objects (methods) within blocks (density x seed), with
a permutation p that permutes the object labels jointly across blocks.

The barrier is Frankle et al.'s *instability*: on the path ``theta(alpha) = (1 - alpha)
theta_a + alpha theta_b`` (every parameter and floating buffer interpolated, BatchNorm
statistics included) at ``points`` equally spaced ``alpha`` from 0 to 1,

    ``barrier = max_alpha E(alpha) - (E(0) + E(1)) / 2``,

the largest error on the path over the mean error of its ends (so >= 0, and 0 for two
identical networks). The same is given for the cross-entropy loss. (This differs from
:func:`~graphtickets.analysis.loss_barrier`, which subtracts the straight line between the
ends' values at each ``alpha``; both are 0 for a flat path and agree when the ends are equal.)
Frankle et al. call a network stable when the error barrier is within the noise of the error,
about 2 %.

References
----------
.. [1] J. Frankle, G. K. Dziugaite, D. M. Roy, M. Carbin, "Linear Mode Connectivity and the
   Lottery Ticket Hypothesis", ICML 2020.
"""

from __future__ import annotations

import copy
import itertools
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from graphtickets.errors import GraphticketsError
from graphtickets.ticket import Ticket

__all__ = ["StabilityResult", "LinearPath", "stability", "linear_path", "path_barrier", "RankAssociation",
           "joint_rank_correlation"]


def path_barrier(values: Sequence[float]) -> float:
    """``max(values) - (values[0] + values[-1]) / 2``: the barrier of a path (Frankle et al. 2020).

    >>> path_barrier([0.1, 0.4, 0.3])
    0.2
    """
    if len(values) < 2:
        raise GraphticketsError("a path needs at least its two ends")
    return float(max(values) - (values[0] + values[-1]) / 2.0)


@dataclass(frozen=True)
class LinearPath:
    """Error and loss along the linear path between two networks.

    Attributes
    ----------
    alphas, errors, losses : tuple of float
        The path (``alpha = 0`` is the first network).
    error_barrier, loss_barrier : float
        :func:`path_barrier` of the errors and of the losses.
    """

    alphas: tuple[float, ...]
    errors: tuple[float, ...]
    losses: tuple[float, ...]
    error_barrier: float
    loss_barrier: float


@dataclass(frozen=True)
class StabilityResult:
    """What :func:`stability` measured.

    Attributes
    ----------
    error_barrier : float
        The instability (module docstring); Frankle et al. call a ticket stable when it is
        within about 0.02.
    loss_barrier : float
        The same for the cross-entropy loss.
    path : LinearPath
        The whole path.
    errors : tuple of float
        Test error of the two trained copies.
    seeds : tuple of int
        The data-order seeds of the two copies.
    seconds : float
        Wall time (both trainings and the path).
    """

    error_barrier: float
    loss_barrier: float
    path: LinearPath
    errors: tuple[float, float]
    seeds: tuple[int, int]
    seconds: float


def linear_path(a: nn.Module, b: nn.Module, data: Iterable[Any], *, points: int = 11,
                device: str | torch.device = "cpu") -> LinearPath:
    """Error and loss of ``(1 - alpha) a + alpha b`` at ``points`` values of ``alpha`` in [0, 1].

    Parameters
    ----------
    a, b : nn.Module
        Two networks of one architecture (not modified).
    data : iterable of (inputs, targets)
        The evaluation batches (read once).
    points : int, default 11
        Number of ``alpha`` values, at least 2 (``alpha = i / (points - 1)``).
    device : str or torch.device

    Returns
    -------
    LinearPath

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> net = nn.Linear(2, 2)
    >>> data = [(torch.randn(8, 2), torch.randint(0, 2, (8,)))]
    >>> linear_path(net, net, data, points=5).error_barrier
    0.0
    """
    from graphtickets import training

    if isinstance(points, bool) or not isinstance(points, int) or points < 2:
        raise GraphticketsError(f"points must be an integer >= 2 (alphas on the path, ends included), got {points!r}")
    sa, sb = a.state_dict(), b.state_dict()
    if sa.keys() != sb.keys() or any(sa[k].shape != sb[k].shape for k in sa):
        raise GraphticketsError("the two networks have different parameters; a linear path needs one architecture")
    batches = list(data)
    if not batches:
        raise GraphticketsError("data holds no batch; pass evaluation batches of (inputs, targets)")
    net = copy.deepcopy(a)
    k = points - 1
    alphas, errors, losses = [], [], []
    for i in range(points):
        mixed = {n: ((k - i) * sa[n].detach() + i * sb[n].detach()) / k if sa[n].is_floating_point() else sa[n]
                 for n in sa}  # fmt: skip
        net.load_state_dict(mixed)
        ev = training.evaluate(net, batches, device=device)
        alphas.append(i / k)
        errors.append(1.0 - float(ev["accuracy"]))
        losses.append(float(ev["loss"]))
    return LinearPath(tuple(alphas), tuple(errors), tuple(losses), path_barrier(errors), path_barrier(losses))


DataOrder = Callable[[int], Iterable[Any]]


def _order(data: Any, batch_size: int) -> DataOrder:
    """``seed -> training batches``: from a callable as given, or a dataset shuffled with the seed."""
    if callable(data) and not isinstance(data, torch.utils.data.Dataset):
        return data  # type: ignore[no-any-return]
    if isinstance(data, torch.utils.data.Dataset):
        from graphtickets.data import batches

        return lambda seed: batches(data, batch_size=batch_size, shuffle=True, seed=seed)
    raise GraphticketsError(
        "data must be a dataset (shuffled with each seed) or a function seed -> training batches, "
        f"got {type(data).__name__}"
    )


def stability(
    ticket: Ticket,
    model: nn.Module,
    *,
    data: Any,
    eval_data: Iterable[Any],
    seeds: Sequence[int] = (0, 1),
    points: int = 11,
    batch_size: int = 128,
    device: str | torch.device = "cpu",
    **train: Any,
) -> StabilityResult:
    """Train two copies of ``ticket`` with different data orders and measure the error barrier between them.

    Parameters
    ----------
    ticket : Ticket
        The mask (and, if it carries them, the starting weights: IMP's rewound state).
    model : nn.Module
        The architecture at its initial weights (the start when the ticket carries none). Not
        modified.
    data : torch Dataset or callable
        The training set, batched and shuffled with each seed of ``seeds``
        (:func:`graphtickets.data.batches`), or ``seed -> batches`` giving the two data orders.
    eval_data : iterable of (inputs, targets)
        Where the errors are measured (the test set).
    seeds : pair of int, default (0, 1)
        Data-order seeds of the two copies (also their training seed: dropout, ...).
    points : int, default 11
        Points on the path, ends included.
    batch_size : int, default 128
        Batch size when ``data`` is a dataset.
    device : str or torch.device
    **train
        The training regime, passed to :func:`graphtickets.training.train` (``epochs``,
        ``optimizer``, ``lr``, ``momentum``, ``weight_decay``, ``schedule``, ...).

    Returns
    -------
    StabilityResult

    Examples
    --------
    >>> import torch, graphtickets as gt
    >>> ds = torch.utils.data.TensorDataset(torch.randn(64, 8), torch.randint(0, 2, (64,)))
    >>> model = gt.models.build("mlp", in_shape=(8,), num_classes=2, widths=(16,))
    >>> t = gt.pruning.prune(model, "random", density=0.5)
    >>> r = stability(t, model, data=ds, eval_data=[ds[:]], seeds=(0, 0), epochs=1, batch_size=16)
    >>> r.error_barrier, len(r.path.alphas)      # the same data order twice: one network
    (0.0, 11)
    """
    from graphtickets import training

    if len(seeds) != 2:
        raise GraphticketsError(f"seeds must be two data-order seeds, got {seeds!r}")
    order = _order(data, batch_size)
    t0 = time.perf_counter()
    nets = []
    for s in seeds:
        net = ticket.apply(copy.deepcopy(model))
        training.train(net, order(int(s)), masks=ticket, seed=int(s), device=device, **train)
        nets.append(net)
    eval_batches = list(eval_data)
    path = linear_path(nets[0], nets[1], eval_batches, points=points, device=device)
    return StabilityResult(path.error_barrier, path.loss_barrier, path, (path.errors[0], path.errors[-1]),
                           (int(seeds[0]), int(seeds[1])), time.perf_counter() - t0)


@dataclass(frozen=True)
class RankAssociation:
    """What :func:`joint_rank_correlation` found.

    Attributes
    ----------
    rho : float
        The mean within-block Spearman correlation (blocks averaged within their unit first,
        then over units); NaN when no block has two non-constant rankings.
    p : float
        Two-sided permutation p-value (exact over every permutation when there are at most
        ``permutations`` of them, else ``(1 + k) / (1 + n)`` over ``n`` random ones); NaN with
        fewer than 3 objects.
    objects, blocks, units : int
        Objects present in every block (the others are left out), blocks, units.
    permutations : int
        Permutations drawn (or enumerated).
    exact : bool
        Whether every permutation was enumerated.
    """

    rho: float
    p: float
    objects: int
    blocks: int
    units: int
    permutations: int
    exact: bool


def _zrank_rows(a: np.ndarray) -> np.ndarray:
    """Each row's ranks (ties averaged), centred and scaled to unit sd; NaN rows where constant."""
    from scipy.stats import rankdata

    r = rankdata(a, axis=1)
    r = r - r.mean(axis=1, keepdims=True)
    sd = r.std(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(sd > 0, r / np.where(sd > 0, sd, 1.0), np.nan)


def _combine(rhos: np.ndarray, unit_of: np.ndarray) -> np.ndarray:
    """Mean over units of the mean over each unit's blocks (axis 0 of ``rhos``), NaN blocks skipped."""
    per_unit = []
    for u in np.unique(unit_of):
        sel = rhos[unit_of == u]
        ok = np.isfinite(sel)
        n = ok.sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            per_unit.append(np.where(n > 0, np.where(ok, sel, 0.0).sum(axis=0) / np.maximum(n, 1), np.nan))
    stack = np.stack(per_unit)
    ok = np.isfinite(stack)
    n = ok.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, np.where(ok, stack, 0.0).sum(axis=0) / np.maximum(n, 1), np.nan)


def joint_rank_correlation(table: pd.DataFrame, x: str, y: str, *, label: str = "method",
                           block: Sequence[str] = ("density", "seed"), unit: str | None = "seed",
                           permutations: int = 9999, seed: int = 0) -> RankAssociation:
    """Spearman correlation of ``x`` and ``y`` over objects within blocks, with a joint permutation p.

    In every block (e.g. one density and init seed) the objects (``label``, e.g. methods) are
    ranked by ``x`` and by ``y`` and Spearman's rho taken; the statistic is the mean rho, the
    blocks of one ``unit`` (init seed) averaged first. Under the null that an object's ``x``
    says nothing of its ``y``, the object labels of ``x`` are exchangeable -- jointly: the same
    objects recur in every block (a method is itself at every seed), so one permutation is
    applied to every block (as in a restricted Mantel test). Only objects present in every
    block enter; a block whose ``x`` or ``y`` is constant has no rho and is skipped.

    Parameters
    ----------
    table : DataFrame
        One row per object and block (duplicates are averaged).
    x, y : str
        The two columns.
    label : str, default "method"
    block : sequence of str, default ("density", "seed")
    unit : str or None, default "seed"
        A column of ``block``: the unit the blocks are combined within first (None: every
        block counts alike).
    permutations : int, default 9999
        Random permutations; all of them are enumerated when there are no more.
    seed : int, default 0

    Returns
    -------
    RankAssociation

    Examples
    --------
    >>> t = pd.DataFrame({"method": list("abcd"), "seed": 0, "x": [1, 2, 3, 4], "y": [4, 3, 2, 1]})
    >>> r = joint_rank_correlation(t, "x", "y", block=["seed"])
    >>> r.rho, r.exact, r.p  # 2 of the 24 orders are as extreme (rho = -1 and +1)
    (-1.0, True, 0.08333333333333333)
    """
    keys = list(block)
    if unit is not None and unit not in keys:
        raise GraphticketsError(f"unit {unit!r} must be one of the block columns {keys}")
    if isinstance(permutations, bool) or not isinstance(permutations, int) or permutations < 1:
        raise GraphticketsError(f"permutations must be an integer >= 1, got {permutations!r}")
    t = table[[label, *keys, x, y]].dropna()
    t = t.groupby([*keys, label], sort=True)[[x, y]].mean().reset_index()
    groups = list(t.groupby(keys, sort=True))
    common = sorted(set.intersection(*[set(g[label]) for _, g in groups])) if groups else []
    nb, m = len(groups), len(common)
    nan = float("nan")
    if m < 3:
        return RankAssociation(nan, nan, m, nb, 0, 0, False)
    xs = np.stack([g.set_index(label).loc[common, x].to_numpy(np.float64) for _, g in groups])
    ys = np.stack([g.set_index(label).loc[common, y].to_numpy(np.float64) for _, g in groups])
    keyvals = [k if isinstance(k, tuple) else (k,) for k, _ in groups]
    unit_of = np.array([kv[keys.index(unit)] if unit is not None else 0 for kv in keyvals])
    zx, zy = _zrank_rows(xs), _zrank_rows(ys)
    stat = float(_combine((zx * zy).mean(axis=1)[:, None], unit_of)[0])
    if not math.isfinite(stat):
        return RankAssociation(nan, nan, m, nb, len(np.unique(unit_of)), 0, False)
    exact = math.factorial(m) <= permutations
    if exact:
        perms = np.array(list(itertools.permutations(range(m))))
    else:
        rng = np.random.default_rng(seed)
        perms = np.stack([rng.permutation(m) for _ in range(permutations)])
    null = np.empty(len(perms))
    for i in range(0, len(perms), 2048):
        chunk = perms[i:i + 2048]
        rh = (zx[:, chunk] * zy[:, None, :]).mean(axis=2)  # blocks x chunk
        null[i:i + len(chunk)] = _combine(rh, unit_of)
    k = int(np.sum(np.abs(null) >= abs(stat) - 1e-12))
    p = k / len(perms) if exact else (1 + k) / (1 + len(perms))
    return RankAssociation(stat, float(min(1.0, p)), m, nb, len(np.unique(unit_of)), len(perms), exact)
