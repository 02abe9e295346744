r"""Spike-input 2-D convolution: sparse scatter forward, int8-saved input, sparse weight gradient.

After the first spiking layer (and for event-camera frames) a convolution's input is binary and
sparse. :class:`SpikeConv2d` is ``nn.Conv2d`` for such inputs:

.. math::
    y_{n,o} = b_o + \sum_{c} w_{o,c} \star x_{n,c},\qquad
    \frac{\partial L}{\partial w_{o,c}} = \sum_n g_{n,o} \star x_{n,c},\qquad
    \frac{\partial L}{\partial x_{n,c}} = \sum_o w_{o,c} \star^{\top} g_{n,o}

(``\star`` the strided, padded, dilated cross-correlation). What changes is how it is computed
and what autograd keeps:

* **saved memory**: the input is saved as int8 when that is exact (spikes, counts in
  [-128, 127]) -- a quarter of float32's bytes, lossless -- and re-expanded in backward;
  other inputs are saved as they are (the layer is then a plain convolution);
* **sparse compute** (CPU float32/float64 with numba, ``groups=1``, numeric zero padding): the
  weight gradient gathers ``x g`` from the active inputs only, and at low density the forward
  scatters ``x w`` from them (:mod:`surrogate_nets.kernels.numba_spike_conv`): ``nnz(x) k_h k_w
  C_out`` multiply-adds instead of ``numel(y) C_in k_h k_w``. The input gradient stays the dense
  transposed convolution (the surrogate gradient needs it everywhere).

Results equal ``F.conv2d`` and its gradients to float rounding (sums in another order).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

from ..kernels import numba_runnable as _numba_ok  # a module name: the tests switch it off
from .spike_linear import _check_mode

__all__ = ["SpikeConv2d", "spike_conv2d", "SpikeConv2dFunction"]

#: default density (fraction of nonzero inputs) at or below which ``mode="auto"`` computes the
#: weight gradient sparsely (measured: 1.5-2x faster than the dense one at 5-10%)
DEFAULT_MAX_DENSITY = 0.2
#: density at or below which ``mode="auto"`` also runs the forward sparsely (measured, 1 thread,
#: 640 samples, 5x5 kernels: 5.8 vs 12.8 ms for ``F.conv2d`` at 5% with 2 -> 12 channels on 34x34,
#: 6.3 vs 7.3 ms at 10% with 12 -> 32 on 15x15, 11.3 vs 7.2 ms at 20%)
FORWARD_MAX_DENSITY = 0.125


def _pair(v, name: str, low: int):
    t = tuple(v) if isinstance(v, (tuple, list)) else (v, v)
    if len(t) != 2 or not all(isinstance(e, int) and not isinstance(e, bool) and e >= low for e in t):
        raise ValueError(f"{name} must be an int >= {low} or a pair of them, got {v!r}")
    return t


def _compact_torch(x: torch.Tensor):
    """``(x as int8, True)`` when that is exact, else ``(None, False)`` (torch ops, any device)."""
    xi = x.to(torch.int8)
    return (xi, True) if torch.equal(xi.to(x.dtype), x) else (None, False)


class SpikeConv2dFunction(torch.autograd.Function):
    """``F.conv2d`` (groups 1, numeric zero padding) saving an exact int8 copy ``q`` of ``x``."""

    @staticmethod
    def forward(ctx, x, weight, bias, q, sparse_fwd, sparse, stride, padding, dilation, active=None):
        # active: (ptr, codes) of x's nonzeros from conv_scan, needed by the sparse kernels
        if sparse_fwd:
            from ..kernels.numba_spike_conv import spike_conv2d_forward

            out_hw = [(x.shape[2 + i] + 2 * padding[i] - dilation[i] * (weight.shape[2 + i] - 1) - 1)
                      // stride[i] + 1 for i in range(2)]
            y = spike_conv2d_forward(q if q is not None else x.detach(), active, weight, bias, stride,
                                     padding, dilation, out_hw)
        else:
            y = F.conv2d(x.detach(), weight.detach(), None if bias is None else bias.detach(),
                         stride, padding, dilation)
        ctx.save_for_backward(q if q is not None else x.detach(), weight, *(active if sparse else ()))
        ctx.meta = (x.dtype, tuple(x.shape), sparse, stride, padding, dilation, bias is not None)
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx, g):
        xs, weight, *active = ctx.saved_tensors
        dtype, x_shape, sparse, stride, padding, dilation, has_bias = ctx.meta
        gx = gw = gb = None
        if ctx.needs_input_grad[0]:
            gx = torch.nn.grad.conv2d_input(x_shape, weight, g, stride, padding, dilation)
        if sparse and (ctx.needs_input_grad[1] or ctx.needs_input_grad[2]):
            from ..kernels.numba_spike_conv import spike_conv2d_weight_grad

            gw, gb = spike_conv2d_weight_grad(xs, active, g, weight, stride, padding, dilation)
        elif ctx.needs_input_grad[1]:
            gw = torch.nn.grad.conv2d_weight(xs.to(dtype), weight.shape, g, stride, padding, dilation)
        gw = gw if ctx.needs_input_grad[1] else None
        if not (has_bias and ctx.needs_input_grad[2]):
            gb = None
        elif gb is None:
            gb = g.sum((0, 2, 3))
        return gx, gw, gb, None, None, None, None, None, None, None


def spike_conv2d(x: torch.Tensor, weight: torch.Tensor, bias=None, stride=1, padding=0, dilation=1,
                 groups: int = 1, mode: str = "auto", max_density: float = DEFAULT_MAX_DENSITY) -> torch.Tensor:
    r"""``F.conv2d(x, weight, bias, stride, padding, dilation, groups)`` for a spike input ``x``.

    Args:
        x: ``[N, C_in, H, W]`` (or ``[C_in, H, W]``) floating input; spikes/events/counts profit,
            any values are computed correctly.
        weight: ``[C_out, C_in / groups, k_h, k_w]``; bias: ``[C_out]`` or ``None``.
        stride, padding, dilation, groups: as ``F.conv2d`` (a string ``padding`` or ``groups > 1``
            give a plain ``F.conv2d``).
        mode: ``"auto"`` (on CPU float32/float64 with numba: the weight gradient is sparse when the
            fraction of nonzeros is at most ``max_density``, the forward too when it is also at
            most ``FORWARD_MAX_DENSITY`` = 0.125), ``"sparse"`` (both, whenever possible) or
            ``"dense"`` (``F.conv2d``'s compute; the int8-saved input still applies).
        max_density: density threshold of ``"auto"`` in [0, 1].
    Returns:
        ``[N, C_out, H_out, W_out]``, equal to ``F.conv2d`` up to float rounding. Once differentiable
        (no gradient of the gradient) except where it falls back to a plain ``F.conv2d``.
    """
    _check_inputs(x, weight)
    _check_mode(mode, max_density)
    plan = _plan(x, weight, bias, stride, padding, dilation, groups)
    if plan is None:
        return F.conv2d(x, weight, bias, stride, padding, dilation, groups)  # F.conv2d checks shapes
    x4, s, p, d, fast = plan
    q, sparse_fwd, sparse, active = _choose(x4, fast, mode, max_density)
    y = SpikeConv2dFunction.apply(x4, weight, bias, q, sparse_fwd, sparse, s, p, d, active)
    return y.squeeze(0) if x.dim() == 3 else y


def _plan(x, weight, bias, stride, padding, dilation, groups):
    """``(x4, stride, padding, dilation, fast)`` for the int8-saving path, or ``None`` where a
    plain ``F.conv2d`` applies (string padding, groups, empty or mismatched input)."""
    if isinstance(padding, str) or groups != 1 or x.shape[-3] != weight.shape[1]:
        return None
    s, p, d = _pair(stride, "stride", 1), _pair(padding, "padding", 0), _pair(dilation, "dilation", 1)
    x4 = x.unsqueeze(0) if x.dim() == 3 else x
    if x4.numel() == 0 or any((x4.shape[2 + i] + 2 * p[i] - d[i] * (weight.shape[2 + i] - 1) - 1) < 0
                              for i in range(2)):
        return None  # empty or too small: torch's result / error
    fast = (x4.device.type == "cpu" and x4.dtype in (torch.float32, torch.float64) and weight.dtype == x4.dtype
            and (bias is None or bias.dtype == x4.dtype) and weight.device.type == "cpu" and _numba_ok())
    return x4, s, p, d, fast


def _choose(x4, fast, mode, max_density):
    """``(q, sparse_forward, sparse_weight_grad, active)``: the exact int8 copy of ``x4`` (or
    ``None``), which kernels ``mode`` and the measured density pick, and the nonzeros' positions
    (:func:`~surrogate_nets.kernels.numba_spike_conv.conv_scan`, one pass for all of it)."""
    if not fast:
        return _compact_torch(x4.detach())[0], False, False, None
    from ..kernels.numba_spike_conv import conv_scan, conv_scan_fits, int8_scan

    if not conv_scan_fits(x4.shape):  # positions too large to pack: int8 saving only
        q, _, exact = int8_scan(x4.detach())
        return (q if exact else None), False, False, None
    q, nnz, exact, active = conv_scan(x4.detach())
    sparse = mode == "sparse" or (mode == "auto" and nnz <= max_density * x4.numel())
    sparse_fwd = mode == "sparse" or (sparse and nnz <= FORWARD_MAX_DENSITY * x4.numel())
    return (q if exact else None), sparse_fwd, sparse, active


def _check_inputs(x, weight):
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if not isinstance(weight, torch.Tensor) or weight.dim() != 4:
        raise ValueError(f"weight must be a 4-D tensor [C_out, C_in, k_h, k_w], got "
                         f"{tuple(weight.shape) if isinstance(weight, torch.Tensor) else type(weight).__name__}")
    if x.dim() not in (3, 4) or not x.is_floating_point():
        raise ValueError(f"x must be a floating [N, C_in, H, W] or [C_in, H, W] tensor, got dtype {x.dtype} "
                         f"and shape {tuple(x.shape)}")




class SpikeConv2d(nn.Conv2d):
    r"""``nn.Conv2d`` for spike inputs: sparse scatter compute and an int8-saved input.

    .. math:: y_{n,o} = b_o + \textstyle\sum_c w_{o,c} \star x_{n,c}

    Same parameters, ``state_dict`` and results (to float rounding) as ``nn.Conv2d``, so it can
    replace the convolution that follows a spiking layer or reads event frames. Shapes:
    ``[N, C_in, H, W]`` -> ``[N, C_out, H_out, W_out]``; inside
    :class:`~surrogate_nets.layers.Sequential` it runs time-distributed on ``[T, B, C_in, H, W]``.
    See :func:`spike_conv2d` for what is computed sparsely and what is saved. A ``padding_mode``
    other than ``"zeros"`` falls back to ``nn.Conv2d.forward``. Being an ``nn.Conv2d``, exporters that
    map convolutions (e.g. :func:`surrogate_nets.nir.export`) treat it as one.

    The arguments ``in_channels`` ... ``dtype`` are those of ``nn.Conv2d``; in addition:

    Args:
        mode: ``"auto"``, ``"sparse"`` or ``"dense"`` (see :func:`spike_conv2d`).
        max_density: see :func:`spike_conv2d`.

    Reference: event-driven convolution as in SNN accelerators and sparse SNN training
    (e.g. Perez-Nieves & Goodman, NeurIPS 2021, on sparse spiking gradient descent);
    here a CPU training kernel.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, padding_mode: str = "zeros", device=None, dtype=None,
                 mode: str = "auto", max_density: float = DEFAULT_MAX_DENSITY):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, device, dtype)
        _check_mode(mode, max_density)
        self.mode = mode
        self.max_density = float(max_density)

    @classmethod
    def from_conv(cls, conv: nn.Conv2d, **kw) -> "SpikeConv2d":
        """A :class:`SpikeConv2d` sharing ``conv``'s parameters."""
        if not isinstance(conv, nn.Conv2d):
            raise TypeError(f"conv must be an nn.Conv2d, got {type(conv).__name__}")
        new = cls(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                  conv.dilation, conv.groups, conv.bias is not None, conv.padding_mode,
                  device=conv.weight.device, dtype=conv.weight.dtype, **kw)
        new.weight = conv.weight
        new.bias = conv.bias
        return new

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.padding_mode != "zeros":
            return super().forward(x)
        return spike_conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups,
                            self.mode, self.max_density)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", mode={self.mode!r}, max_density={self.max_density}"
