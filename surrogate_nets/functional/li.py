r"""The non-spiking leaky integrator: one step, and the whole-sequence scan with hand-written BPTT.

.. math::
    v_t = \beta\,v_{t-1} + c\,x_t,\qquad c = 1\ \ (\text{or } 1 - \beta \text{ with decay\_input}),
    \qquad v_{-1} = v_0

Backward of the scan (``\bar v_t`` the total gradient reaching ``v_t``, ``gv_t`` the gradient of
the output at ``t``): ``\bar v_t = gv_t + \beta\,\bar v_{t+1}``, ``\bar x_t = c\,\bar v_t``,
``\bar\beta = \sum_t \bar v_t (v_{t-1} - [\text{decay\_input}]\,x_t)``, ``\bar v_0 = \beta\,\bar v_0``.

The scan is op ``"li"`` of :mod:`~surrogate_nets.functional.backends` (``fn(x, v0, beta,
decay_input) -> v [T, B, ...]``). It also serves as the linear filter inside the synaptic scan
(the current ``I``) and the ALIF adaptation trace. :class:`LIScanFunction` is written in the
``forward`` + ``setup_context`` form; its backward is once differentiable (plain autograd; the
``"autograd"`` backend is twice differentiable).
"""

from __future__ import annotations

from typing import Union

import torch
from torch.autograd.function import once_differentiable

from .._validate import check_float_tensor, check_time_major, sum_to_shape
from . import backends as _bk
from ._function import FunctionalFunction
from ._neuron import charge, check_scalar_unit, check_state, initial_state, param_tensor, unit_checker
from .spike import _as_tensor

__all__ = ["li_step", "li_scan", "LIScanFunction"]


def li_step(x: torch.Tensor, v: torch.Tensor, beta: Union[float, torch.Tensor],
            decay_input: bool = False) -> torch.Tensor:
    r"""One step of the non-spiking leaky integrator: ``v_t = beta v_{t-1} + x_t`` (or ``(1 - beta) x_t``).

    ``x``, ``v`` ``[B, ...]``; a float ``beta`` must lie in ``(0, 1]``. Returns ``v_t``.
    """
    check_float_tensor(x, "x")
    check_state(x, v=v)
    check_scalar_unit(beta, "beta")
    return charge(x, v, _as_tensor(beta, x), decay_input)


class LIScanFunction(FunctionalFunction):
    """``apply(x [T, B, ...], v0 [B, ...], beta, decay_input) -> v [T, B, ...]`` with the BPTT of the module doc.

    Saves the output ``v`` (and ``x`` only when ``decay_input`` and ``beta`` needs a gradient).
    """

    @staticmethod
    def forward(x, v0, beta, decay_input: bool):
        dt = x.dtype
        b = beta.to(dt)
        out = torch.empty(x.shape, dtype=dt, device=x.device)
        cx = (1 - b) * x if decay_input else x
        v = v0.to(dt)
        for t in range(x.shape[0]):
            v = torch.addcmul(cx[t], b, v, out=out[t])
        return out

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, v0, beta, decay_input = inputs
        ctx.set_materialize_grads(False)
        ctx.decay_input = decay_input
        save_x = decay_input and ctx.needs_input_grad[2]
        ctx.save_for_backward(output, v0, beta, x if save_x else None)

    @staticmethod
    @once_differentiable
    def backward(ctx, gout):
        V, v0, beta, x = ctx.saved_tensors
        need_x, need_v0, need_b = ctx.needs_input_grad[:3]
        if gout is None or not (need_x or need_v0 or need_b):
            return None, None, None, None
        dt = V.dtype
        b = beta.to(dt)
        decay = ctx.decay_input
        c = (1 - b) if decay else None
        gx = torch.empty_like(V) if need_x else None
        acc_b = torch.zeros_like(V[0]) if need_b else None
        g = None
        for t in range(V.shape[0] - 1, -1, -1):
            gt = gout[t].to(dt)
            g = gt.clone() if g is None else torch.addcmul(gt, b, g)
            if need_x:
                if decay:
                    torch.mul(c, g, out=gx[t])
                else:
                    gx[t].copy_(g)
            if need_b:
                acc_b.addcmul_(g, V[t - 1] if t > 0 else v0.to(dt))
                if decay:
                    acc_b.addcmul_(g, x[t].to(dt), value=-1)
        g_v0 = (b * g).to(v0.dtype).expand_as(v0).clone() if need_v0 else None
        g_b = sum_to_shape(acc_b.to(beta.dtype), beta.shape) if need_b else None
        return gx, g_v0, g_b, None


def _li_torch(x, v0, beta, decay_input):
    return LIScanFunction.apply(x, v0, beta, decay_input)


def _li_autograd(x, v0, beta, decay_input):
    """Reference backend: per-step autograd through :func:`li_step` (twice differentiable)."""
    v, out = v0, []
    for x_t in x.unbind(0):
        v = charge(x_t, v, beta.to(x.dtype), decay_input)
        out.append(v)
    return torch.stack(out)


_bk.register_backend("li", "torch", _li_torch, auto=False)
_bk.register_backend("li", "autograd", _li_autograd, auto=False)


def li_scan(x: torch.Tensor, v0=None, beta: Union[float, torch.Tensor] = 0.5, decay_input: bool = False,
            backend: str = "auto") -> torch.Tensor:
    r"""Run the leaky integrator over a whole time-major sequence (see the module docstring).

    Args:
        x: ``[T, B, ...]`` input, floating dtype.
        v0: ``[B, ...]`` initial state (``None``: zeros).
        beta: decay in ``(0, 1]``, float or tensor broadcastable to ``[B, ...]``.
        decay_input: scale the input by ``1 - beta``.
        backend: ``"auto"``, ``"torch"``, ``"autograd"`` or a registered name.

    Returns:
        ``v`` ``[T, B, ...]`` (the final state is ``v[-1]``).
    """
    check_time_major(x, "x")
    v0 = initial_state(v0, x, "v0")
    beta_t = param_tensor(beta, "beta", x, unit_checker("beta"))
    _bk.check_backend("li", backend)
    return _bk.dispatch("li", backend, x=x, v0=v0, beta=beta_t, decay_input=bool(decay_input))
