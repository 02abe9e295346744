"""surrogate_nets.functional.lif_scan / fire / step functions: exactness, gradients, backends, errors."""

import itertools

import pytest
import torch

import reference as ref
from devices import needs_cuda
from surrogate_nets import surrogate as S
from surrogate_nets.functional import (
    LIFScanFunction, MultiSpikeFunction, fire, lif_backends, lif_scan, lif_step, register_lif_backend,
    spike, staircase, unregister_backend,
)
from surrogate_nets import functional as F
from surrogate_nets.functional import lif as lif_mod

MODES = list(itertools.product(["subtract", "zero", "none"], [False, True], [False, True], [1, 3]))
f64 = torch.float64


def _inputs(levels=1, T=6, B=3, N=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = (torch.randn(T, B, N, generator=g, dtype=f64) * (1.5 if levels == 1 else 3.0) + 0.5)
    v0 = torch.randn(B, N, generator=g, dtype=f64) * 0.5
    beta = torch.rand(N, generator=g, dtype=f64) * 0.8 + 0.1
    th = torch.rand(N, generator=g, dtype=f64) * 0.6 + 0.7
    alpha = torch.tensor(2.0, dtype=f64)
    return [t.requires_grad_() for t in (x, v0, beta, th, alpha)]


@pytest.mark.parametrize("reset, detach, decay, levels", MODES)
def test_scan_equals_reference_loop(reset, detach, decay, levels):
    x, v0, beta, th, alpha = _inputs(levels)
    sur = S.ATan()
    r = lif_scan(x, v0, beta, th, alpha, sur, reset, detach, decay, levels, backend="torch")
    # reference with alpha as a differentiable tensor
    class A(S.ATan):
        @property
        def alpha(self):
            return alpha

    exp, fin, tr = ref.run("lif", x, {"beta": beta, "threshold": th}, A(), reset, detach, levels, decay,
                           {"v": v0})
    assert torch.equal(r.spikes, exp)
    torch.testing.assert_close(r.h, tr["h"], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(r.v, fin["v"], rtol=1e-12, atol=1e-12)
    w1, w2 = torch.randn_like(exp), torch.randn_like(exp)
    wrt = (x, v0, beta, th, alpha)
    g = torch.autograd.grad((r.spikes * w1).sum() + (r.h * w2).sum() + r.v.sum(), wrt)
    ge = torch.autograd.grad((exp * w1).sum() + (tr["h"] * w2).sum() + fin["v"].sum(), wrt)
    for name, a, b in zip(["x", "v0", "beta", "threshold", "alpha"], g, ge):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6, msg=lambda m: f"{name}: {m}")


@pytest.mark.parametrize("reset, detach, decay, levels", [m for m in MODES if not m[1]])
def test_gradcheck_relaxed_scan(reset, detach, decay, levels):
    """With the relaxation in the forward, the hand-written BPTT is the exact gradient.

    (``detach_reset=True`` deliberately is not the gradient of its forward; it is checked
    against the reference loop above.)
    """
    x, v0, beta, th, alpha = _inputs(levels, T=4, B=2, N=3)
    sur = S.Sigmoid()

    def fn(x, v0, beta, th, alpha):
        return LIFScanFunction.apply(x, v0, beta, th, alpha, sur, reset, detach, decay, levels, True)

    assert torch.autograd.gradcheck(fn, (x, v0, beta, th, alpha), eps=1e-6, atol=1e-5)


def test_gradcheck_multispike_relaxed():
    h = (torch.randn(5, 3, dtype=f64) * 3).requires_grad_()
    th = torch.tensor([0.8, 1.0, 1.3], dtype=f64, requires_grad=True)
    alpha = torch.tensor(1.5, dtype=f64, requires_grad=True)
    sur = S.ATan()
    assert torch.autograd.gradcheck(
        lambda h, th, a: MultiSpikeFunction.apply(h, th, a, sur, 4, True), (h, th, alpha))


def test_fire_levels():
    h = (torch.randn(200, dtype=f64) * 4).requires_grad_()
    sur = S.ATan(learnable=True).double()
    th = torch.tensor(0.7, dtype=f64, requires_grad=True)
    # L = 1 is exactly spike(h - theta), gradients included, for any threshold
    a, b = fire(h, th, sur, 1), spike(h - th, sur)
    assert torch.equal(a, b)
    ga = torch.autograd.grad(a.sum(), (h, th, sur.raw_alpha))
    gb = torch.autograd.grad(b.sum(), (h, th, sur.raw_alpha))
    for u, v in zip(ga, gb):
        torch.testing.assert_close(u, v)
    # L > 1: counts clamp(floor(h / theta), 0, L), gradient = sum of spikes at k * theta
    out = fire(h, th, sur, 4)
    assert torch.equal(out, torch.clamp(torch.floor(h / th), 0, 4).detach())
    ref_out = sum(spike(h - k * th, sur) for k in range(1, 5))
    g1 = torch.autograd.grad(out.sum(), (h, th, sur.raw_alpha))
    g2 = torch.autograd.grad(ref_out.sum(), (h, th, sur.raw_alpha))
    for u, v in zip(g1, g2):
        torch.testing.assert_close(u, v)
    # theta = 1: the same gradient as the staircase quantizer staircase(h - 1/2, L)
    s2 = S.ATan().double()
    hh = h.detach().requires_grad_()
    (gf,) = torch.autograd.grad(fire(hh, 1.0, s2, 3).sum(), hh)
    (gs,) = torch.autograd.grad(staircase(hh - 0.5, 3, s2).sum(), hh)
    torch.testing.assert_close(gf, gs)
    assert torch.equal(fire(hh, 1.0, s2, 3), staircase(hh - 0.5, 3, s2))


def test_needs_input_grad_and_single_node():
    x = torch.randn(50, 2, 3, requires_grad=True)
    beta = torch.full((3,), 0.5)
    r = lif_scan(x, None, beta, 1.0, backend="torch")  # the torch Function itself
    assert type(r.spikes.grad_fn).__name__ == "LIFScanFunctionBackward"
    r.spikes.sum().backward()
    assert x.grad is not None and beta.grad is None
    # nothing requires grad: no graph at all
    r2 = lif_scan(x.detach(), None, 0.5, 1.0)
    assert r2.spikes.grad_fn is None
    # only one output used: the others' gradients are skipped, not materialised
    y = torch.randn(5, 2, 3, requires_grad=True)
    lif_scan(y, None, 0.9, 1.0).v.sum().backward()
    assert torch.isfinite(y.grad).all()


def test_autograd_backend_and_step_agree_with_scan():
    x, v0, beta, th, alpha = _inputs(1)
    sur = S.ATan()
    a = lif_scan(x, v0, beta, th, None, sur, backend="torch")
    b = lif_scan(x, v0, beta, th, None, sur, backend="autograd")
    for u, v in zip(a, b):
        torch.testing.assert_close(u, v)
    v = v0
    for t in range(x.shape[0]):
        s, v, h = lif_step(x[t], v, beta, th, sur)
        torch.testing.assert_close(s, a.spikes[t])
    torch.testing.assert_close(v, a.v)


def test_backend_registry_seam():
    calls = []

    def fake(**kw):
        calls.append(kw["x"].shape)
        return lif_mod._scan_torch(**kw)

    register_lif_backend("fake", fake, supports=lambda **kw: kw["x"].dtype == torch.float64)
    try:
        assert "fake" in lif_backends()
        # T = 1: the fused CPU kernels (registered first) decline single steps
        lif_scan(torch.randn(1, 2, 2))  # float32: not supported -> torch
        assert calls == []
        lif_scan(torch.randn(1, 2, 2, dtype=f64))
        lif_scan(torch.randn(1, 2, 2), backend="fake")
        assert len(calls) == 2
    finally:
        unregister_backend("lif", "fake")
    assert "fake" not in lif_backends()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_scan_dtypes(dtype):
    x = (torch.randn(8, 2, 5) * 2).to(dtype).requires_grad_()
    beta = torch.full((5,), 0.7, requires_grad=True)  # float32 parameter
    th = torch.tensor(1.0, requires_grad=True)
    sur = S.ATan(learnable=True)
    r = lif_scan(x, None, beta, th, None, sur, levels=2)
    assert r.spikes.dtype == dtype and r.h.dtype == dtype and r.v.dtype == dtype
    (r.spikes.float().sum() + r.v.float().sum()).backward()
    assert x.grad.dtype == dtype and beta.grad.dtype == torch.float32
    assert torch.isfinite(beta.grad).all() and torch.isfinite(sur.raw_alpha.grad).all()


def test_lif_scan_bad_input():
    x = torch.randn(4, 2, 3)
    with pytest.raises(ValueError, match=r"v0 must have shape x.shape\[1:\] = \(2, 3\), got .*\(2, 4\)"):
        lif_scan(x, torch.zeros(2, 4))
    with pytest.raises(ValueError, match="x must have at least 2 dimensions"):
        lif_scan(torch.randn(4))
    with pytest.raises(ValueError, match=r"T >= 1"):
        lif_scan(torch.randn(0, 2))
    with pytest.raises(TypeError, match="x must have a floating dtype"):
        lif_scan(torch.ones(3, 2, dtype=torch.int32))
    with pytest.raises(ValueError, match=r"beta must lie in \(0.0, 1.0\], got 1.5"):
        lif_scan(x, beta=1.5)
    with pytest.raises(ValueError, match=r"beta must lie in \(0, 1\]"):
        lif_scan(x, beta=torch.tensor([0.5, 0.0, 0.5]))
    with pytest.raises(ValueError, match="threshold must be finite and > 0, got -1"):
        lif_scan(x, threshold=-1)
    with pytest.raises(ValueError, match=r"threshold of shape \(4,\) must broadcast"):
        lif_scan(x, threshold=torch.ones(4))
    with pytest.raises(ValueError, match="reset must be one of"):
        lif_scan(x, reset="hard")
    with pytest.raises(ValueError, match="levels must be >= 1"):
        lif_scan(x, levels=0)
    with pytest.raises(ValueError, match="backend must be one of"):
        lif_scan(x, backend="nope")


@needs_cuda
def test_cuda_same_code_path():
    torch.manual_seed(0)
    x = torch.randn(20, 4, 8, dtype=f64) * 1.5
    outs = {}
    for dev in ("cpu", "cuda"):
        xd = x.to(dev).requires_grad_()
        beta = torch.full((8,), 0.6, dtype=f64, device=dev, requires_grad=True)
        th = torch.tensor(1.0, dtype=f64, device=dev, requires_grad=True)
        sur = S.ATan(learnable=True).double().to(dev)
        r = lif_scan(xd, None, beta, th, None, sur, levels=2)
        (r.spikes.sum() + r.v.sum()).backward()
        outs[dev] = [r.spikes, xd.grad, beta.grad, th.grad, sur.raw_alpha.grad]
    for a, b in zip(outs["cpu"], outs["cuda"]):
        torch.testing.assert_close(a, b.cpu())


@pytest.mark.parametrize("levels", [1, 3])
def test_alpha_grad_scale_auto_matches_per_step_spikes(levels):
    """grad_scale='auto' is 1/sqrt(numel of the whole [T, B, ...] call / numel(alpha)), for every backend."""
    x = torch.randn(9, 3, 4, dtype=f64) * 2.5
    grads = []
    for mode in ("torch", "autograd", "ref"):
        sur = S.ATan(learnable=True, grad_scale=None if mode == "ref" else "auto").double()
        if mode != "ref":
            out = lif_scan(x, None, 0.7, 1.0, None, sur, levels=levels, backend=mode).spikes
        else:
            out = ref.run("lif", x, {"beta": 0.7, "threshold": 1.0}, sur, levels=levels)[0]
        out.sum().backward()
        grads.append(sur.raw_alpha.grad)
    torch.testing.assert_close(grads[0], grads[1])
    torch.testing.assert_close(grads[0], grads[2] / x.numel() ** 0.5)


def test_fire_and_step_functions_reject_bad_arguments():
    h = torch.randn(4, 3)
    with pytest.raises(ValueError, match=r"levels must be >= 1, got 0"):
        fire(h, 1.0, None, 0)
    with pytest.raises(TypeError, match=r"levels must be an int, got float 2.5"):
        fire(h, 1.0, None, 2.5)
    with pytest.raises(ValueError, match=r"threshold must be finite and > 0, got -1.0"):
        fire(h, -1.0)
    with pytest.raises(TypeError, match=r"h must have a floating dtype"):
        fire(torch.ones(3, dtype=torch.long))
    # a state of the wrong shape is an error, never a silent broadcast
    with pytest.raises(ValueError, match=r"v must have the shape of x \(4, 3\), got .*\(3,\)"):
        lif_step(h, torch.zeros(3), 0.5)
    with pytest.raises(TypeError, match=r"v must have a floating dtype"):
        lif_step(h, torch.zeros(4, 3, dtype=torch.long), 0.5)


@pytest.mark.parametrize("call, exc, msg", [
    (lambda x, v: lif_step(x, v, 2.0), ValueError, r"beta must lie in \(0.0, 1.0\], got 2.0"),
    (lambda x, v: lif_step(x, v, float("nan")), ValueError, "beta must lie in .*got nan"),
    (lambda x, v: lif_step(x, v, 0.0), ValueError, "beta must lie in"),
    (lambda x, v: lif_step(x, v, "0.5"), TypeError, "beta must be a real number"),
    (lambda x, v: F.synaptic_step(x, v, v, 2.0, 0.5), ValueError, "alpha_syn must lie in .*got 2.0"),
    (lambda x, v: F.synaptic_step(x, v, v, 0.5, float("nan")), ValueError, "beta must lie in"),
    (lambda x, v: F.alif_step(x, v, v, 0.5, 1.5), ValueError, "rho must lie in .*got 1.5"),
    (lambda x, v: F.li_step(x, v, -0.1), ValueError, "beta must lie in"),
    (lambda x, v: F.rlif_step(x, v, v, 2.0, lambda s: s), ValueError, "beta must lie in"),
    (lambda x, v: staircase(x, 3, signed="yes"), TypeError, "signed must be a bool .*'yes'"),
    (lambda x, v: F.quantize(x, 0.1, 3, signed=1), TypeError, "signed must be a bool"),
    (lambda x, v: F.alif_scan(x[None], beta=1.5), ValueError, "beta must lie in"),
    (lambda x, v: F.synaptic_scan(x[None], alpha_syn=0.0), ValueError, "alpha_syn must lie in"),
    (lambda x, v: F.li_scan(x[None], beta=float("inf")), ValueError, "beta must lie in"),
    (lambda x, v: F.li_scan(x[None], backend="nope"), ValueError, "backend must be one of"),
])
def test_step_functions_range_checks(call, exc, msg):
    """Issue 10 item 6: float decays out of (0, 1] (nan included) and a non-bool ``signed``."""
    x, v = torch.zeros(2, 3), torch.zeros(2, 3)
    with pytest.raises(exc, match=msg):
        call(x, v)
