r"""2-D max pooling on CPU (numba) that records the argmax as a ``uint8`` offset inside each window.

For output ``(i, j)`` of plane ``p`` the window is ``x[p, i s_h - p_h + a d_h, j s_w - p_w + b d_w]``,
``0 <= a < k_h``, ``0 <= b < k_w`` (positions outside the input skipped). The forward writes

.. math:: y_{p,i,j} = \max_{a,b} x_{p,\cdot,\cdot},\qquad o_{p,i,j} = a\,k_w + b \ \text{of that max}

with torch's tie rule (the first maximum in row-major window order wins; a NaN wins and the last
NaN is kept, as ``aten::max_pool2d_with_indices`` on CPU does), and the backward scatters
``dL/dx[p, pos(o_{p,i,j})] += dL/dy_{p,i,j}``. Two layouts: NCHW planes (``_fwd_planes``) and
channels-last input (``_fwd_nhwc``: the channel loop is innermost and contiguous); both write a
contiguous NCHW output. Work is split over the batch by ``torch.get_num_threads()`` threads
(:mod:`surrogate_nets.kernels._parallel`: torch's OpenMP team where possible, else a thread
pool; the kernels release the GIL); each thread owns whole samples, so the scatter has no races.
"""

from __future__ import annotations

import numpy as np
import torch
from numba import njit

from . import _parallel

_MIN_PER_THREAD = 8


@njit(cache=True, nogil=True)
def _fwd_planes(x, out, off, kh, kw, sh, sw, ph, pw, dh, dw, lo, hi):
    """``x`` ``[P, H, W]``; ``out`` ``[P, Ho, Wo]``; ``off`` uint8 ``[P, Ho, Wo]``; planes lo..hi."""
    H, W = x.shape[1], x.shape[2]
    Ho, Wo = out.shape[1], out.shape[2]
    for p in range(lo, hi):
        for i in range(Ho):
            h0 = i * sh - ph
            for j in range(Wo):
                w0 = j * sw - pw
                best = x[p, 0, 0]
                bk = -1
                for a in range(kh):
                    ih = h0 + a * dh
                    if ih < 0 or ih >= H:
                        continue
                    for b in range(kw):
                        iw = w0 + b * dw
                        if iw < 0 or iw >= W:
                            continue
                        v = x[p, ih, iw]
                        if bk < 0 or v > best or v != v:
                            best = v
                            bk = a * kw + b
                out[p, i, j] = best
                off[p, i, j] = bk


@njit(inline="always")
def _max4(v0, v1, v2, v3):
    """Max of a 2x2 window in row-major order and its offset (first max wins, NaN wins)."""
    b = v0
    k = 0
    t = (v1 > b) | (v1 != v1)
    b = v1 if t else b
    k = 1 if t else k
    t = (v2 > b) | (v2 != v2)
    b = v2 if t else b
    k = 2 if t else k
    t = (v3 > b) | (v3 != v3)
    b = v3 if t else b
    k = 3 if t else k
    return b, k


@njit(cache=True, nogil=True)
def _fwd_planes_22(x, out, off, lo, hi):
    """The 2x2, stride 2, unpadded case of :func:`_fwd_planes` (branch-free, vectorised)."""
    Ho, Wo = out.shape[1], out.shape[2]
    for p in range(lo, hi):
        for i in range(Ho):
            for j in range(Wo):
                b, k = _max4(x[p, 2 * i, 2 * j], x[p, 2 * i, 2 * j + 1],
                             x[p, 2 * i + 1, 2 * j], x[p, 2 * i + 1, 2 * j + 1])
                out[p, i, j] = b
                off[p, i, j] = k


@njit(cache=True, nogil=True)
def _bwd_planes_22(g, off, gi, lo, hi):
    """Backward of :func:`_fwd_planes_22`: writes every covered input position (no zero fill)."""
    Ho, Wo = g.shape[1], g.shape[2]
    for p in range(lo, hi):
        for i in range(Ho):
            for j in range(Wo):
                k = off[p, i, j]
                v = g[p, i, j]
                gi[p, 2 * i, 2 * j] = v if k == 0 else 0.0
                gi[p, 2 * i, 2 * j + 1] = v if k == 1 else 0.0
                gi[p, 2 * i + 1, 2 * j] = v if k == 2 else 0.0
                gi[p, 2 * i + 1, 2 * j + 1] = v if k == 3 else 0.0


@njit(cache=True, nogil=True)
def _bwd_planes(g, off, gi, kw, sh, sw, ph, pw, dh, dw, lo, hi):
    """``gi[p, pos(off)] += g[p, i, j]`` (``gi`` zero-initialised ``[P, H, W]``)."""
    Ho, Wo = g.shape[1], g.shape[2]
    for p in range(lo, hi):
        for i in range(Ho):
            for j in range(Wo):
                k = off[p, i, j]
                gi[p, i * sh - ph + (k // kw) * dh, j * sw - pw + (k % kw) * dw] += g[p, i, j]


@njit(cache=True, nogil=True)
def _fwd_nhwc(x, out, off, kh, kw, sh, sw, ph, pw, dh, dw, lo, hi):
    """``x`` ``[N, H, W, C]``; ``out`` ``[N, C, Ho, Wo]``; ``off`` uint8 ``[N, Ho, Wo, C]``."""
    H, W, C = x.shape[1], x.shape[2], x.shape[3]
    Ho, Wo = out.shape[2], out.shape[3]
    best = np.empty(C, x.dtype)
    bk = np.empty(C, np.int64)
    for n in range(lo, hi):
        for i in range(Ho):
            h0 = i * sh - ph
            for j in range(Wo):
                w0 = j * sw - pw
                first = True
                for a in range(kh):
                    ih = h0 + a * dh
                    if ih < 0 or ih >= H:
                        continue
                    for b in range(kw):
                        iw = w0 + b * dw
                        if iw < 0 or iw >= W:
                            continue
                        k = a * kw + b
                        if first:
                            for c in range(C):
                                best[c] = x[n, ih, iw, c]
                                bk[c] = k
                            first = False
                            continue
                        for c in range(C):
                            v = x[n, ih, iw, c]
                            if v > best[c] or v != v:
                                best[c] = v
                                bk[c] = k
                for c in range(C):
                    out[n, c, i, j] = best[c]
                    off[n, i, j, c] = bk[c]


@njit(cache=True, nogil=True)
def _bwd_nhwc(g, off, gi, kw, sh, sw, ph, pw, dh, dw, lo, hi):
    """``g`` ``[N, C, Ho, Wo]``; ``off`` ``[N, Ho, Wo, C]``; ``gi`` zero ``[N, H, W, C]``."""
    C, Ho, Wo = g.shape[1], g.shape[2], g.shape[3]
    for n in range(lo, hi):
        for i in range(Ho):
            for j in range(Wo):
                for c in range(C):
                    k = off[n, i, j, c]
                    gi[n, i * sh - ph + (k // kw) * dh, j * sw - pw + (k % kw) * dw, c] += g[n, c, i, j]


@njit(cache=True, nogil=True)
def _fwd_nhwc_22(x, out, off, lo, hi):
    """The 2x2, stride 2, unpadded case of :func:`_fwd_nhwc`."""
    C = x.shape[3]
    Ho, Wo = out.shape[2], out.shape[3]
    for n in range(lo, hi):
        for i in range(Ho):
            for j in range(Wo):
                for c in range(C):
                    b, k = _max4(x[n, 2 * i, 2 * j, c], x[n, 2 * i, 2 * j + 1, c],
                                 x[n, 2 * i + 1, 2 * j, c], x[n, 2 * i + 1, 2 * j + 1, c])
                    out[n, c, i, j] = b
                    off[n, i, j, c] = k


@njit(cache=True, nogil=True)
def _bwd_nhwc_22(g, off, gi, lo, hi):
    """Backward of :func:`_fwd_nhwc_22`: writes every covered input position (no zero fill)."""
    C, Ho, Wo = g.shape[1], g.shape[2], g.shape[3]
    for n in range(lo, hi):
        for i in range(Ho):
            for j in range(Wo):
                for c in range(C):
                    k = off[n, i, j, c]
                    v = g[n, c, i, j]
                    gi[n, 2 * i, 2 * j, c] = v if k == 0 else 0.0
                    gi[n, 2 * i, 2 * j + 1, c] = v if k == 1 else 0.0
                    gi[n, 2 * i + 1, 2 * j, c] = v if k == 2 else 0.0
                    gi[n, 2 * i + 1, 2 * j + 1, c] = v if k == 3 else 0.0


def _run(fn, n: int, *args) -> None:
    """``fn(*args, lo, hi)`` over ``range(n)`` split across torch's thread count."""
    _parallel.run(fn, _parallel.split(n, _MIN_PER_THREAD), *args)


def max_pool2d_forward(x: torch.Tensor, out_hw, k, s, p, d):
    """``(y, offsets, nhwc)`` for a 4-D CPU float tensor ``x`` ``[N, C, H, W]``.

    ``y`` is contiguous NCHW; ``offsets`` (uint8) are NHWC when ``nhwc`` (``x`` channels-last),
    else NCHW.
    """
    N, C, H, W = x.shape
    Ho, Wo = out_hw
    y = torch.empty(N, C, Ho, Wo, dtype=x.dtype)
    xl = x.permute(0, 2, 3, 1)
    nhwc = C > 1 and xl.is_contiguous() and not x.is_contiguous()
    fast = _is_22(k, s, p, d) and 2 * Ho <= H and 2 * Wo <= W
    if nhwc:
        off = torch.empty(N, Ho, Wo, C, dtype=torch.uint8)
        if fast:
            _run(_fwd_nhwc_22, N, xl.numpy(), y.numpy(), off.numpy())
        else:
            _run(_fwd_nhwc, N, xl.numpy(), y.numpy(), off.numpy(), *k, *s, *p, *d)
    else:
        xc = x.contiguous().view(N * C, H, W)
        off = torch.empty(N * C, Ho, Wo, dtype=torch.uint8)
        if fast:
            _run(_fwd_planes_22, N * C, xc.numpy(), y.view(N * C, Ho, Wo).numpy(), off.numpy())
        else:
            _run(_fwd_planes, N * C, xc.numpy(), y.view(N * C, Ho, Wo).numpy(), off.numpy(), *k, *s, *p, *d)
        off = off.view(N, C, Ho, Wo)
    return y, off, nhwc


def max_pool2d_backward(g: torch.Tensor, off: torch.Tensor, nhwc: bool, in_shape, k, s, p, d):
    """``dL/dx`` ``[N, C, H, W]`` (channels-last strides when ``nhwc``) from ``g`` and the offsets."""
    N, C, H, W = in_shape
    g = g.contiguous()
    Ho, Wo = g.shape[2], g.shape[3]
    fast = _is_22(k, s, p, d) and 2 * Ho <= H and 2 * Wo <= W
    # the 2x2 kernels write every position a window covers: zero-fill only what none covers
    alloc = torch.empty if fast and H == 2 * Ho and W == 2 * Wo else torch.zeros
    if nhwc:
        gi = alloc(N, H, W, C, dtype=g.dtype)
        if fast:
            _run(_bwd_nhwc_22, N, g.numpy(), off.numpy(), gi.numpy())
        else:
            _run(_bwd_nhwc, N, g.numpy(), off.numpy(), gi.numpy(), k[1], *s, *p, *d)
        return gi.permute(0, 3, 1, 2)
    gi = alloc(N * C, H, W, dtype=g.dtype)
    g3, o3 = g.view(N * C, Ho, Wo).numpy(), off.reshape(N * C, Ho, Wo).numpy()
    if fast:
        _run(_bwd_planes_22, N * C, g3, o3, gi.numpy())
    else:
        _run(_bwd_planes, N * C, g3, o3, gi.numpy(), k[1], *s, *p, *d)
    return gi.view(N, C, H, W)


def _is_22(k, s, p, d) -> bool:
    return tuple(k) == (2, 2) and tuple(s) == (2, 2) and tuple(p) == (0, 0) and tuple(d) == (1, 1)


__all__ = ["max_pool2d_forward", "max_pool2d_backward"]
