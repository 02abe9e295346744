"""The command line's model zoo: small MLP, conv and recurrent SNNs of the library's neurons.

Every model is a :class:`surrogate_nets.layers.Sequential` that maps ``[T, B, *input_shape]`` to
``[T, B, num_classes]``: output spikes (``readout="spike"``), the membrane trace of a leaky
integrator (``"li"``, for ``membrane-ce``) or the per-step logits of the last linear layer
(``"linear"``, for ``tet``). ``build_model`` is deterministic given the torch seed.

=============  ======================================================================
``mlp``        Flatten, ``layers`` x (Linear(hidden) -> neuron), Linear(classes) -> readout
``conv``       2 x (Conv3x3 -> neuron -> MaxPool2) [32, 64 channels], Flatten, Linear -> readout
``recurrent``  Flatten, Linear(hidden) -> RLIF (all-to-all recurrence), Linear -> readout
=============  ======================================================================

``weight_bits`` swaps ``nn.Linear``/``nn.Conv2d`` for :class:`~surrogate_nets.quant.QuantLinear` /
:class:`~surrogate_nets.quant.QuantConv2d` (LSQ weights, per output channel); ``act_bits`` puts
a signed :class:`~surrogate_nets.quant.QuantAct` on every synaptic current (the output of each
linear/conv layer, i.e. the neuron's input), so that a fixed-point neuron sees quantized currents.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

from torch import nn

from .._validate import check_choice, check_int, check_positive

MODELS = ("mlp", "conv", "recurrent")
#: Hidden-neuron kinds of the zoo: name -> builder ``f(neurons_module, tau, surrogate)``.
#: Adding an entry here adds it to ``--neuron``.
NEURON_BUILDERS = {
    "lif": lambda n, tau, sg: n.LIF(tau=tau, surrogate=sg),
    "if": lambda n, tau, sg: n.IF(surrogate=sg),
    "plif": lambda n, tau, sg: n.PLIF(tau=tau, surrogate=sg),
    "alif": lambda n, tau, sg: n.ALIF(tau=tau, surrogate=sg),
    "synaptic": lambda n, tau, sg: n.Synaptic(tau=tau, tau_syn=tau, surrogate=sg),
}
NEURONS = tuple(NEURON_BUILDERS)
READOUTS = ("spike", "li", "linear")
#: Readout that fits a built-in loss (``readout="auto"``); unknown losses get spikes.
LOSS_READOUT = {"membrane-ce": "li", "mse-membrane": "li", "tet": "linear", "ce": "linear"}


def readout_for(loss_name: str) -> str:
    """The readout ``"auto"`` chooses for a loss name."""
    from ..losses import canonical
    return LOSS_READOUT.get(canonical(loss_name) or "", "spike")


def make_neuron(kind: str, *, surrogate: str = "atan", alpha: Optional[float] = None,
                learn_alpha: bool = False, tau: float = 2.0, num_neurons: Optional[int] = None,
                recurrent: bool = False, adaptive_alpha: Optional[float] = None):
    """One neuron module of the given kind with its own surrogate instance (``adaptive_alpha=q``:
    the family wrapped in :class:`~surrogate_nets.surrogate.Adaptive` with ``fraction=q``)."""
    from .. import neurons
    from ..surrogate import get as get_surrogate

    kw = {} if alpha is None else {"alpha": alpha}
    if adaptive_alpha is not None and learn_alpha:
        raise ValueError("adaptive_alpha and learn_alpha both move the surrogate sharpness; "
                         f"choose one, got adaptive_alpha={adaptive_alpha!r}, learn_alpha=True")
    sg = get_surrogate(surrogate, learnable=learn_alpha, **kw)
    if adaptive_alpha is not None:
        sg = sg.adaptive(fraction=adaptive_alpha)
    if recurrent:
        return neurons.RLIF(tau=tau, num_neurons=num_neurons, surrogate=sg)
    if kind not in NEURON_BUILDERS:
        raise ValueError(f"neuron must be one of {list(NEURONS)}, got {kind!r}")
    return NEURON_BUILDERS[kind](neurons, tau, sg)


def _linear(n_in, n_out, weight_bits):
    if weight_bits is None:
        return nn.Linear(n_in, n_out)
    from ..quant import QuantLinear
    return QuantLinear(n_in, n_out, bits=weight_bits)


def _conv(c_in, c_out, weight_bits):
    if weight_bits is None:
        return nn.Conv2d(c_in, c_out, 3, padding=1)
    from ..quant import QuantConv2d
    return QuantConv2d(c_in, c_out, 3, padding=1, bits=weight_bits)


def _act(act_bits):
    from ..quant import QuantAct
    return QuantAct(bits=act_bits, signed=True)


def build_model(model: str, input_shape: Sequence[int], num_classes: int, *, neuron: str = "lif",
                surrogate: str = "atan", alpha: Optional[float] = None, learn_alpha: bool = False,
                tau: float = 2.0, hidden: int = 128, layers: int = 1, channels: Sequence[int] = (32, 64),
                readout: str = "spike", weight_bits: Optional[int] = None,
                act_bits: Optional[int] = None, adaptive_alpha: Optional[float] = None) -> nn.Module:
    """Build a zoo model (see the module docstring).

    Args:
        model: ``"mlp"``, ``"conv"`` or ``"recurrent"``.
        input_shape: per-step input shape (``[C, H, W]`` frames for ``conv``; anything for the
            others, which flatten it).
        num_classes: output size ``C``.
        neuron: hidden neuron kind (:data:`NEURONS`); the recurrent layer is always an RLIF.
        surrogate, alpha, learn_alpha: surrogate family (registry name), sharpness (``None``:
            the family default) and whether it is learned; one surrogate instance per neuron layer.
        adaptive_alpha: ``q`` in (0, 1): set alpha from data instead
            (:class:`~surrogate_nets.surrogate.Adaptive` with ``fraction=q``, started at
            ``alpha``); not with ``learn_alpha``.
        tau: membrane time constant in steps (``beta = 1 - 1/tau``).
        hidden, layers: width and number of hidden layers of ``mlp`` (``recurrent``: width).
        channels: conv channels of the two conv blocks.
        readout: ``"spike"``, ``"li"`` or ``"linear"`` (see the module docstring).
        weight_bits, act_bits: quantize weights / synaptic currents (``None``: float).

    Returns:
        a :class:`surrogate_nets.layers.Sequential`.
    """
    from .. import layers as sn_layers, neurons

    model = check_choice(model, "model", MODELS)
    neuron = check_choice(neuron, "neuron", NEURONS)
    readout = check_choice(readout, "readout", READOUTS)
    num_classes = check_int(num_classes, "num_classes", minimum=1)
    hidden = check_int(hidden, "hidden", minimum=1)
    layers_n = check_int(layers, "layers", minimum=1)
    check_positive(tau, "tau")
    if neuron != "if" and not tau > 1:
        raise ValueError(f"tau must be > 1 time step (beta = 1 - 1/tau), got {tau!r}")
    from ..quant.quantizer import MAX_BITS
    for v, name in ((weight_bits, "weight_bits"), (act_bits, "act_bits")):
        if v is not None:
            check_int(v, name, minimum=1, maximum=MAX_BITS)
    input_shape = tuple(int(s) for s in input_shape)
    n_in = math.prod(input_shape)

    def neu(recurrent=False, n=None):
        return make_neuron(neuron, surrogate=surrogate, alpha=alpha, learn_alpha=learn_alpha, tau=tau,
                           num_neurons=n, recurrent=recurrent, adaptive_alpha=adaptive_alpha)

    def cur(mod):  # a synaptic layer, with its current quantized when act_bits is set
        return [mod] if act_bits is None else [mod, _act(act_bits)]

    mods = []
    if model == "conv":
        if len(input_shape) != 3:
            raise ValueError(f"model 'conv' needs image frames [C, H, W] per step, got input shape "
                             f"{input_shape}; use --model mlp or recurrent for this data set")
        c, h, w = input_shape
        if min(h, w) >= 64:  # large sensors (DVS Gesture 128x128): pool first
            mods.append(nn.AvgPool2d(4))
            h, w = h // 4, w // 4
        c1, c2 = (int(x) for x in channels)
        mods += cur(_conv(c, c1, weight_bits)) + [neu(), nn.MaxPool2d(2)]
        mods += cur(_conv(c1, c2, weight_bits)) + [neu(), nn.MaxPool2d(2)]
        h, w = h // 2 // 2, w // 2 // 2
        if h < 1 or w < 1:
            raise ValueError(f"input frames {input_shape} are too small for two 2x2 poolings")
        mods += [sn_layers.Flatten()]
        n_last = c2 * h * w
    elif model == "mlp":
        mods.append(sn_layers.Flatten())
        n_last = n_in
        for _ in range(layers_n):
            mods += cur(_linear(n_last, hidden, weight_bits)) + [neu()]
            n_last = hidden
    else:
        mods.append(sn_layers.Flatten())
        mods += cur(_linear(n_in, hidden, weight_bits)) + [neu(recurrent=True, n=hidden)]
        n_last = hidden
    mods += cur(_linear(n_last, num_classes, weight_bits))
    if readout == "spike":
        mods.append(neu())
    elif readout == "li":
        mods.append(neurons.LI(tau=tau))
    return sn_layers.Sequential(*mods)
