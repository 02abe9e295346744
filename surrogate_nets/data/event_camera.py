"""A simulated dynamic-vision-sensor (event camera).

The sensor model turns a sequence of intensity frames into address events ``(x, y, t, p)``, the
way a DVS pixel does (Lichtsteiner, Posch & Delbruck, IEEE JSSC 2008; the simulator view of
Rebecq, Gehrig & Scaramuzza, "ESIM: an open event camera simulator", CoRL 2018):

* each pixel sees the log intensity :math:`L(t) = \\log(I(t) + \\varepsilon)`;
* it remembers a reference level :math:`L_\\mathrm{ref}` (initially :math:`L(0)`);
* when :math:`L(t) - L_\\mathrm{ref} \\ge C^{+}` it emits an ON event (``p = 1``) and sets
  :math:`L_\\mathrm{ref} \\mathrel{+}= C^{+}`; when :math:`L(t) - L_\\mathrm{ref} \\le -C^{-}` an
  OFF event (``p = 0``) and :math:`L_\\mathrm{ref} \\mathrel{-}= C^{-}`;
* after an event the pixel is blind for a refractory period :math:`t_\\mathrm{ref}`; changes that
  happen meanwhile are reported (late) once it has recovered, one event per threshold step;
* the thresholds differ from pixel to pixel (fixed-pattern mismatch,
  :math:`C^{\\pm}_{xy} = C\\,(1 + \\sigma\\,\\xi^{\\pm}_{xy})`,
  :math:`\\xi \\sim \\mathcal N(0, 1)`), and
  background-activity noise adds Poisson events of random polarity at a rate ``noise_rate_hz``
  per pixel.

Between two frames the log intensity is interpolated linearly, so an event gets the time at which
the interpolated signal crossed its level (microsecond resolution), not the frame time.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Iterable

import numpy as np

from .._validate import check_in_range, check_int, check_positive

#: The event record used throughout :mod:`surrogate_nets.data`; identical to tonic's
#: ``tonic.io.events_struct`` (x, y int16; t int64 microseconds; p bool, True = ON).
EVENT_DTYPE = np.dtype([("x", np.int16), ("y", np.int16), ("t", np.int64), ("p", bool)])


@dataclass(frozen=True)
class EventCamera:
    """Parameters of the simulated event camera (a frozen, hashable record).

    Args:
        contrast_threshold: nominal log-intensity step :math:`C` that triggers an event.
        threshold_mismatch: relative standard deviation :math:`\\sigma` of the per-pixel
            thresholds (fixed pattern of the sensor, drawn once from ``seed``).
        refractory_us: refractory period :math:`t_\\mathrm{ref}` in microseconds (>= 0).
        noise_rate_hz: rate of background-activity noise events per pixel, in Hz (>= 0).
        log_eps: offset :math:`\\varepsilon` in :math:`\\log(I + \\varepsilon)`; with intensities
            in [0, 1] it sets the dark level and hence the largest contrast, ``log(1/eps + 1)``.
        seed: seed of the sensor's fixed pattern and of the noise.

    Example:
        >>> cam = EventCamera(contrast_threshold=0.3, noise_rate_hz=0.0)
        >>> frames = np.zeros((11, 1, 4, 4)); frames[5:, :, 1, 1] = 1.0   # [K+1, N, H, W]
        >>> events, offsets = cam.record(frames, step_us=1000)
        >>> first = events[:1]
        >>> first[["x", "y", "p"]].tolist()
        [(1, 1, True)]
    """

    contrast_threshold: float = 0.5
    threshold_mismatch: float = 0.03
    refractory_us: int = 500
    noise_rate_hz: float = 1.0
    log_eps: float = 0.1
    seed: int = 0

    def __post_init__(self):
        check_positive(self.contrast_threshold, "contrast_threshold")
        check_in_range(self.threshold_mismatch, "threshold_mismatch", 0.0, 1.0, low_open=False,
                       high_open=True)
        check_int(self.refractory_us, "refractory_us", minimum=0)
        check_positive(self.noise_rate_hz, "noise_rate_hz", allow_zero=True)
        check_positive(self.log_eps, "log_eps")
        check_int(self.seed, "seed", minimum=0)

    def as_dict(self) -> dict:
        """The parameters as a plain ``dict`` (used for cache keys)."""
        return asdict(self)

    def thresholds(self, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
        """The per-pixel ON and OFF thresholds :math:`C^{\\pm}_{xy}`, each ``[H, W]`` float64.

        Drawn from ``seed`` only, so every recording of one camera shares the same pattern.
        """
        rng = np.random.default_rng([self.seed, 0xC0FFEE])
        xi = rng.standard_normal((2, height, width))
        c = self.contrast_threshold * (1.0 + self.threshold_mismatch * xi)
        c = np.maximum(c, 0.05 * self.contrast_threshold)
        return c[0], c[1]

    def record(self, frames: Iterable[np.ndarray], step_us: int) -> tuple[np.ndarray, np.ndarray]:
        """Record a batch of ``N`` videos given as frames at times ``t_k = k * step_us``.

        Args:
            frames: iterable of ``K + 1 >= 2`` intensity frames, each ``[N, H, W]`` with values
                >= 0 (typically in [0, 1]); an array ``[K + 1, N, H, W]`` or a generator works.
                Frame 0 only sets the pixels' reference levels.
            step_us: time between frames in microseconds.

        Returns:
            ``(events, offsets)``: ``events`` is a flat structured array of dtype
            :data:`EVENT_DTYPE` holding the events of video 0, then video 1, ..., each sorted by
            time; the events of video ``n`` are ``events[offsets[n]:offsets[n + 1]]``
            (``offsets`` is int64 ``[N + 1]``).
        """
        check_int(step_us, "step_us", minimum=1)
        it = iter(frames)
        try:
            first = np.asarray(next(it), dtype=np.float32)
        except StopIteration:
            raise ValueError("frames must hold at least 2 frames, got 0") from None
        if first.ndim != 3:
            raise ValueError(f"each frame must have shape [N, H, W], got shape {first.shape}")
        n, h, w = first.shape
        c_on, c_off = self.thresholds(h, w)
        c_on = np.tile(c_on.reshape(-1).astype(np.float32), n)
        c_off = np.tile(c_off.reshape(-1).astype(np.float32), n)
        c_min = np.float32(min(float(c_on.min()), float(c_off.min())))
        t_ref = int(self.refractory_us)

        eps = np.float32(self.log_eps)
        l_prev = np.log(first.reshape(-1) + eps)
        l_ref = l_prev.copy()
        t_ready = np.zeros(n * h * w, dtype=np.int64)  # earliest time each pixel may fire again
        chunks_idx, chunks_t, chunks_p = [], [], []

        k = 0
        for frame in it:
            k += 1
            frame = np.asarray(frame, dtype=np.float32)
            if frame.shape != first.shape:
                raise ValueError(
                    f"all frames must have shape {first.shape}, frame {k} has shape {frame.shape}"
                )
            l_now = np.log(frame.reshape(-1) + eps)
            t0, t1 = (k - 1) * step_us, k * step_us
            cand = np.flatnonzero(np.abs(l_now - l_ref) >= c_min)
            cand = cand[t_ready[cand] <= t1]
            if cand.size:
                self._emit(cand, l_prev, l_now, l_ref, t_ready, c_on, c_off, t0, t1, t_ref,
                           chunks_idx, chunks_t, chunks_p)
            l_prev = l_now
        if k == 0:
            raise ValueError("frames must hold at least 2 frames, got 1")

        idx = np.concatenate(chunks_idx) if chunks_idx else np.zeros(0, np.int64)
        t = np.concatenate(chunks_t) if chunks_t else np.zeros(0, np.int64)
        p = np.concatenate(chunks_p) if chunks_p else np.zeros(0, bool)
        sample, pix = np.divmod(idx, h * w)

        if self.noise_rate_hz > 0:
            rng = np.random.default_rng([self.seed, 0x5EED])
            duration = k * step_us
            lam = self.noise_rate_hz * h * w * duration * 1e-6
            counts = rng.poisson(lam, size=n)
            total = int(counts.sum())
            sample = np.concatenate([sample, np.repeat(np.arange(n), counts)])
            pix = np.concatenate([pix, rng.integers(0, h * w, size=total)])
            t = np.concatenate([t, rng.integers(0, duration, size=total, endpoint=True)])
            p = np.concatenate([p, rng.random(total) < 0.5])

        order = np.lexsort((t, sample))
        sample, pix, t, p = sample[order], pix[order], t[order], p[order]
        events = np.empty(order.size, dtype=EVENT_DTYPE)
        events["y"], events["x"] = np.divmod(pix, w)
        events["t"] = t
        events["p"] = p
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(sample, minlength=n), out=offsets[1:])
        return events, offsets

    @staticmethod
    def _emit(cand, l_prev, l_now, l_ref, t_ready, c_on, c_off, t0, t1, t_ref,
              out_idx, out_t, out_p):
        """Emit all events of the pixels ``cand`` in the interval ``(t0, t1]`` (in place)."""
        a, b = l_prev[cand], l_now[cand]
        slope = (b - a) / (t1 - t0)
        while cand.size:
            ref = l_ref[cand]
            d = b - ref
            on = d >= c_on[cand]
            off = d <= -c_off[cand]
            fire = on | off
            if not fire.any():
                break
            cand, a, b, slope, on, ref = (
                cand[fire], a[fire], b[fire], slope[fire], on[fire], ref[fire])
            level = np.where(on, ref + c_on[cand], ref - c_off[cand])
            # time at which the linearly interpolated log intensity crossed ``level``
            with np.errstate(divide="ignore", invalid="ignore"):
                frac = (level - a) / (slope * (t1 - t0))
            frac = np.where(np.isfinite(frac), np.clip(frac, 0.0, 1.0), 1.0)
            t_cross = t0 + np.ceil(frac * (t1 - t0)).astype(np.int64)
            t_ev = np.maximum(t_cross, t_ready[cand])
            ok = t_ev <= t1
            cand, a, b, slope, on, level, t_ev = (
                cand[ok], a[ok], b[ok], slope[ok], on[ok], level[ok], t_ev[ok])
            if cand.size == 0:
                break
            out_idx.append(cand.copy())
            out_t.append(t_ev)
            out_p.append(on)
            l_ref[cand] = level
            # a zero refractory period still allows only one event per microsecond
            t_ready[cand] = t_ev + max(t_ref, 1)
