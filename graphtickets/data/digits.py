"""scikit-learn's bundled 8x8 digits (1797 images), with a fixed stratified split.

Inputs are ``(1, 8, 8)`` images scaled to [0, 1] (pixel counts 0..16 divided by 16). The
train/test split (1437/360, stratified by class) is drawn once with seed 0 and never depends
on the ``seed`` of :func:`graphtickets.data.load`, so the test set never changes.

Variants: ``classes`` (a class subset), ``label_perm`` (a seeded relabelling) and
``pixel_perm`` (the 64 pixels permuted by one seeded permutation); see
:mod:`graphtickets.data.variants`.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from graphtickets.data.core import DatasetInfo, register_dataset

__all__ = ["INFO", "stratified_test_indices", "N_TEST"]

N_TEST = 360
_SPLIT_SEED = 0

INFO = DatasetInfo(
    in_shape=(1, 8, 8),
    num_classes=10,
    description=(
        "UCI optical digits as bundled with scikit-learn: 1797 8x8 images scaled to [0, 1]; "
        "fixed stratified split 1437 train / 360 test"
    ),
    citation=(
        "Alpaydin, E. & Kaynak, C. (1998). Optical Recognition of Handwritten Digits. "
        "UCI Machine Learning Repository. doi:10.24432/C50P49"
    ),
)


def stratified_test_indices(y: np.ndarray, n_test: int, seed: int) -> np.ndarray:
    """Sorted indices of a stratified test set of exactly ``n_test`` examples.

    Each class gets ``n_test * count / n`` examples rounded by largest remainder; within a
    class, examples are taken in the order of one seeded permutation.
    """
    y = np.asarray(y)
    classes, counts = np.unique(y, return_counts=True)
    quota = n_test * counts / len(y)
    take = np.floor(quota).astype(int)
    rest = n_test - int(take.sum())
    order = np.argsort(-(quota - take), kind="stable")
    take[order[:rest]] += 1
    perm = np.random.default_rng(seed).permutation(len(y))
    ranked_labels = y[perm]
    # rank of each permuted example within its class: position - first position of the class
    sorter = np.argsort(ranked_labels, kind="stable")
    sorted_labels = ranked_labels[sorter]
    first = np.searchsorted(sorted_labels, sorted_labels, side="left")
    rank_sorted = np.arange(len(y)) - first
    rank = np.empty(len(y), dtype=int)
    rank[sorter] = rank_sorted
    limit = take[np.searchsorted(classes, ranked_labels)]
    return np.sort(perm[rank < limit])


@lru_cache(maxsize=1)
def _arrays() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (np.asarray(d.data, dtype=np.float32) / 16.0).reshape(-1, 1, 8, 8)
    y = np.asarray(d.target, dtype=np.int64)
    test = np.zeros(len(y), dtype=bool)
    test[stratified_test_indices(y, N_TEST, _SPLIT_SEED)] = True
    x.setflags(write=False)
    y.setflags(write=False)
    test.setflags(write=False)
    return x, y, test


@register_dataset("digits", INFO, transforms=("classes", "label_perm", "pixel_perm"))
def _load(split: str, root: Path, download: bool) -> tuple[np.ndarray, np.ndarray]:
    x, y, test = _arrays()
    mask = test if split == "test" else ~test
    return x[mask], y[mask]
