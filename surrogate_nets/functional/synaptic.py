r"""Current-based (synaptic) LIF: one step, and the whole-sequence scan.

.. math::
    I_t = \alpha_{syn} I_{t-1} + x_t,\quad h_t = \beta v_{t-1} + I_t\ (\text{or } (1-\beta) I_t),\quad
    s_t = \textstyle\sum_k H(h_t - k\theta),\quad v_t = \mathrm{reset}(h_t, s_t)

(The discretised current-based LIF of Zenke & Ganguli, SuperSpike, Neural Computation 2018.)
The current is a leaky integrator of the input that does not depend on the spikes, so the scan
is the composition of two scans with hand-written BPTT: :func:`~surrogate_nets.functional.li_scan`
for ``I`` and :func:`~surrogate_nets.functional.lif_scan` driven by ``I`` (gradients of
``alpha_syn`` and ``x`` flow back through the first). It is op ``"synaptic"`` of
:mod:`~surrogate_nets.functional.backends`.
"""

from __future__ import annotations

from typing import NamedTuple, Optional, Union

import torch

from .._validate import check_time_major
from ..surrogate import Surrogate
from ..surrogate.helpers import auto_scale_numel, resolve_surrogate
from . import backends as _bk
from ._neuron import (
    charge, check_common, check_scalar_unit, initial_state, param_tensor, positive_checker, scan_config,
    unit_checker,
)
from .spike import Scalar, _as_tensor, fire, reset_membrane

__all__ = ["synaptic_step", "synaptic_scan", "SynapticScanResult"]


def synaptic_step(x: torch.Tensor, i: torch.Tensor, v: torch.Tensor, alpha_syn: Scalar, beta: Scalar,
                  threshold: Scalar = 1.0, surrogate: Union[str, Surrogate, None] = None,
                  reset: str = "subtract", detach_reset: bool = False, decay_input: bool = False,
                  levels: int = 1, relaxed: bool = False):
    r"""One step of the current-based LIF neuron (see the module docstring).

    Float ``alpha_syn``/``beta`` must lie in ``(0, 1]``.

    Returns:
        ``(s_t, i_t, v_t, h_t)``.
    """
    check_common(x, reset, levels, i=i, v=v)
    check_scalar_unit(alpha_syn, "alpha_syn")
    check_scalar_unit(beta, "beta")
    s_ = resolve_surrogate(surrogate)
    i_new = _as_tensor(alpha_syn, x) * i + x
    h = charge(i_new, v, _as_tensor(beta, x), decay_input)
    s = fire(h, threshold, s_, levels, relaxed)
    return s, i_new, reset_membrane(h, s, threshold, reset, detach_reset, levels, s_, relaxed), h


class SynapticScanResult(NamedTuple):
    """``spikes``, ``h``, ``i`` (the current trace) ``[T, B, ...]``; final ``v`` ``[B, ...]``."""

    spikes: torch.Tensor
    h: torch.Tensor
    i: torch.Tensor
    v: torch.Tensor


def _synaptic_torch(x, i0, v0, alpha_syn, beta, threshold, alpha, surrogate, reset, detach_reset,
                    decay_input, levels, relaxed):
    cur = _bk.dispatch("li", "torch", x=x, v0=i0, beta=alpha_syn, decay_input=False)
    r = _bk.dispatch("lif", "torch", x=cur, v0=v0, beta=beta, threshold=threshold, alpha=alpha,
                     surrogate=surrogate, reset=reset, detach_reset=detach_reset,
                     decay_input=decay_input, levels=levels, relaxed=relaxed)
    return SynapticScanResult(r.spikes, r.h, cur, r.v)


def _synaptic_autograd(x, i0, v0, alpha_syn, beta, threshold, alpha, surrogate, reset, detach_reset,
                       decay_input, levels, relaxed):
    """Reference backend: per-step autograd through :func:`synaptic_step` (twice differentiable)."""
    from .lif import _FixedAlpha

    sur = surrogate if alpha is surrogate.alpha else _FixedAlpha(surrogate, alpha)
    i, v, ss, hs, cs = i0, v0, [], [], []
    with auto_scale_numel(x.numel(), sur):  # grad_scale="auto" counts the whole sequence, as "torch"
        for x_t in x.unbind(0):
            s, i, v, h = synaptic_step(x_t, i, v, alpha_syn, beta, threshold, sur, reset,
                                       detach_reset, decay_input, levels, relaxed)
            ss.append(s)
            hs.append(h)
            cs.append(i)
    return SynapticScanResult(torch.stack(ss), torch.stack(hs), torch.stack(cs), v)


_bk.register_backend("synaptic", "torch", _synaptic_torch, auto=False)
_bk.register_backend("synaptic", "autograd", _synaptic_autograd, auto=False)


def synaptic_scan(x: torch.Tensor, i0=None, v0=None, alpha_syn: Scalar = 0.5, beta: Scalar = 0.5,
                  threshold: Scalar = 1.0, alpha: Optional[torch.Tensor] = None,
                  surrogate: Union[str, Surrogate, None] = None, reset: str = "subtract",
                  detach_reset: bool = False, decay_input: bool = False, levels: int = 1,
                  relaxed: bool = False, backend: str = "auto") -> SynapticScanResult:
    r"""Run the current-based LIF over a whole time-major sequence; equal to looping :func:`synaptic_step`.

    Args:
        x: ``[T, B, ...]``; ``i0``, ``v0``: ``[B, ...]`` (``None``: zeros).
        alpha_syn, beta: decays in ``(0, 1]``; ``threshold > 0``: floats or tensors broadcastable
            to ``[B, ...]``.
        alpha, surrogate, reset, detach_reset, decay_input, levels, relaxed: as in
            :func:`~surrogate_nets.functional.lif_scan`.
        backend: ``"auto"``, ``"torch"``, ``"autograd"`` or a registered name.

    Returns:
        :class:`SynapticScanResult` ``(spikes, h, i, v)``; the final current is ``i[-1]``.
    """
    check_time_major(x, "x")
    i0 = initial_state(i0, x, "i0")
    v0 = initial_state(v0, x, "v0")
    kw = dict(alpha_syn=param_tensor(alpha_syn, "alpha_syn", x, unit_checker("alpha_syn")),
              beta=param_tensor(beta, "beta", x, unit_checker("beta")),
              threshold=param_tensor(threshold, "threshold", x, positive_checker("threshold")))
    cfg = scan_config(x, alpha, surrogate, reset, detach_reset, decay_input, levels, relaxed)
    _bk.check_backend("synaptic", backend)
    return _bk.dispatch("synaptic", backend, x=x, i0=i0, v0=v0, **kw, **cfg)
