r"""NIR (Neuromorphic Intermediate Representation) export and import.

``export(model, sample_input) -> nir.NIRGraph`` and ``load(graph) -> model`` move networks between
this library and the tools that read NIR (snnTorch, SpikingJelly, Norse, Lava/Loihi, SpiNNaker,
Xylo, ...; Pedersen et al., "Neuromorphic intermediate representation: a unified instruction set
for interoperable brain-inspired computing", Nature Communications 2024). Needs the optional
``nir`` package (``pip install surrogate-nets[nir]``); importing :mod:`surrogate_nets` does not
import it.

The discrete <-> continuous-time mapping (``tau = dt / (1 - beta)``, ``r = 1 / (1 - beta)``, ...)
and what NIR cannot represent are documented in :mod:`surrogate_nets.nir.neurons`; the layers in
:mod:`surrogate_nets.nir.layers`.

Example::

    import nir
    from surrogate_nets import nir as snir

    graph = snir.export(model, torch.zeros(T, 1, 2, 16, 16))   # dt=1e-4 s per step
    nir.write("model.nir", graph)
    model2 = snir.load(nir.read("model.nir"))                  # same spikes as model
"""

from .to_nir import DEFAULT_DT, export
from .from_nir import load
from .modules import GraphModel, Scale, SumPool2d

__all__ = ["export", "load", "DEFAULT_DT", "GraphModel", "Scale", "SumPool2d"]
