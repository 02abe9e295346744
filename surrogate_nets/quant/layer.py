r"""Shared machinery of the quantized layers: weight/activation quantizers, conversion, integer export.

A quantized layer ``QuantX`` subclasses the float layer ``nn.X`` (a drop-in: same constructor
arguments first, same ``weight``/``bias`` parameters, same ``state_dict`` keys plus the
quantizers') and computes

.. math::
    y = Q_{out}\big(\, \mathrm{op}(Q_{in}(x),\ Q_W(W)) + \mathrm{bias} \,\big)

with ``Q_W`` a :class:`~surrogate_nets.quant.QuantWeight` (signed, per output channel by default)
and optional ``Q_in``/``Q_out`` activation quantizers (any module, typically
:class:`~surrogate_nets.quant.QuantAct`). The bias stays in floating point (in an integer
pipeline it is quantized with step ``s_W * s_in`` into int32; that rounding is not simulated).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Union

import torch
from torch import nn

from .._validate import check_float_tensor
from ..surrogate import Surrogate
from .quantizer import Quantizer
from .weight import QuantWeight


@dataclass
class IntExport:
    """Integer export of a quantized layer (see :meth:`QuantLayerMixin.export_int`).

    Attributes:
        weight: integer codes, ``int8``/``int16``/``int32``, the weight's shape. Binary weights
            are ``+-1``.
        weight_step: float step broadcastable to ``weight`` (``[]`` or ``[C, 1, ...]``).
        weight_zero_point: integer zero points (all 0: symmetric weights), ``weight_step``'s shape.
        bias: float bias or ``None``.
        input, output: :meth:`Quantizer.export` dicts of the activation quantizers, or ``None``.
        bits: weight bit width; ``binary``: weights are ``{-s, +s}``.
    """

    weight: torch.Tensor
    weight_step: torch.Tensor
    weight_zero_point: torch.Tensor
    bias: Optional[torch.Tensor]
    input: Optional[dict]
    output: Optional[dict]
    bits: Optional[int]
    binary: bool

    def dequantize(self) -> torch.Tensor:
        """``weight * weight_step``: bit-for-bit the weight the layer's float forward uses."""
        return (self.weight.to(self.weight_step.dtype) - self.weight_zero_point.to(self.weight_step.dtype)) \
            * self.weight_step


def _check_quant_module(m, name: str):
    if m is not None and not isinstance(m, nn.Module):
        raise TypeError(f"{name} must be an nn.Module (e.g. QuantAct) or None, got {type(m).__name__}")
    return m


class QuantLayerMixin:
    """Mixin for ``nn.Linear``/``nn.ConvNd`` subclasses; see the module documentation."""

    #: the float layer class that :meth:`from_float` converts
    _float_cls: type = nn.Module

    def _setup_quant(self, bits, per_channel, surrogate, narrow, grad_scale, init, weight_quant,
                     input_quant, output_quant):
        out_ch = self.weight.shape[0]
        if weight_quant is None:
            weight_quant = QuantWeight(bits, per_channel, out_ch if per_channel else None,
                                       surrogate=surrogate, narrow=narrow, grad_scale=grad_scale,
                                       init=init, device=self.weight.device, dtype=self.weight.dtype)
        elif not isinstance(weight_quant, Quantizer):
            raise TypeError(f"weight_quant must be a Quantizer (e.g. QuantWeight), got "
                            f"{type(weight_quant).__name__}")
        elif weight_quant.per_channel is not None and (
                weight_quant.per_channel % self.weight.dim() != 0 or weight_quant.channels != out_ch):
            raise ValueError(f"weight_quant must be per output channel (dim 0, channels={out_ch}) or "
                             f"per tensor, got per_channel={weight_quant.per_channel}, "
                             f"channels={weight_quant.channels}")
        self.weight_quant = weight_quant
        self.input_quant = _check_quant_module(input_quant, "input_quant")
        self.output_quant = _check_quant_module(output_quant, "output_quant")

    def quantized_weight(self) -> torch.Tensor:
        """The fake-quantized weight ``Q_W(W)`` used by the forward (differentiable)."""
        return self.weight_quant(self.weight)

    def _quant_forward(self, x: torch.Tensor, op) -> torch.Tensor:
        check_float_tensor(x, "input")
        if self.input_quant is not None:
            x = self.input_quant(x)
        y = op(x, self.quantized_weight())
        if self.output_quant is not None:
            y = self.output_quant(y)
        return y

    # ------------------------------------------------------------- conversion
    @classmethod
    def _float_args(cls, module) -> dict:
        raise NotImplementedError

    @classmethod
    def from_float(cls, module: nn.Module, *, bits: int = 4, per_channel: bool = True,
                   surrogate: Union[str, Surrogate] = "straight_through", narrow: bool = False,
                   grad_scale: Union[bool, str, float, None] = True, init: str = "lsq",
                   weight_quant: Optional[Quantizer] = None, input_quant: Optional[nn.Module] = None,
                   output_quant: Optional[nn.Module] = None):
        """Convert a (trained) float layer: copy its weight and bias, initialise the weight step.

        The step is initialised from the copied weights right away (``init="lsq"``:
        ``2 mean|w| / sqrt(Q_P)``; ``"max"``: ``max|w| / Q_P``; per output channel by default).
        Device, dtype and train/eval mode follow ``module``; ``module`` is not modified.
        """
        if not isinstance(module, cls._float_cls):
            raise TypeError(f"{cls.__name__}.from_float expects a torch.nn.{cls._float_cls.__name__} "
                            f"(or subclass), got {type(module).__name__}")
        w = module.weight
        new = cls(**cls._float_args(module), bias=module.bias is not None, device=w.device,
                  dtype=w.dtype, bits=bits, per_channel=per_channel, surrogate=surrogate,
                  narrow=narrow, grad_scale=grad_scale, init=init, weight_quant=weight_quant,
                  input_quant=input_quant, output_quant=output_quant)
        with torch.no_grad():
            new.weight.copy_(w)
            if module.bias is not None:
                new.bias.copy_(module.bias)
        if not bool(new.weight_quant.initialized):  # a given, already initialised quantizer is kept
            new.weight_quant.init_from(new.weight.detach())
        new.train(module.training)
        return new

    def to_float(self) -> nn.Module:
        """A plain float layer whose weight is the dequantized weight (activation quantizers dropped)."""
        f = self._float_cls(**self._float_args(self), bias=self.bias is not None,
                            device=self.weight.device, dtype=self.weight.dtype)
        with torch.no_grad():
            f.weight.copy_(self.quantized_weight())
            if self.bias is not None:
                f.bias.copy_(self.bias)
        return f.train(self.training)

    # ----------------------------------------------------------------- export
    def export_int(self) -> IntExport:
        """Integer weights, steps and zero points; ``export.dequantize()`` equals the forward's weight.

        ``weight`` holds codes in ``int8`` (<= 8 bits), ``int16`` (<= 16 bits) or ``int32``;
        ``weight_step`` is shaped to broadcast against it. Activation quantizers are exported
        with :meth:`Quantizer.export`. Runs without gradient tracking.
        """
        wq = self.weight_quant
        with torch.no_grad():
            w = self.weight.detach()
            if not wq._init_done:
                wq.init_from(w)
            codes = wq.to_int(w)
            step = wq._view(wq.step.detach(), w).to(w.dtype).clone()
        zp = torch.zeros(step.shape, dtype=codes.dtype, device=codes.device)
        ex = lambda m: m.export() if isinstance(m, Quantizer) else None  # noqa: E731
        return IntExport(weight=codes, weight_step=step, weight_zero_point=zp,
                         bias=None if self.bias is None else self.bias.detach().clone(),
                         input=ex(self.input_quant), output=ex(self.output_quant),
                         bits=wq.bits, binary=wq.binary)
