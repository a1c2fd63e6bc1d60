"""Correlations a study tests: structure vs function over groups, structure vs accuracy beyond density.

* :func:`joint_mantel` -- the mean within-group Spearman rho between two distances over the
  same objects (methods) in several groups (densities, init seeds), with a permutation p that
  permutes the object labels *jointly* (the same permutation in every group): the same methods
  recur in every group, so their pairs are not exchangeable group by group.
* :func:`partial_correlation` -- the (Spearman or Pearson) correlation of two variables once
  covariates are regressed out (e.g. a structural metric and trained accuracy, given the layer
  densities), with a t or permutation p-value and its degrees of freedom.
* :func:`partial_correlations` -- that for every metric column of a table, as a table of tests.

References
----------
.. [1] N. Mantel, "The detection of disease clustering and a generalized regression
   approach", Cancer Research 27, 1967; P. Legendre, L. Legendre, "Numerical Ecology", 3rd ed.,
   2012, sec. 10.5 (Mantel tests; permutations restricted to keep a design's structure).
.. [2] M. G. Kendall, "Partial rank correlation", Biometrika 32, 1942; R. A. Fisher, "The
   distribution of the partial correlation coefficient", Metron 3, 1924 (``df = n - 2 - q``).
.. [3] E. Cunegatti et al., "Understanding Sparse Neural Networks from their Topology via
   Multipartite Graph Representations", TMLR 2024 (structure predicting accuracy beyond density).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps
from scipy.stats import rankdata

from graphtickets.analysis.stats import MantelResult
from graphtickets.errors import GraphticketsError

__all__ = ["joint_mantel", "PartialResult", "partial_correlation", "partial_correlations"]


def _labelled(mats: Sequence[Any], what: str) -> list[pd.DataFrame]:
    out = []
    for m in mats:
        if not isinstance(m, pd.DataFrame):
            m = pd.DataFrame(np.asarray(m, dtype=np.float64))
        if list(m.index) != list(m.columns):
            raise GraphticketsError(f"{what}: every matrix must have the same labels on rows and columns")
        out.append(m.astype(np.float64))
    return out


def _zranks(v: np.ndarray) -> np.ndarray:
    r = rankdata(v)
    sd = r.std()
    return (r - r.mean()) / sd if sd > 0 else np.full(v.shape, np.nan)


def joint_mantel(
    d1: Sequence[Any], d2: Sequence[Any], *, permutations: int = 999, seed: int = 0, alternative: str = "two-sided",
) -> MantelResult:
    """Mean within-group Spearman rho of two distances, with a joint permutation of the labels.

    In each group ``g`` the statistic is Spearman's rho between the upper triangles of
    ``d1[g]`` and ``d2[g]`` over the labels every group has; the statistic is the mean over
    groups (no pooling across groups, so differences between densities cannot make a
    correlation). The p-value permutes the labels of every ``d2[g]`` with *one* permutation
    (rows and columns), the same in every group: under the null that ``d2`` is unrelated to
    ``d1`` the methods' labels are exchangeable, but a method's functional distances are alike
    in every group, which independent per-group permutations would destroy (they are
    anti-conservative). ``p = (1 + #{extreme}) / (1 + permutations)`` from random
    permutations, or exact, ``#{extreme} / n!``, when ``n! <= permutations``; extreme means
    ``|r_perm| >= |r|`` (``"two-sided"``), ``>=`` (``"greater"``) or ``<=`` (``"less"``).

    Parameters
    ----------
    d1, d2 : sequence of pandas.DataFrame or array_like
        One symmetric matrix per group, labelled by object (method); unlabelled arrays are
        labelled ``0..n-1``. Only labels present in every matrix are used; their pairs must
        be finite.
    permutations : int, default 999
    seed : int, default 0
    alternative : {"two-sided", "greater", "less"}

    Returns
    -------
    MantelResult
        ``n`` the number of objects; NaN statistic when a group's distances are all equal.

    Examples
    --------
    >>> import numpy as np
    >>> d = np.array([[0, 1, 2, 3], [1, 0, 4, 5], [2, 4, 0, 6], [3, 5, 6, 0]], dtype=float)
    >>> r = joint_mantel([d, d + 1], [d ** 2, d])
    >>> r.statistic, r.exact, r.permutations, round(r.pvalue, 4)  # only the identity gives rho = 1: 1 / 24
    (1.0, True, 24, 0.0417)
    """
    a, b = _labelled(d1, "d1"), _labelled(d2, "d2")
    if len(a) != len(b) or not a:
        raise GraphticketsError(f"d1 and d2 must hold one matrix per group each, got {len(a)} and {len(b)}")
    if alternative not in ("two-sided", "greater", "less"):
        raise GraphticketsError(f"alternative must be 'two-sided', 'greater' or 'less', got {alternative!r}")
    labels = [x for x in a[0].index if all(x in m.index for m in (*a, *b))]
    n = len(labels)
    if n < 3:
        raise GraphticketsError(f"joint_mantel needs at least 3 objects shared by every group, got {n}")
    iu = np.triu_indices(n, 1)
    xs = np.stack([_zranks(m.loc[labels, labels].to_numpy()[iu]) for m in a])
    ys = np.stack([m.loc[labels, labels].to_numpy() for m in b])
    if not (np.all(np.isfinite(ys[:, iu[0], iu[1]])) and np.all(np.isfinite(np.stack([m.loc[labels, labels].to_numpy()[iu] for m in a])))):
        raise GraphticketsError("joint_mantel needs finite distances for every pair of the shared objects")
    zy = np.zeros_like(ys)
    for g in range(len(b)):  # ranks of y move with a permutation of the objects: rank once
        zy[g][iu] = _zranks(ys[g][iu])
        zy[g] = zy[g] + zy[g].T
    if not (np.all(np.isfinite(xs)) and np.all(np.isfinite(zy))):
        return MantelResult(float("nan"), float("nan"), n, 0, False)

    def stat(perm: np.ndarray) -> float:
        return float(np.mean(xs * zy[:, perm[iu[0]], perm[iu[1]]]))

    r = stat(np.arange(n))
    tol = 1e-12 * max(1.0, abs(r))
    sign = {"greater": 1.0, "less": -1.0}.get(alternative)

    def extreme(v: float) -> bool:
        return abs(v) >= abs(r) - tol if sign is None else sign * v >= sign * r - tol

    if math.factorial(n) <= int(permutations):
        count = sum(extreme(stat(np.asarray(p))) for p in itertools.permutations(range(n)))
        return MantelResult(r, count / math.factorial(n), n, math.factorial(n), True)
    if int(permutations) < 1:
        raise GraphticketsError(f"permutations must be >= 1, got {permutations!r}")
    rng = np.random.default_rng(seed)
    count = sum(extreme(stat(rng.permutation(n))) for _ in range(int(permutations)))
    return MantelResult(r, (1 + count) / (1 + int(permutations)), n, int(permutations), False)


@dataclass(frozen=True)
class PartialResult:
    """A partial correlation.

    Attributes
    ----------
    statistic : float
        Correlation of the residuals (of the ranks, for Spearman).
    pvalue : float
        Two-sided.
    n : int
        Complete observations.
    df : int
        ``n - 2 - q`` (``q`` covariates): of the t reference, and what limits the test.
    method : str
        ``"spearman"`` or ``"pearson"``.
    reference : str
        ``"t"`` or ``"permutation"``.
    """

    statistic: float
    pvalue: float
    n: int
    df: int
    method: str
    reference: str


def _residuals(v: np.ndarray, design: np.ndarray) -> np.ndarray:
    coef, *_ = np.linalg.lstsq(design, v, rcond=None)
    return v - design @ coef


def partial_correlation(
    x: Any, y: Any, covariates: Any = None, *, method: str = "spearman", permutations: int = 0, seed: int = 0,
) -> PartialResult:
    """Correlation of ``x`` and ``y`` once ``covariates`` are accounted for (Spearman or Pearson).

    Spearman: ``x``, ``y`` and each covariate are replaced by their ranks (ties averaged);
    then ``x`` and ``y`` are regressed by least squares on ``[1, covariates]`` and the
    statistic is Pearson's r of the two residuals -- the partial correlation (with one
    covariate ``z``: ``(r_xy - r_xz r_yz) / sqrt((1 - r_xz^2)(1 - r_yz^2))``). p-value: two-sided
    from ``t = r sqrt(df / (1 - r^2))`` on ``df = n - 2 - q`` (exact for normal Pearson data,
    the usual approximation for ranks), or with ``permutations > 0`` from permuting ``y``'s
    residuals, ``(1 + #{|r_perm| >= |r|}) / (1 + permutations)``. Rows with a NaN are dropped.

    Parameters
    ----------
    x, y : array_like, shape (n,)
    covariates : array_like, shape (n,) or (n, q), optional
    method : {"spearman", "pearson"}
    permutations : int, default 0
    seed : int, default 0

    Returns
    -------
    PartialResult
        NaN statistic and p when ``df < 1`` or a residual is constant.

    Examples
    --------
    >>> x = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    >>> r = partial_correlation(x, [2.0, 1.0, 4.0, 3.0, 6.0, 5.0], [1, 1, 2, 2, 3, 3])
    >>> round(r.statistic, 3), r.df  # within each level of the covariate y runs against x
    (-1.0, 3)
    """
    if method not in ("spearman", "pearson"):
        raise GraphticketsError(f"method must be 'spearman' or 'pearson', got {method!r}")
    xv, yv = (np.asarray(v, dtype=np.float64).ravel() for v in (x, y))
    if xv.size != yv.size:
        raise GraphticketsError(f"x and y must have the same length, got {xv.size} and {yv.size}")
    z = np.zeros((xv.size, 0)) if covariates is None else np.asarray(covariates, dtype=np.float64).reshape(xv.size, -1)
    ok = np.isfinite(xv) & np.isfinite(yv) & np.all(np.isfinite(z), axis=1)
    xv, yv, z = xv[ok], yv[ok], z[ok]
    if method == "spearman":
        xv, yv = rankdata(xv), rankdata(yv)
        z = np.column_stack([rankdata(c) for c in z.T]) if z.shape[1] else z
    n, q = int(xv.size), int(z.shape[1])
    df = n - 2 - q
    ref = "permutation" if permutations > 0 else "t"
    nan = float("nan")
    if df < 1:
        return PartialResult(nan, nan, n, df, method, ref)
    design = np.column_stack([np.ones(n), z])
    rx, ry = _residuals(xv, design), _residuals(yv, design)
    sx, sy = np.linalg.norm(rx), np.linalg.norm(ry)
    if sx <= 1e-12 * max(1.0, np.abs(xv).max()) or sy <= 1e-12 * max(1.0, np.abs(yv).max()):
        return PartialResult(nan, nan, n, df, method, ref)
    r = float(np.clip(rx @ ry / (sx * sy), -1.0, 1.0))
    if permutations > 0:
        rng = np.random.default_rng(seed)
        perm = np.stack([rng.permutation(n) for _ in range(int(permutations))])
        rp = (ry[perm] @ rx) / (sx * sy)
        p = (1 + int(np.sum(np.abs(rp) >= abs(r) - 1e-12))) / (1 + int(permutations))
    else:
        t = r * math.sqrt(df / max(1.0 - r * r, 1e-300))
        p = float(2.0 * sps.t.sf(abs(t), df))
    return PartialResult(r, float(p), n, df, method, ref)


def partial_correlations(
    table: pd.DataFrame, metrics: Sequence[str], target: str, covariates: Sequence[str], *,
    method: str = "spearman", permutations: int = 0, seed: int = 0, family: str = "structure -> accuracy",
) -> pd.DataFrame:
    """:func:`partial_correlation` of every metric column with ``target`` given ``covariates``, as tests.

    Returns
    -------
    pandas.DataFrame
        ``metric, statistic, p, df, n, family, unit, method, reference`` -- one test per metric,
        ready for :func:`~graphtickets.analysis.adjust_tests` (``unit``: ``"ticket"``).

    Examples
    --------
    >>> t = pd.DataFrame({"m": [1, 2, 3, 4, 5, 6.], "acc": [2, 1, 4, 3, 6, 5.], "d": [1, 1, 2, 2, 3, 3.]})
    >>> partial_correlations(t, ["m"], "acc", ["d"])[["metric", "df", "n"]].values.tolist()
    [['m', 3, 6]]
    """
    missing = [c for c in [*metrics, target, *covariates] if c not in table]
    if missing:
        raise GraphticketsError(f"columns {missing} are not in the table (it has {sorted(table.columns)[:12]}...)")
    rows = []
    z = table[list(covariates)].to_numpy(np.float64) if covariates else None
    for m in metrics:
        r = partial_correlation(table[m], table[target], z, method=method, permutations=permutations, seed=seed)
        rows.append({"metric": m, "statistic": r.statistic, "p": r.pvalue, "df": r.df, "n": r.n, "family": family,
                     "unit": "ticket", "method": r.method, "reference": r.reference})  # fmt: skip
    return pd.DataFrame(rows, columns=["metric", "statistic", "p", "df", "n", "family", "unit", "method", "reference"])
