r"""Leaky integrate-and-fire neuron (and PLIF, its learnable-time-constant form)."""

from __future__ import annotations

from typing import NamedTuple, Optional, Union

import torch

from ..functional.lif import _lif_scan_unchecked, lif_step
from ..functional.lif_low_mem import check_save_dtype
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

    Time constant: ``tau`` gives ``beta = 1 - 1/tau`` (``tau > 1``), as in PLIF (Fang et al.,
    "Incorporating learnable membrane time constant to enhance learning of spiking neural
    networks", ICCV 2021); ``beta`` may be given directly instead. Default ``tau = 2``
    (``beta = 0.5``). ``learn_beta=True`` learns ``beta = sigmoid(raw_beta)`` (PLIF:
    ``1/tau = sigmoid(w)``, i.e. ``raw_beta = -w``), scalar or per neuron (``shape`` /
    ``num_neurons``). The reset acts in the step that fires (``"subtract"``: ``v = h - s theta``,
    then the next step decays ``v``).

    Equivalent neurons in snnTorch, SpikingJelly and Norse, and where their reset timing and
    firing condition differ: see docs/coming-from.md.

    Shapes: input ``[T, B, ...]`` (``[T, B, N]`` after a Linear, ``[T, B, C, H, W]`` after a conv),
    output spikes ``[T, B, ...]`` (counts ``0..L`` with ``levels = L``), state :class:`LIFState`.
    Recordable traces: ``"s"`` (spikes), ``"h"`` (membrane before reset), ``"v"`` (after reset).

    Args:
        beta: decay in ``(0, 1]`` (float or per-neuron tensor); exclusive with ``tau``.
        tau: membrane time constant in steps (``> 1``); exclusive with ``beta``.
        decay_input: scale the input by ``1 - beta``.
        learn_beta: learn the decay (sigmoid parametrisation, so ``beta`` stays in ``(0, 1)``).
        backend: the :func:`~surrogate_nets.functional.lif_scan` backend (``"auto"``).
        save_dtype: opt-in reduced-memory backward of the multi-step scan (``torch.bfloat16`` or
            ``torch.float16``: the membrane is saved as its distance to threshold in that dtype;
            see :func:`~surrogate_nets.functional.lif_scan` for the measured gradient error).
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
                 learn_beta: bool = False, *, backend: str = "auto",
                 save_dtype: Optional[torch.dtype] = None, **kwargs):
        super().__init__(**kwargs)
        self._register_decay("beta", beta, tau, "tau", 2.0, learn_beta)
        self.decay_input = bool(decay_input)
        self.backend = _check_backend(backend)
        if save_dtype is not None:
            check_save_dtype(save_dtype, self.backend)
        self.save_dtype = save_dtype

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
                                self.backend, getattr(self, "save_dtype", None))
        return r.spikes, LIFState(r.v), self._scan_traces(keys, r, p["threshold"])

    def extra_repr(self) -> str:
        parts = [_fmt(self, "beta")]
        if self.decay_input:
            parts.append("decay_input=True")
        return ", ".join(parts + [super().extra_repr()])


class PLIF(LIF):
    r"""Parametric LIF (Fang et al., ICCV 2021): :class:`LIF` with ``learn_beta=True`` by default.

    With ``decay_input=True``: ``h_t = v_{t-1} + (x_t - v_{t-1}) sigmoid(w)``, i.e.
    ``beta = 1 - sigmoid(w)``. Peer equivalents: see docs/coming-from.md.
    """

    def __init__(self, beta=None, tau=None, decay_input: bool = False, learn_beta: bool = True, **kwargs):
        super().__init__(beta, tau, decay_input, learn_beta, **kwargs)
