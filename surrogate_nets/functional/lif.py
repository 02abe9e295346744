r"""Whole-sequence LIF/IF scan with a hand-written BPTT backward, and the backend seam for fused kernels.

:func:`lif_scan` runs the LIF recurrence of :func:`~surrogate_nets.functional.neurons.lif_step`
over all ``T`` steps of a time-major input in one autograd node (:class:`LIFScanFunction`).

Why a custom Function: an autograd loop that reads ``x[t]`` records one ``select`` per step,
whose backward materialises a full ``[T, B, ...]`` zero gradient per step (``O(T^2)`` memory
traffic), and it keeps every intermediate of every step alive. The scan keeps only the
pre-spike membrane ``h`` ``[T, B, ...]`` (spikes and post-reset membranes are recomputed from it
in the backward) and runs BPTT as a reverse loop over per-step slices that stay in cache.

Backward (derivation). With ``c = 1`` (or ``1 - beta`` with ``decay_input``), ``sigma_t =
sum_k P'(h_t - k theta)``, ``kappa_t = sum_k k P'(h_t - k theta)``, ``rho_t = sum_k
d_alpha P(h_t - k theta)`` (``sigma1``, ``rho1``: the ``k = 1`` terms), ``gv_t = dL/dv_t``
(``gv_{T-1}`` = the gradient of the final state) and ``gs_t``, ``gh_t^out`` the gradients of
the outputs, let the gradient reaching the spike count be
``G_t = gs_t - [subtract, not detached] theta gv_t`` and the first-level spike
``G1_t = -[zero, not detached] h_t gv_t``. Then, for ``t = T-1 .. 0``:

.. math::
    \bar h_t &= gv_t\,\partial v_t/\partial h_t|_{s} + G_t\,\sigma_t + G1_t\,\sigma1_t + gh^{out}_t,
    \qquad gv_{t-1} = \beta\,\bar h_t\\
    \bar x_t &= c\,\bar h_t,\quad
    \bar\beta \mathrel{+}= \bar h_t\,(v_{t-1} - [\text{decay\_input}]\,x_t),\quad
    \bar\theta \mathrel{+}= -G_t\kappa_t - G1_t\sigma1_t - [\text{subtract}]\,gv_t s_t,\quad
    \bar\alpha \mathrel{+}= G_t\rho_t + G1_t\rho1_t

with ``dv/dh|_s = 1`` (subtract, none) or ``1 - H(h_t - theta)`` (zero). Parameter gradients
are accumulated elementwise over time and reduced to the parameters' shapes once.

Backends (op ``"lif"`` of :mod:`~surrogate_nets.functional.backends`): ``backend="torch"`` is
:class:`LIFScanFunction`; ``"autograd"`` the plain per-step autograd loop of :func:`lif_step`
over ``x.unbind(0)`` (slower, but twice differentiable); ``"auto"`` picks the highest-priority
registered fused backend whose ``supports(...)`` accepts the call, else ``"torch"``. All
backends share one numerical contract, checked against ``tests/reference.py``.

The spike sums ``sigma``, ``kappa``, ``rho`` are those of
:func:`~surrogate_nets.functional.staircase.boundary_sums` (boundaries ``k theta``).
"""

from __future__ import annotations

from typing import Callable, NamedTuple, Optional, Union

import torch
from torch.autograd.function import once_differentiable

from .._validate import check_time_major, sum_to_shape
from ..surrogate import Surrogate
from ..surrogate.helpers import alpha_grad, auto_scale_numel, resolve_surrogate
from . import backends as _bk
from ._function import FunctionalFunction
from ._neuron import (
    charge, check_common, check_scalar_unit, initial_state, param_tensor, positive_checker,
    scan_config, unit_checker,
)
from .spike import Scalar, _as_tensor, fire, reset_membrane
from .staircase import boundary_sums, level_count, relaxed_staircase

__all__ = ["LIFScanResult", "LIFScanFunction", "lif_step", "lif_scan", "register_lif_backend",
           "lif_backends"]


def lif_step(x: torch.Tensor, v: torch.Tensor, beta: Scalar, threshold: Scalar = 1.0,
             surrogate: Union[str, Surrogate, None] = None, reset: str = "subtract",
             detach_reset: bool = False, decay_input: bool = False, levels: int = 1,
             relaxed: bool = False):
    r"""One step of the leaky integrate-and-fire neuron.

    .. math::
        h_t = \beta v_{t-1} + x_t\ \ (\text{decay\_input: } \beta v_{t-1} + (1-\beta) x_t),\quad
        s_t = \textstyle\sum_{k=1}^{L} H(h_t - k\theta),\quad v_t = \mathrm{reset}(h_t, s_t)

    ``beta = 1`` is the integrate-and-fire neuron. Shapes: ``x``, ``v`` ``[B, ...]``; ``beta``
    and ``threshold`` floats (range-checked: ``beta`` in ``(0, 1]``, ``threshold > 0``) or tensors
    broadcastable to ``[B, ...]`` (kept in range by their owner; not read here).

    Returns:
        ``(s_t, v_t, h_t)``: the spikes, the membrane after reset, the membrane before reset.
    """
    check_common(x, reset, levels, v=v)
    check_scalar_unit(beta, "beta")
    s_ = resolve_surrogate(surrogate)
    h = charge(x, v, _as_tensor(beta, x), decay_input)
    s = fire(h, threshold, s_, levels, relaxed)
    return s, reset_membrane(h, s, threshold, reset, detach_reset, levels, s_, relaxed), h


class LIFScanResult(NamedTuple):
    """The outputs of :func:`lif_scan`.

    Attributes:
        spikes: ``[T, B, ...]`` spike counts ``s_t`` (0/1 for ``levels = 1``).
        h: ``[T, B, ...]`` membrane before the spike and reset (differentiable; the "charge").
        v: ``[B, ...]`` membrane after the last reset ``v_{T-1}`` (the final state).
    """

    spikes: torch.Tensor
    h: torch.Tensor
    v: torch.Tensor


# --------------------------------------------------------------------------- helpers on slices
def _count(h, th, levels, relaxed, sur, a):
    """``sum_k H(h - k theta)`` (or ``sum_k P(h - k theta)`` relaxed) for one slice."""
    if relaxed:
        return relaxed_staircase(sur, h, a, 1, levels + 1, spacing=th)
    return level_count(h, th, levels)


def _first(h, th, relaxed, sur, a):
    """The first-level spike ``H(h - theta)`` (relaxed: ``P(h - theta)``)."""
    z = h - th
    return sur.primitive(z, a) if relaxed else (z >= 0).to(h.dtype)


def _after_reset(h, s, th, reset, levels, relaxed, sur, a):
    """``v`` from ``h`` and the spike count ``s`` (no autograd: values only)."""
    if reset == "subtract":
        return torch.addcmul(h, s, th, value=-1)
    if reset == "zero":
        s1 = s if levels == 1 else _first(h, th, relaxed, sur, a)
        return h * (1 - s1)
    return h


class LIFScanFunction(FunctionalFunction):
    """The multi-step LIF recurrence as one autograd node; see the module docstring for the math.

    ``forward(x, v0, beta, threshold, alpha, surrogate, reset, detach_reset, decay_input, levels,
    relaxed) -> (spikes, h, v_last)``. Saves ``h`` (and ``x`` only when ``decay_input`` and
    ``beta`` needs a gradient). The backward is not itself differentiable (use
    ``backend="autograd"`` for double backward). Plain autograd only: no ``torch.func`` transforms
    (the forward writes into preallocated buffers).
    """

    @staticmethod
    def forward(x, v0, beta, threshold, alpha, surrogate: Surrogate, reset: str,
                detach_reset: bool, decay_input: bool, levels: int, relaxed: bool):
        dt = x.dtype
        b, th, a = beta.to(dt), threshold.to(dt), alpha.to(dt)
        T = x.shape[0]
        H = torch.empty(x.shape, dtype=dt, device=x.device)
        S = torch.empty(x.shape, dtype=dt, device=x.device)
        cx = (1 - b) * x if decay_input else x
        binary = levels == 1 and not relaxed
        v = v0.to(dt)
        for t in range(T):
            h = H[t]
            if torch.compiler.is_compiling():  # torch.export/compile trace in grad mode: no out=
                h.copy_(torch.addcmul(cx[t], b, v))
            else:
                torch.addcmul(cx[t], b, v, out=h)  # beta * v + x_t in one pass
            s = S[t]
            s.copy_(h >= th if binary else _count(h, th, levels, relaxed, surrogate, a))
            v = _after_reset(h, s, th, reset, levels, relaxed, surrogate, a)
        v = v.clone() if reset == "none" else v
        return S, H, v

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, v0, beta, threshold, alpha, surrogate, reset, detach_reset, decay_input, levels, relaxed = inputs
        ctx.set_materialize_grads(False)
        ctx.surrogate, ctx.reset, ctx.detach_reset = surrogate, reset, detach_reset
        ctx.decay_input, ctx.levels, ctx.relaxed = decay_input, levels, relaxed
        save_x = decay_input and ctx.needs_input_grad[2]
        ctx.save_for_backward(output[1], v0, beta, threshold, alpha, x if save_x else None)

    @staticmethod
    @once_differentiable
    def backward(ctx, gS, gH, gV):
        H, v0, beta, threshold, alpha, x = ctx.saved_tensors
        return _bptt(ctx, H, v0, beta, threshold, alpha, x, gS, gH, gV)


def _bptt(ctx, H, v0, beta, threshold, alpha, x, gS, gH, gV):
    """The hand-written BPTT of :class:`LIFScanFunction` from the saved charges ``H``."""
    need_x, need_v0, need_b, need_th, need_a = ctx.needs_input_grad[:5]
    nones = (None,) * 6
    if not (need_x or need_v0 or need_b or need_th or need_a):
        return (None,) * 5 + nones
    sur, reset, levels, relaxed = ctx.surrogate, ctx.reset, ctx.levels, ctx.relaxed
    decay = ctx.decay_input
    nd = (not ctx.detach_reset) and reset != "none"  # the reset passes gradient to the spike
    dt = H.dtype
    b, th, a = beta.to(dt), threshold.to(dt), alpha.to(dt)
    T = H.shape[0]
    c = (1 - b) if decay else None

    gv = gV.to(dt) if gV is not None else torch.zeros_like(H[0])
    gx = torch.empty_like(H) if need_x else None
    acc_b = torch.zeros_like(H[0]) if need_b else None
    acc_th = torch.zeros_like(H[0]) if need_th else None
    acc_a = torch.zeros_like(H[0]) if need_a else None
    need_d = gS is not None or nd  # surrogate derivative needed at all
    cnt_prev = None  # spike count of H[t], when already computed at step t + 1

    for t in range(T - 1, -1, -1):
        h = H[t]
        gs = gS[t].to(dt) if gS is not None else None
        # gradient reaching the spike count (G) and the first-level spike (G1)
        G = gs
        G1 = None
        if nd and reset == "subtract":
            G = -th * gv if G is None else torch.addcmul(G, th, gv, value=-1)
        elif nd and reset == "zero":
            G1 = -h * gv
        need_rho = need_a and (G is not None or G1 is not None)
        if need_d or need_rho:
            sig, kap, sig1, rho, rho1 = boundary_sums(
                sur, h, a, 1, levels + 1, spacing=th, derivative=need_d,
                weighted=need_d and need_th, first=G1 is not None, wrt_alpha=need_rho)
        # d L / d h_t, written straight into the x-gradient buffer when possible
        gh = gx[t] if (need_x and not decay) else torch.empty_like(h)
        if reset == "zero":
            torch.mul(gv, 1 - _first(h, th, relaxed, sur, a), out=gh)
            if G is not None:
                gh.addcmul_(G, sig)
        elif G is not None:
            torch.addcmul(gv, G, sig, out=gh)
        else:
            gh.copy_(gv)
        if G1 is not None:
            gh.addcmul_(G1, sig1)
        if gH is not None:
            gh.add_(gH[t].to(dt))
        # parameters of the spike / reset
        if need_th:
            if G is not None:
                acc_th.addcmul_(G, kap, value=-1)
            if G1 is not None:
                acc_th.addcmul_(G1, sig1, value=-1)
            if reset == "subtract":
                cnt = cnt_prev if cnt_prev is not None else _count(h, th, levels, relaxed, sur, a)
                acc_th.addcmul_(gv, cnt, value=-1)
        cnt_prev = None
        if need_rho:
            if G is not None:
                acc_a.addcmul_(G, rho)
            if G1 is not None:
                acc_a.addcmul_(G1, rho1)
        # the charge h_t = beta v_{t-1} + c x_t
        if need_b:
            if t > 0:
                hp = H[t - 1]
                cnt_prev = _count(hp, th, levels, relaxed, sur, a)  # reused for theta at step t - 1
                vprev = _after_reset(hp, cnt_prev, th, reset, levels, relaxed, sur, a)
            else:
                vprev = v0.to(dt)
            acc_b.addcmul_(gh, vprev)
            if decay:
                acc_b.addcmul_(gh, x[t].to(dt), value=-1)
        if need_x and decay:
            torch.mul(c, gh, out=gx[t])
        gv = b * gh

    g_v0 = gv.to(v0.dtype) if need_v0 else None
    g_b = sum_to_shape(acc_b.to(beta.dtype), beta.shape) if need_b else None
    g_th = sum_to_shape(acc_th.to(threshold.dtype), threshold.shape) if need_th else None
    g_a = alpha_grad(sur, acc_a, alpha, H.numel()) if need_a else None  # the whole [T, B, ...]
    return (gx, g_v0, g_b, g_th, g_a) + nones


# ------------------------------------------------------------------------------------ backends
def _scan_torch(x, v0, beta, threshold, alpha, surrogate, reset, detach_reset, decay_input, levels,
                relaxed):
    s, h, v = LIFScanFunction.apply(x, v0, beta, threshold, alpha, surrogate, reset, detach_reset,
                                    decay_input, levels, relaxed)
    return LIFScanResult(s, h, v)


def _scan_autograd(x, v0, beta, threshold, alpha, surrogate, reset, detach_reset, decay_input,
                   levels, relaxed):
    """Reference backend: per-step autograd through :func:`lif_step` (linear cost via ``unbind``)."""
    if alpha is not surrogate.alpha:
        # an explicit alpha tensor: evaluate the surrogate with it
        surrogate = _FixedAlpha(surrogate, alpha)
    v = v0
    ss, hs = [], []
    with auto_scale_numel(x.numel(), surrogate):  # grad_scale="auto" counts the whole sequence, as "torch"
        for x_t in x.unbind(0):
            s, v, h = lif_step(x_t, v, beta, threshold, surrogate, reset, detach_reset, decay_input,
                               levels, relaxed)
            ss.append(s)
            hs.append(h)
    return LIFScanResult(torch.stack(ss), torch.stack(hs), v)


class _FixedAlpha(Surrogate):
    """A view of ``base`` whose alpha is a given tensor (used to pass ``alpha`` explicitly)."""

    def __init__(self, base: Surrogate, alpha: torch.Tensor):
        super().__init__()
        self.base, self._alpha = base, alpha
        self.grad_scale = base.grad_scale

    @property
    def alpha(self):
        return self._alpha

    def primitive(self, x, alpha):
        return self.base.primitive(x, alpha)

    def derivative(self, x, alpha):
        return self.base.derivative(x, alpha)

    def d_alpha(self, x, alpha):
        return self.base.d_alpha(x, alpha)


_bk.register_backend("lif", "torch", _scan_torch, auto=False)
_bk.register_backend("lif", "autograd", _scan_autograd, auto=False)


def register_lif_backend(name: str, fn: Callable, supports: Optional[Callable[..., bool]] = None,
                         auto: bool = True) -> None:
    """Alias of ``register_backend("lif", name, fn, supports=supports, auto=auto)``.

    ``fn(x, v0, beta, threshold, alpha, surrogate, reset, detach_reset, decay_input, levels,
    relaxed) -> LIFScanResult`` (see :mod:`surrogate_nets.functional.backends`).
    """
    _bk.register_backend("lif", name, fn, supports=supports, auto=auto)


def lif_backends() -> list:
    """Alias of ``list_backends("lif")`` (``"auto"`` is also accepted by :func:`lif_scan`)."""
    return _bk.list_backends("lif")


def lif_scan(x: torch.Tensor, v0: Optional[torch.Tensor] = None,
             beta: Union[float, torch.Tensor] = 1.0, threshold: Union[float, torch.Tensor] = 1.0,
             alpha: Optional[torch.Tensor] = None, surrogate: Union[str, Surrogate, None] = None,
             reset: str = "subtract", detach_reset: bool = False, decay_input: bool = False,
             levels: int = 1, relaxed: bool = False, backend: str = "auto",
             save_dtype: Optional[torch.dtype] = None) -> LIFScanResult:
    r"""Run the LIF (``beta < 1``) or IF (``beta = 1``) neuron over a whole time-major sequence.

    .. math::
        h_t = \beta v_{t-1} + x_t\ \ (\text{or } + (1-\beta) x_t),\quad
        s_t = \textstyle\sum_{k=1}^{L} H(h_t - k\theta),\quad
        v_t = h_t - s_t\theta\ \big|\ h_t(1 - H(h_t-\theta))\ \big|\ h_t,\quad v_{-1} = v_0

    Equal (forward and every gradient) to looping :func:`~surrogate_nets.functional.lif_step`,
    in one autograd node with a hand-written BPTT backward (see the module docstring).

    Args:
        x: ``[T, B, ...]`` input current, floating dtype, ``T >= 1``.
        v0: ``[B, ...]`` initial membrane (exactly ``x.shape[1:]``); ``None`` = zeros.
        beta: decay in ``(0, 1]``, float or tensor broadcastable to ``[B, ...]`` (per-neuron,
            learnable).
        threshold: ``theta > 0``, float or tensor broadcastable to ``[B, ...]``.
        alpha: the surrogate sharpness tensor to differentiate (default ``surrogate.alpha``,
            which keeps a learnable alpha in the graph).
        surrogate: instance, registry name or ``None`` (``ATan(2)``).
        reset: ``"subtract"``, ``"zero"`` or ``"none"``.
        detach_reset: no gradient through the spike inside the reset.
        decay_input: scale the input by ``1 - beta``.
        levels: ``L``, maximum spike count per step (1 = binary spikes); see
            :func:`~surrogate_nets.functional.fire`.
        relaxed: use the surrogate's relaxation in the forward (only for gradient checks).
        backend: ``"auto"``, ``"torch"``, ``"autograd"`` or a registered name.
        save_dtype: opt-in reduced-memory backward: ``torch.bfloat16`` or ``torch.float16``
            saves the distance to threshold ``h - theta`` in that dtype instead of ``h``
            (:class:`LIFScanLowMemFunction`; half the saved bytes of a float32 scan). The forward is
            unchanged; it runs the ``"torch"`` backend or a fused one that supports it
            (``"numba"``, ``"triton"``; ``"auto"`` picks as for the plain scan);
            gradients differ by rounding: measured relative error ~1e-3 (bfloat16) and ~1e-4
            (float16) of the input gradient (``tests/functional/test_lif_low_mem.py``).
            ``None`` (default): save ``h`` in the input dtype.

    Returns:
        :class:`LIFScanResult` ``(spikes [T, B, ...], h [T, B, ...], v [B, ...])``, all
        differentiable.

    Reference: the discrete LIF of Neftci, Mostafa & Zenke (2019) / Fang et al. (ICCV 2021).
    """
    check_time_major(x, "x")
    v0 = initial_state(v0, x, "v0")
    beta_t = param_tensor(beta, "beta", x, unit_checker("beta"))
    th_t = param_tensor(threshold, "threshold", x, positive_checker("threshold"))
    cfg = scan_config(x, alpha, surrogate, reset, detach_reset, decay_input, levels, relaxed)
    _bk.check_backend("lif", backend)
    if save_dtype is not None:
        from .lif_low_mem import check_save_dtype

        check_save_dtype(save_dtype, backend)
    return _lif_scan_unchecked(x=x, v0=v0, beta=beta_t, threshold=th_t, backend=backend,
                               save_dtype=save_dtype, **cfg)


def _lif_scan_unchecked(x, v0, beta, threshold, alpha, surrogate, reset, detach_reset, decay_input,
                        levels, backend="auto", save_dtype=None, relaxed=False) -> LIFScanResult:
    """:func:`lif_scan` without argument checks (modules validate once at construction)."""
    kw = dict(x=x, v0=v0, beta=beta, threshold=threshold, alpha=alpha, surrogate=surrogate,
              reset=reset, detach_reset=detach_reset, decay_input=decay_input, levels=levels,
              relaxed=relaxed)
    if save_dtype is not None:
        from .lif_low_mem import _scan_low_mem

        return _scan_low_mem(save_dtype, backend, **kw)
    return _bk.dispatch("lif", backend, **kw)
