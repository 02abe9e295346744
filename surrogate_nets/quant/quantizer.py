r"""The :class:`Quantizer` base module: a learnable-step fake quantizer on the surrogate mechanism.

.. math::
    q(x) = s\,R\big((x - b)/s\big) + b,\qquad
    R(u) = \mathrm{clamp}(\lfloor u + \tfrac12 \rfloor,\ lo,\ hi)

``R`` is the surrogate staircase (see :mod:`surrogate_nets.quant.fake_quant`), ``s > 0`` the step
(per tensor or per channel), ``b`` an optional learnable offset (LSQ+). Subclasses:
:class:`~surrogate_nets.quant.QuantAct` (activations), :class:`~surrogate_nets.quant.QuantWeight`
(weights), :class:`~surrogate_nets.quant.PACT` (learnable clip).

Conventions shared by all of them:

* **Levels.** ``bits`` gives ``2**bits - 1`` steps: unsigned codes ``0 .. 2**b - 1``; signed codes
  ``-2**(b-1) .. 2**(b-1) - 1`` (two's complement; ``narrow=True`` drops the lowest code for a
  symmetric ``-(2**(b-1)-1) .. 2**(b-1)-1``). ``levels=L`` instead gives codes ``0..L`` (unsigned)
  or :func:`~surrogate_nets.functional.level_range` (signed), for grids that are not a power of
  two (QCFS uses ``L = 4, 8, 16``). ``bits`` may be 1 to 16. **1-bit signed is binary**:
  ``q = s * sign(x - b)`` with ``sign(0) = +1``, codes ``{-1, +1}`` (not ``{-1, 0}``); its
  surrogate acts on ``(u + 1)/2``, so the boxcar gives the clipped STE ``1[-s <= x < s]``.
  1-bit unsigned is ``{0, s}``: a spike with threshold ``s/2``.
* **Rounding.** Half up, ``floor(u + 1/2)`` (a tie takes the upper level, as a neuron at threshold
  fires). ``torch.round`` and torch.ao round half to even; the two differ only at exact ties.
* **Step parametrisation.** The parameter is ``raw_step`` and the step used is
  ``s = |raw_step| + tiny`` (``step_param="abs"``, default) or ``s = exp(raw_step)``
  (``step_param="exp"``). ``abs`` keeps LSQ exactly: for ``raw_step > 0`` (always, unless an
  update overshoots zero) ``s == raw_step`` to the last bit (``tiny`` is the dtype's smallest
  normal number, absorbed by rounding) and ``ds/draw = 1``, so forward and gradients are LSQ's
  (clip-then-round); an overshoot reflects to a small positive step instead of flipping the grid,
  and ``s`` never reaches 0. **Relation to torch.ao** (``torch._fake_quantize_learnable_per_tensor_affine``,
  ``_LearnableFakeQuantize``): it rounds first and saturates after, so for ``u = x/s`` in the
  half-step bands ``[hi, hi + 1/2)`` and ``[lo - 1/2, lo)`` it passes the x-gradient and gives the
  step gradient ``R - u`` where we give 0 and ``hi`` (``lo``); it also rounds ties half to even.
  Elsewhere forward values and gradients agree (tested in ``tests/test_quant.py``). The few band
  elements carry large step-gradient terms: with an LSQ-initialised step and ``grad_scale="numel"``
  on 1e5 samples the total step gradient differed by 16% (4-bit unsigned, ``relu(randn)``), 55%
  (4-bit signed, ``randn``), 490% (2-bit unsigned) and < 0.01% (8-bit); measured by
  ``benchmarks/lsq_vs_torch_ao.py``. So the two are *not* bit-for-bit equal near saturation.
  ``exp`` (a log-domain step, as TQT, Jain et al. MLSys 2020) makes updates relative (``ds/draw = s``), which suits very different step scales
  but is no longer LSQ's update. ``step_param="softplus"`` (opt-in) uses the package's one
  positive parametrisation ``s = softplus(raw_step)`` (:mod:`surrogate_nets._positive`, shared
  with the surrogate alpha and the neuron thresholds); it is not the default: for the small steps
  typical of activations (``s ~ 0.05``) its derivative ``sigmoid(raw) ~ s`` behaves like ``exp``
  without its scale invariance.
* **Initialisation.** ``init_step=None`` initialises ``s`` from the first batch (LSQ):
  ``s_0 = 2 mean|x| / sqrt(Q_P)`` (per channel: the mean over the other dims), with ``Q_P = hi``
  the largest positive code. It runs inside the first forward call (training or eval) without a
  host read: ``raw_step <- where(initialized, raw_step, s_0)``, then ``initialized <- True``
  (a bool buffer, saved in ``state_dict``). A batch with ``mean|x| = 0`` leaves the step at its
  placeholder 1.0 (call ``init_from(x, force=True)`` to redo). Binary grids start from
  ``s_0 = mean|x|`` (XNOR-Net's least-squares scale, Rastegari et al. ECCV 2016).
  With ``learn_offset`` the offset starts at ``b_0 = min(min(x), 0)`` (so negative tails such as
  Swish's fit) and ``s_0`` uses ``|x - b_0|``. ``init_step=<float>`` skips the data init.
* **Gradient scale** (LSQ): the step and offset gradients are multiplied by
  ``g = 1/sqrt(N Q_P)``. ``grad_scale=True`` takes the paper's ``N``: the elements one step value
  covers *per sample* (activations: ``numel(x[0]) / numel(step)``, i.e. features per layer, the
  batch not counted; weights: weights per output channel). ``grad_scale="numel"`` counts the
  whole tensor, ``N = numel(x) / numel(step)`` (torch.ao's ``_LearnableFakeQuantize``, which uses
  ``numel(X)``, batch included). A float is used as ``g`` directly; ``False``/``None`` means 1.
* **Surrogate.** Any :class:`~surrogate_nets.surrogate.Surrogate` or registry name; ``alpha``
  and ``learn_alpha`` build it from a name. The default boxcar ``"straight_through"`` gives LSQ.
  A learnable sharpness trains through the same backward (``d q / d alpha = s dR/dalpha``). DSQ
  (Gong et al., ICCV 2019: exact forward, tanh-relaxed backward per quantization cell with a
  learnable temperature) is ``surrogate="dspike", learn_alpha=True``.

Shapes: ``x [*]``; per channel along ``per_channel = d``: the step is ``[C]`` and is broadcast as
``[C, 1, ..., 1]`` against ``x`` (``x.shape[d] == C`` is checked).
"""

from __future__ import annotations

from typing import Optional, Union

import torch
from torch import nn

from .._positive import positive_from_raw, raw_from_positive
from .._validate import check_choice, check_float_tensor, check_int, check_positive
from ..functional import level_range
from ..functional.staircase import is_unit_boxcar
from ..surrogate import Surrogate, alpha_for, get
from ..functional import backends as _backends
from .fake_quant import (  # noqa: F401
    FakeQuantFunction, compute_dtype, int_codes, lsq_grad_scale, lsq_init_step,
)

#: supported bit widths
MAX_BITS = 16


def code_range(bits: Optional[int], levels: Optional[int], signed: bool, narrow: bool = False):
    """``(lo, hi, binary)`` of the integer codes for ``bits`` or ``levels`` (exactly one given).

    Raises ``ValueError``/``TypeError`` naming the argument for invalid combinations.
    """
    if (bits is None) == (levels is None):
        raise ValueError(f"give exactly one of bits and levels, got bits={bits!r}, levels={levels!r}")
    if bits is not None:
        check_int(bits, "bits", minimum=1, maximum=MAX_BITS)
        if bits == 1 and signed:
            if narrow:
                raise ValueError("narrow=True needs bits >= 2 for a signed quantizer, got bits=1 "
                                 "(1-bit signed is already the symmetric binary grid {-s, +s})")
            return -1, 1, True
        if narrow and not signed:
            raise ValueError("narrow=True applies to signed quantizers only, got signed=False")
        lo, hi = level_range(2**bits - 1, signed)
        return (lo + 1 if narrow else lo), hi, False
    check_int(levels, "levels", minimum=1, maximum=2**MAX_BITS - 1)
    if narrow:
        raise ValueError("narrow=True is only meaningful with bits=, got levels=")
    lo, hi = level_range(levels, signed)
    if hi < 1:
        raise ValueError(f"levels={levels} signed gives codes {lo}..{hi} with no positive level; "
                         "use levels >= 2 or bits=1 (binary)")
    return lo, hi, False


def int_dtype_for(lo: int, hi: int) -> torch.dtype:
    """The smallest of int8/int16/int32 that holds ``lo..hi``."""
    for dt in (torch.int8, torch.int16, torch.int32):
        info = torch.iinfo(dt)
        if info.min <= lo and hi <= info.max:
            return dt
    return torch.int64


def _resolve_surrogate(surrogate, alpha, learn_alpha) -> Surrogate:
    if isinstance(surrogate, Surrogate):
        if alpha is not None or learn_alpha:
            raise ValueError("alpha/learn_alpha configure a surrogate given by name; got a Surrogate "
                             f"instance {surrogate!r} (set its alpha/learnable directly)")
        return surrogate
    kw = {"learnable": bool(learn_alpha)}
    if alpha is not None:
        kw["alpha"] = alpha
    return get(surrogate, **kw)


class Quantizer(nn.Module):
    r"""Fake quantizer ``q = s R((x - b)/s) + b`` with learnable step, offset and surrogate sharpness.

    See the module documentation for the conventions (levels, rounding, step parametrisation,
    initialisation, gradient scale). Subclasses set the defaults.

    Args:
        bits: bit width 1..16 (or give ``levels``).
        signed: signed codes (two's complement; 1-bit signed = binary ``{-s, +s}``).
        surrogate: registry name or :class:`~surrogate_nets.surrogate.Surrogate`.
        learn_step: ``raw_step`` is an ``nn.Parameter`` (else a buffer).
        per_channel: ``None`` (one step) or the channel dim of the input (may be negative).
        init_step: initial step (float > 0); ``None`` = LSQ init from the first batch.
        grad_scale: ``True`` (paper's N), ``"numel"`` (torch.ao's N), a float, or ``False``.
        learn_offset: learnable offset ``b`` (LSQ+), per tensor or per channel like the step.
        levels: number of steps instead of ``bits``.
        channels: number of channels ``C`` (required with ``per_channel``).
        alpha, learn_alpha: build the surrogate from a name with this sharpness / learnable.
        narrow: signed symmetric range without the lowest code.
        step_param: ``"abs"`` (exact LSQ), ``"exp"`` (log-domain step) or ``"softplus"`` (the
            package's one positive parametrisation, :mod:`surrogate_nets._positive`).
    """

    #: dim 0 of the input is a batch (excluded from the paper's N); False for weights.
    _batch_dim0: bool = True
    _pact: bool = False
    #: name of the raw step parameter (PACT holds the clip instead)
    _raw_attr: str = "raw_step"

    def __init__(self, bits: Optional[int] = None, signed: bool = False,
                 surrogate: Union[str, Surrogate] = "straight_through", learn_step: bool = True,
                 per_channel: Optional[int] = None, init_step: Optional[float] = None,
                 grad_scale: Union[bool, str, float, None] = True, learn_offset: bool = False, *,
                 levels: Optional[int] = None, channels: Optional[int] = None,
                 alpha: Optional[float] = None, learn_alpha: bool = False, narrow: bool = False,
                 step_param: str = "abs", device=None, dtype=None):
        super().__init__()
        if not isinstance(signed, bool):
            raise TypeError(f"signed must be a bool, got {type(signed).__name__} {signed!r}")
        self.lo, self.hi, self.binary = code_range(bits, levels, signed, narrow)
        self.bits = bits
        self.levels = self.hi - self.lo if not self.binary else 1
        self.signed = signed
        self.narrow = bool(narrow)
        self.step_param = check_choice(step_param, "step_param", ("abs", "exp", "softplus"))
        if per_channel is not None:
            check_int(per_channel, "per_channel")
            if channels is None:
                raise ValueError(f"per_channel={per_channel} needs channels= (the size of that dim)")
            check_int(channels, "channels", minimum=1)
        elif channels is not None:
            raise ValueError(f"channels={channels} given without per_channel (the channel dim)")
        self.per_channel = per_channel
        self.channels = channels
        if isinstance(grad_scale, str):
            check_choice(grad_scale, "grad_scale", ("numel",))
        elif grad_scale is not None and not isinstance(grad_scale, bool):
            check_positive(grad_scale, "grad_scale")
        self.grad_scale = grad_scale
        self.surrogate = _resolve_surrogate(surrogate, alpha, learn_alpha)

        factory = {"device": device, "dtype": dtype if dtype is not None else torch.get_default_dtype()}
        shape = () if per_channel is None else (channels,)
        if init_step is not None:
            check_positive(init_step, "init_step")
        s0 = torch.full(shape, 1.0 if init_step is None else float(init_step), **factory)
        raw = self._raw_from_step(s0)
        if learn_step:
            self.register_parameter(self._raw_attr, nn.Parameter(raw))
        else:
            self.register_buffer(self._raw_attr, raw)
        self.learn_step = bool(learn_step)
        self.learn_offset = bool(learn_offset)
        if learn_offset:
            self.offset = nn.Parameter(torch.zeros(shape, **factory))
        else:
            self.offset = None
        self.register_buffer("initialized", torch.tensor(init_step is not None, device=device))
        self._init_done = init_step is not None  # host mirror: skip the init branch once done

    # ------------------------------------------------------------ parameters
    def _raw_from_step(self, s: torch.Tensor) -> torch.Tensor:
        if self.step_param == "softplus":
            return raw_from_positive(s)
        return torch.log(s) if self.step_param == "exp" else s

    def _step_from_raw(self, raw: torch.Tensor) -> torch.Tensor:
        if self.step_param == "exp":
            return torch.exp(raw)
        if self.step_param == "softplus":
            return positive_from_raw(raw, torch.finfo(raw.dtype).tiny)
        return raw.abs() + torch.finfo(raw.dtype).tiny

    @property
    def _raw(self) -> torch.Tensor:
        return getattr(self, self._raw_attr)

    @property
    def step(self) -> torch.Tensor:
        """The positive step ``s`` (``[]`` or ``[C]``), differentiable w.r.t. ``raw_step``."""
        return self._step_from_raw(self._raw)

    @property
    def q_p(self) -> int:
        """The largest positive code ``Q_P`` (LSQ's notation)."""
        return self.hi

    def _set_step_(self, s: torch.Tensor, where: Optional[torch.Tensor] = None) -> None:
        """Write step ``s`` into the raw parameter (where ``where`` is True), no host read."""
        raw = self._raw
        with torch.no_grad():
            new = self._raw_from_step(s.to(raw.dtype).expand_as(raw))
            if where is not None:
                new = torch.where(where, new, raw)
            raw.copy_(new)

    def reset_step(self, step: Union[float, torch.Tensor]) -> None:
        """Set the step (float or ``[C]`` tensor) and mark the quantizer initialised."""
        check_positive(step, "step")
        self._set_step_(torch.as_tensor(step, dtype=self._raw.dtype, device=self._raw.device))
        with torch.no_grad():
            self.initialized.fill_(True)
        self._init_done = True

    # ------------------------------------------------------------------ init
    def init_from(self, x: torch.Tensor, force: bool = False) -> None:
        """LSQ initialisation from data ``x`` (see the module doc), without a host read.

        Skipped where ``initialized`` is already True unless ``force``.
        """
        check_float_tensor(x, "x")
        self._check_channels(x)
        d = None if self.per_channel is None else self.per_channel % x.dim()
        with torch.no_grad():
            keep = torch.zeros((), dtype=torch.bool, device=x.device) if force else self.initialized
            b = None
            if self.learn_offset:
                if d is None:
                    b0 = x.detach().amin().clamp(max=0)
                else:
                    others = tuple(i for i in range(x.dim()) if i != d)
                    b0 = x.detach().amin(dim=others).clamp(max=0) if others else x.detach().clamp(max=0)
                b0 = b0.to(self.offset.dtype)
                self.offset.copy_(torch.where(keep, self.offset, b0))
                b = self._view(self.offset, x).to(x.dtype)
            s0 = self._init_value(x, d, b)
            ok = torch.isfinite(s0) & (s0 > 0) & ~keep
            self._set_step_(s0, where=ok)
            self.initialized.fill_(True)
        self._init_done = True

    def _init_value(self, x, d, b):
        if self.binary:  # XNOR-Net's L2-optimal binary scale mean|x - b| (= LSQ's formula / 2)
            return 0.5 * lsq_init_step(x, 1, d, b)
        return lsq_init_step(x, self.q_p, d, b)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        # the buffer is the truth; the next forward re-checks it on the device (no host read)
        self._init_done = False

    # --------------------------------------------------------------- forward
    def _check_channels(self, x: torch.Tensor) -> None:
        if self.per_channel is None:
            return
        d = self.per_channel
        if not -x.dim() <= d < x.dim():
            raise ValueError(f"per_channel={d} is not a dim of the input of shape {tuple(x.shape)} "
                             f"(expected -{x.dim()} <= per_channel < {x.dim()})")
        if x.shape[d] != self.channels:
            raise ValueError(f"input dim {d} has size {x.shape[d]} but the quantizer was built with "
                             f"channels={self.channels} (input shape {tuple(x.shape)})")

    def _view(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``[C]`` -> ``[C, 1, ..., 1]`` aligned with dim ``per_channel`` of ``x``."""
        if self.per_channel is None:
            return t
        d = self.per_channel % x.dim()
        return t.reshape((self.channels,) + (1,) * (x.dim() - d - 1))

    def _grad_factor(self, x: torch.Tensor) -> float:
        gs = self.grad_scale
        if gs is None or gs is False:
            return 1.0
        if gs is True:
            n = x.numel()
            if self._batch_dim0 and x.dim() >= 2:
                n //= max(x.shape[0], 1)
            return lsq_grad_scale(n // (self.channels or 1), self.q_p)
        if gs == "numel":
            return lsq_grad_scale(x.numel() // (self.channels or 1), self.q_p)
        return float(gs)

    def _check_input(self, x):
        check_float_tensor(x, self._input_name)
        self._check_channels(x)

    _input_name = "input"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        if not self._init_done:
            self.init_from(x)
        step = self._view(self.step, x)
        offset = None if self.offset is None else self._view(self.offset, x)
        sur = self.surrogate
        alpha = alpha_for(sur, x, self._input_name)
        xc = x.to(compute_dtype(x, self.lo, self.hi))  # float32 for codes a half type cannot hold
        return _backends.dispatch("fake_quant", "auto", x=xc, step=step, offset=offset, alpha=alpha,
                                  surrogate=sur, lo=self.lo, hi=self.hi, binary=self.binary,
                                  pact=self._pact, fast=is_unit_boxcar(sur),
                                  grad_scale=self._grad_factor(x)).to(x.dtype)

    # ---------------------------------------------------------------- export
    @property
    def int_dtype(self) -> torch.dtype:
        """The integer dtype of the codes (int8, int16 or int32)."""
        return int_dtype_for(self.lo, self.hi)

    def to_int(self, x: torch.Tensor) -> torch.Tensor:
        """Integer codes ``k`` of ``x`` (``int_dtype``) with ``forward(x) == k * step + offset``."""
        self._check_input(x)
        step = self._view(self.step.detach(), x)
        offset = None if self.offset is None else self._view(self.offset.detach(), x)
        return int_codes(x, step, self.lo, self.hi, offset, self.binary, self.int_dtype)

    def export(self) -> dict:
        r"""Quantization parameters: ``step``, ``offset``, ``zero_point``, ``lo``, ``hi``, ``binary``.

        Values are ``q = k * step + offset`` for codes ``lo <= k <= hi`` (binary: ``k = +-1``).
        ``zero_point = -offset / step`` in units of steps (a float tensor: LSQ+'s offset is not
        on the integer grid; it is all zeros without an offset). ``step`` is ``[]`` or ``[C]``.
        """
        step = self.step.detach().clone()
        offset = torch.zeros_like(step) if self.offset is None else self.offset.detach().clone()
        return {"step": step, "offset": offset, "zero_point": -offset / step, "lo": self.lo,
                "hi": self.hi, "binary": self.binary, "int_dtype": self.int_dtype,
                "per_channel": self.per_channel}

    def extra_repr(self) -> str:
        rng = "{-1, +1}" if self.binary else f"{self.lo}..{self.hi}"
        parts = [f"bits={self.bits}" if self.bits is not None else f"levels={self.levels}",
                 f"signed={self.signed}", f"codes={rng}"]
        if self.per_channel is not None:
            parts.append(f"per_channel={self.per_channel}, channels={self.channels}")
        if self.learn_offset:
            parts.append("learn_offset=True")
        if self.grad_scale not in (True,):
            parts.append(f"grad_scale={self.grad_scale!r}")
        return ", ".join(parts)

    def __setstate__(self, state):
        super().__setstate__(state)
        self.__dict__.setdefault("_init_done", False)
