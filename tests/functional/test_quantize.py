"""surrogate_nets.functional.quantize: exact staircase forward, LSQ gradients with the boxcar."""

import pytest
import torch

from surrogate_nets import surrogate as S
from surrogate_nets.functional import StaircaseFunction, level_range, quantize, spike, staircase


def lsq_reference(x, step, lo, hi):
    """Plain autograd LSQ (Esser et al. 2020), clip-then-round, straight-through round."""
    u = torch.clamp(x / step, lo, hi)
    r = u + (torch.floor(u + 0.5) - u).detach()
    return r * step


def _no_ties(u):
    """Move values away from rounding ties and range edges (measure-zero disagreements)."""
    frac = u - torch.floor(u)
    return u + 0.01 * ((frac - 0.5).abs() < 1e-3) + 0.01 * (frac < 1e-3)


@pytest.mark.parametrize("levels, signed", [(1, False), (3, False), (15, False), (255, False),
                                            (15, True), (2, True), (255, True)])
def test_forward_on_grid_and_in_range(levels, signed):
    step = 0.173
    x = torch.randn(10_000) * levels * step
    q = quantize(x, step, levels, "atan", signed=signed)
    lo, hi = level_range(levels, signed)
    k = q / step
    torch.testing.assert_close(k, torch.round(k), rtol=0, atol=1e-4)
    assert k.min() >= lo - 1e-4 and k.max() <= hi + 1e-4
    # exact: equals step * clamp(floor(x/step + 1/2))
    assert torch.equal(q, torch.clamp(torch.floor(x / step + 0.5), lo, hi) * step)


def test_level_range():
    assert level_range(15, False) == (0, 15)
    assert level_range(15, True) == (-8, 7)
    assert level_range(255, True) == (-128, 127)
    assert level_range(2, True) == (-1, 1)
    assert level_range(1, True) == (-1, 0)


@pytest.mark.parametrize("levels, signed", [(3, False), (15, False), (255, False), (15, True)])
def test_straight_through_equals_lsq_exactly(levels, signed):
    lo, hi = level_range(levels, signed)
    step0 = 0.05
    u = _no_ties(torch.randn(4000, dtype=torch.float64) * (hi - lo) * 0.7)
    x = (u * step0).requires_grad_()
    g = torch.randn(4000, dtype=torch.float64)
    step = torch.tensor(step0, dtype=torch.float64, requires_grad=True)
    quantize(x, step, levels, "straight_through", signed=signed).backward(g)
    x2 = x.detach().clone().requires_grad_()
    step2 = torch.tensor(step0, dtype=torch.float64, requires_grad=True)
    lsq_reference(x2, step2, lo, hi).backward(g)
    torch.testing.assert_close(x.grad, x2.grad, rtol=0, atol=0)
    torch.testing.assert_close(step.grad, step2.grad, rtol=1e-12, atol=1e-12)
    # and the closed form of LSQ's step gradient
    uu = x.detach() / step0
    inside = (uu >= lo) & (uu < hi)
    dstep = torch.where(inside, torch.floor(uu + 0.5) - uu, torch.clamp(torch.floor(uu + 0.5), lo, hi))
    torch.testing.assert_close(step.grad, (g * dstep).sum())


def test_one_level_quantizer_is_the_spike():
    x = torch.randn(500, dtype=torch.float64)
    x[:3] = torch.tensor([0.5, 0.0, 1.0], dtype=torch.float64)  # a tie at 1/2 included
    for name in ("atan", "sigmoid", "triangle", "straight_through"):
        s = S.get(name, learnable=True).double()
        xa = x.clone().requires_grad_()
        qa = quantize(xa, 1.0, 1, s)
        qa.sum().backward()
        ga = s.raw_alpha.grad.clone()
        s.raw_alpha.grad = None
        xb = x.clone().requires_grad_()
        qb = spike(xb - 0.5, s)
        qb.sum().backward()
        assert torch.equal(qa, qb)
        torch.testing.assert_close(xa.grad, xb.grad)
        torch.testing.assert_close(ga, s.raw_alpha.grad)


@pytest.mark.parametrize("name", ["atan", "sigmoid", "triangle", "gaussian", "dspike", "straight_through"])
def test_gradcheck_against_relaxation(name):
    """Backward = true gradient of the DSQ-style relaxed staircase (x, step, alpha)."""
    s = S.get(name, learnable=True).double()
    levels = 3
    u = torch.rand(10, dtype=torch.float64) * 5 - 1
    frac = u - torch.floor(u)
    u = u + 0.05 * ((frac - 0.5).abs() < 0.02)  # away from boxcar edges
    x = (u * 0.4).requires_grad_()
    step = torch.tensor(0.4, dtype=torch.float64, requires_grad=True)
    raw = s.raw_alpha.detach().clone().requires_grad_()

    def fn(x, step, raw):
        alpha = torch.nn.functional.softplus(raw) + 1e-6
        return StaircaseFunction.apply(x / step, alpha, s, 0, levels, True) * step

    assert torch.autograd.gradcheck(fn, (x, step, raw), eps=1e-6, atol=1e-5)


def test_staircase_window_matches_full_sum():
    """For many levels only the nearest boundaries are visited; compact families lose nothing."""
    s = S.Triangle(alpha=1.0).double()
    u = torch.linspace(-3, 40, 3001, dtype=torch.float64)
    a = s.alpha.double()
    windowed = s.staircase_derivative(u, a, 0, 31)
    full = sum(s.derivative(u - k - 0.5, a) for k in range(0, 31))
    torch.testing.assert_close(windowed, full)
    wa = s.staircase_derivative(u, a, 0, 31, wrt_alpha=True)
    fa = sum(s.d_alpha(u - k - 0.5, a) for k in range(0, 31))
    torch.testing.assert_close(wa, fa)


@pytest.mark.parametrize("name", ["atan", "sigmoid", "gaussian", "fast_sigmoid", "exponential"])
def test_staircase_sum_is_exact_for_unbounded_families(name):
    """The one truncation rule: unbounded families sum every boundary (no window error)."""
    s = S.get(name).double()
    u = torch.linspace(-3, 40, 1001, dtype=torch.float64)
    a = s.alpha.double()
    full = sum(s.derivative(u - k - 0.5, a) for k in range(0, 31))
    torch.testing.assert_close(s.staircase_derivative(u, a, 0, 31), full, rtol=1e-13, atol=1e-14)
    fa = sum(s.d_alpha(u - k - 0.5, a) for k in range(0, 31))
    torch.testing.assert_close(s.staircase_derivative(u, a, 0, 31, wrt_alpha=True), fa,
                               rtol=1e-13, atol=1e-14)


def test_per_channel_step_broadcast_and_grad_shape():
    step = torch.tensor([0.1, 0.2, 0.4]).view(3, 1).requires_grad_()
    x = torch.randn(3, 16, requires_grad=True)
    q = quantize(x, step, 7, signed=True)
    assert step.grad is None
    q.sum().backward()
    assert step.grad.shape == (3, 1)
    for c in range(3):
        assert torch.equal(q[c], torch.clamp(torch.floor(x[c].detach() / step[c, 0].detach() + 0.5), -4, 3) * step[c, 0].detach())


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_dtypes(dtype):
    x = torch.randn(64, dtype=dtype, requires_grad=True)
    step = torch.tensor(0.25, dtype=dtype, requires_grad=True)
    q = quantize(x, step, 15, "atan", signed=True)
    assert q.dtype == dtype
    q.sum().backward()
    assert x.grad.dtype == dtype and torch.isfinite(x.grad).all() and torch.isfinite(step.grad)


@pytest.mark.parametrize(
    "call, exc, msg",
    [
        (lambda: quantize(torch.randn(3), 0.0, 3), ValueError, "step"),
        (lambda: quantize(torch.randn(3), -1.0, 3), ValueError, "step"),
        (lambda: quantize(torch.randn(3), float("nan"), 3), ValueError, "step"),
        (lambda: quantize(torch.randn(3), 0.1, 0), ValueError, "levels"),
        (lambda: quantize(torch.randn(3), 0.1, -2), ValueError, "levels"),
        (lambda: quantize(torch.randn(3), 0.1, 2.5), TypeError, "levels"),
        (lambda: quantize(torch.arange(3), 0.1, 3), TypeError, "x must have a floating dtype"),
        (lambda: quantize(torch.randn(2, 3), torch.ones(4), 3), ValueError, "step of shape"),
        (lambda: quantize(torch.randn(3), torch.tensor([1, 2, 3]), 3), TypeError, "step"),
        (lambda: staircase(torch.randn(3), 3, "unknown"), ValueError, "unknown surrogate"),
    ],
)
def test_bad_input(call, exc, msg):
    with pytest.raises(exc, match=msg):
        call()
