"""Tests of surrogate_nets.surrogate: closed forms against finite differences, registry, schedule."""

import math

import pytest
import torch
from torch import nn

from surrogate_nets import surrogate as S

ALL = [S.get(n).__class__ for n in S.names()]


def _grid(n=4001, lim=6.0):
    return torch.linspace(-lim, lim, n, dtype=torch.float64)


def _avoid_kinks(x, s, alpha):
    """Drop points within 1e-4 of a kink of a piecewise family (finite differences break there)."""
    kinks = {"straight_through": [0.5], "rectangle": [0.5], "triangle": [0.0, 1.0],
             "exponential": [0.0], "dspike": [0.5 * alpha], "fast_sigmoid": [0.0], "softsign": [0.0]}
    keep = torch.ones_like(x, dtype=torch.bool)
    for k in kinks.get(s.name, []):
        keep &= ((alpha * x).abs() - k).abs() > 1e-4
    return x[keep]


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.name)
def test_primitive_limits_and_center(cls):
    s = cls()
    x = torch.tensor([-1e9, 1e9, 0.0], dtype=torch.float64)
    p = s.primitive(x)
    assert p[0].item() == pytest.approx(0.0, abs=1e-6)
    assert p[1].item() == pytest.approx(1.0, abs=1e-6)
    assert p[2].item() == pytest.approx(0.5, abs=1e-12)


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.name)
@pytest.mark.parametrize("alpha", [0.7, 3.0])
def test_derivative_matches_finite_differences(cls, alpha):
    s = cls(alpha=alpha)
    a = torch.tensor(alpha, dtype=torch.float64)
    x = _avoid_kinks(_grid(2001, 3.0), s, alpha)
    h = 1e-6
    fd = (s.primitive(x + h, a) - s.primitive(x - h, a)) / (2 * h)
    torch.testing.assert_close(s.derivative(x, a), fd, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.name)
@pytest.mark.parametrize("alpha", [0.7, 3.0])
def test_d_alpha_matches_finite_differences(cls, alpha):
    s = cls(alpha=alpha)
    x = _avoid_kinks(_grid(2001, 3.0), s, alpha)
    x = x[((x.abs() - 0.5).abs() > 1e-3)]  # dspike's window edge in x
    h = 1e-6
    ap = torch.tensor(alpha + h, dtype=torch.float64)
    am = torch.tensor(alpha - h, dtype=torch.float64)
    fd = (s.primitive(x, ap) - s.primitive(x, am)) / (2 * h)
    torch.testing.assert_close(s.d_alpha(x, torch.tensor(alpha, dtype=torch.float64)), fd, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.name)
def test_derivative_integrates_to_one(cls):
    s = cls()
    # wide grid: heavy-tailed families (atan, fast sigmoid) need it; tail mass added analytically
    x = torch.linspace(-50, 50, 2_000_001, dtype=torch.float64)
    integral = torch.trapezoid(s.derivative(x), x).item()
    tail = 1 - (s.primitive(x[-1:]) - s.primitive(x[:1])).item()
    assert integral + tail == pytest.approx(1.0, abs=2e-4)
    assert integral == pytest.approx(1.0, abs=1e-2)


class Cubic(S.Surrogate):
    """A user family written with ``primitive`` only."""

    default_alpha = 1.5

    def primitive(self, x, alpha):
        return torch.sigmoid(alpha * x + 0.1 * (alpha * x) ** 3)


def test_custom_surrogate_gets_autograd_derivatives():
    s = Cubic()
    x = torch.linspace(-2, 2, 101, dtype=torch.float64)
    a = torch.tensor(1.5, dtype=torch.float64)
    h = 1e-6
    fd_x = (s.primitive(x + h, a) - s.primitive(x - h, a)) / (2 * h)
    fd_a = (s.primitive(x, a + h) - s.primitive(x, a - h)) / (2 * h)
    torch.testing.assert_close(s.derivative(x, a), fd_x, atol=1e-7, rtol=1e-6)
    torch.testing.assert_close(s.d_alpha(x, a), fd_a, atol=1e-7, rtol=1e-6)
    # per-element d_alpha keeps x's shape even for a scalar alpha
    assert s.d_alpha(x, a).shape == x.shape


def test_alpha_defaults_to_module_alpha():
    s = S.ATan(alpha=3.0)
    x = torch.randn(7)
    torch.testing.assert_close(s.derivative(x), s.derivative(x, torch.tensor(3.0)))


def test_learnable_alpha_is_positive_parameter():
    s = S.get("sigmoid", alpha=4.0, learnable=True)
    names = [n for n, _ in s.named_parameters()]
    assert names == ["raw_alpha"]
    assert "raw_alpha" in s.state_dict()
    assert s.alpha.item() == pytest.approx(4.0, rel=1e-6)
    # a huge negative step cannot make alpha non-positive
    with torch.no_grad():
        s.raw_alpha.sub_(1e3)
    assert s.alpha.item() > 0


def test_fixed_alpha_is_buffer_not_parameter():
    s = S.get("atan")
    assert list(s.parameters()) == []
    assert "fixed_alpha" in s.state_dict()
    assert s.alpha.item() == 2.0


def test_per_channel_alpha():
    s = S.get("atan", alpha=torch.tensor([1.0, 2.0, 4.0]).view(3, 1), learnable=True)
    assert s.alpha.shape == (3, 1)
    torch.testing.assert_close(s.alpha.detach().flatten(), torch.tensor([1.0, 2.0, 4.0]))


def test_registry_names_and_aliases():
    assert {"atan", "sigmoid", "fast_sigmoid", "straight_through", "triangle", "rectangle",
            "gaussian", "erf", "exponential", "softsign", "dspike"} <= set(S.names())
    assert isinstance(S.get("fast-sigmoid"), S.FastSigmoid)
    assert isinstance(S.get("SuperSpike"), S.FastSigmoid)
    assert isinstance(S.get("ste"), S.StraightThrough)
    inst = S.ATan()
    assert S.get(inst) is inst


def test_register_custom():
    S.register("cubic-test", Cubic)
    assert isinstance(S.get("cubic_test"), Cubic)
    with pytest.raises(TypeError, match="Surrogate subclass"):
        S.register("bad", nn.ReLU)


@pytest.mark.parametrize(
    "kwargs, exc, msg",
    [
        (dict(alpha=0.0), ValueError, "alpha"),
        (dict(alpha=-1.0), ValueError, "alpha"),
        (dict(alpha=float("nan")), ValueError, "alpha"),
        (dict(alpha=float("inf")), ValueError, "alpha"),
        (dict(alpha=torch.tensor([1.0, -2.0])), ValueError, "alpha"),
        (dict(alpha=torch.tensor([1, 2])), TypeError, "alpha"),
        (dict(alpha="big"), TypeError, "alpha"),
        (dict(grad_scale=-1.0), ValueError, "grad_scale"),
    ],
)
def test_bad_arguments(kwargs, exc, msg):
    with pytest.raises(exc, match=msg):
        S.ATan(**kwargs)


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError) as e:
        S.get("tanh-ish")
    assert "atan" in str(e.value) and "tanh-ish" in str(e.value)
    with pytest.raises(TypeError, match="surrogate"):
        S.get(3)


@pytest.mark.parametrize("mode", ["linear", "exp"])
def test_alpha_schedule(mode):
    model = nn.Sequential(S.ATan(), nn.Linear(2, 2), S.Sigmoid(learnable=True))
    sch = S.AlphaSchedule(model, start=1.0, end=16.0, steps=4, mode=mode)
    assert model[0].alpha.item() == pytest.approx(1.0)
    for _ in range(4):
        sch.step()
    assert model[0].alpha.item() == pytest.approx(16.0)
    sch.step()  # held at the end value
    assert model[0].alpha.item() == pytest.approx(16.0)
    mid = sch.value(2)
    assert mid == pytest.approx(8.5 if mode == "linear" else 4.0)
    assert model[2].alpha.item() == pytest.approx(4.0)  # learnable ones are left alone
    sch2 = S.AlphaSchedule(model, 1.0, 16.0, 4, mode)
    sch2.load_state_dict({"n": 2})
    assert model[0].alpha.item() == pytest.approx(mid)


def test_reach_is_exact_for_compact_fixed_families():
    assert S.Rectangle(alpha=1.0).reach() == 1
    assert S.Rectangle(alpha=0.25).reach() == 3  # half-width 2 steps
    assert S.Triangle(alpha=1.0).reach() == 2
    assert S.ATan().reach() is None  # unbounded: every boundary is summed
    assert S.Rectangle(alpha=1.0, learnable=True).reach() is None  # alpha not known on the host
    assert math.isinf(S.ATan.support)


def test_host_alpha_cache_follows_set_alpha_and_load_state_dict():
    s = S.Rectangle(alpha=1.0)
    assert s.reach() == 1
    s.set_alpha(0.25)
    assert s.reach() == 3
    s.load_state_dict(S.Rectangle(alpha=1.0).state_dict())
    assert s.reach() == 1


def test_pickle_and_torch_save_round_trip():
    # the load_state_dict post-hook must be picklable: torch.save(model), multiprocessing
    import io
    import pickle

    for s in (S.Triangle(alpha=0.5), S.ATan(alpha=torch.tensor([1.0, 3.0]), learnable=True)):
        clone = pickle.loads(pickle.dumps(s))
        torch.testing.assert_close(clone.alpha, s.alpha)
        assert clone.host_alpha == s.host_alpha
        buf = io.BytesIO()
        torch.save(s, buf)
        buf.seek(0)
        loaded = torch.load(buf, weights_only=False)
        torch.testing.assert_close(loaded.alpha, s.alpha)
    # the cache refresh hook still works on the unpickled copy
    clone = pickle.loads(pickle.dumps(S.Triangle(alpha=0.5)))
    clone.load_state_dict(S.Triangle(alpha=4.0).state_dict())
    assert clone.host_alpha == (4.0, 4.0) and clone.reach() == 1


def test_public_helpers_resolve_alpha_for_alpha_grad():
    assert isinstance(S.resolve_surrogate(None), S.ATan)
    assert isinstance(S.resolve_surrogate("triangle"), S.Triangle)
    s = S.ATan(alpha=torch.tensor([1.0, 2.0, 3.0]), grad_scale="auto")
    x = torch.zeros(4, 3)
    assert S.alpha_for(s, x) is s.fixed_alpha
    with pytest.raises(ValueError, match="surrogate alpha"):
        S.alpha_for(s, torch.zeros(4, 5), "h")
    g = S.alpha_grad(s, torch.ones(4, 3, dtype=torch.float64), s.alpha)
    assert g.dtype == s.alpha.dtype and g.shape == (3,)
    torch.testing.assert_close(g, torch.full((3,), 4 / math.sqrt(4)))  # sum over 4 rows, 1/sqrt(12/3)


def test_one_softplus_parametrisation_shared():
    from surrogate_nets._positive import positive_from_raw, raw_from_positive
    from surrogate_nets.neurons import LIF

    v = torch.tensor([1e-3, 0.5, 2.0, 50.0], dtype=torch.float64)
    torch.testing.assert_close(positive_from_raw(raw_from_positive(v, 1e-4), 1e-4), v)
    s = S.ATan(alpha=3.0, learnable=True)
    torch.testing.assert_close(s.raw_alpha.detach(), raw_from_positive(torch.tensor(3.0), 1e-6))
    n = LIF(threshold=0.7, learn_threshold=True)
    torch.testing.assert_close(n.raw_threshold.detach(), raw_from_positive(torch.tensor(0.7), 1e-4))
