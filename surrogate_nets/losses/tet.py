"""Temporal Efficient Training loss: :class:`TETLoss`."""

from __future__ import annotations

import torch

from .._validate import check_in_range
from ._common import ce_normaliser, check_number, per_step_cross_entropy, reduce
from .base import _WeightedClassLoss


class TETLoss(_WeightedClassLoss):
    r"""Temporal Efficient Training: cross entropy at every time step plus an MSE anchor.

    For the pre-softmax outputs :math:`O_{t,b} \in \mathbb{R}^C` of every step, with
    :math:`\phi` = ``target`` and :math:`\lambda` = ``lam`` (Deng et al., the TET loss with its
    MSE regularizer):

    .. math::
        L^{\mathrm{TET}}_b = \frac{1}{T}\sum_{t=1}^{T}\mathrm{CE}(O_{t,b}, y_b),\qquad
        L^{\mathrm{MSE}}_b = \frac{1}{T\,C}\sum_{t=1}^{T}\sum_{c=1}^{C}(O_{t,b,c}-\phi)^2,

    .. math::
        L_b = (1-\lambda)\,L^{\mathrm{TET}}_b + \lambda\,L^{\mathrm{MSE}}_b .

    The :math:`(1-\lambda)` factor is the paper's; with the default :math:`\lambda = 10^{-3}`
    it differs from ``CE + lam * MSE`` by 0.1 %. ``"mean"`` reduces the two terms separately
    (the cross entropy with torch's class-weighted mean, the MSE with a plain mean), so with
    class weights ``"mean"`` is not the plain mean of ``"none"``.

    Args:
        lam: :math:`\lambda \in [0, 1]`, weight of the MSE anchor (paper: ``1e-3``).
        target: :math:`\phi`, the constant the outputs are pulled towards (paper: ``1.0``,
            the firing threshold).
        weight: optional class weights ``[C]`` of the cross entropy.
        label_smoothing: in ``[0, 1]``, of the cross entropy.
        reduction: ``"mean"`` | ``"sum"`` | ``"none"`` (per-sample ``[B]``).

    Shapes:
        output ``[T, B, C]`` float (e.g. the per-step logits of a spiking classifier); target
        ``[B]`` class indices or ``[B, C]`` probabilities. Returns a scalar, or ``[B]``.

    Reference: Deng, Li, Zhang & Gu, "Temporal Efficient Training of Spiking Neural Network via
    Gradient Re-weighting", ICLR 2022.
    """

    def __init__(self, lam: float = 1e-3, target: float = 1.0, weight=None,
                 label_smoothing: float = 0.0, reduction: str = "mean") -> None:
        super().__init__(weight, label_smoothing, reduction)
        self.lam = float(check_in_range(lam, "lam", 0.0, 1.0, low_open=False))
        self.target = check_number(target, "target")

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        target, w = self._checked(output, target)
        ce = per_step_cross_entropy(output, target, w, self.label_smoothing)
        mse = (output - self.target).pow(2).mean(dim=(0, 2))
        if self.reduction == "none":
            return (1.0 - self.lam) * ce + self.lam * mse
        ce_r = reduce(ce, self.reduction, ce_normaliser(w, target))
        mse_r = reduce(mse, self.reduction)
        return (1.0 - self.lam) * ce_r + self.lam * mse_r

    def extra_repr(self) -> str:
        return f"lam={self.lam}, target={self.target}, " + self._ce_repr()
