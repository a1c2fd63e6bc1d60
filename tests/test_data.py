"""Tests of gt.data: loaders on small fake files written here in the official formats,
MNIST-1D generation and caching, splits, and batching."""

from __future__ import annotations

import gzip
import os
import pickle
import random
import struct
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import Subset, TensorDataset

import graphtickets as gt
from graphtickets.data import DATASETS, batches, info, load, take
from graphtickets.errors import DataError, UnknownNameError

# ----------------------------------------------------------------- fake files (independent writers)


def write_idx(path: Path, array: np.ndarray, *, compress: bool = False) -> None:
    """IDX: 0x0000, type 0x08 (uint8), ndim, big-endian uint32 dims, raw bytes."""
    a = np.asarray(array, dtype=np.uint8)
    blob = struct.pack(">HBB", 0, 0x08, a.ndim) + struct.pack(f">{a.ndim}I", *a.shape) + a.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if compress:
        path = path.with_name(path.name + ".gz")
        blob = gzip.compress(blob)
    path.write_bytes(blob)


def write_cifar(path: Path, images: np.ndarray, labels: list[int], key: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    flat = np.ascontiguousarray(images, dtype=np.uint8).reshape(len(images), -1)
    entry = {"batch_label": "fake", key: labels, "data": flat, "filenames": [f"{i}.png" for i in range(len(labels))]}
    if key == "fine_labels":
        entry["coarse_labels"] = [lab // 5 for lab in labels]
    with open(path, "wb") as fh:
        pickle.dump(entry, fh, protocol=2)


def make_fake_root(root: Path) -> dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Write tiny MNIST (plain), Fashion-MNIST (gzipped), CIFAR-10 and CIFAR-100 under root.

    Returns the raw uint8 images and labels written, per dataset and split.
    """
    rng = np.random.default_rng(123)
    out: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    for name, folder, gz in (("mnist", "MNIST", False), ("fashion_mnist", "FashionMNIST", True)):
        out[name] = {}
        for split, prefix, n in (("train", "train", 7), ("test", "t10k", 3)):
            imgs = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
            labs = rng.integers(0, 10, size=n).astype(np.uint8)
            write_idx(root / folder / "raw" / f"{prefix}-images-idx3-ubyte", imgs, compress=gz)
            write_idx(root / folder / "raw" / f"{prefix}-labels-idx1-ubyte", labs, compress=gz)
            out[name][split] = (imgs, labs)
    c10 = root / "cifar-10-batches-py"
    train = [(rng.integers(0, 256, (2, 3, 32, 32), dtype=np.uint8), [int(v) for v in rng.integers(0, 10, 2)]) for _ in range(5)]
    for i, (im, lab) in enumerate(train, start=1):
        write_cifar(c10 / f"data_batch_{i}", im, lab, "labels")
    test = (rng.integers(0, 256, (3, 3, 32, 32), dtype=np.uint8), [9, 0, 4])
    write_cifar(c10 / "test_batch", *test, "labels")
    out["cifar10"] = {
        "train": (np.concatenate([t[0] for t in train]), np.array(sum((t[1] for t in train), []))),
        "test": (test[0], np.array(test[1])),
    }
    c100 = root / "cifar-100-python"
    out["cifar100"] = {}
    for split, n in (("train", 6), ("test", 2)):
        im = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
        lab = [int(v) for v in rng.integers(0, 100, n)]
        lab[0] = 99
        write_cifar(c100 / split, im, lab, "fine_labels")
        out["cifar100"][split] = (im, np.array(lab))
    return out


@pytest.fixture
def fake_root(tmp_path: Path) -> tuple[Path, dict]:
    return tmp_path, make_fake_root(tmp_path)


# ----------------------------------------------------------------- contract over every dataset


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_every_dataset_info_and_load(name: str, fake_root, gt_data_root: Path) -> None:
    meta = info(name)
    assert isinstance(meta.in_shape, tuple) and all(isinstance(s, int) and s > 0 for s in meta.in_shape)
    assert isinstance(meta.num_classes, int) and meta.num_classes >= 2
    assert meta.description and "\n" not in meta.description
    assert meta.citation
    with pytest.raises(AttributeError):
        meta.num_classes = 3  # type: ignore[misc]  (frozen)
    root = fake_root[0] if meta.needs_files else gt_data_root
    for split in ("train", "test"):
        ds = load(name, split=split, root=root)
        x, y = ds.tensors
        assert isinstance(ds, TensorDataset)
        assert x.dtype == torch.float32 and y.dtype == torch.int64
        assert tuple(x.shape[1:]) == meta.in_shape and len(x) == len(y) > 0
        assert int(y.min()) >= 0 and int(y.max()) < meta.num_classes
        assert torch.isfinite(x).all()


def test_registry_names_and_errors() -> None:
    assert {"mnist1d", "digits", "mnist", "fashion_mnist", "cifar10", "cifar100"} <= set(DATASETS)
    assert info("mnist1d").in_shape == (40,) and info("mnist1d").num_classes == 10
    assert info("cifar100").num_classes == 100 and info("mnist").in_shape == (1, 28, 28)
    with pytest.raises(UnknownNameError, match="mnist1d"):
        info("mnist2d")
    with pytest.raises(UnknownNameError):
        load("imagenet")
    with pytest.raises(DataError, match="split"):
        load("digits", split="validation")
    with pytest.raises(DataError, match="val_fraction"):
        load("digits", split="val")
    with pytest.raises(DataError, match="val_fraction"):
        load("digits", val_fraction=1.0)
    with pytest.raises(DataError, match="num_samples"):
        load("digits", num_samples=10)


# ----------------------------------------------------------------- file-based datasets


def test_idx_datasets_values(fake_root) -> None:
    root, raw = fake_root
    for name in ("mnist", "fashion_mnist"):  # fashion files are gzipped
        for split in ("train", "test"):
            x, y = load(name, split=split, root=root).tensors
            imgs, labs = raw[name][split]
            assert x.shape == (len(imgs), 1, 28, 28)
            np.testing.assert_array_equal(x.numpy()[:, 0], imgs.astype(np.float32) / 255)
            np.testing.assert_array_equal(y.numpy(), labs.astype(np.int64))
            assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0


def test_cifar_values_and_standardisation(fake_root) -> None:
    root, raw = fake_root
    mean = np.array([0.4914, 0.4822, 0.4465], dtype=np.float32)
    std = np.array([0.2470, 0.2435, 0.2616], dtype=np.float32)
    for split in ("train", "test"):
        imgs, labs = raw["cifar10"][split]
        x, y = load("cifar10", split=split, root=root).tensors
        np.testing.assert_array_equal(y.numpy(), labs)
        expect = (imgs.astype(np.float32) / 255 - mean[:, None, None]) / std[:, None, None]
        np.testing.assert_allclose(x.numpy(), expect, rtol=1e-6, atol=1e-6)
        plain = load("cifar10", split=split, root=root, standardize=False).tensors[0]
        np.testing.assert_array_equal(plain.numpy(), imgs.astype(np.float32) / 255)
    # channel-major layout: the first 1024 bytes of a row are the red plane
    x = load("cifar100", split="train", root=root, standardize=False).tensors[0]
    imgs, labs = raw["cifar100"]["train"]
    assert x[0, 0, 0, 5].item() == pytest.approx(imgs.reshape(len(imgs), -1)[0, 5] / 255)
    assert x[0, 1, 0, 0].item() == pytest.approx(imgs.reshape(len(imgs), -1)[0, 1024] / 255)
    assert int(load("cifar100", split="train", root=root).tensors[1][0]) == 99


def test_missing_files_name_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError) as e:
        load("mnist", root=tmp_path)
    msg = str(e.value)
    assert "train-images-idx3-ubyte" in msg and "train-labels-idx1-ubyte" in msg
    assert str(tmp_path / "MNIST" / "raw") in msg and "download=True" in msg and "put them there" in msg
    # only the absent file is named
    write_idx(tmp_path / "FashionMNIST" / "raw" / "t10k-images-idx3-ubyte", np.zeros((2, 28, 28)))
    with pytest.raises(DataError) as e:
        load("fashion_mnist", split="test", root=tmp_path)
    assert "t10k-labels-idx1-ubyte" in str(e.value) and "t10k-images" not in str(e.value)
    with pytest.raises(DataError) as e:
        load("cifar10", split="train", root=tmp_path)
    assert "data_batch_1" in str(e.value) and "data_batch_5" in str(e.value)
    assert str(tmp_path / "cifar-10-batches-py") in str(e.value)
    with pytest.raises(DataError, match="cifar-100-python"):
        load("cifar100", split="test", root=tmp_path)


def test_download_without_torchvision_says_install(tmp_path: Path) -> None:
    try:
        import torchvision  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("torchvision is installed; download would reach the network")
    with pytest.raises(DataError, match="install torchvision"):
        load("mnist", root=tmp_path, download=True)


def test_corrupt_and_hostile_files(tmp_path: Path) -> None:
    raw = tmp_path / "MNIST" / "raw"
    write_idx(raw / "t10k-images-idx3-ubyte", np.zeros((2, 28, 28)))
    write_idx(raw / "t10k-labels-idx1-ubyte", np.zeros(2))
    (raw / "t10k-images-idx3-ubyte").write_bytes((raw / "t10k-images-idx3-ubyte").read_bytes()[:-10])
    with pytest.raises(DataError, match="truncated"):
        load("mnist", split="test", root=tmp_path)
    (raw / "t10k-images-idx3-ubyte").write_bytes(b"\x01\x02\x03\x04junk")
    with pytest.raises(DataError, match="IDX"):
        load("mnist", split="test", root=tmp_path)

    class Evil:
        def __reduce__(self):
            return (os.getcwd, ())

    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    with open(folder / "test", "wb") as fh:
        pickle.dump({"data": Evil(), "fine_labels": [0]}, fh)
    with pytest.raises(DataError, match="refusing"):
        load("cifar100", split="test", root=tmp_path)


# ----------------------------------------------------------------- MNIST-1D


def test_mnist1d_matches_package_generator_and_keeps_global_rng(tmp_path: Path) -> None:
    from mnist1d.data import get_dataset_args, make_dataset

    np_before = np.random.get_state()  # noqa: NPY002
    py_before = random.getstate()
    x, y = load("mnist1d", root=tmp_path, num_samples=300).tensors
    np_after = np.random.get_state()  # noqa: NPY002
    assert np_after[0] == np_before[0] and np.array_equal(np_after[1], np_before[1])
    assert np_after[2:] == np_before[2:] and random.getstate() == py_before
    args = get_dataset_args()
    args.num_samples = 300
    try:
        ref = make_dataset(args)  # the package's own call (it seeds the global RNG itself)
    finally:
        np.random.set_state(np_before)  # noqa: NPY002
        random.setstate(py_before)
    np.testing.assert_array_equal(x.numpy(), ref["x"].astype(np.float32))
    np.testing.assert_array_equal(y.numpy(), ref["y"])
    assert x.shape == (240, 40) and len(load("mnist1d", split="test", root=tmp_path, num_samples=300)) == 60


def test_mnist1d_cache_hit_same_bits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import graphtickets.data.mnist1d as m1

    first = load("mnist1d", root=tmp_path, num_samples=200).tensors
    files = list((tmp_path / "mnist1d").glob("*.npz"))
    assert len(files) == 1 and not list((tmp_path / "mnist1d").glob("*.tmp"))
    with np.load(files[0], allow_pickle=False) as f:  # a plain npz, no pickled objects
        assert {"x", "y", "x_test", "y_test"} <= set(f.files)

    def no_generation(args):
        raise AssertionError("the second load must read the cache")

    monkeypatch.setattr(m1, "generate", no_generation)
    second = load("mnist1d", root=tmp_path, num_samples=200).tensors
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))
    with pytest.raises(AssertionError, match="cache"):  # other generator args: another file
        load("mnist1d", root=tmp_path, num_samples=220)
    monkeypatch.undo()
    # a corrupt cache file is regenerated, with the same bits
    files[0].write_bytes(b"not an npz")
    third = load("mnist1d", root=tmp_path, num_samples=200).tensors
    assert all(torch.equal(a, b) for a, b in zip(first, third, strict=True))


def test_mnist1d_default_sizes_and_env_root(gt_data_root: Path) -> None:
    tr, te = load("mnist1d"), load("mnist1d", split="test")  # root from GRAPHTICKETS_DATA
    assert len(tr) == 4000 and len(te) == 1000
    assert list((gt_data_root / "mnist1d").glob("*.npz"))
    assert sorted(torch.unique(tr.tensors[1]).tolist()) == list(range(10))


def test_val_split_disjoint_seeded_and_test_fixed() -> None:
    full = load("mnist1d").tensors[0].numpy()
    tr = load("mnist1d", val_fraction=0.1, seed=3).tensors[0].numpy()
    va = load("mnist1d", split="val", val_fraction=0.1, seed=3).tensors[0].numpy()
    assert len(va) == 400 and len(tr) == 3600
    rows = lambda a: {r.tobytes() for r in a}  # noqa: E731
    assert rows(tr).isdisjoint(rows(va)) and rows(tr) | rows(va) == rows(full)
    again = load("mnist1d", split="val", val_fraction=0.1, seed=3).tensors[0]
    other = load("mnist1d", split="val", val_fraction=0.1, seed=4).tensors[0]
    assert torch.equal(again, torch.from_numpy(va)) and not torch.equal(other, again)
    t0 = load("mnist1d", split="test").tensors[0]
    t1 = load("mnist1d", split="test", seed=9, val_fraction=0.3).tensors[0]
    assert torch.equal(t0, t1)


# ----------------------------------------------------------------- digits


def test_digits_split() -> None:
    from sklearn.datasets import load_digits

    d = load_digits()
    tr, te = load("digits"), load("digits", split="test", seed=5)
    assert len(tr) == 1437 and len(te) == 360
    x = torch.cat([tr.tensors[0], te.tensors[0]]).reshape(-1, 64).numpy()
    assert float(x.min()) == 0.0 and float(x.max()) == 1.0
    # train + test is exactly the bundled set (as a multiset of (image, label) rows)
    ours = sorted(np.hstack([x * 16, torch.cat([tr.tensors[1], te.tensors[1]]).numpy()[:, None]]).tolist())
    theirs = sorted(np.hstack([d.data, d.target[:, None]]).tolist())
    assert ours == theirs
    # stratified: every class gets its share of 360, within one example
    counts = np.bincount(d.target, minlength=10)
    test_counts = np.bincount(te.tensors[1].numpy(), minlength=10)
    assert np.all(np.abs(test_counts - 360 * counts / counts.sum()) < 1)
    # the test set does not depend on seed / val_fraction
    assert torch.equal(te.tensors[0], load("digits", split="test", seed=0, val_fraction=0.2).tensors[0])
    va = load("digits", split="val", val_fraction=0.2, seed=1)
    assert len(va) == round(0.2 * 1437) and len(load("digits", val_fraction=0.2, seed=1)) == 1437 - len(va)


# ----------------------------------------------------------------- batching


def _toy(n: int = 10) -> TensorDataset:
    return TensorDataset(torch.arange(n, dtype=torch.float32).unsqueeze(1) * 10, torch.arange(n))


def test_batches_epochs_reshuffle_deterministically() -> None:
    torch.manual_seed(0)
    state = torch.get_rng_state()
    b = batches(_toy(10), batch_size=4, seed=1)
    assert len(b) == 3
    epochs = [torch.cat([y for _, y in b]) for _ in range(4)]
    assert torch.equal(torch.get_rng_state(), state)  # no global RNG use
    for e in epochs:
        assert sorted(e.tolist()) == list(range(10))  # each epoch sees every example once
    assert len({tuple(e.tolist()) for e in epochs}) == 4  # a new order every epoch
    b2 = batches(_toy(10), batch_size=4, seed=1)
    assert all(torch.equal(torch.cat([y for _, y in b2]), e) for e in epochs)  # same seed, same epochs
    b3 = batches(_toy(10), batch_size=4, seed=2)
    assert not torch.equal(torch.cat([y for _, y in b3]), epochs[0])
    x, y = next(iter(batches(_toy(10), batch_size=10, seed=3)))
    assert torch.equal(x[:, 0], y.float() * 10)  # inputs stay paired with targets


def test_batches_options() -> None:
    b = batches(_toy(10), batch_size=4, shuffle=False)
    assert [y.tolist() for _, y in b] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    d = batches(_toy(10), batch_size=4, drop_last=True, device="cpu")
    assert len(d) == 2 and [len(y) for _, y in d] == [4, 4]
    s = batches(Subset(_toy(10), [7, 2, 5]), batch_size=2, shuffle=False)
    assert [y.tolist() for _, y in s] == [[7, 2], [5]]

    class Plain(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return 3

        def __getitem__(self, i: int):
            return torch.tensor([float(i)]), i

    assert [y.tolist() for _, y in batches(Plain(), batch_size=3, shuffle=False)] == [[0, 1, 2]]
    with pytest.raises(DataError, match="batch_size"):
        batches(_toy(), batch_size=0)
    with pytest.raises(DataError, match="no batches"):
        batches(_toy(3), batch_size=4, drop_last=True)


def test_take() -> None:
    b = batches(_toy(10), batch_size=3, seed=0)
    first = take(b, 2)
    assert len(first) == 2 and all(len(y) == 3 for _, y in first)
    assert b.epoch == 1
    with pytest.raises(DataError, match="only 4"):
        take(b, 5)
    with pytest.raises(DataError):
        take(b, 0)


def test_lazy_attribute_access() -> None:
    assert gt.data.load is load and gt.data.DATASETS is DATASETS


def test_cifar_pickles_naming_numpy_core(tmp_path: Path) -> None:
    """The official batches were pickled by an old numpy (``numpy.core.multiarray``)."""
    from graphtickets.data.images import read_cifar_batch

    data = np.arange(2 * 3072, dtype=np.int64).astype(np.uint8).reshape(2, 3072)
    blob = pickle.dumps({"data": data, "labels": [3, 4]}, protocol=2)
    path = tmp_path / "data_batch_1"
    path.write_bytes(blob.replace(b"numpy._core.", b"numpy.core."))
    images, labels = read_cifar_batch(path, "labels")
    assert images.shape == (2, 3, 32, 32) and labels.tolist() == [3, 4]
    assert images[1, 2, 31, 31] == data[1, 3071]


# ----------------------------------------------------------------- download through a fake torchvision


@pytest.fixture
def fake_torchvision(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, bool, bool]]:
    """Inject ``torchvision`` / ``torchvision.datasets`` whose dataset classes write tiny official-format files.

    Returns the list of calls ``(class, root, train, download)``.
    """
    import types

    calls: list[tuple[str, str, bool, bool]] = []
    rng = np.random.default_rng(7)

    class MNIST:
        def __init__(self, root: str, train: bool = True, download: bool = False) -> None:
            calls.append(("MNIST", root, train, download))
            prefix = "train" if train else "t10k"
            raw = Path(root) / "MNIST" / "raw"
            write_idx(raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (4, 28, 28)), compress=True)
            write_idx(raw / f"{prefix}-labels-idx1-ubyte", np.array([3, 1, 4, 1]), compress=True)

    class CIFAR10:
        def __init__(self, root: str, train: bool = True, download: bool = False) -> None:
            calls.append(("CIFAR10", root, train, download))
            raise RuntimeError("File not found or corrupted.\nUse download=True to download it")

    datasets = types.ModuleType("torchvision.datasets")
    datasets.MNIST = MNIST  # type: ignore[attr-defined]
    datasets.CIFAR10 = CIFAR10  # type: ignore[attr-defined]
    tv = types.ModuleType("torchvision")
    tv.datasets = datasets  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "torchvision", tv)
    monkeypatch.setitem(sys.modules, "torchvision.datasets", datasets)
    return calls


def test_download_calls_torchvision_then_loads(tmp_path: Path, fake_torchvision) -> None:
    with pytest.raises(DataError, match="--download"):
        load("mnist", split="test", root=tmp_path)
    assert fake_torchvision == []  # nothing is fetched without download=True
    ds = load("mnist", split="test", root=tmp_path, download=True)
    assert fake_torchvision == [("MNIST", str(tmp_path), False, True)]
    assert ds.tensors[1].tolist() == [3, 1, 4, 1] and ds.dataset_name == "mnist"
    # the files are now there: a second load reads them without calling torchvision
    load("mnist", split="test", root=tmp_path, download=True)
    assert len(fake_torchvision) == 1


def test_download_failure_is_a_data_error(tmp_path: Path, fake_torchvision) -> None:
    with pytest.raises(DataError, match="downloading CIFAR10 .* failed: RuntimeError: File not found"):
        load("cifar10", root=tmp_path, download=True)
    with pytest.raises(DataError, match="no datasets.CIFAR100"):
        load("cifar100", root=tmp_path, download=True)


def test_missing_files_error_names_the_cli_flag_and_the_extra(tmp_path: Path) -> None:
    with pytest.raises(DataError) as e:
        load("cifar10", root=tmp_path)
    assert "--download" in str(e.value) and "graphtickets[vision]" in str(e.value)


# ----------------------------------------------------------------- provenance: the dataset's name travels


def test_loaded_dataset_batches_and_take_keep_the_name() -> None:
    ds = load("digits", split="train")
    assert isinstance(ds, TensorDataset) and ds.dataset_name == "digits" and ds.split == "train"
    b = batches(ds, batch_size=32, seed=0)
    assert b.dataset_name == "digits"
    first = take(b, 2)
    assert isinstance(first, list) and len(first) == 2 and first.dataset_name == "digits"
    assert batches(Subset(ds, [0, 1, 2]), batch_size=2).dataset_name == "digits"
    assert batches(TensorDataset(torch.zeros(2, 1), torch.zeros(2)), batch_size=2).dataset_name is None
    assert take([(1, 2), (3, 4)], 1).dataset_name is None


def test_prune_records_the_dataset_from_the_data(tmp_path: Path) -> None:
    i = info("digits")
    model = gt.models.build("mlp", in_shape=i.in_shape, num_classes=i.num_classes, widths=(16,), seed=0)
    data = gt.data.take(gt.data.batches(gt.data.load("digits"), batch_size=64, seed=0), 2)
    t = gt.pruning.prune(model, "snip", density=0.2, data=data)
    assert t.config["dataset"] == "digits"
    # an explicit dataset= wins
    assert gt.pruning.prune(model, "snip", density=0.2, data=data, dataset="other").config["dataset"] == "other"
    # the name survives the file, and the file alone rebuilds the model: the original, masked
    back = gt.Ticket.load(t.save(tmp_path / "snip.safetensors"))
    assert back.config["dataset"] == "digits" and back == t
    rebuilt = back.build_model()
    original = dict(model.named_parameters())
    for n, p in rebuilt.named_parameters():
        want = original[n].detach() * back.masks[n] if n in back.masks else original[n].detach()
        assert torch.equal(p.detach(), want), n
    # and `graphtickets train` finds the dataset on its own
    from graphtickets.cli import main

    assert main(["train", str(tmp_path / "snip.safetensors"), "--epochs", "1"]) == 0
    assert gt.Ticket.load(tmp_path / "snip.safetensors").meta["train"]["dataset"] == "digits"
