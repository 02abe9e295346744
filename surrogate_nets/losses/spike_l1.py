"""Sparsity penalty on spike counts: :class:`SpikeL1`."""

from __future__ import annotations

import torch
from torch import nn

from .._validate import check_choice, check_positive
from ._common import as_tensor_list, check_reduction, reduce


class SpikeL1(nn.Module):
    r"""L1 activity penalty: the mean spike count per neuron.

    For each recorded layer :math:`l` with :math:`N_l` neurons, the per-sample penalty is

    .. math::
        R_b = \lambda \sum_l \frac{1}{N_l}\sum_{i=1}^{N_l}\sum_{t=1}^{T}\big|s^l_{t,b,i}\big|

    (``unit="count"``), or the same divided by :math:`T` (``unit="rate"``, spikes per step).
    The absolute value makes it an L1 norm for signed multi-level spikes as well.

    Args:
        strength: :math:`\lambda \ge 0`.
        unit: ``"count"`` (default) or ``"rate"``.
        reduction: ``"mean"`` (over the batch) | ``"sum"`` | ``"none"`` (per-sample ``[B]``).

    Shapes:
        ``forward(spikes)``: one tensor ``[T, B, ...]`` or a list of them (same ``B``).
        Returns a scalar, or ``[B]`` for ``"none"``.

    Reference: Neil, Pfeiffer & Liu, "Learning to be efficient: algorithms for training
    low-latency, low-compute deep spiking neural networks", ACM SAC 2016; Zenke & Ganguli,
    "SuperSpike", Neural Computation 2018 (spike-count regularizer).
    """

    def __init__(self, strength: float = 1.0, unit: str = "count", reduction: str = "mean") -> None:
        super().__init__()
        self.strength = float(check_positive(strength, "strength", allow_zero=True))
        self.unit = check_choice(unit, "unit", ("count", "rate"))
        self.reduction = check_reduction(reduction)

    def forward(self, spikes) -> torch.Tensor:
        layers = as_tensor_list(spikes)
        total = None
        for s in layers:
            T, B = s.shape[:2]
            a = s.reshape(T, B, -1).abs()
            per = a.sum(0).mean(-1) if self.unit == "count" else a.mean(0).mean(-1)
            total = per if total is None else total + per.to(total.dtype)
        return reduce(self.strength * total, self.reduction)

    def extra_repr(self) -> str:
        return f"strength={self.strength}, unit={self.unit!r}, reduction={self.reduction!r}"
