r"""Recurrent LIF neuron: the layer's own spikes are fed back."""

from __future__ import annotations

from typing import NamedTuple, Optional

import torch
import torch.nn.functional as F
from torch import nn

from .._validate import check_choice
from ..functional.rlif import rlif_step
from .base import SpikingNeuron, _fmt
from .parametrize import DECAY_FLOOR, Constrained, as_param_tensor


class RLIFState(NamedTuple):
    """State of :class:`RLIF`.

    Attributes:
        v: ``[B, ...]`` membrane potential after the last reset.
        s: ``[B, ...]`` the previous step's spikes (fed back).
    """

    v: torch.Tensor
    s: torch.Tensor


class RLIF(SpikingNeuron):
    r"""LIF with recurrent feedback of its previous spikes.

    .. math::
        h_t = \beta v_{t-1} + x_t + W s_{t-1}\ \ (\text{decay\_input: } \beta v_{t-1} + (1-\beta)(x_t + W s_{t-1})),\quad
        s_t = H(h_t - \theta),\quad v_t = \mathrm{reset}(h_t, s_t)

    ``connectivity="all_to_all"``: ``W s`` is ``self.recurrent = nn.Linear(N, N, bias=recurrent_bias)``
    over the last dim (needs ``num_neurons = N``; input ``[T, B, ..., N]``).
    ``connectivity="one_to_one"``: ``W s = w * s`` elementwise with the parameter
    ``recurrent_weight`` of ``shape`` (or ``(num_neurons,)``, or scalar), initialised to
    ``recurrent_init`` (default 0: starts as a plain LIF).

    Decays, threshold, reset, levels as in :class:`~surrogate_nets.neurons.LIF`. Peer
    equivalents: see docs/coming-from.md.

    Shapes: ``[T, B, ..., N]`` -> spikes of the same shape; state :class:`RLIFState`.
    Recordable: ``"s"``, ``"h"``, ``"v"``.

    The shared spiking arguments (``threshold``, ``learn_threshold``, ``surrogate``, ``reset``,
    ``detach_reset``, ``levels``, ``shape``, ``num_neurons``, ``stateful``, ``record``,
    ``record_rates``) are keyword-only ``**kwargs``, as in :class:`~surrogate_nets.neurons.LIF`.
    """

    State = RLIFState
    beta = Constrained("unit", "membrane decay in (0, 1]", floor=DECAY_FLOOR)

    def __init__(self, beta=None, tau=None, decay_input: bool = False, learn_beta: bool = False, *,
                 num_neurons: Optional[int] = None, connectivity: str = "all_to_all",
                 recurrent_bias: bool = False, recurrent_init: float = 0.0, **kwargs):
        self_conn = check_choice(connectivity, "connectivity", ("all_to_all", "one_to_one"))
        if self_conn == "all_to_all" and num_neurons is None:
            raise ValueError("num_neurons must be given (an int N) for connectivity='all_to_all', got None")
        super().__init__(num_neurons=num_neurons, **kwargs)
        self._register_decay("beta", beta, tau, "tau", 2.0, learn_beta)
        self.decay_input = bool(decay_input)
        self.connectivity = self_conn
        if self_conn == "all_to_all":
            n = self.shape[0]
            self.recurrent = nn.Linear(n, n, bias=recurrent_bias)
        else:
            self.recurrent_weight = nn.Parameter(as_param_tensor(recurrent_init, self.shape))

    def _per_neuron(self):
        d = dict(super()._per_neuron(), beta=self.beta)
        if self.connectivity == "one_to_one":
            d["recurrent_weight"] = self.recurrent_weight
        return d

    def _check_params(self, step_shape):
        if self.connectivity == "all_to_all" and (len(step_shape) < 1 or step_shape[-1] != self.shape[0]):
            raise ValueError(f"RLIF(all_to_all, num_neurons={self.shape[0]}) needs inputs whose last "
                             f"dim is {self.shape[0]}, got one step of shape {tuple(step_shape)}")
        super()._check_params(step_shape)

    def _prepare(self, dtype):
        p = {"beta": self.beta.to(dtype), "threshold": self.threshold.to(dtype)}
        if self.connectivity == "all_to_all":
            w = self.recurrent.weight.to(dtype)
            b = self.recurrent.bias.to(dtype) if self.recurrent.bias is not None else None
            p["recurrent"] = lambda s: F.linear(s, w, b)
        else:
            w = self.recurrent_weight.to(dtype)
            p["recurrent"] = lambda s: w * s
        return p

    def _step(self, x_t, state, p):
        s, v, h = rlif_step(x_t, state.v, state.s, p["beta"], p["recurrent"], p["threshold"],
                            decay_input=self.decay_input, **self._spike_kw())
        return s, RLIFState(v, s), h

    def extra_repr(self) -> str:
        return ", ".join([_fmt(self, "beta"), f"connectivity={self.connectivity!r}", super().extra_repr()])
