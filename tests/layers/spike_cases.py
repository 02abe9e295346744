"""Shared inputs of the spike-input conv tests (test_spike_conv.py, test_spike_conv_pool.py)."""

import pytest
import torch

from saved import saved_tensors

from surrogate_nets.kernels import numba_available

HAS_NUMBA = numba_available()  # numba installed and not switched off (SURROGATE_NETS_NO_NUMBA)
needs_numba = pytest.mark.skipif(not HAS_NUMBA, reason="the sparse kernels need numba (surrogate-nets[fast])")
#: conv geometries: strides, paddings and dilations, square and not
GEOMS = [dict(), dict(stride=2, padding=1), dict(stride=(1, 2), padding=(2, 1), dilation=(2, 1)),
         dict(padding=2), dict(stride=(2, 1), dilation=(1, 2))]


def spike_input(values, dtype=torch.float64, shape=(3, 4, 13, 12), density=0.2, seed=0):
    """``values``: ``"binary"`` spikes, ``"count"`` (small signed integers) or ``"float"``, at
    ``density`` nonzeros."""
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(shape, generator=g) < density).to(dtype)
    if values == "count":
        x = x * torch.randint(-3, 4, shape, generator=g).to(dtype)
    elif values == "float":
        x = x * torch.randn(shape, generator=g, dtype=dtype)
    return x


def saved_dtypes(fn):
    """The dtypes of the tensors autograd saves while ``fn()`` runs, in the order saved."""
    return [t.dtype for t in saved_tensors(fn)[1]]
