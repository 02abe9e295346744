"""Pure functions and autograd Functions: the spike, the quantizer and the neuron scans."""

from .quantize import StaircaseFunction, level_range, quantize, round_half_up, staircase
from .spike import SpikeFunction, spike

__all__ = [
    "spike", "SpikeFunction", "quantize", "staircase", "StaircaseFunction", "level_range",
    "round_half_up",
]
