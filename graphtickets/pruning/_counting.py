"""Counting on masks, shared by the derived tickets and the analysis (which may not be imported here).

Plain numpy on boolean mask arrays: per-unit degrees, the mean gap of a layer's kept inputs
(a simple locality), exact integer allocation by largest remainder, and a configuration-model
draw of a mask with given row and column sums. Imports nothing of graphtickets but the errors.
"""

from __future__ import annotations

import numpy as np

from graphtickets.errors import GraphticketsError

__all__ = ["unit_degrees", "mean_gap", "allocate", "configuration_mask", "window_mask"]


def unit_degrees(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(fan_in, fan_out)`` of a weight mask ``(out, in, *kernel)``: live entries per output unit
    (row) and per input unit (column); a conv unit is a channel and counts its live kernel entries.

    >>> unit_degrees(np.array([[1, 0, 1], [0, 0, 1]], dtype=bool))
    (array([2, 1]), array([1, 0, 2]))
    """
    m = np.asarray(mask, dtype=bool)
    m3 = m.reshape(m.shape[0], m.shape[1], -1)
    return m3.sum(axis=(1, 2)), m3.sum(axis=(0, 2))


def mean_gap(mask: np.ndarray) -> float:
    """Mean over output units with two or more kept inputs of ``(last - first) / (c - 1)``.

    The inputs of a row are its flattened positions (``in * kernel``), so for an MLP's first
    layer on a 1-D signal this is the mean distance between consecutive kept input positions:
    1 for contiguous windows, about ``(n + 1) / (c + 1)`` for ``c`` uniform positions of ``n``.
    NaN when no unit keeps two inputs.

    >>> mean_gap(np.array([[1, 1, 0, 0, 0], [1, 0, 0, 0, 1]], dtype=bool))
    2.5
    """
    m = np.asarray(mask, dtype=bool).reshape(np.shape(mask)[0], -1)
    c = m.sum(axis=1)
    ok = c >= 2
    if not ok.any():
        return float("nan")
    n = m.shape[1]
    first = m.argmax(axis=1)
    last = n - 1 - m[:, ::-1].argmax(axis=1)
    return float(np.mean((last[ok] - first[ok]) / (c[ok] - 1)))


def allocate(weights: np.ndarray, total: int, caps: np.ndarray) -> np.ndarray:
    """Integer counts summing to ``total``, proportional to ``weights``, each at most its cap.

    Shares ``total * w_i / sum(w)`` are computed; shares above their cap are set to the cap and
    the rest is shared again among the others; then every share is floored and the remaining
    units go to the largest fractional parts (ties: the lower index). All-zero weights share
    uniformly.

    >>> allocate(np.array([1.0, 1.0, 2.0]), 5, np.array([10, 10, 10])).tolist()
    [1, 1, 3]
    >>> allocate(np.array([0.0, 9.0, 1.0]), 6, np.array([10, 4, 10])).tolist()
    [0, 4, 2]
    """
    w = np.clip(np.asarray(weights, dtype=np.float64), 0.0, None)
    caps = np.asarray(caps, dtype=np.int64)
    total = int(total)
    if total > int(caps.sum()) or total < 0:
        raise GraphticketsError(f"cannot place {total} weights in slots of {int(caps.sum())}")
    counts = np.zeros(w.shape[0], dtype=np.int64)
    active = caps > 0
    while True:
        remaining = total - int(counts.sum())
        if remaining == 0:
            return counts
        ww = np.where(active, w, 0.0)
        if ww.sum() <= 0:
            ww = active.astype(np.float64)
        share = remaining * ww / ww.sum()
        over = active & (share >= caps - counts)
        if over.any() and (share[over] > (caps - counts)[over]).any():
            counts[over] = caps[over]
            active &= ~over
            continue
        base = np.floor(share).astype(np.int64)
        counts += base
        rest = remaining - int(base.sum())
        frac = np.where(active & (counts < caps), share - base, -1.0)
        counts[np.argsort(-frac, kind="stable")[:rest]] += 1
        return counts


def _excess(codes: np.ndarray, cap: int) -> np.ndarray:
    """Indices of the occurrences of a code beyond its first ``cap`` (in index order)."""
    order = np.argsort(codes, kind="stable")
    sc = codes[order]
    start = np.searchsorted(sc, sc, side="left")
    rank = np.arange(sc.shape[0]) - start
    return np.sort(order[rank >= cap])


def configuration_mask(
    rows: np.ndarray, cols: np.ndarray, shape: tuple[int, ...], rng: np.random.Generator, *, rounds: int = 200
) -> tuple[np.ndarray, int]:
    """A mask of ``shape`` with row sums ``rows`` and column sums ``cols``: a configuration model.

    Row stubs are paired with a seeded permutation of column stubs; a unit pair (row, column)
    holds at most ``prod(shape[2:])`` live entries (1 for a Linear weight, the kernel size for a
    conv). Pairs over that capacity are repaired by degree-preserving swaps of column ends with
    random other stubs (accepted only if both new pairs have room), in up to ``rounds``
    vectorized rounds; stubs still over capacity then are dropped and replaced by random free
    entries (the *misses*, returned: each moves one row and one column sum by one). Within a
    pair, the kernel entries are drawn at random.

    Returns
    -------
    (numpy.ndarray, int)
        The boolean mask and the number of misses (0: the sums are exact).
    """
    out, inn = shape[0], shape[1]
    cap = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    rows, cols = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
    if int(rows.sum()) != int(cols.sum()):
        raise GraphticketsError(f"row sums ({int(rows.sum())}) and column sums ({int(cols.sum())}) differ")
    r = np.repeat(np.arange(out), rows)
    c = rng.permutation(np.repeat(np.arange(inn), cols))
    m = r.shape[0]
    for _ in range(rounds):
        codes = r * inn + c
        bad = _excess(codes, cap)
        if bad.shape[0] == 0 or m < 2:
            break
        partner = np.asarray(rng.integers(0, m, size=bad.shape[0]), dtype=np.int64)
        new_a, new_b = r[bad] * inn + c[partner], r[partner] * inn + c[bad]
        uniq, cnt = np.unique(codes, return_counts=True)
        room = (_held(uniq, cnt, new_a) < cap) & (_held(uniq, cnt, new_b) < cap)
        room &= ~np.isin(partner, bad) & (new_a != new_b)
        once = _unique_once(np.concatenate([new_a, new_b]))
        ok = room & once[: bad.shape[0]] & once[bad.shape[0]:] & _unique_once(partner)
        a, b = bad[ok], partner[ok]
        c[a], c[b] = c[b].copy(), c[a].copy()
    codes = r * inn + c
    bad = _excess(codes, cap)
    keep = np.ones(m, dtype=bool)
    keep[bad] = False
    mask = _fill_kernels(codes[keep], (out, inn, cap), rng)
    misses = int(bad.shape[0])
    if misses:
        free = np.flatnonzero(~mask.reshape(-1))
        mask.reshape(-1)[rng.choice(free, size=misses, replace=False)] = True
    return mask.reshape(shape), misses


def _held(uniq: np.ndarray, cnt: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """How many stubs each of ``codes`` holds now (0 for a code not in the sorted ``uniq``)."""
    if uniq.shape[0] == 0:
        return np.zeros(codes.shape[0], dtype=np.int64)
    pos = np.minimum(np.searchsorted(uniq, codes), uniq.shape[0] - 1)
    return np.where(uniq[pos] == codes, cnt[pos], 0)


def _unique_once(a: np.ndarray) -> np.ndarray:
    """Whether each entry of ``a`` occurs exactly once in ``a``."""
    _, first, seen = np.unique(a, return_index=True, return_counts=True)
    out = np.zeros(a.shape[0], dtype=bool)
    out[first[seen == 1]] = True
    return out


def _fill_kernels(codes: np.ndarray, shape3: tuple[int, int, int], rng: np.random.Generator) -> np.ndarray:
    """A ``(out, in, cap)`` mask with, for each pair code, as many random kernel entries as it occurs."""
    out, inn, cap = shape3
    mask = np.zeros((out * inn, cap), dtype=bool)
    uniq, cnt = np.unique(codes, return_counts=True)
    if uniq.shape[0]:
        ranks = np.argsort(rng.random((uniq.shape[0], cap)), axis=1)
        take = ranks < cnt[:, None]  # the cnt entries of smallest random rank
        mask[uniq] = take
    return mask.reshape(out, inn, cap)


def window_mask(counts: np.ndarray, n: int, gap: float, rng: np.random.Generator) -> np.ndarray:
    """A ``(len(counts), n)`` mask: row ``i`` keeps ``counts[i]`` positions of a contiguous window.

    The window of a row with ``c >= 2`` kept spans ``s = clip(round(gap * (c - 1)), c - 1, n - 1)``
    positions beyond its first, starts uniformly in ``[0, n - 1 - s]``, keeps both ends and
    ``c - 2`` of its interior positions uniformly, so the row's gap ``s / (c - 1)`` is ``gap``
    up to that rounding and clipping. A row with one kept position keeps a uniform one.
    """
    counts = np.asarray(counts, dtype=np.int64)
    mask = np.zeros((counts.shape[0], n), dtype=bool)
    for i, c in enumerate(counts.tolist()):  # one draw per unit (rows are few), not per weight
        if c <= 0:
            continue
        if c == 1:
            mask[i, int(rng.integers(0, n))] = True
            continue
        span = int(min(max(round(gap * (c - 1)), c - 1), n - 1))
        start = int(rng.integers(0, n - span))
        inner = rng.choice(np.arange(start + 1, start + span), size=c - 2, replace=False)
        mask[i, [start, start + span, *inner.tolist()]] = True
    return mask
