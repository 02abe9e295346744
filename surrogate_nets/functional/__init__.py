"""Pure functions and autograd Functions: the staircase, spikes, the quantizer and the neuron scans.

One file per concept: :mod:`.staircase` (the one staircase and its surrogate sums), :mod:`.spike`
(``spike``, ``fire``, ``reset_membrane``), :mod:`.quantize`, one file per neuron (:mod:`.lif`,
:mod:`.li`, :mod:`.alif`, :mod:`.synaptic`, :mod:`.rlif`: the step function and the
whole-sequence scan) and :mod:`.backends` (the registry every scan dispatches through).
"""

from .quantize import StaircaseFunction, level_range, quantize, round_half_up, staircase
from .spike import RESET_MODES, MultiSpikeFunction, SpikeFunction, fire, reset_membrane, spike
from .lif import LIFScanFunction, LIFScanResult, lif_backends, lif_scan, lif_step, register_lif_backend
from .li import LIScanFunction, li_scan, li_step
from .alif import ALIFScanFunction, ALIFScanResult, alif_scan, alif_step
from .synaptic import SynapticScanResult, synaptic_scan, synaptic_step
from .rlif import rlif_step
from .backends import dispatch, list_backends, register_backend, unregister_backend

__all__ = [
    "spike", "SpikeFunction", "quantize", "staircase", "StaircaseFunction", "level_range",
    "round_half_up",
    "RESET_MODES", "fire", "MultiSpikeFunction", "reset_membrane", "lif_step", "li_step",
    "alif_step", "synaptic_step", "rlif_step", "lif_scan", "LIFScanFunction", "LIFScanResult",
    "register_lif_backend", "lif_backends",
    "li_scan", "LIScanFunction", "alif_scan", "ALIFScanFunction", "ALIFScanResult", "synaptic_scan",
    "SynapticScanResult", "register_backend", "unregister_backend", "list_backends", "dispatch",
]

# learnable synaptic delays (issue 15)
from .delay import (
    DelayState, anneal, delay_from_raw, delay_kernel, delay_shift, delay_step, raw_from_delay, round_delay,
)
from .delayed_linear import delayed_linear, delayed_linear_step

__all__ += [
    "DelayState", "anneal", "delay_from_raw", "delay_kernel", "delay_shift", "delay_step", "raw_from_delay",
    "round_delay", "delayed_linear", "delayed_linear_step",
]
