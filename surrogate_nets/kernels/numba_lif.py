r"""Compiled CPU LIF/IF/PLIF scan (numba): the time loop inside each block of neurons.

Same recurrence and numerical contract as :class:`surrogate_nets.functional.lif.LIFScanFunction`
(see its docstring for the BPTT derivation). The ``[T, B*N]`` problem is cut into blocks of
``_BLOCK`` neurons (split over ``torch.get_num_threads()`` threads for large layers); each block keeps its state in a small
array that stays in L1 for all ``T`` steps, so the forward reads ``x`` and writes ``s``/``h``
once, and the backward reads ``h`` (plus the needed output gradients) and writes ``dL/dx`` once,
accumulating the parameter gradients per neuron. The torch backend instead runs ~10 whole-tensor
passes per step, each dispatched from Python.

float32 inputs: the forward recurrence runs in float32 exactly as the torch backend does (same
operations, no fused multiply-add), so spikes are identical. This module's general backward
keeps its working set and arithmetic in the input dtype (typed constants); only the surrogate
terms of :mod:`.numba_surrogates` are evaluated in float64 and rounded when stored (measured
gradient error vs a float64 run, T=50 B=8 N=256: 3-4e-7 relative, the torch backend's float32
3e-7; 1.2-2x faster than the float64 working set it had before). float64 runs in float64.
Binary spikes (``levels=1``, the common case) go to the specialised kernels of
:mod:`.numba_lif_fast` instead (forward always; backward when only ``dL/ds`` / ``dL/dv_T`` flow
in, alpha is fixed and the family has a fast form), which compute in the input dtype.

Surrogate families: :data:`NUMBA_CODES` (one entry per built-in family, keyed by exact class;
defined in :mod:`.numba_surrogates` and re-exported here) selects the loop of :func:`_sur_vec`,
whose per-family helpers spell out the formulas of :mod:`surrogate_nets.surrogate.families`;
``tests/kernels`` checks every entry against the family's own ``derivative`` / ``d_alpha``. One compiled kernel serves all families and modes
(cached on disk by numba), so there is one compilation per dtype.
"""

from __future__ import annotations

import numpy as np
import torch
from numba import njit

from . import _parallel, cpu_pool
from . import numba_lif_fast as _fast
from ._common import cb as _cb
from ._common import per_neuron, scaled_alpha
# the surrogate terms live in numba_surrogates; every name stays importable from here
from .numba_surrogates import (  # noqa: F401
    _HALF_PI, _INV_SQRT_2PI, _INV_SQRT_PI, NUMBA_CODES, _atan_d, _atan_da, _dspike_d, _dspike_da,
    _erf_d, _erf_da, _exponential_d, _exponential_da, _fast_sigmoid_d, _fast_sigmoid_da,
    _gaussian_d, _gaussian_da, _rect_d, _rect_da, _sigmoid_d, _sigmoid_da, _sur_vec, _sur_vec_py,
    _triangle_d, _triangle_da,
)

_BLOCK = 256
_MIN_PER_THREAD = 4096  # neurons per thread below which threading does not pay
_RESET_CODE = {"subtract": 0, "zero": 1, "none": 2}


@njit(cache=True, nogil=True, error_model="numpy")
def _fwd(x, v0, b, cb, th, ks, reset, decay, levels, s_out, h_out, v_out, lo, hi):
    T = x.shape[0]
    for j0 in range(lo, hi, _BLOCK):
        m = min(hi, j0 + _BLOCK) - j0
        v = v0[j0:j0 + m].copy()
        # block-local copies of the parameters: the expanded parameter tensors are separate
        # allocations that can sit at the same offset modulo 4 KiB as x / h / s, and reading
        # them next to those streams was measured up to 10x slower (4K aliasing)
        bl = b[j0:j0 + m].copy()
        cbl = cb[j0:j0 + m].copy()
        thl = th[j0:j0 + m].copy()
        h = np.empty_like(v)
        s = np.empty_like(v)
        xb = x[0, j0:j0 + m].copy()
        one = ks[0]
        zero = one - one
        for t in range(T):
            # every branch is hoisted out of the element loops (so they vectorise)
            if decay:
                for i in range(m):
                    h[i] = cbl[i] * xb[i] + bl[i] * v[i]
            else:
                for i in range(m):
                    h[i] = xb[i] + bl[i] * v[i]
            for i in range(m):
                s[i] = one if h[i] - thl[i] >= zero else zero
            for k in range(1, levels):
                kf = ks[k]
                for i in range(m):
                    s[i] += one if h[i] - thl[i] * kf >= zero else zero
            # load the next step's input before storing this step's outputs: x[t+1] and
            # h/s[t] sit at the same offsets modulo 4 KiB (rows of 2^k floats), and a load right
            # behind a store to an aliasing address stalls
            if t + 1 < T:
                for i in range(m):
                    xb[i] = x[t + 1, j0 + i]
            for i in range(m):
                h_out[t, j0 + i] = h[i]
                s_out[t, j0 + i] = s[i]
            if reset == 0:
                for i in range(m):
                    v[i] = h[i] - s[i] * thl[i]
            elif reset == 1:
                for i in range(m):
                    v[i] = h[i] if h[i] - thl[i] < zero else zero
            else:
                for i in range(m):
                    v[i] = h[i]
        v_out[j0:j0 + m] = v


@njit(cache=True, nogil=True, error_model="numpy")
def _bwd(h_in, x, gs, gh_in, gv_in, v0, b, th, al, ks, code, reset, decay, levels, nd, has_gs,
         has_gh, has_gv, need_b, need_th, need_a, gx, gv0, gb, gth, ga, lo, hi):
    T = h_in.shape[0]
    for j0 in range(lo, hi, _BLOCK):
        m = min(hi, j0 + _BLOCK) - j0
        # per-block working set in the input dtype, reused for every step: stays in L1
        dt = h_in.dtype
        one = ks[0]  # ks = 1..levels in the input dtype: typed constants (a Python float
        zero = one - one  # literal would promote the arithmetic to float64)
        gv = np.zeros(m, dt)
        hb = np.empty(m, dt)
        thb = np.empty(m, dt)
        ab = np.empty(m, dt)
        bb = np.empty(m, dt)
        z = np.empty(m, dt)
        d = np.empty(m, dt)
        r = np.empty(m, dt)
        G = np.zeros(m, dt)
        G1 = np.zeros(m, dt)
        sig = np.empty(m, dt)
        kap = np.empty(m, dt)
        sig1 = np.empty(m, dt)
        rho = np.empty(m, dt)
        rho1 = np.empty(m, dt)
        cnt = np.empty(m, dt)
        gh = np.empty(m, dt)
        gxb = np.empty(m, dt)  # dL/dx of step t + 1, stored after step t's loads (4K aliasing)
        acc_b = np.zeros(m, dt)
        acc_th = np.zeros(m, dt)
        acc_a = np.zeros(m, dt)
        for i in range(m):
            thb[i] = th[j0 + i]
            ab[i] = al[j0 + i]
            bb[i] = b[j0 + i]
            if has_gv:
                gv[i] = gv_in[j0 + i]
        for t in range(T - 1, -1, -1):
            for i in range(m):
                hb[i] = h_in[t, j0 + i]
            if has_gs:
                for i in range(m):
                    G[i] = gs[t, j0 + i]
            if t < T - 1:
                for i in range(m):
                    gx[t + 1, j0 + i] = gxb[i]
            if nd and reset == 0:
                for i in range(m):
                    G[i] -= thb[i] * gv[i]
            elif nd and reset == 1:
                for i in range(m):
                    G1[i] = -hb[i] * gv[i]
            # surrogate sums over the level boundaries z_k = h - k theta
            for k in range(levels):
                kf = ks[k]
                for i in range(m):
                    z[i] = hb[i] - thb[i] * kf
                _sur_vec(code, False, z, ab, d, m)
                if k == 0:
                    for i in range(m):
                        sig[i] = d[i]
                        kap[i] = d[i]
                        sig1[i] = d[i]
                        cnt[i] = one if z[i] >= zero else zero
                else:
                    for i in range(m):
                        sig[i] += d[i]
                        kap[i] += kf * d[i]
                        cnt[i] += one if z[i] >= zero else zero
                if need_a:
                    _sur_vec(code, True, z, ab, r, m)
                    if k == 0:
                        for i in range(m):
                            rho[i] = r[i]
                            rho1[i] = r[i]
                    else:
                        for i in range(m):
                            rho[i] += r[i]
            if reset == 1:
                for i in range(m):
                    keep = one if hb[i] - thb[i] < zero else zero
                    gh[i] = gv[i] * keep + G[i] * sig[i] + G1[i] * sig1[i]
            else:
                for i in range(m):
                    gh[i] = gv[i] + G[i] * sig[i]
            if has_gh:
                for i in range(m):
                    gh[i] += gh_in[t, j0 + i]
            if need_th:
                for i in range(m):
                    acc_th[i] -= G[i] * kap[i] + G1[i] * sig1[i]
                if reset == 0:
                    for i in range(m):
                        acc_th[i] -= gv[i] * cnt[i]
            if need_a:
                for i in range(m):
                    acc_a[i] += G[i] * rho[i] + G1[i] * rho1[i]
            if need_b:
                if t > 0:
                    for i in range(m):
                        hp = h_in[t - 1, j0 + i]
                        tp = thb[i]
                        if reset == 0:
                            cp = zero
                            for k in range(levels):
                                cp += one if hp - tp * ks[k] >= zero else zero
                            vp = hp - cp * tp
                        elif reset == 1:
                            vp = hp if hp - tp < zero else zero
                        else:
                            vp = hp
                        acc_b[i] += gh[i] * vp
                else:
                    for i in range(m):
                        acc_b[i] += gh[i] * v0[j0 + i]
                if decay:
                    for i in range(m):
                        acc_b[i] -= gh[i] * x[t, j0 + i]
            if decay:
                for i in range(m):
                    gxb[i] = (one - bb[i]) * gh[i]
            else:
                for i in range(m):
                    gxb[i] = gh[i]
            for i in range(m):
                gv[i] = bb[i] * gh[i]
        for i in range(m):
            gx[0, j0 + i] = gxb[i]
            gv0[j0 + i] = gv[i]
            if need_b:
                gb[j0 + i] = acc_b[i]
            if need_th:
                gth[j0 + i] = acc_th[i]
            if need_a:
                ga[j0 + i] = acc_a[i]


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().numpy()


_CHUNKS_PER_THREAD = 4
# whether the LIF/ALIF/LI scans run on torch's OpenMP team (else the shared pool; see _parallel).
# Measured with 2 threads (benchmarks/thread_split.py, neurons_peers.py with SURROGATE_NETS_OMP_TEAM=1/0):
# LIF alone T=100 B=32 N=512 2.1 vs 3.1-8.9 ms, B=128 N=2048 22.6-24.7 vs 27.4-28.5 ms; whole
# training step 4-6% faster (conv 29.4 vs 30.9 ms, MLP 25.7 vs 27.3 ms). Kept as a switch for
# benchmarks/thread_split.py.
_TEAM = True


def _run(kernel, args, n: int) -> None:
    """Run ``kernel(*args, lo, hi)`` over ``[0, n)``: in one call, or, when ``n`` is large, over
    ``_CHUNKS_PER_THREAD`` chunks (multiples of ``_BLOCK``) per ``torch.get_num_threads()``
    thread, taken dynamically by the threads of :func:`._parallel.run` (the kernels release the
    GIL; every neuron is independent, so the result does not depend on the split).

    Plain threads instead of numba's parallel layer: that layer was measured 5-10x slower on
    freshly allocated outputs (page faults taken in its worker threads).
    """
    _parallel.run(kernel, _parallel.split(n, _MIN_PER_THREAD, _BLOCK, _CHUNKS_PER_THREAD), *args, team=_TEAM)


class NumbaLIFScan(torch.autograd.Function):
    """``forward(x [T, n], v0, beta, threshold, alpha (all [n], x's dtype), code, reset, detach,
    decay, levels, consts, save_dtype) -> (s, h, v)``; contiguous inputs only (see
    :func:`numba_lif_scan`). ``consts``: for beta / threshold / alpha, the value when the ``[n]``
    tensor is one constant (rebuilt in the backward instead of saved), else ``None``.
    ``save_dtype``: save ``h - theta`` in that dtype instead of ``h`` (as
    :class:`~surrogate_nets.functional.lif_low_mem.LIFScanLowMemFunction`), or ``None``."""

    @staticmethod
    def forward(ctx, x, v0, beta, threshold, alpha, code, reset, detach_reset, decay_input, levels,
                consts, save_dtype):
        ctx.set_materialize_grads(False)
        T, n = x.shape
        # large outputs from the recycled, huge-page-backed pool (cpu_pool: no page faults)
        s = cpu_pool.empty(x.shape, x.dtype)
        h = cpu_pool.empty(x.shape, x.dtype)
        v = torch.empty_like(v0)
        if levels == 1:  # the common case: one fused pass per step (numba_lif_fast)
            _run(_fast.fwd1, (_np(x), _np(v0), _np(beta), _cb(beta, decay_input), _np(threshold),
                              _np(_fast.constants(x.dtype)), reset, _np(s), _np(h), _np(v)), n)
        else:
            ks = torch.arange(1, levels + 1, dtype=x.dtype)
            _run(_fwd, (_np(x), _np(v0), _np(beta), _cb(beta, True), _np(threshold), _np(ks), reset,
                        decay_input, levels, _np(s), _np(h), _np(v)), n)
        ctx.cfg = (code, reset, detach_reset, decay_input, levels, consts, save_dtype, n, x.dtype)
        need_b = ctx.needs_input_grad[2]
        # saved: the membrane (or its narrow distance to threshold), x and v0 only for the beta
        # gradient, the per-neuron parameters only when they are not one constant
        if save_dtype == torch.bfloat16 and x.dtype == torch.float32:  # fused conversion
            hs = cpu_pool.empty(x.shape, torch.int16)
            _run(_fast.to_bf16, (_np(h), _np(threshold), _np(hs)), n)
            hs = hs.view(torch.bfloat16)
        else:
            hs = h if save_dtype is None else (h - threshold).to(save_dtype)
        ctx.save_for_backward(hs, x if decay_input and need_b else None, v0 if need_b else None,
                              *(p if c is None else None
                                for p, c in zip((beta, threshold, alpha), consts)))
        return s, h, v

    @staticmethod
    def backward(ctx, g_s, g_h, g_v):
        h, x, v0, *params = ctx.saved_tensors
        code, reset, detach_reset, decay_input, levels, consts, save_dtype, n, dt = ctx.cfg
        need_x, need_v0, need_b, need_th, need_a = ctx.needs_input_grad[:5]
        if not (need_x or need_v0 or need_b or need_th or need_a):
            return (None,) * 12
        npdt = np.float32 if dt == torch.float32 else np.float64  # numpy: no OpenMP fill
        beta, threshold, alpha = (p if c is None else torch.from_numpy(np.full(n, c, dtype=npdt))
                                  for p, c in zip(params, consts))
        if save_dtype == torch.bfloat16 and dt == torch.float32:  # fused: D + theta
            hf = cpu_pool.empty(h.shape, dt)
            _run(_fast.from_bf16, (_np(h.view(torch.int16)), _np(threshold), _np(hf)), n)
            h = hf
        elif save_dtype is not None:  # h = D + theta in the input dtype, as the torch low-mem scan
            h = h.to(dt).add_(threshold)
        gx = cpu_pool.empty(h.shape, dt)
        gv0 = torch.empty(n, dtype=dt)
        v0 = v0 if v0 is not None else gv0  # read only for the beta gradient
        gb = torch.empty(n if need_b else 0, dtype=dt)
        gth = torch.empty(n if need_th else 0, dtype=dt)
        ga = torch.empty(n if need_a else 0, dtype=dt)
        dummy = torch.zeros(1, 1, dtype=dt)  # C-contiguous: one compiled signature
        nd = (not detach_reset) and reset != 2
        gv_in = g_v.contiguous() if g_v is not None else v0
        if (levels == 1 and g_s is not None and g_h is None and not need_a
                and code in _fast.FAST_CODES.values()):  # the common case (numba_lif_fast)
            xx = x if (x is not None and decay_input) else h  # read only times 0 without decay
            shared = g_s.stride(0) == 0  # the same dL/ds at every step: read one row
            # numpy copies (one thread): torch's would be OpenMP-parallel for large layers,
            # measured to cost milliseconds when the cores are shared
            gs_ = np.ascontiguousarray(_np(g_s[:1] if shared else g_s))
            _run(_fast.bwd1, (_np(h), gs_, 0 if shared else 1, _np(gv_in), _np(v0), _np(xx),
                 _np(beta), _cb(beta, decay_input), _np(threshold), _np(alpha),
                 _np(_fast.constants(dt)), code, reset, nd, g_v is not None, bool(need_b),
                 bool(need_th), bool(decay_input), _np(gx), _np(gv0), _np(gb), _np(gth)), n)
        else:
            ks = torch.arange(1, levels + 1, dtype=dt)
            _run(_bwd, (_np(h), _np(x if x is not None else dummy),
                 _np(g_s.contiguous() if g_s is not None else dummy),
                 _np(g_h.contiguous() if g_h is not None else dummy), _np(gv_in), _np(v0),
                 _np(beta), _np(threshold), _np(alpha), _np(ks), code, reset, decay_input, levels,
                 nd, g_s is not None, g_h is not None, g_v is not None, bool(need_b),
                 bool(need_th), bool(need_a), _np(gx), _np(gv0), _np(gb), _np(gth), _np(ga)), n)
        return (gx if need_x else None, gv0 if need_v0 else None, gb if need_b else None,
                gth if need_th else None, ga if need_a else None) + (None,) * 7


def numba_lif_scan(x, v0, beta, threshold, alpha, surrogate, reset, detach_reset, decay_input,
                   levels, relaxed, save_dtype=None):
    """``lif_scan`` backend ``"numba"`` (CPU, float32/float64, built-in surrogate families);
    ``save_dtype`` (bfloat16 / float16): the reduced-memory backward of ``lif_scan``."""
    from ..functional.lif import LIFScanResult

    if relaxed:
        raise ValueError("the numba backend does not support relaxed=True; use backend='torch'")
    if x.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"backend 'numba' needs float32 or float64 x, got {x.dtype}")
    shape = x.shape[1:]
    T = x.shape[0]
    n = x[0].numel()
    dt = x.dtype
    alpha = scaled_alpha(alpha, surrogate, x.numel())  # "auto": the whole sequence
    (b, cb_), (th, cth), (al, ca) = (per_neuron(p, shape, n, dt) for p in (beta, threshold, alpha))
    s, h, v = NumbaLIFScan.apply(
        x.contiguous().view(T, n), v0.to(dt).contiguous().view(n), b, th, al,
        NUMBA_CODES[type(surrogate)], _RESET_CODE[reset], bool(detach_reset), bool(decay_input),
        int(levels), (cb_, cth, ca), save_dtype)
    return LIFScanResult(s.view(x.shape), h.view(x.shape), v.view(shape).to(v0.dtype))
