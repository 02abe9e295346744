"""Pieces shared by the fused backends (no triton / numba imports here)."""

from __future__ import annotations

from typing import Optional

import torch


class ScaleGrad(torch.autograd.Function):
    """Identity forward; multiplies the gradient by ``scale`` (a surrogate's ``grad_scale``)."""

    @staticmethod
    def forward(ctx, t, scale: float):
        ctx.scale = scale
        return t.view_as(t)

    @staticmethod
    def backward(ctx, g):
        return g * ctx.scale, None


def grad_scale(surrogate, n_state: int, n_alpha: int) -> Optional[float]:
    """The factor :func:`~surrogate_nets.functional._common.alpha_grad` applies to alpha's gradient.

    ``"auto"`` is ``1 / sqrt(n_state / numel(alpha))`` with ``n_state`` the elements one call sums
    over: the whole ``[T, B, ...]`` input of a scan (as the torch backends count it).
    """
    scale = surrogate.grad_scale
    if scale == "auto":
        return 1.0 / max(n_state / max(n_alpha, 1), 1.0) ** 0.5
    return None if scale is None else float(scale)


def scaled_alpha(alpha: torch.Tensor, surrogate, n_state: int) -> torch.Tensor:
    """``alpha`` whose gradient is scaled as the torch backend scales it."""
    scale = grad_scale(surrogate, n_state, alpha.numel())
    if scale is not None and alpha.requires_grad:
        return ScaleGrad.apply(alpha, scale)
    return alpha


def expand_param(p: torch.Tensor, shape, dtype: torch.dtype) -> torch.Tensor:
    """A parameter broadcast to the state shape as a contiguous tensor (autograd reduces it back)."""
    return p.to(dtype).expand(shape).contiguous()
