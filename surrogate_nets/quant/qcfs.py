r"""Quantized activations as spike counts: the QCFS correspondence (Bu et al., ICLR 2022).

**Clip-floor-shift.** QCFS trains an ANN with the activation

.. math::
    h(x) = \frac{\lambda}{L}\,\mathrm{clip}\Big(\Big\lfloor \frac{x L}{\lambda} + \varphi \Big\rfloor,\ 0,\ L\Big)

and shows that with the shift :math:`\varphi = 1/2` the expected conversion error to a spiking
network vanishes. That is exactly an unsigned ``QuantAct(levels=L)`` with step ``s = lambda / L``
(our rounding is ``floor(u + 1/2)``, i.e. the shift 1/2); ``lambda`` (QCFS's trainable
threshold) is ``L * s``, trained here by LSQ (or by PACT, whose clip is ``lambda``).

**IF neuron over L steps.** Take an integrate-and-fire neuron with threshold ``theta``, reset by
subtraction, initial membrane ``v_0 = theta / 2`` and a constant input ``x`` for ``T`` steps:

.. math::
    v_t = v_{t-1} + x,\quad o_t = H(v_t - \theta),\quad v_t \leftarrow v_t - \theta\,o_t

For ``0 <= x <= theta`` at most one spike per step and ``v_t`` stays in ``[0, theta)``, so the
count after ``T`` steps is ``n_T = floor(T x / theta + 1/2)``; above ``theta`` the neuron fires
every step (``n_T = T``), below 0 never. Hence

.. math::
    \frac{\theta}{T}\, n_T = \frac{\theta}{T}\,\mathrm{clamp}\Big(\Big\lfloor \frac{x T}{\theta} + \tfrac12 \Big\rfloor,\ 0,\ T\Big)
    = h(x)\quad\text{for } T = L,\ \theta = \lambda

— the rate of the IF neuron over ``L`` steps equals the ``L``-level quantizer, ties included
(``H(0) = 1`` fires at threshold as ``floor(u + 1/2)`` rounds up). For ``T != L`` the equality
holds only in expectation over input phases (QCFS, Theorem 2). :func:`qcfs_to_if` returns the IF
parameters; ``tests/test_quant.py`` checks the equality against a plain IF loop.

**Multi-level spikes.** A neuron that emits up to ``L`` spikes in one step (``levels=L`` of the
spiking neurons, ``surrogate_nets.functional.fire``) outputs ``n = sum_{k=1}^{L} H(h - k theta)
= clamp(floor(h / theta), 0, L)``. Given the QCFS shift as a bias ``h = x + theta/2``, one step
computes the quantizer with step ``theta``:
``theta * fire(x + theta/2, theta, levels=L) == QuantAct(levels=L, init_step=theta)(x)`` —
the ``L``-step binary rate above folded into a single step (tested as well).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from .quantizer import Quantizer


class IFParams(NamedTuple):
    """IF-neuron parameters reproducing a QCFS quantizer as a rate over ``time_steps`` steps.

    ``threshold`` (``[]`` or ``[C]``, the quantizer's ``L * s``), ``v_init = threshold / 2``,
    ``time_steps = L``, ``reset = "subtract"``; the rate is scaled back by
    ``threshold / time_steps`` (``output_scale``, equal to the step ``s``).
    """

    threshold: torch.Tensor
    v_init: torch.Tensor
    time_steps: int
    reset: str
    output_scale: torch.Tensor


def qcfs_to_if(quant_act: Quantizer) -> IFParams:
    """IF parameters whose ``L``-step spike rate times ``threshold / L`` equals ``quant_act``.

    Args:
        quant_act: an unsigned quantizer without offset (``QuantAct(levels=L)``, ``QuantAct(bits)``
            with ``L = 2**bits - 1``, or ``PACT``), already initialised.

    Raises:
        ValueError: for signed, binary or offset quantizers (no IF counterpart with these
            conventions).
    """
    if not isinstance(quant_act, Quantizer):
        raise TypeError(f"quant_act must be a Quantizer (QuantAct/PACT), got {type(quant_act).__name__}")
    if quant_act.signed or quant_act.binary or quant_act.lo != 0:
        raise ValueError(f"QCFS <-> IF needs an unsigned quantizer (codes 0..L), got codes "
                         f"{quant_act.lo}..{quant_act.hi}, signed={quant_act.signed}")
    if quant_act.offset is not None:
        raise ValueError("QCFS <-> IF needs a quantizer without offset (learn_offset=False)")
    L = quant_act.hi
    with torch.no_grad():
        s = quant_act.step.detach().clone()
        theta = s * L
    return IFParams(threshold=theta, v_init=theta / 2, time_steps=L, reset="subtract",
                    output_scale=s)
