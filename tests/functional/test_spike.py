"""surrogate_nets.functional.spike: exact forward, surrogate backward, alpha gradient."""

import pytest
import torch

from surrogate_nets import surrogate as S
from surrogate_nets.functional import SpikeFunction, spike
from devices import needs_cuda

FAMILIES = S.names()


def test_forward_is_exact_heaviside_with_tie_at_zero():
    x = torch.tensor([-1.0, -1e-30, 0.0, 1e-30, 2.0])
    out = spike(x, "atan")
    assert out.tolist() == [0.0, 0.0, 1.0, 1.0, 1.0]
    assert set(spike(torch.randn(1000)).unique().tolist()) <= {0.0, 1.0}


@pytest.mark.parametrize("name", FAMILIES)
def test_backward_is_surrogate_derivative(name):
    s = S.get(name)
    x = torch.randn(50, dtype=torch.float64, requires_grad=True)
    g = torch.randn(50, dtype=torch.float64)
    spike(x, s).backward(g)
    torch.testing.assert_close(x.grad, g * s.derivative(x.detach()).to(torch.float64))


@pytest.mark.parametrize("name", FAMILIES)
def test_gradcheck_against_relaxation(name):
    """Our backward equals the true gradient of the relaxed forward (x and learnable alpha)."""
    s = S.get(name, learnable=True).double()
    x = (torch.rand(12, dtype=torch.float64) * 2.4 - 1.2).requires_grad_()
    # keep away from kinks of piecewise families
    x.data[(x.data.abs() * s.alpha.item() - 0.5).abs() < 1e-3] += 0.01
    x.data[x.data.abs() < 1e-3] += 0.01

    raw = s.raw_alpha.detach().clone().requires_grad_()

    # gradcheck w.r.t. x and raw_alpha (through the softplus parametrisation)
    def fn(x, raw):
        alpha = torch.nn.functional.softplus(raw) + 1e-6
        return SpikeFunction.apply(x, alpha, s, True)

    assert torch.autograd.gradcheck(fn, (x, raw), eps=1e-6, atol=1e-5)


def test_alpha_gradient_value_for_scale_family():
    """For P(a x): dL/da = (1/a) * sum(x * dL/dx) (see Surrogate docstring)."""
    s = S.get("atan", alpha=2.0, learnable=True).double()
    x = torch.randn(100, dtype=torch.float64, requires_grad=True)
    g = torch.randn(100, dtype=torch.float64)
    spike(x, s).backward(g)
    a = s.alpha.detach()
    dalpha = (x.detach() * x.grad).sum() / a
    # chain rule through softplus: d alpha / d raw = sigmoid(raw)
    torch.testing.assert_close(s.raw_alpha.grad, dalpha * torch.sigmoid(s.raw_alpha.detach()))


def test_per_channel_alpha_reduces_to_its_shape():
    alpha = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64).view(3, 1, 1)
    s = S.get("sigmoid", alpha=alpha, learnable=True).double()
    x = torch.randn(4, 2, 3, 5, 5, dtype=torch.float64, requires_grad=True)
    spike(x, s).sum().backward()
    assert s.raw_alpha.grad.shape == (3, 1, 1)
    # channel c's gradient only sums over its own elements
    xd = x.detach()
    for c in range(3):
        a = s.alpha[c].detach()
        expected = s.d_alpha(xd[:, :, c], a).sum() * torch.sigmoid(s.raw_alpha[c].detach())
        torch.testing.assert_close(s.raw_alpha.grad[c].squeeze(), expected.squeeze())


def test_grad_scale_auto_and_float():
    x = torch.randn(64, dtype=torch.float64)
    grads = {}
    for scale in (None, "auto", 0.5):
        s = S.get("atan", learnable=True, grad_scale=scale).double()
        spike(x, s).sum().backward()
        grads[scale] = s.raw_alpha.grad.clone()
    torch.testing.assert_close(grads["auto"], grads[None] / 8.0)
    torch.testing.assert_close(grads[0.5], grads[None] * 0.5)


def test_needs_input_grad_respected():
    s = S.get("atan", learnable=True)
    x = torch.randn(10)  # no grad for x
    spike(x, s).sum().backward()
    assert s.raw_alpha.grad is not None
    s2 = S.get("atan")  # fixed alpha: no parameter at all
    x2 = torch.randn(10, requires_grad=True)
    spike(x2, s2).sum().backward()
    assert x2.grad is not None and list(s2.parameters()) == []


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_dtypes(dtype):
    s = S.get("atan", learnable=True)
    x = torch.randn(3, 4, dtype=dtype, requires_grad=True)
    out = spike(x, s)
    assert out.dtype == dtype
    out.sum().backward()
    assert x.grad.dtype == dtype
    assert s.raw_alpha.grad.dtype == torch.float32
    assert torch.isfinite(s.raw_alpha.grad).all()


def test_bad_input():
    with pytest.raises(TypeError, match="x must have a floating dtype"):
        spike(torch.arange(3), "atan")
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        spike([0.1, 0.2], "atan")
    with pytest.raises(ValueError, match="unknown surrogate"):
        spike(torch.randn(3), "nope")
    s = S.get("atan", alpha=torch.ones(4))
    with pytest.raises(ValueError, match=r"alpha of shape \(4,\) must broadcast"):
        spike(torch.randn(2, 3), s)


def test_torch_compile_runs_same_code():
    s = S.get("atan", learnable=True)
    x = torch.randn(8, requires_grad=True)
    f = torch.compile(lambda x: spike(x, s) * 2.0)
    out = f(x)
    out.sum().backward()
    torch.testing.assert_close(out, spike(x.detach(), s) * 2.0)
    torch.testing.assert_close(x.grad, 2.0 * s.derivative(x.detach()).detach())


@needs_cuda
def test_cuda_same_code():
    s = S.get("atan", learnable=True).cuda()
    x = torch.randn(100, device="cuda", requires_grad=True)
    spike(x, s).sum().backward()
    xc = x.detach().cpu().requires_grad_()
    sc = S.get("atan", learnable=True)
    spike(xc, sc).sum().backward()
    torch.testing.assert_close(x.grad.cpu(), xc.grad)
    torch.testing.assert_close(s.raw_alpha.grad.cpu(), sc.raw_alpha.grad)
    with pytest.raises(ValueError, match="device"):
        spike(torch.randn(3, device="cuda"), S.get("atan", alpha=torch.ones(3)))
