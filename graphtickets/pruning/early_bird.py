"""Early-Bird tickets: draw the mask as soon as it stops changing during training.

At the end of every epoch the mask the target density would give is computed; the last
``window`` (5) masks are kept and training stops when the largest normalized Hamming
distance between the newest mask and the others falls to ``tol`` (0.1) or below. The
detection rule is a pure function (:func:`detect`, :func:`distance_curve`) with a thin
stateful wrapper (:class:`EarlyBirdDetector`) used as the training callback.

Two modes:

``"channel"`` (the paper's, for networks with BatchNorm)
    Channels are ranked globally by ``|gamma|`` of their BatchNorm layer, trained with the
    L1 penalty ``s * sum |gamma|`` (``s = 1e-4``, network slimming); the detection masks are
    channel masks keeping ``round(density * C)`` of the ``C`` BatchNorm channels. The ticket
    is expressed as a weight mask: every weight of the Conv/Linear layer feeding a pruned
    channel (its output-channel slice) is off; layers without a BatchNorm after them stay
    dense. Such a structured mask keeps more than ``density`` of the weights, so with
    ``exact=True`` (the default) it is then trimmed by weight magnitude (at the epoch drawn)
    to exactly ``round(density * N)`` weights, comparable with every other method;
    ``meta["structured_density"]`` records the density before the trim. If the structured
    mask keeps fewer than that, it is left as is (and ``meta["exact"]`` is False).
``"weight"`` (unstructured; automatic for networks without BatchNorm)
    Masks are global magnitude masks at ``density`` of the current weights.

``mode="auto"`` picks ``"channel"`` when the network has BatchNorm layers.

References
----------
.. [1] You, H., Li, C., Xu, P., Fu, Y., Wang, Y., Chen, X., Baraniuk, R. G., Wang, Z. &
   Lin, Y. (2020). Drawing Early-Bird Tickets: Towards More Efficient Training of Deep
   Networks. ICLR 2020.
.. [2] Liu, Z., Li, J., Shen, Z., Huang, G., Yan, S. & Zhang, C. (2017). Learning Efficient
   Convolutional Networks through Network Slimming. ICCV 2017 (the L1 penalty on gamma).
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from graphtickets.errors import GraphticketsError
from graphtickets.pruning.core import register_method, resolve_params
from graphtickets.pruning.imp import reiterable
from graphtickets.pruning.select import select_topk

__all__ = [
    "EarlyBirdDetector",
    "mask_distance",
    "distance_curve",
    "detect",
    "bn_channels",
    "channel_mask",
    "channel_to_weight_masks",
]

log = logging.getLogger("graphtickets.pruning.early_bird")

_BN = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
_LAYER = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)

MaskLike = torch.Tensor | Mapping[str, torch.Tensor]


def _flat(mask: MaskLike) -> torch.Tensor:
    if isinstance(mask, Mapping):
        return torch.cat([m.detach().reshape(-1).to("cpu", torch.bool) for m in mask.values()])
    return mask.detach().reshape(-1).to("cpu", torch.bool)


def mask_distance(a: MaskLike, b: MaskLike) -> float:
    """Normalized Hamming distance: the fraction of positions where two masks differ.

    Masks are bool tensors or dicts of them (compared in key order).

    >>> mask_distance(torch.tensor([True, False, True, True]), torch.tensor([True, True, True, False]))
    0.5
    """
    fa, fb = _flat(a), _flat(b)
    if fa.shape != fb.shape:
        raise GraphticketsError(f"masks of different sizes ({fa.numel()} vs {fb.numel()}) cannot be compared")
    return float((fa ^ fb).count_nonzero()) / max(fa.numel(), 1)


def distance_curve(masks: Sequence[MaskLike], window: int = 5) -> list[float]:
    """For each mask, the largest distance to the ``window - 1`` masks before it.

    Entry ``i`` is ``max_{i - window < j < i} d(m_i, m_j)``; it is NaN while fewer than
    ``window`` masks have been seen (``i < window - 1``), as the detector then cannot fire.
    """
    if window < 2:
        raise GraphticketsError(f"window must be >= 2 (the newest mask and at least one other), got {window}")
    out: list[float] = []
    for i in range(len(masks)):
        if i < window - 1:
            out.append(math.nan)
        else:
            out.append(max(mask_distance(masks[i], masks[j]) for j in range(i - window + 1, i)))
    return out


def detect(masks: Sequence[MaskLike], tol: float = 0.1, window: int = 5) -> int | None:
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
    for i, d in enumerate(distance_curve(masks, window)):
        if not math.isnan(d) and d <= tol:
            return i
    return None


class EarlyBirdDetector:
    """Stateful form of :func:`detect`: feed masks one by one with :meth:`update`.

    Parameters
    ----------
    tol : float, default 0.1
    window : int, default 5

    Attributes
    ----------
    distances : list of float
        :func:`distance_curve` of the masks seen so far.
    fired_at : int or None
        Index of the mask at which the rule fired.
    """

    def __init__(self, tol: float = 0.1, window: int = 5) -> None:
        if window < 2:
            raise GraphticketsError(f"window must be >= 2, got {window}")
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
            d = max(mask_distance(flat, m) for m in self.recent[:-1])
        self.distances.append(d)
        if self.fired_at is None and not math.isnan(d) and d <= self.tol:
            self.fired_at = self.seen
        self.seen += 1
        return self.fired_at is not None


# ------------------------------------------------------------------------- channels
def bn_channels(model: nn.Module) -> dict[str, str]:
    """``{BatchNorm module name: name of the Conv/Linear weight whose outputs it normalizes}``.

    Found by tracing with ``torch.fx`` (the BatchNorm's input node); when the model cannot be
    traced, the nearest preceding Conv/Linear (in module order) with as many outputs is used.
    """
    modules = dict(model.named_modules())
    out: dict[str, str] = {}
    try:
        import torch.fx

        gm = torch.fx.symbolic_trace(model)
        for node in gm.graph.nodes:
            if node.op == "call_module" and isinstance(modules.get(node.target), _BN):
                src = node.args[0] if node.args else None
                if isinstance(src, torch.fx.Node) and src.op == "call_module" and isinstance(
                    modules.get(src.target), _LAYER
                ):
                    out[str(node.target)] = f"{src.target}.weight"
        return out
    except Exception:  # noqa: BLE001  (an untraceable model: fall back to module order)
        log.debug("fx trace failed; pairing BatchNorm layers with the preceding layer")
    last: tuple[str, nn.Module] | None = None
    for name, mod in model.named_modules():
        if isinstance(mod, _LAYER):
            last = (name, mod)
        elif isinstance(mod, _BN) and last is not None:
            w = last[1].weight
            if isinstance(w, torch.Tensor) and w.shape[0] == mod.num_features:
                out[name] = f"{last[0]}.weight"
    return out


def channel_mask(model: nn.Module, density: float) -> dict[str, torch.Tensor]:
    """Keep the ``round(density * C)`` BatchNorm channels with the largest ``|gamma|`` (global)."""
    modules = dict(model.named_modules())
    scores = {
        n: modules[n].weight.detach().abs().cpu()
        for n in bn_channels(model)
        if getattr(modules[n], "weight", None) is not None
    }
    if not scores:
        raise GraphticketsError(
            "Early-Bird channel mode needs BatchNorm layers with affine weights after Conv/Linear "
            "layers; use mode='weight' for networks without BatchNorm"
        )
    return select_topk(scores, density)


def channel_to_weight_masks(
    model: nn.Module, channels: Mapping[str, torch.Tensor], names: Iterable[str]
) -> dict[str, torch.Tensor]:
    """Weight masks for the prunable parameters ``names``: rows of pruned channels off."""
    pairs = bn_channels(model)
    params = dict(model.named_parameters())
    out = {n: torch.ones(params[n].shape, dtype=torch.bool) for n in names}
    for bn, w in pairs.items():
        if bn in channels and w in out:
            keep = channels[bn].to(torch.bool)
            shape = (-1,) + (1,) * (out[w].dim() - 1)
            out[w] = out[w] & keep.view(shape).expand_as(out[w])
    return out


def _has_bn(model: nn.Module) -> bool:
    return any(isinstance(m, _BN) for m in model.modules())


def _l1_gamma(s: float) -> Any:
    def extra(model: nn.Module) -> torch.Tensor:
        total = None
        for m in model.modules():
            if isinstance(m, _BN) and m.weight is not None:
                v = m.weight.abs().sum()
                total = v if total is None else total + v
        assert total is not None
        return s * total

    return extra


@register_method(
    "early_bird",
    needs_data=True,
    kind="train",
    summary="mask drawn during training once it stops changing (channel |gamma| or magnitude)",
    reference="You et al. 2020, Drawing Early-Bird Tickets (ICLR)",
)
def early_bird_method(
    model: nn.Module,
    *,
    density: float,
    data: Iterable[Any] | None = None,
    seed: int = 0,
    mode: str = "auto",
    tol: float = 0.1,
    window: int = 5,
    max_epochs: int = 30,
    l1: float = 1e-4,
    exact: bool = True,
    optimizer: str = "sgd",
    lr: float = 0.1,
    momentum: float = 0.9,
    weight_decay: float = 1e-4,
    keep_classifier_dense: bool = False,
    device: str = "cpu",
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Train ``model`` (a copy) until the Early-Bird rule fires; return the mask drawn then.

    Parameters
    ----------
    mode : {"auto", "channel", "weight"}
        See the module docstring.
    tol, window : float, int
        Detection rule (:func:`detect`): distances ``<= tol`` over the last ``window`` masks.
    max_epochs : int
        Training budget; if the rule never fires, the last epoch's mask is returned and
        ``meta["detected"]`` is False.
    l1 : float
        Channel mode: weight ``s`` of the L1 penalty on BatchNorm gammas.
    exact : bool
        Channel mode: trim the structured weight mask to exactly ``round(density * N)``.
    optimizer, lr, momentum, weight_decay
        Training settings (the paper: SGD, lr 0.1, momentum 0.9, weight decay 1e-4).

    Returns
    -------
    (masks, meta)
        ``meta``: ``epoch_drawn`` (1-based epoch whose mask is the ticket), ``detected``,
        ``distances`` (the curve, NaN while the window fills), ``mode``, accuracies per epoch,
        ``cost``.
    """
    from graphtickets import training

    if mode == "auto":
        mode = "channel" if _has_bn(model) else "weight"
    if mode not in ("channel", "weight"):
        raise GraphticketsError(f"mode must be 'auto', 'channel' or 'weight', got {mode!r}")
    names, _ = resolve_params(model, keep_classifier_dense=keep_classifier_dense)
    work = copy.deepcopy(model)
    det = EarlyBirdDetector(tol=tol, window=window)
    masks_at: list[dict[str, torch.Tensor]] = []

    def current_mask(m: nn.Module) -> dict[str, torch.Tensor]:
        if mode == "channel":
            return channel_mask(m, density)
        params = dict(m.named_parameters())
        return select_topk({n: params[n].detach().abs() for n in names}, density)

    drawn: dict[str, Any] = {}

    def callback(epoch: int, m: nn.Module, history: Any) -> bool:
        mask = current_mask(m)
        masks_at.append(mask)
        fired = det.update(mask)
        if fired:
            drawn["state"] = {n: p.detach().cpu().clone() for n, p in m.named_parameters()}
            drawn["channels"] = mask
        return fired

    hist = training.train(
        work,
        reiterable(data),
        epochs=max_epochs,
        optimizer=optimizer,
        lr=lr,
        momentum=momentum,
        weight_decay=weight_decay,
        device=device,
        seed=seed,
        callback=callback,
        extra_loss=_l1_gamma(l1) if mode == "channel" else None,
    )
    detected = det.fired_at is not None
    if not detected:
        log.warning("early_bird: the rule did not fire in %d epochs; returning the last mask", max_epochs)
        drawn["state"] = {n: p.detach().cpu().clone() for n, p in work.named_parameters()}
        drawn["channels"] = masks_at[-1]
    epoch_drawn = (det.fired_at if det.fired_at is not None else len(masks_at) - 1) + 1
    meta: dict[str, Any] = {"mode": mode, "detected": detected, "epoch_drawn": epoch_drawn}
    if mode == "channel":
        wmask = channel_to_weight_masks(work, drawn["channels"], names)
        total = sum(m.numel() for m in wmask.values())
        structured = sum(int(m.count_nonzero()) for m in wmask.values()) / total
        meta["structured_density"] = structured
        meta["channel_density"] = density
        k = int(round(density * total))
        if exact and sum(int(m.count_nonzero()) for m in wmask.values()) >= k:
            state = drawn["state"]
            wmask = select_topk({n: state[n].abs() for n in names}, density, prior=wmask)
            meta["exact"] = True
        else:
            meta["exact"] = False
        masks = wmask
    else:
        masks = drawn["channels"]
        meta["exact"] = True
    meta["distances"] = [None if math.isnan(d) else d for d in det.distances]
    meta["epochs"] = [
        {k: e.get(k) for k in ("epoch", "loss", "accuracy")} for e in hist.epochs
    ]
    meta["cost"] = {"epochs": len(hist.epochs), "iterations": hist.iterations}
    return masks, meta
