r"""Per-synapse delays: a linear layer in which every weight has its own learnable delay.

.. math::
    y_t[o] = b[o] + \sum_i W[o, i]\, \sum_{j=0}^{D} w_j(d[o, i])\, x_{t-j}[i]
           = b[o] + \sum_{j=0}^{D} \big(K_j\, x_{t-j}\big)[o],\qquad K_j = W \odot w_j(d)

with the interpolation kernel ``w_j`` of :func:`~surrogate_nets.functional.delay.delay_kernel`
(linear 2-tap or Gaussian). This is a 1-D convolution over time whose ``D + 1`` taps are placed by
the learnable delays (DCLS, Khalfaoui-Hassani et al. ICLR 2023; delays in SNNs: Hammouamri,
Khalfaoui-Hassani & Masquelier, ICLR 2024). Two implementations:

* ``impl="conv"`` (default): build ``K`` ``[out, in, D + 1]`` and run one ``conv1d`` over the
  time axis. Time ``O(T B in out D)`` in dense, BLAS-backed convolution; memory
  ``O(in out D)`` for the kernel plus ``O((T + D) B (in + out))`` activations -- never a
  ``T x D x in x out`` tensor.
* ``impl="fft"``: the same convolution as ``N = T + D`` point real FFTs over time and one
  complex ``[B, in] x [in, out]`` matmul per frequency. Time ``O(T B in out + (T + D) log(T + D)
  (B in + in out))`` -- no factor ``D`` on the big term -- and memory ``O((T + D) in out)`` for
  the transformed kernel (the price: it grows with ``T``). Float32 round-off ~1e-6 relative.
* ``impl="sparse"`` (linear kernel only): group the synapses by integer tap ``j`` (each synapse
  has two, ``floor(d)`` and ``floor(d) + 1``) and add ``S_j x_{t-j}`` with a sparse ``S_j``. Time
  ``O(T B in out + T B out D)``, memory ``O(in out + T B (in + out))``, independent of ``D`` in
  the weights; slower in practice on CPU (sparse kernels, one launch per tap; see
  ``benchmarks/RESULTS.md``), useful when ``in x out x D`` does not fit.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

from .._validate import check_broadcast, check_choice, check_float_tensor, describe
from .delay import (
    KERNELS, DelayState, _check_delay, _check_x, _push, _with_history, check_delay_state, check_max_delay,
    delay_kernel, init_delay_state, linear_taps,
)

IMPLS = ("conv", "fft", "sparse")


def choose_impl(T: int, max_delay: int, in_features: int, out_features: int,
                budget_bytes: int = 256 * 2**20) -> str:
    """``"fft"`` for ``D >= 40`` while its transformed kernel, ``(T + D) / 2 x in x out`` complex64
    numbers plus the same for its gradient, fits in ``budget_bytes``; ``"conv"`` otherwise (its
    memory does not grow with ``T``)."""
    # measured (benchmarks/delays.py, benchmarks/RESULTS.md): conv won at D = 25, fft at D >= 50
    # for every T in 100..1000
    if max_delay >= 40 and (T + max_delay) * in_features * out_features * 8 <= budget_bytes:
        return "fft"
    return "conv"


def _check_weights(weight, delay, bias, in_features, D):
    check_float_tensor(weight, "weight", min_dim=2)
    if weight.dim() != 2 or weight.shape[1] != in_features:
        raise ValueError(f"weight must have shape [out_features, in_features={in_features}], got {describe(weight)}")
    _check_delay(delay, D)
    check_broadcast(delay, "delay", tuple(weight.shape), "weight [out, in]")
    if bias is not None:
        check_float_tensor(bias, "bias")
        if tuple(bias.shape) != (weight.shape[0],):
            raise ValueError(f"bias must have shape [{weight.shape[0]}], got {describe(bias)}")


def synapse_kernel(weight: torch.Tensor, delay: torch.Tensor, max_delay: int, kernel: str = "linear",
                   sigma=1.0) -> torch.Tensor:
    """``K[o, i, j] = W[o, i] w_j(d[o, i])`` ``[out, in, D + 1]`` (tap ``j`` = delay of ``j`` steps)."""
    d = delay.to(weight.dtype).expand(weight.shape)
    return weight.unsqueeze(-1) * delay_kernel(d, max_delay, kernel, sigma)


def delayed_linear(x: torch.Tensor, weight: torch.Tensor, delay: torch.Tensor, max_delay: int,
                   bias: Optional[torch.Tensor] = None, kernel: str = "linear", sigma=1.0,
                   history: Optional[torch.Tensor] = None, impl: str = "conv") -> torch.Tensor:
    r"""Linear layer with per-synapse delays (see the module docstring for the equation and cost).

    Args:
        x: ``[T, *batch, in]`` float.
        weight: ``[out, in]``. delay: ``d`` in ``[0, D]`` broadcastable to ``[out, in]`` (``[out, in]``
            per synapse; ``[1, in]`` per input (axonal); ``[out, 1]`` per output (dendritic)).
        max_delay: ``D >= 1``. bias: ``[out]`` or ``None``.
        kernel: ``"linear"`` or ``"gaussian"`` (width ``sigma``).
        history: ``[D, *batch, in]``, the ``D`` inputs before ``x[0]`` (oldest first), or ``None`` (zeros).
        impl: ``"conv"``, ``"fft"``, ``"sparse"`` (linear kernel only) or ``"auto"``
            (:func:`choose_impl`: ``"fft"`` for ``D >= 40`` while its kernel transform fits in 256 MiB,
            else ``"conv"``).

    Returns ``[T, *batch, out]``.
    """
    D = check_max_delay(max_delay)
    _check_x(x)
    check_choice(kernel, "kernel", KERNELS)
    check_choice(impl, "impl", IMPLS + ("auto",))
    _check_weights(weight, delay, bias, x.shape[-1], D)
    if impl == "auto":
        impl = choose_impl(x.shape[0], D, x.shape[-1], weight.shape[0])
    if impl == "sparse" and kernel != "linear":
        raise ValueError(f"impl='sparse' needs kernel='linear' (two taps per synapse), got kernel={kernel!r}")
    T, n_in, n_out = x.shape[0], x.shape[-1], weight.shape[0]
    batch = tuple(x.shape[1:-1])
    xf = _with_history(x, history, D).reshape(D + T, -1, n_in)             # [D + T, B, in]
    w = weight.to(x.dtype)
    if impl == "conv":
        K = synapse_kernel(w, delay, D, kernel, sigma)                       # [out, in, D + 1]
        y = F.conv1d(xf.permute(1, 2, 0), K.flip(-1)).permute(2, 0, 1)       # [T, B, out]
    elif impl == "fft":
        y = _fft_conv(xf, synapse_kernel(w, delay, D, kernel, sigma), D, T)
    else:
        y = _sparse_grouped(xf, w, delay.to(x.dtype).expand(w.shape), D, T)
    if bias is not None:
        y = y + bias.to(x.dtype)
    return y.reshape((T,) + batch + (n_out,))


def fft_size(n: int) -> int:
    """The smallest ``2^a 3^b 5^c >= n`` (FFT sizes with large prime factors are several times slower)."""
    best = 1 << max(n - 1, 0).bit_length()
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            m = p35
            while m < n:
                m *= 2
            best = min(best, m)
            p35 *= 3
        p5 *= 5
    return best


def _fft_conv(xf, K, D, T):
    """The same convolution in the frequency domain: ``N >= D + T`` point real FFTs (no wrap-around
    reaches the outputs ``D..D+T-1``) and one batched complex matmul per frequency."""
    N = fft_size(D + T)
    Xf = torch.fft.rfft(xf, n=N, dim=0)                                      # [F, B, in]
    Kf = torch.fft.rfft(K, n=N, dim=-1).permute(2, 1, 0)                     # [F, in, out]
    return torch.fft.irfft(torch.bmm(Xf, Kf), n=N, dim=0)[D:D + T]           # [T, B, out]


def _sparse_grouped(xf, w, d, D, T):
    """Group synapses by integer tap; ``y_t = sum_j S_j x_{t-j}`` with sparse ``S_j``."""
    n_out, n_in = w.shape
    B = xf.shape[1]
    k, f = linear_taps(d, D)
    taps = torch.cat([k.reshape(-1), (k + 1).reshape(-1)])
    vals = torch.cat([(w * (1 - f)).reshape(-1), (w * f).reshape(-1)])
    rows = torch.arange(n_out, device=w.device).repeat_interleave(n_in).repeat(2)
    cols = torch.arange(n_in, device=w.device).repeat(n_out).repeat(2)
    order = torch.argsort(taps, stable=True)
    taps, vals, rows, cols = taps[order], vals[order], rows[order], cols[order]
    counts = torch.bincount(taps, minlength=D + 1).tolist()   # one host sync per call
    y = xf.new_zeros(n_out, T * B)
    start = 0
    for j, c in enumerate(counts):
        if c:
            sl = slice(start, start + c)
            S = torch.sparse_coo_tensor(torch.stack([rows[sl], cols[sl]]), vals[sl], (n_out, n_in),
                                        is_coalesced=False, check_invariants=False)
            y = y + torch.sparse.mm(S, xf[D - j:D - j + T].reshape(T * B, n_in).t())
        start += c
    return y.t().reshape(T, B, n_out)


def delayed_linear_step(x_t: torch.Tensor, state: Optional[DelayState], weight: torch.Tensor,
                        delay: torch.Tensor, max_delay: int, bias: Optional[torch.Tensor] = None,
                        kernel: str = "linear", sigma=1.0):
    r"""One streaming step of :func:`delayed_linear` on ``x_t`` ``[*batch, in]``: ``(y_t, state)``.

    ``state`` is the :class:`~surrogate_nets.functional.delay.DelayState` ring buffer of the last
    ``D`` inputs ``[D, *batch, in]`` (``None``: zeros). Cost ``O(B in out D)`` per step.
    """
    D = check_max_delay(max_delay)
    check_float_tensor(x_t, "x_t", min_dim=1)
    check_choice(kernel, "kernel", KERNELS)
    _check_weights(weight, delay, bias, x_t.shape[-1], D)
    state = init_delay_state(x_t, D) if state is None else check_delay_state(state, x_t, D)
    buf = state.buffer.to(x_t.dtype)
    slots = torch.remainder(state.index - torch.arange(1, D + 1, device=x_t.device), D)
    window = torch.cat([x_t.unsqueeze(0), buf.index_select(0, slots)], 0)   # [D + 1, *batch, in], tap order
    K = synapse_kernel(weight.to(x_t.dtype), delay, D, kernel, sigma)      # [out, in, D + 1]
    y = torch.einsum("oij,j...i->...o", K, window)
    if bias is not None:
        y = y + bias.to(x_t.dtype)
    return y, _push(state, buf, x_t, D)


__all__ = ["IMPLS", "choose_impl", "delayed_linear", "delayed_linear_step", "synapse_kernel"]
