"""The :class:`Surrogate` base module: a smooth relaxation of the Heaviside step.

A surrogate family is a smooth (or piecewise smooth) function ``primitive(x; alpha)`` that goes
from 0 at ``-inf`` to 1 at ``+inf``; ``alpha > 0`` is its sharpness (larger = closer to the step).
The exact spike ``H(x)`` is used in the forward pass and the relaxation only in the backward
pass (Neftci, Mostafa & Zenke, IEEE Signal Processing Magazine 2019):

    dH/dx      ~= primitive'(x; alpha)                 (``derivative``)
    dH/dalpha  ~= d primitive(x; alpha) / d alpha      (``d_alpha``)

What the sharpness gradient is: for a scale family ``primitive(x; alpha) = g(alpha * x)`` we have
``d_alpha = x * g'(alpha x) = (x / alpha) * derivative``, so the alpha gradient equals
``(1 / alpha) * sum(x * dL/dx)`` summed over every element the surrogate is applied to: the
gradient a gain placed in front of the spike would get in the smoothed model. It sums over
batch x time x neurons, which is why learning alpha is off by default, why alpha is kept
positive by a softplus parametrisation, and why an LSQ-style gradient scale
(Esser et al., ICLR 2020) ``1 / sqrt(numel(x) / numel(alpha))`` is offered (``grad_scale="auto"``).
"""

from __future__ import annotations

import functools
import math
from typing import Union

import torch
from torch import nn

from .._positive import inverse_softplus, positive_from_raw, raw_from_positive
from .._validate import check_positive

_WRAPPED = "_surrogate_alpha_default"
#: learnable alpha = softplus(raw) + floor: strictly positive even where softplus underflows.
_ALPHA_FLOOR = 1e-6


def _alpha_defaulting(fn):
    """Wrap ``fn(self, x, alpha)`` so that ``alpha`` defaults to ``self.alpha``."""

    @functools.wraps(fn)
    def wrapper(self, x, alpha=None):
        return fn(self, x, self.alpha if alpha is None else alpha)

    setattr(wrapper, _WRAPPED, True)
    return wrapper


def _refresh_after_load(module: "Surrogate", incompatible_keys) -> None:
    """``load_state_dict`` post-hook: re-read the host cache of a fixed alpha."""
    module._refresh_host_alpha()


_inverse_softplus = inverse_softplus  # old private name


def _learnable_raw(alpha: torch.Tensor) -> torch.Tensor:
    """``raw_alpha`` holding ``alpha`` (``softplus(raw) + floor``); rejects what it cannot hold."""
    raw = raw_from_positive(alpha, _ALPHA_FLOOR)
    if not bool(torch.isfinite(raw).all()):
        raise ValueError(f"a learnable alpha must be finite and > {_ALPHA_FLOOR:g} (alpha = softplus(raw_alpha) "
                         f"+ {_ALPHA_FLOOR:g}), got {alpha.detach().cpu().tolist()}")
    return raw


class Surrogate(nn.Module):
    r"""Base class of surrogate-gradient families.

    Subclasses write ``primitive(self, x, alpha)``: a relaxation of :math:`H(x)` with
    :math:`\lim_{x\to-\infty} = 0`, :math:`\lim_{x\to\infty} = 1`. ``derivative`` (d/dx) and
    ``d_alpha`` (d/dalpha) default to autograd through ``primitive``; built-ins override them
    with closed forms. All three may be called as ``s.primitive(x)`` (using ``s.alpha``) or
    ``s.primitive(x, alpha)``.

    Args:
        alpha: sharpness, a positive float or tensor (per-channel: any shape that broadcasts
            against the tensors the surrogate is applied to). ``None`` takes the family's
            ``default_alpha``.
        learnable: hold alpha as an ``nn.Parameter`` ``raw_alpha`` with
            ``alpha = softplus(raw_alpha)`` (always positive; no clamping after the step).
        grad_scale: multiply the alpha gradient by this factor; ``"auto"`` uses
            ``1/sqrt(N)`` (LSQ-style, Esser et al. ICLR 2020) with ``N`` the number of elements
            one alpha entry's gradient sums over in one forward call: ``numel(x)/numel(alpha)``
            for ``spike``/``quantize``/a quantizer on ``x``, and ``T*B*.../numel(alpha)`` for a
            neuron called on a whole sequence ``[T, B, ...]``, however it runs (fused scan or
            step loop); so a neuron scales exactly as one ``spike`` call on the whole sequence.
            ``neuron.step(x_t)`` in a user loop counts one step (pass a float for other
            conventions). ``None`` = no scaling.

    Shapes: ``alpha`` is ``[]`` or broadcastable to the input ``[*]``; every method maps ``[*]`` to ``[*]``.
    """

    default_alpha: float = 1.0
    #: half-width (in units of ``1/alpha``) of the derivative's support; ``math.inf`` if unbounded.
    support: float = math.inf
    #: registry name(s), filled by the built-ins.
    name: str = "custom"

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for meth in ("primitive", "derivative", "d_alpha"):
            fn = cls.__dict__.get(meth)
            if fn is not None and not getattr(fn, _WRAPPED, False):
                setattr(cls, meth, _alpha_defaulting(fn))

    def __init__(
        self,
        alpha: Union[float, torch.Tensor, None] = None,
        learnable: bool = False,
        grad_scale: Union[float, str, None] = None,
    ):
        super().__init__()
        if alpha is None:
            alpha = self.default_alpha
        if isinstance(alpha, torch.Tensor):
            if not alpha.is_floating_point():
                raise TypeError(f"alpha must be a float or floating tensor, got dtype {alpha.dtype}")
            alpha_t = alpha.detach().clone()
        else:
            check_positive(alpha, "alpha")
            alpha_t = torch.tensor(float(alpha))
        check_positive(alpha_t, "alpha")
        if grad_scale is not None and grad_scale != "auto":
            check_positive(grad_scale, "grad_scale")
        self.grad_scale = grad_scale
        self.learnable = bool(learnable)
        if self.learnable:
            self.raw_alpha = nn.Parameter(_learnable_raw(alpha_t.to(torch.get_default_dtype())))
        else:
            self.register_buffer("fixed_alpha", alpha_t.to(torch.get_default_dtype()))
        self._refresh_host_alpha()
        # a module-level function, not a lambda: the hook must survive pickle / torch.save(model)
        self.register_load_state_dict_post_hook(_refresh_after_load)

    @property
    def host_alpha(self):
        """``(min, max)`` of a fixed alpha as Python floats, or ``None`` when alpha is learnable.

        Cached on the host (refreshed by ``set_alpha`` and ``load_state_dict``), so code paths
        can specialise on it without reading the device."""
        return self._host_alpha

    def _refresh_host_alpha(self) -> None:
        """Cache (min, max) of a fixed alpha on the host, so backward passes never read the
        device (no host sync on CUDA, no graph break under ``torch.compile``)."""
        if self.learnable:
            self._host_alpha = None
        else:
            a = self.fixed_alpha.detach()
            self._host_alpha = (float(a.min()), float(a.max()))

    # ------------------------------------------------------------------ alpha
    @property
    def alpha(self) -> torch.Tensor:
        """The sharpness as a positive tensor (differentiable w.r.t. ``raw_alpha`` if learnable)."""
        if self.learnable:
            return positive_from_raw(self.raw_alpha, _ALPHA_FLOOR)
        return self.fixed_alpha

    def set_alpha(self, value: Union[float, torch.Tensor]) -> None:
        """Overwrite alpha in place (used by schedules); keeps learnability and shape."""
        check_positive(value, "alpha")
        with torch.no_grad():
            if self.learnable:
                target = torch.as_tensor(value, dtype=self.raw_alpha.dtype, device=self.raw_alpha.device)
                self.raw_alpha.copy_(_learnable_raw(target).expand_as(self.raw_alpha))
            else:
                self.fixed_alpha.copy_(torch.as_tensor(value).expand_as(self.fixed_alpha))
        self._refresh_host_alpha()

    def adaptive(self, **kwargs) -> "Surrogate":
        """This family with a data-driven alpha: ``Adaptive(self, **kwargs)`` (see
        :class:`~surrogate_nets.surrogate.adaptive.Adaptive`; ``fraction``, ``momentum``, ...)."""
        from .adaptive import Adaptive

        return Adaptive(self, **kwargs)

    def extra_repr(self) -> str:
        a = self.alpha.detach()
        val = f"{a.item():.4g}" if a.numel() == 1 else f"shape={tuple(a.shape)}"
        return f"alpha={val}, learnable={self.learnable}" + (
            f", grad_scale={self.grad_scale!r}" if self.grad_scale is not None else ""
        )

    # --------------------------------------------------------------- the math
    @_alpha_defaulting
    def primitive(self, x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        """The relaxation of the Heaviside step; subclasses must implement it."""
        raise NotImplementedError(f"{type(self).__name__} must implement primitive(x, alpha)")

    @_alpha_defaulting  # s.derivative(x) works for a family that writes only primitive
    def derivative(self, x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        """d primitive / dx (autograd through ``primitive`` unless overridden)."""
        return self._autograd(x, alpha, wrt_alpha=False)

    @_alpha_defaulting
    def d_alpha(self, x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        """d primitive / d alpha, elementwise with the shape of ``x`` (autograd unless overridden)."""
        return self._autograd(x, alpha, wrt_alpha=True)

    def _autograd(self, x, alpha, wrt_alpha: bool):
        with torch.enable_grad():
            xx = x.detach().requires_grad_(not wrt_alpha)
            aa = torch.as_tensor(alpha, dtype=x.dtype, device=x.device).detach()
            if wrt_alpha:
                # elementwise d/dalpha: give alpha the full shape so nothing is summed
                aa = aa.expand(torch.broadcast_shapes(aa.shape, xx.shape)).clone().requires_grad_(True)
            y = self.primitive(xx, aa)
            (g,) = torch.autograd.grad(y.sum(), aa if wrt_alpha else xx)
        return g

    # --------------------------------------------- staircase (quantizer) sums
    def reach(self):
        """Boundaries on each side of ``u`` that a unit-grid staircase sum must visit, or ``None`` (all).

        An int only where visiting that many is exact: a derivative with compact support
        (``support < inf``) and a fixed alpha, ``ceil(support / alpha + 1/2)``. ``None`` for
        unbounded families and learnable alpha: every boundary is summed (see
        :mod:`surrogate_nets.functional.staircase` for the one truncation rule).
        """
        if math.isfinite(self.support) and self._host_alpha is not None:
            return max(1, math.ceil(self.support / self._host_alpha[0] + 0.5))
        return None

    def staircase_derivative(self, u, alpha, lo: int, hi: int, wrt_alpha: bool = False):
        r"""``sum_{k=lo}^{hi-1} f(u - k - 1/2)`` with ``f`` = ``derivative`` (or ``d_alpha``).

        The surrogate of the derivative of the staircase ``clamp(round(u), lo, hi)``: one step at
        every level boundary ``k + 1/2``, computed by
        :func:`surrogate_nets.functional.staircase.boundary_sums` (exact; see there).
        """
        from ..functional.staircase import boundary_sums

        sums = boundary_sums(self, u, alpha, lo, hi, derivative=not wrt_alpha, wrt_alpha=wrt_alpha)
        return sums.rho if wrt_alpha else sums.sigma
