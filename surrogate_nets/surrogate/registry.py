"""Look up surrogate families by name: ``get("atan", alpha=2.0, learnable=True)``."""

from __future__ import annotations

from typing import Dict, Type, Union

from .base import Surrogate
from .families import BUILTINS

_REGISTRY: Dict[str, Type[Surrogate]] = {cls.name: cls for cls in BUILTINS}
_ALIASES = {
    "ste": "straight_through",
    "boxcar": "straight_through",
    "superspike": "fast_sigmoid",
    "arctan": "atan",
    "piecewise_exp": "exponential",
    "laplace": "exponential",
    "triangular": "triangle",
    "rect": "rectangle",
    "normal": "gaussian",
}


def _key(name: str) -> str:
    return name.strip().lower().replace("-", "_")


def names() -> list:
    """The registered surrogate names (aliases excluded), sorted."""
    return sorted(_REGISTRY)


def register(name: str, cls: Type[Surrogate]) -> Type[Surrogate]:
    """Register a user family under ``name`` so that :func:`get` and the command line find it."""
    if not (isinstance(cls, type) and issubclass(cls, Surrogate)):
        raise TypeError(f"cls must be a Surrogate subclass, got {cls!r}")
    _REGISTRY[_key(name)] = cls
    return cls


def get(name: Union[str, Surrogate], **kwargs) -> Surrogate:
    """Build a surrogate by registry name; a :class:`Surrogate` instance is returned as is.

    Args:
        name: e.g. ``"atan"``, ``"fast-sigmoid"`` (``-`` and ``_`` are interchangeable).
        **kwargs: passed to the class (``alpha``, ``learnable``, ``grad_scale``).

    Raises:
        ValueError: unknown name; the message lists the valid names.
    """
    if isinstance(name, Surrogate):
        if kwargs:
            raise ValueError(f"keyword arguments {sorted(kwargs)} given with a Surrogate instance")
        return name
    if not isinstance(name, str):
        raise TypeError(f"surrogate must be a name (str) or a Surrogate, got {type(name).__name__}")
    key = _key(name)
    key = _ALIASES.get(key, key)
    if key not in _REGISTRY:
        raise ValueError(
            f"unknown surrogate {name!r}; expected one of {names()} (aliases: {sorted(_ALIASES)})"
        )
    return _REGISTRY[key](**kwargs)
