r"""The one positive parametrisation: ``value = floor + softplus(raw)``.

Used by every learnable quantity that must stay positive: the surrogate sharpness ``alpha``
(:class:`~surrogate_nets.surrogate.Surrogate`), positive neuron parameters (thresholds,
adaptation; :class:`~surrogate_nets.neurons.parametrize.Constrained`) and quantizer steps
(``step_param="softplus"`` of :class:`~surrogate_nets.quant.quantizer.Quantizer`). The optimizer
moves ``raw`` freely; the value can never leave ``(floor, inf)`` and nothing is clamped after a
step.

.. math::
    v = \ell + \log(1 + e^{r}),\qquad r = (v - \ell) + \log\big(-\mathrm{expm1}(-(v - \ell))\big)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def inverse_softplus(y: torch.Tensor) -> torch.Tensor:
    """``x`` with ``softplus(x) == y`` for ``y > 0`` (stable for large ``y``: ``y + log(1 - e^-y)``)."""
    return y + torch.log(-torch.expm1(-y))


def positive_from_raw(raw: torch.Tensor, floor: float = 0.0) -> torch.Tensor:
    """``floor + softplus(raw)``: the positive value held by the unconstrained ``raw``."""
    out = F.softplus(raw)
    return out + floor if floor else out


def raw_from_positive(value: torch.Tensor, floor: float = 0.0) -> torch.Tensor:
    """The ``raw`` with ``positive_from_raw(raw, floor) == value`` (``value > floor``, not checked here)."""
    return inverse_softplus(value - floor if floor else value)
