"""The Ticket: boolean masks keyed by parameter name, with provenance.

A :class:`Ticket` is the one object every method produces and every analysis consumes.
It holds ``masks`` (``{parameter name: torch.bool tensor}``), the ``method`` that found it,
its ``config`` (hyperparameters, seed, model spec, dataset) and ``meta`` (what the search
cost, what it found on the way, the package version). Optionally it carries ``weights``
(for instance the rewound weights of an IMP ticket).

Files are safetensors: the masks (and weights) as tensors, the provenance as JSON in the
metadata, and a sha256 of the whole file (tensors *and* description: method, config, model
spec, meta) that :meth:`Ticket.load` verifies. Never pickle. A ticket file alone is enough
to rebuild its model (:meth:`Ticket.build_model`).

File format ``graphtickets.ticket/2`` (written since 0.x; ``/1`` files are still read, marked
unverified): a plain safetensors file whose header is canonical JSON (sorted keys, no spaces,
tensors in name order, padded with spaces to 8 bytes), metadata ``graphtickets`` (the
provenance, canonical JSON) and ``graphtickets.sha256``: the sha256 of the file's bytes with
that digest's 64 hex digits written as ``0``. Wall-clock timings (meta keys ``seconds`` and
``*_seconds``) are not written, so the same command and seed give a byte-identical file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import numbers
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from graphtickets._io import OutputError, output_kind, write_output
from graphtickets._json import canonical_json, plain
from graphtickets._masks import (
    apply_torch_prune,
    check_mask_tensor,
    mask_mismatch,
    masked_state_dict,
    prunable,
    state_dict_fields,
    torch_prune_masks,
)
from graphtickets._version import __version__
from graphtickets.errors import TicketError

__all__ = ["Ticket", "prunable", "check_density", "check_mask_tensor", "mask_mismatch", "FORMAT", "file_digest",
           "recorded_digest"]

log = logging.getLogger("graphtickets")

#: The ticket file format written by :meth:`Ticket.save` (its provenance's ``format``).
FORMAT = "graphtickets.ticket/2"
#: Older formats :meth:`Ticket.load` still reads (marked unverified: their description has no hash).
OLD_FORMATS = ("graphtickets.ticket/1",)
_WEIGHT_PREFIX = "weight::"
_MASK_PREFIX = "mask::"
#: Metadata key of the sha256 of the whole file (format 2), checked by ``load``.
_FILE_DIGEST = "graphtickets.sha256"
_ZERO_DIGEST = "0" * 64
#: Format 1: metadata keys of the sha256 digests of the mask (and weight) bytes.
_MASKS_DIGEST = "graphtickets.masks_sha256"
_WEIGHTS_DIGEST = "graphtickets.weights_sha256"
_DTYPES: dict[torch.dtype, str] = {
    torch.bool: "BOOL", torch.uint8: "U8", torch.int8: "I8", torch.int16: "I16", torch.int32: "I32",
    torch.int64: "I64", torch.float16: "F16", torch.bfloat16: "BF16", torch.float32: "F32",
    torch.float64: "F64",
}  # fmt: skip

def check_density(density: float, name: str = "density") -> float:
    """Validate a density (the fraction of weights KEPT): a number in (0, 1].

    Strict: ``True``, ``"0.1"`` and tensors are refused (write ``0.1``, or ``float(t)``).

    >>> check_density(0.25)
    0.25
    """
    if isinstance(density, bool) or not isinstance(density, numbers.Real):
        raise TicketError(
            f"{name} must be a number in (0, 1] (a float such as 0.05), got {type(density).__name__} {density!r}"
        )
    d = float(density)
    if not (0.0 < d <= 1.0) or math.isnan(d):
        hint = " (did you mean sparsity? density is the fraction kept)" if d > 1.0 or d == 0 else ""
        raise TicketError(f"{name} must be in (0, 1], got {density!r}{hint}")
    return d


def _digest(tensors: Mapping[str, torch.Tensor]) -> str:
    """sha256 over the names, shapes, dtypes and raw bytes of ``tensors`` (in name order)."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().to("cpu").contiguous()
        h.update(f"{name}\0{tuple(t.shape)}\0{t.dtype}\0".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()



def _is_timing(key: str) -> bool:
    return key == "seconds" or key.endswith("_seconds")


def _strip_timings(obj: Any) -> Any:
    """``obj`` without wall-clock timings: mapping keys ``seconds`` and ``*_seconds``, at any depth."""
    if isinstance(obj, Mapping):
        return {k: _strip_timings(v) for k, v in obj.items() if not _is_timing(str(k))}
    if isinstance(obj, list):
        return [_strip_timings(v) for v in obj]
    return obj


def _header_bytes(header: Mapping[str, Any]) -> bytes:
    """The canonical safetensors header: sorted compact JSON, padded with spaces to 8 bytes."""
    raw = canonical_json(header).encode()
    return raw + b" " * (-(8 + len(raw)) % 8)


def _tensor_bytes(t: torch.Tensor) -> memoryview:
    flat = t.detach().to("cpu").contiguous().reshape(-1)
    return flat.view(torch.uint8).numpy().data if flat.numel() else memoryview(b"")


def _layout(tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, str]) -> dict[str, Any]:
    header: dict[str, Any] = {"__metadata__": dict(metadata)}
    offset = 0
    for name in sorted(tensors):
        t = tensors[name]
        if t.dtype not in _DTYPES:
            raise TicketError(f"tensor {name!r} has dtype {t.dtype}, which a ticket file cannot hold")
        size = t.numel() * t.element_size()
        header[name] = {"dtype": _DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + size]}
        offset += size
    return header


def file_digest(header: Mapping[str, Any], data: Iterable[bytes | memoryview]) -> str:
    """The sha256 a format-2 ticket file records: of its bytes, with the digest itself as 64 ``0``.

    Parameters
    ----------
    header : mapping
        The safetensors header (``__metadata__`` included).
    data : iterable of bytes
        The tensor data, in file order.

    Returns
    -------
    str
        64 hex digits.
    """
    zeroed = dict(header)
    zeroed["__metadata__"] = {**header.get("__metadata__", {}), _FILE_DIGEST: _ZERO_DIGEST}
    hb = _header_bytes(zeroed)
    h = hashlib.sha256(len(hb).to_bytes(8, "little"))
    h.update(hb)
    for chunk in data:
        h.update(chunk)
    return h.hexdigest()


@dataclass
class Ticket:
    """A sparse subnetwork: boolean masks keyed by parameter name, with provenance.

    Parameters
    ----------
    masks : dict[str, torch.Tensor]
        ``torch.bool`` tensors keyed by ``model.named_parameters()`` names. ``True`` = kept.
    method : str
        Name of the method that found the ticket (a key of ``gt.pruning.METHODS``).
    config : dict
        What was asked for: ``hparams``, ``seed``, ``density``, ``model`` (the spec that
        ``gt.models.build`` takes: ``name``, ``in_shape``, ``num_classes``, ``seed``, kwargs),
        ``dataset``.
    meta : dict
        What happened: ``cost`` (``seconds``, ``epochs``, ``iterations``), results found on
        the way, ``version`` of graphtickets.
    weights : dict[str, torch.Tensor], optional
        Weights that go with the masks (e.g. rewound weights); ``None`` means the model's
        own initialisation (rebuilt from the spec).
    verified : bool or None
        Set by :meth:`load`: ``True`` when the file's sha256 (covering masks, weights and the
        whole description) matched; ``False`` when it was read without that proof (an old
        format, or ``verify=False``; ``verify_note`` says why); ``None`` for a ticket made in
        memory.

    Examples
    --------
    >>> import torch
    >>> t = Ticket({"fc.weight": torch.tensor([[True, False], [True, True]])}, method="manual")
    >>> t.density, t.sparsity
    (0.75, 0.25)
    """

    masks: dict[str, torch.Tensor]
    method: str = "manual"
    config: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    weights: dict[str, torch.Tensor] | None = None
    verified: bool | None = field(default=None, kw_only=True, compare=False)
    verify_note: str = field(default="", kw_only=True, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.masks, Mapping) or not self.masks:
            raise TicketError("a Ticket needs a non-empty dict of masks {parameter name: bool tensor}")
        clean: dict[str, torch.Tensor] = {}
        for name, m in self.masks.items():
            if not isinstance(name, str):
                raise TicketError(f"mask keys must be parameter names (str), got {name!r}")
            check_mask_tensor(name, m)
            clean[name] = m.detach().to("cpu")
        self.masks = clean
        if self.weights is not None:
            missing = set(self.masks) - set(self.weights)
            if missing:
                raise TicketError(f"weights are missing for masked parameters {sorted(missing)}")
            for name, w in self.weights.items():
                if name in self.masks and tuple(w.shape) != tuple(self.masks[name].shape):
                    raise TicketError(
                        f"weights[{name!r}] has shape {tuple(w.shape)} but its mask has "
                        f"{tuple(self.masks[name].shape)}"
                    )
            self.weights = {k: v.detach().to("cpu") for k, v in self.weights.items()}
        self.meta.setdefault("version", __version__)
        if self.kept == 0:
            raise TicketError("the ticket keeps no weight at all (density 0); density must be in (0, 1]")

    # ------------------------------------------------------------------ counts
    @property
    def total(self) -> int:
        """Number of prunable weights covered by the masks."""
        return sum(m.numel() for m in self.masks.values())

    @property
    def kept(self) -> int:
        """Number of weights kept (mask ``True``)."""
        return int(sum(int(m.count_nonzero()) for m in self.masks.values()))

    @property
    def density(self) -> float:
        """Fraction of the masked weights that are kept."""
        return self.kept / self.total

    @property
    def sparsity(self) -> float:
        """Fraction of the masked weights that are pruned: ``1 - density``."""
        return 1.0 - self.density

    def layer_densities(self) -> dict[str, float]:
        """Density of each masked parameter, in mask order."""
        return {n: float(m.count_nonzero()) / m.numel() for n, m in self.masks.items()}

    def layer_counts(self) -> dict[str, tuple[int, int]]:
        """``(kept, total)`` of each masked parameter."""
        return {n: (int(m.count_nonzero()), m.numel()) for n, m in self.masks.items()}

    # ------------------------------------------------------------------ model
    def check(self, model: nn.Module) -> None:
        """Raise :class:`TicketError` unless every mask matches a parameter of ``model``."""
        unknown, bad_shape = mask_mismatch(model, self.masks)
        if unknown:
            sample = ", ".join(list(dict(model.named_parameters()))[:6])
            raise TicketError(
                f"the ticket masks parameters the model does not have: {unknown[:5]}; "
                f"the model's parameters are [{sample}, ...] — was the ticket found on another "
                f"architecture? (its spec: {self.config.get('model')})"
            )
        if bad_shape is not None:
            n, mask_shape, param_shape = bad_shape
            raise TicketError(
                f"mask {n!r} has shape {mask_shape} but the model's parameter has "
                f"{param_shape} — the ticket belongs to a model of other widths"
            )

    @torch.no_grad()
    def apply(self, model: nn.Module, *, weights: bool = True) -> nn.Module:
        """Zero the pruned weights of ``model`` in place (and return it).

        If the ticket carries ``weights`` and ``weights=True`` they are copied in first: the
        masked weights, and any other parameter or buffer it names (biases, BatchNorm running
        statistics, as an Elastic ticket with ``carry_weights=True`` carries them).
        """
        self.check(model)
        params = dict(model.named_parameters())
        for n, m in self.masks.items():
            p = params[n] if n in params else params[f"{n}_orig"]
            if weights and self.weights is not None and n in self.weights:
                p.copy_(self.weights[n].to(p.device, p.dtype))
            p.mul_(m.to(p.device, p.dtype))
        if weights and self.weights is not None:
            buffers = dict(model.named_buffers())
            for n, w in self.weights.items():
                if n in self.masks:
                    continue
                target = params.get(n, buffers.get(n))
                if target is not None:  # parameters and buffers (e.g. BatchNorm statistics)
                    target.copy_(w.to(target.device, target.dtype))
        return model

    def to_torch_prune(self, model: nn.Module) -> nn.Module:
        """Apply with ``torch.nn.utils.prune.custom_from_mask`` (``weight_orig``/``weight_mask``).
        See :func:`graphtickets.interop.to_torch_prune`."""
        self.check(model)
        return apply_torch_prune(model, self.masks)

    @classmethod
    def from_torch_prune(cls, model: nn.Module, *, method: str = "torch_prune", **kw: Any) -> Ticket:
        """Read a ticket from a model pruned with ``torch.nn.utils.prune`` (its ``*_mask`` buffers).
        See :func:`graphtickets.interop.from_torch_prune`."""
        return cls(masks=torch_prune_masks(model), method=method, **kw)

    @classmethod
    def from_state_dict(
        cls, model: nn.Module, state_dict: Mapping[str, Any], *, method: str = "imported", **kw: Any
    ) -> Ticket:
        """Read a ticket from a sparse checkpoint (pruned weights stored as zeros).

        A prunable weight stored as exactly zero is pruned; ``<name>_mask`` entries, when
        present, give the masks instead. See :func:`graphtickets.interop.from_state_dict`
        (keyword arguments ``params``, ``weights``, ``dataset``, ``source``).
        """
        ticket = cls(**state_dict_fields(model, state_dict, method=method, **kw))
        ticket.config["density"] = ticket.density
        return ticket

    def to_state_dict(self, model: nn.Module, *, masks: bool = False) -> dict[str, torch.Tensor]:
        """``model.state_dict()`` with this ticket applied (pruned weights as zeros); ``model``
        is not changed. See :func:`graphtickets.interop.to_state_dict`."""
        self.check(model)
        return masked_state_dict(model, self.masks, self.weights, with_masks=masks)

    def build_model(self) -> nn.Module:
        """Rebuild the model this ticket was found on (from ``config['model']``), masked."""
        from graphtickets import models

        spec = self.config.get("model")
        if not spec or "name" not in spec:
            raise TicketError(
                "this ticket records no model spec (config['model']); build the model yourself "
                "and use ticket.apply(model)"
            )
        model = models.build_from_spec(spec)
        self.apply(model)
        return model

    # ------------------------------------------------------------------ derived tickets
    def replace(self, masks: dict[str, torch.Tensor], *, method: str | None = None, **meta: Any) -> Ticket:
        """A new ticket with other masks and the same provenance (plus ``meta`` updates)."""
        return Ticket(
            masks=masks,
            method=method or self.method,
            config=json.loads(json.dumps(plain(self.config))),
            meta={**json.loads(json.dumps(plain(self.meta))), **meta},
            weights=None,
        )

    def __repr__(self) -> str:
        return (
            f"Ticket(method={self.method!r}, density={self.density:.4g}, "
            f"layers={len(self.masks)}, weights={self.total})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Ticket):
            return NotImplemented
        return (
            self.masks.keys() == other.masks.keys()
            and all(torch.equal(self.masks[k], other.masks[k]) for k in self.masks)
            and self.method == other.method
        )

    # ------------------------------------------------------------------ files
    def provenance(self) -> dict[str, Any]:
        """Everything but the tensors, as plain JSON types."""
        return {
            "format": FORMAT,
            "method": self.method,
            "config": plain(self.config),
            "meta": plain(self.meta),
            "order": list(self.masks),
        }

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the ticket as a safetensors file (atomically: temp file + rename).

        The metadata holds the provenance (canonical JSON, wall-clock timings left out) and
        the sha256 of the whole file (see the module docstring), which :meth:`load` verifies:
        the hash covers the masks, the weights and the description (method, config with
        density and model spec, meta). The same ticket always gives the same bytes.

        Parameters
        ----------
        path : path-like
            The file to write (conventionally ``*.safetensors``); its folder is created.

        Returns
        -------
        pathlib.Path

        Raises
        ------
        TicketError
            If ``path`` is an existing directory, or cannot be written (the message names
            ``path`` and the reason).
        """
        if not isinstance(path, (str, os.PathLike)):
            raise TicketError(f"save needs a file path (str or pathlib.Path), got {type(path).__name__}")
        path = Path(path)
        if output_kind(path) == "dir":
            raise TicketError(
                f"{str(path)!r} is a directory; give a file name, e.g. {str(path / 'ticket.safetensors')!r}"
            )
        tensors = {_MASK_PREFIX + n: m.contiguous() for n, m in self.masks.items()}
        if self.weights is not None:
            tensors.update({_WEIGHT_PREFIX + n: w.detach().contiguous() for n, w in self.weights.items()})
        prov = canonical_json(_strip_timings(self.provenance()))
        header = _layout(tensors, {"graphtickets": prov, _FILE_DIGEST: _ZERO_DIGEST})
        order = sorted(tensors)
        header["__metadata__"][_FILE_DIGEST] = file_digest(header, (_tensor_bytes(tensors[n]) for n in order))
        hb = _header_bytes(header)

        def body(f: Any) -> None:
            f.write(len(hb).to_bytes(8, "little"))
            f.write(hb)
            for n in order:
                f.write(_tensor_bytes(tensors[n]))

        try:
            write_output(path, body, what="ticket file")
        except OutputError as exc:
            raise TicketError(f"{exc}; choose a writable place") from None
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, verify: bool = True) -> Ticket:
        """Read a ticket written by :meth:`save`; clear errors for corrupt, edited or foreign files.

        Parameters
        ----------
        path : path-like
            A ticket file.
        verify : bool, default True
            Refuse a file whose sha256 is missing or does not match its bytes. ``False`` reads
            it anyway (logging a warning) and marks the ticket ``verified=False``.

        Returns
        -------
        Ticket
            ``ticket.verified`` is ``True`` for a format-2 file whose hash matched. Files of
            the older format ``graphtickets.ticket/1`` load with their mask/weight digests
            checked but ``verified=False`` (their description had no hash; re-save to upgrade).

        Raises
        ------
        TicketError
            If the file is absent or unreadable, not safetensors, not a ticket, of an unknown
            format version, has provenance that is not a JSON object, or (with ``verify``) its
            recorded sha256 is missing or differs from the file's.
        """
        raw, where = _read_file(path)
        header, start = _read_header(raw, where)
        meta = header.get("__metadata__")
        if not isinstance(meta, dict) or not isinstance(meta.get("graphtickets"), str):
            raise TicketError(
                f"{where} is a safetensors file but not a graphtickets ticket "
                f"(no 'graphtickets' metadata); tickets are written by Ticket.save"
            )
        prov = _parse_provenance(meta["graphtickets"], where)
        fmt = prov.get("format")
        if fmt != FORMAT and fmt not in OLD_FORMATS:
            raise TicketError(f"{where} has ticket format {fmt!r}; this graphtickets reads {FORMAT!r}")
        try:
            from safetensors.torch import load as st_load

            tensors = st_load(raw)
        except Exception as exc:  # safetensors raises its own error types for bad headers
            raise TicketError(
                f"{where} is not a readable ticket file (corrupt or not safetensors): {_short(exc)}"
            ) from None
        masks = {k[len(_MASK_PREFIX):]: v for k, v in tensors.items() if k.startswith(_MASK_PREFIX)}
        weights = {k[len(_WEIGHT_PREFIX):]: v for k, v in tensors.items() if k.startswith(_WEIGHT_PREFIX)}
        order = prov.get("order") or []
        masks = {n: masks[n] for n in order if isinstance(n, str) and n in masks} | masks
        problem, verified = _integrity(raw, header, start, meta, fmt, masks, weights)
        note = _verdict(where, problem, verified, verify, fmt)
        for n, m in masks.items():
            if m.dtype == torch.bool and m.numel() and int(m.reshape(-1).view(torch.uint8).max()) > 1:
                raise TicketError(f"{where}: mask {n!r} holds bytes other than 0/1 (corrupt file)")
        try:
            ticket = cls(
                masks=masks,
                method=prov.get("method", "unknown"),
                config=prov.get("config", {}),
                meta=prov.get("meta", {}),
                weights=weights or None,
            )
        except TicketError as exc:
            raise TicketError(f"{where}: {exc}") from None
        ticket.verified = problem is None and verified
        ticket.verify_note = note
        return ticket


def _read_file(path: Any) -> tuple[bytes, str]:
    """The bytes of the ticket file ``path`` and its name for messages (clear errors)."""
    if not isinstance(path, (str, os.PathLike)):
        raise TicketError(f"Ticket.load needs the path of a ticket file (str or pathlib.Path), got {path!r}")
    path = Path(path)
    where = repr(str(path))
    if path.is_dir():
        raise TicketError(f"{where} is a directory, not a ticket file; give the .safetensors file inside it")
    if not path.is_file():
        raise TicketError(f"no ticket file at {where}")
    try:
        return path.read_bytes(), where
    except OSError as exc:
        raise TicketError(f"cannot read the ticket file {where}: {exc.strerror or exc}") from None


def _verdict(where: str, problem: str | None, verified: bool, verify: bool, fmt: Any) -> str:
    """The ticket's ``verify_note``; an error for an integrity ``problem`` when ``verify``."""
    if problem is not None:
        if verify:
            raise TicketError(
                f"{where}: {problem}; re-create the ticket, or read it anyway with verify=False "
                f"(CLI: --no-verify), which marks it unverified"
            )
        log.warning("%s: %s; read anyway (verify=False), marked unverified", where, problem)
        return problem
    if not verified:
        note = f"old format {fmt}: masks checked, description not covered by a hash (re-save to upgrade)"
        log.warning("%s: %s", where, note)
        return note
    return "sha256 of the whole file matches"


def recorded_digest(path: str | os.PathLike[str]) -> str | None:
    """The sha256 a ticket file records in its header (None: none, or not a readable ticket header).

    Reads only the header: a cheap identity of the file (its hash is checked by :meth:`Ticket.load`).
    """
    try:
        with open(path, "rb") as f:
            n = int.from_bytes(f.read(8), "little")
            if n > 100_000_000:
                return None
            header = json.loads(f.read(n).decode("utf-8"))
        value = header.get("__metadata__", {}).get(_FILE_DIGEST)
    except (OSError, ValueError, AttributeError, RecursionError):
        return None
    return value if isinstance(value, str) else None


def _short(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300] or type(exc).__name__


def _read_header(raw: bytes, where: str) -> tuple[dict[str, Any], int]:
    """The safetensors header of ``raw`` and where its data starts."""
    if len(raw) < 8:
        raise TicketError(f"{where} is not a readable ticket file (corrupt or not safetensors): only {len(raw)} bytes")
    n = int.from_bytes(raw[:8], "little")
    if n > len(raw) - 8:
        raise TicketError(
            f"{where} is not a readable ticket file (corrupt or truncated): its header says {n} bytes, "
            f"the file has {len(raw) - 8}"
        )
    try:
        header = json.loads(raw[8 : 8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise TicketError(f"{where} is not a readable ticket file (corrupt or not safetensors): bad header") from None
    if not isinstance(header, dict):
        raise TicketError(f"{where} is not a readable ticket file (corrupt or not safetensors): bad header")
    return header, 8 + n


def _parse_provenance(raw: str, where: str) -> dict[str, Any]:
    try:
        prov = json.loads(raw)
    except (json.JSONDecodeError, RecursionError):
        raise TicketError(f"{where}: the ticket's provenance is not valid JSON (corrupt file)") from None
    if not isinstance(prov, dict):
        raise TicketError(
            f"{where}: the ticket's provenance is a JSON {type(prov).__name__}, not an object (corrupt file)"
        )
    for key, kind in (("config", dict), ("meta", dict), ("order", list), ("method", str)):
        if key in prov and not isinstance(prov[key], kind):
            raise TicketError(
                f"{where}: the provenance's {key!r} is a {type(prov[key]).__name__}, "
                f"expected a JSON {'object' if kind is dict else 'array' if kind is list else 'string'} "
                f"(corrupt file)"
            )
    return prov


def _integrity(
    raw: bytes,
    header: dict[str, Any],
    start: int,
    meta: Mapping[str, Any],
    fmt: Any,
    masks: Mapping[str, torch.Tensor],
    weights: Mapping[str, torch.Tensor],
) -> tuple[str | None, bool]:
    """``(problem, verified)``: what is wrong with the file's hash (None: nothing) and whether it proves the file."""
    if fmt == FORMAT:
        recorded = meta.get(_FILE_DIGEST)
        if not isinstance(recorded, str):
            return "the file records no sha256 (it was not written by Ticket.save, or was edited)", False
        if _header_bytes(header) != raw[8:start]:
            return "the file's header is not the one Ticket.save writes (edited or corrupt file)", False
        if file_digest(header, [memoryview(raw)[start:]]) != recorded:
            return "the file does not match the sha256 recorded when it was written (edited or corrupt file)", False
        return None, True
    # format 1: separate digests of the mask and weight bytes; the description was not covered
    if meta.get(_MASKS_DIGEST) is None:
        return "the file records no sha256 of its masks", False
    for key, group in ((_MASKS_DIGEST, masks), (_WEIGHTS_DIGEST, weights)):
        recorded = meta.get(key)
        if recorded is not None and recorded != _digest(group):
            what = "masks" if key == _MASKS_DIGEST else "weights"
            return f"the {what} do not match the sha256 recorded when the file was written (corrupt file)", False
    return None, False
