"""Graph generators for relational graphs: You et al.'s WS-flex.

References
----------
J. You, J. Leskovec, K. He, S. Xie, "Graph Structure of Neural Networks", ICML 2020.
D. J. Watts, S. H. Strogatz, "Collective dynamics of 'small-world' networks", Nature 1998.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse import csgraph

from graphtickets.errors import GraphticketsError
from graphtickets.graphs.relational import RelationalGraph

__all__ = ["ws_flex"]

_MAX_ROUNDS = 10_000


def ws_flex(
    n: int,
    k: float,
    p: float,
    seed: int | np.random.Generator = 0,
    *,
    connected: bool = False,
    tries: int = 100,
) -> RelationalGraph:
    """A WS-flex graph: a ring lattice of average degree ``k`` (any real), rewired with prob ``p``.

    The graph has exactly ``m = round(n * k / 2)`` edges. Node ``i`` is joined to its next
    ``d_i`` ring neighbours ``i+1 .. i+d_i`` where ``d_i`` is ``floor(m / n)`` or one more
    (the nodes that get one more are drawn with the seeded generator), so that the ``d_i`` sum
    to ``m`` (average degree ``2m/n``, between ``floor(k)`` and ``ceil(k)`` per node up to the
    draw). Then each edge ``(i, j)`` is, with probability ``p``, replaced by ``(i, w)`` with
    ``w`` uniform among the nodes other than ``i``; a proposal that would create a multi-edge
    (with any current edge, the old ends of edges still being rewired included) is redrawn
    in vectorized rounds; a node already joined to all others keeps its edge (as networkx's
    ``watts_strogatz_graph``). No self-loops or multi-edges; exactly ``m`` edges.

    Parameters
    ----------
    n : int
        Number of nodes (>= 2).
    k : float
        Average degree, ``0 <= k <= n - 1`` (non-integer allowed, as in You et al.).
    p : float
        Rewiring probability in ``[0, 1]``.
    seed : int or numpy.random.Generator
        Local randomness; same seed, same graph.
    connected : bool, default False
        Redraw (with the same generator, so still determined by ``seed``) until the graph is
        connected, as graph2nn's ``connected_ws_graph`` does; path lengths are then defined.
    tries : int, default 100
        Draws allowed when ``connected`` (graph2nn's default); then an error.

    Returns
    -------
    RelationalGraph
        Undirected, unweighted, no self-loops; ``meta`` records ``generator``, ``n``, ``k``,
        ``p``, ``seed``, ``connected`` and ``draws`` (how many graphs were drawn).

    Raises
    ------
    GraphticketsError
        For arguments out of range, or when ``connected`` and no connected graph came in
        ``tries`` draws (e.g. ``k < 2``, where a graph of ``round(n k / 2) < n - 1`` edges
        cannot be connected).

    Examples
    --------
    >>> g = ws_flex(16, 4.5, 0.2, seed=1)
    >>> g.n_nodes, g.n_edges
    (16, 36)

    References
    ----------
    You et al., "Graph Structure of Neural Networks", ICML 2020 (Sec. 3.2, WS-flex).
    """
    n = int(n)
    if n < 2:
        raise GraphticketsError(f"ws_flex needs n >= 2 nodes, got {n}")
    if not (0 <= float(k) <= n - 1):
        raise GraphticketsError(f"ws_flex average degree k must be in [0, n-1] = [0, {n - 1}], got {k}")
    if not (0.0 <= float(p) <= 1.0):
        raise GraphticketsError(f"ws_flex rewiring probability p must be in [0, 1], got {p}")
    if connected and int(tries) < 1:
        raise GraphticketsError(f"ws_flex tries must be >= 1, got {tries}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    m = int(round(n * float(k) / 2))
    draws = 0
    while True:
        draws += 1
        adj = _draw(n, float(k), float(p), m, rng)
        if not connected or csgraph.connected_components(adj, directed=False)[0] == 1:
            break
        if m < n - 1 or draws >= int(tries):
            raise GraphticketsError(
                f"ws_flex(n={n}, k={k}, p={p}) drew no connected graph in {draws} tries"
                f"{' (it has fewer than n - 1 edges)' if m < n - 1 else ''}; raise k or tries, or lower p"
            )
    nodes = pd.DataFrame({"layer": ["relational"] * n, "unit": np.arange(n, dtype=np.int64)})
    meta = {"generator": "ws_flex", "n": n, "k": float(k), "p": float(p),
            "seed": int(seed) if isinstance(seed, (int, np.integer)) else None,
            "connected": bool(connected), "draws": draws}  # fmt: skip
    return RelationalGraph(adjacency=adj, nodes=nodes, directed=False, kind="relational", meta=meta)


def _draw(n: int, k: float, p: float, m: int, rng: np.random.Generator) -> sp.csr_matrix:
    """One WS-flex draw: the ring lattice of ``m`` edges, rewired with probability ``p``."""
    base, extra = divmod(m, n)
    reach = np.full(n, base, dtype=np.int64)
    reach[rng.choice(n, size=extra, replace=False)] += 1
    # ring edges (i, i+j) for j = 1..reach[i]
    src = np.repeat(np.arange(n, dtype=np.int64), reach)
    offs = np.arange(src.shape[0], dtype=np.int64) - np.repeat(np.cumsum(reach) - reach, reach) + 1
    codes = _codes(src, (src + offs) % n, n)
    if np.unique(codes).shape[0] != m:  # offsets of n/2 or more repeat edges (k close to n-1)
        codes = _dense_fill(codes, m, n)
    src, dst = np.divmod(codes, n)
    # rewiring: keep the ring node i, redraw the other end
    rewire = rng.random(m) < float(p)
    kept = codes[~rewire]
    new = np.empty(0, dtype=np.int64)
    todo, orig = src[rewire], codes[rewire]
    rounds = 0
    while todo.shape[0]:
        rounds += 1
        if rounds > _MAX_ROUNDS:  # pragma: no cover - guarded by the saturation rule below
            raise GraphticketsError(f"ws_flex could not rewire (n={n}, k={k}); use a smaller k")
        w = np.asarray(rng.integers(0, n - 1, size=todo.shape[0]), dtype=np.int64)
        w = w + (w >= todo)  # uniform over the nodes other than the source
        cand = _codes(todo, w, n)
        # edges still waiting for a new end keep their old one meanwhile (as in networkx)
        taken = np.concatenate([kept, new, orig])
        bad = np.isin(cand, taken)
        _, first = np.unique(cand, return_index=True)
        dup = np.ones(cand.shape[0], dtype=bool)
        dup[first] = False
        bad |= dup
        # a source already joined to every other node keeps its original edge
        deg = np.bincount(np.concatenate(np.divmod(taken, n)), minlength=n)
        full = deg[todo] >= n - 1
        new = np.concatenate([new, cand[~bad & ~full]])
        kept = np.concatenate([kept, orig[full]])
        nxt = bad & ~full
        todo, orig = todo[nxt], orig[nxt]
    allc = np.sort(np.concatenate([kept, new]))
    a, b = np.divmod(allc, n)
    adj = sp.csr_matrix((np.ones(2 * a.shape[0]), (np.concatenate([a, b]), np.concatenate([b, a]))), shape=(n, n))
    adj.sum_duplicates()
    return adj


def _codes(a: np.ndarray, b: np.ndarray, n: int) -> np.ndarray:
    """Canonical undirected pair codes ``min * n + max``."""
    return np.minimum(a, b) * n + np.maximum(a, b)


def _dense_fill(codes: np.ndarray, m: int, n: int) -> np.ndarray:
    """The unique ring codes topped up with the missing pairs of shortest ring distance."""
    uniq = np.unique(codes)
    i, j = np.triu_indices(n, 1)
    dist = np.minimum(j - i, n - (j - i))
    allc = (i * n + j)[np.lexsort((i, dist))]
    missing = allc[~np.isin(allc, uniq)]
    return np.sort(np.concatenate([uniq, missing[: m - uniq.shape[0]]]))
