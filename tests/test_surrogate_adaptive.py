"""Mechanics of the adaptive sharpness (surrogate_nets.surrogate.adaptive) and the sigmoid tail."""

import math

import pytest
import torch

from surrogate_nets import functional as F
from surrogate_nets.neurons import LIF, Synaptic
from surrogate_nets.surrogate import Adaptive, AlphaSchedule, FastSigmoid, Sigmoid, get, half_width


@pytest.mark.parametrize("name,expected", [
    ("fast_sigmoid", math.sqrt(2) - 1), ("atan", 2 / math.pi), ("sigmoid", 2 * math.atanh(math.sqrt(0.5))),
    ("triangle", 0.5), ("gaussian", math.sqrt(2 * math.log(2))), ("rectangle", 0.5)])
def test_half_width_closed_forms(name, expected):
    assert half_width(get(name)) == pytest.approx(expected, rel=1e-6)
    # a scale family: the half-width at alpha = 4 is a quarter of that at alpha = 1
    assert half_width(get(name), 4.0) == pytest.approx(expected / 4, rel=1e-6)


def _uniform_abs(n=20001):
    return torch.linspace(-1.0, 1.0, n, dtype=torch.float64)  # |x| uniform on [0, 1]: Q_q = q


@pytest.mark.parametrize("q", [0.1, 0.2, 0.5])
def test_target_is_half_width_over_quantile(q):
    a = Adaptive("fast_sigmoid", alpha=3.0, fraction=q)
    assert a.target_alpha() is None  # nothing observed yet
    a.observe(_uniform_abs())
    # histogram resolution is 0.05 decades (12%); linear interpolation inside a bin does better
    assert a.target_alpha() == pytest.approx((math.sqrt(2) - 1) / q, rel=0.03)


@pytest.mark.parametrize("start", [0.05, 512.0])
def test_converges_from_both_sides_in_log_space(start):
    m = 0.3
    a = Adaptive("atan", alpha=start, fraction=0.2, momentum=m)
    x = _uniform_abs()
    a.observe(x)
    target = a.target_alpha()
    a.update()
    # one EMA step in log space
    assert math.log(float(a.alpha)) == pytest.approx((1 - m) * math.log(start) + m * math.log(target), rel=1e-6)
    assert float(a.hist.sum()) == 0  # histogram cleared after the update
    for _ in range(40):
        a.observe(x)
        a.update()
    assert float(a.alpha) == pytest.approx(target, rel=1e-3)
    assert a.updates == 41


def test_training_mode_only_and_update_on_next_read():
    a = Adaptive("fast_sigmoid", alpha=100.0, momentum=1.0)
    x = _uniform_abs()
    a.eval()
    a.derivative(x)
    assert float(a.hist.sum()) == 0 and float(a.alpha) == 100.0
    a.train()
    a.derivative(x)  # observed, not applied yet
    assert float(a.hist.sum()) == x.numel() and float(a.fixed_alpha) == 100.0
    assert float(a.alpha) == pytest.approx((math.sqrt(2) - 1) / 0.2, rel=0.03)  # read applies it


def test_shape_and_gradients_are_the_base_family():
    base = FastSigmoid(alpha=7.0)
    a = Adaptive(base).eval()
    x = torch.randn(50, dtype=torch.float64)
    al = torch.tensor(7.0, dtype=torch.float64)
    torch.testing.assert_close(a.primitive(x, al), base.primitive(x, al))
    torch.testing.assert_close(a.derivative(x, al), base.derivative(x, al))
    torch.testing.assert_close(a.d_alpha(x, al), base.d_alpha(x, al))
    # the spike's backward uses the base family's derivative at the adaptive alpha
    xr = x.clone().requires_grad_(True)
    F.spike(xr, a).sum().backward()
    torch.testing.assert_close(xr.grad, base.derivative(x, al))
    # and the relaxed spike is differentiable consistently (finite differences, float64)
    assert torch.autograd.gradcheck(lambda z: F.spike(z, a, relaxed=True), (x[:6].clone().requires_grad_(True),))


def test_alpha_is_a_buffer_replaced_not_written_in_place():
    neuron = Synaptic(tau=10.0, tau_syn=5.0, surrogate=Adaptive("fast_sigmoid", alpha=512.0))
    assert not any("alpha" in n for n, _ in neuron.named_parameters())
    x = torch.randn(10, 3, 4, requires_grad=True)
    out_a = neuron(x).sum()
    out_b = neuron(x).sum()        # a second graph built with the same alpha tensor
    out_a.backward()               # fills the histogram
    neuron(x)                      # next forward in training mode: alpha replaced
    out_b.backward()               # the old graph still backpropagates (no in-place write)
    assert float(neuron.surrogate.alpha) < 512.0


@pytest.mark.parametrize("start", [0.05, 512.0])
def test_in_a_neuron_alpha_moves_towards_the_same_value_from_both_sides(start):
    torch.manual_seed(0)
    x = 0.6 * torch.randn(30, 16, 8).abs()
    neuron = LIF(tau=5.0, surrogate=Adaptive("fast_sigmoid", alpha=start, momentum=0.5))
    w = torch.ones(8, requires_grad=True)
    for _ in range(25):
        neuron(x * w).sum().backward()
    end = float(neuron.surrogate.alpha)
    assert 0.5 < end < 50.0, end   # far from both starts
    neuron2 = LIF(tau=5.0, surrogate=Adaptive("fast_sigmoid", alpha=1.0 if start > 1 else 100.0,
                                              momentum=0.5))
    for _ in range(25):
        neuron2(x * w).sum().backward()
    assert float(neuron2.surrogate.alpha) == pytest.approx(end, rel=0.15)


def test_state_dict_round_trip_and_schedule_skips_adaptive():
    a = Adaptive("triangle", alpha=20.0, momentum=1.0)
    a.observe(_uniform_abs())
    a.update()
    b = Adaptive("triangle", alpha=1.0)
    b.load_state_dict(a.state_dict())
    assert float(b.alpha) == float(a.alpha) and b.host_alpha == a.host_alpha
    # pending observations travel with the state (exact resume); older state dicts still load
    a.observe(_uniform_abs())
    c = Adaptive("triangle", alpha=1.0)
    c.load_state_dict(a.state_dict())
    assert torch.equal(c.hist, a.hist) and float(c.hist.sum()) > 0
    old = {k: v for k, v in a.state_dict().items() if k != "hist"}
    c.load_state_dict(old)
    assert float(c.hist.sum()) == 0 and float(c.fixed_alpha) == float(a.fixed_alpha)
    fixed = Sigmoid(alpha=2.0)
    sched = AlphaSchedule([a, fixed], 1.0, 4.0, steps=2)
    assert sched.surrogates == [fixed]


def test_bad_arguments():
    with pytest.raises(ValueError, match="learnable"):
        Adaptive(FastSigmoid(learnable=True))
    with pytest.raises(TypeError, match="base"):
        Adaptive(3.0)
    with pytest.raises(ValueError, match="fraction"):
        Adaptive("atan", fraction=1.5)
    with pytest.raises(ValueError, match="momentum"):
        Adaptive("atan", momentum=0.0)
    with pytest.raises(ValueError, match="alpha"):
        Adaptive("atan", alpha=-1.0)
    with pytest.raises(ValueError, match="min_alpha"):
        Adaptive("atan", min_alpha=10.0, max_alpha=1.0)


def test_sigmoid_derivative_tail_does_not_underflow():
    s = Sigmoid(alpha=1.0)
    x = torch.tensor([20.0, 40.0, 80.0, -80.0])
    d32, d64 = s.derivative(x), s.derivative(x.double())
    assert (d32 > 0).all()  # 1 - sigmoid(20) is exactly 0 in float32
    torch.testing.assert_close(d32.double(), d64, rtol=1e-5, atol=0)
    torch.testing.assert_close(s.d_alpha(x).double(), s.d_alpha(x.double()), rtol=1e-5, atol=0)


def test_reachable_from_any_family_and_neuron():
    sg = get("atan", alpha=512.0).adaptive(fraction=0.3)
    assert isinstance(sg, Adaptive) and sg.base.name == "atan" and float(sg.alpha) == 512.0
    assert sg.fraction == 0.3 and sg.z_half == pytest.approx(2 / math.pi)
    neuron = LIF(surrogate=sg)
    assert neuron.surrogate is sg and "surrogate.fixed_alpha" in neuron.state_dict()


def test_works_inside_fit_without_changes(tmp_path):
    from surrogate_nets import layers, losses, train
    from surrogate_nets.neurons import LI
    from torch import nn

    torch.manual_seed(0)
    x, y = torch.rand(64, 8, 6), torch.randint(0, 3, (64,))
    model = layers.Sequential(nn.Linear(6, 12), LIF(tau=4.0, surrogate=FastSigmoid(alpha=512.0).adaptive()),
                              nn.Linear(12, 3), LI(tau=4.0))
    train.fit(model, losses.get("membrane-ce"), train.TensorLoader(x, y, batch_size=16, shuffle=True),
              epochs=1, lr=1e-3, progress=False, verbose=False, device="cpu")
    assert float(model[1].surrogate.alpha) < 100.0  # moved down from 512 within one epoch
