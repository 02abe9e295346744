"""NIR Delay nodes: SynapticDelay / DelayedLinear export, import, round trips, errors."""

import copy

import numpy as np
import pytest
import torch
from torch import nn

nir = pytest.importorskip("nir")

from surrogate_nets import layers, neurons  # noqa: E402
from surrogate_nets import nir as snir  # noqa: E402

DT = 1e-4


def _net(round_=True, bias=True):
    torch.manual_seed(0)
    net = layers.Sequential(nn.Linear(6, 8), layers.SynapticDelay(8, 5), neurons.LIF(beta=0.9, threshold=0.5),
                            layers.DelayedLinear(8, 4, 6, bias=bias), neurons.LIF(beta=0.8, threshold=0.3))
    with torch.no_grad():
        net[0].weight.mul_(2)
        net[3].weight.mul_(3)
    if round_:
        net[1].round()
        net[3].round()
    return net


def _x(shape=(30, 3, 6), p=0.5, seed=1):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=g) < p).float()


def _spikes(net, x):
    neurons.set_record(net, ("s",))
    with torch.no_grad():
        y = net(x)
    return y, list(neurons.collect(net, "s"))


def _shift(x, k):
    """x delayed by k steps (zeros before the start)."""
    return torch.cat([x.new_zeros((k,) + x.shape[1:]), x[: x.shape[0] - k]], 0) if k else x


def test_round_trip_identical_spikes_and_structure():
    net, x = _net(), _x()
    g = snir.export(net, x[:2])
    # SynapticDelay: one Delay node, delay = d * dt per channel
    np.testing.assert_allclose(g.nodes["1"].delay, net[1].delay.double().numpy() * DT, rtol=1e-15, atol=0)
    # DelayedLinear: one Delay(k dt) -> Linear(W_k) branch per distinct delay, W_k masked, summed into the LIF
    k = net[3].delay.to(torch.int64)
    ks = sorted(int(v) for v in torch.unique(k))
    assert len(ks) > 2
    w_sum = 0
    for kk in ks:
        wn = g.nodes[f"3_w{kk}"]
        mask = (k == kk).numpy()
        np.testing.assert_array_equal(wn.weight[~mask], 0)
        np.testing.assert_array_equal(wn.weight[mask], net[3].weight.detach().numpy()[mask])
        w_sum = w_sum + wn.weight
        assert ("3_w%d" % kk, "4") in g.edges
        if kk:
            assert isinstance(g.nodes[f"3_d{kk}"], nir.Delay)
            np.testing.assert_allclose(g.nodes[f"3_d{kk}"].delay, np.full(8, kk * DT))
            assert ("2", f"3_d{kk}") in g.edges and (f"3_d{kk}", f"3_w{kk}") in g.edges
        else:
            assert ("2", "3_w0") in g.edges
    np.testing.assert_array_equal(w_sum, net[3].weight.detach().numpy())
    assert sum(isinstance(n, nir.Affine) for k_, n in g.nodes.items() if k_.startswith("3_")) == 1  # bias once
    back = snir.load(g)
    assert isinstance(back, layers.Sequential)
    assert isinstance(back[1], layers.SynapticDelay) and not back[1].learnable
    assert isinstance(back[3], layers.DelayedLinear) and not back[3].learnable
    assert torch.equal(back[1].delay, net[1].delay) and torch.equal(back[3].delay, net[3].delay)
    y1, s1 = _spikes(net, x)
    y2, s2 = _spikes(back, x)
    assert torch.equal(y1, y2) and len(s1) == len(s2) == 2
    assert all(torch.equal(a, b) for a, b in zip(s1, s2))
    assert all(float(s.sum()) > 0 for s in s1)  # not vacuous


def test_file_round_trip(tmp_path):
    net, x = _net(bias=False), _x()
    g = snir.export(net, x[:2])
    path = tmp_path / "delays.nir"
    nir.write(path, g)
    g2 = nir.read(path)
    assert set(g2.nodes) == set(g.nodes)
    assert isinstance(g2.nodes["1"], nir.Delay)
    back = snir.load(str(path))
    assert isinstance(back, layers.Sequential) and isinstance(back[3], layers.DelayedLinear)
    assert back[3].bias is None
    y1, s1 = _spikes(net, x)
    y2, s2 = _spikes(back, x)
    assert torch.equal(y1, y2) and all(torch.equal(a, b) for a, b in zip(s1, s2))


def test_fractional_or_gaussian_delays_raise_until_rounded():
    net, x = _net(round_=False), _x()
    with pytest.raises(ValueError, match=r"SynapticDelay '1'.*fractional.*\.round\(\)"):
        snir.export(net, x[:2])
    net[1].round()
    with pytest.raises(ValueError, match=r"DelayedLinear '3'.*fractional.*\.round\(\)"):
        snir.export(net, x[:2])
    rounded = copy.deepcopy(net)
    rounded[3].round()
    assert isinstance(snir.export(rounded, x[:2]), nir.NIRGraph)
    assert net[3].learnable  # the original model was left as it was
    # the Gaussian kernel blurs even integer delays: not an exact shift either
    gauss = layers.Sequential(layers.SynapticDelay(4, 3, kernel="gaussian", init=2.0, learnable=False))
    with pytest.raises(ValueError, match="kernel='gaussian'.*round"):
        snir.export(gauss, torch.zeros(5, 1, 4))
    gauss[0].round()
    g = snir.export(gauss, torch.zeros(5, 1, 4))
    np.testing.assert_allclose(g.nodes["0"].delay, np.full(4, 2 * DT))


def test_conv_channel_delays_expand_and_come_back():
    torch.manual_seed(2)
    net = layers.Sequential(nn.Conv2d(2, 3, 3, padding=1),
                            layers.SynapticDelay((3, 1, 1), 4, init=torch.tensor([0.0, 2.0, 4.0]).view(3, 1, 1),
                                                 learnable=False),
                            neurons.LIF(beta=0.9, threshold=0.4))
    x = _x((12, 2, 2, 5, 5), p=0.5)
    g = snir.export(net, x[:2])
    d = g.nodes["1"].delay
    assert d.shape == (3, 5, 5)
    np.testing.assert_allclose(d[:, 2, 3], [0.0, 2 * DT, 4 * DT])
    back = snir.load(g)
    assert back[1].channels == (3, 1, 1) and back[1].max_delay == 4
    y1, s1 = _spikes(net, x)
    y2, s2 = _spikes(back, x)
    assert torch.equal(y1, y2) and float(y1.sum()) > 0


def test_delayed_linear_as_output_layer_and_stateful_flag():
    torch.manual_seed(3)
    net = layers.Sequential(nn.Linear(5, 7), neurons.LIF(beta=0.5, threshold=0.3),
                            layers.DelayedLinear(7, 3, 4, stateful=True).round())
    x = _x((10, 2, 5))
    g = snir.export(net, x[:2])
    assert net[2]._state is None  # the export's shape run left the streaming state alone
    outs = [a for a, b in g.edges if b == "output"]
    assert len(outs) > 1  # NIR sums the branches into the output
    back = snir.load(g)
    assert isinstance(back[2], layers.DelayedLinear) and back[2].stateful
    with torch.no_grad():
        layers.reset(net)
        layers.reset(back)
        assert torch.equal(net(x), back(x))


def test_nir_graph_with_delay_node_loads():
    """A graph written with the nir API (no metadata of ours): Affine -> Delay -> LIF."""
    rng = np.random.default_rng(0)
    w = rng.normal(0, 1.5, (4, 3)).astype(np.float32)
    b = rng.normal(0, 0.1, 4).astype(np.float32)
    steps = np.array([0, 1, 3, 2])
    dt = 1e-3
    tau = np.full(4, 0.01, np.float32)
    g = nir.NIRGraph(
        nodes={"input": nir.Input(input_type=np.array([3])), "fc": nir.Affine(weight=w, bias=b),
               "delay": nir.Delay(delay=(steps * dt).astype(np.float32)),
               "lif": nir.LIF(tau=tau, r=np.ones(4, np.float32), v_leak=np.zeros(4, np.float32),
                              v_threshold=np.full(4, 0.5, np.float32)),
               "output": nir.Output(output_type=np.array([4]))},
        edges=[("input", "fc"), ("fc", "delay"), ("delay", "lif"), ("lif", "output")])
    model = snir.load(g, dt=dt)
    assert isinstance(model[1], layers.SynapticDelay) and not model[1].learnable
    assert model[1].delay.tolist() == [0.0, 1.0, 3.0, 2.0] and model[1].max_delay == 4
    x = _x((20, 2, 3))
    with torch.no_grad():
        h = model[0](x)
        torch.testing.assert_close(h, x @ torch.from_numpy(w).T + torch.from_numpy(b))
        shifted = torch.stack([_shift(h[..., c], int(k)) for c, k in enumerate(steps)], -1)
        assert torch.equal(model[1](h), shifted)
        ref = neurons.LIF(beta=float(model[2].beta), threshold=model[2].threshold, reset=model[2].reset_mode,
                          decay_input=model[2].decay_input)
        assert torch.equal(model(x), ref(shifted))


def test_foreign_branch_pattern_loads_as_graph_with_exact_sum():
    """Delay -> Linear branches summed into a node, without our metadata: a GraphModel, y = sum_k W_k x_{t-k}."""
    rng = np.random.default_rng(1)
    ws = {k: rng.normal(0, 1, (2, 3)).astype(np.float32) for k in (0, 2, 5)}
    nodes = {"input": nir.Input(input_type=np.array([3])), "output": nir.Output(output_type=np.array([2])),
             "sum": nir.Scale(scale=np.ones(2, np.float32))}
    edges = [("sum", "output")]
    for k, w in ws.items():
        nodes[f"w{k}"] = nir.Linear(weight=w)
        edges.append((f"w{k}", "sum"))
        if k:
            nodes[f"d{k}"] = nir.Delay(delay=np.full(3, k * DT))
            edges += [("input", f"d{k}"), (f"d{k}", f"w{k}")]
        else:
            edges.append(("input", "w0"))
    model = snir.load(nir.NIRGraph(nodes=nodes, edges=edges))
    assert isinstance(model, snir.GraphModel)
    x = torch.randn(12, 2, 3)
    with torch.no_grad():
        ref = sum(_shift(x, k) @ torch.from_numpy(w).T for k, w in ws.items())
        torch.testing.assert_close(model(x), ref, rtol=1e-6, atol=1e-6)


def test_delay_not_a_whole_number_of_steps():
    g = nir.NIRGraph(nodes={"input": nir.Input(input_type=np.array([2])),
                            "d": nir.Delay(delay=np.array([2.5e-4, 1e-4])),
                            "output": nir.Output(output_type=np.array([2]))},
                     edges=[("input", "d"), ("d", "output")])
    with pytest.raises(ValueError, match=r"Delay 'd'.*not whole multiples of dt=0.0001"):
        snir.load(g)
    model = snir.load(g, dt=5e-5)  # the writer's step length
    assert model[0].delay.tolist() == [5.0, 2.0]
    x = torch.randn(9, 1, 2)
    with torch.no_grad():
        assert torch.equal(model(x)[..., 0], _shift(x[..., 0], 5))
