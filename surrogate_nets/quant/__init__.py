r"""Quantized activations and layers on the surrogate-staircase mechanism.

A ``b``-bit quantizer is the staircase of the spike (``surrogate_nets.functional.staircase``)
scaled by a learnable step: ``q = s R((x - b)/s) + b``. The forward is exact; the backward
differentiates the surrogate relaxation of ``R`` and everything around it exactly, so one
mechanism trains

* the step (LSQ, Esser et al. ICLR 2020: exactly LSQ with the boxcar ``"straight_through"``),
* an offset (LSQ+, Bhalgat et al. 2020), a clip (PACT, Choi et al. 2018),
* the surrogate's sharpness (``learn_alpha=True``; DSQ, Gong et al. ICCV 2019, is the
  ``"dspike"`` surrogate with a learnable alpha).

Modules (one concept per file):

* :class:`QuantAct` (``act.py``): activations, unsigned/signed, per tensor or per channel.
* :class:`QuantWeight` (``weight.py``): signed weights, per output channel; 1 bit = binary.
* :class:`PACT` (``pact.py``): learnable clip ``[0, c]``.
* :class:`QuantLinear` (``linear.py``), :class:`QuantConv1d`, :class:`QuantConv2d` (``conv.py``):
  drop-in float layers with ``from_float`` and ``export_int`` (``layer.py``).
* :func:`qcfs_to_if` (``qcfs.py``): an ``L``-level quantizer is the rate of an IF neuron over
  ``L`` steps (QCFS, Bu et al. ICLR 2022).
* :func:`fake_quantize` / :class:`FakeQuantFunction` (``fake_quant.py``): the fused autograd
  Function behind all of them; :class:`Quantizer` (``quantizer.py``): the shared conventions.
"""

from .act import QuantAct
from .conv import QuantConv1d, QuantConv2d
from .fake_quant import FakeQuantFunction, fake_quantize, lsq_grad_scale, lsq_init_step
from .layer import IntExport, QuantLayerMixin
from .linear import QuantLinear
from .pact import PACT
from .qcfs import IFParams, qcfs_to_if
from .quantizer import Quantizer, code_range
from .weight import QuantWeight

__all__ = [
    "QuantAct", "QuantWeight", "PACT", "QuantLinear", "QuantConv1d", "QuantConv2d", "IntExport",
    "QuantLayerMixin", "Quantizer", "code_range", "fake_quantize", "FakeQuantFunction",
    "lsq_grad_scale", "lsq_init_step", "qcfs_to_if", "IFParams",
]
