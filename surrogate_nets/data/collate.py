"""Collate functions that batch per-sample sequences into time-major ``[T, B, ...]`` tensors."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import default_collate

from .._validate import describe


def _to_tensor(sample, index: int) -> torch.Tensor:
    """A sample as a tensor; a structured event array becomes ``[L, F]`` int64 (fields in order)."""
    if isinstance(sample, torch.Tensor):
        return sample
    if isinstance(sample, np.ndarray):
        if sample.dtype.names is not None:
            if sample.ndim != 1:
                raise ValueError(
                    f"batch[{index}] events must be a 1-D structured array, got shape "
                    f"{sample.shape}"
                )
            cols = [sample[name].astype(np.int64) for name in sample.dtype.names]
            return torch.from_numpy(np.stack(cols, axis=1) if cols else np.zeros((len(sample), 0)))
        return torch.from_numpy(np.ascontiguousarray(sample))
    raise TypeError(
        f"batch[{index}] sample must be a torch.Tensor or numpy array, got {type(sample).__name__}"
    )


def _split(batch, fn_name: str):
    if not isinstance(batch, Sequence) or len(batch) == 0:
        raise ValueError(f"{fn_name}: batch must be a non-empty sequence of (sample, target), "
                         f"got {describe(batch)}")
    samples, targets = [], []
    for i, item in enumerate(batch):
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise ValueError(f"{fn_name}: batch[{i}] must be a (sample, target) pair, got "
                             f"{type(item).__name__}")
        samples.append(_to_tensor(item[0], i))
        targets.append(item[1])
    return samples, default_collate(targets)


def collate_time_major(batch):
    """Stack equal-length time-major samples into a time-major batch.

    .. math:: X[t, b, \\ldots] = x_b[t, \\ldots]

    Args:
        batch: list of ``(x_b, y_b)`` with every ``x_b`` of the same shape ``[T, ...]`` (tensor or
            numpy array).

    Returns:
        ``(X, y)``: ``X`` ``[T, B, ...]`` and ``y`` collated by torch's ``default_collate``
        (``[B]`` int64 for integer labels).

    Use as ``DataLoader(ds, batch_size=B, collate_fn=collate_time_major)``; samples of different
    lengths need :func:`collate_padded`. Built on torch's ``default_collate`` (which stacks
    along a new batch axis); the batch axis is then moved behind the time axis.
    """
    samples, targets = _split(batch, "collate_time_major")
    shape = samples[0].shape
    if len(shape) == 0:
        raise ValueError("collate_time_major: samples must have a time dimension [T, ...], "
                         "got 0-d samples")
    for i, s in enumerate(samples):
        if s.shape != shape:
            raise ValueError(
                f"collate_time_major: all samples must have the same shape, batch[0] has "
                f"{tuple(shape)} but batch[{i}] has {tuple(s.shape)}; use collate_padded for "
                f"variable lengths"
            )
    # default_collate stacks along a new batch axis (into shared memory inside DataLoader
    # workers); moving that axis behind time gives the time-major batch.
    return default_collate(samples).transpose(0, 1).contiguous(), targets


def collate_padded(batch, time_major: bool = True, pad_value: float = 0.0):
    """Pad variable-length samples (frames or event streams) along their first axis and stack.

    .. math::
        X[t, b, \\ldots] = \\begin{cases} x_b[t, \\ldots] & t < L_b \\\\
                                          \\mathrm{pad} & L_b \\le t < \\max_b L_b \\end{cases}

    Args:
        batch: list of ``(x_b, y_b)``; ``x_b`` is ``[L_b, ...]`` (tensor or numpy array, trailing
            shapes equal) or a tonic structured event array of length ``L_b``, which becomes an
            int64 tensor ``[L_b, F]`` whose columns follow ``x_b.dtype.names`` (e.g. x, y, t, p).
        time_major: ``[L_max, B, ...]`` if True, else ``[B, L_max, ...]``.
        pad_value: value written into the padding.

    Returns:
        ``(X, y, lengths)`` with ``lengths`` int64 ``[B]`` holding :math:`L_b`.

    Built on ``torch.nn.utils.rnn.pad_sequence`` (mixed dtypes promoted first); the lengths are
    what ``torch.nn.utils.rnn.pack_padded_sequence`` and masked losses need.

    With a ``DataLoader``: ``collate_fn=collate_padded`` or
    ``functools.partial(collate_padded, time_major=False)``.
    """
    samples, targets = _split(batch, "collate_padded")
    if not isinstance(time_major, bool):
        raise TypeError(f"time_major must be a bool, got {time_major!r}")
    for i, s in enumerate(samples):
        if s.dim() == 0:
            raise ValueError(f"collate_padded: batch[{i}] must have a length dimension, got a 0-d "
                             f"sample")
        if s.shape[1:] != samples[0].shape[1:]:
            raise ValueError(
                f"collate_padded: trailing shapes must match, batch[0] has "
                f"{tuple(samples[0].shape[1:])} but batch[{i}] has {tuple(s.shape[1:])}"
            )
    dtype = samples[0].dtype
    for s in samples[1:]:
        dtype = torch.promote_types(dtype, s.dtype)
    lengths = torch.tensor([s.shape[0] for s in samples], dtype=torch.int64)
    out = pad_sequence([s.to(dtype) for s in samples], batch_first=not time_major,
                       padding_value=pad_value)
    return out, targets, lengths
