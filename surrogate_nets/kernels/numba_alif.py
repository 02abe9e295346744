r"""Compiled CPU adaptive-LIF scan (numba): op ``"alif"``; its kernels also serve ``"synaptic"``.

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
``beta_a: θ̄ a_{t-1}``, ``rho: ga a_{t-1}`` (``ga`` before its update),
``alpha: G rho_α + G_1 rho_{α,1}``, ``alpha_syn: gI I_{t-1}``.

Layout as :mod:`.numba_lif`: the problem is ``[T, n]`` (``n = B*N``, parameters expanded to
``[n]``; autograd of the expand reduces per-neuron sums to the parameter's shape), split over
``torch.get_num_threads()`` threads for large layers. The forward is one pass per step over the
thread's neurons in the input dtype (the torch backend's operations, except that torch's
``addcmul`` may fuse a multiply-add: ``h``/``a`` can differ in the last bit, as for the numba LIF
backend); the backward walks blocks of :data:`_BLOCK` neurons through all ``T`` steps with a
working set in the input dtype (as the torch backend computes) that stays in L1/L2, first
rebuilding the trace ``a_{t-1}`` of the block exactly as the forward computed it. The surrogate
terms are the per-family forms of :mod:`.numba_surrogates` (:func:`~.numba_surrogates._sur_vec`,
selected by :data:`~.numba_surrogates.NUMBA_CODES`), the same ones the LIF kernels use.
"""

from __future__ import annotations

import numpy as np
import torch
from numba import njit

from ._common import expand_param, scaled_alpha
from .numba_alif_fwd import _fwd  # the forward kernel (moved there unchanged)
from .numba_lif import _run  # the LIF kernels' thread split (kernels._parallel, shared by every numba kernel)
from .numba_surrogates import NUMBA_CODES, _sur_vec

__all__ = ["NumbaNeuronScan", "numba_alif_scan"]

_RESET_CODE = {"subtract": 0, "zero": 1, "none": 2}
_BLOCK = 256  # neurons per backward block (its working set of ~30 rows stays in L1/L2)


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().numpy()


@njit(cache=True, nogil=True, error_model="numpy")
def _sur_fill(code, wrt_alpha, z, a, out, m):
    """``out[:m]`` = the surrogate derivative (or d/dalpha) of family ``code`` at ``z[:m]``.

    :func:`~.numba_surrogates._sur_vec` compiled once as a function of its own: the backward
    calls it instead of inlining its per-family loops at every call site (which made the backward
    take ~15 s to compile per dtype)."""
    _sur_vec(code, wrt_alpha, z, a, out, m)


@njit(cache=True, nogil=True, error_model="numpy")
def _bwd(h_in, s_in, u_in, uts, gs, gts, gh_in, ghts, gi_in, gits, gv_in, ga_in, v0, a0, i0, b, cb,
         r, th0, ba, al, asyn, ks, code, reset, decay, levels, nd, adapt, need_b, need_th, need_al,
         need_as,
         gx, gv0, ga0, gi0, gb, gr, gth, gba, gal, gas, lo, hi):
    """Backward over neurons ``[lo, hi)`` in blocks of ``_BLOCK`` (module docstring).

    ``u_in`` is the membrane drive: ``I`` (synaptic), else ``x`` (read with ``decay``); absent
    output gradients arrive as one zero row (``*ts = 0``: row ``t * ts``). Without adaptation
    ``rho``, ``beta_a`` and ``a0`` are zeros; without the synaptic part ``alpha_syn`` and ``i0``
    are: the same loops then compute the plain terms exactly (adding ``0 * finite``). Per step:
    one loop for ``h``/``theta``/``z``, the surrogate loop(s), a few small loops for the rest."""
    T = h_in.shape[0]
    wd = h_in.dtype  # the working dtype: the input's, as the torch backend computes
    one = ks[0]
    zero = one - one
    fsub = one if reset == 0 else zero
    fzero = one if reset == 1 else zero
    fnd = one if nd else zero
    fdec = one if decay else zero
    # the working set of one block, allocated once per call (per-block allocations were measured
    # to dominate short sequences); rows padded so that they do not share 4 KiB offsets
    W = np.zeros((28, _BLOCK + 16), dtype=wd)
    A = np.zeros((T if adapt else 1, _BLOCK + 16), dtype=wd)  # a_{t-1} of the block
    th0x, bax, thx, bb, cbb, rb, asb, ab = W[0], W[1], W[2], W[3], W[4], W[5], W[6], W[7]
    v0b, hb, z, z1, d, dr, vp, gv = W[8], W[9], W[10], W[11], W[12], W[13], W[14], W[15]
    ga, gh, gth_t = W[16], W[17], W[18]
    gI, G, G1, acc_b, acc_r, acc_th, acc_ba, acc_al, acc_as = (W[19], W[20], W[21], W[22], W[23],
                                                              W[24], W[25], W[26], W[27])
    if levels > 1:
        S2 = np.zeros((5, _BLOCK + 16), dtype=wd)
        sig, kap, s1, rho, r1 = S2[0], S2[1], S2[2], S2[3], S2[4]
    else:  # one boundary: every sum is the one term
        sig, kap, s1, rho, r1 = d, d, d, dr, dr
    for j0 in range(lo, hi, _BLOCK):
        m = min(hi, j0 + _BLOCK) - j0
        um = np.uint64(m)
        uj = np.uint64(j0)
        # block-local copies of the parameters (4K aliasing, see numba_lif); accumulators zeroed
        for dst, src in ((th0x, th0), (bax, ba), (bb, b), (cbb, cb), (rb, r), (asb, asyn),
                         (ab, al), (v0b, v0), (gv, gv_in), (ga, ga_in)):
            dst[:m] = src[j0:j0 + m]
        W[19:, :m] = zero  # gI, G, G1 (zero unless zero reset without detach), ..., acc_*
        if adapt:  # the trace in the input dtype exactly as the forward computed it
            for i in range(um):
                A[0, i] = a0[uj + i]
            for t in range(1, T):
                sp_row = s_in[t - 1]
                for i in range(um):
                    A[t, i] = sp_row[uj + i] + rb[i] * A[t - 1, i]
        for t in range(T - 1, -1, -1):
            ht = h_in[t]
            at = A[t if adapt else 0]
            for i in range(um):
                hx = ht[uj + i]
                tx = th0x[i] + bax[i] * at[i]
                thx[i] = tx
                hb[i] = hx
                z1[i] = hx - tx
            for k in range(levels):  # surrogate sums over the boundaries z_k = h - k theta
                if k == 0:
                    zk = z1
                else:
                    kx = ks[k]
                    for i in range(um):
                        z[i] = ht[uj + i] - thx[i] * kx
                    zk = z
                _sur_fill(code, False, zk, ab, d, um)
                if need_al:
                    _sur_fill(code, True, zk, ab, dr, um)
                if levels > 1:
                    if k == 0:
                        for i in range(um):
                            sig[i] = d[i]
                            kap[i] = d[i]
                            s1[i] = d[i]
                            rho[i] = dr[i]
                            r1[i] = dr[i]
                    else:
                        for i in range(um):
                            sig[i] += d[i]
                            kap[i] += ks[k] * d[i]
                            rho[i] += dr[i]
            if need_b:  # v_{t-1} from h_{t-1}, s_{t-1}, theta_{t-1} (input dtype), or v0
                if t == 0:
                    for i in range(um):
                        vp[i] = v0b[i]
                else:
                    hp_row = h_in[t - 1]
                    sp_row = s_in[t - 1]
                    ap_row = A[t - 1 if adapt else 0]
                    for i in range(um):  # the reset of the forward, as 0/1 factors (exact)
                        hp = hp_row[uj + i]
                        tp = th0x[i] + bax[i] * ap_row[i]
                        s1p = one if hp - tp >= zero else zero
                        vp[i] = hp - fsub * (sp_row[uj + i] * tp) - fzero * (s1p * hp)
            st = s_in[t]
            gst = gs[t * gts]
            ght = gh_in[t * ghts]
            git = gi_in[t * gits]
            ut = u_in[t * uts]
            iprev = u_in[(t - 1) * uts] if t > 0 else i0
            gxt = gx[t]
            # small loops over few arrays each: a loop over many arrays does not vectorise (LLVM
            # gives up on the run-time alias checks); one fused loop measured 1.3-2.7x slower
            for i in range(um):
                G[i] = gst[uj + i] + ga[i] - fnd * fsub * thx[i] * gv[i]
            if nd and reset == 1:
                for i in range(um):
                    G1[i] = -hb[i] * gv[i]
            for i in range(um):
                keep = one - fzero * (one if z1[i] >= zero else zero)
                gh[i] = gv[i] * keep + G[i] * sig[i] + G1[i] * s1[i] + ght[uj + i]
            if need_th or adapt:
                for i in range(um):
                    gth_t[i] = -(G[i] * kap[i] + G1[i] * s1[i]) - fsub * gv[i] * st[uj + i]
            if need_th:
                for i in range(um):
                    acc_th[i] += gth_t[i]
            if need_al:
                for i in range(um):
                    acc_al[i] += G[i] * rho[i] + G1[i] * r1[i]
            if adapt:
                for i in range(um):
                    ap = at[i]
                    acc_ba[i] += gth_t[i] * ap
                    acc_r[i] += ga[i] * ap
                for i in range(um):
                    ga[i] = rb[i] * ga[i] + bax[i] * gth_t[i]
            if need_b:
                for i in range(um):
                    acc_b[i] += gh[i] * (vp[i] - fdec * ut[uj + i])
            if adapt:
                for i in range(um):
                    gxt[uj + i] = cbb[i] * gh[i]
            else:
                for i in range(um):
                    gI[i] = cbb[i] * gh[i] + asb[i] * gI[i]
                if gits:  # dL/dI_t from the ``i`` output
                    for i in range(um):
                        gI[i] += git[uj + i]
                for i in range(um):
                    gxt[uj + i] = gI[i]
                if need_as:
                    for i in range(um):
                        acc_as[i] += gI[i] * iprev[uj + i]
            for i in range(um):
                gv[i] = bb[i] * gh[i]
        for i in range(um):
            gv0[uj + i] = gv[i]
            if adapt:
                ga0[uj + i] = ga[i]
                gr[uj + i] = acc_r[i]
                gba[uj + i] = acc_ba[i]
            else:
                gi0[uj + i] = asb[i] * gI[i]
                gas[uj + i] = acc_as[i]
            if need_b:
                gb[uj + i] = acc_b[i]
            if need_th:
                gth[uj + i] = acc_th[i]
            if need_al:
                gal[uj + i] = acc_al[i]


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
        need_b, need_th, need_al, need_as = needs[4], needs[6], needs[8], needs[9] and syn
        T, n = h.shape
        dt = h.dtype
        zrow = torch.zeros(1, n, dtype=dt)  # an absent [T, n] input: one zero row, row stride 0

        def rows(g):
            if g is None:
                return _np(zrow), 0
            g = g.to(dt)
            if g.stride(0) == 0:  # the same gradient at every step (e.g. of out.sum()): one row
                return _np(g[:1].contiguous()), 0
            return _np(g.contiguous()), 1

        def vec(flag):
            return torch.empty(n if flag else 0, dtype=dt)

        def state(g):
            return _np(g.to(dt).contiguous() if g is not None else zrow[0])

        gx = torch.empty_like(h)
        gv0, ga0, gi0, gth = vec(True), vec(adapt), vec(syn), vec(need_th)
        gb, gr, gba, gal, gas = vec(need_b), vec(adapt), vec(adapt), vec(need_al), vec(syn)
        ks = torch.arange(1, levels + 1, dtype=dt)
        nd = (not detach) and reset != 2
        _run(_bwd, (_np(h), _np(s), *rows(u), *rows(g_s), *rows(g_h), *rows(g_i if syn else None),
                    state(g_v), state(g_a if adapt else None), _np(v0), _np(a0), _np(i0),
                    _np(beta), _np(cb), _np(rho), _np(th), _np(ba), _np(alpha), _np(asyn), _np(ks),
                    code, reset, decay, levels, nd, adapt, bool(need_b), bool(need_th),
                    bool(need_al), bool(need_as), _np(gx),
                    _np(gv0), _np(ga0), _np(gi0), _np(gb), _np(gr), _np(gth), _np(gba), _np(gal),
                    _np(gas)), n)
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
