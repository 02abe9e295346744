"""functional/synaptic.py: the synaptic scan (LI current scan -> LIF scan) equals the step loop and
is differentiable in every input; bad inputs."""

import pytest
import torch

from surrogate_nets.functional import synaptic_scan, synaptic_step

f64 = torch.float64


@pytest.mark.parametrize("reset, levels", [("subtract", 1), ("zero", 3), ("none", 2)])
def test_scan_equals_step_loop_with_gradients(reset, levels):
    g = torch.Generator().manual_seed(0)
    x = (torch.randn(6, 2, 3, generator=g, dtype=f64) * 2 + 0.5).requires_grad_()
    a_syn = torch.tensor([0.3, 0.6, 0.9], dtype=f64, requires_grad=True)
    beta = torch.tensor([0.5, 0.7, 0.9], dtype=f64, requires_grad=True)
    r = synaptic_scan(x, None, None, a_syn, beta, 1.0, surrogate="atan", reset=reset, levels=levels)
    i = v = torch.zeros(2, 3, dtype=f64)
    outs = []
    for t in range(6):
        s, i, v, h = synaptic_step(x[t], i, v, a_syn, beta, 1.0, "atan", reset, levels=levels)
        outs.append(s)
        torch.testing.assert_close(h, r.h[t])
        torch.testing.assert_close(i, r.i[t])
    ref = torch.stack(outs)
    assert torch.equal(ref, r.spikes)
    torch.testing.assert_close(v, r.v)
    w = torch.randn_like(ref)
    ga = torch.autograd.grad((r.spikes * w).sum() + r.v.sum() + r.i[-1].sum(), (x, a_syn, beta))
    gb = torch.autograd.grad((ref * w).sum() + v.sum() + i.sum(), (x, a_syn, beta))
    for a, b in zip(ga, gb):
        torch.testing.assert_close(a, b)


def test_bad_state_shape():
    with pytest.raises(ValueError, match="i0 must have shape"):
        synaptic_scan(torch.zeros(3, 2, 4), i0=torch.zeros(2, 5))
