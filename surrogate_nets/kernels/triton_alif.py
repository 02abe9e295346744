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

Both directions are ``torch.library`` ops (``surrogate_nets::alif_scan_fwd`` / ``alif_scan_bwd``,
made by :mod:`.triton_library`) with registered autograd and fake implementations, so
``torch.compile`` traces the scan as one op per direction (no graph break).
"""

from __future__ import annotations

from typing import List, Optional, Tuple

import torch
import triton
import triton.language as tl

from ._common import expand_param, scaled_alpha
from .triton_library import (block, compute_dtype, dense, library_op, param_dtype,
                             register_autograd, wrap)
from .triton_lif import _after_reset, _count, _spike_grads
from .triton_surrogates import FORMS_BY_NAME

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


# ---------------------------------------------------------------------- torch.library wrapping
@library_op("alif_scan_fwd")
def alif_scan_fwd(x: torch.Tensor, v0: torch.Tensor, a0: torch.Tensor, beta: torch.Tensor,
                  rho: torch.Tensor, threshold: torch.Tensor, adaptation: torch.Tensor,
                  alpha: torch.Tensor, family: str, reset: int, detach_reset: bool,
                  decay_input: bool, levels: int
                  ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Forward op: ``x [T, n]``, states and parameters ``[n]`` (contiguous, parameters in the
    compute dtype) ``-> (s [T, n], h [T, n], v_T [n], a_T [n])``; ``alpha`` is kept for the
    backward only."""
    T, n = x.shape
    s, h = torch.empty_like(x), torch.empty_like(x)
    v, a = torch.empty_like(v0), torch.empty_like(v0)
    blk = block(n, x.device)
    wrap(_alif_fwd_kernel)[(triton.cdiv(n, blk),)](
        x, v0, a0, beta, rho, threshold, adaptation, s, h, v, a, n, T, RESET=reset,
        DECAY=decay_input, LEVELS=levels, CDT=compute_dtype(x.dtype), BLOCK=blk)
    return s, h, v, a


@library_op("alif_scan_bwd")
def alif_scan_bwd(h: torch.Tensor, s: torch.Tensor, x: Optional[torch.Tensor],
                  gs: Optional[torch.Tensor], gh: Optional[torch.Tensor],
                  gv: Optional[torch.Tensor], ga: Optional[torch.Tensor], v0: torch.Tensor,
                  a0: torch.Tensor, beta: torch.Tensor, rho: torch.Tensor,
                  threshold: torch.Tensor, adaptation: torch.Tensor, alpha: torch.Tensor,
                  family: str, reset: int, detach_reset: bool, decay_input: bool, levels: int,
                  need_beta: bool, need_alpha: bool) -> List[torch.Tensor]:
    """Backward op: ``[dx, dv0, da0, dbeta, drho, dtheta0, dbeta_a, dalpha]`` (``[T, n]`` and
    ``[n]``; the beta / alpha ones are computed only when ``need_beta`` / ``need_alpha``)."""
    d, da = FORMS_BY_NAME[family]
    T, n = h.shape
    pdt, dev = beta.dtype, h.device
    gx = torch.empty_like(h)
    aprev = torch.empty(h.shape, dtype=pdt, device=dev)  # scratch: the rebuilt trace a_{t-1}
    outs = [torch.empty(n, dtype=pdt, device=dev) for _ in range(7)]
    blk = block(n, dev)
    wrap(_alif_bwd_kernel)[(triton.cdiv(n, blk),)](
        h, s, x if x is not None else h, *(t if t is not None else h for t in (gs, gh, gv, ga)),
        v0, a0, beta, rho, threshold, adaptation, alpha, aprev, gx, *outs, n, T, D=d, DA=da,
        RESET=reset, DECAY=decay_input, LEVELS=levels, ND=(not detach_reset) and reset != 2,
        HAS_GS=gs is not None, HAS_GH=gh is not None, HAS_GV=gv is not None,
        HAS_GA=ga is not None, NEED_B=need_beta, NEED_AL=need_alpha, CDT=compute_dtype(h.dtype),
        BLOCK=blk)
    return [gx] + outs


@alif_scan_fwd.register_fake
def _(x, v0, a0, beta, rho, threshold, adaptation, alpha, family, reset, detach_reset,
      decay_input, levels):
    return torch.empty_like(x), torch.empty_like(x), torch.empty_like(v0), torch.empty_like(v0)


@alif_scan_bwd.register_fake
def _(h, s, x, gs, gh, gv, ga, v0, a0, beta, rho, threshold, adaptation, alpha, family, reset,
      detach_reset, decay_input, levels, need_beta, need_alpha):
    return [torch.empty_like(h)] + [h.new_empty(h.shape[1:], dtype=beta.dtype) for _ in range(7)]


def _setup(ctx, inputs, output):
    x, v0, a0, beta, rho, th, ba, alpha = inputs[:8]
    ctx.cfg = inputs[8:]
    s, h, _, _ = output
    save_x = inputs[11] and ctx.needs_input_grad[3]  # decay_input and beta's gradient
    ctx.save_for_backward(h, s, x if save_x else None, v0, a0, beta, rho, th, ba, alpha)


def _backward(ctx, gs, gh, gv, ga):
    h, s, x, v0, a0, beta, rho, th, ba, alpha = ctx.saved_tensors
    needs = ctx.needs_input_grad[:8]
    if not any(needs):
        return (None,) * 13
    res = alif_scan_bwd(h, s, x, dense(gs), dense(gh), dense(gv), dense(ga), v0, a0, beta, rho,
                        th, ba, alpha, *ctx.cfg, bool(needs[3]), bool(needs[7]))
    res[1], res[2] = res[1].to(v0.dtype), res[2].to(a0.dtype)
    return tuple(t if need else None for t, need in zip(res, needs)) + (None,) * 5


register_autograd(alif_scan_fwd, _backward, _setup)


# ------------------------------------------------------------------------------ the backend fn
def triton_alif_scan(x, v0, a0, beta, rho, threshold, adaptation, alpha, surrogate, reset,
                     detach_reset, decay_input, levels, relaxed):
    """``alif`` backend ``"triton"`` (built-in surrogate families, ``relaxed=False``)."""
    from ..functional.alif import ALIFScanResult

    if relaxed:
        raise ValueError("the triton backend does not support relaxed=True; use backend='torch'")
    shape, T, n = x.shape[1:], x.shape[0], x[0].numel()
    pdt = param_dtype(x.dtype)
    alpha = scaled_alpha(alpha, surrogate, x.numel())  # "auto": the whole sequence

    def full(p):
        return expand_param(p, shape, pdt).view(n)

    s, h, v, a = alif_scan_fwd(
        x.contiguous().view(T, n), v0.to(x.dtype).contiguous().view(n),
        a0.to(x.dtype).contiguous().view(n), full(beta), full(rho), full(threshold),
        full(adaptation), full(alpha), surrogate.name, _RESET_CODE[reset], bool(detach_reset),
        bool(decay_input), int(levels))
    return ALIFScanResult(s.view(x.shape), h.view(x.shape), v.view(shape).to(v0.dtype),
                          a.view(shape).to(a0.dtype))
