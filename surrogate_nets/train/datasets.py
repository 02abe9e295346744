"""Data loaders for the command line: the data sets of :mod:`surrogate_nets.data` by name.

``digits`` and ``randman`` are held in memory as dense tensors and batched by
:class:`~surrogate_nets.train.TensorLoader` (no worker processes, no per-sample Python); the
recorded data sets (``nmnist``, ``shd``, ``dvsgesture``) go through
:func:`surrogate_nets.data.get_dataset` and a ``DataLoader`` with the time-major collate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from .._validate import check_choice, check_int
from ..data.pipeline import FRAME_MODES  # noqa: F401  (re-exported: choices of --frames)
from .loaders import TensorLoader

#: Data set names the command line accepts.
DATASETS = ("digits", "randman", "nmnist", "shd", "dvsgesture")
#: Default number of time steps per data set.
DEFAULT_TIME_STEPS = {"digits": 12, "randman": 50, "nmnist": 20, "shd": 50, "dvsgesture": 16}
#: Number of classes of the recorded data sets.
NUM_CLASSES = {"digits": 10, "nmnist": 10, "shd": 20, "dvsgesture": 11}
#: The data sets read through tonic (the only ones the tonic options below apply to).
RECORDED = ("nmnist", "shd", "dvsgesture")


@dataclass
class DataBundle:
    """Loaders plus what the model builder needs: the per-step input shape and the class count."""

    train: Optional[object]
    test: Optional[object]
    input_shape: tuple
    num_classes: int


def subset_indices(total: int, n: Optional[int]) -> Optional[torch.Tensor]:
    """``n`` indices spread evenly over ``0..total-1`` (every class of a class-sorted set is
    represented), or ``None`` for all of them."""
    if n is None or n >= total:
        return None
    return (torch.arange(n, dtype=torch.long) * total) // n


def collate_padded_xy(batch):
    """``(x [T_max, B, ...], y)`` of samples with different ``T``: zero frames after a sample's
    end (no input), via :func:`surrogate_nets.data.collate_padded` (its lengths dropped)."""
    from ..data import collate_padded

    x, y, _lengths = collate_padded(batch)
    return x, y


def _limit(x, y, n):
    idx = subset_indices(x.shape[0], n)
    if idx is None:
        return x, y
    return x[idx], y[idx]


def build_data(name: str, *, time_steps: int, batch_size: int, seed: int = 0, data_dir=None,
               download: bool = False, limit_train: Optional[int] = None,
               limit_test: Optional[int] = None, workers: int = 0, train: bool = True,
               test: bool = True, test_batch_size: Optional[int] = None,
               cache_dir=None, denoise_us: Optional[int] = None, frames: Optional[str] = None,
               events_per_frame: Optional[int] = None, duration_us: Optional[int] = None,
               drop_event: Optional[float] = None) -> DataBundle:
    """Build the train/test loaders of data set ``name`` (see :data:`DATASETS`).

    Args:
        name: data set name.
        time_steps: frames ``T`` per sample.
        batch_size: training batch size; ``test_batch_size`` (default ``max(256, batch_size)``)
            for the test loader.
        seed: shuffling seed of the training loader (the order of epoch ``e`` depends on
            ``seed + e`` only).
        data_dir: where the recorded data sets are (or the digits' conversion cache).
        download: let tonic download a missing recorded data set.
        limit_train, limit_test: use only ``n`` samples, spread evenly over the split (quick
            runs, tests).
        workers: ``DataLoader`` worker processes for the recorded data sets.
        train, test: which loaders to build (the other is ``None``).
        cache_dir, denoise_us, frames, events_per_frame, duration_us: recorded data sets only,
            passed to :func:`surrogate_nets.data.get_dataset` (see there); with
            ``events_per_frame`` the number of frames varies (``time_steps`` must be ``None``) and
            batches are zero-padded at the end (:func:`collate_padded_xy`).
        drop_event: recorded data sets only: ``tonic.transforms.DropEvent(p=drop_event)`` on the
            events of the training split (drawn anew on every access; the training split is
            then not cached, since a cache would freeze the draw).

    Returns:
        :class:`DataBundle`.
    """
    from .. import data as sn_data

    name = check_choice(name, "dataset", DATASETS)
    tonic_kw = {k: v for k, v in (("cache_dir", cache_dir), ("denoise_us", denoise_us),
                                  ("events_per_frame", events_per_frame),
                                  ("duration_us", duration_us), ("drop_event", drop_event))
                if v is not None}
    if frames == "count":
        tonic_kw["frames"] = frames
    if tonic_kw and name not in RECORDED:
        raise ValueError(f"{sorted(tonic_kw)} apply to the recorded data sets {list(RECORDED)} "
                         f"only, got dataset={name!r}")
    if frames is not None:
        check_choice(frames, "frames", FRAME_MODES)
    if events_per_frame is not None:
        if time_steps is not None:
            raise ValueError(f"events_per_frame={events_per_frame} gives a variable number of "
                             f"frames; time_steps must be None, got {time_steps!r}")
    else:
        time_steps = check_int(time_steps, "time_steps", minimum=1)
    if drop_event is not None and not (isinstance(drop_event, (int, float))
                                       and 0 < drop_event < 1):
        raise ValueError(f"drop_event must be a probability in (0, 1), got {drop_event!r}")
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    for v, n in ((limit_train, "limit_train"), (limit_test, "limit_test")):
        if v is not None:
            check_int(v, n, minimum=1)
    test_bs = test_batch_size or max(256, batch_size)

    if name in ("digits", "randman"):
        def split(is_train):
            if name == "digits":
                ds = sn_data.DigitEvents(root=data_dir, train=is_train)
                x, y = ds.as_tensors(time_steps)
                return x, y, tuple(x.shape[2:]), 10
            ds = sn_data.get_dataset("randman", train=is_train, time_steps=time_steps)
            x, y = ds.as_tensors()
            return x, y, tuple(x.shape[2:]), int(ds.nb_classes)

        tr = te = None
        shape = classes = None
        if train:
            x, y, shape, classes = split(True)
            x, y = _limit(x, y, limit_train)
            tr = TensorLoader(x, y, batch_size, shuffle=True, seed=seed)
        if test or shape is None:
            x, y, shape, classes = split(False)
            x, y = _limit(x, y, limit_test)
            te = TensorLoader(x, y, test_bs, shuffle=False) if test else None
        return DataBundle(tr, te, shape, classes)

    from torch.utils.data import DataLoader, Subset

    def dataset(is_train, limit):
        kw = dict(time_steps=time_steps, frames=frames, events_per_frame=events_per_frame,
                  duration_us=duration_us, denoise_us=denoise_us, cache_dir=cache_dir)
        if drop_event is not None and is_train:
            import tonic.transforms as tt

            kw.update(event_transform=tt.DropEvent(p=float(drop_event)), cache_dir=None)
        ds = sn_data.get_dataset(name, data_dir=data_dir, train=is_train, download=download, **kw)
        idx = subset_indices(len(ds), limit)
        if idx is not None:
            ds = Subset(ds, idx.tolist())
        return ds

    def loader(ds, bs, shuffle):
        g = torch.Generator()
        g.manual_seed(seed)
        collate = sn_data.collate_time_major if events_per_frame is None else collate_padded_xy
        return DataLoader(ds, batch_size=bs, shuffle=shuffle, collate_fn=collate,
                          num_workers=workers, generator=g, persistent_workers=workers > 0)

    tr = te = None
    shape = None
    if train:
        ds = dataset(True, limit_train)
        shape = tuple(ds[0][0].shape[1:])
        tr = loader(ds, batch_size, True)
    if test:
        ds = dataset(False, limit_test)
        shape = tuple(ds[0][0].shape[1:]) if shape is None else shape
        te = loader(ds, test_bs, False)
    return DataBundle(tr, te, shape, NUM_CLASSES[name])
