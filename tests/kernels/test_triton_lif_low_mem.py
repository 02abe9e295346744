"""Triton LIF scan with ``save_dtype`` (issue 11 item 6 on the kernel): the forward kernel also
writes ``d = h - theta`` rounded to ``save_dtype``, the backward reads it instead of ``h``.

Held to the torch backend's ``save_dtype`` scan (``functional/lif_low_mem.py``): the same forward
as the plain Triton scan, gradients equal to the torch ``save_dtype`` gradients to rounding, the
narrow tensor really saved. bfloat16 runs on CUDA only (numpy, under the interpreter, has none).
"""

import pytest
import torch

from triton_setup import CUDA, DEV, import_triton, module_marks
from saved import by_storage, saved_tensors

import_triton()

import lif_cases as C  # noqa: E402
from surrogate_nets import kernels, neurons  # noqa: E402
from surrogate_nets import surrogate as S  # noqa: E402
from surrogate_nets.functional import lif_scan  # noqa: E402
from surrogate_nets.functional.backends import list_backends  # noqa: E402

pytestmark = module_marks()

SAVE_DTYPES = [torch.float16] + ([torch.bfloat16] if CUDA else [])


def _run(backend, save_dtype, dtype, reset="subtract", detach=False, decay=False, levels=1,
         name="atan"):
    g = torch.Generator().manual_seed(3)
    N = 6
    x = (torch.randn(12, 3, N, generator=g, dtype=torch.float64) * 0.6 + 0.35 * levels)
    x = x.to(DEV, dtype).requires_grad_()
    v0 = (torch.rand(3, N, generator=g, dtype=torch.float64) * 0.5).to(DEV, dtype).requires_grad_()
    beta = (torch.rand(N, generator=g, dtype=torch.float64) * 0.3 + 0.6).to(DEV, dtype).requires_grad_()
    th = (torch.rand(N, generator=g, dtype=torch.float64) * 0.4 + 0.8).to(DEV, dtype).requires_grad_()
    sur = S.get(name, learnable=True).to(device=DEV, dtype=dtype)
    w = torch.randn(x.shape, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    w = w.to(DEV, dtype)
    r = lif_scan(x, v0, beta, th, surrogate=sur, reset=reset, detach_reset=detach,
                 decay_input=decay, levels=levels, backend=backend, save_dtype=save_dtype)
    loss = (r.spikes * w).sum() + r.v.sum() + (r.h * w).sum()
    return r, torch.autograd.grad(loss, [x, v0, beta, th, sur.raw_alpha])


@pytest.mark.parametrize("save_dtype", SAVE_DTYPES, ids=str)
@pytest.mark.parametrize("reset, detach, decay, levels", [("subtract", False, False, 1),
                                                          ("zero", False, True, 1),
                                                          ("subtract", True, True, 3),
                                                          ("none", False, False, 1)])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=str)
def test_save_dtype_matches_torch_save_dtype(save_dtype, reset, detach, decay, levels, dtype):
    r, g = _run("triton", save_dtype, dtype, reset, detach, decay, levels)
    rt, gt = _run("torch", save_dtype, dtype, reset, detach, decay, levels)
    rp, gp = _run("triton", None, dtype, reset, detach, decay, levels)
    for a, b in zip(r, rp):  # the forward is the plain kernel's, bit for bit
        assert torch.equal(a, b)
    assert torch.equal(r.spikes, rt.spikes)
    tol = dict(rtol=1e-10, atol=1e-12) if dtype == torch.float64 else dict(rtol=1e-4, atol=1e-5)
    for i, (a, b, p) in enumerate(zip(g, gt, gp)):
        torch.testing.assert_close(a, b, **tol, msg=lambda m: f"grad {i}: {m}")
    # the narrow copy is really used: the input gradient moves off the plain one, boundedly
    err = float((g[0] - gp[0]).norm() / gp[0].norm())
    assert 0 < err < 1e-2, err


@pytest.mark.parametrize("name", ["sigmoid", "triangle", "fast_sigmoid"])
def test_save_dtype_other_families(name):
    r, g = _run("triton", torch.float16, torch.float64, name=name)
    rt, gt = _run("torch", torch.float16, torch.float64, name=name)
    assert torch.equal(r.spikes, rt.spikes)
    for a, b in zip(g, gt):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_save_dtype_half_input():
    """float16 input saving float16 distances: rebuilt in float16 as the torch backend does."""
    r, g = _run("triton", torch.float16, torch.float16)
    rp, gp = _run("triton", None, torch.float16)
    assert torch.equal(r.spikes, rp.spikes) and torch.equal(r.h, rp.h)
    for a, b in zip(g, gp):
        torch.testing.assert_close(a.double(), b.double(), rtol=2e-2, atol=2e-2)


def test_save_dtype_saves_the_narrow_distance():
    x = torch.randn(9, 2, 5, device=DEV, requires_grad=True)
    full = [(t.dtype, t.shape) for t in by_storage(saved_tensors(
        lambda: lif_scan(x, beta=0.9, backend="triton"))[1]).values()]
    half = [(t.dtype, t.shape) for t in by_storage(saved_tensors(
        lambda: lif_scan(x, beta=0.9, backend="triton", save_dtype=torch.float16))[1]).values()]
    assert (torch.float32, x.shape) in full and (torch.float16, x.shape) not in full
    assert (torch.float16, x.shape) in half and (torch.float32, x.shape) not in half


def test_auto_routes_save_dtype_to_triton_when_it_is_allowed(monkeypatch):
    from surrogate_nets.kernels import triton_lif

    calls = []
    orig = triton_lif.triton_lif_scan
    monkeypatch.setattr(triton_lif, "triton_lif_scan",
                        lambda **kw: calls.append(kw.get("save_dtype")) or orig(**kw))
    x = torch.rand(4, 2, 3, dtype=torch.float64, device=DEV) * 2
    kernels.allow_triton_on_cpu(False)
    r0 = lif_scan(x, save_dtype=torch.float16)
    assert calls == ([torch.float16] if CUDA else [])
    kernels.allow_triton_on_cpu(True)
    try:
        r1 = lif_scan(x, save_dtype=torch.float16)
        lif = neurons.LIF(beta=0.8, save_dtype=torch.float16).to(DEV, torch.float64)
        lif(x)
    finally:
        kernels.allow_triton_on_cpu(False)
    assert calls[-2:] == [torch.float16, torch.float16]
    assert torch.equal(r0.spikes, r1.spikes)


def test_save_dtype_backend_names():
    x = torch.rand(4, 2, 3, device=DEV)
    lif_scan(x, save_dtype=torch.float16, backend="triton")
    neurons.LIF(save_dtype=torch.float16, backend="triton")
    with pytest.raises(ValueError, match="backend must be"):
        lif_scan(x, save_dtype=torch.float16, backend="autograd")
    if "numba" in list_backends("lif"):  # numba has the save_dtype path too: same spikes as torch
        ref = lif_scan(x.cpu(), save_dtype=torch.float16, backend="torch")
        got = lif_scan(x.cpu(), save_dtype=torch.float16, backend="numba")
        assert torch.equal(got.spikes, ref.spikes)


def test_save_dtype_user_family_falls_back_to_torch():
    class Cubic(S.Surrogate):
        name = "cubic_test_low_mem"

        def primitive(self, x, alpha):
            return torch.sigmoid(alpha * x) ** 3

    x = torch.randn(5, 2, 3, dtype=torch.float64, device=DEV, requires_grad=True)
    with pytest.warns(RuntimeWarning, match="no triton kernel form"):
        r = lif_scan(x, surrogate=Cubic(), backend="triton", save_dtype=torch.float16)
    e = lif_scan(x, surrogate=Cubic(), backend="torch", save_dtype=torch.float16)
    assert torch.equal(r.spikes, e.spikes)
    g, ge = (torch.autograd.grad(o.h.sum() + o.spikes.sum(), x)[0] for o in (r, e))
    assert torch.equal(g, ge)


def test_lif_cases_still_hold_with_save_dtype_off():
    """The plain path (save_dtype=None) is unchanged by the new op argument."""
    C.assert_same("triton", "atan", "subtract", False, True, 2, device=DEV)
