r"""Sparse convolution fused with a 2x2 max pool (CPU, numba): the conv output never leaves cache.

For one sample the convolution of a sparse input is accumulated channels-last in a buffer
``[H_c, W_c * O]`` (:func:`~surrogate_nets.kernels.numba_spike_conv._scatter`); the 2x2, stride 2
max pool then reads that buffer and writes only the pooled output and the uint8 argmax offsets
(torch's tie rule: first maximum in row-major window order; NaN wins):

.. math:: y_{n,o,i,j} = \max_{a,b \in \{0,1\}} z_{n,o,2i+a,2j+b},\qquad o_{n,o,i,j} = 2a^* + b^*,
          \quad z = b + w \star x_n

The backward rebuilds the conv-output gradient of one sample in the buffer (the pooled gradient
at each argmax, zeros elsewhere) and gathers the weight gradient from the active inputs
(:func:`~surrogate_nets.kernels.numba_spike_conv._gather`); the bias gradient is the sum of the
pooled gradient. So neither the conv output ``[N, O, H_c, W_c]`` nor its gradient is written to
memory; per sample the buffer stays in cache.
"""

from __future__ import annotations

import numpy as np
import torch
from numba import njit

from .numba_max_pool import _max4
from .numba_spike_conv import _gather, _layout, _map, _parts, _scatter


@njit(cache=True, nogil=True)
def _conv_pool_fwd(x, ptr, codes, wt, bias, y, off, Hc, Wc, ch, ah, ih, cw, bw, jw, flip, lo, hi):
    O, Hp, Wp = y.shape[1], y.shape[2], y.shape[3]
    buf = np.empty((Hc, Wc * O), y.dtype)
    for n in range(lo, hi):
        for i in range(Hc):
            for j in range(Wc):
                for o in range(O):
                    buf[i, j * O + o] = bias[o]
        _scatter(x, n, ptr, codes, wt, buf, O, ch, ah, ih, cw, bw, jw, flip)
        for i in range(Hp):
            r0, r1 = buf[2 * i], buf[2 * i + 1]
            for j in range(Wp):
                c0, c1 = 2 * j * O, (2 * j + 1) * O
                for o in range(O):  # contiguous in the buffer
                    b, k = _max4(r0[c0 + o], r0[c1 + o], r1[c0 + o], r1[c1 + o])
                    y[n, o, i, j] = b
                    off[n, o, i, j] = k


@njit(cache=True, nogil=True)
def _conv_pool_wgrad(x, ptr, codes, gp, off, gwt, gb, Hc, Wc, ch, ah, ih, cw, bw, jw, flip, lo, hi):
    O, Hp, Wp = gp.shape[1], gp.shape[2], gp.shape[3]
    buf = np.zeros((Hc, Wc * O), gp.dtype)
    for n in range(lo, hi):
        buf[:, :] = 0.0
        for o in range(O):
            s = gb[o]
            for i in range(Hp):
                for j in range(Wp):
                    k = off[n, o, i, j]
                    t = gp[n, o, i, j]
                    buf[2 * i + k // 2, (2 * j + k % 2) * O + o] = t
                    s += t
            gb[o] = s
        _gather(x, n, ptr, codes, gwt, buf, O, ch, ah, ih, cw, bw, jw, flip)


def conv_pool_forward(x: torch.Tensor, active, weight: torch.Tensor, bias, stride, padding, dilation, conv_hw):
    """``(y, offsets)``: ``max_pool2d(conv2d(x), 2)`` ``[N, O, H_c // 2, W_c // 2]`` and uint8 offsets."""
    N, O = x.shape[0], weight.shape[0]
    wt, taps, flip = _layout(x.shape, weight, conv_hw, stride, padding, dilation)
    b = bias.detach().contiguous() if bias is not None else torch.zeros(O, dtype=weight.dtype)
    y = torch.empty(N, O, conv_hw[0] // 2, conv_hw[1] // 2, dtype=weight.dtype)
    off = torch.empty(y.shape, dtype=torch.uint8)
    _map(_conv_pool_fwd, _parts(N), x.contiguous().numpy(), active[0].numpy(), active[1].numpy(), wt.numpy(), b.numpy(), y.numpy(), off.numpy(),
         conv_hw[0], conv_hw[1], *taps, flip)
    return y, off


def conv_pool_weight_grad(x: torch.Tensor, active, gp: torch.Tensor, off: torch.Tensor, weight: torch.Tensor,
                          stride, padding, dilation, conv_hw):
    """``(dL/dw, dL/db)`` of :func:`conv_pool_forward` from the pooled gradient ``gp``."""
    O, C, kh, kw = weight.shape
    _, taps, flip = _layout(x.shape, weight, conv_hw, stride, padding, dilation)
    parts = _parts(x.shape[0])
    pw = torch.zeros(len(parts), C, kh, kw * O, dtype=gp.dtype)
    pb = torch.zeros(len(parts), O, dtype=gp.dtype)
    pwa, pba = pw.numpy(), pb.numpy()
    pa, ca = active[0].numpy(), active[1].numpy()
    _map(lambda x_, g_, o_, w_, b_, lo, hi: _conv_pool_wgrad(x_, pa, ca, g_, o_, w_, b_, conv_hw[0], conv_hw[1],
                                                              *taps, flip, lo, hi),
         parts, x.contiguous().numpy(), gp.contiguous().numpy(), off.numpy(),
         per_part=[(pwa[t], pba[t]) for t in range(len(parts))])
    gw = pw.sum(0).view(C, kh, kw, O).permute(3, 0, 1, 2)
    return (gw.flip(3) if flip else gw).contiguous(), pb.sum(0)


__all__ = ["conv_pool_forward", "conv_pool_weight_grad"]
