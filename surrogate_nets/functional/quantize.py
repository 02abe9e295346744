"""The k-level quantizer: exact staircase forward, surrogate summed over level boundaries backward."""

from __future__ import annotations

from typing import Tuple, Union

import torch

from .._validate import check_broadcast, check_float_tensor, check_int, check_positive, check_same_device
from ..surrogate import Surrogate
from ..surrogate.helpers import alpha_for, alpha_grad, resolve_surrogate
from ._function import FunctionalFunction
from .staircase import round_half_up  # noqa: F401  (re-exported: functional.round_half_up)
from .staircase import (
    boundary_sums, boxcar_grad, exact_staircase, is_unit_boxcar, relaxed_staircase,
)


def level_range(levels: int, signed: bool) -> Tuple[int, int]:
    """The integer range ``(lo, hi)`` of a quantizer with ``levels`` steps.

    Unsigned: ``(0, levels)``. Signed: ``(-ceil(levels/2), floor(levels/2))``, i.e. two's
    complement for ``levels = 2**b - 1`` (``b = 4``: ``-8..7``), symmetric for even ``levels``
    (``levels = 2``: ternary ``-1, 0, 1``).
    """
    check_int(levels, "levels", minimum=1)
    if signed:
        return -((levels + 1) // 2), levels // 2
    return 0, int(levels)


class StaircaseFunction(FunctionalFunction):
    r"""``R(u) = clamp(floor(u + 1/2), lo, hi)`` forward; surrogate sum over boundaries backward.

    ``apply(u, alpha, surrogate, lo, hi, relaxed=False)``:

    .. math::
        R'(u) := \sum_{k=lo}^{hi-1} P'(u - k - \tfrac12),\qquad
        \partial_\alpha R := \sum_{k=lo}^{hi-1} \partial_\alpha P(u - k - \tfrac12)

    (:func:`~surrogate_nets.functional.staircase.boundary_sums`: exact, with the boxcar fast
    path). ``relaxed=True`` returns ``lo + sum_k P(u - k - 1/2)`` in the forward (DSQ-style soft
    staircase). Written in the ``forward`` + ``setup_context`` form with
    ``generate_vmap_rule = True``: ``torch.func.grad``/``vjp``/``vmap`` work through it.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(u, alpha, surrogate: Surrogate, lo: int, hi: int, relaxed: bool = False):
        if relaxed:
            return relaxed_staircase(surrogate, u, alpha.to(u.dtype), lo, hi, offset=float(lo))
        return exact_staircase(u, lo, hi)

    @staticmethod
    def setup_context(ctx, inputs, output):
        u, alpha, surrogate, lo, hi = inputs[:5]
        ctx.surrogate, ctx.lo, ctx.hi = surrogate, lo, hi
        ctx.save_for_backward(u, alpha)

    @staticmethod
    def backward(ctx, grad):
        u, alpha = ctx.saved_tensors
        s, lo, hi = ctx.surrogate, ctx.lo, ctx.hi
        need_u, need_a = ctx.needs_input_grad[:2]
        gu = ga = None
        if need_u and is_unit_boxcar(s):
            gu = boxcar_grad(grad, u, lo, hi)
            need_u = False
        if need_u or need_a:
            sums = boundary_sums(s, u, alpha.to(u.dtype), lo, hi, derivative=need_u, wrt_alpha=need_a)
            if need_u:
                gu = grad * sums.sigma
            if need_a:
                ga = alpha_grad(s, grad * sums.rho, alpha)
        return gu, ga, None, None, None, None


def _check_signed(signed) -> bool:
    if not isinstance(signed, bool):
        raise TypeError(f"signed must be a bool (True or False), got {type(signed).__name__} {signed!r}")
    return signed


def staircase(u: torch.Tensor, levels: int, surrogate: Union[str, Surrogate, None] = None,
              signed: bool = False, relaxed: bool = False) -> torch.Tensor:
    """The integer staircase ``clamp(round_half_up(u), lo, hi)`` with a surrogate gradient (see :func:`quantize`)."""
    check_float_tensor(u, "u")
    lo, hi = level_range(levels, _check_signed(signed))
    if u.dtype in (torch.float16, torch.bfloat16) and max(-lo, hi) > torch.finfo(u.dtype).max:
        raise ValueError(f"levels={levels} gives codes {lo}..{hi}, beyond the largest {u.dtype} value "
                         f"{torch.finfo(u.dtype).max:g}; pass u in float32 (quantize does this itself)")
    s = resolve_surrogate(surrogate)
    return StaircaseFunction.apply(u, alpha_for(s, u, "u"), s, lo, hi, bool(relaxed))


def quantize(x: torch.Tensor, step: Union[float, torch.Tensor], levels: int,
             surrogate: Union[str, Surrogate, None] = "straight_through", signed: bool = False,
             relaxed: bool = False) -> torch.Tensor:
    r"""Uniform k-level quantizer with a surrogate gradient.

    .. math::
        q(x) = s \cdot R(x / s),\qquad R(u) = \mathrm{clamp}(\lfloor u + \tfrac12 \rceil, lo, hi)

    ``R`` is the only non-differentiable op (an autograd Function: exact forward, the surrogate
    summed over the level boundaries ``k + 1/2`` backward). The division and multiplication by
    the step ``s`` are differentiated exactly by autograd, so with the ``straight_through``
    surrogate (boxes of width 1 tiling ``[lo, hi)``) the gradients are LSQ's (Esser et al.,
    ICLR 2020), clip-then-round:

    .. math::
        \partial q/\partial x = \mathbb{1}[lo \le x/s < hi],\qquad
        \partial q/\partial s = \begin{cases} R(x/s) - x/s & lo \le x/s < hi\\ lo \text{ or } hi & \text{outside}\end{cases}

    Ties round half up (``floor(u + 1/2)``), so ``quantize(x, 1, 1, s)`` equals
    ``spike(x - 1/2, s)`` exactly, gradients included. Signed range: see :func:`level_range`.

    Differences to know:
      * A fully relaxed staircase ``s * (lo + sum_k P(x/s - k - 1/2))`` (DSQ, Gong et al. ICCV
        2019; ``relaxed=True``) also relaxes the *forward* value that multiplies ``s``, so its
        step gradient is ``sum_k P(.) - (x/s) sum_k P'(.)`` rather than ``R(x/s) - (x/s) R'``.
      * ``torch.fake_quantize_per_tensor_affine`` / ``torch._fake_quantize_learnable_*`` decide
        saturation after rounding: for ``x/s`` in ``[hi, hi + 1/2)`` (and ``[lo - 1/2, lo)``)
        they pass the gradient and give the step gradient ``R - x/s`` where we, clipping first,
        give ``0`` and ``hi`` (``lo``). Elsewhere the two agree.

    Args:
        x: ``[*]`` floating tensor.
        step: positive float (checked) or positive tensor broadcastable to ``x`` (per-channel,
            possibly learnable; its values are not read, so keep it positive by parametrisation).
        levels: number of steps ``hi - lo`` (>= 1); ``2**bits - 1`` for ``bits`` bits.
        surrogate: instance, name or ``None`` (ATan); default ``"straight_through"``.
        signed: unsigned ``0..levels`` or signed (see :func:`level_range`).
        relaxed: DSQ-style soft forward (for checking gradients and annealing).

    Returns:
        ``[*]`` tensor on the grid ``{k * step : lo <= k <= hi}`` in ``x``'s dtype.

    float16/bfloat16 inputs are quantized in float32 and the result rounded once to ``x``'s dtype
    (the step gradient ``-x/s^2`` overflows float16 for steps below ~0.01, and codes beyond the
    half type's range would overflow); gradients come back in the dtypes of ``x`` and ``step``.
    """
    check_float_tensor(x, "x")
    if isinstance(step, torch.Tensor):
        # A tensor step is kept positive by its owner's parametrisation; reading its values
        # here would be a host sync in every forward (and a graph break under torch.compile).
        check_float_tensor(step, "step")
        check_broadcast(step, "step", x.shape, "x")
        if step.dim() > 0 or step.device.type != "cpu":
            check_same_device(step, "step", x, "x")
    else:
        check_positive(step, "step")
    if x.dtype in (torch.float16, torch.bfloat16):
        # half types: d(x/s)/ds = -x/s^2 overflows float16 for small steps (NaN step gradient) and
        # large level counts overflow the clamp; compute in float32 and round the result once.
        sf = step.float() if isinstance(step, torch.Tensor) else step
        return quantize(x.float(), sf, levels, surrogate, signed, relaxed).to(x.dtype)
    u = x / step
    return staircase(u, levels, surrogate, signed, relaxed) * step
