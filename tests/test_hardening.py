"""Regressions of issue 10 (items 4, 5, 6, 9, 10): each reproduction that once failed, now passing.

The bad-input rows of these items (learnable alpha 1e-7, learnable beta=nan, RateRegularizer with
lower > upper, a [B, N] batch given to a neuron with known size...) are in ``test_bad_inputs.py``.
"""

import math

import pytest
import torch
from torch import nn

from surrogate_nets import functional as F, layers, neurons, quant, surrogate as S
from surrogate_nets.functional import lif_scan

F16, BF16, F32, F64 = torch.float16, torch.bfloat16, torch.float32, torch.float64


# ------------------------------------------------------------------ item 4: fp16 quantization
@pytest.mark.parametrize("name", ["straight_through", "atan"])
def test_fp16_quantize_small_learnable_step_has_a_finite_step_gradient(name):
    """x/step^2 overflowed float16 for step 0.01 (NaN step gradient); now computed in float32."""
    torch.manual_seed(0)
    x32 = torch.randn(1000) * 10
    grads = {}
    for dt in (F16, F32):
        s = torch.tensor(0.01, dtype=dt, requires_grad=True)
        x = x32.to(dt).requires_grad_()
        q = F.quantize(x, s, 15, name)
        assert q.dtype == dt and x.grad is None
        q.float().sum().backward()
        assert torch.isfinite(s.grad) and torch.isfinite(x.grad).all() and s.grad.dtype == dt
        grads[dt] = float(s.grad)
    # float16 rounds x itself; the gradient agrees with float32's to the half's precision
    assert grads[F16] == pytest.approx(grads[F32], rel=2e-2)


def test_fp16_quantize_many_levels_and_half_staircase_limit():
    x = torch.rand(50, dtype=F16) * 4
    q = F.quantize(x, 0.001, 2**20)
    assert q.dtype == F16 and torch.isfinite(q).all()
    assert (q.float() - x.float()).abs().max() <= 0.0005 + 4e-3  # half a step + float16 rounding
    with pytest.raises(ValueError, match="levels"):
        F.staircase(x, 2**20)  # a half tensor cannot hold the codes: clear error, not a torch crash


@pytest.mark.parametrize("dtype", [F16, BF16])
@pytest.mark.parametrize("signed", [False, True])
def test_quantact_16_bits_in_half_precision(dtype, signed):
    """The README promises 1..16 bits in float16: 16-bit unsigned codes exceed float16's range,
    so the quantizer computes in float32 and rounds the result once."""
    act = quant.QuantAct(16, signed=signed, init_step=1e-4).to(dtype)
    x = (torch.rand(500) * 6 - (3 if signed else 0)).to(dtype).requires_grad_()
    y = act(x)
    assert y.dtype == dtype and torch.isfinite(y).all()
    step = float(act.step.detach())  # 1e-4 rounded to the half type
    ref = quant.QuantAct(16, signed=signed, init_step=step, dtype=F64)(x.detach().double())
    # the float32 product s * k rounded once to the half type: within one half-precision ulp
    ulp = {F16: 2.0**-10, BF16: 2.0**-7}[dtype]
    torch.testing.assert_close(y.double(), ref, rtol=ulp, atol=0)
    y.float().sum().backward()
    assert torch.isfinite(x.grad).all() and torch.isfinite(act.raw_step.grad)
    codes = act.to_int(x.detach())
    assert int(codes.max()) <= act.hi and int(codes.min()) >= act.lo


def test_quant_layers_below_twelve_bits_keep_computing_in_the_input_dtype():
    assert quant.fake_quant.compute_dtype(torch.ones(1, dtype=F16), 0, 2047) == F16
    assert quant.fake_quant.compute_dtype(torch.ones(1, dtype=F16), 0, 4095) == F32
    assert quant.fake_quant.compute_dtype(torch.ones(1, dtype=BF16), -128, 127) == BF16
    assert quant.fake_quant.compute_dtype(torch.ones(1, dtype=BF16), 0, 511) == F32


# ------------------------------------------------------------------ item 5: learnable alpha floor
@pytest.mark.parametrize("alpha", [2e-6, 1e-5, 1e-3])
def test_tiny_learnable_alpha_is_held_with_a_live_gradient(alpha):
    s = S.get("atan", alpha=alpha, learnable=True)
    assert torch.isfinite(s.raw_alpha).all()
    assert float(s.alpha.detach()) == pytest.approx(alpha, rel=1e-3)
    s.alpha.backward()
    assert float(s.raw_alpha.grad) > 0


@pytest.mark.parametrize("alpha", [1e-7, 1e-6])
def test_alpha_the_parametrisation_cannot_hold_is_rejected(alpha):
    """alpha = softplus(raw) + 1e-6: 1e-7 gave a NaN raw, 1e-6 a raw of -inf (dead gradient)."""
    with pytest.raises(ValueError, match="learnable alpha must be finite and > 1e-06"):
        S.get("atan", alpha=alpha, learnable=True)
    s = S.get("atan", alpha=1.0, learnable=True)
    with pytest.raises(ValueError, match="learnable alpha"):
        s.set_alpha(alpha)
    assert float(s.alpha.detach()) == pytest.approx(1.0)  # unchanged


# ------------------------------------------------------------------ item 6: constrained assignment
def test_learnable_parameters_refuse_non_finite_assignment_and_keep_their_value():
    m = neurons.LIF(beta=0.7, learn_beta=True, learn_threshold=True)
    for name, value in (("beta", math.nan), ("threshold", math.inf), ("threshold", math.nan)):
        before = getattr(m, name).detach().clone()
        with pytest.raises(ValueError, match=name):
            setattr(m, name, value)
        torch.testing.assert_close(getattr(m, name).detach(), before)
        assert torch.isfinite(getattr(m, "raw_" + name)).all()


# ------------------------------------------------------------------ item 9: smaller numerics
@pytest.mark.parametrize("cls", [S.FastSigmoid, S.SoftSign])
def test_fast_sigmoid_primitive_finite_when_alpha_x_overflows(cls):
    x = torch.tensor([-65504.0, -70.0, -1.0, 0.0, 1.0, 70.0, 65504.0], dtype=F16)
    p = cls(alpha=1000.0).primitive(x, torch.tensor(1000.0, dtype=F16))
    assert torch.isfinite(p).all()
    assert p.tolist()[0] == 0.0 and p.tolist()[-1] == 1.0 and p.tolist()[3] == 0.5
    # relaxed spikes / quantize / scans go through it
    assert torch.isfinite(F.spike(x, cls(alpha=1000.0), relaxed=True)).all()
    assert torch.isfinite(F.staircase(x, 3, cls(alpha=1000.0), relaxed=True)).all()
    # the rewritten form is the same function: autograd of it matches the closed-form derivative
    xx = torch.linspace(-3, 3, 601, dtype=F64, requires_grad=True)
    s = cls(alpha=3.0)
    (g,) = torch.autograd.grad(s.primitive(xx, torch.tensor(3.0, dtype=F64)).sum(), xx)
    torch.testing.assert_close(g, s.derivative(xx.detach(), torch.tensor(3.0, dtype=F64)))


def _dspike_d_alpha_exact(x, a):
    """d/da [tanh(a c) / (2 tanh(a/2))] at 50 significant digits (mpmath, a dependency of torch)."""
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 50
    c = mpmath.mpf(max(-0.5, min(0.5, x)))
    return float(mpmath.diff(lambda aa: mpmath.tanh(aa * c) / (2 * mpmath.tanh(aa / 2)), mpmath.mpf(a)))


@pytest.mark.parametrize("dtype, alpha, rel", [(BF16, 0.1, 0.02), (F32, 1e-3, 1e-4), (F32, 0.5, 1e-4),
                                               (F64, 1e-3, 1e-9), (F64, 1.9, 1e-9), (F64, 2.5, 1e-9),
                                               (F32, 30.0, 1e-3), (F16, 0.01, 0.02)])
def test_dspike_d_alpha_has_no_cancellation(dtype, alpha, rel):
    """The closed form was 5.7x off in bfloat16 at alpha 0.1 and 1.9x in float32 at 1e-3."""
    s = S.DSpike()
    xs = [-0.45, -0.3, -0.1, 0.05, 0.2, 0.4]
    a = torch.tensor(alpha, dtype=dtype)
    got = s.d_alpha(torch.tensor(xs, dtype=dtype), a)
    assert got.dtype == dtype
    for xi, g in zip(torch.tensor(xs, dtype=dtype).double().tolist(), got.double().tolist()):
        exact = _dspike_d_alpha_exact(xi, float(a.double()))
        assert g == pytest.approx(exact, rel=rel, abs=1e-30), (xi, g, exact)


def test_user_surrogate_writing_only_primitive_supports_every_call_form():
    class Soft(S.Surrogate):
        default_alpha = 2.0

        def primitive(self, x, alpha):
            return torch.sigmoid(alpha * x)

    s = Soft()
    x = torch.linspace(-2, 2, 9, dtype=F64)
    a = torch.tensor(2.0, dtype=F64)
    sig = torch.sigmoid(a * x)
    torch.testing.assert_close(s.derivative(x), a * sig * (1 - sig))
    torch.testing.assert_close(s.d_alpha(x), x * sig * (1 - sig))
    torch.testing.assert_close(s.derivative(x, 3.0), 3.0 * torch.sigmoid(3 * x) * (1 - torch.sigmoid(3 * x)))
    torch.testing.assert_close(s.primitive(x), sig)


def _alpha_grad(run, x):
    sur = S.ATan(alpha=2.0, learnable=True, grad_scale="auto").double()
    out = run(x, sur)
    (out * torch.linspace(-1, 1, out.numel(), dtype=F64).reshape(out.shape)).sum().backward()
    return sur.raw_alpha.grad


def test_grad_scale_auto_means_the_whole_sequence_on_every_path():
    """grad_scale='auto': 1/sqrt(elements one alpha sums over in one forward call). A neuron on
    [T, B, N] scales like one spike() call on the whole sequence, whether it runs the fused
    scan, the autograd backend or a step loop (reset='none' makes the membrane spike-free)."""
    torch.manual_seed(0)
    T, B, N = 6, 3, 4
    x = torch.randn(T, B, N, dtype=F64) * 2
    beta, th = 0.7, 0.5
    h = torch.zeros_like(x)
    v = torch.zeros(B, N, dtype=F64)
    for t in range(T):
        v = beta * v + x[t]
        h[t] = v
    expected = _alpha_grad(lambda _, sur: F.spike(h - th, sur), x)
    paths = {
        "LIF fused": lambda x, sur: neurons.LIF(beta=beta, threshold=th, surrogate=sur, reset="none").double()(x),
        "lif_scan autograd": lambda x, sur: lif_scan(x, None, beta, th, None, sur, reset="none",
                                                     backend="autograd").spikes,
        "ALIF fused scan": lambda x, sur: neurons.ALIF(beta=beta, rho=0.5, adaptation=0.0, threshold=th,
                                                      surrogate=sur, reset="none").double()(x),
    }
    for name, run in paths.items():
        torch.testing.assert_close(_alpha_grad(run, x), expected, msg=name)
    # the scale itself: 1/sqrt(T*B*N) on the unscaled gradient
    sur = S.ATan(alpha=2.0, learnable=True).double()
    F.spike(h - th, sur).mul(torch.linspace(-1, 1, x.numel(), dtype=F64).reshape(x.shape)).sum().backward()
    torch.testing.assert_close(expected, sur.raw_alpha.grad / math.sqrt(T * B * N))


def _neuron_alpha_grads(make, x, per_channel, step=False):
    """raw_alpha gradient with grad_scale='auto' and with no scaling (same seed, same weights)."""
    out = {}
    for scale in ("auto", None):
        alpha = torch.full((x.shape[-1],), 2.0) if per_channel else 2.0
        sur = S.ATan(alpha=alpha, learnable=True, grad_scale=scale).double()
        torch.manual_seed(1)
        neuron = make(sur).double()
        y = neuron.step(x[0])[0] if step else neuron(x)
        (y * torch.linspace(-1, 1, y.numel(), dtype=F64).reshape(y.shape)).sum().backward()
        out[scale] = sur.raw_alpha.grad
    return out["auto"], out[None]


NEURON_PATHS = {
    "LIF-torch": lambda sur: neurons.LIF(beta=0.7, threshold=0.5, surrogate=sur, backend="torch"),
    "LIF-autograd": lambda sur: neurons.LIF(beta=0.7, threshold=0.5, surrogate=sur, backend="autograd"),
    "LIF-levels3": lambda sur: neurons.LIF(beta=0.7, threshold=0.5, surrogate=sur, levels=3, reset="zero"),
    "ALIF-fused": lambda sur: neurons.ALIF(beta=0.7, rho=0.5, threshold=0.5, surrogate=sur),
    "ALIF-torch": lambda sur: neurons.ALIF(beta=0.7, rho=0.5, threshold=0.5, surrogate=sur, backend="torch"),
    "ALIF-autograd": lambda sur: neurons.ALIF(beta=0.7, rho=0.5, threshold=0.5, surrogate=sur,
                                              backend="autograd"),
    "Synaptic-fused": lambda sur: neurons.Synaptic(alpha_syn=0.6, beta=0.7, threshold=0.5, surrogate=sur),
    "Synaptic-torch": lambda sur: neurons.Synaptic(alpha_syn=0.6, beta=0.7, threshold=0.5, surrogate=sur,
                                                   backend="torch"),
    "Synaptic-autograd": lambda sur: neurons.Synaptic(alpha_syn=0.6, beta=0.7, threshold=0.5, surrogate=sur,
                                                      backend="autograd"),
    "RLIF-loop": lambda sur: neurons.RLIF(beta=0.7, threshold=0.5, surrogate=sur, num_neurons=4,
                                          recurrent_init=0.1),
    "IF": lambda sur: neurons.IF(threshold=0.5, surrogate=sur),
}


@pytest.mark.parametrize("per_channel", [False, True], ids=["scalar-alpha", "per-neuron-alpha"])
@pytest.mark.parametrize("name", list(NEURON_PATHS))
def test_grad_scale_auto_counts_the_whole_sequence_in_every_neuron_and_backend(name, per_channel):
    """The fused ALIF/Synaptic scans (h1) and every backend count T*B*N/numel(alpha), like LIF."""
    T, B, N = 6, 3, 4
    x = torch.randn(T, B, N, dtype=F64, generator=torch.Generator().manual_seed(0)) * 2
    auto, plain = _neuron_alpha_grads(NEURON_PATHS[name], x, per_channel)
    assert torch.count_nonzero(plain) > 0
    n = T * B * (1 if per_channel else N)
    torch.testing.assert_close(auto, plain / math.sqrt(n))
    # a user loop over neuron.step counts one step [B, N] (documented)
    auto, plain = _neuron_alpha_grads(NEURON_PATHS[name], x, per_channel, step=True)
    torch.testing.assert_close(auto, plain / math.sqrt(B * (1 if per_channel else N)))



def test_grad_scale_auto_context_stays_off_the_compiled_default_path():
    """The grad_scale='auto' step-loop count is a ContextVar, which dynamo cannot trace: it must
    not be touched unless a surrogate asks for 'auto', so the default step loop (RLIF) and spike
    still compile with fullgraph=True; with 'auto' the compiled loop (graph break) equals eager."""
    x = torch.randn(5, 2, 3, generator=torch.Generator().manual_seed(0))
    for scale, fullgraph in ((None, True), ("auto", False)):
        grads = []
        for compiled in (False, True):
            sur = S.ATan(learnable=True, grad_scale=scale)
            torch.manual_seed(1)
            net = neurons.RLIF(beta=0.7, threshold=0.5, surrogate=sur, num_neurons=3, recurrent_init=0.1)
            run = torch.compile(net, backend="aot_eager", fullgraph=fullgraph) if compiled else net
            run(x).sum().backward()
            grads.append(sur.raw_alpha.grad)
        torch.testing.assert_close(grads[1], grads[0])
    sur = S.ATan(learnable=True)
    spike = torch.compile(lambda t: F.spike(t, sur), backend="aot_eager", fullgraph=True)
    spike(x.requires_grad_()).sum().backward()
    assert sur.raw_alpha.grad is not None

# ------------------------------------------------------------------ item 10: input layout
def test_layout_checks_leave_valid_time_major_inputs_alone():
    net = layers.Sequential(nn.Conv2d(2, 4, 3, padding=1), neurons.LIF(shape=(4, 1, 1)), nn.AvgPool2d(2),
                            layers.Flatten(), nn.Linear(4 * 2 * 2, 3), nn.BatchNorm1d(3), neurons.LIF(num_neurons=3))
    assert net(torch.rand(5, 2, 2, 4, 4)).shape == (5, 2, 3)
    assert neurons.LIF(num_neurons=3).step(torch.rand(2, 3))[0].shape == (2, 3)
    assert neurons.LIF(shape=(1, 3))(torch.rand(4, 2, 3)).shape == (4, 2, 3)  # leading 1 broadcasts
    assert neurons.LIF()(torch.rand(4, 2)).shape == (4, 2)  # no known size: nothing to check
    lazy = layers.Sequential(nn.LazyLinear(3), neurons.LIF())  # learns its size on the first call
    assert lazy(torch.rand(4, 2, 5)).shape == (4, 2, 3)
    with pytest.raises(ValueError, match="in_features=5"):
        lazy(torch.rand(4, 2, 6))


def test_a_batch_without_time_axis_names_the_convention():
    net = layers.Sequential(nn.Linear(6, 3), neurons.LIF(num_neurons=3))
    with pytest.raises(ValueError, match=r"time-major \[T, B, \.\.\.\]"):
        net(torch.rand(8, 6))
    with pytest.raises(ValueError, match="time-major"):
        neurons.LIF(num_neurons=6)(torch.rand(8, 6))
    # a sample-major [B, T, N] batch has the same rank and feature size: not detectable (documented)
    assert net(torch.rand(8, 5, 6)).shape == (8, 5, 3)
