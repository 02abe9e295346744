r"""One thread split for every numba CPU kernel: :func:`split` cuts ``[0, n)`` into parts,
:func:`run` runs ``fn(*args, *per_part[t], lo, hi)`` for every part ``t = (lo, hi)``.

Every kernel that goes through here treats its parts independently (neurons, rows, samples; a
reduction is accumulated per part into its own buffer and summed by the caller in part order), so
results depend only on the parts, never on which thread ran which part or when. The parts depend
only on ``n``, the minimum work per thread and ``torch.get_num_threads()``.

Where the parts run, in order of preference:

1. **torch's own OpenMP team** (Linux, torch linked to GNU libgomp): ``GOMP_parallel`` of torch's
   already-loaded ``libgomp`` (through ctypes) runs a callback on every team thread, and each
   takes the next part until none is left (the kernels release the GIL while they compute). Why:
   after every parallel op torch's libgomp workers busy-wait (``GOMP_SPINCOUNT``, 300,000 spins
   when ``OMP_WAIT_POLICY`` is unset, per the libgomp manual) on the cores a separate thread pool
   would need, so kernels split over our own threads ran barely faster than on one thread
   (``benchmarks/RESULTS.md``); the team's workers are those very (awake) threads.
2. otherwise (another platform or OpenMP runtime, ``SURROGATE_NETS_OMP_TEAM=0``, or
   ``team=False``): one shared thread pool; the calling thread works too and every thread takes
   the next part when done (dynamic scheduling: on shared cores a helper that is not scheduled for
   a while delays nothing).

A single part runs in the calling thread. An exception raised by a part is re-raised in the
caller once every started part has finished.

Environment: ``SURROGATE_NETS_OMP_TEAM=0`` (read once, at the first parallel call) turns the
OpenMP team off everywhere.

After ``fork()`` (``multiprocessing``'s fork start method, ``os.fork``) the child has neither the
parent's pool threads nor a usable OpenMP team (GNU OpenMP hangs in a child whose parent ran a
parallel region), so a forked child starts a fresh pool and never uses the team.
"""

from __future__ import annotations

import ctypes
import itertools
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import torch

_STATE = {}  # "lib": torch's libgomp (or None), "pool": (executor, its size)
_LOCK = threading.Lock()
_CALLBACK = ctypes.CFUNCTYPE(None, ctypes.c_void_p)


def _after_fork_in_child() -> None:
    """A forked child: a fresh lock (another thread may have held it), no inherited pool (its
    threads did not survive the fork), no OpenMP team (see the module docstring)."""
    global _LOCK
    _LOCK = threading.Lock()
    _STATE.pop("pool", None)
    _STATE["lib"] = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _libgomp():
    """torch's loaded libgomp (ctypes handle with the entry points used here), or ``None``."""
    if "lib" in _STATE:
        return _STATE["lib"]
    lib = None
    if os.environ.get("SURROGATE_NETS_OMP_TEAM", "1") != "0" and sys.platform.startswith("linux"):
        try:
            torch_dir = os.path.dirname(torch.__file__)
            with open("/proc/self/maps") as f:
                paths = {line.split()[-1] for line in f if "libgomp" in line and torch_dir in line}
            if len(paths) == 1:
                lib = ctypes.CDLL(paths.pop())  # the already-loaded library: same runtime as torch
                lib.GOMP_parallel.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint]
                lib.GOMP_parallel.restype = None
        except (OSError, AttributeError):
            lib = None
    _STATE["lib"] = lib
    return lib


def team_available() -> bool:
    """Whether :func:`run` can use torch's OpenMP team in this process."""
    return _libgomp() is not None


def split(n: int, min_per: int = 1, align: int = 1, per_thread: int = 1) -> list[tuple[int, int]]:
    """``[(lo, hi), ...]`` covering ``[0, n)`` in order.

    ``workers = min(torch.get_num_threads(), n // min_per)`` (at least 1); one part ``(0, n)`` when
    that is 1, else ``workers * per_thread`` parts of equal length (the last shorter), each
    length a multiple of ``align``.
    """
    workers = min(torch.get_num_threads(), n // max(1, min_per))
    if workers <= 1:
        return [(0, n)]
    step = -(-n // (workers * max(1, per_thread)))
    step = -(-step // align) * align
    return [(lo, min(n, lo + step)) for lo in range(0, n, step)]


def _pool(size: int) -> ThreadPoolExecutor:
    with _LOCK:
        pool, have = _STATE.get("pool", (None, 0))
        if have < size:  # the old executor finishes its queued work and its threads exit
            if pool is not None:
                pool.shutdown(wait=False)
            pool = ThreadPoolExecutor(size, thread_name_prefix="surrogate_nets")
            _STATE["pool"] = (pool, size)
        return pool


def run(fn, parts, *args, per_part=None, team: bool = True) -> list:
    """``[fn(*args, *per_part[t], lo, hi) for t, (lo, hi) in enumerate(parts)]``, the parts run
    in parallel on ``min(len(parts), torch.get_num_threads())`` threads (see the module docstring);
    ``team=False`` skips torch's OpenMP team (the shared thread pool, or the caller alone)."""
    extra = per_part if per_part is not None else [()] * len(parts)
    if len(extra) != len(parts):
        raise ValueError(f"per_part: expected one entry per part ({len(parts)}), got {len(extra)}")
    threads = min(len(parts), torch.get_num_threads())
    if threads <= 1:
        return [fn(*args, *e, lo, hi) for (lo, hi), e in zip(parts, extra)]
    results = [None] * len(parts)
    errors = []
    order = itertools.count()  # next part; next() runs under the GIL, so each part is taken once

    def work(_=None):
        for t in order:
            if t >= len(parts) or errors:
                return
            try:
                results[t] = fn(*args, *extra[t], *parts[t])
            except BaseException as e:  # noqa: BLE001 -- re-raised in the caller below
                errors.append(e)

    lib = _libgomp() if team else None
    if lib is not None:
        callback = _CALLBACK(work)  # every team thread (this one included) runs it
        lib.GOMP_parallel(ctypes.cast(callback, ctypes.c_void_p), None, threads, 0)
    else:
        futs = [_pool(threads - 1).submit(work) for _ in range(threads - 1)]
        work()
        for f in futs:
            f.result()
    if errors:
        raise errors[0]
    return results


__all__ = ["run", "split", "team_available"]
