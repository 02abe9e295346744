r"""Leaky integrate-and-fire neuron (and PLIF, its learnable-time-constant form)."""

from __future__ import annotations

from typing import NamedTuple, Union

import torch

from ..functional.lif import _lif_scan_unchecked, lif_step
from ..surrogate import alpha_for
from .base import SpikingNeuron, _fmt, check_scan_backend
from .parametrize import DECAY_FLOOR, Constrained


class LIFState(NamedTuple):
    """State of :class:`LIF` and :class:`~surrogate_nets.neurons.IF`.

    Attributes:
        v: ``[B, ...]`` membrane potential after the last reset.
    """

    v: torch.Tensor


def _check_backend(backend: str) -> str:
    """Old name: ``backend`` validated for the seam op ``"lif"``."""
    return check_scan_backend("lif", backend)


class LIF(SpikingNeuron):
    r"""Leaky integrate-and-fire neuron, multi-step through the fused :func:`~surrogate_nets.functional.lif_scan`.

    .. math::
        h_t &= \beta\,v_{t-1} + x_t \qquad(\text{decay\_input=True: } \beta\,v_{t-1} + (1-\beta)\,x_t)\\
        s_t &= H(h_t - \theta) \qquad(\text{levels } L > 1:\ \textstyle\sum_{k=1}^{L} H(h_t - k\theta))\\
        v_t &= h_t - s_t\theta\ (\text{subtract}),\quad h_t\,(1 - H(h_t - \theta))\ (\text{zero}),\quad h_t\ (\text{none})

    with the surrogate gradient of :func:`~surrogate_nets.functional.spike` for ``H``.

    Time constant: ``tau`` gives ``beta = 1 - 1/tau`` (``tau > 1``), the convention of
    SpikingJelly's ``LIFNode`` and of PLIF (Fang et al., "Incorporating learnable membrane time
    constant to enhance learning of spiking neural networks", ICCV 2021); ``beta`` may be given
    directly instead (snnTorch's ``Leaky(beta)``). Default ``tau = 2`` (``beta = 0.5``).
    ``learn_beta=True`` learns ``beta = sigmoid(raw_beta)`` (PLIF: ``1/tau = sigmoid(w)``, i.e.
    ``raw_beta = -w``), scalar or per neuron (``shape`` / ``num_neurons``).

    **SpikingJelly.** ``LIFNode(tau, decay_input, v_threshold, v_reset=None)`` computes, per step,
    ``H = V + (X - (V - V_reset)) / tau`` (``decay_input=True``) or
    ``H = V - (V - V_reset) / tau + X`` (``decay_input=False``), ``S = heaviside(H - V_th)``
    (``H >= V_th`` fires) and, with ``v_reset=None`` (soft reset, leak towards ``V_reset = 0``),
    ``V = H - S * V_th``. With ``beta = 1 - 1/tau`` these are exactly our equations:
    ``LIF(tau=2, decay_input=False, reset="subtract")`` == ``LIFNode(tau=2, decay_input=False,
    v_reset=None)``; ``v_reset=0.0`` (hard reset) is our ``reset="zero"``.

    **snnTorch.** ``Leaky(beta, threshold, reset_mechanism="subtract")`` with its default
    ``reset_delay=True`` computes ``mem_t = beta * mem_{t-1} + x_t - R_t * threshold`` where the
    reset ``R_t = H(mem_{t-1} - threshold)`` is the *previous* step's spike, and
    ``spk_t = H(mem_t - threshold)`` (fires on ``mem - threshold > 0``, strictly). Its ``mem_t``
    plays the role of our ``h_t``, but the reset is applied one step later, after the decay:

    * snnTorch: ``h_t = beta h_{t-1} + x_t - s_{t-1} theta``
    * ours / SpikingJelly: ``h_t = beta (h_{t-1} - s_{t-1} theta) + x_t``

    i.e. per spike snnTorch removes ``theta`` from the next charge and we remove ``beta theta``.
    The spike trains coincide for ``beta = 1`` (IF) and, away from the tie ``h == theta``, with
    snnTorch's ``reset_delay=False`` (reset in the same step; its returned ``mem`` is then our
    ``v``) as long as one subtraction brings the membrane below threshold. There is no exact
    parameter mapping for ``beta < 1``. ``reset_mechanism="zero"`` maps to ``reset="zero"``,
    ``"none"`` to ``reset="none"``; ``Leaky(learn_beta=True)`` to ``learn_beta=True`` (snnTorch
    clamps beta to ``[0, 1]`` in the forward, we use a sigmoid).

    **Norse.** ``LIFBoxCell`` (membrane only) integrates ``v += dt * tau_mem_inv * (v_leak - v +
    x)`` and resets to ``v_reset``: with ``v_leak = v_reset = 0`` that is
    ``LIF(beta=1 - dt * tau_mem_inv, decay_input=True, reset="zero")`` (Norse fires on ``> 0``).
    Norse's ``LIFCell`` is current-based: see :class:`~surrogate_nets.neurons.Synaptic`.

    Shapes: input ``[T, B, ...]`` (``[T, B, N]`` after a Linear, ``[T, B, C, H, W]`` after a conv),
    output spikes ``[T, B, ...]`` (counts ``0..L`` with ``levels = L``), state :class:`LIFState`.
    Recordable traces: ``"s"`` (spikes), ``"h"`` (membrane before reset), ``"v"`` (after reset).

    Args:
        beta: decay in ``(0, 1]`` (float or per-neuron tensor); exclusive with ``tau``.
        tau: membrane time constant in steps (``> 1``); exclusive with ``beta``.
        decay_input: scale the input by ``1 - beta``.
        learn_beta: learn the decay (sigmoid parametrisation, so ``beta`` stays in ``(0, 1)``).
        backend: the :func:`~surrogate_nets.functional.lif_scan` backend (``"auto"``).
        **kwargs: keyword-only, shared by every spiking neuron: ``threshold``,
            ``learn_threshold``, ``surrogate``, ``reset``, ``detach_reset``, ``levels`` (see
            :class:`~surrogate_nets.neurons.base.SpikingNeuron`) and ``shape``, ``num_neurons``,
            ``stateful``, ``record``, ``record_rates`` (see
            :class:`~surrogate_nets.neurons.base.BaseNeuron`).
    """

    State = LIFState
    beta = Constrained("unit", "the membrane decay beta in (0, 1]", floor=DECAY_FLOOR)

    def __init__(self, beta: Union[float, torch.Tensor, None] = None,
                 tau: Union[float, torch.Tensor, None] = None, decay_input: bool = False,
                 learn_beta: bool = False, *, backend: str = "auto", **kwargs):
        super().__init__(**kwargs)
        self._register_decay("beta", beta, tau, "tau", 2.0, learn_beta)
        self.decay_input = bool(decay_input)
        self.backend = _check_backend(backend)

    @property
    def tau(self) -> torch.Tensor:
        """The time constant ``1 / (1 - beta)`` (``inf`` for ``beta = 1``)."""
        return 1 / (1 - self.beta)

    def _per_neuron(self):
        return dict(super()._per_neuron(), beta=self.beta)

    def _beta(self, dtype):
        return self.beta.to(dtype)

    def _prepare(self, dtype):
        return {"beta": self._beta(dtype), "threshold": self.threshold.to(dtype)}

    def _step(self, x_t, state, p):
        s, v, h = lif_step(x_t, state.v, p["beta"], p["threshold"], decay_input=self.decay_input,
                           **self._spike_kw())
        return s, LIFState(v), h

    def _multistep(self, x, state, p, keys):
        alpha = alpha_for(self.surrogate, x[0], "x[0]")
        r = _lif_scan_unchecked(x, state.v, p["beta"], p["threshold"], alpha, self.surrogate,
                                self.reset_mode, self.detach_reset, self.decay_input, self.levels,
                                self.backend)
        return r.spikes, LIFState(r.v), self._scan_traces(keys, r, p["threshold"])

    def extra_repr(self) -> str:
        parts = [_fmt(self, "beta")]
        if self.decay_input:
            parts.append("decay_input=True")
        return ", ".join(parts + [super().extra_repr()])


class PLIF(LIF):
    r"""Parametric LIF (Fang et al., ICCV 2021): :class:`LIF` with ``learn_beta=True`` by default.

    SpikingJelly's ``ParametricLIFNode(init_tau=2.0)`` is ``PLIF(tau=2.0, decay_input=True)``
    (their ``decay_input`` defaults to ``True``): ``H = V + (X - V) * sigmoid(w)``, i.e.
    ``beta = 1 - sigmoid(w)``.
    """

    def __init__(self, beta=None, tau=None, decay_input: bool = False, learn_beta: bool = True, **kwargs):
        super().__init__(beta, tau, decay_input, learn_beta, **kwargs)
