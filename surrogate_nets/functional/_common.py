"""Helpers shared by the surrogate autograd Functions."""

from __future__ import annotations

import contextlib
import contextvars
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


#: numel of the whole sequence a neuron's per-step ops belong to (see :func:`auto_scale_numel`)
_AUTO_NUMEL: contextvars.ContextVar = contextvars.ContextVar("surrogate_auto_numel", default=None)


@contextlib.contextmanager
def auto_scale_numel(numel: int):
    """Make ``grad_scale="auto"`` count ``numel`` elements for the ops run inside (captured at forward).

    ``grad_scale="auto"`` has one meaning: ``1/sqrt(N)`` with ``N`` the number of elements one
    alpha entry's gradient sums over in one forward call, ``numel / numel(alpha)``. A neuron that
    runs its sequence ``[T, B, ...]`` step by step wraps the steps in this context with
    ``numel = T*B*...``, so it scales like one call of ``spike`` on the whole sequence.
    """
    token = _AUTO_NUMEL.set(int(numel))
    try:
        yield
    finally:
        _AUTO_NUMEL.reset(token)


def auto_numel():
    """The element count set by :func:`auto_scale_numel`, or ``None`` outside it."""
    return _AUTO_NUMEL.get()


def alpha_grad(surrogate: Surrogate, elementwise: torch.Tensor, alpha: torch.Tensor,
               numel=None) -> torch.Tensor:
    """Reduce an elementwise alpha gradient to alpha's shape, in alpha's dtype, and scale it.

    ``numel``: the element count of the whole call for ``grad_scale="auto"`` (default:
    ``elementwise.numel()``); see :func:`auto_scale_numel`."""
    g = sum_to_shape(elementwise.to(alpha.dtype), alpha.shape)
    scale = surrogate.grad_scale
    if scale == "auto":
        n = elementwise.numel() if numel is None else numel
        g = g * (1.0 / math.sqrt(max(n / max(alpha.numel(), 1), 1.0)))
    elif scale is not None:
        g = g * float(scale)
    return g
