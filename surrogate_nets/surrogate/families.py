r"""Built-in surrogate families, each with closed-form ``primitive``, ``derivative`` and ``d_alpha``.

Every derivative below integrates to 1 over the real line (it is the density of a
distribution centred on the threshold), so that the expected gradient through a spike does not
depend on the family; defaults of ``alpha`` follow the literature values noted per class.
Notation: ``a = alpha``, ``x`` the distance to threshold.
"""

from __future__ import annotations

import math

import torch

from .base import Surrogate

_SQRT_PI = math.sqrt(math.pi)
_SQRT_2PI = math.sqrt(2 * math.pi)


def _unit_box(z: torch.Tensor) -> torch.Tensor:
    """``1[-1/2 <= z < 1/2]`` in ``z``'s dtype (half-open, so adjacent boxes never overlap)."""
    return ((z >= -0.5) & (z < 0.5)).to(z.dtype)


class Rectangle(Surrogate):
    r"""Rectangular (boxcar) surrogate (Wu et al., "Spatio-temporal backpropagation", Front. Neurosci. 2018).

    .. math::
        P(x) = \mathrm{clamp}(a x + 1/2,\ 0,\ 1),\quad
        P'(x) = a\,\mathbb{1}[-1/2 \le a x < 1/2],\quad
        \partial_a P = x\,\mathbb{1}[-1/2 \le a x < 1/2]

    Default ``alpha = 1`` (a box of width 1 and height 1, STBP's rectangular curve with ``a = 1``).
    """

    name = "rectangle"
    default_alpha = 1.0
    support = 0.5

    def primitive(self, x, alpha):
        return torch.clamp(alpha * x + 0.5, 0.0, 1.0)

    def derivative(self, x, alpha):
        return alpha * _unit_box(alpha * x)

    def d_alpha(self, x, alpha):
        return x * _unit_box(alpha * x)



class StraightThrough(Rectangle):
    r"""The boxcar straight-through estimator (Bengio et al. 2013; Hinton's lecture STE, clipped).

    Same math as :class:`Rectangle` (``alpha = 1``: gradient 1 on ``[-1/2, 1/2)``). In
    :func:`~surrogate_nets.functional.quantize` the boxes of all level boundaries tile the
    quantizer's range, so the x- and step-gradients are exactly those of LSQ (Esser et al.,
    ICLR 2020) with clip-then-round.
    """

    name = "straight_through"
    default_alpha = 1.0


class Sigmoid(Surrogate):
    r"""Logistic sigmoid surrogate.

    .. math::
        P = \sigma(a x),\quad P' = a\,\sigma(a x)(1-\sigma(a x)),\quad \partial_a P = x\,\sigma(1-\sigma)

    Default ``alpha = 4`` (peak gradient 1). Peer names and slopes: docs/coming-from.md.
    """

    name = "sigmoid"
    default_alpha = 4.0

    def primitive(self, x, alpha):
        return torch.sigmoid(alpha * x)

    # sigma(z) * sigma(-z), not s * (1 - s): 1 - s rounds to 0 in float32 once z > ~17, the
    # product of the two sigmoids keeps the tail e^{-|z|} down to the smallest normal number.
    def derivative(self, x, alpha):
        z = alpha * x
        return alpha * torch.sigmoid(z) * torch.sigmoid(-z)

    def d_alpha(self, x, alpha):
        z = alpha * x
        return x * torch.sigmoid(z) * torch.sigmoid(-z)


class FastSigmoid(Surrogate):
    r"""Fast sigmoid / SuperSpike surrogate (Zenke & Ganguli, Neural Computation 2018).

    .. math::
        P = \tfrac12\Big(1 + \frac{a x}{1 + a|x|}\Big),\quad
        P' = \frac{a}{2(1 + a|x|)^2},\quad \partial_a P = \frac{x}{2(1+a|x|)^2}

    Default ``alpha = 2``: peak ``alpha/2 = 1``, the peak of the other families' defaults (atan 2,
    sigmoid 4, triangle 1), chosen by the surrogate study (``benchmarks/surrogate_study.py``:
    steepness 2-8 is best on Randman and DigitEvents, 25-32 costs about one point). SuperSpike's
    derivative ``1/(1+a|x|)^2`` (Zenke & Ganguli 2018, peak 1) is ours times ``2/a``: ours is
    normalised to integrate to 1. Peer names and slopes: docs/coming-from.md.
    """

    name = "fast_sigmoid"
    default_alpha = 2.0

    def primitive(self, x, alpha):
        # written with q = 1/(1 + |a x|) so that an overflowing a x (inf in float16) gives 0 or 1,
        # not inf/inf = NaN, and the lower tail 0.5 q keeps its relative precision
        ax = alpha * x
        q = 0.5 / (1 + ax.abs())
        return torch.where(ax < 0, q, 1 - q)

    def derivative(self, x, alpha):
        return alpha / (2 * (1 + (alpha * x).abs()) ** 2)

    def d_alpha(self, x, alpha):
        return x / (2 * (1 + (alpha * x).abs()) ** 2)


class SoftSign(FastSigmoid):
    r"""Soft-sign surrogate: the fast-sigmoid curve with default ``alpha = 2``
    (since the study, also :class:`FastSigmoid`'s default; kept as its own name).

    .. math:: P = \tfrac12\big(1 + \mathrm{softsign}(a x)\big),\quad P' = \frac{a}{2(1+a|x|)^2}
    """

    name = "softsign"
    default_alpha = 2.0


class ATan(Surrogate):
    r"""Arc-tangent surrogate (Fang et al., "Incorporating learnable membrane time constant", ICCV 2021).

    .. math::
        P = \tfrac1\pi \arctan\!\big(\tfrac\pi2 a x\big) + \tfrac12,\quad
        P' = \frac{a/2}{1 + (\frac\pi2 a x)^2},\quad
        \partial_a P = \frac{x/2}{1 + (\frac\pi2 a x)^2}

    Default ``alpha = 2`` (peak gradient 1).
    """

    name = "atan"
    default_alpha = 2.0

    def primitive(self, x, alpha):
        return torch.atan(0.5 * math.pi * alpha * x) / math.pi + 0.5

    def derivative(self, x, alpha):
        return (0.5 * alpha) / (1 + (0.5 * math.pi * alpha * x) ** 2)

    def d_alpha(self, x, alpha):
        return (0.5 * x) / (1 + (0.5 * math.pi * alpha * x) ** 2)


class Triangle(Surrogate):
    r"""Triangular surrogate (Esser et al., PNAS 2016; Bellec et al., "Long short-term memory and
    learning-to-learn in networks of spiking neurons", NeurIPS 2018).

    .. math::
        P' = a\,\max(0, 1 - a|x|),\quad \partial_a P = x\,\max(0, 1 - a|x|),\\
        P = \begin{cases} 0 & a x < -1\\ (1 + a x)^2/2 & -1 \le a x < 0\\
        1 - (1 - a x)^2/2 & 0 \le a x < 1\\ 1 & a x \ge 1\end{cases}

    Default ``alpha = 1`` (support ``|x| < 1``, peak 1).
    """

    name = "triangle"
    default_alpha = 1.0
    support = 1.0

    def primitive(self, x, alpha):
        z = (alpha * x).clamp(-1.0, 1.0)
        return torch.where(z < 0, 0.5 * (1 + z) ** 2, 1 - 0.5 * (1 - z) ** 2)

    def derivative(self, x, alpha):
        return alpha * torch.relu(1 - (alpha * x).abs())

    def d_alpha(self, x, alpha):
        return x * torch.relu(1 - (alpha * x).abs())


class Gaussian(Surrogate):
    r"""Gaussian surrogate: the normal CDF with standard deviation ``1/a`` (Yin et al. 2021; Bellec et al. 2020).

    .. math::
        P = \Phi(a x) = \tfrac12\big(1 + \mathrm{erf}(a x/\sqrt2)\big),\quad
        P' = \frac{a}{\sqrt{2\pi}} e^{-a^2x^2/2},\quad \partial_a P = \frac{x}{\sqrt{2\pi}} e^{-a^2x^2/2}

    Default ``alpha = 2`` (sigma = 0.5).
    """

    name = "gaussian"
    default_alpha = 2.0

    def primitive(self, x, alpha):
        return 0.5 * (1 + torch.erf(alpha * x / math.sqrt(2)))

    def derivative(self, x, alpha):
        return alpha / _SQRT_2PI * torch.exp(-0.5 * (alpha * x) ** 2)

    def d_alpha(self, x, alpha):
        return x / _SQRT_2PI * torch.exp(-0.5 * (alpha * x) ** 2)


class Erf(Surrogate):
    r"""Error-function surrogate (Esser et al. 2015 style).

    .. math::
        P = \tfrac12\,\mathrm{erfc}(-a x),\quad P' = \frac{a}{\sqrt\pi} e^{-a^2x^2},\quad
        \partial_a P = \frac{x}{\sqrt\pi} e^{-a^2x^2}

    Default ``alpha = 2``.
    """

    name = "erf"
    default_alpha = 2.0

    def primitive(self, x, alpha):
        return 0.5 * torch.erfc(-alpha * x)

    def derivative(self, x, alpha):
        return alpha / _SQRT_PI * torch.exp(-((alpha * x) ** 2))

    def d_alpha(self, x, alpha):
        return x / _SQRT_PI * torch.exp(-((alpha * x) ** 2))


class Exponential(Surrogate):
    r"""Piecewise-exponential (Laplace) surrogate (Shrestha & Orchard, SLAYER, NeurIPS 2018).

    .. math::
        P = \begin{cases}\tfrac12 e^{a x} & x < 0\\ 1 - \tfrac12 e^{-a x} & x \ge 0\end{cases},\quad
        P' = \tfrac a2 e^{-a|x|},\quad \partial_a P = \tfrac{|x|}{2} e^{-a|x|}\,\mathrm{sign}(x)

    Default ``alpha = 1``. Peer names: docs/coming-from.md.
    """

    name = "exponential"
    default_alpha = 1.0

    def primitive(self, x, alpha):
        e = 0.5 * torch.exp(-(alpha * x).abs())
        return torch.where(x < 0, e, 1 - e)

    def derivative(self, x, alpha):
        return 0.5 * alpha * torch.exp(-(alpha * x).abs())

    def d_alpha(self, x, alpha):
        return 0.5 * x * torch.exp(-(alpha * x).abs())


class DSpike(Surrogate):
    r"""Dspike: a tanh-shaped relaxation on a window of width 1 (Li et al., "Differentiable spike", NeurIPS 2021).

    With ``c = clamp(x, -1/2, 1/2)`` and temperature ``a``:

    .. math::
        P = \tfrac12 + \frac{\tanh(a c)}{2\tanh(a/2)},\quad
        P' = \frac{a\,(1 - \tanh^2(a x))}{2\tanh(a/2)}\,\mathbb{1}[|x| < 1/2],\\
        \partial_a P = \frac{c\,(1-\tanh^2(a c))\tanh(a/2) - \tfrac12\tanh(a c)(1-\tanh^2(a/2))}{2\tanh^2(a/2)}

    Small ``a`` tends to the boxcar, large ``a`` to the step. Default ``alpha = 3``.
    """

    name = "dspike"
    default_alpha = 3.0

    def primitive(self, x, alpha):
        c = x.clamp(-0.5, 0.5)
        return 0.5 + torch.tanh(alpha * c) / (2 * torch.tanh(0.5 * alpha))

    def derivative(self, x, alpha):
        inside = (x.abs() < 0.5).to(x.dtype)
        return alpha * (1 - torch.tanh(alpha * x) ** 2) / (2 * torch.tanh(0.5 * alpha)) * inside

    def d_alpha(self, x, alpha):
        # The closed form cancels catastrophically for small a (its two terms agree to O(a^3)), so
        # a <= 2 uses the cancellation-free series c a S / (cosh^2(a c) (sinh(a/2)/(a/2))^2) with
        # S = sum_k a^(2k-2) (1 - (2c)^(2k)) / (2k+1)!; half types are computed in float32.
        dt = x.dtype
        if dt in (torch.float16, torch.bfloat16):
            x, alpha = x.float(), torch.as_tensor(alpha).float()
        c = x.clamp(-0.5, 0.5)
        ad = torch.as_tensor(alpha, dtype=x.dtype, device=x.device).clamp(min=2.0)
        th = torch.tanh(ad * c)
        th2 = torch.tanh(0.5 * ad)
        # sech^2 = 1/cosh^2 rather than 1 - tanh^2, which is 0 in float32 once |a c| > 9
        direct = (c * torch.cosh(ad * c) ** -2 * th2 - 0.5 * th * torch.cosh(0.5 * ad) ** -2) / (2 * th2**2)
        a = torch.as_tensor(alpha, dtype=x.dtype, device=x.device).clamp(max=2.0)
        a2, t = a * a, 4 * c * c
        coef, geo = torch.full_like(a, 1.0 / 6.0), torch.ones_like(t)
        acc = coef * geo
        for k in range(2, 13):
            coef = coef * a2 / ((2 * k) * (2 * k + 1))
            geo = geo * t + 1
            acc = acc + coef * geo
        h = 0.5 * a
        sh = torch.where(h > 0, torch.sinh(h) / h, torch.ones_like(h))
        series = c * a * (1 - 2 * c) * (1 + 2 * c) * acc / (torch.cosh(a * c) ** 2 * sh**2)
        return torch.where(torch.as_tensor(alpha, device=x.device) > 2.0, direct, series).to(dt)

    def reach(self):
        return 1  # the window |x| < 1/2 does not depend on alpha


BUILTINS = (
    StraightThrough,
    Rectangle,
    Sigmoid,
    FastSigmoid,
    SoftSign,
    ATan,
    Triangle,
    Gaussian,
    Erf,
    Exponential,
    DSpike,
)
