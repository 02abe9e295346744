r""":class:`QuantConv1d`, :class:`QuantConv2d`: convolutions with quantized weights."""

from __future__ import annotations

from typing import Optional, Union

import torch
from torch import nn

from ..surrogate import Surrogate
from .layer import QuantLayerMixin
from .quantizer import Quantizer

_DOC_ARGS = """
    Args:
        in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
        padding_mode, device, dtype: as the float convolution.
        bits: weight bit width 1..16 (1 = binary ``{-s, +s}``).
        per_channel: one step per output channel (step ``[out]`` broadcast as
            ``[out, 1, ...]``), else one per tensor.
        surrogate: the weight quantizer's surrogate (name or instance).
        narrow: symmetric signed range.
        grad_scale: LSQ gradient scale of the weight step (``True``: ``N`` = weights per step).
        init: weight step init, ``"lsq"`` or ``"max"``.
        weight_quant: a ready weight quantizer instead.
        input_quant, output_quant: modules applied to the input / output, or ``None``.
"""


class _QuantConvNd(QuantLayerMixin):
    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = True, padding_mode: str = "zeros",
                 device=None, dtype=None, *, bits: int = 4, per_channel: bool = True,
                 surrogate: Union[str, Surrogate] = "straight_through", narrow: bool = False,
                 grad_scale: Union[bool, str, float, None] = True, init: str = "lsq",
                 weight_quant: Optional[Quantizer] = None, input_quant: Optional[nn.Module] = None,
                 output_quant: Optional[nn.Module] = None):
        # the float convolution's own __init__ (Conv1d and Conv2d take the same arguments)
        self._float_cls.__init__(self, in_channels, out_channels, kernel_size, stride, padding,
                                 dilation, groups, bias, padding_mode, device, dtype)
        self._setup_quant(bits, per_channel, surrogate, narrow, grad_scale, init, weight_quant,
                          input_quant, output_quant)

    @classmethod
    def _float_args(cls, module) -> dict:
        return {"in_channels": module.in_channels, "out_channels": module.out_channels,
                "kernel_size": module.kernel_size, "stride": module.stride,
                "padding": module.padding, "dilation": module.dilation, "groups": module.groups,
                "padding_mode": module.padding_mode}

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return self._quant_forward(input, lambda x, w: self._conv_forward(x, w, self.bias))


class QuantConv2d(_QuantConvNd, nn.Conv2d):
    __doc__ = r"""``y = Q_out(conv2d(Q_in(x), Q_W(W)) + bias)``: a drop-in ``nn.Conv2d``.

    Weight ``[out, in/groups, kH, kW]`` quantized by a :class:`~surrogate_nets.quant.QuantWeight`
    (signed, LSQ step per output channel by default); see :class:`QuantLinear` and
    :mod:`surrogate_nets.quant.layer`. Shapes: ``[B, C_in, H, W] -> [B, C_out, H', W']``.
""" + _DOC_ARGS

    _float_cls = nn.Conv2d


class QuantConv1d(_QuantConvNd, nn.Conv1d):
    __doc__ = r"""``y = Q_out(conv1d(Q_in(x), Q_W(W)) + bias)``: a drop-in ``nn.Conv1d``.

    Weight ``[out, in/groups, k]``; see :class:`QuantConv2d`. Shapes: ``[B, C_in, L] -> [B, C_out, L']``.
""" + _DOC_ARGS

    _float_cls = nn.Conv1d
