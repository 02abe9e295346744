"""The sample pipeline of :func:`~surrogate_nets.data.get_dataset`: events -> frames -> tensors.

One recording goes through, in this order::

    events -> Denoise -> event_transform -> ToFrame -> | disk cache |
           -> float tensor -> frame_transform -> transform

With ``cache_dir``, everything before the cache runs once per sample and its result (compact
int16 frames) is what ``tonic.DiskCachedDataset`` stores, so a random event transform is frozen
there (a warning says so); everything after the cache runs on every access. Event transforms
(``tonic.transforms.DropEvent``, ``Denoise``, ``SpatialJitter``, ...) act on the structured event
array and therefore belong in ``event_transform``; transforms of dense tensors (normalisation,
random crops of frames) in ``frame_transform``.

Frame slicing (tonic's ``ToFrame``; Lenz et al., "Tonic: event-based datasets and
transformations", Zenodo 2021):

================  =================  ======================================================
``frames``        size argument      tonic call
================  =================  ======================================================
``"time"``        ``time_steps=T``   ``ToFrame(n_time_bins=T)``: T equal time bins from the
                                     first to the last event of each recording
``"time"``        ``time_steps=T``,  ``ToFrame(time_window=D/T, start_time=0, end_time=D)``:
                  ``duration_us=D``  T bins of D/T microseconds on a fixed window ``[0, D]``,
                                     so bin ``b`` means the same time in every recording
``"time"``        ``time_window_us`` ``ToFrame(time_window=W)``: variable number of frames
``"count"``       ``time_steps=T``   ``ToFrame(n_event_bins=T)``: T frames holding an equal
                                     share of the events (SpikingJelly's ``split_by="number"``)
``"count"``       ``events_per_      ``ToFrame(event_count=N)``: frames of N events each
                  frame=N``          (variable number of frames; batch with ``collate_padded``)
================  =================  ======================================================

tonic's slicing drops a few events at the edges: ``n_time_bins`` can lose the last event of a
recording, ``n_event_bins`` the remainder ``N mod T``, ``event_count`` an incomplete last frame.

The fixed-window call reproduces :meth:`DigitEvents.as_tensors` ``(T)`` (and
:class:`~surrogate_nets.data.EventsToFrames` with ``start_us=0, duration_us=D``) exactly;
the tests check it on every training sample.
"""

from __future__ import annotations

import warnings

from .._validate import check_choice, check_int, check_positive

#: Values of the ``frames`` argument.
FRAME_MODES = ("time", "count")


class Compose:
    """Apply callables in order: :math:`f_n \\circ \\cdots \\circ f_1`.

    Unlike ``tonic.transforms.Compose`` it does not stop at an empty event array, so a frame
    transform always produces frames (all zero for an empty recording).
    """

    def __init__(self, transforms):
        self.transforms = [t for t in transforms if t is not None]

    def __call__(self, x):
        for t in self.transforms:
            x = t(x)
        return x

    def __repr__(self) -> str:
        return "Compose(" + ", ".join(repr(t) for t in self.transforms) + ")"


class SkipEmpty:
    """Apply an event transform only to non-empty recordings (tonic's Denoise fails on empty)."""

    def __init__(self, transform):
        self.transform = transform

    def __call__(self, events):
        return events if len(events) == 0 else self.transform(events)

    def __repr__(self) -> str:
        return repr(self.transform)


def resolve_frames(frames, time_steps, event_count, events_per_frame, time_window_us,
                   duration_us) -> dict | None:
    """Check the slicing arguments and return one ``{"mode": ..., ...}`` spec (None: no frames).

    Returns a dict with ``mode`` one of ``"time_bins"``, ``"fixed_window"``, ``"time_window"``,
    ``"event_bins"``, ``"event_count"`` and the integers it needs.
    """
    if frames is not None:
        frames = check_choice(frames, "frames", FRAME_MODES)
    if events_per_frame is not None:
        check_int(events_per_frame, "events_per_frame", minimum=1)
        if event_count is not None and event_count != events_per_frame:
            raise ValueError(f"events_per_frame={events_per_frame} and event_count={event_count} "
                             f"disagree (they are the same option)")
        event_count = events_per_frame
    if time_steps is not None:
        check_int(time_steps, "time_steps", minimum=1)
    if event_count is not None:
        check_int(event_count, "event_count", minimum=1)
    if time_window_us is not None:
        check_positive(time_window_us, "time_window_us")
    if duration_us is not None:
        check_positive(duration_us, "duration_us")
    if frames == "count":
        if time_window_us is not None:
            raise ValueError("frames='count' slices by event number; time_window_us does not "
                             f"apply, got time_window_us={time_window_us!r}")
        if (time_steps is None) == (event_count is None):
            raise ValueError("frames='count' needs exactly one of time_steps (T frames of equal "
                             "event count) and events_per_frame (frames of N events), got "
                             f"time_steps={time_steps!r}, events_per_frame={event_count!r}")
        if duration_us is not None:
            raise ValueError("duration_us fixes a time window; it does not apply to "
                             "frames='count'")
        if time_steps is not None:
            return {"mode": "event_bins", "n": time_steps}
        return {"mode": "event_count", "n": event_count}
    chosen = [n for n, v in (("time_steps", time_steps), ("event_count/events_per_frame",
                                                         event_count),
                             ("time_window_us", time_window_us)) if v is not None]
    if len(chosen) > 1:
        raise ValueError(f"give at most one of time_steps, event_count (events_per_frame), "
                         f"time_window_us; got {', '.join(chosen)}")
    if frames == "time" and not chosen:
        raise ValueError("frames='time' needs time_steps (T bins) or time_window_us")
    if frames == "time" and event_count is not None:
        raise ValueError("events_per_frame slices by event number: use frames='count', got "
                         "frames='time'")
    if duration_us is not None and time_steps is None:
        raise ValueError("duration_us fixes the window of time_steps bins; give time_steps too")
    if time_steps is not None:
        if duration_us is not None:
            return {"mode": "fixed_window", "n": time_steps, "duration": duration_us}
        return {"mode": "time_bins", "n": time_steps}
    if event_count is not None:
        return {"mode": "event_count", "n": event_count}
    if time_window_us is not None:
        return {"mode": "time_window", "window": time_window_us}
    return None


def tonic_to_frame(sensor_size, spec: dict | None):
    """tonic's ``ToFrame`` for a spec of :func:`resolve_frames` (None for no frames)."""
    if spec is None:
        return None
    import tonic.transforms as tt

    mode = spec["mode"]
    if mode == "time_bins":
        return tt.ToFrame(sensor_size=sensor_size, n_time_bins=spec["n"])
    if mode == "fixed_window":
        d = spec["duration"]
        return tt.ToFrame(sensor_size=sensor_size, time_window=d / spec["n"], start_time=0,
                          end_time=d)
    if mode == "time_window":
        return tt.ToFrame(sensor_size=sensor_size, time_window=spec["window"])
    if mode == "event_bins":
        return tt.ToFrame(sensor_size=sensor_size, n_event_bins=spec["n"])
    return tt.ToFrame(sensor_size=sensor_size, event_count=spec["n"])


def warn_if_event_transform(transform, makes_frames: bool) -> None:
    """``transform=`` runs after the frames are built: warn when it looks like a tonic event
    transform (which would then act on the frame array, e.g. DropEvent dropping time steps)."""
    if transform is None or not makes_frames:
        return
    module = type(transform).__module__ or ""
    name = type(transform).__name__
    if module.startswith("tonic.transforms") and name not in ("NumpyAsType", "Compose"):
        warnings.warn(
            f"transform={name}(...) is a tonic transform, but transform= is applied to the dense "
            f"frames, not to the events; pass event transforms as event_transform= (frame "
            f"transforms as frame_transform=)", UserWarning, stacklevel=3)


def warn_cached_event_transform(event_transform, cache_dir) -> None:
    """An event transform runs before the disk cache, so its result is stored once per sample."""
    if event_transform is not None and cache_dir is not None:
        warnings.warn(
            "event_transform runs before the disk cache (cache_dir): its output is computed once "
            "per sample and then reused, so a random augmentation (e.g. DropEvent) is frozen; "
            "augment with frame_transform or train without cache_dir", UserWarning, stacklevel=3)
