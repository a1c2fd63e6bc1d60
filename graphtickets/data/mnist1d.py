"""MNIST-1D (Greydanus 2020), generated locally and cached as ``.npz``.

The data come from the ``mnist1d`` package's own generator
(``mnist1d.data.make_dataset(get_dataset_args())``), never from its download path. The
generator seeds numpy's and Python's global random state; :func:`generate` saves and
restores both around the call, so loading MNIST-1D leaves the caller's global RNGs as they
were. The arrays are kept as the package makes them (already centred with unit standard
deviation over the whole set); no further standardisation is applied.

Task variants are the generator's own arguments (:data:`PARAMS`, checked strictly): every key
of ``get_dataset_args()`` except ``url``, with the generator's ``seed`` named ``data_seed`` (so
it is never confused with the ``seed`` of :func:`graphtickets.data.load`, the validation
hold-out). ``shuffle_seq=True`` is the generator's own position shuffle: the very same samples
(the permutation is drawn after them, from the generator's RNG), their positions permuted by
one permutation fixed by ``data_seed``. The class transforms ``classes`` and ``label_perm``
apply on top (``pixel_perm`` is not offered: ``shuffle_seq`` is that task).

The generated arrays are cached under ``<data root>/mnist1d/`` in a file named by a hash of
the full generator arguments (every one, defaults included, and the ``mnist1d`` version), so
each variant has its own file; written atomically (temporary file + rename) and read back
with ``allow_pickle=False``. The class transforms are applied on load and not cached.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from graphtickets._io import write_output
from graphtickets.data.core import DatasetInfo, register_dataset
from graphtickets.data.variants import Param, check_args
from graphtickets.errors import DataError

__all__ = ["generator_args", "generate", "cache_path", "load_arrays", "INFO", "PARAMS", "GENERATOR_KEYS"]

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


_BIG = 10**7

#: The generator's arguments as variant arguments; defaults are the package's
#: (``get_dataset_args()``, checked by a test), ranges those the generator runs with.
PARAMS: dict[str, Param] = {p.name: p for p in (
    Param("num_samples", "int", 5000, low=20, high=_BIG, doc="examples in all (train + test), per class num_samples // 10"),
    Param("train_split", "float", 0.8, low=0.0, high=1.0, high_open=True, doc="fraction of the examples in train"),
    Param("template_len", "int", 12, low=1, high=10_000, doc="length the template is dilated to (before padding)"),
    Param("padding", "ints", (36, 60), low=0, high=10_000, length=2, doc="[low, high] of the random zero padding"),
    Param("scale_coeff", "float", 0.4, low=0.0, high=2.0, high_open=True, doc="random amplitude scale 1 + c*(u-1/2)"),
    Param("max_translation", "int", 48, low=1, high=10_000, doc="random circular shift in [0, max_translation)"),
    Param("corr_noise_scale", "float", 0.25, low=0.0, high=1e3, doc="correlated (smoothed) background noise"),
    Param("iid_noise_scale", "float", 2e-2, low=0.0, high=1e3, doc="i.i.d. Gaussian noise"),
    Param("shear_scale", "float", 0.75, low=0.0, high=1e3, doc="random linear shear"),
    Param("shuffle_seq", "bool", False, doc="permute the positions by one permutation fixed by data_seed"),
    Param("final_seq_length", "int", 40, low=2, high=10_000, doc="length of a signal (the input shape)"),
    Param("data_seed", "int", 42, low=0, high=2**32 - 1, doc="the generator's seed (not load's seed)"),
)}  # fmt: skip

#: ``our name -> the generator's`` where they differ.
GENERATOR_KEYS = {"data_seed": "seed"}

_HINTS = {"seed": "The generator's seed is 'data_seed' ('seed' of load is the validation hold-out's)."}


def _cross_check(args: Mapping[str, Any]) -> None:
    """Arguments valid alone but not together: padding order, both splits non-empty."""
    lo, hi = args.get("padding", PARAMS["padding"].default)
    if lo > hi:
        raise DataError(f"mnist1d: padding is [low, high] with low <= high, got {[lo, hi]}")
    n = (int(args.get("num_samples", PARAMS["num_samples"].default)) // 10) * 10
    n_train = int(n * float(args.get("train_split", PARAMS["train_split"].default)))
    if not 0 < n_train < n:
        raise DataError(
            f"mnist1d: num_samples={n} with train_split={args.get('train_split', 0.8)} leaves an empty "
            f"train or test split ({n_train} train); raise num_samples or move train_split towards 0.5"
        )


def generator_args(**variant: Any) -> dict[str, Any]:
    """The ``mnist1d`` generator arguments (the package defaults, then ``variant``), as a plain dict.

    Parameters
    ----------
    **variant
        Keys of :data:`PARAMS` (``num_samples``, ``shuffle_seq``, ``data_seed``, ...); checked.

    Returns
    -------
    dict
        The generator's own keys (``seed``, not ``data_seed``), without ``url`` (the download
        path is never used); tuples as lists, as the package writes them.
    """
    from mnist1d.data import get_dataset_args

    canonical = check_args("mnist1d", PARAMS, variant, hints=_HINTS)
    _cross_check(canonical)
    args = dict(get_dataset_args(as_dict=True))
    args.pop("url", None)
    for key, value in canonical.items():
        args[GENERATOR_KEYS.get(key, key)] = list(value) if isinstance(value, tuple) else value
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
    payload: dict[str, Any] = {"args": np.array(json.dumps(args, sort_keys=True)), **arrays}
    write_output(path, lambda fh: np.savez(fh, **payload), what="MNIST-1D cache")


def _read(path: Path) -> dict[str, np.ndarray] | None:
    try:
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in ("x", "y", "x_test", "y_test")}
    except FileNotFoundError:
        return None
    except Exception as exc:  # a truncated or foreign file: regenerate it
        log.warning("ignoring unreadable MNIST-1D cache %s (%s); regenerating", path, exc)
        return None


def load_arrays(root: Path, **variant: Any) -> dict[str, np.ndarray]:
    """The MNIST-1D arrays of ``variant``: from the cache under ``root``, else generated and cached."""
    args = generator_args(**variant)
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


@register_dataset("mnist1d", INFO, params=PARAMS, transforms=("classes", "label_perm"),
                  in_shape_of=lambda a: (int(a.get("final_seq_length", 40)),), cross_check=_cross_check,
                  hints=_HINTS)  # fmt: skip
def _load(split: str, root: Path, download: bool, **variant: Any) -> tuple[np.ndarray, np.ndarray]:
    arrays = load_arrays(root, **variant)
    if split == "test":
        return arrays["x_test"], arrays["y_test"]
    return arrays["x"], arrays["y"]
