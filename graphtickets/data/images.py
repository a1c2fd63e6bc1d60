"""MNIST, Fashion-MNIST, CIFAR-10 and CIFAR-100 from a local folder (torchvision's layout).

The files are read in their official distribution formats with numpy (torchvision is not a
dependency):

* MNIST / Fashion-MNIST: ``<root>/MNIST/raw/`` and ``<root>/FashionMNIST/raw/`` holding
  ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``,
  ``t10k-labels-idx1-ubyte`` (or the same names with ``.gz``). IDX files: a big-endian
  header (two zero bytes, a type code, the number of dimensions, one uint32 per dimension)
  followed by the data.
* CIFAR-10: ``<root>/cifar-10-batches-py/{data_batch_1..5, test_batch}``; CIFAR-100:
  ``<root>/cifar-100-python/{train, test}``. Python pickles of dicts with ``data``
  (uint8, ``(n, 3072)``, channel-major) and ``labels`` / ``fine_labels``. They are read with
  a restricted unpickler that only rebuilds numpy arrays and plain containers.

Images are scaled to [0, 1]. CIFAR inputs are then standardised per channel with the
datasets' published mean and standard deviation (``standardize=False`` keeps [0, 1]).

When files are absent a :class:`~graphtickets.errors.DataError` names them and the folder.
``download=True`` is the only path that fetches: it calls torchvision's dataset class with
``download=True`` (the optional extra ``pip install 'graphtickets[vision]'`` installs
torchvision), which writes this same layout; any failure there is a
:class:`~graphtickets.errors.DataError`.
"""

from __future__ import annotations

import gzip
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from graphtickets.data.core import DatasetInfo, register_dataset
from graphtickets.data.variants import Param
from graphtickets.errors import DataError

__all__ = [
    "read_idx",
    "read_cifar_batch",
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "CIFAR100_MEAN",
    "CIFAR100_STD",
]

#: Per-channel mean and std of the CIFAR training sets (inputs scaled to [0, 1]).
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
CIFAR100_MEAN = (0.5071, 0.4865, 0.4409)
CIFAR100_STD = (0.2673, 0.2564, 0.2762)

_IDX_DTYPES: dict[int, np.dtype[Any]] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (the MNIST format), plain or gzip-compressed.

    Parameters
    ----------
    path : path-like
        The file; a name ending in ``.gz`` is decompressed.

    Returns
    -------
    numpy.ndarray
        With the dimensions the header gives.

    References
    ----------
    LeCun, Y., Cortes, C. & Burges, C. The MNIST database of handwritten digits
    (file format section). http://yann.lecun.com/exdb/mnist/
    """
    path = Path(path)
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise DataError(f"{str(path)!r} is not an IDX file (bad magic number); re-download it")
    dtype = _IDX_DTYPES[raw[2]]
    ndim = raw[3]
    header = 4 + 4 * ndim
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    count = int(np.prod(dims)) if dims else 1
    if len(raw) != header + count * dtype.itemsize:
        raise DataError(
            f"{str(path)!r} is truncated or corrupt: header says {dims} but the file has "
            f"{len(raw) - header} data bytes; re-download it"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays and builtin containers only (the CIFAR batch files)."""

    _ALLOWED = {"_reconstruct", "ndarray", "dtype", "_frombuffer", "scalar"}

    def find_class(self, module: str, name: str) -> Any:
        if module.split(".")[0] == "numpy" and name in self._ALLOWED:
            return super().find_class(module, name)
        if (module, name) in {("builtins", "bytearray"), ("_codecs", "encode")}:
            # bytes in protocol-2 pickles written by Python 3 are rebuilt with _codecs.encode
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a CIFAR batch file")


def read_cifar_batch(path: str | Path, label_key: str) -> tuple[np.ndarray, np.ndarray]:
    """Read one CIFAR python batch file: ``(images (n, 3, 32, 32) uint8, labels int64)``.

    Parameters
    ----------
    path : path-like
        A file such as ``data_batch_1`` or ``train``.
    label_key : str
        ``"labels"`` (CIFAR-10) or ``"fine_labels"`` (CIFAR-100).

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)

    References
    ----------
    Krizhevsky, A. (2009). Learning Multiple Layers of Features from Tiny Images.
    """
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            d = _ArrayUnpickler(fh, encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as exc:
        raise DataError(f"{str(path)!r} is not a readable CIFAR batch file ({exc}); re-download it") from None
    if not isinstance(d, dict) or "data" not in d or label_key not in d:
        raise DataError(f"{str(path)!r} lacks the 'data' / {label_key!r} entries of a CIFAR batch")
    data = np.asarray(d["data"], dtype=np.uint8)
    labels = np.asarray(d[label_key], dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(labels) != len(data):
        raise DataError(
            f"{str(path)!r} has data of shape {data.shape} and {len(labels)} labels; "
            f"expected (n, 3072) and n labels"
        )
    return data.reshape(-1, 3, 32, 32), labels


_VISION_HINT = "pip install 'graphtickets[vision]'"


def _missing_error(name: str, folder: Path, missing: list[str]) -> DataError:
    return DataError(
        f"{name}: missing file(s) {', '.join(missing)} in folder {str(folder)!r}; "
        f"put them there, or pass download=True (CLI: --download) to fetch them with torchvision "
        f"({_VISION_HINT})"
    )


def _download(cls_name: str, root: Path, train: bool) -> None:
    """Fetch ``torchvision.datasets.<cls_name>`` into ``root``; every failure is a DataError."""
    try:
        import torchvision.datasets as tvd  # type: ignore[import-not-found]
    except ImportError:
        raise DataError(
            f"download=True fetches {cls_name} through torchvision, which is not installed; "
            f"install torchvision matching your torch ({_VISION_HINT}), or put the files under "
            f"{str(root)!r} yourself"
        ) from None
    except Exception as exc:  # e.g. a torchvision built for another torch
        raise DataError(
            f"download=True needs torchvision, but importing it failed ({type(exc).__name__}: {exc}); "
            f"install the torchvision that matches your torch"
        ) from None
    cls = getattr(tvd, cls_name, None)
    if cls is None:
        raise DataError(f"this torchvision has no datasets.{cls_name}; upgrade torchvision")
    try:
        root.mkdir(parents=True, exist_ok=True)
        cls(str(root), train=train, download=True)
    except Exception as exc:  # network, checksum, disk: torchvision raises many types
        raise DataError(
            f"downloading {cls_name} ({'train' if train else 'test'}) into {str(root)!r} through "
            f"torchvision failed: {type(exc).__name__}: {exc}"
        ) from None


# ---------------------------------------------------------------- MNIST-style (IDX)
_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def _find(folder: Path, name: str) -> Path | None:
    for cand in (folder / name, folder / f"{name}.gz"):
        if cand.is_file():
            return cand
    return None


def _load_idx_dataset(
    name: str, tv_class: str, split: str, root: Path, download: bool
) -> tuple[np.ndarray, np.ndarray]:
    folder = root / tv_class / "raw"
    names = _IDX_FILES[split]
    found = [_find(folder, n) for n in names]
    if any(f is None for f in found) and download:
        _download(tv_class, root, train=split == "train")
        found = [_find(folder, n) for n in names]
    missing = [n for n, f in zip(names, found, strict=True) if f is None]
    if missing:
        raise _missing_error(name, folder, missing)
    img_path, lab_path = found
    assert img_path is not None and lab_path is not None
    images = read_idx(img_path)
    labels = read_idx(lab_path).astype(np.int64)
    if images.ndim != 3 or images.shape[1:] != (28, 28) or len(labels) != len(images):
        raise DataError(
            f"{name}: {img_path.name} has shape {images.shape} and {lab_path.name} {labels.shape}; "
            f"expected (n, 28, 28) and (n,)"
        )
    x = images.astype(np.float32).reshape(-1, 1, 28, 28) / np.float32(255.0)
    return x, labels


#: The variants every image dataset offers: class subsets, relabelling, permuted pixels.
_TRANSFORMS = ("classes", "label_perm", "pixel_perm")

_STANDARDIZE = {"standardize": Param("standardize", "bool", True, doc="standardise per channel (else [0, 1])")}


def _idx_info(description: str, citation: str) -> DatasetInfo:
    return DatasetInfo(in_shape=(1, 28, 28), num_classes=10, description=description,
                       citation=citation, needs_files=True)  # fmt: skip


def _register_idx(name: str, tv_class: str, info: DatasetInfo) -> None:
    """Register dataset ``name``: the IDX files in torchvision's ``<root>/<tv_class>/raw``."""

    def loader(split: str, root: Path, download: bool) -> tuple[np.ndarray, np.ndarray]:
        return _load_idx_dataset(name, tv_class, split, root, download)

    loader.__name__ = loader.__qualname__ = f"_load_{name}"
    register_dataset(name, info, transforms=_TRANSFORMS)(loader)


_register_idx("mnist", "MNIST", _idx_info(
    "MNIST handwritten digits, 60000 train / 10000 test, scaled to [0, 1]",
    "LeCun, Y., Bottou, L., Bengio, Y. & Haffner, P. (1998). Gradient-based learning "
    "applied to document recognition. Proc. IEEE 86(11).",
))  # fmt: skip
_register_idx("fashion_mnist", "FashionMNIST", _idx_info(
    "Fashion-MNIST clothing images, 60000 train / 10000 test, scaled to [0, 1]",
    "Xiao, H., Rasul, K. & Vollgraf, R. (2017). Fashion-MNIST: a novel image dataset "
    "for benchmarking machine learning algorithms. arXiv:1708.07747.",
))  # fmt: skip


# ---------------------------------------------------------------- CIFAR (pickled batches)
@dataclass(frozen=True)
class _CifarLayout:
    num_classes: int
    description: str
    folder: str
    train: tuple[str, ...]
    test: tuple[str, ...]
    label_key: str
    tv_class: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


_CIFAR = {
    "cifar10": _CifarLayout(
        num_classes=10,
        description="CIFAR-10 colour images",
        folder="cifar-10-batches-py",
        train=tuple(f"data_batch_{i}" for i in range(1, 6)),
        test=("test_batch",),
        label_key="labels",
        tv_class="CIFAR10",
        mean=CIFAR10_MEAN,
        std=CIFAR10_STD,
    ),
    "cifar100": _CifarLayout(
        num_classes=100,
        description="CIFAR-100 colour images (100 fine classes)",
        folder="cifar-100-python",
        train=("train",),
        test=("test",),
        label_key="fine_labels",
        tv_class="CIFAR100",
        mean=CIFAR100_MEAN,
        std=CIFAR100_STD,
    ),
}

_CITE_CIFAR = "Krizhevsky, A. (2009). Learning Multiple Layers of Features from Tiny Images. Tech. report, U. Toronto."


def _load_cifar(
    name: str, split: str, root: Path, download: bool, standardize: bool
) -> tuple[np.ndarray, np.ndarray]:
    spec = _CIFAR[name]
    folder = root / spec.folder
    names = spec.train if split == "train" else spec.test
    missing = [n for n in names if not (folder / n).is_file()]
    if missing and download:
        _download(spec.tv_class, root, train=split == "train")
        missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        raise _missing_error(name, folder, missing)
    parts = [read_cifar_batch(folder / n, spec.label_key) for n in names]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    x = images.astype(np.float32) / np.float32(255.0)
    if standardize:
        mean = np.asarray(spec.mean, dtype=np.float32).reshape(1, 3, 1, 1)
        std = np.asarray(spec.std, dtype=np.float32).reshape(1, 3, 1, 1)
        x = (x - mean) / std
    return x, labels


def _register_cifar(name: str) -> None:
    """Register dataset ``name`` (a key of ``_CIFAR``) with its loader and info."""
    spec = _CIFAR[name]

    def loader(split: str, root: Path, download: bool, standardize: bool = True) -> tuple[np.ndarray, np.ndarray]:
        return _load_cifar(name, split, root, download, standardize)

    loader.__name__ = loader.__qualname__ = f"_load_{name}"
    info = DatasetInfo(
        in_shape=(3, 32, 32),
        num_classes=spec.num_classes,
        description=(
            f"{spec.description}, 50000 train / 10000 test, scaled to [0, 1] then "
            f"standardised per channel with the published mean/std"
        ),
        citation=_CITE_CIFAR,
        needs_files=True,
    )
    register_dataset(name, info, params=_STANDARDIZE, transforms=_TRANSFORMS)(loader)


for _name in _CIFAR:
    _register_cifar(_name)
