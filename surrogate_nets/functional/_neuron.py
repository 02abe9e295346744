"""Helpers shared by the neuron functions (one file per neuron): the charge, argument checks."""

from __future__ import annotations

import numbers

import torch

from .._validate import (
    check_broadcast, check_choice, check_float_tensor, check_in_range, check_int, check_positive,
    check_same_device, describe,
)
from ..surrogate.helpers import alpha_for, resolve_surrogate
from .spike import RESET_MODES


def charge(x: torch.Tensor, v: torch.Tensor, beta: torch.Tensor, decay_input: bool) -> torch.Tensor:
    """``beta * v + x`` or ``beta * v + (1 - beta) * x``."""
    return beta * v + ((1 - beta) * x if decay_input else x)


def check_state(x, **state) -> None:
    """Each state tensor must have exactly ``x``'s shape: never a silent broadcast."""
    for name, t in state.items():
        check_float_tensor(t, name)
        if t.shape != x.shape:
            raise ValueError(f"{name} must have the shape of x {tuple(x.shape)}, got {describe(t)}")


def check_common(x, reset, levels, **state) -> None:
    """Checks shared by every spiking step function."""
    check_float_tensor(x, "x")
    check_choice(reset, "reset", RESET_MODES)
    check_int(levels, "levels", minimum=1)
    check_state(x, **state)


def check_unit(value, name: str) -> None:
    """A decay given as a float (or a tensor without gradient) must lie in ``(0, 1]``.

    Tensors that require grad are not read (a host sync per call): their owner keeps them in
    range by parametrisation.
    """
    if isinstance(value, torch.Tensor):
        if value.requires_grad:
            return
        bad = ~torch.isfinite(value) | (value <= 0) | (value > 1)
        if bool(bad.any()):
            raise ValueError(f"{name} must lie in (0, 1], got {value.detach().cpu().tolist()}")
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number in (0, 1] or a tensor, got {type(value).__name__} {value!r}")
    check_in_range(value, name, 0.0, 1.0)


def check_scalar_unit(value, name: str) -> None:
    """Like :func:`check_unit` for Python numbers only (step functions: no device read per step)."""
    if not isinstance(value, torch.Tensor):
        check_unit(value, name)


def param_tensor(value, name: str, x: torch.Tensor, check_value) -> torch.Tensor:
    """A float or tensor parameter as a tensor that broadcasts to ``x[0]``; values checked
    (tensors only when they do not require grad: learnable ones are kept in range by their owner)."""
    if isinstance(value, torch.Tensor):
        check_float_tensor(value, name)
        check_broadcast(value, name, x.shape[1:], "x[0]")
        if value.dim() > 0 or value.device.type != "cpu":
            check_same_device(value, name, x, "x")
        if not value.requires_grad:
            check_value(value)
        return value
    check_value(value)
    return torch.tensor(float(value), dtype=x.dtype, device=x.device)


def positive_checker(name: str, allow_zero: bool = False):
    """``check_value`` for :func:`param_tensor`: finite and ``> 0`` (``>= 0``)."""
    return lambda v: check_positive(v, name, allow_zero=allow_zero)


def unit_checker(name: str):
    """``check_value`` for :func:`param_tensor`: in ``(0, 1]``."""
    return lambda v: check_unit(v, name)


def initial_state(v0, x: torch.Tensor, name: str) -> torch.Tensor:
    """``v0`` checked to be ``[B, ...]`` = ``x.shape[1:]`` (``None``: zeros)."""
    if v0 is None:
        return torch.zeros(x.shape[1:], dtype=x.dtype, device=x.device)
    check_float_tensor(v0, name)
    if tuple(v0.shape) != tuple(x.shape[1:]):
        raise ValueError(f"{name} must have shape x.shape[1:] = {tuple(x.shape[1:])}, got {describe(v0)}")
    check_same_device(v0, name, x, "x")
    return v0


def scan_config(x: torch.Tensor, alpha, surrogate, reset, detach_reset, decay_input, levels,
                relaxed) -> dict:
    """The checks every spiking scan makes after its parameters (``reset``, ``levels``, the
    surrogate and its sharpness ``alpha``, default ``surrogate.alpha``), returned as the backend
    keywords ``alpha, surrogate, reset, detach_reset, decay_input, levels, relaxed``."""
    check_choice(reset, "reset", RESET_MODES)
    check_int(levels, "levels", minimum=1)
    sur = resolve_surrogate(surrogate)
    alpha = alpha_for(sur, x[0], "x[0]") if alpha is None else param_tensor(
        alpha, "alpha", x, positive_checker("alpha"))
    return dict(alpha=alpha, surrogate=sur, reset=reset, detach_reset=bool(detach_reset),
                decay_input=bool(decay_input), levels=int(levels), relaxed=bool(relaxed))
