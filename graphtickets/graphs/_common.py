"""Shared helpers of the graph builders: masks of a model, channel masks, CSR rows from masks.

Nothing here loops over weights or edges: masks are reduced with torch/numpy kernels and
turned into sparse rows with ``flatnonzero`` in bounded chunks (so that the int64 transient of
a huge layer never exceeds ``_CHUNK`` elements).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from graphtickets.errors import GraphticketsError
from graphtickets.ticket import Ticket, prunable

__all__: list[str] = []

#: Largest number of mask elements processed at once (bounds the int64 transient memory).
_CHUNK = 1 << 23

WEIGHTS = ("count", "abs", None)


def check_weights(weights: Any) -> None:
    if weights not in WEIGHTS:
        raise GraphticketsError(
            f"weights must be 'count', 'abs' or None, got {weights!r}"
        )


def module_of(model: nn.Module, param: str) -> nn.Module:
    """The module that owns parameter ``param`` (``'features.0.weight'`` -> ``features.0``)."""
    mod_name = param.rpartition(".")[0]
    try:
        return model.get_submodule(mod_name) if mod_name else model
    except AttributeError:
        raise GraphticketsError(f"the model has no module {mod_name!r} (for parameter {param!r})") from None


def param_tensor(model: nn.Module, param: str) -> torch.Tensor:
    """The (detached, CPU) tensor of ``param`` (also when pruned: ``weight_orig``)."""
    params = dict(model.named_parameters())
    p = params.get(param, params.get(f"{param}_orig"))
    if p is None:
        raise GraphticketsError(f"the model has no parameter {param!r}")
    return p.detach().to("cpu")


def mask_of(model: nn.Module, ticket: Ticket | None, param: str) -> torch.Tensor:
    """The bool mask of ``param``: the ticket's, or all ones when the ticket does not mask it."""
    if ticket is not None and param in ticket.masks:
        return ticket.masks[param]
    p = param_tensor(model, param)
    return torch.ones(p.shape, dtype=torch.bool)


def check_ticket(model: nn.Module, ticket: Ticket | None) -> None:
    if ticket is None:
        return
    if not isinstance(ticket, Ticket):
        raise GraphticketsError(
            f"ticket must be a graphtickets.Ticket or None, got {type(ticket).__name__}; "
            f"wrap masks with gt.Ticket(masks={{...}})"
        )
    ticket.check(model)


def prunable_names(model: nn.Module) -> list[str]:
    return list(prunable(model))


def groups_of(module: nn.Module) -> int:
    return int(getattr(module, "groups", 1) or 1)


def in_out_width(model: nn.Module, param: str) -> tuple[int, int]:
    """``(in, out)`` units (features or channels) of a Linear/Conv weight."""
    w = param_tensor(model, param)
    module = module_of(model, param)
    if w.ndim == 2:
        return int(w.shape[1]), int(w.shape[0])
    if w.ndim >= 3:
        return int(w.shape[1]) * groups_of(module), int(w.shape[0])
    raise GraphticketsError(f"parameter {param!r} of shape {tuple(w.shape)} is not a Linear/Conv weight")


def kernel_counts(mask: torch.Tensor) -> np.ndarray:
    """Live kernel entries per ``(out, in/groups)`` pair of a conv mask (numpy, small ints)."""
    m = mask.detach().to("cpu")
    if m.ndim == 2:
        return m.numpy().view(np.uint8)
    k = int(np.prod(m.shape[2:]))
    dtype = torch.uint8 if k < 256 else torch.int32  # a torch sum beats k strided numpy adds
    return m.contiguous().reshape(m.shape[0], m.shape[1], k).sum(-1, dtype=dtype).numpy()


def kernel_abs(weight: torch.Tensor, mask: torch.Tensor) -> np.ndarray:
    """Sum of ``|w|`` over the live kernel entries per ``(out, in/groups)`` pair (float64).

    Chunked over output channels, so the float64 transient stays under ``_CHUNK`` elements.
    """
    w = weight.detach().to("cpu")
    m = mask.detach().to("cpu")
    out = np.zeros((w.shape[0], w.shape[1]) if w.ndim > 1 else (w.shape[0],), dtype=np.float64)
    per = max(1, int(np.prod(w.shape[1:])))
    step = max(1, _CHUNK // per)
    for a in range(0, w.shape[0], step):  # loop over chunks of output channels
        b = min(w.shape[0], a + step)
        x = w[a:b].to(torch.float64).abs_()
        x.mul_(m[a:b])
        if x.ndim > 2:
            x = x.reshape(b - a, w.shape[1], -1).sum(-1)
        out[a:b] = x.numpy()
    return out


def channel_mask(mask: torch.Tensor, groups: int = 1) -> np.ndarray:
    """``(out, in)`` bool matrix: a channel pair is live when any kernel entry is live.

    Grouped convolutions are expanded to the full ``in = groups * mask.shape[1]`` channels.
    """
    c = kernel_counts(mask) > 0
    if groups == 1:
        return c
    out, cin_g = c.shape
    full = np.zeros((out, cin_g * groups), dtype=bool)
    g_of_out = np.arange(out) // (out // groups)
    cols = g_of_out[:, None] * cin_g + np.arange(cin_g)[None, :]
    np.put_along_axis(full, cols, c, axis=1)
    return full


def row_counts(live: np.ndarray) -> np.ndarray:
    """Nonzero entries per row of a 2-D array (int64)."""
    if live.size == 0:
        return np.zeros(live.shape[0], dtype=np.int64)
    return np.count_nonzero(live, axis=1).astype(np.int64)


def fill_rows(
    live: np.ndarray,
    indices: np.ndarray,
    data: np.ndarray | None,
    values: np.ndarray | None = None,
    *,
    col_offset: int | np.ndarray = 0,
) -> int:
    """Write the row-major nonzero columns of a 2-D ``live`` array into ``indices``.

    ``indices[k]`` gets the column of the k-th nonzero entry plus ``col_offset`` (an int, or
    one offset per row); ``data[k]`` gets ``values`` at that entry (or 1.0 when ``values`` is
    None; ``data`` None skips weights). Chunked over rows so the int64 transient of
    ``flatnonzero`` stays under ``_CHUNK`` elements. Returns the number of entries written.
    """
    rows, cols = live.shape
    step = max(1, _CHUNK // max(cols, 1))
    per_row = np.ndim(col_offset) > 0
    pos = 0
    for a in range(0, rows, step):
        b = min(rows, a + step)
        flat = np.flatnonzero(live[a:b])
        k = flat.shape[0]
        if k == 0:
            continue
        out = indices[pos : pos + k]
        if per_row:
            r_local, c_local = np.divmod(flat, cols)
            np.copyto(out, c_local + np.asarray(col_offset)[a:b][r_local], casting="unsafe")
        else:
            np.copyto(out, flat % cols, casting="unsafe")
            out += int(col_offset)
        if data is not None:
            if values is None:
                data[pos : pos + k] = 1.0
            else:
                data[pos : pos + k] = values[a:b].reshape(-1)[flat]
        pos += k
    return pos
