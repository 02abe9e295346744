r""":class:`PACT`: quantized ReLU with a learnable clip (Choi et al., "PACT", 2018)."""

from __future__ import annotations

from typing import Optional, Union

import torch

from .._validate import check_positive
from ..surrogate import Surrogate
from .fake_quant import lsq_init_step
from .quantizer import Quantizer


class PACT(Quantizer):
    r"""Parameterized clipping activation, quantized: clip to ``[0, c]``, then ``hi`` uniform steps.

    .. math::
        y = \mathrm{clip}(x, 0, c),\qquad q = s\,\lfloor y/s + \tfrac12 \rfloor,\qquad s = c / hi

    which is the unsigned quantizer ``s R(x/s)`` with the step tied to the clip. PACT trains ``c``
    straight through the rounding and exactly through the clip:

    .. math::
        \frac{\partial q}{\partial c} = \mathbb{1}[x \ge c],\qquad
        \frac{\partial q}{\partial x} = R'(x/s)\ \ (\text{boxcar: } \mathbb{1}[0 \le x < c])

    i.e. LSQ's step gradient without the rounding residual: ``dq/ds = clamp(u, lo, hi) - u R'(u)``
    (see :mod:`surrogate_nets.quant.fake_quant`). With another surrogate the x-gradient follows the
    surrogate and the clip gradient becomes ``clamp(u) - u R'(u)`` per element divided by ``hi``.

    The learnable parameter is the clip itself, ``raw_clip``, with ``c = |raw_clip| + tiny`` (see
    the step parametrisation in :mod:`surrogate_nets.quant.quantizer`; ``dc/draw = 1`` for a
    positive ``raw_clip``, so the gradient is exactly PACT's). PACT adds an L2 penalty on ``c``
    (weight decay on ``raw_clip``) in the optimizer; no gradient scaling by default.

    Args:
        bits: 1..16 (or ``levels``); unsigned.
        init_clip: initial clip ``c``; ``None`` = from the first batch, ``c_0 = hi * s_0`` with
            LSQ's ``s_0 = 2 mean|x| / sqrt(hi)`` (the paper starts from a constant such as 10).
        surrogate: registry name or :class:`~surrogate_nets.surrogate.Surrogate`.
        learn_clip: learn ``c``.
        grad_scale: factor on the clip gradient (``False`` = PACT; ``True``/``"numel"`` = LSQ's).
        **kw: ``levels``, ``per_channel``, ``channels``, ``alpha``, ``learn_alpha``,
            ``step_param``, ``device``, ``dtype``.

    Reference: Choi et al., "PACT: Parameterized clipping activation for quantized neural
    networks", arXiv:1805.06085, 2018.
    """

    _pact = True
    _raw_attr = "raw_clip"
    _batch_dim0 = True

    def __init__(self, bits: Optional[int] = None, init_clip: Optional[float] = None,
                 surrogate: Union[str, Surrogate] = "straight_through", learn_clip: bool = True,
                 grad_scale: Union[bool, str, float, None] = False, *, levels: Optional[int] = None,
                 per_channel: Optional[int] = None, **kw):
        bad = sorted(k for k in kw if k in ("signed", "learn_offset", "narrow", "init_step"))
        if bad:
            raise ValueError(f"PACT is an unsigned clip [0, c] set by init_clip: {bad} are not accepted")
        super().__init__(bits, False, surrogate, learn_clip, per_channel, None, grad_scale, False,
                         levels=levels, **kw)
        if init_clip is not None:
            self.reset_clip(init_clip)

    # the raw parameter holds the clip c = hi * s
    def _raw_from_step(self, s: torch.Tensor) -> torch.Tensor:
        return s * self.hi if self.step_param == "abs" else torch.log(s * self.hi)

    def _step_from_raw(self, raw: torch.Tensor) -> torch.Tensor:
        if self.step_param == "exp":
            return torch.exp(raw) / self.hi
        return (raw.abs() + torch.finfo(raw.dtype).tiny) / self.hi

    @property
    def clip(self) -> torch.Tensor:
        """The positive clip ``c`` (``[]`` or ``[C]``), differentiable w.r.t. ``raw_clip``."""
        if self.step_param == "exp":
            return torch.exp(self.raw_clip)
        return self.raw_clip.abs() + torch.finfo(self.raw_clip.dtype).tiny

    def reset_clip(self, clip: Union[float, torch.Tensor]) -> None:
        """Set the clip (float or ``[C]`` tensor) and mark the quantizer initialised."""
        check_positive(clip, "init_clip")
        with torch.no_grad():
            c = torch.as_tensor(clip, dtype=self.raw_clip.dtype, device=self.raw_clip.device)
            self.raw_clip.copy_((c if self.step_param == "abs" else torch.log(c)).expand_as(self.raw_clip))
            self.initialized.fill_(True)
        self._init_done = True

    def _init_value(self, x, d, b):
        return lsq_init_step(x, self.q_p, d, b)
