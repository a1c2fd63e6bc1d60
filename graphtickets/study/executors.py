"""Where cells run: in the driver process, on a Dask ``LocalCluster``, or on an existing cluster.

Every executor maps :func:`graphtickets.study.cell.run_cell_safe` over cell configs (with the
tickets found before, ``inputs``) and yields outcomes as they finish; ``calls`` runs any other
unit of work (trajectories, comparison groups). Workers only compute; the driver alone writes the store. A worker
runs torch with one thread (the cell sets it), and a LocalCluster has one thread per process.

Faults: a worker process that dies (killed, out of memory, a crash in native code) costs only
the cells it held. Dask runs such a cell again on another worker; a cell whose worker dies
:data:`ALLOWED_FAILURES` + 1 times comes back failed, with that reason, and the next run
retries it. The other cells go on.
"""

from __future__ import annotations

import contextlib
import logging
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from graphtickets.errors import GraphticketsError
from graphtickets.study.cell import CellOutcome, run_cell_safe
from graphtickets.study.grid import DENSE, Cell

__all__ = ["Executor", "InProcessExecutor", "DaskExecutor", "make_executor", "priority", "ALLOWED_FAILURES"]

log = logging.getLogger("graphtickets.study")

#: Times a LocalCluster re-runs a cell whose worker died before it records the cell as failed.
ALLOWED_FAILURES = 1


def lost_reason(exc: BaseException) -> str:
    """The error recorded for a cell whose future failed without an outcome (its worker died)."""
    name = type(exc).__name__
    detail = " ".join(str(exc).split())
    if name == "KilledWorker":
        return (f"KilledWorker: the worker process running this cell died on every try (out of memory, killed, "
                f"or a crash in native code); the other cells went on and the next run retries it. Dask: {detail}")
    return f"{name}: {detail} (the cell's worker was lost; the next run retries it)"


class Executor:
    """Base: ``map(cells, on_start) -> iterator of (cell, outcome)`` in completion order."""

    description = "executor"

    def __init__(self, *, root: str | None = None, device: str = "cpu", download: bool = False) -> None:
        self.kw = {"root": root, "device": device, "download": download}

    def map(self, cells: Sequence[Cell], on_start: Callable[[Cell], None] | None = None,
            inputs: Mapping[str, Mapping[str, Any]] | None = None) -> Iterator[tuple[Cell, CellOutcome]]:
        """Run the cells; ``inputs[cell.id]`` (tickets found before) goes to the cell as ``given``."""
        raise NotImplementedError

    def calls(self, fn: Callable[..., Any], jobs: Sequence[tuple[str, tuple[Any, ...]]],
              on_start: Callable[[str], None] | None = None) -> Iterator[tuple[str, Any, str | None]]:
        """``fn(*args)`` for every ``(key, args)`` job: ``(key, result, error)`` in completion order.

        ``error`` is the traceback (``result`` None) when the call raised.
        """
        for key, args in jobs:
            if on_start is not None:
                on_start(key)
            try:
                yield key, fn(*args), None
            except Exception:  # noqa: BLE001 - one failing job never stops the others
                yield key, None, traceback.format_exc()

    def close(self) -> None:
        """Release resources."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class InProcessExecutor(Executor):
    """Run cells one after the other in this process."""

    description = "in-process"

    def map(self, cells: Sequence[Cell], on_start: Callable[[Cell], None] | None = None,
            inputs: Mapping[str, Mapping[str, Any]] | None = None) -> Iterator[tuple[Cell, CellOutcome]]:
        for cell in cells:
            if on_start is not None:
                on_start(cell)
            yield cell, run_cell_safe(cell.config, cell_id=cell.id, given=(inputs or {}).get(cell.id), **self.kw)


def _lost_worker(exc: BaseException) -> bool:
    """Whether a job failed because its worker (or data scattered to it) was lost, not by itself."""
    names = {"KilledWorker", "FutureCancelledError", "CancelledError", "CommClosedError"}
    return type(exc).__name__ in names or "lose scattered data" in str(exc) or "already forgotten" in str(exc)


def _worker_setup() -> None:
    import torch

    torch.set_num_threads(1)


def priority(cell: Cell) -> float:
    """Longest cells first (the dense reference, then high densities): a short tail at the end."""
    return (2.0 if cell.method == DENSE else 1.0) + float(cell.density)


class DaskExecutor(Executor):
    """Run cells on Dask: a new ``LocalCluster`` of ``workers`` processes, or ``scheduler``.

    Parameters
    ----------
    workers : int
        Processes of the LocalCluster (one thread each); ignored with ``scheduler``.
    scheduler : str, optional
        Address of a running scheduler (``tcp://host:port``), e.g. of a dask-jobqueue cluster.
    """

    #: The function run for each cell on a worker (``run_cell_safe``).
    cell_fn: Callable[..., CellOutcome] = staticmethod(run_cell_safe)

    def __init__(self, *, workers: int = 2, scheduler: str | None = None, **kw: Any) -> None:
        super().__init__(**kw)
        try:
            from dask.distributed import Client, LocalCluster
        except ImportError as exc:  # pragma: no cover - dask is a dependency
            raise GraphticketsError("--workers/--scheduler need dask[distributed]: pip install 'dask[distributed]'") from exc
        self.cluster = None
        if scheduler:
            try:
                self.client = Client(scheduler, timeout="20s")
            except OSError as exc:
                raise GraphticketsError(
                    f"cannot reach the Dask scheduler at {scheduler!r} ({exc}); start it, or check the address"
                ) from None
            self.description = f"Dask scheduler {scheduler}"
        else:
            import dask

            # Dask starts its workers with MALLOC_TRIM_THRESHOLD_=65536: glibc then hands freed
            # memory back to the OS at once and maps it again for the next array, and the cells
            # (graph measures of ~1M-edge graphs allocate and free large arrays all the time)
            # ran 15-30 % slower in the workers than in this process (a third of their time
            # in the kernel). The glibc default keeps it; a cell's memory is bounded anyway.
            with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
                                  "distributed.scheduler.allowed-failures": ALLOWED_FAILURES}):
                self.cluster = LocalCluster(
                    n_workers=int(workers), threads_per_worker=1, processes=True, dashboard_address=None,
                    silence_logs=logging.ERROR,
                )
            self.client = Client(self.cluster)
            self.description = f"Dask LocalCluster ({workers} workers)"
        with contextlib.suppress(Exception):
            self.client.run(_worker_setup)

    def map(self, cells: Sequence[Cell], on_start: Callable[[Cell], None] | None = None,
            inputs: Mapping[str, Mapping[str, Any]] | None = None) -> Iterator[tuple[Cell, CellOutcome]]:
        from dask.distributed import as_completed

        futures = {}
        order = sorted(cells, key=priority, reverse=True)  # stable: grid order within a class
        for cell in order:
            fut = self.client.submit(self.cell_fn, cell.config, cell_id=cell.id, pure=False, key=f"cell-{cell.id}",
                                     priority=priority(cell), given=(inputs or {}).get(cell.id), **self.kw)
            futures[fut.key] = (cell, fut)
        if on_start is not None and order:
            on_start(order[0])
        try:
            for fut in as_completed([f for _, f in futures.values()]):
                cell, _ = futures[fut.key]
                try:
                    outcome = fut.result()
                except Exception as exc:  # noqa: BLE001 - a lost worker: record and go on
                    outcome = CellOutcome(id=cell.id, error=lost_reason(exc))
                fut.release()
                yield cell, outcome
                if on_start is not None:  # the bar shows a cell that is running now
                    running = self._running(futures)
                    if running is not None:
                        on_start(running)
        finally:  # only what is still pending: cancelling finished keys floods the scheduler's log
            left = [f for _, f in futures.values() if not f.done()]
            if left:
                self.client.cancel(left)

    def _running(self, futures: Mapping[Any, tuple[Cell, Any]]) -> Cell | None:
        """A cell a worker is processing now (None when none is, or the scheduler cannot say)."""
        try:
            keys = [k for ks in self.client.processing().values() for k in ks]
        except Exception:  # noqa: BLE001 - progress display only
            return None
        for k in keys:
            if k in futures:
                return futures[k][0]
        return None

    def calls(self, fn: Callable[..., Any], jobs: Sequence[tuple[str, tuple[Any, ...]]],
              on_start: Callable[[str], None] | None = None) -> Iterator[tuple[str, Any, str | None]]:
        from dask.distributed import as_completed

        # the large arguments (a group's tickets: tens of MiB) go to the workers once, directly,
        # not inside the task graph through the scheduler
        big = [(i, j) for i, (_, args) in enumerate(jobs) for j, a in enumerate(args) if _large(a)]
        sent = self.client.scatter([jobs[i][1][j] for i, j in big], hash=False) if big else []
        where = dict(zip(big, sent, strict=True))
        futures = {
            self.client.submit(fn, *[where.get((i, j), a) for j, a in enumerate(args)], pure=False, key=f"job-{i}-{key}"): i
            for i, (key, args) in enumerate(jobs)
        }
        tries = dict.fromkeys(range(len(jobs)), 0)
        try:
            pending = as_completed(list(futures))
            for fut in pending:
                i = futures[fut]
                key, args = jobs[i]
                try:
                    result, err = fut.result(), None
                except Exception as exc:  # noqa: BLE001 - a failing job or a lost worker: report and go on
                    if _lost_worker(exc) and tries[i] < ALLOWED_FAILURES:
                        # its worker died (and with it any data scattered there): send the job again,
                        # with its arguments in the task itself, once
                        tries[i] += 1
                        again = self.client.submit(fn, *args, pure=False, key=f"job-{i}-{key}-retry{tries[i]}")
                        futures[again] = i
                        pending.add(again)
                        fut.release()
                        continue
                    result, err = None, traceback.format_exc()
                if on_start is not None:
                    on_start(key)
                fut.release()
                yield key, result, err
        finally:  # only what is still pending: cancelling finished keys floods the scheduler's log
            left = [f for f in futures if not f.done()]
            if left:
                self.client.cancel(left)

    def close(self) -> None:
        # the workers' connections close while the cluster shuts down: distributed logs that
        # (CommClosedError tracebacks) though nothing is lost; quiet its loggers meanwhile
        with _quiet("distributed", "tornado"):
            with contextlib.suppress(Exception):
                self.client.close()
            if self.cluster is not None:
                with contextlib.suppress(Exception):
                    self.cluster.close()


def _large(arg: Any) -> bool:
    """Whether a job argument is worth scattering: a mapping of tickets or other objects."""
    return isinstance(arg, Mapping) and any(not isinstance(v, (str, int, float, bool, type(None))) for v in arg.values())


@contextlib.contextmanager
def _quiet(*names: str) -> Iterator[None]:
    loggers = [logging.getLogger(n) for n in names]
    before = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for lg, lvl in zip(loggers, before, strict=True):
            lg.setLevel(lvl)


def make_executor(*, workers: int = 1, scheduler: str | None = None, **kw: Any) -> Executor:
    """In-process for ``workers <= 1`` without a scheduler, else :class:`DaskExecutor`."""
    if scheduler:
        return DaskExecutor(scheduler=scheduler, **kw)
    if workers is None or int(workers) <= 1:
        return InProcessExecutor(**kw)
    return DaskExecutor(workers=int(workers), **kw)
