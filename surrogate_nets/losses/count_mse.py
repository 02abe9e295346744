"""Mean squared error of spike counts to target counts: :class:`CountMSE`."""

from __future__ import annotations

import torch

from .._validate import check_in_range
from ._common import check_class_output, check_class_target
from .base import SpikeLoss


class CountMSE(SpikeLoss):
    r"""Squared error between each output neuron's spike count and a target count.

    The correct class should fire at rate :math:`r_+` (``correct_rate``), the others at
    :math:`r_-` (``incorrect_rate``), in spikes per time step. With the spike count
    :math:`n_{b,c} = \sum_t s_{t,b,c}` and target count :math:`\hat n_{b,c} = T\,r_{b,c}`,
    :math:`r_{b,c} = r_+` if :math:`c = y_b` else :math:`r_-`, the per-sample loss is

    .. math::
        L_b = \frac{1}{T}\cdot\frac{1}{C}\sum_{c=1}^{C}\big(n_{b,c} - T\,r_{b,c}\big)^2 .

    The :math:`1/T` factor follows the reference below, so ``"mean"`` equals its value; the
    target counts are not truncated to integers (docs/coming-from.md).

    Args:
        correct_rate: target rate of the correct class, in ``[0, 1]``.
        incorrect_rate: target rate of the other classes, in ``[0, 1]``.
        reduction: ``"mean"`` | ``"sum"`` | ``"none"`` (per-sample ``[B]``).

    Shapes:
        output ``[T, B, C]`` float spikes; target ``[B]`` class indices. Returns a scalar, or
        ``[B]`` for ``"none"``.

    Reference: Shrestha & Orchard, "SLAYER: Spike layer error reassignment in time",
    NeurIPS 2018 (spike-count target); snnTorch ``mse_count_loss``.
    """

    def __init__(self, correct_rate: float = 0.8, incorrect_rate: float = 0.2,
                 reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.correct_rate = float(check_in_range(correct_rate, "correct_rate", 0.0, 1.0, low_open=False))
        self.incorrect_rate = float(
            check_in_range(incorrect_rate, "incorrect_rate", 0.0, 1.0, low_open=False))

    def target_counts(self, target: torch.Tensor, T: int, C: int, dtype) -> torch.Tensor:
        """The target spike counts ``[B, C]`` for class indices ``target`` ``[B]``."""
        hot = torch.nn.functional.one_hot(target, C).to(dtype)
        rate = self.incorrect_rate + (self.correct_rate - self.incorrect_rate) * hot
        return T * rate

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        check_class_output(output)
        target = check_class_target(target, output, allow_probabilities=False)
        T, B, C = output.shape
        err = output.sum(0) - self.target_counts(target, T, C, output.dtype)
        per = err.pow(2).mean(-1) / T
        return self._reduce(per)

    def extra_repr(self) -> str:
        return (f"correct_rate={self.correct_rate}, incorrect_rate={self.incorrect_rate}, "
                f"reduction={self.reduction!r}")
