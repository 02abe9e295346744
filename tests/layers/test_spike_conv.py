"""layers.SpikeConv2d / spike_conv2d: equal to nn.Conv2d, sparse kernels, int8-saved spike input."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import surrogate_nets.layers.spike_conv as sc
from spike_cases import GEOMS, HAS_NUMBA, needs_numba, saved_dtypes, spike_input as _input
from surrogate_nets import layers
from surrogate_nets.layers import SpikeConv2d, spike_conv2d


def _compare(x, geom, mode, bias=True, x_grad=True, dtype=torch.float64, tol=1e-12):
    torch.manual_seed(1)
    w = torch.randn(5, x.shape[1], 3, 3, dtype=dtype)
    b = torch.randn(5, dtype=dtype) if bias else None
    ins = [x.clone().requires_grad_(x_grad), w.clone().requires_grad_()] + ([b.clone().requires_grad_()] if bias else [])
    ref = [t.clone().detach().requires_grad_(t.requires_grad) for t in ins]
    ya = spike_conv2d(ins[0], ins[1], ins[2] if bias else None, mode=mode, **geom)
    yb = F.conv2d(ref[0], ref[1], ref[2] if bias else None, **geom)
    g = torch.randn_like(yb)
    ya.backward(g)
    yb.backward(g)
    torch.testing.assert_close(ya, yb, rtol=tol, atol=tol)
    for a, r in zip(ins, ref):
        if r.requires_grad:
            torch.testing.assert_close(a.grad, r.grad, rtol=tol, atol=tol)
        else:
            assert a.grad is None


@needs_numba
@pytest.mark.parametrize("geom", GEOMS)
@pytest.mark.parametrize("mode", ["sparse", "dense", "auto"])
@pytest.mark.parametrize("values", ["binary", "count", "float"])
def test_equals_conv2d_float64(geom, mode, values):
    _compare(_input(values), geom, mode)


@needs_numba
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("x_grad", [True, False])
def test_bias_and_input_grad_options(bias, x_grad):
    _compare(_input("binary"), dict(padding=1), "sparse", bias=bias, x_grad=x_grad)


@needs_numba
def test_float32_and_unbatched():
    _compare(_input("binary", torch.float32, shape=(8, 3, 10, 10)), dict(), "sparse", dtype=torch.float32, tol=1e-5)
    x, w = _input("binary", shape=(4, 9, 9)), torch.randn(2, 4, 3, 3, dtype=torch.float64)
    torch.testing.assert_close(spike_conv2d(x, w, mode="sparse"), F.conv2d(x, w))


def test_torch_fallback_without_numba(monkeypatch):
    monkeypatch.setattr(sc, "_numba_ok", lambda: False)
    for geom in GEOMS[:2]:
        _compare(_input("binary"), geom, "auto")
        _compare(_input("float"), geom, "sparse")


@needs_numba
@pytest.mark.parametrize("geom", GEOMS[:3])
def test_gradcheck_sparse(geom):
    x = _input("count", shape=(1, 2, 6, 7), density=0.3).requires_grad_()
    w = torch.randn(3, 2, 3, 2, dtype=torch.float64, requires_grad=True)
    b = torch.randn(3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x_, w_, b_: spike_conv2d(x_, w_, b_, mode="sparse", **geom), (x, w, b))


@pytest.mark.parametrize("numba_on", [True, False])
@pytest.mark.parametrize("values, saved", [("binary", torch.int8), ("count", torch.int8), ("float", torch.float32)])
def test_saves_input_as_int8_only_when_exact(monkeypatch, numba_on, values, saved):
    if numba_on and not HAS_NUMBA:
        pytest.skip("needs numba")
    if not numba_on:
        monkeypatch.setattr(sc, "_numba_ok", lambda: False)
    x = _input(values, torch.float32).requires_grad_()
    x_big = (_input("binary", torch.float32) * 200).requires_grad_()  # not representable in int8
    w = torch.randn(5, 4, 3, 3, requires_grad=True)
    # input (int8 when exact), weight, and with the sparse kernels the active positions (ptr, codes)
    index = [torch.int64, torch.int32] if numba_on else []
    assert saved_dtypes(lambda: spike_conv2d(x, w, mode="sparse")) == [saved, torch.float32] + index
    assert saved_dtypes(lambda: spike_conv2d(x_big, w, mode="sparse")) == [torch.float32, torch.float32] + index
    assert saved_dtypes(lambda: spike_conv2d(x, w, mode="dense")) == [saved, torch.float32]


@needs_numba
def test_auto_picks_sparse_kernels_by_density(monkeypatch):
    from surrogate_nets.kernels import numba_spike_conv as k

    calls = []
    for name in ("spike_conv2d_forward", "spike_conv2d_weight_grad"):
        orig = getattr(k, name)
        monkeypatch.setattr(k, name, lambda *a, _o=orig, _n=name: calls.append(_n) or _o(*a))
    w = torch.randn(5, 4, 3, 3, requires_grad=True)
    for density, expect in [(0.05, ["spike_conv2d_forward", "spike_conv2d_weight_grad"]),
                            (0.15, ["spike_conv2d_weight_grad"]), (0.5, [])]:
        calls.clear()
        spike_conv2d(_input("binary", torch.float32, density=density), w).sum().backward()
        assert calls == expect, density
    calls.clear()
    spike_conv2d(_input("binary", torch.float32, density=0.5), w, mode="sparse").sum().backward()
    assert calls == ["spike_conv2d_forward", "spike_conv2d_weight_grad"]


@needs_numba
def test_threads_split_equals_single():
    x = _input("binary", torch.float64, shape=(40, 3, 9, 9)).requires_grad_()
    w = torch.randn(6, 3, 3, 3, dtype=torch.float64, requires_grad=True)
    n0, res = torch.get_num_threads(), []
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            w.grad = None
            y = spike_conv2d(x, w, mode="sparse", padding=1)
            y.backward(torch.ones_like(y))
            res.append((y.detach(), w.grad.clone()))
    finally:
        torch.set_num_threads(n0)
    torch.testing.assert_close(res[0][0], res[1][0], rtol=1e-14, atol=1e-14)
    torch.testing.assert_close(res[0][1], res[1][1], rtol=1e-12, atol=1e-12)


def test_groups_and_string_padding_are_plain_conv():
    x, w = _input("binary"), torch.randn(4, 2, 3, 3, dtype=torch.float64)
    torch.testing.assert_close(spike_conv2d(x, w, groups=2), F.conv2d(x, w, groups=2))
    w1 = torch.randn(3, 4, 3, 3, dtype=torch.float64)
    torch.testing.assert_close(spike_conv2d(x, w1, padding="same"), F.conv2d(x, w1, padding="same"))


def test_module_matches_conv2d_and_shares_parameters():
    torch.manual_seed(0)
    conv = nn.Conv2d(2, 4, 3, padding=1)
    m = SpikeConv2d.from_conv(conv, mode="sparse" if HAS_NUMBA else "dense")
    assert isinstance(m, nn.Conv2d) and m.weight is conv.weight and m.bias is conv.bias
    assert list(m.state_dict()) == list(conv.state_dict())
    assert "SpikeConv2d" in layers.__all__ and "spike_conv2d" in layers.__all__
    assert "mode=" in repr(m)
    x = (torch.rand(5, 3, 2, 8, 8) < 0.1).float()  # [T, B, C, H, W] through Sequential
    torch.testing.assert_close(layers.Sequential(m)(x), layers.Sequential(conv)(x), rtol=1e-5, atol=1e-6)
    refl = SpikeConv2d(2, 4, 3, padding=1, padding_mode="reflect")
    ref = nn.Conv2d(2, 4, 3, padding=1, padding_mode="reflect")
    ref.load_state_dict(refl.state_dict())
    torch.testing.assert_close(refl(x[0]), ref(x[0]))


def test_bad_arguments():
    w = torch.randn(4, 2, 3, 3)
    x = torch.zeros(1, 2, 8, 8)
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        spike_conv2d("x", w)
    with pytest.raises(ValueError, match="x must be a floating"):
        spike_conv2d(torch.zeros(8, 8), w)
    with pytest.raises(ValueError, match="weight must be a 4-D"):
        spike_conv2d(x, torch.zeros(4, 2, 3))
    with pytest.raises(ValueError, match="mode"):
        spike_conv2d(x, w, mode="fast")
    with pytest.raises(ValueError, match="max_density"):
        spike_conv2d(x, w, max_density=2.0)
    with pytest.raises(ValueError, match="stride"):
        spike_conv2d(x, w, stride=0)
    with pytest.raises(ValueError, match="mode"):
        SpikeConv2d(2, 4, 3, mode="fast")
    with pytest.raises(ValueError, match="max_density"):
        SpikeConv2d(2, 4, 3, max_density=-0.1)
    with pytest.raises(TypeError, match="conv must be an nn.Conv2d"):
        SpikeConv2d.from_conv(nn.Linear(2, 2))


def test_nir_export_maps_to_conv2d():
    nir = pytest.importorskip("nir")
    from surrogate_nets import neurons
    from surrogate_nets.nir import export

    net = layers.Sequential(SpikeConv2d(2, 4, 3), neurons.LIF(beta=0.5))
    graph = export(net, torch.zeros(1, 1, 2, 8, 8))
    convs = [n for n in graph.nodes.values() if isinstance(n, nir.Conv2d)]
    assert len(convs) == 1 and convs[0].weight.shape == (4, 2, 3, 3)
    # NIR has no max pooling: layers.MaxPool2d is refused by name, as nn.MaxPool2d is
    for pool in (nn.MaxPool2d(2), layers.MaxPool2d(2)):
        with pytest.raises(TypeError, match=r"'1'.*MaxPool2d"):
            export(layers.Sequential(SpikeConv2d(2, 4, 3), pool, neurons.LIF()), torch.zeros(1, 1, 2, 8, 8))
