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

:func:`load` reads any of these (or a graphtickets ticket file) and :func:`save` writes one;
the ``graphtickets import`` and ``graphtickets export`` commands call them.

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

from graphtickets.errors import TicketError
from graphtickets.ticket import Ticket, mask_mismatch, prunable

__all__ = [
    "from_state_dict",
    "to_state_dict",
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


# ---------------------------------------------------------------------------- helpers
def _model_spec(model: nn.Module) -> Any:
    return getattr(model, "gt_spec", None)


def _strip_prefix(d: Mapping[str, Any], names: Iterable[str]) -> dict[str, Any]:
    """``d`` with a ``module.`` prefix (``DataParallel``/DDP checkpoints) removed when that makes
    its keys match ``names``."""
    out = dict(d)
    wanted = set(names)
    if out and not (wanted & set(out)) and all(k.startswith("module.") for k in out):
        out = {k[len("module."):]: v for k, v in out.items()}
    return out


def _as_tensor(name: str, v: Any) -> torch.Tensor:
    if isinstance(v, torch.Tensor):
        return v.detach().to("cpu")
    if isinstance(v, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(v))
    raise TicketError(f"entry {name!r} is a {type(v).__name__}, not a tensor or array")


def _binary(name: str, v: torch.Tensor) -> torch.Tensor:
    """A 0/1 (or bool) tensor as ``torch.bool``; anything else is an error."""
    if v.dtype == torch.bool:
        return v.clone()
    if v.is_floating_point() or v.dtype in (torch.int8, torch.uint8, torch.int16, torch.int32, torch.int64):
        ok = (v == 0) | (v == 1)
        if not bool(ok.all()):
            raise TicketError(
                f"mask {name!r} holds values other than 0 and 1; a mask file holds 0/1 or bool "
                f"tensors (is this a checkpoint of weights? read it with from_state_dict)"
            )
        return v != 0
    raise TicketError(f"mask {name!r} has dtype {v.dtype}; masks are bool or 0/1 tensors")


def _looks_binary(v: torch.Tensor) -> bool:
    """Whether ``v`` is bool or holds only 0 and 1."""
    if v.dtype == torch.bool:
        return True
    if v.is_complex():
        return False
    return bool(((v == 0) | (v == 1)).all())


def _check_shapes(model: nn.Module, masks: Mapping[str, torch.Tensor], where: str) -> None:
    unknown, bad_shape = mask_mismatch(model, masks)
    if unknown:
        have = ", ".join(list(dict(model.named_parameters()))[:8])
        raise TicketError(
            f"{where} names parameters the model does not have: {unknown[:5]}; the model's "
            f"parameters are [{have}, ...] — build the model the file was saved from, or rename "
            f"its keys"
        )
    if bad_shape is not None:
        n, mask_shape, param_shape = bad_shape
        raise TicketError(
            f"{where}: {n!r} has shape {mask_shape} but the model's parameter has "
            f"{param_shape} — the file belongs to a model of other widths"
        )


def _provenance(model: nn.Module, method: str, fmt: str, source: str | None, **extra: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    config: dict[str, Any] = {"method": method, "hparams": {}, "model": _model_spec(model), "dataset": None}
    meta: dict[str, Any] = {"imported": {"format": fmt, **({"source": source} if source else {}), **extra}}
    return config, meta


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
    if not isinstance(state_dict, Mapping):
        raise TicketError(f"a state dict is a mapping of parameter names to tensors, got {type(state_dict).__name__}")
    names = list(params) if params is not None else list(prunable(model))
    if not names:
        raise TicketError("the model has no prunable parameters (Linear/Conv weights); pass params=[...]")
    sd = _strip_prefix(state_dict, [*names, *(f"{n}_orig" for n in names)])
    masks: dict[str, torch.Tensor] = {}
    explicit = 0
    for n in names:
        if f"{n}_mask" in sd:
            masks[n] = _binary(f"{n}_mask", _as_tensor(n, sd[f"{n}_mask"]))
            explicit += 1
        elif n in sd:
            masks[n] = _as_tensor(n, sd[n]) != 0
        elif f"{n}_orig" in sd:
            raise TicketError(f"the checkpoint has {n}_orig but no {n}_mask; cannot tell which weights were pruned")
        else:
            have = ", ".join(list(sd)[:8])
            raise TicketError(
                f"the checkpoint has no entry {n!r} (a prunable parameter of the model); it has "
                f"[{have}, ...] — pass params=[...] to read fewer parameters, or the matching model"
            )
    _check_shapes(model, masks, "the checkpoint")
    kept_weights: dict[str, torch.Tensor] | None = None
    if weights:
        own = {**dict(model.named_parameters()), **dict(model.named_buffers())}
        kept_weights = {}
        for k, v in sd.items():
            if k.endswith("_mask") and k[: -len("_mask")] in masks:
                continue
            key = k[: -len("_orig")] if k.endswith("_orig") and k[: -len("_orig")] in masks else k
            if key in own or f"{key}_orig" in own:
                t = _as_tensor(k, v).clone()
                if key in masks and k.endswith("_orig"):
                    t = t * masks[key].to(t.dtype)
                kept_weights[key] = t
    if sum(int(m.count_nonzero()) for m in masks.values()) == 0:
        raise TicketError("every prunable weight of the checkpoint is zero: it holds no ticket")
    config, meta = _provenance(
        model, method, "state_dict", source,
        rule="explicit <name>_mask" if explicit == len(masks) else "zero = pruned",
    )
    config["dataset"] = dataset
    ticket = Ticket(masks=masks, method=method, config=config, meta=meta, weights=kept_weights)
    ticket.config["density"] = ticket.density
    return ticket


@torch.no_grad()
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
    ticket.check(model)
    if any(n.endswith("_orig") for n, _ in model.named_parameters()):
        raise TicketError(
            "the model is wrapped by torch.nn.utils.prune (it has *_orig parameters); call "
            "torch.nn.utils.prune.remove on its modules first, or use its own state_dict()"
        )
    sd = {k: v.detach().to("cpu").clone() for k, v in model.state_dict().items()}
    if ticket.weights is not None:
        for n, w in ticket.weights.items():
            if n in sd:
                sd[n] = w.detach().to("cpu").to(sd[n].dtype).clone()
    for n, m in ticket.masks.items():
        w = sd[n]
        if not masks:
            zero_kept = m & (w == 0)
            if bool(zero_kept.any()):
                raise TicketError(
                    f"{int(zero_kept.sum())} kept weight(s) of {n!r} are exactly zero and would read "
                    f"back as pruned; write the masks too (masks=True, CLI --with-masks)"
                )
        sd[n] = w * m.to(w.dtype)
        if masks:
            sd[f"{n}_mask"] = m.clone()
    return sd


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
        out[k] = _binary(k, _as_tensor(k, v))
    if model is not None:
        # parameter names as the ticket keys them (a torch-pruned model's weight_orig -> weight)
        names = [n.removesuffix("_orig") for n, _ in model.named_parameters()]
        out = _strip_prefix(out, [*names, *(f"{n}_mask" for n in names)])
        known = set(names)
        out = {k.removesuffix("_mask") if k not in known and k.removesuffix("_mask") in known else k: v
               for k, v in out.items()}
        _check_shapes(model, out, "the mask file")
        order = {n: i for i, n in enumerate(names)}
        out = dict(sorted(out.items(), key=lambda kv: order.get(kv[0], len(order))))
    spec = _model_spec(model) if model is not None else None
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
    return {k: _as_tensor(k, v) for k, v in tensors.items()}


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
            kind = "masks" if relevant and all(_looks_binary(v) for v in relevant) else "state_dict"
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
        np.savez(p, **{k: v.numpy() for k, v in tensors.items()})  # type: ignore[arg-type]
        # np.savez appends .npz to a name without it
        return p if p.suffix.lower() == ".npz" else p.with_name(p.name + ".npz")
    if p.suffix.lower() == ".safetensors":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in tensors.items()}, str(p))
        return p
    torch.save(tensors, p)
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
    t.config["model"] = _model_spec(model)
    if density is not None:
        t.config["density"] = float(density)
    return t
