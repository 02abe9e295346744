r"""The one staircase: exact forward, surrogate sums over the level boundaries, one truncation rule.

A spike, a multi-level spike and a k-level quantizer are the same staircase of Heaviside steps.
Everything that differentiates one calls this module:
:func:`~surrogate_nets.functional.spike`, :func:`~surrogate_nets.functional.fire`, the neuron
scans, :func:`~surrogate_nets.functional.staircase` / :func:`~surrogate_nets.functional.quantize`
and the fused fake quantizer (:mod:`surrogate_nets.quant.fake_quant`).

Boundaries. A staircase has steps at the boundaries ``c_k`` for ``k`` in ``[lo, hi)``:

* unit grid (``spacing=None``): ``c_k = k + 1/2`` -- the quantizer
  ``R(u) = clamp(floor(u + 1/2), lo, hi) = lo + sum_k H(u - k - 1/2)``;
* membrane units (``spacing=theta``, a tensor): ``c_k = k theta`` with ``k = 1..L`` -- the
  multi-level spike ``sum_k H(h - k theta)`` (``L = 1``: the binary spike).

The backward pass replaces each ``H`` by the surrogate relaxation ``P`` (see
:class:`~surrogate_nets.surrogate.Surrogate`), so with ``z_k = u - c_k``:

.. math::
    \sigma = \sum_k P'(z_k),\quad \kappa = \sum_k k\,P'(z_k),\quad
    \rho = \sum_k \partial_\alpha P(z_k)

(:func:`boundary_sums`; ``kappa`` is what a threshold ``theta`` needs, since
``d z_k / d theta = -k``). ``sigma1``/``rho1`` are the first terms alone (the reset-to-zero needs
the first-level spike).

Truncation rule (one for every caller): the sums are **exact**, over every boundary. Families
whose derivative has compact support (``support < inf``: ``Rectangle``, ``StraightThrough``,
``Triangle``, ``DSpike``) with a fixed alpha visit only the ``reach()`` nearest boundaries on
the unit grid when there are more than ``2 reach()`` of them -- the dropped terms are exactly
zero, so this is not an approximation (the error bound is 0, tested). Unbounded families
(``ATan``, ``Sigmoid``, ``Gaussian``, ...) cost one pass per level; prefer a compact family for
quantizers with hundreds of levels.

Boxcar fast path: when :func:`is_unit_boxcar` holds (a ``Rectangle``/``StraightThrough`` with a
fixed ``alpha == 1`` whose ``derivative`` is not overridden by a subclass), the unit-grid sum
``sigma`` is the mask ``1[lo <= u < hi]`` (boxes of width 1 tile ``[lo, hi)``) and is computed
in one fused pass (:func:`boxcar_grad`). A subclass that overrides ``derivative`` always gets its
own derivative, everywhere.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Optional

import torch

from ..surrogate import Surrogate
from ..surrogate.families import Rectangle

__all__ = [
    "round_half_up", "exact_staircase", "exact_staircase_", "level_count", "relaxed_staircase",
    "is_unit_boxcar", "boxcar_grad", "BoundarySums", "boundary_sums", "window_radius",
]


# ----------------------------------------------------------------------------- exact forward
def round_half_up(u: torch.Tensor) -> torch.Tensor:
    """``floor(u + 1/2)``: ties round up, so the staircase is exactly ``sum_k H(u - k - 1/2)``."""
    return torch.floor(u + 0.5)


def exact_staircase_(u: torch.Tensor, lo: int, hi: int, binary: bool = False) -> torch.Tensor:
    """``R(u) = clamp(floor(u + 1/2), lo, hi)`` computed in place in ``u`` (returns ``u``).

    ``binary=True``: the signed one-step grid ``2 H(u) - 1 = clamp(2 floor(u) + 1, -1, 1)``
    (``lo``/``hi`` ignored; float ops only, no boolean mask).
    """
    if binary:
        return u.floor_().mul_(2).add_(1).clamp_(-1, 1)
    return u.add_(0.5).floor_().clamp_(lo, hi)


def exact_staircase(u: torch.Tensor, lo: int, hi: int) -> torch.Tensor:
    """``R(u) = clamp(floor(u + 1/2), lo, hi)`` as a new tensor."""
    if torch._C._are_functorch_transforms_active():  # vmap has no batching rule for clamp_
        return torch.clamp(round_half_up(u), lo, hi)
    return round_half_up(u).clamp_(lo, hi)


def level_count(h: torch.Tensor, spacing: torch.Tensor, levels: int) -> torch.Tensor:
    """``sum_{k=1}^{L} H(h - k spacing)`` with ``H(0) = 1`` (the multi-level spike count, exact)."""
    if levels == 1:
        return ((h - spacing) >= 0).to(h.dtype)
    out = None
    for k in range(1, levels + 1):
        term = ((h - spacing * k) >= 0).to(h.dtype)
        out = term if out is None else out + term
    return out


def _z(u: torch.Tensor, k: int, spacing) -> torch.Tensor:
    """Distance to boundary ``k``: ``u - (k + 1/2)`` (unit grid) or ``u - k spacing``.

    A float ``spacing`` with ``k spacing == 0`` (the binary spike, boundary at 0) returns ``u``.
    """
    if spacing is None:
        return u - (k + 0.5)
    if isinstance(spacing, float):
        c = k * spacing
        return u if c == 0 else u - c
    return u - spacing * k


def relaxed_staircase(sur: Surrogate, u: torch.Tensor, alpha: torch.Tensor, lo: int, hi: int,
                      spacing: Optional[torch.Tensor] = None, offset: float = 0.0) -> torch.Tensor:
    """``offset + sum_{k=lo}^{hi-1} P(z_k)``: the smooth staircase (DSQ-style relaxed forward)."""
    out = torch.full_like(u, offset) if offset else None
    for k in range(lo, hi):
        term = sur.primitive(_z(u, k, spacing), alpha)
        out = term if out is None else out + term
    return out


# ------------------------------------------------------------------------- boxcar fast path
def _owner_index(cls: type, attr: str) -> int:
    """Position in the MRO of the class that defines ``attr`` (0 = ``cls`` itself)."""
    for i, c in enumerate(cls.__mro__):
        if attr in c.__dict__:
            return i
    return len(cls.__mro__)


def is_unit_boxcar(sur: Surrogate) -> bool:
    """True when ``sur``'s derivative is the unit box ``1[-1/2 <= z < 1/2]``, known without a device read.

    That is a :class:`~surrogate_nets.surrogate.Rectangle` (or ``StraightThrough``) with a fixed
    ``alpha == 1`` whose class does not override ``derivative``. It reads the host copy of alpha
    that :class:`~surrogate_nets.surrogate.Surrogate` keeps, so deciding costs no device read and
    traces under ``torch.compile``.
    """
    if not isinstance(sur, Rectangle) or sur.learnable:
        return False
    if type(sur).derivative is not Rectangle.derivative:
        return False
    return getattr(sur, "host_alpha", None) == (1.0, 1.0)


def _below(lo: int, double: bool) -> float:
    """The largest float below the integer ``lo <= 0`` in float64 (``double``) or float32.

    ``u > _below(lo)`` is then exactly ``u >= lo`` for ``u`` of that precision (half types are
    compared in float32). For ``lo = 0`` the smallest *normal* number is used, so a
    flush-denormals mode cannot turn ``u = 0`` into "below range".
    """
    if lo == 0:
        return -torch.finfo(torch.float64 if double else torch.float32).tiny
    if double:
        return math.nextafter(float(lo), -math.inf)
    _, e = math.frexp(-lo)  # |lo| in [2**(e-1), 2**e): float32 spacing 2**(e-1-23) below it
    return float(lo) - 2.0 ** (e - 24)


def boxcar_grad(grad: torch.Tensor, u: torch.Tensor, lo: int, hi: int) -> torch.Tensor:
    """``grad * 1[lo <= u < hi]`` in one fused pass (``hardtanh_backward`` with an exact lower bound).

    Integer ``lo <= 0 <= hi``.
    """
    if lo > 0:
        return grad * ((u >= lo) & (u < hi)).to(grad.dtype)
    # one fused kernel: a boolean mask and torch.where are several times slower on CPU
    return torch.ops.aten.hardtanh_backward(grad, u, _below(lo, u.dtype == torch.float64), float(hi))


# ------------------------------------------------------------------------------- the sums
class BoundarySums(NamedTuple):
    """The surrogate sums over the boundaries (``None`` where not asked for); see the module docstring."""

    sigma: Optional[torch.Tensor]
    kappa: Optional[torch.Tensor]
    sigma1: Optional[torch.Tensor]
    rho: Optional[torch.Tensor]
    rho1: Optional[torch.Tensor]


def window_radius(sur: Surrogate, wrt_alpha: bool) -> Optional[int]:
    """Boundaries to visit on each side of ``u`` on the unit grid, or ``None`` for all of them.

    An int only where the window is exact: ``sur.reach()`` is finite (compact support, fixed
    alpha) and the method summed (``derivative`` or ``d_alpha``) is not overridden below the
    class that declared the support.
    """
    r = sur.reach()
    if r is None:
        return None
    cls = type(sur)
    declared = min(_owner_index(cls, "support"), _owner_index(cls, "reach"))
    if _owner_index(cls, "d_alpha" if wrt_alpha else "derivative") < declared:
        return None
    return int(r)


def _window_terms(fn, u, alpha, lo, hi, weighted, window):
    """``(sum_k f(z_k), sum_k k f(z_k))`` on the unit grid visiting only ``2 window`` boundaries
    around ``u`` (exact when ``f`` vanishes beyond ``window - 1/2`` steps)."""
    tot = wsum = None
    base = torch.floor(u)
    for j in range(-window, window):
        k = (base + j).clamp_(lo - 1, hi)  # boundary k + 1/2, valid when lo <= k < hi
        term = fn(u - k - 0.5, alpha) * ((k >= lo) & (k < hi))
        tot = term if tot is None else tot + term
        if weighted:
            wsum = k * term if wsum is None else wsum + k * term
    return tot, wsum


def _windowed(sur, spacing, lo, hi, wrt_alpha) -> Optional[int]:
    if spacing is not None:
        return None
    r = window_radius(sur, wrt_alpha)
    return r if r is not None and hi - lo > 2 * r else None


def boundary_sums(sur: Surrogate, u: torch.Tensor, alpha: torch.Tensor, lo: int, hi: int, *,
                  spacing=None, derivative: bool = True, weighted: bool = False, first: bool = False,
                  wrt_alpha: bool = False) -> BoundarySums:
    r"""The surrogate sums of the staircase with boundaries ``k`` in ``[lo, hi)`` (see the module doc).

    Args:
        sur: the surrogate (its ``derivative``/``d_alpha`` are called with ``alpha``).
        u: ``[*]`` where the staircase is evaluated (``x / step`` on the unit grid, the membrane
            ``h`` in membrane units).
        alpha: alpha in ``u``'s dtype, broadcastable to ``u``.
        lo, hi: boundary indices ``lo <= k < hi``.
        spacing: ``None`` for the unit grid ``c_k = k + 1/2``; a tensor (or float) ``theta`` for
            ``c_k = k theta`` (the binary spike: ``lo, hi, spacing = 0, 1, 0.0``, i.e. ``z = u``).
        derivative, weighted, first, wrt_alpha: which of ``sigma``, ``kappa``, ``sigma1``,
            ``rho`` (and ``rho1`` when ``first``) to compute.

    Returns:
        :class:`BoundarySums`; each entry ``[*]`` (broadcast of ``u`` and ``alpha``) or ``None``.
    """
    sig = kap = sig1 = rho = rho1 = None
    need_d = derivative or weighted
    if need_d and spacing is None and is_unit_boxcar(sur):
        sig = ((u >= lo) & (u < hi)).to(u.dtype)
        kap = torch.floor(u) * sig if weighted else None
        sig1 = ((u >= lo) & (u < lo + 1)).to(u.dtype) if first else None
        need_d = False
    if hi - lo == 1:  # one boundary (the binary spike): one z for both sums
        if need_d or wrt_alpha:
            z = _z(u, lo, spacing)
            if need_d:
                sig = sur.derivative(z, alpha)
                sig1 = sig if first else None
                kap = (sig if lo == 1 else sig * lo) if weighted else None
            if wrt_alpha:
                rho = sur.d_alpha(z, alpha)
                rho1 = rho if first else None
        return BoundarySums(sig, kap, sig1, rho, rho1)
    win_d = _windowed(sur, spacing, lo, hi, False) if need_d else None
    if win_d is not None:
        sig, kap = _window_terms(sur.derivative, u, alpha, lo, hi, weighted, win_d)
        sig1 = sur.derivative(_z(u, lo, spacing), alpha) if first else None
        need_d = False
    win_a = _windowed(sur, spacing, lo, hi, True) if wrt_alpha else None
    if win_a is not None:
        rho, _ = _window_terms(sur.d_alpha, u, alpha, lo, hi, False, win_a)
        rho1 = sur.d_alpha(_z(u, lo, spacing), alpha) if first else None
        wrt_alpha = False
    if need_d or wrt_alpha:  # every boundary, one z per boundary shared by both sums
        for k in range(lo, hi):
            z = _z(u, k, spacing)
            if need_d:
                d = sur.derivative(z, alpha)
                if sig is None:
                    sig = d
                    sig1 = d if first else None
                    kap = (d if k == 1 else d * k) if weighted else None
                else:
                    sig = sig + d
                    if weighted:
                        kap = kap + (d if k == 1 else d * k)
            if wrt_alpha:
                r = sur.d_alpha(z, alpha)
                if rho is None:
                    rho = r
                    rho1 = r if first else None
                else:
                    rho = rho + r
    return BoundarySums(sig, kap, sig1, rho, rho1)
