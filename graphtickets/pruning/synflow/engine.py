"""The fast SynFlow rounds: a float64 flow with our own weight gradients, and a selection
that touches only the survivors near the threshold.

:func:`graphtickets.pruning.synflow.synflow` (in ``method``) calls :func:`run_rounds`; nothing here is
public API.

**The flow.** Where every node of the linearized float64 copy is one it knows (Conv2d, Linear,
ReLU, residual add, pooling, flatten; no conv of ``synflow_program.LARGEST_CONV`` weights or
more), the flow runs without autograd as a :class:`~graphtickets.pruning.synflow.program.Program`
(``PROGRAM = False`` turns that off). Otherwise every scored Conv2d (``groups=1``, zero
padding) and Linear of the copy is replaced by a :class:`_FlowModule`, a custom autograd function around a
:class:`_Layer`. A conv runs forward as PyTorch's float64 convolution in channels_last (the
fast layout on CPU for a batch of one) and its input gradient is PyTorch's too, but its
weight gradient is ONE matrix product (output gradient times the im2col columns) written
into a buffer allocated once, in the weight's memory order: no fresh gradient tensors and
no zero fill each round. Once a conv with at least ``SPARSE_MIN_SIZE`` weights has fewer
than ``SPARSE_BELOW`` of them alive, its forward and input gradient become CSR products
(the 512-channel layers of VGG-16 at 4x4 and 2x2 positions are memory-bound: a dense
float64 product reads every weight, pruned or not). Other scored parameters (grouped or
1-D/3-D convolutions, biases of other modules, ...) keep ordinary autograd gradients.
Everything stays float64: a float32 flow has a relative error of about 2e-6 on VGG-16,
larger than the gap between the scores at the threshold in 85 of 100 rounds, and it
changes the mask.

**The selection.** The live weights of all scored parameters sit in flat arrays (memory
offsets, ascending, and ``|w|``), in parameter order. Each round gathers the survivors'
gradients, multiplies by ``|w|`` and prunes the ``q`` smallest scores with
:func:`~graphtickets.pruning.select.smallest`, the selection every method uses (a sampled
bound on the threshold, then an exact partition of the few candidates below it; ties at the
threshold pruned from the highest logical position). Pruned entries are marked NaN in place
(NaN never compares, so they are never candidates again) and the arrays are compacted when
a third of them is dead.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from graphtickets.errors import GraphticketsError
from graphtickets.pruning.select import smallest
from graphtickets.pruning.synflow.program import (
    CsrPair,
    MatLayer,
    Program,
    add_products,
    as_pair,
    finite_flow,
    set_offsets,
    transposed_offsets,
)
from graphtickets.pruning.synflow.program import build as build_program

__all__: list[str] = []

prune_set = smallest  # the selection of every method (select.py); the name tests/test_select.py imports
PROGRAM = True  # run the flow as an autograd-free program where every node is known (synflow_program)
SPARSE_BELOW = 0.25  # a large conv whose live fraction is below this runs on CSR products
SPARSE_MIN_SIZE = 1 << 20  # ... if it has at least this many weights (smaller ones are
# compute-bound: dense float64 convolution stays faster at any density; measured on VGG-16
# and ResNet-20 layer shapes)


class _Layer:
    """A Conv2d or Linear of the flow, float64. A conv keeps its weight ``W`` in
    channels_last (the fast float64 layout on CPU for a batch of one) and its weight
    gradient ``G`` as (out, kh*kw*in), i.e. in that weight's memory order; a Linear keeps
    ``W`` (out, in) and ``G`` alike. ``sparse`` (convs only) switches the forward and the
    input gradient to CSR products once few weights are left (:meth:`make_sparse`)."""

    def __init__(self, module: nn.Conv2d | nn.Linear) -> None:
        w = module.weight.detach()
        self.shape = tuple(int(v) for v in w.shape)
        self.conv = isinstance(module, nn.Conv2d)
        self.W = w.clone(memory_format=torch.channels_last if self.conv else torch.contiguous_format)
        self.G = torch.empty((w.shape[0], w[0].numel()), dtype=w.dtype)
        bias: torch.Tensor | None = module.bias
        self.b: torch.Tensor | None = None if bias is None else bias.detach().clone()
        self.Gb: torch.Tensor | None = None if self.b is None else torch.empty_like(self.b)
        self.calls = 0  # backward calls this round (a module used twice accumulates)
        self.sparse: CsrPair | None = None
        self.k = self.d = self.p = self.s = (1, 1)
        if self.conv:
            self.k, self.d = as_pair(module.kernel_size), as_pair(module.dilation)
            self.p, self.s = as_pair(module.padding), as_pair(module.stride)

    rebuild_above = 2.0  # rebuild the CSR copies when they store this many times the live weights

    def wants_sparse(self, size: int, live: int) -> bool:
        return self.conv and size >= SPARSE_MIN_SIZE and live < SPARSE_BELOW * size

    def make_sparse(self, mem: np.ndarray, values: np.ndarray) -> None:
        shape = (self.G.shape[0], self.G.shape[1])  # columns: (kh, kw, in), the channels_last order
        self.sparse = CsrPair(mem, transposed_offsets(mem, shape), values, shape, (shape[1], shape[0]))

    def zero(self, mem: np.ndarray) -> None:
        """Zero the weights at ``mem`` in the CSR copies (the engine zeroed the dense ones)."""
        if self.sparse is not None:
            self.sparse.zero(mem)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.conv:
            flat = x.reshape(-1, x.shape[-1])
            out = torch.addmm(self.b, flat, self.W.T) if self.b is not None else flat @ self.W.T
            return out.view(*x.shape[:-1], -1), flat
        if self.sparse is None or x.shape[0] != 1:
            return F.conv2d(x, self.W, self.b, self.s, self.p, self.d), x
        cols, ho, wo = self._cols(x)
        out = torch.sparse.mm(self.sparse.M, cols.T)  # (O, P)
        if self.b is not None:
            out += self.b[:, None]
        return out.view(1, -1, ho, wo), cols

    def _cols(self, x: torch.Tensor) -> tuple[torch.Tensor, int, int]:
        """im2col of ``x``: (n*P, kh*kw*in), columns in the channels_last weight's order."""
        xp = x.permute(0, 2, 3, 1)  # NHWC
        if self.p[0] or self.p[1]:
            xp = F.pad(xp, (0, 0, self.p[1], self.p[1], self.p[0], self.p[0]))
        xp = xp.contiguous()
        n, h, w, c = xp.shape
        (kh, kw), (dh, dw), (sh, sw) = self.k, self.d, self.s
        ho, wo = (h - dh * (kh - 1) - 1) // sh + 1, (w - dw * (kw - 1) - 1) // sw + 1
        st = xp.stride()
        cols = xp.as_strided((n, ho, wo, kh, kw, c), (st[0], st[1] * sh, st[2] * sw, st[1] * dh, st[2] * dw, st[3]))
        return cols.reshape(n * ho * wo, kh * kw * c), ho, wo

    def backward(self, g: torch.Tensor, saved: torch.Tensor, in_shape: tuple[int, ...], need_dx: bool) -> torch.Tensor | None:
        sparse = self.conv and saved.dim() == 2  # the forward saved im2col columns
        if sparse:
            a = g.reshape(g.shape[1], -1)  # (O, P)
            b = saved
        elif self.conv:
            g = g.contiguous(memory_format=torch.channels_last)
            a = g.permute(0, 2, 3, 1).reshape(-1, g.shape[1]).T  # (O, n*P)
            b = self._cols(saved)[0]
        else:
            g2 = g.reshape(-1, g.shape[-1])  # (M, O)
            a, b = g2.T, saved
        add_products(self.G, self.Gb, a, b, first=self.calls == 0)
        self.calls += 1
        if not need_dx:
            return None
        if sparse:
            assert self.sparse is not None
            kh, kw = self.k
            dcols = torch.sparse.mm(self.sparse.T, a.contiguous())  # (kh*kw*in, P)
            dcols = dcols.view(kh, kw, -1, dcols.shape[1]).permute(2, 0, 1, 3).reshape(1, -1, dcols.shape[1])
            return F.fold(dcols, in_shape[-2:], self.k, dilation=self.d, padding=self.p, stride=self.s)
        if self.conv:
            dx, _, _ = torch.ops.aten.convolution_backward(
                g, saved, self.W, None, self.s, self.p, self.d, False, [0, 0], 1, [True, False, False]
            )
            return dx  # type: ignore[no-any-return]
        return (a.T @ self.W).view(in_shape)


class _FlowFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, anchor: torch.Tensor, layer: _Layer) -> torch.Tensor:
        out, saved = layer.forward(x)
        ctx.layer, ctx.saved, ctx.in_shape = layer, saved, tuple(x.shape)
        return out

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple[torch.Tensor | None, None, None]:
        dx = ctx.layer.backward(g, ctx.saved, ctx.in_shape, ctx.needs_input_grad[0])
        ctx.saved = None
        return dx, None, None


class _FlowModule(nn.Module):
    """Stands in for a Conv2d/Linear in the flow copy. ``anchor`` (a scalar that requires
    grad) makes the output part of the autograd graph even when the input is not."""

    def __init__(self, layer: _Layer, anchor: torch.Tensor) -> None:
        super().__init__()
        self.layer = layer
        self.anchor = anchor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _FlowFn.apply(x, self.anchor, self.layer)  # type: ignore[no-any-return]


def _supported(module: nn.Module) -> bool:
    if isinstance(module, nn.Linear):
        return True
    return (
        isinstance(module, nn.Conv2d) and module.groups == 1 and module.padding_mode == "zeros"
        and not isinstance(module.padding, str)
    )  # fmt: skip


@dataclass
class _Slot:
    """One scored parameter: where its gradient and its flow values live (flat, logical
    order), and its segment of the selection arrays."""

    name: str
    size: int
    values: np.ndarray  # flat float64 view of the values the flow uses (zeroed when pruned)
    grad: torch.Tensor | None = None  # flat view of its gradient (a _Layer buffer), or None: autograd
    shape: tuple[int, ...] = ()  # logical shape
    perm: tuple[int, ...] | None = None  # memory order = logical.permute(perm) (None: same)
    layer: _Layer | MatLayer | None = None  # a weight's layer (it may switch to sparse products)
    offset: int = 0  # first global (logical) position: ties are broken by global position
    start: int = 0
    stop: int = 0
    live: int = 0

    def to_memory(self, mask: torch.Tensor) -> np.ndarray:
        m = mask.reshape(self.shape)
        return (m if self.perm is None else m.permute(self.perm)).reshape(-1).numpy()

    def from_memory(self, kept: np.ndarray) -> torch.Tensor:
        t = torch.zeros(self.size, dtype=torch.bool)
        t[torch.from_numpy(kept)] = True
        if self.perm is None:
            return t.reshape(self.shape)
        mem_shape = tuple(self.shape[i] for i in self.perm)
        inv = tuple(int(i) for i in np.argsort(self.perm))
        return t.reshape(mem_shape).permute(inv).contiguous()

    def logical(self, idx: np.ndarray) -> np.ndarray:
        """Global logical positions of memory indices ``idx`` of this slot."""
        if self.perm is None:
            return self.offset + idx
        mem_shape = tuple(self.shape[i] for i in self.perm)
        coords = np.unravel_index(idx, mem_shape)
        logical = [coords[list(self.perm).index(d)] for d in range(len(self.shape))]
        return self.offset + np.ravel_multi_index(logical, self.shape)


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().reshape(-1).numpy()


def _np_memory(t: torch.Tensor) -> np.ndarray:
    """A flat numpy view of a dense tensor's memory, whatever its layout."""
    return t.detach().as_strided((t.numel(),), (1,)).numpy()


def prepare(work: nn.Module, names: Sequence[str]) -> tuple[list[_Slot], list[_Layer], list[torch.Tensor], torch.Tensor]:
    """Swap the supported layers of ``work`` (the linearized float64 copy) for flow modules.

    Returns the slots (in ``names`` order), the flow layers, the parameters that keep
    autograd gradients, and the anchor tensor.
    """
    anchor = torch.zeros((), dtype=torch.float64, requires_grad=True)
    params = dict(work.named_parameters())
    wanted = set(names)
    layers: dict[str, _Layer] = {}
    for mname, module in list(work.named_modules()):
        if not mname or not _supported(module):
            continue
        if not any(f"{mname}.{a}" in wanted for a in ("weight", "bias")):
            continue
        layer = _Layer(module)  # type: ignore[arg-type]  # _supported: Conv2d or Linear
        parent_name, _, child = mname.rpartition(".")
        parent = work.get_submodule(parent_name) if parent_name else work
        setattr(parent, child, _FlowModule(layer, anchor))
        layers[mname] = layer
    slots: list[_Slot] = []
    auto: list[torch.Tensor] = []
    for n in names:
        mname, _, attr = n.rpartition(".")
        lay = layers.get(mname)
        if lay is not None and attr == "weight":
            if lay.conv:  # positions are memory offsets of the channels_last weight
                slots.append(_Slot(n, lay.W.numel(), _np_memory(lay.W), grad=lay.G.view(-1), shape=lay.shape, perm=(0, 2, 3, 1), layer=lay))
            else:
                slots.append(_Slot(n, lay.W.numel(), _np(lay.W), grad=lay.G.view(-1), shape=lay.shape))
        elif lay is not None and attr == "bias" and lay.b is not None and lay.Gb is not None:
            slots.append(_Slot(n, lay.b.numel(), _np(lay.b), grad=lay.Gb.view(-1), shape=tuple(lay.b.shape)))
        else:
            p = params[n]
            if not p.is_contiguous():
                raise GraphticketsError(f"synflow: parameter {n!r} is not contiguous")
            p.requires_grad_(True)
            slots.append(_Slot(n, p.numel(), _np(p), shape=tuple(p.shape)))
            auto.append(p)
    set_offsets(slots)
    for p in work.parameters():
        if not any(p is a for a in auto):
            p.requires_grad_(False)
    return slots, list(layers.values()), auto, anchor


def run_rounds(
    work: nn.Module,
    names: Sequence[str],
    masks: dict[str, torch.Tensor],
    targets: Sequence[float],
    *,
    scope: str,
    invert: bool,
    in_shape: tuple[int, ...],
    scale: Mapping[str, torch.Tensor] | None = None,
) -> tuple[dict[str, torch.Tensor], float]:
    """The SynFlow rounds on ``work`` (the linearized float64 copy, BatchNorm folded).

    ``masks`` are the starting masks (all ones or the prior); ``targets`` the density after
    each round. A parameter in ``scale`` (the prunable biases, zero in the flow) is scored
    ``|scale| * |dR/dp|`` instead of ``|p| * |dR/dp|``. Returns the final masks (logical
    shapes) and the last R.

    Each round: the flow and its gradients (:func:`_flow_gradients`), the survivors' scores
    (:meth:`_Survivors.scores`), the entries to prune (:meth:`_Survivors.select`), then
    pruning them in the flow and in the arrays (:meth:`_Survivors.prune`).
    """
    program = build_program(work, names, in_shape) if PROGRAM else None
    if program is not None:
        slots = program_slots(program, names)

        def flow() -> tuple[float, list[torch.Tensor | None]]:
            return program.flow(), []
    else:
        slots, layers, auto, anchor = prepare(work, names)
        x = torch.ones((1, *in_shape), dtype=torch.float64)

        def flow() -> tuple[float, list[torch.Tensor | None]]:
            return _flow_gradients(work, layers, auto, anchor, x)

    live = _Survivors.start(slots, masks, scale or {})
    r = 0.0
    for d in targets:
        r, grads = flow()
        s = live.scores(grads, invert=invert)
        live.prune(live.select(s, d, scope))
    live.compact()
    return {sl.name: sl.from_memory(live.pos[sl.start : sl.stop]) for sl in slots}, r


def program_slots(program: Program, names: Sequence[str]) -> list[_Slot]:
    """The slots of the scored parameters of an autograd-free program (logical order: a
    layer's ``W`` is its weight viewed as ``(out, in*kh*kw)``)."""
    slots: list[_Slot] = []
    for n in names:
        mname, _, attr = n.rpartition(".")
        lay = program.layers[mname]
        if attr == "weight":
            slots.append(_Slot(n, lay.W.numel(), _np(lay.W), grad=lay.G.view(-1), shape=lay.shape, layer=lay))
        else:
            assert lay.b is not None and lay.Gb is not None  # build() checked
            slots.append(_Slot(n, lay.b.numel(), _np(lay.b), grad=lay.Gb.view(-1), shape=tuple(lay.b.shape)))
    set_offsets(slots)
    return slots


def _flow_gradients(work: nn.Module, layers: Sequence[_Layer], auto: Sequence[torch.Tensor], anchor: torch.Tensor,
                    x: torch.Tensor) -> tuple[float, list[torch.Tensor | None]]:
    """One forward and backward of the flow: ``R`` and the autograd gradients of ``auto`` (the
    flow layers write theirs into their own buffers)."""
    for lay in layers:
        lay.calls = 0
    r = finite_flow(work(x).sum())
    grads = torch.autograd.grad(r, [anchor, *auto], allow_unused=True)[1:]
    return float(r.detach()), list(grads)


@dataclass
class _Survivors:
    """The live entries of every scored parameter, in flat arrays (slot segments in order).

    ``pos``: memory offsets within each slot (ascending per segment); ``wl``: the score
    multiplier ``|w|`` (or ``|scale|``), NaN once pruned; ``dead``: NaN entries not yet
    compacted away; ``buf``/``below``: the scores and the selection's comparison, reused.
    """

    slots: list[_Slot]
    pos: np.ndarray
    wl: np.ndarray
    total: int
    n_live: int
    dead: int = 0
    buf: np.ndarray = field(default_factory=lambda: np.empty(0))
    below: torch.Tensor = field(default_factory=lambda: torch.empty(0, dtype=torch.bool))

    @classmethod
    def start(cls, slots: list[_Slot], masks: Mapping[str, torch.Tensor], scale: Mapping[str, torch.Tensor]) -> _Survivors:
        """The arrays of the starting masks (an all-ones mask needs no gather); pruned values zeroed."""
        live_masks = [None if bool(masks[sl.name].all()) else sl.to_memory(masks[sl.name]) for sl in slots]
        counts = [sl.size if m is None else int(np.count_nonzero(m)) for sl, m in zip(slots, live_masks, strict=True)]
        pos = np.empty(sum(counts), dtype=np.int64)
        wl = np.empty(pos.size)
        start = 0
        for sl, m, c in zip(slots, live_masks, counts, strict=True):
            sl.start, sl.stop, sl.live = start, start + c, c
            seg, wseg = pos[sl.start : sl.stop], wl[sl.start : sl.stop]
            mult = sl.values if sl.name not in scale else sl.to_memory(scale[sl.name].detach().to(torch.float64).cpu())
            if m is None:
                seg[:] = np.arange(c)
                np.abs(mult, out=wseg)
            else:
                sl.values[~m] = 0.0
                seg[:] = np.flatnonzero(m)
                np.abs(np.take(mult, seg, out=wseg), out=wseg)
            start += c
        return cls(slots, pos, wl, total=sum(sl.size for sl in slots), n_live=int(pos.size), buf=np.empty(pos.size),
                   below=torch.empty(pos.size, dtype=torch.bool))

    def scores(self, grads: Sequence[torch.Tensor | None], *, invert: bool) -> np.ndarray:
        """``|grad| * wl`` of every array entry (negated with ``invert``); NaN for pruned ones."""
        s = self.buf[: self.pos.size]
        s_t, pos_t = torch.from_numpy(s), torch.from_numpy(self.pos)
        ag = iter(grads)
        for sl in self.slots:  # torch's gather and arithmetic run on all threads (numpy's on one)
            seg_t = s_t[sl.start : sl.stop]
            if sl.grad is not None and sl.stop - sl.start == sl.size:  # never compacted: all of it
                torch.abs(sl.grad, out=seg_t)
                continue
            if sl.grad is not None:
                torch.index_select(sl.grad, 0, pos_t[sl.start : sl.stop], out=seg_t)
            else:
                g = next(ag)
                if g is None:
                    seg_t.zero_()
                else:
                    torch.index_select(g.detach().contiguous().reshape(-1), 0, pos_t[sl.start : sl.stop], out=seg_t)
            seg_t.abs_()
        s_t.mul_(torch.from_numpy(self.wl))
        if invert:
            np.negative(s, out=s)
        return s

    def select(self, s: np.ndarray, d: float, scope: str) -> np.ndarray:
        """Array indices (ascending) to prune so that density ``d`` remains (global or per layer)."""
        if scope == "global":
            k = int(round(d * self.total))
            if k > self.n_live:
                raise GraphticketsError(
                    f"only {self.n_live} of {self.total} weights are alive, cannot keep {k} "
                    f"(density {d}): pruned weights never come back"
                )
            return smallest(s, self.n_live - k, self.n_live, order=functools.partial(_logical, self.slots, self.pos),
                            scratch=self.below)
        parts = []
        for sl in self.slots:
            k = int(round(d * sl.size))
            if k > sl.live:
                raise GraphticketsError(
                    f"layer {sl.name!r} has {sl.live} live weights, cannot keep {k}: "
                    f"pruned weights never come back (ask for a lower density)"
                )
            seg_pos = self.pos[sl.start : sl.stop]
            parts.append(sl.start + smallest(s[sl.start : sl.stop], sl.live - k, sl.live,
                                             order=functools.partial(_slot_logical, sl, seg_pos)))
        return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)

    def prune(self, gone: np.ndarray) -> None:
        """Zero the ``gone`` entries in the flow (dense values and CSR copies), mark them NaN;
        compact the arrays when a third is dead; switch sparse enough large convs to CSR."""
        if gone.size:
            bounds = np.searchsorted(gone, [sl.stop for sl in self.slots])
            lo = 0
            for sl, hi in zip(self.slots, bounds, strict=True):
                if hi > lo:
                    mem = self.pos[gone[lo:hi]]
                    sl.values[mem] = 0.0
                    if sl.layer is not None:
                        sl.layer.zero(mem)
                    sl.live -= int(hi - lo)
                lo = int(hi)
            self.wl[gone] = np.nan
            self.n_live -= gone.size
            self.dead += gone.size
        if self.dead * 3 > self.pos.size:
            self.compact()
        for sl in self.slots:  # few weights left in a conv: CSR products (rebuilt when half dead)
            conv = sl.layer
            if conv is None or not conv.wants_sparse(sl.size, sl.live):
                continue
            if conv.sparse is None or conv.sparse.mem.size > conv.rebuild_above * sl.live:
                live_mem = self.pos[sl.start : sl.stop][~np.isnan(self.wl[sl.start : sl.stop])]
                conv.make_sparse(live_mem, sl.values)

    def compact(self) -> None:
        """Drop the dead (NaN) entries; the slots' segments shrink accordingly."""
        self.pos, self.wl = _compact(self.slots, self.pos, self.wl)
        self.dead = 0


def _slot_logical(sl: _Slot, seg_pos: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Global logical positions of indices ``idx`` of one slot's segment (memory offsets ``seg_pos``)."""
    return sl.logical(seg_pos[idx])


def _logical(slots: list[_Slot], pos: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Global logical positions of array indices ``idx`` (any slots)."""
    starts = np.array([sl.start for sl in slots])
    which = np.searchsorted(starts, idx, side="right") - 1
    out = np.empty(idx.size, dtype=np.int64)
    for j in np.unique(which):
        sel = which == j
        out[sel] = slots[j].logical(pos[idx[sel]])
    return out


def _compact(slots: list[_Slot], pos: np.ndarray, wl: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop the dead (NaN) entries; the slots' segments shrink accordingly."""
    keep = np.flatnonzero(~np.isnan(wl))
    start = 0
    bounds = np.searchsorted(keep, [sl.stop for sl in slots])
    lo = 0
    for sl, hi in zip(slots, bounds, strict=True):
        sl.start, sl.stop = start, start + int(hi - lo)
        start, lo = sl.stop, int(hi)
    idx = torch.from_numpy(keep)  # torch's gathers use all threads (numpy's boolean compress one)
    return (torch.index_select(torch.from_numpy(pos), 0, idx).numpy(),
            torch.index_select(torch.from_numpy(wl), 0, idx).numpy())  # fmt: skip
