"""Fused kernels behind the scan backend seam: Triton for CUDA, numba for CPU (both optional).

Importing this package imports neither triton nor numba: it registers *lazy* backends with
:func:`surrogate_nets.functional.lif.register_lif_backend` whose ``supports`` checks are cheap,
and the kernel modules load on the first call that uses them.

Backends registered for ``lif_scan`` (and so for ``LIF``/``IF``/PLIF modules):

* ``"triton"`` (:mod:`.triton_lif`): CUDA tensors, every built-in surrogate family
  (:mod:`.triton_surrogates`). Picked by ``backend="auto"`` on CUDA. CPU tensors only run under
  Triton's interpreter (``TRITON_INTERPRET=1`` before triton is imported) and only when asked for
  by name or after :func:`allow_triton_on_cpu` (the tests do this).
* ``"numba"`` (:mod:`.numba_lif`): CPU tensors, float32/float64; picked by ``"auto"`` on CPU for
  layers of at least :data:`NUMBA_MIN_NEURONS` neurons per step, where it was measured faster than
  ``"torch"`` (``benchmarks/RESULTS.md``); ``SURROGATE_NETS_NO_NUMBA=1`` turns it off.

A surrogate family without a kernel form (a user subclass) runs the ``"torch"`` backend
instead, with a one-time warning.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import warnings

from ..functional.backends import register_backend
from ..functional.lif import _scan_torch, register_lif_backend

__all__ = ["triton_available", "numba_available", "allow_triton_on_cpu", "has_kernel_form"]

_STATE = {"triton_cpu": os.environ.get("SURROGATE_NETS_TRITON_CPU", "") == "1", "warned": set()}
_ENABLED = {"numba": os.environ.get("SURROGATE_NETS_NO_NUMBA", "") != "1"}


def triton_available() -> bool:
    """Whether triton can be imported (without importing it)."""
    return importlib.util.find_spec("triton") is not None


def numba_available() -> bool:
    """Whether numba can be imported (without importing it)."""
    return _ENABLED["numba"] and importlib.util.find_spec("numba") is not None


def triton_interpreting() -> bool:
    """Whether Triton runs in interpreter mode (CPU tensors allowed)."""
    return os.environ.get("TRITON_INTERPRET", "") == "1"


def allow_triton_on_cpu(flag: bool = True) -> None:
    """Let ``backend="auto"`` use the Triton kernels on CPU tensors under ``TRITON_INTERPRET=1``.

    Only for testing the CUDA kernels without a GPU (the interpreter is slow).
    Environment equivalent: ``SURROGATE_NETS_TRITON_CPU=1``.
    """
    _STATE["triton_cpu"] = bool(flag)


def _builtin_family(surrogate) -> bool:
    from ..surrogate.families import BUILTINS

    return type(surrogate) in BUILTINS


def has_kernel_form(surrogate) -> bool:
    """Whether the fused kernels know ``surrogate``'s family (built-ins: yes; user families: no)."""
    return _builtin_family(surrogate)


def _fallback(name: str, surrogate, kw):
    key = (name, type(surrogate))
    if key not in _STATE["warned"]:
        _STATE["warned"].add(key)
        warnings.warn(
            f"surrogate family {type(surrogate).__name__} has no {name} kernel form; using the "
            f"torch lif_scan backend for it (register a kernel form in surrogate_nets.kernels to "
            f"fuse it)", RuntimeWarning, stacklevel=4)
    return _scan_torch(**kw)


# --------------------------------------------------------------------------------- triton
def _triton_device_ok(x) -> bool:
    if x.is_cuda:
        return True
    return x.device.type == "cpu" and triton_interpreting()


def _triton_lif(**kw):
    x = kw["x"]
    if not _triton_device_ok(x):
        raise ValueError(
            f"backend 'triton' needs CUDA tensors (or TRITON_INTERPRET=1 for CPU tensors), got x "
            f"on {x.device}")
    if not _builtin_family(kw["surrogate"]) or kw["relaxed"]:
        if kw["relaxed"]:
            return _scan_torch(**kw)
        return _fallback("triton", kw["surrogate"], kw)
    from .triton_lif import triton_lif_scan

    return triton_lif_scan(**kw)


def _triton_lif_supports(x, relaxed=False, **kw) -> bool:
    if relaxed or not triton_available():
        return False
    if x.is_cuda:
        return True
    return _STATE["triton_cpu"] and x.device.type == "cpu" and triton_interpreting()


# ---------------------------------------------------------------------------------- numba
def _numba_lif(**kw):
    x = kw["x"]
    if x.device.type != "cpu":
        raise ValueError(f"backend 'numba' needs CPU tensors, got x on {x.device}")
    if kw["relaxed"]:
        return _scan_torch(**kw)
    if not _builtin_family(kw["surrogate"]):
        return _fallback("numba", kw["surrogate"], kw)
    from .numba_lif import numba_lif_scan

    return numba_lif_scan(**kw)


#: ``backend="auto"`` uses numba from this many neurons per step (``x[0].numel()``) on. Measured
#: (benchmarks/RESULTS.md, 2 threads, T=100): 16k neurons torch 16 ms vs numba 32 ms; 65k: torch
#: 130-920 ms vs numba 78-97 ms; 262k: torch 920-1100 ms vs numba 300 ms (the torch backend's
#: per-step slices fall out of cache, numba's blocks stay in L1; below that, numba loses to
#: its per-call overhead).
NUMBA_MIN_NEURONS = 32768


def _numba_lif_supports(x, relaxed=False, **kw) -> bool:
    import torch

    return (not relaxed and x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64)
            and x[0].numel() >= NUMBA_MIN_NEURONS and numba_available())


register_lif_backend("triton", _triton_lif, supports=_triton_lif_supports, auto=True)
register_lif_backend("numba", _numba_lif, supports=_numba_lif_supports, auto=True)


# ------------------------------------------------------------------------------------- li
def _triton_li(x, v0, beta, decay_input):
    """Op ``li`` on the Triton LIF scan: threshold ``inf`` and no reset give ``h_t = v_t``."""
    if not _triton_device_ok(x):
        raise ValueError(
            f"backend 'triton' needs CUDA tensors (or TRITON_INTERPRET=1 for CPU tensors), got x "
            f"on {x.device}")
    import torch

    from ..surrogate.families import StraightThrough
    from .triton_lif import triton_lif_scan

    inf = torch.full((), float("inf"), dtype=x.dtype, device=x.device)
    one = torch.ones((), dtype=x.dtype, device=x.device)
    return triton_lif_scan(x=x, v0=v0, beta=beta, threshold=inf, alpha=one,
                           surrogate=StraightThrough(), reset="none", detach_reset=False,
                           decay_input=decay_input, levels=1, relaxed=False).h


def _numba_li(x, v0, beta, decay_input):
    if x.device.type != "cpu":
        raise ValueError(f"backend 'numba' needs CPU tensors, got x on {x.device}")
    from .numba_li import numba_li_scan

    return numba_li_scan(x, v0, beta, decay_input)


def _numba_li_supports(x, **kw) -> bool:
    import torch

    return (x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64)
            and x[0].numel() >= NUMBA_MIN_NEURONS and numba_available())


register_backend("li", "triton", _triton_li, supports=_triton_lif_supports, auto=True)
register_backend("li", "numba", _numba_li, supports=_numba_li_supports, auto=True)
