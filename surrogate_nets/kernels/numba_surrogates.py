r"""Surrogate terms of the numba LIF backward: one ``(derivative, d_alpha)`` pair per built-in family.

Split out of :mod:`.numba_lif` (which re-exports every name here). :data:`NUMBA_CODES` (one entry
per built-in family, keyed by exact class) selects the loop of :func:`_sur_vec`, whose per-family
helpers spell out the formulas of :mod:`surrogate_nets.surrogate.families`; ``tests/kernels``
checks every entry against the family's own ``derivative`` / ``d_alpha``. The helpers are inlined
into the kernels of :mod:`.numba_lif` and evaluate in float64.
"""

from __future__ import annotations

import math

from numba import njit

from ..surrogate import families as fam

NUMBA_CODES = {
    fam.StraightThrough: 0, fam.Rectangle: 0, fam.Sigmoid: 1, fam.FastSigmoid: 2,
    fam.SoftSign: 2, fam.ATan: 3, fam.Triangle: 4, fam.Gaussian: 5, fam.Erf: 6,
    fam.Exponential: 7, fam.DSpike: 8,
}
"""``{family class: branch code of _sur_d/_sur_da}``; every built-in has one (a test checks it)."""

_HALF_PI = 0.5 * math.pi
_INV_SQRT_PI = 1.0 / math.sqrt(math.pi)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


# ------------------------------------------------------------------ the families, one pair each
@njit(cache=True, inline="always", error_model="numpy")
def _rect_d(z, a):
    u = a * z
    return a if (u >= -0.5 and u < 0.5) else 0.0


@njit(cache=True, inline="always", error_model="numpy")
def _rect_da(z, a):
    u = a * z
    return z if (u >= -0.5 and u < 0.5) else 0.0


@njit(cache=True, inline="always", error_model="numpy")
def _sigmoid_d(z, a):
    s = 1.0 / (1.0 + math.exp(-a * z))
    return a * s * (1.0 - s)


@njit(cache=True, inline="always", error_model="numpy")
def _sigmoid_da(z, a):
    s = 1.0 / (1.0 + math.exp(-a * z))
    return z * s * (1.0 - s)


@njit(cache=True, inline="always", error_model="numpy")
def _fast_sigmoid_d(z, a):
    q = 1.0 + abs(a * z)
    return a / (2.0 * q * q)


@njit(cache=True, inline="always", error_model="numpy")
def _fast_sigmoid_da(z, a):
    q = 1.0 + abs(a * z)
    return z / (2.0 * q * q)


@njit(cache=True, inline="always", error_model="numpy")
def _atan_d(z, a):
    u = _HALF_PI * a * z
    return 0.5 * a / (1.0 + u * u)


@njit(cache=True, inline="always", error_model="numpy")
def _atan_da(z, a):
    u = _HALF_PI * a * z
    return 0.5 * z / (1.0 + u * u)


@njit(cache=True, inline="always", error_model="numpy")
def _triangle_d(z, a):
    return a * max(1.0 - abs(a * z), 0.0)


@njit(cache=True, inline="always", error_model="numpy")
def _triangle_da(z, a):
    return z * max(1.0 - abs(a * z), 0.0)


@njit(cache=True, inline="always", error_model="numpy")
def _gaussian_d(z, a):
    u = a * z
    return a * _INV_SQRT_2PI * math.exp(-0.5 * u * u)


@njit(cache=True, inline="always", error_model="numpy")
def _gaussian_da(z, a):
    u = a * z
    return z * _INV_SQRT_2PI * math.exp(-0.5 * u * u)


@njit(cache=True, inline="always", error_model="numpy")
def _erf_d(z, a):
    u = a * z
    return a * _INV_SQRT_PI * math.exp(-u * u)


@njit(cache=True, inline="always", error_model="numpy")
def _erf_da(z, a):
    u = a * z
    return z * _INV_SQRT_PI * math.exp(-u * u)


@njit(cache=True, inline="always", error_model="numpy")
def _exponential_d(z, a):
    return 0.5 * a * math.exp(-abs(a * z))


@njit(cache=True, inline="always", error_model="numpy")
def _exponential_da(z, a):
    return 0.5 * z * math.exp(-abs(a * z))


@njit(cache=True, inline="always", error_model="numpy")
def _dspike_d(z, a):
    if abs(z) >= 0.5:
        return 0.0
    t = math.tanh(a * z)
    return a * (1.0 - t * t) / (2.0 * math.tanh(0.5 * a))


@njit(cache=True, inline="always", error_model="numpy")
def _dspike_da(z, a):
    c = min(max(z, -0.5), 0.5)
    t = math.tanh(a * c)
    t2 = math.tanh(0.5 * a)
    return (c * (1.0 - t * t) * t2 - 0.5 * t * (1.0 - t2 * t2)) / (2.0 * t2 * t2)


def _sur_vec_py(code, wrt_alpha, z, a, out, m):
    """``out[:m] = f(z[:m], a[:m])``, ``f`` = derivative (or d_alpha) of family ``code``.

    The family branch sits outside the element loop, so each loop is branch-free and the
    compiler can vectorise it."""
    if not wrt_alpha:
        if code == 0:
            for i in range(m):
                out[i] = _rect_d(z[i], a[i])
        elif code == 1:
            for i in range(m):
                out[i] = _sigmoid_d(z[i], a[i])
        elif code == 2:
            for i in range(m):
                out[i] = _fast_sigmoid_d(z[i], a[i])
        elif code == 3:
            for i in range(m):
                out[i] = _atan_d(z[i], a[i])
        elif code == 4:
            for i in range(m):
                out[i] = _triangle_d(z[i], a[i])
        elif code == 5:
            for i in range(m):
                out[i] = _gaussian_d(z[i], a[i])
        elif code == 6:
            for i in range(m):
                out[i] = _erf_d(z[i], a[i])
        elif code == 7:
            for i in range(m):
                out[i] = _exponential_d(z[i], a[i])
        else:
            for i in range(m):
                out[i] = _dspike_d(z[i], a[i])
    else:
        if code == 0:
            for i in range(m):
                out[i] = _rect_da(z[i], a[i])
        elif code == 1:
            for i in range(m):
                out[i] = _sigmoid_da(z[i], a[i])
        elif code == 2:
            for i in range(m):
                out[i] = _fast_sigmoid_da(z[i], a[i])
        elif code == 3:
            for i in range(m):
                out[i] = _atan_da(z[i], a[i])
        elif code == 4:
            for i in range(m):
                out[i] = _triangle_da(z[i], a[i])
        elif code == 5:
            for i in range(m):
                out[i] = _gaussian_da(z[i], a[i])
        elif code == 6:
            for i in range(m):
                out[i] = _erf_da(z[i], a[i])
        elif code == 7:
            for i in range(m):
                out[i] = _exponential_da(z[i], a[i])
        else:
            for i in range(m):
                out[i] = _dspike_da(z[i], a[i])


_sur_vec = njit(cache=True, inline="always", error_model="numpy")(_sur_vec_py)
_sur_vec_py = njit(cache=True)(_sur_vec_py)  # a callable copy (tests evaluate the forms with it)
