r"""Learnable synaptic delays as modules: per channel (:class:`SynapticDelay`) and per synapse
(:class:`DelayedLinear`), with a width schedule for the Gaussian kernel (:class:`DelayWidthSchedule`).

The math lives in :mod:`surrogate_nets.functional.delay` and
:mod:`surrogate_nets.functional.delayed_linear`. Both modules follow the neurons' calling
convention: ``m(x)`` on ``[T, B, ...]`` starts from an empty history; ``m(x, state)`` continues
from a :class:`~surrogate_nets.functional.delay.DelayState`; ``m(x, return_state=True)`` returns
``(y, state)``; ``m.step(x_t, state)`` streams one step through a ring buffer of the last
``max_delay`` inputs; ``stateful=True`` keeps the (detached) state between calls until
:func:`surrogate_nets.layers.reset`. They are time-major, so :class:`~surrogate_nets.layers.Sequential`
hands them the whole sequence.

A learnt delay is ``d = D sigmoid(raw_delay)`` in ``(0, D)``; :meth:`round` replaces it by the
fixed integer ``floor(d + 1/2)`` (buffer ``fixed_delay``; an exact shift) for deployment.
"""

from __future__ import annotations

import math
import numbers
from typing import Iterable, Optional, Sequence, Union

import torch
from torch import nn

from .._validate import check_broadcast, check_choice, check_float_tensor, check_int, check_positive, check_time_major
from ..functional.delay import (
    KERNELS, DelayState, anneal, check_delay_state, check_max_delay, delay_from_raw, delay_shift, delay_step,
    history_from_state, raw_from_delay, round_delay, state_from_sequence,
)
from ..functional.delayed_linear import IMPLS, delayed_linear, delayed_linear_step

Init = Union[str, float, torch.Tensor]


class _Delay(nn.Module):
    """Shared parameter/state handling of the delay modules."""

    time_major = True

    def _setup(self, delay_shape, max_delay, kernel, sigma, init, learnable, stateful):
        self.max_delay = check_max_delay(max_delay)
        self.kernel = check_choice(kernel, "kernel", KERNELS)
        if sigma is None:
            sigma = max(self.max_delay / 2.0, 0.5)
        check_positive(sigma, "sigma")
        self.register_buffer("sigma", torch.tensor(float(sigma)))
        self.stateful = bool(stateful)
        self._state: Optional[DelayState] = None
        d = self._initial_delays(init, tuple(delay_shape))
        if learnable:
            self.raw_delay = nn.Parameter(raw_from_delay(d, self.max_delay))
        else:
            self.register_buffer("fixed_delay", d)

    def _initial_delays(self, init: Init, shape) -> torch.Tensor:
        D = self.max_delay
        if isinstance(init, str):
            check_choice(init, "init", ("uniform", "zero", "half"))
            if init == "uniform":
                return torch.rand(shape) * D
            return torch.full(shape, 0.0 if init == "zero" else D / 2.0)
        if isinstance(init, torch.Tensor):
            check_float_tensor(init, "init")
            t = init.detach().to(torch.get_default_dtype())
            check_broadcast(t, "init", shape, "the delays")
            t = t.expand(shape).clone()
        elif isinstance(init, numbers.Real) and not isinstance(init, bool):
            t = torch.full(shape, float(init))
        else:
            raise TypeError(f"init must be 'uniform', 'zero', 'half', a number or a tensor, got {init!r}")
        if bool((~torch.isfinite(t) | (t < 0) | (t > D)).any()):
            raise ValueError(f"init delays must lie in [0, max_delay={D}], got min {t.min().item():.4g}, "
                             f"max {t.max().item():.4g}")
        return t

    @property
    def learnable(self) -> bool:
        """Whether the delays are an ``nn.Parameter`` (``False`` after :meth:`round`)."""
        return "raw_delay" in self._parameters

    @property
    def delay(self) -> torch.Tensor:
        """The delays in steps, ``D sigmoid(raw_delay)`` or the fixed ``fixed_delay``."""
        if self.learnable:
            return delay_from_raw(self.raw_delay, self.max_delay)
        return self.fixed_delay

    def set_sigma(self, sigma: float) -> None:
        """Set the Gaussian kernel's width (see :class:`DelayWidthSchedule`)."""
        check_positive(sigma, "sigma")
        self.sigma.fill_(float(sigma))

    @torch.no_grad()
    def round(self):
        """Replace the delays by the integers ``floor(d + 1/2)`` (a fixed buffer, exact shifts with
        the linear kernel) and return ``self``. Build a new optimizer afterwards if training on."""
        d = round_delay(self.delay.detach()).clamp(0, self.max_delay)
        if self.learnable:
            del self.raw_delay
            self.register_buffer("fixed_delay", d)
        else:
            self.fixed_delay.copy_(d)
        self.kernel = "linear"
        return self

    # -------------------------------------------------------------- streaming state
    def reset(self) -> None:
        """Forget the stored streaming state."""
        self._state = None

    def reset_state(self) -> None:
        """Same as :meth:`reset` (the hook :func:`surrogate_nets.layers.reset` calls)."""
        self.reset()

    def _resolve_state(self, state, x_t):
        if state is None:
            if not (self.stateful and self._state is not None):
                return None
            state = self._state
        return check_delay_state(state, x_t, self.max_delay)

    def _keep(self, state: DelayState) -> None:
        if self.stateful:
            self._state = DelayState(state.buffer.detach(), state.index.detach())

    def _final_state(self, x, history):
        D = self.max_delay
        if x.shape[0] >= D:
            return state_from_sequence(x, D)
        past = history if history is not None else x.new_zeros((D,) + tuple(x.shape[1:]))
        return state_from_sequence(torch.cat([past.to(x.dtype), x], 0), D)

    def _run(self, x, state, return_state, fn):
        check_time_major(x, "x")
        state = self._resolve_state(state, x[0])
        history = None if state is None else history_from_state(state)
        y = fn(x, history)
        if return_state or self.stateful:
            final = self._final_state(x, history)
            self._keep(final)
            if return_state:
                return y, final
        return y

    def extra_repr(self) -> str:
        parts = [f"max_delay={self.max_delay}", f"kernel={self.kernel!r}"]
        if self.kernel == "gaussian":
            parts.append(f"sigma={self.sigma.item():.4g}")
        if not self.learnable:
            parts.append("learnable=False")
        if self.stateful:
            parts.append("stateful=True")
        return ", ".join(parts)


class SynapticDelay(_Delay):
    r"""A learnable delay per channel: ``y_t[c] = x(t - d_c)[c]`` with ``d_c`` in ``[0, D]``.

    .. math:: y_t = \sum_{j=0}^{D} w_j(d)\, x_{t-j}

    with the 2-tap linear kernel (``(1 - f) x_{t-k} + f x_{t-k-1}``, ``k = floor(d)``,
    ``f = d - k``; gradient ``dy/dd = x_{t-k-1} - x_{t-k}``) or the Gaussian kernel of width
    ``sigma`` (DCLS: Hammouamri, Khalfaoui-Hassani & Masquelier, ICLR 2024; anneal it with
    :class:`DelayWidthSchedule`). Put it between a connection and a neuron:
    ``Sequential(nn.Linear(n, m), SynapticDelay(m, 25), LIF())``. Peer equivalents:
    docs/coming-from.md.

    Args:
        channels: the per-sample shape of the delays, broadcast over the trailing dims of one step
            ``[B, ...]``: an int ``C`` for ``[T, B, C]``, ``(C, 1, 1)`` per conv channel.
        max_delay: ``D >= 1`` steps (memory of the streaming ring buffer).
        kernel: ``"linear"`` (``O(T B C)``) or ``"gaussian"`` (``O(T B C D)``).
        sigma: Gaussian width (default ``D / 2``); a buffer, set by :meth:`set_sigma`.
        init: ``"uniform"`` (``U(0, D)``, default), ``"zero"``, ``"half"``, a number or a tensor of
            delays (a learnable one is placed ``1e-3 D`` inside ``(0, D)``).
        learnable: learn ``d = D sigmoid(raw_delay)``; else a fixed buffer ``fixed_delay``.
        stateful: keep the last ``D`` inputs between calls (streaming).

    Shapes: ``[T, B, *S]`` -> ``[T, B, *S]``; ``step``: ``[B, *S]`` -> ``[B, *S]``.
    """

    def __init__(self, channels: Union[int, Sequence[int]], max_delay: int, kernel: str = "linear",
                 sigma: Optional[float] = None, init: Init = "uniform", learnable: bool = True,
                 stateful: bool = False):
        super().__init__()
        if isinstance(channels, numbers.Integral) and not isinstance(channels, bool):
            channels = (channels,)
        if isinstance(channels, (str, bytes)) or not isinstance(channels, Sequence) or not channels:
            raise TypeError(f"channels must be an int or a non-empty sequence of ints, got {channels!r}")
        self.channels = tuple(check_int(c, "channels entry", minimum=1) for c in channels)
        self._setup(self.channels, max_delay, kernel, sigma, init, learnable, stateful)

    def forward(self, x: torch.Tensor, state: Optional[DelayState] = None, return_state: bool = False):
        """Delay all ``T`` steps of ``x`` ``[T, B, *S]``; see the class docstring."""
        return self._run(x, state, return_state,
                         lambda x_, h: delay_shift(x_, self.delay, self.max_delay, self.kernel, self.sigma, h))

    def step(self, x: torch.Tensor, state: Optional[DelayState] = None):
        """One step on ``x`` ``[B, *S]``: ``(y_t, new_state)`` (ring buffer of the last ``D`` inputs)."""
        check_float_tensor(x, "x", min_dim=1)
        y, new = delay_step(x, self._resolve_state(state, x), self.delay, self.max_delay, self.kernel, self.sigma)
        self._keep(new)
        return y, new

    def extra_repr(self) -> str:
        return f"channels={self.channels}, " + super().extra_repr()


class DelayedLinear(_Delay):
    r"""A linear layer in which every synapse has its own learnable delay.

    .. math:: y_t[o] = b[o] + \sum_i W[o, i] \sum_{j=0}^{D} w_j(d[o, i])\, x_{t-j}[i]

    The per-synapse delays of Hammouamri, Khalfaoui-Hassani & Masquelier (ICLR 2024), who realise
    them as a DCLS convolution over time (Khalfaoui-Hassani et al. ICLR 2023). All implementations
    build the ``[out, in, D + 1]`` tap kernel ``W * w_j(d)`` and never a ``T x D x in x out`` tensor:
    ``"fft"`` convolves in the frequency domain (time ``O(T B in out + (T + D) log(T + D) in out)``,
    memory ``O((T + D) in out)``), ``"conv"`` runs one ``conv1d`` (time ``O(T B in out D)``, memory
    ``O(in out D + (T + D) B (in + out))``), ``"sparse"`` groups synapses by integer tap (time
    ``O(T B in out + T B out D)``, memory ``O(in out + T B (in + out))``). ``"auto"`` (default)
    takes ``"fft"`` for ``D >= 40`` while its kernel transform fits in 256 MiB, else ``"conv"``
    (the rule of :func:`~surrogate_nets.functional.delayed_linear.choose_impl`; measurements in
    ``benchmarks/RESULTS.md``).

    Args:
        in_features, out_features: sizes as in ``nn.Linear`` (same weight/bias initialisation).
        max_delay: ``D >= 1``. bias: add a learnable bias.
        kernel, sigma, init, learnable, stateful: as in :class:`SynapticDelay`.
        impl: ``"auto"``, ``"fft"``, ``"conv"`` or ``"sparse"`` (linear kernel only).

    Shapes: ``[T, *batch, in]`` -> ``[T, *batch, out]``; ``step``: ``[*batch, in]`` -> ``[*batch, out]``.
    """

    def __init__(self, in_features: int, out_features: int, max_delay: int, bias: bool = True,
                 kernel: str = "linear", sigma: Optional[float] = None, init: Init = "uniform",
                 learnable: bool = True, impl: str = "auto", stateful: bool = False):
        super().__init__()
        self.in_features = check_int(in_features, "in_features", minimum=1)
        self.out_features = check_int(out_features, "out_features", minimum=1)
        self.impl = check_choice(impl, "impl", IMPLS + ("auto",))
        if impl == "sparse" and kernel != "linear":
            raise ValueError(f"impl='sparse' needs kernel='linear', got kernel={kernel!r}")
        self.weight = nn.Parameter(torch.empty(self.out_features, self.in_features))
        self.bias = nn.Parameter(torch.empty(self.out_features)) if bias else None
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))   # as nn.Linear
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_features)
            nn.init.uniform_(self.bias, -bound, bound)
        self._setup((self.out_features, self.in_features), max_delay, kernel, sigma, init, learnable, stateful)

    def _check_in(self, x):
        if x.shape[-1] != self.in_features:
            raise ValueError(f"x must have in_features={self.in_features} in its last dim, got shape "
                             f"{tuple(x.shape)}")

    def forward(self, x: torch.Tensor, state: Optional[DelayState] = None, return_state: bool = False):
        """Apply to all ``T`` steps of ``x`` ``[T, *batch, in]``; see the class docstring."""
        check_time_major(x, "x")
        self._check_in(x)
        impl = "auto" if (self.kernel != "linear" and self.impl == "sparse") else self.impl
        return self._run(x, state, return_state, lambda x_, h: delayed_linear(
            x_, self.weight, self.delay, self.max_delay, self.bias, self.kernel, self.sigma, h, impl))

    def step(self, x: torch.Tensor, state: Optional[DelayState] = None):
        """One step on ``x`` ``[*batch, in]``: ``(y_t, new_state)``."""
        check_float_tensor(x, "x", min_dim=1)
        self._check_in(x)
        y, new = delayed_linear_step(x, self._resolve_state(state, x), self.weight, self.delay,
                                     self.max_delay, self.bias, self.kernel, self.sigma)
        self._keep(new)
        return y, new

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}, " + super().extra_repr()
                + (f", impl={self.impl!r}" if self.impl != "auto" else ""))


class DelayWidthSchedule:
    r"""Anneal ``sigma`` of every Gaussian-kernel delay module of a model (DCLS-style).

    .. math:: \sigma_n = \sigma_0 + (\sigma_1 - \sigma_0) n/N\ (\text{linear}),\quad
              \sigma_0 (\sigma_1/\sigma_0)^{n/N}\ (\text{exp})

    held at ``sigma_1`` after ``N`` steps: a wide kernel early lets a delay feel input far from
    its position, a narrow one late makes it an almost integer shift, ready for :meth:`round`
    (Hammouamri et al. ICLR 2024 decrease ``sigma`` from ``D/2`` to ``0.5``). Call :meth:`step`
    once per epoch (or batch), like :class:`~surrogate_nets.surrogate.AlphaSchedule`.

    Args:
        target: a model or an iterable of delay modules (only ``kernel="gaussian"`` ones are used).
        start: ``sigma_0``; ``None``: each module's ``max_delay / 2``.
        end: ``sigma_1`` (default 0.5). steps: ``N >= 1``. mode: ``"linear"`` (default) or ``"exp"``.
    """

    def __init__(self, target: Union[nn.Module, Iterable[nn.Module]], steps: int,
                 start: Optional[float] = None, end: float = 0.5, mode: str = "linear"):
        self.steps = check_int(steps, "steps", minimum=1)
        self.mode = check_choice(mode, "mode", ("linear", "exp"))
        if start is not None:
            check_positive(start, "start")
        check_positive(end, "end")
        self.start, self.end = start, float(end)
        mods = target.modules() if isinstance(target, nn.Module) else target
        self.modules = [m for m in mods if isinstance(m, _Delay) and m.kernel == "gaussian"]
        self.n = 0
        self._apply()

    def value(self, n: int, module: Optional[nn.Module] = None) -> float:
        """``sigma_n`` (for ``module`` when ``start`` is per module)."""
        start = self.start if self.start is not None else max(module.max_delay / 2.0, self.end)
        return anneal(n, start, self.end, self.steps, self.mode)

    def _apply(self):
        for m in self.modules:
            m.set_sigma(self.value(self.n, m))

    def step(self) -> None:
        """Advance one step and set the new widths."""
        self.n += 1
        self._apply()

    def state_dict(self) -> dict:
        return {"n": self.n}

    def load_state_dict(self, state: dict) -> None:
        self.n = int(state["n"])
        self._apply()


__all__ = ["SynapticDelay", "DelayedLinear", "DelayWidthSchedule", "DelayState"]
