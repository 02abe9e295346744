"""Surrogate-gradient families: smooth relaxations of the Heaviside step with a sharpness alpha.

See :class:`Surrogate` for the contract and the meaning of the alpha gradient; :func:`get` builds
one by name.
"""

from .adaptive import Adaptive, half_width
from .base import Surrogate
from .families import (
    ATan,
    DSpike,
    Erf,
    Exponential,
    FastSigmoid,
    Gaussian,
    Rectangle,
    Sigmoid,
    SoftSign,
    StraightThrough,
    Triangle,
)
from .registry import get, names, register
from .helpers import alpha_for, alpha_grad, resolve_surrogate
from .schedule import AlphaSchedule

__all__ = [
    "Surrogate", "StraightThrough", "Rectangle", "Sigmoid", "FastSigmoid", "SoftSign", "ATan",
    "Triangle", "Gaussian", "Erf", "Exponential", "DSpike", "get", "names", "register",
    "AlphaSchedule", "Adaptive", "half_width", "resolve_surrogate", "alpha_for", "alpha_grad",
]
