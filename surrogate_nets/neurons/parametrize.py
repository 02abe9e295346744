"""Constrained neuron parameters: fixed buffers or learnable ``nn.Parameter`` s kept in range by a map.

A learnable quantity is stored unconstrained as ``raw_<name>`` and read through a smooth map onto
its valid range, so that no optimizer step can leave the range and nothing is clamped after the
step:

==========  ==========================================  ==========================================
kind        map (``lo`` = a small floor, see below)     used for
==========  ==========================================  ==========================================
positive    ``lo + softplus(raw)`` in ``(lo, inf)``      thresholds (``lo = 1e-4``), adaptation (0)
unit        ``lo + (1 - lo) sigmoid(raw)``, ``(lo, 1)``  decays ``beta`` (PLIF), ``rho``,
                                                        ``alpha_syn`` (``lo = 1e-4``)
==========  ==========================================  ==========================================

A fixed quantity is a buffer ``fixed_<name>`` (it follows ``.to()`` and lives in ``state_dict``).
Either way ``module.<name>`` returns the constrained tensor (scalar ``[]`` or per-neuron ``shape``).
"""

from __future__ import annotations

from typing import Optional, Sequence, Union

import torch
from torch import nn

from .._positive import inverse_softplus, positive_from_raw, raw_from_positive

#: floor of learnable thresholds and decays (see :class:`Constrained`)
THRESHOLD_FLOOR = 1e-4
DECAY_FLOOR = 1e-4


_inv_softplus = inverse_softplus  # old private name


class Constrained:
    """Class-level descriptor: ``beta = Constrained("unit")`` makes ``self.beta`` the mapped value.

    Learnable values are ``floor + softplus(raw)`` (kind ``"positive"``) or
    ``floor + (1 - floor) * sigmoid(raw)`` (kind ``"unit"``). The small ``floor`` keeps the value
    strictly inside its range even in float32, where ``softplus``/``sigmoid`` of a very negative
    ``raw`` (which a scale-invariant optimizer such as Adam reaches in a few hundred large steps)
    underflows to exactly 0. Fixed values are stored as given.

    Assigning (``neuron.beta = 0.9``) overwrites the value in place, keeping learnability and shape;
    the value is range-checked first (fixed: ``> 0``, or ``>= 0`` with ``allow_zero``, for kind
    ``"positive"``; ``(0, 1]`` for kind ``"unit"``; learnable: the open range of the map).
    """

    def __init__(self, kind: str, doc: str = "", floor: float = 0.0, allow_zero: bool = False):
        if kind not in ("positive", "unit"):
            raise ValueError(f"kind must be 'positive' or 'unit', got {kind!r}")
        self.kind, self.floor = kind, float(floor)
        self.allow_zero = bool(allow_zero)  # a *fixed* value may be 0 (e.g. no adaptation)
        self.__doc__ = doc

    def check_fixed(self, value: torch.Tensor) -> None:
        """Raise ``ValueError`` unless ``value`` lies in the range of a fixed quantity."""
        v = value.detach()
        if self.kind == "positive":
            bad = ~torch.isfinite(v) | ((v < 0) if self.allow_zero else (v <= 0))
            what = "finite and " + (">= 0" if self.allow_zero else "> 0")
        else:
            bad = ~torch.isfinite(v) | (v <= 0) | (v > 1)
            what = "in (0, 1]"
        if bool(bad.any()):
            raise ValueError(f"{self.name} must be {what}, got {v.cpu().tolist()}")

    def __set_name__(self, owner, name):
        self.name = name

    def forward_map(self, raw: torch.Tensor) -> torch.Tensor:
        if self.kind == "positive":
            return positive_from_raw(raw, self.floor)
        out = torch.sigmoid(raw)
        return self.floor + (1 - self.floor) * out if self.floor else out

    def inverse_map(self, value: torch.Tensor) -> torch.Tensor:
        lo = self.floor
        if bool((~torch.isfinite(value) | (value <= lo) | ((value >= 1) if self.kind == "unit" else False)).any()):
            interval = f"({lo}, inf)" if self.kind == "positive" else f"({lo}, 1)"
            raise ValueError(f"a learnable {self.name} must lie in {interval}, got "
                             f"{value.detach().cpu().tolist()}")
        if self.kind == "positive":
            return raw_from_positive(value, lo)
        return torch.logit((value - lo) / (1 - lo))

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        raw = obj._parameters.get("raw_" + self.name)
        if raw is not None:
            return self.forward_map(raw)
        return obj._buffers["fixed_" + self.name]

    def __set__(self, obj, value):
        raw = obj._parameters.get("raw_" + self.name)
        with torch.no_grad():
            if raw is not None:
                target = torch.as_tensor(value, dtype=raw.dtype, device=raw.device)
                raw.copy_(self.inverse_map(target).expand_as(raw))
            else:
                buf = obj._buffers["fixed_" + self.name]
                target = torch.as_tensor(value, dtype=buf.dtype, device=buf.device)
                self.check_fixed(target)
                buf.copy_(target.expand_as(buf))


def as_param_tensor(value: Union[float, torch.Tensor], shape: Optional[Sequence[int]]) -> torch.Tensor:
    """``value`` as a detached tensor in the default dtype, expanded to ``shape`` if given."""
    if isinstance(value, torch.Tensor):
        t = value.detach().clone().to(torch.get_default_dtype())
    else:
        t = torch.tensor(float(value))
    if shape is not None:
        try:
            t = t.expand(tuple(shape)).clone()
        except RuntimeError:
            raise ValueError(
                f"a parameter of shape {tuple(t.shape)} cannot be expanded to shape={tuple(shape)}"
            ) from None
    return t


def register_constrained(module: nn.Module, name: str, value: torch.Tensor, learnable: bool) -> None:
    """Register ``raw_<name>`` (learnable) or ``fixed_<name>`` (buffer) holding ``value``."""
    desc = getattr(type(module), name)
    if learnable:
        module.register_parameter("raw_" + name, nn.Parameter(desc.inverse_map(value)))
    else:
        module.register_buffer("fixed_" + name, value)


def is_learnable(module: nn.Module, name: str) -> bool:
    """Whether ``module.<name>`` is held as a learnable parameter."""
    return ("raw_" + name) in module._parameters
