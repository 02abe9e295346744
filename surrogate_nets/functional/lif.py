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

Backends: ``backend="torch"`` is :class:`LIFScanFunction`; ``"autograd"`` the plain per-step
autograd loop of :func:`lif_step` over ``x.unbind(0)`` (slower, but twice differentiable);
``"auto"`` picks the first registered fused backend whose ``supports(...)`` accepts the call
(see :func:`register_lif_backend`), else ``"torch"``. All backends share one numerical contract,
which the tests check against a per-step reference.
"""

from __future__ import annotations

from typing import Callable, Dict, NamedTuple, Optional, Union

import torch
from torch.autograd.function import once_differentiable

from .._validate import (
    check_broadcast, check_choice, check_float_tensor, check_in_range, check_int, check_positive,
    check_same_device, check_time_major, describe, sum_to_shape,
)
from ..surrogate import Surrogate
from ._common import alpha_for, alpha_grad, auto_scale_numel, resolve_surrogate
from .neurons import RESET_MODES, lif_step

__all__ = ["LIFScanResult", "LIFScanFunction", "lif_scan", "register_lif_backend", "lif_backends"]


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
def _count(h, ths, relaxed, sur, a):
    """``sum_k H(h - k theta)`` (or ``sum_k P(h - k theta)`` relaxed) for one slice."""
    out = None
    for thk in ths:
        z = h - thk
        term = sur.primitive(z, a) if relaxed else (z >= 0).to(h.dtype)
        out = term if out is None else out + term
    return out


def _first(h, th, relaxed, sur, a):
    """The first-level spike ``H(h - theta)`` (relaxed: ``P(h - theta)``)."""
    z = h - th
    return sur.primitive(z, a) if relaxed else (z >= 0).to(h.dtype)


def _after_reset(h, s, th, ths, reset, levels, relaxed, sur, a):
    """``v`` from ``h`` and the spike count ``s`` (no autograd: values only)."""
    if reset == "subtract":
        return torch.addcmul(h, s, th, value=-1)
    if reset == "zero":
        s1 = s if levels == 1 else _first(h, th, relaxed, sur, a)
        return h * (1 - s1)
    return h


def _terms(fn, zs, a, weighted: bool, first: bool):
    """``(sum_k f(z_k), sum_k k f(z_k), f(z_1))``, ``z_k = h - k th``, ``f`` = derivative or d_alpha."""
    if len(zs) == 1:
        d = fn(zs[0], a)
        return d, d, d
    tot = wsum = d1 = None
    for k, z in enumerate(zs, 1):
        d = fn(z, a)
        tot = d if tot is None else tot + d
        if weighted:
            wsum = d if wsum is None else wsum + k * d
        if k == 1 and first:
            d1 = d
    return tot, wsum, d1


class LIFScanFunction(torch.autograd.Function):
    """The multi-step LIF recurrence as one autograd node; see the module docstring for the math.

    ``forward(x, v0, beta, threshold, alpha, surrogate, reset, detach_reset, decay_input, levels,
    relaxed) -> (spikes, h, v_last)``. Saves ``h`` (and ``x`` only when ``decay_input`` and
    ``beta`` needs a gradient). The backward is not itself differentiable (use
    ``backend="autograd"`` for double backward).
    """

    @staticmethod
    def forward(ctx, x, v0, beta, threshold, alpha, surrogate: Surrogate, reset: str,
                detach_reset: bool, decay_input: bool, levels: int, relaxed: bool):
        ctx.set_materialize_grads(False)
        dt = x.dtype
        b, th, a = beta.to(dt), threshold.to(dt), alpha.to(dt)
        ths = [th * k for k in range(1, levels + 1)]
        T = x.shape[0]
        H = torch.empty(x.shape, dtype=dt, device=x.device)
        S = torch.empty(x.shape, dtype=dt, device=x.device)
        cx = (1 - b) * x if decay_input else x
        binary = levels == 1 and not relaxed
        v = v0.to(dt)
        for t in range(T):
            h = H[t]
            torch.addcmul(cx[t], b, v, out=h)  # beta * v + x_t in one pass
            s = S[t]
            s.copy_(h >= th if binary else _count(h, ths, relaxed, surrogate, a))
            v = _after_reset(h, s, th, ths, reset, levels, relaxed, surrogate, a)
        v = v.clone() if reset == "none" else v
        ctx.surrogate, ctx.reset, ctx.detach_reset = surrogate, reset, detach_reset
        ctx.decay_input, ctx.levels, ctx.relaxed = decay_input, levels, relaxed
        save_x = decay_input and ctx.needs_input_grad[2]
        ctx.save_for_backward(H, v0, beta, threshold, alpha, x if save_x else None)
        return S, H, v

    @staticmethod
    @once_differentiable
    def backward(ctx, gS, gH, gV):
        H, v0, beta, threshold, alpha, x = ctx.saved_tensors
        need_x, need_v0, need_b, need_th, need_a = ctx.needs_input_grad[:5]
        nones = (None,) * 6
        if not (need_x or need_v0 or need_b or need_th or need_a):
            return (None,) * 5 + nones
        sur, reset, levels, relaxed = ctx.surrogate, ctx.reset, ctx.levels, ctx.relaxed
        decay = ctx.decay_input
        nd = (not ctx.detach_reset) and reset != "none"  # the reset passes gradient to the spike
        dt = H.dtype
        b, th, a = beta.to(dt), threshold.to(dt), alpha.to(dt)
        ths = [th * k for k in range(1, levels + 1)]
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
            zs = [h - thk for thk in ths] if (need_d or need_rho) else None
            if need_d:
                sig, kap, sig1 = _terms(sur.derivative, zs, a, weighted=need_th, first=G1 is not None)
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
                    cnt = cnt_prev if cnt_prev is not None else _count(h, ths, relaxed, sur, a)
                    acc_th.addcmul_(gv, cnt, value=-1)
            cnt_prev = None
            if need_rho:
                rho, _, rho1 = _terms(sur.d_alpha, zs, a, weighted=False, first=G1 is not None)
                if G is not None:
                    acc_a.addcmul_(G, rho)
                if G1 is not None:
                    acc_a.addcmul_(G1, rho1)
            # the charge h_t = beta v_{t-1} + c x_t
            if need_b:
                if t > 0:
                    hp = H[t - 1]
                    cnt_prev = _count(hp, ths, relaxed, sur, a)  # reused for theta at step t - 1
                    vprev = _after_reset(hp, cnt_prev, th, ths, reset, levels, relaxed, sur, a)
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
    with auto_scale_numel(x.numel()):  # grad_scale="auto" counts the whole sequence, as "torch"
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


_BACKENDS: Dict[str, Callable] = {"torch": _scan_torch, "autograd": _scan_autograd}
_AUTO: list = []  # (name, supports) of fused backends tried by backend="auto", in order


def register_lif_backend(name: str, fn: Callable, supports: Optional[Callable[..., bool]] = None,
                         auto: bool = True) -> None:
    """Plug in a fused implementation of :func:`lif_scan` (a compiled CPU loop, a Triton kernel).

    Args:
        name: the ``backend=`` name.
        fn: ``fn(x, v0, beta, threshold, alpha, surrogate, reset, detach_reset, decay_input,
            levels, relaxed) -> LIFScanResult`` with the arguments already validated and ``v0``,
            ``beta``, ``threshold``, ``alpha`` tensors. It must satisfy the numerical contract of
            :class:`LIFScanFunction` (same forward, same gradients for every differentiable input).
        supports: ``supports(**same keyword arguments) -> bool``; ``backend="auto"`` only uses
            ``fn`` when it returns ``True`` (e.g. CUDA tensors and a built-in surrogate).
        auto: try it for ``backend="auto"`` (in registration order).
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"name must be a non-empty str, got {name!r}")
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}")
    _BACKENDS[name] = fn
    if auto:
        _AUTO.append((name, supports or (lambda **kw: True)))


def lif_backends() -> list:
    """The registered backend names (``"auto"`` is also accepted by :func:`lif_scan`)."""
    return list(_BACKENDS)


def _dispatch(backend: str, **kw):
    if backend == "auto":
        for name, supports in _AUTO:
            if supports(**kw):
                return _BACKENDS[name](**kw)
        return _scan_torch(**kw)
    return _BACKENDS[backend](**kw)


def _param_tensor(value, name: str, x: torch.Tensor, check_value) -> torch.Tensor:
    """A float or tensor parameter as a tensor that broadcasts to ``x[0]``; values checked."""
    if isinstance(value, torch.Tensor):
        check_float_tensor(value, name)
        check_broadcast(value, name, x.shape[1:], "x[0]")
        if value.dim() > 0 or value.device.type != "cpu":
            check_same_device(value, name, x, "x")
        if not value.requires_grad:
            check_value(value)
        return value
    check_value(value)
    return torch.tensor(float(value), dtype=x.dtype, device=x.device)


def _check_beta(value):
    if isinstance(value, torch.Tensor):
        bad = ~torch.isfinite(value) | (value <= 0) | (value > 1)
        if bool(bad.any()):
            raise ValueError(f"beta must lie in (0, 1], got {value.detach().cpu().tolist()}")
        return
    check_in_range(value, "beta", 0.0, 1.0)


def lif_scan(x: torch.Tensor, v0: Optional[torch.Tensor] = None,
             beta: Union[float, torch.Tensor] = 1.0, threshold: Union[float, torch.Tensor] = 1.0,
             alpha: Optional[torch.Tensor] = None, surrogate: Union[str, Surrogate, None] = None,
             reset: str = "subtract", detach_reset: bool = False, decay_input: bool = False,
             levels: int = 1, relaxed: bool = False, backend: str = "auto") -> LIFScanResult:
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
        decay_input: scale the input by ``1 - beta`` (SpikingJelly's ``decay_input=True``).
        levels: ``L``, maximum spike count per step (1 = binary spikes); see
            :func:`~surrogate_nets.functional.fire`.
        relaxed: use the surrogate's relaxation in the forward (only for gradient checks).
        backend: ``"auto"``, ``"torch"``, ``"autograd"`` or a registered name.

    Returns:
        :class:`LIFScanResult` ``(spikes [T, B, ...], h [T, B, ...], v [B, ...])``, all
        differentiable.

    Reference: the discrete LIF of Neftci, Mostafa & Zenke (2019) / Fang et al. (ICCV 2021).
    """
    check_time_major(x, "x")
    if v0 is None:
        v0 = torch.zeros(x.shape[1:], dtype=x.dtype, device=x.device)
    else:
        check_float_tensor(v0, "v0")
        if tuple(v0.shape) != tuple(x.shape[1:]):
            raise ValueError(f"v0 must have shape x.shape[1:] = {tuple(x.shape[1:])}, got {describe(v0)}")
        check_same_device(v0, "v0", x, "x")
    beta_t = _param_tensor(beta, "beta", x, _check_beta)
    th_t = _param_tensor(threshold, "threshold", x, lambda v: check_positive(v, "threshold"))
    check_choice(reset, "reset", RESET_MODES)
    check_int(levels, "levels", minimum=1)
    sur = resolve_surrogate(surrogate)
    if alpha is None:
        alpha = alpha_for(sur, x[0], "x[0]")
    else:
        alpha = _param_tensor(alpha, "alpha", x, lambda v: check_positive(v, "alpha"))
    if backend != "auto" and backend not in _BACKENDS:
        raise ValueError(f"backend must be one of {['auto'] + lif_backends()}, got {backend!r}")
    return _dispatch(backend, x=x, v0=v0, beta=beta_t, threshold=th_t, alpha=alpha, surrogate=sur,
                     reset=reset, detach_reset=bool(detach_reset), decay_input=bool(decay_input),
                     levels=int(levels), relaxed=bool(relaxed))


def _lif_scan_unchecked(x, v0, beta, threshold, alpha, surrogate, reset, detach_reset, decay_input,
                        levels, backend="auto") -> LIFScanResult:
    """:func:`lif_scan` without argument checks (modules validate once at construction)."""
    return _dispatch(backend, x=x, v0=v0, beta=beta, threshold=threshold, alpha=alpha,
                     surrogate=surrogate, reset=reset, detach_reset=detach_reset,
                     decay_input=decay_input, levels=levels, relaxed=False)
