"""Regression of a time-major trace to a target trace: :class:`MSEMembrane`."""

from __future__ import annotations

import torch

from ._common import check_bool, check_target_like
from .._validate import check_time_major
from .base import SpikeLoss


class MSEMembrane(SpikeLoss):
    r"""Mean squared error between a trace (membrane potential, rate, ...) and a target trace.

    .. math::
        \ell_{t,b,\dots} = (v_{t,b,\dots} - \hat v_{t,b,\dots})^2,\qquad
        L = \frac{1}{T\,B\,\prod\dots}\sum \ell \ \ (\text{"mean"})

    The target must have the output's shape ``[T, B, ...]``. A target that is constant in time
    (``[B, ...]``) is accepted only with ``broadcast_time=True``, which uses
    :math:`\hat v_{t} = \hat v` for every step; the loss never broadcasts over the time axis
    on its own, so a target with a wrong number of steps is an error, not a silent broadcast.

    Args:
        broadcast_time: accept a target ``[B, ...]`` (no time axis) and repeat it over time.
        reduction: ``"mean"`` | ``"sum"`` | ``"none"`` (elementwise ``[T, B, ...]``, as
            :class:`torch.nn.MSELoss`).

    Shapes:
        output ``[T, B, ...]`` float; target ``[T, B, ...]`` (or ``[B, ...]`` with
        ``broadcast_time=True``) float. Returns a scalar, or ``[T, B, ...]`` for ``"none"``.

    Reference: snnTorch ``mse_membrane_loss`` (Eshraghian et al., Proc. IEEE 2023); the
    regression set-up of Zenke & Ganguli, "SuperSpike", Neural Computation 2018.
    """

    def __init__(self, broadcast_time: bool = False, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.broadcast_time = check_bool(broadcast_time, "broadcast_time")

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        check_time_major(output, "output")
        check_target_like(target, output)
        shape, tshape = tuple(output.shape), tuple(target.shape)
        if self.broadcast_time:
            if tshape != shape[1:]:
                raise ValueError(
                    f"with broadcast_time=True target must have shape [B, ...]={shape[1:]} "
                    f"(output {shape} without its time axis), got shape {tshape}")
            target = target.unsqueeze(0)
        elif tshape != shape:
            if tshape == shape[1:]:
                raise ValueError(
                    f"target of shape {tshape} has no time axis but output has shape {shape} "
                    f"[T, B, ...]; pass a [T, B, ...] target or set broadcast_time=True to "
                    f"repeat it over the T={shape[0]} steps")
            if len(tshape) == len(shape) and tshape[1:] == shape[1:]:
                raise ValueError(
                    f"time axis mismatch: target has {tshape[0]} steps (dim 0) but output has "
                    f"T={shape[0]}; target shape {tshape}, output shape {shape}")
            raise ValueError(f"target must have the output's shape {shape}, got shape {tshape}")
        err = (output - target.to(output.dtype)).pow(2)
        return self._reduce(err)

    def extra_repr(self) -> str:
        return f"broadcast_time={self.broadcast_time}, reduction={self.reduction!r}"
