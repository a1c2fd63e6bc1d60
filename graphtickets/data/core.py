"""The dataset registry and the :func:`load` / :func:`info` front end.

A dataset is registered as a :class:`DatasetSource`: its :class:`DatasetInfo` (input shape,
number of classes, a one-line description and the citation), a loader
``loader(split, root, download, **args) -> (inputs, targets)`` that returns numpy arrays
for the fixed ``"train"`` or ``"test"`` split, and the variant arguments it takes
(:class:`~graphtickets.data.variants.Param`: its own, passed to the loader, and the generic
transforms ``classes`` / ``label_perm`` / ``pixel_perm`` applied here). :func:`load` validates
the arguments strictly, applies the transforms, adds the seeded validation split and wraps the
arrays in a :class:`NamedTensorDataset` (a ``TensorDataset`` that carries the dataset's label,
``name`` or ``name[args]``, so that :func:`graphtickets.pruning.prune` can record the exact task
in a ticket's provenance).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import TensorDataset

from graphtickets._registry import Registry
from graphtickets.data.variants import (
    Param,
    apply_transforms,
    check_args,
    format_label,
    generic_params,
    parse_label,
)
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
    "resolve",
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
    """A registered dataset: its :class:`DatasetInfo`, its loader and the variant arguments it takes.

    Attributes
    ----------
    name : str
    info : DatasetInfo
        Of the plain dataset (no arguments).
    loader : callable
        ``loader(split, root, download, **args)``; ``args`` are the non-default ones of ``params``.
    params : mapping
        ``name -> Param``: the loader's own arguments (e.g. the MNIST-1D generator's).
    transforms : mapping
        ``name -> Param``: the generic transforms this dataset offers (applied by :func:`load`).
    in_shape_of : callable, optional
        ``in_shape_of(args) -> in_shape`` when the loader's arguments change the input shape.
    cross_check : callable, optional
        ``cross_check(args)`` raises :class:`DataError` for arguments valid alone but not together.
    hints : mapping
        ``unknown key -> sentence`` added to the error of a key users are known to mistake.
    """

    name: str
    info: DatasetInfo
    loader: Loader
    params: Mapping[str, Param] = field(default_factory=dict)
    transforms: Mapping[str, Param] = field(default_factory=dict)
    in_shape_of: Callable[[Mapping[str, Any]], tuple[int, ...]] | None = None
    cross_check: Callable[[Mapping[str, Any]], None] | None = None
    hints: Mapping[str, str] = field(default_factory=dict)

    def all_params(self) -> dict[str, Param]:
        """Every argument the dataset takes: its own and its transforms."""
        return {**self.params, **self.transforms}

    def variant_info(self, args: Mapping[str, Any]) -> DatasetInfo:
        """The :class:`DatasetInfo` of the variant with canonical arguments ``args``."""
        out = self.info
        own = {k: v for k, v in args.items() if k in self.params}
        if own and self.in_shape_of is not None:
            out = replace(out, in_shape=tuple(self.in_shape_of(own)))
        if args.get("classes") is not None:
            out = replace(out, num_classes=len(args["classes"]))
        return out


class NamedTensorDataset(TensorDataset):
    """A ``TensorDataset`` that knows which dataset and split it holds.

    Parameters
    ----------
    *tensors : torch.Tensor
        As for ``TensorDataset``: inputs and targets, equal first dimension.
    dataset_name : str, optional
        The registry name (``"digits"``, ``"mnist1d"``, ...), or a variant's label
        (``"mnist1d[shuffle_seq]"``).
    split : str, optional
        ``"train"``, ``"val"`` or ``"test"``.
    dataset_args : mapping, optional
        The variant's canonical arguments (empty for the plain dataset).

    Examples
    --------
    >>> ds = NamedTensorDataset(torch.zeros(3, 2), torch.zeros(3), dataset_name="toy", split="train")
    >>> len(ds), ds.dataset_name, ds.split
    (3, 'toy', 'train')
    """

    def __init__(
        self,
        *tensors: torch.Tensor,
        dataset_name: str | None = None,
        split: str | None = None,
        dataset_args: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(*tensors)
        self.dataset_name = dataset_name
        self.split = split
        self.dataset_args = dict(dataset_args or {})

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


def register_dataset(
    name: str,
    info: DatasetInfo,
    *,
    params: Mapping[str, Param] | None = None,
    transforms: tuple[str, ...] = ("classes", "label_perm"),
    in_shape_of: Callable[[Mapping[str, Any]], tuple[int, ...]] | None = None,
    cross_check: Callable[[Mapping[str, Any]], None] | None = None,
    hints: Mapping[str, str] | None = None,
) -> Callable[[Loader], Loader]:
    """Decorator registering ``loader`` as dataset ``name`` in :data:`DATASETS`.

    Parameters
    ----------
    name : str
        The name users pass to :func:`load`.
    info : DatasetInfo
        Shapes, class count, description and citation (of the plain dataset).
    params : mapping, optional
        The loader's own variant arguments (``name -> Param``); none by default.
    transforms : tuple of str
        Which generic transforms the dataset offers: ``classes``, ``label_perm``, ``pixel_perm``.
    in_shape_of, cross_check, hints
        See :class:`DatasetSource`.

    Returns
    -------
    callable
        A decorator that registers the loader and returns it unchanged.
    """
    generic = generic_params(info.num_classes, pixels=True)
    unknown = sorted(set(transforms) - set(generic))
    if unknown:
        raise ValueError(f"dataset {name!r}: unknown transform(s) {unknown}; use {sorted(generic)}")

    def deco(loader: Loader) -> Loader:
        source = DatasetSource(
            name=name, info=info, loader=loader, params=dict(params or {}),
            transforms={k: generic[k] for k in transforms}, in_shape_of=in_shape_of,
            cross_check=cross_check, hints=dict(hints or {}),
        )  # fmt: skip
        DATASETS.register(name, source)
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


def resolve(name: str, args: Mapping[str, Any] | None = None) -> tuple[DatasetSource, dict[str, Any]]:
    """The source of dataset ``name`` and the canonical variant arguments ``args`` make.

    Parameters
    ----------
    name : str
        A key of :data:`DATASETS`, or a label ``name[key,key=value,...]`` (as
        :func:`~graphtickets.data.variants.format_label` writes it and tickets record it).
    args : mapping, optional
        Variant arguments (besides those in the label; a key in both is an error).

    Returns
    -------
    (DatasetSource, dict)
        The canonical arguments: checked, in canonical types, defaults dropped, keys sorted.

    Raises
    ------
    UnknownNameError
        An unknown dataset.
    DataError
        An unknown argument (the message lists the valid ones with their types and ranges), a
        wrong type, a value out of range, or arguments that do not go together.
    """
    base, from_label = parse_label(name) if isinstance(name, str) else (name, {})
    source = DATASETS.get_or_raise(base)
    args = dict(args or {})
    both = sorted(set(from_label) & set(args))
    if both:
        raise DataError(f"dataset {name!r}: {', '.join(both)} given both in the label and as an argument; give it once")
    canonical = check_args(base, source.all_params(), {**from_label, **args}, hints=source.hints)
    if source.cross_check is not None:
        source.cross_check({k: v for k, v in canonical.items() if k in source.params})
    return source, canonical


def info(name: str, **variant: Any) -> DatasetInfo:
    """The :class:`DatasetInfo` of dataset ``name`` (or of its variant; no data is read).

    Parameters
    ----------
    name : str
        A key of :data:`DATASETS`, or a variant's label (``"mnist1d[shuffle_seq]"``).
    **variant
        The dataset's variant arguments (see :func:`load`); ``num_classes`` follows a
        ``classes`` subset and ``in_shape`` an argument that changes it (``final_seq_length``).

    Returns
    -------
    DatasetInfo

    Examples
    --------
    >>> info("mnist1d").in_shape, info("mnist1d").num_classes
    ((40,), 10)
    >>> info("mnist1d", classes=[0, 1, 2]).num_classes
    3
    """
    source, args = resolve(name, variant)
    return source.variant_info(args)


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
    **variant: Any,
) -> NamedTensorDataset:
    """Load a dataset split (or a variant's) as a ``TensorDataset`` of float32 inputs and int64 targets.

    The train/test split of every dataset is fixed (it never depends on ``seed``). With
    ``val_fraction > 0`` a seeded fraction of the training set is held out as ``"val"`` and
    ``"train"`` excludes it; ``seed`` chooses which examples, and nothing else (it is not the
    MNIST-1D generator's seed: that is the variant argument ``data_seed``).

    Parameters
    ----------
    name : str
        A key of :data:`DATASETS` (``"mnist1d"``, ``"digits"``, ``"mnist"``, ...), or a
        variant's label (``"mnist1d[shuffle_seq]"``).
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
        Fraction of the training set held out as ``"val"`` (of the variant's examples).
    **variant
        The dataset's variant arguments, validated strictly: the loader's own (``mnist1d``:
        every generator argument, e.g. ``shuffle_seq``, ``data_seed``, ``iid_noise_scale``,
        ``num_samples``; CIFAR: ``standardize``) and the transforms it offers (``classes``,
        ``label_perm``; ``pixel_perm`` for image datasets). ``DATASETS[name].all_params()``
        lists them. The transforms are applied in that order, before the validation split.

    Returns
    -------
    NamedTensorDataset
        A ``TensorDataset`` of ``(inputs, targets)`` with inputs of shape
        ``(n, *info(name, **variant).in_shape)``; ``.dataset_name`` is the variant's label
        (``name`` for the plain dataset), ``.dataset_args`` its canonical arguments and
        ``.split`` is ``split`` (batches and :func:`~graphtickets.data.take` keep the name,
        and :func:`~graphtickets.pruning.prune` records it).

    Raises
    ------
    DataError
        Bad split or fraction, an unknown variant argument, a wrong type or a value out of
        range, or files absent.

    Examples
    --------
    >>> ds = load("digits", split="test")
    >>> len(ds), tuple(ds.tensors[0].shape[1:]), ds.dataset_name
    (360, (1, 8, 8), 'digits')
    >>> sub = load("digits", split="test", classes=[3, 8])
    >>> sub.dataset_name, sorted(set(sub.tensors[1].tolist()))
    ('digits[classes=3+8]', [0, 1])
    """
    source, args = resolve(name, variant)
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r} for {name!r}; use one of {', '.join(SPLITS)}")
    if split == "val" and val_fraction == 0.0:
        raise DataError("split='val' needs val_fraction > 0 (the fraction of train held out)")
    if not 0.0 <= float(val_fraction) < 1.0:
        raise DataError(f"val_fraction must be in [0, 1), got {val_fraction!r}")
    base = "test" if split == "test" else "train"
    own = {k: v for k, v in args.items() if k in source.params}
    x, y = source.loader(base, data_root(root), bool(download), **own)
    x, y = apply_transforms(x, y, {k: v for k, v in args.items() if k in source.transforms},
                            source.info.num_classes)  # fmt: skip
    if split != "test" and val_fraction > 0.0:
        tr, va = split_indices(len(y), float(val_fraction), int(seed))
        idx = va if split == "val" else tr
        x, y = x[idx], y[idx]
    inputs = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    targets = torch.from_numpy(np.ascontiguousarray(y, dtype=np.int64))
    expected = source.variant_info(args).in_shape
    if tuple(inputs.shape[1:]) != tuple(expected):
        raise DataError(
            f"dataset {name!r} gave inputs of shape {tuple(inputs.shape[1:])}, expected {expected}: "
            f"the files under the data root are not the official ones"
        )
    label = format_label(source.name, args)
    return NamedTensorDataset(inputs, targets, dataset_name=label, split=split, dataset_args=args)
