"""Run a study on a SLURM or PBS cluster through dask-jobqueue.

The study driver (``graphtickets run``) runs on the cluster's login node (or in a small
interactive job). With ``--cluster slurm`` (or ``pbs``) it starts a Dask scheduler in its own
process, submits ``jobs`` batch jobs that each start ``processes`` Dask workers (one thread
each) and connect back, and hands the scheduler's address to the ordinary ``--scheduler``
path: cells and comparison groups run on the workers, only the driver writes the store. When
the study ends (or is interrupted) the jobs are cancelled.

Where the cluster settings come from, later winning:

1. a YAML file given as ``--cluster FILE.yaml`` (keys of :class:`ClusterSpec`), or the
   system name alone (``--cluster slurm``);
2. the command-line options ``--queue``, ``--account``, ``--cores``, ``--memory``,
   ``--walltime``, ``--jobs``, ``--processes``, ``--prologue``.

The same study config runs on a laptop and on a cluster unchanged (cell ids do not depend on
where cells run). ``graphtickets run ... --cluster slurm --print-job-script`` prints the batch
script that would be submitted and exits, so it can be checked before anything is queued.

Examples
--------
>>> spec = ClusterSpec(system="slurm", queue="cpu", cores=8, memory="16GB", walltime="01:00:00", jobs=4)
>>> print(job_script(spec, scheduler="tcp://10.1.2.3:8786").splitlines()[3])
#SBATCH -p cpu
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import re
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from graphtickets.errors import ConfigError, GraphticketsError

__all__ = [
    "ClusterSpec",
    "SYSTEMS",
    "job_script",
    "make_cluster",
    "start",
    "add_arguments",
    "spec_from_args",
    "from_args",
    "print_job_script",
    "summary",
]

log = logging.getLogger("graphtickets.study")

#: Batch systems supported, with the dask-jobqueue cluster and job classes of each.
SYSTEMS = {"slurm": ("SLURMCluster", "SLURMJob"), "pbs": ("PBSCluster", "PBSJob")}

_WALLTIME = re.compile(r"^(\d+-)?\d{1,3}:\d{2}(:\d{2})?$")
_MEMORY = re.compile(r"^\d+(\.\d+)?\s*([KMGT]i?B)$", re.IGNORECASE)


@dataclass(frozen=True)
class ClusterSpec:
    """Where and how big: the batch jobs that run a study's Dask workers.

    Parameters
    ----------
    system : {"slurm", "pbs"}
        The batch system.
    queue : str, optional
        Partition (SLURM ``-p``) or queue (PBS ``-q``); default: the system's default.
    account : str, optional
        Account / project to charge (``-A``).
    cores : int, default 4
        CPU cores per job.
    processes : int, optional
        Dask worker processes per job, each with one thread (default: ``cores``, so one cell
        per core; cells run torch with one thread).
    memory : str, default "8GB"
        Memory per job (``"16GB"``, ``"4GiB"``); split evenly among its processes.
    walltime : str, default "01:00:00"
        Time limit per job, ``HH:MM:SS`` (SLURM also ``D-HH:MM:SS``). A job that reaches it
        is killed; its unfinished cells are rerun elsewhere, and a re-run of the same command
        resumes whatever is left.
    jobs : int, default 1
        Number of jobs to submit.
    prologue : list of str
        Shell lines run before the worker starts, e.g. ``module load python/3.11`` and
        ``source ~/venvs/gt/bin/activate``.
    directives : list of str
        Extra scheduler directives, written verbatim after ``#SBATCH``/``#PBS``
        (e.g. ``--gres=gpu:1``, ``-l ngpus=1``).
    python : str, optional
        The worker's Python (default: the driver's interpreter path).
    interface : str, optional
        Network interface the scheduler and workers listen on (e.g. ``ib0``).
    local_directory : str, optional
        Node-local scratch for the workers' spill files (e.g. ``$TMPDIR``).
    log_directory : str, optional
        Where the jobs' stdout/stderr go.
    """

    system: str = "slurm"
    queue: str | None = None
    account: str | None = None
    cores: int = 4
    processes: int | None = None
    memory: str = "8GB"
    walltime: str = "01:00:00"
    jobs: int = 1
    prologue: tuple[str, ...] = field(default_factory=tuple)
    directives: tuple[str, ...] = field(default_factory=tuple)
    python: str | None = None
    interface: str | None = None
    local_directory: str | None = None
    log_directory: str | None = None

    def __post_init__(self) -> None:
        if self.system not in SYSTEMS:
            raise ConfigError(f"cluster system {self.system!r} is not supported; use one of {', '.join(SYSTEMS)}")
        for name in ("cores", "jobs"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ConfigError(f"cluster {name} must be a whole number >= 1, got {v!r}")
        if self.processes is not None:
            if not isinstance(self.processes, int) or isinstance(self.processes, bool) or not 1 <= self.processes <= self.cores:
                raise ConfigError(f"cluster processes must be a whole number in 1..cores ({self.cores}), got {self.processes!r}")
        if not isinstance(self.memory, str) or not _MEMORY.match(self.memory.strip()):
            raise ConfigError(f"cluster memory {self.memory!r} must look like '16GB' or '4GiB'")
        if not isinstance(self.walltime, str) or not _WALLTIME.match(self.walltime.strip()):
            raise ConfigError(f"cluster walltime {self.walltime!r} must look like 'HH:MM:SS' (e.g. '02:00:00')")
        for name in ("prologue", "directives"):
            v = getattr(self, name)
            if isinstance(v, str):
                object.__setattr__(self, name, (v,))
            elif not all(isinstance(x, str) for x in v):
                raise ConfigError(f"cluster {name} must be a list of strings, got {v!r}")
            else:
                object.__setattr__(self, name, tuple(v))

    @property
    def worker_processes(self) -> int:
        """Dask worker processes per job (``processes``, default ``cores``)."""
        return self.processes or self.cores

    @property
    def workers(self) -> int:
        """Dask worker processes in all: ``jobs * worker_processes``."""
        return self.jobs * self.worker_processes

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, source: str = "cluster settings") -> ClusterSpec:
        """A spec from a mapping (a YAML file, or a ``cluster:`` section of a config).

        Raises
        ------
        ConfigError
            Naming unknown keys and bad values.
        """
        if not isinstance(data, Mapping):
            raise ConfigError(f"{source}: expected a mapping of cluster settings, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"{source}: unknown cluster setting(s) {unknown}; known: {', '.join(sorted(known))}")
        kw = dict(data)
        for name in ("prologue", "directives"):
            if name in kw and kw[name] is not None and not isinstance(kw[name], str):
                kw[name] = tuple(kw[name])
            elif kw.get(name) is None:
                kw.pop(name, None)
        try:
            return cls(**kw)
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types (what the study records)."""
        out = asdict(self)
        out["prologue"], out["directives"] = list(self.prologue), list(self.directives)
        return out


def _kwargs(spec: ClusterSpec) -> dict[str, Any]:
    """Keyword arguments of the dask-jobqueue cluster/job classes."""
    import sys

    kw: dict[str, Any] = {
        "cores": spec.cores,
        "processes": spec.worker_processes,
        "memory": spec.memory.replace(" ", ""),
        "walltime": spec.walltime,
        "job_script_prologue": list(spec.prologue),
        "job_extra_directives": list(spec.directives),
        "python": spec.python or sys.executable,
        "name": "graphtickets-worker",
        "job_name": "graphtickets",
    }
    for key in ("queue", "account", "interface", "local_directory", "log_directory"):
        value = getattr(spec, key)
        if value is not None:
            kw[key] = value
    return kw


def _jobqueue() -> Any:
    try:
        import dask_jobqueue
    except ImportError:
        raise GraphticketsError(
            "--cluster needs dask-jobqueue: pip install 'graphtickets[cluster]' (or pip install dask-jobqueue)"
        ) from None
    return dask_jobqueue


def job_script(spec: ClusterSpec, *, scheduler: str = "tcp://SCHEDULER:8786") -> str:
    """The batch script one job of ``spec`` runs, for a scheduler at ``scheduler``.

    Rendered by dask-jobqueue's job class without starting a scheduler or submitting
    anything, so it can be checked (and tested) anywhere.

    Parameters
    ----------
    spec : ClusterSpec
    scheduler : str
        The scheduler address written into the worker command.

    Returns
    -------
    str
        The script (``#!/usr/bin/env bash``, the ``#SBATCH``/``#PBS`` directives, the
        prologue, the ``dask_worker`` command).
    """
    import importlib

    _jobqueue()
    mod = importlib.import_module(f"dask_jobqueue.{spec.system}")
    job_cls = getattr(mod, SYSTEMS[spec.system][1])
    return str(job_cls(scheduler=scheduler, **_kwargs(spec)).job_script())


def make_cluster(spec: ClusterSpec) -> Any:
    """A started dask-jobqueue cluster of ``spec`` (scheduler in this process), with
    ``spec.jobs`` jobs requested. Close it with ``cluster.close()``."""
    jq = _jobqueue()
    cls = getattr(jq, SYSTEMS[spec.system][0])
    cluster = cls(**_kwargs(spec))
    cluster.scale(jobs=spec.jobs)
    log.info("%s cluster: %d job(s) of %d worker process(es) requested; scheduler %s",
             spec.system, spec.jobs, spec.worker_processes, cluster.scheduler_address)
    return cluster


@contextlib.contextmanager
def start(spec: ClusterSpec) -> Iterator[str]:
    """Start the cluster of ``spec``, yield its scheduler address, cancel its jobs at the end."""
    cluster = make_cluster(spec)
    try:
        yield str(cluster.scheduler_address)
    finally:
        with contextlib.suppress(Exception):
            cluster.close()


# ---------------------------------------------------------------------------- command line
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--cluster`` and its options to the ``run`` subcommand's parser."""
    g = parser.add_argument_group("batch cluster (dask-jobqueue; see the docs' cluster page)")
    g.add_argument("--cluster", metavar="SYSTEM|FILE",
                   help="run the workers as batch jobs: 'slurm', 'pbs', or a YAML file of cluster settings")
    g.add_argument("--queue", help="partition (SLURM) or queue (PBS)")
    g.add_argument("--account", help="account/project to charge")
    g.add_argument("--cores", type=int, help="cores per job (default 4)")
    g.add_argument("--processes", type=int, help="worker processes per job (default: --cores)")
    g.add_argument("--memory", help="memory per job, e.g. 16GB (default 8GB)")
    g.add_argument("--walltime", help="time limit per job, HH:MM:SS (default 01:00:00)")
    g.add_argument("--jobs", type=int, help="number of jobs (default 1)")
    g.add_argument("--prologue", action="append", metavar="LINE",
                   help="shell line run before each worker, e.g. 'source ~/venv/bin/activate' (repeatable)")
    g.add_argument("--print-job-script", action="store_true",
                   help="print the batch script of one job and exit (submits nothing)")


_OPTION_KEYS = ("queue", "account", "cores", "processes", "memory", "walltime", "jobs", "prologue")


def spec_from_args(args: argparse.Namespace) -> ClusterSpec | None:
    """The :class:`ClusterSpec` the ``run`` options describe (None without ``--cluster``)."""
    import yaml

    value = getattr(args, "cluster", None)
    given: dict[str, Any] = {k: getattr(args, k) for k in _OPTION_KEYS if getattr(args, k, None) is not None}
    if not value:
        if given or getattr(args, "print_job_script", False):
            flags = ", ".join(f"--{k}" for k in given) or "--print-job-script"
            raise GraphticketsError(f"{flags} need --cluster slurm|pbs|FILE.yaml")
        return None
    if value.lower() in SYSTEMS:
        base: dict[str, Any] = {"system": value.lower()}
        source = f"--cluster {value}"
    else:
        path = Path(value)
        if not path.is_file():
            raise GraphticketsError(f"--cluster {value!r} is neither {' nor '.join(SYSTEMS)} nor a YAML file")
        try:
            loaded = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            raise ConfigError(f"{value}: not valid YAML ({exc})") from None
        base = dict(loaded or {})
        source = value
    spec = ClusterSpec.from_mapping(base, source=source)
    if given:
        if "prologue" in given:
            given["prologue"] = (*spec.prologue, *given["prologue"])
        try:
            spec = replace(spec, **given)
        except ConfigError as exc:
            raise ConfigError(f"command line: {exc}") from None
    if getattr(args, "scheduler", None):
        raise GraphticketsError("give --cluster or --scheduler, not both (--cluster starts its own scheduler)")
    return spec


@contextlib.contextmanager
def from_args(args: argparse.Namespace) -> Iterator[str | None]:
    """For ``graphtickets run``: the scheduler address to use (``--scheduler``, or that of a
    cluster started from ``--cluster``; None for neither). Jobs are cancelled on exit."""
    spec = spec_from_args(args)
    if spec is None:
        yield getattr(args, "scheduler", None)
        return
    with start(spec) as address:
        yield address


def print_job_script(args: argparse.Namespace, out: Any = None) -> bool:
    """With ``--print-job-script``: print the job script of the ``run`` options and return True."""
    import sys

    if not getattr(args, "print_job_script", False):
        return False
    spec = spec_from_args(args)
    assert spec is not None  # spec_from_args raises without --cluster
    print(job_script(spec), file=out or sys.stdout, end="")
    return True


def summary(spec: ClusterSpec) -> str:
    """One line: ``slurm: 4 jobs x 8 cores, 16GB, 02:00:00 on queue cpu``."""
    where = f" on queue {spec.queue}" if spec.queue else ""
    return (f"{spec.system}: {spec.jobs} job(s) x {spec.cores} cores ({spec.worker_processes} workers), "
            f"{spec.memory}, {spec.walltime}{where}")

