"""Cross entropy on a leaky readout's membrane trace: :class:`MembraneCrossEntropy`."""

from __future__ import annotations

import torch

from .._validate import check_choice
from ._common import cross_entropy_rows
from .base import _WeightedClassLoss

_REDUCERS = ("max", "mean", "last", "sum")


def reduce_time(trace: torch.Tensor, how: str) -> torch.Tensor:
    """Reduce a time-major trace ``[T, B, ...]`` over time to ``[B, ...]``.

    ``"max"``: :math:`\\max_t v_t` (gradient to the arg-max step), ``"mean"``:
    :math:`\\frac1T\\sum_t v_t`, ``"sum"``: :math:`\\sum_t v_t`, ``"last"``: :math:`v_T`.

    Reference: the readouts compared by Cramer et al., IEEE TNNLS 2022.
    """
    if how == "max":
        return trace.max(dim=0).values
    if how == "mean":
        return trace.mean(0)
    if how == "sum":
        return trace.sum(0)
    return trace[-1]


class MembraneCrossEntropy(_WeightedClassLoss):
    r"""Cross entropy on the membrane potential of a non-spiking (LI) readout layer.

    The trace :math:`v_{t,b,c}` is reduced over time to logits :math:`z_{b,c}`, then

    .. math::
        z_{b} = \max_t v_{t,b}\ \ (\text{"max"}),\quad
        \tfrac{1}{T}\textstyle\sum_t v_{t,b}\ \ (\text{"mean"}),\quad
        \textstyle\sum_t v_{t,b}\ \ (\text{"sum"}),\quad
        v_{T,b}\ \ (\text{"last"});\qquad
        L_b = \mathrm{CE}(z_b, y_b)

    with :math:`\mathrm{CE}` (class weights, label smoothing) exactly as in
    :class:`torch.nn.CrossEntropyLoss`. ``"max"`` is the max-over-time readout of Cramer et al.
    and snnTorch ``ce_max_membrane_loss``; ``"mean"`` and ``"last"`` are the other common
    readouts of a leaky integrator.

    Args:
        reduce: how the trace is reduced over time: ``"max"`` (default), ``"mean"``,
            ``"sum"`` or ``"last"``. (A string, unrelated to torch's deprecated ``reduce`` flag.)
        weight: optional class weights ``[C]``.
        label_smoothing: in ``[0, 1]``.
        reduction: ``"mean"`` | ``"sum"`` | ``"none"`` (per-sample ``[B]``).

    Shapes:
        output ``[T, B, C]`` float membrane trace; target ``[B]`` class indices or ``[B, C]``
        class probabilities. Returns a scalar, or ``[B]`` for ``"none"``.

    Reference: Cramer, Stradmann, Schemmel & Zenke, "The Heidelberg spiking data sets for the
    systematic evaluation of spiking neural networks", IEEE TNNLS 2022 (max-over-time readout);
    Zenke & Ganguli, "SuperSpike", Neural Computation 2018.
    """

    def __init__(self, reduce: str = "max", weight=None, label_smoothing: float = 0.0,
                 reduction: str = "mean") -> None:
        super().__init__(weight, label_smoothing, reduction)
        if not isinstance(reduce, str):
            raise TypeError(f"reduce must be one of {list(_REDUCERS)} (a str), got "
                            f"{type(reduce).__name__} {reduce!r}")
        self.reduce = check_choice(reduce, "reduce", _REDUCERS)

    def predict(self, output: torch.Tensor) -> torch.Tensor:
        """``argmax_c`` of the trace reduced over time as the loss reduces it."""
        return reduce_time(output.detach(), self.reduce).argmax(-1)

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        target, w = self._checked(output, target)
        logits = reduce_time(output, self.reduce)
        per = cross_entropy_rows(logits, target, w, self.label_smoothing)
        return self._reduce_ce(per, w, target)

    def extra_repr(self) -> str:
        return f"reduce={self.reduce!r}, " + self._ce_repr()
