r"""Adaptive-threshold LIF neuron (LSNN)."""

from __future__ import annotations

from typing import NamedTuple, Optional, Sequence, Union

import torch

from ..functional.neurons import alif_step
from .base import SpikingNeuron, _fmt
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
    0``), ``learn_threshold``. Counterparts: Norse ``LSNNCell``; no built-in in snnTorch or
    SpikingJelly.

    Shapes: ``[T, B, ...]`` -> spikes ``[T, B, ...]``; state :class:`ALIFState`. Recordable:
    ``"s"``, ``"h"``, ``"v"``, ``"a"``.
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
                 *, threshold: Union[float, torch.Tensor] = 1.0, learn_threshold: bool = False,
                 surrogate=None, reset: str = "subtract", detach_reset: bool = False, levels: int = 1,
                 shape=None, num_neurons: Optional[int] = None, stateful: bool = False,
                 record: Union[str, Sequence[str]] = (), record_rates: bool = False):
        super().__init__(threshold=threshold, learn_threshold=learn_threshold, surrogate=surrogate,
                         reset=reset, detach_reset=detach_reset, levels=levels, shape=shape,
                         num_neurons=num_neurons, stateful=stateful, record=record,
                         record_rates=record_rates)
        self._register_decay("beta", beta, tau, "tau", 2.0, learn_beta)
        self._register_decay("rho", rho, tau_adapt, "tau_adapt", 20.0, learn_rho)
        self._register_positive("adaptation", adaptation, learn_adaptation,
                                allow_zero=not learn_adaptation)
        self.decay_input = bool(decay_input)

    def _per_neuron(self):
        return dict(super()._per_neuron(), beta=self.beta, rho=self.rho, adaptation=self.adaptation)

    def _prepare(self, dtype):
        return {k: getattr(self, k).to(dtype) for k in ("beta", "rho", "threshold", "adaptation")}

    def _step(self, x_t, state, p):
        s, v, a, h = alif_step(x_t, state.v, state.a, p["beta"], p["rho"], p["threshold"],
                               p["adaptation"], decay_input=self.decay_input, **self._spike_kw())
        return s, ALIFState(v, a), h

    def extra_repr(self) -> str:
        parts = [_fmt(self, "beta"), _fmt(self, "rho"), _fmt(self, "adaptation")]
        return ", ".join(parts + [super().extra_repr()])
