r""":class:`QuantAct`: activation quantizer with a learnable step (LSQ), offset (LSQ+) and surrogate."""

from __future__ import annotations

from typing import Optional, Union

from ..surrogate import Surrogate
from .quantizer import Quantizer


class QuantAct(Quantizer):
    r"""Fake-quantize activations: ``q = s * clamp(floor((x - b)/s + 1/2), lo, hi) + b``.

    .. math::
        \frac{\partial q}{\partial x} = R'(u),\quad
        \frac{\partial q}{\partial s} = g\,\big(R(u) - u R'(u)\big),\quad
        \frac{\partial q}{\partial b} = g\,\big(1 - R'(u)\big),\qquad u = (x - b)/s

    with ``R'`` the surrogate summed over the level boundaries. With the default boxcar
    ``"straight_through"`` surrogate this is LSQ exactly (Esser et al., "Learned step size
    quantization", ICLR 2020): ``R'(u) = 1[lo <= u < hi]``, clip-then-round. With
    ``learn_offset=True`` it is LSQ+ (Bhalgat et al., CVPR Workshops 2020). With another surrogate
    the gradient also reaches slightly outside the clip range and the sharpness ``alpha`` can be
    learned (``learn_alpha=True``); ``surrogate="dspike", learn_alpha=True`` is DSQ's learnable
    tanh relaxation (Gong et al., ICCV 2019) with the exact forward.

    An unsigned ``QuantAct(levels=L)`` is QCFS's clip-floor-shift activation and equals the rate
    of an IF neuron over ``L`` time steps: see :mod:`surrogate_nets.quant.qcfs`.

    Defaults: unsigned (after a ReLU), per tensor, LSQ init from the first batch, LSQ gradient
    scale with ``N`` = features per sample (``numel(x[0])``, dim 0 taken as the batch; for a
    time-major ``[T, B, ...]`` input that also counts ``B``: fold time into the batch or give
    ``grad_scale`` as a float; ``grad_scale="numel"`` counts everything like torch.ao). All
    conventions: :mod:`surrogate_nets.quant.quantizer`.

    Args:
        bits: 1..16 (or ``levels=L`` for ``L`` steps).
        signed: signed codes (two's complement); 1-bit signed is binary ``{-s, +s}``.
        surrogate: registry name or :class:`~surrogate_nets.surrogate.Surrogate`.
        learn_step: learn the step (``raw_step`` parameter).
        per_channel: channel dim of the input (e.g. ``1`` for ``[B, C, H, W]``, ``-1`` for
            ``[B, F]``) or ``None``; needs ``channels``.
        init_step: initial step; ``None`` = LSQ init ``2 mean|x| / sqrt(Q_P)`` from the first batch.
        grad_scale: ``True`` (paper), ``"numel"`` (torch.ao), float, or ``False``.
        learn_offset: learnable offset ``b`` (LSQ+).
        **kw: ``levels``, ``channels``, ``alpha``, ``learn_alpha``, ``narrow``, ``step_param``,
            ``device``, ``dtype`` (see :class:`~surrogate_nets.quant.quantizer.Quantizer`).

    Shapes: ``[*] -> [*]``, same dtype (float16, bfloat16, float32, float64) and device.

    Example::

        act = QuantAct(4)                      # 4-bit unsigned LSQ
        y = act(torch.relu(x))
    """

    _batch_dim0 = True

    def __init__(self, bits: Optional[int] = None, signed: bool = False,
                 surrogate: Union[str, Surrogate] = "straight_through", learn_step: bool = True,
                 per_channel: Optional[int] = None, init_step: Optional[float] = None,
                 grad_scale: Union[bool, str, float, None] = True, learn_offset: bool = False,
                 **kw):
        super().__init__(bits, signed, surrogate, learn_step, per_channel, init_step, grad_scale,
                         learn_offset, **kw)
