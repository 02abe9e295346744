r"""The backend seam: one registry of implementations for every scan (and the fused quantizer).

An *op* is a whole-sequence computation with one numerical contract; a *backend* is one
implementation of it. ``"torch"`` (the hand-written-BPTT reference in this package) is always
registered for every op; fused kernels (a compiled CPU loop, Triton on CUDA) register themselves
with :func:`register_backend`, and ``backend="auto"`` picks the highest-priority auto backend
whose ``supports(**kw)`` accepts the call, else ``"torch"``.

==============  ===========================================================  =====================
op              ``fn(**kw)`` keyword arguments (already validated)            returns
==============  ===========================================================  =====================
``lif``         ``x, v0, beta, threshold, alpha, surrogate, reset,``          ``LIFScanResult``
                ``detach_reset, decay_input, levels, relaxed``                ``(spikes, h, v)``
``alif``        ``x, v0, a0, beta, rho, threshold, adaptation, alpha,``       ``ALIFScanResult``
                ``surrogate, reset, detach_reset, decay_input, levels,``      ``(spikes, h, v, a)``
                ``relaxed``
``synaptic``    ``x, i0, v0, alpha_syn, beta, threshold, alpha, surrogate,``  ``SynapticScanResult``
                ``reset, detach_reset, decay_input, levels, relaxed``         ``(spikes, h, i, v)``
``li``          ``x, v0, beta, decay_input``                                  ``v [T, B, ...]``
``fake_quant``  ``x, step, offset, alpha, surrogate, lo, hi, binary, pact,``  ``q``
                ``fast, grad_scale``
==============  ===========================================================  =====================

Each op's scan module documents its equations (:mod:`~surrogate_nets.functional.lif`,
:mod:`~surrogate_nets.functional.alif`, :mod:`~surrogate_nets.functional.synaptic`,
:mod:`~surrogate_nets.functional.li`, :mod:`surrogate_nets.quant.fake_quant`). Every backend
must give the same forward and the same gradients (for every differentiable input) as the torch
reference; ``tests/functional/test_backends.py`` holds *every registered backend of every op*
to ``tests/reference.py`` automatically.
"""

from __future__ import annotations

from typing import Callable, Dict, List, Optional, Tuple

__all__ = [
    "OPS", "register_backend", "unregister_backend", "list_backends", "dispatch", "get_backend",
    "check_backend", "backend_supports",
]

#: the ops of the seam
OPS = ("lif", "alif", "synaptic", "li", "fake_quant")

_REGISTRY: Dict[str, Dict[str, Callable]] = {op: {} for op in OPS}
_AUTO: Dict[str, List[Tuple[int, int, str, Callable]]] = {op: [] for op in OPS}
_SUPPORTS: Dict[str, Dict[str, Callable]] = {op: {} for op in OPS}
_ORDER = [0]  # registration counter: ties in priority keep registration order


def _check_op(op: str) -> str:
    if op not in _REGISTRY:
        raise ValueError(f"op must be one of {list(OPS)}, got {op!r}")
    return op


def _always(**kw) -> bool:
    return True


def register_backend(op: str, name: str, fn: Callable, *, supports: Optional[Callable[..., bool]] = None,
                     auto: bool = True, priority: int = 0) -> None:
    """Register ``fn`` as backend ``name`` of ``op`` (replacing a backend of that name).

    Args:
        op: one of :data:`OPS`.
        name: the ``backend=`` name (not ``"auto"``).
        fn: ``fn(**kw)`` with the op's keyword arguments (see the module table).
        supports: ``supports(**kw) -> bool``; ``backend="auto"`` uses ``fn`` only when it returns
            ``True`` (e.g. CUDA tensors and a built-in surrogate). ``None``: always.
        auto: take part in ``backend="auto"``.
        priority: higher is tried first by ``"auto"`` (ties: registration order).
    """
    _check_op(op)
    if not isinstance(name, str) or not name or name == "auto":
        raise TypeError(f"name must be a non-empty str other than 'auto', got {name!r}")
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}")
    if supports is not None and not callable(supports):
        raise TypeError(f"supports must be callable or None, got {type(supports).__name__}")
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise TypeError(f"priority must be an int, got {type(priority).__name__} {priority!r}")
    _AUTO[op] = [e for e in _AUTO[op] if e[2] != name]  # replacing: drop the old auto entry
    _REGISTRY[op][name] = fn
    _SUPPORTS[op][name] = supports or _always
    if auto:
        _ORDER[0] += 1
        _AUTO[op].append((-priority, _ORDER[0], name, supports or _always))
        _AUTO[op].sort(key=lambda e: e[:2])


def unregister_backend(op: str, name: str, missing_ok: bool = False) -> None:
    """Remove backend ``name`` of ``op`` (the ``"torch"`` reference cannot be removed)."""
    _check_op(op)
    if name == "torch":
        raise ValueError(f"the 'torch' reference backend of {op!r} cannot be unregistered")
    if name not in _REGISTRY[op]:
        if missing_ok:
            return
        raise ValueError(f"no backend {name!r} registered for op {op!r}; have {list_backends(op)}")
    del _REGISTRY[op][name]
    del _SUPPORTS[op][name]
    _AUTO[op] = [e for e in _AUTO[op] if e[2] != name]


def list_backends(op: str) -> List[str]:
    """The registered backend names of ``op`` (``"torch"`` always; ``"auto"`` is also accepted)."""
    return list(_REGISTRY[_check_op(op)])


def check_backend(op: str, backend: str) -> str:
    """``backend`` if it is ``"auto"`` or registered for ``op``, else ``ValueError``."""
    if backend != "auto" and backend not in _REGISTRY[_check_op(op)]:
        raise ValueError(f"backend must be one of {['auto'] + list_backends(op)} for op {op!r}, got {backend!r}")
    return backend


def backend_supports(op: str, name: str, **kw) -> bool:
    """Whether backend ``name`` of ``op`` declares that it handles the call ``kw``."""
    check_backend(op, name)
    return bool(_SUPPORTS[op][name](**kw))


def get_backend(op: str, backend: str, **kw) -> Callable:
    """The implementation ``dispatch`` would call (``"auto"`` resolved against ``kw``)."""
    reg = _REGISTRY[_check_op(op)]
    if backend == "auto":
        for _, _, name, supports in _AUTO[op]:
            if supports(**kw):
                return reg[name]
        return reg["torch"]
    fn = reg.get(backend)
    if fn is None:
        check_backend(op, backend)
    return fn


def dispatch(op: str, backend: str, **kw):
    """Run ``op`` with ``backend`` (``"auto"``: the first auto backend that supports ``kw``, else ``"torch"``)."""
    return get_backend(op, backend, **kw)(**kw)
