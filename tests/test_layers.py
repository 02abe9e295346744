"""surrogate_nets.layers: time folding, Sequential, Flatten, TemporalDropout, reset; tiny training runs."""

import pytest
import torch
from torch import nn

from surrogate_nets import surrogate as S
from surrogate_nets.layers import Flatten, Sequential, TemporalDropout, TimeDistributed, reset
from surrogate_nets.neurons import ALIF, IF, LI, LIF, RLIF, Synaptic


def test_time_distributed_equals_per_step():
    lin = nn.Linear(5, 3)
    x = torch.randn(4, 2, 5)
    y = TimeDistributed(lin)(x)
    torch.testing.assert_close(y, torch.stack([lin(x[t]) for t in range(4)]))
    conv = nn.Conv2d(2, 4, 3, padding=1)
    xc = torch.randn(3, 2, 2, 8, 8)
    yc = TimeDistributed(conv)(xc)
    assert yc.shape == (3, 2, 4, 8, 8)
    torch.testing.assert_close(yc[1], conv(xc[1]))
    bn = TimeDistributed(nn.BatchNorm2d(4))
    assert bn(yc).shape == yc.shape
    with pytest.raises(ValueError, match=r"time-major \[T, B, \.\.\.\] with T >= 1, got shape \(5,\)"):
        TimeDistributed(lin)(torch.randn(5))
    with pytest.raises(TypeError, match="module must be an nn.Module"):
        TimeDistributed(lambda z: z)


def test_flatten_keeps_time_and_batch():
    x = torch.randn(3, 2, 4, 5, 6)
    assert Flatten()(x).shape == (3, 2, 120)
    assert Flatten(start_dim=1)(x).shape == (3, 2, 4, 30)
    assert Flatten()(torch.randn(3, 2, 7)).shape == (3, 2, 7)


def test_temporal_dropout_shares_mask_over_time():
    d = TemporalDropout(0.5)
    x = torch.ones(6, 4, 10)
    y = d(x)
    assert torch.equal(y, y[:1].expand_as(y))  # same mask at every step
    assert set(y.unique().tolist()) <= {0.0, 2.0} and 0 < (y == 0).float().mean() < 1
    d.eval()
    assert torch.equal(d(x), x)
    with pytest.raises(ValueError, match=r"p must lie in \[0.0, 1.0\), got 1.0"):
        TemporalDropout(1.0)


def test_sequential_conv_snn_shapes_and_plain_state_dict():
    net = Sequential(nn.Conv2d(2, 16, 3, padding=1), LIF(tau=2.0), nn.AvgPool2d(2),
                     Flatten(), nn.Linear(16 * 8 * 8, 10), LIF())
    x = torch.rand(4, 3, 2, 16, 16)
    out = net(x)
    assert out.shape == (4, 3, 10)
    assert isinstance(net[0], nn.Conv2d)  # not wrapped: a plain nn.Sequential's keys
    plain = nn.Sequential(nn.Conv2d(2, 16, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(),
                          nn.Linear(16 * 8 * 8, 10))
    net.load_state_dict({**net.state_dict(), **plain.state_dict()})
    torch.testing.assert_close(net[4].weight, plain[4].weight)
    # nested Sequential and explicit TimeDistributed also work
    nested = Sequential(Sequential(TimeDistributed(nn.Linear(3, 4)), IF()), nn.Linear(4, 2), LI())
    assert nested(torch.randn(5, 2, 3)).shape == (5, 2, 2)


def test_reset_clears_stateful_neurons():
    net = Sequential(nn.Linear(3, 4), LIF(stateful=True), nn.Linear(4, 4),
                     RLIF(num_neurons=4, stateful=True), ALIF(stateful=True))
    x = torch.randn(5, 2, 3) * 3
    first = net(x)
    assert all(m._state is not None for m in (net[1], net[3], net[4]))
    assert reset(net) is net
    assert all(m._state is None for m in (net[1], net[3], net[4]))
    torch.testing.assert_close(net(x), first)
    with pytest.raises(TypeError, match="model must be an nn.Module"):
        reset("net")


def _train(net, x, y, steps, lr, readout):
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(readout(net(x)), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def test_mlp_snn_trains():
    torch.manual_seed(0)
    T, B, D = 8, 32, 20
    protos = torch.rand(2, D)
    y = torch.arange(B) % 2
    x = (torch.rand(T, B, D) < protos[y] * 0.8).float()  # rate-coded prototypes
    net = Sequential(nn.Linear(D, 32), LIF(tau=2.0, learn_beta=True, num_neurons=32,
                                           surrogate=S.ATan(learnable=True)),
                     TemporalDropout(0.1), nn.Linear(32, 2), LI(tau=4.0))
    losses = _train(net, x, y, 10, 2e-2, lambda v: v.mean(0))
    assert losses[-1] < 0.7 * losses[0], losses


def test_conv_snn_trains():
    torch.manual_seed(0)
    T, B = 4, 16
    y = torch.arange(B) % 2
    x = torch.rand(T, B, 2, 16, 16) * 0.3
    x[:, y == 0, :, :, :8] += 0.7  # class 0: left half bright; class 1: right half
    x[:, y == 1, :, :, 8:] += 0.7
    x = (torch.rand_like(x) < x).float()
    net = Sequential(nn.Conv2d(2, 8, 3, padding=1), nn.BatchNorm2d(8), LIF(tau=2.0), nn.AvgPool2d(2),
                     Flatten(), nn.Linear(8 * 8 * 8, 2), Synaptic(learn_beta=True))
    losses = _train(net, x, y, 15, 1e-2, lambda s: s.mean(0) * 4)
    assert losses[-1] < 0.8 * losses[0], losses


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_sequential_dtypes(dtype):
    net = Sequential(nn.Conv2d(2, 4, 3, padding=1), LIF(), nn.AvgPool2d(2), Flatten(),
                     nn.Linear(4 * 4 * 4, 3), LIF(levels=2), nn.Linear(3, 2), LI()).to(dtype)
    x = torch.rand(3, 2, 2, 8, 8, dtype=dtype, requires_grad=True)
    out = net(x)
    assert out.dtype == dtype and out.shape == (3, 2, 2)
    out.float().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad.float()).all()
