"""Tickets from other tools and back: sparse state dicts, mask files, ``.npz``.

Other pruning code stores a ticket in one of three ways, and each reads into a
:class:`~graphtickets.ticket.Ticket` and writes back exactly:

* **a sparse checkpoint** — a ``state_dict`` whose pruned weights are stored as zeros
  (:func:`from_state_dict`, :func:`to_state_dict`). A ``torch.nn.utils.prune`` state dict
  (``<name>_orig`` and ``<name>_mask`` entries) is read through its masks;
* **masks** — a dict of 0/1 tensors keyed by parameter name, saved with ``torch.save``
  (open_lth's ``mask.pth`` holds int 0/1 tensors; bool is also read). They are loaded with
  ``torch.load(weights_only=True)`` only: a file that needs pickle is refused;
* **a plain** ``.npz`` of boolean (or 0/1) arrays keyed by parameter name.

A model pruned with ``torch.nn.utils.prune`` (``weight_orig`` and a ``weight_mask`` buffer)
is the fourth: :func:`to_torch_prune` applies a ticket that way, :func:`from_torch_prune`
reads one back.

:func:`load` reads any of these (or a graphtickets ticket file) and :func:`save` writes one;
the ``graphtickets import`` and ``graphtickets export`` commands call them.

**Where the code is.** This module is the public home of every foreign ticket format. The
tensor-level core (masks from a state dict and back, ``torch.nn.utils.prune`` buffers) is in
:mod:`graphtickets._masks`, which the Ticket's shortcuts (``Ticket.from_state_dict``,
``t.to_state_dict``, ``t.to_torch_prune``, ``Ticket.from_torch_prune``) call as well: the
ticket module never imports this one, so there is no import cycle between them.

**What counts as pruned.** A checkpoint has no mask, so the rule is: *a prunable weight stored
as exactly zero (``0.0`` or ``-0.0``) is pruned; every other value, NaN included, is kept.*
A network trained densely has no exact zeros (its weights are continuous draws), so a dense
checkpoint reads as density 1. A kept weight that happens to be exactly zero cannot be told
apart from a pruned one; :func:`to_state_dict` therefore refuses to write such a ticket as a
plain checkpoint and points to ``masks=True``, which writes the masks beside the weights
(``<name>_mask``) and makes the round trip exact whatever the values. Explicit masks always
win over the zero rule. *Prunable* are the parameters of :func:`graphtickets.prunable` (the
weights of ``Linear`` and ``Conv1d/2d/3d``; never biases or normalisation layers) unless
``params=`` names others.

Examples
--------
>>> import graphtickets as gt
>>> model = gt.models.build("mlp", in_shape=(8,), num_classes=3, widths=(16,))
>>> t = gt.pruning.prune(model, "magnitude", density=0.25)
>>> sd = t.to_state_dict(model)                  # pruned weights stored as zeros
>>> back = gt.Ticket.from_state_dict(model, sd, method="magnitude")
>>> back == t
True
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from graphtickets._io import write_output
from graphtickets._masks import (
    as_tensor,
    binary,
    check_shapes,
    looks_binary,
    model_spec,
    prunable,
    strip_prefix,
)
from graphtickets.errors import TicketError
from graphtickets.ticket import Ticket

__all__ = [
    "from_state_dict",
    "to_state_dict",
    "from_torch_prune",
    "to_torch_prune",
    "from_masks",
    "to_masks",
    "load",
    "save",
    "read_file",
    "imported_ticket",
    "FORMATS",
]

#: File formats :func:`save` writes (``graphtickets export --format``).
FORMATS = ("state_dict", "masks", "open_lth", "npz", "ticket")

_NESTED_KEYS = ("state_dict", "model_state_dict", "model", "mask", "masks", "net", "weights")


# ---------------------------------------------------------------------------- state dicts
def from_state_dict(
    model: nn.Module,
    state_dict: Mapping[str, Any],
    *,
    method: str = "imported",
    params: Iterable[str] | None = None,
    weights: bool = False,
    dataset: str | None = None,
    source: str | None = None,
) -> Ticket:
    """Read a ticket from a sparse checkpoint: pruned weights are stored as zeros.

    Parameters
    ----------
    model : nn.Module
        A model of the checkpoint's architecture (its parameter names and shapes are checked;
        its weights are not used). Its ``gt_spec``, when it has one (models built by
        :func:`graphtickets.models.build`), is recorded so the ticket can rebuild it.
    state_dict : mapping of str to tensor
        ``model.state_dict()`` of the pruned network. A ``module.`` prefix (DataParallel) is
        removed. Entries ``<name>_orig`` and ``<name>_mask`` (a model pruned with
        ``torch.nn.utils.prune``) give the mask of ``<name>`` directly.
    method : str, default "imported"
        The ticket's method name (e.g. the tool it came from).
    params : iterable of str, optional
        The parameters to read masks for; default :func:`graphtickets.prunable` of ``model``
        (Linear/Conv weights). Every one must be in the checkpoint.
    weights : bool, default False
        Keep the checkpoint's values in ``Ticket.weights`` (every parameter and buffer it has
        that the model has), so that ``ticket.apply(model)`` restores the trained network
        and :func:`to_state_dict` writes the checkpoint back exactly.
    dataset : str, optional
        Recorded in ``config["dataset"]``.
    source : str, optional
        Where the checkpoint came from (a file name), recorded in ``meta["imported"]``.

    Returns
    -------
    Ticket
        ``masks[name] = state_dict[name] != 0`` for each prunable ``name`` (or the stored
        ``<name>_mask``). ``meta["imported"]`` says how it was read; no ``cost`` is recorded
        (the search happened elsewhere).

    Raises
    ------
    TicketError
        When a prunable parameter is missing from the checkpoint, a shape differs, or every
        weight is zero.

    Notes
    -----
    The rule, and why it is exact: a weight stored as exactly zero (``0.0`` or ``-0.0``) is
    pruned, any other value (NaN included) is kept. Dense training never produces exact
    zeros, so a checkpoint with no zeros reads as density 1. Explicit masks beat the rule.

    Examples
    --------
    >>> import torch, graphtickets as gt
    >>> model = gt.models.build("mlp", in_shape=(4,), num_classes=2, widths=(3,))
    >>> sd = model.state_dict()
    >>> sd["fc1.weight"][0] = 0.0                     # prune the first unit's 4 inputs
    >>> t = gt.Ticket.from_state_dict(model, sd, method="other_tool")
    >>> t.layer_counts()["fc1.weight"]
    (8, 12)
    """
    return Ticket.from_state_dict(model, state_dict, method=method, params=params, weights=weights, dataset=dataset,
                                  source=source)


def to_state_dict(ticket: Ticket, model: nn.Module, *, masks: bool = False) -> dict[str, torch.Tensor]:
    """``model.state_dict()`` with the ticket applied: pruned weights stored as zeros.

    ``model`` itself is not changed. The ticket's own ``weights``, when it carries them, are
    written in place of the model's (as :meth:`Ticket.apply` would).

    Parameters
    ----------
    ticket : Ticket
    model : nn.Module
        The network the ticket belongs to (plain, not wrapped by ``torch.nn.utils.prune``).
    masks : bool, default False
        Also write each mask as a bool ``<name>_mask`` entry. Needed for an exact round trip
        when a kept weight is exactly zero (see the module notes).

    Returns
    -------
    dict[str, torch.Tensor]
        CPU tensors, the keys of ``model.state_dict()`` (plus the ``_mask`` entries).

    Raises
    ------
    TicketError
        When the ticket does not fit the model, or (``masks=False``) a kept weight is exactly
        zero and would read back as pruned.

    Examples
    --------
    >>> import graphtickets as gt
    >>> model = gt.models.build("mlp", in_shape=(4,), num_classes=2, widths=(3,))
    >>> t = gt.pruning.prune(model, "random", density=0.5)
    >>> sd = t.to_state_dict(model)
    >>> int((sd["fc1.weight"] == 0).sum()) == 12 - t.layer_counts()["fc1.weight"][0]
    True
    """
    return ticket.to_state_dict(model, masks=masks)


# ---------------------------------------------------------------------------- torch.nn.utils.prune
def to_torch_prune(ticket: Ticket, model: nn.Module) -> nn.Module:
    """Apply ``ticket`` to ``model`` with ``torch.nn.utils.prune.custom_from_mask``.

    Each masked parameter ``<name>`` becomes ``<name>_orig`` with a ``<name>_mask`` buffer, as
    ``torch.nn.utils.prune`` leaves a module; ``model`` is changed in place and returned.
    Same as ``ticket.to_torch_prune(model)``.

    Examples
    --------
    >>> import graphtickets as gt
    >>> model = gt.models.build("mlp", in_shape=(4,), num_classes=2, widths=(3,))
    >>> t = gt.pruning.prune(model, "random", density=0.5)
    >>> pruned = to_torch_prune(t, model)
    >>> from_torch_prune(pruned, method="random").masks.keys() == t.masks.keys()
    True
    """
    return ticket.to_torch_prune(model)


def from_torch_prune(model: nn.Module, *, method: str = "torch_prune", **kw: Any) -> Ticket:
    """The ticket of a model pruned with ``torch.nn.utils.prune``: its ``<name>_mask`` buffers.

    ``kw`` (``config``, ``meta``, ...) go to :class:`~graphtickets.ticket.Ticket`. Raises
    :class:`~graphtickets.errors.TicketError` when the model has no ``*_mask`` buffer. Same as
    ``Ticket.from_torch_prune(model)``.
    """
    return Ticket.from_torch_prune(model, method=method, **kw)


# ---------------------------------------------------------------------------- masks
def from_masks(
    model: nn.Module | None,
    masks: Mapping[str, Any],
    *,
    method: str = "imported",
    fmt: str = "masks",
    dataset: str | None = None,
    source: str | None = None,
) -> Ticket:
    """A ticket from a mapping of 0/1 (or bool) tensors or arrays keyed by parameter name.

    Parameters
    ----------
    model : nn.Module or None
        When given, the names and shapes are checked against it and its ``gt_spec`` recorded.
    masks : mapping
        ``{parameter name: tensor or numpy array of 0/1 or bool}`` — the open_lth ``Mask``
        (int 0/1), a ``torch.nn.utils.prune``-style dict, or arrays of an ``.npz``. Only the
        named parameters are covered (e.g. open_lth leaves the classifier out of its mask
        when it keeps it dense).
    method, dataset, source
        Provenance, as in :func:`from_state_dict`.
    fmt : str
        The format name recorded in ``meta["imported"]``.

    Returns
    -------
    Ticket

    Examples
    --------
    >>> import numpy as np
    >>> t = from_masks(None, {"fc.weight": np.array([[1, 0], [1, 1]])})
    >>> t.density
    0.75
    """
    if not isinstance(masks, Mapping) or not masks:
        raise TicketError("masks must be a non-empty mapping {parameter name: 0/1 tensor}")
    out: dict[str, torch.Tensor] = {}
    for k, v in masks.items():
        if not isinstance(k, str):
            raise TicketError(f"mask keys must be parameter names (str), got {k!r}")
        out[k] = binary(k, as_tensor(k, v))
    if model is not None:
        # parameter names as the ticket keys them (a torch-pruned model's weight_orig -> weight)
        names = [n.removesuffix("_orig") for n, _ in model.named_parameters()]
        out = strip_prefix(out, [*names, *(f"{n}_mask" for n in names)])
        known = set(names)
        out = {k.removesuffix("_mask") if k not in known and k.removesuffix("_mask") in known else k: v
               for k, v in out.items()}
        check_shapes(model, out, "the mask file")
        order = {n: i for i, n in enumerate(names)}
        out = dict(sorted(out.items(), key=lambda kv: order.get(kv[0], len(order))))
    spec = model_spec(model) if model is not None else None
    config: dict[str, Any] = {"method": method, "hparams": {}, "model": spec, "dataset": dataset}
    meta: dict[str, Any] = {"imported": {"format": fmt, **({"source": source} if source else {})}}
    ticket = Ticket(masks=out, method=method, config=config, meta=meta)
    ticket.config["density"] = ticket.density
    return ticket


def to_masks(ticket: Ticket, *, dtype: torch.dtype = torch.bool) -> dict[str, torch.Tensor]:
    """The ticket's masks as a plain dict of tensors (``dtype=torch.int32``: open_lth's 0/1).

    Examples
    --------
    >>> import torch
    >>> t = Ticket({"fc.weight": torch.tensor([True, False])})
    >>> to_masks(t, dtype=torch.int32)["fc.weight"].tolist()
    [1, 0]
    """
    return {n: m.clone().to(dtype) for n, m in ticket.masks.items()}


# ---------------------------------------------------------------------------- files
def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_file(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """The tensors of a ``.pt``/``.pth``/``.bin``/``.ckpt``, ``.npz`` or plain ``.safetensors`` file.

    torch files are read with ``torch.load(weights_only=True)`` only (a file that needs
    pickle, e.g. a whole pickled model, is refused with a message). A checkpoint that nests
    its tensors one level down (``{"state_dict": {...}}``, ``"model_state_dict"``,
    ``"model"``, ``"mask"``, ...) is unwrapped.

    Parameters
    ----------
    path : path-like

    Returns
    -------
    dict[str, torch.Tensor]
    """
    p = Path(path)
    if not p.is_file():
        raise TicketError(f"no file at {str(p)!r}")
    suffix = p.suffix.lower()
    data: Any
    if suffix == ".npz":
        try:
            with np.load(p, allow_pickle=False) as z:
                data = {k: torch.from_numpy(np.ascontiguousarray(z[k])) for k in z.files}
        except ValueError as exc:
            raise TicketError(f"{str(p)!r}: an .npz of masks holds plain arrays only ({exc})") from None
    elif suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            data = load_file(str(p))
        except Exception as exc:  # safetensors' own error types
            raise TicketError(f"{str(p)!r} is not a readable safetensors file: {exc}") from None
    else:
        try:
            data = torch.load(p, map_location="cpu", weights_only=True)
        except Exception as exc:  # pickle.UnpicklingError, RuntimeError of a bad zip, ...
            raise TicketError(
                f"{str(p)!r} cannot be read with torch.load(weights_only=True) ({type(exc).__name__}); "
                f"save a state dict or a dict of mask tensors (torch.save(model.state_dict(), ...)), "
                f"not a pickled model"
            ) from None
    if isinstance(data, Mapping) and not any(isinstance(v, (torch.Tensor, np.ndarray)) for v in data.values()):
        nested = [k for k in _NESTED_KEYS if isinstance(data.get(k), Mapping)]
        if nested:
            data = data[nested[0]]
    if not isinstance(data, Mapping):
        raise TicketError(f"{str(p)!r} holds a {type(data).__name__}, not a dict of tensors")
    tensors = {str(k): v for k, v in data.items() if isinstance(v, (torch.Tensor, np.ndarray))}
    if not tensors:
        raise TicketError(f"{str(p)!r} holds no tensors")
    return {k: as_tensor(k, v) for k, v in tensors.items()}


def load(
    path: str | os.PathLike[str],
    model: nn.Module | None = None,
    *,
    method: str = "imported",
    kind: Literal["auto", "state_dict", "masks"] = "auto",
    params: Iterable[str] | None = None,
    weights: bool = False,
    dataset: str | None = None,
) -> Ticket:
    """Read a ticket from another tool's file.

    Parameters
    ----------
    path : path-like
        A graphtickets ticket (``.safetensors`` with ticket metadata; returned as is), a torch
        file (``.pt``, ``.pth``, ``.bin``, ``.ckpt``; ``torch.load(weights_only=True)``), an
        ``.npz``, or a plain ``.safetensors`` of tensors.
    model : nn.Module, optional
        The architecture. Needed for a state dict (to know what is prunable); for masks, the
        names and shapes are checked against it.
    method : str, default "imported"
        The ticket's method name.
    kind : {"auto", "state_dict", "masks"}
        ``auto``: masks when every tensor that names a prunable parameter holds only 0 and 1
        (or is bool), else a state dict of weights.
    params, weights, dataset
        As in :func:`from_state_dict`.

    Returns
    -------
    Ticket
        ``meta["imported"]`` records the format, the file name and its sha256.
    """
    p = Path(path)
    if p.suffix.lower() == ".safetensors" and p.is_file():
        from safetensors import safe_open

        try:
            with safe_open(str(p), framework="pt") as f:
                is_ticket = "graphtickets" in (f.metadata() or {})
        except Exception:  # noqa: BLE001 - read_file below gives the message
            is_ticket = False
        if is_ticket:
            t = Ticket.load(p)
            if model is not None:
                t.check(model)
            return t
    tensors = read_file(p)
    extra = {"source": p.name, "sha256": _sha256(p)}
    if kind not in ("auto", "state_dict", "masks"):
        raise TicketError(f"kind must be 'auto', 'state_dict' or 'masks', got {kind!r}")
    if kind == "auto":
        names = set(prunable(model)) if model is not None else set(tensors)
        relevant = [v for k, v in tensors.items() if k in names or k.removeprefix("module.") in names
                    or k.endswith("_mask")]
        if any(k.endswith("_orig") for k in tensors):
            kind = "state_dict"
        else:
            kind = "masks" if relevant and all(looks_binary(v) for v in relevant) else "state_dict"
    if kind == "masks":
        t = from_masks(model, tensors, method=method, fmt=f"masks{p.suffix.lower()}", dataset=dataset, source=p.name)
    else:
        if model is None:
            raise TicketError(
                f"{str(p)!r} holds weights (a state dict); reading it needs the model "
                f"(CLI: --model NAME --dataset NAME or --in-shape/--num-classes)"
            )
        t = from_state_dict(model, tensors, method=method, params=params, weights=weights, dataset=dataset,
                            source=p.name)
    t.meta["imported"].update(extra)
    return t


def save(
    ticket: Ticket,
    path: str | os.PathLike[str],
    *,
    format: str = "masks",
    model: nn.Module | None = None,
    with_masks: bool = False,
) -> Path:
    """Write a ticket for another tool.

    Parameters
    ----------
    ticket : Ticket
    path : path-like
        The file; ``.safetensors`` writes plain safetensors, ``.npz`` numpy, anything else
        ``torch.save`` (readable with ``torch.load(weights_only=True)``).
    format : {"masks", "open_lth", "state_dict", "npz", "ticket"}
        ``masks``: bool tensors keyed by parameter name; ``open_lth``: the same as int32 0/1
        (open_lth's ``mask.pth``); ``state_dict``: :func:`to_state_dict` of ``model`` (the
        ticket's own model, rebuilt from its spec, when ``model`` is None); ``npz``: bool
        arrays; ``ticket``: a graphtickets ticket file.
    model : nn.Module, optional
        For ``state_dict``.
    with_masks : bool
        For ``state_dict``: also write ``<name>_mask`` entries.

    Returns
    -------
    pathlib.Path
    """
    p = Path(path)
    if p.is_dir():
        raise TicketError(f"{str(p)!r} is a directory; give a file name")
    if format not in FORMATS:
        raise TicketError(f"unknown export format {format!r}; one of {', '.join(FORMATS)}")
    if format == "ticket":
        return ticket.save(p)
    p.parent.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor]
    if format == "state_dict":
        if model is None:
            if not ticket.config.get("model"):
                raise TicketError("the ticket records no model spec; pass the model to write a state dict")
            from graphtickets import models

            model = models.build_from_spec(ticket.config["model"])
        tensors = to_state_dict(ticket, model, masks=with_masks)
    elif format == "open_lth":
        tensors = to_masks(ticket, dtype=torch.int32)
    else:
        tensors = to_masks(ticket)
    if format == "npz" or p.suffix.lower() == ".npz":
        arrays = {k: v.numpy() for k, v in tensors.items()}
        # as np.savez does with a file name: .npz appended to a name without it
        q = p if p.suffix.lower() == ".npz" else p.with_name(p.name + ".npz")
        write_output(q, lambda fh: np.savez(fh, **arrays), what="exported ticket")  # type: ignore[arg-type]
        return q
    if p.suffix.lower() == ".safetensors":
        from safetensors.torch import save

        write_output(p, save({k: v.contiguous() for k, v in tensors.items()}), what="exported ticket")
        return p
    write_output(p, lambda fh: torch.save(tensors, fh), what="exported ticket")
    return p


# ---------------------------------------------------------------------------- the study hook
def imported_ticket(
    path: str | os.PathLike[str],
    model: nn.Module,
    *,
    method: str = "imported",
    density: float | None = None,
    tolerance: float = 0.0,
    kind: Literal["auto", "state_dict", "masks"] = "auto",
    dataset: str | None = None,
) -> Ticket:
    """The ticket a study cell of an imported "method" uses: ``path`` read for ``model``.

    The study calls this where it would call ``gt.pruning.prune`` for a method entry that
    names a file instead of a method (see the report of issue 19). The ticket must cover
    exactly the model's prunable parameters, so that it is compared with the built-in
    methods' tickets weight for weight; with ``density`` given, its density must be within
    ``tolerance`` of it (one weight's worth when ``tolerance=0``).

    Parameters
    ----------
    path : path-like
        Any file :func:`load` reads.
    model : nn.Module
        The cell's model (built from the cell's model spec and seed).
    method : str
        The name the study gives the imported ticket (its "method" column).
    density : float, optional
        The cell's density.
    tolerance : float
        Allowed ``|ticket.density - density|`` beyond one weight.
    kind, dataset
        As in :func:`load`.

    Returns
    -------
    Ticket
        With ``method`` set and ``config["model"]`` the model's spec.
    """
    t = load(path, model, method=method, kind=kind, dataset=dataset)
    want = set(prunable(model))
    if set(t.masks) != want:
        missing, extra = sorted(want - set(t.masks)), sorted(set(t.masks) - want)
        raise TicketError(
            f"{str(path)!r} covers other parameters than the model's prunable ones "
            f"(missing {missing[:4]}, extra {extra[:4]}); imported tickets in a study must mask "
            f"exactly gt.prunable(model)"
        )
    if density is not None and abs(t.density - float(density)) > tolerance + 1.0 / t.total:
        raise TicketError(
            f"{str(path)!r} has density {t.density:.6g} but the study cell asks for {float(density):g}; "
            f"list the file under the density it has"
        )
    t.method = method
    t.config["method"] = method
    t.config["model"] = model_spec(model)
    if density is not None:
        t.config["density"] = float(density)
    return t
