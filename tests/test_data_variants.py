"""Task variants (issue 25 item 1): dataset arguments, their checks, cache, transforms, DataSpec.

The oracle of the MNIST-1D variants is the ``mnist1d`` package called directly here; the oracle
of the class transforms is a hand-made selection of the plain data.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import graphtickets as gt
from graphtickets.data import DATASETS, DataSpec, info, load
from graphtickets.errors import DataError, UnknownNameError


def _package(**overrides: Any) -> dict[str, np.ndarray]:
    """The mnist1d package's own make_dataset with its args updated (global RNG restored)."""
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    for k, v in overrides.items():
        setattr(args, k, v)
    np_state, py_state = np.random.get_state(), random.getstate()  # noqa: NPY002
    try:
        return make_dataset(args)
    finally:
        np.random.set_state(np_state)  # noqa: NPY002
        random.setstate(py_state)


def test_mnist1d_params_mirror_the_package_defaults() -> None:
    from mnist1d.data import get_dataset_args

    from graphtickets.data.mnist1d import GENERATOR_KEYS, PARAMS

    pkg = {k: v for k, v in get_dataset_args(as_dict=True).items() if k != "url"}
    ours = {GENERATOR_KEYS.get(k, k): (list(p.default) if isinstance(p.default, tuple) else p.default)
            for k, p in PARAMS.items()}  # fmt: skip
    assert ours == pkg


def test_variant_equals_the_generator_output(tmp_path: Path) -> None:
    variant = dict(num_samples=300, data_seed=3, iid_noise_scale=0.05, corr_noise_scale=0.1,
                   max_translation=30, shear_scale=0.5, scale_coeff=0.2, padding=[30, 50])  # fmt: skip
    ref = _package(num_samples=300, seed=3, iid_noise_scale=0.05, corr_noise_scale=0.1,
                   max_translation=30, shear_scale=0.5, scale_coeff=0.2, padding=[30, 50])  # fmt: skip
    tr = load("mnist1d", root=tmp_path, **variant)
    te = load("mnist1d", split="test", root=tmp_path, **variant)
    np.testing.assert_array_equal(tr.tensors[0].numpy(), ref["x"].astype(np.float32))
    np.testing.assert_array_equal(tr.tensors[1].numpy(), ref["y"])
    np.testing.assert_array_equal(te.tensors[0].numpy(), ref["x_test"].astype(np.float32))
    assert tr.dataset_name == DataSpec.of("mnist1d", **variant).label
    plain = load("mnist1d", root=tmp_path, num_samples=300).tensors[0]
    assert not torch.allclose(plain, tr.tensors[0])  # the arguments reach the generator


def test_shuffle_seq_permutes_positions_of_the_same_samples(tmp_path: Path) -> None:
    x, y = (t.numpy() for t in load("mnist1d", root=tmp_path, num_samples=300).tensors)
    xs, ys = (t.numpy() for t in load("mnist1d", root=tmp_path, num_samples=300, shuffle_seq=True).tensors)
    np.testing.assert_array_equal(xs, _package(num_samples=300, shuffle_seq=True)["x"].astype(np.float32))
    np.testing.assert_array_equal(ys, y)
    # recover the permutation by matching columns: position j of the shuffled signal is position perm[j]
    dist = np.abs(xs[:, :, None] - x[:, None, :]).max(axis=0)  # (shuffled pos, plain pos)
    perm = dist.argmin(axis=1)
    assert sorted(perm.tolist()) == list(range(40)) and (perm != np.arange(40)).any()
    assert dist.min(axis=1).max() < 1e-5
    np.testing.assert_allclose(xs, x[:, perm], atol=1e-5)
    xt = load("mnist1d", split="test", root=tmp_path, num_samples=300).tensors[0].numpy()
    xst = load("mnist1d", split="test", root=tmp_path, num_samples=300, shuffle_seq=True).tensors[0].numpy()
    np.testing.assert_allclose(xst, xt[:, perm], atol=1e-5)  # one fixed permutation for both splits


def test_final_seq_length_changes_the_shape_and_info(tmp_path: Path) -> None:
    assert info("mnist1d", final_seq_length=60).in_shape == (60,)
    ds = load("mnist1d", root=tmp_path, num_samples=100, final_seq_length=60)
    assert tuple(ds.tensors[0].shape) == (80, 60)


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ({"colour": 1}, "takes no argument 'colour'.*shuffle_seq \\(bool"),
        ({"seed": 3}, "data_seed"),
        ({"num_samples": 300.0}, "num_samples.*expected an int"),
        ({"num_samples": True}, "num_samples.*expected an int"),
        ({"shuffle_seq": 1}, "shuffle_seq.*true or false"),
        ({"iid_noise_scale": "0.1"}, "iid_noise_scale.*expected a number"),
        ({"iid_noise_scale": -0.1}, "iid_noise_scale.*below"),
        ({"scale_coeff": 2.0}, "scale_coeff.*above"),
        ({"num_samples": 10}, "num_samples.*below 20"),
        ({"data_seed": 2**32}, "data_seed.*above"),
        ({"padding": [60, 30]}, "low <= high"),
        ({"padding": [30]}, "padding.*2 values"),
        ({"train_split": 0.0001, "num_samples": 100}, "empty train"),
        ({"classes": [1, 1]}, "classes.*repeat"),
        ({"classes": [3]}, "classes.*at least 2"),
        ({"classes": [0, 10]}, "classes.*above"),
        ({"label_perm": -1}, "label_perm.*seed"),
        ({"pixel_perm": 0}, "takes no argument 'pixel_perm'"),  # shuffle_seq is that task here
    ],
)
def test_bad_variant_arguments_are_one_clear_error(args: dict[str, Any], match: str) -> None:
    with pytest.raises(DataError, match=match):
        info("mnist1d", **args)
    with pytest.raises(DataError, match=match):
        DataSpec.parse({"name": "mnist1d", **args})


def test_other_bad_requests() -> None:
    with pytest.raises(DataError, match="both in the label"):
        load("mnist1d[shuffle_seq]", shuffle_seq=True)
    with pytest.raises(DataError, match="needs name"):
        DataSpec.parse({"shuffle_seq": True})
    with pytest.raises(DataError, match="name or a mapping"):
        DataSpec.parse(3)
    with pytest.raises(UnknownNameError, match="mnist1d"):
        DataSpec.parse({"name": "mnist2d"})
    with pytest.raises(DataError, match="cannot read"):
        DataSpec.parse("mnist1d[shuffle_seq")
    with pytest.raises(DataError, match="standardize"):
        info("digits", standardize=False)
    assert "standardize" in DATASETS["cifar10"].all_params()


def test_cache_is_distinct_per_arguments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import graphtickets.data.mnist1d as m1

    a = load("mnist1d", root=tmp_path, num_samples=200).tensors[0]
    b = load("mnist1d", root=tmp_path, num_samples=200, iid_noise_scale=0.1).tensors[0]
    c = load("mnist1d", root=tmp_path, num_samples=200, shuffle_seq=True).tensors[0]
    files = sorted((tmp_path / "mnist1d").glob("*.npz"))
    assert len(files) == 3 and not torch.equal(a, b) and not torch.equal(a, c)
    stored = []
    for f in files:
        with np.load(f, allow_pickle=False) as z:
            stored.append(json.loads(str(z["args"])))
    assert {s.get("iid_noise_scale") for s in stored} == {0.02, 0.1}
    assert sorted(s["shuffle_seq"] for s in stored) == [False, False, True]

    def no_generation(args: Any) -> None:
        raise AssertionError("must read the cache")

    monkeypatch.setattr(m1, "generate", no_generation)
    assert torch.equal(load("mnist1d", root=tmp_path, num_samples=200, iid_noise_scale=0.1).tensors[0], b)
    # the class transforms come on top of the cached arrays: no new file, no generation
    sub = load("mnist1d", root=tmp_path, num_samples=200, classes=[2, 5], label_perm=1)
    assert len(sub) > 0 and len(list((tmp_path / "mnist1d").glob("*.npz"))) == 3
    with pytest.raises(AssertionError, match="cache"):
        load("mnist1d", root=tmp_path, num_samples=200, data_seed=7)


def test_class_subset_keeps_those_examples_relabelled() -> None:
    x, y = load("digits").tensors
    xs, ys = load("digits", classes=[8, 3]).tensors
    keep = (y == 3) | (y == 8)
    assert torch.equal(xs, x[keep])
    assert torch.equal(ys, torch.where(y[keep] == 3, 0, 1))
    assert info("digits", classes=[8, 3]).num_classes == 2
    assert DataSpec.of("digits", classes=list(range(10))) == DataSpec("digits")  # all classes: plain


def test_label_perm_is_a_fixed_derangement_of_the_same_examples() -> None:
    x, y = load("digits").tensors
    xp, yp = load("digits", label_perm=5).tensors
    assert torch.equal(xp, x)
    mapping = {int(a): int(b) for a, b in zip(y, yp, strict=True)}
    assert all(mapping[int(a)] == int(b) for a, b in zip(y, yp, strict=True))  # a function of the label
    assert sorted(mapping) == sorted(mapping.values()) == list(range(10))  # a bijection
    assert all(k != v for k, v in mapping.items())  # every class changes its label
    assert torch.equal(load("digits", label_perm=5, split="test").tensors[1],
                       torch.tensor([mapping[int(c)] for c in load("digits", split="test").tensors[1]]))
    assert not torch.equal(load("digits", label_perm=6).tensors[1], yp)
    # on a class subset the relabelling permutes the k new labels
    _, y2 = load("digits", classes=[0, 1], label_perm=0).tensors
    _, y1 = load("digits", classes=[0, 1]).tensors
    assert torch.equal(y2, 1 - y1)


def test_pixel_perm_is_one_permutation_of_every_image() -> None:
    x = load("digits").tensors[0].reshape(-1, 64)
    xp = load("digits", pixel_perm=2).tensors[0]
    assert xp.shape[1:] == (1, 8, 8)
    xp = xp.reshape(-1, 64)
    # every image keeps its pixel values; every new position is one old position for all images
    assert torch.equal(xp.sort(dim=1).values, x.sort(dim=1).values)
    assert ((xp[:, :, None] - x[:, None, :]).abs().amax(dim=0).amin(dim=1) == 0).all()
    # the documented permutation (numpy's default_rng(seed).permutation of the 64 positions)
    assert torch.equal(xp, x[:, np.random.default_rng(2).permutation(64)])
    assert not torch.equal(xp, x)


def test_dataspec_forms_labels_and_provenance() -> None:
    a = DataSpec.parse({"name": "mnist1d", "shuffle_seq": True, "iid_noise_scale": 0.05})
    b = DataSpec.parse("mnist1d[shuffle_seq,iid_noise_scale=0.05]")
    c = DataSpec.of("mnist1d", iid_noise_scale=0.05, shuffle_seq=True, data_seed=42)  # 42: the default
    assert a == b == c and len({a, b, c}) == 1 and a.is_variant
    assert a.label == "mnist1d[iid_noise_scale=0.05,shuffle_seq]" and str(a) == a.label
    prov = a.provenance()
    assert json.loads(json.dumps(prov)) == prov
    assert DataSpec.from_provenance(prov) == a == DataSpec.parse(prov)
    plain = DataSpec.parse("mnist1d")
    assert plain.label == "mnist1d" and not plain.is_variant and plain == DataSpec.parse({"name": "mnist1d"})
    assert DataSpec.parse({"name": "mnist1d", "shuffle_seq": False}) == plain
    assert DataSpec.parse({"name": "mnist1d", "iid_noise_scale": 1}).kwargs == {"iid_noise_scale": 1.0}
    sub = DataSpec.parse({"name": "digits", "classes": [9, 2, 4]})
    assert sub.label == "digits[classes=2+4+9]" and sub.info().num_classes == 3
    assert sub.load(split="test").dataset_name == sub.label
    assert torch.equal(sub.load().tensors[1], load("digits", classes=[2, 4, 9]).tensors[1])


_floats = st.floats(0.0, 5.0, allow_nan=False).map(lambda v: round(v, 6))


@settings(max_examples=40, deadline=None)
@given(
    shuffle=st.booleans(), noise=_floats, seed=st.integers(0, 2**32 - 1), n=st.integers(20, 10**6),
    classes=st.sets(st.integers(0, 9), min_size=2), perm=st.none() | st.integers(0, 2**64 - 1),
)  # fmt: skip
def test_label_round_trip(shuffle: bool, noise: float, seed: int, n: int, classes: set[int], perm: int | None) -> None:
    spec = DataSpec.of("mnist1d", shuffle_seq=shuffle, iid_noise_scale=noise, data_seed=seed,
                       num_samples=n, classes=list(classes), label_perm=perm)  # fmt: skip
    assert DataSpec.parse(spec.label) == spec
    assert DataSpec.from_provenance(json.loads(json.dumps(spec.provenance()))) == spec


def test_a_ticket_records_the_variant(tmp_path: Path) -> None:
    spec = DataSpec.of("mnist1d", num_samples=100, shuffle_seq=True)
    data = gt.data.take(gt.data.batches(spec.load(root=tmp_path), batch_size=20, seed=0), 2)
    model = gt.models.build("mlp", in_shape=spec.info().in_shape, num_classes=10, widths=(8,))
    t = gt.pruning.prune(model, "snip", density=0.5, data=data, seed=0)
    assert t.config["dataset"] == spec.label and DataSpec.parse(t.config["dataset"]) == spec
