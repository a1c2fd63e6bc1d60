"""Exceptions for bad input. Each message names the problem and the fix.

All derive from :class:`GraphticketsError` (a ``ValueError``), which the CLI turns into one
line on stderr and exit code 2.
"""

from __future__ import annotations

__all__ = [
    "GraphticketsError",
    "TicketError",
    "UnknownNameError",
    "DataError",
    "ConfigError",
    "UnsupportedModuleError",
]


class GraphticketsError(ValueError):
    """Base class of every error graphtickets raises for bad input."""


class TicketError(GraphticketsError):
    """A ticket that does not fit its model, has bad masks, or a bad/corrupt file."""


class UnknownNameError(GraphticketsError, KeyError):
    """A name that is not in a registry (method, model, dataset, distance, metric)."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class DataError(GraphticketsError):
    """A dataset that cannot be loaded (files absent, bad split)."""


class ConfigError(GraphticketsError):
    """A study configuration that does not validate."""


class UnsupportedModuleError(GraphticketsError):
    """A module or operation the graph tracer cannot turn into graph edges."""
