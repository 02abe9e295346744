"""layers.SpikeLinear / spike_linear: equal to nn.Linear (values and every gradient)."""

import pytest
import torch
from torch import nn

from saved import by_storage, saved_tensors

from surrogate_nets.kernels import numba_available
from surrogate_nets.layers import SpikeLinear, spike_linear

if not numba_available():  # not installed, or switched off with SURROGATE_NETS_NO_NUMBA=1
    pytest.skip("the gather-add kernel needs numba (surrogate-nets[fast])", allow_module_level=True)


def _spikes(shape, density, dtype=torch.float64, levels=1, seed=0):
    g = torch.Generator().manual_seed(seed)
    s = (torch.rand(shape, generator=g) < density).to(dtype)
    if levels > 1:
        s = s * torch.randint(1, levels + 1, shape, generator=g).to(dtype)
    return s


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("levels", [1, 3])
@pytest.mark.parametrize("bias", [True, False])
def test_equals_linear(dtype, levels, bias):
    torch.manual_seed(0)
    lin = nn.Linear(37, 11, bias=bias).to(dtype)
    sl = SpikeLinear.from_linear(lin, mode="sparse")
    x = _spikes((6, 4, 37), 0.15, dtype, levels).requires_grad_()
    x2 = x.detach().clone().requires_grad_()
    y, e = sl(x), lin(x2)
    tol = dict(rtol=1e-12, atol=1e-12) if dtype == torch.float64 else dict(rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(y, e, **tol)
    w = torch.randn_like(y)
    g = torch.autograd.grad((y * w).sum(), [x] + list(sl.parameters()))
    ge = torch.autograd.grad((e * w).sum(), [x2] + list(lin.parameters()))
    for a, b in zip(g, ge):
        torch.testing.assert_close(a, b, **tol)


def test_weight_grad_only_on_active_inputs():
    lin = SpikeLinear(8, 3, mode="sparse").double()
    x = torch.zeros(5, 8, dtype=torch.float64)
    x[:, 2] = 1.0
    x[3, 6] = 1.0
    lin(x).sum().backward()
    nz = lin.weight.grad.abs().sum(0) != 0
    assert nz.tolist() == [False, False, True, False, False, False, True, False]


def test_gradcheck():
    x = _spikes((5, 9), 0.3).requires_grad_()
    w = torch.randn(4, 9, dtype=torch.float64, requires_grad=True)
    b = torch.randn(4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, w, b: spike_linear(x, w, b, mode="sparse"), (x, w, b))


def test_auto_uses_density(monkeypatch):
    import importlib

    mod = importlib.import_module("surrogate_nets.layers.spike_linear")

    calls = []
    orig = mod.SpikeLinearFunction.apply
    monkeypatch.setattr(mod.SpikeLinearFunction, "apply", lambda *a: calls.append(1) or orig(*a))
    lin = SpikeLinear(50, 4, max_density=0.1)
    lin(_spikes((10, 50), 0.02, torch.float32))
    assert calls == [1]
    lin(_spikes((10, 50), 0.5, torch.float32))
    assert calls == [1]  # dense input: F.linear
    SpikeLinear(50, 4, mode="dense")(_spikes((10, 50), 0.02, torch.float32))
    assert calls == [1]


def test_threads_split_equals_single(monkeypatch):
    from surrogate_nets.kernels import numba_spike_linear as k

    x = _spikes((600, 20), 0.2).requires_grad_()
    lin = SpikeLinear(20, 7, mode="sparse").double()
    outs = []
    prev = torch.get_num_threads()
    for rows in (10 ** 9, 100):
        monkeypatch.setattr(k, "_MIN_ROWS_PER_THREAD", rows)
        torch.set_num_threads(2)
        try:
            y = lin(x)
            g = torch.autograd.grad(y.pow(2).sum(), [x, lin.weight])
        finally:
            torch.set_num_threads(prev)
        outs.append((y,) + g)
    for a, b in zip(*outs):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_bad_arguments():
    with pytest.raises(ValueError, match="mode"):
        SpikeLinear(3, 2, mode="fast")
    with pytest.raises(ValueError, match="max_density"):
        SpikeLinear(3, 2, max_density=2.0)
    with pytest.raises(TypeError, match="nn.Linear"):
        SpikeLinear.from_linear(nn.Conv1d(1, 1, 1))
    assert set(SpikeLinear(3, 2).state_dict()) == {"weight", "bias"}


@pytest.mark.parametrize("scale,compact", [(1.0, True), (3.0, True), (0.5, False), (200.0, False)])
def test_saves_spike_input_as_int8_only_when_exact(scale, compact):
    """Spikes / small counts are saved as int8 (1/4 of the bytes); other inputs as they are."""
    lin = SpikeLinear(40, 6, mode="sparse").double()
    x = (_spikes((30, 40), 0.2, levels=2) * scale).requires_grad_()
    saved = [(t.dtype, t.untyped_storage().nbytes()) for t in by_storage(saved_tensors(lambda: lin(x))[1]).values()]
    dtypes = [d for d, _ in saved]
    assert (torch.int8 in dtypes) == compact
    if compact:
        assert dict(saved)[torch.int8] == x.numel()
    # either way the weight gradient equals nn.Linear's
    x2 = x.detach().clone().requires_grad_()
    lin(x).sum().backward()
    w = lin.weight.detach().clone().requires_grad_()
    torch.nn.functional.linear(x2, w, lin.bias.detach()).sum().backward()
    torch.testing.assert_close(lin.weight.grad, w.grad, rtol=1e-12, atol=1e-12)
