"""functional/alif.py: the fused ALIF scan's hand-written BPTT is the exact gradient of its relaxed forward."""

import itertools

import pytest
import torch

from surrogate_nets import surrogate as S
from surrogate_nets.functional import ALIFScanFunction, alif_scan, alif_step

f64 = torch.float64


def _inputs(T=4, B=2, N=3, seed=0):
    g = torch.Generator().manual_seed(seed)

    def r(*shape, lo, hi):
        return (torch.rand(*shape, generator=g, dtype=f64) * (hi - lo) + lo).requires_grad_()

    return (r(T, B, N, lo=-1, hi=3), r(B, N, lo=-0.5, hi=0.5), r(B, N, lo=0, hi=1),
            r(N, lo=0.3, hi=0.9), r(N, lo=0.5, hi=0.9), r(N, lo=0.7, hi=1.2), r(N, lo=0.05, hi=0.4),
            torch.tensor(1.5, dtype=f64, requires_grad=True))


@pytest.mark.parametrize("reset, decay, levels", list(itertools.product(["subtract", "zero", "none"],
                                                                         [False, True], [1, 3])))
def test_gradcheck_relaxed_alif_scan(reset, decay, levels):
    sur = S.Sigmoid()

    def fn(*args):
        return ALIFScanFunction.apply(*args, sur, reset, False, decay, levels, True)

    assert torch.autograd.gradcheck(fn, _inputs(), eps=1e-6, atol=1e-5)


def test_scan_equals_step_loop_values():
    x, v0, a0, beta, rho, th, ad, alpha = (t.detach() for t in _inputs(T=6))
    r = alif_scan(x, v0, a0, beta, rho, th, ad, surrogate="atan", levels=2)
    v, a = v0, a0
    for t in range(x.shape[0]):
        s, v, a, h = alif_step(x[t], v, a, beta, rho, th, ad, "atan", levels=2)
        assert torch.equal(s, r.spikes[t])
        torch.testing.assert_close(h, r.h[t])
    torch.testing.assert_close(v, r.v)
    torch.testing.assert_close(a, r.a)
