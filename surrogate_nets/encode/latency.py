"""Latency (time-to-first-spike) coding: bright inputs spike early, each element at most once.

References: Thorpe, Delorme & Van Rullen, "Spike-based strategies for rapid processing",
Neural Networks 14, 2001; Gollisch & Meister, "Rapid neural coding in the retina with relative
spike latencies", Science 319, 2008; Eshraghian et al., "Training Spiking Neural Networks Using
Lessons From Deep Learning", Proc. IEEE 111(9), 2023, Sec. III-A (RC-circuit latency model).
"""

from __future__ import annotations

import math
import numbers

import torch
from torch import nn

from .._validate import check_float_tensor, check_in_range, check_int, check_positive
from .rate import _check_bool, _check_values, _work_dtype

__all__ = ["latency", "LatencyEncoder"]


def _check_latency_args(T, tau, threshold, linear, normalize, clip, epsilon):
    T = check_int(T, "T", minimum=1)
    for name, v in (("tau", tau), ("threshold", threshold), ("epsilon", epsilon)):
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            raise TypeError(f"{name} must be a real number, got {type(v).__name__} {v!r}")
    check_positive(tau, "tau")
    _check_bool(linear, "linear")
    _check_bool(normalize, "normalize")
    _check_bool(clip, "clip")
    check_positive(epsilon, "epsilon")
    if linear:
        check_in_range(threshold, "threshold", 0.0, 1.0, low_open=False, high_open=True)
    else:
        # the RC model needs threshold > 0 (else every input fires at t = 0)
        check_in_range(threshold, "threshold", 0.0, 1.0, low_open=True, high_open=True)
    return T


def latency(x: torch.Tensor, T: int, tau: float = 5.0, threshold: float = 0.01,
            linear: bool = False, normalize: bool = True, clip: bool = True,
            epsilon: float = 1e-7) -> torch.Tensor:
    r"""Time-to-first-spike coding of an input in ``[0, 1]``: one spike at most per element.

    An element is *active* when :math:`x > \theta` (``threshold``), in both modes. Its continuous
    firing time :math:`t^*` is

    * RC model (``linear=False``): a leaky integrator :math:`\tau\,\dot V = -V + x` started at
      :math:`V(0) = 0` gives :math:`V(t) = x\,(1 - e^{-t/\tau})`, which reaches :math:`\theta`
      at :math:`t^* = \tau \ln\frac{x}{x - \theta}` for :math:`x > \theta` and never otherwise.
    * linear (``linear=True``): :math:`t^* = \tau\,(1 - x)`.

    ``normalize=True`` replaces the time scale :math:`\tau` (then unused) so that the latest
    spike lands on step ``T-1``:

    * RC: :math:`t^* = (T-1)\,\ln\frac{x}{x-\theta} \big/ \ln\frac{\theta+\epsilon}{\epsilon}`,
      the latest time being that of :math:`x = \theta + \epsilon` (a small :math:`\theta`
      compresses most inputs onto the first steps, raise ``threshold`` or ``epsilon`` to spread
      them);
    * linear: :math:`t^* = (T-1)(1 - x)`, so ``x = 1`` fires at 0 and ``x -> 0`` at ``T-1``;

    and :math:`t^*` is capped at ``T-1``, so every active element fires inside the window.

    The spike step is :math:`k = \lfloor t^* + 1/2 \rfloor` (round half up) and
    ``out[k, i] = 1``. Elements that do not fire inside ``[0, T-1]`` (inactive ones, and
    active ones with ``k >= T`` when ``normalize=False``) get no spike if ``clip=True`` and a
    spike at the last step ``T-1`` if ``clip=False``.

    Args:
        x: floating tensor ``[B, ...]`` with values in ``[0, 1]`` (no NaN).
        T: number of steps, ``>= 1``.
        tau: time constant :math:`\tau > 0` in steps (ignored when ``normalize=True``).
        threshold: :math:`\theta`, in ``(0, 1)`` for the RC model, ``[0, 1)`` for linear.
        linear: use the linear model instead of the RC model.
        normalize: rescale times so the latest spike is at ``T-1`` (see above).
        clip: drop spikes that fall outside the window (True) or put them at ``T-1`` (False).
        epsilon: :math:`\epsilon > 0` of the RC normalisation.

    Returns:
        ``[T, B, ...]`` 0/1 spikes in ``x``'s dtype, detached from the graph. Times are computed
        in float32 (float64 for float64 input).

    References: Thorpe et al., Neural Networks 14, 2001; Eshraghian et al., Proc. IEEE 2023.
    """
    check_float_tensor(x, "x", min_dim=1)
    T = _check_latency_args(T, tau, threshold, linear, normalize, clip, epsilon)
    _check_values(x, "x", 0.0, 1.0)

    xw = x.detach().to(_work_dtype(x.dtype))
    active = xw > threshold
    if linear:
        scale = float(T - 1) if normalize else float(tau)
        t = scale * (1.0 - xw)
    else:
        safe = torch.where(active, xw, torch.ones_like(xw))  # keep log finite where inactive
        ratio = torch.log(safe / (safe - threshold))
        if normalize:
            scale = (T - 1) / math.log((threshold + epsilon) / epsilon)
        else:
            scale = float(tau)
        t = scale * ratio
    if normalize:
        t = t.clamp(max=float(T - 1))
    step = torch.floor(t + 0.5)
    fires = active & (step <= T - 1)
    if clip:
        value = fires
        index = torch.where(fires, step, torch.zeros_like(step))
    else:
        value = torch.ones_like(fires)
        index = torch.where(fires, step, torch.full_like(step, T - 1))

    out = torch.zeros((T, *x.shape), dtype=x.dtype, device=x.device)
    out.scatter_(0, index.long().unsqueeze(0), value.to(x.dtype).unsqueeze(0))
    return out


class LatencyEncoder(nn.Module):
    r"""Module form of :func:`latency`: ``[B, ...] -> [T, B, ...]``, one spike at most per element
    at step :math:`\lfloor t^* + 1/2 \rfloor` with :math:`t^* = \tau\ln\frac{x}{x-\theta}` (RC)
    or :math:`t^* = \tau(1-x)` (linear), optionally normalised to ``[0, T-1]``.

    Args: as :func:`latency` (``T``, ``tau``, ``threshold``, ``linear``, ``normalize``, ``clip``,
    ``epsilon``); they are plain attributes, not parameters.

    Reference: Thorpe, Delorme & Van Rullen, Neural Networks 14, 2001; Eshraghian et al.,
    Proc. IEEE 2023.
    """

    def __init__(self, T: int, tau: float = 5.0, threshold: float = 0.01, linear: bool = False,
                 normalize: bool = True, clip: bool = True, epsilon: float = 1e-7):
        super().__init__()
        self.T = _check_latency_args(T, tau, threshold, linear, normalize, clip, epsilon)
        self.tau = float(tau)
        self.threshold = float(threshold)
        self.linear = linear
        self.normalize = normalize
        self.clip = clip
        self.epsilon = float(epsilon)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return latency(x, self.T, tau=self.tau, threshold=self.threshold, linear=self.linear,
                       normalize=self.normalize, clip=self.clip, epsilon=self.epsilon)

    def extra_repr(self) -> str:
        return (f"T={self.T}, tau={self.tau}, threshold={self.threshold}, linear={self.linear}, "
                f"normalize={self.normalize}, clip={self.clip}")
