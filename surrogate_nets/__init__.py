"""surrogate_nets: spiking and quantized neural networks with learnable surrogate gradients.

Layers of the library (torch.nn style): :mod:`surrogate` (relaxations of the step),
:mod:`functional` (autograd Functions and scans), :mod:`neurons` and :mod:`quant` (modules),
:mod:`layers` (composition over time), :mod:`losses`, :mod:`encode`, :mod:`data` and
:mod:`train` (the loop behind the ``surrogate-nets`` command line).
"""

from . import encode, functional, layers, losses, neurons, quant, stats, surrogate
from .functional import quantize, spike
from . import kernels  # registers the lazy fused backends (imports neither triton nor numba)

__version__ = "0.1.0"

__all__ = [
    "surrogate", "functional", "neurons", "quant", "layers", "losses", "encode", "data", "train",
    "nir", "stats",
    "spike", "quantize", "__version__",
]


def __getattr__(name):
    # ``data`` (tonic, numpy I/O), ``train`` (tqdm, distributed) and ``nir`` (the optional nir
    # package) load on first use.
    if name in ("data", "train", "nir"):
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
