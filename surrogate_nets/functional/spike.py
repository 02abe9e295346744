r"""The spike and the multi-level spike: exact Heaviside forward, surrogate backward.

Both are the staircase of :mod:`surrogate_nets.functional.staircase` (one boundary at 0 for
:func:`spike`; boundaries ``k theta``, ``k = 1..L``, for :func:`fire`), and both take their
backward from :func:`~surrogate_nets.functional.staircase.boundary_sums`. :func:`reset_membrane`
is the reset that follows a spike in every neuron.

autograd support: :class:`SpikeFunction` and :class:`MultiSpikeFunction` are written in the
``forward`` + ``setup_context`` form with ``generate_vmap_rule = True``, so ``torch.func.grad``,
``torch.func.vjp`` and ``torch.func.vmap`` work through them (with a surrogate whose
``derivative``/``d_alpha`` are torch operations: every built-in family; a user family that
writes only ``primitive`` computes its derivative with ``torch.autograd.grad``, which works
under plain autograd but not inside ``torch.func`` transforms). Their backward is once
differentiable (no double backward through the surrogate).
"""

from __future__ import annotations

from typing import Union

import torch

from .._validate import check_choice, check_float_tensor, check_int, check_positive, sum_to_shape
from ..surrogate import Surrogate
from ..surrogate.helpers import alpha_for, alpha_grad, auto_numel, resolve_surrogate
from ._function import FunctionalFunction
from .staircase import boundary_sums, level_count, relaxed_staircase

__all__ = ["SpikeFunction", "MultiSpikeFunction", "spike", "fire", "reset_membrane", "RESET_MODES"]

#: The reset modes every spiking neuron accepts.
RESET_MODES = ("subtract", "zero", "none")

Scalar = Union[float, torch.Tensor]


def _as_tensor(value: Scalar, like: torch.Tensor) -> torch.Tensor:
    """``value`` as a tensor in ``like``'s dtype and device (differentiable if it already is a tensor)."""
    if isinstance(value, torch.Tensor):
        return value.to(like.dtype)
    return torch.tensor(float(value), dtype=like.dtype, device=like.device)


class SpikeFunction(FunctionalFunction):
    """``H(x)`` forward; ``grad * derivative(x)`` and ``sum(grad * d_alpha(x))`` backward.

    ``apply(x, alpha, surrogate, relaxed=False)``. Saves only ``x`` (and the small alpha tensor);
    skips the gradients that ``ctx.needs_input_grad`` does not ask for. With ``relaxed=True`` the
    forward returns the relaxation ``primitive(x)`` instead (the backward is the same), which
    makes the backward checkable by finite differences. Supports ``torch.func`` (grad, vjp,
    vmap; see the module docstring).
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(x, alpha, surrogate: Surrogate, relaxed: bool = False):
        if relaxed:
            return surrogate.primitive(x, alpha.to(x.dtype))
        return (x >= 0).to(x.dtype)

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, alpha, surrogate = inputs[:3]
        ctx.surrogate, ctx.numel = surrogate, auto_numel(surrogate)  # grad_scale="auto": see auto_scale_numel
        ctx.save_for_backward(x, alpha)

    @staticmethod
    def backward(ctx, grad):
        x, alpha = ctx.saved_tensors
        s = ctx.surrogate
        need_x, need_a = ctx.needs_input_grad[:2]
        sums = boundary_sums(s, x, alpha.to(x.dtype), 0, 1, spacing=0.0, derivative=need_x,
                             wrt_alpha=need_a)
        gx = grad * sums.sigma if need_x else None
        ga = alpha_grad(s, grad * sums.rho, alpha, ctx.numel) if need_a else None
        return gx, ga, None, None


class MultiSpikeFunction(FunctionalFunction):
    r"""Multi-level spike ``s = sum_{k=1}^{L} H(h - k theta)`` with the surrogate summed over the levels.

    ``apply(h, threshold, alpha, surrogate, levels, relaxed=False)``. Backward (``P`` the
    surrogate relaxation; the sums of :func:`~surrogate_nets.functional.staircase.boundary_sums`):

    .. math::
        \partial s/\partial h := \sum_k P'(h - k\theta),\quad
        \partial s/\partial \theta := -\sum_k k\,P'(h - k\theta),\quad
        \partial s/\partial \alpha := \sum_k \partial_\alpha P(h - k\theta)

    i.e. exactly the gradient of ``sum_k spike(h - k * theta)``, computed in one node. ``relaxed``
    returns ``sum_k P(h - k theta)`` in the forward (for gradcheck). Supports ``torch.func``.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(h, threshold, alpha, surrogate: Surrogate, levels: int, relaxed: bool = False):
        th = threshold.to(h.dtype)
        if relaxed:
            return relaxed_staircase(surrogate, h, alpha.to(h.dtype), 1, levels + 1, spacing=th)
        return level_count(h, th, levels)

    @staticmethod
    def setup_context(ctx, inputs, output):
        h, threshold, alpha, surrogate, levels = inputs[:5]
        ctx.surrogate, ctx.levels, ctx.numel = surrogate, levels, auto_numel(surrogate)
        ctx.save_for_backward(h, threshold, alpha)

    @staticmethod
    def backward(ctx, grad):
        h, threshold, alpha = ctx.saved_tensors
        s, levels = ctx.surrogate, ctx.levels
        need_h, need_th, need_a = ctx.needs_input_grad[:3]
        sums = boundary_sums(s, h, alpha.to(h.dtype), 1, levels + 1, spacing=threshold.to(h.dtype),
                             derivative=need_h, weighted=need_th, wrt_alpha=need_a)
        gh = grad * sums.sigma if need_h else None
        gth = sum_to_shape((-grad * sums.kappa).to(threshold.dtype), threshold.shape) if need_th else None
        ga = alpha_grad(s, grad * sums.rho, alpha, ctx.numel) if need_a else None
        return gh, gth, ga, None, None, None


def spike(x: torch.Tensor, surrogate: Union[str, Surrogate, None] = None, relaxed: bool = False) -> torch.Tensor:
    r"""Heaviside spike with a surrogate gradient.

    .. math::
        s = H(x) = \mathbb{1}[x \ge 0],\qquad
        \frac{\partial s}{\partial x} := P'(x;\alpha),\qquad
        \frac{\partial s}{\partial \alpha} := \partial_\alpha P(x;\alpha)

    Tie convention: ``x == 0`` spikes (``H(0) = 1``), so ``spike(v - threshold)`` fires when the
    membrane reaches the threshold (other libraries' tie rules: docs/coming-from.md).

    Args:
        x: any shape ``[*]``, floating dtype (float16, bfloat16, float32, float64), any device.
        surrogate: a :class:`~surrogate_nets.surrogate.Surrogate` (its alpha may be learnable
            and per-channel: broadcastable to ``x``), a registry name, or ``None`` for ``ATan(2)``.
        relaxed: return ``primitive(x)`` in the forward instead of the exact step.

    Returns:
        ``[*]`` tensor of 0.0/1.0 in ``x``'s dtype.

    Reference: Neftci, Mostafa & Zenke, "Surrogate gradient learning in spiking neural networks",
    IEEE Signal Processing Magazine 2019.
    """
    check_float_tensor(x, "x")
    s = resolve_surrogate(surrogate)
    return SpikeFunction.apply(x, alpha_for(s, x), s, bool(relaxed))


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
