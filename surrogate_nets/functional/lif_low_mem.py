r"""Opt-in reduced-memory LIF backward: the membrane saved as a narrow distance to threshold.

Used by :func:`~surrogate_nets.functional.lif_scan` and :class:`~surrogate_nets.neurons.LIF` when
``save_dtype`` is given (issue 11, item 6). The surrogate gradient only matters near the threshold,
and ``h - theta`` in bfloat16 / float16 keeps its sign exactly and a relative precision of
``2^{-9}`` / ``2^{-12}`` of the distance, i.e. the best absolute precision where it matters.
"""

from __future__ import annotations

from typing import Callable, Dict, Tuple

import torch
from torch.autograd.function import once_differentiable

from .lif import LIFScanFunction, LIFScanResult, _bptt

#: fused backends of the ``save_dtype`` scan besides ``"torch"`` (registered by
#: :mod:`surrogate_nets.kernels`): name -> ``(fn(save_dtype, **kw), supports(**kw))`` with ``kw``
#: the arguments of a ``"lif"`` backend (:mod:`surrogate_nets.functional.backends`)
_LOW_MEM: Dict[str, Tuple[Callable, Callable]] = {}

class LIFScanLowMemFunction(LIFScanFunction):
    r""":class:`LIFScanFunction` saving the distance to threshold ``h - theta`` in a narrow dtype.

    Saves ``D = \mathrm{round}_{\texttt{save\_dtype}}(h_t - \theta)`` instead of ``h_t`` (half
    the bytes for ``bfloat16`` / ``float16`` vs ``float32``); the backward rebuilds
    ``h_t = D + \theta`` in the input dtype. The sign of ``h - theta`` survives rounding, so binary
    spikes recomputed in the backward are exact; the surrogate is evaluated at ``h`` with a relative
    error of ``2^{-9}`` of the distance (bfloat16), i.e. smallest exactly where the surrogate
    matters, near the threshold. The forward is the unchanged :class:`LIFScanFunction` forward. This is the ``"torch"``
    backend of the ``save_dtype`` scan (:func:`register_low_mem_backend` adds fused ones).
    """

    @staticmethod
    def forward(x, v0, beta, threshold, alpha, surrogate, reset, detach_reset, decay_input, levels,
                relaxed, save_dtype):
        return LIFScanFunction.forward(x, v0, beta, threshold, alpha, surrogate, reset, detach_reset,
                                       decay_input, levels, relaxed)

    @staticmethod
    def setup_context(ctx, inputs, output):
        (x, v0, beta, threshold, alpha, surrogate, reset, detach_reset, decay_input, levels, relaxed,
         sd) = inputs
        ctx.set_materialize_grads(False)
        ctx.surrogate, ctx.reset, ctx.detach_reset = surrogate, reset, detach_reset
        ctx.decay_input, ctx.levels, ctx.relaxed = decay_input, levels, relaxed
        save_x = decay_input and ctx.needs_input_grad[2]
        H = output[1]
        ctx.compute_dtype = H.dtype
        D = (H - threshold.to(H.dtype)).to(sd)  # the distance to threshold, narrow
        ctx.save_for_backward(D, v0, beta, threshold, alpha, x if save_x else None)

    @staticmethod
    @once_differentiable
    def backward(ctx, gS, gH, gV):
        D, v0, beta, threshold, alpha, x = ctx.saved_tensors
        H = D.to(ctx.compute_dtype) + threshold.to(ctx.compute_dtype)
        del D
        return _bptt(ctx, H, v0, beta, threshold, alpha, x, gS, gH, gV) + (None,)


def _scan_torch_low_mem(save_dtype, x, v0, beta, threshold, alpha, surrogate, reset, detach_reset,
                        decay_input, levels, relaxed):
    s, h, v = LIFScanLowMemFunction.apply(x, v0, beta, threshold, alpha, surrogate, reset,
                                          detach_reset, decay_input, levels, relaxed, save_dtype)
    return LIFScanResult(s, h, v)


def register_low_mem_backend(name: str, fn: Callable, supports: Callable[..., bool]) -> None:
    """Register ``fn(save_dtype, **kw) -> LIFScanResult`` as backend ``name`` of the
    ``save_dtype`` scan; ``backend="auto"`` takes it when ``supports(**kw)`` (the first such in
    registration order), else the ``"torch"`` one. It must keep the rule of
    :class:`LIFScanLowMemFunction`: same forward as the plain scan, ``h - theta`` rounded to
    ``save_dtype`` saved for the backward."""
    _LOW_MEM[name] = (fn, supports)


def low_mem_backends() -> list:
    """The backends that take ``save_dtype`` (``"torch"`` first)."""
    return ["torch"] + list(_LOW_MEM)


#: the dtypes ``save_dtype`` accepts
SAVE_DTYPES = (torch.bfloat16, torch.float16)


def check_save_dtype(save_dtype, backend) -> None:
    """``ValueError`` unless ``save_dtype`` is in :data:`SAVE_DTYPES` and ``backend`` runs it."""
    if save_dtype not in SAVE_DTYPES:
        raise ValueError(f"save_dtype must be None, torch.bfloat16 or torch.float16, got {save_dtype!r}")
    if backend != "auto" and backend not in low_mem_backends():
        raise ValueError(f"save_dtype={save_dtype} runs on the backends {low_mem_backends()}: backend "
                         f"must be 'auto' or one of them, got {backend!r}")


def _scan_low_mem(save_dtype, backend, **kw) -> LIFScanResult:
    """The ``save_dtype`` scan on ``backend`` (``"auto"``, ``"torch"`` or a registered name; the
    name was checked by :func:`check_save_dtype`)."""
    if backend == "auto":
        for fn, supports in _LOW_MEM.values():
            if supports(**kw):
                return fn(save_dtype, **kw)
    elif backend in _LOW_MEM:
        return _LOW_MEM[backend][0](save_dtype, **kw)
    return _scan_torch_low_mem(save_dtype, **kw)
