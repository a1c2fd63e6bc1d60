"""The update schedules of RigL and of gradual magnitude pruning, as pure functions of the step.

References
----------
.. [1] Evci, Gale, Menick, Castro, Elsen. "Rigging the Lottery: Making All Tickets Winners."
   ICML 2020 (the cosine drop fraction).
.. [2] Zhu, Gupta. "To prune, or not to prune: exploring the efficacy of pruning for model
   compression." ICLR 2018 workshop, arXiv:1710.01878 (2017) (the cubic sparsity schedule).
"""

from __future__ import annotations

import math

from graphtickets.errors import GraphticketsError

__all__ = ["rigl_drop_fraction", "rigl_update_steps", "gmp_sparsity", "gmp_update_steps"]


def rigl_drop_fraction(t: int, alpha: float, t_end: float) -> float:
    """RigL's drop fraction at step ``t``: ``alpha/2 (1 + cos(pi t / t_end))``, 0 from ``t_end`` on.

    >>> rigl_drop_fraction(0, 0.3, 100), rigl_drop_fraction(50, 0.3, 100), rigl_drop_fraction(100, 0.3, 100)
    (0.3, 0.15, 0.0)
    """
    if t >= t_end:
        return 0.0
    return alpha / 2.0 * (1.0 + math.cos(math.pi * t / t_end))


def rigl_update_steps(total: int, delta_t: int, end: float) -> tuple[list[int], float]:
    """``(the steps t with t mod delta_t == 0 and 0 < t < t_end, t_end = end * total)``.

    Raises a :class:`GraphticketsError` when no step qualifies (``delta_t`` at least
    ``t_end``: the connections would never move).

    >>> rigl_update_steps(1000, 100, 0.75)
    ([100, 200, 300, 400, 500, 600, 700], 750.0)
    """
    if isinstance(delta_t, bool) or not isinstance(delta_t, int) or delta_t < 1:
        raise GraphticketsError(f"delta_t must be an integer >= 1 (optimizer steps between updates), got {delta_t!r}")
    t_end = end * total
    steps = list(range(delta_t, math.ceil(t_end), delta_t))
    if not steps:
        raise GraphticketsError(
            f"delta_t={delta_t} is not shorter than the update period t_end = end x steps = {end:g} x {total} = "
            f"{t_end:g}: no mask update would happen; use delta_t in [1, {max(1, math.ceil(t_end) - 1)}] "
            f"(or train longer)"
        )
    return steps, t_end


def gmp_sparsity(t: int, final: float, t0: int, n: int, dt: int, initial: float = 0.0) -> float:
    """Zhu & Gupta's sparsity at step ``t``: ``s_f + (s_i - s_f)(1 - (t - t0)/(n dt))^3``.

    ``initial`` (``s_i``) before ``t0``, ``final`` (``s_f``) from ``t0 + n dt`` on.

    >>> gmp_sparsity(0, 0.9, 0, 4, 10), gmp_sparsity(20, 0.9, 0, 4, 10), gmp_sparsity(40, 0.9, 0, 4, 10)
    (0.0, 0.7875, 0.9)
    """
    if t <= t0:
        return initial
    if t >= t0 + n * dt:
        return final
    return final + (initial - final) * (1.0 - (t - t0) / (n * dt)) ** 3


def gmp_update_steps(total: int, start: float, end: float, frequency: int) -> tuple[int, int, list[int]]:
    """``(t0, n, [t0 + dt, ..., t0 + n dt])``: the pruning steps of a run of ``total`` steps.

    ``t0 = round(start * total)``; ``n`` is the number of whole periods ``dt = frequency`` in
    ``[t0, round(end * total)]`` (the last pruning step is ``t0 + n dt``, where the target is reached).

    >>> gmp_update_steps(1000, 0.1, 0.75, 100)
    (100, 6, [200, 300, 400, 500, 600, 700])
    """
    if isinstance(frequency, bool) or not isinstance(frequency, int) or frequency < 1:
        raise GraphticketsError(f"frequency must be an integer >= 1 (optimizer steps between prunings), got {frequency!r}")
    if not 0.0 <= start < end <= 1.0:
        raise GraphticketsError(
            f"start and end are fractions of the training steps with 0 <= start < end <= 1, got start={start!r}, end={end!r}"
        )
    t0, t_end = round(start * total), round(end * total)
    n = (t_end - t0) // frequency
    if n < 1:
        raise GraphticketsError(
            f"frequency={frequency} is longer than the pruning span from step {t0} to {t_end} "
            f"(start={start:g}, end={end:g} of {total} steps): use frequency in [1, {max(1, t_end - t0)}] "
            f"(or train longer)"
        )
    return t0, n, [t0 + k * frequency for k in range(1, n + 1)]
