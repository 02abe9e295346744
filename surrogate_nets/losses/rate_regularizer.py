"""Firing-rate bounds as a penalty: :class:`RateRegularizer`."""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from .._validate import check_choice, check_positive
from ._common import as_tensor_list, check_reduction, reduce


def neuron_activity(spikes: torch.Tensor, unit: str = "rate") -> torch.Tensor:
    """Per-sample, per-neuron activity ``[B, N]`` of spikes ``[T, B, ...]`` (``N`` = prod of ``...``).

    ``"rate"``: :math:`\\frac1T\\sum_t s_t` (spikes per step); ``"count"``: :math:`\\sum_t s_t`.

    Reference: the activity :math:`\\zeta` of Zenke & Vogels, Neural Computation 2021.
    """
    T, B = spikes.shape[:2]
    flat = spikes.reshape(T, B, -1)
    return flat.mean(0) if unit == "rate" else flat.sum(0)


class RateRegularizer(nn.Module):
    r"""Keep firing rates in a band: a per-neuron lower bound and a population upper bound.

    For each recorded layer :math:`l` with :math:`N_l` neurons and activity
    :math:`\zeta^l_{b,i} = \frac{1}{T}\sum_t s^l_{t,b,i}` (``unit="rate"``, spikes per step) or
    :math:`\sum_t s^l_{t,b,i}` (``unit="count"``, spikes per sample), the per-sample penalty is

    .. math::
        R_b = \sum_l \Big[\ \lambda_{\mathrm{lo}}\,\frac{1}{N_l}\sum_{i=1}^{N_l}
              \big[\theta_{\mathrm{lo}} - \zeta^l_{b,i}\big]_+^2
              \;+\; \lambda_{\mathrm{up}}\,\Big[\frac{1}{N_l}\sum_{i=1}^{N_l}\zeta^l_{b,i}
              - \theta_{\mathrm{up}}\Big]_+^2\ \Big]

    with :math:`[x]_+ = \max(x, 0)`, :math:`\theta_{\mathrm{lo}}` = ``lower``,
    :math:`\theta_{\mathrm{up}}` = ``upper`` (a term is dropped when its bound is ``None``).
    The lower bound acts on every neuron (no neuron stays silent), the upper bound on the
    layer's mean activity (the population may be sparse but not busy), as in Zenke & Vogels.

    Args:
        lower: :math:`\theta_{\mathrm{lo}} \ge 0` or ``None``.
        upper: :math:`\theta_{\mathrm{up}} \ge 0` or ``None`` (at least one bound is required;
            ``lower <= upper`` when both are given).
        lower_strength, upper_strength: :math:`\lambda_{\mathrm{lo}}, \lambda_{\mathrm{up}} \ge 0`.
        unit: ``"rate"`` (default; bounds in spikes per time step) or ``"count"`` (bounds in
            spikes per sample, as in the paper).
        reduction: ``"mean"`` (over the batch) | ``"sum"`` | ``"none"`` (per-sample ``[B]``).

    Shapes:
        ``forward(spikes)``: one tensor ``[T, B, ...]`` or a list of them (one per layer, same
        ``B``; ``T`` and the neuron dims may differ). Returns a scalar, or ``[B]`` for ``"none"``.

    Reference: Zenke & Vogels, "The remarkable robustness of surrogate gradient learning for
    instilling complex function in spiking neural networks", Neural Computation 33(4), 2021.
    """

    def __init__(self, lower: Optional[float] = None, upper: Optional[float] = None,
                 lower_strength: float = 1.0, upper_strength: float = 1.0, unit: str = "rate",
                 reduction: str = "mean") -> None:
        super().__init__()
        if lower is None and upper is None:
            raise ValueError("RateRegularizer needs a bound: got lower=None and upper=None; "
                             "pass lower=..., upper=... or both")
        self.lower = None if lower is None else float(check_positive(lower, "lower", allow_zero=True))
        self.upper = None if upper is None else float(check_positive(upper, "upper", allow_zero=True))
        if self.lower is not None and self.upper is not None and self.lower > self.upper:
            raise ValueError(f"lower must be <= upper (every neuron above lower puts the mean above "
                             f"upper: the two penalties would fight), got lower={lower!r}, upper={upper!r}")
        self.lower_strength = float(check_positive(lower_strength, "lower_strength", allow_zero=True))
        self.upper_strength = float(check_positive(upper_strength, "upper_strength", allow_zero=True))
        self.unit = check_choice(unit, "unit", ("rate", "count"))
        self.reduction = check_reduction(reduction)

    def forward(self, spikes) -> torch.Tensor:
        layers = as_tensor_list(spikes)
        total = None
        for s in layers:
            zeta = neuron_activity(s, self.unit)                       # [B, N]
            per = torch.zeros(zeta.shape[0], dtype=zeta.dtype, device=zeta.device)
            if self.lower is not None:
                per = per + self.lower_strength * torch.relu(self.lower - zeta).pow(2).mean(-1)
            if self.upper is not None:
                per = per + self.upper_strength * torch.relu(zeta.mean(-1) - self.upper).pow(2)
            total = per if total is None else total + per.to(total.dtype)
        return reduce(total, self.reduction)

    def extra_repr(self) -> str:
        return (f"lower={self.lower}, upper={self.upper}, lower_strength={self.lower_strength}, "
                f"upper_strength={self.upper_strength}, unit={self.unit!r}, "
                f"reduction={self.reduction!r}")
