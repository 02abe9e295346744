r""":class:`QuantWeight`: signed weight quantizer (per tensor or per output channel), LSQ step."""

from __future__ import annotations

from typing import Optional, Union

import torch

from ..surrogate import Surrogate
from .quantizer import Quantizer


class QuantWeight(Quantizer):
    r"""Fake-quantize a weight tensor: ``q = s * clamp(floor(w/s + 1/2), lo, hi)``, signed.

    Same math as :class:`~surrogate_nets.quant.QuantAct` (see
    :mod:`surrogate_nets.quant.quantizer`) with weight defaults: signed codes
    (``-2**(b-1) .. 2**(b-1)-1``; ``narrow=True`` for the symmetric range; ``bits=1`` gives binary
    weights ``{-s, +s}``: ``s * sign(w)``, surrogate on ``(w/s + 1)/2``, whose boxcar is the
    clipped STE ``1[-s <= w < s]``), one step per output channel (dim 0: ``out_features`` of a
    Linear, ``out_channels`` of a Conv), zero point 0, and LSQ's gradient scale with ``N`` = the
    weights per step value (``numel(w) / C``). The step is LSQ-initialised from the weight itself
    at the first forward (or by :meth:`init_from`, which the layers' ``from_float`` calls).

    ``init="max"`` initialises from ``max|w| / Q_P`` instead (no clipping; often better at 8 bits
    for a converted trained layer), ``init="lsq"`` (default) from ``2 mean|w| / sqrt(Q_P)``.

    Args:
        bits: 1..16.
        per_channel: ``True`` (dim 0, needs ``channels``) or ``False`` (one step).
        channels: the size of dim 0 of the weight.
        surrogate, learn_step, init_step, grad_scale, narrow, alpha, learn_alpha, step_param:
            as in :class:`~surrogate_nets.quant.quantizer.Quantizer`.

    Shapes: ``w [C, *] -> [C, *]``.
    """

    _batch_dim0 = False
    _input_name = "weight"

    def __init__(self, bits: int = 4, per_channel: bool = True, channels: Optional[int] = None, *,
                 surrogate: Union[str, Surrogate] = "straight_through", learn_step: bool = True,
                 init_step: Optional[float] = None, grad_scale: Union[bool, str, float, None] = True,
                 narrow: bool = False, init: str = "lsq", alpha: Optional[float] = None,
                 learn_alpha: bool = False, step_param: str = "abs", device=None, dtype=None):
        if not isinstance(per_channel, bool):
            raise TypeError(f"per_channel must be a bool for weights (True = output channels, dim 0), "
                            f"got {type(per_channel).__name__} {per_channel!r}")
        if init not in ("lsq", "max"):
            raise ValueError(f"init must be one of ['lsq', 'max'], got {init!r}")
        if per_channel and channels is None:
            raise ValueError("per_channel=True needs channels= (the size of the weight's dim 0)")
        super().__init__(bits, True, surrogate, learn_step, 0 if per_channel else None, init_step,
                         grad_scale, False, channels=channels if per_channel else None, alpha=alpha,
                         learn_alpha=learn_alpha, narrow=narrow, step_param=step_param,
                         device=device, dtype=dtype)
        self.init = init

    def _init_value(self, x, d, b):
        if self.init == "max":
            with torch.no_grad():
                a = x.detach().abs().float()
                if d is None:
                    m = a.amax()
                else:
                    others = tuple(i for i in range(x.dim()) if i != d)
                    m = a.amax(dim=others) if others else a
                return m / self.q_p
        return super()._init_value(x, d, b)
