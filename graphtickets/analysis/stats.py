"""Honest statistics for comparisons: FDR control, bootstrap intervals, Mantel tests, sibling floors.

* :func:`fdr_bh` -- Benjamini-Hochberg adjusted p-values over many tests (every (pair, kind)
  z/p test of a study) and which of them survive at a false discovery rate ``alpha``.
* :func:`bootstrap_ci` -- percentile bootstrap confidence interval of a statistic over
  replicates (init seeds), seeded.
* :func:`mantel` -- rank (Spearman) or Pearson correlation between two distance matrices over
  the same objects, with a permutation (Mantel) p-value: does structural distance predict
  functional distance?
* :func:`excess_over_siblings` -- where a distance between two methods stands between the
  methods' sibling noise floor (0) and the layer-shuffled null (1).
* :func:`adjust_tests` -- BH over a whole table of tests (statistic, p, family, unit, n).
* :func:`sibling_excess` -- the excess per pair and kind, unclipped, with a t interval over
  units, degenerate kinds excluded and named, deterministic methods apart.

References
----------
.. [1] Y. Benjamini, Y. Hochberg, "Controlling the false discovery rate: a practical and
   powerful approach to multiple testing", J. R. Stat. Soc. B 57, 1995.
.. [2] B. Efron, R. J. Tibshirani, "An Introduction to the Bootstrap", Chapman & Hall, 1993
   (percentile intervals, ch. 13).
.. [3] N. Mantel, "The detection of disease clustering and a generalized regression
   approach", Cancer Research 27, 1967; P. Legendre, L. Legendre, "Numerical Ecology", 3rd
   ed., 2012, sec. 10.5 (Mantel test with ranks).
.. [4] V. Movva, J. Frankle, M. Carbin, "Studying the Consistency and Composability of Lottery
   Ticket Pruning Masks", ICLR 2021 workshop (sibling masks as the reference for overlap).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from graphtickets.errors import GraphticketsError

__all__ = ["fdr_bh", "BootstrapCI", "bootstrap_ci", "MantelResult", "mantel", "excess_over_siblings", "adjust_tests",
           "TEST_COLUMNS", "sibling_excess", "EXCESS_STATUS"]


# --------------------------------------------------------------------------- Benjamini-Hochberg
def fdr_bh(pvalues: Any, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Benjamini-Hochberg adjusted p-values and the tests rejected at false discovery rate ``alpha``.

    With the ``m`` finite p-values sorted, ``p_(1) <= ... <= p_(m)``, the adjusted value of
    ``p_(i)`` is ``min(1, min_{j >= i} m p_(j) / j)``; a test is rejected when its adjusted
    p-value is ``<= alpha`` (the step-up procedure: reject ``p_(1..k)`` for the largest ``k``
    with ``p_(k) <= k alpha / m``). NaN p-values (tests that could not be made) are not
    counted in ``m``, stay NaN and are never rejected.

    Parameters
    ----------
    pvalues : array_like
        p-values in ``[0, 1]`` (any shape; NaN allowed).
    alpha : float, default 0.05
        The false discovery rate, in ``(0, 1)``.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        Adjusted p-values (float, same shape) and the rejections (bool, same shape).

    Examples
    --------
    >>> q, rej = fdr_bh([0.01, 0.04, 0.03, 0.5])
    >>> q.round(3).tolist(), rej.tolist()
    ([0.04, 0.053, 0.053, 0.5], [True, False, False, False])

    References
    ----------
    Benjamini & Hochberg (1995); equals ``scipy.stats.false_discovery_control(p, method="bh")``
    on finite inputs.
    """
    p = np.asarray(pvalues, dtype=np.float64)
    if not 0.0 < float(alpha) < 1.0:
        raise GraphticketsError(f"alpha must be in (0, 1), got {alpha!r}")
    finite = np.isfinite(p)
    if np.any((p[finite] < 0) | (p[finite] > 1)):
        raise GraphticketsError("p-values must lie in [0, 1]")
    flat = p.ravel()
    idx = np.flatnonzero(np.isfinite(flat))
    adj = np.full(flat.shape, np.nan)
    m = idx.size
    if m:
        order = idx[np.argsort(flat[idx], kind="stable")]
        scaled = flat[order] * m / np.arange(1, m + 1)
        adj[order] = np.minimum(1.0, np.minimum.accumulate(scaled[::-1])[::-1])
    out = adj.reshape(p.shape)
    reject = np.zeros(p.shape, dtype=bool)
    reject[finite] = out[finite] <= alpha
    return out, reject


# --------------------------------------------------------------------------- bootstrap
@dataclass(frozen=True)
class BootstrapCI:
    """A percentile bootstrap confidence interval.

    Attributes
    ----------
    estimate : float
        The statistic on the values themselves.
    low, high : float
        The interval (NaN with fewer than 2 values: one value gives no spread).
    n : int
        Finite values used.
    confidence : float
    """

    estimate: float
    low: float
    high: float
    n: int
    confidence: float


def bootstrap_ci(
    values: Any,
    *,
    statistic: Callable[..., Any] = np.mean,
    confidence: float = 0.95,
    n_resamples: int = 10_000,
    seed: int = 0,
) -> BootstrapCI:
    """Percentile bootstrap confidence interval of ``statistic`` over independent replicates.

    ``n_resamples`` samples of the ``n`` values are drawn with replacement (a
    ``numpy.random.default_rng(seed)``); the interval is the ``(1 - confidence) / 2`` and
    ``(1 + confidence) / 2`` quantiles of the statistic over them (Efron & Tibshirani's
    percentile interval). Use it over what was replicated independently -- init seeds -- not
    over pairs sharing a seed. NaN values are dropped (``n`` counts the rest).

    Parameters
    ----------
    values : array_like
        One value per replicate (1-D).
    statistic : callable, default numpy.mean
        ``statistic(x, axis=-1)`` (numpy reductions) or ``statistic(x)`` on a 1-D array.
    confidence : float, default 0.95
    n_resamples : int, default 10000
    seed : int, default 0

    Returns
    -------
    BootstrapCI

    Examples
    --------
    >>> ci = bootstrap_ci([0.8, 0.82, 0.79, 0.85, 0.81], seed=0)
    >>> round(ci.estimate, 3), ci.low <= ci.estimate <= ci.high
    (0.814, True)

    References
    ----------
    Efron & Tibshirani, "An Introduction to the Bootstrap" (1993), ch. 13.
    """
    x = np.asarray(values, dtype=np.float64).ravel()
    x = x[np.isfinite(x)]
    if not 0.0 < float(confidence) < 1.0:
        raise GraphticketsError(f"confidence must be in (0, 1), got {confidence!r}")
    if int(n_resamples) < 1:
        raise GraphticketsError(f"n_resamples must be >= 1, got {n_resamples!r}")
    n = int(x.size)
    if n == 0:
        return BootstrapCI(float("nan"), float("nan"), float("nan"), 0, float(confidence))
    est = float(_stat(statistic, x[None, :])[0])
    if n < 2:
        return BootstrapCI(est, float("nan"), float("nan"), n, float(confidence))
    rng = np.random.default_rng(seed)
    stats = np.empty(int(n_resamples))
    chunk = max(1, 2_000_000 // n)
    for start in range(0, int(n_resamples), chunk):
        stop = min(int(n_resamples), start + chunk)
        idx = rng.integers(0, n, size=(stop - start, n))
        stats[start:stop] = _stat(statistic, x[idx])
    a = (1.0 - float(confidence)) / 2.0
    low, high = np.quantile(stats, [a, 1.0 - a])
    return BootstrapCI(est, float(low), float(high), n, float(confidence))


def _stat(statistic: Callable[..., Any], rows: np.ndarray) -> np.ndarray:
    try:
        out = np.asarray(statistic(rows, axis=-1), dtype=np.float64)
        if out.shape == (rows.shape[0],):
            return out
    except TypeError:
        pass
    return np.array([float(statistic(r)) for r in rows])


# --------------------------------------------------------------------------- Mantel
@dataclass(frozen=True)
class MantelResult:
    """A Mantel test between two distance matrices.

    Attributes
    ----------
    statistic : float
        The correlation over the ``n (n - 1) / 2`` pairs (Spearman's rho or Pearson's r).
    pvalue : float
        Permutation p-value (see :func:`mantel`).
    n : int
        Objects (rows of each matrix).
    permutations : int
        Permutations evaluated (``n!`` when ``exact``).
    exact : bool
        Whether every permutation was enumerated.
    """

    statistic: float
    pvalue: float
    n: int
    permutations: int
    exact: bool


def _square(d: Any, what: str) -> np.ndarray:
    m = np.asarray(d, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise GraphticketsError(f"{what} must be a square distance matrix, got shape {m.shape}")
    if not np.allclose(m, m.T, rtol=1e-9, atol=1e-12, equal_nan=True):
        raise GraphticketsError(f"{what} is not symmetric; pass a distance matrix (gt.analysis.pivot gives one)")
    iu = np.triu_indices(m.shape[0], 1)
    if not np.all(np.isfinite(m[iu])):
        raise GraphticketsError(f"{what} has NaN or infinite off-diagonal entries; drop those objects first")
    return m


def mantel(
    d1: Any,
    d2: Any,
    *,
    permutations: int = 999,
    seed: int = 0,
    method: str = "spearman",
    alternative: str = "two-sided",
) -> MantelResult:
    """Correlation between two distance matrices with a permutation (Mantel) p-value.

    The statistic is the correlation of the upper-triangle entries ``d1[i, j]`` and
    ``d2[i, j]``, ``i < j``: Spearman's rho (Pearson's r of the ranks, ties averaged) or
    Pearson's r. Pairs sharing an object are not independent, so the p-value comes from
    permuting the objects of ``d2`` (rows and columns together) and recomputing the statistic:
    ``p = (1 + #{|r_perm| >= |r|}) / (permutations + 1)`` for ``"two-sided"`` (``r_perm >= r``
    for ``"greater"``, ``<=`` for ``"less"``). When ``n! <= permutations`` every permutation is
    enumerated instead and ``p = #{extreme} / n!`` (the identity included): an exact test.

    Parameters
    ----------
    d1, d2 : array_like or pandas.DataFrame
        Symmetric ``n x n`` matrices over the same objects (the diagonal is ignored). Two
        DataFrames are aligned by their labels (``d2`` reordered to ``d1``'s).
    permutations : int, default 999
    seed : int, default 0
        Seeds ``numpy.random.default_rng`` for the permutations.
    method : {"spearman", "pearson"}
    alternative : {"two-sided", "greater", "less"}

    Returns
    -------
    MantelResult
        ``statistic`` and ``pvalue`` are NaN when one matrix has the same value for every pair.

    Examples
    --------
    >>> import numpy as np
    >>> d = np.array([[0, 1, 2, 3], [1, 0, 4, 5], [2, 4, 0, 6], [3, 5, 6, 0]], dtype=float)
    >>> r = mantel(d, d ** 2)
    >>> r.statistic, r.exact, r.permutations
    (1.0, True, 24)

    References
    ----------
    Mantel (1967); Legendre & Legendre, "Numerical Ecology" (2012), sec. 10.5.
    """
    if isinstance(d1, pd.DataFrame) and isinstance(d2, pd.DataFrame):
        if set(d1.index) != set(d2.index) or set(d1.columns) != set(d2.columns):
            raise GraphticketsError("the two distance tables have different objects; align them first")
        d2 = d2.loc[d1.index, d1.columns]
    a, b = _square(d1, "d1"), _square(d2, "d2")
    if a.shape != b.shape:
        raise GraphticketsError(f"the matrices have shapes {a.shape} and {b.shape}; they must be over the same objects")
    if method not in ("spearman", "pearson"):
        raise GraphticketsError(f"method must be 'spearman' or 'pearson', got {method!r}")
    if alternative not in ("two-sided", "greater", "less"):
        raise GraphticketsError(f"alternative must be 'two-sided', 'greater' or 'less', got {alternative!r}")
    n = a.shape[0]
    if n < 3:
        raise GraphticketsError(f"a Mantel test needs at least 3 objects (3 pairs), got {n}")
    iu = np.triu_indices(n, 1)
    x, y = a[iu], b[iu]
    if method == "spearman":
        x, y = rankdata(x), rankdata(y)
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return MantelResult(float("nan"), float("nan"), n, 0, False)
    xz = (x - x.mean()) / x.std()
    # a permutation of the objects permutes the pairs: the multiset of y (so its mean and sd) stays
    ym = np.zeros((n, n))
    ym[iu] = (y - y.mean()) / y.std()
    ym = ym + ym.T

    def stat(perm: np.ndarray) -> float:
        return float(np.mean(xz * ym[np.ix_(perm, perm)][iu]))

    r = stat(np.arange(n))
    tol = 1e-12 * max(1.0, abs(r))

    def extreme(v: float) -> bool:
        if alternative == "greater":
            return v >= r - tol
        if alternative == "less":
            return v <= r + tol
        return abs(v) >= abs(r) - tol

    if math.factorial(n) <= int(permutations):
        count = total = 0
        for perm in itertools.permutations(range(n)):
            count += extreme(stat(np.asarray(perm)))
            total += 1
        return MantelResult(float(r), count / total, n, total, True)
    rng = np.random.default_rng(seed)
    k = int(permutations)
    if k < 1:
        raise GraphticketsError(f"permutations must be >= 1, got {permutations!r}")
    count = sum(extreme(stat(rng.permutation(n))) for _ in range(k))
    return MantelResult(float(r), (1 + count) / (k + 1), n, k, False)


# --------------------------------------------------------------------------- sibling floor
def excess_over_siblings(d_ab: Any, within_a: Any, within_b: Any, null: Any, *, clip: bool = True) -> Any:
    """Where ``d(A, B)`` stands between the sibling noise floor (0) and the null distance (1).

    ``floor = mean(within_a, within_b)`` (the mean of the two methods' sibling distances --
    tickets of one method from the same init with other stochastic seeds; a NaN side is left
    out, both NaN give NaN), and

    ``excess = (d_ab - floor) / (null - floor)``, clipped to ``[0, 1]`` when ``clip``.

    0: A and B are as alike as two runs of one method; 1: as different as the layer-shuffled
    null (``null``: the null distance of the pair, e.g. ``null_mean`` of
    :func:`~graphtickets.analysis.compare`). Unclipped values below 0 mean more alike than
    siblings, above 1 farther than the null. NaN where ``null - floor <= 1e-12 * max(|null|,
    |floor|)`` (siblings already as different as the null: no scale; random pruning is the
    typical case) or where an input is NaN.

    Deterministic methods (data-free magnitude or SynFlow from one init) give identical
    siblings: their within distance is 0, a true floor, and is used as such. Their excess then
    is ``d_ab / null`` when both methods are deterministic; report such floors as "identical
    siblings" rather than as a measured noise level.

    Parameters
    ----------
    d_ab : float or array_like
    within_a, within_b : float or array_like
        Mean sibling distance of each method (same kind, density and init seed as ``d_ab``).
    null : float or array_like
    clip : bool, default True

    Returns
    -------
    float or numpy.ndarray
        Broadcast shape of the inputs (a float for scalars).

    Examples
    --------
    >>> round(excess_over_siblings(0.5, 0.2, 0.4, 0.9), 6)  # floor 0.3: (0.5 - 0.3) / (0.9 - 0.3)
    0.333333
    >>> excess_over_siblings(0.1, 0.2, 0.4, 0.9), excess_over_siblings(0.5, 0.0, 0.0, 1.0)
    (0.0, 0.5)
    """
    dab, wa, wb, nu = (np.asarray(v, dtype=np.float64) for v in (d_ab, within_a, within_b, null))
    with np.errstate(invalid="ignore", divide="ignore"):
        both = np.stack(np.broadcast_arrays(wa, wb))
        cnt = np.sum(np.isfinite(both), axis=0)
        floor = np.where(cnt > 0, np.nansum(np.where(np.isfinite(both), both, 0.0), axis=0) / np.maximum(cnt, 1), np.nan)
        span = nu - floor
        scale = np.maximum(np.abs(nu), np.abs(floor))
        ok = np.isfinite(span) & (span > 1e-12 * scale) & (span > 0)
        out = np.where(ok, (dab - floor) / np.where(ok, span, 1.0), np.nan)
        if clip:
            out = np.where(np.isfinite(out), np.clip(out, 0.0, 1.0), np.nan)
    return float(out) if out.ndim == 0 else out


# --------------------------------------------------------------------------- a table of tests
#: Columns every table of tests has (what the report states of each test).
TEST_COLUMNS = ["statistic", "p", "family", "unit", "n"]


def adjust_tests(tests: pd.DataFrame, *, alpha: float = 0.05) -> pd.DataFrame:
    """Benjamini-Hochberg over a whole table of tests: adds ``q`` and ``significant``.

    One call over every test a report makes (null tests, sanity checks, structure -> function,
    partial correlations), so that the number of tests ``m`` is one number, stated once
    (``out.attrs["tests"]``). Tests with a NaN ``p`` (not made) are kept, with a NaN ``q``, and not
    counted in ``m``.

    Parameters
    ----------
    tests : pandas.DataFrame
        At least :data:`TEST_COLUMNS`: ``statistic`` (the effect tested), ``p`` (a valid
        p-value), ``family`` (the question it answers), ``unit`` (what was replicated: "init
        seed", "ticket", ...) and ``n`` (how many units).
    alpha : float, default 0.05

    Returns
    -------
    pandas.DataFrame
        A copy with ``q`` (:func:`fdr_bh`) and ``significant`` (``q <= alpha``); ``attrs``:
        ``tests`` (``m``) and ``alpha``.

    Examples
    --------
    >>> t = pd.DataFrame({"statistic": [0.9, 0.1, 0.5], "p": [0.001, 0.4, 0.02], "family": ["a", "a", "b"],
    ...                   "unit": "init seed", "n": 3})
    >>> out = adjust_tests(t)
    >>> out["q"].round(3).tolist(), out["significant"].tolist(), out.attrs["tests"]
    ([0.003, 0.4, 0.03], [True, False, True], 3)
    """
    missing = [c for c in TEST_COLUMNS if c not in tests]
    if missing:
        raise GraphticketsError(f"a table of tests needs columns {TEST_COLUMNS}; {missing} are missing")
    out = tests.copy()
    q, rej = fdr_bh(out["p"].to_numpy(dtype=np.float64), alpha=alpha)
    out["q"], out["significant"] = q, rej
    out.attrs.update(tests=int(np.isfinite(out["p"].to_numpy(dtype=np.float64)).sum()), alpha=float(alpha))
    return out


# --------------------------------------------------------------------------- excess, unclipped
#: ``status`` of :func:`sibling_excess` rows, and what each means.
EXCESS_STATUS = {
    "ok": "measured: floor from the stochastic side(s) of the pair",
    "deterministic": "both methods are deterministic given the init: floor 0 by construction, excess = d / null",
    "null cannot vary": "the null gives the same distance every draw (e.g. layer_density under the layer shuffle)",
    "floor reaches the null": "siblings are already as far apart as the null: no scale",
    "no siblings": "no sibling distance for a stochastic method of the pair",
}


def _excess_row(r: Any, det: set[str], rtol: float) -> tuple[float, str, str]:
    """``(excess, status, floor_from)`` of one group's row."""
    sa, sb = str(r.a) not in det, str(r.b) not in det
    floor_from = "both" if sa and sb else "a" if sa else "b" if sb else "none"
    nu, sd = float(r.null_mean), float(r.null_std)
    if not np.isfinite(nu) or not np.isfinite(sd) or sd <= rtol * max(abs(nu), abs(float(r.value))):
        return float("nan"), "null cannot vary", floor_from
    wa = float(r.within_a) if sa else float("nan")
    wb = float(r.within_b) if sb else float("nan")
    if floor_from == "none":
        return float(r.value) / nu if nu > 0 else float("nan"), "deterministic", floor_from
    if (sa and not np.isfinite(wa)) or (sb and not np.isfinite(wb)):
        return float("nan"), "no siblings", floor_from
    e = excess_over_siblings(float(r.value), wa, wb, nu, clip=False)
    return (float(e), "ok", floor_from) if np.isfinite(e) else (float("nan"), "floor reaches the null", floor_from)


def sibling_excess(
    rows: pd.DataFrame, *, deterministic: Any = (), unit: str = "unit", confidence: float = 0.95, rtol: float = 1e-9,
) -> pd.DataFrame:
    """Excess over siblings per pair and kind, unclipped, with a t interval over units.

    Per group (density, init seed) row: ``floor`` = the mean sibling distance of the pair's
    *stochastic* methods (a method in ``deterministic`` -- magnitude or SynFlow from one init --
    has identical siblings, a floor 0 by construction, which would halve the pair's floor; it is
    left out of the floor), and ``excess = (value - floor) / (null_mean - floor)``, NOT clipped:
    below 0, more alike than siblings; above 1, farther than the null. A pair of two
    deterministic methods gets ``value / null_mean`` with status ``"deterministic"`` (report it
    apart). Groups whose null cannot vary (``null_std`` ~ 0) or whose floor reaches the null are
    excluded and named (:data:`EXCESS_STATUS`). Per unit the groups' excesses are averaged (the
    unit, not the group, is the replicate), then :func:`~graphtickets.analysis.t_interval`
    over units (``df = units - 1``).

    Parameters
    ----------
    rows : pandas.DataFrame
        Columns ``a, b, kind, value, null_mean, null_std, within_a, within_b`` and ``unit``.
    deterministic : iterable of str
        Method names whose tickets are a function of the init alone.
    unit, confidence, rtol
        The unit column, the interval's confidence, the "cannot vary" tolerance.

    Returns
    -------
    pandas.DataFrame
        ``a, b, kind, excess, low, high, df, units, groups, excluded, status, floor_from``:
        ``groups`` used, ``excluded`` groups left out; ``status`` the pair's (``"ok"``,
        ``"deterministic"``, or the reason of the exclusions when no group is left).

    Examples
    --------
    >>> r = pd.DataFrame({"a": "x", "b": "y", "kind": "jaccard", "value": [0.5, 0.2], "null_mean": [0.9, 0.9],
    ...                   "null_std": 0.01, "within_a": [0.2, 0.2], "within_b": [0.4, 0.4], "unit": [0, 1]})
    >>> sibling_excess(r)[["excess", "units", "status"]].round(3).values.tolist()  # floor 0.3: (1/3 - 1/6) / 2
    [[0.083, 2, 'ok']]
    """
    from graphtickets.analysis.inference import t_interval

    det = {str(m) for m in deterministic}
    need = ["a", "b", "kind", "value", "null_mean", "null_std", "within_a", "within_b", unit]
    missing = [c for c in need if c not in rows]
    if missing:
        raise GraphticketsError(f"sibling_excess needs columns {need}; {missing} are missing")
    cols = ["a", "b", "kind", "excess", "low", "high", "df", "units", "groups", "excluded", "status", "floor_from"]
    num = {c: pd.to_numeric(rows[c], errors="coerce") for c in ("value", "null_mean", "null_std", "within_a", "within_b")}
    rows = rows.assign(**num)  # a kind compared without nulls has None there: NaN, excluded below
    scored = [_excess_row(r, det, rtol) for r in rows.itertuples(index=False)]
    d = rows.assign(_e=[s[0] for s in scored], _s=[s[1] for s in scored], _f=[s[2] for s in scored])
    out = []
    for (a, b, kind), g in d.groupby(["a", "b", "kind"], sort=False):
        used = g[g["_s"].isin(["ok", "deterministic"])]
        per_unit = used.groupby(unit)["_e"].mean()
        ci = t_interval(per_unit.to_numpy())
        status = used["_s"].iloc[0] if len(used) else g["_s"].value_counts().index[0]
        out.append({"a": a, "b": b, "kind": kind, "excess": ci.estimate, "low": ci.low, "high": ci.high, "df": ci.df,
                    "units": ci.n, "groups": len(used), "excluded": len(g) - len(used), "status": status,
                    "floor_from": g["_f"].iloc[0]})  # fmt: skip
    return pd.DataFrame(out, columns=cols)
