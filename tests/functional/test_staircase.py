"""The one staircase: fire == staircase == quantize == fused quantizer == multi-level scan, every
built-in family and level count, forward and every gradient; the truncation rule; the boxcar
predicate; torch.func support of the spike/staircase Functions."""

import math

import pytest
import torch
from torch.func import grad, vmap

from surrogate_nets import surrogate as S
from surrogate_nets.functional import (
    MultiSpikeFunction, SpikeFunction, StaircaseFunction, fire, lif_scan, quantize, spike, staircase,
)
from surrogate_nets.functional.staircase import (
    boundary_sums, exact_staircase, is_unit_boxcar, level_count, window_radius,
)
from surrogate_nets.quant.fake_quant import fake_quantize
from surrogate_nets.surrogate.families import BUILTINS

f64 = torch.float64
LEVELS = [1, 2, 3, 9, 16, 255]


def _membrane(levels, n=48, seed=0):
    """Dyadic points ``j/8 + 1/16`` over ``[-2, L + 2]``: ``h - 1/2`` is exact and no point is on a
    boundary or a box edge, so every path sees bit-identical arguments."""
    g = torch.Generator().manual_seed(seed)
    j = torch.randint(-16, 8 * (levels + 2), (n,), generator=g)
    return (j.to(f64) / 8 + 1 / 16)


def _paths(sur, h, levels):
    """The five callers of the staircase on the same input; each returns (output, [grads...])."""
    L = levels
    step = torch.tensor(1.0, dtype=f64, requires_grad=True)
    outs = {
        "fire": lambda h: fire(h, 1.0, sur, L),
        "staircase": lambda h: staircase(h - 0.5, L, sur),
        "quantize": lambda h: quantize(h - 0.5, 1.0, L, sur),
        "quantize_step": lambda h: quantize(h - 0.5, step, L, sur),
        "fake_quant": lambda h: fake_quantize(h - 0.5, step, 0, L, sur),
        "scan": lambda h: lif_scan(h[None], None, 1.0, 1.0, None, sur, "none", levels=L,
                                   backend="torch").spikes[0],
    }
    return outs, step


@pytest.mark.parametrize("levels", LEVELS)
@pytest.mark.parametrize("family", BUILTINS, ids=lambda c: c.name)
@pytest.mark.parametrize("learnable", [False, True], ids=["fixed", "learnable"])
def test_every_caller_is_the_same_staircase(family, levels, learnable):
    sur = family(learnable=learnable).double()
    base = _membrane(levels)
    w = torch.linspace(0.5, 1.5, base.numel(), dtype=f64)
    outs, step = _paths(sur, base, levels)
    results = {}
    for name, fn in outs.items():
        h = base.clone().requires_grad_()
        out = fn(h)
        wrt = [h] + ([sur.raw_alpha] if learnable else [])
        gs = torch.autograd.grad((out * w).sum(), wrt)
        results[name] = (out.detach(), gs)
    ref_out, ref_g = results["fire"]
    assert torch.equal(ref_out, level_count(base, torch.tensor(1.0, dtype=f64), levels))
    for name, (out, gs) in results.items():
        torch.testing.assert_close(out, ref_out, rtol=0, atol=1e-12, msg=lambda m: f"{name}: {m}")
        for i, (a, b) in enumerate(zip(gs, ref_g)):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12, msg=lambda m: f"{name} grad {i}: {m}")
    # the step gradient: fused closed form == autograd through the composition
    steps = []
    for name in ("quantize_step", "fake_quant"):
        h = base.clone()
        step.grad = None
        (outs[name](h) * w).sum().backward()
        steps.append(step.grad.clone())
    torch.testing.assert_close(steps[0], steps[1], rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("family", BUILTINS, ids=lambda c: c.name)
def test_threshold_gradient_of_fire_equals_the_scan(family):
    sur = family().double()
    h0 = _membrane(9)
    for path in ("fire", "scan"):
        h = h0.clone().requires_grad_()
        th = torch.tensor(0.9, dtype=f64, requires_grad=True)
        out = fire(h, th, sur, 9) if path == "fire" else lif_scan(
            h[None], None, 1.0, th, None, sur, "none", levels=9, backend="torch").spikes[0]
        g = torch.autograd.grad(out.sum(), (h, th))
        if path == "fire":
            ref = g
        else:
            for a, b in zip(g, ref):
                torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    # d/dtheta sum_k H(h - k theta) := -sum_k k P'(h - k theta)
    expect = -sum(k * sur.derivative(h0 - 0.9 * k, sur.alpha) for k in range(1, 10)).sum()
    torch.testing.assert_close(ref[1], expect)


@pytest.mark.parametrize("family", BUILTINS, ids=lambda c: c.name)
@pytest.mark.parametrize("levels", [9, 255])
def test_truncation_rule_exact_sum_error_bound_zero(family, levels):
    """One rule: the sums equal the full sum over every boundary (error bound 0) for every family;
    a window is used only where the dropped terms vanish identically."""
    sur = family().double()
    u = torch.linspace(-3, levels + 3, 2001, dtype=f64)
    a = sur.alpha
    full = sum(sur.derivative(u - k - 0.5, a) for k in range(levels))
    full_a = sum(sur.d_alpha(u - k - 0.5, a) for k in range(levels))
    sums = boundary_sums(sur, u, a, 0, levels, wrt_alpha=True)
    torch.testing.assert_close(sums.sigma, full, rtol=1e-12, atol=1e-13)
    torch.testing.assert_close(sums.rho, full_a, rtol=1e-12, atol=1e-13)
    windowed = window_radius(sur, False) is not None
    assert windowed == (math.isfinite(family.support) or family is S.DSpike)


def test_learnable_compact_family_sums_every_boundary():
    sur = S.Triangle(alpha=0.3, learnable=True).double()  # support 1/0.3 steps, not known on the host
    assert window_radius(sur, False) is None
    u = torch.linspace(-3, 40, 501, dtype=f64)
    full = sum(sur.derivative(u - k - 0.5, sur.alpha) for k in range(31))
    torch.testing.assert_close(boundary_sums(sur, u, sur.alpha, 0, 31).sigma, full)


class HalfBox(S.Rectangle):
    """A user family: the boxcar at half height (overrides ``derivative`` only)."""

    def derivative(self, x, alpha):
        return 0.5 * super().derivative(x, alpha)


class WideBox(S.Rectangle):
    """Overrides ``derivative`` with a wider support without declaring it: must not be windowed."""

    def derivative(self, x, alpha):
        return 0.25 * ((x >= -2) & (x < 2)).to(x.dtype)


def test_boxcar_predicate_respects_derivative_overrides():
    assert is_unit_boxcar(S.StraightThrough()) and is_unit_boxcar(S.Rectangle())
    assert not is_unit_boxcar(S.Rectangle(alpha=0.5))
    assert not is_unit_boxcar(S.Rectangle(learnable=True))
    assert not is_unit_boxcar(HalfBox())
    s = HalfBox().double()
    x0 = torch.tensor([0.1, 0.4, 0.7, 0.95, 1.3], dtype=f64)
    grads = []
    for fn in (lambda x: spike(x - 0.5, s), lambda x: quantize(x, 1.0, 1, s),
               lambda x: fake_quantize(x, torch.tensor(1.0, dtype=f64), 0, 1, s),
               lambda x: fire(x, 0.5, s)):
        x = x0.clone().requires_grad_()
        fn(x).sum().backward()
        grads.append(x.grad)
    expect = torch.tensor([0.5, 0.5, 0.5, 0.5, 0.0], dtype=f64)
    for g in grads:
        torch.testing.assert_close(g, expect)
    w = WideBox().double()
    assert window_radius(w, False) is None
    u = torch.linspace(-1, 20, 301, dtype=f64)
    full = sum(w.derivative(u - k - 0.5, w.alpha) for k in range(16))
    torch.testing.assert_close(boundary_sums(w, u, w.alpha, 0, 16).sigma, full)


def test_exact_forward_ties_round_up():
    u = torch.tensor([-0.5, -0.49, 0.5, 1.5, 2.4999, 7.5, 9.0], dtype=f64)
    assert exact_staircase(u, 0, 7).tolist() == [0.0, 0.0, 1.0, 2.0, 2.0, 7.0, 7.0]


# ----------------------------------------------------------------------------------- torch.func
def test_func_grad_through_spike_and_quantize():
    sur = S.ATan().double()
    x = torch.linspace(-2, 2, 9, dtype=f64)
    torch.testing.assert_close(grad(lambda x: spike(x, sur).sum())(x), sur.derivative(x, sur.alpha))
    gq = grad(lambda x: quantize(x, 1.0, 3, "straight_through").sum())(x)
    torch.testing.assert_close(gq, ((x >= 0) & (x < 3)).to(f64))


def test_vmap_over_a_batch_of_alphas():
    """A sharpness sweep in one call: vmap over alpha of the x-gradient and of the alpha-gradient."""
    sur = S.Sigmoid().double()
    x = torch.linspace(-1, 1.5, 11, dtype=f64)
    alphas = torch.tensor([0.5, 1.0, 4.0, 10.0], dtype=f64)
    gx = vmap(grad(lambda x, a: SpikeFunction.apply(x, a, sur, False).sum()), in_dims=(None, 0))(x, alphas)
    ga = vmap(grad(lambda a, x: SpikeFunction.apply(x, a, sur, False).sum()), in_dims=(0, None))(alphas, x)
    for i, a in enumerate(alphas):
        torch.testing.assert_close(gx[i], sur.derivative(x, a))
        torch.testing.assert_close(ga[i], sur.d_alpha(x, a).sum())
    u = x * 3
    gs = vmap(grad(lambda u, a: StaircaseFunction.apply(u, a, sur, 0, 5, False).sum()), in_dims=(None, 0))(u, alphas)
    for i, a in enumerate(alphas):
        torch.testing.assert_close(gs[i], sum(sur.derivative(u - k - 0.5, a) for k in range(5)))
    th = torch.tensor([0.5, 1.0, 2.0], dtype=f64)
    gth = vmap(grad(lambda t, h: MultiSpikeFunction.apply(h, t, alphas[1], sur, 3, False).sum()),
               in_dims=(0, None))(th, u)
    for i, t in enumerate(th):
        torch.testing.assert_close(gth[i], -sum(k * sur.derivative(u - k * t, alphas[1]) for k in (1, 2, 3)).sum())


def test_vmap_over_a_batch_of_inputs_of_quantize():
    x = torch.randn(4, 6, dtype=f64)
    g = vmap(grad(lambda x: quantize(x, 0.5, 7, "atan", signed=True).sum()))(x)
    for i in range(4):
        xi = x[i].clone().requires_grad_()
        quantize(xi, 0.5, 7, "atan", signed=True).sum().backward()
        torch.testing.assert_close(g[i], xi.grad)
