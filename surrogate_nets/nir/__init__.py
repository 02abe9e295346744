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

Delays (:mod:`surrogate_nets.nir.delays`): NIR's ``Delay`` is an exact shift
``y(t) = x(t - tau)``. A :class:`~surrogate_nets.layers.SynapticDelay` with integer delays ``d``
(steps) exports as ``Delay(delay = d * dt)``, broadcast to the per-sample shape. A
:class:`~surrogate_nets.layers.DelayedLinear` exports as one branch per distinct integer delay
``k``, ``Delay(k * dt) -> Linear(W_k)``, where ``W_k`` keeps the synapses with delay ``k``; NIR
sums the branches into the target (``y_t = b + sum_k W_k x_{t-k}``). Fractional delays and the
Gaussian kernel are not exact shifts, so export raises a ``ValueError`` asking for ``.round()``
first (on a copy, to keep the learnable model). ``load`` reads ``Delay`` as a fixed-delay
``SynapticDelay`` (``delay / dt`` must be whole steps) and folds exported branches back into one
``DelayedLinear``: identical spikes.

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
