r""":class:`QuantLinear`: ``nn.Linear`` with a quantized weight and optional activation quantizers."""

from __future__ import annotations

from typing import Optional, Union

import torch
import torch.nn.functional as F
from torch import nn

from ..surrogate import Surrogate
from .layer import QuantLayerMixin
from .quantizer import Quantizer


class QuantLinear(QuantLayerMixin, nn.Linear):
    r"""``y = Q_out(Q_in(x) Q_W(W)^T + bias)``: a drop-in ``nn.Linear`` with fake-quantized weights.

    ``Q_W`` is a :class:`~surrogate_nets.quant.QuantWeight`: signed ``bits``-bit codes (1 bit:
    binary ``{-s, +s}``), one LSQ step per output feature (``per_channel=True``, step ``[out]``
    broadcast as ``[out, 1]``) or per tensor, LSQ gradients with the boxcar surrogate (any
    surrogate may be given). ``input_quant``/``output_quant`` are optional activation quantizers
    (e.g. :class:`~surrogate_nets.quant.QuantAct`). See :mod:`surrogate_nets.quant.layer` for
    the conventions, :meth:`from_float` to convert a trained ``nn.Linear`` and :meth:`export_int`
    for the integer weights.

    Args:
        in_features, out_features, bias, device, dtype: as ``nn.Linear``.
        bits: weight bit width 1..16.
        per_channel: one step per output feature (else one per tensor).
        surrogate: the weight quantizer's surrogate (name or instance).
        narrow: symmetric signed range ``-(2**(b-1)-1) .. 2**(b-1)-1``.
        grad_scale: LSQ gradient scale of the weight step (``True``: ``N`` = weights per step).
        init: weight step init, ``"lsq"`` or ``"max"`` (see :class:`QuantWeight`).
        weight_quant: a ready weight quantizer instead (``bits`` etc. are then ignored).
        input_quant, output_quant: modules applied to the input / output, or ``None``.

    Shapes: ``[*, in_features] -> [*, out_features]``.

    Reference: Esser et al., "Learned step size quantization", ICLR 2020.
    """

    _float_cls = nn.Linear

    def __init__(self, in_features: int, out_features: int, bias: bool = True, device=None,
                 dtype=None, *, bits: int = 4, per_channel: bool = True,
                 surrogate: Union[str, Surrogate] = "straight_through", narrow: bool = False,
                 grad_scale: Union[bool, str, float, None] = True, init: str = "lsq",
                 weight_quant: Optional[Quantizer] = None, input_quant: Optional[nn.Module] = None,
                 output_quant: Optional[nn.Module] = None):
        super().__init__(in_features, out_features, bias, device, dtype)
        self._setup_quant(bits, per_channel, surrogate, narrow, grad_scale, init, weight_quant,
                          input_quant, output_quant)

    @classmethod
    def _float_args(cls, module) -> dict:
        return {"in_features": module.in_features, "out_features": module.out_features}

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return self._quant_forward(input, lambda x, w: F.linear(x, w, self.bias))
