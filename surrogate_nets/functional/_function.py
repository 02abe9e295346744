"""A base for the ``forward`` + ``setup_context`` autograd Functions without the per-call signature cost.

``torch.autograd.Function.apply`` binds the arguments against ``inspect.signature(forward)`` on
every call once ``setup_context`` is defined. When no ``torch.func`` transform is active and
every argument of ``forward`` is given positionally there is nothing to bind, so
:class:`FunctionalFunction` goes straight to the C++ ``apply``; otherwise
(``torch.func.grad``/``vmap``, keyword or defaulted arguments) it takes the standard path.
"""

from __future__ import annotations

# Why: the signature binding costs about 60 us per call on CPU, a third of a small spike's forward.

import inspect

import torch
from torch._functorch.utils import unwrap_dead_wrappers


class FunctionalFunction(torch.autograd.Function):
    """``torch.autograd.Function`` in the ``setup_context`` form with a fast positional ``apply``."""

    _nargs = -1

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "forward" in cls.__dict__:
            cls._nargs = len(inspect.signature(cls.forward).parameters)

    @classmethod
    def apply(cls, *args, **kwargs):
        if kwargs or len(args) != cls._nargs or torch._C._are_functorch_transforms_active():
            return super().apply(*args, **kwargs)
        return super(torch.autograd.Function, cls).apply(*unwrap_dead_wrappers(args))
