"""layers.SpikeConvPool2d / spike_conv_max_pool2d: equal to conv2d then max_pool2d, fused where sparse."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from spike_cases import GEOMS, HAS_NUMBA, needs_numba, saved_dtypes, spike_input as _input
from surrogate_nets import layers
from surrogate_nets.layers import SpikeConvPool2d, spike_conv_max_pool2d


def _compare_pooled(x, geom, mode, x_grad, bias=True, tol=1e-12):
    torch.manual_seed(2)
    w = torch.randn(5, x.shape[-3], 3, 3, dtype=x.dtype)
    b = torch.randn(5, dtype=x.dtype) if bias else None
    xa, xb = x.clone().requires_grad_(x_grad), x.clone().requires_grad_(x_grad)
    wa, wb = w.clone().requires_grad_(), w.clone().requires_grad_()
    ba, bb = (b.clone().requires_grad_(), b.clone().requires_grad_()) if bias else (None, None)
    ya = spike_conv_max_pool2d(xa, wa, ba, mode=mode, **geom)
    yb = F.max_pool2d(F.conv2d(xb, wb, bb, **geom), 2)
    g = torch.randn_like(yb)
    ya.backward(g)
    yb.backward(g)
    torch.testing.assert_close(ya, yb, rtol=tol, atol=tol)
    torch.testing.assert_close(wa.grad, wb.grad, rtol=tol, atol=tol)
    if bias:
        torch.testing.assert_close(ba.grad, bb.grad, rtol=tol, atol=tol)
    if x_grad:
        torch.testing.assert_close(xa.grad, xb.grad, rtol=tol, atol=tol)
    return ya


@pytest.mark.parametrize("geom", GEOMS)
@pytest.mark.parametrize("mode", ["sparse", "auto", "dense"])
@pytest.mark.parametrize("x_grad", [False, True])
@pytest.mark.parametrize("values", ["binary", "float"])
def test_conv_pool_equals_conv_then_pool(geom, mode, x_grad, values):
    y = _compare_pooled(_input(values), geom, mode, x_grad)
    fused = type(y.grad_fn).__name__.startswith("SpikeConvPool2dFunction")
    assert fused == (HAS_NUMBA and mode == "sparse")  # density 0.2 > FORWARD_MAX_DENSITY: auto unfused


@needs_numba
def test_conv_pool_fused_by_auto_at_low_density_and_saves_little():
    x = _input("binary", torch.float32, shape=(6, 2, 14, 14), density=0.04)
    y = _compare_pooled(x, dict(), "auto", False, tol=1e-5)
    assert type(y.grad_fn).__name__.startswith("SpikeConvPool2dFunction")
    w = torch.randn(5, 2, 3, 3, requires_grad=True)
    saved = saved_dtypes(lambda: spike_conv_max_pool2d(x, w, mode="sparse"))
    assert saved == [torch.int8, torch.float32, torch.uint8, torch.int64, torch.int32]


@needs_numba
def test_conv_pool_ties_gradcheck_and_no_bias():
    x = torch.zeros(2, 1, 6, 6, dtype=torch.float64)  # all-zero input: every window ties at the bias
    _compare_pooled(x, dict(), "sparse", True)
    _compare_pooled(_input("count", shape=(2, 4, 9, 7)), dict(padding=1), "sparse", True, bias=False)
    xg = _input("count", shape=(1, 2, 7, 7), density=0.3).requires_grad_()
    w = torch.randn(3, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: spike_conv_max_pool2d(a, b, mode="sparse"), (xg, w))


def test_conv_pool_module():
    conv = nn.Conv2d(2, 4, 3)
    m = SpikeConvPool2d.from_conv(conv, mode="sparse")
    assert m.conv.weight is conv.weight and set(m.state_dict()) == {"conv.weight", "conv.bias"}
    assert isinstance(m.pool, layers.MaxPool2d) and "SpikeConvPool2d" in layers.__all__
    x = (torch.rand(3, 2, 2, 10, 10) < 0.05).float()  # [T, B, C, H, W]
    ref = layers.Sequential(conv, nn.MaxPool2d(2))
    torch.testing.assert_close(layers.Sequential(m)(x), ref(x), rtol=1e-5, atol=1e-6)
    with pytest.raises(TypeError, match="conv must be an nn.Conv2d"):
        SpikeConvPool2d.from_conv(nn.Linear(2, 2))
    with pytest.raises(ValueError, match="groups=1"):
        SpikeConvPool2d.from_conv(nn.Conv2d(2, 4, 3, groups=2))
    with pytest.raises(ValueError, match="mode"):
        SpikeConvPool2d(2, 4, 3, mode="fast")
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        spike_conv_max_pool2d(None, conv.weight)


def test_conv_pool_nir_export_refuses_the_max_pool():
    pytest.importorskip("nir")
    from surrogate_nets import neurons
    from surrogate_nets.nir import export

    with pytest.raises(TypeError, match="MaxPool2d"):
        export(layers.Sequential(SpikeConvPool2d(2, 4, 3), neurons.LIF()), torch.zeros(1, 1, 2, 8, 8))
