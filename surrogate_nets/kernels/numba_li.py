r"""Compiled CPU leaky-integrator scan (numba): op ``"li"`` of the backend seam.

Same recurrence and BPTT as :class:`surrogate_nets.functional.li.LIScanFunction`:

.. math::
    v_t = \beta v_{t-1} + c\,x_t,\quad \bar v_t = gv_t + \beta \bar v_{t+1},\quad
    \bar x_t = c\,\bar v_t,\quad \bar\beta = \textstyle\sum_t \bar v_t (v_{t-1} - [\text{decay}]\,x_t)

(``c = 1`` or ``1 - beta``). Blocks of neurons keep their state in L1 for all ``T`` steps (one
read of ``x``, one write of ``v`` forward; one read of ``dL/dv`` and ``v``, one write of
``dL/dx`` backward). All arithmetic stays in the input dtype (no float literals in the loops).
"""

from __future__ import annotations

import numpy as np
import torch
from numba import njit

from ._common import expand_param
from .numba_lif import _BLOCK, _np, _run


@njit(cache=True, nogil=True, error_model="numpy")
def _li_fwd(x, v0, b, cb, decay, out, lo, hi):
    T = x.shape[0]
    for j0 in range(lo, hi, _BLOCK):
        m = min(hi, j0 + _BLOCK) - j0
        v = v0[j0:j0 + m].copy()
        bl = b[j0:j0 + m].copy()
        cl = cb[j0:j0 + m].copy()
        for t in range(T):
            if decay:
                for i in range(m):
                    v[i] = cl[i] * x[t, j0 + i] + bl[i] * v[i]
            else:
                for i in range(m):
                    v[i] = x[t, j0 + i] + bl[i] * v[i]
            for i in range(m):
                out[t, j0 + i] = v[i]


@njit(cache=True, nogil=True, error_model="numpy")
def _li_bwd(g, V, x, v0, b, cb, decay, need_b, gx, gv0, gb, lo, hi):
    T = V.shape[0]
    for j0 in range(lo, hi, _BLOCK):
        m = min(hi, j0 + _BLOCK) - j0
        bl = b[j0:j0 + m].copy()
        cl = cb[j0:j0 + m].copy()
        gv = g[T - 1, j0:j0 + m].copy()
        acc = np.zeros_like(gv)
        for t in range(T - 1, -1, -1):
            if t < T - 1:
                for i in range(m):
                    gv[i] = g[t, j0 + i] + bl[i] * gv[i]
            if decay:
                for i in range(m):
                    gx[t, j0 + i] = cl[i] * gv[i]
            else:
                for i in range(m):
                    gx[t, j0 + i] = gv[i]
            if need_b:
                if t > 0:
                    for i in range(m):
                        acc[i] += gv[i] * V[t - 1, j0 + i]
                else:
                    for i in range(m):
                        acc[i] += gv[i] * v0[j0 + i]
                if decay:
                    for i in range(m):
                        acc[i] -= gv[i] * x[t, j0 + i]
        for i in range(m):
            gv0[j0 + i] = bl[i] * gv[i]
            if need_b:
                gb[j0 + i] = acc[i]


class NumbaLIScan(torch.autograd.Function):
    """``forward(x [T, n], v0 [n], beta [n], decay) -> v [T, n]`` (contiguous, one dtype)."""

    @staticmethod
    def forward(ctx, x, v0, beta, decay):
        ctx.set_materialize_grads(False)
        out = torch.empty_like(x)
        _run(_li_fwd, (_np(x), _np(v0), _np(beta), _np(1 - beta), bool(decay), _np(out)), x.shape[1])
        ctx.decay = bool(decay)
        save_x = decay and ctx.needs_input_grad[2]
        ctx.save_for_backward(out, x if save_x else None, v0, beta)
        return out

    @staticmethod
    def backward(ctx, g):
        V, x, v0, beta = ctx.saved_tensors
        need_x, need_v0, need_b = ctx.needs_input_grad[:3]
        if g is None or not (need_x or need_v0 or need_b):
            return None, None, None, None
        n = V.shape[1]
        gx = torch.empty_like(V)
        gv0 = torch.empty_like(v0)
        gb = torch.empty(n if need_b else 0, dtype=V.dtype)
        dummy = torch.zeros(1, 1, dtype=V.dtype)
        _run(_li_bwd, (_np(g.to(V.dtype).contiguous()), _np(V), _np(x if x is not None else dummy),
                       _np(v0), _np(beta), _np(1 - beta), ctx.decay, bool(need_b), _np(gx),
                       _np(gv0), _np(gb)), n)
        return (gx if need_x else None, gv0 if need_v0 else None, gb if need_b else None, None)


def numba_li_scan(x, v0, beta, decay_input):
    """``li`` backend ``"numba"`` (CPU, float32/float64)."""
    if x.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"backend 'numba' needs float32 or float64 x, got {x.dtype}")
    shape = x.shape[1:]
    T, n = x.shape[0], x[0].numel()
    dt = x.dtype
    v = NumbaLIScan.apply(x.contiguous().view(T, n), v0.to(dt).contiguous().view(n),
                          expand_param(beta, shape, dt).view(n), bool(decay_input))
    return v.view(x.shape)
