r"""Current-based LIF neuron (two time constants)."""

from __future__ import annotations

from typing import NamedTuple

import torch

from ..functional import backends as _backends
from ..functional.synaptic import synaptic_step
from ..surrogate import alpha_for
from .base import SpikingNeuron, _fmt, check_scan_backend
from .parametrize import DECAY_FLOOR, Constrained


class SynapticState(NamedTuple):
    """State of :class:`Synaptic`.

    Attributes:
        i: ``[B, ...]`` synaptic current.
        v: ``[B, ...]`` membrane potential after the last reset.
    """

    i: torch.Tensor
    v: torch.Tensor


class Synaptic(SpikingNeuron):
    r"""Current-based LIF: the input charges a synaptic current that decays with its own constant.

    .. math::
        I_t = \alpha_{syn} I_{t-1} + x_t,\quad
        h_t = \beta v_{t-1} + I_t\ (\text{or } (1-\beta) I_t),\quad
        s_t = H(h_t - \theta)\ (\textstyle\sum_{k\le L} H(h_t - k\theta)),\quad
        v_t = \mathrm{reset}(h_t, s_t)

    (The discretised current-based LIF of Zenke & Ganguli, SuperSpike, Neural Computation 2018;
    Neftci et al. 2019.) Decays: ``alpha_syn``/``tau_syn`` and ``beta``/``tau`` with
    ``decay = 1 - 1/tau`` (defaults ``tau_syn = tau = 2``); ``learn_alpha_syn``, ``learn_beta``
    learn them through a sigmoid, scalar or per neuron.

    Peer equivalents (and their different reset timing or discretisation): see
    docs/coming-from.md.

    Shapes: ``[T, B, ...]`` -> spikes ``[T, B, ...]``; state :class:`SynapticState`. Recordable:
    ``"s"``, ``"h"``, ``"v"``, ``"i"``. Multi-step calls run the fused
    :func:`~surrogate_nets.functional.synaptic_scan` (seam op ``"synaptic"``, ``backend=``).

    The shared spiking arguments (``threshold``, ``learn_threshold``, ``surrogate``, ``reset``,
    ``detach_reset``, ``levels``, ``shape``, ``num_neurons``, ``stateful``, ``record``,
    ``record_rates``) are keyword-only ``**kwargs``, as in :class:`~surrogate_nets.neurons.LIF`.
    """

    State = SynapticState
    recordable = ("s", "h", "v", "i")
    alpha_syn = Constrained("unit", "synaptic current decay in (0, 1]", floor=DECAY_FLOOR)
    beta = Constrained("unit", "membrane decay in (0, 1]", floor=DECAY_FLOOR)

    def __init__(self, alpha_syn=None, beta=None, *, tau_syn=None, tau=None, decay_input: bool = False,
                 learn_alpha_syn: bool = False, learn_beta: bool = False, backend: str = "auto",
                 **kwargs):
        super().__init__(**kwargs)
        self._register_decay("alpha_syn", alpha_syn, tau_syn, "tau_syn", 2.0, learn_alpha_syn)
        self._register_decay("beta", beta, tau, "tau", 2.0, learn_beta)
        self.decay_input = bool(decay_input)
        self.backend = check_scan_backend("synaptic", backend)

    def _per_neuron(self):
        return dict(super()._per_neuron(), alpha_syn=self.alpha_syn, beta=self.beta)

    def _prepare(self, dtype):
        return {k: getattr(self, k).to(dtype) for k in ("alpha_syn", "beta", "threshold")}

    def _step(self, x_t, state, p):
        s, i, v, h = synaptic_step(x_t, state.i, state.v, p["alpha_syn"], p["beta"], p["threshold"],
                                   decay_input=self.decay_input, **self._spike_kw())
        return s, SynapticState(i, v), h

    def _multistep(self, x, state, p, keys):
        r = _backends.dispatch(
            "synaptic", self.backend, x=x, i0=state.i, v0=state.v, alpha_syn=p["alpha_syn"],
            beta=p["beta"], threshold=p["threshold"], alpha=alpha_for(self.surrogate, x[0], "x[0]"),
            decay_input=self.decay_input, relaxed=False, **self._spike_kw())
        traces = self._scan_traces(keys, r, p["threshold"], i=r.i)
        return r.spikes, SynapticState(r.i[-1].clone(), r.v), traces

    def extra_repr(self) -> str:
        return ", ".join([_fmt(self, "alpha_syn"), _fmt(self, "beta"), super().extra_repr()])
