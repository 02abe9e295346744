r"""Opt-in reduced-memory LIF backward: the membrane saved as a narrow distance to threshold.

Used by :func:`~surrogate_nets.functional.lif_scan` and :class:`~surrogate_nets.neurons.LIF` when
``save_dtype`` is given (issue 11, item 6). The surrogate gradient only matters near the threshold,
and ``h - theta`` in bfloat16 / float16 keeps its sign exactly and a relative precision of
``2^{-9}`` / ``2^{-12}`` of the distance, i.e. the best absolute precision where it matters.
"""

from __future__ import annotations

from torch.autograd.function import once_differentiable

from .lif import LIFScanFunction, LIFScanResult, _bptt

class LIFScanLowMemFunction(LIFScanFunction):
    r""":class:`LIFScanFunction` saving the distance to threshold ``h - theta`` in a narrow dtype.

    Saves ``D = \mathrm{round}_{\texttt{save\_dtype}}(h_t - \theta)`` instead of ``h_t`` (half
    the bytes for ``bfloat16`` / ``float16`` vs ``float32``); the backward rebuilds
    ``h_t = D + \theta`` in the input dtype. The sign of ``h - theta`` survives rounding, so binary
    spikes recomputed in the backward are exact; the surrogate is evaluated at ``h`` with a relative
    error of ``2^{-9}`` of the distance (bfloat16), i.e. smallest exactly where the surrogate
    matters, near the threshold. The forward is the unchanged :class:`LIFScanFunction` forward.
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


#: fused backends of the reduced-memory scan, ``name -> (fn(save_dtype, **kw), supports(**kw))``
#: with the keywords of op ``"lif"``; registered by :mod:`surrogate_nets.kernels` (``"numba"``).
LOW_MEM_BACKENDS: dict = {}


def scan_low_mem(save_dtype, backend, **kw):
    """The reduced-memory scan on ``backend`` (``"auto"``: the first fused backend whose
    ``supports`` accepts, else the torch :class:`LIFScanLowMemFunction`)."""
    for name, (fn, supports) in LOW_MEM_BACKENDS.items():
        if backend == name or (backend == "auto" and supports(**kw)):
            return fn(save_dtype, **kw)
    return _scan_torch_low_mem(save_dtype, **kw)
