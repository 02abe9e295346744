"""What every caller of a surrogate needs: resolve it, shape its alpha, reduce alpha's gradient.

These three are the public seam between the surrogate package and the code that applies a
surrogate (the staircase in :mod:`surrogate_nets.functional.staircase`, the neuron scans, the
fused quantizer, kernels registered by other packages):

* :func:`resolve_surrogate` at the public entry point (a name, an instance or ``None``);
* :func:`alpha_for` once per call, to hand alpha to an autograd Function as a tensor input
  (so that a learnable alpha gets its gradient);
* :func:`alpha_grad` once per backward, to reduce the elementwise alpha gradient to alpha's
  shape and apply the surrogate's ``grad_scale``;
* :func:`auto_scale_numel` / :func:`auto_numel`, so that ``grad_scale="auto"`` counts a whole
  ``[T, B, ...]`` sequence when a neuron runs it step by step.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from typing import Optional, Union

import torch

from .._validate import check_broadcast, check_same_device, sum_to_shape
from .base import Surrogate
from .registry import get

__all__ = ["resolve_surrogate", "alpha_for", "alpha_grad", "auto_scale_numel", "auto_numel"]


def resolve_surrogate(surrogate: Union[str, Surrogate, None]) -> Surrogate:
    """A :class:`Surrogate` from an instance, a registry name, or ``None`` (``ATan(alpha=2)``)."""
    if surrogate is None:
        return get("atan")
    return get(surrogate)


def alpha_for(surrogate: Surrogate, x: torch.Tensor, name: str = "x") -> torch.Tensor:
    """The surrogate's alpha ``[]`` or broadcastable to ``x``, checked to broadcast and to share ``x``'s device.

    Differentiable w.r.t. ``raw_alpha`` when alpha is learnable: pass it to the autograd Function
    as an input.
    """
    alpha = surrogate.alpha
    check_broadcast(alpha, "surrogate alpha", x.shape, name)
    if alpha.dim() > 0 or alpha.device.type != "cpu":
        check_same_device(alpha, "surrogate alpha", x, name)
    return alpha


#: numel of the whole sequence a neuron's per-step ops belong to (see :func:`auto_scale_numel`)
_AUTO_NUMEL: contextvars.ContextVar = contextvars.ContextVar("surrogate_auto_numel", default=None)


@contextlib.contextmanager
def _numel_context(numel: int):
    token = _AUTO_NUMEL.set(int(numel))
    try:
        yield
    finally:
        _AUTO_NUMEL.reset(token)


def auto_scale_numel(numel: int, surrogate: Optional[Surrogate] = None):
    """Make ``grad_scale="auto"`` count ``numel`` elements for the ops run inside (captured at forward).

    ``grad_scale="auto"`` has one meaning: ``1/sqrt(N)`` with ``N`` the number of elements one
    alpha entry's gradient sums over in one forward call, ``numel / numel(alpha)``. A neuron that
    runs its sequence ``[T, B, ...]`` step by step wraps the steps in this context with
    ``numel = T*B*...``, so it scales like one call of ``spike`` on the whole sequence (a fused
    scan counts its whole input itself).

    With ``surrogate`` given and its ``grad_scale`` not ``"auto"`` this is a no-op that touches no
    context variable, so the default path stays traceable by ``torch.compile(fullgraph=True)``
    (dynamo cannot trace ``ContextVar``; a compiled step loop with ``grad_scale="auto"`` takes a
    graph break here).
    """
    if surrogate is not None and surrogate.grad_scale != "auto":
        return contextlib.nullcontext()
    return _numel_context(numel)


def auto_numel(surrogate: Optional[Surrogate] = None):
    """The element count set by :func:`auto_scale_numel`, or ``None`` outside it (and, without
    reading the context, when ``surrogate`` is given and its ``grad_scale`` is not ``"auto"``)."""
    if surrogate is not None and surrogate.grad_scale != "auto":
        return None
    return _AUTO_NUMEL.get()


def alpha_grad(surrogate: Surrogate, elementwise: torch.Tensor, alpha: torch.Tensor,
               numel=None) -> torch.Tensor:
    r"""Reduce an elementwise alpha gradient to alpha's shape and dtype, scaled by ``grad_scale``.

    ``grad_scale="auto"`` multiplies by :math:`1/\sqrt{N / \mathrm{numel}(\alpha)}` with ``N`` the
    number of elements one alpha entry's gradient sums over in the whole forward call: ``numel``
    when given (a scan passes its whole ``[T, B, ...]``; a per-step Function passes the count
    captured by :func:`auto_numel` at forward), else the number of elements of ``elementwise``.
    """
    g = sum_to_shape(elementwise.to(alpha.dtype), alpha.shape)
    scale = surrogate.grad_scale
    if scale == "auto":
        n = elementwise.numel() if numel is None else numel
        g = g * (1.0 / math.sqrt(max(n / max(alpha.numel(), 1), 1.0)))
    elif scale is not None:
        g = g * float(scale)
    return g
