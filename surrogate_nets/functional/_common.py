"""Helpers shared by the surrogate autograd Functions."""

from __future__ import annotations

import math
from typing import Union

import torch

from .._validate import check_broadcast, check_same_device, sum_to_shape
from ..surrogate import Surrogate, get


def resolve_surrogate(surrogate: Union[str, Surrogate, None]) -> Surrogate:
    """A :class:`Surrogate` from an instance, a registry name, or ``None`` (ATan, alpha 2)."""
    if surrogate is None:
        return get("atan")
    return get(surrogate)


def alpha_for(surrogate: Surrogate, x: torch.Tensor, name: str = "x") -> torch.Tensor:
    """The surrogate's alpha, checked to broadcast against ``x`` and to live on its device."""
    alpha = surrogate.alpha
    check_broadcast(alpha, "surrogate alpha", x.shape, name)
    if alpha.dim() > 0 or alpha.device.type != "cpu":
        check_same_device(alpha, "surrogate alpha", x, name)
    return alpha


def alpha_grad(surrogate: Surrogate, elementwise: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """Reduce an elementwise alpha gradient to alpha's shape, in alpha's dtype, and scale it."""
    g = sum_to_shape(elementwise.to(alpha.dtype), alpha.shape)
    scale = surrogate.grad_scale
    if scale == "auto":
        g = g * (1.0 / math.sqrt(max(elementwise.numel() / max(alpha.numel(), 1), 1.0)))
    elif scale is not None:
        g = g * float(scale)
    return g
