"""Data loading for the training loop: a fast in-memory loader, per-epoch deterministic order,
and sharding of loaders over the processes of a distributed run.

Every batch the loop consumes is ``(x, y)`` with ``x`` time-major ``[T, B, ...]`` and ``y``
``[B]``. :class:`TensorLoader` produces such batches from whole-dataset tensors (e.g.
``DigitEvents.as_tensors(T)``); a :class:`torch.utils.data.DataLoader` over per-sample
``[T, ...]`` items produces them with the time-major collate of :mod:`surrogate_nets.data`.

Determinism: the order of an epoch depends only on ``(seed, epoch)``. The loop calls
:func:`set_epoch` before each epoch, which reaches :class:`EpochSampler`,
:class:`~torch.utils.data.DistributedSampler` and anything else with a ``set_epoch`` method,
so a run resumed at epoch ``e`` sees the same batches as an uninterrupted one.
"""

from __future__ import annotations

import math
from typing import Callable, Optional

import torch
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler, Sampler

from .._validate import check_int
from .distributed import DistInfo, ShardSampler


class EpochSampler(Sampler):
    """Indices ``0..n-1``, shuffled with a generator seeded by ``seed + epoch`` (or in order).

    Call :meth:`set_epoch` before iterating; the permutation of epoch ``e`` is the same in every
    process and every run with the same ``seed``.
    """

    def __init__(self, n: int, shuffle: bool = True, seed: int = 0):
        self.n = check_int(n, "n", minimum=0)
        self.shuffle = bool(shuffle)
        self.seed = check_int(seed, "seed")
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = check_int(epoch, "epoch", minimum=0)

    def __iter__(self):
        if not self.shuffle:
            return iter(range(self.n))
        g = torch.Generator()
        g.manual_seed(self.seed + self.epoch)
        return iter(torch.randperm(self.n, generator=g).tolist())

    def __len__(self) -> int:
        return self.n


class TensorLoader:
    """Batches ``(x[idx] -> [T, B, ...], y[idx])`` from in-memory tensors, without a worker pool.

    Args:
        x: sample-major ``[N, T, ...]`` (``time_major=False``, the layout of
            ``DigitEvents.as_tensors``) or time-major ``[T, N, ...]``.
        y: targets ``[N, ...]``.
        batch_size: samples per batch.
        shuffle: reshuffle every epoch (order from ``seed + epoch``, see :class:`EpochSampler`).
        seed: shuffling seed.
        drop_last: drop a final incomplete batch.
        time_major: layout of ``x``.
        transform: optional callable applied to each time-major batch ``x`` (e.g. an encoder).
        sampler: an index sampler to use instead of :class:`EpochSampler` (for sharding).

    Iterating yields ``(xb, yb)`` with ``xb`` ``[T, B, ...]`` (contiguous) and ``yb`` ``[B, ...]``.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int = 64, shuffle: bool = False,
                 seed: int = 0, drop_last: bool = False, time_major: bool = False,
                 transform: Optional[Callable] = None, sampler: Optional[Sampler] = None):
        if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
            raise TypeError(f"x and y must be tensors, got {type(x).__name__} and {type(y).__name__}")
        if x.dim() < 2:
            raise ValueError(f"x must be [N, T, ...] or [T, N, ...] (>= 2 dims), got shape {tuple(x.shape)}")
        n = x.shape[1] if time_major else x.shape[0]
        if y.shape[0] != n:
            raise ValueError(f"y must have one entry per sample: x has {n} samples "
                             f"(shape {tuple(x.shape)}, time_major={time_major}), y has shape {tuple(y.shape)}")
        for flag, value in (("shuffle", shuffle), ("drop_last", drop_last), ("time_major", time_major)):
            if not isinstance(value, bool):
                raise TypeError(f"{flag} must be a bool, got {type(value).__name__} {value!r}")
        if transform is not None and not callable(transform):
            raise TypeError(f"transform must be callable or None, got {type(transform).__name__}")
        self.x, self.y = x, y
        self.time_major = bool(time_major)
        self.batch_size = check_int(batch_size, "batch_size", minimum=1)
        self.shuffle = bool(shuffle)
        self.seed = check_int(seed, "seed")
        self.drop_last = bool(drop_last)
        self.transform = transform
        self.sampler = sampler if sampler is not None else EpochSampler(n, self.shuffle, self.seed)

    @property
    def num_samples(self) -> int:
        return self.x.shape[1] if self.time_major else self.x.shape[0]

    def __len__(self) -> int:
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)

    def __iter__(self):
        order = torch.as_tensor(list(iter(self.sampler)), dtype=torch.long)
        nb = len(self)
        for b in range(nb):
            idx = order[b * self.batch_size:(b + 1) * self.batch_size]
            if self.time_major:
                xb = self.x.index_select(1, idx)
            else:
                xb = self.x.index_select(0, idx).transpose(0, 1).contiguous()
            if self.transform is not None:
                xb = self.transform(xb)
            yield xb, self.y.index_select(0, idx)

    def with_sampler(self, sampler: Sampler) -> "TensorLoader":
        """A copy of this loader that draws its indices from ``sampler``."""
        return TensorLoader(self.x, self.y, self.batch_size, self.shuffle, self.seed, self.drop_last,
                            self.time_major, self.transform, sampler=sampler)


def set_epoch(loader, epoch: int) -> None:
    """Tell ``loader`` (and its sampler / batch sampler, if any) which epoch starts."""
    seen = set()
    for obj in (loader, getattr(loader, "sampler", None), getattr(loader, "batch_sampler", None),
                getattr(getattr(loader, "batch_sampler", None), "sampler", None)):
        if obj is None or id(obj) in seen:
            continue
        seen.add(id(obj))
        fn = getattr(obj, "set_epoch", None)
        if callable(fn):
            fn(epoch)


def _is_shuffled(loader) -> bool:
    if isinstance(loader, TensorLoader):
        return loader.shuffle
    sampler = getattr(loader, "sampler", None)
    return isinstance(sampler, (RandomSampler, EpochSampler)) and (
        not isinstance(sampler, EpochSampler) or sampler.shuffle)


def deterministic_loader(loader, seed: int):
    """Make the epoch order of a shuffling ``DataLoader`` a function of ``(seed, epoch)``.

    A ``DataLoader(shuffle=True)`` draws its permutation from a global or private generator
    whose state depends on everything that ran before; it is rebuilt here with an
    :class:`EpochSampler` instead. Other loaders are returned unchanged.
    """
    if isinstance(loader, DataLoader) and isinstance(loader.sampler, RandomSampler) \
            and loader.batch_sampler is not None and not loader.sampler.replacement:
        return _rebuild(loader, EpochSampler(len(loader.dataset), True, seed))
    return loader


def _rebuild(loader: DataLoader, sampler: Sampler) -> DataLoader:
    if loader.batch_size is None:
        raise ValueError("cannot re-shard a DataLoader built with a custom batch_sampler; pass a "
                         "DataLoader with batch_size=..., or shard it yourself with a DistributedSampler")
    kwargs = dict(batch_size=loader.batch_size, sampler=sampler, num_workers=loader.num_workers,
                  collate_fn=loader.collate_fn, pin_memory=loader.pin_memory,
                  drop_last=loader.drop_last, timeout=loader.timeout,
                  worker_init_fn=loader.worker_init_fn)
    if loader.num_workers > 0:
        kwargs.update(persistent_workers=loader.persistent_workers,
                      prefetch_factor=loader.prefetch_factor)
    return DataLoader(loader.dataset, **kwargs)


def shard_loader(loader, info: DistInfo, seed: int, train: bool):
    """The part of ``loader`` that process ``info.rank`` of ``info.world_size`` should see.

    Training loaders get a :class:`~torch.utils.data.DistributedSampler` (equal number of batches
    on every rank, shuffled by ``seed + epoch`` when the loader shuffles); evaluation loaders get a
    :class:`~surrogate_nets.train.distributed.ShardSampler` (every sample exactly once, so the
    summed metrics are exact). Loaders already using a ``DistributedSampler`` are kept.
    """
    if not info.enabled:
        return loader
    sampler = getattr(loader, "sampler", None)
    if isinstance(sampler, (DistributedSampler, ShardSampler)):
        return loader
    if isinstance(loader, TensorLoader):
        n = loader.num_samples
    elif isinstance(loader, DataLoader):
        n = len(loader.dataset)
    else:
        raise TypeError(
            f"in a multi-process run the loaders must be torch DataLoaders or TensorLoaders (so that "
            f"they can be sharded with a DistributedSampler), got {type(loader).__name__}")
    if train:
        new = DistributedSampler(range(n), num_replicas=info.world_size, rank=info.rank,
                                 shuffle=_is_shuffled(loader), seed=seed, drop_last=False)
    else:
        new = ShardSampler(n, info.rank, info.world_size)
    if isinstance(loader, TensorLoader):
        return loader.with_sampler(new)
    return _rebuild(loader, new)


def loader_size(loader) -> Optional[int]:
    """``len(loader)`` or ``None`` for a loader without a length."""
    try:
        return len(loader)
    except TypeError:
        return None
