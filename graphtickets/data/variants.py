"""Task variants: the typed arguments a dataset takes, their checks, labels and transforms.

A dataset declares its variant arguments as :class:`Param` entries (type, default, range);
:func:`check_args` validates a request against them strictly (an unknown key, a wrong type or
a value out of range is a :class:`~graphtickets.errors.DataError` that lists the valid keys and
ranges) and returns the canonical arguments: values in their canonical type (a float argument
given as ``1`` becomes ``1.0``, a list becomes a sorted or ordered tuple) and arguments equal to
their default dropped, so ``{"shuffle_seq": False}`` is the plain dataset.

Three transforms apply to any classification data and are offered by the datasets where they
make a task (:func:`generic_params`):

``classes``
    A class subset: the examples of those classes only, labels remapped to ``0 .. k-1`` in
    ascending order of the original labels (``[3, 7]`` -> 3 becomes 0, 7 becomes 1).
``label_perm``
    A seeded relabelling: class ``c`` becomes ``p[c]`` for a permutation ``p`` with no fixed
    point (a derangement, drawn by rejection from ``numpy.random.default_rng(seed)``), so
    every class changes its label. Applied after ``classes``.
``pixel_perm``
    A seeded permutation of the input positions (the flattened pixels), the same for every
    example (``numpy.random.default_rng(seed).permutation(n_positions)``): the permuted-pixel
    task of Zhang et al. (2017) / the position-shuffled MNIST-1D.

Labels (:func:`format_label`) read ``name[key,key=value,...]`` with keys sorted, a ``True``
flag written as its key alone and a tuple as its values joined by ``+``
(``mnist1d[classes=0+1+2,shuffle_seq]``); :func:`parse_label` reads them back.

This module imports only :mod:`graphtickets.errors`; the registry (``core``) builds on it.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from graphtickets.errors import DataError

__all__ = [
    "Param",
    "check_args",
    "format_label",
    "parse_label",
    "generic_params",
    "derangement",
    "apply_transforms",
    "SEED_MAX",
]

#: Exclusive upper bound of a transform seed (``numpy.random.default_rng`` takes [0, 2**64)).
SEED_MAX = 2**64

_KINDS = ("bool", "int", "float", "ints", "seed")


@dataclass(frozen=True)
class Param:
    """One variant argument of a dataset.

    Attributes
    ----------
    name : str
        The key users write (``shuffle_seq``, ``data_seed``, ...).
    kind : {"bool", "int", "float", "ints", "seed"}
        ``ints`` is a tuple of ints (``padding``, ``classes``); ``seed`` an int or ``None``
        (off) of a seeded transform.
    default : object
        The value of the plain dataset (``None`` for a transform that is off).
    low, high : float, optional
        Inclusive bounds of the value (of each element for ``ints``).
    high_open : bool
        ``high`` is exclusive.
    length : int, optional
        The exact length of an ``ints`` value; ``min_length`` its least length.
    distinct : bool
        An ``ints`` value's elements must differ; the value is then sorted.
    neutral : object, optional
        Another value that means the default (``classes`` listing every class).
    doc : str
        One line on what the argument does.
    """

    name: str
    kind: str
    default: Any
    low: float | None = None
    high: float | None = None
    high_open: bool = False
    length: int | None = None
    min_length: int = 1
    distinct: bool = False
    neutral: Any = None
    doc: str = ""

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"Param {self.name!r}: kind must be one of {_KINDS}, got {self.kind!r}")

    def describe(self) -> str:
        """``name (type in range, default d): doc``, as the error messages list it."""
        kind = {"ints": "list of int", "seed": "int seed or null"}.get(self.kind, self.kind)
        rng = ""
        if self.low is not None or self.high is not None:
            lo = "-inf" if self.low is None else _num(self.low)
            hi = "inf" if self.high is None else _num(self.high)
            rng = f" in [{lo}, {hi}{')' if self.high_open else ']'}"
        if self.length is not None:
            kind = f"{self.length} ints"
        return f"{self.name} ({kind}{rng}, default {self.default!r}): {self.doc}".rstrip(": ")

    def check(self, value: Any, where: str) -> Any:
        """``value`` in its canonical type; a :class:`DataError` naming the rule if it breaks it."""
        if value is None and self.default is None:
            return None
        try:
            out = _CHECKS[self.kind](self, value)
        except (TypeError, ValueError) as exc:
            raise DataError(f"{where}: argument {self.describe()}; got {value!r} ({exc})") from None
        return out


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() and abs(v) < 1e15 else f"{v:g}"


def _in_range(p: Param, v: float) -> None:
    if p.low is not None and v < p.low:
        raise ValueError(f"below {p.low}")
    if p.high is not None and (v >= p.high if p.high_open else v > p.high):
        raise ValueError(f"above the bound {_num(p.high)}")


def _as_int(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, numbers.Integral):
        raise TypeError(f"expected an int, got {type(v).__name__}")
    return int(v)


def _check_bool(p: Param, v: Any) -> bool:
    if not isinstance(v, (bool, np.bool_)):
        raise TypeError(f"expected true or false, got {type(v).__name__}")
    return bool(v)


def _check_int(p: Param, v: Any) -> int:
    n = _as_int(v)
    _in_range(p, n)
    return n


def _check_float(p: Param, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise TypeError(f"expected a number, got {type(v).__name__}")
    x = float(v)
    if not math.isfinite(x):
        raise ValueError("not finite")
    _in_range(p, x)
    return x


def _check_ints(p: Param, v: Any) -> tuple[int, ...]:
    if isinstance(v, (str, bytes)) or not hasattr(v, "__iter__"):
        raise TypeError(f"expected a list of ints, got {type(v).__name__}")
    out = tuple(_as_int(x) for x in v)
    for x in out:
        _in_range(p, x)
    if p.length is not None and len(out) != p.length:
        raise ValueError(f"expected {p.length} values, got {len(out)}")
    if len(out) < p.min_length:
        raise ValueError(f"expected at least {p.min_length} values, got {len(out)}")
    if p.distinct:
        if len(set(out)) != len(out):
            raise ValueError("values repeat")
        out = tuple(sorted(out))
    return out


def _check_seed(p: Param, v: Any) -> int:
    n = _as_int(v)
    if not 0 <= n < SEED_MAX:
        raise ValueError("a seed is an int in [0, 2**64)")
    return n


_CHECKS: dict[str, Callable[[Param, Any], Any]] = {
    "bool": _check_bool, "int": _check_int, "float": _check_float, "ints": _check_ints, "seed": _check_seed,
}  # fmt: skip


def check_args(
    dataset: str,
    params: Mapping[str, Param],
    args: Mapping[str, Any],
    *,
    hints: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Validate ``args`` against ``params``; the canonical arguments, defaults dropped, keys sorted.

    Parameters
    ----------
    dataset : str
        The dataset's name (for the messages).
    params : mapping
        ``name -> Param``: what the dataset takes.
    args : mapping
        The request.
    hints : mapping, optional
        ``unknown key -> sentence`` for keys users are known to mistake (e.g. ``seed``).

    Returns
    -------
    dict
        Canonical values of the arguments that differ from their defaults.

    Raises
    ------
    DataError
        An unknown key (the message lists every valid key with its type and range), a wrong
        type or a value out of range.
    """
    unknown = sorted(set(args) - set(params))
    if unknown:
        hint = " ".join((hints or {}).get(k, "") for k in unknown).strip()
        valid = "; ".join(p.describe() for p in params.values()) or "none"
        raise DataError(
            f"dataset {dataset!r} takes no argument {', '.join(map(repr, unknown))}.{' ' + hint if hint else ''} "
            f"Its arguments are: {valid}"
        )
    out: dict[str, Any] = {}
    for key in sorted(args):
        p = params[key]
        value = p.check(args[key], f"dataset {dataset!r}")
        default = p.check(p.default, f"dataset {dataset!r}") if p.default is not None else None
        if value != default and not (p.neutral is not None and value == p.neutral):
            out[key] = value
    return out


# ---------------------------------------------------------------------------- labels
def _format_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, tuple):
        return "+".join(str(x) for x in v)
    return repr(v) if isinstance(v, float) else str(v)


def format_label(name: str, args: Mapping[str, Any]) -> str:
    """``name`` or ``name[key,key=value,...]`` (keys sorted; ``True`` flags as their key alone).

    Examples
    --------
    >>> format_label("mnist1d", {"shuffle_seq": True, "iid_noise_scale": 0.05, "classes": (0, 1)})
    'mnist1d[classes=0+1,iid_noise_scale=0.05,shuffle_seq]'
    """
    if not args:
        return name
    parts = [k if v is True else f"{k}={_format_value(v)}" for k, v in sorted(args.items())]
    return f"{name}[{','.join(parts)}]"


def _parse_value(text: str) -> Any:
    if text in ("true", "false"):
        return text == "true"
    if "+" in text:
        return tuple(int(t) for t in text.split("+"))
    try:
        return int(text)
    except ValueError:
        return float(text)


def parse_label(label: str) -> tuple[str, dict[str, Any]]:
    """The ``(name, raw arguments)`` of a label written by :func:`format_label`.

    Examples
    --------
    >>> parse_label("mnist1d[classes=0+1,iid_noise_scale=0.05,shuffle_seq]")
    ('mnist1d', {'classes': (0, 1), 'iid_noise_scale': 0.05, 'shuffle_seq': True})
    """
    label = label.strip()
    if "[" not in label:
        return label, {}
    name, _, rest = label.partition("[")
    if not rest.endswith("]") or not name:
        raise DataError(f"cannot read dataset label {label!r}; write name[key,key=value,...], e.g. mnist1d[shuffle_seq]")
    args: dict[str, Any] = {}
    for part in filter(None, (s.strip() for s in rest[:-1].split(","))):
        key, eq, value = part.partition("=")
        try:
            args[key.strip()] = _parse_value(value.strip()) if eq else True
        except ValueError:
            raise DataError(f"dataset label {label!r}: cannot read the value of {key.strip()!r} ({value!r})") from None
    return name.strip(), args


# ---------------------------------------------------------------------------- transforms
def generic_params(num_classes: int, *, pixels: bool) -> dict[str, Param]:
    """The transform arguments of a ``num_classes``-class dataset (``pixel_perm`` if ``pixels``)."""
    out = {
        "classes": Param("classes", "ints", None, low=0, high=num_classes - 1, min_length=2, distinct=True,
                         neutral=tuple(range(num_classes)), doc="keep these classes only, relabelled 0..k-1 in ascending order"),
        "label_perm": Param("label_perm", "seed", None,
                            doc="relabel every class by a seeded derangement (applied after classes)"),
    }  # fmt: skip
    if pixels:
        out["pixel_perm"] = Param("pixel_perm", "seed", None,
                                  doc="permute the input positions by one seeded permutation")  # fmt: skip
    return out


def derangement(k: int, seed: int) -> np.ndarray:
    """A permutation of ``range(k)`` without fixed point, seeded (rejection sampling; ``k >= 2``).

    Examples
    --------
    >>> p = derangement(5, seed=0)
    >>> sorted(p.tolist()) == list(range(5)) and bool((p != np.arange(5)).all())
    True
    """
    if k < 2:
        raise DataError(f"a label permutation needs at least 2 classes, got {k}")
    rng = np.random.default_rng(seed)
    while True:  # accepted with probability ~1/e per draw
        p = rng.permutation(k)
        if (p != np.arange(k)).all():
            return p


def apply_transforms(
    x: np.ndarray, y: np.ndarray, args: Mapping[str, Any], num_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """Apply ``classes``, then ``label_perm``, then ``pixel_perm`` of ``args`` to ``(x, y)``."""
    classes = args.get("classes")
    if classes is not None:
        keep = np.isin(y, np.asarray(classes))
        x, y = x[keep], np.searchsorted(np.asarray(classes), y[keep]).astype(np.int64)
        num_classes = len(classes)
    if args.get("label_perm") is not None:
        y = derangement(num_classes, int(args["label_perm"]))[y].astype(np.int64)
    if args.get("pixel_perm") is not None:
        n = int(np.prod(x.shape[1:]))
        perm = np.random.default_rng(int(args["pixel_perm"])).permutation(n)
        x = x.reshape(len(x), n)[:, perm].reshape(x.shape)
    return x, y
