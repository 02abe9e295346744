"""Look up surrogate families by name: ``get("atan", alpha=2.0, learnable=True)``.

Names are matched case-insensitively with ``-`` and ``_`` interchangeable (one normalisation for
the package, :func:`surrogate_nets._registry.normalize`). Besides the built-ins and what
:func:`register` adds in the running process, installed distributions can ship families as
entry points of the group ``surrogate_nets.surrogates``::

    [project.entry-points."surrogate_nets.surrogates"]
    my_family = "my_package.surrogates:MyFamily"   # a Surrogate subclass

after which ``get("my_family")`` and ``surrogate-nets train --surrogate my_family`` find it.
Loading an entry point imports that package (runs its code, like any import); only a
:class:`Surrogate` subclass is accepted. A built-in name wins over a plug-in of the same name.
"""

from __future__ import annotations

from typing import Type, Union

from .._registry import Registry
from .base import Surrogate
from .families import BUILTINS

#: Entry-point group in which installed distributions advertise surrogate families.
ENTRY_POINT_GROUP = "surrogate_nets.surrogates"

REGISTRY = Registry("surrogate", ENTRY_POINT_GROUP)
for _cls in BUILTINS:
    REGISTRY.register(_cls.name, _cls)
for _alias, _name in {
    "ste": "straight_through",
    "boxcar": "straight_through",
    "superspike": "fast_sigmoid",
    "arctan": "atan",
    "piecewise_exp": "exponential",
    "laplace": "exponential",
    "triangular": "triangle",
    "rect": "rectangle",
    "normal": "gaussian",
}.items():
    REGISTRY.alias(_alias, _name)


def names(include_plugins: bool = True) -> list:
    """The registered surrogate names (aliases excluded) and installed plug-ins, sorted."""
    return REGISTRY.names(include_plugins)


def _check_class(obj, origin: str) -> Type[Surrogate]:
    if not (isinstance(obj, type) and issubclass(obj, Surrogate)):
        raise TypeError(f"surrogate plug-in {origin} is {obj!r}, not a Surrogate subclass")
    return obj


def register(name: str, cls: Type[Surrogate]) -> Type[Surrogate]:
    """Register a user family under ``name`` so that :func:`get` and the command line find it
    in this process (for a pip-installed family use the entry-point group instead)."""
    if not (isinstance(cls, type) and issubclass(cls, Surrogate)):
        raise TypeError(f"cls must be a Surrogate subclass, got {cls!r}")
    return REGISTRY.register(name, cls)


def lookup(name: str) -> Type[Surrogate]:
    """The :class:`Surrogate` subclass registered (or installed) under ``name``."""
    if not isinstance(name, str):
        raise TypeError(f"surrogate must be a name (str) or a Surrogate, got {type(name).__name__}")
    return REGISTRY.lookup(name, _check_class)


def get(name: Union[str, Surrogate], **kwargs) -> Surrogate:
    """Build a surrogate by registry name; a :class:`Surrogate` instance is returned as is.

    Args:
        name: e.g. ``"atan"``, ``"fast-sigmoid"`` (``-`` and ``_`` are interchangeable), or the
            name of an installed plug-in (entry-point group ``surrogate_nets.surrogates``).
        **kwargs: passed to the class (``alpha``, ``learnable``, ``grad_scale``).

    Raises:
        ValueError: unknown name; the message lists the valid names.
    """
    if isinstance(name, Surrogate):
        if kwargs:
            raise ValueError(f"keyword arguments {sorted(kwargs)} given with a Surrogate instance")
        return name
    return lookup(name)(**kwargs)
