"""surrogate_nets.functional.delay / delayed_linear: shifts, kernels, gradients, streaming, errors."""

import pytest
import torch

from surrogate_nets.functional import (
    DelayState, anneal, delay_from_raw, delay_kernel, delay_shift, delay_step, delayed_linear,
    delayed_linear_step, raw_from_delay, round_delay,
)
from surrogate_nets.functional.delay import history_from_state, linear_taps
from devices import needs_cuda

F64 = torch.float64


def shift(x, k):
    """x delayed by integer k along time (zeros before t = 0)."""
    y = torch.zeros_like(x)
    if k < x.shape[0]:
        y[k:] = x[:x.shape[0] - k]
    return y


# ---------------------------------------------------------------- forward: exact shifts
@pytest.mark.parametrize("kernel", ["linear", "gaussian"])
def test_integer_delay_is_explicit_shift(kernel):
    x = torch.randn(15, 3, 4, dtype=F64)
    ks = [0, 1, 4, 6]
    d = torch.tensor(ks, dtype=F64)
    y = delay_shift(x, d, 6, kernel, sigma=0.05)  # sigma -> 0: Gaussian weights are one-hot
    ref = torch.stack([shift(x[..., c], k) for c, k in enumerate(ks)], -1)
    torch.testing.assert_close(y, ref, atol=1e-12, rtol=0)


def test_linear_delay_at_every_integer_incl_max_delay_is_bit_exact():
    """The 2-tap interpolation returns the tap itself at f = 0 and f = 1 (no rounding residue)."""
    x = torch.randn(12, 2, 5, dtype=torch.float32)
    ks = [0, 1, 3, 5, 5]
    y = delay_shift(x, torch.tensor(ks, dtype=torch.float32), 5, "linear")
    ref = torch.stack([shift(x[..., c], k) for c, k in enumerate(ks)], -1)
    assert torch.equal(y, ref)


def test_per_conv_channel_delays_broadcast_over_space():
    x = torch.randn(9, 2, 3, 4, 5)
    d = torch.tensor([0.0, 2.0, 3.0]).view(3, 1, 1)
    y = delay_shift(x, d, 3)
    for c, k in enumerate([0, 2, 3]):
        torch.testing.assert_close(y[:, :, c], shift(x[:, :, c], k))


def test_fractional_delay_interpolates_two_taps():
    x = torch.randn(10, 2, 1, dtype=F64)
    y = delay_shift(x, torch.tensor([2.25], dtype=F64), 5)
    torch.testing.assert_close(y, 0.75 * shift(x, 2) + 0.25 * shift(x, 3))
    # d = D exactly uses the last tap only
    torch.testing.assert_close(delay_shift(x, torch.tensor([5.0], dtype=F64), 5), shift(x, 5))


@pytest.mark.parametrize("impl", ["conv", "fft", "sparse", "auto"])
def test_delayed_linear_integer_delays_is_sum_of_shifts(impl):
    x = torch.randn(12, 2, 3, dtype=F64)
    W = torch.randn(4, 3, dtype=F64)
    k = torch.randint(0, 6, (4, 3))
    b = torch.randn(4, dtype=F64)
    y = delayed_linear(x, W, k.to(F64), 5, bias=b, impl=impl)
    ref = torch.zeros(12, 2, 4, dtype=F64) + b
    for o in range(4):
        for i in range(3):
            ref[..., o] += W[o, i] * shift(x[..., i], int(k[o, i]))
    torch.testing.assert_close(y, ref)


def test_delayed_linear_extra_batch_dims_and_axonal_delays():
    x = torch.randn(7, 2, 3, 5, dtype=F64)
    W = torch.randn(4, 5, dtype=F64)
    d = torch.rand(1, 5, dtype=F64) * 4   # one delay per input (axonal), broadcast over outputs
    y = delayed_linear(x, W, d, 4)
    assert y.shape == (7, 2, 3, 4)
    ref = delay_shift(x, d[0], 4) @ W.t()
    torch.testing.assert_close(y, ref)


def test_kernels_are_normalised_and_linear_has_two_taps():
    d = torch.rand(50, dtype=F64) * 7
    for kernel in ("linear", "gaussian"):
        w = delay_kernel(d, 7, kernel, sigma=1.5)
        assert w.shape == (50, 8)
        torch.testing.assert_close(w.sum(-1), torch.ones(50, dtype=F64))
    assert int((delay_kernel(d, 7) > 0).sum(-1).max()) <= 2


# ---------------------------------------------------------------- gradients
def test_linear_delay_gradient_is_two_tap_rule():
    T, D = 20, 6
    x = torch.randn(T, 3, 4, dtype=F64, requires_grad=True)
    d = torch.tensor([0.3, 1.7, 4.5, 5.9], dtype=F64, requires_grad=True)
    g = torch.randn(T, 3, 4, dtype=F64)
    (delay_shift(x, d, D) * g).sum().backward()
    k, _ = linear_taps(d.detach(), D)
    expected = torch.stack([(g[..., c] * (shift(x.detach()[..., c], int(k[c]) + 1)
                                         - shift(x.detach()[..., c], int(k[c])))).sum() for c in range(4)])
    torch.testing.assert_close(d.grad, expected)
    # input gradient: the adjoint shift, (1 - f) g_{t+k} + f g_{t+k+1}
    f = d.detach() - k
    exp_x = torch.stack([(1 - f[c]) * torch.flip(shift(torch.flip(g[..., c], [0]), int(k[c])), [0])
                         + f[c] * torch.flip(shift(torch.flip(g[..., c], [0]), int(k[c]) + 1), [0])
                         for c in range(4)], -1)
    torch.testing.assert_close(x.grad, exp_x)


def test_gaussian_gradients_match_finite_differences():
    x = torch.randn(10, 2, 3, dtype=F64, requires_grad=True)
    d = torch.tensor([0.4, 2.6, 3.8], dtype=F64, requires_grad=True)
    sigma = torch.tensor(0.9, dtype=F64, requires_grad=True)
    hist = torch.randn(4, 2, 3, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b, s, h: delay_shift(a, b, 4, "gaussian", s, h),
                                    (x, d, sigma, hist))


def test_delay_gradient_through_parametrisation_matches_finite_differences():
    x = torch.randn(8, 2, 3, dtype=F64, requires_grad=True)
    raw = torch.tensor([-1.0, 0.2, 1.3], dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda a, r: delay_shift(a, delay_from_raw(r, 5), 5, "gaussian", 1.2), (x, raw))


@pytest.mark.parametrize("impl", ["conv", "fft"])
def test_delayed_linear_gaussian_gradcheck(impl):
    x = torch.randn(8, 2, 3, dtype=F64, requires_grad=True)
    W = torch.randn(2, 3, dtype=F64, requires_grad=True)
    d = (torch.rand(2, 3, dtype=F64) * 4).requires_grad_()
    b = torch.randn(2, dtype=F64, requires_grad=True)
    h = torch.randn(4, 2, 3, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda *a: delayed_linear(*a[:3], 4, a[3], "gaussian", 1.1, history=a[4], impl=impl), (x, W, d, b, h))


def test_auto_impl_choice_is_bounded_by_memory():
    from surrogate_nets.functional.delayed_linear import choose_impl
    assert choose_impl(100, 25, 128, 128) == "conv"     # short kernels: direct conv is faster
    assert choose_impl(100, 100, 128, 128) == "fft"
    assert choose_impl(1000, 250, 700, 256) == "conv"   # the fft kernel transform would be ~1.4 GiB


def test_delayed_linear_linear_kernel_gradients_two_tap_rule_and_impls_agree():
    T, D = 14, 5
    x = torch.randn(T, 3, 4, dtype=F64, requires_grad=True)
    W = torch.randn(2, 4, dtype=F64, requires_grad=True)
    d = (torch.rand(2, 4, dtype=F64) * D).requires_grad_()
    g = torch.randn(T, 3, 2, dtype=F64)
    grads = {}
    for impl in ("conv", "fft", "sparse"):
        grads[impl] = torch.autograd.grad((delayed_linear(x, W, d, D, impl=impl) * g).sum(), (x, W, d))
    for other in ("fft", "sparse"):
        for a, b in zip(grads["conv"], grads[other]):
            torch.testing.assert_close(a, b)
    k, f = linear_taps(d.detach(), D)
    xs = x.detach()
    for o in range(2):
        for i in range(4):
            kk = int(k[o, i])
            rule = W[o, i].detach() * (g[..., o] * (shift(xs[..., i], kk + 1) - shift(xs[..., i], kk))).sum()
            torch.testing.assert_close(grads["conv"][2][o, i], rule)
            dw = (g[..., o] * ((1 - f[o, i]) * shift(xs[..., i], kk) + f[o, i] * shift(xs[..., i], kk + 1))).sum()
            torch.testing.assert_close(grads["conv"][1][o, i], dw)


# ---------------------------------------------------------------- streaming
@pytest.mark.parametrize("kernel", ["linear", "gaussian"])
def test_streaming_equals_multistep_and_history_continues(kernel):
    T, D = 17, 5
    x = torch.randn(T, 2, 3, dtype=F64)
    d = torch.tensor([0.0, 2.4, 5.0], dtype=F64)
    full = delay_shift(x, d, D, kernel, 1.3)
    state, outs = None, []
    for t in range(T):
        y, state = delay_step(x[t], state, d, D, kernel, 1.3)
        outs.append(y)
    torch.testing.assert_close(torch.stack(outs), full)
    state = None
    for t in range(7):
        _, state = delay_step(x[t], state, d, D, kernel, 1.3)
    rest = delay_shift(x[7:], d, D, kernel, 1.3, history=history_from_state(state))
    torch.testing.assert_close(rest, full[7:])


@pytest.mark.parametrize("kernel", ["linear", "gaussian"])
def test_delayed_linear_streaming_equals_multistep(kernel):
    T, D = 11, 4
    x = torch.randn(T, 2, 3, dtype=F64)
    W, d, b = torch.randn(5, 3, dtype=F64), torch.rand(5, 3, dtype=F64) * D, torch.randn(5, dtype=F64)
    full = delayed_linear(x, W, d, D, b, kernel, 0.8)
    state, outs = None, []
    for t in range(T):
        y, state = delayed_linear_step(x[t], state, W, d, D, b, kernel, 0.8)
        outs.append(y)
    torch.testing.assert_close(torch.stack(outs), full)


def test_streaming_gradient_flows_through_ring_buffer():
    x = torch.randn(6, 2, 2, dtype=F64, requires_grad=True)
    d = torch.tensor([1.5, 3.2], dtype=F64, requires_grad=True)
    state, outs = None, []
    for t in range(6):
        y, state = delay_step(x[t], state, d, 4)
        outs.append(y)
    g = torch.randn(6, 2, 2, dtype=F64)
    a = torch.autograd.grad((torch.stack(outs) * g).sum(), (x, d))
    b = torch.autograd.grad((delay_shift(x, d, 4) * g).sum(), (x, d))
    for p, q in zip(a, b):
        torch.testing.assert_close(p, q)


# ---------------------------------------------------------------- helpers
def test_parametrisation_rounding_and_anneal():
    d = torch.tensor([0.0, 0.5, 3.0, 8.0])
    back = delay_from_raw(raw_from_delay(d, 8), 8)
    assert torch.all((back > 0) & (back < 8))
    torch.testing.assert_close(back, d.clamp(8e-3, 8 - 8e-3))
    assert round_delay(torch.tensor([0.49, 0.5, 2.5, 3.7])).tolist() == [0.0, 1.0, 3.0, 4.0]
    assert anneal(0, 4.0, 0.5, 10) == 4.0 and anneal(10, 4.0, 0.5, 10) == 0.5
    assert anneal(5, 4.0, 0.5, 10) == pytest.approx(2.25)
    assert anneal(5, 4.0, 1.0, 10, "exp") == pytest.approx(2.0)
    assert anneal(99, 4.0, 0.5, 10) == 0.5


# ---------------------------------------------------------------- bad input
def test_bad_input_errors_name_the_argument():
    x = torch.randn(5, 2, 3)
    d = torch.ones(3)
    with pytest.raises(ValueError, match="max_delay"):
        delay_shift(x, d, -1)
    with pytest.raises(TypeError, match="max_delay"):
        delay_shift(x, d, 2.5)
    with pytest.raises(TypeError, match="x must have a floating dtype"):
        delay_shift(x.long(), d, 3)
    with pytest.raises(ValueError, match="x must have at least 2"):
        delay_shift(torch.randn(5), d, 3)
    with pytest.raises(ValueError, match="delay of shape"):
        delay_shift(x, torch.ones(4), 3)
    with pytest.raises(ValueError, match=r"delay must lie in \[0, max_delay=3\]"):
        delay_shift(x, torch.full((3,), 3.5), 3)
    with pytest.raises(ValueError, match="kernel"):
        delay_shift(x, d, 3, "cubic")
    with pytest.raises(ValueError, match="sigma"):
        delay_shift(x, d, 3, "gaussian", sigma=-1.0)
    with pytest.raises(ValueError, match="history"):
        delay_shift(x, d, 3, history=torch.zeros(2, 2, 3))
    with pytest.raises(ValueError, match="weight must have shape"):
        delayed_linear(x, torch.randn(4, 2), torch.ones(4, 2), 3)
    with pytest.raises(ValueError, match="impl='sparse' needs kernel='linear'"):
        delayed_linear(x, torch.randn(4, 3), torch.ones(4, 3), 3, kernel="gaussian", impl="sparse")
    with pytest.raises(ValueError, match="bias"):
        delayed_linear(x, torch.randn(4, 3), torch.ones(4, 3), 3, bias=torch.zeros(3))
    with pytest.raises(TypeError, match="DelayState"):
        delay_step(x[0], (torch.zeros(3, 2, 3),), d, 3)
    with pytest.raises(ValueError, match="state.buffer"):
        delay_step(x[0], DelayState(torch.zeros(2, 2, 3), torch.tensor(0)), d, 3)


@needs_cuda
def test_cuda_matches_cpu():
    x = torch.randn(30, 4, 6)
    d = torch.rand(6) * 9
    for kernel in ("linear", "gaussian"):
        torch.testing.assert_close(delay_shift(x.cuda(), d.cuda(), 9, kernel, 1.0).cpu(),
                                   delay_shift(x, d, 9, kernel, 1.0), atol=1e-5, rtol=1e-5)
    W, dd = torch.randn(5, 6), torch.rand(5, 6) * 9
    torch.testing.assert_close(delayed_linear(x.cuda(), W.cuda(), dd.cuda(), 9).cpu(),
                               delayed_linear(x, W, dd, 9), atol=1e-4, rtol=1e-4)
