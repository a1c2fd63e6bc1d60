"""The stacked engine for conv nets: K tickets of one architecture run as one network (private).

:func:`graphtickets.training.train_many` stacks K tickets' parameters along a new leading
dimension; this module runs a network of convolutions, BatchNorm, residual adds, pooling,
flatten and Linear layers on those stacks, one forward pass for all K, and lets autograd
differentiate it (ticket k's weights only reach ticket k's loss).

The plan comes from the model's ``torch.fx`` trace (:func:`conv_plan`): every node becomes one
step on stacked activations, and a node the engine does not know makes the plan fail with a
sentence naming it (:func:`plan_problem`), so that the caller trains those tickets another way.

Layouts. A feature tensor is ``(K, B, F)``; a convolutional tensor is *stacked channels-last*,
``(K, B, *spatial, C)``, so that

* a convolution of every ticket is one batched matrix product (:class:`_Conv`): the input's
  patches ``(K, B * out positions, kernel * C)`` (one strided copy) times the weights
  ``(K, kernel * C, O)``; the output ``(K, B * positions, O)`` is already the next layer's
  layout. Its backward is two more batched products and one strided add per kernel offset.
  (A grouped convolution over ``K * C`` channels gives the same numbers but is 2-4x slower on a
  CPU for these small layers.)
* BatchNorm of ticket k and channel c reduces over the batch and positions (dimensions 1 to
  -2): per ticket by construction; running statistics are updated as ``nn.BatchNorm`` does
  (momentum, unbiased variance) and used in eval mode;
* flatten permutes back to ``(C, *spatial)`` order per ticket before merging, so ticket k's
  features (and a Linear head's weights) keep the meaning they have in ticket k's own model;
* a Linear layer is ``baddbmm`` over the tickets.

Supported: ``Conv1d``/``Conv2d`` (``groups=1``, zero padding given as numbers), ``Linear``,
``BatchNorm1d``/``BatchNorm2d``, elementwise activations, ``Identity``/``Dropout(p=0)``,
``Flatten`` from dimension 1, ``Unflatten`` of dimension 1, max/average pooling,
``AdaptiveAvgPool`` to size 1, residual ``+`` (``operator.add``/``torch.add``), ``torch.flatten``
and ``F.relu``/``torch.relu``.

Imports go one way: this module imports only ``errors``; :mod:`graphtickets.training.batched`
imports it.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn

from graphtickets.errors import GraphticketsError

__all__ = ["ConvPlan", "conv_plan", "plan_problem"]

_ELEMENTWISE: tuple[type[nn.Module], ...] = (
    nn.ReLU, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Tanh, nn.Sigmoid, nn.Softplus, nn.Identity,
    nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d,
)  # fmt: skip
_POOLS: dict[type[nn.Module], Callable[..., torch.Tensor]] = {
    nn.MaxPool1d: F.max_pool1d, nn.MaxPool2d: F.max_pool2d, nn.AvgPool1d: F.avg_pool1d, nn.AvgPool2d: F.avg_pool2d,
    nn.AdaptiveAvgPool1d: F.adaptive_avg_pool1d, nn.AdaptiveAvgPool2d: F.adaptive_avg_pool2d,
}  # fmt: skip
_ADD = (operator.add, operator.iadd, torch.add)
_RELU = (F.relu, torch.relu)

#: A value on the way: the stacked tensor and its layout ("flat": (K, B, F); "conv": (K, B, *S, C)).
_Value = tuple[torch.Tensor, str]


class _Unsupported(GraphticketsError):
    """A node the stacked engine cannot run (the message names it)."""


# ---------------------------------------------------------------------------- convolution
def _tuple(v: Any, n: int) -> tuple[int, ...]:
    return tuple(int(a) for a in v) if isinstance(v, (tuple, list)) else (int(v),) * n


def _patches(x: torch.Tensor, kernel: tuple[int, ...], stride: tuple[int, ...], dilation: tuple[int, ...],
             out: tuple[int, ...]) -> torch.Tensor:
    """``(K, B, *out, *kernel, C)`` strided view of the (padded, contiguous) ``x`` ``(K, B, *S, C)``."""
    st = x.stride()
    d = len(kernel)
    sp = st[2:2 + d]
    size = (*x.shape[:2], *out, *kernel, x.shape[-1])
    strides = (st[0], st[1], *(s * a for s, a in zip(sp, stride, strict=True)),
               *(s * a for s, a in zip(sp, dilation, strict=True)), st[-1])  # fmt: skip
    return x.as_strided(size, strides)


class _Conv(torch.autograd.Function):
    """K convolutions as batched matrix products on stacked channels-last tensors (see the module docstring)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, stride: tuple[int, ...],
                padding: tuple[int, ...], dilation: tuple[int, ...]) -> torch.Tensor:
        k, batch = x.shape[0], x.shape[1]
        d = w.dim() - 3
        kernel = tuple(w.shape[3:])
        pad: list[int] = [0, 0]
        for p in reversed(padding):
            pad += [p, p]
        xp = F.pad(x, pad) if any(padding) else x.contiguous()
        out = tuple((n - dl * (kk - 1) - 1) // s + 1 for n, kk, s, dl in
                    zip(xp.shape[2:2 + d], kernel, stride, dilation, strict=True))  # fmt: skip
        if min(out) < 1:
            raise GraphticketsError(f"a convolution's input {tuple(x.shape[2:2 + d])} is smaller than its kernel")
        cols = _patches(xp, kernel, stride, dilation, out).reshape(k, batch * math.prod(out), -1)
        wm = w.permute(0, *range(3, 3 + d), 2, 1).reshape(k, -1, w.shape[1])  # (K, kernel * C, O)
        y = torch.baddbmm(b.unsqueeze(1), cols, wm) if b is not None else torch.bmm(cols, wm)
        ctx.save_for_backward(cols, wm)
        ctx.geometry = (tuple(x.shape), tuple(xp.shape), tuple(w.shape), kernel, stride, padding, dilation, out)
        ctx.has_bias = b is not None
        return y.view(k, batch, *out, w.shape[1])

    @staticmethod
    def backward(ctx: Any, gy: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        cols, wm = ctx.saved_tensors
        x_shape, xp_shape, w_shape, kernel, stride, padding, dilation, out = ctx.geometry
        k, d = x_shape[0], len(kernel)
        g = gy.reshape(k, -1, w_shape[1])
        gx = gw = gb = None
        if ctx.needs_input_grad[1]:
            gwm = torch.bmm(cols.transpose(1, 2), g).view(k, *kernel, w_shape[2], w_shape[1])
            gw = gwm.permute(0, d + 2, d + 1, *range(1, d + 1)).contiguous()
        if ctx.has_bias and ctx.needs_input_grad[2]:
            gb = g.sum(dim=1)
        if ctx.needs_input_grad[0]:
            gcols = torch.bmm(g, wm.transpose(1, 2)).view(k, x_shape[1], *out, *kernel, x_shape[-1])
            gxp = gy.new_zeros(xp_shape)
            view = _patches(gxp, kernel, stride, dilation, out)
            for offset in _offsets(kernel):
                at = (slice(None),) * (2 + d) + offset
                view[at] += gcols[at]
            gx = gxp
            if any(padding):
                crop = (slice(None), slice(None), *(slice(p, p + n) for p, n in zip(padding, x_shape[2:2 + d], strict=True)))
                gx = gxp[crop]
        return gx, gw, gb, None, None, None


def _offsets(kernel: tuple[int, ...]) -> list[tuple[int, ...]]:
    """Every kernel offset, e.g. ``[(0, 0), (0, 1), ...]`` for a 2-D kernel."""
    out: list[tuple[int, ...]] = [()]
    for n in kernel:
        out = [(*o, i) for o in out for i in range(n)]
    return out


# ---------------------------------------------------------------------------- BatchNorm
def _batch_norm(x: torch.Tensor, kind: str, bn: nn.modules.batchnorm._BatchNorm, w: torch.Tensor | None,
                b: torch.Tensor | None, stats: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None,
                train: bool) -> torch.Tensor:
    """Per-ticket BatchNorm of ``x`` (statistics over dimensions 1 .. -2; ``stats``: the stacked
    running mean, variance and batch count, updated in training mode as ``nn.BatchNorm`` does)."""
    dims = tuple(range(1, x.dim() - 1))
    shape = (x.shape[0],) + (1,) * (x.dim() - 2) + (x.shape[-1],)
    if train or stats is None:
        mean = x.mean(dim=dims, keepdim=True)
        xc = x - mean
        var = (xc * xc).mean(dim=dims, keepdim=True)  # Tensor.var over inner dims is ~100x slower on CPU
        if train and stats is not None:
            n = x.numel() // (x.shape[0] * x.shape[-1])
            with torch.no_grad():
                mom = float(bn.momentum) if bn.momentum is not None else 0.1
                stats[0].mul_(1 - mom).add_(mean.view(x.shape[0], -1), alpha=mom)
                stats[1].mul_(1 - mom).add_(var.view(x.shape[0], -1) * (n / max(n - 1, 1)), alpha=mom)
                stats[2].add_(1)
    else:
        xc, var = x - stats[0].view(shape), stats[1].view(shape)
    scale = torch.rsqrt(var + bn.eps)
    if w is not None:
        scale = scale * w.view(shape)
    y = xc * scale
    if b is not None:
        y = y + b.view(shape)
    return y


# ---------------------------------------------------------------------------- the plan
@dataclass
class _Step:
    """One node: ``run(values, train)`` gives its value from its inputs' values."""

    name: str
    inputs: list[str]
    run: Callable[[list[_Value], bool], _Value]


class ConvPlan:
    """A model's fx graph as steps on stacked tensors (build with :func:`conv_plan`).

    ``forward(x, train=...)`` takes the K tickets' inputs ``(K, B, *in_shape)`` (an expanded
    view for shared batches) and returns the logits ``(K, B, classes)``.
    """

    def __init__(self, steps: list[_Step], placeholder: str, output: str) -> None:
        self.steps = steps
        self.placeholder = placeholder
        self.output = output
        last: dict[str, int] = {}
        for i, s in enumerate(steps):
            for n in s.inputs:
                last[n] = i
        self._free = [[n for n in s.inputs if last[n] == i] for i, s in enumerate(steps)]

    def forward(self, x: torch.Tensor, *, train: bool) -> torch.Tensor:
        values: dict[str, _Value] = {self.placeholder: _input(x)}
        for step, free in zip(self.steps, self._free, strict=True):
            values[step.name] = step.run([values[n] for n in step.inputs], train)
            for n in free:
                if n != step.name:
                    values.pop(n, None)
        out, kind = values[self.output]
        if kind != "flat" or out.dim() != 3:
            raise GraphticketsError("the stacked engine needs (batch, classes) outputs from the network")
        return out


def _input(x: torch.Tensor) -> _Value:
    if x.dim() == 3:
        return x, "flat"
    return x.movedim(2, -1), "conv"


def conv_plan(model: nn.Module, params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor]) -> ConvPlan:
    """The stacked plan of ``model`` over the stacked ``params``/``buffers`` (``(K, ...)`` each,
    keyed by the model's names); raises :class:`GraphticketsError` naming an unsupported node."""
    try:
        graph = fx.symbolic_trace(model).graph
    except Exception as exc:  # noqa: BLE001 - any tracing failure means: not this engine
        raise _Unsupported(f"the model cannot be traced with torch.fx ({type(exc).__name__}: {exc})") from None
    mods = dict(model.named_modules())
    steps: list[_Step] = []
    placeholder = output = ""
    for node in graph.nodes:
        if node.op == "placeholder":
            if placeholder:
                raise _Unsupported("the model takes more than one input")
            placeholder = node.name
        elif node.op == "output":
            arg = node.args[0]
            if not isinstance(arg, fx.Node):
                raise _Unsupported("the model's output is not one tensor")
            output = arg.name
        elif node.op == "call_module":
            steps.append(_module_step(node, mods[str(node.target)], str(node.target), params, buffers))
        elif node.op == "call_function":
            steps.append(_function_step(node))
        elif node.op == "call_method":
            steps.append(_method_step(node))
        else:
            raise _Unsupported(f"node {node.name!r} ({node.op} {node.target}) is not supported by the stacked engine")
    return ConvPlan(steps, placeholder, output)


def plan_problem(model: nn.Module) -> str | None:
    """Why the stacked engine cannot run ``model`` (a sentence), or ``None``."""
    with torch.no_grad():
        params = {n: p.detach().unsqueeze(0) for n, p in model.named_parameters()}
        buffers = {n: b.detach().unsqueeze(0) for n, b in model.named_buffers()}
    try:
        conv_plan(model, params, buffers)
    except GraphticketsError as exc:
        return str(exc)
    return None


def _node_inputs(node: fx.Node, n_tensors: int) -> list[str]:
    args = [a for a in node.args if isinstance(a, fx.Node)]
    if len(args) != n_tensors or any(isinstance(v, fx.Node) for v in node.kwargs.values()):
        raise _Unsupported(f"node {node.name!r} ({node.target}) has inputs the stacked engine does not handle")
    return [a.name for a in args]


def _function_step(node: fx.Node) -> _Step:
    fn = node.target
    if fn in _ADD:
        names = _node_inputs(node, 2)
        if len(node.args) != 2 or node.kwargs:
            raise _Unsupported(f"node {node.name!r}: only a plain a + b of two tensors is supported")
        return _Step(node.name, names, lambda v, t: _add(v[0], v[1]))
    if fn in _RELU:
        return _Step(node.name, _node_inputs(node, 1), lambda v, t: (torch.relu(v[0][0]), v[0][1]))
    if fn is torch.flatten:
        start = node.args[1] if len(node.args) > 1 else node.kwargs.get("start_dim", 0)
        end = node.args[2] if len(node.args) > 2 else node.kwargs.get("end_dim", -1)
        if start != 1 or end != -1:
            raise _Unsupported(f"node {node.name!r}: torch.flatten only from dimension 1 to the end")
        return _Step(node.name, _node_inputs(node, 1), lambda v, t: _flatten(v[0]))
    raise _Unsupported(f"function {getattr(fn, '__name__', fn)!r} (node {node.name!r}) is not supported by the stacked engine")


def _method_step(node: fx.Node) -> _Step:
    if node.target == "relu" and len(node.args) == 1 and not node.kwargs:
        return _Step(node.name, _node_inputs(node, 1), lambda v, t: (torch.relu(v[0][0]), v[0][1]))
    raise _Unsupported(f"method .{node.target}() (node {node.name!r}) is not supported by the stacked engine")


def _add(a: _Value, b: _Value) -> _Value:
    if a[1] != b[1] or a[0].shape != b[0].shape:
        raise GraphticketsError("a residual add of tensors of different shapes is not supported by the stacked engine")
    return a[0] + b[0], a[1]


def _flatten(v: _Value) -> _Value:
    x, kind = v
    if kind == "flat":
        return v
    return x.movedim(-1, 2).reshape(x.shape[0], x.shape[1], -1), "flat"


def _module_step(node: fx.Node, mod: nn.Module, name: str, params: dict[str, torch.Tensor],
                 buffers: dict[str, torch.Tensor]) -> _Step:
    inputs = _node_inputs(node, 1)
    if node.kwargs or len(node.args) != 1:
        raise _Unsupported(f"module {name!r} is called with extra arguments")
    p = {k: params[f"{name}.{k}"] for k, _ in mod.named_parameters(recurse=False)}
    b = {k: buffers[f"{name}.{k}"] for k, _ in mod.named_buffers(recurse=False)}
    run = _module_run(mod, name, p, b)
    return _Step(node.name, inputs, lambda v, t: run(v[0], t))


def _module_run(mod: nn.Module, name: str, p: dict[str, torch.Tensor],
                b: dict[str, torch.Tensor]) -> Callable[[_Value, bool], _Value]:
    """The stacked function of one leaf module (raises :class:`_Unsupported` for others)."""
    t = type(mod)
    if t in (nn.Conv1d, nn.Conv2d):
        return _conv_run(mod, name, p)
    if t is nn.Linear:
        w, bias = p["weight"], p.get("bias")
        return lambda v, tr: (_linear(_need(v, "flat", name), w, bias), "flat")
    if t in (nn.BatchNorm1d, nn.BatchNorm2d):
        assert isinstance(mod, nn.modules.batchnorm._BatchNorm)
        stats = (b["running_mean"], b["running_var"], b["num_batches_tracked"]) if mod.track_running_stats else None
        return lambda v, tr: (_batch_norm(v[0], v[1], mod, p.get("weight"), p.get("bias"), stats, tr), v[1])
    if t in _ELEMENTWISE:
        if isinstance(mod, nn.modules.dropout._DropoutNd) and mod.p > 0:
            raise _Unsupported(f"module {name!r} is dropout with p={mod.p}: its random draws cannot match one-by-one training")
        return lambda v, tr: (mod(v[0]), v[1])
    if t is nn.Flatten:
        assert isinstance(mod, nn.Flatten)
        if mod.start_dim != 1 or mod.end_dim != -1:
            raise _Unsupported(f"module {name!r}: Flatten only from dimension 1 to the end")
        return lambda v, tr: _flatten(v)
    if t is nn.Unflatten:
        assert isinstance(mod, nn.Unflatten)
        if mod.dim not in (1, -1) or len(mod.unflattened_size) < 2:
            raise _Unsupported(f"module {name!r}: Unflatten only of dimension 1 into (C, *spatial)")
        sizes = tuple(int(s) for s in mod.unflattened_size)
        return lambda v, tr: (_need(v, "flat", name).unflatten(2, sizes).movedim(2, -1), "conv")
    if t in _POOLS:
        return _pool_run(mod, name)
    raise _Unsupported(f"module {name!r} ({t.__name__}) is not supported by the stacked engine")


def _need(v: _Value, kind: str, name: str) -> torch.Tensor:
    if v[1] != kind:
        raise GraphticketsError(f"module {name!r} got a {v[1]} tensor where the stacked engine expects {kind}")
    return v[0]


def _linear(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
    if b is not None:
        return torch.baddbmm(b.unsqueeze(1), x, w.transpose(1, 2))
    return torch.bmm(x, w.transpose(1, 2))


def _conv_run(mod: nn.Module, name: str, p: dict[str, torch.Tensor]) -> Callable[[_Value, bool], _Value]:
    assert isinstance(mod, (nn.Conv1d, nn.Conv2d))
    d = 1 if isinstance(mod, nn.Conv1d) else 2
    if mod.groups != 1:
        raise _Unsupported(f"module {name!r} is a grouped convolution (groups={mod.groups}): not supported by the stacked engine")
    if isinstance(mod.padding, str) or mod.padding_mode != "zeros":
        raise _Unsupported(f"module {name!r}: only zero padding given as numbers is supported by the stacked engine")
    stride, padding, dilation = _tuple(mod.stride, d), _tuple(mod.padding, d), _tuple(mod.dilation, d)
    w, bias = p["weight"], p.get("bias")
    return lambda v, tr: (_Conv.apply(_need(v, "conv", name), w, bias, stride, padding, dilation), "conv")


def _pool_run(mod: nn.Module, name: str) -> Callable[[_Value, bool], _Value]:
    fn = _POOLS[type(mod)]
    d = 1 if type(mod).__name__.endswith("1d") else 2
    if isinstance(mod, (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d)):
        size = _tuple(mod.output_size, d)
        if all(s == 1 for s in size):
            return lambda v, tr: (_need(v, "conv", name).mean(dim=tuple(range(2, 2 + d)), keepdim=True), "conv")
        kw: dict[str, Any] = {"output_size": size}
    elif isinstance(mod, (nn.MaxPool1d, nn.MaxPool2d)):
        if mod.return_indices:
            raise _Unsupported(f"module {name!r}: max pooling with return_indices is not supported")
        kw = {"kernel_size": mod.kernel_size, "stride": mod.stride, "padding": mod.padding,
              "dilation": mod.dilation, "ceil_mode": mod.ceil_mode}  # fmt: skip
    else:
        kw = {k: getattr(mod, k) for k in ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad")}
        if getattr(mod, "divisor_override", None) is not None:
            kw["divisor_override"] = mod.divisor_override

    def run(v: _Value, tr: bool) -> _Value:
        x = _need(v, "conv", name)
        k, batch = x.shape[0], x.shape[1]
        y = fn(x.flatten(0, 1).movedim(-1, 1), **kw)  # (K * B, C, *S): a channels-last view
        return y.movedim(1, -1).unflatten(0, (k, batch)), "conv"

    return run
