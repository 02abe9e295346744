"""Review (h23): an explicit ``backend="numba"`` under torch.compile crashed inside dynamo
(AssertionError "exception table entry start instruction has no offset", traced into numba's
dispatcher); there it now runs the torch backend, with a one-time warning."""

import warnings

import pytest
import torch

from surrogate_nets import neurons
from surrogate_nets.functional.li import li_scan
from surrogate_nets.functional.lif import lif_scan
from surrogate_nets.kernels import numba_available

pytestmark = pytest.mark.skipif(not numba_available(), reason="numba not installed")


@pytest.mark.parametrize("run", [
    lambda x, b: neurons.LIF(beta=0.8, backend=b)(x),
    lambda x, b: neurons.ALIF(beta=0.8, backend=b)(x),
    lambda x, b: neurons.Synaptic(alpha_syn=0.7, beta=0.8, backend=b)(x),
    lambda x, b: li_scan(x, beta=0.8, backend=b),
    lambda x, b: lif_scan(x, beta=0.8, backend=b, save_dtype=torch.bfloat16).spikes,
], ids=["lif", "alif", "synaptic", "li", "lif_low_mem"])
def test_explicit_numba_backend_under_torch_compile(run):
    torch._dynamo.reset()
    x = torch.randn(6, 2, 8, generator=torch.Generator().manual_seed(0)) * 2
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ya = torch.compile(lambda t: run(t, "numba"), backend="aot_eager")(xa)
    yb = run(xb, "torch")
    torch.testing.assert_close(ya, yb)
    w = torch.randn(yb.shape, generator=torch.Generator().manual_seed(1))
    (ya * w).sum().backward()
    (yb * w).sum().backward()
    torch.testing.assert_close(xa.grad, xb.grad)
