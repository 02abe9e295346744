r"""Triton LIF/IF/PLIF scan: the whole time loop inside one kernel, forward and hand-written BPTT backward.

Same recurrence and numerical contract as :class:`surrogate_nets.functional.lif.LIFScanFunction`
(whose docstring derives the backward): per neuron

.. math::
    h_t = \beta v_{t-1} + c\,x_t,\quad s_t = \textstyle\sum_{k=1}^{L} H(h_t - k\theta),\quad
    v_t = h_t - s_t\theta\ |\ h_t(1 - H(h_t - \theta))\ |\ h_t

with ``c = 1`` or ``1 - beta`` (``decay_input``). One program owns a block of ``BLOCK`` neurons
of the flattened ``[B*N]`` state and runs all ``T`` steps with the state in registers, so the
forward reads ``x`` once and writes ``s`` and ``h`` once; the backward runs ``t = T-1 .. 0``,
reads ``h`` (and ``h_{t-1}`` to rebuild ``v_{t-1}`` for the beta gradient), writes ``dL/dx``
once, and accumulates the beta / threshold / alpha gradients per neuron in registers. Per-neuron
parameters arrive expanded to ``[B*N]`` (autograd of the expand reduces them back to their
shapes). float16/bfloat16 are loaded and computed in float32; float64 stays float64.

Both directions are ``torch.library`` ops (``surrogate_nets::lif_scan_fwd`` /
``lif_scan_bwd``, made by :mod:`.triton_library`) with registered autograd, so
``torch.compile`` sees one op per direction. ``save_dtype`` (issue 11, item 6) keeps the
distance to threshold ``h - theta`` in bfloat16/float16 for the backward instead of ``h``
(the rule of :mod:`surrogate_nets.functional.lif_low_mem`). On CPU tensors they run only under Triton's
interpreter (``TRITON_INTERPRET=1`` set before triton is imported), which is how the tests run.
"""

from __future__ import annotations

from typing import List, Optional, Tuple

import torch
import triton
import triton.language as tl

from ._common import expand_param, scaled_alpha
from .triton_library import (block, compute_dtype, dense, library_op, maybe_empty, param_dtype,
                             register_autograd, wrap)
from .triton_surrogates import FORMS_BY_NAME

_RESET_CODE = {"subtract": 0, "zero": 1, "none": 2}


# ------------------------------------------------------------------------------------ kernels
@triton.jit
def _count(h, th, LEVELS: tl.constexpr):
    """``sum_k H(h - k theta)`` (``k = 1..LEVELS``) as a float in ``h``'s dtype."""
    s = (h - th >= 0).to(h.dtype)
    for k in tl.static_range(2, LEVELS + 1):
        s += (h - th * k >= 0).to(h.dtype)
    return s


@triton.jit
def _after_reset(h, s, th, RESET: tl.constexpr, LEVELS: tl.constexpr):
    """``v`` from ``h`` and the spike count ``s`` (one return: compiled Triton prefers it)."""
    v = h
    if RESET == 0:
        v = h - s * th
    elif RESET == 1:
        if LEVELS == 1:
            v = h * (1.0 - s)
        else:
            v = h * (1.0 - (h - th >= 0).to(h.dtype))
    return v


@triton.jit
def _level_sums(h, th, a, D: tl.constexpr, DA: tl.constexpr, LEVELS: tl.constexpr,
                NEED_A: tl.constexpr):
    """Surrogate sums over the level boundaries ``z_k = h - k theta`` (``k = 1..LEVELS``).

    Returns ``(z_1, sum_k D(z_k), sum_k k D(z_k), D(z_1), sum_k DA(z_k), DA(z_1))``; the last two
    are zero unless ``NEED_A`` (shared by the LIF and ALIF backward kernels; Triton inlines it).
    """
    z = h - th
    d = D(z, a)
    sig = d
    kap = d
    rho = tl.zeros_like(d)
    rho1 = rho
    if NEED_A:
        r = DA(z, a)
        rho = r
        rho1 = r
    for k in tl.static_range(2, LEVELS + 1):
        zk = h - th * k
        dk = D(zk, a)
        sig += dk
        kap += k * dk
        if NEED_A:
            rho += DA(zk, a)
    return z, sig, kap, d, rho, rho1


@triton.jit
def _spike_grads(h, th, a, G, gv, D: tl.constexpr, DA: tl.constexpr, RESET: tl.constexpr,
                 ND: tl.constexpr, LEVELS: tl.constexpr, NEED_A: tl.constexpr):
    """One backward step through the spike count and the reset (shared by LIF and ALIF).

    ``G = dL/ds_t`` (incoming), ``gv = dL/dv_t``. Returns ``dL/dh_t`` (without the direct ``h``
    gradient), the threshold term ``-sum_k k G D(z_k) - G1 D(z_1)`` and the alpha term
    ``G sum_k DA(z_k) + G1 DA(z_1)``; the subtract reset's ``-gv s_t`` threshold term is the
    caller's. ``G1`` is the reset-to-zero path's ``-h gv`` (zero when the reset is detached).
    """
    G1 = tl.zeros_like(h)
    if ND:
        if RESET == 0:
            G = G - th * gv
        elif RESET == 1:
            G1 = -h * gv
    z, sig, kap, sig1, rho, rho1 = _level_sums(h, th, a, D, DA, LEVELS, NEED_A)
    if RESET == 1:
        gh = gv * (1.0 - (z >= 0).to(h.dtype)) + G * sig + G1 * sig1
    else:
        gh = gv + G * sig
    return gh, -(G * kap) - G1 * sig1, G * rho + G1 * rho1


@triton.jit
def _lif_fwd_kernel(X, V0, BETA, TH, S, H, VOUT, DH, n, T,
                    RESET: tl.constexpr, DECAY: tl.constexpr, LEVELS: tl.constexpr,
                    SAVE_D: tl.constexpr, CDT: tl.constexpr, BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    m = offs < n
    v = tl.load(V0 + offs, mask=m, other=0.0).to(CDT)
    b = tl.load(BETA + offs, mask=m, other=1.0).to(CDT)
    th = tl.load(TH + offs, mask=m, other=1.0).to(CDT)
    xp = X + offs
    sp = S + offs
    hp = H + offs
    dp = DH + offs
    if SAVE_D:  # d = h - theta as the torch backend rounds it: both in the output dtype first
        thr = th.to(H.dtype.element_ty).to(CDT)
    for _t in range(T):
        x = tl.load(xp, mask=m, other=0.0).to(CDT)
        if DECAY:
            h = (1.0 - b) * x + b * v
        else:
            h = x + b * v
        s = _count(h, th, LEVELS)
        tl.store(hp, h.to(H.dtype.element_ty), mask=m)
        tl.store(sp, s.to(S.dtype.element_ty), mask=m)
        if SAVE_D:
            hr = h.to(H.dtype.element_ty).to(CDT)
            tl.store(dp, (hr - thr).to(DH.dtype.element_ty), mask=m)
            dp += n
        v = _after_reset(h, s, th, RESET, LEVELS)
        xp += n
        sp += n
        hp += n
    tl.store(VOUT + offs, v.to(VOUT.dtype.element_ty), mask=m)


@triton.jit
def _lif_bwd_kernel(H, X, GS, GH, GV, V0, BETA, TH, ALPHA,
                    GX, GV0, GB, GTH, GA, n, T, last,
                    D: tl.constexpr, DA: tl.constexpr,
                    RESET: tl.constexpr, DECAY: tl.constexpr, LEVELS: tl.constexpr,
                    ND: tl.constexpr, HAS_GS: tl.constexpr, HAS_GH: tl.constexpr,
                    HAS_GV: tl.constexpr, NEED_B: tl.constexpr, NEED_TH: tl.constexpr,
                    NEED_A: tl.constexpr, HOFF: tl.constexpr, CDT: tl.constexpr,
                    BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    m = offs < n
    b = tl.load(BETA + offs, mask=m, other=1.0).to(CDT)
    th = tl.load(TH + offs, mask=m, other=1.0).to(CDT)
    a = tl.load(ALPHA + offs, mask=m, other=1.0).to(CDT)
    v0 = tl.load(V0 + offs, mask=m, other=0.0).to(CDT)
    if HOFF:
        thx = th.to(GX.dtype.element_ty).to(CDT)
    zero = tl.zeros([BLOCK], dtype=CDT)
    if HAS_GV:
        gv = tl.load(GV + offs, mask=m, other=0.0).to(CDT)
    else:
        gv = zero
    acc_b = zero
    acc_th = zero
    acc_a = zero
    hp = H + last + offs
    xp = X + last + offs
    gsp = GS + last + offs
    ghp = GH + last + offs
    gxp = GX + last + offs
    for i in range(T):
        t = T - 1 - i
        h = tl.load(hp, mask=m, other=0.0).to(CDT)
        if HOFF:  # h = d + theta, rounded to x's dtype as the torch backend rebuilds it
            h = (h + thx).to(GX.dtype.element_ty).to(CDT)
        if HAS_GS:
            G = tl.load(gsp, mask=m, other=0.0).to(CDT)
        else:
            G = zero
        gh, gth, gal = _spike_grads(h, th, a, G, gv, D, DA, RESET, ND, LEVELS, NEED_A)
        if HAS_GH:
            gh += tl.load(ghp, mask=m, other=0.0).to(CDT)
        if NEED_TH:
            acc_th += gth
            if RESET == 0:
                acc_th -= gv * _count(h, th, LEVELS)
        if NEED_A:
            acc_a += gal
        if NEED_B:
            has_prev = tl.full([BLOCK], t, tl.int32) > 0
            hprev = tl.load(hp - n, mask=m & has_prev, other=0.0).to(CDT)
            if HOFF:
                hprev = (hprev + thx).to(GX.dtype.element_ty).to(CDT)
            vprev = _after_reset(hprev, _count(hprev, th, LEVELS), th, RESET, LEVELS)
            vprev = tl.where(has_prev, vprev, v0)
            acc_b += gh * vprev
            if DECAY:
                acc_b -= gh * tl.load(xp, mask=m, other=0.0).to(CDT)
        if DECAY:
            gx = (1.0 - b) * gh
        else:
            gx = gh
        tl.store(gxp, gx.to(GX.dtype.element_ty), mask=m)
        gv = b * gh
        hp -= n
        xp -= n
        gsp -= n
        ghp -= n
        gxp -= n
    tl.store(GV0 + offs, gv, mask=m)
    if NEED_B:
        tl.store(GB + offs, acc_b, mask=m)
    if NEED_TH:
        tl.store(GTH + offs, acc_th, mask=m)
    if NEED_A:
        tl.store(GA + offs, acc_a, mask=m)


# ------------------------------------------------------------------------------ launch helpers
_cdt = compute_dtype  # names the ALIF module (and older callers) import from here
_block = block


def _fwd_impl(x: torch.Tensor, v0: torch.Tensor, beta: torch.Tensor, threshold: torch.Tensor,
              reset: int, decay_input: bool, levels: int, save_dtype: Optional[torch.dtype]
              ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    T = x.shape[0]
    n = x[0].numel()
    s = torch.empty_like(x)
    h = torch.empty_like(x)
    v = torch.empty_like(v0)
    d = torch.empty(x.shape if save_dtype is not None else (0,), dtype=save_dtype or x.dtype,
                    device=x.device)
    blk = block(n, x.device)
    grid = (triton.cdiv(n, blk),)
    wrap(_lif_fwd_kernel)[grid](x, v0, beta, threshold, s, h, v, d if save_dtype else h, n, T,
                                RESET=reset, DECAY=decay_input, LEVELS=levels,
                                SAVE_D=save_dtype is not None, CDT=compute_dtype(x.dtype),
                                BLOCK=blk)
    return s, h, v, d


def _bwd_impl(h: torch.Tensor, x: Optional[torch.Tensor], gs: Optional[torch.Tensor],
              gh: Optional[torch.Tensor], gv: Optional[torch.Tensor], v0: torch.Tensor,
              beta: torch.Tensor, threshold: torch.Tensor, alpha: torch.Tensor, family: str,
              reset: int, detach_reset: bool, decay_input: bool, levels: int,
              need: List[bool], h_is_distance: bool
              ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    d, da = FORMS_BY_NAME[family]
    T = h.shape[0]
    n = h[0].numel()
    need_b, need_th, need_a = bool(need[0]), bool(need[1]), bool(need[2])
    pdt, shp, dev = beta.dtype, h.shape[1:], h.device
    gx = torch.empty(h.shape, dtype=v0.dtype, device=dev)  # v0 arrives in x's dtype
    gv0 = torch.empty(shp, dtype=pdt, device=dev)
    gb, gth, ga = (maybe_empty(shp, on, pdt, dev) for on in (need_b, need_th, need_a))
    blk = block(n, dev)
    grid = (triton.cdiv(n, blk),)
    nd = (not detach_reset) and reset != 2
    wrap(_lif_bwd_kernel)[grid](
        h, x if x is not None else h, gs if gs is not None else h, gh if gh is not None else h,
        gv if gv is not None else v0, v0, beta, threshold, alpha, gx, gv0, gb, gth, ga, n, T, (T - 1) * n,
        D=d, DA=da, RESET=reset, DECAY=decay_input, LEVELS=levels, ND=nd,
        HAS_GS=gs is not None, HAS_GH=gh is not None, HAS_GV=gv is not None,
        NEED_B=need_b, NEED_TH=need_th, NEED_A=need_a, HOFF=bool(h_is_distance),
        CDT=compute_dtype(v0.dtype), BLOCK=blk)
    return gx, gv0, gb, gth, ga


# ---------------------------------------------------------------------- torch.library wrapping
@library_op("lif_scan_fwd")
def lif_scan_fwd(x: torch.Tensor, v0: torch.Tensor, beta: torch.Tensor, threshold: torch.Tensor,
                 alpha: torch.Tensor, family: str, reset: int, detach_reset: bool,
                 decay_input: bool, levels: int, save_dtype: Optional[torch.dtype] = None
                 ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Forward op: ``(spikes [T, *S], h [T, *S], v_last [*S], d)``; ``v0``/parameters are ``[*S]``.

    ``d`` is ``h - theta`` rounded to ``save_dtype`` (``[T, *S]``, what the backward keeps
    instead of ``h``) when ``save_dtype`` is given, else an empty ``(0,)`` tensor.
    """
    return _fwd_impl(x, v0, beta, threshold, reset, decay_input, levels, save_dtype)


@library_op("lif_scan_bwd")
def lif_scan_bwd(h: torch.Tensor, x: Optional[torch.Tensor], gs: Optional[torch.Tensor],
                 gh: Optional[torch.Tensor], gv: Optional[torch.Tensor], v0: torch.Tensor,
                 beta: torch.Tensor, threshold: torch.Tensor, alpha: torch.Tensor, family: str,
                 reset: int, detach_reset: bool, decay_input: bool, levels: int,
                 need: List[bool], h_is_distance: bool = False
                 ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Backward op: ``(dx, dv0, dbeta, dtheta, dalpha)`` elementwise (empty when not needed).

    ``h_is_distance``: ``h`` holds the forward's ``d = h - theta`` (any float dtype); the kernel
    rebuilds ``h = d + theta`` in its compute dtype. ``dx`` has ``v0``'s dtype (= ``x``'s).
    """
    return _bwd_impl(h, x, gs, gh, gv, v0, beta, threshold, alpha, family, reset, detach_reset,
                     decay_input, levels, need, h_is_distance)


@lif_scan_fwd.register_fake
def _(x, v0, beta, threshold, alpha, family, reset, detach_reset, decay_input, levels,
      save_dtype=None):
    d = x.new_empty(x.shape if save_dtype is not None else (0,), dtype=save_dtype or x.dtype)
    return torch.empty_like(x), torch.empty_like(x), torch.empty_like(v0), d


@lif_scan_bwd.register_fake
def _(h, x, gs, gh, gv, v0, beta, threshold, alpha, family, reset, detach_reset, decay_input,
      levels, need, h_is_distance=False):
    pdt = beta.dtype
    shp = h.shape[1:]
    mk = lambda on: h.new_empty(shp if on else (0,), dtype=pdt)  # noqa: E731
    return (h.new_empty(h.shape, dtype=v0.dtype), h.new_empty(shp, dtype=pdt), mk(need[0]),
            mk(need[1]), mk(need[2]))


def _setup(ctx, inputs, output):
    x, v0, beta, threshold, alpha, family, reset, detach_reset, decay_input, levels = inputs[:10]
    save_dtype = inputs[10] if len(inputs) > 10 else None
    _, h, _, d = output
    ctx.cfg = (family, reset, detach_reset, decay_input, levels)
    ctx.h_is_distance = save_dtype is not None
    save_x = decay_input and ctx.needs_input_grad[2]
    ctx.save_for_backward(d if save_dtype is not None else h, x if save_x else None, v0, beta,
                          threshold, alpha)
    ctx.v0_dtype = v0.dtype


def _backward(ctx, g_s, g_h, g_v, _g_d):
    h, x, v0, beta, threshold, alpha = ctx.saved_tensors
    family, reset, detach_reset, decay_input, levels = ctx.cfg
    need_x, need_v0, need_b, need_th, need_a = ctx.needs_input_grad[:5]
    if not (need_x or need_v0 or need_b or need_th or need_a):
        return (None,) * 11
    gx, gv0, gb, gth, ga = lif_scan_bwd(
        h, x, dense(g_s), dense(g_h), dense(g_v), v0, beta, threshold, alpha, family, reset,
        detach_reset, decay_input, levels, [bool(need_b), bool(need_th), bool(need_a)],
        ctx.h_is_distance)
    return (gx if need_x else None, gv0.to(ctx.v0_dtype) if need_v0 else None,
            gb if need_b else None, gth if need_th else None, ga if need_a else None,
            None, None, None, None, None, None)


register_autograd(lif_scan_fwd, _backward, _setup)


# ------------------------------------------------------------------------------ the backend fn
def triton_lif_scan(x, v0, beta, threshold, alpha, surrogate, reset, detach_reset, decay_input,
                    levels, relaxed, save_dtype=None):
    """``lif_scan`` backend ``"triton"`` (arguments as in :func:`~surrogate_nets.functional.lif.register_lif_backend`).

    ``save_dtype`` (``torch.bfloat16`` / ``torch.float16``): keep ``d = h - theta`` rounded to it
    for the backward instead of ``h``, as
    :class:`~surrogate_nets.functional.lif_low_mem.LIFScanLowMemFunction` does (the forward
    writes ``d`` next to ``h``; the backward reads the narrow ``d``). ``relaxed=True`` is not
    supported here (the dispatcher never sends it).
    """
    from ..functional.lif import LIFScanResult

    if relaxed:
        raise ValueError("the triton backend does not support relaxed=True; use backend='torch'")
    shape = x.shape[1:]
    pdt = param_dtype(x.dtype)
    alpha = scaled_alpha(alpha, surrogate, x.numel())  # "auto": the whole sequence

    def full(p):
        return expand_param(p, shape, pdt)

    if save_dtype is not None and not (torch.is_grad_enabled() and any(
            t.requires_grad for t in (x, v0, beta, threshold, alpha))):
        save_dtype = None  # no backward will read it: do not write it
    xc = x.contiguous()
    s, h, v, _ = lif_scan_fwd(xc, v0.to(x.dtype).contiguous(), full(beta), full(threshold),
                              full(alpha), surrogate.name, _RESET_CODE[reset], bool(detach_reset),
                              bool(decay_input), int(levels), save_dtype)
    return LIFScanResult(s, h, v.to(v0.dtype) if v0.dtype != v.dtype else v)
