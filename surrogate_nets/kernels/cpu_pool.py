r"""Recycled, huge-page-backed CPU buffers for the large outputs of the numba kernels.

Why: a fresh ``torch.empty`` of more than a few MiB is served by the C library from freshly
mapped pages (glibc always maps requests above 32 MiB afresh, and smaller ones too depending on
its dynamic threshold), and the kernel then takes one page fault per 4 KiB on the first write,
zeroing each page. Measured here (2-core AMD EPYC VM, one thread): filling a fresh 105 MB tensor
takes 19.7 ms, a fresh ``madvise(MADV_HUGEPAGE)`` mapping of the same size 4.6 ms, a recycled
buffer 2.6 ms; at 6.5 MB 1.26 / 0.45 / 0.07 ms. At ``T=100, B=128, N=2048`` the three
``[T, B*N]`` tensors of one LIF forward+backward (spikes, saved membrane, input gradient) spent
more time in page faults than in the kernels.

:func:`empty` hands out tensors of at least :data:`MIN_BYTES` from a pool: a buffer comes back to
the pool only when the last tensor (or view) using it is freed — the tensor owns a numpy array
whose death runs the return (``weakref.finalize``), so a buffer can never be handed out twice.
A request takes a free buffer of its own size, else the smallest free one of less than twice
its size (so a varying sequence length or batch reuses buffers instead of caching dead sizes).
New buffers are anonymous mappings advised to use transparent huge pages (only these mappings:
nothing process-wide is changed). The free list is capped at :data:`MAX_CACHED_BYTES`; the rest
goes back to the operating system. :func:`empty_cache` releases every free buffer;
``SURROGATE_NETS_CPU_POOL=0`` (read at import) or :func:`set_enabled` turns the pool off (plain
``torch.empty``). Contents of a handed-out buffer are undefined (callers write every element),
and its tensor is not resizable (``resize_`` raises), as for any ``torch.from_numpy`` tensor.
"""

from __future__ import annotations

import mmap
import os
import threading
import weakref

import numpy as np
import torch

__all__ = ["empty", "empty_cache", "cached_bytes", "set_enabled", "MIN_BYTES", "MAX_CACHED_BYTES"]

#: requests below this go to ``torch.empty`` (the C library reuses small blocks without faults)
MIN_BYTES = 1 << 20
#: at most this many bytes of free buffers are kept for reuse
MAX_CACHED_BYTES = 1 << 30
_GRAIN = 1 << 21  # buffers are whole huge pages (2 MiB); a request takes the next multiple

_NP = {torch.float32: np.float32, torch.float64: np.float64, torch.float16: np.float16,
       torch.int16: np.int16, torch.int32: np.int32, torch.int64: np.int64, torch.uint8: np.uint8, torch.int8: np.int8,
       torch.bool: np.bool_}
_LOCK = threading.RLock()  # reentrant: a finaliser may run (GC) while it is held
_FREE: dict = {}  # size in bytes -> list of free buffers (mmap objects)
_STATE = {"cached": 0, "enabled": os.environ.get("SURROGATE_NETS_CPU_POOL", "1") != "0"}


def _after_fork_in_child() -> None:
    # another thread may have held the lock at fork(): it never releases it in the child
    global _LOCK
    _LOCK = threading.RLock()
    # the child's copies of the free buffers would pin the parent's pages (copy-on-write) for the
    # child's life, e.g. every DataLoader worker: unmap them
    _FREE.clear()
    _STATE["cached"] = 0


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def set_enabled(flag: bool) -> None:
    """Turn the pool on or off (off: :func:`empty` is ``torch.empty``; free buffers released)."""
    _STATE["enabled"] = bool(flag)
    if not flag:
        empty_cache()


def cached_bytes() -> int:
    """Bytes held in free buffers (not counting buffers in use)."""
    return _STATE["cached"]


def empty_cache() -> None:
    """Release every free buffer to the operating system."""
    with _LOCK:
        _FREE.clear()  # the mappings are unmapped when their last reference goes
        _STATE["cached"] = 0


def _new(size: int) -> mmap.mmap:
    buf = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    advice = getattr(mmap, "MADV_HUGEPAGE", None)
    if advice is not None:
        try:
            buf.madvise(advice)
        except OSError:  # kernel without transparent huge pages: 4 KiB pages
            pass
    return buf


def _give_back(buf: mmap.mmap, size: int) -> None:
    with _LOCK:
        if _STATE["enabled"] and _STATE["cached"] + size <= MAX_CACHED_BYTES:
            _FREE.setdefault(size, []).append(buf)
            _STATE["cached"] += size
    # else: dropped; unmapped once the dying array releases it (closing it here would fail:
    # the array still holds its buffer export while its finaliser runs)


def empty(shape, dtype: torch.dtype) -> torch.Tensor:
    """An uninitialised contiguous CPU tensor of ``shape`` / ``dtype``, from the pool when it is
    at least :data:`MIN_BYTES` (see the module docstring), else ``torch.empty``."""
    numel = 1
    for d in shape:
        numel *= int(d)
    npdt = _NP.get(dtype)
    nbytes = numel * (npdt().itemsize if npdt is not None else 0)
    if not _STATE["enabled"] or npdt is None or nbytes < MIN_BYTES:
        return torch.empty(shape, dtype=dtype)
    size = -(-nbytes // _GRAIN) * _GRAIN
    with _LOCK:
        lst = _FREE.get(size)
        if not lst:  # best fit: the smallest free buffer of less than twice the size (a varying
            # T or batch would otherwise fill the cache with buffers of sizes never asked again)
            # (a copy: a finaliser run by GC here may add a size to _FREE)
            fits = [k for k, v in _FREE.copy().items() if v and size < k < 2 * size]
            if fits:
                size = min(fits)
                lst = _FREE[size]
        buf = lst.pop() if lst else None
        if buf is not None:
            _STATE["cached"] -= size
    if buf is None:
        buf = _new(size)
    arr = np.frombuffer(buf, dtype=npdt, count=numel).reshape(shape)
    # arr lives exactly as long as the tensor's storage (torch.from_numpy keeps it), and its
    # death returns the buffer; the finaliser holds the only other reference to buf
    fin = weakref.finalize(arr, _give_back, buf, size)
    fin.atexit = False
    return torch.from_numpy(arr)
