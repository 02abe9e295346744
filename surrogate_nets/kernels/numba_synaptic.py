r"""Compiled CPU current-based LIF scan (numba): op ``"synaptic"`` in one fused kernel.

.. math::
    I_t = \alpha_{syn} I_{t-1} + x_t,\quad h_t = \beta v_{t-1} + c\,I_t,\quad
    s_t = \textstyle\sum_{k=1}^{L} H(h_t - k\theta),\quad v_t = \mathrm{reset}(h_t, s_t)

(Zenke & Ganguli, SuperSpike, Neural Computation 2018; ``c = 1 - beta`` with ``decay_input``.)
The torch backend (:mod:`surrogate_nets.functional.synaptic`) composes an LI scan for ``I`` and a
LIF scan driven by it; here current and membrane advance together in one pass per step, and one
backward runs both BPTT recurrences (``gI_t = c\,\bar h_t + gi_t + \alpha_{syn} gI_{t+1}``,
``\bar x_t = gI_t``, ``\bar\alpha_{syn} = \sum_t gI_t I_{t-1}``, ``\bar I_0 = \alpha_{syn} gI_0``).
The kernels are those of :mod:`.numba_alif` with the synaptic part on and the adaptation off
(its docstring has the full backward); same numerical contract as the torch backend.
"""

from __future__ import annotations

from .numba_alif import neuron_scan

__all__ = ["numba_synaptic_scan"]


def numba_synaptic_scan(x, i0, v0, alpha_syn, beta, threshold, alpha, surrogate, reset,
                        detach_reset, decay_input, levels, relaxed):
    """``synaptic`` backend ``"numba"`` (CPU, float32/float64, built-in surrogate families,
    ``relaxed=False``); the signature of :func:`~surrogate_nets.functional.synaptic_scan`'s
    backends (``x`` ``[T, B, ...]``, states ``[B, ...]``, parameters broadcastable to ``[B, ...]``).

    Returns:
        :class:`~surrogate_nets.functional.synaptic.SynapticScanResult` ``(spikes, h, i, v)``.
    """
    from ..functional.synaptic import SynapticScanResult

    s, h, i, v, _ = neuron_scan(x, v0, None, i0, beta, None, threshold, None, alpha, alpha_syn,
                                surrogate, reset, detach_reset, decay_input, levels, relaxed,
                                adapt=False, syn=True)
    return SynapticScanResult(s, h, i, v)
