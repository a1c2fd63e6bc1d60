"""A registry is a dict from name to a plain object, with a helpful lookup error."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Generic, TypeVar

from graphtickets.errors import UnknownNameError

T = TypeVar("T")

__all__ = ["Registry"]


class Registry(dict[str, T], Generic[T]):
    """``name -> entry``. ``registry.get_or_raise(name)`` names the known entries on a miss.

    Parameters
    ----------
    kind : str
        What the entries are ("method", "model", ...), used in error messages.
    """

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def register(self, name: str, entry: T | None = None) -> Callable[[T], T] | T:
        """Register ``entry`` under ``name``; without ``entry``, return a decorator."""

        def deco(obj: T) -> T:
            if name in self:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self[name] = obj
            return obj

        return deco(entry) if entry is not None else deco

    def get_or_raise(self, name: str) -> T:
        """The entry called ``name``; an :class:`UnknownNameError` listing the names if none."""
        try:
            return self[name]
        except KeyError:
            close = difflib.get_close_matches(str(name), list(self), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}; known {self.kind}s: {', '.join(sorted(self))}.{hint}"
            ) from None
