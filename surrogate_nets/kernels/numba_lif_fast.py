r"""Specialised numba LIF kernels for the common case: binary spikes (``levels = 1``).

Same recurrence and gradients as :mod:`.numba_lif` (whose general kernels handle every mode);
these kernels cover ``levels = 1`` with reset ``subtract`` / ``zero`` / ``none``, any
``detach_reset`` / ``decay_input``, gradients for ``x``, ``v0``, ``beta`` and ``threshold`` (not
alpha), and the surrogate families with an entry in :data:`FAST_CODES`. Differences from the
general kernels, all for speed:

* forward: one fused pass per time step over all neurons of the thread (state, surrogate and
  outputs in one element loop), the state in a row that stays in L2, instead of blocks of 256
  neurons with one loop per intermediate (measured 4-7x slower here);
* backward: blocks of 256 neurons (working set in L1 for all ``T`` steps), one fused element
  loop per block and step, one compiled kernel per surrogate family (:func:`_make_bwd`);
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
from llvmlite import ir
from numba import njit, types
from numba.core.extending import intrinsic, overload

from ..surrogate import families as fam

FAST_CODES = {fam.StraightThrough: 0, fam.Rectangle: 0, fam.Sigmoid: 1, fam.FastSigmoid: 2,
              fam.SoftSign: 2, fam.ATan: 3, fam.Triangle: 4, fam.Gaussian: 5, fam.Erf: 6,
              fam.Exponential: 7}
"""``{family class: code of _d}``: the families the fused backward evaluates inline."""


_CST: dict = {}


def constants(dtype: torch.dtype) -> torch.Tensor:
    """``cst`` of the kernels: ``[0, 1/2, 1, pi/2, sqrt(2 pi), sqrt(pi)]`` in ``dtype`` (one
    read-only tensor per dtype)."""
    c = _CST.get(dtype)
    if c is None:
        c = _CST[dtype] = torch.tensor([0.0, 0.5, 1.0, 0.5 * math.pi, math.sqrt(2 * math.pi),
                                        math.sqrt(math.pi)], dtype=dtype)
    return c


@intrinsic
def _f32_from_bits(typingctx, i):
    """The float32 whose bits are the low 32 bits of the integer ``i`` (a bit cast)."""
    if not isinstance(i, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        v = args[0]
        if v.type.width != 32:
            v = builder.trunc(v, ir.IntType(32))
        return builder.bitcast(v, ir.FloatType())

    return types.float32(i), codegen


def _exp(x):  # pragma: no cover - replaced by the overload inside numba
    return np.exp(x)


@overload(_exp, inline="always")
def _exp_impl(x):
    """``exp``: for float32 a branch-free polynomial that vectorises (numba's float32 ``np.exp``
    is a scalar libm call: the sigmoid backward was 3x slower than atan's). Range reduction
    ``x = n ln2 + r`` (two-part ln2) and Cephes' degree-6 expf polynomial, ``2^n`` built in the
    exponent bits; relative error ~1e-7 (a few float32 ulp; torch's vectorised exp is also an
    approximation). ``x`` is clamped to [-87.3, 88]: exp underflows to ~1e-38 there instead of 0 and
    overflows to 1.7e38 instead of inf, which moves sigmoid(z) by < 1e-37. float64: ``np.exp``."""
    if x != types.float32:
        return lambda x: np.exp(x)

    def impl(x):
        x = min(max(x, np.float32(-87.3)), np.float32(88.0))
        fx = np.floor(x * np.float32(1.44269504088896341) + np.float32(0.5))
        r = x - fx * np.float32(0.693359375) - fx * np.float32(-2.12194440e-4)
        y = np.float32(1.9875691500e-4) * r + np.float32(1.3981999507e-3)
        y = y * r + np.float32(8.3334519073e-3)
        y = y * r + np.float32(4.1665795894e-2)
        y = y * r + np.float32(1.6666665459e-1)
        y = y * r + np.float32(5.0000001201e-1)
        y = y * (r * r) + r + np.float32(1.0)
        return y * _f32_from_bits((np.int64(fx) + 127) << 23)

    return impl


@njit(cache=True, inline="always", error_model="numpy")
def _d(code, z, a, c0, c05, c1, ck):
    """Surrogate derivative of family ``code`` at ``z`` with sharpness ``a`` (input dtype), the
    formulas of :mod:`surrogate_nets.surrogate.families`; ``ck`` is the family's constant
    (``constants(dtype)[3]``, ``[4]``, ``[5]`` = pi/2, sqrt(2 pi), sqrt(pi))."""
    if code == 3:  # ATan
        u = ck * a * z
        return c05 * a / (c1 + u * u)
    if code == 1:  # Sigmoid
        s = c1 / (c1 + _exp(-a * z))
        return a * s * (c1 - s)
    if code == 2:  # FastSigmoid / SoftSign
        q = c1 + abs(a * z)
        return a / ((c1 + c1) * q * q)
    if code == 4:  # Triangle
        r = c1 - abs(a * z)
        return a * (r if r > c0 else c0)
    if code == 5:  # Gaussian: a / sqrt(2 pi) exp(-u^2 / 2)
        u = a * z
        return a / ck * _exp(-(c05 * (u * u)))
    if code == 6:  # Erf: a / sqrt(pi) exp(-u^2)
        u = a * z
        return a / ck * _exp(-(u * u))
    if code == 7:  # Exponential: a / 2 exp(-|u|)
        return c05 * a * _exp(-abs(a * z))
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


_BLOCK = 256


@njit(cache=True, nogil=True, error_model="numpy")
def _acc_b(hp_row, xt, thl, gxb, acc_b, cbl, fsub, fzero, fdec, c0, c1, uj, um):
    """Beta accumulator of one block and step ``t > 0`` (``v_{t-1}`` recomputed from ``h_{t-1}``)
    and ``dL/dx = c dL/dh``. A separate function on purpose: the same loop written in the kernel
    body kept the kernel's loops from vectorising (2.5 ms instead of 0.8 ms at T=100 x 16384)."""
    for i in range(um):
        hp = hp_row[uj + i]
        spp = c1 if hp - thl[i] >= c0 else c0
        vp = hp - fsub * (spp * thl[i]) - fzero * (spp * hp)
        acc_b[i] += gxb[i] * (vp - fdec * xt[uj + i])
        gxb[i] = cbl[i] * gxb[i]


def _make_bwd(code: int):
    """The backward kernel of family ``code`` (see :func:`bwd1`). ``code`` is a closure constant,
    so :func:`_d` folds to one formula and every element loop is branch-free. The loops are
    written out in the kernel body: the same loop in an inlined helper was measured 2-3x slower
    (numba's inlining lost the vectorisation)."""

    kidx = {5: 4, 6: 5}.get(code, 3)  # index of the family's constant in constants()

    @njit(cache=True, nogil=True, error_model="numpy")
    def kernel(h_in, gs, gts, gv_in, v0, x, b, cb, th, al, cst, reset, nd, has_gv, need_b,
               need_th, decay, gx, gv0, gb, gth, lo, hi):
        T = h_in.shape[0]
        c0 = cst[0]
        c05 = cst[1]
        c1 = cst[2]
        chpi = cst[kidx]  # the family's constant (pi/2, sqrt(2 pi) or sqrt(pi))
        fsub = c1 if reset == 0 else c0
        fzero = c1 if reset == 1 else c0
        fnd = c1 if nd else c0
        fdec = c1 if decay else c0
        params = need_b or need_th
        for j0 in range(lo, hi, _BLOCK):
            m = min(hi, j0 + _BLOCK) - j0
            # unsigned indices: numba then skips the negative-index wraparound test, which lets
            # the loops vectorise (a signed index was measured 4x slower)
            um = np.uint64(m)
            uj = np.uint64(j0)
            # block-local copies of the parameters (4K aliasing with the [T, n] streams, see fwd1)
            bl = b[j0:j0 + m].copy()
            cbl = cb[j0:j0 + m].copy()
            thl = th[j0:j0 + m].copy()
            al_ = al[j0:j0 + m].copy()
            gv = gv_in[j0:j0 + m].copy() if has_gv else np.zeros_like(bl)
            acc_b = np.zeros_like(bl)
            acc_th = np.zeros_like(bl)
            gxb = np.empty_like(bl)
            q = np.empty_like(bl)
            for t in range(T - 1, -1, -1):
                ht = h_in[t]
                gst = gs[t * gts]
                if t < T - 1:
                    gxt = gx[t + 1]
                    for i in range(um):
                        gxt[uj + i] = gxb[i]
                if not params:
                    for i in range(um):
                        h = ht[uj + i]
                        z = h - thl[i]
                        d = _d(code, z, al_[i], c0, c05, c1, chpi)
                        sp = c1 if z >= c0 else c0
                        g = gv[i]
                        # dL/ds through the reset: subtract -th gv, zero -h gv (non-detached only)
                        G = gst[uj + i] - fnd * (fsub * thl[i] + fzero * h) * g
                        gh = (c1 - fzero * sp) * g + G * d
                        gxb[i] = cbl[i] * gh
                        gv[i] = bl[i] * gh
                    continue
                # with the beta / threshold gradients, in three loops of at most two stores each
                # (one fused loop with four stores did not vectorise: 4x slower): dL/dh and
                # the threshold term ...
                for i in range(um):
                    h = ht[uj + i]
                    z = h - thl[i]
                    d = _d(code, z, al_[i], c0, c05, c1, chpi)
                    sp = c1 if z >= c0 else c0
                    g = gv[i]
                    G = gst[uj + i] - fnd * (fsub * thl[i] + fzero * h) * g
                    gxb[i] = (c1 - fzero * sp) * g + G * d  # dL/dh
                    # theta: -(G d) through the spike; subtract reset: -gv s
                    q[i] = G * d + fsub * g * sp
                # ... the running dL/dv and the threshold accumulator ...
                for i in range(um):
                    acc_th[i] -= q[i]
                    gv[i] = bl[i] * gxb[i]
                # ... the beta accumulator, v_{t-1} recomputed from h_{t-1} (or v0), and dL/dx
                xt = x[t]  # times fdec: 0 without decay_input (then x may be any [T, n] array)
                if t > 0:
                    _acc_b(h_in[t - 1], xt, thl, gxb, acc_b, cbl, fsub, fzero, fdec, c0, c1, uj, um)
                else:
                    for i in range(um):
                        acc_b[i] += gxb[i] * (v0[uj + i] - fdec * xt[uj + i])
                        gxb[i] = cbl[i] * gxb[i]
            gx0 = gx[0]
            for i in range(um):
                gx0[uj + i] = gxb[i]
                gv0[uj + i] = gv[i]
            if need_b:
                for i in range(um):
                    gb[uj + i] = acc_b[i]
            if need_th:
                for i in range(um):
                    gth[uj + i] = acc_th[i]

    return kernel


_BWD = {c: _make_bwd(c) for c in sorted(set(FAST_CODES.values()))}


def bwd1(h_in, gs, gts, gv_in, v0, x, b, cb, th, al, cst, code, reset, nd, has_gv, need_b, need_th,
         decay, gx, gv0, gb, gth, lo, hi):
    """Backward, ``levels = 1``, only ``dL/ds`` (and ``dL/dv_T``) flowing in, neurons ``[lo, hi)``.

    ``gs`` is ``[T, n]`` (``gts = 1``) or one row ``[1, n]`` shared by every step (``gts = 0``: a
    gradient that does not change over time, such as the expanded ones of ``out.sum()``).
    Blocks of ``_BLOCK`` neurons whose working set (the running ``dL/dv``, the parameters, the
    parameter-gradient accumulators, one row of ``dL/dx``) stays in L1 for all ``T`` steps, one
    fused loop per block and step, computed in the input dtype. Measured at ``T = 100`` x 16384
    neurons, float32, one thread: 0.3-0.45 ms without and ~0.8 ms with the beta / threshold
    gradients (the kernels before: 0.9 ms blocked with one small loop per quantity, 3.3 ms one
    pass per step). ``dL/dx`` of step ``t + 1`` is stored after step ``t``'s loads (4K aliasing of
    the rows). ``need_b`` / ``need_th``: write the beta / threshold gradients (``x`` is read only
    with ``decay``; pass any ``[T, n]`` array otherwise). Runs in the calling thread, GIL released.
    """
    _BWD[code](h_in, gs, gts, gv_in, v0, x, b, cb, th, al, cst, reset, nd, has_gv, need_b, need_th,
               decay, gx, gv0, gb, gth, lo, hi)


@njit(cache=True, nogil=True, error_model="numpy")
def to_bf16(h, th, out, lo, hi):
    """``out[t, i]`` = the bfloat16 bits (int16) of ``h[t, i] - th[i]`` (float32), rounded to
    nearest even as torch converts (NaN -> 0x7FC0; torch may keep another NaN payload);
    neurons ``[lo, hi)``. Unsigned 32-bit arithmetic and indices (see fwd1): the loops vectorise."""
    T = h.shape[0]
    ulo = np.uint64(lo)
    um = np.uint64(hi - lo)
    d = np.empty(hi - lo, h.dtype)
    du = d.view(np.uint32)
    one, sixteen, bias, qnan = np.uint32(1), np.uint32(16), np.uint32(0x7FFF), np.uint32(0x7FC0)
    for t in range(T):
        ht = h[t]
        ot = out[t]
        for i in range(um):
            d[i] = ht[ulo + i] - th[ulo + i]
        for i in range(um):
            u = du[i]
            r = (u + (((u >> sixteen) & one) + bias)) >> sixteen
            ot[ulo + i] = np.int16(qnan if d[i] != d[i] else r)


@njit(cache=True, nogil=True, error_model="numpy")
def from_bf16(dq, th, out, lo, hi):
    """``out[t, i] = float32(dq[t, i]) + th[i]`` for bfloat16 bits ``dq`` (int16): the membrane
    rebuilt from the narrow distance to threshold, as ``D.to(float32) + threshold``."""
    T = dq.shape[0]
    ulo = np.uint64(lo)
    um = np.uint64(hi - lo)
    d = np.empty(hi - lo, out.dtype)
    du = d.view(np.uint32)
    sixteen = np.uint32(16)
    for t in range(T):
        qt = dq[t].view(np.uint16)
        ot = out[t]
        for i in range(um):
            du[i] = np.uint32(qt[ulo + i]) << sixteen
        for i in range(um):
            ot[ulo + i] = d[i] + th[ulo + i]
