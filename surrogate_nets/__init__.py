"""surrogate_nets: spiking and quantized neural networks with learnable surrogate gradients."""

from . import functional, surrogate
from .functional import quantize, spike

__version__ = "0.1.0"

__all__ = ["functional", "surrogate", "spike", "quantize", "__version__"]
