"""``DigitEvents``: real handwritten digits recorded by a simulated event camera during saccades.

The 1,797 8x8 digits of the UCI "Optical Recognition of Handwritten Digits" data set (Alpaydin &
Kaynak, 1998; CC BY 4.0; the copy bundled with scikit-learn, shipped here as ``digits.csv.gz``)
are shown to a simulated event camera (:class:`~surrogate_nets.data.EventCamera`) while the image
moves along three saccades, the way Orchard et al. turned MNIST into N-MNIST ("Converting static
image datasets to spiking neuromorphic datasets using saccades", Front. Neurosci. 9:437, 2015).
"""

from __future__ import annotations

import gzip
import os
import warnings
from importlib import resources
from typing import Callable

import numpy as np
import torch

from .._validate import check_int
from ._cache import cache_root, config_hash, load_npz, save_npz_atomic
from .event_camera import EVENT_DTYPE, EventCamera
from .frames import time_bins

_DIGITS_FILE = "digits.csv.gz"
_FORMAT_VERSION = 1  # bump when the conversion changes, so that old cache entries are ignored


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """The bundled UCI digits: ``(images, labels)``.

    Returns:
        ``images``: uint8 ``[1797, 8, 8]`` with values 0..16 (the count of ink pixels in each 4x4
        block of the original 32x32 bitmap); ``labels``: int64 ``[1797]`` in 0..9, in file order.

    Reference:
        E. Alpaydin and C. Kaynak, "Optical Recognition of Handwritten Digits", UCI Machine
        Learning Repository, 1998, https://doi.org/10.24432/C50P49 (CC BY 4.0).
    """
    with resources.files(__package__).joinpath(_DIGITS_FILE).open("rb") as raw:
        with gzip.open(raw, "rt", encoding="ascii") as fh:
            table = np.loadtxt(fh, delimiter=",", dtype=np.int64)
    images = table[:, :64].reshape(-1, 8, 8).astype(np.uint8)
    labels = table[:, 64].copy()
    return images, labels


def digits_test_mask(labels: np.ndarray) -> np.ndarray:
    """The fixed train/test split of the digits: ``True`` where a sample is in the test set.

    Within each class, samples are numbered ``j = 0, 1, ...`` in file order, and sample ``j`` is a
    test sample iff ``j % 5 == 2``. This is a stratified 80/20 split that needs no random number
    generator (so it never changes between library or numpy versions): 1,438 train and 359 test
    digits for the bundled file.
    """
    labels = np.asarray(labels)
    rank = np.zeros(labels.shape, dtype=np.int64)
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        rank[idx] = np.arange(idx.size)
    return rank % 5 == 2


def saccade_path(t_us: np.ndarray, saccade_us: int,
                 amplitude: float) -> tuple[np.ndarray, np.ndarray]:
    """Image displacement ``(dx, dy)`` in pixels at times ``t_us`` along three linear saccades.

    The image moves along the isosceles triangle of N-MNIST (Orchard et al., 2015),
    :math:`(0, 0) \\to (A/2, A) \\to (A, 0) \\to (0, 0)`, each leg taking ``saccade_us``
    (``y`` points down). Times outside ``[0, 3 saccade_us]`` are clamped.
    """
    vx = np.array([0.0, amplitude / 2, amplitude, 0.0])
    vy = np.array([0.0, amplitude, 0.0, 0.0])
    s = np.clip(np.asarray(t_us, dtype=np.float64) / saccade_us, 0.0, 3.0)
    return np.interp(s, [0, 1, 2, 3], vx), np.interp(s, [0, 1, 2, 3], vy)


def _bilinear_matrix(n_out: int, n_in: int, pos: np.ndarray) -> np.ndarray:
    """``M[o, i] = max(0, 1 - |pos[o] - i|)``: bilinear sampling of input index ``pos[o]``."""
    return np.maximum(0.0, 1.0 - np.abs(pos[:, None] - np.arange(n_in)[None, :]))


def _upscale_matrix(n_in: int, factor: int) -> np.ndarray:
    """Bilinear upscaling by ``factor`` (pixel centres aligned as ``align_corners=False``)."""
    n_out = n_in * factor
    pos = np.clip((np.arange(n_out) + 0.5) / factor - 0.5, 0.0, n_in - 1.0)
    return _bilinear_matrix(n_out, n_in, pos)


def _cache_entry_ok(data: dict) -> bool:
    if not {"x", "y", "t", "p", "offsets", "labels"} <= set(data):
        return False
    n_events = len(data["x"])
    return (len(data["offsets"]) == len(data["labels"]) + 1 and int(data["offsets"][-1]) == n_events
            and all(len(data[k]) == n_events for k in ("y", "t", "p")))


class DigitEvents(torch.utils.data.Dataset):
    """Event-camera recordings of the 1,797 UCI handwritten digits (an embedded "mini N-MNIST").

    Each 8x8 digit (intensity :math:`I = v / 16`, :math:`v \\in 0..16`) is upscaled bilinearly to
    16x16 and moved over a 20x20 sensor along the three saccades of :func:`saccade_path`
    (amplitude 4 px, 100 ms each, 300 ms in total), rendered with bilinear sub-pixel shifts every
    ``step_us``. The :class:`EventCamera` turns the frames into ON/OFF events (log-intensity
    threshold crossings, refractory period, threshold mismatch, background noise).

    The whole set is converted once (1-2 s on one CPU core) and cached as an ``.npz`` in
    ``<cache_dir>/digit_events/<hash>.npz``, keyed by a hash of every generator parameter. The
    split is fixed (:func:`digits_test_mask`): 1,438 train / 359 test digits.

    Args:
        root: cache directory; default ``$SURROGATE_NETS_CACHE`` or ``~/.cache/surrogate_nets``.
        train: the training (True) or test (False) split.
        transform: callable applied to the events (e.g. :class:`EventsToFrames`, any tonic
            transform).
        target_transform: callable applied to the label.
        camera: the :class:`EventCamera` (its ``seed`` fixes the fixed-pattern noise and the
            background events); default ``EventCamera()``.
        step_us: rendering step of the simulation in microseconds (default 2000).
        use_cache: read/write the disk cache (default True); False always converts in memory.

    ``dataset[i]`` returns ``(events, label)``: ``events`` a structured array of dtype
    :data:`EVENT_DTYPE` (fields ``x, y`` int16, ``t`` int64 microseconds, ``p`` bool), sorted by
    time, in tonic's format so that tonic transforms (``ToFrame``, ``Denoise``, ``DropEvent``, ...)
    apply; ``label`` an ``int`` in 0..9. ``ToFrame(sensor_size, time_window=D/T, start_time=0,
    end_time=D)`` with ``D =`` :attr:`duration_us` gives exactly the frames of
    :meth:`as_tensors` ``(T)`` (``n_time_bins=T`` instead bins each sample from its first to its
    last event).

    For training, :meth:`as_tensors` gives the whole split as dense frames at once.

    Example:
        >>> ds = DigitEvents(train=True)                        # doctest: +SKIP
        >>> events, label = ds[0]                               # doctest: +SKIP
        >>> X, y = ds.as_tensors(time_steps=10)                 # doctest: +SKIP
        >>> X.shape                                             # doctest: +SKIP
        torch.Size([1438, 10, 2, 20, 20])

    References:
        G. Orchard, A. Jayawant, G. K. Cohen, N. Thakor, "Converting static image datasets to
        spiking neuromorphic datasets using saccades", Front. Neurosci. 9:437, 2015.
        E. Alpaydin, C. Kaynak, "Optical Recognition of Handwritten Digits", UCI Machine Learning
        Repository, 1998, https://doi.org/10.24432/C50P49 (CC BY 4.0).
    """

    #: ``(W, H, P)`` as in tonic: a 20x20 sensor with ON/OFF polarities.
    sensor_size = (20, 20, 2)
    #: Recording length in microseconds (three saccades of 100 ms).
    duration_us = 300_000
    #: Length of one saccade in microseconds.
    saccade_us = 100_000
    #: Side of the upscaled digit in pixels, and the saccade amplitude in pixels.
    image_size = 16
    amplitude = 4
    classes = [str(i) for i in range(10)]
    dtype = EVENT_DTYPE
    ordering = EVENT_DTYPE.names

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        train: bool = True,
        transform: Callable | None = None,
        target_transform: Callable | None = None,
        *,
        camera: EventCamera | None = None,
        step_us: int = 2000,
        use_cache: bool = True,
    ):
        if not isinstance(train, bool):
            raise TypeError(f"train must be a bool, got {type(train).__name__} {train!r}")
        if camera is None:
            camera = EventCamera()
        if not isinstance(camera, EventCamera):
            raise TypeError(f"camera must be an EventCamera or None, got {type(camera).__name__}")
        self.step_us = check_int(step_us, "step_us", minimum=1, maximum=self.saccade_us)
        for name, fn in (("transform", transform), ("target_transform", target_transform)):
            if fn is not None and not callable(fn):
                raise TypeError(f"{name} must be callable or None, got {type(fn).__name__}")
        self.root = cache_root(root)
        self.train = train
        self.transform = transform
        self.target_transform = target_transform
        self.camera = camera
        self.config = {
            "dataset": "digit_events",
            "version": _FORMAT_VERSION,
            "camera": camera.as_dict(),
            "step_us": self.step_us,
            "saccade_us": self.saccade_us,
            "image_size": self.image_size,
            "amplitude": self.amplitude,
            "sensor_size": list(self.sensor_size),
        }
        self.cache_path = self.root / "digit_events" / f"{config_hash(self.config)}.npz"
        data = self._load_or_convert(use_cache)

        labels = data["labels"]
        test = digits_test_mask(labels)
        self.indices = np.flatnonzero(~test if train else test)
        offsets = data["offsets"]
        in_split = np.zeros(labels.shape[0], dtype=bool)
        in_split[self.indices] = True
        take = in_split[np.repeat(np.arange(labels.shape[0]), np.diff(offsets))]
        events = np.empty(int(take.sum()), dtype=EVENT_DTYPE)
        events["x"] = data["x"][take]
        events["y"] = data["y"][take]
        events["t"] = data["t"][take]
        events["p"] = data["p"][take].astype(bool)
        #: All events of the split, concatenated; sample ``i`` is
        #: ``events[offsets[i]:offsets[i + 1]]``.
        self.events = events
        self.offsets = np.zeros(len(self.indices) + 1, dtype=np.int64)
        np.cumsum(np.diff(offsets)[self.indices], out=self.offsets[1:])
        #: Labels of the split, int64 ``[N]``.
        self.targets = labels[self.indices].astype(np.int64)
        self._frames: dict = {}

    # -- conversion and cache -------------------------------------------------------------------
    def _load_or_convert(self, use_cache: bool) -> dict:
        if use_cache:
            data = load_npz(self.cache_path)
            if data is not None and _cache_entry_ok(data):
                return data
        data = self.convert(self.camera, self.step_us)
        if use_cache:
            try:
                save_npz_atomic(self.cache_path, **data)
            except OSError as err:  # e.g. a read-only home: keep going without the cache
                warnings.warn(f"DigitEvents: could not write the cache {self.cache_path}: {err}",
                              RuntimeWarning, stacklevel=3)
        return data

    @classmethod
    def convert(cls, camera: EventCamera, step_us: int = 2000) -> dict[str, np.ndarray]:
        """Record all 1,797 digits; returns the compact arrays stored in the cache.

        Returns:
            dict with ``x, y`` uint8, ``t`` int32 (microseconds), ``p`` uint8 (flat over all
            events), ``offsets`` int64 ``[1798]`` and ``labels`` int64 ``[1797]``.
        """
        images, labels = load_digits()
        up = _upscale_matrix(8, cls.image_size // 8)
        img = np.einsum("ai,nij,bj->nab", up, images / 16.0, up).astype(np.float32)
        w, h, _ = cls.sensor_size
        n_steps = 3 * cls.saccade_us // step_us
        dx, dy = saccade_path(np.arange(n_steps + 1) * step_us, cls.saccade_us, cls.amplitude)
        rows, cols = np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64)

        def frames():
            for k in range(n_steps + 1):
                my = _bilinear_matrix(h, cls.image_size, rows - dy[k])  # [H, 16]
                mx = _bilinear_matrix(w, cls.image_size, cols - dx[k])  # [W, 16]
                yield my.astype(np.float32) @ img @ mx.T.astype(np.float32)

        events, offsets = camera.record(frames(), step_us=step_us)
        return {
            "x": events["x"].astype(np.uint8),
            "y": events["y"].astype(np.uint8),
            "t": events["t"].astype(np.int32),
            "p": events["p"].astype(np.uint8),
            "offsets": offsets,
            "labels": labels,
        }

    # -- dataset protocol -----------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int):
        if isinstance(index, (bool, np.bool_)) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"index must be an int, got {type(index).__name__} {index!r}")
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for DigitEvents of length {n}")
        index = int(index) % n
        events = self.events[self.offsets[index]:self.offsets[index + 1]].copy()
        target = int(self.targets[index])
        if self.transform is not None:
            events = self.transform(events)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return events, target

    def __repr__(self) -> str:
        split = "train" if self.train else "test"
        return (f"DigitEvents(split={split!r}, samples={len(self)}, events={len(self.events)}, "
                f"sensor_size={self.sensor_size}, camera={self.camera})")

    # -- fast dense path ------------------------------------------------------------------------
    def as_tensors(self, time_steps: int, binary: bool = False,
                   dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
        """The whole split as dense frames, for fast in-memory training.

        Event :math:`i` of sample :math:`n` adds 1 to
        :math:`X[n, b_i, p_i, y_i, x_i]` with :math:`b_i = \\lfloor t_i T / D \\rfloor` over the
        fixed window :math:`[0, D]`, :math:`D =` :attr:`duration_us` (see
        :func:`~surrogate_nets.data.events_to_frames`; identical to applying
        ``EventsToFrames(sensor_size, T, start_us=0, duration_us=D)`` or tonic's
        ``ToFrame(sensor_size, time_window=D/T, start_time=0, end_time=D)`` to every sample).
        Computed once per ``(time_steps, binary, dtype)`` and kept in memory (a fraction of a
        second for the whole set).

        Returns:
            ``(X, y)``: ``X`` float ``[N, T, 2, H, W]`` (sample-major; use ``X[idx].transpose(0,
            1)`` for a time-major batch ``[T, B, 2, H, W]``), ``y`` int64 ``[N]``.
        """
        time_steps = check_int(time_steps, "time_steps", minimum=1)
        if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
            raise TypeError(f"dtype must be a floating torch.dtype, got {dtype!r}")
        key = (time_steps, bool(binary), dtype)
        if key not in self._frames:
            w, h, npol = self.sensor_size
            n = len(self)
            sample = np.repeat(np.arange(n, dtype=np.int64), np.diff(self.offsets))
            bins, keep = time_bins(self.events["t"], time_steps, 0, self.duration_us)
            flat = (((sample * time_steps + bins) * npol + self.events["p"].astype(np.int64)) * h
                    + self.events["y"].astype(np.int64)) * w + self.events["x"].astype(np.int64)
            counts = np.bincount(flat[keep], minlength=n * time_steps * npol * h * w)
            x = torch.from_numpy(counts.reshape(n, time_steps, npol, h, w))
            if binary:
                x = x.clamp_(max=1)
            self._frames[key] = (x.to(dtype), torch.from_numpy(self.targets.copy()))
        x, y = self._frames[key]
        return x, y
