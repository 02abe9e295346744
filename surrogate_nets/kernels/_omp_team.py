"""Run GIL-free numba kernels in torch's own OpenMP thread team (Linux, torch built with libgomp).

Why: after every parallel op torch's GNU OpenMP workers busy-wait (``GOMP_SPINCOUNT``: 300,000
spins when ``OMP_WAIT_POLICY`` is unset, per the libgomp manual) on the cores a separate Python
thread pool would need, so a kernel split over our own threads ran barely faster than on one
thread (``benchmarks/RESULTS.md``). Entering torch's team instead hands the parts to those very
(already awake) workers: ``GOMP_parallel`` from torch's loaded ``libgomp`` runs a ctypes callback
on every team thread; each callback calls the numba kernel for its parts, and the kernel releases
the GIL while it computes. Exceptions raised in a part are re-raised in the caller.

:func:`run_parts` returns ``None`` when this is unavailable (not Linux, torch not linked to
libgomp, or ``SURROGATE_NETS_OMP_TEAM=0``); the callers then use their thread pool.
"""

from __future__ import annotations

import ctypes
import os
import sys

_STATE = {}
_CALLBACK = ctypes.CFUNCTYPE(None, ctypes.c_void_p)


def _libgomp():
    """torch's loaded libgomp (ctypes handle with the two entry points), or ``None``."""
    if "lib" in _STATE:
        return _STATE["lib"]
    lib = None
    if os.environ.get("SURROGATE_NETS_OMP_TEAM", "1") != "0" and sys.platform.startswith("linux"):
        try:
            import torch

            torch_dir = os.path.dirname(torch.__file__)
            with open("/proc/self/maps") as f:
                paths = {line.split()[-1] for line in f if "libgomp" in line and torch_dir in line}
            if len(paths) == 1:
                lib = ctypes.CDLL(paths.pop())  # the already-loaded library: same runtime as torch
                lib.GOMP_parallel.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint]
                lib.GOMP_parallel.restype = None
                lib.omp_get_thread_num.restype = ctypes.c_int
                lib.omp_get_num_threads.restype = ctypes.c_int
        except (OSError, AttributeError, ImportError):
            lib = None
    _STATE["lib"] = lib
    return lib


def run_parts(fn, parts, *args, per_part=None):
    """``[fn(*args, *per_part[t], lo, hi) for t, (lo, hi) in enumerate(parts)]`` on torch's OpenMP
    team (part ``t`` on team thread ``t mod team size``); ``None`` if that is unavailable."""
    lib = _libgomp()
    if lib is None or len(parts) < 2:
        return None
    extra = per_part or [()] * len(parts)
    results = [None] * len(parts)
    errors = []

    def body(_):
        tid, team = lib.omp_get_thread_num(), lib.omp_get_num_threads()
        for t in range(tid, len(parts), max(1, team)):
            try:
                results[t] = fn(*args, *extra[t], *parts[t])
            except BaseException as e:  # noqa: BLE001 -- re-raised in the caller below
                errors.append(e)

    callback = _CALLBACK(body)
    lib.GOMP_parallel(ctypes.cast(callback, ctypes.c_void_p), None, len(parts), 0)
    if errors:
        raise errors[0]
    return results


__all__ = ["run_parts"]
