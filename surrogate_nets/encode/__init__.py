"""Spike encoders: static or sequential inputs to time-major spike tensors ``[T, B, ...]``.

| encoder | input -> output | code |
| --- | --- | --- |
| :func:`rate` / :class:`RateEncoder` | ``[B, ...]`` in [0, 1] -> ``[T, B, ...]`` | ``s_t ~ Bernoulli(clamp(g x, 0, 1))`` or ``Poisson(g x)`` per step |
| :func:`latency` / :class:`LatencyEncoder` | ``[B, ...]`` in [0, 1] -> ``[T, B, ...]`` | one spike at ``tau ln(x / (x - theta))`` (RC) or ``tau (1 - x)`` (linear) |
| :func:`delta` / :class:`DeltaEncoder` | ``[T, B, ...]`` -> ``[T, B, ...]`` or ``[T, B, 2, ...]`` | ``+1`` if ``x_t - x_{t-1} >= theta``, ``-1`` if ``<= -theta`` |

Functions are pure (math only); the modules are thin wrappers holding the options. See
Eshraghian et al., "Training Spiking Neural Networks Using Lessons From Deep Learning",
Proc. IEEE 111(9), 2023, Sec. III-A, for an overview of the three codes.
"""

from .delta import DeltaEncoder, delta
from .latency import LatencyEncoder, latency
from .rate import RateEncoder, rate

__all__ = ["rate", "latency", "delta", "RateEncoder", "LatencyEncoder", "DeltaEncoder"]
