r"""Argument checks of the neuron constructors: the per-neuron ``shape`` and the decays.

Split out of :mod:`surrogate_nets.neurons.base` (which re-exports every name here).
``decay_from`` turns ``beta`` or ``tau`` into the per-step decay, following PLIF (Fang et al.,
ICCV 2021): ``beta = 1 - 1/tau``.
"""

from __future__ import annotations

import numbers
from typing import Optional, Sequence, Tuple, Union

import torch

from .._validate import check_float_tensor, check_in_range, check_int

Shape = Union[int, Sequence[int], None]


def _resolve_shape(shape: Shape, num_neurons: Optional[int]) -> Optional[Tuple[int, ...]]:
    if num_neurons is not None:
        n = check_int(num_neurons, "num_neurons", minimum=1)
        if shape is not None and tuple(_resolve_shape(shape, None)) != (n,):
            raise ValueError(f"shape={shape!r} contradicts num_neurons={n}; give one of them")
        return (n,)
    if shape is None:
        return None
    if isinstance(shape, numbers.Integral) and not isinstance(shape, bool):
        shape = (int(shape),)
    try:
        out = tuple(check_int(s, "shape entry", minimum=1) for s in shape)
    except TypeError:
        raise TypeError(f"shape must be an int or a sequence of ints, got {shape!r}") from None
    return out


def _check_unit(value, name: str, learnable: bool) -> None:
    """``value`` in ``(0, 1]`` (``(0, 1)`` if it is to be learnt through a sigmoid)."""
    hi_open = learnable
    if isinstance(value, torch.Tensor):
        check_float_tensor(value, name)
        v = value.detach()
        bad = ~torch.isfinite(v) | (v <= 0) | ((v >= 1) if hi_open else (v > 1))
        if bool(bad.any()):
            interval = "(0, 1)" if hi_open else "(0, 1]"
            raise ValueError(f"{name} must lie in {interval}, got {v.cpu().tolist()}"
                             + (" (a learnable decay must be < 1)" if hi_open else ""))
        return
    if learnable and isinstance(value, numbers.Real) and not isinstance(value, bool) and value == 1:
        raise ValueError(f"{name} must lie in (0, 1) when learnable (sigmoid parametrisation), got {value!r}")
    check_in_range(value, name, 0.0, 1.0, low_open=True, high_open=hi_open)


def decay_from(beta, tau, beta_name: str, tau_name: str, default_tau: float, learnable: bool):
    r"""The decay ``beta`` from either ``beta`` or ``tau`` (``beta = 1 - 1/tau``), validated.

    ``tau`` follows PLIF (Fang et al., ICCV 2021): ``H = V + (X - V)/tau`` leaks by ``1/tau``
    per step, i.e. ``beta = 1 - 1/tau`` and ``tau > 1``; ``beta`` is the per-step decay itself.
    """
    if beta is not None and tau is not None:
        raise ValueError(f"give {beta_name} or {tau_name}, not both (got {beta_name}={beta!r}, {tau_name}={tau!r})")
    if beta is None:
        tau = default_tau if tau is None else tau
        if isinstance(tau, torch.Tensor):
            check_float_tensor(tau, tau_name)
            t = tau.detach()
            if bool((~torch.isfinite(t) | (t <= 1)).any()):
                raise ValueError(f"{tau_name} must be finite and > 1 ({beta_name} = 1 - 1/{tau_name} "
                                 f"must lie in (0, 1)), got {t.cpu().tolist()}")
            return 1 - 1 / t
        if isinstance(tau, bool) or not isinstance(tau, numbers.Real):
            raise TypeError(f"{tau_name} must be a real number or tensor, got {type(tau).__name__} {tau!r}")
        if not (tau > 1 and tau < float("inf")):
            raise ValueError(f"{tau_name} must be finite and > 1 ({beta_name} = 1 - 1/{tau_name} must "
                             f"lie in (0, 1)), got {tau!r}")
        return 1 - 1 / float(tau)
    if not isinstance(beta, torch.Tensor) and (isinstance(beta, bool) or not isinstance(beta, numbers.Real)):
        raise TypeError(f"{beta_name} must be a real number or tensor, got {type(beta).__name__} {beta!r}")
    _check_unit(beta, beta_name, learnable)
    return beta
