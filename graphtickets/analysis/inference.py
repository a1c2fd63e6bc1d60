"""Calibrated tests against null draws, the init seed as the unit, intervals that say what they are.

Every p-value here is a Monte Carlo (randomization) p-value whose validity does not rest on a
normal approximation: under the null, ``P(p <= u) <= u`` for every ``u``. z-scores are kept as
effect sizes only.

* :func:`null_test` -- one observed statistic against its null draws: exceedance counts and
  empirical p-values ``(1 + #{null as or more extreme}) / (1 + k)`` (one-sided both ways and
  two-sided), optionally with the sequential stopping rule of Besag & Clifford (1991), which
  draws more only where the p-value is small.
* :func:`joint_null_test` -- the init seed as the unit: each unit (seed) measured in several
  groups (densities) whose null draws were made jointly (draw ``i`` of every group from one
  stream) is combined within the unit first (the mean of a pool-standardized effect), then
  over independent units (the mean of the units' statistics), against the same statistic of
  every joint draw: one exactly valid randomization p-value per pair.
* :func:`combine_independent` -- Fisher's or Stouffer's combination of the p-values of
  independent units (never of groups that share a seed); conservative on discrete p-values.
* :func:`t_interval` -- the Student t interval over a few independent units, its degrees of
  freedom stated (the values themselves when there are fewer than two).
* :func:`min_pvalue` -- the smallest p a procedure can give (what "p = 0" really is).

References
----------
.. [1] J. Besag, P. Clifford, "Sequential Monte Carlo p-values", Biometrika 78, 1991.
.. [2] B. V. North, D. Curtis, P. C. Sham, "A note on the calculation of empirical P values
   from Monte Carlo procedures", Am. J. Hum. Genet. 71, 2002 (``(1 + r) / (1 + k)``).
.. [3] R. A. Fisher, "Statistical Methods for Research Workers", 1932 (sec. 21.1); S. A.
   Stouffer et al., "The American Soldier", 1949.
.. [4] E. J. G. Pitman, "Significance tests which may be applied to samples from any
   populations", J. R. Stat. Soc. Suppl. 4, 1937 (randomization tests).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats as sps

from graphtickets.errors import GraphticketsError

__all__ = ["NullTest", "null_test", "settled", "min_pvalue", "JointTest", "pooled_effects", "joint_null_test", "combine_independent",
           "TInterval", "t_interval", "combine_units", "TIE_RTOL"]

#: Distances equal up to this fraction of their scale count as ties (ties count as extreme).
TIE_RTOL = 1e-9


@dataclass(frozen=True)
class NullTest:
    """An observed statistic against its null draws.

    Attributes
    ----------
    n_closer, n_farther : int
        Null draws ``<= value`` and ``>= value`` (ties count on both sides) among ``draws``.
    draws : int
        Null draws used (fewer than given when the sequential rule stopped early).
    p_closer, p_farther : float
        One-sided empirical p-values (small: the observed value is smaller / larger than the null).
    p : float
        Two-sided, ``min(1, 2 * min(p_closer, p_farther))``.
    """

    n_closer: int
    n_farther: int
    draws: int
    p_closer: float
    p_farther: float
    p: float


def _side_p(extreme: np.ndarray, stop_after: int | None) -> tuple[float, int]:
    """The p-value of one side and the draws it needed (all of them without a stopping rule)."""
    k = int(extreme.size)
    count = int(extreme.sum())
    if stop_after is None or count < stop_after:
        return (1.0 + count) / (1.0 + k), k
    at = int(np.argmax(np.cumsum(extreme) >= stop_after)) + 1  # the draw giving the h-th exceedance
    return stop_after / at, at


def null_test(value: float, nulls: Any, *, stop_after: int | None = None, rtol: float = TIE_RTOL) -> NullTest:
    """Empirical p-values of ``value`` against null draws ``nulls`` (in the order they were drawn).

    Fixed number of draws (``stop_after=None``): with ``k`` draws and ``r`` of them as or more
    extreme than ``value``, ``p = (1 + r) / (1 + k)`` on each side -- exactly valid when the
    observed value and the draws are exchangeable under the null, never below ``1 / (1 + k)``.

    Sequential (``stop_after=h``, Besag & Clifford 1991): a side stops at the draw ``l`` that
    gives its ``h``-th exceedance, with ``p = h / l``; a side that never reaches ``h`` in the
    ``k`` draws given (``k`` the maximum) has ``p = (1 + r) / (1 + k)``. Both are exactly valid
    p-values; a test whose value sits in the bulk of its null stops after about ``h / p`` draws,
    one far in a tail uses all ``k`` (floor ``1 / (1 + k)``). ``draws`` is the larger of the two
    sides' stopping draws: the draws beyond it change nothing, so the result does not depend on
    how many were computed past it (a caller may draw in batches).

    Parameters
    ----------
    value : float
    nulls : array_like
        1-D, in draw order.
    stop_after : int, optional
        ``h`` (``>= 1``) of the sequential rule.
    rtol : float
        Ties: ``|null - value| <= rtol * max(|value|, |mean(nulls)|)`` counts as extreme on both sides.

    Returns
    -------
    NullTest

    Examples
    --------
    >>> null_test(0.5, [0.9, 0.8, 0.7, 0.6])  # smaller than all 4 nulls: p = 1 / 5
    NullTest(n_closer=0, n_farther=4, draws=4, p_closer=0.2, p_farther=1.0, p=0.4)
    >>> null_test(0.5, [0.1, 0.9, 0.2, 0.8, 0.3, 0.7], stop_after=2).draws  # both sides saw 2 by draw 4
    4
    """
    v = np.asarray(nulls, dtype=np.float64).ravel()
    if v.size == 0 or not np.isfinite(value) or not np.all(np.isfinite(v)):
        nan = float("nan")
        return NullTest(0, 0, int(v.size), nan, nan, nan)
    if stop_after is not None and int(stop_after) < 1:
        raise GraphticketsError(f"stop_after must be >= 1 (exceedances before a side stops), got {stop_after!r}")
    tie = rtol * max(abs(float(value)), abs(float(v.mean())))
    closer, farther = v <= value + tie, v >= value - tie
    h = None if stop_after is None else int(stop_after)
    p_lo, l_lo = _side_p(closer, h)
    p_hi, l_hi = _side_p(farther, h)
    used = max(l_lo, l_hi)
    return NullTest(int(closer[:used].sum()), int(farther[:used].sum()), used, float(p_lo), float(p_hi),
                    float(min(1.0, 2.0 * min(p_lo, p_hi))))  # fmt: skip


def settled(test: NullTest, stop_after: int) -> bool:
    """Whether both sides of a sequential test reached ``stop_after`` exceedances (no more draws needed)."""
    return test.n_closer >= stop_after and test.n_farther >= stop_after


def min_pvalue(draws: int, *, alternative: str = "two-sided", units: int = 1, method: str = "fisher") -> float:
    """The smallest p-value a test with ``draws`` null draws can give (per unit, then combined).

    One-sided ``1 / (1 + draws)``, two-sided twice that; with ``units`` independent units each at
    its floor, combined by :func:`combine_independent` (``method``).

    Examples
    --------
    >>> min_pvalue(999, alternative="less"), min_pvalue(10)
    (0.001, 0.18181818181818182)
    >>> f"{min_pvalue(999, alternative='less', units=3):.2g}"  # Fisher over 3 seeds at p = 0.001
    '2.4e-07'
    """
    p = (1.0 if alternative != "two-sided" else 2.0) / (1.0 + int(draws))
    return p if units == 1 else combine_independent([min(p, 1.0)] * int(units), method=method)


@dataclass(frozen=True)
class JointTest:
    """A pair's test over independent units (init seeds), each measured in several groups (densities).

    Attributes
    ----------
    effect : float
        Mean over units of the unit's effect (negative: closer than the null).
    unit_effects : tuple of float
        Each unit's effect: the mean over its groups of ``(value_g - m_g) / s_g``, ``m_g`` and
        ``s_g`` the mean and sd of the pool ``{value_g} + nulls_g``.
    groups : int
        Groups used over all units (those whose pool varies).
    test : NullTest
        ``effect`` against the same statistic of every joint draw.
    """

    effect: float
    unit_effects: tuple[float, ...]
    groups: int
    test: NullTest


def pooled_effects(values: Any, nulls: Any, *, rtol: float = TIE_RTOL) -> tuple[np.ndarray, int]:
    """One unit's statistic for the observed values (entry 0) and each of its ``k`` joint draws.

    ``values[g]`` is the unit's statistic in group ``g`` and ``nulls[g, i]`` its ``i``-th draw;
    the statistic of a vector ``x`` (observed or draw ``i``) is the mean over groups of ``(x_g -
    m_g) / s_g``, ``m_g`` and ``s_g`` the mean and sd of group ``g``'s pool (observed value and
    ``k`` draws). Groups whose pool does not vary are left out (second return value: groups used).

    Examples
    --------
    >>> t, used = pooled_effects([0.1, 1.0], [[0.5, 0.6, 0.7], [2.0, 2.1, 2.2]])
    >>> used, int(np.argmin(t))  # the observed vector is the most extreme of the 4
    (2, 0)
    """
    x = np.asarray(values, dtype=np.float64).ravel()
    v = np.asarray(nulls, dtype=np.float64)
    if v.ndim != 2 or v.shape[0] != x.size:
        raise GraphticketsError(f"nulls must have shape (groups, draws) = ({x.size}, k), got {v.shape}")
    pool = np.concatenate([x[:, None], v], axis=1)
    ok = np.all(np.isfinite(pool), axis=1)
    safe = np.where(ok[:, None], pool, 0.0)
    sd = safe.std(axis=1, ddof=1) if pool.shape[1] > 1 else np.zeros(x.size)
    ok &= sd > rtol * np.maximum(np.abs(safe).max(axis=1), 1e-300)
    if not ok.any():
        return np.full(pool.shape[1], np.nan), 0
    zs = (safe[ok] - safe[ok].mean(axis=1, keepdims=True)) / sd[ok, None]
    return zs.mean(axis=0), int(ok.sum())


def joint_null_test(units: Any, *, rtol: float = TIE_RTOL) -> JointTest:
    """Within each unit first, then over units: one exact randomization test of a pair.

    ``units`` is a sequence of ``(values, nulls)``, one per independent unit (init seed):
    ``values[g]`` the pair's distance in group ``g`` of the unit (density ``g``) and
    ``nulls[g, i]`` its ``i``-th null draw, draw ``i`` of every group of the unit coming from one
    joint draw (the same permutation stream, so the draws keep what ties the groups together:
    nested masks at two densities, one training trajectory). Each unit's statistic is
    :func:`pooled_effects` (a symmetric function of its pools, so the unit's observed vector and
    its ``k`` draws stay exchangeable under the null however dependent its groups are); units
    draw independently, so the mean over units of draw ``i`` is a draw of the mean statistic,
    and :func:`null_test` of the observed mean against the ``k`` draws is exactly valid --
    without the conservatism of Fisher's method on discrete p-values (see
    :func:`combine_independent`). All units need the same ``k``; floor ``1 / (1 + k)``.

    Examples
    --------
    >>> r = joint_null_test([([0.1, 1.0], [[0.5, 0.6, 0.7], [2.0, 2.1, 2.2]]), ([0.2], [[0.3, 0.4, 0.5]])])
    >>> r.groups, r.test.p_closer  # every group below all its draws: p = 1 / 4
    (3, 0.25)
    """
    stats, effects, used = [], [], 0
    for values, nulls in units:
        t, g = pooled_effects(values, nulls, rtol=rtol)
        if g:
            stats.append(t)
            effects.append(float(t[0]))
            used += g
    if not stats or len({s.size for s in stats}) != 1:
        if stats:
            raise GraphticketsError("every unit of a joint test needs the same number of null draws")
        nan = float("nan")
        return JointTest(nan, (), 0, NullTest(0, 0, 0, nan, nan, nan))
    total = np.mean(stats, axis=0)
    return JointTest(float(total[0]), tuple(effects), used, null_test(float(total[0]), total[1:], rtol=rtol))


def combine_independent(pvalues: Any, *, method: str = "fisher") -> float:
    """One p-value from the p-values of independent units (init seeds), Fisher's or Stouffer's.

    Fisher: ``X = -2 sum(log p_u)``, ``p = P(chi2_{2n} >= X)``. Stouffer: ``Z = sum(Phi^{-1}(1 -
    p_u)) / sqrt(n)``, ``p = 1 - Phi(Z)`` (one-sided p-values of one direction). Both are valid
    for independent p-values that are valid (``P(p_u <= u) <= u``; empirical p-values are), and
    conservative when they are discrete: measured for 3 units with ``k`` draws each (two-sided,
    ``2 min`` of the two directions, 4,000 replicates, nominal 0.05), ``k = 19``: 0.005,
    ``k = 99``: 0.032, ``k = 999``: 0.044 -- prefer :func:`joint_null_test` over units when
    their draws are at hand. Never use them over groups that share an init seed (nested masks,
    one trajectory, shared nulls): combine those within the seed first. NaN p-values are left
    out; none left gives NaN.

    Examples
    --------
    >>> round(combine_independent([0.01, 0.2, 0.5]), 4)
    0.0318
    >>> round(combine_independent([0.05, 0.05], method="stouffer"), 4)
    0.01
    """
    p = np.asarray(pvalues, dtype=np.float64).ravel()
    p = p[np.isfinite(p)]
    if np.any((p <= 0) | (p > 1)):
        raise GraphticketsError("p-values to combine must lie in (0, 1] (an empirical p is never 0)")
    if p.size == 0:
        return float("nan")
    if method == "fisher":
        return float(sps.chi2.sf(-2.0 * np.log(p).sum(), 2 * p.size))
    if method == "stouffer":
        return float(sps.norm.sf(sps.norm.isf(p).sum() / np.sqrt(p.size)))
    raise GraphticketsError(f"method must be 'fisher' or 'stouffer', got {method!r}")


@dataclass(frozen=True)
class TInterval:
    """A Student t interval of a mean over independent units.

    Attributes
    ----------
    estimate, low, high : float
        The mean and the interval (NaN bounds with fewer than 2 values).
    n : int
        Finite values.
    df : int
        Degrees of freedom, ``n - 1``.
    confidence : float
    values : tuple of float
        The values themselves (what to show instead of an interval when ``n`` is tiny).
    """

    estimate: float
    low: float
    high: float
    n: int
    df: int
    confidence: float
    values: tuple[float, ...]

    def text(self, digits: int = 3) -> str:
        """``"m [lo, hi] (t, df = n-1)"``, or the values themselves with fewer than 2."""
        if self.n == 0:
            return ""
        if self.n < 2:
            return f"{self.estimate:.{digits}f} (one value)"
        return (f"{self.estimate:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}] "
                f"(t, df = {self.df})")  # fmt: skip


def t_interval(values: Any, *, confidence: float = 0.95) -> TInterval:
    """The Student t interval ``mean +- t_{n-1, (1+c)/2} s / sqrt(n)`` over independent units.

    With a few init seeds (3 in the default study) a percentile bootstrap gives ``[min, max]``
    of the values (27 distinct resamples) and covers a normal mean ~75 % of the time at
    "95 %"; the t interval is exact for normal units and states its degrees of freedom.
    NaN values are dropped.

    Examples
    --------
    >>> ci = t_interval([0.80, 0.82, 0.84])
    >>> round(ci.estimate, 3), round(ci.high - ci.estimate, 4), ci.df  # t_{2, .975} = 4.303, s = 0.02
    (0.82, 0.0497, 2)
    >>> ci.text()
    '0.820 [0.770, 0.870] (t, df = 2)'
    """
    if not 0.0 < float(confidence) < 1.0:
        raise GraphticketsError(f"confidence must be in (0, 1), got {confidence!r}")
    x = np.asarray(values, dtype=np.float64).ravel()
    x = x[np.isfinite(x)]
    n = int(x.size)
    vals = tuple(float(v) for v in x)
    if n == 0:
        return TInterval(float("nan"), float("nan"), float("nan"), 0, 0, float(confidence), vals)
    m = float(x.mean())
    if n < 2:
        return TInterval(m, float("nan"), float("nan"), 1, 0, float(confidence), vals)
    half = float(sps.t.ppf((1 + float(confidence)) / 2, n - 1) * x.std(ddof=1) / np.sqrt(n))
    return TInterval(m, m - half, m + half, n, n - 1, float(confidence), vals)


def combine_units(table: Any, *, by: Any = ("a", "b", "kind"), unit: str = "unit", effect: str = "effect",
                  method: str = "fisher", confidence: float = 0.95) -> Any:  # fmt: skip
    """Per test (``by``), combine independent units' one-sided p-values and effects.

    ``table`` holds one row per unit and test with ``p_closer``, ``p_farther`` (valid one-sided
    p-values of the unit, independent across units) and ``effect``. When the units' null draws
    are at hand prefer :func:`joint_null_test` (:func:`~graphtickets.analysis.compare_joint`):
    Fisher on discrete empirical p-values is conservative (see :func:`combine_independent`). Per test: ``p_closer`` and ``p_farther`` combined over units by
    :func:`combine_independent`, ``p_two_sided = min(1, 2 min(...))``, the mean effect with its
    :func:`t_interval` over units (``df = units - 1``), and ``p_min`` -- the smallest two-sided
    p these units could have given (every unit at its floor ``1 / (1 + null_n)``), which says
    what the design can detect (with 3 seeds and 999 draws each, Fisher: 4.7e-7).

    Returns
    -------
    pandas.DataFrame
        ``*by, units, effect, low, high, df, p_closer, p_farther, p_two_sided, p_min``.
    """
    import pandas as pd

    by = list(by)
    rows = []
    for key, g in table.groupby(by, sort=False):
        ci = t_interval(g[effect].to_numpy(float), confidence=confidence)
        lo = combine_independent(g["p_closer"].to_numpy(float), method=method)
        hi = combine_independent(g["p_farther"].to_numpy(float), method=method)
        floor = (1.0 / (1.0 + g["null_n"].to_numpy(float))) if "null_n" in g else np.full(len(g), np.nan)
        pmin = min(1.0, 2.0 * combine_independent(floor, method=method)) if np.all(np.isfinite(floor)) else float("nan")
        rows.append({**dict(zip(by, key if isinstance(key, tuple) else (key,), strict=True)), "units": int(g[unit].nunique()),
                     "effect": ci.estimate, "low": ci.low, "high": ci.high, "df": ci.df, "p_closer": lo, "p_farther": hi,
                     "p_two_sided": min(1.0, 2.0 * min(lo, hi)), "p_min": pmin})  # fmt: skip
    return pd.DataFrame(rows, columns=[*by, "units", "effect", "low", "high", "df", "p_closer", "p_farther", "p_two_sided", "p_min"])
