"""The dataset registry and the :func:`load` / :func:`info` front end.

A dataset is registered as a :class:`DatasetSource`: its :class:`DatasetInfo` (input shape,
number of classes, a one-line description and the citation) and a loader
``loader(split, root, download, **options) -> (inputs, targets)`` that returns numpy arrays
for the fixed ``"train"`` or ``"test"`` split. :func:`load` adds the seeded validation split
and wraps the arrays in a :class:`NamedTensorDataset` (a ``TensorDataset`` that carries the
dataset's name, so that :func:`graphtickets.pruning.prune` can record it in a ticket's provenance).
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import TensorDataset

from graphtickets._registry import Registry
from graphtickets.errors import DataError

__all__ = [
    "DatasetInfo",
    "DatasetSource",
    "NamedTensorDataset",
    "dataset_name",
    "DATASETS",
    "register_dataset",
    "data_root",
    "info",
    "load",
    "split_indices",
    "SPLITS",
]

#: The split names :func:`load` accepts.
SPLITS = ("train", "val", "test")

#: ``loader(split, root, download, **options) -> (inputs, targets)`` for split "train"/"test".
Loader = Callable[..., tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class DatasetInfo:
    """What a model needs to know about a dataset.

    Attributes
    ----------
    in_shape : tuple of int
        Shape of one input, without the batch dimension (``(40,)``, ``(1, 28, 28)``, ...).
    num_classes : int
        Number of target classes; targets are ``0 .. num_classes - 1``.
    description : str
        One line on what the data is and how it is preprocessed.
    citation : str
        The paper to cite.
    needs_files : bool
        True when the data must be present under the data root (or fetched with
        ``download=True``); False when it is generated or bundled locally.
    """

    in_shape: tuple[int, ...]
    num_classes: int
    description: str = ""
    citation: str = ""
    needs_files: bool = False


@dataclass(frozen=True)
class DatasetSource:
    """A registered dataset: its :class:`DatasetInfo` and its loader function."""

    name: str
    info: DatasetInfo
    loader: Loader


class NamedTensorDataset(TensorDataset):
    """A ``TensorDataset`` that knows which dataset and split it holds.

    Parameters
    ----------
    *tensors : torch.Tensor
        As for ``TensorDataset``: inputs and targets, equal first dimension.
    dataset_name : str, optional
        The registry name (``"digits"``, ``"mnist1d"``, ...).
    split : str, optional
        ``"train"``, ``"val"`` or ``"test"``.

    Examples
    --------
    >>> ds = NamedTensorDataset(torch.zeros(3, 2), torch.zeros(3), dataset_name="toy", split="train")
    >>> len(ds), ds.dataset_name, ds.split
    (3, 'toy', 'train')
    """

    def __init__(self, *tensors: torch.Tensor, dataset_name: str | None = None, split: str | None = None) -> None:
        super().__init__(*tensors)
        self.dataset_name = dataset_name
        self.split = split

    def __repr__(self) -> str:
        return f"NamedTensorDataset({self.dataset_name!r}, split={self.split!r}, n={len(self)})"


def dataset_name(obj: Any) -> str | None:
    """The dataset name ``obj`` carries: its ``dataset_name``, or that of the dataset it wraps.

    Looks through ``Subset`` (``.dataset``) and similar wrappers; ``None`` when there is none.

    Parameters
    ----------
    obj : object
        A dataset, a :class:`~graphtickets.data.Batches`, a list from
        :func:`~graphtickets.data.take`, a ``DataLoader``, ...

    Returns
    -------
    str or None
    """
    for _ in range(8):  # wrappers of wrappers, bounded
        name = getattr(obj, "dataset_name", None)
        if isinstance(name, str):
            return name
        obj = getattr(obj, "dataset", None)
        if obj is None:
            return None
    return None


#: ``name -> DatasetSource`` of every dataset :func:`load` knows.
DATASETS: Registry[DatasetSource] = Registry("dataset")


def register_dataset(name: str, info: DatasetInfo) -> Callable[[Loader], Loader]:
    """Decorator registering ``loader`` as dataset ``name`` in :data:`DATASETS`.

    Parameters
    ----------
    name : str
        The name users pass to :func:`load`.
    info : DatasetInfo
        Shapes, class count, description and citation.

    Returns
    -------
    callable
        A decorator that registers the loader and returns it unchanged.
    """

    def deco(loader: Loader) -> Loader:
        DATASETS.register(name, DatasetSource(name=name, info=info, loader=loader))
        return loader

    return deco


def data_root(root: str | os.PathLike[str] | None = None) -> Path:
    """The data root: ``root`` if given, else ``$GRAPHTICKETS_DATA``, else ``~/.cache/graphtickets``.

    Parameters
    ----------
    root : path-like, optional
        An explicit root.

    Returns
    -------
    pathlib.Path
        The (not necessarily existing) folder.
    """
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get("GRAPHTICKETS_DATA")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "graphtickets"


def info(name: str) -> DatasetInfo:
    """The :class:`DatasetInfo` of dataset ``name`` (no data is read).

    Parameters
    ----------
    name : str
        A key of :data:`DATASETS`.

    Returns
    -------
    DatasetInfo

    Examples
    --------
    >>> info("mnist1d").in_shape, info("mnist1d").num_classes
    ((40,), 10)
    """
    return DATASETS.get_or_raise(name).info


def split_indices(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split ``range(n)`` into sorted (train, val) index arrays, seeded.

    ``round(val_fraction * n)`` examples (at least one) go to val, drawn uniformly without
    replacement with ``numpy.random.default_rng(seed)``.

    Parameters
    ----------
    n : int
        Number of training examples.
    val_fraction : float
        In ``[0, 1)``; 0 gives an empty val split.
    seed : int
        Seed of the draw.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        Train and val indices, each sorted ascending, disjoint, covering ``range(n)``.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise DataError(f"val_fraction must be in [0, 1), got {val_fraction!r}")
    if val_fraction == 0.0:
        return np.arange(n), np.arange(0)
    n_val = max(1, round(val_fraction * n))
    if n_val >= n:
        raise DataError(
            f"val_fraction={val_fraction} leaves no training data out of {n} examples; use a smaller fraction"
        )
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def load(
    name: str,
    *,
    split: str = "train",
    root: str | os.PathLike[str] | None = None,
    seed: int = 0,
    download: bool = False,
    val_fraction: float = 0.0,
    **options: Any,
) -> NamedTensorDataset:
    """Load a dataset split as a ``TensorDataset`` of float32 inputs and int64 targets.

    The train/test split of every dataset is fixed (it never depends on ``seed``). With
    ``val_fraction > 0`` a seeded fraction of the training set is held out as ``"val"`` and
    ``"train"`` excludes it; ``seed`` chooses which examples, and nothing else.

    Parameters
    ----------
    name : str
        A key of :data:`DATASETS` (``"mnist1d"``, ``"digits"``, ``"mnist"``, ...).
    split : {"train", "val", "test"}
        Which split.
    root : path-like, optional
        Data root (see :func:`data_root`): the cache of generated data and the folder of
        file-based datasets.
    seed : int, default 0
        Seed of the validation hold-out.
    download : bool, default False
        Fetch missing files through torchvision (the only path that touches the network).
    val_fraction : float, default 0.0
        Fraction of the training set held out as ``"val"``.
    **options
        Dataset-specific options (e.g. ``num_samples`` for ``mnist1d``, ``standardize``
        for CIFAR).

    Returns
    -------
    NamedTensorDataset
        A ``TensorDataset`` of ``(inputs, targets)`` with inputs of shape
        ``(n, *info(name).in_shape)``; ``.dataset_name`` is ``name`` and ``.split`` is ``split``
        (batches and :func:`~graphtickets.data.take` keep the name, and
        :func:`~graphtickets.pruning.prune` records it).

    Raises
    ------
    DataError
        Bad split or fraction, unknown option, or files absent.

    Examples
    --------
    >>> ds = load("digits", split="test")
    >>> len(ds), tuple(ds.tensors[0].shape[1:]), ds.dataset_name
    (360, (1, 8, 8), 'digits')
    """
    source = DATASETS.get_or_raise(name)
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r} for {name!r}; use one of {', '.join(SPLITS)}")
    if split == "val" and val_fraction == 0.0:
        raise DataError("split='val' needs val_fraction > 0 (the fraction of train held out)")
    if not 0.0 <= float(val_fraction) < 1.0:
        raise DataError(f"val_fraction must be in [0, 1), got {val_fraction!r}")
    params = inspect.signature(source.loader).parameters
    accepted = [p for p in params if p not in ("split", "root", "download")]
    bad = [k for k in options if k not in accepted]
    if bad:
        raise DataError(
            f"dataset {name!r} takes no option(s) {bad}; its options are: {accepted or 'none'}"
        )
    base = "test" if split == "test" else "train"
    x, y = source.loader(base, data_root(root), bool(download), **options)
    if split != "test" and val_fraction > 0.0:
        tr, va = split_indices(len(y), float(val_fraction), int(seed))
        idx = va if split == "val" else tr
        x, y = x[idx], y[idx]
    inputs = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    targets = torch.from_numpy(np.ascontiguousarray(y, dtype=np.int64))
    expected = source.info.in_shape
    if tuple(inputs.shape[1:]) != tuple(expected):
        raise DataError(
            f"dataset {name!r} gave inputs of shape {tuple(inputs.shape[1:])}, expected {expected}: "
            f"the files under the data root are not the official ones"
        )
    return NamedTensorDataset(inputs, targets, dataset_name=name, split=split)
