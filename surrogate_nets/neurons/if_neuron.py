r"""Integrate-and-fire neuron (no leak)."""

from __future__ import annotations

from .base import SpikingNeuron
from .lif import LIF


class IF(LIF):
    r"""Integrate-and-fire neuron: :class:`~surrogate_nets.neurons.LIF` without leak (``beta = 1``).

    .. math::
        h_t = v_{t-1} + x_t,\quad s_t = H(h_t - \theta)\ \ (\textstyle\sum_{k\le L} H(h_t - k\theta)),\quad
        v_t = h_t - s_t\theta\ |\ h_t(1 - H(h_t-\theta))\ |\ h_t

    With subtract-reset the spike count tracks ``sum_t x_t / theta`` (the rate coding used in
    ANN-to-SNN conversion, Rueckauer et al., Front. Neurosci. 2017). Built by the normal
    :class:`LIF` constructor with ``beta=1`` (a fixed, non-persistent buffer: ``IF`` checkpoints
    hold no ``beta``). Shapes, state (:class:`LIFState`), recording and the keyword-only
    arguments as in :class:`LIF` (without ``beta``/``tau``/``decay_input``/``learn_beta``).
    """

    def __init__(self, *, backend: str = "auto", **kwargs):
        super().__init__(beta=1.0, backend=backend, **kwargs)
        # beta = 1 is part of the neuron's definition, not of its state
        self.register_buffer("fixed_beta", self.fixed_beta, persistent=False)

    @property
    def tau(self):
        """Always ``inf`` (no leak)."""
        return float("inf")

    def extra_repr(self) -> str:
        return SpikingNeuron.extra_repr(self)
