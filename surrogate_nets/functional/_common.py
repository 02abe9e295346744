"""Deprecated location of the surrogate helpers: use :mod:`surrogate_nets.surrogate` instead."""

from ..surrogate.helpers import alpha_for, alpha_grad, auto_numel, auto_scale_numel, resolve_surrogate

__all__ = ["resolve_surrogate", "alpha_for", "alpha_grad", "auto_scale_numel", "auto_numel"]
