""":class:`DataSpec`: one task, a dataset name and its canonical variant arguments.

A study's ``datasets:`` entry is either a name (``mnist1d``) or a mapping
(``{name: mnist1d, shuffle_seq: true}``); :meth:`DataSpec.parse` turns either (or a label such
as ``"mnist1d[shuffle_seq]"``, the form tickets and tables record) into a frozen, hashable spec,
validated strictly against what the dataset takes. Two requests for the same task give equal
specs: values in canonical types, arguments equal to their default dropped, keys sorted.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from graphtickets.data.core import DatasetInfo, NamedTensorDataset, info, load, resolve
from graphtickets.data.variants import format_label
from graphtickets.errors import DataError

__all__ = ["DataSpec"]


def _plain(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v


@dataclass(frozen=True)
class DataSpec:
    """A task: dataset ``name`` with canonical variant ``args`` (frozen, hashable, ordered keys).

    Construct with :meth:`parse` or :meth:`of` (both validate); the constructor validates too,
    so ``DataSpec("mnist1d", {"shuffle_seq": False}) == DataSpec("mnist1d")``.

    Attributes
    ----------
    name : str
        A key of :data:`~graphtickets.data.DATASETS`.
    args : tuple of (str, value)
        The canonical arguments that differ from their defaults, sorted by key.

    Examples
    --------
    >>> spec = DataSpec.parse({"name": "mnist1d", "shuffle_seq": True, "iid_noise_scale": 0.05})
    >>> spec.label
    'mnist1d[iid_noise_scale=0.05,shuffle_seq]'
    >>> DataSpec.parse(spec.label) == spec, DataSpec.parse("mnist1d").is_variant
    (True, False)
    >>> DataSpec.of("digits", classes=[7, 1]).info().num_classes
    2
    """

    name: str
    args: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        source, canonical = resolve(self.name, dict(self.args))
        object.__setattr__(self, "name", source.name)
        object.__setattr__(self, "args", tuple(sorted(canonical.items())))

    @classmethod
    def of(cls, name: str, **args: Any) -> DataSpec:
        """The spec of dataset ``name`` (or a label) with variant arguments ``args``."""
        return cls(name, tuple(args.items()))

    @classmethod
    def parse(cls, entry: Any) -> DataSpec:
        """A spec from a name, a label, a mapping ``{name: ..., **args}`` or a spec.

        Parameters
        ----------
        entry : str, mapping or DataSpec
            ``"mnist1d"``, ``"mnist1d[shuffle_seq]"``, ``{"name": "mnist1d", "shuffle_seq": True}``
            or a :meth:`provenance` dict (``{"name": ..., "args": {...}}``). A study's other keys
            of an entry (``root``, ``download``) are not variant arguments: remove them first.

        Raises
        ------
        DataError
            Not one of those forms, a mapping without ``name``, or a variant argument the
            dataset does not take (the message lists those it takes), of a wrong type or out of
            range.
        UnknownNameError
            An unknown dataset.
        """
        if isinstance(entry, DataSpec):
            return entry
        if isinstance(entry, str):
            return cls(entry)
        if isinstance(entry, Mapping):
            rest = dict(entry)
            name = rest.pop("name", None)
            if not isinstance(name, str):
                raise DataError(f"a dataset entry needs name: <dataset>, got {dict(entry)!r}")
            rest.pop("label", None)
            if set(rest) == {"args"} and isinstance(rest["args"], Mapping):  # a provenance dict
                rest = dict(rest["args"])
            return cls(name, tuple(rest.items()))
        raise DataError(
            f"a dataset entry is a name or a mapping {{name: ..., <argument>: ...}}, got {type(entry).__name__}"
        )

    @classmethod
    def from_provenance(cls, record: Mapping[str, Any]) -> DataSpec:
        """The spec :meth:`provenance` recorded (``{"name", "args", ...}``)."""
        return cls.parse({"name": record.get("name"), "args": dict(record.get("args") or {})})

    @property
    def kwargs(self) -> dict[str, Any]:
        """The variant arguments as keyword arguments of :func:`~graphtickets.data.load`."""
        return dict(self.args)

    @property
    def is_variant(self) -> bool:
        """Whether any argument differs from the plain dataset."""
        return bool(self.args)

    @property
    def label(self) -> str:
        """``name`` or ``name[key,key=value]``: short, stable, readable back by :meth:`parse`."""
        return format_label(self.name, dict(self.args))

    def provenance(self) -> dict[str, Any]:
        """``{"name", "args", "label"}``, JSON-plain (tuples as lists): the exact task of a ticket."""
        return {"name": self.name, "args": {k: _plain(v) for k, v in self.args}, "label": self.label}

    def info(self) -> DatasetInfo:
        """The variant's :class:`~graphtickets.data.DatasetInfo` (its shape and class count)."""
        return info(self.name, **self.kwargs)

    def load(
        self,
        *,
        split: str = "train",
        root: str | os.PathLike[str] | None = None,
        seed: int = 0,
        download: bool = False,
        val_fraction: float = 0.0,
    ) -> NamedTensorDataset:
        """:func:`~graphtickets.data.load` of this task (``seed``: the validation hold-out's)."""
        return load(self.name, split=split, root=root, seed=seed, download=download,
                    val_fraction=val_fraction, **self.kwargs)  # fmt: skip

    def __str__(self) -> str:
        return self.label
