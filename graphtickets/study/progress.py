"""Progress of a study's units of work on stderr (cells, trajectories, comparison groups).

A tqdm bar on a terminal; off a terminal (a log file, a batch job), one line per finished
unit instead. Imports nothing from the study.
"""

from __future__ import annotations

import sys
import time

__all__ = ["Progress"]


class Progress:
    """A tqdm bar on a terminal; off a terminal, one line per finished item on stderr instead.

    Parameters
    ----------
    total, initial : int
        Items in all, and items already done (counted as finished from the start).
    desc, unit : str
        What the bar counts (``"<study> cells"``, ``"cell"``).
    enabled : bool
        False: nothing is shown.
    """

    def __init__(self, total: int, initial: int, desc: str, unit: str, enabled: bool) -> None:
        from tqdm.auto import tqdm

        self.tty = sys.stderr.isatty()
        self.lines = enabled and not self.tty
        self.n, self.total, self.desc, self.t0 = initial, total, desc, time.perf_counter()
        self.bar = tqdm(total=total, initial=initial, desc=desc, unit=unit, file=sys.stderr,
                        disable=not (enabled and self.tty), dynamic_ncols=True)

    def running(self, label: str) -> None:
        """Show ``label`` as the item now running."""
        self.bar.set_postfix_str(f"running {label}", refresh=True)

    def finished(self, label: str, status: str = "") -> None:
        """Count one item as finished (with its ``status`` off a terminal)."""
        self.n += 1
        self.bar.update(1)
        if self.lines:
            sys.stderr.write(f"[{self.n}/{self.total} {time.perf_counter() - self.t0:.0f}s] {self.desc}: {label}"
                             f"{' ' + status if status else ''}\n")
            sys.stderr.flush()

    def close(self) -> None:
        """Close the bar."""
        self.bar.close()
