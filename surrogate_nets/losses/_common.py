"""Input checks and small pure helpers shared by the losses (private)."""

from __future__ import annotations

import numbers
from typing import Optional

import torch
import torch.nn.functional as F

from .._validate import (
    check_choice,
    check_float_tensor,
    check_in_range,
    check_same_device,
    check_time_major,
    describe,
)

REDUCTIONS = ("mean", "sum", "none")


def check_reduction(reduction) -> str:
    """Require ``reduction`` in ``("mean", "sum", "none")``."""
    if not isinstance(reduction, str):
        raise TypeError(
            f"reduction must be one of {list(REDUCTIONS)} (a str), got {type(reduction).__name__} "
            f"{reduction!r}"
        )
    return check_choice(reduction, "reduction", REDUCTIONS)


def check_class_output(output, name: str = "output") -> torch.Tensor:
    """Require a time-major class output ``[T, B, C]`` (float, ``T >= 1``, ``C >= 1``)."""
    check_time_major(output, name)
    if output.dim() != 3:
        raise ValueError(
            f"{name} must be time-major class scores of shape [T, B, C] (3 dims), got shape "
            f"{tuple(output.shape)}"
        )
    if output.shape[2] == 0:
        raise ValueError(f"{name} must have C >= 1 classes (dim 2), got shape {tuple(output.shape)}")
    return output


def check_class_target(target, output: torch.Tensor, name: str = "target",
                       allow_probabilities: bool = True) -> torch.Tensor:
    """Validate classification targets against a ``[T, B, C]`` output.

    Accepts class indices ``[B]`` of an integer dtype with values in ``[0, C)``, or (where
    ``allow_probabilities``) class probabilities ``[B, C]`` in a floating dtype, as
    :func:`torch.nn.functional.cross_entropy` does.
    """
    T, B, C = output.shape
    if not isinstance(target, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of class indices [B], got {type(target).__name__}")
    check_same_device(target, name, output, "output")
    if target.is_floating_point():
        if not allow_probabilities:
            raise TypeError(
                f"{name} must hold integer class indices of shape [B]={(B,)}, got {describe(target)}"
            )
        if tuple(target.shape) != (B, C):
            hint = ""
            if target.dim() == 3 and tuple(target.shape[1:]) == (B, C):
                hint = " (it looks time-major; class targets have no time axis)"
            raise ValueError(
                f"{name} with a floating dtype holds class probabilities and must have shape "
                f"[B, C]={(B, C)} to match output [T, B, C]={(T, B, C)}, got shape "
                f"{tuple(target.shape)}{hint}"
            )
        return target
    if target.dtype == torch.bool or target.is_complex():
        raise TypeError(f"{name} must hold integer class indices, got dtype {target.dtype}")
    if tuple(target.shape) != (B,):
        hint = ""
        if target.dim() == 2 and target.shape[1] == B:
            hint = " (it looks time-major; class targets have no time axis)"
        raise ValueError(
            f"{name} must be class indices of shape [B]={(B,)} to match output [T, B, C]="
            f"{(T, B, C)}, got shape {tuple(target.shape)}{hint}"
        )
    if B > 0:
        lo, hi = int(target.min()), int(target.max())
        if lo < 0 or hi >= C:
            raise ValueError(
                f"{name} holds class indices in [{lo}, {hi}] but output has C={C} classes; "
                f"expected values in [0, {C - 1}]"
            )
    return target.long()


def make_weight(weight, name: str = "weight") -> Optional[torch.Tensor]:
    """Turn a class-weight argument (``None``, a sequence of numbers or a 1-D tensor) into a tensor."""
    if weight is None:
        return None
    if isinstance(weight, torch.Tensor):
        w = weight.detach().clone()
        if not w.is_floating_point():
            w = w.to(torch.get_default_dtype())
    elif isinstance(weight, (list, tuple)) and all(
        isinstance(v, numbers.Real) and not isinstance(v, bool) for v in weight
    ):
        w = torch.tensor([float(v) for v in weight], dtype=torch.get_default_dtype())
    else:
        raise TypeError(
            f"{name} must be None, a 1-D tensor or a sequence of numbers (one per class), got "
            f"{type(weight).__name__} {weight!r}"
        )
    if w.dim() != 1 or w.numel() == 0:
        raise ValueError(f"{name} must be 1-D with one entry per class, got shape {tuple(w.shape)}")
    if not bool(torch.isfinite(w).all()) or bool((w < 0).any()):
        raise ValueError(f"{name} must be finite and >= 0, got {w.tolist()}")
    return w


def weight_for(weight: Optional[torch.Tensor], output: torch.Tensor, name: str = "weight"):
    """The class weights in ``output``'s dtype/device, checked to have ``C`` entries."""
    if weight is None:
        return None
    C = output.shape[-1]
    if weight.numel() != C:
        raise ValueError(
            f"{name} has {weight.numel()} entries but output has C={C} classes (dim -1)"
        )
    return weight.to(device=output.device, dtype=output.dtype)


def check_label_smoothing(value) -> float:
    """Require ``0 <= label_smoothing <= 1``."""
    return float(check_in_range(value, "label_smoothing", 0.0, 1.0, low_open=False, high_open=False))


def cross_entropy_rows(logits: torch.Tensor, target: torch.Tensor, weight: Optional[torch.Tensor],
                       label_smoothing: float) -> torch.Tensor:
    """Per-row cross entropy ``[N]`` of logits ``[N, C]`` (same weighting as torch's)."""
    return F.cross_entropy(logits, target, weight=weight, reduction="none",
                           label_smoothing=label_smoothing)


def per_step_cross_entropy(output: torch.Tensor, target: torch.Tensor,
                           weight: Optional[torch.Tensor], label_smoothing: float) -> torch.Tensor:
    r"""Cross entropy at every time step, averaged over time: per-sample ``[B]``
    :math:`\frac1T\sum_t \mathrm{CE}(o_{t,b}, y_b)` of ``output`` ``[T, B, C]`` and ``target``
    ``[B]`` (indices) or ``[B, C]`` (probabilities), the same target at every step."""
    T, B, C = output.shape
    rows = target.repeat(T) if target.dim() == 1 else target.repeat(T, 1)
    per = cross_entropy_rows(output.reshape(T * B, C), rows, weight, label_smoothing)
    return per.reshape(T, B).mean(0)


def reduce(per_sample: torch.Tensor, reduction: str, normaliser: Optional[torch.Tensor] = None):
    """Apply a torch-style reduction to a per-sample loss.

    ``"none"`` returns ``per_sample`` unchanged, ``"sum"`` its sum, ``"mean"`` its sum divided by
    ``normaliser`` (the summed class weight of the targets, as in torch's weighted cross entropy)
    or by the number of elements when ``normaliser`` is ``None``.
    """
    if reduction == "none":
        return per_sample
    if reduction == "sum":
        return per_sample.sum()
    if normaliser is None:
        return per_sample.mean()
    return per_sample.sum() / normaliser


def ce_normaliser(weight: Optional[torch.Tensor], target: torch.Tensor) -> Optional[torch.Tensor]:
    """Denominator of torch's weighted ``"mean"`` cross entropy: ``sum_b weight[target_b]``.

    For probability targets torch divides by the batch size, so ``None`` is returned.
    """
    if weight is None or target.is_floating_point():
        return None
    return weight[target].sum()


def as_tensor_list(spikes, name: str = "spikes") -> list:
    """Accept one time-major tensor ``[T, B, ...]`` or a non-empty list/tuple of them."""
    if isinstance(spikes, torch.Tensor):
        items = [spikes]
        names = [name]
    elif isinstance(spikes, (list, tuple)):
        if len(spikes) == 0:
            raise ValueError(f"{name} must be a tensor [T, B, ...] or a non-empty list of them, "
                             f"got an empty {type(spikes).__name__}")
        items = list(spikes)
        names = [f"{name}[{i}]" for i in range(len(items))]
    else:
        raise TypeError(
            f"{name} must be a tensor [T, B, ...] or a list of them, got {type(spikes).__name__}"
        )
    for x, n in zip(items, names):
        check_time_major(x, n)
    B = items[0].shape[1]
    for x, n in zip(items, names):
        if x.shape[1] != B:
            raise ValueError(
                f"all spike tensors must share the batch size B (dim 1): {names[0]} has B={B}, "
                f"{n} has shape {tuple(x.shape)}"
            )
    return items


def check_target_like(target, output: torch.Tensor, name: str = "target") -> torch.Tensor:
    """Require a float ``target`` of exactly ``output``'s shape (no broadcasting)."""
    check_float_tensor(target, name)
    check_same_device(target, name, output, "output")
    return target


def check_number(value, name: str) -> float:
    """Require a finite real number (bools rejected)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    value = float(value)
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return value


def check_bool(value, name: str) -> bool:
    """Require a bool."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__} {value!r}")
    return value

