r"""Spike-input convolution followed by a 2x2 max pool, fused: the conv output is never stored.

.. math::
    y_{n,o,i,j} = \max_{a,b \in \{0,1\}} z_{n,o,2i+a,\,2j+b},\qquad
    z_n = b + w \star x_n

In snnTorch's N-MNIST conv net the first convolution's output (``[640, 12, 30, 30]`` float32 per
step, 28 MB) is written, read by the pool, and in backward its gradient (28 MB again) is written
and read back by the weight gradient. When the input is sparse enough for the scatter forward
(:data:`~surrogate_nets.layers.spike_conv.FORWARD_MAX_DENSITY`, or ``mode="sparse"``), this layer
computes one sample's conv output in a cache-resident buffer, pools it there, and keeps only the
pooled output, the uint8 argmax offsets and the int8 input for backward; the backward rebuilds
the conv-output gradient per sample in the same buffer
(:mod:`surrogate_nets.kernels.numba_conv_pool`). Otherwise it runs :func:`spike_conv2d` then
:func:`max_pool2d` (same results). Either way the results equal
``F.max_pool2d(F.conv2d(x, w, b, ...), 2)`` and its gradients to float rounding.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.autograd.function import once_differentiable

from .max_pool import MaxPool2d, max_pool2d
from .spike_conv import (DEFAULT_MAX_DENSITY, SpikeConv2d, SpikeConv2dFunction, _check_inputs, _check_mode,
                         _choose, _plan, spike_conv2d)

__all__ = ["SpikeConvPool2d", "spike_conv_max_pool2d", "SpikeConvPool2dFunction"]

_POOL2 = ((2, 2), (2, 2), (0, 0), (1, 1))  # kernel, stride, padding, dilation of the fused pool


class SpikeConvPool2dFunction(torch.autograd.Function):
    """``max_pool2d(conv2d(x), 2)`` by the fused sparse kernels; saves int8 ``q`` (or ``x``) and offsets."""

    @staticmethod
    def forward(ctx, x, weight, bias, q, active, stride, padding, dilation, conv_hw):
        from ..kernels.numba_conv_pool import conv_pool_forward

        xs = q if q is not None else x.detach()
        y, off = conv_pool_forward(xs, active, weight, bias, stride, padding, dilation, conv_hw)
        ctx.save_for_backward(xs, weight, off, *active)
        ctx.meta = (tuple(x.shape), stride, padding, dilation, conv_hw, bias is not None)
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx, gp):
        from ..kernels.numba_conv_pool import conv_pool_weight_grad
        from ..kernels.numba_max_pool import max_pool2d_backward

        xs, weight, off, *active = ctx.saved_tensors
        x_shape, stride, padding, dilation, conv_hw, has_bias = ctx.meta
        gx = gw = gb = None
        if ctx.needs_input_grad[1] or ctx.needs_input_grad[2]:
            gw, gb = conv_pool_weight_grad(xs, active, gp, off, weight, stride, padding, dilation, conv_hw)
        if ctx.needs_input_grad[0]:
            g_conv = max_pool2d_backward(gp, off, False, (x_shape[0], weight.shape[0], *conv_hw), *_POOL2)
            gx = torch.nn.grad.conv2d_input(x_shape, weight, g_conv, stride, padding, dilation)
        return (gx, gw if ctx.needs_input_grad[1] else None,
                gb if has_bias and ctx.needs_input_grad[2] else None, None, None, None, None, None, None)


def spike_conv_max_pool2d(x: torch.Tensor, weight: torch.Tensor, bias=None, stride=1, padding=0, dilation=1,
                          mode: str = "auto", max_density: float = DEFAULT_MAX_DENSITY) -> torch.Tensor:
    r"""``F.max_pool2d(F.conv2d(x, weight, bias, stride, padding, dilation), 2)`` for a spike input.

    Args:
        x: ``[N, C_in, H, W]`` (or ``[C_in, H, W]``) floating input (spikes/events profit).
        weight: ``[C_out, C_in, k_h, k_w]``; bias: ``[C_out]`` or ``None``; stride, padding,
            dilation: as ``F.conv2d`` (groups 1).
        mode, max_density: as :func:`spike_conv2d`; the fused kernels run where its scatter
            forward would (CPU float32/float64 with numba, density at most ``FORWARD_MAX_DENSITY``
            or ``mode="sparse"``).
    Returns:
        ``[N, C_out, H_c // 2, W_c // 2]`` (``H_c, W_c`` the conv output size). Once differentiable.
    """
    _check_inputs(x, weight)
    _check_mode(mode, max_density)
    plan = _plan(x, weight, bias, stride, padding, dilation, 1)
    if plan is None:
        return max_pool2d(spike_conv2d(x, weight, bias, stride, padding, dilation, 1, mode, max_density), 2)
    x4, s, p, d, fast = plan
    conv_hw = tuple((x4.shape[2 + i] + 2 * p[i] - d[i] * (weight.shape[2 + i] - 1) - 1) // s[i] + 1
                    for i in range(2))
    q, sparse_fwd, sparse, active = _choose(x4, fast, mode, max_density)
    if sparse_fwd and min(conv_hw) >= 2:
        y = SpikeConvPool2dFunction.apply(x4, weight, bias, q, active, s, p, d, conv_hw)
    else:
        y = max_pool2d(SpikeConv2dFunction.apply(x4, weight, bias, q, sparse_fwd, sparse, s, p, d, active), 2)
    return y.squeeze(0) if x.dim() == 3 else y


class SpikeConvPool2d(nn.Module):
    r""":class:`SpikeConv2d` followed by :class:`MaxPool2d` ``(2)``, fused where that pays.

    .. math:: y = \mathrm{maxpool}_{2\times2}\big(b + w \star x\big)

    The same computation and parameters as ``Sequential(SpikeConv2d(...), MaxPool2d(2))`` (the
    children are ``self.conv`` and ``self.pool``; ``state_dict`` keys ``conv.weight``,
    ``conv.bias``), but for sparse inputs the conv output is kept per sample in cache and only the
    pooled output, uint8 argmax offsets and the int8 input are stored (see
    :func:`spike_conv_max_pool2d`). Shapes: ``[N, C_in, H, W]`` -> ``[N, C_out, H_c // 2, W_c // 2]``;
    inside :class:`~surrogate_nets.layers.Sequential` it runs time-distributed on ``[T, B, ...]``.
    NIR export sees the two children (and refuses the max pool, which NIR lacks).

    Args:
        in_channels, out_channels, kernel_size, stride, padding, dilation, bias, device, dtype:
            as ``nn.Conv2d`` (groups 1, zero padding).
        mode, max_density: as :class:`SpikeConv2d`.

    Reference: the conv-pool-spike block of snnTorch's N-MNIST tutorial (Eshraghian et al.,
    Proc. IEEE 2023); fusing convolution and pooling to avoid storing the conv output is a
    standard inference optimisation, here for sparse training on CPU.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 bias: bool = True, device=None, dtype=None, mode: str = "auto",
                 max_density: float = DEFAULT_MAX_DENSITY):
        super().__init__()
        self.conv = SpikeConv2d(in_channels, out_channels, kernel_size, stride, padding, dilation, 1, bias,
                                "zeros", device, dtype, mode=mode, max_density=max_density)
        self.pool = MaxPool2d(2)

    @classmethod
    def from_conv(cls, conv: nn.Conv2d, **kw) -> "SpikeConvPool2d":
        """A :class:`SpikeConvPool2d` sharing ``conv``'s parameters (groups 1, zero padding)."""
        if not isinstance(conv, nn.Conv2d):
            raise TypeError(f"conv must be an nn.Conv2d, got {type(conv).__name__}")
        if conv.groups != 1 or conv.padding_mode != "zeros" or isinstance(conv.padding, str):
            raise ValueError(f"conv must have groups=1, numeric zero padding; got groups={conv.groups}, "
                             f"padding={conv.padding!r}, padding_mode={conv.padding_mode!r}")
        new = cls(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, conv.dilation,
                  conv.bias is not None, device=conv.weight.device, dtype=conv.weight.dtype, **kw)
        new.conv.weight = conv.weight
        new.conv.bias = conv.bias
        return new

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if isinstance(x, torch.fx.Proxy):  # NIR export traces the two layers
            return self.pool(self.conv(x))
        c = self.conv
        return spike_conv_max_pool2d(x, c.weight, c.bias, c.stride, c.padding, c.dilation, c.mode, c.max_density)
