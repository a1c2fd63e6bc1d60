"""What a mask is and how masks convert, on plain tensors (no :class:`~graphtickets.ticket.Ticket`).

- which parameters a mask covers (:func:`prunable`) and the checks of a mask
  (:func:`check_mask_tensor`, :func:`mask_mismatch`);
- the conversion core of the foreign ticket formats: masks read from a sparse state dict
  (:func:`state_dict_fields`) and written into one (:func:`masked_state_dict`), masks applied
  with and read back from ``torch.nn.utils.prune`` (:func:`apply_torch_prune`,
  :func:`torch_prune_masks`), and the tensor helpers the mask files share.

The public face of these conversions is :mod:`graphtickets.interop` (every foreign ticket
format, documented there); the :class:`~graphtickets.ticket.Ticket` shortcuts
(``Ticket.from_state_dict``, ``t.to_state_dict``, ``t.to_torch_prune``,
``Ticket.from_torch_prune``) call this module too, so that neither ``ticket`` nor ``interop``
imports the other's way round: ``ticket`` imports this module, ``interop`` imports both.

It sits at the bottom of the package (layer 0): it imports only torch, numpy and
:mod:`graphtickets.errors`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from graphtickets.errors import TicketError

__all__ = [
    "model_spec",
    "strip_prefix",
    "as_tensor",
    "binary",
    "looks_binary",
    "check_shapes",
    "provenance",
    "prunable",
    "check_mask_tensor",
    "mask_mismatch",
    "state_dict_fields",
    "masked_state_dict",
    "apply_torch_prune",
    "torch_prune_masks",
]


# ---------------------------------------------------------------------------- what a mask is
_PRUNABLE_TYPES: tuple[type[nn.Module], ...] = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def prunable(
    model: nn.Module,
    *,
    include_bias: bool = False,
    exclude: Iterable[str] = (),
    keep_classifier_dense: bool = False,
) -> dict[str, nn.Parameter]:
    """Return the prunable parameters of ``model``, keyed by ``named_parameters()`` names.

    By default these are the weights of ``Linear`` and ``Conv1d/2d/3d`` modules, never
    biases or normalisation layers.

    Parameters
    ----------
    model : nn.Module
        The network.
    include_bias : bool, default False
        Also return the biases of those modules.
    exclude : iterable of str
        Parameter names (or module names) to leave out.
    keep_classifier_dense : bool, default False
        Leave out the last prunable module (the classifier), as open_lth does.

    Returns
    -------
    dict[str, nn.Parameter]
        In the order of ``model.named_parameters()``.

    Examples
    --------
    >>> from torch import nn
    >>> sorted(prunable(nn.Sequential(nn.Linear(3, 2), nn.ReLU(), nn.Linear(2, 1))))
    ['0.weight', '2.weight']
    """
    excluded = set(exclude)
    modules = [(n, m) for n, m in model.named_modules() if isinstance(m, _PRUNABLE_TYPES)]
    if keep_classifier_dense and modules:
        excluded.add(modules[-1][0])
    out: dict[str, nn.Parameter] = {}
    for mname, module in modules:
        if mname in excluded:
            continue
        for pname in ("weight", "bias") if include_bias else ("weight",):
            p = getattr(module, pname, None)
            full = f"{mname}.{pname}" if mname else pname
            if isinstance(p, nn.Parameter) and full not in excluded:
                out[full] = p
    order = {n: i for i, (n, _) in enumerate(model.named_parameters())}
    missing = [n for n in out if n not in order]
    if missing:  # parametrized / pruned modules expose weight_orig instead
        for n in missing:
            base = n.rsplit(".", 1)
            alt = f"{base[0]}.{base[1]}_orig" if len(base) == 2 else f"{n}_orig"
            if alt not in order:
                raise TicketError(f"parameter {n!r} is not a named parameter of the model")
        return out
    return dict(sorted(out.items(), key=lambda kv: order[kv[0]]))


def check_mask_tensor(name: Any, mask: Any) -> None:
    """Raise :class:`TicketError` unless ``mask`` is a ``torch.bool`` tensor (``name``: its key).

    The one check of a mask's type, shared by :class:`Ticket` and the trainers.

    Examples
    --------
    >>> check_mask_tensor("fc.weight", torch.ones(2, dtype=torch.bool))
    >>> check_mask_tensor("fc.weight", torch.ones(2))
    Traceback (most recent call last):
    ...
    graphtickets.errors.TicketError: mask 'fc.weight' has dtype torch.float32; masks must be torch.bool (convert with mask.bool() if it holds only 0/1)
    """
    if not isinstance(mask, torch.Tensor):
        raise TicketError(f"mask {name!r} must be a torch.bool tensor, got {type(mask).__name__}")
    if mask.dtype != torch.bool:
        raise TicketError(
            f"mask {name!r} has dtype {mask.dtype}; masks must be torch.bool "
            f"(convert with mask.bool() if it holds only 0/1)"
        )


def mask_mismatch(
    model: nn.Module, masks: Mapping[str, torch.Tensor]
) -> tuple[list[str], tuple[str, tuple[int, ...], tuple[int, ...]] | None]:
    """How ``masks`` fail to fit ``model``: the names that match no parameter, and the first
    mask whose shape is not its parameter's, as ``(name, mask shape, parameter shape)``.

    A mask named ``n`` matches parameter ``n``, or ``n_orig`` on a model pruned with
    ``torch.nn.utils.prune``. Shapes are compared only when every name matches. Callers word
    the error for their context (a ticket, a file, a training call).

    Examples
    --------
    >>> from torch import nn
    >>> mask_mismatch(nn.Linear(2, 3), {"weight": torch.ones(3, 2, dtype=torch.bool)})
    ([], None)
    >>> mask_mismatch(nn.Linear(2, 3), {"weight": torch.ones(2, 2, dtype=torch.bool), "w": torch.ones(1)})
    (['w'], None)
    >>> mask_mismatch(nn.Linear(2, 3), {"weight": torch.ones(2, 2, dtype=torch.bool)})
    ([], ('weight', (2, 2), (3, 2)))
    """
    params = dict(model.named_parameters())
    unknown = [n for n in masks if n not in params and f"{n}_orig" not in params]
    if unknown:
        return unknown, None
    for n, m in masks.items():
        p = params.get(n, params.get(f"{n}_orig"))
        assert p is not None
        if tuple(m.shape) != tuple(p.shape):
            return [], (n, tuple(m.shape), tuple(p.shape))
    return [], None


# ---------------------------------------------------------------------------- tensor helpers
def model_spec(model: nn.Module) -> Any:
    """The model's ``gt_spec`` (set by :func:`graphtickets.models.build`), or None."""
    return getattr(model, "gt_spec", None)


def strip_prefix(d: Mapping[str, Any], names: Iterable[str]) -> dict[str, Any]:
    """``d`` with a ``module.`` prefix (``DataParallel``/DDP checkpoints) removed when that makes
    its keys match ``names``."""
    out = dict(d)
    wanted = set(names)
    if out and not (wanted & set(out)) and all(k.startswith("module.") for k in out):
        out = {k[len("module."):]: v for k, v in out.items()}
    return out


def as_tensor(name: str, v: Any) -> torch.Tensor:
    """A tensor or numpy array entry ``name`` as a CPU tensor; anything else is an error."""
    if isinstance(v, torch.Tensor):
        return v.detach().to("cpu")
    if isinstance(v, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(v))
    raise TicketError(f"entry {name!r} is a {type(v).__name__}, not a tensor or array")


def binary(name: str, v: torch.Tensor) -> torch.Tensor:
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


def looks_binary(v: torch.Tensor) -> bool:
    """Whether ``v`` is bool or holds only 0 and 1."""
    if v.dtype == torch.bool:
        return True
    if v.is_complex():
        return False
    return bool(((v == 0) | (v == 1)).all())


def check_shapes(model: nn.Module, masks: Mapping[str, torch.Tensor], where: str) -> None:
    """Raise :class:`TicketError` unless ``masks`` (read from ``where``) fit ``model``'s parameters."""
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


def provenance(model: nn.Module, method: str, fmt: str, source: str | None, **extra: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``config`` and ``meta`` of an imported ticket: its method, model spec, and how it was read."""
    config: dict[str, Any] = {"method": method, "hparams": {}, "model": model_spec(model), "dataset": None}
    meta: dict[str, Any] = {"imported": {"format": fmt, **({"source": source} if source else {}), **extra}}
    return config, meta


# ---------------------------------------------------------------------------- state dicts
def _state_dict_masks(model: nn.Module, state_dict: Any, params: Iterable[str] | None
                      ) -> tuple[dict[str, torch.Tensor], int, dict[str, Any]]:
    """The masks a checkpoint gives (``<name>_mask`` entries, else the zero rule), how many
    came from explicit masks, and the checkpoint without a ``module.`` prefix."""
    if not isinstance(state_dict, Mapping):
        raise TicketError(f"a state dict is a mapping of parameter names to tensors, got {type(state_dict).__name__}")
    names = list(params) if params is not None else list(prunable(model))
    if not names:
        raise TicketError("the model has no prunable parameters (Linear/Conv weights); pass params=[...]")
    sd = strip_prefix(state_dict, [*names, *(f"{n}_orig" for n in names)])
    masks: dict[str, torch.Tensor] = {}
    explicit = 0
    for n in names:
        if f"{n}_mask" in sd:
            masks[n] = binary(f"{n}_mask", as_tensor(n, sd[f"{n}_mask"]))
            explicit += 1
        elif n in sd:
            masks[n] = as_tensor(n, sd[n]) != 0
        elif f"{n}_orig" in sd:
            raise TicketError(f"the checkpoint has {n}_orig but no {n}_mask; cannot tell which weights were pruned")
        else:
            have = ", ".join(list(sd)[:8])
            raise TicketError(
                f"the checkpoint has no entry {n!r} (a prunable parameter of the model); it has "
                f"[{have}, ...] — pass params=[...] to read fewer parameters, or the matching model"
            )
    check_shapes(model, masks, "the checkpoint")
    return masks, explicit, sd


def _state_dict_weights(model: nn.Module, sd: Mapping[str, Any], masks: Mapping[str, torch.Tensor]
                        ) -> dict[str, torch.Tensor]:
    """The checkpoint's values the model has (``<name>_orig`` read as ``<name>``, masked)."""
    own = {**dict(model.named_parameters()), **dict(model.named_buffers())}
    kept_weights: dict[str, torch.Tensor] = {}
    for k, v in sd.items():
        if k.endswith("_mask") and k[: -len("_mask")] in masks:
            continue
        key = k[: -len("_orig")] if k.endswith("_orig") and k[: -len("_orig")] in masks else k
        if key in own or f"{key}_orig" in own:
            t = as_tensor(k, v).clone()
            if key in masks and k.endswith("_orig"):
                t = t * masks[key].to(t.dtype)
            kept_weights[key] = t
    return kept_weights


def state_dict_fields(
    model: nn.Module,
    state_dict: Mapping[str, Any],
    *,
    method: str = "imported",
    params: Iterable[str] | None = None,
    weights: bool = False,
    dataset: str | None = None,
    source: str | None = None,
) -> dict[str, Any]:
    """The fields of the ticket a sparse checkpoint holds: ``Ticket(**fields)``.

    The rules (a prunable weight stored as exactly zero is pruned; ``<name>_mask`` entries
    win) and the arguments are those of :func:`graphtickets.interop.from_state_dict`.
    """
    masks, explicit, sd = _state_dict_masks(model, state_dict, params)
    kept_weights = _state_dict_weights(model, sd, masks) if weights else None
    if sum(int(m.count_nonzero()) for m in masks.values()) == 0:
        raise TicketError("every prunable weight of the checkpoint is zero: it holds no ticket")
    config, meta = provenance(
        model, method, "state_dict", source,
        rule="explicit <name>_mask" if explicit == len(masks) else "zero = pruned",
    )
    config["dataset"] = dataset
    return {"masks": masks, "method": method, "config": config, "meta": meta, "weights": kept_weights}


@torch.no_grad()
def masked_state_dict(model: nn.Module, masks: Mapping[str, torch.Tensor],
                      weights: Mapping[str, torch.Tensor] | None, *, with_masks: bool = False) -> dict[str, torch.Tensor]:
    """``model.state_dict()`` with ``weights`` (when given) written in and ``masks`` applied, as
    CPU copies (``model`` is not changed); ``with_masks`` adds bool ``<name>_mask`` entries.

    The masks must fit the model (the caller checks); see
    :func:`graphtickets.interop.to_state_dict` for the rules.
    """
    if any(n.endswith("_orig") for n, _ in model.named_parameters()):
        raise TicketError(
            "the model is wrapped by torch.nn.utils.prune (it has *_orig parameters); call "
            "torch.nn.utils.prune.remove on its modules first, or use its own state_dict()"
        )
    sd = {k: v.detach().to("cpu").clone() for k, v in model.state_dict().items()}
    if weights is not None:
        for n, w in weights.items():
            if n in sd:
                sd[n] = w.detach().to("cpu").to(sd[n].dtype).clone()
    for n, m in masks.items():
        w = sd[n]
        if not with_masks:
            zero_kept = m & (w == 0)
            if bool(zero_kept.any()):
                raise TicketError(
                    f"{int(zero_kept.sum())} kept weight(s) of {n!r} are exactly zero and would read "
                    f"back as pruned; write the masks too (masks=True, CLI --with-masks)"
                )
        sd[n] = w * m.to(w.dtype)
        if with_masks:
            sd[f"{n}_mask"] = m.clone()
    return sd


# ---------------------------------------------------------------------------- torch.nn.utils.prune
def apply_torch_prune(model: nn.Module, masks: Mapping[str, torch.Tensor]) -> nn.Module:
    """Apply ``masks`` with ``torch.nn.utils.prune.custom_from_mask`` (``weight_orig``/``weight_mask``)."""
    from torch.nn.utils import prune as tprune

    modules = dict(model.named_modules())
    for n, m in masks.items():
        mod_name, _, pname = n.rpartition(".")
        module = modules[mod_name]
        tprune.custom_from_mask(module, pname, mask=m.to(getattr(module, pname).device))
    return model


def torch_prune_masks(model: nn.Module) -> dict[str, torch.Tensor]:
    """The masks of a model pruned with ``torch.nn.utils.prune`` (its ``*_mask`` buffers)."""
    masks: dict[str, torch.Tensor] = {}
    for name, buf in model.named_buffers():
        if name.endswith("_mask"):
            masks[name[: -len("_mask")]] = buf.detach().bool().cpu().clone()
    if not masks:
        raise TicketError(
            "the model has no '*_mask' buffers: it was not pruned with torch.nn.utils.prune"
        )
    return masks
