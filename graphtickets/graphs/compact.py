"""A ticket as an architecture: :func:`compact` removes dead units and narrows the layers.

The network is traced with torch.fx (:func:`graphtickets._trace.module_calls`); a unit
(feature or channel) of a hidden activation is *removable* when

* no live path leads from it to the output (nothing it computes is used), or
* no live path leads to it from the input, so it is a constant (its bias through the layers
  after it), and every layer that reads it is a ``Linear`` — the constant's contribution is
  folded into that layer's bias, exactly — or the constant is 0. (A constant channel read by a
  convolution is kept: with zero padding its contribution depends on the position.)

What is kept whole, and said so: the input and the output; the residual stream (every
activation a residual ``add`` merges, and the sum: a channel there would have to be dead in
every tensor the add merges, so the stream keeps its width); activations of grouped
convolutions, concatenations, padding and reshapes other than ``flatten`` (a channel before a
``flatten`` is removed together with all its features); activations a module reads twice.

The compact module is a copy of the model with each ``Linear``/``Conv``/``BatchNorm`` replaced
by a narrower one holding the kept rows, columns and channels (running statistics too). The
pruned weights inside kept units stay zero in the dense weights, so the function is the
sparse network's (up to float rounding of the folded biases); the mask is not carried.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from graphtickets._trace import Plan, module_calls, resolve_input_shape
from graphtickets.errors import GraphticketsError
from graphtickets.graphs import _common as C
from graphtickets.graphs.layered import layered_graph
from graphtickets.ticket import Ticket

__all__ = ["compact"]

_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_BN = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def _reach(adj: sp.csr_matrix, start: np.ndarray) -> np.ndarray:
    """Nodes reachable from ``start`` along ``adj`` (rows: sources)."""
    seen = start.copy()
    frontier = start.copy()
    at = adj.T.tocsr()
    while frontier.any():
        nxt = (at @ frontier.astype(np.float64)) > 0
        frontier = nxt & ~seen
        seen |= nxt
    return seen


def _fixed_blocks(plan: Plan, calls: list[tuple[str, int, int]], model: nn.Module) -> set[int]:
    """Blocks kept whole (see the module docstring)."""
    fixed = {i for i, b in enumerate(plan.blocks) if b.role in ("input", "output")}
    for op in plan.ops:
        if op.kind not in ("linear", "conv", "flatten"):
            fixed |= {op.dst, *op.srcs}
        if op.groups > 1:
            fixed |= {op.dst, *op.srcs}
    names = [c[0] for c in calls]
    for name, bi, bo in calls:
        if names.count(name) > 1:
            fixed |= {bi, bo}
    return fixed


def _captured_inputs(sparse: nn.Module, shape: tuple[int, ...]) -> dict[str, torch.Tensor]:
    """The input of every Linear/Conv of ``sparse`` (eval mode) on one all-zero example."""
    seen: dict[str, torch.Tensor] = {}
    hooks = []
    for name, mod in sparse.named_modules():
        if isinstance(mod, (nn.Linear, *_CONV)):
            hooks.append(mod.register_forward_pre_hook(
                lambda m, args, name=name: seen.setdefault(name, args[0].detach().clone())))  # fmt: skip
    was = sparse.training
    sparse.eval()
    try:
        with torch.no_grad():
            sparse(torch.zeros((1, *shape)))
    finally:
        sparse.train(was)
        for h in hooks:
            h.remove()
    return seen


def _keep_sets(model: nn.Module, plan: Plan, calls: list[tuple[str, int, int]],
               inputs: dict[str, torch.Tensor], adj: sp.csr_matrix) -> list[np.ndarray]:  # fmt: skip
    """Per block, the boolean array of units kept."""
    n = plan.n_nodes
    start_in, start_out = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    for b in plan.blocks:
        if b.role == "input":
            start_in[b.start: b.start + b.size] = True
        if b.role == "output":
            start_out[b.start: b.start + b.size] = True
    fwd, bwd = _reach(adj, start_in), _reach(adj.T.tocsr(), start_out)
    mods = dict(model.named_modules())
    readers: dict[int, list[str]] = {}
    for name, bi, _ in calls:
        if isinstance(mods[name], (nn.Linear, *_CONV)):
            readers.setdefault(bi, []).append(name)
    flatten_src = {op.srcs[0]: op.dst for op in plan.ops if op.kind == "flatten"}
    fixed = _fixed_blocks(plan, calls, model)
    keep: list[np.ndarray] = []
    for i, b in enumerate(plan.blocks):
        sl = slice(b.start, b.start + b.size)
        constant = bwd[sl] & ~fwd[sl]
        names = readers.get(i, [])
        linear = bool(names) and all(isinstance(mods[m], nn.Linear) for m in names)
        zeros = np.full(b.size, bool(names))  # a constant every reader sees as 0
        for m in names:
            zeros &= (inputs[m][0].reshape(b.size, -1) == 0).all(dim=1).numpy()
        removable = ~bwd[sl] | (constant & (linear | zeros))
        keep.append(np.ones(b.size, dtype=bool) if i in fixed or i in flatten_src else ~removable)
    for src, dst in flatten_src.items():
        if src in fixed or dst in fixed:
            keep[src][:] = keep[dst][:] = True
            continue
        size = plan.blocks[src].size
        per = np.asarray(keep[dst].reshape(size, -1).any(axis=1), dtype=bool)
        keep[src] = per
        keep[dst] = np.repeat(per, plan.blocks[dst].size // size)
    for k in keep:  # a layer keeps one unit at least (a kept unit computes what it did: no change)
        if not k.any():
            k[0] = True
    for src, dst in flatten_src.items():
        keep[dst] = np.repeat(keep[src], plan.blocks[dst].size // plan.blocks[src].size)
    return keep


def _narrow_linear(m: nn.Linear, ko: np.ndarray, ki: np.ndarray, x: torch.Tensor) -> nn.Linear:
    w = m.weight.detach()
    dropped = torch.from_numpy(~ki)
    fold = w[:, dropped] @ x.reshape(-1)[dropped].to(w.dtype)  # constants of removed inputs
    has_bias = m.bias is not None or bool(fold.abs().sum() > 0)
    out = nn.Linear(int(ki.sum()), int(ko.sum()), bias=has_bias)
    bias = (m.bias.detach() if m.bias is not None else torch.zeros(w.shape[0])) + fold
    with torch.no_grad():
        out.weight.copy_(w[torch.from_numpy(ko)][:, torch.from_numpy(ki)])
        if out.bias is not None:
            out.bias.copy_(bias[torch.from_numpy(ko)])
    return out


def _narrow_conv(m: Any, ko: np.ndarray, ki: np.ndarray) -> nn.Module:
    w = m.weight.detach()
    cls = type(m)
    out = cls(int(ki.sum()), int(ko.sum()), m.kernel_size, stride=m.stride, padding=m.padding,
              dilation=m.dilation, bias=m.bias is not None, padding_mode=m.padding_mode)  # fmt: skip
    with torch.no_grad():
        out.weight.copy_(w[torch.from_numpy(ko)][:, torch.from_numpy(ki)])
        if m.bias is not None:
            out.bias.copy_(m.bias.detach()[torch.from_numpy(ko)])
    return out


def _narrow_bn(m: Any, k: np.ndarray) -> nn.Module:
    out = type(m)(int(k.sum()), eps=m.eps, momentum=m.momentum, affine=m.affine,
                  track_running_stats=m.track_running_stats)  # fmt: skip
    idx = torch.from_numpy(k)
    with torch.no_grad():
        if m.affine:
            out.weight.copy_(m.weight.detach()[idx])
            out.bias.copy_(m.bias.detach()[idx])
        if m.track_running_stats:
            out.running_mean.copy_(m.running_mean[idx])
            out.running_var.copy_(m.running_var[idx])
            out.num_batches_tracked.copy_(m.num_batches_tracked)
    return out


def _set_module(root: nn.Module, name: str, new: nn.Module) -> None:
    parent, _, leaf = name.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, leaf, new)


def compact(model: nn.Module, ticket: Ticket, *, input_shape: Any = None) -> nn.Module:
    """A smaller dense network computing what ``ticket`` on ``model`` computes.

    Parameters
    ----------
    model : nn.Module
        The network (its weights, or the ticket's own ``weights`` when it carries them).
    ticket : Ticket
    input_shape : tuple of int, optional
        One input's shape; default ``model.gt_spec["in_shape"]``.

    Returns
    -------
    nn.Module
        A copy of ``model`` with narrower Linear/Conv/BatchNorm modules (see the module
        docstring for what is removed and what is kept whole). Attribute ``gt_compact``:
        ``{"kept_units": {block: (kept, of)}, "params_before", "params_after"}``. The model
        itself is not modified.

    Examples
    --------
    >>> import graphtickets as gt
    >>> m = gt.models.build("mlp", in_shape=(10,), num_classes=3, widths=(8,), seed=0)
    >>> t = gt.pruning.prune(m, "magnitude", density=0.1)
    >>> small = compact(m, t)
    >>> small.gt_compact["params_after"] < small.gt_compact["params_before"]
    True
    """
    C.check_ticket(model, ticket)
    shape = resolve_input_shape(model, input_shape)
    sparse = ticket.apply(copy.deepcopy(model))
    plan, calls = module_calls(sparse, shape)
    adj = sp.csr_matrix(layered_graph(sparse, ticket, input_shape=shape).adjacency)
    if adj.shape[0] != plan.n_nodes:
        raise GraphticketsError("compact: the layered graph and the trace disagree")  # pragma: no cover
    inputs = _captured_inputs(sparse, shape)
    keep = _keep_sets(sparse, plan, calls, inputs, adj)
    out = copy.deepcopy(sparse)
    mods = dict(sparse.named_modules())
    for name, bi, bo in calls:
        m = mods[name]
        if isinstance(m, nn.Linear):
            _set_module(out, name, _narrow_linear(m, keep[bo], keep[bi], inputs[name][0]))
        elif isinstance(m, _CONV):
            _set_module(out, name, _narrow_conv(m, keep[bo], keep[bi]))
        elif isinstance(m, _BN):
            _set_module(out, name, _narrow_bn(m, keep[bo]))
    out.gt_compact = {  # type: ignore[assignment]
        "kept_units": {b.layer: (int(keep[i].sum()), b.size) for i, b in enumerate(plan.blocks)},
        "params_before": sum(p.numel() for p in sparse.parameters()),
        "params_after": sum(p.numel() for p in out.parameters()),
    }
    return out
