r"""Specialised numba LIF kernels for the common case: binary spikes (``levels = 1``).

Same recurrence and gradients as :mod:`.numba_lif` (whose general kernels handle every mode);
these kernels cover ``levels = 1`` with reset ``subtract`` / ``zero`` / ``none``, any
``detach_reset`` / ``decay_input``, gradients for ``x``, ``v0``, ``beta`` and ``threshold`` (not
alpha), and the surrogate families with an entry in :data:`FAST_CODES`. Differences from the
general kernels, all for speed:

* one fused pass per time step over the block (state, surrogate and outputs in one element
  loop) instead of one loop per intermediate;
* arithmetic in the input dtype: every constant comes from the small array ``cst`` of that dtype
  (numba promotes a Python float literal to float64, which halves the SIMD width and turns
  divisions into slow double divisions), so float32 runs stay float32 end to end;
* mode switches enter the loop as 0/1 factors of the input dtype (no branch inside it).

The forward is bit-identical to the torch backend's (same float32 operations, no fused
multiply-add). The backward evaluates the surrogate in the input dtype; for float32 inputs it
agrees with the torch backend to float32 rounding (the torch backend does the same in float32).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from numba import njit

from ..surrogate import families as fam

_BLOCK = 512

FAST_CODES = {fam.StraightThrough: 0, fam.Rectangle: 0, fam.Sigmoid: 1, fam.FastSigmoid: 2,
              fam.SoftSign: 2, fam.ATan: 3, fam.Triangle: 4}
"""``{family class: code of _d}``: the families the fused backward evaluates inline."""


def constants(dtype: torch.dtype) -> torch.Tensor:
    """``cst`` of the kernels: ``[0, 1/2, 1, pi/2]`` in ``dtype``."""
    return torch.tensor([0.0, 0.5, 1.0, 0.5 * math.pi], dtype=dtype)


@njit(cache=True, inline="always", error_model="numpy")
def _d(code, z, a, c0, c05, c1, chpi):
    """Surrogate derivative of family ``code`` at ``z`` with sharpness ``a`` (input dtype)."""
    if code == 3:  # ATan
        u = chpi * a * z
        return c05 * a / (c1 + u * u)
    if code == 1:  # Sigmoid
        s = c1 / (c1 + np.exp(-a * z))
        return a * s * (c1 - s)
    if code == 2:  # FastSigmoid / SoftSign
        q = c1 + abs(a * z)
        return a / ((c1 + c1) * q * q)
    if code == 4:  # Triangle
        r = c1 - abs(a * z)
        return a * (r if r > c0 else c0)
    u = a * z  # Rectangle / StraightThrough
    return a if (u >= -c05 and u < c05) else c0


@njit(cache=True, inline="always", error_model="numpy")
def _dvec(code, h, th, a, out, m, c0, c05, c1, chpi):
    """``out[:m] = d(h - th)`` of family ``code``; the family branch sits outside the loops."""
    if code == 3:
        for i in range(m):
            u = chpi * a[i] * (h[i] - th[i])
            out[i] = c05 * a[i] / (c1 + u * u)
    elif code == 1:
        for i in range(m):
            sg = c1 / (c1 + np.exp(-a[i] * (h[i] - th[i])))
            out[i] = a[i] * sg * (c1 - sg)
    elif code == 2:
        for i in range(m):
            q = c1 + abs(a[i] * (h[i] - th[i]))
            out[i] = a[i] / ((c1 + c1) * q * q)
    elif code == 4:
        for i in range(m):
            r = c1 - abs(a[i] * (h[i] - th[i]))
            out[i] = a[i] * (r if r > c0 else c0)
    else:
        for i in range(m):
            u = a[i] * (h[i] - th[i])
            out[i] = a[i] if (u >= -c05 and u < c05) else c0


@njit(cache=True, nogil=True, error_model="numpy")
def fwd1(x, v0, b, cb, th, cst, reset, s_out, h_out, v_out, lo, hi):
    """Forward, ``levels = 1``: ``h = cb x + b v``; ``s = H(h - th)``; reset (0 sub, 1 zero, 2 none).

    ``cb`` is ``1 - beta`` with decay_input, else ones."""
    T = x.shape[0]
    c0 = cst[0]
    c1 = cst[2]
    fsub = c1 if reset == 0 else c0
    fzero = c1 if reset == 1 else c0
    for j0 in range(lo, hi, _BLOCK):
        m = min(hi, j0 + _BLOCK) - j0
        v = v0[j0:j0 + m].copy()
        bl = b[j0:j0 + m].copy()
        cbl = cb[j0:j0 + m].copy()
        thl = th[j0:j0 + m].copy()
        hb = np.empty_like(v)
        sb = np.empty_like(v)
        xb = x[0, j0:j0 + m].copy()
        for t in range(T):
            for i in range(m):
                hb[i] = cbl[i] * xb[i] + bl[i] * v[i]
            for i in range(m):
                sb[i] = c1 if hb[i] - thl[i] >= c0 else c0
            # subtract: h - s th; zero: h (1 - s); none: h
            for i in range(m):
                v[i] = hb[i] - fsub * (sb[i] * thl[i]) - fzero * (sb[i] * hb[i])
            # load the next input row before storing this step's rows: x[t+1] and h/s[t] can sit
            # at the same offset modulo 4 KiB, and a load right behind an aliasing store stalls
            if t + 1 < T:
                for i in range(m):
                    xb[i] = x[t + 1, j0 + i]
            for i in range(m):
                h_out[t, j0 + i] = hb[i]
            for i in range(m):
                s_out[t, j0 + i] = sb[i]
        v_out[j0:j0 + m] = v


@njit(cache=True, nogil=True, error_model="numpy")
def bwd1(h_in, gs, gts, gv_in, v0, x, b, cb, th, al, cst, code, reset, nd, has_gv, need_b, need_th,
         decay, gx, gv0, gb, gth, lo, hi):
    """Backward, ``levels = 1``, only ``dL/ds`` (and ``dL/dv_T``) flowing in.

    ``gs`` is ``[T, n]`` (``gts = 1``) or one row ``[1, n]`` shared by every step (``gts = 0``: a
    gradient that does not change over time, such as the expanded ones of ``out.sum()``)."""
    T = h_in.shape[0]
    c0 = cst[0]
    c05 = cst[1]
    c1 = cst[2]
    chpi = cst[3]
    fsub = c1 if reset == 0 else c0
    fzero = c1 if reset == 1 else c0
    fnd = c1 if nd else c0
    fdec = c1 if decay else c0
    for j0 in range(lo, hi, _BLOCK):
        m = min(hi, j0 + _BLOCK) - j0
        bl = b[j0:j0 + m].copy()
        cbl = cb[j0:j0 + m].copy()
        thl = th[j0:j0 + m].copy()
        al_ = al[j0:j0 + m].copy()
        if has_gv:
            gv = gv_in[j0:j0 + m].copy()
        else:
            gv = np.zeros_like(bl)
        acc_b = np.zeros_like(bl)
        acc_th = np.zeros_like(bl)
        hb = np.empty_like(bl)
        Gb = np.empty_like(bl)
        db = np.empty_like(bl)
        ghb = np.empty_like(bl)
        gxb = np.empty_like(bl)  # dL/dx of step t + 1, stored after step t's loads (4K aliasing)
        rth = np.empty_like(bl)  # the spike's reset coefficient: subtract th, zero h (0 detached)
        for t in range(T - 1, -1, -1):
            if not (need_b or need_th):
                # one write per loop, every operand in a local block: these loops vectorise
                for i in range(m):
                    hb[i] = h_in[t, j0 + i]
                for i in range(m):
                    Gb[i] = gs[t * gts, j0 + i]
                if t < T - 1:
                    for i in range(m):
                        gx[t + 1, j0 + i] = gxb[i]
                _dvec(code, hb, thl, al_, db, m, c0, c05, c1, chpi)
                for i in range(m):
                    rth[i] = fnd * (fsub * thl[i] + fzero * hb[i])
                for i in range(m):
                    keep = c1 - fzero * (c1 if hb[i] - thl[i] >= c0 else c0)
                    ghb[i] = keep * gv[i] + (Gb[i] - rth[i] * gv[i]) * db[i]
                for i in range(m):
                    gxb[i] = cbl[i] * ghb[i]
                for i in range(m):
                    gv[i] = bl[i] * ghb[i]
                if t == 0:
                    for i in range(m):
                        gx[0, j0 + i] = gxb[i]
            else:
                for i in range(m):
                    h = h_in[t, j0 + i]
                    z = h - thl[i]
                    d = _d(code, z, al_[i], c0, c05, c1, chpi)
                    sp = c1 if z >= c0 else c0
                    G = gs[t * gts, j0 + i] - fnd * (fsub * thl[i] + fzero * h) * gv[i]
                    keep = c1 - fzero * sp
                    gh = keep * gv[i] + G * d
                    gx[t, j0 + i] = cbl[i] * gh
                    # theta: -(G d) through the spike; subtract reset: -gv s
                    acc_th[i] -= G * d + fsub * gv[i] * sp
                    if t > 0:
                        hp = h_in[t - 1, j0 + i]
                        spp = c1 if hp - thl[i] >= c0 else c0
                        vp = hp - fsub * (spp * thl[i]) - fzero * (spp * hp)
                    else:
                        vp = v0[j0 + i]
                    acc_b[i] += gh * (vp - fdec * x[t, j0 + i])
                    gv[i] = bl[i] * gh
        for i in range(m):
            gv0[j0 + i] = gv[i]
            if need_b:
                gb[j0 + i] = acc_b[i]
            if need_th:
                gth[j0 + i] = acc_th[i]
