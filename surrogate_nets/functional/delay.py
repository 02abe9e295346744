r"""Learnable synaptic delays as pure functions: parametrisation, interpolation kernels, shifts.

A delay ``d`` (in time steps) turns a time-major input ``x`` into ``y_t = x(t - d)``. For a
continuous ``d`` the value between two samples is interpolated with a kernel ``w_j(d)`` over the
integer taps ``j = 0..D`` (``D = max_delay``; inputs before ``t = 0`` are zero or come from a
``history``):

.. math::
    y_t = \sum_{j=0}^{D} w_j(d)\, x_{t-j}

* ``"linear"`` (2 taps): ``w_j = max(0, 1 - |j - d|)``, i.e. with ``k = floor(d)``, ``f = d - k``:
  ``y_t = (1 - f) x_{t-k} + f x_{t-k-1}``, and the exact local gradient
  ``dy_t/dd = x_{t-k-1} - x_{t-k}`` (the 2-tap rule). Integer ``d`` gives an exact shift.
* ``"gaussian"``: ``w_j = exp(-(j - d)^2 / (2 sigma^2)) / sum_i exp(-(i - d)^2 / (2 sigma^2))``,
  smooth in ``d``; a wide ``sigma`` early lets a delay see far-away input, a small ``sigma`` late
  makes it a (nearly) integer shift. This is the interpolation of DCLS (dilated convolutions with
  learnable spacings, Khalfaoui-Hassani et al. ICLR 2023) used for delays by Hammouamri,
  Khalfaoui-Hassani & Masquelier (ICLR 2024), who anneal ``sigma`` during training.

The delay is kept in ``[0, D]`` by parametrisation, ``d = D * sigmoid(raw)`` (:func:`delay_from_raw`).

Per-channel delays (:func:`delay_shift`: one ``d`` per feature, broadcast over trailing dims) cost
``O(T B N)`` for the linear kernel (two gathers) and ``O(T B N D)`` for the Gaussian (a depthwise
conv over time). Per-synapse delays are :func:`~surrogate_nets.functional.delayed_linear.delayed_linear`.
The streaming form keeps a ring buffer of the last ``D`` inputs (:func:`delay_step`).
"""

from __future__ import annotations

import math
from typing import NamedTuple, Optional

import torch
import torch.nn.functional as F

from .._validate import check_broadcast, check_choice, check_float_tensor, check_int, check_positive, describe

KERNELS = ("linear", "gaussian")


class DelayState(NamedTuple):
    """Streaming state of a delay: the last ``D`` inputs in a ring buffer.

    ``buffer`` ``[D, B, ...]`` holds ``x_{t-D} .. x_{t-1}``; ``index`` (0-dim int64 tensor) is the
    slot of the oldest one, which the next input overwrites. Tap ``j >= 1`` (``x_{t-j}``) lives in
    slot ``(index - j) mod D``.
    """

    buffer: torch.Tensor
    index: torch.Tensor


def check_max_delay(max_delay) -> int:
    """``max_delay`` as an int ``>= 1`` (ValueError/TypeError naming it otherwise)."""
    return check_int(max_delay, "max_delay", minimum=1)


def delay_from_raw(raw: torch.Tensor, max_delay: int) -> torch.Tensor:
    r"""``d = D \sigma(raw)`` in ``(0, D)``: the parametrisation that keeps a learnt delay in range."""
    return max_delay * torch.sigmoid(raw)


def raw_from_delay(d: torch.Tensor, max_delay: int, eps: float = 1e-3) -> torch.Tensor:
    """Inverse of :func:`delay_from_raw`; ``d`` is first clipped to ``[eps D, (1 - eps) D]``
    (the open range of the sigmoid), so initialising at 0 or ``D`` lands ``eps D`` inside."""
    u = (d / max_delay).clamp(eps, 1 - eps)
    return torch.logit(u)


def round_delay(d: torch.Tensor) -> torch.Tensor:
    """Round delays half up to integer steps, ``floor(d + 1/2)`` (what hardware stores)."""
    return torch.floor(d + 0.5)


def anneal(n: int, start: float, end: float, steps: int, mode: str = "linear") -> float:
    r"""Value of a schedule at step ``n``: ``start + (end - start) n/N`` (``"linear"``) or
    ``start (end/start)^{n/N}`` (``"exp"``), held at ``end`` after ``N = steps``."""
    check_positive(start, "start")
    check_positive(end, "end")
    steps = check_int(steps, "steps", minimum=1)
    check_choice(mode, "mode", ("linear", "exp"))
    frac = min(max(int(n), 0), steps) / steps
    if mode == "linear":
        return float(start) + (float(end) - float(start)) * frac
    return math.exp(math.log(start) + (math.log(end) - math.log(start)) * frac)


def delay_kernel(d: torch.Tensor, max_delay: int, kernel: str = "linear",
                 sigma: float | torch.Tensor = 1.0) -> torch.Tensor:
    r"""Interpolation weights ``w_j(d)`` over the taps ``j = 0..D``: shape ``[*d.shape, D + 1]``.

    ``"linear"``: ``max(0, 1 - |j - d|)`` (two non-zero taps, summing to 1 for ``d`` in
    ``[0, D]``). ``"gaussian"``: normalised ``exp(-(j - d)^2 / (2 sigma^2))`` (DCLS, Hammouamri
    et al. ICLR 2024). Differentiable in ``d`` (and ``sigma``).
    """
    check_choice(kernel, "kernel", KERNELS)
    j = torch.arange(max_delay + 1, dtype=d.dtype, device=d.device)
    diff = j - d.unsqueeze(-1)
    if kernel == "linear":
        return torch.relu(1 - diff.abs())
    if not isinstance(sigma, torch.Tensor):
        check_positive(sigma, "sigma")
    return torch.softmax(-0.5 * (diff / sigma) ** 2, dim=-1)


def _check_x(x, name="x"):
    check_float_tensor(x, name, min_dim=2)
    if x.shape[0] == 0:
        raise ValueError(f"{name} must be time-major [T, B, ...] with T >= 1, got shape {tuple(x.shape)}")
    return x


def _check_delay(d, max_delay, name="delay"):
    check_float_tensor(d, name)
    if not d.requires_grad and not torch.compiler.is_compiling():   # a value check syncs the host
        v = d.detach()
        if bool((~torch.isfinite(v) | (v < 0) | (v > max_delay)).any()):
            raise ValueError(f"{name} must lie in [0, max_delay={max_delay}], got "
                             f"min {v.min().item():.4g}, max {v.max().item():.4g}")
    return d


def _with_history(x: torch.Tensor, history: Optional[torch.Tensor], max_delay: int) -> torch.Tensor:
    """``[history; x]`` ``[D + T, B, ...]`` (zeros for a missing history)."""
    if history is None:
        return F.pad(x, [0, 0] * (x.dim() - 1) + [max_delay, 0])
    check_float_tensor(history, "history")
    want = (max_delay,) + tuple(x.shape[1:])
    if tuple(history.shape) != want:
        raise ValueError(f"history must hold the last max_delay inputs, shape {want}, got {describe(history)}")
    return torch.cat([history.to(x.dtype), x], 0)


def linear_taps(d: torch.Tensor, max_delay: int):
    """``(k, f)``: integer tap ``k = clamp(floor(d), 0, D - 1)`` (int64, no gradient) and fraction
    ``f = d - k`` in ``[0, 1]`` (carries the gradient), so ``d = k + f`` on the 2-tap kernel."""
    k = d.detach().floor().clamp(0, max_delay - 1).long()
    return k, d - k.to(d.dtype)


def delay_shift(x: torch.Tensor, delay: torch.Tensor, max_delay: int, kernel: str = "linear",
                sigma: float | torch.Tensor = 1.0, history: Optional[torch.Tensor] = None) -> torch.Tensor:
    r"""Per-channel delay of a time-major tensor: ``y_t = \sum_j w_j(d) x_{t-j}``.

    Args:
        x: ``[T, B, *S]`` float.
        delay: ``d`` in ``[0, D]``, broadcastable to ``S`` (one delay per channel; e.g. ``[C]``
            after a Linear, ``[C, 1, 1]`` per conv channel).
        max_delay: ``D >= 1`` (the kernel's support).
        kernel: ``"linear"`` (``O(T B N)``, two gathers; exact shift for integer ``d``) or
            ``"gaussian"`` with width ``sigma`` (``O(T B N D)``, a depthwise conv over time).
        history: ``[D, B, *S]``, the ``D`` inputs before ``x[0]`` (oldest first); zeros if ``None``.

    Returns ``[T, B, *S]``.
    """
    D = check_max_delay(max_delay)
    _check_x(x)
    check_choice(kernel, "kernel", KERNELS)
    _check_delay(delay, D)
    S = tuple(x.shape[2:])
    check_broadcast(delay, "delay", S, "one sample's shape [*S]")
    T, B = x.shape[:2]
    xf = _with_history(x, history, D).reshape(D + T, B, -1)      # [D + T, B, N]
    d = delay.to(x.dtype).expand(S).reshape(-1)                    # [N]
    N = d.numel()
    if kernel == "linear":
        k, f = linear_taps(d, D)
        pos = torch.arange(D, D + T, device=x.device).unsqueeze(1) - k            # [T, N]
        g0 = xf.gather(0, pos.unsqueeze(1).expand(T, B, N))
        g1 = xf.gather(0, (pos - 1).unsqueeze(1).expand(T, B, N))
        y = torch.lerp(g0, g1, f.to(g0.dtype).expand_as(g0))  # exact at f = 0 and f = 1
    else:
        w = delay_kernel(d, D, "gaussian", sigma)                               # [N, D + 1]
        inp = xf.permute(1, 2, 0)                                               # [B, N, D + T]
        y = F.conv1d(inp, w.flip(-1).unsqueeze(1), groups=N).permute(2, 0, 1)   # [T, B, N]
    return y.reshape(x.shape)


def delay_step(x_t: torch.Tensor, state: Optional[DelayState], delay: torch.Tensor, max_delay: int,
               kernel: str = "linear", sigma: float | torch.Tensor = 1.0):
    r"""One streaming step of :func:`delay_shift`: ``(y_t, new_state)`` from ``x_t`` ``[B, *S]``.

    ``state`` is a :class:`DelayState` ring buffer of the last ``D`` inputs (``None``: zeros).
    Writing is ``O(B N)`` (one slot); reading is two gathers (linear) or all ``D`` slots (Gaussian).
    The buffer is updated in place (the passed ``state`` is consumed: keep using the returned one)
    unless autograd needs the old buffer, in which case the write is an ``O(D B N)`` copy.
    """
    D = check_max_delay(max_delay)
    check_float_tensor(x_t, "x_t", min_dim=1)
    _check_delay(delay, D)
    S = tuple(x_t.shape[1:])
    check_broadcast(delay, "delay", S, "one sample's shape [*S]")
    state = init_delay_state(x_t, D) if state is None else check_delay_state(state, x_t, D)
    buf, index = state.buffer.to(x_t.dtype), state.index
    B = x_t.shape[0]
    d = delay.to(x_t.dtype).expand(S).reshape(-1)
    xt = x_t.reshape(B, -1)
    bf = buf.reshape(D, B, -1)
    if kernel == "linear":
        k, f = linear_taps(d, D)

        def tap(j):  # x_{t-j} per channel, j [N] in 0..D
            slot = torch.remainder(index - j, D)
            g = bf.gather(0, slot.unsqueeze(0).unsqueeze(0).expand(1, B, -1))[0]
            return torch.where(j == 0, xt, g)

        g0, g1 = tap(k), tap(k + 1)
        y = torch.lerp(g0, g1, f.to(g0.dtype).expand_as(g0))  # exact at f = 0 and f = 1
    else:
        check_choice(kernel, "kernel", KERNELS)
        w = delay_kernel(d, D, "gaussian", sigma)                       # [N, D + 1]
        taps = torch.remainder(index - 1 - torch.arange(D, device=x_t.device), D) + 1  # tap of slot s
        wslot = w[:, taps].t()                                          # [D, N] weight per slot
        y = w[:, 0] * xt + (wslot.unsqueeze(1) * bf).sum(0)
    return y.reshape(x_t.shape), _push(state, buf, x_t, D)


def _push(state: DelayState, buf: torch.Tensor, x_t: torch.Tensor, D: int) -> DelayState:
    """Write ``x_t`` into the oldest slot and advance the index (in place when autograd allows)."""
    idx = state.index
    if torch.is_grad_enabled() and (x_t.requires_grad or buf.requires_grad):
        buf = buf.index_copy(0, idx.reshape(1), x_t.unsqueeze(0))
    else:
        buf = buf if buf is state.buffer else buf.clone()
        buf.index_copy_(0, idx.reshape(1), x_t.unsqueeze(0).to(buf.dtype))
    return DelayState(buf, torch.remainder(idx + 1, D))


def init_delay_state(x_t: torch.Tensor, max_delay: int) -> DelayState:
    """The all-zero history for one step's input ``[B, ...]``."""
    return DelayState(x_t.new_zeros((max_delay,) + tuple(x_t.shape)),
                      torch.zeros((), dtype=torch.long, device=x_t.device))


def check_delay_state(state, x_t: torch.Tensor, max_delay: int, name: str = "state") -> DelayState:
    """Validate a :class:`DelayState` against one input step ``x_t``."""
    if not isinstance(state, tuple) or len(state) != 2:
        raise TypeError(f"{name} must be a DelayState(buffer, index), got {type(state).__name__}")
    buf, index = state
    check_float_tensor(buf, f"{name}.buffer")
    want = (max_delay,) + tuple(x_t.shape)
    if tuple(buf.shape) != want:
        raise ValueError(f"{name}.buffer must have shape [max_delay, *x_t.shape] = {want}, got {describe(buf)}")
    if not isinstance(index, torch.Tensor) or index.dtype != torch.long or index.dim() != 0:
        raise TypeError(f"{name}.index must be a 0-dim int64 tensor, got {describe(index)}")
    return DelayState(buf, index)


def history_from_state(state: DelayState) -> torch.Tensor:
    """The ring buffer in time order (oldest first) ``[D, B, ...]``, as ``history`` for multi-step calls."""
    D = state.buffer.shape[0]
    order = torch.remainder(torch.arange(D, device=state.buffer.device) + state.index, D)
    return state.buffer.index_select(0, order)


def state_from_sequence(x_full: torch.Tensor, max_delay: int) -> DelayState:
    """The state after ``x_full`` ``[>= D, B, ...]`` (its last ``D`` steps, index 0)."""
    return DelayState(x_full[-max_delay:], torch.zeros((), dtype=torch.long, device=x_full.device))

