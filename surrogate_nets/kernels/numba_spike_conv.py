r"""Spike-sparse 2-D convolution on CPU (numba): scatter the kernel of every active input.

For an input ``x`` ``[N, C_in, H, W]`` that is mostly zeros (spikes, events), weight ``w``
``[C_out, C_in, k_h, k_w]``, stride ``s``, padding ``p``, dilation ``d`` and groups 1:

.. math::
    y_{n,:,i,j} = b + \sum_{c,h,w:\ x_{n,c,h,w} \ne 0}\ \sum_{a,b:\ i s_h = h + p_h - a d_h,\
                  j s_w = w + p_w - b d_w} x_{n,c,h,w}\, w_{:,c,a,b},

    \partial L/\partial w_{:,c,a,b} = \sum_{\text{same } (n,c,h,w,i,j)} x_{n,c,h,w}\, g_{n,:,i,j}

Each costs ``nnz(x) k_h k_w C_out`` multiply-adds, against ``numel(y) C_in k_h k_w`` for the
dense convolution. :func:`conv_scan` makes one pass over ``x``: its int8 copy (saved for backward
when exact), the density, and the list of active positions per sample, which the kernels then
walk (no second scan). Inputs and outputs are NCHW; each sample's output (or output gradient)
is accumulated channels-last in a buffer ``[H_out, W_out * C_out]`` that stays in cache, so the
innermost loop runs over contiguous ``k_w * C_out`` (stride 1) or ``C_out`` values. Samples are
split over ``torch.get_num_threads()`` threads: torch's own OpenMP team where possible, else a thread
pool (:mod:`surrogate_nets.kernels._parallel`) (the kernels release the GIL); the weight gradient is accumulated per thread and summed. :func:`int8_scan` is
the flat variant (int8 copy, nonzero count, exactness) that ``SpikeLinear`` uses.
"""

from __future__ import annotations

import numpy as np
import torch
from numba import njit

from . import _parallel

_MIN_SCAN = 1 << 16  # entries per thread below which int8_scan stays on one thread


@njit(cache=True, nogil=True)
def _scan(x, q, lo, hi):
    """``q[i] = int8(x[i])`` for ``lo <= i < hi``; returns ``(nonzeros, all exact)``."""
    nnz = 0
    exact = True
    for i in range(lo, hi):
        v = x[i]
        r = 0
        if v != 0:
            nnz += 1
            if v >= -128 and v <= 127 and v == int(v):
                r = int(v)
            else:
                exact = False
        q[i] = r
    return nnz, exact


@njit(cache=True, nogil=True)
def _taps(n_in, n_out, k, s, p, d):
    """For every input row ``h``: the ``(a, i)`` with ``i s = h + p - a d``, ``0 <= i < n_out``."""
    cnt = np.zeros(n_in, np.int64)
    ka = np.zeros((n_in, k), np.int64)
    oi = np.zeros((n_in, k), np.int64)
    for h in range(n_in):
        for a in range(k):
            t = h + p - a * d
            if t >= 0 and t % s == 0 and t // s < n_out:
                ka[h, cnt[h]] = a
                oi[h, cnt[h]] = t // s
                cnt[h] += 1
    return cnt, ka, oi




@njit(cache=True, nogil=True)
def _scatter(x, n, ptr, codes, wt, buf, O, ch, ah, ih, cw, bw, jw, flip):
    """``buf[i, j * O + o] += x[n, c, h, w] * w[o, c, a, b]`` over the active inputs of sample ``n``.

    The active inputs are ``codes[ptr[n]:ptr[n + 1]]``, each ``c << 20 | h << 10 | w`` (from
    :func:`conv_scan`). ``buf`` ``[Ho, Wo * O]`` is one sample's output, channels-last (it stays in
    cache); ``wt`` is ``[C, kh, kw * O]``. ``flip`` (stride 1, dilation 1 in width): ``wt`` is
    flipped in width, so an active input at column ``w`` meets output columns ``j0 .. j0 + kw - 1``
    (``j0 = w + p_w - kw + 1``, ``p_w`` passed in ``jw[0, 0]``) with taps ``0 .. kw - 1``: one
    contiguous run of ``kw * O`` multiply-adds per kernel row. Otherwise the width taps come from
    the table ``(cw, bw, jw)``.
    """
    kw = wt.shape[2] // O
    Wo = buf.shape[1] // O
    pw = jw[0, 0]
    for t in range(ptr[n], ptr[n + 1]):
        c, h, w = codes[t] >> 20, (codes[t] >> 10) & 1023, codes[t] & 1023
        v = x[n, c, h, w]
        if flip:
            j0 = w + pw - kw + 1
            e_lo = max(0, -j0) * O
            e_hi = min(kw, Wo - j0) * O
            for e in range(ch[h]):
                orow = buf[ih[h, e], j0 * O + e_lo:j0 * O + e_hi]
                wrow = wt[c, ah[h, e], e_lo:e_hi]
                for q in range(e_hi - e_lo):
                    orow[q] += v * wrow[q]
        else:
            for e in range(ch[h]):
                i, a = ih[h, e], ah[h, e]
                for f in range(cw[w]):
                    orow = buf[i, jw[w, f] * O:(jw[w, f] + 1) * O]
                    wrow = wt[c, a, bw[w, f] * O:(bw[w, f] + 1) * O]
                    for o in range(O):
                        orow[o] += v * wrow[o]


@njit(cache=True, nogil=True)
def _gather(x, n, ptr, codes, gwt, buf, O, ch, ah, ih, cw, bw, jw, flip):
    """``gwt[c, a, b * O + o] += x[n, c, h, w] * buf[i, j * O + o]`` over the active inputs of sample
    ``n`` (``buf``: that sample's output gradient, channels-last; layouts as in :func:`_scatter`)."""
    kw = gwt.shape[2] // O
    Wo = buf.shape[1] // O
    pw = jw[0, 0]
    for t in range(ptr[n], ptr[n + 1]):
        c, h, w = codes[t] >> 20, (codes[t] >> 10) & 1023, codes[t] & 1023
        v = x[n, c, h, w]
        if flip:
            j0 = w + pw - kw + 1
            e_lo = max(0, -j0) * O
            e_hi = min(kw, Wo - j0) * O
            for e in range(ch[h]):
                grow = gwt[c, ah[h, e], e_lo:e_hi]
                row = buf[ih[h, e], j0 * O + e_lo:j0 * O + e_hi]
                for q in range(e_hi - e_lo):
                    grow[q] += v * row[q]
        else:
            for e in range(ch[h]):
                i, a = ih[h, e], ah[h, e]
                for f in range(cw[w]):
                    grow = gwt[c, a, bw[w, f] * O:(bw[w, f] + 1) * O]
                    row = buf[i, jw[w, f] * O:(jw[w, f] + 1) * O]
                    for o in range(O):
                        grow[o] += v * row[o]


@njit(cache=True, nogil=True)
def _scan_conv(x, q, codes, counts, lo, hi):
    """Samples lo..hi: ``q[n] = int8(x[n])``, the nonzeros of ``x[n]`` as ``c << 20 | h << 10 | w``
    in ``codes[n, :counts[n]]``; returns ``(nonzeros, all exact in int8)``."""
    C, H, W = x.shape[1], x.shape[2], x.shape[3]
    nnz = 0
    exact = True
    for n in range(lo, hi):
        k = 0
        for c in range(C):
            for h in range(H):
                for w in range(W):
                    v = x[n, c, h, w]
                    r = 0
                    if v != 0:
                        codes[n, k] = (c << 20) | (h << 10) | w
                        k += 1
                        if v >= -128 and v <= 127 and v == int(v):
                            r = int(v)
                        else:
                            exact = False
                    q[n, c, h, w] = r
        counts[n] = k
        nnz += k
    return nnz, exact


@njit(cache=True, nogil=True)
def _pack(codes, ptr, out):
    for n in range(codes.shape[0]):
        for k in range(ptr[n + 1] - ptr[n]):
            out[ptr[n] + k] = codes[n, k]


@njit(cache=True, nogil=True)
def _conv_fwd(x, ptr, codes, wt, bias, out, ch, ah, ih, cw, bw, jw, flip, lo, hi):
    """``out[n] = bias + x[n] * w`` (cross-correlation) for samples lo..hi; ``out`` ``[N, O, Ho, Wo]``."""
    O, Ho, Wo = out.shape[1], out.shape[2], out.shape[3]
    buf = np.empty((Ho, Wo * O), out.dtype)
    for n in range(lo, hi):
        for i in range(Ho):
            for j in range(Wo):
                for o in range(O):
                    buf[i, j * O + o] = bias[o]
        _scatter(x, n, ptr, codes, wt, buf, O, ch, ah, ih, cw, bw, jw, flip)
        for o in range(O):
            for i in range(Ho):
                for j in range(Wo):
                    out[n, o, i, j] = buf[i, j * O + o]


@njit(cache=True, nogil=True)
def _conv_wgrad(x, ptr, codes, g, gwt, gb, ch, ah, ih, cw, bw, jw, flip, lo, hi):
    """``gwt += x[n] (*) g[n]`` and ``gb += sum of g[n]`` over samples lo..hi (``g`` ``[N, O, Ho, Wo]``,
    copied per sample into a channels-last buffer first)."""
    O, Ho, Wo = g.shape[1], g.shape[2], g.shape[3]
    buf = np.empty((Ho, Wo * O), g.dtype)
    for n in range(lo, hi):
        for o in range(O):
            s = gb[o]
            for i in range(Ho):
                for j in range(Wo):
                    t = g[n, o, i, j]
                    buf[i, j * O + o] = t
                    s += t
            gb[o] = s
        _gather(x, n, ptr, codes, gwt, buf, O, ch, ah, ih, cw, bw, jw, flip)


def _parts(n: int, min_per: int = 1):
    return _parallel.split(n, min_per)


def _map(fn, parts, *args, per_part=None):
    """``[fn(*args, *per_part[t], lo, hi) for every part t]``, in parallel (:mod:`._parallel`)."""
    return _parallel.run(fn, parts, *args, per_part=per_part)


def int8_scan(x: torch.Tensor):
    """``(q, nnz, exact)``: ``x`` (CPU float, any shape) as int8, its nonzero count, and whether
    ``q`` holds every value of ``x`` exactly (integers in [-128, 127])."""
    xf = x.contiguous().view(-1)
    q = torch.empty(xf.shape, dtype=torch.int8)
    res = _map(_scan, _parts(xf.numel(), _MIN_SCAN), xf.numpy(), q.numpy())
    return q.view(x.shape), sum(r[0] for r in res), all(r[1] for r in res)



def conv_scan(x: torch.Tensor):
    """``(q, nnz, exact, active)`` for a 4-D CPU float ``x`` ``[N, C, H, W]`` in one pass: its int8
    copy, nonzero count, whether int8 holds it exactly, and ``active = (ptr, codes)``: the nonzeros
    of sample ``n`` are ``codes[ptr[n]:ptr[n + 1]]`` (int32 ``c << 20 | h << 10 | w``; needs
    ``C < 2048``, ``H, W < 1024``)."""
    x = x.contiguous()
    N = x.shape[0]
    q = torch.empty(x.shape, dtype=torch.int8)
    codes = torch.empty(N, x[0].numel(), dtype=torch.int32)  # capacity; only what is written is touched
    counts = torch.zeros(N, dtype=torch.int64)
    res = _map(_scan_conv, _parts(N, max(1, _MIN_SCAN // max(1, x[0].numel()))), x.numpy(), q.numpy(),
               codes.numpy(), counts.numpy())
    ptr = torch.zeros(N + 1, dtype=torch.int64)
    torch.cumsum(counts, 0, out=ptr[1:])
    packed = torch.empty(int(ptr[-1]), dtype=torch.int32)
    _pack(codes.numpy(), ptr.numpy(), packed.numpy())
    return q, sum(r[0] for r in res), all(r[1] for r in res), (ptr, packed)


def conv_scan_fits(x_shape) -> bool:
    """Whether :func:`conv_scan`'s packed codes hold every position of ``x_shape``."""
    return x_shape[1] < 2048 and x_shape[2] < 1024 and x_shape[3] < 1024


def _layout(x_shape, weight, out_hw, stride, padding, dilation):
    """The ``[C, kh, kw * O]`` weight (width-flipped when ``flip``), the tap tables and ``flip``."""
    O, C, kh, kw = weight.shape
    flip = stride[1] == 1 and dilation[1] == 1
    w = weight.detach().flip(3) if flip else weight.detach()
    wt = w.permute(1, 2, 3, 0).reshape(C, kh, kw * O).contiguous()
    th = _taps(x_shape[2], out_hw[0], kh, stride[0], padding[0], dilation[0])
    tw = _taps(x_shape[3], out_hw[1], kw, stride[1], padding[1], dilation[1])
    if flip:  # the width table is unused then: its first slot carries the width padding
        jw = tw[2].copy()
        jw[0, 0] = padding[1]
        tw = (tw[0], tw[1], jw)
    return wt, th + tw, flip


def spike_conv2d_forward(x: torch.Tensor, active, weight: torch.Tensor, bias, stride, padding, dilation, out_hw):
    """Contiguous ``[N, C_out, H_out, W_out]`` convolution of a sparse ``x`` (float or int8) whose
    nonzeros are ``active`` (from :func:`conv_scan`)."""
    N, O = x.shape[0], weight.shape[0]
    wt, taps, flip = _layout(x.shape, weight, out_hw, stride, padding, dilation)
    b = bias.detach().contiguous() if bias is not None else torch.zeros(O, dtype=weight.dtype)
    out = torch.empty(N, O, out_hw[0], out_hw[1], dtype=weight.dtype)
    _map(_conv_fwd, _parts(N), x.contiguous().numpy(), active[0].numpy(), active[1].numpy(), wt.numpy(), b.numpy(),
         out.numpy(), *taps, flip)
    return out


def spike_conv2d_weight_grad(x: torch.Tensor, active, g: torch.Tensor, weight: torch.Tensor, stride, padding,
                             dilation):
    """``(dL/dw, dL/db)`` from a sparse ``x`` (float or int8) and ``g`` ``[N, C_out, H_out, W_out]``."""
    O, C, kh, kw = weight.shape
    _, taps, flip = _layout(x.shape, weight, g.shape[2:], stride, padding, dilation)
    parts = _parts(x.shape[0])
    pw = torch.zeros(len(parts), C, kh, kw * O, dtype=g.dtype)
    pb = torch.zeros(len(parts), O, dtype=g.dtype)
    xa, ga, pwa, pba = x.contiguous().numpy(), g.contiguous().numpy(), pw.numpy(), pb.numpy()
    pa, ca = active[0].numpy(), active[1].numpy()
    _map(lambda x_, g_, w_, b_, lo, hi: _conv_wgrad(x_, pa, ca, g_, w_, b_, *taps, flip, lo, hi), parts, xa, ga,
         per_part=[(pwa[t], pba[t]) for t in range(len(parts))])
    gw = pw.sum(0).view(C, kh, kw, O).permute(3, 0, 1, 2)
    return (gw.flip(3) if flip else gw).contiguous(), pb.sum(0)


__all__ = ["int8_scan", "conv_scan", "conv_scan_fits", "spike_conv2d_forward", "spike_conv2d_weight_grad"]
