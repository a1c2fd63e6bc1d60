"""Early-Bird tickets: draw the mask as soon as it stops changing during training.

At the end of every epoch the mask the target density would give is computed; the last
``window`` (5) masks are kept and training stops when the largest normalized Hamming
distance between the newest mask and the others falls to ``tol`` (0.1) or below. The
detection rule is a pure function (:func:`detect`, :func:`distance_curve`) with a thin
stateful wrapper (:class:`EarlyBirdDetector`) used as the training callback; they live in
:mod:`graphtickets.pruning.early_bird_rule`, and the channel structure of channel mode
(:func:`bn_channels`, :func:`channel_to_weight_masks`, ...) in :mod:`graphtickets.pruning.channels`;
this module holds the drawing and the two methods and re-exports both.

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
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from graphtickets._json import finite_or_none
from graphtickets.errors import GraphticketsError
from graphtickets.pruning.channels import (
    BATCHNORMS,
    bn_channels,
    channel_consumers,
    channel_mask,
    channel_to_weight_masks,
    gamma_scores,
    has_batchnorm,
    solve_channel_density,
)
from graphtickets.pruning.core import MethodResult, register_method, resolve_params
from graphtickets.pruning.early_bird_rule import (
    EarlyBirdDetector,
    detect,
    distance_curve,
    mask_distance,
)
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

def _l1_gamma(s: float) -> Any:
    def extra(model: nn.Module) -> torch.Tensor:
        total = None
        for m in model.modules():
            if isinstance(m, BATCHNORMS) and m.weight is not None:
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
            self.drawn["gamma"] = gamma_scores(m)

    def __call__(self, epoch: int, m: nn.Module, history: Any) -> bool:
        mask = self.mask(m)
        self.masks_at.append(mask)
        if self.mode == "channel":
            self.gamma_l1.append(float(sum(g.sum() for g in gamma_scores(m).values())))
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
    if not has_batchnorm(model) or not gamma_scores(model):
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
