"""The specialised numba kernels for binary spikes (numba_lif_fast): taken when they apply, and
equal to backend="torch" (forward exactly, every gradient) in every reset mode and family."""

import itertools

import pytest
import torch

pytest.importorskip("numba", reason="numba is not installed (pip install surrogate-nets[fast])")

import lif_cases as C  # noqa: E402
from surrogate_nets import surrogate as S  # noqa: E402
from surrogate_nets.functional import lif_scan  # noqa: E402
from surrogate_nets.kernels import numba_lif, numba_lif_fast  # noqa: E402

FAST = sorted({cls.name for cls in numba_lif_fast.FAST_CODES})


def _run(backend, name, reset, detach, decay, dtype, loss, per_neuron=True):
    x, v0, beta, th = C.inputs(1, T=6, B=3, N=5, dtype=dtype, per_neuron=per_neuron)
    sur = S.get(name).to(dtype)  # fixed alpha: the fast backward does not give alpha gradients
    r = lif_scan(x, v0, beta, th, None, sur, reset, detach, decay, 1, backend=backend)
    g = torch.Generator().manual_seed(3)
    w = torch.randn(r.spikes.shape, generator=g).to(dtype)
    ls = {"weighted": (r.spikes * w).sum(), "sum": r.spikes.sum(),
          "with_v": (r.spikes * w).sum() + r.v.pow(2).sum()}[loss]
    return (r.spikes, r.h, r.v), torch.autograd.grad(ls, [x, v0, beta, th])


@pytest.mark.parametrize("reset, detach, decay", list(itertools.product(["subtract", "zero", "none"],
                                                                        [False, True], [False, True])))
@pytest.mark.parametrize("loss", ["weighted", "with_v"])
def test_fast_kernels_equal_torch_every_mode(reset, detach, decay, loss, monkeypatch):
    calls = []
    orig_f, orig_b = numba_lif_fast.fwd1, numba_lif_fast.bwd1
    monkeypatch.setattr(numba_lif_fast, "fwd1", lambda *a: calls.append("f") or orig_f(*a))
    monkeypatch.setattr(numba_lif_fast, "bwd1", lambda *a: calls.append("b") or orig_b(*a))
    got, g1 = _run("numba", "atan", reset, detach, decay, torch.float64, loss)
    assert calls == ["f", "b"], "the fast kernels were not taken"
    exp, g2 = _run("torch", "atan", reset, detach, decay, torch.float64, loss)
    for a, b in zip(got, exp):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    for n, a, b in zip(["x", "v0", "beta", "threshold"], g1, g2):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12, msg=lambda m: f"grad {n}: {m}")


@pytest.mark.parametrize("name", FAST)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_fast_kernels_every_family(name, dtype):
    got, g1 = _run("numba", name, "subtract", False, False, dtype, "sum", per_neuron=False)
    exp, g2 = _run("torch", name, "subtract", False, False, dtype, "sum", per_neuron=False)
    assert torch.equal(got[0], exp[0])
    tol = dict(rtol=1e-10, atol=1e-12) if dtype == torch.float64 else dict(rtol=2e-5, atol=2e-5)
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b, **tol)


def test_fast_backward_reads_one_row_of_a_constant_gradient(monkeypatch):
    """``out.sum().backward()`` hands an expanded gradient (stride 0 in time): one row is read."""
    seen = []
    orig = numba_lif_fast.bwd1
    monkeypatch.setattr(numba_lif_fast, "bwd1", lambda *a: seen.append(a[1].shape) or orig(*a))
    _run("numba", "atan", "subtract", False, False, torch.float64, "sum")
    assert seen == [(1, 15)]


def test_constants_are_in_the_input_dtype():
    for dt in (torch.float32, torch.float64):
        c = numba_lif_fast.constants(dt)
        assert c.dtype == dt and c[1] == 0.5 and c[2] == 1.0
    assert numba_lif._fast is numba_lif_fast


def _run_x_only(backend, name, reset, detach, decay, dtype, loss):
    """Only x (and v0) need gradients: the blocked kernel without parameter gradients."""
    x, v0, beta, th = C.inputs(1, T=6, B=3, N=300, dtype=dtype)
    beta, th = beta.detach(), th.detach()
    sur = S.get(name).to(dtype)
    r = lif_scan(x, v0, beta, th, None, sur, reset, detach, decay, 1, backend=backend)
    w = torch.randn(r.spikes.shape, generator=torch.Generator().manual_seed(3)).to(dtype)
    ls = {"weighted": (r.spikes * w).sum(), "sum": r.spikes.sum(),
          "with_v": (r.spikes * w).sum() + r.v.pow(2).sum()}[loss]
    return r.spikes, torch.autograd.grad(ls, [x, v0])


@pytest.mark.parametrize("reset, detach, decay", list(itertools.product(["subtract", "zero", "none"],
                                                                        [False, True], [False, True])))
@pytest.mark.parametrize("loss", ["sum", "with_v"])
def test_blocked_backward_without_parameter_grads(reset, detach, decay, loss, monkeypatch):
    calls = []
    orig = numba_lif_fast.bwd1
    # need_b, need_th are arguments 15 and 16
    monkeypatch.setattr(numba_lif_fast, "bwd1", lambda *a: calls.append(a[15:17]) or orig(*a))
    s1, g1 = _run_x_only("numba", "atan", reset, detach, decay, torch.float64, loss)
    assert calls == [(False, False)], "the blocked kernel without parameter gradients was not taken"
    s2, g2 = _run_x_only("torch", "atan", reset, detach, decay, torch.float64, loss)
    assert torch.equal(s1, s2)
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", FAST)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_blocked_backward_every_family(name, dtype):
    s1, g1 = _run_x_only("numba", name, "subtract", False, False, dtype, "weighted")
    s2, g2 = _run_x_only("torch", name, "subtract", False, False, dtype, "weighted")
    assert torch.equal(s1, s2)
    tol = dict(rtol=1e-10, atol=1e-12) if dtype == torch.float64 else dict(rtol=2e-5, atol=2e-5)
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b, **tol)


def test_fast_kernels_split_over_threads(monkeypatch):
    """Ranges [lo, hi) of neurons per thread give the same result as one call."""
    outs = []
    prev = torch.get_num_threads()
    for per_thread in (10 ** 9, 256):
        monkeypatch.setattr(numba_lif, "_MIN_PER_THREAD", per_thread)
        torch.set_num_threads(2)
        try:
            outs.append(_run_x_only("numba", "sigmoid", "zero", False, True, torch.float64, "with_v"))
        finally:
            torch.set_num_threads(prev)
    assert torch.equal(outs[0][0], outs[1][0])
    for a, b in zip(outs[0][1], outs[1][1]):
        assert torch.equal(a, b)


def test_bf16_conversions_are_torchs():
    """The fused narrow save (save_dtype=bfloat16, float32): the same bits as
    ``(h - theta).to(torch.bfloat16)`` and the same membrane as ``D.float() + theta``."""
    g = torch.Generator().manual_seed(0)
    h = torch.randn(5, 700, generator=g) * 3
    h[0, :6] = torch.tensor([float("inf"), -float("inf"), 1e38, -0.0, 3.0e-39, 1.0 + 2 ** -8])
    th = torch.rand(700, generator=g) + 0.5
    th[5] = 0.0
    q = torch.empty(5, 700, dtype=torch.int16)
    numba_lif_fast.to_bf16(h.numpy(), th.numpy(), q.numpy(), 0, 700)
    ref = (h - th).to(torch.bfloat16)
    assert torch.equal(q, ref.view(torch.int16))
    back = torch.empty(5, 700)
    numba_lif_fast.from_bf16(q.numpy(), th.numpy(), back.numpy(), 0, 700)
    assert torch.equal(back, ref.float() + th)


def test_float32_exp_is_accurate():
    """The vectorisable float32 exp of the sigmoid backward: within 1e-7 relative of exp over the
    normal range, clamped (finite, positive) outside it; float64 is numpy's exp."""
    import numpy as np
    from numba import njit

    @njit
    def run(x, out):
        for i in range(x.size):
            out[i] = numba_lif_fast._exp(x[i])

    x = np.linspace(-100, 100, 100001).astype(np.float32)
    out = np.empty_like(x)
    run(x, out)
    ref = np.exp(x.astype(np.float64))
    ok = (ref > 1e-37) & (ref < 1e38)
    assert np.max(np.abs(out[ok] - ref[ok]) / ref[ok]) < 1e-7
    assert np.all(np.isfinite(out)) and np.all(out > 0)
    x64 = np.linspace(-30, 30, 101)
    out64 = np.empty_like(x64)
    run(x64, out64)
    np.testing.assert_allclose(out64, np.exp(x64), rtol=1e-15)  # libm vs numpy: ulps
