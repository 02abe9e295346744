r"""Triton forms of every built-in surrogate family: one ``@triton.jit`` derivative and alpha-derivative each.

This is the ONE place where the kernels learn a family's math. :data:`TRITON_FORMS` maps a
family class (exact type, so a user subclass that overrides the math never inherits a wrong
kernel form) to ``(derivative, d_alpha)``, both ``fn(z, a)`` with ``z`` the distance to the
threshold and ``a`` the sharpness, elementwise on register blocks; the formulas are those in the
docstrings of :mod:`surrogate_nets.surrogate.families`. The scan kernels receive the two helpers
as compile-time arguments and inline them. ``tests/kernels`` checks each form against the
family's own ``derivative`` / ``d_alpha`` on a grid, so a missing or wrong form cannot silently
return zero gradients.

Importing this module imports triton; :mod:`surrogate_nets.kernels` imports it lazily.
"""

from __future__ import annotations

import math

import triton
import triton.language as tl

from ..surrogate import families as fam

# module constants used inside @triton.jit must be constexpr (compiled Triton rejects plain globals)
_INV_SQRT_PI = tl.constexpr(1.0 / math.sqrt(math.pi))
_INV_SQRT_2PI = tl.constexpr(1.0 / math.sqrt(2.0 * math.pi))
_HALF_PI = tl.constexpr(0.5 * math.pi)


@triton.jit
def _tanh(y):
    """``tanh(y) = 1 - 2 / (exp(2y) + 1)`` (saturates to +-1 without overflow trouble)."""
    return 1.0 - 2.0 / (tl.exp(2.0 * y) + 1.0)


@triton.jit
def _box(u):
    """``1[-1/2 <= u < 1/2]`` as 0/1 in ``u``'s dtype."""
    return ((u >= -0.5) & (u < 0.5)).to(u.dtype)


# ---------------------------------------------------------------- Rectangle / StraightThrough
@triton.jit
def rectangle_d(z, a):
    return a * _box(a * z)


@triton.jit
def rectangle_da(z, a):
    return z * _box(a * z)


# ---------------------------------------------------------------- Sigmoid
@triton.jit
def sigmoid_d(z, a):
    s = 1.0 / (1.0 + tl.exp(-a * z))
    return a * s * (1.0 - s)


@triton.jit
def sigmoid_da(z, a):
    s = 1.0 / (1.0 + tl.exp(-a * z))
    return z * s * (1.0 - s)


# ---------------------------------------------------------------- FastSigmoid / SoftSign
@triton.jit
def fast_sigmoid_d(z, a):
    q = 1.0 + tl.abs(a * z)
    return a / (2.0 * q * q)


@triton.jit
def fast_sigmoid_da(z, a):
    q = 1.0 + tl.abs(a * z)
    return z / (2.0 * q * q)


# ---------------------------------------------------------------- ATan
@triton.jit
def atan_d(z, a):
    u = _HALF_PI * a * z
    return (0.5 * a) / (1.0 + u * u)


@triton.jit
def atan_da(z, a):
    u = _HALF_PI * a * z
    return (0.5 * z) / (1.0 + u * u)


# ---------------------------------------------------------------- Triangle
@triton.jit
def triangle_d(z, a):
    return a * tl.maximum(1.0 - tl.abs(a * z), 0.0)


@triton.jit
def triangle_da(z, a):
    return z * tl.maximum(1.0 - tl.abs(a * z), 0.0)


# ---------------------------------------------------------------- Gaussian
@triton.jit
def gaussian_d(z, a):
    u = a * z
    return a * _INV_SQRT_2PI * tl.exp(-0.5 * u * u)


@triton.jit
def gaussian_da(z, a):
    u = a * z
    return z * _INV_SQRT_2PI * tl.exp(-0.5 * u * u)


# ---------------------------------------------------------------- Erf
@triton.jit
def erf_d(z, a):
    u = a * z
    return a * _INV_SQRT_PI * tl.exp(-(u * u))


@triton.jit
def erf_da(z, a):
    u = a * z
    return z * _INV_SQRT_PI * tl.exp(-(u * u))


# ---------------------------------------------------------------- Exponential (Laplace)
@triton.jit
def exponential_d(z, a):
    return 0.5 * a * tl.exp(-tl.abs(a * z))


@triton.jit
def exponential_da(z, a):
    return 0.5 * z * tl.exp(-tl.abs(a * z))


# ---------------------------------------------------------------- DSpike
@triton.jit
def dspike_d(z, a):
    inside = (tl.abs(z) < 0.5).to(z.dtype)
    t = _tanh(a * z)
    return a * (1.0 - t * t) / (2.0 * _tanh(0.5 * a)) * inside


@triton.jit
def dspike_da(z, a):
    c = tl.minimum(tl.maximum(z, -0.5), 0.5)
    t = _tanh(a * c)
    t2 = _tanh(0.5 * a)
    return (c * (1.0 - t * t) * t2 - 0.5 * t * (1.0 - t2 * t2)) / (2.0 * t2 * t2)


TRITON_FORMS = {
    fam.StraightThrough: (rectangle_d, rectangle_da),
    fam.Rectangle: (rectangle_d, rectangle_da),
    fam.Sigmoid: (sigmoid_d, sigmoid_da),
    fam.FastSigmoid: (fast_sigmoid_d, fast_sigmoid_da),
    fam.SoftSign: (fast_sigmoid_d, fast_sigmoid_da),
    fam.ATan: (atan_d, atan_da),
    fam.Triangle: (triangle_d, triangle_da),
    fam.Gaussian: (gaussian_d, gaussian_da),
    fam.Erf: (erf_d, erf_da),
    fam.Exponential: (exponential_d, exponential_da),
    fam.DSpike: (dspike_d, dspike_da),
}
"""``{family class: (derivative, d_alpha)}``, keyed by exact type; every class in
:data:`surrogate_nets.surrogate.families.BUILTINS` has an entry (a test checks it)."""

#: the same forms by registry name (``Surrogate.name``), used by the ``torch.library`` ops
FORMS_BY_NAME = {cls.name: pair for cls, pair in TRITON_FORMS.items()}


def form_for(surrogate):
    """``(derivative, d_alpha)`` for a surrogate instance, or ``None`` when it has no Triton form."""
    return TRITON_FORMS.get(type(surrogate))
