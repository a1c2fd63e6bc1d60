"""Elastic Lottery Ticket Hypothesis: move a ticket to a deeper or shallower network.

A ticket found on one depth of a family (ResNet-20, an MLP with 3 hidden layers) is turned
into a ticket of another depth of the same family (ResNet-32, an MLP with 5 hidden layers)
by copying whole blocks of masks (and, optionally, weights):

* **ResNets** (``stage<s>.<i>.*``): per stage, target block ``i`` takes the masks of source
  block ``mapping[i]``. Stretching replicates blocks, squeezing drops them. Block 0 of every
  stage (in stages 2 and 3 the downsampling block, whose shapes differ from the others) is
  always kept and mapped to block 0. Everything outside the stages (``conv1``,
  ``classifier``) is copied as is.
* **MLPs** (``fc<i>``, ``classifier``): the hidden layers after the first are the "blocks"
  (with their BatchNorm ``bn<i>`` when the MLP has one); they must have equal widths. ``fc1`` (input side) and ``classifier`` are copied as is.

The default mapping (:func:`block_mapping`) is the paper's: each source block is copied to
adjacent target slots when stretching (``1 1 2 2`` for two blocks into four), and blocks are
dropped evenly when squeezing; block 0 stays block 0.

Density. The transform alone gives whatever density the mapping gives (copied blocks keep
their own densities: a 0.2 IMP ticket of a 3-hidden-layer MLP squeezed to 2 hidden layers
keeps about 0.23 of the weights). ``prune(target, "elastic", density=d, source=t,
source_model=m)`` then brings the transformed ticket to exactly ``round(d * N)`` weights,
so that it can sit beside the other methods at density ``d``; the reference code does not
(its comparisons are at the transform's own density), so this is a deviation, and a small
one when ``d`` is the source ticket's density. The rule (:func:`adjust_to_density`):

* too dense: keep the ``round(d * N)`` weights of the transformed mask with the largest
  ``|w|`` (global ranking, ties by position), ``w`` being the weights the ticket starts
  from: the carried ones (``carry_weights=True``), else the target model's own;
* too sparse: keep the whole transformed mask and add the weights outside it with the
  largest ``|w|`` (the same ``w``) until the count is reached.

``meta["density_before_adjustment"]`` records the transform's own density and
``meta["adjustment"]`` what was done (``"trimmed"``, ``"grown"`` or ``"none"``, with the
number of weights removed or added). Without ``density`` nothing is adjusted and
``config["density"]`` records the actual density.

``carry_weights=True`` (the default, as in the reference) also carries the weights: the
source ticket's ``weights`` (e.g. IMP's rewound weights) where it has them, else the source
model's current parameters, and the BatchNorm buffers (running statistics) of the mapped
layers, as the reference code copies the whole state dict of the source at the rewind
point. Buffers travel in ``Ticket.weights`` under their own names. ``carry_weights=False``
gives a mask only (the target model's own initialization is then used).

References
----------
.. [1] Chen, X., Cheng, Y., Wang, S., Gan, Z., Liu, J. & Wang, Z. (2021). The Elastic Lottery
   Ticket Hypothesis. NeurIPS 2021.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from graphtickets.errors import GraphticketsError
from graphtickets.pruning.core import MethodResult, make_ticket, register_method
from graphtickets.pruning.select import keep_count, select_topk
from graphtickets.ticket import Ticket, check_density

__all__ = ["block_mapping", "block_layout", "mapping_table", "name_mapping", "elastic_transform", "adjust_to_density"]

log = logging.getLogger("graphtickets.pruning.elastic")

_STAGE = re.compile(r"^(stage\d+)\.(\d+)\.(.+)$")
_FC = re.compile(r"^(fc|bn)(\d+)\.(.+)$")


def block_mapping(n_source: int, n_target: int) -> list[int]:
    """Which source block fills each of ``n_target`` block slots (the paper's default).

    Slot 0 always takes block 0 (the downsampling block of a ResNet stage). The other
    ``n_target - 1`` slots take source blocks ``1 .. n_source - 1`` spread evenly:
    slot ``j`` (counting from 1) takes block ``1 + floor((j - 1) (n_source - 1) / (n_target - 1))``.
    Stretching therefore copies each block to adjacent slots; squeezing drops blocks evenly.
    With a single source block, every slot takes block 0.

    Parameters
    ----------
    n_source, n_target : int
        Blocks per stage in the source and the target (>= 1).

    Returns
    -------
    list of int
        ``n_target`` source block indices, non-decreasing.

    Examples
    --------
    >>> block_mapping(3, 5)   # ResNet-20 -> ResNet-32
    [0, 1, 1, 2, 2]
    >>> block_mapping(5, 3)   # ResNet-32 -> ResNet-20
    [0, 1, 3]
    >>> block_mapping(3, 3)
    [0, 1, 2]
    """
    for v, nm in ((n_source, "n_source"), (n_target, "n_target")):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise GraphticketsError(f"{nm} must be a positive int (blocks per stage), got {v!r}")
    if n_target == 1:
        return [0]
    if n_source == 1:
        return [0] * n_target
    return [0] + [1 + ((j - 1) * (n_source - 1)) // (n_target - 1) for j in range(1, n_target)]


def _is_mlp(names: Iterable[str]) -> bool:
    """Whether the names are an MLP's (``fc<i>`` layers): only then is ``bn<i>`` a block's."""
    return any(_FC.match(n) is not None and n.startswith("fc") for n in names)


def _split(name: str, mlp: bool = True) -> tuple[str, int, str] | None:
    """``(group, index, rest)`` of a block parameter name, or None outside the blocks.

    In an MLP (``mlp``) ``bn<i>`` belongs to block ``i - 1`` with ``fc<i>``; elsewhere (a
    ResNet's stem ``bn1``) it is outside the blocks.
    """
    m = _STAGE.match(name)
    if m:
        return m.group(1), int(m.group(2)), m.group(3)
    m = _FC.match(name)
    if m and (mlp or m.group(1) == "fc"):  # fc1 (and bn1) is block 0 of group "fc"
        return "fc", int(m.group(2)) - 1, f"{m.group(1)}#{m.group(3)}"
    return None


def _join(group: str, index: int, rest: str) -> str:
    """The name of ``rest`` in block ``index`` of ``group`` (inverse of :func:`_split`)."""
    if group == "fc":
        prefix, _, tail = rest.partition("#")
        return f"{prefix}{index + 1}.{tail}"
    return f"{group}.{index}.{rest}"


def block_layout(names: Iterable[str]) -> dict[str, int]:
    """Number of blocks of each group (``stage1``.. or ``fc``) among parameter names.

    >>> block_layout(["fc1.weight", "fc2.weight", "fc3.weight", "classifier.weight"])
    {'fc': 3}
    """
    names = list(names)
    mlp = _is_mlp(names)
    out: dict[str, int] = {}
    for n in names:
        s = _split(n, mlp)
        if s is not None:
            out[s[0]] = max(out.get(s[0], 0), s[1] + 1)
    return out


def mapping_table(
    source_layout: Mapping[str, int],
    target_layout: Mapping[str, int],
    mapping: Sequence[int] | Mapping[str, Sequence[int]] | None = None,
) -> dict[str, list[int]]:
    """The source block of every target slot, per group (validated).

    >>> mapping_table({"stage1": 3}, {"stage1": 5})
    {'stage1': [0, 1, 1, 2, 2]}
    """
    if set(source_layout) != set(target_layout):
        raise GraphticketsError(
            f"the two networks are not depths of one family: source blocks {dict(source_layout)}, "
            f"target blocks {dict(target_layout)}; elastic tickets map ResNet stages "
            f"(stage<s>.<i>) or MLP hidden layers (fc<i>) of equal widths"
        )
    table: dict[str, list[int]] = {}
    for g, n_t in target_layout.items():
        n_s = source_layout[g]
        if mapping is None:
            table[g] = block_mapping(n_s, n_t)
            continue
        m = mapping.get(g) if isinstance(mapping, Mapping) else mapping
        if m is None:
            raise GraphticketsError(f"mapping has no entry for {g!r}; give one list per group {sorted(target_layout)}")
        m = [int(i) for i in m]
        if len(m) != n_t or any(i < 0 or i >= n_s for i in m):
            raise GraphticketsError(
                f"mapping for {g!r} must list {n_t} source block indices in 0..{n_s - 1}, got {m}"
            )
        table[g] = m
    return table


def name_mapping(
    source_names: Iterable[str],
    target_names: Iterable[str],
    mapping: Sequence[int] | Mapping[str, Sequence[int]] | None = None,
) -> dict[str, str]:
    """``{target parameter name: source parameter name}`` for a block mapping.

    Parameters
    ----------
    source_names, target_names : iterable of str
        Parameter names (``named_parameters()``) of the two networks.
    mapping : list of int, or dict group -> list of int, optional
        Source block of each target slot; one list for every group, or one per group
        (``{"stage1": [0, 1, 1, 2, 2], ...}``). Default: :func:`block_mapping` per group.

    Returns
    -------
    dict[str, str]
    """
    source_names, target_names = list(source_names), list(target_names)
    src_set = set(source_names)
    table = mapping_table(block_layout(source_names), block_layout(target_names), mapping)
    mlp = _is_mlp(target_names)
    out: dict[str, str] = {}
    for n in target_names:
        s = _split(n, mlp)
        if s is None:
            src = n
        else:
            g, i, rest = s
            j = table[g][i]
            src = _join(g, j, rest)
        if src not in src_set:
            raise GraphticketsError(
                f"target parameter {n!r} maps to {src!r}, which the source network does not have"
            )
        out[n] = src
    return out


def adjust_to_density(
    masks: Mapping[str, torch.Tensor], weights: Mapping[str, torch.Tensor], density: float
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Bring ``masks`` to exactly ``round(density * N)`` kept weights, by magnitude of ``weights``.

    Too dense: keep the largest ``|w|`` inside the mask. Too sparse: keep the whole mask and
    add the largest ``|w|`` outside it. Global ranking over all masked parameters; ties by
    position (:func:`~graphtickets.pruning.select.select_topk`).

    Parameters
    ----------
    masks : dict[str, torch.Tensor]
        The transformed ticket's masks.
    weights : dict[str, torch.Tensor]
        The values ranked (the weights the ticket starts from), one per mask.
    density : float
        The density to reach.

    Returns
    -------
    (masks, info)
        ``info``: ``density_before_adjustment``, ``adjustment`` (``"trimmed"``, ``"grown"``
        or ``"none"``) and ``changed`` (weights removed or added).

    Examples
    --------
    >>> m = {"w": torch.tensor([True, True, True, False])}
    >>> w = {"w": torch.tensor([0.1, -0.9, 0.5, 2.0])}
    >>> out, info = adjust_to_density(m, w, 0.5)
    >>> out["w"].tolist(), info["adjustment"], info["changed"]
    ([False, True, True, False], 'trimmed', 1)
    >>> adjust_to_density(m, w, 1.0)[0]["w"].tolist()
    [True, True, True, True]
    """
    density = check_density(density)
    names = list(masks)
    total = sum(m.numel() for m in masks.values())
    kept = sum(int(m.count_nonzero()) for m in masks.values())
    k = keep_count(density, total)
    scores = {n: weights[n].detach().cpu().abs().reshape(masks[n].shape) for n in names}
    info: dict[str, Any] = {"density_before_adjustment": kept / total, "adjustment": "none", "changed": 0}
    if kept > k:
        out = select_topk(scores, k / total, prior=masks)
        info.update(adjustment="trimmed", changed=kept - k)
    elif kept < k:
        outside = {n: ~masks[n] for n in names}
        grown = select_topk(scores, (k - kept) / total, prior=outside)
        out = {n: masks[n] | grown[n] for n in names}
        info.update(adjustment="grown", changed=k - kept)
    else:
        out = {n: m.clone() for n, m in masks.items()}
    return out, info


def _same_shape(what: str, s_name: str, s_shape: Any, t_name: str, t_shape: Any, hint: str = "") -> None:
    """Refuse to copy ``what`` between entries of different shapes (blocks that differ)."""
    if tuple(s_shape) != tuple(t_shape):
        raise GraphticketsError(
            f"cannot copy the {what} of {s_name!r} {tuple(s_shape)} to {t_name!r} {tuple(t_shape)}: "
            f"block shapes differ{hint}"
        )


def _copy_masks(
    source_ticket: Ticket, t_params: Mapping[str, nn.Parameter], names: Mapping[str, str]
) -> dict[str, torch.Tensor]:
    """The target's masks: the mask of each mapped source parameter (shapes checked)."""
    masks: dict[str, torch.Tensor] = {}
    for t_name, s_name in names.items():
        if s_name in source_ticket.masks:
            m = source_ticket.masks[s_name]
            _same_shape("mask", s_name, m.shape, t_name, t_params[t_name].shape,
                        " (widths must match, and a downsampling block only maps to block 0)")
            masks[t_name] = m.clone()
    return masks


def _carried_weights(
    source_ticket: Ticket,
    source_model: nn.Module,
    target_model: nn.Module,
    names: Mapping[str, str],
    mapping: Sequence[int] | Mapping[str, Sequence[int]] | None,
) -> dict[str, torch.Tensor]:
    """Every target parameter and floating buffer filled from its mapped source entry
    (the ticket's weights where it has them, else the source model's)."""
    s_params = dict(source_model.named_parameters())
    t_params = dict(target_model.named_parameters())
    src_w = {n: p.detach().cpu() for n, p in s_params.items()}
    rewind = (source_ticket.config.get("hparams") or {}).get("rewind")
    if source_ticket.weights is not None:
        src_w.update({n: w for n, w in source_ticket.weights.items() if n in src_w})
    elif isinstance(rewind, int) and rewind > 0:
        log.warning(
            "elastic: the source ticket was found with rewind=%d but carries no weights; carrying the "
            "source model's current parameters instead of the rewound ones", rewind,
        )
    s_bufs = {n: b.detach().cpu() for n, b in source_model.named_buffers() if b.is_floating_point()}
    t_bufs = {n: b for n, b in target_model.named_buffers() if b.is_floating_point()}
    if source_ticket.weights is not None:
        s_bufs.update({n: w for n, w in source_ticket.weights.items() if n in s_bufs})
    every = name_mapping([*s_params, *s_bufs], [*t_params, *t_bufs], mapping)
    weights = {}
    for t_name, s_name in {**names, **{t: every[t] for t in t_bufs}}.items():
        w = src_w[s_name] if s_name in src_w else s_bufs[s_name]
        _same_shape("weights", s_name, w.shape, t_name, (t_params[t_name] if t_name in t_params else t_bufs[t_name]).shape)
        weights[t_name] = w.clone()
    return weights


def _transform(
    source_ticket: Ticket,
    source_model: nn.Module,
    target_model: nn.Module,
    mapping: Sequence[int] | Mapping[str, Sequence[int]] | None,
    carry_weights: bool,
    density: float | None,
) -> MethodResult:
    """The elastic ticket's masks, meta and carried weights (see :func:`elastic_transform`)."""
    source_ticket.check(source_model)
    s_params = dict(source_model.named_parameters())
    t_params = dict(target_model.named_parameters())
    names = name_mapping(s_params, t_params, mapping)
    masks = _copy_masks(source_ticket, t_params, names)
    weights = _carried_weights(source_ticket, source_model, target_model, names, mapping) if carry_weights else None
    adjust: dict[str, Any] = {}
    if density is not None:
        ranked = weights if weights is not None else {n: p.detach() for n, p in t_params.items()}
        masks, adjust = adjust_to_density(masks, {n: ranked[n] for n in masks}, density)
    s_layout, t_layout = block_layout(s_params), block_layout(t_params)
    meta = {
        "mapping": mapping_table(s_layout, t_layout, mapping),
        "source_blocks": s_layout,
        "target_blocks": t_layout,
        "source": {
            "method": source_ticket.method,
            "density": source_ticket.density,
            "model": source_ticket.config.get("model"),
        },
        **adjust,
        "cost": {"epochs": 0, "iterations": 0},
    }
    return MethodResult(masks=masks, meta=meta, weights=weights)


def elastic_transform(
    source_ticket: Ticket,
    source_model: nn.Module,
    target_model: nn.Module,
    mapping: Sequence[int] | Mapping[str, Sequence[int]] | None = None,
    carry_weights: bool = True,
    density: float | None = None,
) -> Ticket:
    """Turn a ticket of ``source_model`` into a ticket of ``target_model`` (another depth).

    Parameters
    ----------
    source_ticket : Ticket
        Found on ``source_model``.
    source_model : nn.Module
        The source network (its weights are carried when the ticket has none).
    target_model : nn.Module
        A network of the same family at another depth. Not modified.
    mapping : list or dict, optional
        See :func:`name_mapping`; default the paper's (:func:`block_mapping`).
    carry_weights : bool, default True
        Also copy weights: the ticket's ``weights`` (e.g. rewound weights) where it has them,
        else the source model's current parameters; every target parameter (biases and
        BatchNorm too) and every floating BatchNorm buffer (running mean and variance) is
        filled from its mapped source entry. A warning is logged when the source ticket was
        made with ``rewind > 0`` but carries no weights (the model's parameters are then used).
    density : float, optional
        Bring the transformed ticket to exactly ``round(density * N)`` weights
        (:func:`adjust_to_density`, ranking the carried weights, or the target model's own
        with ``carry_weights=False``). None keeps the transform's own density.

    Returns
    -------
    Ticket
        ``method="elastic"``; ``meta["mapping"]`` holds the block table per group and
        ``meta["source"]`` the source ticket's method, density and model spec; with
        ``density``, ``meta["density_before_adjustment"]`` and ``meta["adjustment"]``. The
        provenance records the source ticket's seed and dataset, and, like every ticket,
        ``meta["cost"]`` and ``meta["version"]``.

    Examples
    --------
    >>> import graphtickets as gt
    >>> src = gt.models.build("mlp", in_shape=(8,), num_classes=2, widths=(6, 6, 6))
    >>> dst = gt.models.build("mlp", in_shape=(8,), num_classes=2, widths=(6, 6, 6, 6, 6))
    >>> t = gt.pruning.prune(src, "magnitude", density=0.5)
    >>> e = elastic_transform(t, src, dst)
    >>> e.meta["mapping"]["fc"]
    [0, 1, 1, 2, 2]
    """
    res = _transform(source_ticket, source_model, target_model, mapping, carry_weights, density)
    hparams = {"mapping": res.meta["mapping"], "carry_weights": carry_weights, "density": density}
    return make_ticket(target_model, "elastic", res, density=density, seed=source_ticket.config.get("seed"),
                       hparams=hparams, dataset=source_ticket.config.get("dataset"))


@register_method(
    "elastic",
    needs_data=False,
    kind="transform",
    summary="carry a ticket to another depth of the same family by replicating/dropping blocks",
    reference="Chen et al. 2021, The Elastic Lottery Ticket Hypothesis (NeurIPS)",
)
def elastic(
    model: nn.Module,
    *,
    density: float | None = None,
    data: Iterable[Any] | None = None,
    seed: int = 0,
    source: Ticket | None = None,
    source_model: nn.Module | None = None,
    mapping: Sequence[int] | Mapping[str, Sequence[int]] | None = None,
    carry_weights: bool = True,
) -> MethodResult:
    """Elastic ticket of ``model`` (the target) from ``source`` found on ``source_model``.

    With ``density`` the transformed ticket is brought to exactly ``round(density * N)``
    weights (:func:`adjust_to_density`; ``meta["density_before_adjustment"]`` keeps the
    transform's own); without it the result's density is the mapping's (module docstring).
    ``carry_weights=True`` (default) returns the carried weights (and BatchNorm buffers) as
    ``Ticket.weights`` (:func:`elastic_transform`). ``data`` and ``seed`` are unused (the
    transform and the adjustment are deterministic).

    Examples
    --------
    >>> import graphtickets as gt
    >>> src = gt.models.build("mlp", in_shape=(8,), num_classes=2, widths=(6, 6, 6))
    >>> dst = gt.models.build("mlp", in_shape=(8,), num_classes=2, widths=(6, 6))
    >>> t = gt.pruning.prune(src, "magnitude", density=0.3)
    >>> e = gt.pruning.prune(dst, "elastic", density=0.3, source=t, source_model=src)
    >>> e.kept == round(0.3 * e.total), e.meta["adjustment"] in ("trimmed", "grown", "none")
    (True, True)
    """
    if source is None or source_model is None:
        raise GraphticketsError(
            "elastic needs the ticket to transform and the model it was found on: "
            "prune(target, 'elastic', source=t, source_model=model)"
        )
    if not isinstance(source, Ticket):
        raise GraphticketsError(f"source must be a Ticket, got {type(source).__name__}")
    return _transform(source, source_model, model, mapping, carry_weights, density)
