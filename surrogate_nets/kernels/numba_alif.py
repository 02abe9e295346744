r"""Compiled CPU adaptive-LIF scan (numba): op ``"alif"``, and the fused kernels op ``"synaptic"`` shares.

Same recurrence and numerical contract as :class:`surrogate_nets.functional.alif.ALIFScanFunction`
(whose module docstring derives the BPTT). The kernels here run a generalised neuron with two
optional parts, so that one compiled forward and one compiled backward serve both ops:

.. math::
    I_t &= \alpha_{syn} I_{t-1} + x_t \quad(\text{synaptic; else } I_t = x_t),\qquad
    \theta_t = \theta_0 + \beta_a a_{t-1}\quad(\text{adaptive; else } \theta_t = \theta_0)\\
    h_t &= \beta v_{t-1} + c\,I_t,\quad s_t = \textstyle\sum_{k=1}^{L} H(h_t - k\theta_t),\quad
    v_t = \mathrm{reset}(h_t, s_t; \theta_t),\quad a_t = \rho a_{t-1} + s_t

(``c = 1 - beta`` with ``decay_input``, else 1; ALIF: Bellec et al., NeurIPS 2018; current-based
LIF: Zenke & Ganguli, Neural Computation 2018). Backward, per step ``t = T-1 .. 0`` with ``gv``,
``ga``, ``gI`` the gradients reaching ``v_t``, ``a_t``, ``I_{t+1}`` from the future (``sigma``,
``kappa``, ``rho_\alpha`` the surrogate sums over the level boundaries ``h - k theta``):

.. math::
    G &= gs_t + ga - [\text{subtract, nd}]\,\theta_t gv,\quad G_1 = -[\text{zero, nd}]\,h_t gv,\\
    \bar h_t &= gv\,\partial v_t/\partial h_t|_s + G\sigma + G_1\sigma_1 + gh_t,\quad
    \bar\theta_t = -G\kappa - G_1\sigma_1 - [\text{subtract}]\,gv\,s_t,\\
    ga &\leftarrow \rho\,ga + \beta_a\bar\theta_t,\quad gv \leftarrow \beta\bar h_t,\quad
    gI \leftarrow c\,\bar h_t + gi_t + \alpha_{syn} gI,\quad \bar x_t = gI

and the per-neuron parameter sums ``beta: h̄ (v_{t-1} - [decay] I_t)``, ``theta_0: θ̄``,
``beta_a: θ̄ a_{t-1}``, ``rho: ga a_{t-1}`` (``ga`` before its update), ``alpha: G rho_α + G_1 rho_{α,1}``,
``alpha_syn: gI I_{t-1}``.

Layout as :mod:`.numba_lif`: the problem is ``[T, n]`` (``n = B*N``, parameters expanded to
``[n]``; autograd of the expand reduces per-neuron sums to the parameter's shape), split over
``torch.get_num_threads()`` threads for large layers. The forward is one pass per step over the
thread's neurons in the input dtype (the same float32 operations as the torch backend, so the
spikes agree); the backward walks blocks of :data:`_BLOCK` neurons through all ``T`` steps with
a float64 working set that stays in L1, first rebuilding the trace ``a_{t-1}`` of the block
(input dtype, as the forward computed it). The surrogate terms are the per-family forms of
:mod:`.numba_surrogates` (:func:`~.numba_surrogates._sur_vec`, selected by
:data:`~.numba_surrogates.NUMBA_CODES`), the same ones the LIF kernels use.
"""

from __future__ import annotations

import numpy as np
import torch
from numba import njit

from ._common import expand_param, scaled_alpha
from .numba_lif import _BLOCK, _np, _run
from .numba_surrogates import NUMBA_CODES, _sur_vec

__all__ = ["NumbaNeuronScan", "numba_alif_scan"]

_RESET_CODE = {"subtract": 0, "zero": 1, "none": 2}


@njit(cache=True, nogil=True, error_model="numpy")
def _fwd(x, v0, a0, i0, b, cb, r, th0, ba, asyn, ks, reset, levels, adapt, syn,
         s_out, h_out, i_out, v_out, a_out, i_st, lo, hi):
    """Forward over neurons ``[lo, hi)``: one pass per step, state in ``v_out``/``a_out``/``i_st``."""
    T = x.shape[0]
    one = ks[0]
    zero = one - one
    # unsigned indices: no negative-index wraparound test in the loops (see numba_lif_fast)
    ulo, uhi = np.uint64(lo), np.uint64(hi)
    for i in range(ulo, uhi):
        v_out[i] = v0[i]
        a_out[i] = a0[i]
        i_st[i] = i0[i]
    for t in range(T):
        xt = x[t]
        ht = h_out[t]
        st = s_out[t]
        for i in range(ulo, uhi):
            u = xt[i]
            if syn:
                u = u + asyn[i] * i_st[i]
                i_st[i] = u
                i_out[t, i] = u
            th = th0[i] + ba[i] * a_out[i] if adapt else th0[i]
            h = cb[i] * u + b[i] * v_out[i]
            s = one if h - th >= zero else zero
            for k in range(1, levels):
                s += one if h - th * ks[k] >= zero else zero
            ht[i] = h
            st[i] = s
            if reset == 0:
                v_out[i] = h - s * th
            elif reset == 1:
                v_out[i] = h if h - th < zero else zero
            else:
                v_out[i] = h
            if adapt:
                a_out[i] = s + r[i] * a_out[i]


@njit(cache=True, nogil=True, error_model="numpy")
def _bwd(h_in, s_in, u_in, gs, gh_in, gi_in, gv_in, ga_in, v0, a0, i0, b, cb, r, th0, ba, al, asyn,
         ks, code, reset, decay, levels, nd, adapt, syn, has_gs, has_gh, has_gi, has_gv, has_ga,
         need_b, need_r, need_th, need_ba, need_al, need_as,
         gx, gv0, ga0, gi0, gb, gr, gth, gba, gal, gas, lo, hi):
    """Backward over neurons ``[lo, hi)`` in blocks (module docstring). ``u_in`` is the membrane
    drive ``I`` (synaptic) or ``x`` (read only with ``decay`` and ``need_b``)."""
    T = h_in.shape[0]
    for j0 in range(lo, hi, _BLOCK):
        m = min(hi, j0 + _BLOCK) - j0
        # a_{t-1} of the block, in the input dtype exactly as the forward computed it
        A = np.empty((T if adapt else 1, m), dtype=h_in.dtype)
        if adapt:
            for i in range(m):
                A[0, i] = a0[j0 + i]
            for t in range(1, T):
                for i in range(m):
                    A[t, i] = s_in[t - 1, j0 + i] + r[j0 + i] * A[t - 1, i]
        thx = np.empty(m, dtype=h_in.dtype)  # theta_t in the input dtype
        hb = np.empty(m)
        thb = np.empty(m)
        z = np.empty(m)
        d = np.empty(m)
        dr = np.empty(m)
        ab = np.empty(m)
        G = np.zeros(m)
        G1 = np.zeros(m)
        sig = np.empty(m)
        kap = np.empty(m)
        sig1 = np.empty(m)
        rho = np.empty(m)
        rho1 = np.empty(m)
        gh = np.empty(m)
        gth_t = np.empty(m)
        gv = np.zeros(m)
        ga = np.zeros(m)
        gI = np.zeros(m)
        acc_b = np.zeros(m)
        acc_r = np.zeros(m)
        acc_th = np.zeros(m)
        acc_ba = np.zeros(m)
        acc_al = np.zeros(m)
        acc_as = np.zeros(m)
        for i in range(m):
            ab[i] = al[j0 + i]
            if has_gv:
                gv[i] = gv_in[j0 + i]
            if has_ga:
                ga[i] = ga_in[j0 + i]
        for t in range(T - 1, -1, -1):
            for i in range(m):
                hb[i] = h_in[t, j0 + i]
            if adapt:
                for i in range(m):
                    thx[i] = th0[j0 + i] + ba[j0 + i] * A[t, i]
            else:
                for i in range(m):
                    thx[i] = th0[j0 + i]
            for i in range(m):
                thb[i] = thx[i]
                G[i] = ga[i] if adapt else 0.0
            if has_gs:
                for i in range(m):
                    G[i] += gs[t, j0 + i]
            if nd and reset == 0:
                for i in range(m):
                    G[i] -= thb[i] * gv[i]
            elif nd and reset == 1:
                for i in range(m):
                    G1[i] = -hb[i] * gv[i]
            for k in range(levels):  # surrogate sums over the boundaries z_k = h - k theta
                kf = float(ks[k])
                for i in range(m):
                    z[i] = hb[i] - thb[i] * kf
                _sur_vec(code, False, z, ab, d, m)
                if k == 0:
                    for i in range(m):
                        sig[i] = d[i]
                        kap[i] = d[i]
                        sig1[i] = d[i]
                else:
                    for i in range(m):
                        sig[i] += d[i]
                        kap[i] += (k + 1) * d[i]
                if need_al:
                    _sur_vec(code, True, z, ab, dr, m)
                    if k == 0:
                        for i in range(m):
                            rho[i] = dr[i]
                            rho1[i] = dr[i]
                    else:
                        for i in range(m):
                            rho[i] += dr[i]
            if reset == 1:
                for i in range(m):
                    keep = 1.0 if hb[i] - thb[i] < 0.0 else 0.0
                    gh[i] = gv[i] * keep + G[i] * sig[i] + G1[i] * sig1[i]
            else:
                for i in range(m):
                    gh[i] = gv[i] + G[i] * sig[i]
            if has_gh:
                for i in range(m):
                    gh[i] += gh_in[t, j0 + i]
            for i in range(m):
                gth_t[i] = -(G[i] * kap[i] + G1[i] * sig1[i])
            if reset == 0:
                for i in range(m):
                    gth_t[i] -= gv[i] * s_in[t, j0 + i]
            if need_th:
                for i in range(m):
                    acc_th[i] += gth_t[i]
            if need_al:
                for i in range(m):
                    acc_al[i] += G[i] * rho[i] + G1[i] * rho1[i]
            if adapt:
                for i in range(m):
                    ap = float(A[t, i])
                    acc_ba[i] += gth_t[i] * ap
                    acc_r[i] += ga[i] * ap
                    ga[i] = r[j0 + i] * ga[i] + ba[j0 + i] * gth_t[i]
            if need_b:
                if t > 0:
                    for i in range(m):  # v_{t-1} from h_{t-1}, s_{t-1}, theta_{t-1} (input dtype)
                        hp = h_in[t - 1, j0 + i]
                        tp = th0[j0 + i] + ba[j0 + i] * A[t - 1, i] if adapt else th0[j0 + i]
                        if reset == 0:
                            vp = hp - s_in[t - 1, j0 + i] * tp
                        elif reset == 1:
                            vp = hp if hp - tp < 0.0 else hp - hp
                        else:
                            vp = hp
                        acc_b[i] += gh[i] * vp
                else:
                    for i in range(m):
                        acc_b[i] += gh[i] * v0[j0 + i]
                if decay:
                    for i in range(m):
                        acc_b[i] -= gh[i] * u_in[t, j0 + i]
            if syn:
                for i in range(m):
                    gI[i] = cb[j0 + i] * gh[i] + asyn[j0 + i] * gI[i]
                if has_gi:
                    for i in range(m):
                        gI[i] += gi_in[t, j0 + i]
                if need_as:
                    if t > 0:
                        for i in range(m):
                            acc_as[i] += gI[i] * u_in[t - 1, j0 + i]
                    else:
                        for i in range(m):
                            acc_as[i] += gI[i] * i0[j0 + i]
                for i in range(m):
                    gx[t, j0 + i] = gI[i]
            else:
                for i in range(m):
                    gx[t, j0 + i] = cb[j0 + i] * gh[i]
            for i in range(m):
                gv[i] = b[j0 + i] * gh[i]
        for i in range(m):
            gv0[j0 + i] = gv[i]
            if adapt:
                ga0[j0 + i] = ga[i]
                gr[j0 + i] = acc_r[i]
                gba[j0 + i] = acc_ba[i]
            if syn:
                gi0[j0 + i] = asyn[j0 + i] * gI[i]
            if need_b:
                gb[j0 + i] = acc_b[i]
            if need_th:
                gth[j0 + i] = acc_th[i]
            if need_al:
                gal[j0 + i] = acc_al[i]
            if need_as:
                gas[j0 + i] = acc_as[i]


class NumbaNeuronScan(torch.autograd.Function):
    """``forward(x [T, n], v0, a0, i0, beta, rho, threshold, adaptation, alpha, alpha_syn (all
    [n], x's dtype, contiguous), cfg) -> (s, h, i, v, a)``.

    ``cfg = (code, reset, detach_reset, decay_input, levels, adapt, syn)``; the kernels of this
    module. Outputs of a part that is off (``i`` without ``syn``, ``a`` without ``adapt``) are
    placeholders; so are the matching inputs.
    """

    @staticmethod
    def forward(ctx, x, v0, a0, i0, beta, rho, threshold, adaptation, alpha, alpha_syn, cfg):
        ctx.set_materialize_grads(False)
        code, reset, detach, decay, levels, adapt, syn = cfg
        T, n = x.shape
        s, h = torch.empty_like(x), torch.empty_like(x)
        i_out = torch.empty_like(x) if syn else torch.zeros(1, 1, dtype=x.dtype)
        v, a, i_st = torch.empty_like(v0), torch.empty_like(v0), torch.empty_like(v0)
        cb = 1 - beta if decay else torch.ones_like(beta)
        ks = torch.arange(1, levels + 1, dtype=x.dtype)
        _run(_fwd, (_np(x), _np(v0), _np(a0), _np(i0), _np(beta), _np(cb), _np(rho), _np(threshold),
                    _np(adaptation), _np(alpha_syn), _np(ks), reset, levels, adapt, syn, _np(s),
                    _np(h), _np(i_out), _np(v), _np(a), _np(i_st)), n)
        ctx.cfg = cfg
        need_u = syn or (decay and ctx.needs_input_grad[4])  # the drive of beta's decay term
        ctx.save_for_backward(h, s, (i_out if syn else x) if need_u else None, v0, a0, i0, beta,
                              cb, rho, threshold, adaptation, alpha, alpha_syn)
        return s, h, i_out, v, a

    @staticmethod
    def backward(ctx, g_s, g_h, g_i, g_v, g_a):
        h, s, u, v0, a0, i0, beta, cb, rho, th, ba, alpha, asyn = ctx.saved_tensors
        code, reset, detach, decay, levels, adapt, syn = ctx.cfg
        needs = ctx.needs_input_grad[:10]
        if not any(needs):
            return (None,) * 11
        _, need_v0, need_a0, need_i0, need_b, need_r, need_th, need_ba, need_al, need_as = needs
        need_r, need_ba, need_as = need_r and adapt, need_ba and adapt, need_as and syn
        T, n = h.shape
        dt = h.dtype
        dummy = torch.zeros(1, 1, dtype=dt)  # C-contiguous: one compiled signature per dtype

        def vec(flag):
            return torch.empty(n if flag else 0, dtype=dt)

        def two(g):
            return _np(g.to(dt).contiguous() if g is not None else dummy)

        gx = torch.empty_like(h)
        gv0, ga0, gi0 = vec(True), vec(adapt), vec(syn)
        gb, gr, gth, gba, gal, gas = (vec(f) for f in (need_b, adapt, need_th, adapt, need_al,
                                                       need_as))
        ks = torch.arange(1, levels + 1, dtype=dt)
        nd = (not detach) and reset != 2
        _run(_bwd, (_np(h), _np(s), _np(u if u is not None else dummy), two(g_s), two(g_h),
                    two(g_i if syn else None),
                    _np(g_v.to(dt).contiguous() if g_v is not None else v0),
                    _np(g_a.to(dt).contiguous() if (g_a is not None and adapt) else v0),
                    _np(v0), _np(a0), _np(i0), _np(beta), _np(cb), _np(rho), _np(th), _np(ba),
                    _np(alpha), _np(asyn), _np(ks), code, reset, decay, levels, nd, adapt, syn,
                    g_s is not None, g_h is not None, syn and g_i is not None, g_v is not None,
                    adapt and g_a is not None, bool(need_b), bool(need_r), bool(need_th),
                    bool(need_ba), bool(need_al), bool(need_as), _np(gx), _np(gv0), _np(ga0),
                    _np(gi0), _np(gb), _np(gr), _np(gth), _np(gba), _np(gal), _np(gas)), n)
        res = (gx, gv0, ga0, gi0, gb, gr, gth, gba, gal, gas)
        return tuple(g if need else None for g, need in zip(res, needs)) + (None,)


def neuron_scan(x, v0, a0, i0, beta, rho, threshold, adaptation, alpha, alpha_syn, surrogate, reset,
                detach_reset, decay_input, levels, relaxed, adapt, syn):
    """Shared wrapper of ops ``alif`` / ``synaptic``: flatten to ``[T, n]``, expand the parameters
    to ``[n]`` in ``x``'s dtype, run :class:`NumbaNeuronScan`; returns ``(s, h, i, v, a)`` shaped
    like ``x`` / ``x[0]`` (``i``, ``a``: ``None`` for a part that is off)."""
    if relaxed:
        raise ValueError("the numba backend does not support relaxed=True; use backend='torch'")
    if x.device.type != "cpu":
        raise ValueError(f"backend 'numba' needs CPU tensors, got x on {x.device}")
    if x.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"backend 'numba' needs float32 or float64 x, got {x.dtype}")
    shape, T, n, dt = x.shape[1:], x.shape[0], x[0].numel(), x.dtype
    alpha = scaled_alpha(alpha, surrogate, x.numel())  # "auto": the whole sequence

    def full(p):
        return expand_param(p, shape, dt).view(n)

    def state(s0):
        return s0.to(dt).contiguous().view(n)

    zeros = torch.zeros((), dtype=dt)
    s, h, i, v, a = NumbaNeuronScan.apply(
        x.contiguous().view(T, n), state(v0), state(a0 if adapt else zeros.expand(shape)),
        state(i0 if syn else zeros.expand(shape)), full(beta), full(rho if adapt else zeros),
        full(threshold), full(adaptation if adapt else zeros), full(alpha),
        full(alpha_syn if syn else zeros),
        (NUMBA_CODES[type(surrogate)], _RESET_CODE[reset], bool(detach_reset), bool(decay_input),
         int(levels), bool(adapt), bool(syn)))
    return (s.view(x.shape), h.view(x.shape), i.view(x.shape) if syn else None,
            v.view(shape).to(v0.dtype), a.view(shape).to(a0.dtype) if adapt else None)


def numba_alif_scan(x, v0, a0, beta, rho, threshold, adaptation, alpha, surrogate, reset,
                    detach_reset, decay_input, levels, relaxed):
    """``alif`` backend ``"numba"`` (CPU, float32/float64, built-in surrogate families,
    ``relaxed=False``); the signature of :func:`~surrogate_nets.functional.alif_scan`'s backends.

    Returns:
        :class:`~surrogate_nets.functional.alif.ALIFScanResult` ``(spikes, h, v, a)``.
    """
    from ..functional.alif import ALIFScanResult

    s, h, _, v, a = neuron_scan(x, v0, a0, None, beta, rho, threshold, adaptation, alpha, None,
                                surrogate, reset, detach_reset, decay_input, levels, relaxed,
                                adapt=True, syn=False)
    return ALIFScanResult(s, h, v, a)
