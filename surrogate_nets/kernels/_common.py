"""Pieces shared by the fused backends (no triton / numba imports here)."""

from __future__ import annotations

from typing import Optional

import numpy as np
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


def cb(beta: torch.Tensor, decay_input: bool) -> np.ndarray:
    """The input factor ``1 - beta`` (decay_input) or ones, per neuron, in numpy: the same
    float operation as torch's, in the calling thread (no OpenMP fork for large layers)."""
    b = beta.detach().numpy()
    return (1 - b) if decay_input else np.ones_like(b)


def per_neuron(p: torch.Tensor, shape, n: int, dtype: torch.dtype):
    """``(tensor, const)``: a parameter as a contiguous ``[n]`` tensor of ``dtype``, and its value
    when that tensor is one constant (a non-differentiable scalar), else ``None``.

    Differentiable parameters are expanded in torch (autograd reduces their gradient back to
    ``p``'s shape); the others are built in numpy, in the calling thread (torch's OpenMP-parallel
    fill/copy of a large layer was measured to take milliseconds on shared cores)."""
    if p.requires_grad:
        return expand_param(p, shape, dtype).view(n), None
    a = p.detach().to(dtype)
    if a.numel() == 1:
        c = a.item()
        return torch.from_numpy(np.full(n, c, dtype=a.numpy().dtype)), c
    arr = np.ascontiguousarray(np.broadcast_to(a.numpy(), tuple(shape))).reshape(n)
    return torch.from_numpy(arr), None
