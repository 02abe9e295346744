r"""Spike-sparse linear layer: gather-add the weight rows of the active inputs.

After the first spiking layer, every layer's input is a spike tensor: binary (or small integer
counts) and sparse, 5-30% active in typical runs. A dense GEMM spends ``M I O`` multiply-adds on
it; the gather-add form

.. math::
    y_r = b + \sum_{c:\,x_{rc} \ne 0} x_{rc}\,W_{:,c},\qquad
    \partial L/\partial W_{:,c} = \sum_{r:\,x_{rc} \ne 0} x_{rc}\,(\partial L/\partial y_r)

spends ``nnz(x) O``, and the weight gradient likewise touches only the active inputs
(the input gradient ``g W`` stays a dense GEMM: the surrogate gradient needs it everywhere).
Results equal ``nn.Linear`` to float rounding (sums in another order). The input is saved for
backward as int8 when that is exact (spikes, counts up to 127): a quarter of the bytes, lossless. The gather-add runs as a
compiled CPU kernel (:mod:`surrogate_nets.kernels.numba_spike_linear`); without numba, on CUDA,
or above ``max_density`` the layer is a plain ``F.linear``.

Where it pays (``benchmarks/spike_linear.py``, ``benchmarks/RESULTS.md``): on CPU, for a
700->256 layer at T*B = 6400, forward+backward is 2.3x faster than ``nn.Linear`` at 1% density,
1.5x at 10%, 1.2x at 20% and slower from ~30% (the dense input gradient bounds the gain); hence
``mode="auto"`` measures the density of each input (one pass over it) and picks.
"""

from __future__ import annotations


import torch
import torch.nn.functional as F
from torch import nn

from .._validate import check_choice
from ..kernels import numba_runnable as _numba_ok  # a module name: the tests switch it off

__all__ = ["SpikeLinear", "spike_linear", "SpikeLinearFunction"]

_MODES = ("auto", "sparse", "dense")
#: default density (fraction of nonzero inputs) below which ``mode="auto"`` gathers
DEFAULT_MAX_DENSITY = 0.2


def _compact(x: torch.Tensor) -> torch.Tensor:
    """``x`` as int8 when that is exact (spikes, small counts), else ``x``: 1/4 of the saved bytes.

    Lossless: the kernels read the int8 values directly (int8 * float is exact to the float
    product); any value that int8 does not hold exactly (fractions, |x| > 127, nan) keeps the input
    dtype. (:func:`spike_linear` gets the same copy, the exactness and the density in one pass from
    :func:`~surrogate_nets.kernels.numba_spike_conv.int8_scan`.)
    """
    xi = x.to(torch.int8)
    return xi if torch.equal(xi.to(x.dtype), x) else x


class SpikeLinearFunction(torch.autograd.Function):
    """``y = x W^T + b`` for a 2-D spike input ``x`` ``[M, I]`` by gather-add (CPU, numba)."""

    @staticmethod
    def forward(ctx, x, weight, bias, q=None):
        # q: an exact int8 copy of x (from int8_scan) or None; the kernels read it directly
        from ..kernels.numba_spike_linear import sparse_input_matmul

        x = x.contiguous()
        out = (bias.expand(x.shape[0], weight.shape[0]).clone() if bias is not None
               else x.new_zeros(x.shape[0], weight.shape[0]))
        xs = q if q is not None else _compact(x.detach())
        sparse_input_matmul(xs, weight.detach().t().contiguous(), out)
        ctx.x_dtype = x.dtype
        ctx.save_for_backward(xs, weight)
        ctx.has_bias = bias is not None
        return out

    @staticmethod
    def backward(ctx, g):
        from ..kernels.numba_spike_linear import sparse_input_weight_grad

        x, weight = ctx.saved_tensors  # x: int8 when exact (the kernel reads it as is)
        g = g.contiguous()
        gx = g @ weight if ctx.needs_input_grad[0] else None
        gw = sparse_input_weight_grad(x.detach(), g).t() if ctx.needs_input_grad[1] else None
        gb = g.sum(0) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return gx, gw, gb, None


def spike_linear(x: torch.Tensor, weight: torch.Tensor, bias=None, mode: str = "auto",
                 max_density: float = DEFAULT_MAX_DENSITY) -> torch.Tensor:
    """``F.linear(x, weight, bias)`` computed by gather-add when ``x`` is sparse.

    Args:
        x: ``[..., I]`` input (spikes; any values work, zeros are skipped).
        weight: ``[O, I]``; bias: ``[O]`` or ``None``.
        mode: ``"auto"`` (gather-add on CPU float32/float64 when numba is installed and the
            fraction of nonzeros is at most ``max_density``), ``"sparse"`` (gather-add whenever
            possible) or ``"dense"`` (``F.linear``).
    Returns:
        ``[..., O]``, equal to ``F.linear`` up to float rounding.
    """
    check_choice(mode, "mode", _MODES)
    usable = (mode != "dense" and x.device.type == "cpu" and weight.device.type == "cpu"
              and x.dtype in (torch.float32, torch.float64) and weight.dtype == x.dtype
              and (bias is None or bias.dtype == x.dtype) and x.numel() > 0 and _numba_ok())
    q = None
    if usable:  # one pass: the int8 copy saved for backward, its exactness and the density
        from ..kernels.numba_spike_conv import int8_scan

        q, nnz, exact = int8_scan(x.detach())
        q = q.reshape(-1, x.shape[-1]) if exact else None
        usable = mode == "sparse" or nnz <= max_density * x.numel()
    if not usable:
        return F.linear(x, weight, bias)
    lead = x.shape[:-1]
    y = SpikeLinearFunction.apply(x.reshape(-1, x.shape[-1]), weight, bias, q)
    return y.reshape(*lead, weight.shape[0])


def _check_mode(mode, max_density) -> None:
    """The ``mode`` / ``max_density`` arguments of the spike-input layers (linear and conv)."""
    check_choice(mode, "mode", _MODES)
    if not (isinstance(max_density, (int, float)) and 0.0 <= float(max_density) <= 1.0):
        raise ValueError(f"max_density must be a float in [0, 1], got {max_density!r}")


class SpikeLinear(nn.Linear):
    r"""``nn.Linear`` for spike inputs: gather-adds the weight columns of the active inputs.

    .. math:: y = x W^T + b \quad(\text{computed as } \textstyle\sum_{c:\,x_c\ne0} x_c W_{:,c} + b)

    Same parameters, ``state_dict`` and results (to float rounding) as ``nn.Linear``, so it can
    replace the ``Linear`` that follows a spiking layer. Shapes: ``[..., in_features]`` to
    ``[..., out_features]`` (time-major ``[T, B, I]`` works directly).

    Args:
        in_features, out_features, bias, device, dtype: as ``nn.Linear``.
        mode: ``"auto"``, ``"sparse"`` or ``"dense"`` (see :func:`spike_linear`).
        max_density: the density at or below which ``"auto"`` gathers (default 0.2, measured).

    Reference: event-driven accumulation as in SNN accelerators (e.g. Davies et al., Loihi,
    IEEE Micro 2018); here only as a CPU training kernel.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, device=None,
                 dtype=None, mode: str = "auto", max_density: float = DEFAULT_MAX_DENSITY):
        super().__init__(in_features, out_features, bias, device, dtype)
        _check_mode(mode, max_density)
        self.mode = mode
        self.max_density = float(max_density)

    @classmethod
    def from_linear(cls, linear: nn.Linear, **kw) -> "SpikeLinear":
        """A :class:`SpikeLinear` sharing ``linear``'s parameters."""
        if not isinstance(linear, nn.Linear):
            raise TypeError(f"linear must be an nn.Linear, got {type(linear).__name__}")
        new = cls(linear.in_features, linear.out_features, linear.bias is not None,
                  device=linear.weight.device, dtype=linear.weight.dtype, **kw)
        new.weight = linear.weight
        new.bias = linear.bias
        return new

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return spike_linear(x, self.weight, self.bias, self.mode, self.max_density)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", mode={self.mode!r}, max_density={self.max_density}"
