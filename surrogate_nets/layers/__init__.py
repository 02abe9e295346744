"""Composition of time-major networks: time folding, Sequential, flatten, temporal dropout, reset."""

from .dropout import TemporalDropout
from .flatten import Flatten
from .sequential import Sequential, is_time_major
from .spike_linear import SpikeLinear, spike_linear
from .state import reset
from .time_distributed import TimeDistributed, fold_time

__all__ = ["TimeDistributed", "fold_time", "Sequential", "Flatten", "TemporalDropout", "reset",
           "is_time_major", "SpikeLinear", "spike_linear"]

# learnable synaptic delays (issue 15)
from .delay import DelayedLinear, DelayState, DelayWidthSchedule, SynapticDelay

__all__ += ["SynapticDelay", "DelayedLinear", "DelayWidthSchedule", "DelayState"]

# spike-input convolution and memory-lean max pooling (issue 11)
from .max_pool import MaxPool2d, max_pool2d
from .spike_conv import SpikeConv2d, spike_conv2d
from .spike_conv_pool import SpikeConvPool2d, spike_conv_max_pool2d

__all__ += ["MaxPool2d", "max_pool2d", "SpikeConv2d", "spike_conv2d", "SpikeConvPool2d", "spike_conv_max_pool2d"]
