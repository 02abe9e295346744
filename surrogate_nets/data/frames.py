"""Dense frames from event streams: time binning of ``(x, y, t, p)`` events to ``[T, P, H, W]``."""

from __future__ import annotations

import numbers

import numpy as np
import torch

from .._validate import check_int, check_positive


def _check_sensor_size(sensor_size, name: str = "sensor_size") -> tuple[int, int, int]:
    if not isinstance(sensor_size, (tuple, list)) or len(sensor_size) != 3:
        raise ValueError(f"{name} must be a 3-tuple (W, H, P), got {sensor_size!r}")
    for i, v in enumerate(sensor_size):
        check_int(v, f"{name}[{i}]", minimum=1)
    return tuple(int(v) for v in sensor_size)


def _check_events(events, name: str = "events") -> np.ndarray:
    if not isinstance(events, np.ndarray) or events.dtype.names is None:
        kind = (f"array of {events.dtype}" if isinstance(events, np.ndarray)
                else type(events).__name__)
        raise TypeError(
            f"{name} must be a numpy structured array with fields x, t, p (and y), got {kind}"
        )
    missing = [f for f in ("x", "t", "p") if f not in events.dtype.names]
    if missing:
        raise ValueError(
            f"{name} must have fields x, t, p (and optionally y), got fields {events.dtype.names}"
        )
    if events.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {events.shape}")
    return events


def time_bins(t: np.ndarray, time_steps: int, start, duration) -> tuple[np.ndarray, np.ndarray]:
    """Bin index of each timestamp for ``time_steps`` equal bins over ``[start, start + duration]``.

    .. math::
        b = \\min\\left(\\left\\lfloor \\frac{(t - t_0)\\, T}{D} \\right\\rfloor,\\; T - 1\\right)

    The last bin is closed on the right, so an event at exactly ``start + duration`` counts.
    Returns ``(bins, keep)`` where ``keep`` masks the events inside the window. ``duration = 0``
    puts everything at ``t == start`` into bin 0.
    """
    t = np.asarray(t, dtype=np.int64)
    rel = t - np.int64(start)
    if duration <= 0:
        keep = rel == 0
        return np.zeros(t.shape, dtype=np.int64), keep
    keep = (rel >= 0) & (rel <= duration)
    bins = (rel.astype(np.float64) * time_steps / float(duration)).astype(np.int64)
    np.minimum(bins, time_steps - 1, out=bins)
    return bins, keep


def events_to_frames(
    events: np.ndarray,
    sensor_size,
    time_steps: int,
    start_us: int | None = None,
    duration_us: int | None = None,
    binary: bool = False,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Accumulate one event stream into ``time_steps`` dense, time-major frames.

    .. math:: F[b, c, y, x] = \\#\\{\\,i : b_i = b,\\ c_i = c,\\ y_i = y,\\ x_i = x\\,\\}

    with the bin :math:`b_i` of event :math:`i` from :func:`time_bins` and the channel
    :math:`c_i = p_i` (0 = OFF, 1 = ON; always 0 for a one-polarity sensor ``P = 1``). With
    ``binary=True`` the counts are clipped to 1.

    Args:
        events: structured array with fields ``x, t, p`` and optionally ``y`` (tonic format, ``t``
            in microseconds).
        sensor_size: ``(W, H, P)`` as in tonic.
        time_steps: number of frames ``T``.
        start_us: window start; default the first event's time.
        duration_us: window length; default last minus first event time. Use a fixed value (e.g.
            :attr:`DigitEvents.duration_us`) so that one bin means the same time in every sample.
        binary: clip counts to 1.
        dtype: floating dtype of the result.

    Returns:
        ``[T, P, H, W]`` tensor (``[T, P, W]`` if the events have no ``y`` field, as tonic does).
    """
    events = _check_events(events)
    w, h, npol = _check_sensor_size(sensor_size)
    time_steps = check_int(time_steps, "time_steps", minimum=1)
    has_y = "y" in events.dtype.names
    shape = (time_steps, npol, h, w) if has_y else (time_steps, npol, w)
    if events.size == 0:
        return torch.zeros(shape, dtype=dtype)
    t = events["t"].astype(np.int64)
    start = int(t.min()) if start_us is None else int(start_us)
    duration = int(t.max()) - start if duration_us is None else duration_us
    if duration_us is not None:
        check_positive(duration_us, "duration_us")
    bins, keep = time_bins(t, time_steps, start, duration)
    x = events["x"].astype(np.int64)
    y = events["y"].astype(np.int64) if has_y else np.zeros_like(x)
    c = np.zeros_like(x) if npol == 1 else events["p"].astype(np.int64)
    _check_coords(x, y if has_y else None, c, w, h, npol)
    flat = ((bins * npol + c) * h + y) * w + x
    counts = np.bincount(flat[keep], minlength=time_steps * npol * h * w)
    out = torch.from_numpy(counts.reshape(shape))
    if binary:
        out = out.clamp_(max=1)
    return out.to(dtype)


def _check_coords(x, y, c, w, h, npol):
    if x.size == 0:
        return
    if x.min() < 0 or x.max() >= w:
        raise ValueError(f"events x must lie in [0, {w - 1}] for sensor width {w}, "
                         f"got range [{x.min()}, {x.max()}]")
    if y is not None and (y.min() < 0 or y.max() >= h):
        raise ValueError(f"events y must lie in [0, {h - 1}] for sensor height {h}, "
                         f"got range [{y.min()}, {y.max()}]")
    if c.min() < 0 or c.max() >= npol:
        raise ValueError(f"events p must lie in [0, {npol - 1}] for {npol} polarities, "
                         f"got range [{c.min()}, {c.max()}]")


class EventsToFrames:
    """Transform: events (tonic structured array) -> float tensor ``[T, P, H, W]``.

    The torch-side counterpart of tonic's ``ToFrame``, returning a float tensor. With a fixed
    window it is exactly ``tonic.transforms.ToFrame(sensor_size, time_window=D/T, start_time=0,
    end_time=D)`` (cast to float; tested on every DigitEvents training sample), so frame ``b``
    covers the same time span in every sample; without one it bins from the first to the last
    event like ``ToFrame(n_time_bins=T)``.
    Per-sample frames are time-major; a ``DataLoader`` with the default collate then gives
    ``[B, T, ...]`` and :func:`~surrogate_nets.data.collate_time_major` gives ``[T, B, ...]``.
    See :func:`events_to_frames` for the equation.

    Args:
        sensor_size: ``(W, H, P)``.
        time_steps: number of frames ``T``.
        start_us, duration_us: the window (default: from the first to the last event).
        binary: clip counts to 1.
        dtype: result dtype.

    Example:
        >>> from surrogate_nets.data import DigitEvents, EventsToFrames
        >>> to_frames = EventsToFrames(DigitEvents.sensor_size, 10, start_us=0,
        ...                            duration_us=DigitEvents.duration_us)
    """

    def __init__(self, sensor_size, time_steps: int, start_us: int | None = None,
                 duration_us: int | None = None, binary: bool = False,
                 dtype: torch.dtype = torch.float32):
        self.sensor_size = _check_sensor_size(sensor_size)
        self.time_steps = check_int(time_steps, "time_steps", minimum=1)
        if start_us is not None and not isinstance(start_us, numbers.Integral):
            raise TypeError(f"start_us must be an int or None, got {start_us!r}")
        if duration_us is not None:
            check_positive(duration_us, "duration_us")
        if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
            raise TypeError(f"dtype must be a floating torch.dtype, got {dtype!r}")
        self.start_us = start_us
        self.duration_us = duration_us
        self.binary = bool(binary)
        self.dtype = dtype

    def __call__(self, events: np.ndarray) -> torch.Tensor:
        return events_to_frames(events, self.sensor_size, self.time_steps, self.start_us,
                                self.duration_us, self.binary, self.dtype)

    def __repr__(self) -> str:
        return (f"EventsToFrames(sensor_size={self.sensor_size}, time_steps={self.time_steps}, "
                f"start_us={self.start_us}, duration_us={self.duration_us}, binary={self.binary})")


class ToFloatTensor:
    """Transform: any array (e.g. tonic's int16 frames ``[T, P, H, W]``) -> float tensor.

    .. math:: \\mathrm{out} = \\mathrm{float}(x)

    Picklable (unlike a lambda), so it works with ``DataLoader(num_workers > 0)``.
    """

    def __init__(self, dtype: torch.dtype = torch.float32):
        if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
            raise TypeError(f"dtype must be a floating torch.dtype, got {dtype!r}")
        self.dtype = dtype

    def __call__(self, x) -> torch.Tensor:
        return torch.as_tensor(np.asarray(x)).to(self.dtype)

    def __repr__(self) -> str:
        return f"ToFloatTensor(dtype={self.dtype})"
