"""Layer collapse: layers of a ticket through which no signal passes from input to output.

Tanaka et al. (2020) call a layer collapsed when it is entirely pruned; more generally a
layer is useless when none of its live weights lies on a path from the input to the output.
:func:`collapsed_layers` checks both, for any architecture (chains, residual ``add``,
``cat``, grouped convolutions), without building a graph:

* a masked parameter with no live weight is collapsed, always;
* the path rule runs the network itself as a reachability machine. On a copy in float64
  and eval mode, every ``Linear``/``Conv`` weight is replaced by its binary mask (1 where
  live; unmasked layers all ones), biases by 0, normalization layers and activation modules
  by the identity, max-pooling by average pooling of the same window (a max routes the
  gradient to one entry only; an average keeps "any path"), and the output of every
  ``Linear``/``Conv`` is binarized: forward ``1[y > 0]`` (the unit is reachable from the
  input), backward ``1[dR/dy > 0]`` (the unit reaches the output). With an all-ones input
  and ``R = sum(output)``, every quantity is non-negative, so a weight lies on an
  input-to-output path iff ``mask * dR/dw > 0`` (``dR/dw`` sums, over positions, a
  reachable input times an output-reaching unit). The binarization is the per-layer
  rescaling that keeps every value in a fixed range, so no depth overflows or underflows.
  A layer is collapsed iff none of its live weights lies on such a path.

The rule is exact at the level of single weights and pixels (a conv kernel entry that only
ever meets zero padding carries nothing), which is finer than the channel-level layered
graph of ``graphtickets.graphs`` (a conv channel pair is an edge when any kernel entry
lives); on the networks of ``gt.models`` the two agree (the tests check it with networkx).

Limits: biases carry no path (a masked bias is collapsed only when empty); the input shape
is needed (``in_shape=``, else ``model.gt_spec``, else ``(in_features,)`` of a leading
``Linear``); a model without one is handled only when it is a plain chain (the channel-level
chain rule below). Elementwise activations written as functions in ``forward`` must map 0 to
0 and positives to positives (``F.relu`` does; a functional sigmoid does not); activation
MODULES are always replaced. Functional max-pooling in ``forward`` is not replaced.

References
----------
.. [1] Tanaka, Kunin, Yamins, Ganguli. "Pruning neural networks without any data by
   iteratively conserving synaptic flow." NeurIPS 2020 (layer collapse, Fig. 1).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import fx, nn

from graphtickets._trace import (
    ACTIVATION_MODULES,
    DROPOUT_MODULES,
    NORM_MODULES,
    WEIGHT_MODULES,
    node_role,
    symbolic_graph,
)
from graphtickets.errors import GraphticketsError, UnsupportedModuleError
from graphtickets.ticket import Ticket

__all__ = ["collapsed_layers", "on_path", "is_chain", "channel_connectivity"]



def channel_connectivity(mask: torch.Tensor) -> np.ndarray:
    """``(out, in)`` boolean matrix: a connection is live when any of its kernel entries is."""
    m = mask.detach().cpu().bool()
    if m.dim() == 1:  # a bias: no connection structure
        raise GraphticketsError("channel_connectivity takes a weight mask of 2 or more dimensions")
    return m.reshape(m.shape[0], m.shape[1], -1).any(dim=2).numpy()


def is_chain(model: nn.Module) -> bool:
    """True when ``torch.fx`` traces ``model`` with no ``add``/``cat`` merging two branches
    (:func:`graphtickets._trace.node_role`)."""
    try:
        gm = symbolic_graph(model)
    except UnsupportedModuleError:  # untraceable models are treated as non-chains
        return False
    for node in gm.graph.nodes:
        if node_role(gm, node) != "merge":
            continue
        if node.op == "call_method":
            return False
        args = [a for a in node.args if isinstance(a, fx.Node)]
        listed = node.args[0] if node.args and isinstance(node.args[0], (list, tuple)) else []
        if len(args) >= 2 or len([a for a in listed if isinstance(a, fx.Node)]) >= 2:
            return False
    return True


def _map_units(prev_out: np.ndarray, n_in: int, name: str) -> np.ndarray:
    """Units of the next layer's input from the previous layer's output units (flatten aware)."""
    n_out = prev_out.size
    if n_in == n_out:
        return prev_out
    if n_in % n_out == 0:  # flatten: channel c -> features c*s .. c*s+s-1
        return np.asarray(np.repeat(prev_out, n_in // n_out), dtype=bool)
    raise GraphticketsError(
        f"layer {name!r} takes {n_in} inputs but the layer before it gives {n_out} units; "
        "collapsed_layers handles chains of Linear/Conv (with flatten) only"
    )


def _to_prev(units: np.ndarray, n_prev: int) -> np.ndarray:
    """Backward version of :func:`_map_units`: a channel reaches the output if any feature does."""
    if units.size == n_prev:
        return units
    return np.asarray(units.reshape(n_prev, -1).any(axis=1), dtype=bool)


class _Reach(torch.autograd.Function):
    """Forward ``1[y > 0]``, backward ``1[g > 0]``: reachability, kept in range at every layer."""

    @staticmethod
    def forward(ctx: Any, y: torch.Tensor) -> torch.Tensor:
        return (y > 0).to(y.dtype)

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> torch.Tensor:
        return (g > 0).to(g.dtype)


def _reach_hook(module: nn.Module, inputs: Any, output: torch.Tensor) -> torch.Tensor:
    return _Reach.apply(output)


#: Replaced by the identity in the reachability machine (the module groups of graphtickets._trace).
_IDENTITY = (*NORM_MODULES, nn.LocalResponseNorm, *ACTIVATION_MODULES, *DROPOUT_MODULES)
_MAXPOOLS: dict[type[nn.Module], type[nn.Module]] = {
    nn.MaxPool1d: nn.AvgPool1d, nn.MaxPool2d: nn.AvgPool2d, nn.MaxPool3d: nn.AvgPool3d,
}
_ADAPTIVE_MAXPOOLS: dict[type[nn.Module], type[nn.Module]] = {
    nn.AdaptiveMaxPool1d: nn.AdaptiveAvgPool1d, nn.AdaptiveMaxPool2d: nn.AdaptiveAvgPool2d,
    nn.AdaptiveMaxPool3d: nn.AdaptiveAvgPool3d,
}


def _replacement(name: str, mod: nn.Module) -> nn.Module | None:
    if isinstance(mod, _IDENTITY):
        return nn.Identity()
    avg = _MAXPOOLS.get(type(mod))
    if avg is not None:
        dil = getattr(mod, "dilation", 1)
        if any(int(d) != 1 for d in (dil if isinstance(dil, (tuple, list)) else (dil,))):
            raise GraphticketsError(
                f"collapsed_layers: max-pool {name!r} is dilated; only undilated pooling is supported"
            )
        return avg(mod.kernel_size, mod.stride, mod.padding, ceil_mode=mod.ceil_mode)  # type: ignore[call-arg]
    adaptive = _ADAPTIVE_MAXPOOLS.get(type(mod))
    if adaptive is not None:
        return adaptive(mod.output_size)  # type: ignore[call-arg]
    return None


def _reach_copy(model: nn.Module, masks: dict[str, torch.Tensor]) -> nn.Module:
    """The reachability machine of the module docstring (a copy; ``model`` is untouched)."""
    work = copy.deepcopy(model).to(torch.float64).eval()
    for name, mod in list(work.named_modules()):
        if not name:
            continue
        repl = _replacement(name, mod)
        if repl is not None:
            parent, _, attr = name.rpartition(".")
            setattr(work.get_submodule(parent) if parent else work, attr, repl)
    layer_weights = {
        (f"{mn}.weight" if mn else "weight") for mn, mod in work.named_modules() if isinstance(mod, WEIGHT_MODULES)
    }
    with torch.no_grad():
        for n, p in work.named_parameters():
            p.requires_grad_(False)
            if n in layer_weights:
                m = masks.get(n)
                if m is None:
                    p.fill_(1.0)
                else:
                    p.copy_(m.to(p.device, p.dtype))
                p.requires_grad_(True)
            elif n.endswith("bias"):
                p.zero_()
            else:  # any other parameter of an unreplaced module: a positive gain
                p.fill_(1.0)
    for mod in work.modules():
        if isinstance(mod, WEIGHT_MODULES):
            mod.register_forward_hook(_reach_hook)
    return work


def on_path(model: nn.Module, ticket: Ticket, *, in_shape: Sequence[int]) -> dict[str, torch.Tensor]:
    """For each masked ``Linear``/``Conv`` weight, which weights lie on an input-to-output path.

    Parameters
    ----------
    model : nn.Module
        Any network (residual, concatenating, grouped convolutions...); weights are not read.
    ticket : Ticket
    in_shape : tuple of int
        One sample's shape, without the batch dimension.

    Returns
    -------
    dict[str, torch.Tensor]
        Bool tensors of the weights' shapes, for the ticket's masks of ``Linear``/``Conv``
        weights: ``True`` where the weight is live and on a path (see the module docstring).

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1))
    >>> t = Ticket({"0.weight": torch.tensor([[True, False], [False, True]]),
    ...             "2.weight": torch.tensor([[False, True]])})
    >>> on_path(net, t, in_shape=(2,))["0.weight"].tolist()   # unit 0 goes nowhere
    [[False, False], [False, True]]
    """
    masks = {n: m.detach().cpu().bool() for n, m in ticket.masks.items()}
    work = _reach_copy(model, masks)
    params = dict(work.named_parameters())
    names = [n for n in masks if n in params and params[n].requires_grad]
    if not names:
        return {}
    dev = params[names[0]].device
    x = torch.ones((1, *(int(s) for s in in_shape)), dtype=torch.float64, device=dev)
    r = work(x)
    if not isinstance(r, torch.Tensor):
        raise GraphticketsError("collapsed_layers needs a model whose output is one tensor")
    r = r.sum()
    if not r.requires_grad:  # the output does not depend on any weight: nothing is on a path
        return {n: torch.zeros_like(masks[n]) for n in names}
    grads = torch.autograd.grad(r, [params[n] for n in names], allow_unused=True)
    out = {}
    for n, g in zip(names, grads, strict=True):
        if g is None:
            out[n] = torch.zeros_like(masks[n])
        else:
            out[n] = masks[n] & (g.detach().cpu() > 0)
    return out


def _input_shape(model: nn.Module, in_shape: Sequence[int] | None) -> tuple[int, ...] | None:
    if in_shape is not None:
        return tuple(int(s) for s in in_shape)
    spec = getattr(model, "gt_spec", None)
    if isinstance(spec, dict) and spec.get("in_shape") is not None:
        return tuple(int(s) for s in spec["in_shape"])
    for mod in model.modules():
        if isinstance(mod, WEIGHT_MODULES):
            return (int(mod.in_features),) if isinstance(mod, nn.Linear) else None
    return None


def collapsed_layers(model: nn.Module, ticket: Ticket, *, in_shape: Sequence[int] | None = None) -> list[str]:
    """Names of the masked weights of ``ticket`` that carry no input-to-output signal.

    Parameters
    ----------
    model : nn.Module
        The architecture the ticket belongs to (weights are not read). Any architecture:
        chains, residual networks, concatenations (see the module docstring).
    ticket : Ticket
    in_shape : tuple of int, optional
        One sample's shape (no batch dimension); default ``model.gt_spec["in_shape"]``, or
        ``(in_features,)`` when the first layer is a ``Linear``.

    Returns
    -------
    list of str
        Parameter names in mask order: layers with no live weight, and layers none of whose
        live weights lies on an input-to-output path.

    Raises
    ------
    GraphticketsError
        When the input shape is unknown and the model is not a plain chain.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1))
    >>> t = Ticket({"0.weight": torch.tensor([[True, True], [False, False]]),
    ...             "2.weight": torch.tensor([[False, True]])})
    >>> collapsed_layers(net, t)   # the only live path enters unit 0, which 2.weight drops
    ['0.weight', '2.weight']
    """
    ticket.check(model)
    dead = {n for n, m in ticket.masks.items() if not bool(m.any())}
    shape = _input_shape(model, in_shape)
    if shape is None:
        if not is_chain(model):
            raise GraphticketsError(
                "collapsed_layers needs the input shape of this model: pass in_shape=(C, H, W) "
                "(or build the model with gt.models.build, which records it)"
            )
        cut = _chain_cut(model, ticket)
    else:
        cut = {n for n, live in on_path(model, ticket, in_shape=shape).items() if not bool(live.any())}
    return [n for n in ticket.masks if n in cut or n in dead]


def _chain_cut(model: nn.Module, ticket: Ticket) -> set[str]:
    """The channel-level rule for a plain chain of Linear/Conv layers (no input shape needed).

    Units reachable from the input are propagated forward and units that reach the output
    backward, through each layer's (out, in) connectivity (a conv connection is live when any
    of its kernel entries is; BatchNorm/activations/pooling keep channel identity, ``flatten``
    maps channel ``c`` to features ``c*s .. c*s+s-1``).
    """
    layers = [(f"{mn}.weight" if mn else "weight", mod) for mn, mod in model.named_modules() if isinstance(mod, WEIGHT_MODULES)]
    conn = []
    for name, mod in layers:
        w = mod.weight
        m = ticket.masks.get(name)
        if m is None:  # not masked: dense
            m = torch.ones(w.shape, dtype=torch.bool)
        if getattr(mod, "groups", 1) != 1:
            raise GraphticketsError(
                f"collapsed_layers: {name!r} is a grouped convolution; pass in_shape= to use the "
                "general path rule"
            )
        conn.append((name, channel_connectivity(m)))
    if not conn:
        return set()
    # forward: units reachable from the input
    fwd_in: list[np.ndarray] = []
    reach = np.ones(conn[0][1].shape[1], dtype=bool)
    for i, (name, c) in enumerate(conn):
        if i > 0:
            reach = _map_units(reach, c.shape[1], name)
        fwd_in.append(reach)
        reach = np.asarray((c & reach[None, :]).any(axis=1), dtype=bool)
    # backward: units that reach the output
    bwd_out: list[np.ndarray] = [np.empty(0, dtype=bool)] * len(conn)
    co = np.ones(conn[-1][1].shape[0], dtype=bool)
    for i in range(len(conn) - 1, -1, -1):
        name, c = conn[i]
        bwd_out[i] = co
        co = np.asarray((c & co[:, None]).any(axis=0), dtype=bool)
        if i > 0:
            co = _to_prev(co, conn[i - 1][1].shape[0])
    return {
        name
        for (name, c), r, o in zip(conn, fwd_in, bwd_out, strict=True)
        if not bool((c & o[:, None] & r[None, :]).any())
    }
