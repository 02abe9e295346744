r"""The fused fake quantizer: one autograd Function for LSQ, LSQ+, PACT and binary grids.

For an input ``x``, a positive step ``s`` (per tensor or per channel), an optional offset ``b``
and an integer range ``[lo, hi]``:

.. math::
    u = (x - b) / s,\qquad q = s\,R(u) + b,\qquad
    R(u) = \mathrm{clamp}(\lfloor u + \tfrac12 \rfloor,\ lo,\ hi)

``R`` is the staircase of :func:`surrogate_nets.functional.staircase`: exact in the forward pass,
differentiated through a surrogate summed over its level boundaries in the backward pass
(:func:`surrogate_nets.functional.staircase.boundary_sums`).
Every other dependency is differentiated exactly, written out here in closed form:

.. math::
    \partial q/\partial x = R'(u),\qquad
    \partial q/\partial s = R(u) - u\,R'(u),\qquad
    \partial q/\partial b = 1 - R'(u),\qquad
    \partial q/\partial \alpha = s\,\partial_\alpha R(u)

With the boxcar straight-through surrogate, ``R'(u) = 1[lo <= u < hi]`` and these are LSQ's
gradients (Esser et al., "Learned step size quantization", ICLR 2020) and LSQ+'s offset gradient
(Bhalgat et al., "LSQ+", CVPR-W 2020), clip-then-round.

Why a fused Function rather than ``s * staircase(x / s)``: autograd through the composition saves
``x``, ``u`` and ``R(u)`` (three tensors the size of ``x``) and runs about twice as many passes in
the backward. This Function saves only its input ``x`` (shared with whoever else keeps it: a
weight, a ReLU output) and recomputes ``u`` in the backward; the plain boxcar case (the default
``"straight_through"`` surrogate) skips the surrogate machinery and uses one fused masking kernel.
It is tested to agree with :func:`surrogate_nets.functional.quantize` (and hence with autograd
through the staircase) for every surrogate, gradients of ``x``, ``s`` and ``alpha`` included.

Precision: the math runs in ``x``'s dtype (step/offset gradients are accumulated in float32 for
half types). bfloat16 keeps 8 significant bits, so ``u = x / s`` is itself rounded to about
1/256 relative, which blurs the code boundaries at 7-8 bits; float16 holds integer codes exactly
only up to 2048. Quantize in float32 where the exact grid matters. Where the codes ``lo..hi``
exceed the half type's exact integers (float16: more than 2048, i.e. 12 bits and up, including
16-bit unsigned codes beyond float16's range; bfloat16: more than 256) the modules and
:func:`fake_quantize` compute in float32 and round the result once to the input dtype
(:func:`compute_dtype`).

Two variants of the grid and of the step gradient:

* ``binary=True``: the 1-bit signed grid ``{-s, +s}``, ``q = s * sign(x - b)`` with
  ``sign(0) = +1``. It is the one-level staircase on the grid of spacing 2 shifted by -1,
  ``R_\pm(u) = 2 H(u) - 1 = 2 R_{0,1}((u + 1)/2) - 1``, so ``R_\pm'(u) = R_{0,1}'((u+1)/2)`` (the
  boxcar: ``1[-1 <= u < 1]``, the clipped STE of BinaryConnect / XNOR-Net style binarisation).
* ``pact=True``: the step gradient drops the rounding residual, ``dq/ds = clamp(u, lo, hi) - u R'(u)``
  (PACT, Choi et al. 2018: straight-through over the rounding, exact over the clip). With the
  boxcar this is ``hi * 1[u >= hi] + lo * 1[u < lo]``, so a clip ``c = hi * s`` gets
  ``dq/dc = 1[x >= c]`` for an unsigned quantizer.

No host synchronisation happens in forward or backward: the step-gradient scale ``grad_scale`` is
a Python float computed from shapes, and every branch is decided from Python values.
"""

from __future__ import annotations

import math
from typing import Optional, Union

import torch

from .._validate import (check_broadcast, check_float_tensor, check_int, check_positive,
                         check_same_device, sum_to_shape)
from ..functional import backends as _backends
from ..functional._function import FunctionalFunction
from ..functional.staircase import _below  # noqa: F401  (old private name)
from ..functional.staircase import boundary_sums, boxcar_grad, exact_staircase_, is_unit_boxcar
from ..surrogate import Surrogate
from ..surrogate.helpers import alpha_for, alpha_grad, resolve_surrogate

#: Deprecated name of :func:`surrogate_nets.functional.staircase.is_unit_boxcar` (the one predicate).
unit_box_ste = is_unit_boxcar
_stair_ = exact_staircase_  # old private names
_boxcar_grad = boxcar_grad

_HALF = (torch.float16, torch.bfloat16)
#: the largest integer up to which every integer is exactly representable in a half type
_EXACT_INT = {torch.float16: 2048, torch.bfloat16: 256}


def compute_dtype(x: torch.Tensor, lo: int, hi: int) -> torch.dtype:
    """The dtype the fake quantizer computes in: ``x``'s, or float32 for a half type whose exact
    integers (2048 for float16, 256 for bfloat16) do not cover the codes ``lo..hi``.

    Without it, 16-bit unsigned codes (up to 65535) overflow float16's range (65504) and codes above
    2048 (256) are no longer distinct values of ``u = x / s``; the result is rounded once to ``x``'s
    dtype, gradients come back in ``x``'s dtype.
    """
    if x.dtype in _HALF and max(-lo, hi) > _EXACT_INT[x.dtype]:
        return torch.float32
    return x.dtype


def lsq_grad_scale(n: int, q_p: int) -> float:
    r"""LSQ's step-gradient scale :math:`g = 1/\sqrt{N\,Q_P}` (Esser et al., ICLR 2020, Sec. 2.2).

    ``N`` is the number of elements one step value quantizes (the paper: weights per layer, or
    features per layer for activations), ``Q_P`` the largest positive level.
    """
    return 1.0 / math.sqrt(max(int(n), 1) * max(int(q_p), 1))


def lsq_init_step(x: torch.Tensor, q_p: int, dim: Optional[int] = None,
                  offset: Optional[torch.Tensor] = None) -> torch.Tensor:
    r"""LSQ's initial step :math:`s_0 = 2\,\mathrm{mean}|x - b| / \sqrt{Q_P}` (Esser et al., ICLR 2020).

    Per tensor (``dim=None``, returns ``[]``) or per channel along ``dim`` (returns ``[C]``).
    Computed on the device, no host read. ``offset`` (broadcastable to ``x``) is subtracted first.
    """
    with torch.no_grad():
        a = (x if offset is None else x - offset).detach().abs()
        if dim is None:
            m = a.float().mean()
        else:
            d = dim % x.dim()
            others = tuple(i for i in range(x.dim()) if i != d)
            m = a.float().mean(dim=others) if others else a.float()
        return (2.0 / math.sqrt(max(int(q_p), 1))) * m


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``sum(a * b)`` in one pass without a temporary (float32 accumulation for half types)."""
    a = a.reshape(-1)
    b = b.reshape(-1)
    if a.dtype in _HALF:
        return torch.dot(a.float(), b.float())
    return torch.dot(a, b)


def _sum(t: torch.Tensor, shape) -> torch.Tensor:
    """``t`` summed to ``shape`` (float32 accumulation for half types)."""
    if t.dtype in _HALF:
        t = t.float()
    if len(shape) == 0 or math.prod(shape) == 1:
        return t.sum().reshape(shape)
    return sum_to_shape(t, shape)


def _scaled(x: torch.Tensor, s: torch.Tensor, b: Optional[torch.Tensor]) -> torch.Tensor:
    """``u = (x - b) / s`` as a new tensor (the forward and the backward compute it identically)."""
    return x / s if b is None else (x - b).div_(s)


class FakeQuantFunction(FunctionalFunction):
    r"""``q = s R((x - b)/s) + b`` forward; closed-form surrogate gradients backward (see module doc).

    Plain autograd only (in-place buffers in forward and backward; no ``torch.func`` support and
    no double backward): for ``torch.func.grad``/``vmap`` use the composed
    :func:`surrogate_nets.functional.quantize`, whose :class:`StaircaseFunction` supports them.
    It is the ``"torch"`` backend of op ``"fake_quant"`` (:mod:`surrogate_nets.functional.backends`).

    Inputs: ``x [*]``; ``step`` and ``offset`` (or ``None``) broadcastable to ``x`` (any float
    dtype; the math runs in ``x``'s dtype, their gradients come back in their own dtype);
    ``alpha`` the surrogate's alpha; Python values ``surrogate, lo, hi, binary, pact, fast,
    grad_scale`` (``fast``: use the boxcar mask; ``grad_scale``: factor on the step and offset
    gradients).

    Memory: saves the input ``x`` itself (plus the small step/offset/alpha tensors) and recomputes
    ``u = (x - b)/s`` in the backward, bitwise as in the forward. Saving the input rather than
    ``u`` costs nothing extra when the input is alive anyway (a weight, or the output of a ReLU
    that saved it), and lets the forward compute the output in place in ``u``: one allocation
    in the forward.

    The step gradient ``sum(grad * e)`` uses the per-element ``e = R(u) - u R'(u)``, so the
    in-range terms are the rounding residuals themselves rather than the difference of two large
    sums. The boxcar path computes ``grad * 1[lo <= u < hi]`` and ``u * 1[lo <= u < hi]`` with the
    fused ``hardtanh_backward`` kernel (boolean masks and ``torch.where`` are several times slower
    on CPU) and allocates three tensors the size of ``x`` in the backward (``u``, ``gx`` and one
    temporary): fresh large allocations cost page faults, so their count matters as much as
    the number of passes.
    """

    @staticmethod
    def forward(x, step, offset, alpha, surrogate, lo, hi, binary, pact, fast, grad_scale):
        s = step.to(x.dtype)
        b = None if offset is None else offset.to(x.dtype)
        out = exact_staircase_(_scaled(x, s, b), lo, hi, binary).mul_(s)
        if b is not None:
            out = out.add_(b)
        return out

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, step, offset, alpha, surrogate, lo, hi, binary, pact, fast, grad_scale = inputs
        ctx.surrogate = surrogate
        ctx.cfg = (lo, hi, binary, pact, fast, grad_scale)
        ctx.save_for_backward(x, step, offset, alpha)

    @staticmethod
    def backward(ctx, grad):
        x, step, offset, alpha = ctx.saved_tensors
        lo, hi, binary, pact, fast, g = ctx.cfg
        sur = ctx.surrogate
        need_x, need_s, need_b, need_a = ctx.needs_input_grad[:4]
        grad = grad.to(x.dtype)
        u = _scaled(x, step.to(x.dtype), None if offset is None else offset.to(x.dtype))
        # the range where the boxcar passes: codes lo..hi, binary: u in [-1, 1)
        mlo, mhi = (-1, 1) if binary else (lo, hi)

        gs = gb = ga = gx = None
        if fast:
            if need_x or need_b:
                gx = boxcar_grad(grad, u, mlo, mhi)  # grad * R'(u)
            if need_b:
                # dq/db = 1 - R'(u)
                gb = _sum(grad - gx, offset.shape if offset.numel() > 1 else ())
            if need_s:
                # e = dq/ds = R(u) - u R'(u)   (PACT: clamp(u, lo, hi) - u R'(u)), per element,
                # so in range it is the rounding residual itself; u is consumed in place
                um = boxcar_grad(u, u, mlo, mhi)  # u * 1[in range], fused
                e = (u.clamp_(mlo, mhi) if pact else exact_staircase_(u, lo, hi, binary)).sub_(um)
                gs = _dot(grad, e) if step.numel() == 1 else _sum(grad * e, step.shape)
        else:
            # binary: R(u) = 2 R01((u + 1)/2) - 1, so R'(u) = R01'((u + 1)/2), dR/dalpha = 2 dR01/dalpha
            uu, slo, shi = (u.mul(0.5).add_(0.5), 0, 1) if binary else (u, lo, hi)
            a = alpha.to(u.dtype)
            need_d = need_x or need_s or need_b
            sums = boundary_sums(sur, uu, a, slo, shi, derivative=need_d, wrt_alpha=need_a)
            if need_a:
                # dq/dalpha = s * dR/dalpha
                s = step.to(u.dtype)
                ga = alpha_grad(sur, grad * sums.rho * (2 * s if binary else s), alpha)
            if need_d:
                dr = sums.sigma
                gx = grad * dr
                if need_b:
                    gb = _sum(grad - gx, offset.shape if offset.numel() > 1 else ())
                if need_s:
                    r = u.clamp(mlo, mhi) if pact else exact_staircase_(u.clone(), lo, hi, binary)
                    e = r.addcmul_(u, dr, value=-1)
                    gs = _dot(grad, e) if step.numel() == 1 else _sum(grad * e, step.shape)
        if gs is not None:
            gs = (gs * g if g != 1.0 else gs).reshape(step.shape).to(step.dtype)
        if gb is not None:
            gb = (gb * g if g != 1.0 else gb).reshape(offset.shape).to(offset.dtype)
        return (gx if need_x else None), gs, gb, ga, None, None, None, None, None, None, None


def _fake_quant_torch(x, step, offset, alpha, surrogate, lo, hi, binary, pact, fast, grad_scale):
    return FakeQuantFunction.apply(x, step, offset, alpha, surrogate, lo, hi, binary, pact, fast,
                                   grad_scale)


_backends.register_backend("fake_quant", "torch", _fake_quant_torch, auto=False)


def fake_quantize(x: torch.Tensor, step: torch.Tensor, lo: int, hi: int,
                  surrogate: Union[str, Surrogate, None] = "straight_through",
                  offset: Optional[torch.Tensor] = None, *, binary: bool = False,
                  pact: bool = False, grad_scale: float = 1.0) -> torch.Tensor:
    r"""Functional form of the fused fake quantizer (the modules in this package call the Function).

    Shapes, dtypes and devices are checked; the *values* of ``step`` are not (that would read the
    device): keep it positive by parametrisation.

    .. math:: q = s\,\mathrm{clamp}(\lfloor (x - b)/s + \tfrac12 \rfloor, lo, hi) + b

    Args:
        x: ``[*]`` floating tensor.
        step: positive tensor broadcastable to ``x`` (per tensor ``[]`` or per channel).
        lo, hi: integer range of the codes (see :func:`surrogate_nets.functional.level_range`).
        surrogate: a :class:`~surrogate_nets.surrogate.Surrogate`, a registry name, or ``None`` (ATan).
        offset: optional offset ``b`` broadcastable to ``x`` (LSQ+).
        binary: the ``{-s, +s}`` grid instead of ``[lo, hi]`` (``lo, hi`` ignored).
        pact: PACT step gradient (rounding residual dropped).
        grad_scale: factor on the step and offset gradients (LSQ's ``g``).

    Returns:
        ``[*]`` tensor in ``x``'s dtype.
    """
    check_float_tensor(x, "x")
    for name, t in (("step", step), ("offset", offset)):
        if t is None and name == "offset":
            continue
        check_float_tensor(t, name)
        check_broadcast(t, name, x.shape, "x")
        if t.dim() > 0 or t.device.type != "cpu":
            check_same_device(t, name, x, "x")
    lo, hi = check_int(lo, "lo"), check_int(hi, "hi")
    if not binary and not lo < hi:
        raise ValueError(f"need lo < hi, got lo={lo}, hi={hi}")
    check_positive(grad_scale, "grad_scale")
    sur = resolve_surrogate(surrogate)
    xc = x.to(compute_dtype(x, lo, hi))  # half types with wide codes: float32, rounded once
    return _backends.dispatch("fake_quant", "auto", x=xc, step=step, offset=offset,
                              alpha=alpha_for(sur, x), surrogate=sur, lo=lo, hi=hi,
                              binary=bool(binary), pact=bool(pact), fast=is_unit_boxcar(sur),
                              grad_scale=float(grad_scale)).to(x.dtype)


def int_codes(x: torch.Tensor, step: torch.Tensor, lo: int, hi: int,
              offset: Optional[torch.Tensor] = None, binary: bool = False,
              dtype: torch.dtype = torch.int32) -> torch.Tensor:
    """The integer codes ``k`` of :func:`fake_quantize`, so that ``q == k * s + b`` exactly."""
    with torch.no_grad():
        x = x.to(compute_dtype(x, lo, hi))
        b = None if offset is None else offset.to(x.dtype)
        return exact_staircase_(_scaled(x, step.to(x.dtype), b), lo, hi, binary).to(dtype)
