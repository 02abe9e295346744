"""Argument checks shared by the whole package.

Every public entry point validates its input with these helpers, so that a bad argument always
raises a ``ValueError`` or ``TypeError`` whose message names the argument, what was expected and
what was received.
"""

from __future__ import annotations

import math
import numbers
from typing import Iterable

import torch

_FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def describe(value) -> str:
    """A short description of ``value`` for error messages (shape/dtype/device of tensors)."""
    if isinstance(value, torch.Tensor):
        return f"Tensor(shape={tuple(value.shape)}, dtype={value.dtype}, device={value.device})"
    return repr(value)


def check_float_tensor(x, name: str, min_dim: int = 0) -> torch.Tensor:
    """Require a floating-point tensor of at least ``min_dim`` dimensions (fx Proxies pass)."""
    if isinstance(x, torch.fx.Proxy):  # symbolic tracing (torch.fx, nirtorch): nothing to check
        return x
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dtype not in _FLOAT_DTYPES:
        raise TypeError(
            f"{name} must have a floating dtype (float16, bfloat16, float32 or float64), got {x.dtype}"
        )
    if x.dim() < min_dim:
        raise ValueError(
            f"{name} must have at least {min_dim} dimensions, got shape {tuple(x.shape)}"
        )
    return x


def check_time_major(x, name: str = "input") -> torch.Tensor:
    """Require a time-major ``[T, B, ...]`` float tensor with ``T >= 1``."""
    check_float_tensor(x, name, min_dim=2)
    if not isinstance(x, torch.fx.Proxy) and x.shape[0] == 0:
        raise ValueError(f"{name} must have T >= 1 time steps (dim 0), got shape {tuple(x.shape)}")
    return x


def check_positive(value, name: str, allow_zero: bool = False):
    """Require a finite positive number (or a tensor whose entries all are).

    Tensors are checked only when they do not require grad (checking a parameter would be a
    host sync inside the training loop); use parametrisation to keep parameters in range.
    """
    if isinstance(value, torch.Tensor):
        if value.requires_grad:
            return value
        bad = ~torch.isfinite(value) | ((value < 0) if allow_zero else (value <= 0))
        if bool(bad.any()):
            bound = ">= 0" if allow_zero else "> 0"
            raise ValueError(f"{name} must be finite and {bound}, got {value.detach().cpu().tolist()}")
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    ok = math.isfinite(value) and (value >= 0 if allow_zero else value > 0)
    if not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be finite and {bound}, got {value!r}")
    return value


def check_in_range(value, name: str, low: float, high: float, low_open=True, high_open=False):
    """Require ``low < value <= high`` (bounds open/closed as given) for a real number."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    lo_ok = value > low if low_open else value >= low
    hi_ok = value < high if high_open else value <= high
    if not (math.isfinite(value) and lo_ok and hi_ok):
        interval = ("(" if low_open else "[") + f"{low}, {high}" + (")" if high_open else "]")
        raise ValueError(f"{name} must lie in {interval}, got {value!r}")
    return value


def check_int(value, name: str, minimum: int | None = None, maximum: int | None = None) -> int:
    """Require an integer (not bool) within optional bounds."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")
    return int(value)


def check_choice(value, name: str, choices: Iterable[str]) -> str:
    """Require ``value`` to be one of ``choices``; the error lists them."""
    choices = list(choices)
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value


def check_broadcast(small: torch.Tensor, name: str, target_shape, target_name: str = "input"):
    """Require ``small`` to broadcast to ``target_shape`` without enlarging it."""
    if small.dim() == 0:  # a scalar always does (fast path: modules check every call)
        return small
    try:
        out = torch.broadcast_shapes(tuple(small.shape), tuple(target_shape))
    except RuntimeError:
        out = None
    if out != tuple(target_shape):
        raise ValueError(
            f"{name} of shape {tuple(small.shape)} must broadcast to {target_name} of shape "
            f"{tuple(target_shape)} (trailing dims aligned, each 1 or equal)"
        )
    return small


def check_same_device(a: torch.Tensor, a_name: str, b: torch.Tensor, b_name: str):
    """Require two tensors on the same device."""
    if a.device != b.device:
        raise ValueError(
            f"{a_name} is on {a.device} but {b_name} is on {b.device}; move them to the same device"
        )


def sum_to_shape(t: torch.Tensor, shape) -> torch.Tensor:
    """Sum a broadcast result back to ``shape`` (the inverse of broadcasting), as autograd does."""
    shape = tuple(shape)
    if tuple(t.shape) == shape:
        return t
    lead = t.dim() - len(shape)
    if lead > 0:
        t = t.sum(dim=tuple(range(lead)))
    dims = tuple(i for i, s in enumerate(shape) if s == 1 and t.shape[i] != 1)
    if dims:
        t = t.sum(dim=dims, keepdim=True)
    return t.reshape(shape)
