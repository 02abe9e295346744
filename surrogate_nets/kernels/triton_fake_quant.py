r"""Triton fused fake quantizer: op ``"fake_quant"`` (LSQ, LSQ+, PACT, binary; per tensor or channel).

Same numerical contract as :class:`surrogate_nets.quant.fake_quant.FakeQuantFunction` (its module
docstring has the equations): forward ``q = s R((x - b)/s) + b`` with
``R(u) = clamp(floor(u + 1/2), lo, hi)`` (binary: ``2 H(u) - 1``), and one backward kernel that
recomputes ``u`` and writes, per element, ``dL/dx = g R'(u)`` and the terms whose sums are the
step, offset and alpha gradients: ``g (R(u) - u R'(u))`` (PACT: ``g (clamp(u) - u R'(u))``),
``g (1 - R'(u))`` and ``g s dR/dalpha``. ``R'`` is the boxcar ``1[lo <= u < hi]`` for the plain
straight-through case and otherwise the surrogate summed over the level boundaries
``k + 1/2`` (``k = lo .. hi-1``) with the family's Triton form (:mod:`.triton_surrogates`);
families with compact support and a fixed alpha visit only the ``2 r`` boundaries nearest to
``u`` (``r = window_radius``: the dropped terms are exactly zero, the rule of
:mod:`surrogate_nets.functional.staircase`).

Step, offset and alpha arrive expanded to ``x``'s shape (contiguous), so autograd of the expand
reduces the per-element terms to per-tensor or per-channel gradients. float16/bfloat16 compute in
float32; float64 stays float64. CUDA tensors, or CPU tensors under ``TRITON_INTERPRET=1``.

Both directions are ``torch.library`` ops (``surrogate_nets::fake_quant_fwd`` /
``fake_quant_bwd``, made by :mod:`.triton_library`) with registered autograd and fake
implementations, so ``torch.compile`` traces the quantizer as one op per direction.
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch
import triton
import triton.language as tl

from ..functional.staircase import window_radius
from ._common import ScaleGrad
from .triton_library import (compute_dtype, library_op, maybe_empty, param_dtype,
                             register_autograd, wrap)
from .triton_surrogates import FORMS_BY_NAME, form_for

_BLOCK = 256


@triton.jit
def _stair(u, LO: tl.constexpr, HI: tl.constexpr, BINARY: tl.constexpr):
    r = tl.minimum(tl.maximum(tl.floor(u + 0.5), LO), HI)
    if BINARY:
        r = tl.where(u >= 0, 1.0, -1.0).to(u.dtype)
    return r


@triton.jit
def _fq_fwd_kernel(x_ptr, s_ptr, b_ptr, out_ptr, n, LO: tl.constexpr, HI: tl.constexpr,
                   BINARY: tl.constexpr, HAS_B: tl.constexpr, CDT: tl.constexpr,
                   BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    m = offs < n
    x = tl.load(x_ptr + offs, mask=m, other=0.0).to(CDT)
    s = tl.load(s_ptr + offs, mask=m, other=1.0).to(CDT)
    if HAS_B:
        b = tl.load(b_ptr + offs, mask=m, other=0.0).to(CDT)
        u = (x - b) / s
        q = _stair(u, LO, HI, BINARY) * s + b
    else:
        u = x / s
        q = _stair(u, LO, HI, BINARY) * s
    tl.store(out_ptr + offs, q.to(out_ptr.dtype.element_ty), mask=m)


@triton.jit
def _fq_bwd_kernel(g_ptr, x_ptr, s_ptr, b_ptr, a_ptr, gx_ptr, es_ptr, eb_ptr, ea_ptr, n,
                   D: tl.constexpr, DA: tl.constexpr, LO: tl.constexpr, HI: tl.constexpr,
                   SLO: tl.constexpr, SHI: tl.constexpr,
                   BINARY: tl.constexpr, PACT: tl.constexpr, FAST: tl.constexpr,
                   WINDOW: tl.constexpr, HAS_B: tl.constexpr, NEED_S: tl.constexpr,
                   NEED_B: tl.constexpr, NEED_A: tl.constexpr, CDT: tl.constexpr,
                   BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    m = offs < n
    g = tl.load(g_ptr + offs, mask=m, other=0.0).to(CDT)
    x = tl.load(x_ptr + offs, mask=m, other=0.0).to(CDT)
    s = tl.load(s_ptr + offs, mask=m, other=1.0).to(CDT)
    if HAS_B:
        b = tl.load(b_ptr + offs, mask=m, other=0.0).to(CDT)
        u = (x - b) / s
    else:
        u = x / s
    # the boxcar range: codes lo..hi, binary: u in [-1, 1)
    if BINARY:
        mlo = -1.0
        mhi = 1.0
    else:
        mlo = LO * 1.0
        mhi = HI * 1.0
    rho = tl.zeros_like(u)
    if FAST:
        dr = ((u >= mlo) & (u < mhi)).to(CDT)
    else:
        a = tl.load(a_ptr + offs, mask=m, other=1.0).to(CDT)
        # binary: R(u) = 2 R01((u + 1)/2) - 1, so R'(u) = R01'((u + 1)/2)
        if BINARY:
            uu = u * 0.5 + 0.5
        else:
            uu = u
        dr = tl.zeros_like(u)
        if WINDOW > 0:
            base = tl.floor(uu)
            for j in tl.static_range(-WINDOW, WINDOW):
                k = base + j
                ok = ((k >= SLO) & (k < SHI)).to(CDT)
                z = uu - k - 0.5
                dr += D(z, a) * ok
                if NEED_A:
                    rho += DA(z, a) * ok
        else:
            for k in range(SLO, SHI):
                z = uu - (k + 0.5)
                dr += D(z, a)
                if NEED_A:
                    rho += DA(z, a)
    gx = g * dr
    tl.store(gx_ptr + offs, gx.to(gx_ptr.dtype.element_ty), mask=m)
    if NEED_S:
        if PACT:
            r = tl.minimum(tl.maximum(u, mlo), mhi)
        else:
            r = _stair(u, LO, HI, BINARY)
        tl.store(es_ptr + offs, g * (r - u * dr), mask=m)
    if NEED_B:
        tl.store(eb_ptr + offs, g - gx, mask=m)
    if NEED_A:
        if BINARY:
            ea = g * rho * (2.0 * s)
        else:
            ea = g * rho * s
        tl.store(ea_ptr + offs, ea, mask=m)


def _grid(n):
    return (triton.cdiv(n, _BLOCK),)


# ---------------------------------------------------------------------- torch.library wrapping
@library_op("fake_quant_fwd")
def fake_quant_fwd(x: torch.Tensor, s: torch.Tensor, b: Optional[torch.Tensor],
                   a: Optional[torch.Tensor], family: str, lo: int, hi: int, binary: bool,
                   pact: bool, fast: bool, window: int) -> torch.Tensor:
    """Forward op: ``q`` (``x``'s shape and dtype) from ``x`` and the step ``s``, offset ``b``
    (or ``None``) expanded to ``x``'s shape; ``a`` (alpha, expanded, or ``None`` on the boxcar
    path), ``family``, ``pact``, ``fast`` and ``window`` are kept for the backward."""
    out = torch.empty_like(x)
    n = x.numel()
    wrap(_fq_fwd_kernel)[_grid(n)](x, s, x if b is None else b, out, n, LO=lo, HI=hi,
                                   BINARY=binary, HAS_B=b is not None,
                                   CDT=compute_dtype(x.dtype), BLOCK=_BLOCK)
    return out


@library_op("fake_quant_bwd")
def fake_quant_bwd(g: torch.Tensor, x: torch.Tensor, s: torch.Tensor, b: Optional[torch.Tensor],
                   a: Optional[torch.Tensor], family: str, lo: int, hi: int, binary: bool,
                   pact: bool, fast: bool, window: int, need_s: bool, need_b: bool,
                   need_a: bool) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Backward op: ``(dL/dx, step terms, offset terms, alpha terms)``, all ``x``'s shape (the
    terms in the compute dtype; an empty ``(0,)`` tensor where not needed)."""
    d, da = FORMS_BY_NAME[family]
    n = x.numel()
    pdt = param_dtype(x.dtype)
    gx = torch.empty_like(x)
    es, eb, ea = (maybe_empty(x.shape, on, pdt, x.device) for on in (need_s, need_b, need_a))
    wrap(_fq_bwd_kernel)[_grid(n)](
        g, x, s, x if b is None else b, x if a is None else a, gx, es, eb, ea, n, D=d, DA=da,
        LO=lo, HI=hi, SLO=0 if binary else lo, SHI=1 if binary else hi, BINARY=binary,
        PACT=pact, FAST=fast, WINDOW=window, HAS_B=b is not None, NEED_S=need_s, NEED_B=need_b,
        NEED_A=need_a, CDT=compute_dtype(x.dtype), BLOCK=_BLOCK)
    return gx, es, eb, ea


@fake_quant_fwd.register_fake
def _(x, s, b, a, family, lo, hi, binary, pact, fast, window):
    return torch.empty_like(x)


@fake_quant_bwd.register_fake
def _(g, x, s, b, a, family, lo, hi, binary, pact, fast, window, need_s, need_b, need_a):
    pdt = param_dtype(x.dtype)
    mk = lambda on: x.new_empty(x.shape if on else (0,), dtype=pdt)  # noqa: E731
    return torch.empty_like(x), mk(need_s), mk(need_b), mk(need_a)


def _setup(ctx, inputs, output):
    x, s, b, a = inputs[:4]
    ctx.cfg = inputs[4:]
    ctx.save_for_backward(x, s, b, a)


def _backward(ctx, g):
    x, s, b, a = ctx.saved_tensors
    need_x, need_s, need_b, need_a = ctx.needs_input_grad[:4]
    fast = ctx.cfg[5]
    need_a = bool(need_a) and not fast
    if g is None or not (need_x or need_s or need_b or need_a):
        return (None,) * 11
    gx, es, eb, ea = fake_quant_bwd(g.contiguous(), x, s, b, a, *ctx.cfg, bool(need_s),
                                    bool(need_b), need_a)
    return (gx if need_x else None, es.to(s.dtype) if need_s else None,
            eb.to(b.dtype) if need_b else None, ea.to(a.dtype) if need_a else None) + (None,) * 7


register_autograd(fake_quant_fwd, _backward, _setup)


# ------------------------------------------------------------------------------ the backend fn
def triton_fake_quant(x, step, offset, alpha, surrogate, lo, hi, binary, pact, fast, grad_scale):
    """``fake_quant`` backend ``"triton"`` (arguments as the ``"torch"`` backend's)."""
    from ..surrogate import families as fam
    from ._common import grad_scale as alpha_scale

    if form_for(surrogate) is None and not fast:
        raise ValueError(f"surrogate family {type(surrogate).__name__} has no Triton form")
    # the boxcar path needs no family form: any built-in name selects the kernel
    family = surrogate.name if form_for(surrogate) is not None else fam.StraightThrough.name
    shape = x.shape
    pdt = param_dtype(x.dtype)

    def full(p, scale=None):
        p = p.to(pdt)
        if scale is not None and scale != 1.0 and p.requires_grad:
            p = ScaleGrad.apply(p, scale)
        return p.expand(shape).contiguous()

    g = float(grad_scale)
    s = full(step, g)
    b = None if offset is None else full(offset, g)
    a = None
    win = 0
    if not fast:
        sc = alpha_scale(surrogate, x.numel(), alpha.numel())
        a = full(alpha, sc)
        r = window_radius(surrogate, False)
        if alpha.requires_grad and window_radius(surrogate, True) is None:
            r = None  # d_alpha summed over every boundary: one loop for both sums
        slo, shi = (0, 1) if binary else (lo, hi)
        win = r if (r is not None and shi - slo > 2 * r) else 0
    return fake_quant_fwd(x.contiguous(), s, b, a, family, int(lo), int(hi), bool(binary),
                          bool(pact), bool(fast), int(win))
