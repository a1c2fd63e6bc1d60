"""Mini-batches from in-memory datasets, reshuffled deterministically every epoch.

:func:`batches` (another name of the class :class:`Batches`) gives a re-iterable object. Each ``iter()`` is one
epoch; with ``shuffle=True`` the order of epoch ``e`` is a permutation drawn from a local
``torch.Generator`` seeded from ``(seed, e)``, so the sequence of epochs is the same on every
run and no global random state is touched. Batches are made by indexing the underlying
tensors with a whole index vector at once.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TypeVar

import numpy as np
import torch
from torch.utils.data import Dataset, Subset, TensorDataset

from graphtickets.data.core import dataset_name
from graphtickets.errors import DataError

__all__ = ["Batches", "TakenBatches", "batches", "take", "epoch_seed"]

T = TypeVar("T")


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of the shuffle of ``epoch`` (a 63-bit integer mixed from ``seed`` and ``epoch``)."""
    state = np.random.SeedSequence([int(seed) & 0xFFFFFFFFFFFFFFFF, int(epoch)]).generate_state(2, np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


def _tensors(dataset: Dataset[Any]) -> tuple[torch.Tensor, ...]:
    """The tensors behind ``dataset`` (TensorDataset, or Subsets of one, vectorised)."""
    if isinstance(dataset, TensorDataset):
        return tuple(dataset.tensors)
    if isinstance(dataset, Subset):
        inner = _tensors(dataset.dataset)
        idx = torch.as_tensor(list(dataset.indices), dtype=torch.long)
        return tuple(t[idx] for t in inner)
    if isinstance(dataset, Sequence) or hasattr(dataset, "__len__"):
        # Any other map-style dataset is collated once, here; batching then stays vectorised.
        n = len(dataset)  # type: ignore[arg-type]
        if n == 0:
            raise DataError("cannot batch an empty dataset")
        samples = [dataset[i] for i in range(n)]
        first = samples[0]
        if not isinstance(first, (tuple, list)):
            raise DataError("batches() needs a dataset of (inputs, targets) samples")
        return tuple(torch.stack([torch.as_tensor(s[k]) for s in samples]) for k in range(len(first)))
    raise DataError(
        f"batches() needs a map-style dataset with __len__ (e.g. a TensorDataset), got {type(dataset).__name__}"
    )


class Batches:
    """A re-iterable sequence of ``(inputs, targets)`` mini-batches of ``dataset``, reshuffled
    deterministically every epoch.

    Parameters
    ----------
    dataset : torch.utils.data.Dataset
        A ``TensorDataset`` (as :func:`graphtickets.data.load` returns) or a ``Subset`` of
        one; other map-style datasets of ``(inputs, targets)`` samples are collated once.
    batch_size : int, default 128
        Examples per batch (the last batch may be smaller unless ``drop_last``).
    shuffle : bool, default True
        Draw a new order each epoch; False keeps the dataset order.
    seed : int, default 0
        Seed of the shuffles; epoch ``e`` uses a local generator seeded from ``(seed, e)``.
    drop_last : bool, default False
        Drop the last, incomplete batch.
    device : torch.device or str, optional
        Move the data there once, up front.

    Attributes
    ----------
    dataset_name : str or None
        The name the dataset carries (see :class:`~graphtickets.data.NamedTensorDataset`).
    epoch : int
        Epochs started so far; the next ``iter()`` uses this epoch's order.

    Notes
    -----
    Re-iterable (each ``iter()`` is a new epoch), with ``len()`` = batches per epoch.
    :func:`batches` is another name of this class (the one the examples use).

    Examples
    --------
    >>> ds = TensorDataset(torch.arange(10.0).unsqueeze(1), torch.arange(10))
    >>> b = batches(ds, batch_size=4, shuffle=False)
    >>> len(b), [len(y) for _, y in b]
    (3, [4, 4, 2])
    """

    def __init__(
        self,
        dataset: Dataset[Any],
        *,
        batch_size: int = 128,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
        device: torch.device | str | None = None,
    ) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise DataError(f"batch_size must be a positive integer, got {batch_size!r}")
        tensors = _tensors(dataset)
        n = len(tensors[0])
        if any(len(t) != n for t in tensors):
            raise DataError("the dataset's tensors have different lengths")
        if n == 0:
            raise DataError("cannot batch an empty dataset")
        if device is not None:
            tensors = tuple(t.to(device) for t in tensors)
        self.tensors = tensors
        self.n = n
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.drop_last = bool(drop_last)
        self.dataset_name: str | None = dataset_name(dataset)
        #: Number of epochs started so far; the next ``iter()`` uses this epoch's order.
        self.epoch = 0
        if len(self) == 0:
            raise DataError(
                f"drop_last=True with batch_size={batch_size} > {n} examples gives no batches; "
                f"use a smaller batch_size or drop_last=False"
            )

    def __len__(self) -> int:
        return self.n // self.batch_size if self.drop_last else -(-self.n // self.batch_size)

    def order(self, epoch: int) -> torch.Tensor:
        """The example order of ``epoch`` (identity when not shuffling)."""
        if not self.shuffle:
            return torch.arange(self.n)
        g = torch.Generator().manual_seed(epoch_seed(self.seed, epoch))
        return torch.randperm(self.n, generator=g)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        epoch = self.epoch
        self.epoch += 1
        return self._iterate(epoch)

    def _iterate(self, epoch: int) -> Iterator[tuple[torch.Tensor, ...]]:
        order = self.order(epoch).to(self.tensors[0].device)
        stop = len(self) * self.batch_size
        for start in range(0, min(stop, self.n), self.batch_size):
            idx = order[start : start + self.batch_size]
            yield tuple(t[idx] for t in self.tensors)

    def __repr__(self) -> str:
        return (
            f"Batches(n={self.n}, batch_size={self.batch_size}, shuffle={self.shuffle}, "
            f"seed={self.seed}, drop_last={self.drop_last}, epoch={self.epoch})"
        )


#: :class:`Batches` under the name the examples use: ``batches(dataset, batch_size=..., seed=...)``.
batches = Batches


class TakenBatches(list[T]):
    """A list of batches (from :func:`take`) that keeps the ``dataset_name`` of its source."""

    dataset_name: str | None = None


def take(batches: Iterable[T], n: int) -> TakenBatches[T]:
    """The first ``n`` batches of ``batches`` as a list (e.g. for pruning-at-init scorers).

    Iterating a :class:`Batches` starts a new epoch, so ``take`` consumes one epoch's order.
    The list keeps the source's ``dataset_name``, so a ticket pruned on it records its dataset.

    Parameters
    ----------
    batches : iterable
        Any iterable of batches.
    n : int
        How many; must not exceed what one pass over ``batches`` yields.

    Returns
    -------
    TakenBatches
        A ``list`` with a ``dataset_name`` attribute.

    Raises
    ------
    DataError
        If ``n < 1`` or fewer than ``n`` batches are available.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise DataError(f"take() needs a positive number of batches, got {n!r}")
    out: TakenBatches[T] = TakenBatches(itertools.islice(iter(batches), int(n)))
    out.dataset_name = dataset_name(batches)
    if len(out) < n:
        raise DataError(
            f"asked for {n} batches but only {len(out)} are available in one pass; "
            f"use a smaller n or a smaller batch_size"
        )
    return out
