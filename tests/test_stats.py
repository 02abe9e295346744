"""Activity statistics on small nets with hand-computed counts."""

import math

import pytest
import torch
from torch import nn

from surrogate_nets import layers, neurons
from surrogate_nets.stats import E_AC, E_MAC, activity_stats, record_activity


def _mlp():
    fc1 = nn.Linear(3, 4, bias=False)
    fc2 = nn.Linear(4, 2)
    with torch.no_grad():
        fc1.weight.copy_(torch.tensor([[1.0, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, 0]]))
    return layers.Sequential(fc1, neurons.IF(threshold=1.0), fc2)


X = torch.tensor([[[1.5, 0.2, 1.0]], [[0.0, 0.9, 0.0]]])  # [T=2, B=1, 3], analog input


def test_mlp_counts_by_hand():
    st = activity_stats(_mlp(), X)
    fc1, lif, fc2 = st.layers
    # IF: neuron 0 fires at t0 (1.5), neuron 1 at t1 (0.2 + 0.9 = 1.1), neuron 2 at t0 (1.0 >= 1)
    assert lif.spikes == 3 and lif.neurons == 4
    assert lif.firing_rate == pytest.approx(3 / 8) and lif.sparsity == pytest.approx(5 / 8)
    # first layer sees analog input: dense MACs at each of T=2 steps, no SynOps
    assert fc1.macs == 12 and fc1.synops == 0 and fc1.snn_macs == 24
    # second layer: 3 spikes x fan-out 2
    assert fc2.macs == 8 and fc2.synops == 6 and fc2.snn_macs == 0
    assert st.totals["macs"] == 20 and st.totals["synops"] == 6
    e = st.energy()
    assert e["snn"] == pytest.approx(6 * E_AC + 24 * E_MAC)
    assert e["ann"] == pytest.approx(20 * E_MAC)
    e2 = st.energy(e_ac=1.0, e_mac=2.0)
    assert e2["snn"] == pytest.approx(6 + 48) and e2["ratio"] == pytest.approx(54 / 40)
    assert "SynOps" in st.table() and "estimate" in st.table()
    assert st.as_dict()["totals"]["synops"] == 6


def test_conv_synops_count_fan_out_exactly():
    conv = nn.Conv2d(1, 2, 2)
    net = layers.Sequential(conv, neurons.LIF())
    x = torch.zeros(1, 2, 1, 3, 3)  # T=1, B=2
    x[0, 0, 0, 0, 0] = 1  # corner spike: feeds one output position per channel -> 2
    x[0, 1, 0, 1, 1] = 1  # centre spike: feeds all four positions -> 8
    st = activity_stats(net, x)
    c = st.layers[0]
    assert c.macs == 2 * 4 * 4  # C_out x positions x C_in x k*k
    assert c.synops == pytest.approx((2 + 8) / 2)  # per sample
    assert c.snn_macs == 0


def test_context_manager_accumulates_and_removes_hooks():
    net = _mlp()
    with record_activity(net, e_ac=1e-12, e_mac=2e-12) as rec:
        net(X)
        net(X)
    st = rec.stats()
    assert st.layers[1].spikes == 3 and st.layers[2].synops == 6  # per sample: same as one call
    assert all(not m._forward_hooks for m in net.modules())
    assert st.energy()["snn"] == pytest.approx(6e-12 + 24 * 2e-12)


def test_multilevel_spikes_count_their_value():
    net = layers.Sequential(neurons.IF(levels=3), nn.Linear(1, 5))
    st = activity_stats(net, torch.tensor([[[2.5]]]))  # fires 2 spikes in one step
    assert st.layers[0].spikes == 2 and st.layers[0].firing_rate == 2
    assert st.layers[1].synops == 10


def test_bad_arguments():
    with pytest.raises(ValueError, match="e_ac"):
        record_activity(_mlp(), e_ac=-1)
    with pytest.raises(TypeError, match="model"):
        record_activity("net")
    with pytest.raises(ValueError, match="x"):
        activity_stats(_mlp(), torch.zeros(3))
    with pytest.raises(RuntimeError, match="no forward"):
        with record_activity(_mlp()) as rec:
            pass
        rec.stats()
    assert math.isnan(activity_stats(nn.Sequential(), torch.zeros(2, 1, 3)).totals["firing_rate"])
