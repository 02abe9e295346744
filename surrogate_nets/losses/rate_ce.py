"""Cross entropy on spike rates or spike counts: :class:`RateCrossEntropy`."""

from __future__ import annotations

import torch

from .._validate import check_choice
from ._common import cross_entropy_rows, per_step_cross_entropy
from .base import _WeightedClassLoss


class RateCrossEntropy(_WeightedClassLoss):
    r"""Cross entropy on the output spikes, per time step (``"rate"``) or on the spike count.

    With :math:`\mathrm{CE}(z, y) = -w_y \log \mathrm{softmax}(z)_y` (plus label smoothing
    exactly as in :class:`torch.nn.CrossEntropyLoss`), the per-sample loss is

    .. math::
        \text{mode="rate"}:\quad  L_b = \frac{1}{T}\sum_{t=1}^{T} \mathrm{CE}(s_{t,b},\, y_b)
        \qquad
        \text{mode="count"}:\quad L_b = \mathrm{CE}\Big(\sum_{t=1}^{T} s_{t,b},\; y_b\Big)

    ``"rate"`` asks the correct class to fire at every step and the others to stay silent
    (snnTorch ``ce_rate_loss``); ``"count"`` applies the softmax once to the spike counts
    (snnTorch ``ce_count_loss``). The output may also be a membrane trace: the equation is the
    same.

    Args:
        mode: ``"rate"`` (default) or ``"count"``.
        weight: optional class weights ``[C]`` (tensor or sequence), as in torch.
        label_smoothing: in ``[0, 1]``, as in torch.
        reduction: ``"mean"`` (weighted mean: :math:`\sum_b L_b / \sum_b w_{y_b}`), ``"sum"``
            or ``"none"`` (per-sample ``[B]``).

    Shapes:
        output ``[T, B, C]`` float; target ``[B]`` class indices (integer dtype) or ``[B, C]``
        class probabilities (float). Returns a scalar, or ``[B]`` for ``"none"``, in the
        output's dtype.

    Reference: Eshraghian et al., "Training spiking neural networks using lessons from deep
    learning", Proc. IEEE 2023 (snnTorch ``ce_rate_loss`` / ``ce_count_loss``).
    """

    def __init__(self, mode: str = "rate", weight=None, label_smoothing: float = 0.0,
                 reduction: str = "mean") -> None:
        super().__init__(weight, label_smoothing, reduction)
        self.mode = check_choice(mode, "mode", ("rate", "count"))

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        target, w = self._checked(output, target)
        if self.mode == "count":
            per = cross_entropy_rows(output.sum(0), target, w, self.label_smoothing)
        else:
            per = per_step_cross_entropy(output, target, w, self.label_smoothing)
        return self._reduce_ce(per, w, target)

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}, " + self._ce_repr()
