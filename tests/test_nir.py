"""NIR export/import: round trips, files, graphs written the way peers write them, errors."""

import numpy as np
import pytest
import torch
from torch import nn

nir = pytest.importorskip("nir")

from surrogate_nets import layers, neurons, quant  # noqa: E402
from surrogate_nets import nir as snir  # noqa: E402

DT = 1e-4


def _conv_net():
    torch.manual_seed(0)
    net = layers.Sequential(
        quant.QuantConv2d(2, 4, 3, padding=1, bits=4), neurons.LIF(tau=3.0, levels=2), nn.AvgPool2d(2),
        layers.Flatten(), nn.Linear(4 * 4 * 4, 10), neurons.PLIF(reset="zero"),
        neurons.RLIF(num_neurons=10, beta=0.8), nn.Linear(10, 6, bias=False),
        neurons.Synaptic(alpha_syn=0.7, beta=0.9, threshold=0.5), nn.Linear(6, 6), neurons.IF(),
        nn.Linear(6, 3), neurons.LI(beta=0.9))
    with torch.no_grad():
        net[6].recurrent.weight.normal_(0, 0.5)
        for m in net.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                m.weight.mul_(3)
    return net


def _x(shape=(8, 3, 2, 8, 8), p=0.4, seed=1):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=g) < p).float()


def test_round_trip_gives_identical_outputs_and_spikes():
    net, x = _conv_net(), _x()
    with pytest.warns(UserWarning, match="levels=2"):
        g = snir.export(net, x)
    assert isinstance(g, nir.NIRGraph)
    kinds = [type(n).__name__ for n in g.nodes.values()]
    assert kinds.count("LIF") == 2 and "IF" in kinds and "CubaLIF" in kinds and "LI" in kinds
    assert "NIRGraph" in kinds and "Conv2d" in kinds and "AvgPool2d" in kinds and "Flatten" in kinds
    back = snir.load(g)
    assert isinstance(back, layers.Sequential)
    neurons.set_record(net, ("s",))
    neurons.set_record(back, ("s",))
    with torch.no_grad():
        assert torch.equal(net(x), back(x))
    s1 = [t for t in neurons.collect(net, "s")]
    s2 = [t for t in neurons.collect(back, "s")]
    assert len(s1) == len(s2) == 5 and all(torch.equal(a, b) for a, b in zip(s1, s2))
    assert sum(float(s.sum()) for s in s1) > 0  # the test is not vacuous
    # what NIR cannot hold came back from metadata
    assert back[1].levels == 2 and back[5].reset_mode == "zero" and isinstance(back[5], neurons.PLIF)
    assert back[5].beta.requires_grad  # PLIF's learnable decay stays learnable


def test_file_round_trip(tmp_path):
    net, x = _conv_net(), _x()
    with pytest.warns(UserWarning):
        g = snir.export(net, x)
    path = tmp_path / "net.nir"
    nir.write(path, g)
    g2 = nir.read(path)
    assert set(g2.nodes) == set(g.nodes)
    for path_or_graph in (g2, str(path)):
        back = snir.load(path_or_graph)
        with torch.no_grad():
            assert torch.equal(net(x), back(x))


def test_quantized_layer_exports_dequantized_weight_and_codes():
    net, x = _conv_net(), _x()
    with pytest.warns(UserWarning):
        g = snir.export(net, x)
    node, q = g.nodes["0"], net[0]
    ex = q.export_int()
    np.testing.assert_array_equal(node.weight, ex.dequantize().numpy())
    meta = node.metadata["surrogate_nets"]["quant"]
    np.testing.assert_array_equal(meta["codes"], ex.weight.numpy())
    assert meta["bits"] == 4
    assert np.abs(meta["codes"]).max() <= 8
    np.testing.assert_allclose(meta["codes"] * meta["step"].reshape(-1, 1, 1, 1), node.weight, rtol=1e-6)


def test_discretisation_mapping_values():
    net = layers.Sequential(nn.Linear(3, 2), neurons.LIF(beta=0.75, threshold=0.5),
                            nn.Linear(2, 2), neurons.LIF(beta=0.75, decay_input=True), nn.Linear(2, 2), neurons.IF())
    g = snir.export(net, torch.zeros(2, 1, 3), dt=1e-3)
    a, b, c = g.nodes["1"], g.nodes["3"], g.nodes["5"]
    np.testing.assert_allclose(a.tau, [4e-3, 4e-3], rtol=1e-6)  # dt / (1 - beta)
    np.testing.assert_allclose(a.r, [4.0, 4.0], rtol=1e-6)  # 1 / (1 - beta)
    np.testing.assert_allclose(a.v_threshold, [0.5, 0.5])
    np.testing.assert_allclose(b.r, [1.0, 1.0])  # decay_input: r = 1
    assert isinstance(c, nir.IF)
    np.testing.assert_allclose(c.r, [1e3, 1e3])  # 1 / dt
    assert g.metadata["surrogate_nets"]["dt"] == 1e-3


def test_branching_graph_round_trip():
    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(5, 4)
            self.b = nn.Linear(5, 4)
            self.lif = neurons.LIF(beta=0.9)
            self.out = nn.Linear(4, 2)
            self.li = neurons.LI()

        def forward(self, x):
            return self.li(layers.fold_time(self.out, self.lif(self.a(x) + self.b(x))))

    torch.manual_seed(3)
    net = Branchy()
    x = torch.randn(10, 4, 5)
    g = snir.export(net, x)
    assert ("a", "lif") in g.edges and ("b", "lif") in g.edges
    back = snir.load(g)
    assert isinstance(back, snir.GraphModel)
    with torch.no_grad():
        assert torch.equal(net(x), back(x))


def _euler_lif(x, tau, r, vth, dt, reset_to_zero=True):
    """Reference: forward Euler of NIR's LIF, v > v_th fires, v -> 0 (the NIR definition)."""
    v = torch.zeros_like(x[0])
    out = []
    for xt in x:
        v = v + dt / tau * (-v + r * xt)
        s = (v > vth).to(x.dtype)
        v = v * (1 - s) if reset_to_zero else v - s * vth
        out.append(s)
    return torch.stack(out)


def _euler_cuba(x, tau_syn, tau_mem, r, w_in, vth, dt):
    i = torch.zeros_like(x[0])
    v = torch.zeros_like(x[0])
    out = []
    for xt in x:
        i = i + dt / tau_syn * (-i + w_in * xt)
        v = v + dt / tau_mem * (-v + r * i)
        s = (v > vth).to(x.dtype)
        v = v * (1 - s)
        out.append(s)
    return torch.stack(out)


def _agree(a, b):
    return float((a == b).float().mean())


#: documented tolerance for graphs from other tools: spikes agree on >= 99.9% of entries
#: (differences come from float32 rounding of tau/r at the threshold), membranes to 1e-4
TOL_AGREE = 0.999


def test_snntorch_style_graph_loads():
    # snnTorch writes Leaky as nir.LIF(tau=dt/(1-beta), r=tau/dt, v_leak=0, v_threshold) with dt=1e-4,
    # Synaptic as CubaLIF with w_in = tau_syn/dt, Flatten with the batch dim removed, and recurrent
    # layers as subgraph nodes "<name>.lif" / "<name>.w_rec" with a self-loop.
    rng = np.random.default_rng(0)
    beta, alpha = 0.9, 0.8
    tau_m, tau_s = DT / (1 - beta), DT / (1 - alpha)
    n_in, n = 12, 7
    w1 = rng.normal(0, 0.8, (n, n_in)).astype(np.float32)
    w_rec = rng.normal(0, 0.3, (n, n)).astype(np.float32)
    w2 = rng.normal(0, 0.8, (n, n)).astype(np.float32)
    full = lambda v: np.full(n, v, np.float32)  # noqa: E731
    g = nir.NIRGraph(
        nodes={"input": nir.Input(np.array([3, 4])),
               "flat": nir.Flatten(input_type=None, start_dim=0, end_dim=-1),
               "fc1": nir.Linear(weight=w1),
               "rl.lif": nir.LIF(tau=full(tau_m), r=full(tau_m / DT), v_leak=full(0), v_threshold=full(1)),
               "rl.w_rec": nir.Linear(weight=w_rec),
               "fc2": nir.Affine(weight=w2, bias=np.zeros(n, np.float32)),
               "syn": nir.CubaLIF(tau_syn=full(tau_s), tau_mem=full(tau_m), r=full(tau_m / DT),
                                  v_leak=full(0), v_threshold=full(1), w_in=full(tau_s / DT)),
               "output": nir.Output(np.array([n]))},
        edges=[("input", "flat"), ("flat", "fc1"), ("fc1", "rl.lif"), ("rl.lif", "rl.w_rec"),
               ("rl.w_rec", "rl.lif"), ("rl.lif", "fc2"), ("fc2", "syn"), ("syn", "output")],
        type_check=False)
    model = snir.load(g)
    assert isinstance(model[2], neurons.RLIF) and isinstance(model[4], neurons.Synaptic)
    assert model[2].reset_mode == "zero"
    torch.manual_seed(0)
    x = torch.rand(30, 5, 3, 4) * 2
    with torch.no_grad():
        out = model(x)
        # reference: the Euler ODEs in float64 with the same recurrence
        xf = x.double().flatten(2) @ torch.tensor(w1).double().T
        v = torch.zeros(5, n, dtype=torch.float64)
        s = torch.zeros(5, n, dtype=torch.float64)
        spikes = []
        for t in range(30):
            inp = xf[t] + s @ torch.tensor(w_rec).double().T
            v = v + DT / tau_m * (-v + tau_m / DT * inp)
            s = (v >= 1).double()
            v = v * (1 - s)
            spikes.append(s)
        s1 = torch.stack(spikes)
        ref = _euler_cuba(s1 @ torch.tensor(w2).double().T, tau_s, tau_m, tau_m / DT, tau_s / DT, 1.0, DT)
    assert _agree(out.double(), ref) >= TOL_AGREE
    assert s1.sum() > 0 and ref.sum() > 0


def test_spikingjelly_and_norse_style_graphs_load():
    # SpikingJelly: LIFNode(tau) -> nir.LIF(tau=tau*dt, r=tau (decay_input=False) or 1, v_leak=0,
    # v_reset=0), IFNode -> nir.IF(r=1/dt); dt = 1e-4. Norse (dt = 1e-3): LIFBoxCell ->
    # nir.LIF(tau=1/tau_mem_inv, r=1, v_leak, v_threshold, v_reset).
    rng = np.random.default_rng(1)
    n_in, n = 6, 5
    w = rng.normal(0, 1.0, (n, n_in)).astype(np.float32)
    full = lambda v: np.full(n, v, np.float32)  # noqa: E731
    x = torch.rand(40, 4, n_in) * 1.5
    cases = [
        (nir.LIF(tau=full(2.0 * DT), r=full(2.0), v_leak=full(0), v_threshold=full(1), v_reset=full(0)), DT),
        (nir.LIF(tau=full(2.0 * DT), r=full(1.0), v_leak=full(0), v_threshold=full(0.4), v_reset=full(0)), DT),
        (nir.IF(r=full(1 / DT), v_threshold=full(1), v_reset=full(0)), DT),
        (nir.LIF(tau=full(1 / 100.0), r=full(1.0), v_leak=full(0), v_threshold=full(0.3), v_reset=full(0)), 1e-3),
    ]
    for node, dt in cases:
        g = nir.NIRGraph.from_list(nir.Input(np.array([n_in])), nir.Linear(weight=w), node,
                                   nir.Output(np.array([n])), type_check=False)
        model = snir.load(g, dt=dt)
        with torch.no_grad():
            out = model(x)
        cur = x.double() @ torch.tensor(w).double().T
        if isinstance(node, nir.IF):  # dv/dt = r I: v += dt r x
            v, ref = torch.zeros_like(cur[0]), []
            for xt in cur:
                v = v + dt * torch.tensor(node.r).double() * xt
                ref.append((v > 1).double())
                v = v * (1 - ref[-1])
            ref = torch.stack(ref)
        else:
            ref = _euler_lif(cur, torch.tensor(node.tau).double(), torch.tensor(node.r).double(),
                             torch.tensor(node.v_threshold).double(), dt)
        assert ref.sum() > 0
        assert _agree(out.double(), ref) >= TOL_AGREE, type(node).__name__


def test_li_with_foreign_gain_keeps_membrane():
    n = 3
    tau, r = np.full(n, 5e-4, np.float32), np.full(n, 2.0, np.float32)
    g = nir.NIRGraph.from_list(nir.Input(np.array([n])), nir.LI(tau=tau, r=r, v_leak=np.zeros(n, np.float32)),
                               nir.Output(np.array([n])), type_check=False)
    model = snir.load(g, dt=DT)
    x = torch.randn(20, 2, n)
    v = torch.zeros(2, n, dtype=torch.float64)
    ref = []
    for xt in x.double():
        v = v + DT / 5e-4 * (-v + 2.0 * xt)
        ref.append(v)
    with torch.no_grad():
        torch.testing.assert_close(model(x).double(), torch.stack(ref), rtol=1e-4, atol=1e-5)


def test_unsupported_module_is_named():
    net = layers.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3), neurons.LIF())
    with pytest.raises(TypeError, match=r"'1'.*BatchNorm2d"):
        snir.export(net, torch.zeros(2, 1, 2, 6, 6))
    with pytest.raises(TypeError, match=r"'1'.*ALIF"):
        snir.export(layers.Sequential(nn.Linear(2, 2), neurons.ALIF()), torch.zeros(2, 1, 2))

    class Mul(nn.Module):
        def forward(self, x):
            return torch.sigmoid(x)

    with pytest.raises(TypeError, match="sigmoid"):
        snir.export(layers.Sequential(nn.Linear(2, 2), Mul()), torch.zeros(2, 1, 2))


def test_unsupported_nir_node_is_named():
    g = nir.NIRGraph.from_list(nir.Input(np.array([2])), nir.Threshold(threshold=np.ones(2)),
                               nir.Output(np.array([2])), type_check=False)
    with pytest.raises(TypeError, match="Threshold"):
        snir.load(g)
    bad = nir.NIRGraph.from_list(nir.Input(np.array([2])),
                                 nir.LIF(tau=np.ones(2), r=np.ones(2), v_leak=np.ones(2), v_threshold=np.ones(2)),
                                 nir.Output(np.array([2])), type_check=False)
    with pytest.raises(ValueError, match="v_leak"):
        snir.load(bad)


def test_export_keeps_streaming_state():
    net = layers.Sequential(nn.Linear(2, 2), neurons.LIF(stateful=True))
    x = torch.rand(3, 1, 2)
    net(x)
    before = net[1]._state.v.clone()
    snir.export(net, torch.rand(3, 4, 2))
    assert torch.equal(net[1]._state.v, before)


def test_export_argument_checks():
    with pytest.raises(ValueError, match="sample_input"):
        snir.export(nn.Linear(2, 2), torch.zeros(2, 2))
    with pytest.raises(ValueError, match="dt"):
        snir.export(layers.Sequential(nn.Linear(2, 2)), torch.zeros(2, 1, 2), dt=0)


def test_neurons_are_fx_leaves_and_torch_export_works_in_grad_mode():
    net = layers.Sequential(nn.Linear(4, 3), neurons.LIF(tau=2.0))
    assert neurons.LIF._is_leaf_module  # nirtorch's tracer keeps a neuron as one node
    x = torch.rand(5, 2, 4)
    ep = torch.export.export(net, (x,))
    assert torch.equal(ep.module()(x), net(x))


def test_import_does_not_load_nir():
    import subprocess
    import sys

    code = "import sys, surrogate_nets; assert 'nir' not in sys.modules, 'nir imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=str(__import__("pathlib").Path(__file__).parents[1]))


def test_example_script_round_trips(tmp_path):
    import os
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""),
               SURROGATE_NETS_CACHE=str(tmp_path / "cache"), MPLBACKEND="Agg")
    proc = subprocess.run([sys.executable, os.path.join(root, "examples", "nir_export.py"), "--epochs", "1",
                           "--limit", "64", "--steps", "4", "--out", str(tmp_path / "out")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "surrogate_nets -> NIR -> surrogate_nets: output spike agreement 1.000000" in proc.stdout
    assert (tmp_path / "out" / "model.nir").is_file()
