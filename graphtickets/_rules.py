"""The rules of numbers, seeds and sizes: the one home of these checks and of :data:`LIMITS`.

Every entry point checks its arguments with these functions, so a seed, a size or a number
is held to the same rule, with the same message, whether it comes through
:func:`graphtickets.pruning.prune`, :func:`graphtickets.training.train`,
:func:`graphtickets.models.build`, a study config or the command line:

- :func:`check_seed` -- an integer seed in ``[0, MAX_SEED]``;
- :func:`check_size` -- an integer ``>= low`` and, unless lifted, ``<= LIMITS[limit]``;
- :func:`check_in_range` -- a finite number in an interval (hyper-parameter values);
- :func:`check_number`, :func:`check_int` -- a finite number ``>= low`` (or ``> low``), an
  integer ``>= low`` (training arguments);
- :class:`Rule` -- the allowed values of one method hyper-parameter (methods declare theirs on
  their ``MethodSpec``; :data:`COMMON_RULES` those of shared training options).

Each raises :class:`~graphtickets.errors.GraphticketsError` (a ``ValueError``, so pydantic
validators report it as a validation error), or the ``error`` class a caller names.

It sits at the bottom of the package (layer 0): it imports only :mod:`graphtickets.errors`.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Any

from graphtickets.errors import GraphticketsError

__all__ = ["LIMITS", "MAX_SEED", "SEED_RANGE", "check_seed", "check_size", "check_in_range", "check_number",
           "check_int", "Rule", "COMMON_RULES"]

#: Documented upper bounds of sizes: a value above one is refused (it would run for ever or
#: exhaust memory) unless the config says ``allow_large: true`` (CLI: ``--allow-large``).
LIMITS: dict[str, int] = {
    "epochs": 1000,        # train.epochs and every method's epochs / finetune_epochs / prune_every
    "rounds": 10_000,      # pruning rounds (SynFlow's 100 is the usual maximum)
    "window": 1000,        # Early-Bird's window
    "null_samples": 10_000,  # null samples per pair (and per kind)
    "batches": 10_000,     # batches given to pruning-at-init scorers
    "batch_size": 65_536,  # training, evaluation and pruning batch sizes
    "workers": 256,        # --workers of a LocalCluster
    "replicates": 100,     # sibling tickets per (method, density, init seed)
    "params": 200_000_000,  # parameters of one model of the grid (800 MB of float32 weights)
}  # fmt: skip

#: The largest seed. Seeds are integers in ``[0, 2**63 - 1]``: the range that every consumer of a
#: seed holds -- ``torch.Generator.manual_seed`` takes ``[-2**63, 2**64)``, numpy's
#: ``default_rng`` takes ``[0, inf)``, and the study store keeps seeds in SQLite INTEGER
#: columns, ``[-2**63, 2**63)``; their intersection is ``[0, 2**63)``.
MAX_SEED = 2**63 - 1
#: :data:`MAX_SEED`'s range as the error messages write it.
SEED_RANGE = "[0, 2**63 - 1]"


def check_seed(v: Any, what: str = "seed", *, error: type[Exception] = GraphticketsError) -> int:
    """``int(v)`` if it is an integer seed in ``[0, MAX_SEED]`` (``True``, ``1.0``, ``"1"`` are refused;
    numpy and torch integers are integers).

    Parameters
    ----------
    v : Any
        The seed to check.
    what : str, default "seed"
        Its name in the message (``"--seed"``, ``"seeds[1]"``).
    error : type of Exception, default GraphticketsError
        What to raise (a subclass, e.g. ``ModelError``).

    Returns
    -------
    int
        ``v`` as a Python int.

    Examples
    --------
    >>> check_seed(7)
    7
    >>> check_seed(-1)
    Traceback (most recent call last):
    ...
    graphtickets.errors.GraphticketsError: seed -1 is outside [0, 2**63 - 1]; use a smaller non-negative integer
    """
    if isinstance(v, bool) or not isinstance(v, numbers.Integral):
        raise error(f"{what} must be an integer in {SEED_RANGE}, got {type(v).__name__} {v!r}")
    if not 0 <= int(v) <= MAX_SEED:
        raise error(f"{what} {v} is outside {SEED_RANGE}; use a smaller non-negative integer")
    return int(v)


def check_size(what: str, v: Any, *, low: int, limit: str | None = None, allow_large: bool = False) -> int:
    """``v`` if it is an integer ``>= low`` and (unless ``allow_large``) ``<= LIMITS[limit]``.

    >>> check_size("epochs", 3, low=1, limit="epochs")
    3
    """
    if isinstance(v, bool) or not isinstance(v, int):
        raise GraphticketsError(f"{what} must be an integer >= {low}, got {type(v).__name__} {v!r}")
    if v < low:
        raise GraphticketsError(f"{what} must be an integer >= {low}, got {v}")
    if limit is not None and not allow_large and v > LIMITS[limit]:
        raise GraphticketsError(
            f"{what} = {v} is above the limit {LIMITS[limit]}; lower it, or lift the limit with "
            f"allow_large: true in the config (CLI: --allow-large)"
        )
    return v


def check_in_range(what: str, v: Any, *, low: float | None = None, high: float | None = None,
                   low_open: bool = False, high_open: bool = False) -> None:
    """Raise unless ``v`` is a finite number in the interval (``None``: unbounded on that side).

    >>> check_in_range("momentum", 0.9, low=0.0, high=1.0, high_open=True)
    """
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise GraphticketsError(f"{what} must be a finite number, got {type(v).__name__} {v!r}")
    lo_ok = low is None or (v > low if low_open else v >= low)
    hi_ok = high is None or (v < high if high_open else v <= high)
    if not (lo_ok and hi_ok):
        lo = "" if low is None else f"{'(' if low_open else '['}{low}, "
        hi = "inf)" if high is None else f"{high}{')' if high_open else ']'}"
        raise GraphticketsError(f"{what} must be in {lo or '(-inf, '}{hi}, got {v!r}")


def check_number(name: str, value: Any, *, low: float, low_open: bool) -> float:
    """``float(value)``, or :class:`GraphticketsError` unless it is a finite number ``>= low``
    (``> low`` with ``low_open``).

    >>> check_number("lr", 0.1, low=0.0, low_open=True)
    0.1
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise GraphticketsError(f"{name} must be a finite number, got {value!r}")
    if value < low or (low_open and value == low):
        sign = ">" if low_open else ">="
        raise GraphticketsError(f"{name} must be {sign} {low}, got {value!r}")
    return float(value)


def check_int(name: str, value: Any, *, low: int, allow_none: bool = False) -> int | None:
    """``int(value)`` (or ``None`` when allowed), or :class:`GraphticketsError` unless it is an
    integer ``>= low``.

    >>> check_int("warmup", 0, low=0)
    0
    """
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise GraphticketsError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


# --------------------------------------------------------------------------- hyper-parameter values
@dataclasses.dataclass(frozen=True)
class Rule:
    """The allowed values of one hyper-parameter: an integer size, a number in an interval, or a choice.

    ``kind`` is ``"int"`` (an integer ``>= low``, at most ``LIMITS[limit]`` unless lifted),
    ``"float"`` (a finite number in the interval ``low``..``high``, each end open or closed) or
    ``"choice"`` (one of ``choices``). A method declares its rules on its
    :class:`~graphtickets.pruning.MethodSpec` (``constraints``); :data:`COMMON_RULES` holds those
    of the training options many methods share.

    >>> Rule.floats(0.0, 1.0, low_open=True).check("rate", 0.2)
    >>> Rule.ints(1, "epochs").check("epochs", 0)
    Traceback (most recent call last):
    ...
    graphtickets.errors.GraphticketsError: epochs must be an integer >= 1, got 0
    """

    kind: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    limit: str | None = None
    choices: tuple[str, ...] = ()

    @classmethod
    def ints(cls, low: int, limit: str | None = None) -> Rule:
        return cls("int", low=low, limit=limit)

    @classmethod
    def floats(cls, low: float | None = None, high: float | None = None, *, low_open: bool = False,
               high_open: bool = False, words: tuple[str, ...] = ()) -> Rule:
        """A number in the interval, or one of ``words`` (named values such as IMP's ``"half"``)."""
        return cls("float", low=low, high=high, low_open=low_open, high_open=high_open, choices=words)

    @classmethod
    def choice(cls, *choices: str) -> Rule:
        return cls("choice", choices=tuple(choices))

    def check(self, what: str, v: Any, *, allow_large: bool = False) -> None:
        """Raise :class:`GraphticketsError` naming ``what``, ``v`` and the allowed values unless ``v`` fits."""
        if self.kind == "int":
            check_size(what, v, low=int(self.low or 0), limit=self.limit, allow_large=allow_large)
        elif self.kind == "float":
            if isinstance(v, str) and self.choices:
                if v not in self.choices:
                    raise GraphticketsError(f"{what} must be a number or one of {', '.join(map(repr, self.choices))}, "
                                            f"got {v!r}")
                return
            check_in_range(what, v, low=self.low, high=self.high, low_open=self.low_open, high_open=self.high_open)
        elif not isinstance(v, str) or v not in self.choices:
            raise GraphticketsError(f"{what} must be one of {', '.join(map(repr, self.choices))}, got {v!r}")


#: The rules of hyper-parameters by name that apply to every method taking that name, unless the
#: method declares its own (``MethodSpec.constraints``). Names whose meaning differs between
#: methods (``schedule``: a scoring method's pruning schedule or a training run's learning-rate
#: schedule; ``distribution``: random's or SET's/RigL's layer densities) have no common rule:
#: each method declares them.
COMMON_RULES: dict[str, Rule] = {
    "epochs": Rule.ints(1, "epochs"), "finetune_epochs": Rule.ints(0, "epochs"),
    "max_epochs": Rule.ints(1, "epochs"), "prune_every": Rule.ints(1, "epochs"),
    "rounds": Rule.ints(1, "rounds"), "window": Rule.ints(2, "window"), "rewind": Rule.ints(0),
    "lr": Rule.floats(0.0, low_open=True), "finetune_lr": Rule.floats(0.0, low_open=True),
    "momentum": Rule.floats(0.0, 1.0, high_open=True), "weight_decay": Rule.floats(0.0),
    "lam": Rule.floats(0.0), "l1": Rule.floats(0.0),
    "tol": Rule.floats(0.0, 1.0), "temperature": Rule.floats(0.0, low_open=True),
    "rate": Rule.floats(0.0, 1.0, low_open=True, high_open=True), "output_rate": Rule.floats(0.0, 1.0, high_open=True),
    "channel_density": Rule.floats(0.0, 1.0, low_open=True),
    "scope": Rule.choice("global", "layer"),
    "mode": Rule.choice("auto", "channel", "weight"), "normalize": Rule.choice("auto", "positions", "kept"),
}  # fmt: skip
