"""The spike: exact Heaviside forward, surrogate backward."""

from __future__ import annotations

from typing import Union

import torch

from .._validate import check_float_tensor
from ..surrogate import Surrogate
from ._common import alpha_for, alpha_grad, auto_numel, resolve_surrogate


class SpikeFunction(torch.autograd.Function):
    """``H(x)`` forward; ``grad * derivative(x)`` and ``sum(grad * d_alpha(x))`` backward.

    Saves only ``x`` (and the small alpha tensor) for backward; skips the gradients that
    ``ctx.needs_input_grad`` does not ask for. With ``relaxed=True`` the forward returns the
    relaxation ``primitive(x)`` instead (the backward is the same), which makes the backward
    checkable by finite differences.
    """

    @staticmethod
    def forward(ctx, x, alpha, surrogate: Surrogate, relaxed: bool = False):
        ctx.surrogate, ctx.numel = surrogate, auto_numel()
        ctx.save_for_backward(x, alpha)
        if relaxed:
            return surrogate.primitive(x, alpha.to(x.dtype))
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        x, alpha = ctx.saved_tensors
        s = ctx.surrogate
        a = alpha.to(x.dtype)
        gx = ga = None
        if ctx.needs_input_grad[0]:
            gx = grad * s.derivative(x, a)
        if ctx.needs_input_grad[1]:
            ga = alpha_grad(s, grad * s.d_alpha(x, a), alpha, ctx.numel)
        return gx, ga, None, None


def spike(x: torch.Tensor, surrogate: Union[str, Surrogate, None] = None, relaxed: bool = False) -> torch.Tensor:
    r"""Heaviside spike with a surrogate gradient.

    .. math::
        s = H(x) = \mathbb{1}[x \ge 0],\qquad
        \frac{\partial s}{\partial x} := P'(x;\alpha),\qquad
        \frac{\partial s}{\partial \alpha} := \partial_\alpha P(x;\alpha)

    Tie convention: ``x == 0`` spikes (``H(0) = 1``), so ``spike(v - threshold)`` fires when the
    membrane reaches the threshold, as in SpikingJelly and snnTorch.

    Args:
        x: any shape ``[*]``, floating dtype (float16, bfloat16, float32, float64), any device.
        surrogate: a :class:`~surrogate_nets.surrogate.Surrogate` (its alpha may be learnable
            and per-channel: broadcastable to ``x``), a registry name, or ``None`` for ``ATan(2)``.
        relaxed: return ``primitive(x)`` in the forward instead of the exact step.

    Returns:
        ``[*]`` tensor of 0.0/1.0 in ``x``'s dtype.

    Reference: Neftci, Mostafa & Zenke, "Surrogate gradient learning in spiking neural networks",
    IEEE Signal Processing Magazine 2019.
    """
    check_float_tensor(x, "x")
    s = resolve_surrogate(surrogate)
    return SpikeFunction.apply(x, alpha_for(s, x), s, bool(relaxed))
