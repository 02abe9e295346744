r"""Non-spiking leaky integrator (readout layer)."""

from __future__ import annotations

from typing import NamedTuple, Optional, Sequence, Union

import torch

from ..functional import backends as _backends
from ..functional.li import li_step
from .base import BaseNeuron, _fmt, check_scan_backend
from .parametrize import DECAY_FLOOR, Constrained


class LIState(NamedTuple):
    """State of :class:`LI`.

    Attributes:
        v: ``[B, ...]`` membrane potential.
    """

    v: torch.Tensor


class LI(BaseNeuron):
    r"""Leaky integrator without spikes: returns the membrane trace (for membrane-potential losses).

    .. math::
        v_t = \beta\,v_{t-1} + x_t \qquad(\text{decay\_input=True: } \beta\,v_{t-1} + (1-\beta)\,x_t)

    Typical readout: ``Linear -> LI`` and a loss on ``v.max(0)`` or ``v.mean(0)`` or ``v[-1]``.
    Peer equivalents: see docs/coming-from.md.

    Shapes: ``[T, B, ...]`` -> ``[T, B, ...]`` (the trace ``v_t``); state :class:`LIState`.
    Recordable: ``"v"`` (the output itself).

    Args:
        beta, tau, decay_input, learn_beta: as in :class:`~surrogate_nets.neurons.LIF`
            (default ``tau = 2``).
        shape, num_neurons, stateful, record, record_rates: see
            :class:`~surrogate_nets.neurons.base.BaseNeuron`.
        backend: the :func:`~surrogate_nets.functional.li_scan` backend (seam op ``"li"``).
    """

    State = LIState
    recordable = ("v",)
    beta = Constrained("unit", "the decay beta in (0, 1]", floor=DECAY_FLOOR)

    def __init__(self, beta: Union[float, torch.Tensor, None] = None,
                 tau: Union[float, torch.Tensor, None] = None, decay_input: bool = False,
                 learn_beta: bool = False, *, shape=None, num_neurons: Optional[int] = None,
                 stateful: bool = False, record: Union[str, Sequence[str]] = (),
                 record_rates: bool = False, backend: str = "auto"):
        super().__init__(shape=shape, num_neurons=num_neurons, stateful=stateful, record=record,
                         record_rates=record_rates)
        self._register_decay("beta", beta, tau, "tau", 2.0, learn_beta)
        self.decay_input = bool(decay_input)
        self.backend = check_scan_backend("li", backend)

    @property
    def tau(self) -> torch.Tensor:
        """The time constant ``1 / (1 - beta)`` (``inf`` for ``beta = 1``)."""
        return 1 / (1 - self.beta)

    def _per_neuron(self):
        return {"beta": self.beta}

    def _prepare(self, dtype):
        return {"beta": self.beta.to(dtype)}

    def _step(self, x_t, state, p):
        v = li_step(x_t, state.v, p["beta"], self.decay_input)
        return v, LIState(v), v

    def _multistep(self, x, state, p, keys):
        v = _backends.dispatch("li", self.backend, x=x, v0=state.v, beta=p["beta"],
                               decay_input=self.decay_input)
        return v, LIState(v[-1].clone()), {k: v for k in keys}

    def extra_repr(self) -> str:
        parts = [_fmt(self, "beta")] + (["decay_input=True"] if self.decay_input else [])
        base = super().extra_repr()
        return ", ".join(parts + ([base] if base else []))
