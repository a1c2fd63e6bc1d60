"""Early-Bird's detection rule: the mask stops changing (You et al. 2020), as pure functions.

:func:`mask_distance` (the normalized Hamming distance of two masks), :func:`distance_curve`
and :func:`detect` (the first epoch at which the newest of ``window`` masks is within ``tol``
of the others), and :class:`EarlyBirdDetector`, the thin stateful wrapper the training loop
calls after every epoch. The normalisation (``"positions"`` or ``"kept"``) and why both exist
are explained in :mod:`graphtickets.pruning.early_bird`, which uses the rule.

Imports go one way: this module imports only torch and :mod:`graphtickets.errors`; :mod:`graphtickets.pruning.early_bird`
imports it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch

from graphtickets.errors import GraphticketsError

__all__ = ["MaskLike", "mask_distance", "distance_curve", "detect", "EarlyBirdDetector"]

MaskLike = torch.Tensor | Mapping[str, torch.Tensor]


def _flat(mask: MaskLike) -> torch.Tensor:
    if isinstance(mask, Mapping):
        return torch.cat([m.detach().reshape(-1).to("cpu", torch.bool) for m in mask.values()])
    return mask.detach().reshape(-1).to("cpu", torch.bool)


_NORMALIZE = ("positions", "kept")


def mask_distance(a: MaskLike, b: MaskLike, normalize: str = "positions") -> float:
    """Normalized Hamming distance between two masks.

    Masks are bool tensors or dicts of them (compared in key order).

    Parameters
    ----------
    a, b : bool tensor or dict of them
    normalize : {"positions", "kept"}, default "positions"
        ``"positions"``: the fraction of all positions where the masks differ (the paper's).
        ``"kept"``: ``|a xor b| / (|a| + |b|)``, the differing positions over the kept ones
        of both masks; for masks keeping ``k`` positions each this is ``|a xor b| / 2k``, in
        [0, 1] at any density (1 for disjoint masks). Two empty masks are at distance 0.

    Examples
    --------
    >>> a, b = torch.tensor([True, False, True, True]), torch.tensor([True, True, True, False])
    >>> mask_distance(a, b)
    0.5
    >>> mask_distance(a, b, normalize="kept")   # 2 differing / (3 + 3) kept
    0.3333333333333333
    """
    if normalize not in _NORMALIZE:
        raise GraphticketsError(f"normalize must be 'positions' or 'kept', got {normalize!r}")
    fa, fb = _flat(a), _flat(b)
    if fa.shape != fb.shape:
        raise GraphticketsError(f"masks of different sizes ({fa.numel()} vs {fb.numel()}) cannot be compared")
    diff = float((fa ^ fb).count_nonzero())
    if normalize == "kept":
        return diff / max(int(fa.count_nonzero()) + int(fb.count_nonzero()), 1)
    return diff / max(fa.numel(), 1)


def distance_curve(masks: Sequence[MaskLike], window: int = 5, normalize: str = "positions") -> list[float]:
    """For each mask, the largest distance to the ``window - 1`` masks before it.

    Entry ``i`` is ``max_{i - window < j < i} d(m_i, m_j)`` (:func:`mask_distance` with
    ``normalize``); it is NaN while fewer than ``window`` masks have been seen
    (``i < window - 1``), as the detector then cannot fire.
    """
    if window < 2:
        raise GraphticketsError(f"window must be >= 2 (the newest mask and at least one other), got {window}")
    out: list[float] = []
    for i in range(len(masks)):
        if i < window - 1:
            out.append(math.nan)
        else:
            out.append(max(mask_distance(masks[i], masks[j], normalize) for j in range(i - window + 1, i)))
    return out


def detect(masks: Sequence[MaskLike], tol: float = 0.1, window: int = 5, normalize: str = "positions") -> int | None:
    """Index of the first mask at which the Early-Bird rule fires, or None.

    The rule fires at mask ``i`` when at least ``window`` masks have been seen and the
    largest normalized Hamming distance between mask ``i`` and each of the ``window - 1``
    masks before it is ``<= tol``.

    Examples
    --------
    >>> a, b = torch.zeros(10, dtype=torch.bool), torch.ones(10, dtype=torch.bool)
    >>> detect([a, b, a, a, a, a, a], tol=0.1, window=3)   # fires at the 3rd equal mask in a row
    4
    """
    for i, d in enumerate(distance_curve(masks, window, normalize)):
        if not math.isnan(d) and d <= tol:
            return i
    return None


class EarlyBirdDetector:
    """Stateful form of :func:`detect`: feed masks one by one with :meth:`update`.

    Parameters
    ----------
    tol : float, default 0.1
    window : int, default 5
    normalize : {"positions", "kept"}, default "positions"
        See :func:`mask_distance`.

    Attributes
    ----------
    distances : list of float
        :func:`distance_curve` of the masks seen so far.
    fired_at : int or None
        Index of the mask at which the rule fired.
    """

    def __init__(self, tol: float = 0.1, window: int = 5, normalize: str = "positions") -> None:
        if window < 2:
            raise GraphticketsError(f"window must be >= 2, got {window}")
        if normalize not in _NORMALIZE:
            raise GraphticketsError(f"normalize must be 'positions' or 'kept', got {normalize!r}")
        self.normalize = normalize
        self.tol = float(tol)
        self.window = int(window)
        self.recent: list[torch.Tensor] = []
        self.distances: list[float] = []
        self.fired_at: int | None = None
        self.seen = 0

    def update(self, mask: MaskLike) -> bool:
        """Add the newest mask; True when the rule fires (now or before)."""
        flat = _flat(mask).clone()
        self.recent.append(flat)
        self.recent = self.recent[-self.window :]
        if len(self.recent) < self.window:
            d = math.nan
        else:
            d = max(mask_distance(flat, m, self.normalize) for m in self.recent[:-1])
        self.distances.append(d)
        if self.fired_at is None and not math.isnan(d) and d <= self.tol:
            self.fired_at = self.seen
        self.seen += 1
        return self.fired_at is not None
