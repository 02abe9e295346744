r"""Integrate-and-fire neuron (no leak)."""

from __future__ import annotations

from typing import Optional, Sequence, Union

import torch

from .base import SpikingNeuron
from .lif import LIF, _check_backend


class IF(LIF):
    r"""Integrate-and-fire neuron: :class:`~surrogate_nets.neurons.LIF` without leak (``beta = 1``).

    .. math::
        h_t = v_{t-1} + x_t,\quad s_t = H(h_t - \theta)\ \ (\textstyle\sum_{k\le L} H(h_t - k\theta)),\quad
        v_t = h_t - s_t\theta\ |\ h_t(1 - H(h_t-\theta))\ |\ h_t

    With subtract-reset the spike count tracks ``sum_t x_t / theta`` (the rate coding used in
    ANN-to-SNN conversion, Rueckauer et al., Front. Neurosci. 2017). Counterparts: SpikingJelly
    ``IFNode(v_reset=None)``, snnTorch ``Leaky(beta=1)``, Norse ``IAFCell``. Shapes, state
    (:class:`LIFState`), recording and arguments as in :class:`LIF` (without ``beta``/``tau``).
    """

    def __init__(self, *, threshold: Union[float, torch.Tensor] = 1.0, learn_threshold: bool = False,
                 surrogate=None, reset: str = "subtract", detach_reset: bool = False, levels: int = 1,
                 shape=None, num_neurons: Optional[int] = None, stateful: bool = False,
                 record: Union[str, Sequence[str]] = (), record_rates: bool = False,
                 backend: str = "auto"):
        SpikingNeuron.__init__(self, threshold=threshold, learn_threshold=learn_threshold,
                               surrogate=surrogate, reset=reset, detach_reset=detach_reset,
                               levels=levels, shape=shape, num_neurons=num_neurons, stateful=stateful,
                               record=record, record_rates=record_rates)
        self.decay_input = False
        self.backend = _check_backend(backend)

    @property
    def beta(self) -> torch.Tensor:
        """Always ``1`` (no leak)."""
        th = self.threshold
        return torch.ones((), dtype=th.dtype, device=th.device)

    @property
    def tau(self):
        return float("inf")

    def _per_neuron(self):
        return SpikingNeuron._per_neuron(self)

    def _beta(self, dtype):
        th = self.threshold
        return torch.ones((), dtype=dtype, device=th.device)

    def extra_repr(self) -> str:
        return SpikingNeuron.extra_repr(self)
