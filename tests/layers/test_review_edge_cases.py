"""Edge cases found in review (h23): each test failed before its fix."""

import pytest
import torch
import torch.nn.functional as F

from surrogate_nets.kernels import numba_available
from surrogate_nets.layers.max_pool import MaxPool2d
from surrogate_nets.layers.spike_conv import SpikeConv2d
from surrogate_nets.layers.spike_conv_pool import SpikeConvPool2d
from surrogate_nets.layers.spike_linear import SpikeLinear

needs_numba = pytest.mark.skipif(not numba_available(), reason="numba not installed")


def _spikes(*shape, p=0.1):
    return (torch.rand(*shape, generator=torch.Generator().manual_seed(0)) < p).float()


@needs_numba
@pytest.mark.parametrize("mode", ["auto", "sparse"])
def test_numba_layers_under_torch_compile_fall_back_to_torch(mode):
    """torch.compile traced into numba's dispatcher and crashed (AssertionError 'exception table
    entry start instruction has no offset'); under tracing the layers now take their torch path."""
    x4 = _spikes(2, 3, 10, 10)
    cases = [(SpikeConv2d(3, 4, 3, padding=1, mode=mode), x4, lambda m, x: F.conv2d(x, m.weight, m.bias, padding=1)),
             (SpikeConvPool2d(3, 4, 3, padding=1, mode=mode), x4,
              lambda m, x: F.max_pool2d(F.conv2d(x, m.conv.weight, m.conv.bias, padding=1), 2)),
             (SpikeLinear(10, 4, mode=mode), _spikes(3, 10, p=0.2), lambda m, x: F.linear(x, m.weight, m.bias)),
             (MaxPool2d(2), torch.randn(2, 3, 8, 8), lambda m, x: F.max_pool2d(x, 2))]
    for module, x, ref in cases:
        torch._dynamo.reset()
        xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
        y = torch.compile(module, backend="aot_eager")(xa)
        y.sum().backward()
        yr = ref(module, xb)
        yr.sum().backward()
        torch.testing.assert_close(y, yr)
        torch.testing.assert_close(xa.grad, xb.grad)
