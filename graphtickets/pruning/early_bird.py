"""Early-Bird tickets: draw the mask as soon as it stops changing during training.

At the end of every epoch the mask the target density would give is computed; the last
``window`` (5) masks are kept and training stops when the largest normalized Hamming
distance between the newest mask and the others falls to ``tol`` (0.1) or below. The
detection rule is a pure function (:func:`detect`, :func:`distance_curve`) with a thin
stateful wrapper (:class:`EarlyBirdDetector`) used as the training callback.

Normalisation of the distance (``normalize``). The paper divides the Hamming distance by the
number of positions (channels). Two masks that each keep ``k`` of ``N`` positions differ in
at most ``2k`` of them, so that distance is at most ``2 * density``: at a density of
``tol / 2`` (0.05) or less the rule would fire as soon as the window is full, whatever the
masks do. The methods therefore normalise by the kept count in weight mode
(``normalize="kept"``: ``|a xor b| / (|a| + |b|)``, in [0, 1] at every density, 0 for equal
masks and 1 for disjoint ones) and by the positions in channel mode, as the paper does
(``normalize="positions"``; its channel densities are 30-70 %), except where the channel
density ``c`` is so low that ``2c <= tol`` (e.g. ``c = 0.03`` for a weight density of 0.01 of
a 40-100-100-10 MLP): there the positions distance can never exceed ``tol`` and the kept
count is used instead (a deviation from the paper, which never prunes that far).
``normalize=`` of the method overrides the choice; ``meta["normalize"]`` records the one used.

Two registered methods share the training loop and the rule:

``early_bird`` — the paper's channel mode (networks with BatchNorm; an error otherwise)
    Channels are ranked globally by ``|gamma|`` of their BatchNorm layer, trained with the
    L1 penalty ``s * sum |gamma|`` (``s = 1e-4``, network slimming); the detection masks are
    channel masks keeping ``round(c * C)`` of the ``C`` BatchNorm channels. The ticket is
    expressed as a weight mask in which ALL weights of a pruned channel are off
    (:func:`channel_to_weight_masks`): the output slice of the Conv/Linear layer feeding it
    and the input slice of every Conv/Linear layer consuming it (traced with ``torch.fx``
    through activations, pooling, dropout and flatten; after a flatten a channel owns a
    contiguous block of the consumer's inputs). A channel that reaches a residual addition
    (``+``) or a concatenation keeps its outgoing weights: the sum also carries the
    shortcut, so the channel is not removed from the graph by pruning its own layer (only
    its producing slice is off). Layers without a BatchNorm after them are not pruned on
    their output side.

    The channel density ``c`` (``channel_density``; by default solved from ``density``,
    :func:`solve_channel_density`) is the one whose structured weight mask, with every
    layer keeping the same fraction of channels, keeps the weight count closest to (and not
    below) ``round(density * N)``; removing a channel removes weights on both of its sides,
    so ``c`` is larger than ``density``. The global ``|gamma|`` ranking does not keep
    the same fraction in every layer, so the drawn structured mask keeps about, not exactly,
    that many weights. With ``exact=True`` (the default) it is then trimmed by weight
    magnitude (at the epoch drawn) to exactly ``round(density * N)`` weights, comparable with
    every other method; the trim removes only a few weights beyond the structure, and
    ``meta["structured_density"]`` records the density before it. If the drawn structured
    mask keeps fewer than that, it is first grown by the next channels in the same ``|gamma|``
    ranking (at the epoch drawn; so the detected channels stay kept) until it keeps at least
    that many (``meta["channels_kept"]``). ``exact=False`` keeps the purely
    channel-structured ticket as drawn (its density is ``structured_density``).
``early_magnitude`` — unstructured, NOT Early-Bird
    Masks are global magnitude masks at ``density`` of the current weights, with the same
    detection rule (normalised by the kept count). This is late one-shot magnitude pruning
    of SGD-trained weights with an Early-Bird stopping rule; it carries its own name so that
    tables and reports never call it Early-Bird.

Protocol of ``early_bird`` (You et al. 2020): L1 penalty ``1e-4 * sum |gamma|`` on the
BatchNorm scales, SGD with momentum 0.9 and weight decay 1e-4 at learning rate 0.1 (the
paper's, for its CIFAR models; on the MNIST-1D MLP with BatchNorm a validation sweep found
it within the seed spread of the best rate, see :func:`early_bird_method`), a FIFO window
of 5 epochs and threshold 0.1. Deviation: the paper's masks keep a fixed fraction of the
channels; here the channel fraction is solved from the requested weight density and the
drawn mask is trimmed to the exact weight count (above). For an MLP,
``gt.models.build("mlp", ..., batchnorm=True)`` puts a ``BatchNorm1d`` after every hidden
layer: its units are the channels.

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
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import fx, nn

from graphtickets._json import finite_or_none
from graphtickets._trace import WEIGHT_MODULES, node_role, symbolic_graph
from graphtickets.errors import GraphticketsError, UnsupportedModuleError
from graphtickets.pruning.core import MethodResult, register_method, resolve_params
from graphtickets.pruning.imp import reiterable
from graphtickets.pruning.select import select_topk
from graphtickets.ticket import Ticket

__all__ = [
    "DrawOptions",
    "early_bird_extras",
    "EarlyBirdDetector",
    "mask_distance",
    "distance_curve",
    "detect",
    "bn_channels",
    "channel_mask",
    "channel_to_weight_masks",
    "channel_consumers",
    "solve_channel_density",
]

log = logging.getLogger("graphtickets.pruning.early_bird")

_BN = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)

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


# ------------------------------------------------------------------------- channels
def bn_channels(model: nn.Module) -> dict[str, str]:
    """``{BatchNorm module name: name of the Conv/Linear weight whose outputs it normalizes}``.

    Found on the fx trace of :func:`graphtickets._trace.symbolic_graph` (the BatchNorm's
    input node); when the model cannot be traced, the nearest preceding Conv/Linear (in
    module order) with as many outputs is used.
    """
    modules = dict(model.named_modules())
    out: dict[str, str] = {}
    try:
        gm = symbolic_graph(model)
    except UnsupportedModuleError:  # an untraceable model: fall back to module order
        log.debug("fx trace failed; pairing BatchNorm layers with the preceding layer")
    else:
        for node in gm.graph.nodes:
            if node.op == "call_module" and isinstance(modules.get(node.target), _BN):
                src = node.args[0] if node.args else None
                if isinstance(src, fx.Node) and node_role(gm, src) == "weight":
                    out[str(node.target)] = f"{src.target}.weight"
        return out
    last: tuple[str, nn.Module] | None = None
    for name, mod in model.named_modules():
        if isinstance(mod, WEIGHT_MODULES):
            last = (name, mod)
        elif isinstance(mod, _BN) and last is not None:
            w = last[1].weight
            if isinstance(w, torch.Tensor) and w.shape[0] == mod.num_features:
                out[name] = f"{last[0]}.weight"
    return out


def _gamma_scores(model: nn.Module) -> dict[str, torch.Tensor]:
    modules = dict(model.named_modules())
    return {
        n: modules[n].weight.detach().abs().cpu().clone()
        for n in bn_channels(model)
        if getattr(modules[n], "weight", None) is not None
    }


def channel_mask(model: nn.Module, density: float) -> dict[str, torch.Tensor]:
    """Keep the ``round(density * C)`` BatchNorm channels with the largest ``|gamma|`` (global)."""
    scores = _gamma_scores(model)
    if not scores:
        raise GraphticketsError(
            "Early-Bird channel mode needs BatchNorm layers with affine weights after Conv/Linear "
            "layers; use mode='weight' for networks without BatchNorm"
        )
    return select_topk(scores, density)


def channel_consumers(model: nn.Module) -> dict[str, list[str]]:
    """``{BatchNorm module name: weights of the Conv/Linear layers consuming its channels}``.

    Traced on the fx graph of :func:`graphtickets._trace.symbolic_graph` from each BatchNorm's
    output through what :func:`graphtickets._trace.node_role` calls channelwise (activations,
    dropout, pooling) and reshapes (``nn.Flatten``, ``torch.flatten``, ``.view``/``.reshape``)
    to the next Conv/Linear layers. A BatchNorm whose output reaches anything else (a residual ``+``, a
    concatenation, another BatchNorm, the network output) gets an empty list: its channels'
    outgoing weights cannot be removed by pruning the channel alone. Untraceable models give
    empty lists too.
    """
    modules = dict(model.named_modules())
    try:
        gm = symbolic_graph(model)
    except UnsupportedModuleError:  # untraceable: no consumer is cleared
        log.debug("fx trace failed; pruned channels keep their outgoing weights")
        return {n: [] for n in bn_channels(model)}
    out: dict[str, list[str]] = {}
    for node in gm.graph.nodes:
        if node.op == "call_module" and isinstance(modules.get(node.target), _BN):
            out[str(node.target)] = _consumers(gm, node)
    return out


def _consumers(gm: fx.GraphModule, bn: fx.Node) -> list[str]:
    """The weights of the Conv/Linear layers reached from ``bn`` through channelwise ops and
    reshapes (:func:`graphtickets._trace.node_role`); empty when anything else is reached."""
    found: list[str] = []
    todo = list(bn.users)
    seen: set[fx.Node] = set()
    while todo:
        u = todo.pop()
        if u in seen:
            continue
        seen.add(u)
        role = node_role(gm, u)
        if role == "weight":
            found.append(f"{u.target}.weight")
        elif role in ("channelwise", "reshape"):
            todo.extend(u.users)
        else:
            return []
    return sorted(set(found))


def _consumer_slice(w: torch.Tensor, n_channels: int) -> int | None:
    """Inputs of weight ``w`` per channel of an ``n_channels`` layer, or None if they do not tile."""
    n_in = w.shape[1]
    if w.dim() > 2:  # Conv: one input channel per channel (groups=1 only)
        return 1 if n_in == n_channels else None
    return n_in // n_channels if n_in % n_channels == 0 else None


def channel_to_weight_masks(
    model: nn.Module,
    channels: Mapping[str, torch.Tensor],
    names: Iterable[str],
    *,
    consumers: bool = True,
    _graph: tuple[dict[str, str], dict[str, list[str]]] | None = None,
) -> dict[str, torch.Tensor]:
    """Weight masks for the prunable parameters ``names`` with every weight of pruned channels off.

    Parameters
    ----------
    model : nn.Module
    channels : dict[str, bool tensor]
        Kept channels per BatchNorm module name (:func:`channel_mask`).
    names : iterable of str
        Prunable parameter names to return masks for.
    consumers : bool, default True
        Also turn off the consuming layers' input slices of pruned channels
        (:func:`channel_consumers`); False turns off only the producing rows.

    Returns
    -------
    dict[str, torch.Tensor]
        Producing layer: output rows ``w[c]`` of pruned channels off. Consuming layer
        (when traced, see :func:`channel_consumers`): inputs ``w[:, c]`` (Conv) or the block
        ``w[:, c*S:(c+1)*S]`` after a flatten of ``S`` positions per channel (Linear) off.
    """
    pairs, cons = _graph if _graph is not None else (bn_channels(model), channel_consumers(model) if consumers else {})
    params = dict(model.named_parameters())
    out = {n: torch.ones(params[n].shape, dtype=torch.bool) for n in names}
    for bn, w in pairs.items():
        if bn not in channels:
            continue
        keep = channels[bn].to(torch.bool)
        if w in out:
            shape = (-1,) + (1,) * (out[w].dim() - 1)
            out[w] = out[w] & keep.view(shape).expand_as(out[w])
        if not consumers:
            continue
        for c in cons.get(bn, []):
            if c not in out:
                continue
            per = _consumer_slice(out[c], keep.numel())
            if per is None:
                log.debug("channels of %s do not tile the inputs of %s; its inputs stay on", bn, c)
                continue
            cols = keep.repeat_interleave(per)
            shape = (1, -1) + (1,) * (out[c].dim() - 2)
            out[c] = out[c] & cols.view(shape).expand_as(out[c])
    return out


def solve_channel_density(model: nn.Module, density: float, names: Iterable[str]) -> float:
    """The channel density whose structured weight mask keeps about ``density`` of the weights.

    Every BatchNorm layer keeps the same fraction ``c`` of its channels (``round(c * C)``);
    the result is the smallest ``c`` (to 1e-4, by bisection) whose weight mask
    (:func:`channel_to_weight_masks`, consumers included) keeps at least
    ``round(density * N)`` of the ``N`` prunable weights.
    """
    names = list(names)
    graph = (bn_channels(model), channel_consumers(model))
    modules = dict(model.named_modules())
    sizes = {bn: int(modules[bn].num_features) for bn in graph[0]}
    n_total = sum(int(dict(model.named_parameters())[n].numel()) for n in names)
    k = int(round(density * n_total))

    def kept(c: float) -> int:
        ch = {}
        for bn, size in sizes.items():
            m = torch.zeros(size, dtype=torch.bool)
            m[: int(round(c * size))] = True
            ch[bn] = m
        return sum(int(m.count_nonzero()) for m in channel_to_weight_masks(model, ch, names, _graph=graph).values())

    lo, hi = 0.0, 1.0
    while hi - lo > 1e-4:
        mid = (lo + hi) / 2
        if kept(mid) >= k:
            hi = mid
        else:
            lo = mid
    return min(1.0, hi)


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


@dataclass(frozen=True)
class DrawOptions:
    """The options of the drawing (shared by ``early_bird`` and ``early_magnitude``; declared here only).

    Attributes
    ----------
    tol, window : float, int
        Detection rule (:func:`detect`): distances ``<= tol`` over the last ``window`` masks
        (the paper: 0.1, 5).
    epochs : int, default 30
        Training budget; if the rule never fires, the last epoch's mask is returned and
        ``meta["detected"]`` is False.
    max_epochs : int, optional
        Deprecated alias of ``epochs`` (an error when both are given and differ).
    normalize : {"auto", "positions", "kept"}, default "auto"
        Normalisation of the Hamming distance (:func:`mask_distance`); ``"auto"`` is the
        paper's ``"positions"`` for channel masks, or ``"kept"`` when the channel density
        ``c`` has ``2c <= tol`` and for weight masks (module docstring).
    optimizer, lr, momentum, weight_decay
        Training settings: the paper's SGD, momentum 0.9, weight decay 1e-4 and learning
        rate 0.1 (see :func:`early_bird`).
    keep_classifier_dense : bool
        Leave the classifier out of the masks.
    device : str
        Where to train.
    """

    tol: float = 0.1
    window: int = 5
    epochs: int = 30
    max_epochs: int | None = None
    normalize: str = "auto"
    optimizer: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-4
    keep_classifier_dense: bool = False
    device: str = "cpu"

    def budget(self) -> int:
        """The epochs (``epochs``, or its deprecated alias ``max_epochs``)."""
        if self.max_epochs is not None:
            if self.epochs != 30 and self.epochs != self.max_epochs:
                raise GraphticketsError(
                    f"epochs={self.epochs} and its deprecated alias max_epochs={self.max_epochs} disagree; "
                    f"pass epochs only"
                )
            return self.max_epochs
        return self.epochs


@dataclass
class _Drawing:
    """The training callback: the mask after every epoch, fed to the rule; the state when it fires."""

    mode: str
    names: list[str]
    density: float
    channel_density: float | None
    detector: EarlyBirdDetector
    masks_at: list[dict[str, torch.Tensor]] = field(default_factory=list)
    gamma_l1: list[float] = field(default_factory=list)
    drawn: dict[str, Any] = field(default_factory=dict)

    def mask(self, m: nn.Module) -> dict[str, torch.Tensor]:
        """The mask of the current weights: channels by ``|gamma|``, or weights by ``|w|``."""
        if self.mode == "channel":
            assert self.channel_density is not None
            return channel_mask(m, self.channel_density)
        params = dict(m.named_parameters())
        return select_topk({n: params[n].detach().abs() for n in self.names}, self.density)

    def keep(self, m: nn.Module, mask: dict[str, torch.Tensor]) -> None:
        """Remember ``m``'s state and ``mask`` as the drawn ones."""
        self.drawn["state"] = {n: p.detach().cpu().clone() for n, p in m.named_parameters()}
        self.drawn["channels"] = mask
        if self.mode == "channel":
            self.drawn["gamma"] = _gamma_scores(m)

    def __call__(self, epoch: int, m: nn.Module, history: Any) -> bool:
        mask = self.mask(m)
        self.masks_at.append(mask)
        if self.mode == "channel":
            self.gamma_l1.append(float(sum(g.sum() for g in _gamma_scores(m).values())))
        fired = self.detector.update(mask)
        if fired:
            self.keep(m, mask)
        return fired


def _draw(
    model: nn.Module, *, density: float, data: Iterable[Any] | None, seed: int, mode: str, opts: DrawOptions,
    l1: float = 0.0, exact: bool = True, channel_density: float | None = None,
) -> MethodResult:
    """Train a copy until the rule fires on the ``mode`` masks; return the ticket drawn then."""
    from graphtickets import training

    epochs = opts.budget()
    names, _ = resolve_params(model, keep_classifier_dense=opts.keep_classifier_dense)
    if mode == "channel":
        if channel_density is None:
            channel_density = solve_channel_density(model, density, names)
        elif not 0.0 < channel_density <= 1.0:
            raise GraphticketsError(f"channel_density must be in (0, 1], got {channel_density!r}")
    normalize = opts.normalize
    if normalize == "auto":  # positions (the paper's) unless they cannot exceed tol (module docstring)
        wide = mode == "channel" and channel_density is not None and 2 * channel_density > opts.tol
        normalize = "positions" if wide else "kept"
    work = copy.deepcopy(model)
    drawing = _Drawing(mode, names, density, channel_density,
                       EarlyBirdDetector(tol=opts.tol, window=opts.window, normalize=normalize))
    hist = training.train(
        work, reiterable(data), epochs=epochs, optimizer=opts.optimizer, lr=opts.lr, momentum=opts.momentum,
        weight_decay=opts.weight_decay, device=opts.device, seed=seed, callback=drawing,
        extra_loss=_l1_gamma(l1) if mode == "channel" and l1 > 0 else None,
    )
    det = drawing.detector
    if det.fired_at is None:
        log.warning("%s: the rule did not fire in %d epochs; returning the last mask",
                    "early_bird" if mode == "channel" else "early_magnitude", epochs)
        drawing.keep(work, drawing.masks_at[-1])
    epoch_drawn = (det.fired_at if det.fired_at is not None else len(drawing.masks_at) - 1) + 1
    meta: dict[str, Any] = {"mode": mode, "detected": det.fired_at is not None, "epoch_drawn": epoch_drawn,
                            "normalize": normalize}  # fmt: skip
    if mode == "channel":
        assert channel_density is not None
        masks = _channel_ticket(work, drawing.drawn, names, density, channel_density, exact, meta)
        meta["l1"] = l1
        meta["gamma_l1"] = drawing.gamma_l1
    else:
        masks = drawing.drawn["channels"]
        meta["exact"] = True
    meta["distances"] = [None if math.isnan(d) else d for d in det.distances]
    meta["epochs"] = [{k: e.get(k) for k in ("epoch", "loss", "accuracy")} for e in hist.epochs]
    meta["cost"] = {"epochs": len(hist.epochs), "iterations": hist.iterations}
    return MethodResult(masks=masks, meta=meta)


def _channel_ticket(
    work: nn.Module,
    drawn: dict[str, Any],
    names: list[str],
    density: float,
    channel_density: float,
    exact: bool,
    meta: dict[str, Any],
) -> dict[str, torch.Tensor]:
    """The weight mask of the drawn channels, grown/trimmed to the exact count (``exact``)."""
    graph = (bn_channels(work), channel_consumers(work))
    channels = drawn["channels"]
    wmask = channel_to_weight_masks(work, channels, names, _graph=graph)
    total = sum(m.numel() for m in wmask.values())
    k = int(round(density * total))
    kept = sum(int(m.count_nonzero()) for m in wmask.values())
    if exact and kept < k:
        # the global |gamma| ranking kept too few weights: grow the drawn channel mask by
        # the next-ranked channels (same scores, so nested) until it keeps at least k
        gamma = drawn["gamma"]
        n_ch = sum(g.numel() for g in gamma.values())
        lo = sum(int(c.count_nonzero()) for c in channels.values())
        hi = n_ch
        while lo < hi:
            mid = (lo + hi) // 2
            cand = channel_to_weight_masks(work, select_topk(gamma, mid / n_ch), names, _graph=graph)
            if sum(int(m.count_nonzero()) for m in cand.values()) >= k:
                hi = mid
            else:
                lo = mid + 1
        channels = select_topk(gamma, max(lo, 1) / n_ch)
        wmask = channel_to_weight_masks(work, channels, names, _graph=graph)
        kept = sum(int(m.count_nonzero()) for m in wmask.values())
    meta["structured_density"] = kept / total
    meta["channel_density"] = channel_density
    meta["channels_kept"] = sum(int(c.count_nonzero()) for c in channels.values())
    if exact and kept >= k:
        state = drawn["state"]
        wmask = select_topk({n: state[n].abs() for n in names}, density, prior=wmask)
        meta["exact"] = True
    else:
        if exact:
            log.warning(
                "early_bird: the drawn channel mask keeps %d weights, fewer than the %d of density "
                "%g; returned as is (pass a larger channel_density)", kept, k, density,
            )
        meta["exact"] = False
    return wmask


def early_bird_extras(ticket: Ticket) -> dict[str, Any]:
    """The extra outputs of the Early-Bird rule (:attr:`MethodSpec.extras
    <graphtickets.pruning.MethodSpec>`): the distance curve (``eb_distances``, non-finite as
    None), the epoch drawn, whether the rule fired and its threshold."""
    meta = ticket.meta
    if "distances" not in meta or "epoch_drawn" not in meta:
        return {}
    return {
        "eb_distances": [finite_or_none(d) for d in meta.get("distances", [])],
        "eb_epoch": meta.get("epoch_drawn"),
        "eb_detected": bool(meta.get("detected", False)),
        "eb_tol": ticket.config.get("hparams", {}).get("tol"),
    }


@register_method(
    "early_bird",
    needs_data=True,
    kind="train",
    summary="channel mask drawn from BatchNorm scales (L1-trained) once it stops changing during training",
    reference="You et al. 2020, Drawing Early-Bird Tickets (ICLR)",
    options=DrawOptions,
    extras=early_bird_extras,
)
def early_bird(
    model: nn.Module,
    *,
    density: float,
    data: Iterable[Any] | None = None,
    seed: int = 0,
    mode: str = "channel",
    l1: float = 1e-4,
    exact: bool = True,
    channel_density: float | None = None,
    **options: Any,
) -> MethodResult:
    """Early-Bird (You et al. 2020): channel masks from BatchNorm scales, drawn when they settle.

    The network (a copy) is trained with the L1 penalty ``l1 * sum |gamma|`` on the BatchNorm
    scales (network slimming) by SGD with momentum; after every epoch the channel mask of
    ``channel_density`` (global ``|gamma|`` ranking) is taken, and training stops when the
    largest distance between the newest mask and the 4 before it (a FIFO window of 5) is at
    most ``tol`` (0.1). The ticket is the drawn channel mask as a weight mask, brought to the
    exact count (module docstring). The model needs BatchNorm layers after its Conv/Linear
    layers (``gt.models.build("mlp", ..., batchnorm=True)``, the conv nets); the
    unstructured variant is the separate method ``early_magnitude``.

    Parameters
    ----------
    mode : {"channel"}
        Only the channel mode is Early-Bird; ``"weight"`` is an error that names
        ``early_magnitude``.
    l1 : float, default 1e-4
        Weight ``s`` of the L1 penalty on the BatchNorm scales (the paper's 1e-4).
    exact : bool, default True
        Trim (or grow) the structured weight mask to exactly ``round(density * N)``; False
        keeps the channel-structured mask (density ``meta["structured_density"]``).
    channel_density : float, optional
        Fraction of BatchNorm channels kept; default solved from ``density``
        (:func:`solve_channel_density`). Recorded in ``meta["channel_density"]``.
    **options
        The fields of :class:`DrawOptions`: ``tol``, ``window`` (0.1, 5: the paper's),
        ``epochs`` (30; if the rule never fires, the last epoch's mask is returned and
        ``meta["detected"]`` is False), ``max_epochs`` (its deprecated alias), ``normalize``,
        ``optimizer``, ``lr``, ``momentum``, ``weight_decay`` (the paper's SGD, momentum 0.9,
        weight decay 1e-4 and learning rate 0.1, its CIFAR models'; for the MNIST-1D MLP with
        BatchNorm (100, 100) a sweep on a validation split (20 % of the training set, 30
        epochs, 2 seeds) gave final validation accuracies 0.636 / 0.631 / 0.594 / 0.569 at lr
        0.3 / 0.1 / 0.03 / 0.01: 0.1 is within the seed spread of the best, so the paper's
        value is the default; the rate is constant during the search, the paper's decays come
        after the usual drawing epochs), ``keep_classifier_dense``, ``device``.

    Returns
    -------
    MethodResult
        ``meta``: ``epoch_drawn`` (1-based epoch whose mask is the ticket), ``detected``,
        ``distances`` (the curve, NaN while the window fills), ``gamma_l1`` (``sum |gamma|``
        after every epoch), ``l1``, ``channel_density``, ``structured_density``,
        ``channels_kept``, ``exact``, accuracies per epoch, ``cost``.
    """
    if mode == "weight":
        raise GraphticketsError(
            "early_bird is the channel method of You et al. (masks from BatchNorm scales); the "
            "unstructured weight-magnitude variant is its own method: use 'early_magnitude'"
        )
    if mode not in ("channel", "auto"):
        raise GraphticketsError(f"early_bird's mode is 'channel' (the only one), got {mode!r}")
    if not _has_bn(model) or not _gamma_scores(model):
        raise GraphticketsError(
            "early_bird draws channel masks from BatchNorm scales, and this model has no BatchNorm "
            "after its Conv/Linear layers: build it with BatchNorm, e.g. gt.models.build('mlp', ..., "
            "batchnorm=True) (or a conv net), or use the unstructured variant 'early_magnitude'"
        )
    return _draw(model, density=density, data=data, seed=seed, mode="channel", opts=DrawOptions(**options),
                 l1=l1, exact=exact, channel_density=channel_density)


@register_method(
    "early_magnitude",
    needs_data=True,
    kind="train",
    summary="global magnitude mask drawn during training once it stops changing (unstructured Early-Bird rule)",
    reference="You et al. 2020, Drawing Early-Bird Tickets (ICLR): its detection rule on unstructured magnitude masks",
    options=DrawOptions,
    extras=early_bird_extras,
)
def early_magnitude(
    model: nn.Module,
    *,
    density: float,
    data: Iterable[Any] | None = None,
    seed: int = 0,
    **options: Any,
) -> MethodResult:
    """Early-Bird's detection rule on unstructured global magnitude masks (not Early-Bird).

    After every epoch of training (a copy, SGD with momentum) the global magnitude mask at
    ``density`` is taken; training stops when the masks stop changing (the Early-Bird rule,
    :func:`detect`, with the distance normalised by the kept count, ``normalize="kept"`` by
    default: module docstring), and the mask drawn then is the ticket, at the exact count. It
    is late one-shot magnitude pruning with an Early-Bird stopping rule: it has its own name
    so that tables never report it as Early-Bird. Works on any network; no L1 penalty.

    The ``options`` are those of :class:`DrawOptions` (as for ``early_bird``);
    ``normalize="auto"`` is ``"kept"``. ``meta["mode"]`` is ``"weight"``.
    """
    return _draw(model, density=density, data=data, seed=seed, mode="weight", opts=DrawOptions(**options))
