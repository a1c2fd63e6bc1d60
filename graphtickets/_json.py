"""Values as plain JSON types: the one "make it JSON-plain" walk of the package.

:func:`plain` turns mappings into dicts with string keys and lists/tuples into lists, all the
way down, and every other value (a *leaf*) into a plain value by one rule set: Python
scalars as they are, numpy/torch scalars as Python scalars, non-finite floats as strings,
paths as strings, arrays and tensors as nested lists, anything else as its ``repr``. Callers
with their own rules for some values (a provenance summary of a tensor, a strict check of a
model spec) pass ``before`` (tried on every value first, containers included) or ``leaf``
(replaces the rules for leaves). It sits at the bottom of the package: it imports nothing
from it.

>>> import math
>>> plain({"a": (1, 2.5), 3: [math.inf, None]})
{'a': [1, 2.5], '3': ['inf', None]}
>>> plain({"x": (1, object)}, leaf=lambda v: v)   # leaves kept as they are
{'x': [1, <class 'object'>]}
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

__all__ = ["plain", "plain_leaf", "py_scalar", "finite_or_none", "canonical_json", "WALK_ON"]


class _WalkOn:
    """The marker a ``before`` hook returns to let :func:`plain` apply its own rules."""

    def __repr__(self) -> str:
        return "WALK_ON"


#: Returned by a ``before`` hook of :func:`plain`: "not mine, apply the usual rules".
WALK_ON: Any = _WalkOn()


def py_scalar(value: Any) -> Any:
    """A numpy/torch scalar (0-dimensional) as the Python scalar; anything else unchanged.

    >>> import numpy as np
    >>> type(py_scalar(np.float32(0.5))).__name__, py_scalar("a")
    ('float', 'a')
    """
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        return value.item()
    return value


def finite_or_none(value: Any) -> float | None:
    """``float(value)`` when it is a finite number, else None (JSON has no NaN).

    >>> finite_or_none(2), finite_or_none(float("nan")), finite_or_none("x"), finite_or_none(None)
    (2.0, None, None, None)
    """
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def plain_leaf(value: Any) -> Any:
    """The default rules for a value that is not a mapping, list or tuple (module docstring)."""
    scalar = py_scalar(value)
    if scalar is not value:
        return scalar
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "tolist") and callable(value.tolist):
        return value.tolist()
    return repr(value)


def plain(
    value: Any,
    *,
    leaf: Callable[[Any], Any] = plain_leaf,
    before: Callable[[Any], Any] | None = None,
) -> Any:
    """``value`` with mappings as dicts (string keys), lists/tuples as lists, leaves made plain.

    Parameters
    ----------
    value : any
    leaf : callable, default :func:`plain_leaf`
        Turns a value that is not a mapping, list or tuple into a plain one (the identity
        keeps leaves as they are; a function that raises makes the walk strict).
    before : callable, optional
        Tried first on every value, containers included; its result is used unless it is
        :data:`WALK_ON` (e.g. to summarize a long list instead of walking it).

    Returns
    -------
    Any
        A new structure; ``value`` is not modified.
    """
    if before is not None:
        out = before(value)
        if out is not WALK_ON:
            return out
    if isinstance(value, Mapping):
        return {str(k): plain(v, leaf=leaf, before=before) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v, leaf=leaf, before=before) for v in value]
    return leaf(value)


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no whitespace, ASCII only, NaN refused (tuples become lists).

    The one canonical form of the package: a ticket file's header and its provenance hash,
    and a study cell's id, are computed from it.

    >>> canonical_json({"b": (1, 2), "a": None})
    '{"a":null,"b":[1,2]}'
    """
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
