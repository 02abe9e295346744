"""Rate coding: an intensity becomes the probability (or expected count) of a spike per step.

Each of the ``T`` time steps draws independently, so the spike count over the window is
Binomial(T, p) (Bernoulli method) or Poisson(T * lambda) (Poisson method), and the mean firing
rate estimates the input. See Eshraghian et al., "Training Spiking Neural Networks Using Lessons
From Deep Learning", Proc. IEEE 111(9), 2023, Sec. III-A; Diehl & Cook, "Unsupervised learning
of digit recognition using spike-timing-dependent plasticity", Front. Comput. Neurosci. 2015.
"""

from __future__ import annotations

import numbers

import torch
from torch import nn

from .._validate import (
    check_broadcast,
    check_choice,
    check_float_tensor,
    check_int,
    check_positive,
    check_same_device,
)

__all__ = ["rate", "RateEncoder"]

_METHODS = ("bernoulli", "poisson")


# --- private checks shared by the encoders -------------------------------------------------


def _check_bool(value, name: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__} {value!r}")
    return value


def _check_values(x: torch.Tensor, name: str, low: float | None = None, high: float | None = None,
                  context: str = "") -> torch.Tensor:
    """Reject NaN/inf in ``x`` and values outside ``[low, high]`` (a host sync; encoders only)."""
    xd = x.detach()
    if bool(torch.isnan(xd).any()):
        raise ValueError(f"{name} must not contain NaN, got {int(torch.isnan(xd).sum())} NaN "
                         f"value(s) in {tuple(x.shape)}{context}")
    if xd.numel() == 0:
        return x
    if low is None and high is None:
        if not bool(torch.isfinite(xd).all()):
            raise ValueError(f"{name} must be finite, got inf value(s) in {tuple(x.shape)}{context}")
        return x
    lo = -float("inf") if low is None else low
    hi = float("inf") if high is None else high
    bad = (xd < lo) | (xd > hi) | torch.isinf(xd)
    if bool(bad.any()):
        interval = f"[{lo}, {hi}]" if high is not None else f"[{lo}, inf)"
        raise ValueError(
            f"{name} must have values in {interval}{context}, got min={float(xd.min()):g}, "
            f"max={float(xd.max()):g}"
        )
    return x


def _check_generator(generator, x: torch.Tensor):
    if generator is None:
        return None
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    if generator.device.type != x.device.type:
        raise ValueError(
            f"generator is on {generator.device} but x is on {x.device}; create the generator with "
            f"torch.Generator(device=x.device)"
        )
    return generator


def _work_dtype(dtype: torch.dtype) -> torch.dtype:
    """Sampling/arithmetic dtype: float64 stays float64, everything narrower uses float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def _check_gain(gain, x: torch.Tensor):
    if isinstance(gain, torch.Tensor):
        check_float_tensor(gain, "gain")
        check_same_device(gain, "gain", x, "x")
        check_broadcast(gain, "gain", x.shape, "x")
        check_positive(gain, "gain", allow_zero=True)
    elif isinstance(gain, numbers.Real) and not isinstance(gain, bool):
        check_positive(gain, "gain", allow_zero=True)
    else:
        raise TypeError(f"gain must be a real number or a float tensor, got {type(gain).__name__} {gain!r}")
    return gain


# --- functional ----------------------------------------------------------------------------


def rate(x: torch.Tensor, T: int, gain=1.0, generator: torch.Generator | None = None,
         method: str = "bernoulli", straight_through: bool = False) -> torch.Tensor:
    r"""Rate-code a static input into a spike train of ``T`` independent steps.

    For every element ``x_i`` and step ``t = 0..T-1``, with ``g`` = ``gain``:

    * ``method="bernoulli"``: :math:`p_i = \mathrm{clamp}(g\,x_i, 0, 1)` and
      :math:`s_{t,i} \sim \mathrm{Bernoulli}(p_i)`, i.e. :math:`s_{t,i} = [u_{t,i} < p_i]` with
      :math:`u_{t,i} \sim U[0,1)`. Spikes are 0/1. ``x`` must lie in ``[0, 1]``.
    * ``method="poisson"``: :math:`\lambda_i = g\,x_i` and
      :math:`s_{t,i} \sim \mathrm{Poisson}(\lambda_i)`: a spike *count* per step, which can exceed
      1 (use it where a step stands for a bin of a Poisson process with rate ``lambda``).
      ``x`` must be finite and ``>= 0`` (it is a rate, it may exceed 1).

    In both cases :math:`E[s_{t,i}] = p_i` (resp. :math:`\lambda_i`), so the mean over time
    estimates the scaled input.

    Straight-through gradient (``straight_through=True``): the forward value is the sample, the
    backward pass is the derivative of the per-step expectation (Bengio, Leonard & Courville,
    "Estimating or propagating gradients through stochastic neurons", arXiv:1308.3432, 2013):

    .. math:: \frac{\partial s_{t,i}}{\partial x_i} := \frac{\partial E[s_{t,i}]}{\partial x_i}
              = g \cdot [0 \le g\,x_i \le 1] \;\text{(bernoulli)}, \qquad g \;\text{(poisson)}

    summed over the ``T`` steps by autograd; a tensor ``gain`` with ``requires_grad`` receives
    the matching gradient :math:`x_i` per step. With ``straight_through=False`` (default) the
    output is detached from the graph.

    Args:
        x: floating tensor ``[B, ...]`` (float16, bfloat16, float32 or float64).
        T: number of time steps, ``>= 1``.
        gain: ``g >= 0``; a real number or a tensor that broadcasts to ``x``.
        generator: optional ``torch.Generator`` on ``x``'s device, for reproducible draws.
        method: ``"bernoulli"`` or ``"poisson"``.
        straight_through: attach the gradient above.

    Returns:
        Spikes ``[T, B, ...]`` in ``x``'s dtype and device. Draws are made in float32 (float64
        for float64 input), so float16/bfloat16/float32 inputs with the same values and
        generator state give the same spikes.

    Reference: Eshraghian et al., Proc. IEEE 111(9), 2023, Sec. III-A (rate coding).
    """
    check_float_tensor(x, "x", min_dim=1)
    T = check_int(T, "T", minimum=1)
    check_choice(method, "method", _METHODS)
    _check_bool(straight_through, "straight_through")
    _check_gain(gain, x)
    _check_generator(generator, x)
    if method == "bernoulli":
        _check_values(x, "x", 0.0, 1.0, context=" for method='bernoulli'")
    else:
        _check_values(x, "x", 0.0, None, context=" for method='poisson'")

    work = _work_dtype(x.dtype)
    g = gain.to(work) if isinstance(gain, torch.Tensor) else gain
    p = g * x.to(work)
    if method == "bernoulli":
        p = p.clamp(0.0, 1.0)
    p_sample = p.detach().expand(T, *x.shape)
    if method == "bernoulli":
        u = torch.rand(p_sample.shape, generator=generator, dtype=work, device=x.device)
        spikes = (u < p_sample).to(x.dtype)
    else:
        spikes = torch.poisson(p_sample.contiguous(), generator=generator).to(x.dtype)
    if straight_through:
        # forward adds an exact zero; backward routes d/dp E[s] to every step
        spikes = spikes + (p - p.detach()).to(x.dtype)
    return spikes


# --- module --------------------------------------------------------------------------------


class RateEncoder(nn.Module):
    r"""Module form of :func:`rate`: ``[B, ...] -> [T, B, ...]`` spikes with
    :math:`s_t \sim \mathrm{Bernoulli}(\mathrm{clamp}(g x, 0, 1))` or
    :math:`\mathrm{Poisson}(g x)` per step.

    Args:
        T: number of time steps.
        gain: rate scale ``g >= 0`` (a float; it is not a parameter).
        method: ``"bernoulli"`` or ``"poisson"``.
        straight_through: straight-through gradient ``d s_t / d x = d E[s_t] / d x``.
        generator: optional ``torch.Generator`` used for every call (its state advances).

    Shapes: input ``[B, ...]``, output ``[T, B, ...]`` in the input dtype.

    Reference: Eshraghian et al., Proc. IEEE 111(9), 2023, Sec. III-A.
    """

    def __init__(self, T: int, gain: float = 1.0, method: str = "bernoulli",
                 straight_through: bool = False, generator: torch.Generator | None = None):
        super().__init__()
        self.T = check_int(T, "T", minimum=1)
        if isinstance(gain, bool) or not isinstance(gain, numbers.Real):
            raise TypeError(f"gain must be a real number, got {type(gain).__name__} {gain!r}")
        self.gain = float(check_positive(gain, "gain", allow_zero=True))
        self.method = check_choice(method, "method", _METHODS)
        self.straight_through = _check_bool(straight_through, "straight_through")
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
        self.generator = generator

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return rate(x, self.T, gain=self.gain, generator=self.generator, method=self.method,
                    straight_through=self.straight_through)

    def extra_repr(self) -> str:
        return (f"T={self.T}, gain={self.gain}, method={self.method!r}, "
                f"straight_through={self.straight_through}")
