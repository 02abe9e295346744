"""Time-to-first-spike coding: :func:`first_spike_time` and :class:`FirstSpikeLoss`."""

from __future__ import annotations

import numbers
from typing import Optional

import torch

from .._validate import check_choice, check_positive, check_same_device, check_time_major, describe
from ._common import check_bool, check_class_output, check_class_target, cross_entropy_rows
from .base import _WeightedClassLoss


def first_spike_time(spikes: torch.Tensor) -> torch.Tensor:
    r"""Differentiable first-spike time of every neuron, in time steps.

    With the first-spike indicator :math:`f_t = s_t \prod_{t'<t}(1-s_{t'})` (time steps
    :math:`t = 0..T-1`), the first-spike time is

    .. math::
        t^{\mathrm{first}} = \sum_{t=0}^{T-1} t\,f_t + T\Big(1-\sum_{t=0}^{T-1} f_t\Big)
                           = \sum_{k=0}^{T-1}\ \prod_{t \le k}(1 - s_t),

    a multilinear polynomial in the spikes (the right form is the one computed: a cumulative
    product, :math:`O(T)`). For binary spikes it is exactly the index of the first spike, and
    :math:`T` when the neuron never fires. Its gradient, which then flows through the spike's
    surrogate, is exact for flipping one spike: with the first spike at :math:`\tau` and the
    second at :math:`\tau_2` (or :math:`T`),

    .. math::
        \frac{\partial t^{\mathrm{first}}}{\partial s_j} = -(\tau - j)\ \ (j<\tau),\qquad
        -(\tau_2-\tau)\ \ (j=\tau),\qquad 0\ \ (j>\tau),

    so more drive before the first spike makes the neuron fire earlier, in proportion to how
    much earlier. For spikes in :math:`[0, 1]` (relaxed spikes) it is the expected first-spike
    time of independent Bernoulli spikes with those probabilities.

    Args:
        spikes: ``[T, B, ...]`` float, values in ``[0, 1]`` (binary spikes from
            :func:`~surrogate_nets.functional.spike`).

    Returns:
        ``[B, ...]`` first-spike times in ``[0, T]``, in the spikes' dtype.

    Reference: Mostafa, "Supervised learning based on temporal coding in spiking neural
    networks", IEEE TNNLS 2018 (time-to-first-spike classification); snnTorch
    ``ce_temporal_loss``, whose first-spike time has the same forward value (but maps
    "no spike" to :math:`T-1`).
    """
    check_time_major(spikes, "spikes")
    return torch.cumprod(1.0 - spikes, dim=0).sum(0)


def _resolve_time(value: torch.Tensor, T: int) -> torch.Tensor:
    """Map negative target times to ``T + value`` (``-1`` is the last step)."""
    return torch.where(value < 0, value + T, value)


def _check_time_arg(value, name: str, allow_none: bool):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number of time steps{' or None' if allow_none else ''}, "
                        f"got {type(value).__name__} {value!r}")
    return float(value)


class FirstSpikeLoss(_WeightedClassLoss):
    r"""Time-to-first-spike loss: the correct class should fire first (``"ce"``), or every
    output neuron should fire at a target time (``"mse"``).

    With :math:`t_{b,c}` = :func:`first_spike_time` of output neuron :math:`c` (steps
    :math:`0..T-1`, :math:`T` = never fired):

    ``mode="ce"`` (snnTorch ``ce_temporal_loss``): cross entropy on the inverted times

    .. math::
        L_b = \mathrm{CE}(z_b, y_b),\qquad
        z_{b,c} = -t_{b,c}\ \ (\text{inverse="negate"})\quad\text{or}\quad
        \frac{1}{t_{b,c}+1}\ \ (\text{inverse="reciprocal"}),

    with class weights and label smoothing as in :class:`torch.nn.CrossEntropyLoss`.

    ``mode="mse"`` (snnTorch ``mse_temporal_loss``): squared error to target times
    :math:`\hat t_{b,c}` normalised by :math:`T`,

    .. math::
        L_b = \frac{1}{C}\sum_{c}\Big(\frac{d_{b,c}}{T}\Big)^2,\qquad
        d_{b,c} = \begin{cases} 0 & |t_{b,c}-\hat t_{b,c}| < \text{tolerance}\\
                               t_{b,c}-\hat t_{b,c} & \text{otherwise.}\end{cases}

    The target times are ``on_target`` for the correct class and ``off_target`` for the others
    (class-index targets), or given per neuron (``target_is_time=True``). Negative times count
    from the end (``-1`` is step :math:`T-1`); ``off_target=None`` (default) means :math:`T`,
    "never fire", so a silent wrong class costs nothing (``off_target=-1``: the last step).
    Differences from snnTorch's temporal losses: docs/coming-from.md.

    Args:
        mode: ``"ce"`` (default) or ``"mse"``.
        inverse: ``"negate"`` (default) or ``"reciprocal"``; ``"ce"`` only.
        on_target: target time of the correct class, ``"mse"`` only (default ``0``).
        off_target: target time of the other classes or ``None`` for :math:`T`; ``"mse"`` only.
        tolerance: time steps within which a spike counts as on time; ``"mse"`` only.
        target_is_time: targets are first-spike times ``[B, C]`` (float); ``"mse"`` only.
        weight: optional class weights ``[C]``; ``"ce"`` only.
        label_smoothing: in ``[0, 1]``; ``"ce"`` only.
        reduction: ``"mean"`` | ``"sum"`` | ``"none"`` (per-sample ``[B]``).

    Shapes:
        output ``[T, B, C]`` float spikes of the output layer; target ``[B]`` class indices
        (or ``[B, C]`` times with ``target_is_time``). Returns a scalar, or ``[B]``.

    Reference: Mostafa, IEEE TNNLS 2018; Comsa et al., "Temporal coding in spiking neural
    networks with alpha synaptic function", ICASSP 2020; snnTorch ``ce_temporal_loss`` and
    ``mse_temporal_loss`` (Eshraghian et al., Proc. IEEE 2023).
    """

    def __init__(self, mode: str = "ce", inverse: str = "negate", on_target: float = 0,
                 off_target: Optional[float] = None, tolerance: float = 0.0,
                 target_is_time: bool = False, weight=None, label_smoothing: float = 0.0,
                 reduction: str = "mean") -> None:
        super().__init__(weight, label_smoothing, reduction)
        self.mode = check_choice(mode, "mode", ("ce", "mse"))
        self.inverse = check_choice(inverse, "inverse", ("negate", "reciprocal"))
        self.on_target = _check_time_arg(on_target, "on_target", allow_none=False)
        self.off_target = _check_time_arg(off_target, "off_target", allow_none=True)
        self.tolerance = float(check_positive(tolerance, "tolerance", allow_zero=True))
        self.target_is_time = check_bool(target_is_time, "target_is_time")
        if self.mode == "mse" and (self.weight is not None or self.label_smoothing != 0.0):
            raise ValueError(
                "weight and label_smoothing apply to mode='ce' only, got mode='mse' with "
                f"weight={weight!r}, label_smoothing={label_smoothing!r}")
        if self.mode == "ce" and self.target_is_time:
            raise ValueError("target_is_time=True needs mode='mse' (cross entropy takes class "
                             "indices), got mode='ce'")

    def target_times(self, target: torch.Tensor, T: int, C: int, dtype) -> torch.Tensor:
        """Target first-spike times ``[B, C]`` in ``[0, T]`` for class indices ``[B]``."""
        on = self.on_target
        off = float(T) if self.off_target is None else self.off_target
        hot = torch.nn.functional.one_hot(target, C).to(dtype)
        return _resolve_time(off + (on - off) * hot, T)

    def predict(self, output: torch.Tensor) -> torch.Tensor:
        """The class that fires first, ``argmin_c t_first[b, c]``; among equal times (and
        silence) the larger spike count wins."""
        out = output.detach()
        t = first_spike_time(out)
        count = out.sum(0)
        return (-t + 1e-3 * count / (1.0 + count.abs().max())).argmax(-1)

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        check_class_output(output)
        T, B, C = output.shape
        times = first_spike_time(output)
        if self.mode == "ce":
            target, w = self._checked(output, target)
            logits = -times if self.inverse == "negate" else 1.0 / (times + 1.0)
            per = cross_entropy_rows(logits, target, w, self.label_smoothing)
            return self._reduce_ce(per, w, target)
        if self.target_is_time:
            if not isinstance(target, torch.Tensor) or not target.is_floating_point() \
                    or tuple(target.shape) != (B, C):
                raise ValueError(
                    f"target must be float first-spike times of shape [B, C]={(B, C)} with "
                    f"target_is_time=True, got {describe(target)}")
            check_same_device(target, "target", output, "output")
            goal = _resolve_time(target.to(output.dtype), T)
        else:
            target = check_class_target(target, output, allow_probabilities=False)
            goal = self.target_times(target, T, C, output.dtype)
        if bool(((goal < 0) | (goal > T)).any()):
            raise ValueError(
                f"target first-spike times must lie in [-T, T] = [{-T}, {T}] for T={T} steps "
                f"(on_target={self.on_target}, off_target={self.off_target}), got values in "
                f"[{float(goal.min())}, {float(goal.max())}] after mapping negative times")
        diff = times - goal
        if self.tolerance > 0:
            diff = torch.where(diff.abs() < self.tolerance, torch.zeros_like(diff), diff)
        per = (diff / T).pow(2).mean(-1)
        return self._reduce(per)

    def extra_repr(self) -> str:
        if self.mode == "ce":
            return f"mode='ce', inverse={self.inverse!r}, " + self._ce_repr()
        return (f"mode='mse', on_target={self.on_target}, off_target={self.off_target}, "
                f"tolerance={self.tolerance}, target_is_time={self.target_is_time}, "
                f"reduction={self.reduction!r}")
