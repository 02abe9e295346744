"""Tests of surrogate_nets.losses: values, gradients, reductions, dtypes, plug-ins, bad input."""

import copy
import math
import pickle
import sys

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from surrogate_nets import losses as L
from surrogate_nets.functional import spike


def rand_spikes(T, B, C, p=0.3, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(T, B, C, generator=g) < p).to(dtype)


def rand_out(T, B, C, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(T, B, C, generator=g, dtype=dtype)


Y = torch.tensor([0, 2, 1, 2])


# ----------------------------------------------------------------------------- RateCrossEntropy
def test_rate_ce_hand_value():
    out = torch.tensor([[[1.0, 0.0]], [[0.0, 0.0]]])  # T=2, B=1, C=2
    y = torch.tensor([0])
    expected = (math.log(1 + math.exp(-1)) + math.log(2)) / 2
    assert L.RateCrossEntropy()(out, y).item() == pytest.approx(expected, rel=1e-6)
    # count variant: counts [1, 0]
    assert L.RateCrossEntropy(mode="count")(out, y).item() == pytest.approx(
        math.log(1 + math.exp(-1)), rel=1e-6)


def test_rate_ce_matches_torch_per_step_with_weight_and_smoothing():
    out = rand_out(5, 4, 3)
    w = torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64)
    loss = L.RateCrossEntropy(weight=w, label_smoothing=0.1)(out, Y)
    ref = sum(F.cross_entropy(out[t], Y, weight=w, label_smoothing=0.1) for t in range(5)) / 5
    torch.testing.assert_close(loss, ref)
    count = L.RateCrossEntropy(mode="count", weight=[1.0, 2.0, 0.5], label_smoothing=0.1)(out, Y)
    torch.testing.assert_close(count, F.cross_entropy(out.sum(0), Y, weight=w, label_smoothing=0.1))


def test_rate_ce_probability_targets():
    out = rand_out(3, 4, 3)
    probs = torch.softmax(rand_out(1, 4, 3, seed=5)[0], -1)
    ref = sum(F.cross_entropy(out[t], probs) for t in range(3)) / 3
    torch.testing.assert_close(L.RateCrossEntropy()(out, probs), ref)


@pytest.mark.parametrize("mode", ["rate", "count"])
def test_rate_ce_gradcheck(mode):
    out = rand_out(3, 4, 3).requires_grad_()
    fn = L.RateCrossEntropy(mode=mode, weight=[1.0, 2.0, 0.5], label_smoothing=0.2)
    assert torch.autograd.gradcheck(lambda o: fn(o, Y), (out,))


# ----------------------------------------------------------------------------- reductions
CLASS_LOSSES = [
    lambda r: L.RateCrossEntropy(reduction=r),
    lambda r: L.RateCrossEntropy(mode="count", reduction=r),
    lambda r: L.CountMSE(reduction=r),
    lambda r: L.MembraneCrossEntropy(reduction=r),
    lambda r: L.TETLoss(reduction=r),
    lambda r: L.FirstSpikeLoss(reduction=r),
    lambda r: L.FirstSpikeLoss(mode="mse", reduction=r),
]


@pytest.mark.parametrize("make", CLASS_LOSSES)
def test_reductions_and_shapes(make):
    out = rand_spikes(6, 4, 3)
    none = make("none")(out, Y)
    assert none.shape == (4,)
    torch.testing.assert_close(make("sum")(out, Y), none.sum())
    torch.testing.assert_close(make("mean")(out, Y), none.mean())


@pytest.mark.parametrize("make", CLASS_LOSSES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_dtype_follows_output(make, dtype):
    out = rand_spikes(6, 4, 3, dtype=dtype).requires_grad_()
    loss = make("mean")(out, Y)
    assert loss.dtype == dtype and loss.dim() == 0 and torch.isfinite(loss)
    loss.backward()
    assert out.grad is not None and out.grad.dtype == dtype


@pytest.mark.parametrize("make", CLASS_LOSSES)
def test_gradient_reaches_membrane_through_spike(make):
    v = rand_out(6, 4, 3, seed=3).requires_grad_()
    make("mean")(spike(v), Y).backward()
    assert v.grad is not None and bool(v.grad.abs().sum() > 0)


def test_weighted_mean_is_torch_weighted_mean():
    out = rand_out(4, 4, 3)
    w = torch.tensor([1.0, 3.0, 0.5], dtype=torch.float64)
    none = L.MembraneCrossEntropy(weight=w, reduction="none")(out, Y)
    mean = L.MembraneCrossEntropy(weight=w)(out, Y)
    torch.testing.assert_close(mean, none.sum() / w[Y].sum())
    torch.testing.assert_close(mean, F.cross_entropy(out.max(0).values, Y, weight=w))


# ----------------------------------------------------------------------------- CountMSE
def test_count_mse_hand_value():
    out = torch.zeros(4, 1, 2)
    out[:1, 0, 0] = 1  # count 1 for class 0
    out[:2, 0, 1] = 1  # count 2 for class 1
    loss = L.CountMSE(correct_rate=0.75, incorrect_rate=0.25)(out, torch.tensor([0]))
    # targets [3, 1]: ((1-3)^2 + (2-1)^2) / C / T = 5 / 2 / 4
    assert loss.item() == pytest.approx(5 / 8)
    perfect = torch.zeros(4, 1, 2)
    perfect[:3, 0, 0] = 1
    perfect[:1, 0, 1] = 1
    assert L.CountMSE(0.75, 0.25)(perfect, torch.tensor([0])).item() == 0.0


def test_count_mse_gradcheck():
    out = rand_out(5, 4, 3).requires_grad_()
    fn = L.CountMSE()
    assert torch.autograd.gradcheck(lambda o: fn(o, Y), (out,))


# ----------------------------------------------------------------------------- MembraneCE
@pytest.mark.parametrize("how,ref", [("max", lambda v: v.max(0).values), ("mean", lambda v: v.mean(0)),
                                     ("last", lambda v: v[-1]), ("sum", lambda v: v.sum(0))])
def test_membrane_ce_value_and_grad(how, ref):
    v = rand_out(5, 4, 3).requires_grad_()
    fn = L.MembraneCrossEntropy(reduce=how, label_smoothing=0.05)
    torch.testing.assert_close(fn(v, Y), F.cross_entropy(ref(v), Y, label_smoothing=0.05))
    assert torch.autograd.gradcheck(lambda o: fn(o, Y), (v,))


def test_membrane_ce_hand_value():
    v = torch.tensor([[[0.0, 1.0]], [[2.0, 0.5]]])  # max over t: [2, 1]
    expected = math.log(1 + math.exp(-1))  # class 0 has the larger max
    assert L.MembraneCrossEntropy()(v, torch.tensor([0])).item() == pytest.approx(expected, rel=1e-6)


# ----------------------------------------------------------------------------- TET
def test_tet_hand_value_and_formula():
    out = torch.tensor([[[1.0, 0.0]], [[0.0, 0.0]]])
    y = torch.tensor([0])
    ce = (math.log(1 + math.exp(-1)) + math.log(2)) / 2
    mse = ((1 - 1) ** 2 + (0 - 1) ** 2 + 1 + 1) / 4  # target phi = 1
    lam = 0.1
    got = L.TETLoss(lam=lam, target=1.0)(out, y).item()
    assert got == pytest.approx((1 - lam) * ce + lam * mse, rel=1e-6)
    assert L.TETLoss(lam=0.0)(out, y).item() == pytest.approx(L.RateCrossEntropy()(out, y).item())


def test_tet_gradcheck():
    out = rand_out(3, 4, 3).requires_grad_()
    fn = L.TETLoss(lam=0.3, target=0.5, weight=[1.0, 2.0, 1.0])
    assert torch.autograd.gradcheck(lambda o: fn(o, Y), (out,))


# ----------------------------------------------------------------------------- first spike
def test_first_spike_time_values():
    s = torch.tensor([0.0, 0.0, 1.0, 0.0, 1.0]).reshape(5, 1, 1)
    assert L.first_spike_time(s).item() == 2.0
    assert L.first_spike_time(torch.zeros(5, 1, 1)).item() == 5.0  # never fires -> T
    assert L.first_spike_time(torch.ones(5, 1, 1)).item() == 0.0


def test_first_spike_time_gradient_is_exact_flip_difference():
    s = torch.tensor([0.0, 0.0, 1.0, 0.0, 1.0], dtype=torch.float64).reshape(5, 1, 1).requires_grad_()
    L.first_spike_time(s).sum().backward()
    # first spike tau=2, second tau2=4: d/ds_j = -(tau - j) for j < tau, -(tau2 - tau) at tau, 0 after
    assert s.grad.flatten().tolist() == [-2.0, -1.0, -2.0, 0.0, 0.0]


def test_first_spike_time_gradcheck_relaxed():
    g = torch.Generator().manual_seed(1)
    s = (0.1 + 0.8 * torch.rand(6, 3, 2, generator=g, dtype=torch.float64)).requires_grad_()
    assert torch.autograd.gradcheck(L.first_spike_time, (s,))
    # reference: the explicit indicator form sum_t t f_t + T (1 - sum_t f_t)
    T = s.shape[0]
    alive = torch.cumprod(torch.cat([torch.ones_like(s[:1]), 1 - s[:-1]]), 0)
    f = s * alive
    t = torch.arange(T, dtype=s.dtype).reshape(T, 1, 1)
    torch.testing.assert_close(L.first_spike_time(s), (t * f).sum(0) + T * (1 - f.sum(0)))


def test_first_spike_ce_hand_value():
    out = torch.zeros(4, 1, 3)
    out[0, 0, 0] = 1  # class 0 fires at t=0, class 1 at t=2, class 2 never (t=4)
    out[2, 0, 1] = 1
    y = torch.tensor([0])
    z = torch.tensor([0.0, -2.0, -4.0])
    assert L.FirstSpikeLoss()(out, y).item() == pytest.approx(-torch.log_softmax(z, 0)[0].item())
    z = 1 / (torch.tensor([0.0, 2.0, 4.0]) + 1)
    assert L.FirstSpikeLoss(inverse="reciprocal")(out, y).item() == pytest.approx(
        -torch.log_softmax(z, 0)[0].item())


def test_first_spike_mse_hand_value():
    out = torch.zeros(4, 1, 3)
    out[1, 0, 0] = 1  # times [1, 2, 4]
    out[2, 0, 1] = 1
    y = torch.tensor([0])
    # on_target 0, off_target None -> T=4: errors [1, -2, 0] / 4
    assert L.FirstSpikeLoss(mode="mse")(out, y).item() == pytest.approx((1 + 4) / 16 / 3)
    # snnTorch defaults: off_target=-1 -> T-1 = 3: errors [1, -1, 1]
    assert L.FirstSpikeLoss(mode="mse", off_target=-1)(out, y).item() == pytest.approx(3 / 16 / 3)
    # a tolerance of 1.5 steps forgives the errors of size 1
    assert L.FirstSpikeLoss(mode="mse", off_target=-1, tolerance=1.5)(out, y).item() == 0.0
    times = torch.tensor([[1.0, 2.0, -1.0]])  # -1 -> 3; errors [0, 0, 1]
    got = L.FirstSpikeLoss(mode="mse", target_is_time=True)(out, times).item()
    assert got == pytest.approx(1 / 16 / 3)


@pytest.mark.parametrize("mode", ["ce", "mse"])
def test_first_spike_loss_gradcheck_relaxed(mode):
    g = torch.Generator().manual_seed(2)
    s = (0.1 + 0.8 * torch.rand(5, 4, 3, generator=g, dtype=torch.float64)).requires_grad_()
    fn = L.FirstSpikeLoss(mode=mode)
    assert torch.autograd.gradcheck(lambda o: fn(o, Y), (s,))


def test_first_spike_ce_pushes_correct_class_earlier():
    v = torch.full((6, 1, 2), -1.0, requires_grad=True)  # no neuron fires
    with torch.no_grad():
        v[3, 0, :] = 1.0  # both fire at t=3
    L.FirstSpikeLoss()(spike(v), torch.tensor([0])).backward()
    # raising class 0's membrane before t=3 lowers the loss; raising class 1's raises it
    assert bool((v.grad[:3, 0, 0] < 0).all()) and bool((v.grad[:3, 0, 1] > 0).all())


# ----------------------------------------------------------------------------- MSEMembrane
def test_mse_membrane_values_and_broadcast():
    out = rand_out(4, 2, 3)
    tgt = rand_out(4, 2, 3, seed=9)
    torch.testing.assert_close(L.MSEMembrane()(out, tgt), F.mse_loss(out, tgt))
    assert L.MSEMembrane(reduction="none")(out, tgt).shape == (4, 2, 3)
    torch.testing.assert_close(L.MSEMembrane(reduction="sum")(out, tgt), ((out - tgt) ** 2).sum())
    const = tgt[0]
    torch.testing.assert_close(L.MSEMembrane(broadcast_time=True)(out, const),
                               F.mse_loss(out, const.expand_as(out)))
    x = out.clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda o: L.MSEMembrane()(o, tgt), (x,))


def test_mse_membrane_never_broadcasts_time_silently():
    out = rand_out(4, 2, 3)
    with pytest.raises(ValueError, match="no time axis.*broadcast_time"):
        L.MSEMembrane()(out, out[0])
    with pytest.raises(ValueError, match="time axis mismatch.*3 steps.*T=4"):
        L.MSEMembrane()(out, out[:3])
    with pytest.raises(ValueError, match="broadcast_time=True.*shape"):
        L.MSEMembrane(broadcast_time=True)(out, out)
    with pytest.raises(ValueError, match="must have the output's shape"):
        L.MSEMembrane()(out, torch.zeros(4, 2, 2, dtype=torch.float64))


# ----------------------------------------------------------------------------- regularizers
def test_rate_regularizer_hand_value():
    s = torch.zeros(4, 1, 2)
    s[:, 0, 0] = 1.0  # neuron 0 rate 1, neuron 1 rate 0 -> population mean 0.5
    reg = L.RateRegularizer(lower=0.25, upper=0.3, lower_strength=2.0, upper_strength=3.0)
    # lower: 2 * mean([0, 0.25^2]) ; upper: 3 * (0.5 - 0.3)^2
    expected = 2.0 * (0.0625 / 2) + 3.0 * 0.2 ** 2
    assert reg(s).item() == pytest.approx(expected)
    # count unit: counts [4, 0], bound in spikes per sample
    reg_c = L.RateRegularizer(lower=1.0, unit="count")
    assert reg_c(s).item() == pytest.approx(1.0 / 2)
    # a list of layers sums the per-layer terms
    assert reg([s, s]).item() == pytest.approx(2 * expected)


def test_rate_regularizer_reductions_and_grad():
    s = rand_out(5, 3, 4).sigmoid().requires_grad_()
    reg = L.RateRegularizer(lower=0.5, upper=0.5, reduction="none")
    none = reg(s)
    assert none.shape == (3,)
    torch.testing.assert_close(L.RateRegularizer(lower=0.5, upper=0.5)(s), none.mean())
    assert torch.autograd.gradcheck(lambda x: L.RateRegularizer(lower=0.5, upper=0.5)(x), (s,))


def test_spike_l1_hand_value():
    s = torch.zeros(4, 2, 2)
    s[:3, 0, 0] = 1.0  # sample 0: counts [3, 0] -> mean 1.5 ; sample 1: 0
    assert L.SpikeL1(strength=0.5, reduction="none")(s).tolist() == [0.75, 0.0]
    assert L.SpikeL1()(s).item() == pytest.approx(0.75)
    assert L.SpikeL1(unit="rate")(s).item() == pytest.approx(0.75 / 4)
    v = rand_out(4, 2, 2).requires_grad_()
    L.SpikeL1()([spike(v), spike(v * 2)]).backward()
    assert bool(v.grad.abs().sum() > 0)


class RecordingNeuron(nn.Module):
    """A fake neuron following the recording protocol: recorded['s'] = spikes [T, B, N]."""

    def __init__(self, n_in, n_out):
        super().__init__()
        self.fc = nn.Linear(n_in, n_out)
        self.recorded = {}

    def forward(self, x):
        s = spike(self.fc(x) - 0.1)
        self.recorded = {"s": s, "v": x}
        return s


def test_regularization_collects_from_every_recording_module():
    torch.manual_seed(0)
    model = nn.Sequential(RecordingNeuron(3, 5), nn.Identity(), RecordingNeuron(5, 2))
    out = model(torch.randn(4, 2, 3))
    recs = L.collect(model)
    assert [r.shape for r in recs] == [(4, 2, 5), (4, 2, 2)]
    reg = L.SpikeL1()
    value = L.regularization(model, reg)
    torch.testing.assert_close(value, reg(recs))
    value.backward()
    assert model[0].fc.weight.grad is not None  # the records keep the graph
    with pytest.raises(ValueError, match="recorded\\['s'\\]"):
        L.regularization(nn.Linear(2, 2), reg)
    del out


def test_regularized_loss_binds_model():
    model = nn.Sequential(RecordingNeuron(3, 5), RecordingNeuron(5, 3))
    loss = L.RegularizedLoss(L.RateCrossEntropy(), L.SpikeL1(strength=0.1))
    assert loss.needs_model
    out = model(torch.randn(4, 4, 3))
    with pytest.raises(RuntimeError, match="bind"):
        loss(out, Y)
    loss.bind(model)
    expected = L.RateCrossEntropy()(out, Y) + 0.1 * L.SpikeL1()(L.collect(model))
    torch.testing.assert_close(loss(out, Y), expected)
    assert "model" not in dict(loss.named_modules())  # not registered as a sub-module
    assert list(loss.parameters()) == []
    clone = pickle.loads(pickle.dumps(loss))
    assert clone.model is None
    assert copy.deepcopy(loss).regularizer.strength == 0.1


# ----------------------------------------------------------------------------- registry
@pytest.mark.parametrize("name,cls", [
    ("rate-ce", L.RateCrossEntropy), ("count_mse", L.CountMSE), ("membrane-ce", L.MembraneCrossEntropy),
    ("TET", L.TETLoss), ("first-spike", L.FirstSpikeLoss), ("mse-membrane", L.MSEMembrane),
    ("ce-temporal", L.FirstSpikeLoss), ("ce", nn.CrossEntropyLoss),
])
def test_get_builtins(name, cls):
    assert isinstance(L.get(name), cls)


def test_get_passes_kwargs_and_presets():
    tet = L.get("tet", lam=0.5, reduction="sum")
    assert tet.lam == 0.5 and tet.reduction == "sum"
    assert L.get("count-ce").mode == "count"
    assert L.get("mse-temporal", tolerance=2).mode == "mse"
    with pytest.raises(TypeError, match="could not build loss 'tet'.*bogus"):
        L.get("tet", bogus=1)
    m = L.CountMSE()
    assert L.resolve(m) is m
    assert isinstance(L.resolve("rate-ce", mode="count"), L.RateCrossEntropy)
    with pytest.raises(ValueError, match="already a module instance"):
        L.resolve(m, reduction="sum")


def test_unknown_name_lists_names():
    with pytest.raises(ValueError, match="unknown loss 'nope'.*rate-ce.*tet"):
        L.get("nope")
    with pytest.raises(TypeError, match="loss name must be a str"):
        L.get(3)


PLUGIN_SRC = '''
import torch
from torch import nn

class PluginLoss(nn.Module):
    def __init__(self, scale=1.0):
        super().__init__()
        self.scale = scale

    def forward(self, output, target):
        return self.scale * output.sum(0).gather(1, target[:, None]).mean()

def make_plugin(scale=1.0):
    return PluginLoss(scale=2 * scale)

def plain_loss(output, target, power=1):
    return output.sum() ** power
'''


def test_import_path_plugin(tmp_path, monkeypatch):
    (tmp_path / "snl_tmp_plugin.py").write_text(PLUGIN_SRC)
    monkeypatch.syspath_prepend(str(tmp_path))
    out = torch.ones(3, 4, 3)
    loss = L.get("snl_tmp_plugin:PluginLoss", scale=0.5)
    assert type(loss).__name__ == "PluginLoss" and loss(out, Y).item() == pytest.approx(1.5)
    # a factory by import path is refused (only Module classes and loss functions are built)
    with pytest.raises(TypeError, match="make_plugin.*torch.nn.Module subclass"):
        L.get("snl_tmp_plugin:make_plugin", scale=1.0)
    plain = L.get("snl_tmp_plugin:plain_loss", power=2)  # a plain (output, target) function
    assert isinstance(plain, L.FunctionLoss) and plain(out, Y).item() == 36.0 ** 2
    by_file = L.get(f"{tmp_path / 'snl_tmp_plugin.py'}:PluginLoss")
    assert by_file(out, Y).item() == pytest.approx(3.0)
    with pytest.raises(ValueError, match="has no attribute 'Missing'.*PluginLoss"):
        L.get("snl_tmp_plugin:Missing")


def test_import_path_that_does_not_import(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="module 'no_such_pkg_xyz.losses' could not be imported"
                                         ".*No module named 'no_such_pkg_xyz'"):
        L.get("no_such_pkg_xyz.losses:Foo")
    (tmp_path / "snl_broken_plugin.py").write_text("import no_such_dependency_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ValueError, match="snl_broken_plugin.*no_such_dependency_xyz"):
        L.get("snl_broken_plugin:Foo")
    with pytest.raises(ValueError, match="does not exist"):
        L.get(f"{tmp_path / 'missing.py'}:Foo")
    with pytest.raises(ValueError, match="must look like"):
        L.get("mod:")


def test_entry_point_plugin(tmp_path, monkeypatch):
    (tmp_path / "snl_ep_plugin.py").write_text(PLUGIN_SRC)
    info = tmp_path / "snl_ep_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: snl-ep-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[surrogate_nets.losses]\nsnl-plugin = snl_ep_plugin:PluginLoss\n"
        "snl-broken = snl_ep_plugin:DoesNotExist\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "snl-plugin" in L.names()
    loss = L.get("snl_plugin", scale=3.0)  # '_' and '-' interchangeable
    assert type(loss).__name__ == "PluginLoss" and loss.scale == 3.0
    assert loss(torch.ones(2, 4, 3), Y).item() == pytest.approx(6.0)
    with pytest.raises(ValueError, match="snl-broken.*snl-ep-plugin.*failed to load"):
        L.get("snl-broken")


def test_example_custom_loss_by_import_path(monkeypatch):
    import os
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    monkeypatch.chdir(repo)
    loss = L.get("examples.custom_loss:FocalRateLoss", gamma=0.0)
    out = rand_spikes(5, 4, 3).requires_grad_()
    # gamma = 0 is the count cross entropy
    torch.testing.assert_close(loss(out, Y), L.RateCrossEntropy(mode="count")(out, Y))
    loss(out, Y).backward()
    assert out.grad is not None
    mod = sys.modules["examples.custom_loss"]
    assert mod.main(["--steps", "3", "--time-steps", "4"]) >= 0.0


def test_parse_kwargs():
    assert L.parse_kwargs(["lam=0.01", "reduce=max", "weight=[1, 2,3]", "flag=True"]) == {
        "lam": 0.01, "reduce": "max", "weight": [1, 2, 3], "flag": True}
    assert L.parse_kwargs("a=1,b=none,c='x'") == {"a": 1, "b": None, "c": "x"}
    with pytest.raises(ValueError, match="key=value"):
        L.parse_kwargs(["novalue"])
    loss = L.get("rate-ce", **L.parse_kwargs(["weight=[1,2,3]", "label_smoothing=0.1"]))
    assert loss.weight.tolist() == [1.0, 2.0, 3.0]


def test_function_loss_and_callable_class():
    class PlainCallable:  # e.g. an snnTorch-style loss object with __call__
        def __call__(self, output, target):
            return output.mean()

    loss = L.resolve(PlainCallable)
    assert isinstance(loss, L.FunctionLoss)
    assert loss(torch.ones(2, 4, 3), Y).item() == 1.0


# ----------------------------------------------------------------------------- bad input
def test_targets_out_of_class_range():
    out = rand_spikes(3, 4, 3)
    for fn in (L.RateCrossEntropy(), L.CountMSE(), L.TETLoss(), L.FirstSpikeLoss()):
        with pytest.raises(ValueError, match=r"target.*\[0, 3\].*C=3.*\[0, 2\]"):
            fn(out, torch.tensor([0, 1, 3, 0]))
        with pytest.raises(ValueError, match="target"):
            fn(out, torch.tensor([0, -1, 2, 0]))


def test_wrong_shapes_and_types():
    out = rand_spikes(3, 4, 3)
    with pytest.raises(ValueError, match=r"target must be class indices of shape \[B\]=\(4,\).*\(5,\)"):
        L.RateCrossEntropy()(out, torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match="looks time-major"):
        L.RateCrossEntropy()(out, torch.zeros(3, 4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"output must be time-major class scores of shape \[T, B, C\]"):
        L.RateCrossEntropy()(out[0], Y)
    with pytest.raises(ValueError, match="output must have at least 2 dimensions"):
        L.RateCrossEntropy()(torch.zeros(3), Y)
    with pytest.raises(TypeError, match="output must have a floating dtype"):
        L.RateCrossEntropy()(out.long(), Y)
    with pytest.raises(TypeError, match="integer class indices"):
        L.CountMSE()(out, torch.zeros(4, 3))
    with pytest.raises(ValueError, match="weight has 2 entries but output has C=3"):
        L.RateCrossEntropy(weight=[1.0, 2.0])(out, Y)
    with pytest.raises(ValueError, match="T >= 1"):
        L.TETLoss()(torch.zeros(0, 4, 3), Y)
    with pytest.raises(ValueError, match="batch size"):
        L.SpikeL1()([torch.zeros(2, 3, 4), torch.zeros(2, 2, 4)])
    with pytest.raises(ValueError, match="target first-spike times must lie in"):
        L.FirstSpikeLoss(mode="mse", on_target=-10)(out, Y)


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="reduction must be one of.*'avg'"):
        L.RateCrossEntropy(reduction="avg")
    with pytest.raises(ValueError, match="mode must be one of"):
        L.RateCrossEntropy(mode="rates")
    with pytest.raises(TypeError, match="reduce must be one of"):
        L.MembraneCrossEntropy(reduce=True)
    with pytest.raises(ValueError, match="label_smoothing must lie in"):
        L.RateCrossEntropy(label_smoothing=1.5)
    with pytest.raises(ValueError, match="correct_rate must lie in"):
        L.CountMSE(correct_rate=2.0)
    with pytest.raises(ValueError, match="lam must lie in"):
        L.TETLoss(lam=-0.1)
    with pytest.raises(ValueError, match="lower=None and upper=None"):
        L.RateRegularizer()
    with pytest.raises(ValueError, match="weight must be finite and >= 0"):
        L.RateCrossEntropy(weight=[1.0, -1.0])
    with pytest.raises(ValueError, match="mode='ce' only"):
        L.FirstSpikeLoss(mode="mse", weight=[1.0, 1.0])
    with pytest.raises(ValueError, match="target_is_time=True needs mode='mse'"):
        L.FirstSpikeLoss(target_is_time=True)


def test_import_path_found_in_current_directory(tmp_path, monkeypatch):
    # a console script does not put the current directory on sys.path; `python -m` does
    (tmp_path / "snl_cwd_plugin.py").write_text(PLUGIN_SRC)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    before = list(sys.path)
    assert type(L.get("snl_cwd_plugin:PluginLoss")).__name__ == "PluginLoss"
    assert sys.path == before  # the directory was only added for the import


def test_register_user_loss():
    L.register("snl-user-test", L.CountMSE)
    try:
        assert isinstance(L.get("snl_user_test", correct_rate=1.0), L.CountMSE)
        assert "snl-user-test" in L.names()
    finally:
        L.unregister("snl-user-test")
    with pytest.raises(ValueError, match="without ':'"):
        L.register("a:b", L.CountMSE)


def test_predict_follows_the_loss_readout():
    from surrogate_nets import losses as L

    # class 0 fires first (t=0) once; class 1 fires later but more often
    out = torch.zeros(4, 1, 2)
    out[0, 0, 0] = 1.0
    out[1:, 0, 1] = 1.0
    assert L.FirstSpikeLoss().predict(out).tolist() == [0]
    assert L.RateCrossEntropy().predict(out).tolist() == [1]
    mem = torch.tensor([[[5.0, 0.0]], [[0.0, 1.0]], [[0.0, 1.0]]])
    assert L.MembraneCrossEntropy(reduce="max").predict(mem).tolist() == [0]
    assert L.MembraneCrossEntropy(reduce="last").predict(mem).tolist() == [1]
    assert L.RegularizedLoss(L.FirstSpikeLoss(), L.SpikeL1()).predict(out).tolist() == [0]
    assert L.RateCrossEntropy().predict(torch.tensor([[0.1, 0.9]])).tolist() == [1]


def test_one_name_normalisation_for_losses_and_surrogates():
    from surrogate_nets import surrogate
    from surrogate_nets._registry import normalize
    assert normalize(" Fast-Sigmoid ") == normalize("fast_sigmoid") == "fast_sigmoid"
    assert type(surrogate.get("FAST-SIGMOID")) is type(surrogate.get("fast_sigmoid"))
    assert type(L.get("Rate_CE")) is type(L.get("rate-ce"))
    assert L.canonical("CE_RATE") == "rate-ce" and L.is_builtin("count_ce")
    assert not L.is_builtin("os:system") and L.canonical("os:system") is None
    assert "mse" in L.names() and "mse" not in L.names(task="classification")
    assert "rate-ce" in L.names(task="classification")
