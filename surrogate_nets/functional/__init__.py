"""Pure functions and autograd Functions: the spike, the quantizer and the neuron scans."""

from .quantize import StaircaseFunction, level_range, quantize, round_half_up, staircase
from .spike import SpikeFunction, spike

__all__ = [
    "spike", "SpikeFunction", "quantize", "staircase", "StaircaseFunction", "level_range",
    "round_half_up",
]
from .neurons import (
    RESET_MODES, MultiSpikeFunction, alif_step, fire, li_step, lif_step, reset_membrane, rlif_step,
    synaptic_step,
)
from .lif import LIFScanFunction, LIFScanResult, lif_backends, lif_scan, register_lif_backend

__all__ += [
    "RESET_MODES", "fire", "MultiSpikeFunction", "reset_membrane", "lif_step", "li_step",
    "alif_step", "synaptic_step", "rlif_step", "lif_scan", "LIFScanFunction", "LIFScanResult",
    "register_lif_backend", "lif_backends",
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
