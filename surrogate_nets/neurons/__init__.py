"""Spiking (and one non-spiking) neuron modules; see :mod:`surrogate_nets.neurons.base` for the
calling convention (``[T, B, ...]`` multi-step, ``step``, state NamedTuples, streaming, recording).

=============  ==========================================================================
``IF``         integrate-and-fire (``beta = 1``), fused multi-step scan
``LIF``        leaky integrate-and-fire (``beta`` or ``tau``; learnable = PLIF), fused scan
``PLIF``       ``LIF`` with ``learn_beta=True``
``ALIF``       adaptive threshold (LSNN, Bellec et al. 2018)
``Synaptic``   current-based LIF (two decays)
``RLIF``       recurrent LIF (all-to-all ``nn.Linear`` or one-to-one weights)
``LI``         non-spiking leaky integrator readout (returns the membrane trace)
=============  ==========================================================================

Every spiking neuron takes ``levels=L`` for multi-level (integer count) spikes.
"""

from .alif import ALIF, ALIFState
from .base import BaseNeuron, SpikingNeuron, collect, set_record
from .if_neuron import IF
from .li import LI, LIState
from .lif import LIF, PLIF, LIFState
from .parametrize import Constrained
from .rlif import RLIF, RLIFState
from .synaptic import Synaptic, SynapticState

__all__ = [
    "BaseNeuron", "SpikingNeuron", "IF", "LIF", "PLIF", "ALIF", "Synaptic", "RLIF", "LI",
    "LIFState", "ALIFState", "SynapticState", "RLIFState", "LIState", "collect", "set_record",
    "Constrained",
]
