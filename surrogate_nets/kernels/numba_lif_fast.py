r"""Specialised numba LIF kernels for the common case: binary spikes (``levels = 1``).

Same recurrence and gradients as :mod:`.numba_lif` (whose general kernels handle every mode);
these kernels cover ``levels = 1`` with reset ``subtract`` / ``zero`` / ``none``, any
``detach_reset`` / ``decay_input``, gradients for ``x``, ``v0``, ``beta`` and ``threshold`` (not
alpha), and the surrogate families with an entry in :data:`FAST_CODES`. Differences from the
general kernels, all for speed:

* one fused pass per time step over all neurons of the thread (state, surrogate and outputs in
  one element loop), the state in a row that stays in L2, instead of blocks of 256 neurons with
  one loop per intermediate (measured 4-7x slower here);
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


@njit(cache=True, nogil=True, error_model="numpy")
def fwd1(x, v0, b, cb, th, cst, reset, s_out, h_out, v_out, lo, hi):
    """Forward, ``levels = 1``: ``h = cb x + b v``; ``s = H(h - th)``; reset (0 sub, 1 zero, 2 none).

    ``cb`` is ``1 - beta`` with decay_input, else ones. One pass per step over neurons
    ``[lo, hi)``; the state lives in ``v_out`` (L2-resident for layers up to ~10^5 neurons)."""
    T = x.shape[0]
    c0 = cst[0]
    c1 = cst[2]
    fsub = c1 if reset == 0 else c0
    fzero = c1 if reset == 1 else c0
    # unsigned indices: numba then skips the negative-index wraparound test, which lets the
    # loops vectorise (a signed range(lo, hi) loop was measured 4x slower, slices 2x)
    ulo, uhi = np.uint64(lo), np.uint64(hi)
    v = v_out
    for i in range(ulo, uhi):
        v[i] = v0[i]
    for t in range(T):
        xt = x[t]
        ht = h_out[t]
        st = s_out[t]
        for i in range(ulo, uhi):
            h = cb[i] * xt[i] + b[i] * v[i]
            s = c1 if h - th[i] >= c0 else c0
            ht[i] = h
            st[i] = s
            # subtract: h - s th; zero: h (1 - s); none: h
            v[i] = h - fsub * (s * th[i]) - fzero * (s * h)


@njit(cache=True, inline="always", error_model="numpy")
def _row(code, ht, gst, gxt, gv, th, al, cb, b, fnd, fsub, fzero, c0, c05, c1, chpi, ulo, uhi):
    """One backward step over neurons ``[ulo, uhi)`` (no parameter gradients)."""
    for i in range(ulo, uhi):
        h = ht[i]
        z = h - th[i]
        d = _d(code, z, al[i], c0, c05, c1, chpi)
        sp = c1 if z >= c0 else c0
        # dL/ds through the reset: subtract -th gv, zero -h gv (non-detached only)
        G = gst[i] - fnd * (fsub * th[i] + fzero * h) * gv[i]
        gh = (c1 - fzero * sp) * gv[i] + G * d
        gxt[i] = cb[i] * gh
        gv[i] = b[i] * gh


@njit(cache=True, nogil=True, error_model="numpy")
def bwd1(h_in, gs, gts, gv_in, v0, x, b, cb, th, al, cst, code, reset, nd, has_gv, need_b, need_th,
         decay, gx, gv0, gb, gth, lo, hi):
    """Backward, ``levels = 1``, only ``dL/ds`` (and ``dL/dv_T``) flowing in.

    ``gs`` is ``[T, n]`` (``gts = 1``) or one row ``[1, n]`` shared by every step (``gts = 0``: a
    gradient that does not change over time, such as the expanded ones of ``out.sum()``).
    One pass per step; the running ``dL/dv`` lives in ``gv0``."""
    T = h_in.shape[0]
    c0 = cst[0]
    c05 = cst[1]
    c1 = cst[2]
    chpi = cst[3]
    fsub = c1 if reset == 0 else c0
    fzero = c1 if reset == 1 else c0
    fnd = c1 if nd else c0
    fdec = c1 if decay else c0
    ulo, uhi = np.uint64(lo), np.uint64(hi)  # unsigned: see fwd1
    gv = gv0
    for i in range(ulo, uhi):
        gv[i] = gv_in[i] if has_gv else c0
    if need_b:
        for i in range(ulo, uhi):
            gb[i] = c0
    if need_th:
        for i in range(ulo, uhi):
            gth[i] = c0
    for t in range(T - 1, -1, -1):
        ht = h_in[t]
        gst = gs[t * gts]
        gxt = gx[t]
        if not (need_b or need_th):
            # the family test outside the element loop: each call inlines with a constant code,
            # so every copy of the loop is branch-free and vectorises
            if code == 3:
                _row(3, ht, gst, gxt, gv, th, al, cb, b, fnd, fsub, fzero, c0, c05, c1, chpi, ulo, uhi)
            elif code == 1:
                _row(1, ht, gst, gxt, gv, th, al, cb, b, fnd, fsub, fzero, c0, c05, c1, chpi, ulo, uhi)
            elif code == 2:
                _row(2, ht, gst, gxt, gv, th, al, cb, b, fnd, fsub, fzero, c0, c05, c1, chpi, ulo, uhi)
            elif code == 4:
                _row(4, ht, gst, gxt, gv, th, al, cb, b, fnd, fsub, fzero, c0, c05, c1, chpi, ulo, uhi)
            else:
                _row(0, ht, gst, gxt, gv, th, al, cb, b, fnd, fsub, fzero, c0, c05, c1, chpi, ulo, uhi)
        else:
            hp_row = h_in[t - 1] if t > 0 else ht
            xt = x[t] if decay else ht
            for i in range(ulo, uhi):
                h = ht[i]
                z = h - th[i]
                d = _d(code, z, al[i], c0, c05, c1, chpi)
                sp = c1 if z >= c0 else c0
                G = gst[i] - fnd * (fsub * th[i] + fzero * h) * gv[i]
                gh = (c1 - fzero * sp) * gv[i] + G * d
                gxt[i] = cb[i] * gh
                if need_th:
                    # theta: -(G d) through the spike; subtract reset: -gv s
                    gth[i] -= G * d + fsub * gv[i] * sp
                if need_b:
                    if t > 0:
                        hp = hp_row[i]
                        spp = c1 if hp - th[i] >= c0 else c0
                        vp = hp - fsub * (spp * th[i]) - fzero * (spp * hp)
                    else:
                        vp = v0[i]
                    gb[i] += gh * (vp - fdec * xt[i])
                gv[i] = b[i] * gh


_BLOCK = 256


@njit(cache=True, inline="always", error_model="numpy")
def _dvec(code, hb, thl, al, out, um, c0, c05, c1, chpi):
    """``out[i] = d(h_i - th_i)`` of family ``code`` for ``i < um``; the family test sits outside
    the loops, so each loop is branch-free and vectorises."""
    if code == 3:
        for i in range(um):
            u = chpi * al[i] * (hb[i] - thl[i])
            out[i] = c05 * al[i] / (c1 + u * u)
    elif code == 1:
        for i in range(um):
            sg = c1 / (c1 + np.exp(-al[i] * (hb[i] - thl[i])))
            out[i] = al[i] * sg * (c1 - sg)
    elif code == 2:
        for i in range(um):
            q = c1 + abs(al[i] * (hb[i] - thl[i]))
            out[i] = al[i] / ((c1 + c1) * q * q)
    elif code == 4:
        for i in range(um):
            r = c1 - abs(al[i] * (hb[i] - thl[i]))
            out[i] = al[i] * (r if r > c0 else c0)
    else:
        for i in range(um):
            u = al[i] * (hb[i] - thl[i])
            out[i] = al[i] if (u >= -c05 and u < c05) else c0


@njit(cache=True, nogil=True, error_model="numpy")
def bwd1_plain(h_in, gs, gts, gv_in, has_gv, b, cb, th, al, cst, code, reset, nd, gx, gv0, lo, hi):
    """Backward, ``levels = 1``, no parameter gradients: blocks of ``_BLOCK`` neurons whose
    working set (one row of ``h``, ``dL/ds``, the running ``dL/dv``, parameters) stays in L1 for
    all ``T`` steps, one small loop per quantity (each vectorises; measured 3.6x faster than
    one pass per step over all neurons, which :func:`bwd1` keeps for the parameter gradients).
    ``dL/dx`` of step ``t + 1`` is stored after step ``t``'s loads (4K aliasing of the rows)."""
    T = h_in.shape[0]
    c0 = cst[0]
    c05 = cst[1]
    c1 = cst[2]
    chpi = cst[3]
    fsub = c1 if reset == 0 else c0
    fzero = c1 if reset == 1 else c0
    fnd = c1 if nd else c0
    for j0 in range(lo, hi, _BLOCK):
        m = min(hi, j0 + _BLOCK) - j0
        um = np.uint64(m)
        uj = np.uint64(j0)
        bl = b[j0:j0 + m].copy()
        cbl = cb[j0:j0 + m].copy()
        thl = th[j0:j0 + m].copy()
        all_ = al[j0:j0 + m].copy()
        if has_gv:
            gv = gv_in[j0:j0 + m].copy()
        else:
            gv = np.zeros_like(bl)
        hb = np.empty_like(bl)
        G = np.empty_like(bl)
        d = np.empty_like(bl)
        gxb = np.empty_like(bl)
        for t in range(T - 1, -1, -1):
            ht = h_in[t]
            gst = gs[t * gts]
            for i in range(um):
                hb[i] = ht[uj + i]
            for i in range(um):
                G[i] = gst[uj + i]
            if t < T - 1:
                gxt = gx[t + 1]
                for i in range(um):
                    gxt[uj + i] = gxb[i]
            _dvec(code, hb, thl, all_, d, um, c0, c05, c1, chpi)
            # dL/ds through the reset: subtract -th gv, zero -h gv (non-detached only)
            for i in range(um):
                G[i] = G[i] - fnd * (fsub * thl[i] + fzero * hb[i]) * gv[i]
            for i in range(um):
                keep = c1 - fzero * (c1 if hb[i] - thl[i] >= c0 else c0)
                gxb[i] = keep * gv[i] + G[i] * d[i]  # dL/dh
            for i in range(um):
                gv[i] = bl[i] * gxb[i]
            for i in range(um):
                gxb[i] = cbl[i] * gxb[i]
        gx0 = gx[0]
        for i in range(um):
            gx0[uj + i] = gxb[i]
            gv0[uj + i] = gv[i]
