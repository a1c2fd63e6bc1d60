"""The study's stability step: is each method's ticket stable to SGD noise (Frankle et al. 2020)?

With ``analysis.stability`` set, every method's ticket (replicate 0, no ablation variant, the
dense reference left out; at the densities ``analysis.stability.densities``, default all) is
trained a second time and the error barrier on the linear path between its two trainings is
measured (:func:`graphtickets.analysis.stability.linear_path`):

* copy A is the cell's own training (the trained network the store keeps beside the ticket:
  data order of the cell's training seed); a cell finished before trained networks were kept
  has copy A trained again, the same way;
* copy B starts from the same weights (:func:`~graphtickets.study.cell.start_network`: the
  ticket's own weights when it carries them, else the model's init) and is trained with the
  study's regime on another data order (seed :func:`stability_seed` of the init seed);
* ``barrier = max_alpha E(alpha) - (E(0) + E(1)) / 2`` on the test split, ``points`` alphas.

The tickets of one training group (:func:`~graphtickets.study.cell.train_key`: every method at
one density and seed) are trained together on the stacked engine
(:func:`~graphtickets.training.batched.train_many`) where
:func:`~graphtickets.training.batched.can_batch` allows it, else one by one. The results go to
the store's ``stability`` table (one row per cell, with a signature: a resumed run recomputes
only cells whose ticket or setting changed); the report's stability section reads them.

References
----------
.. [1] J. Frankle, G. K. Dziugaite, D. M. Roy, M. Carbin, "Linear Mode Connectivity and the
   Lottery Ticket Hypothesis", ICML 2020.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pandas as pd
import torch

from graphtickets.errors import ConfigError
from graphtickets.study.cell import derived_seed, one_thread, prepare_cell, train_key
from graphtickets.study.config import StudyConfig
from graphtickets.study.grid import DENSE, Cell
from graphtickets.study.progress import Progress
from graphtickets.study.store import Store
from graphtickets.ticket import Ticket

__all__ = ["run_stability", "check_stability", "stability_group", "stability_cells", "stability_seed", "stored", "has_table", "TABLE"]

log = logging.getLogger("graphtickets.study")

#: The store's table of stability results.
TABLE = "stability"

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    cell_id TEXT PRIMARY KEY, signature TEXT NOT NULL,
    error_barrier REAL, loss_barrier REAL, error_a REAL, error_b REAL,
    seed_a INTEGER, seed_b INTEGER, copy_a TEXT, trained TEXT, path TEXT,
    seconds REAL, finished REAL
);
"""

_COLUMNS = ["cell_id", "signature", "error_barrier", "loss_barrier", "error_a", "error_b", "seed_a", "seed_b",
            "copy_a", "trained", "path", "seconds", "finished"]

#: Bump when what a row means changes (its cells are then recomputed).
_FORMAT = 1


def stability_seed(seed: int) -> int:
    """The data-order (and training) seed of copy B of the tickets of init seed ``seed``.

    >>> stability_seed(0) != derived_seed(0, "train")
    True
    """
    return derived_seed(int(seed), "stability")


def has_table(store: Store) -> bool:
    """Whether the store has a ``stability`` table (a study that measured stability)."""
    row = store.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?", (TABLE,)).fetchone()
    return row is not None


def stored(store: Store) -> pd.DataFrame:
    """The ``stability`` table of the store (empty, with its columns, when there is none)."""
    if not has_table(store):
        return pd.DataFrame(columns=_COLUMNS)
    return pd.read_sql_query(f"SELECT * FROM {TABLE} ORDER BY cell_id", store.conn)


def check_stability(study: StudyConfig) -> None:
    """Refuse ``analysis.stability.densities`` that name no density of the study (before any cell runs).

    Raises
    ------
    ConfigError
    """
    cfg = study.analysis.stability
    if cfg is None or cfg.densities is None:
        return
    wanted = [float(d) for d in cfg.densities]
    if not any(abs(d - float(s)) <= 1e-12 for d in wanted for s in study.densities):
        raise ConfigError(f"analysis.stability.densities {wanted} names no density of the study "
                          f"({', '.join(f'{d:g}' for d in study.densities)}); list some of those")


def stability_cells(study: StudyConfig, cells: Sequence[Cell], done: set[str]) -> list[Cell]:
    """The finished cells whose ticket is measured: methods' own tickets (replicate 0, no
    ablation, no dense reference) at the configured densities.

    Raises
    ------
    ConfigError
        ``analysis.stability.densities`` names no density of the study.
    """
    cfg = study.analysis.stability
    if cfg is None:
        return []
    check_stability(study)
    wanted = None if cfg.densities is None else [float(d) for d in cfg.densities]

    def chosen(c: Cell) -> bool:
        return wanted is None or any(abs(float(c.density) - d) <= 1e-12 for d in wanted)

    return [c for c in cells if c.id in done and c.method != DENSE and not c.variant and not c.replicate and chosen(c)]


def _signature(store: Store, cell: Cell, points: int) -> str:
    row = store.conn.execute("SELECT ticket_sha256 FROM cells WHERE id = ?", (cell.id,)).fetchone()
    what = {"id": cell.id, "ticket": row[0] if row else None, "points": int(points), "format": _FORMAT}
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:16]


def _train_set(nets: list[torch.nn.Module], tickets: list[Ticket], ctx: Any, seed: int) -> str:
    """Train ``nets`` (in place) with the cell's regime on the data order of ``seed``; how they trained."""
    from graphtickets import data, training
    from graphtickets.training.batched import can_batch, train_many

    if not nets or int(ctx.train.epochs) <= 0:
        return "not trained (epochs = 0)"

    def order() -> Any:
        return data.batches(ctx.train_ds, batch_size=ctx.batch_size, shuffle=True, seed=seed)

    why = "one ticket" if len(nets) < 2 else can_batch(nets, tickets, optimizer=ctx.train.optimizer, engine="stacked")
    if why is None:
        train_many(nets, order(), masks=tickets, settings=ctx.train, device=ctx.device, seed=seed, engine="stacked")
        return f"batched K={len(nets)}"
    for net, t in zip(nets, tickets, strict=True):
        training.train(net, order(), masks=t, settings=ctx.train, device=ctx.device, seed=seed)
    return f"alone: {why}"


def stability_group(configs: Sequence[Any], ids: Sequence[str], given: Mapping[str, Mapping[str, Ticket | None]],
                    *, points: int = 11, root: str | None = None, device: str = "cpu",
                    download: bool = False) -> list[dict[str, Any]]:
    """The stability rows of cells that train on the same batches (runs on a worker too).

    Parameters
    ----------
    configs, ids : sequence
        The cells (:class:`~graphtickets.study.spec.CellSpec` or canonical configs) and their
        ids; they must share :func:`~graphtickets.study.cell.train_key`.
    given : mapping
        ``{cell id: {"ticket": Ticket, "trained": Ticket or None}}``: the cell's ticket and
        its trained network from the store (None: copy A is trained again).
    points : int, default 11
        Points on the linear path.
    root, device, download
        As :func:`~graphtickets.study.cell.run_cell` takes them.

    Returns
    -------
    list of dict
        One per cell, in the order of ``ids``: ``cell_id, error_barrier, loss_barrier, error_a,
        error_b, seed_a, seed_b, copy_a`` (``"stored"`` or ``"retrained"``), ``trained`` (how copy B
        trained), ``path`` (the errors along the path, JSON) and ``seconds``.
    """
    from graphtickets.analysis.stability import linear_path

    t0 = time.perf_counter()
    with one_thread():
        ps = [prepare_cell(cfg, cell_id=cid, root=root, device=device, download=download,
                           given={"ticket": given[cid]["ticket"]})  # type: ignore[dict-item]
              for cfg, cid in zip(configs, ids, strict=True)]
        if len({train_key(p.spec) for p in ps}) > 1:
            raise ConfigError("stability_group: the cells do not train on the same batches (train_key differs)")
        ctx = ps[0].ctx
        seed_b = stability_seed(ctx.seed)
        ends_a: list[torch.nn.Module] = []
        again: list[int] = []
        for p in ps:
            trained = given[p.cell_id].get("trained")
            if trained is not None:
                a = copy.deepcopy(p.model)
                trained.apply(a, weights=True)
            else:
                a = copy.deepcopy(p.net)
                again.append(len(ends_a))
            ends_a.append(a)
        ends_b = [copy.deepcopy(p.net) for p in ps]
        how = _train_set(ends_b, [p.ticket for p in ps], ctx, seed_b)
        _train_set([ends_a[i] for i in again], [ps[i].ticket for i in again], ctx, ctx.train_seed)
        paths = [linear_path(a, b, ctx.test_batches, points=points, device=ctx.device)
                 for a, b in zip(ends_a, ends_b, strict=True)]
    share = (time.perf_counter() - t0) / max(1, len(ps))
    return [{"cell_id": p.cell_id, "error_barrier": path.error_barrier, "loss_barrier": path.loss_barrier,
             "error_a": path.errors[0], "error_b": path.errors[-1], "seed_a": int(ctx.train_seed), "seed_b": int(seed_b),
             "copy_a": "retrained" if i in again else "stored", "trained": how,
             "path": json.dumps([round(e, 6) for e in path.errors]), "seconds": share}
            for i, (p, path) in enumerate(zip(ps, paths, strict=True))]


def _record(store: Store, rows: Sequence[Mapping[str, Any]], signatures: Mapping[str, str]) -> None:
    now = time.time()
    vals = [(r["cell_id"], signatures[r["cell_id"]], *[r[k] for k in _COLUMNS[2:-1]], now) for r in rows]
    with store.transaction() as c:
        c.executemany(f"INSERT OR REPLACE INTO {TABLE} ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})",
                      vals)


def run_stability(store: Store, study: StudyConfig, cells: Sequence[Cell], *, resume: bool = True,
                  executor: Callable[[], Any] | None = None, progress: bool = False) -> int:
    """Measure the stability of the cells :func:`stability_cells` picks; the number of cells measured now.

    A cell whose row is in the store with the current signature (its ticket file's sha256,
    ``points``) is skipped when ``resume``. One job per training group runs through
    ``executor()`` (default in-process); the driver alone writes the store, one transaction per
    group, and a failing group is logged and retried on the next run. Nothing happens (and no
    table is made) without ``analysis.stability``.
    """
    from graphtickets.study.executors import InProcessExecutor

    cfg = study.analysis.stability
    if cfg is None:
        return 0
    store.conn.executescript(_SCHEMA)
    chosen = stability_cells(study, cells, store.done_ids())
    sigs = {c.id: _signature(store, c, cfg.points) for c in chosen}
    have = dict(store.conn.execute(f"SELECT cell_id, signature FROM {TABLE}").fetchall()) if resume else {}
    todo = [c for c in chosen if have.get(c.id) != sigs[c.id]]
    if not todo:
        return 0
    groups: dict[str, list[Cell]] = {}
    for c in todo:
        groups.setdefault(train_key(c.spec), []).append(c)
    ex = executor() if executor is not None else InProcessExecutor()
    jobs = []
    for i, g in enumerate(groups.values()):
        given = {c.id: {"ticket": store.load_ticket(c.id), "trained": store.load_trained(c.id)} for c in g}
        jobs.append((f"{g[0].group}/stability/{i}", ([c.spec for c in g], [c.id for c in g], given)))
    fn = functools.partial(stability_group, points=cfg.points, **getattr(ex, "kw", {}))
    bar = Progress(len(jobs), 0, f"{study.name} stability", "group", progress)
    log.info("stability: %d tickets in %d groups with %s", len(todo), len(jobs), ex.description)
    measured = 0
    try:
        for key, rows, err in ex.calls(fn, jobs, on_start=bar.running):
            if err is not None or rows is None:
                log.error("stability of %s FAILED (retried on the next run):\n%s", key, err)
                bar.finished(key, "FAILED")
                continue
            _record(store, rows, sigs)
            measured += len(rows)
            bar.finished(key, f"{len(rows)} tickets, {sum(r['seconds'] for r in rows):.1f}s")
    finally:
        bar.close()
    return measured
