r"""Memory-lean 2-D max pooling: autograd saves one ``uint8`` window offset per output.

``torch.nn.MaxPool2d`` saves its float input *and* ``int64`` indices for backward: for the first
pool of snnTorch's N-MNIST conv net (``[640, 12, 30, 30]`` float32) that is 28 MB + 14 MB per step.
Backward only needs where each maximum was, and inside a window of ``k_h k_w <= 256`` positions
that fits in one byte:

.. math::
    y_{n,c,i,j} = \max_{0 \le a < k_h,\ 0 \le b < k_w} x_{n,c,\,i s_h - p_h + a d_h,\,j s_w - p_w + b d_w},
    \qquad o_{n,c,i,j} = a^* k_w + b^*,

    \partial L/\partial x_{n,c,\,i s_h - p_h + a^* d_h,\,j s_w - p_w + b^* d_w} \mathrel{+}= \partial L/\partial y_{n,c,i,j}

so the saved bytes are ``numel(y)``: 1/24 of the float32 input + int64 indices of a 2x2 pool.
Ties go to the first maximum in row-major window order (and NaN propagates), as in
``aten::max_pool2d_with_indices`` on CPU, so outputs and gradients equal ``F.max_pool2d``'s.
On CPU float32/float64 with numba installed a compiled kernel computes ``y`` and ``o`` in one pass
(and reads channels-last input in place); otherwise ``F.max_pool2d(return_indices=True)`` runs
and its indices are converted to offsets. Binary (spike) inputs need nothing else: the offsets
are all that is saved either way.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

from ..kernels import numba_runnable

__all__ = ["MaxPool2d", "max_pool2d", "MaxPool2dFunction"]

_MAX_WINDOW = 256  # positions addressable by a uint8 offset


def _pair(v, name: str, low: int):
    t = tuple(v) if isinstance(v, (tuple, list)) else (v, v)
    if len(t) != 2 or not all(isinstance(e, int) and not isinstance(e, bool) and e >= low for e in t):
        raise ValueError(f"{name} must be an int >= {low} or a pair of them, got {v!r}")
    return t


def _out_size(n: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    """Output length of a pooling window sweep, as ``torch.nn.MaxPool2d`` computes it."""
    o = (n + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (o - 1) * s >= n + p:
        o -= 1
    return o


def _numba_ok(x: torch.Tensor) -> bool:
    return x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64) and numba_runnable()


def _origins(n_out: int, s: int, p: int, x: torch.Tensor) -> torch.Tensor:
    return torch.arange(n_out, device=x.device) * s - p


def _torch_forward(x, k, s, p, d, ceil_mode):
    """``F.max_pool2d`` with indices, the flat indices turned into uint8 window offsets."""
    y, idx = F.max_pool2d(x, k, s, p, d, ceil_mode, return_indices=True)
    W = x.shape[-1]
    oi = _origins(y.shape[-2], s[0], p[0], x).view(-1, 1)
    oj = _origins(y.shape[-1], s[1], p[1], x)
    off = torch.div(idx // W - oi, d[0], rounding_mode="floor") * k[1] + \
        torch.div(idx % W - oj, d[1], rounding_mode="floor")
    return y, off.to(torch.uint8)


def _torch_backward(g, off, in_shape, k, s, p, d):
    N, C, H, W = in_shape
    off = off.long()
    oi = _origins(g.shape[-2], s[0], p[0], g).view(-1, 1)
    oj = _origins(g.shape[-1], s[1], p[1], g)
    idx = (oi + (off // k[1]) * d[0]) * W + oj + (off % k[1]) * d[1]
    gi = g.new_zeros(N, C, H * W)
    gi.scatter_add_(2, idx.reshape(N, C, -1), g.reshape(N, C, -1))
    return gi.view(N, C, H, W)


class MaxPool2dFunction(torch.autograd.Function):
    """``y = max_pool2d(x)`` for 4-D ``x`` saving only the uint8 argmax offsets."""

    @staticmethod
    def forward(ctx, x, k, s, p, d, ceil_mode, use_numba):
        if use_numba:
            from ..kernels.numba_max_pool import max_pool2d_forward

            out_hw = (_out_size(x.shape[2], k[0], s[0], p[0], d[0], ceil_mode),
                      _out_size(x.shape[3], k[1], s[1], p[1], d[1], ceil_mode))
            y, off, nhwc = max_pool2d_forward(x.detach(), out_hw, k, s, p, d)
        else:
            y, off = _torch_forward(x.detach(), k, s, p, d, ceil_mode)
            nhwc = False
        ctx.save_for_backward(off)
        ctx.meta = (tuple(x.shape), k, s, p, d, nhwc, use_numba)
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx, g):
        (off,) = ctx.saved_tensors
        in_shape, k, s, p, d, nhwc, use_numba = ctx.meta
        if use_numba and g.device.type == "cpu":
            from ..kernels.numba_max_pool import max_pool2d_backward

            gi = max_pool2d_backward(g, off, nhwc, in_shape, k, s, p, d)
        else:
            if nhwc:
                off = off.permute(0, 3, 1, 2)
            gi = _torch_backward(g, off, in_shape, k, s, p, d)
        return gi, None, None, None, None, None, None


def max_pool2d(x: torch.Tensor, kernel_size, stride=None, padding=0, dilation=1,
               ceil_mode: bool = False) -> torch.Tensor:
    r"""``F.max_pool2d`` (same arguments and results) whose backward keeps one byte per output.

    Args:
        x: ``[N, C, H, W]`` or ``[C, H, W]`` floating tensor.
        kernel_size, stride (default ``kernel_size``), padding, dilation: ints or pairs, as
            ``F.max_pool2d``; ``padding`` at most half the kernel.
        ceil_mode: as ``F.max_pool2d``.
    Returns:
        ``[N, C, H_out, W_out]`` (or ``[C, H_out, W_out]``), equal to ``F.max_pool2d``; the gradient
        equals ``F.max_pool2d``'s. Windows larger than 256 positions fall back to ``F.max_pool2d``.
        Once differentiable (no gradient of the gradient).
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() not in (3, 4) or not x.is_floating_point():
        raise ValueError(f"x must be a floating [N, C, H, W] or [C, H, W] tensor, got dtype {x.dtype} "
                         f"and shape {tuple(x.shape)}")
    k = _pair(kernel_size, "kernel_size", 1)
    s = k if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0) else _pair(stride, "stride", 1)
    p = _pair(padding, "padding", 0)
    d = _pair(dilation, "dilation", 1)
    if p[0] > k[0] // 2 or p[1] > k[1] // 2:
        raise ValueError(f"padding must be at most half of kernel_size {k}, got {p}")
    if not isinstance(ceil_mode, bool):
        raise TypeError(f"ceil_mode must be a bool, got {type(ceil_mode).__name__}")
    out_hw = [_out_size(x.shape[-2 + i], k[i], s[i], p[i], d[i], ceil_mode) for i in range(2)]
    if min(out_hw) < 1:
        raise ValueError(f"x of spatial size {tuple(x.shape[-2:])} is too small for kernel_size {k}, "
                         f"dilation {d} and padding {p} (output {tuple(out_hw)})")
    if k[0] * k[1] > _MAX_WINDOW:
        return F.max_pool2d(x, k, s, p, d, ceil_mode)
    squeeze = x.dim() == 3
    x4 = x.unsqueeze(0) if squeeze else x
    if x4.numel() == 0:
        return F.max_pool2d(x, k, s, p, d, ceil_mode)
    y = MaxPool2dFunction.apply(x4, k, s, p, d, ceil_mode, _numba_ok(x4))
    return y.squeeze(0) if squeeze else y


class MaxPool2d(nn.MaxPool2d):
    r"""``nn.MaxPool2d`` whose backward saves one ``uint8`` window offset per output.

    .. math:: y_{n,c,i,j} = \max_{a,b}\, x_{n,c,\,i s_h - p_h + a d_h,\,j s_w - p_w + b d_w}

    A drop-in subclass: same arguments, ``state_dict`` (none) and results as ``nn.MaxPool2d``
    (ties and NaN as torch's CPU kernel), but autograd keeps ``numel(y)`` bytes instead of the float
    input plus ``int64`` indices (24x less for a 2x2 pool in float32), and on CPU a compiled kernel
    runs forward and backward (see :func:`max_pool2d`). ``return_indices=True`` falls back to
    ``nn.MaxPool2d`` (the caller wants the indices). Shapes: ``[N, C, H, W]`` -> ``[N, C, H_out, W_out]``;
    inside :class:`~surrogate_nets.layers.Sequential` it runs time-distributed on ``[T, B, C, H, W]``.
    Being an ``nn.MaxPool2d``, any code that recognises max pooling (e.g. exporters) treats it as one.

    Reference: max pooling in spiking CNNs as in snnTorch's tutorials (Eshraghian et al.,
    Proc. IEEE 2023) and SpikingJelly (Fang et al., Sci. Adv. 2023); the saved-offset backward is ours.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.return_indices:
            return super().forward(x)
        return max_pool2d(x, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode)
