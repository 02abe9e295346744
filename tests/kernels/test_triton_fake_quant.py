"""Triton fused fake quantizer (op "fake_quant", backend "triton") held to backend "torch":
LSQ / LSQ+ / PACT / binary, per tensor and per channel, fixed and learnable alpha, windowed and
full boundary sums; forward exactly, every gradient (x, step, offset, alpha).

Without a GPU the kernels run on CPU tensors through Triton's interpreter (TRITON_INTERPRET=1 is
set here before anything imports triton)."""

import pytest
import torch

from triton_setup import DEV, import_triton, module_marks

import_triton()

from surrogate_nets import kernels  # noqa: E402
from surrogate_nets import surrogate as S  # noqa: E402
from surrogate_nets.functional import backends as B  # noqa: E402
from surrogate_nets.functional.staircase import is_unit_boxcar  # noqa: E402

pytestmark = module_marks()


def _case(sur, lo, hi, binary=False, pact=False, per_channel=True, offset=True, dtype=torch.float64,
          grad_scale=1.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    span = 1.5 if binary else (hi - lo) * 0.45
    x = ((torch.rand(5, 4, generator=g, dtype=torch.float64) * 2 - 1) * span + (lo + hi) * 0.2)
    shape = (4,) if per_channel else ()
    step = torch.rand(shape, generator=g, dtype=torch.float64) * 0.3 + 0.4
    off = torch.rand(shape, generator=g, dtype=torch.float64) * 0.2 - 0.1 if offset else None
    leaves = [t.to(DEV, dtype).requires_grad_() for t in (x, step) + ((off,) if offset else ())]
    sur = sur.to(device=DEV, dtype=dtype)
    kw = dict(x=leaves[0], step=leaves[1], offset=leaves[2] if offset else None, alpha=sur.alpha,
              surrogate=sur, lo=lo, hi=hi, binary=binary, pact=pact, fast=is_unit_boxcar(sur),
              grad_scale=grad_scale)
    wrt = leaves + ([sur.raw_alpha] if sur.learnable else [])
    return kw, wrt


def _check(kw, wrt, tol):
    kernels.allow_triton_on_cpu(True)
    try:
        assert B.get_backend("fake_quant", "auto", **kw) is B.get_backend("fake_quant", "triton")
        q = B.dispatch("fake_quant", "triton", **kw)
    finally:
        kernels.allow_triton_on_cpu(False)
    e = B.dispatch("fake_quant", "torch", **kw)
    torch.testing.assert_close(q, e, rtol=0, atol=0)
    w = torch.randn(q.shape, generator=torch.Generator().manual_seed(5), dtype=torch.float64).to(q)
    g1 = torch.autograd.grad((q * w).sum(), wrt, retain_graph=True)  # alpha's graph is shared
    g2 = torch.autograd.grad((e * w).sum(), wrt)
    for i, (a, b) in enumerate(zip(g1, g2)):
        torch.testing.assert_close(a, b, **tol, msg=lambda m: f"grad {i}: {m}")


F64 = dict(rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("name, learnable", [("straight_through", False), ("atan", True),
                                             ("triangle", False), ("triangle", True),
                                             ("sigmoid", False), ("dspike", True)])
@pytest.mark.parametrize("lo, hi", [(0, 7), (-4, 3), (-128, 127)])
def test_lsq_grids_every_gradient(name, learnable, lo, hi):
    sur = S.get(name, learnable=learnable)
    _check(*_case(sur, lo, hi), F64)


@pytest.mark.parametrize("name", ["straight_through", "atan"])
@pytest.mark.parametrize("per_channel, offset", [(True, True), (False, False), (False, True)])
def test_binary_and_pact(name, per_channel, offset):
    sur = S.get(name, learnable=name != "straight_through")
    _check(*_case(sur, -1, 1, binary=True, per_channel=per_channel, offset=offset), F64)
    _check(*_case(sur, 0, 15, pact=True, per_channel=per_channel, offset=offset), F64)


def test_grad_scale_and_float32():
    sur = S.get("atan", learnable=True, grad_scale="auto")
    _check(*_case(sur, -8, 7, grad_scale=0.25), F64)
    _check(*_case(S.get("straight_through"), -8, 7, dtype=torch.float32, grad_scale=0.5),
           dict(rtol=1e-5, atol=1e-5))


def test_quant_act_runs_on_triton_when_allowed():
    from surrogate_nets.quant import fake_quantize

    x = torch.randn(6, 5, dtype=torch.float64, device=DEV, requires_grad=True)
    step = torch.full((), 0.3, dtype=torch.float64, device=DEV, requires_grad=True)
    kernels.allow_triton_on_cpu(True)
    try:
        q = fake_quantize(x, step, -4, 3, "atan")
    finally:
        kernels.allow_triton_on_cpu(False)
    assert "surrogate_nets_fake_quant_fwd" in type(q.grad_fn).__name__  # the torch.library op
    torch.testing.assert_close(q, fake_quantize(x, step, -4, 3, "atan"))
