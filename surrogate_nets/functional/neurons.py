r"""Single-step neuron dynamics (compatibility module: each neuron now has its own file).

``lif_step`` lives in :mod:`~surrogate_nets.functional.lif`, ``li_step`` in
:mod:`~surrogate_nets.functional.li`, ``alif_step`` in :mod:`~surrogate_nets.functional.alif`,
``synaptic_step`` in :mod:`~surrogate_nets.functional.synaptic`, ``rlif_step`` in
:mod:`~surrogate_nets.functional.rlif`; ``fire``, ``reset_membrane`` and ``MultiSpikeFunction``
next to ``spike`` in :mod:`~surrogate_nets.functional.spike`. Every name importable from here
before still is.

Conventions shared by every spiking step (``theta`` the threshold, ``L`` the number of levels):

.. math::
    h_t &= \beta\,v_{t-1} + x_t \quad(\text{or } \beta\,v_{t-1} + (1-\beta)\,x_t \text{ with decay\_input})\\
    s_t &= \sum_{k=1}^{L} H(h_t - k\,\theta) \in \{0, \dots, L\}\qquad(L = 1:\ s_t = H(h_t - \theta))\\
    v_t &= h_t - s_t\,\theta \ (\text{subtract}),\quad h_t\,(1 - H(h_t-\theta)) \ (\text{zero}),\quad h_t \ (\text{none})

``h`` is the membrane before the spike/reset ("charge"), ``v`` after the reset.
``detach_reset=True`` replaces ``s`` by ``stop_grad(s)`` inside the reset (Zenke & Vogels,
Neural Computation 2021).
"""

from ._neuron import charge as _charge  # noqa: F401  (old private names)
from ._neuron import check_common as _check_common  # noqa: F401
from ._neuron import check_state as _check_state  # noqa: F401
from .alif import alif_step
from .li import li_step
from .lif import lif_step
from .rlif import rlif_step
from .spike import _as_tensor  # noqa: F401
from .spike import RESET_MODES, MultiSpikeFunction, fire, reset_membrane
from .synaptic import synaptic_step

__all__ = [
    "RESET_MODES", "fire", "MultiSpikeFunction", "reset_membrane", "lif_step", "li_step",
    "alif_step", "synaptic_step", "rlif_step",
]
