r"""Adaptive LIF (LSNN, Bellec et al., NeurIPS 2018): one step, and the whole-sequence scan.

.. math::
    h_t &= \beta v_{t-1} + c\,x_t,\qquad \theta_t = \theta_0 + \beta_a\,a_{t-1}\\
    s_t &= \textstyle\sum_{k=1}^{L} H(h_t - k\,\theta_t),\qquad v_t = \mathrm{reset}(h_t, s_t; \theta_t),
    \qquad a_t = \rho\,a_{t-1} + s_t

Backward of the scan (hand-written BPTT, like :mod:`~surrogate_nets.functional.lif`; ``sigma``,
``kappa``, ``rho_\alpha`` the sums of :func:`~surrogate_nets.functional.staircase.boundary_sums`
at ``theta_t``). With ``gv``, ``ga`` the gradients reaching ``v_t``, ``a_t`` from the future, the
gradient reaching the spike count is ``G = gs_t + ga_t - [subtract, not detached]\,\theta_t gv_t``
(the trace update always passes gradient to ``s``) and the first-level spike
``G1 = -[zero, not detached]\,h_t gv_t``:

.. math::
    \bar h_t &= gv_t\,\partial v_t/\partial h_t|_s + G\sigma + G1\,\sigma_1 + gh^{out}_t,\\
    \bar\theta_t &= -G\kappa - G1\,\sigma_1 - [\text{subtract}]\,gv_t s_t,\\
    ga_{t-1} &= \rho\,ga_t + \beta_a\bar\theta_t,\quad gv_{t-1} = \beta\bar h_t,\quad
    \bar x_t = c\,\bar h_t,\\
    \bar\theta_0 &\mathrel{+}= \bar\theta_t,\ \bar\beta_a \mathrel{+}= \bar\theta_t a_{t-1},\
    \bar\rho \mathrel{+}= ga_t\,a_{t-1},\ \bar\beta \mathrel{+}= \bar h_t(v_{t-1} - [\text{decay}]x_t),\
    \bar\alpha \mathrel{+}= G\rho_\alpha + G1\,\rho_{\alpha,1}

The scan saves ``h`` and ``a_{t-1}`` (``[T, B, ...]`` each) and recomputes spikes and membranes.
It is op ``"alif"`` of :mod:`~surrogate_nets.functional.backends`.
"""

from __future__ import annotations

from typing import NamedTuple, Optional, Union

import torch
from torch.autograd.function import once_differentiable

from .._validate import check_time_major, sum_to_shape
from ..surrogate import Surrogate
from ..surrogate.helpers import alpha_grad, auto_scale_numel, resolve_surrogate
from . import backends as _bk
from ._function import FunctionalFunction
from ._neuron import (
    charge, check_common, check_scalar_unit, initial_state, param_tensor, positive_checker, scan_config,
    unit_checker,
)
from .lif import _after_reset, _count, _first
from .spike import Scalar, _as_tensor, fire, reset_membrane
from .staircase import boundary_sums

__all__ = ["alif_step", "alif_scan", "ALIFScanFunction", "ALIFScanResult"]


def alif_step(x: torch.Tensor, v: torch.Tensor, a: torch.Tensor, beta: Scalar, rho: Scalar,
              threshold: Scalar = 1.0, adaptation: Scalar = 0.1,
              surrogate: Union[str, Surrogate, None] = None, reset: str = "subtract",
              detach_reset: bool = False, decay_input: bool = False, levels: int = 1,
              relaxed: bool = False):
    r"""One step of the adaptive LIF neuron (see the module docstring for the equations).

    The adaptation trace ``a`` decays with ``rho`` and rises by one per spike; the threshold is
    raised by ``adaptation`` (``beta_a``) per unit of ``a``. Bellec et al. write
    ``b_t = rho b_{t-1} + (1 - rho) z_t`` and ``A_t = b_0 + beta b_t``: their ``beta`` is
    ``beta_a / (1 - rho)``. Subtract-reset removes the current adaptive threshold ``theta_t``
    (times the spike count). Float ``beta``/``rho`` must lie in ``(0, 1]``.

    Returns:
        ``(s_t, v_t, a_t, h_t)``.
    """
    check_common(x, reset, levels, v=v, a=a)
    check_scalar_unit(beta, "beta")
    check_scalar_unit(rho, "rho")
    s_ = resolve_surrogate(surrogate)
    th = _as_tensor(threshold, x) + _as_tensor(adaptation, x) * a
    h = charge(x, v, _as_tensor(beta, x), decay_input)
    s = fire(h, th, s_, levels, relaxed)
    v_new = reset_membrane(h, s, th, reset, detach_reset, levels, s_, relaxed)
    a_new = _as_tensor(rho, x) * a + s
    return s, v_new, a_new, h


class ALIFScanResult(NamedTuple):
    """``spikes``, ``h`` ``[T, B, ...]``; final ``v``, ``a`` ``[B, ...]``."""

    spikes: torch.Tensor
    h: torch.Tensor
    v: torch.Tensor
    a: torch.Tensor


class ALIFScanFunction(FunctionalFunction):
    """``apply(x, v0, a0, beta, rho, threshold, adaptation, alpha, surrogate, reset, detach_reset,
    decay_input, levels, relaxed) -> (spikes, h, v_last, a_last)``; BPTT of the module docstring.

    Plain autograd only (the backward is once differentiable; ``backend="autograd"`` for more).
    """

    @staticmethod
    def forward(x, v0, a0, beta, rho, threshold, adaptation, alpha, surrogate, reset, detach_reset,
                decay_input, levels, relaxed):
        dt = x.dtype
        b, r, th0, ba, al = (t.to(dt) for t in (beta, rho, threshold, adaptation, alpha))
        H = torch.empty(x.shape, dtype=dt, device=x.device)
        S = torch.empty(x.shape, dtype=dt, device=x.device)
        A = torch.empty(x.shape, dtype=dt, device=x.device)  # a_{t-1}
        cx = (1 - b) * x if decay_input else x
        v, a = v0.to(dt), a0.to(dt)
        for t in range(x.shape[0]):
            A[t].copy_(a)
            h = torch.addcmul(cx[t], b, v, out=H[t])
            th = torch.addcmul(th0, ba, a)
            s = S[t]
            s.copy_(_count(h, th, levels, relaxed, surrogate, al))
            v = _after_reset(h, s, th, reset, levels, relaxed, surrogate, al)
            a = torch.addcmul(s, r, a)
        v = v.clone() if reset == "none" else v
        return S, H, v, a

    @staticmethod
    def setup_context(ctx, inputs, output):
        (x, v0, a0, beta, rho, threshold, adaptation, alpha, surrogate, reset, detach_reset,
         decay_input, levels, relaxed) = inputs
        S, H, _, _ = output
        ctx.set_materialize_grads(False)
        ctx.cfg = (surrogate, reset, detach_reset, decay_input, levels, relaxed)
        save_x = decay_input and ctx.needs_input_grad[3]
        # the trace a_{t-1} is recomputed from S in the backward (one cheap pass)
        ctx.save_for_backward(H, S, v0, a0, beta, rho, threshold, adaptation, alpha,
                              x if save_x else None)

    @staticmethod
    @once_differentiable
    def backward(ctx, gS, gH, gV, gA):
        H, S, v0, a0, beta, rho, threshold, adaptation, alpha, x = ctx.saved_tensors
        needs = ctx.needs_input_grad[:8]
        nothing = (None,) * 6
        if not any(needs):
            return (None,) * 8 + nothing
        need_x, need_v0, need_a0, need_b, need_r, need_th, need_ba, need_al = needs
        sur, reset, detach, decay, levels, relaxed = ctx.cfg
        nd = (not detach) and reset != "none"
        dt = H.dtype
        b, r, th0, ba, al = (t.to(dt) for t in (beta, rho, threshold, adaptation, alpha))
        T = H.shape[0]
        # the adaptation trace a_{t-1}, t = 0..T-1 (forward recurrence, values only)
        A = torch.empty_like(H)
        a = a0.to(dt)
        for t in range(T):
            A[t].copy_(a)
            a = torch.addcmul(S[t], r, a)
        z = torch.zeros_like(H[0])
        gv = gV.to(dt) if gV is not None else z
        ga = gA.to(dt) if gA is not None else z
        gx = torch.empty_like(H) if need_x else None
        acc = {k: torch.zeros_like(H[0]) for k, n in
               (("b", need_b), ("r", need_r), ("th", need_th), ("ba", need_ba), ("al", need_al)) if n}
        for t in range(T - 1, -1, -1):
            h, ap, s = H[t], A[t], S[t]
            th = torch.addcmul(th0, ba, ap)
            G = ga if gS is None else ga + gS[t].to(dt)
            G1 = None
            if nd and reset == "subtract":
                G = torch.addcmul(G, th, gv, value=-1)
            elif nd and reset == "zero":
                G1 = -h * gv
            sig, kap, sig1, rho_a, rho1 = boundary_sums(
                sur, h, al, 1, levels + 1, spacing=th, derivative=True, weighted=True,
                first=G1 is not None, wrt_alpha=need_al)
            if reset == "zero":
                gh = gv * (1 - _first(h, th, relaxed, sur, al)) + G * sig
            else:
                gh = torch.addcmul(gv, G, sig)
            gth = -G * kap
            if G1 is not None:
                gh.addcmul_(G1, sig1)
                gth.addcmul_(G1, sig1, value=-1)
            if reset == "subtract":
                gth.addcmul_(gv, s, value=-1)
            if gH is not None:
                gh.add_(gH[t].to(dt))
            if need_al:
                acc["al"].addcmul_(G, rho_a)
                if G1 is not None:
                    acc["al"].addcmul_(G1, rho1)
            if need_th:
                acc["th"].add_(gth)
            if need_ba:
                acc["ba"].addcmul_(gth, ap)
            if need_r:
                acc["r"].addcmul_(ga, ap)
            ga = torch.addcmul(r * ga, ba, gth)
            if need_b:
                if t > 0:
                    hp = H[t - 1]
                    thp = torch.addcmul(th0, ba, A[t - 1])
                    vprev = _after_reset(hp, S[t - 1], thp, reset, levels, relaxed, sur, al)
                else:
                    vprev = v0.to(dt)
                acc["b"].addcmul_(gh, vprev)
                if decay:
                    acc["b"].addcmul_(gh, x[t].to(dt), value=-1)
            if need_x:
                if decay:
                    torch.mul(1 - b, gh, out=gx[t])
                else:
                    gx[t].copy_(gh)
            gv = b * gh

        def red(key, p):
            return sum_to_shape(acc[key].to(p.dtype), p.shape) if key in acc else None

        g_v0 = gv.to(v0.dtype).expand_as(v0).clone() if need_v0 else None
        g_a0 = ga.to(a0.dtype).expand_as(a0).clone() if need_a0 else None
        g_al = alpha_grad(sur, acc["al"], alpha, H.numel()) if need_al else None  # the whole [T, B, ...]
        return (gx, g_v0, g_a0, red("b", beta), red("r", rho), red("th", threshold),
                red("ba", adaptation), g_al) + nothing


def _alif_torch(**kw):
    return ALIFScanResult(*ALIFScanFunction.apply(
        kw["x"], kw["v0"], kw["a0"], kw["beta"], kw["rho"], kw["threshold"], kw["adaptation"],
        kw["alpha"], kw["surrogate"], kw["reset"], kw["detach_reset"], kw["decay_input"],
        kw["levels"], kw["relaxed"]))


def _alif_autograd(x, v0, a0, beta, rho, threshold, adaptation, alpha, surrogate, reset,
                   detach_reset, decay_input, levels, relaxed):
    """Reference backend: per-step autograd through :func:`alif_step` (twice differentiable)."""
    from .lif import _FixedAlpha

    sur = surrogate if alpha is surrogate.alpha else _FixedAlpha(surrogate, alpha)
    v, a, ss, hs = v0, a0, [], []
    with auto_scale_numel(x.numel(), sur):  # grad_scale="auto" counts the whole sequence, as "torch"
        for x_t in x.unbind(0):
            s, v, a, h = alif_step(x_t, v, a, beta, rho, threshold, adaptation, sur, reset,
                                   detach_reset, decay_input, levels, relaxed)
            ss.append(s)
            hs.append(h)
    return ALIFScanResult(torch.stack(ss), torch.stack(hs), v, a)


_bk.register_backend("alif", "torch", _alif_torch, auto=False)
_bk.register_backend("alif", "autograd", _alif_autograd, auto=False)


def alif_scan(x: torch.Tensor, v0=None, a0=None, beta: Scalar = 0.5, rho: Scalar = 0.95,
              threshold: Scalar = 1.0, adaptation: Scalar = 0.1, alpha: Optional[torch.Tensor] = None,
              surrogate: Union[str, Surrogate, None] = None, reset: str = "subtract",
              detach_reset: bool = False, decay_input: bool = False, levels: int = 1,
              relaxed: bool = False, backend: str = "auto") -> ALIFScanResult:
    r"""Run the adaptive LIF neuron over a whole time-major sequence (see the module docstring).

    Equal (forward and every gradient) to looping :func:`alif_step`.

    Args:
        x: ``[T, B, ...]``; ``v0``, ``a0``: ``[B, ...]`` (``None``: zeros).
        beta, rho: decays in ``(0, 1]``; ``threshold > 0``; ``adaptation >= 0``: floats or tensors
            broadcastable to ``[B, ...]``.
        alpha: surrogate sharpness tensor (default ``surrogate.alpha``).
        surrogate, reset, detach_reset, decay_input, levels, relaxed: as in
            :func:`~surrogate_nets.functional.lif_scan`.
        backend: ``"auto"``, ``"torch"``, ``"autograd"`` or a registered name.

    Returns:
        :class:`ALIFScanResult` ``(spikes, h, v, a)``.
    """
    check_time_major(x, "x")
    v0 = initial_state(v0, x, "v0")
    a0 = initial_state(a0, x, "a0")
    kw = dict(beta=param_tensor(beta, "beta", x, unit_checker("beta")),
              rho=param_tensor(rho, "rho", x, unit_checker("rho")),
              threshold=param_tensor(threshold, "threshold", x, positive_checker("threshold")),
              adaptation=param_tensor(adaptation, "adaptation", x, positive_checker("adaptation", True)))
    cfg = scan_config(x, alpha, surrogate, reset, detach_reset, decay_input, levels, relaxed)
    _bk.check_backend("alif", backend)
    return _bk.dispatch("alif", backend, x=x, v0=v0, a0=a0, **kw, **cfg)
