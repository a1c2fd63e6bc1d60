"""MNIST-1D (Greydanus 2020), generated locally and cached as ``.npz``.

The data come from the ``mnist1d`` package's own generator
(``mnist1d.data.make_dataset(get_dataset_args())``), never from its download path. The
generator seeds numpy's and Python's global random state; :func:`generate` saves and
restores both around the call, so loading MNIST-1D leaves the caller's global RNGs as they
were. The arrays are kept as the package makes them (already centred with unit standard
deviation over the whole set); no further standardisation is applied.

The generated arrays are cached under ``<data root>/mnist1d/`` in a file named by a hash of
the generator arguments (and the ``mnist1d`` version), written atomically (temporary file + rename) and read back with
``allow_pickle=False``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from graphtickets.data.core import DatasetInfo, register_dataset
from graphtickets.errors import DataError

__all__ = ["generator_args", "generate", "cache_path", "load_arrays", "INFO"]

log = logging.getLogger("graphtickets.data")

INFO = DatasetInfo(
    in_shape=(40,),
    num_classes=10,
    description=(
        "MNIST-1D: 1-D signals of length 40 made from 10 digit templates (padding, shear, "
        "translation, noise); 4000 train / 1000 test by default, generated locally"
    ),
    citation=(
        "Greydanus, S. (2020). Scaling down deep learning. arXiv:2011.14439. "
        "(Greydanus & Kobak, ICML 2024: Scaling down deep learning with MNIST-1D.)"
    ),
)


def generator_args(num_samples: int | None = None) -> dict[str, Any]:
    """The ``mnist1d`` generator arguments (the package defaults), as a plain dict.

    Parameters
    ----------
    num_samples : int, optional
        Total number of examples (train + test); the package default is 5000.

    Returns
    -------
    dict
        Without the ``url`` entry (the download path is never used).
    """
    from mnist1d.data import get_dataset_args

    args = dict(get_dataset_args(as_dict=True))
    args.pop("url", None)
    if num_samples is not None:
        n = int(num_samples)
        if n < 20 or n != num_samples:
            raise DataError(f"num_samples must be an integer >= 20, got {num_samples!r}")
        args["num_samples"] = n
    return args


def generate(args: dict[str, Any]) -> dict[str, np.ndarray]:
    """Run the ``mnist1d`` generator with ``args`` without touching the global RNG state.

    Parameters
    ----------
    args : dict
        Generator arguments, as from :func:`generator_args`.

    Returns
    -------
    dict
        ``x`` (float32, (n_train, 40)), ``y`` (int64), ``x_test``, ``y_test``.
    """
    from mnist1d.data import make_dataset
    from mnist1d.utils import ObjectView

    np_state = np.random.get_state()  # noqa: NPY002  (the generator uses the global RNG)
    py_state = random.getstate()
    try:
        d = make_dataset(ObjectView(dict(args)))
    finally:
        np.random.set_state(np_state)  # noqa: NPY002
        random.setstate(py_state)
    return {
        "x": np.asarray(d["x"], dtype=np.float32),
        "y": np.asarray(d["y"], dtype=np.int64),
        "x_test": np.asarray(d["x_test"], dtype=np.float32),
        "y_test": np.asarray(d["y_test"], dtype=np.int64),
    }


def _generator_version() -> str:
    try:
        from importlib.metadata import version

        return version("mnist1d")
    except Exception:  # not installed as a distribution (e.g. vendored): key on args only
        return "unknown"


def cache_path(root: Path, args: dict[str, Any]) -> Path:
    """The cache file of the data generated with ``args`` under data root ``root``.

    The name is a hash of the generator arguments and the ``mnist1d`` package version, so
    another generator release never reads a stale cache.
    """
    keyed = {"args": args, "mnist1d": _generator_version()}
    key = hashlib.sha256(json.dumps(keyed, sort_keys=True).encode()).hexdigest()[:16]
    return Path(root) / "mnist1d" / f"mnist1d-{key}.npz"


def _write_atomic(path: Path, arrays: dict[str, np.ndarray], args: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            payload: dict[str, Any] = {"args": np.array(json.dumps(args, sort_keys=True)), **arrays}
            np.savez(fh, **payload)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _read(path: Path) -> dict[str, np.ndarray] | None:
    try:
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in ("x", "y", "x_test", "y_test")}
    except FileNotFoundError:
        return None
    except Exception as exc:  # a truncated or foreign file: regenerate it
        log.warning("ignoring unreadable MNIST-1D cache %s (%s); regenerating", path, exc)
        return None


def load_arrays(root: Path, num_samples: int | None = None) -> dict[str, np.ndarray]:
    """The MNIST-1D arrays: from the cache under ``root``, else generated and cached."""
    args = generator_args(num_samples)
    path = cache_path(root, args)
    arrays = _read(path)
    if arrays is None:
        log.info("generating MNIST-1D (%d samples) into %s", args["num_samples"], path)
        arrays = generate(args)
        try:
            _write_atomic(path, arrays, args)
        except OSError as exc:  # a read-only root still gives the data
            log.warning("could not cache MNIST-1D at %s: %s", path, exc)
    return arrays


@register_dataset("mnist1d", INFO)
def _load(
    split: str, root: Path, download: bool, num_samples: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    arrays = load_arrays(root, num_samples)
    if split == "test":
        return arrays["x_test"], arrays["y_test"]
    return arrays["x"], arrays["y"]
