"""layers.MaxPool2d / max_pool2d: equal to torch's max pooling, saving only uint8 window offsets."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from saved import saved_tensors

from surrogate_nets.kernels import numba_available
import surrogate_nets.layers.max_pool as mp
from surrogate_nets import layers
from surrogate_nets.layers import MaxPool2d, max_pool2d

HAS_NUMBA = numba_available()  # numba installed and not switched off (SURROGATE_NETS_NO_NUMBA)
CONFIGS = [dict(kernel_size=2), dict(kernel_size=2, ceil_mode=True), dict(kernel_size=3, stride=2, padding=1),
           dict(kernel_size=(3, 2), stride=(1, 2), dilation=(2, 1)), dict(kernel_size=3, stride=2, ceil_mode=True),
           dict(kernel_size=(2, 3), stride=1, padding=(1, 0))]


@pytest.fixture(params=["numba", "torch"])
def backend(request, monkeypatch):
    if request.param == "numba" and not HAS_NUMBA:
        pytest.skip("the compiled pooling kernel needs numba (surrogate-nets[fast])")
    if request.param == "torch":
        monkeypatch.setattr(mp, "_numba_ok", lambda x: False)
    return request.param


def _pair(x, cfg):
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    ya, yb = max_pool2d(xa, **cfg), F.max_pool2d(xb, **cfg)
    g = torch.randn_like(yb)
    ya.backward(g)
    yb.backward(g)
    return ya, yb, xa.grad, xb.grad


@pytest.mark.parametrize("cfg", CONFIGS)
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_equals_torch_with_ties(backend, cfg, channels_last, dtype):
    torch.manual_seed(0)
    x = torch.randn(3, 5, 12, 11, dtype=dtype).mul(1.5).round()  # many ties inside windows
    x[1] = (x[1] > 0).to(dtype)  # binary spikes: ties everywhere
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    ya, yb, ga, gb = _pair(x, cfg)
    assert torch.equal(ya, yb)
    overlapping = any(k > s for k, s in zip(mp._pair(cfg["kernel_size"], "k", 1),
                                            mp._pair(cfg.get("stride", cfg["kernel_size"]), "s", 1)))
    if overlapping:  # several windows add into one input: the same terms, maybe another order
        torch.testing.assert_close(ga, gb, rtol=1e-6, atol=1e-6)
    else:
        assert torch.equal(ga, gb)


def test_nan_and_inf_like_torch(backend):
    x = torch.randn(2, 3, 6, 6, dtype=torch.float64)
    x[0, 0, 0, 0] = float("nan")
    x[0, 1, 2:4, 2:4] = float("-inf")
    x[1, 2, 0, 1] = float("inf")
    ya, yb, ga, gb = _pair(x, dict(kernel_size=2))
    torch.testing.assert_close(ya, yb, equal_nan=True, rtol=0, atol=0)
    torch.testing.assert_close(ga, gb, equal_nan=True, rtol=0, atol=0)


@pytest.mark.parametrize("cfg", CONFIGS[:4])
def test_gradcheck(backend, cfg):
    x = torch.randn(1, 2, 7, 6, dtype=torch.float64, requires_grad=True)  # distinct values: no ties
    assert torch.autograd.gradcheck(lambda t: max_pool2d(t, **cfg), (x,))


@pytest.mark.parametrize("channels_last", [False, True])
def test_saves_only_uint8_offsets(backend, channels_last):
    x = torch.randn(4, 6, 10, 10, requires_grad=True)
    if channels_last:
        x = x.detach().contiguous(memory_format=torch.channels_last).requires_grad_()
    y, seen = saved_tensors(lambda: max_pool2d(x, 2))
    assert [(t.dtype, t.numel()) for t in seen] == [(torch.uint8, y.numel())]
    _, saved_torch = saved_tensors(lambda: F.max_pool2d(x, 2))
    seen_torch = [(t.dtype, t.numel()) for t in saved_torch]  # torch: float input + int64 indices
    assert sum(torch.empty(0, dtype=d).element_size() * n for d, n in seen_torch) == 24 * y.numel()  # 4 x 4 float bytes + 8 index bytes per output


@pytest.mark.skipif(not HAS_NUMBA, reason="needs numba")
def test_threads_split_equals_single():
    x = torch.randn(64, 3, 8, 8, requires_grad=True)
    outs = []
    n0 = torch.get_num_threads()
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            x.grad = None
            y = max_pool2d(x, 3, 2, 1)
            y.backward(torch.ones_like(y))
            outs.append((y.detach(), x.grad.clone()))
    finally:
        torch.set_num_threads(n0)
    assert torch.equal(outs[0][0], outs[1][0]) and torch.equal(outs[0][1], outs[1][1])


def test_unbatched_and_large_window(backend):
    x = torch.randn(3, 9, 9, dtype=torch.float64)
    assert torch.equal(max_pool2d(x, 2), F.max_pool2d(x, 2))
    big = torch.randn(1, 2, 20, 20, dtype=torch.float64)  # 17 x 17 = 289 > 256 positions: torch's op
    assert torch.equal(max_pool2d(big, 17), F.max_pool2d(big, 17))


def test_module_is_a_maxpool_and_runs_time_distributed(backend):
    m = MaxPool2d(2)
    assert isinstance(m, nn.MaxPool2d) and "MaxPool2d" in layers.__all__ and "max_pool2d" in layers.__all__
    x = torch.randn(4, 3, 2, 8, 8)  # [T, B, C, H, W]
    y = layers.Sequential(m)(x)
    assert torch.equal(y, F.max_pool2d(x.flatten(0, 1), 2).view(4, 3, 2, 4, 4))
    y_idx, idx = MaxPool2d(2, return_indices=True)(x[0])  # return_indices: torch's own op
    assert torch.equal(idx, F.max_pool2d(x[0], 2, return_indices=True)[1])


def test_bad_inputs():
    x = torch.randn(1, 2, 8, 8)
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        max_pool2d([[1.0]], 2)
    with pytest.raises(ValueError, match="x must be a floating"):
        max_pool2d(torch.randn(8, 8), 2)
    with pytest.raises(ValueError, match="x must be a floating"):
        max_pool2d(torch.ones(1, 2, 8, 8, dtype=torch.int64), 2)
    with pytest.raises(ValueError, match="kernel_size"):
        max_pool2d(x, 0)
    with pytest.raises(ValueError, match="stride"):
        max_pool2d(x, 2, stride=(1, 2, 3))
    with pytest.raises(ValueError, match="padding must be at most half"):
        max_pool2d(x, 2, padding=2)
    with pytest.raises(ValueError, match="dilation"):
        max_pool2d(x, 2, dilation=0)
    with pytest.raises(TypeError, match="ceil_mode"):
        max_pool2d(x, 2, ceil_mode=1)
    with pytest.raises(ValueError, match="too small"):
        max_pool2d(x, 9)
