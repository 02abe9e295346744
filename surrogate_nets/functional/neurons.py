r"""Single-step neuron dynamics as pure functions (the math behind :mod:`surrogate_nets.neurons`).

Each ``*_step`` function maps one time step's input ``x_t`` ``[B, ...]`` and the previous state to
the output and the new state; it holds no state and is differentiated by autograd (the spike
through :func:`~surrogate_nets.functional.spike`'s surrogate). The modules in
:mod:`surrogate_nets.neurons` are thin wrappers that own the parameters and loop over time;
:func:`~surrogate_nets.functional.lif_scan` is the fused whole-sequence version of
:func:`lif_step` with a hand-written BPTT backward.

Conventions shared by every spiking step (``theta`` the threshold, ``L`` the number of levels):

.. math::
    h_t &= \beta\,v_{t-1} + x_t \quad(\text{or } \beta\,v_{t-1} + (1-\beta)\,x_t \text{ with decay\_input})\\
    s_t &= \sum_{k=1}^{L} H(h_t - k\,\theta) \in \{0, \dots, L\}\qquad(L = 1:\ s_t = H(h_t - \theta))\\
    v_t &= h_t - s_t\,\theta \ (\text{subtract}),\quad h_t\,(1 - H(h_t-\theta)) \ (\text{zero}),\quad h_t \ (\text{none})

``h`` is the membrane before the spike/reset ("charge"), ``v`` after the reset.
``detach_reset=True`` replaces ``s`` by ``stop_grad(s)`` inside the reset (Zenke & Vogels,
Neural Computation 2021, found this helps; SpikingJelly's ``detach_reset``).
"""

from __future__ import annotations

from typing import Callable, Tuple, Union

import torch

from .._validate import check_choice, check_float_tensor, check_int, check_positive, describe, sum_to_shape
from ..surrogate import Surrogate
from ._common import alpha_for, alpha_grad, auto_numel, resolve_surrogate
from .spike import spike

__all__ = [
    "RESET_MODES", "fire", "MultiSpikeFunction", "reset_membrane", "lif_step", "li_step",
    "alif_step", "synaptic_step", "rlif_step",
]

#: The reset modes every spiking neuron accepts.
RESET_MODES = ("subtract", "zero", "none")

Scalar = Union[float, torch.Tensor]


def _as_tensor(value: Scalar, like: torch.Tensor) -> torch.Tensor:
    """``value`` as a tensor in ``like``'s dtype and device (differentiable if it already is a tensor)."""
    if isinstance(value, torch.Tensor):
        return value.to(like.dtype)
    return torch.tensor(float(value), dtype=like.dtype, device=like.device)


class MultiSpikeFunction(torch.autograd.Function):
    r"""Multi-level spike ``s = sum_{k=1}^{L} H(h - k theta)`` with the surrogate summed over the levels.

    Backward (``P`` the surrogate relaxation):

    .. math::
        \partial s/\partial h := \sum_k P'(h - k\theta),\quad
        \partial s/\partial \theta := -\sum_k k\,P'(h - k\theta),\quad
        \partial s/\partial \alpha := \sum_k \partial_\alpha P(h - k\theta)

    i.e. exactly the gradient of ``sum_k spike(h - k * theta)``, computed in one node. ``relaxed``
    returns ``sum_k P(h - k theta)`` in the forward (for gradcheck).
    """

    @staticmethod
    def forward(ctx, h, threshold, alpha, surrogate: Surrogate, levels: int, relaxed: bool = False):
        ctx.surrogate, ctx.levels, ctx.numel = surrogate, levels, auto_numel()
        ctx.save_for_backward(h, threshold, alpha)
        th = threshold.to(h.dtype)
        out = torch.zeros_like(h)
        for k in range(1, levels + 1):
            z = h - th * k
            out = out + (surrogate.primitive(z, alpha.to(h.dtype)) if relaxed else (z >= 0).to(h.dtype))
        return out

    @staticmethod
    def backward(ctx, grad):
        h, threshold, alpha = ctx.saved_tensors
        s, levels = ctx.surrogate, ctx.levels
        th, a = threshold.to(h.dtype), alpha.to(h.dtype)
        need_h, need_th, need_a = ctx.needs_input_grad[:3]
        sig = kap = rho = None
        for k in range(1, levels + 1):
            z = h - th * k
            if need_h or need_th:
                d = s.derivative(z, a)
                sig = d if sig is None else sig + d
                kap = d * k if kap is None else kap + d * k
            if need_a:
                r = s.d_alpha(z, a)
                rho = r if rho is None else rho + r
        gh = grad * sig if need_h else None
        gth = None
        if need_th:
            gth = sum_to_shape((-grad * kap).to(threshold.dtype), threshold.shape)
        ga = alpha_grad(s, grad * rho, alpha, ctx.numel) if need_a else None
        return gh, gth, ga, None, None, None


def fire(h: torch.Tensor, threshold: Scalar = 1.0, surrogate: Union[str, Surrogate, None] = None,
         levels: int = 1, relaxed: bool = False) -> torch.Tensor:
    r"""Spike (count) of a membrane ``h``: ``sum_{k=1}^{L} H(h - k theta)`` with a surrogate gradient.

    ``levels = 1`` is exactly ``spike(h - threshold, surrogate)`` (forward, tie ``h == theta``
    fires, and every gradient). ``levels = L > 1`` emits integer counts ``0..L``: the forward
    equals ``clamp(floor(h / theta), 0, L)`` (the staircase
    ``functional.staircase(h / theta - 1/2, L)``), and the backward is the surrogate placed at every
    level boundary ``h = k theta`` *in membrane units* (see :class:`MultiSpikeFunction`). Because
    the surrogate is applied to ``h - k theta`` and not to ``h / theta - k``, ``L = 1`` coincides
    with the binary spike for every threshold, and for ``theta = 1`` the gradient equals that of
    ``staircase(h - 1/2, L)``. Multi-level ("integer" or "burst") spikes: cf. Feng et al., IJCAI
    2022 (multi-level firing), Luo et al., ECCV 2024 (integer-valued training, I-LIF).

    Args:
        h: membrane ``[*]`` (floating).
        threshold: positive float or tensor broadcastable to ``h`` (possibly learnable).
        surrogate: instance, registry name or ``None`` (``ATan(2)``).
        levels: maximum spike count ``L >= 1``.
        relaxed: use the relaxation ``P`` in the forward (for gradient checks).
    """
    check_float_tensor(h, "h")
    levels = check_int(levels, "levels", minimum=1)
    if not isinstance(threshold, torch.Tensor):
        check_positive(threshold, "threshold")  # tensors: kept positive by their owner (no host sync)
    s = resolve_surrogate(surrogate)
    th = _as_tensor(threshold, h)
    if levels == 1:
        return spike(h - th, s, relaxed)
    return MultiSpikeFunction.apply(h, th, alpha_for(s, h, "h"), s, int(levels), bool(relaxed))


def reset_membrane(h: torch.Tensor, s: torch.Tensor, threshold: Scalar, reset: str = "subtract",
                   detach_reset: bool = False, levels: int = 1,
                   surrogate: Union[str, Surrogate, None] = None, relaxed: bool = False) -> torch.Tensor:
    r"""The membrane after the spike: ``h - s theta`` / ``h (1 - H(h - theta))`` / ``h``.

    ``s`` is the output of :func:`fire`. For ``reset="zero"`` with ``levels > 1`` the first-level
    spike ``H(h - theta)`` is recomputed (with its own surrogate) so that ``1 - s`` never goes
    negative; with ``levels = 1`` it is ``s`` itself.
    """
    if reset == "none":
        return h
    th = _as_tensor(threshold, h)
    if reset == "subtract":
        r = s.detach() if detach_reset else s
        return h - r * th
    if reset == "zero":
        if levels == 1:
            r1 = s
        elif detach_reset:
            r1 = ((h - th) >= 0).to(h.dtype) if not relaxed else fire(h, th, surrogate, 1, relaxed)
        else:
            r1 = fire(h, th, surrogate, 1, relaxed)
        if detach_reset:
            r1 = r1.detach()
        return h * (1 - r1)
    check_choice(reset, "reset", RESET_MODES)
    raise AssertionError("unreachable")


def _charge(x: torch.Tensor, v: torch.Tensor, beta: torch.Tensor, decay_input: bool) -> torch.Tensor:
    """``beta * v + x`` or ``beta * v + (1 - beta) * x``."""
    return beta * v + ((1 - beta) * x if decay_input else x)


def _check_common(x, reset, levels, **state):
    check_float_tensor(x, "x")
    check_choice(reset, "reset", RESET_MODES)
    check_int(levels, "levels", minimum=1)
    _check_state(x, **state)


def _check_state(x, **state):
    """Each state tensor must have exactly ``x``'s shape: never a silent broadcast."""
    for name, t in state.items():
        check_float_tensor(t, name)
        if t.shape != x.shape:
            raise ValueError(f"{name} must have the shape of x {tuple(x.shape)}, got {describe(t)}")


def lif_step(x: torch.Tensor, v: torch.Tensor, beta: Scalar, threshold: Scalar = 1.0,
             surrogate: Union[str, Surrogate, None] = None, reset: str = "subtract",
             detach_reset: bool = False, decay_input: bool = False, levels: int = 1,
             relaxed: bool = False) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""One step of the leaky integrate-and-fire neuron.

    .. math::
        h_t = \beta v_{t-1} + x_t\ \ (\text{decay\_input: } \beta v_{t-1} + (1-\beta) x_t),\quad
        s_t = \textstyle\sum_{k=1}^{L} H(h_t - k\theta),\quad v_t = \mathrm{reset}(h_t, s_t)

    ``beta = 1`` is the integrate-and-fire neuron. Shapes: ``x``, ``v`` ``[B, ...]``; ``beta``
    and ``threshold`` floats or tensors broadcastable to ``[B, ...]``.

    Returns:
        ``(s_t, v_t, h_t)``: the spikes, the membrane after reset, the membrane before reset.
    """
    _check_common(x, reset, levels, v=v)
    s_ = resolve_surrogate(surrogate)
    b = _as_tensor(beta, x)
    h = _charge(x, v, b, decay_input)
    s = fire(h, threshold, s_, levels, relaxed)
    return s, reset_membrane(h, s, threshold, reset, detach_reset, levels, s_, relaxed), h


def li_step(x: torch.Tensor, v: torch.Tensor, beta: Scalar, decay_input: bool = False) -> torch.Tensor:
    r"""One step of the non-spiking leaky integrator: ``v_t = beta v_{t-1} + x_t`` (or ``(1 - beta) x_t``)."""
    check_float_tensor(x, "x")
    _check_state(x, v=v)
    return _charge(x, v, _as_tensor(beta, x), decay_input)


def alif_step(x: torch.Tensor, v: torch.Tensor, a: torch.Tensor, beta: Scalar, rho: Scalar,
              threshold: Scalar = 1.0, adaptation: Scalar = 0.1,
              surrogate: Union[str, Surrogate, None] = None, reset: str = "subtract",
              detach_reset: bool = False, decay_input: bool = False, levels: int = 1,
              relaxed: bool = False):
    r"""One step of the adaptive LIF neuron (LSNN, Bellec et al., NeurIPS 2018).

    .. math::
        h_t &= \beta v_{t-1} + x_t,\qquad \theta_t = \theta_0 + \beta_a\,a_{t-1}\\
        s_t &= \textstyle\sum_{k=1}^{L} H(h_t - k\,\theta_t),\qquad v_t = \mathrm{reset}(h_t, s_t; \theta_t)\\
        a_t &= \rho\,a_{t-1} + s_t

    The adaptation trace ``a`` decays with ``rho`` and rises by one per spike; the threshold is
    raised by ``adaptation`` (``beta_a``) per unit of ``a``. Bellec et al. write
    ``b_t = rho b_{t-1} + (1 - rho) z_t`` and ``A_t = b_0 + beta b_t``: their ``beta`` is
    ``beta_a / (1 - rho)``. Subtract-reset removes the current adaptive threshold ``theta_t``
    (times the spike count).

    Returns:
        ``(s_t, v_t, a_t, h_t)``.
    """
    _check_common(x, reset, levels, v=v, a=a)
    s_ = resolve_surrogate(surrogate)
    b = _as_tensor(beta, x)
    th = _as_tensor(threshold, x) + _as_tensor(adaptation, x) * a
    h = _charge(x, v, b, decay_input)
    s = fire(h, th, s_, levels, relaxed)
    v_new = reset_membrane(h, s, th, reset, detach_reset, levels, s_, relaxed)
    a_new = _as_tensor(rho, x) * a + s
    return s, v_new, a_new, h


def synaptic_step(x: torch.Tensor, i: torch.Tensor, v: torch.Tensor, alpha_syn: Scalar, beta: Scalar,
                  threshold: Scalar = 1.0, surrogate: Union[str, Surrogate, None] = None,
                  reset: str = "subtract", detach_reset: bool = False, decay_input: bool = False,
                  levels: int = 1, relaxed: bool = False):
    r"""One step of the current-based (synaptic) LIF neuron.

    .. math::
        I_t = \alpha_{syn} I_{t-1} + x_t,\quad h_t = \beta v_{t-1} + I_t\ (\text{or } (1-\beta) I_t),\quad
        s_t = \textstyle\sum_k H(h_t - k\theta),\quad v_t = \mathrm{reset}(h_t, s_t)

    Returns:
        ``(s_t, i_t, v_t, h_t)``.
    """
    _check_common(x, reset, levels, i=i, v=v)
    s_ = resolve_surrogate(surrogate)
    i_new = _as_tensor(alpha_syn, x) * i + x
    h = _charge(i_new, v, _as_tensor(beta, x), decay_input)
    s = fire(h, threshold, s_, levels, relaxed)
    return s, i_new, reset_membrane(h, s, threshold, reset, detach_reset, levels, s_, relaxed), h


def rlif_step(x: torch.Tensor, v: torch.Tensor, s_prev: torch.Tensor, beta: Scalar,
              recurrent: Callable[[torch.Tensor], torch.Tensor], threshold: Scalar = 1.0,
              surrogate: Union[str, Surrogate, None] = None, reset: str = "subtract",
              detach_reset: bool = False, decay_input: bool = False, levels: int = 1,
              relaxed: bool = False):
    r"""One step of the recurrent LIF neuron: the previous spikes are fed back through ``recurrent``.

    .. math::
        h_t = \beta v_{t-1} + x_t + W s_{t-1}\ \ (\text{decay\_input: } \beta v_{t-1} + (1-\beta)(x_t + W s_{t-1})),
        \quad s_t = \textstyle\sum_k H(h_t - k\theta),\quad v_t = \mathrm{reset}(h_t, s_t)

    ``recurrent`` maps ``s_{t-1}`` ``[B, ..., N]`` to a tensor of ``x``'s shape: an ``nn.Linear(N, N)``
    (all-to-all) or ``lambda s: w * s`` (one-to-one).

    Returns:
        ``(s_t, v_t, h_t)``.
    """
    _check_common(x, reset, levels, v=v, s_prev=s_prev)
    s_ = resolve_surrogate(surrogate)
    h = _charge(x + recurrent(s_prev), v, _as_tensor(beta, x), decay_input)
    s = fire(h, threshold, s_, levels, relaxed)
    return s, reset_membrane(h, s, threshold, reset, detach_reset, levels, s_, relaxed), h
