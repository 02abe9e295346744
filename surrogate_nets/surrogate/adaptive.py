r"""Adaptive sharpness: alpha set from the membrane statistics near threshold, in both directions.

A learned alpha follows the gain gradient of the relaxed network (see :mod:`.base`), which does
not reward a useful surrogate *width*: started too steep it stays steep. :class:`Adaptive`
instead sets the width from data, like LSQ's data-driven step size (Esser et al., ICLR 2020)
but as a running statistic: it keeps a fraction ``q`` of the pre-activations
``x = h - theta`` that reach the surrogate inside the surrogate's half-maximum width.

With ``z_half`` the half-width at half-maximum of the family at ``alpha = 1``
(``P'(z_half; 1) = P'(0; 1)/2``) and ``Q_q`` the ``q``-quantile of ``|x|`` over every element
the surrogate saw in the last backward pass (all time steps, batch and neurons pooled):

.. math::
    \alpha^{*} = \frac{z_{half}}{Q_q(|x|)},\qquad
    \log\alpha \leftarrow \log\alpha + m\,(\log\alpha^{*} - \log\alpha)

i.e. an exponential moving average in log space (multiplicative steps, so leaving
``alpha = 512`` takes as few updates as leaving ``alpha = 0.05``). Because the target depends
on the data only, the end point does not depend on the start. ``q`` is unit free (a fraction
of units inside the main lobe of the surrogate), unlike alpha, whose good range depends on the
membrane scale.

Mechanics: the surrogate's ``derivative`` (called in the backward pass of every spike) adds
``log10|x|`` to a histogram while the module is in training mode; the next read of ``alpha``
in training mode (the next forward) turns the histogram into ``alpha^*`` and takes one EMA
step. Alpha is a buffer (``fixed_alpha``, in ``state_dict``), never a parameter; the buffer is
replaced, not written in place, so graphs still holding the old value stay valid. Under
``torch.distributed`` the histograms are summed over ranks before the update, so every rank
gets the same alpha. Intended for binary spikes (a multi-level staircase observes the distance
to every level boundary it visits). Cost: one ``histc`` per surrogate call in the backward and,
in training mode, one host read of the histogram per forward (an update is a few scalar ops).
Measured in ``benchmarks/surrogate_study.py`` (see ``docs/surrogate_study.md``).
"""

from __future__ import annotations

import math
from typing import Union

import torch

from .._validate import check_in_range, check_positive
from .base import Surrogate
from .registry import get

#: histogram of log10|x| on [_LO, _HI] in _BINS bins (0.05 decades per bin)
_LO, _HI, _BINS = -8.0, 4.0, 240


def half_width(surrogate: Surrogate, alpha: float = 1.0) -> float:
    """Half-width at half-maximum ``z`` of ``surrogate.derivative(., alpha)`` (bisection on ``x >= 0``).

    For a scale family ``P'(x; a) = a g'(a x)`` the half-width is ``z_half(1) / a``:
    fast_sigmoid ``sqrt(2) - 1``, atan ``2/pi``, sigmoid ``2 acosh(sqrt 2)`` (1.763),
    triangle ``1/2``, gaussian ``sqrt(2 ln 2)``.
    """
    a = torch.tensor(float(alpha), dtype=torch.float64)
    peak = float(surrogate.derivative(torch.zeros((), dtype=torch.float64), a))
    lo, hi = 0.0, 1.0
    while float(surrogate.derivative(torch.tensor(hi, dtype=torch.float64), a)) > peak / 2:
        hi *= 2.0
        if hi > 1e12:
            raise ValueError(f"surrogate {surrogate!r} has no half-maximum point")
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        if float(surrogate.derivative(torch.tensor(mid, dtype=torch.float64), a)) > peak / 2:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


class Adaptive(Surrogate):
    r"""A surrogate family whose sharpness follows the membrane statistics near threshold.

    .. math::
        \alpha^{*} = z_{half} / Q_q(|x|),\qquad \log\alpha \leftarrow (1-m)\log\alpha + m\log\alpha^{*}

    (see the module docstring). The shape (``primitive``, ``derivative``, ``d_alpha``) is that of
    ``base``; only alpha moves.

    Args:
        base: the family, a registry name or a non-learnable :class:`Surrogate` (its alpha is
            the start value unless ``alpha`` is given).
        alpha: start value (> 0, scalar); ``None`` takes ``base``'s alpha.
        fraction: ``q`` in (0, 1): the fraction of pre-activations kept inside the half-maximum
            width. Larger = wider surrogate.
        momentum: ``m`` in (0, 1]: EMA step in log space per update (1 = jump to ``alpha^*``).
        min_alpha, max_alpha: alpha is kept in this range.

    Shapes: as the base family; alpha is a scalar.

    Example::

        sg = Adaptive("fast_sigmoid", alpha=512.0, fraction=0.2)
        lif = LIF(tau=10.0, surrogate=sg)        # alpha moves while lif is in training mode

    Reference for the idea of a data-driven width: Esser et al., "Learned step size
    quantization", ICLR 2020 (step initialised from the input's statistics).
    """

    name = "adaptive"
    #: marks surrogates whose alpha is set by data (skipped by :class:`.AlphaSchedule`)
    adapts_alpha = True

    def __init__(self, base: Union[str, Surrogate] = "fast_sigmoid", alpha: Union[float, None] = None,
                 fraction: float = 0.2, momentum: float = 0.3, min_alpha: float = 1e-3,
                 max_alpha: float = 1e4):
        base = get(base) if isinstance(base, str) else base
        if not isinstance(base, Surrogate) or isinstance(base, Adaptive):
            raise TypeError(f"base must be a surrogate family name or a non-adaptive Surrogate, "
                            f"got {type(base).__name__}")
        if base.learnable:
            raise ValueError("base must have a fixed alpha (learnable=False): Adaptive sets alpha itself")
        if alpha is None:
            a = base.alpha.detach()
            if a.numel() != 1:
                raise ValueError(f"Adaptive needs a scalar alpha, base has alpha of shape {tuple(a.shape)}")
            alpha = float(a)
        check_positive(alpha, "alpha")
        if isinstance(alpha, torch.Tensor) and alpha.numel() != 1:
            raise ValueError(f"alpha must be a scalar, got shape {tuple(alpha.shape)}")
        self.fraction = float(check_in_range(fraction, "fraction", 0.0, 1.0, high_open=True))
        self.momentum = float(check_in_range(momentum, "momentum", 0.0, 1.0))
        check_positive(min_alpha, "min_alpha")
        check_positive(max_alpha, "max_alpha")
        if not min_alpha < max_alpha:
            raise ValueError(f"min_alpha must be < max_alpha, got {min_alpha!r} and {max_alpha!r}")
        self.min_alpha, self.max_alpha = float(min_alpha), float(max_alpha)
        super().__init__(alpha=alpha, learnable=False)
        self.base = base  # submodule: its own (unused) fixed alpha travels with it
        self.support = base.support
        self.z_half = half_width(base)
        # in the state_dict: observations pending at a checkpoint (the last backward of an
        # epoch) are applied after a resume exactly as in an uninterrupted run
        self.register_buffer("hist", torch.zeros(_BINS))
        #: number of alpha updates taken so far
        self.updates = 0

    # ------------------------------------------------------------- the family
    def primitive(self, x, alpha):
        return self.base.primitive(x, alpha)

    def derivative(self, x, alpha):
        if self.training:
            self.observe(x)
        return self.base.derivative(x, alpha)

    def d_alpha(self, x, alpha):
        return self.base.d_alpha(x, alpha)

    def reach(self) -> int:
        return self.base.reach() if type(self.base).reach is not Surrogate.reach else super().reach()

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        if prefix + "hist" not in state_dict:  # written before the histogram was saved
            state_dict[prefix + "hist"] = torch.zeros_like(self.hist)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    # ------------------------------------------------------------- statistics
    @torch.no_grad()
    def observe(self, x: torch.Tensor) -> None:
        """Add ``log10|x|`` of every element of ``x`` to the histogram of the next update."""
        lx = torch.log10(x.detach().abs().float().clamp_min(10.0 ** _LO))
        h = torch.histc(lx.flatten(), bins=_BINS, min=_LO, max=_HI)
        if self.hist.device != h.device:
            self.hist = self.hist.to(h.device)
        self.hist.add_(h)

    def target_alpha(self) -> Union[float, None]:
        """``alpha^* = z_half / Q_q(|x|)`` from the current histogram, or ``None`` if it is empty."""
        hist = self.hist
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            hist = hist.clone()
            torch.distributed.all_reduce(hist)
        total = float(hist.sum())
        if total <= 0:
            return None
        cdf = torch.cumsum(hist.double(), 0) / total
        i = int(torch.searchsorted(cdf, torch.tensor([self.fraction], dtype=cdf.dtype)).clamp_max(_BINS - 1))
        prev = float(cdf[i - 1]) if i > 0 else 0.0
        w = (self.fraction - prev) / max(float(cdf[i]) - prev, 1e-12)  # linear inside the bin
        width = (_HI - _LO) / _BINS
        q = 10.0 ** (_LO + (i + min(max(w, 0.0), 1.0)) * width)
        return self.z_half / q

    def update(self) -> float:
        """Take one EMA step towards :meth:`target_alpha` (if anything was observed) and clear
        the histogram. Called by the ``alpha`` property in training mode; returns alpha."""
        target = self.target_alpha()
        cur = self.fixed_alpha
        if target is not None:
            la = math.log(float(cur))
            la = la + self.momentum * (math.log(target) - la)
            new = min(max(math.exp(la), self.min_alpha), self.max_alpha)
            # replace the buffer (no in-place write: a graph may still hold the old tensor)
            self.fixed_alpha = torch.full_like(cur, new)
            self._refresh_host_alpha()
            self.updates += 1
        self.hist.zero_()
        return float(self.fixed_alpha)

    @property
    def alpha(self) -> torch.Tensor:
        """The current sharpness; in training mode a pending update is taken first."""
        if self.training and bool(self.hist.any()):
            self.update()
        return self.fixed_alpha

    def extra_repr(self) -> str:
        return (f"base={self.base.name}, alpha={float(self.fixed_alpha):.4g}, "
                f"fraction={self.fraction}, momentum={self.momentum}")
