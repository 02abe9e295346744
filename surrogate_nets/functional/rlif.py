r"""Recurrent LIF: one step (the spikes of the previous step are fed back through ``recurrent``).

The recurrence couples the neurons through an arbitrary ``recurrent`` map, so the multi-step
module runs this step in a per-step autograd loop (no fused scan).
"""

from __future__ import annotations

from typing import Callable, Union

import torch

from ..surrogate import Surrogate
from ..surrogate.helpers import resolve_surrogate
from ._neuron import charge, check_common, check_scalar_unit
from .spike import Scalar, _as_tensor, fire, reset_membrane

__all__ = ["rlif_step"]


def rlif_step(x: torch.Tensor, v: torch.Tensor, s_prev: torch.Tensor, beta: Scalar,
              recurrent: Callable[[torch.Tensor], torch.Tensor], threshold: Scalar = 1.0,
              surrogate: Union[str, Surrogate, None] = None, reset: str = "subtract",
              detach_reset: bool = False, decay_input: bool = False, levels: int = 1,
              relaxed: bool = False):
    r"""One step of the recurrent LIF neuron: the previous spikes are fed back through ``recurrent``.

    .. math::
        h_t = \beta v_{t-1} + x_t + W s_{t-1}\ \ (\text{decay\_input: } \beta v_{t-1} + (1-\beta)(x_t + W s_{t-1})),
        \quad s_t = \textstyle\sum_k H(h_t - k\theta),\quad v_t = \mathrm{reset}(h_t, s_t)

    ``recurrent`` maps ``s_{t-1}`` ``[B, ..., N]`` to a tensor of ``x``'s shape: an ``nn.Linear(N, N)``
    (all-to-all) or ``lambda s: w * s`` (one-to-one).

    Returns:
        ``(s_t, v_t, h_t)``.
    """
    check_common(x, reset, levels, v=v, s_prev=s_prev)
    check_scalar_unit(beta, "beta")
    s_ = resolve_surrogate(surrogate)
    h = charge(x + recurrent(s_prev), v, _as_tensor(beta, x), decay_input)
    s = fire(h, threshold, s_, levels, relaxed)
    return s, reset_membrane(h, s, threshold, reset, detach_reset, levels, s_, relaxed), h
