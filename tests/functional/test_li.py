"""functional/li.py: the leaky-integrator scan (hand-written BPTT) against finite differences and the step."""

import pytest
import torch

from surrogate_nets.functional import LIScanFunction, li_scan, li_step

f64 = torch.float64


@pytest.mark.parametrize("decay", [False, True])
def test_gradcheck_li_scan(decay):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(5, 2, 3, generator=g, dtype=f64, requires_grad=True)
    v0 = torch.randn(2, 3, generator=g, dtype=f64, requires_grad=True)
    beta = (torch.rand(3, generator=g, dtype=f64) * 0.6 + 0.3).requires_grad_()
    assert torch.autograd.gradcheck(lambda x, v0, b: LIScanFunction.apply(x, v0, b, decay), (x, v0, beta))


def test_li_scan_equals_step_loop():
    x = torch.randn(6, 2, 3, dtype=f64)
    out = li_scan(x, beta=0.7, decay_input=True)
    v = torch.zeros(2, 3, dtype=f64)
    for t in range(6):
        v = li_step(x[t], v, 0.7, decay_input=True)
        torch.testing.assert_close(out[t], v)
