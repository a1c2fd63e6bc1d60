"""The channel structure of a network: BatchNorm channels, who consumes them, channel masks as weight masks.

A channel is an output of a Conv/Linear layer normalized by a BatchNorm layer
(:func:`bn_channels`); its consumers are the Conv/Linear layers that read it, traced with
``torch.fx`` through activations, pooling, dropout and flatten (:func:`channel_consumers`).
:func:`channel_mask` keeps the channels of largest ``|gamma|`` (network slimming),
:func:`channel_to_weight_masks` turns a channel mask into the weight mask that removes every
weight of a pruned channel, and :func:`solve_channel_density` finds the channel fraction that
keeps a weight density. Early-Bird's channel mode (:mod:`graphtickets.pruning.early_bird`)
builds on it; the rules (residual additions, flatten blocks) are described there.

Imports go one way: this module imports :mod:`graphtickets._trace`, :mod:`graphtickets.errors`
and :mod:`graphtickets.pruning.select`; :mod:`graphtickets.pruning.early_bird` imports it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

import torch
from torch import fx, nn

from graphtickets._trace import WEIGHT_MODULES, node_role, symbolic_graph
from graphtickets.errors import GraphticketsError, UnsupportedModuleError
from graphtickets.pruning.select import select_topk

__all__ = [
    "BATCHNORMS",
    "bn_channels",
    "gamma_scores",
    "channel_mask",
    "channel_consumers",
    "channel_to_weight_masks",
    "solve_channel_density",
    "has_batchnorm",
]

log = logging.getLogger("graphtickets.pruning.early_bird")

#: The BatchNorm layers whose channels are pruned.
BATCHNORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


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
            if node.op == "call_module" and isinstance(modules.get(node.target), BATCHNORMS):
                src = node.args[0] if node.args else None
                if isinstance(src, fx.Node) and node_role(gm, src) == "weight":
                    out[str(node.target)] = f"{src.target}.weight"
        return out
    last: tuple[str, nn.Module] | None = None
    for name, mod in model.named_modules():
        if isinstance(mod, WEIGHT_MODULES):
            last = (name, mod)
        elif isinstance(mod, BATCHNORMS) and last is not None:
            w = last[1].weight
            if isinstance(w, torch.Tensor) and w.shape[0] == mod.num_features:
                out[name] = f"{last[0]}.weight"
    return out


def gamma_scores(model: nn.Module) -> dict[str, torch.Tensor]:
    modules = dict(model.named_modules())
    return {
        n: modules[n].weight.detach().abs().cpu().clone()
        for n in bn_channels(model)
        if getattr(modules[n], "weight", None) is not None
    }


def channel_mask(model: nn.Module, density: float) -> dict[str, torch.Tensor]:
    """Keep the ``round(density * C)`` BatchNorm channels with the largest ``|gamma|`` (global)."""
    scores = gamma_scores(model)
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
        if node.op == "call_module" and isinstance(modules.get(node.target), BATCHNORMS):
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


def has_batchnorm(model: nn.Module) -> bool:
    """Whether ``model`` has a BatchNorm layer (whose channels Early-Bird's channel mode prunes)."""
    return any(isinstance(m, BATCHNORMS) for m in model.modules())
