"""Trace a model with ``torch.fx`` into a *plan*: blocks of graph nodes and the ops between them.

A **block** is the set of graph nodes of one activation tensor: one node per entry of the
tensor's dimension 1 (a feature of a ``(B, F)`` tensor, a channel of a ``(B, C, ...)``
tensor). Ops that keep that dimension's identity (BatchNorm, activations, pooling, dropout,
identity, scalar arithmetic, spatial slicing/padding) reuse their input's block; ops that
create a new activation create a new block:

* ``Linear`` / ``Conv`` -> weight edges (counted from the ticket later);
* a residual ``add`` of two or more blocks -> a new *merge* block; node ``i`` of every input
  block gets an ``identity`` edge (weight 1) to node ``i`` of the merge block;
* a reshape that changes dimension 1 (``flatten``, ``view``, ``Unflatten``) -> a new block;
  node ``i`` of the old block gets an edge to every new node that holds one of its elements
  (``flatten``: channel ``c`` -> features ``c*H*W .. (c+1)*H*W-1``). A reshape applied
  directly to the model's input (e.g. MNIST-1D's ``(B, 40) -> (B, 1, 40)``) instead makes the
  reshaped tensor the input block;
* ``torch.cat`` along dim 1 and ``F.pad`` of channels -> a new block with one-to-one edges.

The plan depends on the model and input shape only, so it is cached per model.

It sits below every subpackage (it imports only ``errors``): the graphs build on the plan,
and pruning reads the same fx trace (:func:`symbolic_graph`) and the same module and
function groups (:func:`node_role`) for Early-Bird's channel tracing and the collapse check.
"""

from __future__ import annotations

import math
import operator
import weakref
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import fx, nn

from graphtickets.errors import UnsupportedModuleError

__all__: list[str] = []


class _ShapeError(UnsupportedModuleError):
    """The zero-input forward of shape propagation failed (a wrong input shape, or an op that cannot run)."""

_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)

#: Module groups that keep the identity of dimension 1 (the one list of the package: the
#: graphs, Early-Bird's channel tracing and the collapse check read them from here).
NORM_MODULES: tuple[type[nn.Module], ...] = (
    nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm,
    nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d, nn.LayerNorm, nn.GroupNorm,
)  # fmt: skip
#: Elementwise activations.
ACTIVATION_MODULES: tuple[type[nn.Module], ...] = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU,
    nn.Mish, nn.Sigmoid, nn.Tanh, nn.Hardtanh, nn.Hardswish, nn.Hardsigmoid, nn.Softplus,
    nn.Softsign, nn.Tanhshrink, nn.LogSigmoid,
)  # fmt: skip
#: Dropout and the identity (the identity at evaluation).
DROPOUT_MODULES: tuple[type[nn.Module], ...] = (
    nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.Identity,
)  # fmt: skip
#: Pooling over positions (channels kept).
POOL_MODULES: tuple[type[nn.Module], ...] = (
    nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d,
    nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d,
    nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d,
)  # fmt: skip
_OTHER_KEEP_MODULES: tuple[type[nn.Module], ...] = (
    nn.Softmax, nn.LogSoftmax,
    nn.ZeroPad1d, nn.ZeroPad2d, nn.ConstantPad1d, nn.ConstantPad2d, nn.ReflectionPad1d,
    nn.ReflectionPad2d, nn.ReplicationPad1d, nn.ReplicationPad2d, nn.Upsample,
)  # fmt: skip
_KEEP_MODULES: tuple[type[nn.Module], ...] = (
    *NORM_MODULES, *ACTIVATION_MODULES, *DROPOUT_MODULES, *POOL_MODULES, *_OTHER_KEEP_MODULES,
)

#: Layers with weights (unit-level edges).
WEIGHT_MODULES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)

_SUPPORTED_MODULES: tuple[type[nn.Module], ...] = (nn.Linear, *_CONV, nn.Flatten, nn.Unflatten, *_KEEP_MODULES)

#: Functions that act on each channel alone: activations, dropout, pooling.
CHANNELWISE_FUNCTIONS: set[Any] = {
    torch.relu, torch.relu_, F.relu, F.relu6, F.leaky_relu, F.elu, F.selu, F.celu, F.gelu,
    F.silu, F.mish, F.hardtanh, F.hardswish, F.hardsigmoid, F.softplus, F.prelu,
    torch.sigmoid, torch.tanh, F.sigmoid, F.tanh,
    F.dropout, F.dropout1d, F.dropout2d, F.dropout3d, F.alpha_dropout,
    F.max_pool1d, F.max_pool2d, F.max_pool3d, F.avg_pool1d, F.avg_pool2d, F.avg_pool3d,
    F.adaptive_avg_pool1d, F.adaptive_avg_pool2d, F.adaptive_avg_pool3d,
    F.adaptive_max_pool1d, F.adaptive_max_pool2d, F.adaptive_max_pool3d,
}  # fmt: skip
_KEEP_FUNCTIONS: set[Any] = CHANNELWISE_FUNCTIONS | {
    F.softmax, F.log_softmax, F.batch_norm, F.layer_norm, F.group_norm, F.instance_norm, F.interpolate,
    operator.mul, operator.truediv, operator.neg, torch.mul, torch.div,
    operator.getitem, torch.clone, torch.squeeze, torch.unsqueeze,
}  # fmt: skip

#: Tensor methods that act on each channel alone (activations, copies, casts).
CHANNELWISE_METHODS = {"relu", "relu_", "sigmoid", "tanh", "contiguous", "clone", "detach", "to", "float",
                       "double", "half", "type"}  # fmt: skip
_KEEP_METHODS = CHANNELWISE_METHODS | {
    "mul", "mul_", "div", "div_", "neg", "softmax", "log_softmax", "squeeze", "unsqueeze", "clamp", "clamp_min",
    "clamp_",
}  # fmt: skip

_REDUCE_METHODS = {"mean", "sum", "amax", "amin", "max", "min"}
_RESHAPE_METHODS = {"view", "reshape", "flatten", "unflatten", "squeeze", "unsqueeze"}
_RESHAPE_FUNCTIONS = {torch.flatten, torch.reshape, torch.squeeze, torch.unsqueeze}
_ADD_FUNCTIONS = {operator.add, operator.iadd, torch.add}
_ADD_METHODS = {"add", "add_"}


@dataclass
class Block:
    """The graph nodes ``start .. start+size-1`` of one activation tensor."""

    layer: str
    size: int
    start: int
    depth: int
    role: str  # "input" | "hidden" | "merge" ("output" is set at the end)
    unit: str  # "feature" | "channel"


@dataclass
class Op:
    """How block ``dst`` is computed from blocks ``srcs``.

    ``kind`` is ``linear``/``conv`` (edges from the ticket's mask of ``param``) or a structural
    kind (``identity``, ``flatten``, ``reshape``, ``concat``, ``pad``) whose edges are fixed:
    ``piece = (counts per dst node, src node ids, weights)`` in dst-major order.
    """

    kind: str
    layer: str
    dst: int
    srcs: tuple[int, ...]
    param: str | None = None
    groups: int = 1
    piece: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None


@dataclass
class Plan:
    blocks: list[Block] = field(default_factory=list)
    ops: list[Op] = field(default_factory=list)
    n_nodes: int = 0
    input_shape: tuple[int, ...] = ()

    def producer(self) -> dict[int, Op]:
        return {op.dst: op for op in self.ops}


_CACHE: weakref.WeakKeyDictionary[nn.Module, dict[Any, Plan]] = weakref.WeakKeyDictionary()


def _signature(model: nn.Module, input_shape: tuple[int, ...]) -> tuple[Any, ...]:
    """Cheap fingerprint of the architecture (module types and parameter shapes)."""
    mods = tuple((n, type(m).__name__) for n, m in model.named_modules())
    params = tuple((n, tuple(p.shape)) for n, p in model.named_parameters())
    return (input_shape, mods, params)


def resolve_input_shape(model: nn.Module, input_shape: Any) -> tuple[int, ...]:
    if input_shape is None:
        spec = getattr(model, "gt_spec", None)
        if isinstance(spec, dict) and spec.get("in_shape") is not None:
            input_shape = spec["in_shape"]
    if input_shape is None:
        raise UnsupportedModuleError(
            f"cannot infer the input shape of {type(model).__name__}: it has no gt_spec['in_shape']; "
            f"pass input_shape=(C, H, W) or (features,) without the batch dimension"
        )
    shape = tuple(int(s) for s in input_shape)
    if not shape or any(s <= 0 for s in shape):
        raise UnsupportedModuleError(f"input_shape must be positive sizes without the batch dimension, got {shape}")
    return shape


def check_supported(model: Any, input_shape: Any = None) -> Plan | None:
    """The one check of every converter (layered, relational, bipartite graphs and the metrics).

    Raises :class:`UnsupportedModuleError` for a model with a module or operation that has no
    graph meaning (LSTM, attention, embeddings, data-dependent control flow, ...), exactly
    where :func:`~graphtickets.graphs.layered_graph` does: it builds (and caches) the same
    traced plan. The input shape is ``input_shape``, else the model's ``gt_spec``, else
    inferred from its first Linear (``(in_features,)``); when none is known (or the inferred
    one does not run) the model is still traced and every module applied to the input checked.

    Returns
    -------
    Plan or None
        The traced plan (None when only the shape-free check could run).
    """
    if not isinstance(model, nn.Module):
        raise UnsupportedModuleError(
            f"model must be a torch.nn.Module, got {type(model).__name__}; build one with gt.models.build(...)"
        )
    given = input_shape is not None or isinstance(getattr(model, "gt_spec", None), dict)
    if given:
        return get_plan(model, resolve_input_shape(model, input_shape))
    first = next((m for m in model.modules() if isinstance(m, (nn.Linear, *_CONV))), None)
    if isinstance(first, nn.Linear):
        try:
            return get_plan(model, (int(first.in_features),))
        except _ShapeError:
            pass  # the first Linear defined is not the first applied: the shape-free check below
    tracer = _Tracer(model, ())
    tracer.check_modules(tracer.symbolic())
    return None


def get_plan(model: nn.Module, input_shape: tuple[int, ...]) -> Plan:
    """The (cached) plan of ``model`` for inputs of ``input_shape`` (no batch dimension)."""
    key = _signature(model, input_shape)
    per_model = _CACHE.get(model)
    if per_model is not None and key in per_model:
        return per_model[key]
    plan = _Tracer(model, input_shape).run()
    _CACHE[model] = {key: plan}
    return plan


def _shape(node: fx.Node) -> tuple[int, ...] | None:
    tm = node.meta.get("tensor_meta")
    shape = getattr(tm, "shape", None)
    return None if shape is None else tuple(int(s) for s in shape)


def _is_shape_query(node: fx.Node) -> bool:
    if node.op == "call_method":
        return node.target in ("size", "dim", "numel", "ndimension")
    return node.op == "call_function" and (node.target is getattr or node.target is len) and _shape(node) is None


def _fname(fn: Any) -> str:
    return getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)


def symbolic_graph(model: nn.Module) -> fx.GraphModule:
    """``torch.fx.symbolic_trace(model)``: the one fx trace of the package (the plan, Early-Bird's
    channel tracing and the collapse check start here); :class:`UnsupportedModuleError` when the
    model cannot be traced."""
    try:
        return fx.symbolic_trace(model)
    except Exception as exc:  # fx raises many types (TraceError, TypeError, ...)
        raise UnsupportedModuleError(
            f"torch.fx cannot trace {type(model).__name__}: {' '.join(str(exc).split())}. Graphs need "
            f"a model without data-dependent control flow, built from Linear/Conv/BatchNorm/activation/"
            f"pooling/flatten/add"
        ) from None


def node_role(gm: fx.GraphModule, node: fx.Node) -> str:
    """What an fx node does to the channels (dimension 1) of its input, as the plan sees it.

    ``"weight"`` (a Linear/Conv module), ``"norm"`` (a normalization module), ``"channelwise"``
    (an activation, dropout or pooling module, function or method: each channel alone),
    ``"reshape"`` (flatten/view/reshape), ``"merge"`` (a residual add, a concatenation or a
    stack) or ``"other"``.
    """
    if node.op == "call_module":
        m = gm.get_submodule(str(node.target))
        if isinstance(m, WEIGHT_MODULES):
            return "weight"
        if isinstance(m, NORM_MODULES):
            return "norm"
        if isinstance(m, (*ACTIVATION_MODULES, *DROPOUT_MODULES, *POOL_MODULES)):
            return "channelwise"
        return "reshape" if isinstance(m, (nn.Flatten, nn.Unflatten)) else "other"
    if node.op == "call_function":
        fn = node.target
        if fn in CHANNELWISE_FUNCTIONS:
            return "channelwise"
        if fn in _RESHAPE_FUNCTIONS and fn not in (torch.squeeze, torch.unsqueeze):
            return "reshape"
        return "merge" if fn in _ADD_FUNCTIONS or fn in (torch.cat, torch.concat, torch.stack) else "other"
    if node.op == "call_method":
        name = str(node.target)
        if name in CHANNELWISE_METHODS:
            return "channelwise"
        if name in ("view", "reshape", "flatten"):
            return "reshape"
        return "merge" if name in _ADD_METHODS else "other"
    return "other"


@dataclass(frozen=True)
class _TensorShape:
    """What the tracer reads of an activation: its shape (``node.meta["tensor_meta"]``)."""

    shape: tuple[int, ...]


class _ShapeRecorder(fx.Interpreter):
    """Runs the traced graph and stores every tensor result's shape in ``node.meta``.

    A light replacement for ``torch.fx.passes.shape_prop.ShapeProp``, whose first call imports
    sympy (about 0.4 s) for metadata the tracer never reads.
    """

    def run_node(self, n: fx.Node) -> Any:
        try:
            result = super().run_node(n)
        except Exception as exc:
            what = f"{n.op} {n.target}"
            if n.op == "call_module":
                what += f" ({type(self.module.get_submodule(str(n.target))).__name__})"
            raise RuntimeError(f"{what}: {exc}") from exc
        if isinstance(result, torch.Tensor):
            n.meta["tensor_meta"] = _TensorShape(tuple(int(s) for s in result.shape))
        return result


def _propagate_shapes(model: nn.Module, gm: fx.GraphModule, input_shape: tuple[int, ...]) -> None:
    """Record the activation shapes of ``gm`` for one input of ``input_shape`` (batch 1).

    A real forward of a zero input in eval mode without autograd (the modules' train/eval
    flags are restored). The ``meta`` device was tried and is slower cold: its first use
    imports torch's decompositions (about 1 s), far more than a batch-1 forward costs.
    """
    try:
        param = next(model.parameters())
        device, dtype = param.device, (param.dtype if param.is_floating_point() else torch.float32)
    except StopIteration:
        device, dtype = torch.device("cpu"), torch.float32
    modes = {m: m.training for m in model.modules()}
    try:
        model.eval()
        gm.eval()
        x = torch.zeros((1, *input_shape), device=device, dtype=dtype)
        try:
            with torch.no_grad():
                _ShapeRecorder(gm).run(x)
        except Exception as exc:
            raise _ShapeError(
                f"running {type(model).__name__} on a zero input of shape {(1, *input_shape)} "
                f"failed ({exc}); pass the right input_shape (without the batch dimension)"
            ) from None
    finally:
        for m, t in modes.items():
            m.train(t)


class _Tracer:
    def __init__(self, model: nn.Module, input_shape: tuple[int, ...]) -> None:
        self.model = model
        self.input_shape = input_shape
        self.plan = Plan(input_shape=input_shape)
        self.env: dict[fx.Node, int] = {}
        self.pending: dict[fx.Node, str] = {}  # placeholders whose block is not made yet
        self.layer_uses: dict[str, int] = {}

    # ------------------------------------------------------------------ setup
    def symbolic(self) -> fx.GraphModule:
        return symbolic_graph(self.model)

    def trace(self) -> fx.GraphModule:
        gm = self.symbolic()
        self.check_modules(gm)  # before the shape pass, so an unsupported module is named as such
        _propagate_shapes(self.model, gm, self.input_shape)
        return gm

    def check_modules(self, gm: fx.GraphModule) -> None:
        """Raise for the first unsupported module applied to (something computed from) the input.

        Runs before shape propagation: a module such as ``nn.Embedding`` (wants integer
        input) or ``nn.Bilinear`` (wants two) would otherwise crash the zero-input forward and
        be reported as a wrong input shape.
        """
        from_input: set[fx.Node] = set()
        for node in gm.graph.nodes:
            if node.op == "placeholder":
                from_input.add(node)
                continue
            if not any(a in from_input for a in node.all_input_nodes):
                continue
            from_input.add(node)
            if node.op != "call_module":
                continue
            m = gm.get_submodule(str(node.target))
            if not isinstance(m, _SUPPORTED_MODULES):
                raise self.fail(node, f"module {str(node.target)!r} ({type(m).__name__})")

    def new_block(self, layer: str, size: int, depth: int, role: str, ndim: int) -> int:
        name = layer
        uses = self.layer_uses.get(layer, 0)
        if uses:
            name = f"{layer}@{uses}"
        self.layer_uses[layer] = uses + 1
        b = Block(name, int(size), self.plan.n_nodes, depth, role, "channel" if ndim > 2 else "feature")
        self.plan.blocks.append(b)
        self.plan.n_nodes += int(size)
        return len(self.plan.blocks) - 1

    def fail(self, node: fx.Node, what: str, why: str = "") -> UnsupportedModuleError:
        hint = (
            "supported: Linear, Conv1d/2d/3d, BatchNorm/LayerNorm, activations, pooling, dropout, "
            "flatten/reshape, residual add, cat along channels"
        )
        return UnsupportedModuleError(
            f"cannot turn {what} (fx node {node.name!r}, operation {node.op}) into graph edges"
            f"{': ' + why if why else ''}; {hint}"
        )

    # ------------------------------------------------------------------ blocks
    def block_args(self, node: fx.Node) -> list[fx.Node]:
        out: list[fx.Node] = []
        fx.node.map_arg((node.args, node.kwargs), lambda a: out.append(a) if (a in self.env or a in self.pending) else None)
        return out

    def block(self, a: fx.Node) -> int:
        if a in self.pending:
            shape = _shape(a)
            assert shape is not None
            self.env[a] = self.new_block(self.pending.pop(a), shape[1], 0, "input", len(shape))
        return self.env[a]

    def keep(self, node: fx.Node, what: str) -> None:
        srcs = self.block_args(node)
        if len(srcs) != 1:
            raise self.fail(node, what, f"it combines {len(srcs)} activations")
        src = srcs[0]
        si, so = _shape(src), _shape(node)
        if so is None or si is None or len(so) < 2 or so[1] != si[1]:
            raise self.fail(node, what, f"it changes dimension 1 from {si} to {so}")
        if src in self.pending:
            self.pending[node] = self.pending.pop(src)
        else:
            self.env[node] = self.env[src]

    def add_op(self, node: fx.Node, op: Op) -> None:
        self.plan.ops.append(op)
        self.env[node] = op.dst

    def depth_of(self, srcs: list[int]) -> int:
        return 1 + max(self.plan.blocks[s].depth for s in srcs)

    # ------------------------------------------------------------------ ops
    def weight_layer(self, node: fx.Node, module: nn.Module, kind: str) -> None:
        target = str(node.target)
        srcs = self.block_args(node)
        so, si = _shape(node), (_shape(srcs[0]) if srcs else None)
        what = f"module {target!r} ({type(module).__name__})"
        if len(srcs) != 1 or so is None or si is None:
            raise self.fail(node, what, "expected one activation input")
        if kind == "linear" and (len(si) != 2 or len(so) != 2):
            raise self.fail(node, what, f"Linear applied to a {len(si)}-D activation {si}; only (batch, features)")
        src = self.block(srcs[0])
        groups = int(getattr(module, "groups", 1) or 1)
        dst = self.new_block(target, so[1], self.depth_of([src]), "hidden", len(so))
        self.add_op(node, Op(kind, self.plan.blocks[dst].layer, dst, (src,), f"{target}.weight" if target else "weight", groups))

    def merge(self, node: fx.Node, what: str) -> None:
        args = self.block_args(node)
        if len(args) == 1:
            return self.keep(node, what)
        so = _shape(node)
        srcs = [self.block(a) for a in args]
        sizes = {self.plan.blocks[s].size for s in srcs}
        if so is None or len(sizes) != 1 or so[1] != next(iter(sizes)):
            raise self.fail(node, what, f"adds activations of {sorted(sizes)} units into {so}")
        size = so[1]
        uniq, mult = np.unique(np.array([self.plan.blocks[s].start for s in srcs], dtype=np.int64), return_counts=True)
        idx = (np.arange(size, dtype=np.int64)[:, None] + uniq[None, :]).reshape(-1)
        data = np.tile(mult.astype(np.float64), size)
        counts = np.full(size, len(uniq), dtype=np.int64)
        dst = self.new_block(node.name, size, self.depth_of(srcs), "merge", len(so))
        self.add_op(node, Op("identity", self.plan.blocks[dst].layer, dst, tuple(srcs), piece=(counts, idx, data)))

    def reshape(self, node: fx.Node, what: str) -> None:
        args = self.block_args(node)
        if len(args) != 1:
            raise self.fail(node, what, "expected one activation input")
        a = args[0]
        si, so = _shape(a), _shape(node)
        if si is None or so is None or len(si) < 2 or len(so) < 2 or si[0] != 1 or so[0] != 1:
            raise self.fail(node, what, f"the batch dimension must stay first (shapes {si} -> {so})")
        if si[1] == so[1]:
            return self.keep(node, what)
        if a in self.pending and len(a.users) == 1:
            name = self.pending.pop(a)
            self.env[node] = self.new_block(name, so[1], 0, "input", len(so))
            return None
        src = self.block(a)
        numel = math.prod(si)
        e = np.arange(numel, dtype=np.int64)
        old, new = e // (numel // si[1]), e // (numel // so[1])
        change = np.ones(numel, dtype=bool)
        change[1:] = (old[1:] != old[:-1]) | (new[1:] != new[:-1])
        old, new = old[change], new[change]
        counts = np.bincount(new, minlength=so[1]).astype(np.int64)
        kind = "flatten" if so[1] > si[1] else "reshape"
        dst = self.new_block(node.name if node.op != "call_module" else str(node.target), so[1],
                             self.depth_of([src]), "hidden", len(so))  # fmt: skip
        start = self.plan.blocks[src].start
        self.add_op(node, Op(kind, self.plan.blocks[dst].layer, dst, (src,),
                       piece=(counts, old + start, np.ones(old.shape[0])))) # fmt: skip
        return None

    def concat(self, node: fx.Node) -> None:
        tensors = node.args[0] if node.args else node.kwargs.get("tensors")
        dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", 0)
        so = _shape(node)
        if so is None or not isinstance(tensors, (list, tuple)) or dim not in (1, 1 - len(so)):
            raise self.fail(node, "torch.cat", f"only concatenation along dim 1 is supported (dim={dim})")
        srcs = [self.block(a) for a in tensors if isinstance(a, fx.Node) and (a in self.env or a in self.pending)]
        if len(srcs) != len(tensors):
            raise self.fail(node, "torch.cat", "one of the inputs is not an activation")
        idx = np.concatenate([self.plan.blocks[s].start + np.arange(self.plan.blocks[s].size) for s in srcs])
        dst = self.new_block(node.name, so[1], self.depth_of(srcs), "merge", len(so))
        self.add_op(node, Op("concat", self.plan.blocks[dst].layer, dst, tuple(srcs),
                       piece=(np.ones(so[1], np.int64), idx.astype(np.int64), np.ones(so[1])))) # fmt: skip

    def pad(self, node: fx.Node) -> None:
        args = self.block_args(node)
        si, so = (_shape(args[0]) if args else None), _shape(node)
        pad = node.args[1] if len(node.args) > 1 else node.kwargs.get("pad")
        if len(args) != 1 or si is None or so is None or not isinstance(pad, (list, tuple)):
            raise self.fail(node, "F.pad", "expected one activation and a constant pad")
        if si[1] == so[1]:
            return self.keep(node, "F.pad")
        front = int(pad[2 * (len(si) - 2)])
        src = self.block(args[0])
        dst_units = np.arange(so[1], dtype=np.int64) - front
        live = (dst_units >= 0) & (dst_units < si[1])
        dst = self.new_block(node.name, so[1], self.depth_of([src]), "hidden", len(so))
        self.add_op(node, Op("pad", self.plan.blocks[dst].layer, dst, (src,),
                       piece=(live.astype(np.int64), dst_units[live] + self.plan.blocks[src].start,
                              np.ones(int(live.sum()))))) # fmt: skip
        return None

    def reduce(self, node: fx.Node, what: str) -> None:
        si = _shape(self.block_args(node)[0]) if self.block_args(node) else None
        dims = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim")
        if si is None or dims is None:
            raise self.fail(node, what, "a reduction over all dimensions mixes units")
        dim_list: list[int] = [dims] if isinstance(dims, int) else [int(d) for d in dims]  # type: ignore[union-attr, arg-type]
        if any(d % len(si) in (0, 1) for d in dim_list):
            raise self.fail(node, what, "it reduces over the batch or unit dimension")
        return self.keep(node, what)

    # ------------------------------------------------------------------ walk
    def run(self) -> Plan:
        gm = self.trace()
        self.gm = gm
        placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
        if len(placeholders) != 1:
            raise UnsupportedModuleError(
                f"{type(self.model).__name__}.forward takes {len(placeholders)} inputs; graphs need exactly one"
            )
        outputs: list[fx.Node] = []
        for node in gm.graph.nodes:
            if node.op == "placeholder":
                if _shape(node) is None:
                    raise self.fail(node, "the input", "it is not a tensor")
                self.pending[node] = "input" if node.target in ("x", "input", "inputs") else str(node.target)
            elif node.op == "get_attr":
                continue  # parameters/buffers are constants, not activations
            elif node.op == "output":
                fx.node.map_arg(node.args, outputs.append)
            elif not self.block_args(node) or _is_shape_query(node):
                continue  # arithmetic on sizes, constants, x.size(0), x.shape
            elif node.op == "call_module":
                self.module(node, gm.get_submodule(str(node.target)))
            elif node.op == "call_function":
                self.function(node)
            elif node.op == "call_method":
                self.method(node)
        for o in outputs:
            if o in self.pending or o in self.env:
                b = self.plan.blocks[self.block(o)]
                if b.role != "input":
                    b.role = "output"
        return self.plan

    def module(self, node: fx.Node, m: nn.Module) -> None:
        what = f"module {str(node.target)!r} ({type(m).__name__})"
        if isinstance(m, nn.Linear):
            self.weight_layer(node, m, "linear")
        elif isinstance(m, _CONV):
            self.weight_layer(node, m, "conv")
        elif isinstance(m, (nn.Flatten, nn.Unflatten)):
            self.reshape(node, what)
        elif isinstance(m, _KEEP_MODULES):
            self.keep(node, what)
        else:
            raise self.fail(node, what)

    def function(self, node: fx.Node) -> None:
        fn = node.target
        what = f"function {_fname(fn)}"
        if fn in _ADD_FUNCTIONS:
            self.merge(node, what)
        elif fn in _RESHAPE_FUNCTIONS:
            self.reshape(node, what)
        elif fn is torch.cat or fn is torch.concat:
            self.concat(node)
        elif fn is F.pad:
            self.pad(node)
        elif fn in (torch.mean, torch.sum, torch.amax, torch.amin):
            self.reduce(node, what)
        elif fn in _KEEP_FUNCTIONS:
            if fn in (operator.mul, operator.truediv, torch.mul, torch.div) and len(self.block_args(node)) > 1:
                raise self.fail(node, what, "it multiplies two activations")
            if fn is operator.getitem:
                si, so = _shape(self.block_args(node)[0]), _shape(node)
                if si is None or so is None or len(so) != len(si) or so[1] != si[1]:
                    raise self.fail(node, what, "indexing must keep the batch and unit dimensions")
            self.keep(node, what)
        else:
            raise self.fail(node, what)

    def method(self, node: fx.Node) -> None:
        name = str(node.target)
        what = f"method Tensor.{name}"
        if name in _ADD_METHODS:
            self.merge(node, what)
        elif name in _RESHAPE_METHODS:
            self.reshape(node, what)
        elif name in _REDUCE_METHODS:
            self.reduce(node, what)
        elif name in _KEEP_METHODS:
            if name.startswith(("mul", "div")) and len(self.block_args(node)) > 1:
                raise self.fail(node, what, "it multiplies two activations")
            self.keep(node, what)
        else:
            raise self.fail(node, what)


def module_calls(model: nn.Module, input_shape: tuple[int, ...]) -> tuple[Plan, list[tuple[str, int, int]]]:
    """The plan of ``model`` and, for every module call on an activation, ``(module name, input
    block, output block)`` in forward order (a BatchNorm or activation has the same block twice).

    The blocks are indices into ``plan.blocks``, numbered as :func:`get_plan` numbers them.
    """
    tracer = _Tracer(model, input_shape)
    plan = tracer.run()
    calls = []
    for node in tracer.gm.graph.nodes:
        if node.op != "call_module" or node not in tracer.env:
            continue
        srcs = [a for a in node.all_input_nodes if a in tracer.env]
        if len(srcs) == 1:
            calls.append((str(node.target), tracer.env[srcs[0]], tracer.env[node]))
    return plan, calls
