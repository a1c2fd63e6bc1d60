"""The SynFlow flow without autograd: an explicit forward and backward over the traced network.

:func:`graphtickets.pruning.synflow.engine.run_rounds` uses it when every node of the
linearized, BatchNorm-folded float64 copy is one it knows (:func:`build`): ``Conv2d``
(``groups=1``, zero padding) and ``Linear`` as matrix products, ReLU, residual ``add``,
average and max pooling, ``Flatten``/``torch.flatten``, an unfolded BatchNorm (a per-channel
scale), dropout and the identity. Anything else returns ``None`` and the rounds run on the
autograd engine, with the same mask. Nothing here is public API.

**Why.** SynFlow's flow is a batch of one; a ResNet-20 round is ~60 small float64 products,
and autograd's bookkeeping, module calls and layout copies add to each. Here a round is one
pass over a list of steps, each holding the buffers it writes:

* a convolution copies its input into a zero-padded buffer allocated once and unfolds it into
  im2col columns ``(C*kh*kw, P)`` (the weight's own logical order): the forward is ``W @ cols``
  and the weight gradient ``g @ cols.T`` on the same columns, written in place into the
  layer's buffer. The input gradient of a stride-1 convolution is a convolution of ``g`` with
  the flipped, transposed kernel (``Wt @ im2col(g)``, padding ``d*(k-1) - p``); a strided one
  folds ``W.T @ g`` back (``F.fold``). The columns of the all-ones input are unfolded once.
* once a convolution has few live weights left (below ``SPARSE_BELOW``), its forward and input
  gradient become CSR products over the live weights; below ``SAMPLED_BELOW`` its weight
  gradient is the sampled product ``g @ cols.T`` at the live entries only
  (``torch.sparse.sampled_addmm``): pruned weights need no gradient.
* ReLU is the identity on the flow's non-negative activations. Its backward keeps autograd's
  rule (no gradient where the activation is 0) when a bias is scored. Otherwise the mask is
  skipped, which leaves every weight gradient unchanged bit for bit: a unit is 0 only if each
  of its terms ``w * a`` is 0, so for every live weight into it the input ``a`` is 0 there, and
  a gradient let through at the unit meets only those zero inputs (the same holds for the
  units below it that it reaches); it changes only biases' gradients.

Everything stays float64 and every product sums the same terms as the convolution it stands
for; only the order of the additions differs (as between any two convolution kernels), a
rounding-level change far below the gaps between scores at the threshold. The tests compare
the masks with the autograd engine and the generic path, and every gradient with autograd.
Measured in ``benchmarks/perf/bench_pruning.py`` (README, Performance).
"""

from __future__ import annotations

import logging
import operator
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import fx, nn

from graphtickets.errors import GraphticketsError

__all__: list[str] = []

log = logging.getLogger(__name__)

SPARSE_BELOW = 0.2  # a conv with fewer live weights than this fraction runs on CSR products
SPARSE_MIN_SIZE = 512  # ... if it has at least this many weights (tiny layers: dense is cheaper)
SAMPLED_BELOW = 0.1  # ... and below this fraction its weight gradient is sampled at the live entries
LARGEST_CONV = 1 << 20  # a network with a Conv2d of this many weights runs on the autograd engine (see build)


def finite_flow(r: torch.Tensor) -> torch.Tensor:
    """``r`` (the flow ``R``), or a clear error when it overflowed even in float64."""
    if not torch.isfinite(r):
        raise GraphticketsError(
            f"synflow: R = {float(r.detach())} is not finite even in float64; the network is too deep "
            "for an unscaled flow (rescale its weights per layer, which keeps the ranking)"
        )
    return r


def add_products(G: torch.Tensor | None, Gb: torch.Tensor | None, a: torch.Tensor, b: torch.Tensor, *, first: bool) -> None:
    """A layer's gradients from one call: ``G = a @ b`` and ``Gb = a.sum(1)`` on the first call
    of a round (in place: no allocation, no zero fill), ``+=`` on later calls (a module used
    twice). ``None`` skips a buffer."""
    if G is not None:
        if first:
            torch.mm(a, b, out=G)
        else:
            G.addmm_(a, b)
    if Gb is not None:
        if first:
            Gb.copy_(a.sum(1))
        else:
            Gb += a.sum(1)


def as_pair(v: Any) -> tuple[int, int]:
    """A conv/pool size argument as ``(h, w)``."""
    return (int(v[0]), int(v[1])) if isinstance(v, (tuple, list)) else (int(v), int(v))


class _Csr:
    """A CSR matrix ``(rows, cols)`` over the entries at flat offsets ``offs`` (any order) with
    ``values``; ``val`` is its value array (zeroed in place when a weight is pruned; the caller
    rebuilds it when most stored entries are dead)."""

    def __init__(self, offs: np.ndarray, values: np.ndarray, rows: int, cols: int) -> None:
        self.order = order = np.argsort(offs, kind="stable")  # entry i is input entry order[i]
        self.offs = offs[order]
        self.val = values[order]
        r, c = np.divmod(self.offs, cols)
        crow = np.zeros(rows + 1, dtype=np.int64)
        np.cumsum(np.bincount(r, minlength=rows), out=crow[1:])
        with warnings.catch_warnings():  # "CSR support is in beta": mm and sampled_addmm only, tested
            warnings.simplefilter("ignore", UserWarning)
            self.M = torch.sparse_csr_tensor(
                torch.from_numpy(crow), torch.from_numpy(c), torch.from_numpy(self.val), (rows, cols), check_invariants=False
            )


class CsrPair:
    """CSR copies of one layer's weight as two matrices: ``M`` ``shape`` (the forward) and ``T``
    ``t_shape`` (the input gradient: the transpose, or the flipped kernel), over the live
    entries ``mem`` (flat offsets in ``M``, ascending) whose offsets in ``T`` are ``t_mem``.
    :meth:`zero` zeroes pruned entries in both; the engine rebuilds the pair when most stored
    entries are dead (``mem``: the stored offsets)."""

    def __init__(self, mem: np.ndarray, t_mem: np.ndarray, values: np.ndarray, shape: tuple[int, int],
                 t_shape: tuple[int, int]) -> None:
        vals = values[mem]
        self.a = _Csr(mem, vals, *shape)
        self.t = _Csr(t_mem, vals, *t_shape)
        inv_t = np.empty(mem.size, dtype=np.int64)  # entry j of a is entry to_t[j] of t
        inv_t[self.t.order] = np.arange(mem.size)
        self.to_t = inv_t[self.a.order]
        self.mem = self.a.offs
        self.mem_tensor = torch.from_numpy(self.mem)
        self.M, self.T = self.a.M, self.t.M

    def zero(self, mem: np.ndarray) -> None:
        j = np.searchsorted(self.mem, mem)
        self.a.val[j] = 0.0
        self.t.val[self.to_t[j]] = 0.0


def set_offsets(slots: Sequence[Any]) -> None:
    """Give each slot (in order) its first global position: ``offset`` = the sizes before it."""
    off = 0
    for sl in slots:
        sl.offset = off
        off += sl.size


def transposed_offsets(mem: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Flat offsets in the ``(cols, rows)`` transpose of entries at flat offsets ``mem`` of a ``shape`` matrix."""
    r, c = np.divmod(mem, shape[1])
    return c * shape[0] + r


class MatLayer:
    """A Conv2d or Linear of the flow as a matrix ``W`` ``(out, in*kh*kw)`` (a view of the flow
    copy's weight, logical order) with its gradient buffer ``G`` of the same shape.

    The input gradient of a stride-1 convolution is the convolution of the output gradient
    with the flipped, transposed kernel: ``Wt`` ``(in, out*kh*kw)`` (kept in step with ``W``
    by :meth:`zero`); other layers use ``W.T``. Once thin (:meth:`wants_sparse`), CSR copies
    of ``W`` and of the input-gradient matrix (:meth:`make_sparse`) replace the dense ones.
    """

    def __init__(self, module: nn.Conv2d | nn.Linear) -> None:
        w = module.weight.detach()
        if not w.is_contiguous():
            raise _Unsupported("weight not contiguous")
        self.shape = tuple(int(v) for v in w.shape)
        self.conv = isinstance(module, nn.Conv2d)
        self.W = w.view(w.shape[0], -1)
        self.G = torch.empty_like(self.W)
        bias: torch.Tensor | None = module.bias
        self.b: torch.Tensor | None = None if bias is None else bias.detach()
        self.Gb: torch.Tensor | None = None if self.b is None else torch.empty_like(self.b)
        self.calls = 0
        self.sparse: CsrPair | None = None  # W and the input-gradient matrix
        self.sampled = False  # the weight gradient at the live entries only
        self.k = self.d = self.p = self.s = (1, 1)
        if isinstance(module, nn.Conv2d):
            self.k, self.d = as_pair(module.kernel_size), as_pair(module.dilation)
            self.p, self.s = as_pair(module.padding), as_pair(module.stride)
        kh, kw = self.k
        self.flipped = (  # dx by a stride-1 convolution of g with Wt (needs padding d*(k-1) - p >= 0)
            self.conv and self.s == (1, 1) and self.k != (1, 1)
            and all(self.d[j] * (self.k[j] - 1) >= self.p[j] for j in (0, 1))
        )  # fmt: skip
        o, i = self.shape[0], self.shape[1]
        self.Wt = torch.empty((i, o * kh * kw), dtype=w.dtype) if self.flipped else None
        self.t_shape = (i, o * kh * kw) if self.flipped else (self.W.shape[1], o)

    def refresh(self) -> None:
        """Rebuild ``Wt`` from ``W`` (after the weights were changed directly)."""
        if self.Wt is not None:
            o, i, (kh, kw) = self.shape[0], self.shape[1], self.k
            self.Wt.view(i, o, kh, kw).copy_(self.W.view(self.shape).flip(2, 3).transpose(0, 1))

    def t_offsets(self, mem: np.ndarray) -> np.ndarray:
        """Flat offsets in the input-gradient matrix of the weights at flat offsets ``mem``."""
        if not self.flipped:
            return transposed_offsets(mem, (self.W.shape[0], self.W.shape[1]))
        o_, k_ = np.divmod(mem, self.W.shape[1])
        kh, kw = self.k
        i_, rest = np.divmod(k_, kh * kw)
        a, b = np.divmod(rest, kw)
        return i_ * (self.shape[0] * kh * kw) + o_ * (kh * kw) + (kh - 1 - a) * kw + (kw - 1 - b)

    rebuild_above = 1.25  # rebuild the CSR copies when they store this many times the live weights

    def wants_sparse(self, size: int, live: int) -> bool:
        """Convolutions only: a Linear of the flow is a matrix-vector product, where CSR gains nothing."""
        return self.conv and size >= SPARSE_MIN_SIZE and live < SPARSE_BELOW * size

    def make_sparse(self, mem: np.ndarray, values: np.ndarray) -> None:
        self.sparse = CsrPair(mem, self.t_offsets(mem), values, (self.W.shape[0], self.W.shape[1]), self.t_shape)
        self.sampled = mem.size < SAMPLED_BELOW * self.W.numel()

    def zero(self, mem: np.ndarray) -> None:
        """Keep the copies in step after the engine zeroed the weights at ``mem``."""
        if self.Wt is not None:
            self.Wt.view(-1)[torch.from_numpy(self.t_offsets(mem))] = 0.0
        if self.sparse is not None:
            self.sparse.zero(mem)

    def accumulate(self, g2: torch.Tensor, cols: torch.Tensor) -> None:
        """``G += g2 @ cols.T`` (``=`` on the first call of a round); only the live entries
        once sampled. ``g2``: (out, P); ``cols``: (in*kh*kw, P)."""
        first = self.calls == 0
        if self.sparse is not None and self.sampled:
            vals = torch.sparse.sampled_addmm(self.sparse.M, g2, cols.T, beta=0.0).values()
            flat = self.G.view(-1)
            if first:
                flat.index_copy_(0, self.sparse.mem_tensor, vals)
            else:
                flat.index_add_(0, self.sparse.mem_tensor, vals)
            add_products(None, self.Gb, g2, cols, first=first)
        else:
            add_products(self.G, self.Gb, g2, cols.T, first=first)
        self.calls += 1

    def product(self, cols: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """``W @ cols`` (+ bias): into ``out`` when dense, a new tensor from the CSR product."""
        res = torch.sparse.mm(self.sparse.M, cols) if self.sparse is not None else torch.mm(self.W, cols, out=out)
        if self.b is not None:
            res += self.b[:, None]
        return res

    def product_t(self, g_cols: torch.Tensor) -> torch.Tensor:
        """The input-gradient matrix times ``g_cols`` (``Wt @ im2col(g)`` or ``W.T @ g``)."""
        if self.sparse is not None:
            return torch.sparse.mm(self.sparse.T, g_cols)
        return (self.Wt if self.Wt is not None else self.W.T) @ g_cols


@dataclass
class _Step:
    """One node of the program: ``fwd(*inputs) -> output`` and ``bwd(g) -> input gradients``
    (``None`` for an input that needs none)."""

    node: str
    inputs: list[str]
    fwd: Callable[..., torch.Tensor]
    bwd: Callable[[torch.Tensor], Sequence[torch.Tensor | None]]


class _Unfold:
    """im2col of a ``(C, H, W)`` map into a buffer ``(C*kh*kw, Ho*Wo)`` allocated once (rows in
    the weight's ``(in, kh, kw)`` order), through a zero-padded copy when there is padding."""

    def __init__(self, c: int, hw: tuple[int, int], k: tuple[int, int], d: tuple[int, int], p: tuple[int, int],
                 s: tuple[int, int], dtype: torch.dtype) -> None:
        (h, w), (kh, kw), (dh, dw), (ph, pw), (sh, sw) = hw, k, d, p, s
        self.hw, self.k, self.d, self.p, self.s = hw, k, d, p, s
        self.ho, self.wo = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1, (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
        self.pad = torch.zeros((c, h + 2 * ph, w + 2 * pw), dtype=dtype) if (ph or pw) else None
        self.plain = (kh, kw, sh, sw, ph, pw) == (1, 1, 1, 1, 0, 0)  # a 1x1 conv: the map is the columns
        self.cols = torch.empty((c * kh * kw, self.ho * self.wo), dtype=dtype)

    def __call__(self, x3: torch.Tensor) -> torch.Tensor:
        if self.plain:
            return x3.reshape(x3.shape[0], -1)
        src = x3
        if self.pad is not None:
            (ph, pw), (h, w) = self.p, self.hw
            self.pad[:, ph : ph + h, pw : pw + w].copy_(x3)
            src = self.pad
        (kh, kw), (dh, dw), (sh, sw) = self.k, self.d, self.s
        st = src.stride()
        view = src.as_strided((src.shape[0], kh, kw, self.ho, self.wo), (st[0], st[1] * dh, st[2] * dw, st[1] * sh, st[2] * sw),
                              src.storage_offset())  # fmt: skip
        self.cols.view(src.shape[0], kh, kw, self.ho, self.wo).copy_(view)
        return self.cols


class _ConvStep:
    """A Conv2d call: forward ``W @ im2col(x)``; backward the weight gradient on the same
    columns and the input gradient as a convolution of ``g`` with the flipped kernel
    (``Wt @ im2col(g)``, stride 1) or ``fold(W.T @ g)`` (strided convolutions)."""

    def __init__(self, layer: MatLayer, in_shape: tuple[int, ...], *, constant_input: bool, need_dx: bool) -> None:
        self.layer, self.need_dx = layer, need_dx
        _, c, h, w = in_shape
        dt = layer.W.dtype
        self.hw = (h, w)
        self.unfold = _Unfold(c, (h, w), layer.k, layer.d, layer.p, layer.s, dt)
        self.ho, self.wo = self.unfold.ho, self.unfold.wo
        self.out = torch.empty((layer.W.shape[0], self.ho * self.wo), dtype=dt)
        self.constant_input = constant_input
        self.cols: torch.Tensor | None = None
        self.unfold_g: _Unfold | None = None
        if layer.flipped and need_dx:  # padding d*(k-1) - p gives back the input's size
            pad_t = (layer.d[0] * (layer.k[0] - 1) - layer.p[0], layer.d[1] * (layer.k[1] - 1) - layer.p[1])
            self.unfold_g = _Unfold(layer.shape[0], (self.ho, self.wo), layer.k, layer.d, pad_t, (1, 1), dt)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cols = self.cols
        if cols is None or not self.constant_input:  # the all-ones input is unfolded once
            cols = self.cols = self.unfold(x[0])
        return self.layer.product(cols, self.out).view(1, -1, self.ho, self.wo)

    def backward(self, g: torch.Tensor) -> list[torch.Tensor | None]:
        lay = self.layer
        g2 = g.reshape(g.shape[1], -1)
        assert self.cols is not None
        lay.accumulate(g2, self.cols)
        if not self.need_dx:
            return [None]
        if self.unfold_g is not None:
            return [lay.product_t(self.unfold_g(g[0])).view(1, -1, *self.hw)]
        dcols = lay.product_t(g2)
        if self.unfold.plain:
            return [dcols.view(1, -1, *self.hw)]
        return [F.fold(dcols.unsqueeze(0), self.hw, lay.k, dilation=lay.d, padding=lay.p, stride=lay.s)]


class _LinearStep:
    """A Linear call on ``(..., in)``: ``x @ W.T``; gradients ``g.T @ x`` and ``g @ W``."""

    def __init__(self, layer: MatLayer, need_dx: bool) -> None:
        self.layer, self.need_dx = layer, need_dx

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.shape = tuple(x.shape)
        self.flat = x.reshape(-1, x.shape[-1])
        lay = self.layer
        out = self.flat @ lay.W.T
        if lay.b is not None:
            out += lay.b
        return out.view(*x.shape[:-1], -1)

    def backward(self, g: torch.Tensor) -> list[torch.Tensor | None]:
        lay = self.layer
        g2 = g.reshape(-1, g.shape[-1])
        lay.accumulate(g2.T, self.flat.T)
        if not self.need_dx:
            return [None]
        return [lay.product_t(g2.T).T.reshape(self.shape)]


@dataclass
class Program:
    """The flow as a list of steps (fx node order); :meth:`flow` runs it forward and backward."""

    steps: list[_Step]
    layers: dict[str, MatLayer]
    input_node: str
    output_node: str
    x: torch.Tensor = field(default_factory=lambda: torch.empty(0))
    started: bool = False

    def flow(self) -> float:
        """``R = sum(output)`` for the all-ones input; every layer's ``G`` (and ``Gb``) hold
        ``dR/dW`` (``dR/db``) afterwards."""
        for lay in self.layers.values():
            lay.calls = 0
            if not self.started:  # the engine may have zeroed weights (a prior mask) before the first round
                lay.refresh()
        self.started = True
        env: dict[str, torch.Tensor] = {self.input_node: self.x}
        for st in self.steps:
            env[st.node] = st.fwd(*[env[i] for i in st.inputs])
        out = env[self.output_node]
        r = float(finite_flow(out.sum()))
        grads: dict[str, torch.Tensor] = {self.output_node: torch.ones_like(out)}
        for st in reversed(self.steps):
            g = grads.pop(st.node, None)
            if g is None:
                continue
            for name, gi in zip(st.inputs, st.bwd(g), strict=True):
                if gi is None or name == self.input_node:
                    continue
                prev = grads.get(name)
                grads[name] = gi if prev is None else prev + gi
        return r


class _Unsupported(Exception):
    pass


_IDENTITY_MODULES = (nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout)
_BATCHNORMS = (nn.BatchNorm1d, nn.BatchNorm2d)


def _relu_step(mask: bool) -> tuple[Callable[..., torch.Tensor], Callable[[torch.Tensor], Sequence[torch.Tensor | None]]]:
    """ReLU is the identity on the flow. Its backward zeroes the gradient where the activation
    is 0 (autograd's rule) only when ``mask``: a live weight into or out of a zero unit has a
    zero input there (all terms are non-negative), so a gradient let through at zero units adds
    only exact zeros to weight gradients; it would change a bias's gradient, so ``mask`` is on
    when a bias is scored."""
    if not mask:
        return _identity_step()
    saved: dict[str, torch.Tensor] = {}

    def fwd(x: torch.Tensor) -> torch.Tensor:
        saved["a"] = x  # the flow is non-negative: ReLU is the identity
        return x

    def bwd(g: torch.Tensor) -> list[torch.Tensor | None]:
        return [g * (saved["a"] > 0)]  # autograd's rule: no gradient where the activation is 0

    return fwd, bwd


def _identity_step() -> tuple[Callable[..., torch.Tensor], Callable[[torch.Tensor], Sequence[torch.Tensor | None]]]:
    return (lambda x: x), (lambda g: [g])


def _add_step() -> tuple[Callable[..., torch.Tensor], Callable[[torch.Tensor], Sequence[torch.Tensor | None]]]:
    return (lambda a, b: a + b), (lambda g: [g, g])


def _flatten_step(start: int) -> tuple[Callable[..., torch.Tensor], Callable[[torch.Tensor], Sequence[torch.Tensor | None]]]:
    shape: dict[str, tuple[int, ...]] = {}

    def fwd(x: torch.Tensor) -> torch.Tensor:
        shape["x"] = tuple(x.shape)
        return torch.flatten(x, start)

    return fwd, (lambda g: [g.reshape(shape["x"])])


def _scale_step(bn: nn.BatchNorm1d | nn.BatchNorm2d) -> tuple[Callable[..., torch.Tensor], Callable[[torch.Tensor], Sequence[torch.Tensor | None]]]:
    """An eval BatchNorm of the flow copy (shift and mean zero): ``x * |gamma| / sqrt(var + eps)``."""
    assert bn.running_var is not None
    a = torch.rsqrt(bn.running_var.detach() + bn.eps)
    if bn.weight is not None:
        a = a * bn.weight.detach()
    view: dict[int, torch.Tensor] = {}

    def col(x: torch.Tensor) -> torch.Tensor:
        if x.dim() not in view:
            view[x.dim()] = a.reshape((1, -1) + (1,) * (x.dim() - 2))
        return view[x.dim()]

    return (lambda x: x * col(x)), (lambda g: [g * col(g)])


def _pool_step(kind: str, module: nn.Module | None, args: tuple[Any, ...]) -> tuple[Callable[..., torch.Tensor], Callable[[torch.Tensor], Sequence[torch.Tensor | None]]]:
    """Average or max pooling through PyTorch's own forward and backward kernels (the same
    tie rule as autograd for max pooling)."""
    saved: dict[str, Any] = {}
    if kind == "adaptive_avg":
        size = module.output_size if module is not None else args[0]  # type: ignore[union-attr]
        if as_pair(size) != (1, 1):
            raise _Unsupported("adaptive pooling to more than one position")

        def fwd(x: torch.Tensor) -> torch.Tensor:
            saved["shape"] = tuple(x.shape)
            return x.mean(dim=(2, 3), keepdim=True)

        def bwd(g: torch.Tensor) -> list[torch.Tensor | None]:
            shape = saved["shape"]
            return [(g / (shape[2] * shape[3])).expand(shape)]

        return fwd, bwd
    if kind == "max" and isinstance(module, nn.MaxPool2d) and not module.return_indices:
        k, st = as_pair(module.kernel_size), as_pair(module.stride or module.kernel_size)
        pad, dil, ceil = as_pair(module.padding), as_pair(module.dilation), module.ceil_mode

        def fwd_max(x: torch.Tensor) -> torch.Tensor:
            out, idx = torch.ops.aten.max_pool2d_with_indices(x, k, st, pad, dil, ceil)
            saved["x"], saved["idx"] = x, idx
            return out  # type: ignore[no-any-return]

        def bwd_max(g: torch.Tensor) -> list[torch.Tensor | None]:
            return [torch.ops.aten.max_pool2d_with_indices_backward(g, saved["x"], k, st, pad, dil, ceil, saved["idx"])]

        return fwd_max, bwd_max
    raise _Unsupported(f"pooling {kind}")


def _shape_of(node: fx.Node) -> tuple[int, ...]:
    meta = node.meta.get("gt_shape")
    if meta is None:
        raise _Unsupported(f"no shape for {node.name}")
    return tuple(meta)


def _record_shapes(gm: fx.GraphModule, x: torch.Tensor) -> None:
    """Run the flow copy once (float64, no grad) and record every node's output shape."""

    class _Rec(fx.Interpreter):
        def run_node(self, n: fx.Node) -> Any:
            out = super().run_node(n)
            if isinstance(out, torch.Tensor):
                n.meta["gt_shape"] = tuple(out.shape)
            return out

    with torch.no_grad():
        _Rec(gm).run(x)


def build(work: nn.Module, names: Sequence[str], in_shape: tuple[int, ...]) -> Program | None:
    """The program of ``work`` (the linearized float64 copy, BatchNorm folded), or ``None`` when
    a node is not one the program knows (the caller then runs autograd).

    Networks with a convolution of ``LARGEST_CONV`` weights or more also get ``None``: such
    layers (VGG's 512-channel ones at 4x4 and 2x2 positions) are memory-bound, where the
    autograd engine's channels_last convolutions and CSR products are faster (VGG-11, 100
    rounds, one thread: 6.6 s there, 8.0 s here; ResNet-20 and the MLPs are faster here)."""
    try:
        gm = work if isinstance(work, fx.GraphModule) else fx.symbolic_trace(work)
        x = torch.ones((1, *in_shape), dtype=torch.float64)
        _record_shapes(gm, x)
        prog = _compile(gm, set(names))
    except _Unsupported as e:
        log.debug("synflow: the autograd engine runs the flow (%s)", e)
        return None
    except Exception as e:  # untraceable or a shape the copy cannot run: autograd will say what is wrong
        log.debug("synflow: the autograd engine runs the flow (%s: %s)", type(e).__name__, e)
        return None
    prog.x = x
    return prog


@dataclass
class _Ctx:
    """What lowering a node needs: the modules, the layers so far, the scored modules, the
    input node, and whether ReLU keeps its backward mask (a bias is scored)."""

    mods: dict[str, nn.Module]
    layers: dict[str, MatLayer]
    scored: set[str]
    input_node: str = ""
    relu_mask: bool = True


def _compile(gm: fx.GraphModule, wanted: set[str]) -> Program:
    steps: list[_Step] = []
    ctx = _Ctx(dict(gm.named_modules()), {}, {n.rpartition(".")[0] for n in wanted},
               relu_mask=any(n.rpartition(".")[2] == "bias" for n in wanted))
    layers = ctx.layers
    input_node = output_node = ""
    for node in gm.graph.nodes:
        if node.op == "placeholder":
            if input_node:
                raise _Unsupported("more than one input")
            input_node = ctx.input_node = node.name
            continue
        if node.op == "output":
            arg = node.args[0]
            if not isinstance(arg, fx.Node):
                raise _Unsupported("output is not one tensor")
            output_node = arg.name
            continue
        args = [a for a in node.args if isinstance(a, fx.Node)]
        consts = [a for a in node.args if not isinstance(a, fx.Node)]
        if any(k != "inplace" for k in node.kwargs) and node.op != "call_module":  # ReLU's inplace changes nothing here
            raise _Unsupported(f"keyword arguments in {node.name}")
        fwd_bwd, inputs = _lower(node, args, consts, ctx)
        steps.append(_Step(node.name, inputs, *fwd_bwd))
    ptrs = [lay.W.data_ptr() for lay in layers.values()]
    if len(set(ptrs)) != len(ptrs):
        raise _Unsupported("two layers share a weight")
    for name in wanted:  # every scored parameter must belong to a program layer
        mname, _, attr = name.rpartition(".")
        lay = layers.get(mname)
        if lay is None or (attr == "bias" and lay.b is None) or attr not in ("weight", "bias"):
            raise _Unsupported(f"scored parameter {name} outside the program's layers")
    if not output_node or not input_node:
        raise _Unsupported("no input or output")
    return Program(steps, layers, input_node, output_node)


def _lower(node: fx.Node, args: list[fx.Node], consts: list[Any], ctx: _Ctx) -> tuple[tuple[Callable[..., torch.Tensor], Callable[[torch.Tensor], Sequence[torch.Tensor | None]]], list[str]]:
    """The forward/backward pair of one fx node and the names of its tensor inputs."""
    inputs = [a.name for a in args]
    if node.op == "call_module":
        mod = ctx.mods[str(node.target)]
        if node.kwargs or len(args) != 1 or consts:
            raise _Unsupported(f"module call {node.target} with other arguments")
        return _lower_module(str(node.target), mod, args[0], ctx), inputs
    tgt = node.target
    if node.op == "call_function":
        if tgt in (operator.add, torch.add) and len(args) == 2 and not consts:
            return _add_step(), inputs
        if tgt in (torch.relu, F.relu) and len(args) == 1 and not consts:
            return _relu_step(ctx.relu_mask), inputs
        if tgt is torch.flatten and len(args) == 1 and consts in ([1], [1, -1]):
            return _flatten_step(1), inputs
        if tgt is F.adaptive_avg_pool2d and len(args) == 1 and len(consts) == 1:
            return _pool_step("adaptive_avg", None, tuple(consts)), inputs
    if node.op == "call_method" and len(args) == 1:
        if tgt == "relu" and not consts:
            return _relu_step(ctx.relu_mask), inputs
        if tgt == "flatten" and consts in ([1], [1, -1]):
            return _flatten_step(1), inputs
    raise _Unsupported(f"node {node.name} ({node.op} {tgt})")


def _lower_module(name: str, mod: nn.Module, arg: fx.Node,
                  ctx: _Ctx) -> tuple[Callable[..., torch.Tensor], Callable[[torch.Tensor], Sequence[torch.Tensor | None]]]:
    from_input, layers = arg.name == ctx.input_node, ctx.layers
    if isinstance(mod, nn.Conv2d):
        if mod.groups != 1 or mod.padding_mode != "zeros" or isinstance(mod.padding, str) or name in layers:
            raise _Unsupported(f"conv {name}")
        if mod.weight.numel() >= LARGEST_CONV:
            raise _Unsupported(f"conv {name} has {mod.weight.numel()} weights (memory-bound: the autograd engine is faster)")
        layer = layers[name] = MatLayer(mod)
        in_shape = _shape_of(arg)
        if len(in_shape) != 4 or in_shape[0] != 1:
            raise _Unsupported(f"conv {name} input {in_shape}")
        step = _ConvStep(layer, in_shape, constant_input=from_input, need_dx=not from_input)
        return step.forward, step.backward
    if isinstance(mod, nn.Linear):
        if name in layers:
            raise _Unsupported(f"linear {name} used twice")
        lstep = _LinearStep(layers.setdefault(name, MatLayer(mod)), need_dx=not from_input)
        return lstep.forward, lstep.backward
    if name in ctx.scored:
        raise _Unsupported(f"scored module {name} of type {type(mod).__name__}")
    if isinstance(mod, nn.ReLU):
        return _relu_step(ctx.relu_mask)
    if isinstance(mod, _IDENTITY_MODULES):
        return _identity_step()
    if isinstance(mod, nn.Flatten):
        if mod.start_dim != 1 or mod.end_dim != -1:
            raise _Unsupported("flatten of other dimensions")
        return _flatten_step(1)
    if isinstance(mod, nn.AdaptiveAvgPool2d):
        return _pool_step("adaptive_avg", mod, ())
    if isinstance(mod, nn.MaxPool2d):
        return _pool_step("max", mod, ())
    if isinstance(mod, _BATCHNORMS) and mod.running_var is not None:
        return _scale_step(mod)
    raise _Unsupported(f"module {name} of type {type(mod).__name__}")
