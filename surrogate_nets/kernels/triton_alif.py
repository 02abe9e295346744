r"""Triton adaptive-LIF scan (op ``"alif"``): the whole time loop in one kernel, forward and BPTT.

Same recurrence and numerical contract as :class:`surrogate_nets.functional.alif.ALIFScanFunction`
(its module docstring derives the backward): per neuron

.. math::
    h_t = \beta v_{t-1} + c\,x_t,\quad \theta_t = \theta_0 + \beta_a a_{t-1},\quad
    s_t = \textstyle\sum_{k=1}^{L} H(h_t - k\theta_t),\quad v_t = \mathrm{reset}(h_t, s_t; \theta_t),
    \quad a_t = \rho a_{t-1} + s_t

One program owns a block of neurons for all ``T`` steps (state in registers). The forward writes
``s`` and ``h``; the backward first rebuilds the trace ``a_{t-1}`` from ``s`` into a scratch
tensor (as the torch backend does), then runs ``t = T-1 .. 0`` accumulating the gradients of
``beta, rho, theta_0, beta_a`` and alpha per neuron. Parameters arrive expanded to ``[B*N]``
(autograd of the expand reduces them). float16/bfloat16 compute in float32; float64 in float64.
CUDA tensors, or CPU tensors under ``TRITON_INTERPRET=1``.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._common import expand_param, scaled_alpha
from .triton_lif import _after_reset, _block, _cdt, _count, _spike_grads
from .triton_surrogates import form_for

_RESET_CODE = {"subtract": 0, "zero": 1, "none": 2}


@triton.jit
def _alif_fwd_kernel(X, V0, A0, BETA, RHO, TH, BA, S, H, VOUT, AOUT, n, T,
                     RESET: tl.constexpr, DECAY: tl.constexpr, LEVELS: tl.constexpr,
                     CDT: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    m = offs < n
    v = tl.load(V0 + offs, mask=m, other=0.0).to(CDT)
    a = tl.load(A0 + offs, mask=m, other=0.0).to(CDT)
    b = tl.load(BETA + offs, mask=m, other=1.0).to(CDT)
    r = tl.load(RHO + offs, mask=m, other=1.0).to(CDT)
    th0 = tl.load(TH + offs, mask=m, other=1.0).to(CDT)
    ba = tl.load(BA + offs, mask=m, other=0.0).to(CDT)
    for t in range(T):
        x = tl.load(X + t * n + offs, mask=m, other=0.0).to(CDT)
        if DECAY:
            h = (1.0 - b) * x + b * v
        else:
            h = x + b * v
        th = th0 + ba * a
        s = _count(h, th, LEVELS)
        tl.store(H + t * n + offs, h.to(H.dtype.element_ty), mask=m)
        tl.store(S + t * n + offs, s.to(S.dtype.element_ty), mask=m)
        v = _after_reset(h, s, th, RESET, LEVELS)
        a = s + r * a
    tl.store(VOUT + offs, v.to(VOUT.dtype.element_ty), mask=m)
    tl.store(AOUT + offs, a.to(AOUT.dtype.element_ty), mask=m)


@triton.jit
def _alif_bwd_kernel(H, S, X, GS, GH, GV, GA, V0, A0, BETA, RHO, TH, BA, ALPHA, APREV,
                     GX, GV0, GA0, GB, GR, GTH, GBA, GAL, n, T,
                     D: tl.constexpr, DA: tl.constexpr, RESET: tl.constexpr, DECAY: tl.constexpr,
                     LEVELS: tl.constexpr, ND: tl.constexpr, HAS_GS: tl.constexpr,
                     HAS_GH: tl.constexpr, HAS_GV: tl.constexpr, HAS_GA: tl.constexpr,
                     NEED_B: tl.constexpr, NEED_AL: tl.constexpr, CDT: tl.constexpr,
                     BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    m = offs < n
    b = tl.load(BETA + offs, mask=m, other=1.0).to(CDT)
    r = tl.load(RHO + offs, mask=m, other=1.0).to(CDT)
    th0 = tl.load(TH + offs, mask=m, other=1.0).to(CDT)
    ba = tl.load(BA + offs, mask=m, other=0.0).to(CDT)
    al = tl.load(ALPHA + offs, mask=m, other=1.0).to(CDT)
    v0 = tl.load(V0 + offs, mask=m, other=0.0).to(CDT)
    # the trace a_{t-1}, t = 0..T-1, rebuilt from the spikes
    a = tl.load(A0 + offs, mask=m, other=0.0).to(CDT)
    for t in range(T):
        tl.store(APREV + t * n + offs, a, mask=m)
        a = tl.load(S + t * n + offs, mask=m, other=0.0).to(CDT) + r * a
    zero = tl.zeros([BLOCK], dtype=CDT)
    gv = zero
    ga = zero
    if HAS_GV:
        gv = tl.load(GV + offs, mask=m, other=0.0).to(CDT)
    if HAS_GA:
        ga = tl.load(GA + offs, mask=m, other=0.0).to(CDT)
    acc_b = zero
    acc_r = zero
    acc_th = zero
    acc_ba = zero
    acc_al = zero
    for i in range(T):
        t = T - 1 - i
        h = tl.load(H + t * n + offs, mask=m, other=0.0).to(CDT)
        s = tl.load(S + t * n + offs, mask=m, other=0.0).to(CDT)
        ap = tl.load(APREV + t * n + offs, mask=m, other=0.0).to(CDT)
        th = th0 + ba * ap
        G = ga
        if HAS_GS:
            G = G + tl.load(GS + t * n + offs, mask=m, other=0.0).to(CDT)
        gh, gth, gal = _spike_grads(h, th, al, G, gv, D, DA, RESET, ND, LEVELS, NEED_AL)
        if RESET == 0:
            gth -= gv * s
        if HAS_GH:
            gh += tl.load(GH + t * n + offs, mask=m, other=0.0).to(CDT)
        if NEED_AL:
            acc_al += gal
        acc_th += gth
        acc_ba += gth * ap
        acc_r += ga * ap
        ga = r * ga + ba * gth
        if NEED_B:
            has_prev = tl.full([BLOCK], t, tl.int32) > 0
            pm = m & has_prev
            hprev = tl.load(H + (t - 1) * n + offs, mask=pm, other=0.0).to(CDT)
            sprev = tl.load(S + (t - 1) * n + offs, mask=pm, other=0.0).to(CDT)
            aprev = tl.load(APREV + (t - 1) * n + offs, mask=pm, other=0.0).to(CDT)
            vprev = _after_reset(hprev, sprev, th0 + ba * aprev, RESET, LEVELS)
            vprev = tl.where(has_prev, vprev, v0)
            acc_b += gh * vprev
            if DECAY:
                acc_b -= gh * tl.load(X + t * n + offs, mask=m, other=0.0).to(CDT)
        if DECAY:
            gx = (1.0 - b) * gh
        else:
            gx = gh
        tl.store(GX + t * n + offs, gx.to(GX.dtype.element_ty), mask=m)
        gv = b * gh
    tl.store(GV0 + offs, gv, mask=m)
    tl.store(GA0 + offs, ga, mask=m)
    tl.store(GR + offs, acc_r, mask=m)
    tl.store(GTH + offs, acc_th, mask=m)
    tl.store(GBA + offs, acc_ba, mask=m)
    if NEED_B:
        tl.store(GB + offs, acc_b, mask=m)
    if NEED_AL:
        tl.store(GAL + offs, acc_al, mask=m)


class TritonALIFScan(torch.autograd.Function):
    """``forward(x [T, n], v0, a0, beta, rho, threshold, adaptation, alpha (all [n]), cfg)
    -> (s, h, v, a)``; contiguous, parameters in the compute dtype."""

    @staticmethod
    def forward(ctx, x, v0, a0, beta, rho, th, ba, alpha, cfg):
        ctx.set_materialize_grads(False)
        d, da, reset, detach, decay, levels = cfg
        T, n = x.shape
        s, h = torch.empty_like(x), torch.empty_like(x)
        v, a = torch.empty_like(v0), torch.empty_like(v0)
        blk = _block(n, x.device)
        _alif_fwd_kernel[(triton.cdiv(n, blk),)](x, v0, a0, beta, rho, th, ba, s, h, v, a, n, T,
                                                 RESET=reset, DECAY=decay, LEVELS=levels,
                                                 CDT=_cdt(x.dtype), BLOCK=blk)
        ctx.cfg = cfg
        save_x = decay and ctx.needs_input_grad[3]
        ctx.save_for_backward(h, s, x if save_x else None, v0, a0, beta, rho, th, ba, alpha)
        return s, h, v, a

    @staticmethod
    def backward(ctx, gs, gh, gv, ga):
        h, s, x, v0, a0, beta, rho, th, ba, alpha = ctx.saved_tensors
        d, da, reset, detach, decay, levels = ctx.cfg
        needs = ctx.needs_input_grad[:8]
        if not any(needs):
            return (None,) * 9
        T, n = h.shape
        pdt = beta.dtype
        gx = torch.empty_like(h)
        aprev = torch.empty(h.shape, dtype=pdt, device=h.device)
        outs = [torch.empty(n, dtype=pdt, device=h.device) for _ in range(7)]
        g = [None if t is None else t.contiguous() for t in (gs, gh, gv, ga)]
        blk = _block(n, h.device)
        _alif_bwd_kernel[(triton.cdiv(n, blk),)](
            h, s, x if x is not None else h, *(t if t is not None else h for t in g), v0, a0,
            beta, rho, th, ba, alpha, aprev, gx, *outs, n, T, D=d, DA=da, RESET=reset,
            DECAY=decay, LEVELS=levels, ND=(not detach) and reset != 2, HAS_GS=g[0] is not None,
            HAS_GH=g[1] is not None, HAS_GV=g[2] is not None, HAS_GA=g[3] is not None,
            NEED_B=bool(needs[3]), NEED_AL=bool(needs[7]), CDT=_cdt(h.dtype), BLOCK=blk)
        gv0, ga0, gb, gr, gth, gba, gal = outs
        res = (gx, gv0.to(v0.dtype), ga0.to(a0.dtype), gb, gr, gth, gba, gal)
        return tuple(t if need else None for t, need in zip(res, needs)) + (None,)


def triton_alif_scan(x, v0, a0, beta, rho, threshold, adaptation, alpha, surrogate, reset,
                     detach_reset, decay_input, levels, relaxed):
    """``alif`` backend ``"triton"`` (built-in surrogate families, ``relaxed=False``)."""
    from ..functional.alif import ALIFScanResult

    if relaxed:
        raise ValueError("the triton backend does not support relaxed=True; use backend='torch'")
    shape, T, n = x.shape[1:], x.shape[0], x[0].numel()
    pdt = torch.float64 if x.dtype == torch.float64 else torch.float32
    alpha = scaled_alpha(alpha, surrogate, x.numel())  # "auto": the whole sequence
    d, da = form_for(surrogate)

    def full(p):
        return expand_param(p, shape, pdt).view(n)

    s, h, v, a = TritonALIFScan.apply(
        x.contiguous().view(T, n), v0.to(x.dtype).contiguous().view(n),
        a0.to(x.dtype).contiguous().view(n), full(beta), full(rho), full(threshold),
        full(adaptation), full(alpha),
        (d, da, _RESET_CODE[reset], bool(detach_reset), bool(decay_input), int(levels)))
    return ALIFScanResult(s.view(x.shape), h.view(x.shape), v.view(shape).to(v0.dtype),
                          a.view(shape).to(a0.dtype))
