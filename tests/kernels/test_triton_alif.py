"""Triton ALIF scan (op "alif", backend "triton") vs backend "torch": families, dtypes, scalar and
per-neuron parameters, every gradient; user families fall back with one warning.
(tests/functional/test_backends.py also holds it to tests/reference.py in five modes.)"""

import warnings

import pytest
import torch

from triton_setup import DEV, import_triton, module_marks

import_triton()

from surrogate_nets import surrogate as S  # noqa: E402
from surrogate_nets.functional import alif_scan  # noqa: E402

pytestmark = module_marks()


def _run(backend, sur, dtype, per_neuron, reset, levels, decay):
    g = torch.Generator().manual_seed(0)
    N = 5
    shape = (N,) if per_neuron else ()
    x = (torch.rand(6, 3, N, generator=g, dtype=torch.float64) * 3 - 0.5).to(DEV, dtype).requires_grad_()
    beta = (torch.rand(shape, generator=g, dtype=torch.float64) * 0.6 + 0.3).to(DEV, dtype).requires_grad_()
    rho = (torch.rand(shape, generator=g, dtype=torch.float64) * 0.4 + 0.5).to(DEV, dtype).requires_grad_()
    th = (torch.rand(shape, generator=g, dtype=torch.float64) * 0.5 + 0.8).to(DEV, dtype).requires_grad_()
    ad = (torch.rand(shape, generator=g, dtype=torch.float64) * 0.3 + 0.05).to(DEV, dtype).requires_grad_()
    sur = sur.to(device=DEV, dtype=dtype)
    r = alif_scan(x, None, None, beta, rho, th, ad, surrogate=sur, reset=reset, levels=levels,
                  decay_input=decay, backend=backend)
    w = torch.randn(r.spikes.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64).to(x)
    loss = (r.spikes * w).sum() + (r.h * w).sum() + r.v.sum() + r.a.pow(2).sum()
    wrt = [x, beta, rho, th, ad] + list(sur.parameters())
    return r, torch.autograd.grad(loss, wrt)


@pytest.mark.parametrize("name, reset, levels, decay", [("sigmoid", "subtract", 1, False),
                                                        ("triangle", "zero", 2, True),
                                                        ("fast_sigmoid", "none", 1, True)])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_triton_alif_matches_torch(name, reset, levels, decay, dtype):
    per_neuron = dtype == torch.float64
    sur = S.get(name, learnable=True)
    r1, g1 = _run("triton", sur, dtype, per_neuron, reset, levels, decay)
    r2, g2 = _run("torch", sur, dtype, per_neuron, reset, levels, decay)
    tol = dict(rtol=1e-9, atol=1e-11) if dtype == torch.float64 else dict(rtol=1e-4, atol=1e-5)
    assert torch.equal(r1.spikes, r2.spikes)
    for a, b in zip(r1[1:], r2[1:]):
        torch.testing.assert_close(a, b, **tol)
    for i, (a, b) in enumerate(zip(g1, g2)):
        torch.testing.assert_close(a, b, **tol, msg=lambda m: f"grad {i}: {m}")


def test_triton_alif_user_family_falls_back_once():
    class Cubic(S.Surrogate):
        name = "cubic_test_triton_alif"

        def primitive(self, x, alpha):
            return torch.sigmoid(alpha * x) ** 3

    x = torch.rand(4, 2, 3, dtype=torch.float64, device=DEV) * 2
    with pytest.warns(RuntimeWarning, match="no triton kernel form"):
        r = alif_scan(x, surrogate=Cubic(alpha=2.0), backend="triton")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        alif_scan(x, surrogate=Cubic(alpha=2.0), backend="triton")
    assert torch.equal(r.spikes, alif_scan(x, surrogate=Cubic(alpha=2.0), backend="torch").spikes)
