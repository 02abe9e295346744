r"""Adaptive-threshold LIF neuron (LSNN)."""

from __future__ import annotations

from typing import NamedTuple, Union

import torch

from ..functional import backends as _backends
from ..functional.alif import alif_step
from ..functional.li import li_scan
from ..surrogate import alpha_for
from .base import SpikingNeuron, _fmt, check_scan_backend
from .parametrize import DECAY_FLOOR, Constrained


class ALIFState(NamedTuple):
    """State of :class:`ALIF`.

    Attributes:
        v: ``[B, ...]`` membrane potential after the last reset.
        a: ``[B, ...]`` adaptation trace (decays with ``rho``, +1 per spike).
    """

    v: torch.Tensor
    a: torch.Tensor


class ALIF(SpikingNeuron):
    r"""LIF with an adaptive threshold (Bellec et al., "Long short-term memory and learning-to-learn
    in networks of spiking neurons", NeurIPS 2018: the ALIF units of LSNNs).

    .. math::
        h_t &= \beta v_{t-1} + x_t\quad(\text{or } (1-\beta) x_t),\qquad
        \theta_t = \theta_0 + \beta_a\,a_{t-1}\\
        s_t &= H(h_t - \theta_t)\ \ (\textstyle\sum_{k\le L} H(h_t - k\theta_t)),\qquad
        v_t = \mathrm{reset}(h_t, s_t; \theta_t),\qquad a_t = \rho\,a_{t-1} + s_t

    ``threshold`` is the baseline ``theta_0``; ``adaptation`` is ``beta_a`` (the threshold
    increase per unit of the trace ``a``; Bellec et al.'s ``beta`` equals ``beta_a / (1 - rho)``
    because their trace rises by ``1 - rho`` per spike). Gradients flow through the adaptive
    threshold into ``a`` (BPTT through the adaptation, as in LSNNs). The subtract-reset removes
    the current ``theta_t``; ``detach_reset`` does not detach ``s`` in the trace update.

    Decays: ``beta``/``tau`` as in :class:`~surrogate_nets.neurons.LIF` (default ``tau = 2``);
    ``rho``/``tau_adapt`` likewise (``rho = 1 - 1/tau_adapt``, default ``tau_adapt = 20``).
    Learnable: ``learn_beta``, ``learn_rho`` (sigmoid), ``learn_adaptation`` (softplus: ``beta_a >
    0``), ``learn_threshold``. Peer equivalents: see docs/coming-from.md.

    Shapes: ``[T, B, ...]`` -> spikes ``[T, B, ...]``; state :class:`ALIFState`. Recordable:
    ``"s"``, ``"h"``, ``"v"``, ``"a"``. Multi-step calls run the fused
    :func:`~surrogate_nets.functional.alif_scan` (hand-written BPTT; ``backend=`` picks the
    implementation, seam op ``"alif"``).

    The shared spiking arguments (``threshold``, ``learn_threshold``, ``surrogate``, ``reset``,
    ``detach_reset``, ``levels``, ``shape``, ``num_neurons``, ``stateful``, ``record``,
    ``record_rates``) are keyword-only ``**kwargs``, as in :class:`~surrogate_nets.neurons.LIF`.
    """

    State = ALIFState
    recordable = ("s", "h", "v", "a")
    beta = Constrained("unit", "membrane decay in (0, 1]", floor=DECAY_FLOOR)
    rho = Constrained("unit", "adaptation decay in (0, 1]", floor=DECAY_FLOOR)
    adaptation = Constrained("positive", "threshold increase per unit of the adaptation trace (>= 0)",
                             allow_zero=True)

    def __init__(self, beta=None, tau=None, rho=None, tau_adapt=None,
                 adaptation: Union[float, torch.Tensor] = 0.1, decay_input: bool = False,
                 learn_beta: bool = False, learn_rho: bool = False, learn_adaptation: bool = False,
                 *, backend: str = "auto", **kwargs):
        super().__init__(**kwargs)
        self._register_decay("beta", beta, tau, "tau", 2.0, learn_beta)
        self._register_decay("rho", rho, tau_adapt, "tau_adapt", 20.0, learn_rho)
        self._register_positive("adaptation", adaptation, learn_adaptation,
                                allow_zero=not learn_adaptation)
        self.decay_input = bool(decay_input)
        self.backend = check_scan_backend("alif", backend)

    def _per_neuron(self):
        return dict(super()._per_neuron(), beta=self.beta, rho=self.rho, adaptation=self.adaptation)

    def _prepare(self, dtype):
        return {k: getattr(self, k).to(dtype) for k in ("beta", "rho", "threshold", "adaptation")}

    def _step(self, x_t, state, p):
        s, v, a, h = alif_step(x_t, state.v, state.a, p["beta"], p["rho"], p["threshold"],
                               p["adaptation"], decay_input=self.decay_input, **self._spike_kw())
        return s, ALIFState(v, a), h

    def _multistep(self, x, state, p, keys):
        r = _backends.dispatch(
            "alif", self.backend, x=x, v0=state.v, a0=state.a, beta=p["beta"], rho=p["rho"],
            threshold=p["threshold"], adaptation=p["adaptation"],
            alpha=alpha_for(self.surrogate, x[0], "x[0]"), decay_input=self.decay_input,
            relaxed=False, **self._spike_kw())
        a = th = None   # the trace a_t and the adaptive threshold theta_t, only when recorded
        if "a" in keys or "v" in keys:
            a = li_scan(r.spikes, state.a, p["rho"], backend="torch")
        if "v" in keys:
            th = p["threshold"] + p["adaptation"] * torch.cat([state.a[None], a[:-1]])
        return r.spikes, ALIFState(r.v, r.a), self._scan_traces(keys, r, th, a=a)

    def extra_repr(self) -> str:
        parts = [_fmt(self, "beta"), _fmt(self, "rho"), _fmt(self, "adaptation")]
        return ", ".join(parts + [super().extra_repr()])
