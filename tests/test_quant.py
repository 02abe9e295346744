"""Tests of surrogate_nets.quant: LSQ/torch.ao/PACT equivalences, layers, export, QCFS, no host sync."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from surrogate_nets import surrogate as S
from surrogate_nets.functional import level_range, quantize, staircase
from surrogate_nets.quant import (PACT, QuantAct, QuantConv1d, QuantConv2d, QuantLinear, QuantWeight,
                                  code_range, fake_quantize, lsq_grad_scale, qcfs_to_if)


# ----------------------------------------------------------------------------- references
def grad_scale_ref(s, g):
    """LSQ's gradient scaling trick: value s, gradient g * ds."""
    return (s - s * g).detach() + s * g


def lsq_reference(x, step, lo, hi, g=1.0, offset=None):
    """Plain autograd LSQ / LSQ+ (Esser et al. 2020; Bhalgat et al. 2020): clip, then round (STE)."""
    s = grad_scale_ref(step, g)
    b = None if offset is None else grad_scale_ref(offset, g)
    u = x / s if b is None else (x - b) / s
    v = torch.clamp(u, lo, hi)
    r = v + (torch.floor(v + 0.5) - v).detach()
    return r * s if b is None else r * s + b


def pact_reference(x, clip, levels):
    """Plain autograd PACT (Choi et al. 2018): exact clip, straight-through rounding, s = c/levels."""
    y = torch.minimum(torch.relu(x), clip)
    s = clip / levels
    yq = torch.floor(y / s + 0.5) * s
    return y + (yq - y).detach()


def if_rate(x, threshold, steps):
    """IF neuron, reset by subtraction, v0 = threshold/2, constant input: spike count over `steps`."""
    v = torch.full_like(x, 0.5) * threshold
    count = torch.zeros_like(x)
    for _ in range(steps):
        v = v + x
        spk = (v >= threshold).to(x.dtype)
        v = v - spk * threshold
        count = count + spk
    return count


def no_ties(u):
    """Nudge values off rounding ties and integers (the measure-zero points where conventions differ)."""
    frac = u - torch.floor(u)
    return u + 0.01 * ((frac - 0.5).abs() < 1e-3) + 0.01 * (frac < 1e-3)


RANGES = [(4, False), (2, False), (8, False), (4, True), (2, True), (8, True)]


# ------------------------------------------------------------------ LSQ equivalence (exact)
@pytest.mark.parametrize("bits, signed", RANGES)
@pytest.mark.parametrize("gs", [False, True])
@pytest.mark.parametrize("s0", [0.0625, 0.0731])
def test_straight_through_equals_lsq_reference(bits, signed, gs, s0):
    """Bit-exact for a power-of-two step; otherwise the reference's x-gradient (g * s) / s
    carries one rounding that the closed form g * 1[lo <= u < hi] does not (1 ulp)."""
    lo, hi, _ = code_range(bits, None, signed)
    u = no_ties(torch.randn(5000, dtype=torch.float64) * (hi - lo) * 0.7)
    x = (u * s0).requires_grad_()
    gout = torch.randn_like(u)
    act = QuantAct(bits, signed=signed, init_step=s0, grad_scale=gs, dtype=torch.float64)
    y = act(x)
    y.backward(gout)
    g = lsq_grad_scale(5000, hi) if gs else 1.0
    x2 = x.detach().clone().requires_grad_()
    s2 = torch.tensor(s0, dtype=torch.float64, requires_grad=True)
    y2 = lsq_reference(x2, s2, lo, hi, g)
    y2.backward(gout)
    assert act.step.item() == s0  # |raw| + tiny is exactly the raw step
    assert torch.equal(y, y2)
    if s0 == 0.0625:
        assert torch.equal(x.grad, x2.grad)
    else:
        torch.testing.assert_close(x.grad, x2.grad, rtol=2.3e-16, atol=0)
        assert torch.equal(x.grad != 0, x2.grad != 0)
    torch.testing.assert_close(act.raw_step.grad, s2.grad, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("signed", [False, True])
def test_lsq_plus_offset_equals_reference(signed):
    lo, hi, _ = code_range(4, None, signed)
    s0, b0 = 0.0625, -0.0213
    x = torch.randn(3000, dtype=torch.float64) * 0.4
    x = (no_ties((x - b0) / s0) * s0 + b0).requires_grad_()
    gout = torch.randn_like(x)
    act = QuantAct(4, signed=signed, init_step=s0, learn_offset=True, dtype=torch.float64)
    with torch.no_grad():
        act.offset.fill_(b0)
    act(x).backward(gout)
    x2 = x.detach().clone().requires_grad_()
    s2 = torch.tensor(s0, dtype=torch.float64, requires_grad=True)
    b2 = torch.tensor(b0, dtype=torch.float64, requires_grad=True)
    g = lsq_grad_scale(3000, hi)
    y2 = lsq_reference(x2, s2, lo, hi, g, b2)
    y2.backward(gout)
    assert torch.equal(act(x), y2)
    assert torch.equal(x.grad, x2.grad)
    torch.testing.assert_close(act.raw_step.grad, s2.grad, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(act.offset.grad, b2.grad, rtol=1e-12, atol=1e-14)


# ----------------------------------------------- torch.ao learnable fake-quant: where they differ
@pytest.mark.parametrize("bits, signed", [(4, False), (4, True), (8, False), (2, True)])
def test_matches_torch_ao_except_half_step_bands(bits, signed):
    """Agreement with torch._fake_quantize_learnable_per_tensor_affine, and where it breaks.

    torch.ao rounds first and saturates after, so for u = x/s in [hi, hi + 1/2) and [lo - 1/2, lo)
    it passes the gradient and gives the step gradient R - u, where clip-then-round gives 0 and
    hi (lo). The step 1/8 is a power of two, so x/s and torch.ao's x * (1/s) are bitwise equal;
    values are kept off exact ties (torch.ao rounds half to even, we round half up).
    """
    lo, hi, _ = code_range(bits, None, signed)
    s0 = 0.125
    n = 20000
    u = no_ties(torch.rand(n) * (hi - lo + 3) + lo - 1.5)  # covers both bands and beyond
    x = u * s0
    gout = torch.randn(n)
    g = lsq_grad_scale(n, hi)

    def ours(mask_out):
        xx = x.clone().requires_grad_()
        act = QuantAct(bits, signed=signed, init_step=s0, learn_offset=True, grad_scale="numel")
        y = act(xx)
        y.backward(gout * mask_out)
        return y.detach(), xx.grad, act.raw_step.grad, act.offset.grad

    def ao(mask_out):
        xx = x.clone().requires_grad_()
        sc = torch.tensor([s0], requires_grad=True)
        zp = torch.tensor([0.0], requires_grad=True)
        y = torch._fake_quantize_learnable_per_tensor_affine(xx, sc, zp, lo, hi, g)
        y.backward(gout * mask_out)
        return y.detach(), xx.grad, sc.grad[0], zp.grad[0]

    band = ((u >= hi) & (u < hi + 0.5)) | ((u >= lo - 0.5) & (u < lo))
    assert band.sum() > 20
    one = torch.ones(n)
    y1, gx1, _, _ = ours(one)
    y2, gx2, _, _ = ao(one)
    assert torch.equal(y1, y2)  # forward values agree everywhere (no ties)
    # x-gradient: identical outside the bands; inside, torch.ao passes it and we do not
    assert torch.equal(gx1[~band], gx2[~band])
    assert torch.equal(gx1 != gx2, band)
    assert torch.all(gx1[band] == 0) and torch.equal(gx2[band], gout[band])
    # step and zero-point gradients from the elements outside the bands agree
    out = (~band).float()
    _, _, gs1, gb1 = ours(out)
    _, _, gs2, gz2 = ao(out)
    torch.testing.assert_close(gs1, gs2, rtol=1e-4, atol=1e-6)
    # zero point z (integer units, q = (R(u + z) - z) s) and offset b = -z s: dL/dz = -s dL/db
    torch.testing.assert_close(gz2, -s0 * gb1, rtol=1e-4, atol=1e-6)
    # from the band elements: torch.ao gives g * sum(gout (R - u)), clip-then-round g * sum(gout * edge)
    inb = band.float()
    _, _, gs1b, gb1b = ours(inb)
    _, _, gs2b, gz2b = ao(inb)
    r = torch.clamp(torch.floor(u + 0.5), lo, hi)
    edge = torch.where(u >= hi, float(hi), float(lo))
    torch.testing.assert_close(gs2b, g * (gout * inb * (r - u)).sum(), rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(gs1b, g * (gout * inb * edge).sum(), rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(gz2b, torch.zeros(()), rtol=0, atol=0)  # in range for torch.ao
    torch.testing.assert_close(gb1b, g * (gout * inb).sum(), rtol=1e-4, atol=1e-6)


# ------------------------------------------------------------------------------------- PACT
def test_pact_clip_gradient_is_saturated_count():
    c0 = 1.7
    x = torch.randn(4000, dtype=torch.float64) * 1.5
    x = (no_ties(x / (c0 / 15)) * (c0 / 15)).requires_grad_()
    gout = torch.randn_like(x)
    p = PACT(4, init_clip=c0, dtype=torch.float64)
    y = p(x)
    y.backward(gout)
    assert p.clip.item() == c0
    torch.testing.assert_close(p.raw_clip.grad, (gout * (x.detach() >= c0)).sum(), rtol=1e-12, atol=1e-12)
    assert torch.equal(x.grad, gout * ((x.detach() >= 0) & (x.detach() < c0)))
    # the plain autograd PACT
    x2 = x.detach().clone().requires_grad_()
    c2 = torch.tensor(c0, dtype=torch.float64, requires_grad=True)
    y2 = pact_reference(x2, c2, 15)
    y2.backward(gout)
    torch.testing.assert_close(y, y2, rtol=0, atol=1e-15)
    assert torch.equal(x.grad, x2.grad)
    torch.testing.assert_close(p.raw_clip.grad, c2.grad, rtol=1e-12, atol=1e-12)


def test_pact_with_learned_clip_trains_and_inits_from_data():
    p = PACT(3)
    x = torch.relu(torch.randn(256, 8)) * 2
    p(x)
    torch.testing.assert_close(p.clip.detach(), 7 * 2 * x.abs().mean() / math.sqrt(7))
    with pytest.raises(ValueError, match="unsigned"):
        PACT(4, signed=True)


# ------------------------------------------------------- fused Function == core staircase
SURROGATES = [("atan", {}), ("sigmoid", {"alpha": 3.0}), ("triangle", {"alpha": 0.8}),
              ("dspike", {}), ("gaussian", {"learnable": True}), ("atan", {"learnable": True}),
              ("rectangle", {"alpha": 2.0}), ("straight_through", {"learnable": True})]


@pytest.mark.parametrize("name, kw", SURROGATES, ids=[f"{n}-{k}" for n, k in SURROGATES])
@pytest.mark.parametrize("bits, signed", [(3, False), (4, True)])
def test_fused_matches_core_quantize(name, kw, bits, signed):
    """The closed-form backward equals autograd through `step * staircase(x / step)`."""
    lo, hi, _ = code_range(bits, None, signed)
    x = (torch.randn(2000, dtype=torch.float64) * hi * 0.1).requires_grad_()
    gout = torch.randn_like(x)
    sur = S.get(name, **kw).double()
    step = torch.tensor(0.09, dtype=torch.float64, requires_grad=True)
    y = fake_quantize(x, step, lo, hi, sur)
    y.backward(gout)
    ga1 = sur.raw_alpha.grad.clone() if sur.learnable else None
    if sur.learnable:
        sur.raw_alpha.grad = None
    x2 = x.detach().clone().requires_grad_()
    step2 = step.detach().clone().requires_grad_()
    y2 = quantize(x2, step2, hi - lo, sur, signed=signed)
    y2.backward(gout)
    assert torch.equal(y, y2)
    torch.testing.assert_close(x.grad, x2.grad, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(step.grad, step2.grad, rtol=1e-10, atol=1e-12)
    if sur.learnable:
        torch.testing.assert_close(ga1, sur.raw_alpha.grad, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name, kw", [("straight_through", {}), ("atan", {"learnable": True})])
def test_binary_matches_shifted_staircase(name, kw):
    """1-bit signed: q = s (2 R01((u + 1)/2) - 1), u = x/s, i.e. s * sign(x) with sign(0) = +1."""
    x = torch.randn(1000, dtype=torch.float64)
    x[0] = 0.0
    x = x.requires_grad_()
    gout = torch.randn_like(x)
    sur = S.get(name, **kw).double()
    step = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    y = fake_quantize(x, step, -1, 1, sur, binary=True)
    y.backward(gout)
    assert torch.equal(y, torch.where(x >= 0, step, -step))
    ga1 = sur.raw_alpha.grad.clone() if sur.learnable else None
    if sur.learnable:
        sur.raw_alpha.grad = None
    x2 = x.detach().clone().requires_grad_()
    s2 = step.detach().clone().requires_grad_()
    y2 = s2 * (2 * staircase((x2 / s2 + 1) / 2, 1, sur) - 1)
    y2.backward(gout)
    torch.testing.assert_close(y, y2, rtol=0, atol=1e-15)
    torch.testing.assert_close(x.grad, x2.grad, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(step.grad, s2.grad, rtol=1e-10, atol=1e-12)
    if sur.learnable:
        torch.testing.assert_close(ga1, sur.raw_alpha.grad, rtol=1e-10, atol=1e-12)
    if name == "straight_through":  # clipped STE 1[-s <= x < s]
        xd = x.detach()
        assert torch.equal(x.grad, gout * ((xd >= -0.7) & (xd < 0.7)))


def test_set_alpha_invalidates_boxcar_fast_path():
    sur = S.get("straight_through").double()
    x = (torch.randn(500, dtype=torch.float64)).requires_grad_()
    fake_quantize(x, torch.tensor(0.1, dtype=torch.float64), 0, 7, sur).sum().backward()
    sur.set_alpha(2.0)
    x2 = x.detach().clone().requires_grad_()
    fake_quantize(x2, torch.tensor(0.1, dtype=torch.float64), 0, 7, sur).sum().backward()
    x3 = x.detach().clone().requires_grad_()
    quantize(x3, 0.1, 7, sur).sum().backward()
    assert torch.equal(x2.grad, x3.grad)
    assert not torch.equal(x.grad, x2.grad)


def test_learnable_sharpness_and_dsq_get_gradients():
    act = QuantAct(3, surrogate="dspike", learn_alpha=True)
    x = torch.relu(torch.randn(64, 10)).requires_grad_()
    act(x).pow(2).sum().backward()
    assert act.surrogate.raw_alpha.grad is not None and torch.isfinite(act.surrogate.raw_alpha.grad)
    assert act.raw_step.grad is not None
    names = {n for n, _ in act.named_parameters()}
    assert names == {"raw_step", "surrogate.raw_alpha"}


# ------------------------------------------------------------------------------ per channel
def test_per_channel_linear_weight_broadcast():
    lin = QuantLinear(7, 5, bits=4)
    w = lin.weight.detach()
    q = lin.quantized_weight()
    steps = lin.weight_quant.step.detach()
    assert lin.weight_quant.raw_step.shape == (5,)
    gout = torch.randn_like(w)
    q.backward(gout)
    for c in range(5):
        one = QuantWeight(4, per_channel=False, init_step=float(steps[c]), grad_scale=False)
        wc = w[c].clone().requires_grad_()
        qc = one(wc)
        qc.backward(gout[c])
        assert torch.equal(q[c], qc)
        g = lsq_grad_scale(7, 7)  # weights per step, Q_P = 7
        torch.testing.assert_close(lin.weight_quant.raw_step.grad[c], g * one.raw_step.grad)
        torch.testing.assert_close(lin.weight.grad[c], wc.grad)


def test_per_channel_conv2d_weight_and_activation_broadcast():
    conv = QuantConv2d(3, 4, 3, bits=3)
    w = conv.weight.detach()
    q = conv.quantized_weight()
    s = conv.weight_quant.step.detach()
    ref = torch.clamp(torch.floor(w / s.view(4, 1, 1, 1) + 0.5), -4, 3) * s.view(4, 1, 1, 1)
    assert torch.equal(q, ref)
    ex = conv.export_int()
    assert ex.weight_step.shape == (4, 1, 1, 1) and ex.weight.dtype == torch.int8
    # activation per channel along dim 1 of [B, C, H, W] and along the last dim of [B, F]
    act = QuantAct(4, per_channel=1, channels=3)
    x = torch.rand(2, 3, 5, 5)
    act(x)
    sa = act.step.detach()
    torch.testing.assert_close(sa, 2 * x.abs().mean(dim=(0, 2, 3)) / math.sqrt(15))
    assert torch.equal(act(x), torch.clamp(torch.floor(x / sa.view(3, 1, 1) + 0.5), 0, 15) * sa.view(3, 1, 1))
    act2 = QuantAct(4, per_channel=-1, channels=6, init_step=0.1)
    assert act2(torch.rand(4, 6)).shape == (4, 6)


# ----------------------------------------------------------- training, export, conversion
def _train(model, x, y, steps=60, lr=0.02):
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def test_quantized_mlp_trains_and_exports():
    torch.manual_seed(1)
    x = torch.randn(256, 10)
    y = (x[:, :3].sum(1) > 0).long() + (x[:, 3] > 1).long()
    model = nn.Sequential(QuantLinear(10, 32, bits=4), nn.ReLU(), QuantAct(4),
                          QuantLinear(32, 3, bits=4))
    losses = _train(model, x, y)
    assert losses[-1] < 0.6 * losses[0]
    for lin in (model[0], model[3]):
        ex = lin.export_int()
        assert ex.weight.dtype == torch.int8
        assert int(ex.weight.min()) >= -8 and int(ex.weight.max()) <= 7
        assert torch.equal(ex.dequantize(), lin.quantized_weight())
        assert torch.equal(ex.weight_zero_point, torch.zeros_like(ex.weight_zero_point))
    # the float forward from the exported integers is the model's forward, exactly
    with torch.no_grad():
        h = model[2](torch.relu(F.linear(x, model[0].export_int().dequantize(), model[0].bias)))
        out = F.linear(h, model[3].export_int().dequantize(), model[3].bias)
        assert torch.equal(out, model(x))
        codes = model[2].to_int(torch.relu(model[0](x)))
        assert torch.equal(codes.float() * model[2].step, h)


def test_quantized_convnet_trains_and_exports():
    torch.manual_seed(2)
    x = torch.randn(64, 1, 8, 8)
    y = (x[:, 0, :4].mean((1, 2)) > x[:, 0, 4:].mean((1, 2))).long()
    model = nn.Sequential(QuantConv2d(1, 8, 3, padding=1, bits=4), nn.ReLU(), QuantAct(4),
                          nn.AvgPool2d(2), nn.Flatten(), QuantLinear(8 * 16, 2, bits=4))
    losses = _train(model, x, y, steps=40)
    assert losses[-1] < 0.7 * losses[0]
    ex = model[0].export_int()
    assert torch.equal(ex.dequantize(), model[0].quantized_weight())
    with torch.no_grad():
        ref = F.conv2d(x, ex.dequantize(), ex.bias, padding=1)
        assert torch.equal(ref, model[0](x))


def test_from_float_and_to_float():
    torch.manual_seed(3)
    f = nn.Linear(20, 6)
    q = QuantLinear.from_float(f, bits=8, init="max")
    assert torch.equal(q.weight, f.weight) and torch.equal(q.bias, f.bias)
    assert bool(q.weight_quant.initialized)
    torch.testing.assert_close(q.weight_quant.step.detach(), f.weight.detach().abs().amax(1) / 127)
    x = torch.randn(4, 20)
    torch.testing.assert_close(q(x), f(x), atol=0.02, rtol=0)
    back = q.to_float()
    assert type(back) is nn.Linear and torch.equal(back(x), q(x))
    c = nn.Conv2d(3, 5, 3, stride=2, padding=1, groups=1, bias=False)
    qc = QuantConv2d.from_float(c, bits=4, input_quant=QuantAct(8, signed=True))
    assert qc.stride == (2, 2) and qc.padding == (1, 1) and qc.bias is None
    assert qc(torch.randn(2, 3, 9, 9)).shape == c(torch.randn(2, 3, 9, 9)).shape
    ex = qc.export_int()
    assert ex.input is not None and ex.input["lo"] == -128 and ex.input["hi"] == 127
    c1 = QuantConv1d.from_float(nn.Conv1d(2, 3, 5), bits=2)
    assert c1(torch.randn(1, 2, 16)).shape == (1, 3, 12)
    with pytest.raises(TypeError, match="nn.Linear"):
        QuantLinear.from_float(c)


def test_binary_weights_and_export():
    lin = QuantLinear(16, 4, bits=1)
    w = lin.weight.detach()
    q = lin.quantized_weight()
    s = lin.weight_quant.step.detach()
    torch.testing.assert_close(s, w.abs().mean(1))  # XNOR-Net scale
    assert torch.equal(q, torch.where(w >= 0, 1.0, -1.0) * s[:, None])
    ex = lin.export_int()
    assert ex.binary and set(ex.weight.unique().tolist()) <= {-1, 1}
    assert torch.equal(ex.dequantize(), q)


@pytest.mark.parametrize("bits, signed, dtype", [(8, True, torch.int8), (8, False, torch.int16),
                                                 (16, True, torch.int16), (16, False, torch.int32),
                                                 (1, False, torch.int8), (5, True, torch.int8)])
def test_bit_widths_and_int_dtypes(bits, signed, dtype):
    act = QuantAct(bits, signed=signed, init_step=0.01)
    lo, hi = act.lo, act.hi
    if bits == 1 and not signed:
        assert (lo, hi) == (0, 1)
    else:
        assert (lo, hi) == level_range(2**bits - 1, signed)
    x = torch.randn(1000) * 2**bits * 0.01
    codes = act.to_int(x)
    assert codes.dtype == dtype and int(codes.min()) >= lo and int(codes.max()) <= hi
    assert torch.equal(codes.float() * act.step, act(x))


def test_narrow_range():
    w = QuantWeight(4, per_channel=False, narrow=True, init_step=0.1)
    assert (w.lo, w.hi) == (-7, 7)
    assert w(torch.tensor([-5.0])).item() == pytest.approx(-0.7)


# -------------------------------------------------------------------------------- init
def test_lsq_init_from_first_batch_only_and_state_dict():
    act = QuantAct(4)
    assert not bool(act.initialized)
    x = torch.rand(32, 20) * 3
    act(x)
    s1 = act.step.detach().clone()
    torch.testing.assert_close(s1, 2 * x.abs().mean() / math.sqrt(15))
    act(x * 10)
    assert torch.equal(act.step.detach(), s1)
    new = QuantAct(4)
    new.load_state_dict(act.state_dict())
    assert bool(new.initialized)
    new(x * 100)  # loaded as initialised: no re-init
    assert torch.equal(new.step.detach(), s1)
    given = QuantAct(4, init_step=0.3)
    given(x)
    assert given.step.item() == pytest.approx(0.3)


def test_init_in_inference_mode_and_eval():
    act = QuantAct(4).eval()
    with torch.inference_mode():
        y = act(torch.rand(8, 4))
    assert bool(act.initialized) and y.shape == (8, 4)


def test_lsq_plus_offset_init_and_step_parametrisations():
    act = QuantAct(4, learn_offset=True)
    x = torch.randn(100, 8)
    act(x)
    torch.testing.assert_close(act.offset.detach(), x.min())
    torch.testing.assert_close(act.step.detach(), 2 * (x - x.min()).abs().mean() / math.sqrt(15))
    a = QuantAct(4, init_step=0.1)
    with torch.no_grad():
        a.raw_step.fill_(-0.1)  # an update overshooting zero reflects, never a negative step
    assert a.step.item() == pytest.approx(0.1)
    e = QuantAct(4, init_step=0.1, step_param="exp")
    assert e.step.item() == pytest.approx(0.1)
    xx = torch.rand(50, requires_grad=True)
    e(xx).sum().backward()
    ref = QuantAct(4, init_step=0.1)
    ref(xx).sum().backward()
    torch.testing.assert_close(e.raw_step.grad, ref.raw_step.grad * e.step.detach())
    # the shared softplus parametrisation: ds/draw = sigmoid(raw)
    sp = QuantAct(4, init_step=0.1, step_param="softplus")
    assert sp.step.item() == pytest.approx(0.1)
    sp(xx).sum().backward()
    torch.testing.assert_close(sp.raw_step.grad, ref.raw_step.grad * torch.sigmoid(sp.raw_step.detach()))


def test_grad_scale_conventions():
    x = torch.rand(16, 30)
    grads = {}
    for gs in (False, True, "numel", 0.5):
        a = QuantAct(4, init_step=0.07, grad_scale=gs)
        a(x).sum().backward()
        grads[gs] = a.raw_step.grad
    torch.testing.assert_close(grads[True], grads[False] / math.sqrt(30 * 15))  # features per sample
    torch.testing.assert_close(grads["numel"], grads[False] / math.sqrt(16 * 30 * 15))  # torch.ao
    torch.testing.assert_close(grads[0.5], grads[False] * 0.5)


# ------------------------------------------------------------------------------- QCFS
@pytest.mark.parametrize("levels", [1, 2, 4, 8, 16])
def test_qcfs_equals_if_rate_over_L_steps(levels):
    act = QuantAct(levels=levels, init_step=0.1875, dtype=torch.float64)
    p = qcfs_to_if(act)
    assert p.time_steps == levels and p.reset == "subtract"
    torch.testing.assert_close(p.v_init, p.threshold / 2)
    # random inputs, including below 0 and above the threshold
    x = torch.randn(20000, dtype=torch.float64) * float(p.threshold) * 0.8 + float(p.threshold) * 0.4
    rate = if_rate(x, p.threshold, p.time_steps) * p.output_scale
    assert torch.equal(rate, act(x))
    # a dyadic grid hits every tie exactly: H(0) = 1 matches floor(u + 1/2)
    xd = torch.arange(-64, 64 * levels + 64, dtype=torch.float64) * (0.1875 / 64)
    assert torch.equal(if_rate(xd, p.threshold, p.time_steps) * p.output_scale, act(xd))
    with pytest.raises(ValueError, match="unsigned"):
        qcfs_to_if(QuantAct(4, signed=True, init_step=0.1))
    with pytest.raises(ValueError, match="offset"):
        qcfs_to_if(QuantAct(4, learn_offset=True, init_step=0.1))


def test_qcfs_equals_one_multilevel_spike_step():
    fire = pytest.importorskip("surrogate_nets.functional").__dict__.get("fire")
    if fire is None:
        pytest.skip("multi-level fire() not available")
    theta, levels = 0.375, 4
    act = QuantAct(levels=levels, init_step=theta, dtype=torch.float64)
    x = torch.arange(-64, 64 * 6, dtype=torch.float64) * (theta / 64)  # includes every tie
    n = fire(x + theta / 2, theta, "straight_through", levels=levels)
    assert torch.equal(theta * n, act(x))


# --------------------------------------------------------------------------- dtypes
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_dtypes(dtype):
    torch.manual_seed(0)
    model = nn.Sequential(QuantLinear(8, 6, bits=4, input_quant=QuantAct(8, signed=True)), nn.ReLU(),
                          QuantAct(4, surrogate="atan", learn_alpha=True))
    x = torch.randn(16, 8)
    ref = model(x).detach()
    model = model.to(dtype)
    xd = x.to(dtype).requires_grad_()
    y = model(xd)
    assert y.dtype == dtype
    y.float().pow(2).sum().backward()
    assert xd.grad.dtype == dtype and torch.isfinite(xd.grad).all()
    for n, p in model.named_parameters():
        assert p.grad is not None and p.grad.dtype == dtype and torch.isfinite(p.grad).all(), n
    tol = {torch.float16: 0.05, torch.bfloat16: 0.3}.get(dtype, 1e-5)
    assert (y.detach().float() - ref).abs().max() <= tol + 0.5 * float(model[2].step.detach())
    # float32 step with a half-precision input: math in the input dtype, step grad in float32
    a = QuantAct(4, init_step=0.1)
    xa = torch.rand(100, dtype=dtype, requires_grad=True)
    a(xa).sum().backward()
    assert a.raw_step.grad.dtype == torch.float32 and xa.grad.dtype == dtype


# ----------------------------------------------------------------------- no host sync
def test_no_host_sync_in_forward_backward(monkeypatch):
    model = nn.Sequential(QuantConv2d(2, 4, 3, bits=4, input_quant=QuantAct(8, signed=True)),
                          nn.ReLU(), QuantAct(4, per_channel=1, channels=4, learn_offset=True),
                          nn.Flatten(), QuantLinear(4 * 4 * 4, 3, bits=1),
                          QuantAct(3, signed=True, surrogate="atan", learn_alpha=True),
                          QuantAct(4, signed=True, surrogate="triangle", alpha=0.5), PACT(2))
    x = torch.randn(5, 2, 6, 6)

    def boom(*a, **k):
        raise AssertionError("host read (item/float/bool/int/tolist) inside forward/backward")

    for name in ("item", "tolist", "__float__", "__int__", "__bool__", "__index__"):
        monkeypatch.setattr(torch.Tensor, name, boom)
    with pytest.raises(AssertionError, match="host read"):  # the trap works
        float(torch.ones(()).min())
    for _ in range(2):  # the first call includes the LSQ data initialisation
        model(x).pow(2).sum().backward()
    monkeypatch.undo()
    assert all(bool(m.initialized) for m in model.modules() if hasattr(m, "initialized"))


def test_fullgraph_compile_forward_backward():
    torch.manual_seed(0)
    model = nn.Sequential(QuantLinear(12, 8, bits=4, input_quant=QuantAct(8, signed=True)), nn.ReLU(),
                          QuantAct(4, surrogate="atan", learn_alpha=True), QuantLinear(8, 2, bits=2))
    x = torch.randn(16, 12)
    model(x)  # eager LSQ init (a one-off state change)
    model.zero_grad()
    y = model(x)
    y.pow(2).sum().backward()
    ref = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    yc = compiled(x)
    yc.pow(2).sum().backward()
    torch.testing.assert_close(yc, y)
    for n, p in model.named_parameters():
        torch.testing.assert_close(p.grad, ref[n], msg=n)


# -------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("kwargs, exc, match", [
    ({"bits": 0}, ValueError, "bits must be >= 1"),
    ({"bits": 17}, ValueError, "bits must be <= 16"),
    ({"bits": 4.0}, TypeError, "bits must be an int"),
    ({"bits": 4, "levels": 3}, ValueError, "exactly one of bits and levels"),
    ({}, ValueError, "exactly one of bits and levels"),
    ({"bits": 4, "per_channel": 1}, ValueError, "needs channels"),
    ({"bits": 4, "channels": 3}, ValueError, "without per_channel"),
    ({"bits": 4, "narrow": True}, ValueError, "signed quantizers only"),
    ({"bits": 1, "signed": True, "narrow": True}, ValueError, "bits >= 2"),
    ({"bits": 4, "grad_scale": "batch"}, ValueError, "grad_scale must be one of"),
    ({"bits": 4, "grad_scale": -1.0}, ValueError, "grad_scale must be finite and > 0"),
    ({"bits": 4, "init_step": 0.0}, ValueError, "init_step must be finite and > 0"),
    ({"bits": 4, "step_param": "sigmoid"}, ValueError, "step_param must be one of"),
    ({"bits": 4, "surrogate": "nope"}, ValueError, "unknown surrogate"),
    ({"bits": 4, "surrogate": S.ATan(), "alpha": 2.0}, ValueError, "Surrogate instance"),
    ({"bits": 4, "signed": 1}, TypeError, "signed must be a bool"),
    ({"levels": 1, "signed": True}, ValueError, "no positive level"),
])
def test_bad_constructor_arguments(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        QuantAct(**kwargs)


def test_bad_forward_inputs():
    act = QuantAct(4, per_channel=1, channels=3, init_step=0.1)
    with pytest.raises(ValueError, match="has size 5 but the quantizer was built with channels=3"):
        act(torch.rand(2, 5))
    with pytest.raises(ValueError, match="per_channel=1 is not a dim"):
        act(torch.rand(3))
    with pytest.raises(TypeError, match="floating dtype"):
        act(torch.ones(2, 3, dtype=torch.int32))
    with pytest.raises(TypeError, match="must be a torch.Tensor"):
        act([1.0, 2.0])
    lin = QuantLinear(4, 2)
    with pytest.raises(TypeError, match="input must have a floating dtype"):
        lin(torch.ones(1, 4, dtype=torch.long))
    with pytest.raises(TypeError, match="per_channel must be a bool"):
        QuantWeight(4, per_channel=0)
    with pytest.raises(ValueError, match="init must be one of"):
        QuantLinear(4, 2, init="mse")
    with pytest.raises(TypeError, match="weight_quant must be a Quantizer"):
        QuantLinear(4, 2, weight_quant=nn.ReLU())
    with pytest.raises(ValueError, match="per output channel"):
        QuantLinear(4, 2, weight_quant=QuantWeight(4, channels=3))
    with pytest.raises(TypeError, match="input_quant must be an nn.Module"):
        QuantLinear(4, 2, input_quant=4)


def test_fake_quantize_checks_arguments():
    x = torch.randn(4, 3)
    with pytest.raises(ValueError, match="step of shape"):
        fake_quantize(x, torch.ones(4), 0, 15)
    with pytest.raises(TypeError, match="x must have a floating dtype"):
        fake_quantize(x.long(), torch.tensor(0.1), 0, 15)
    with pytest.raises(ValueError, match="need lo < hi"):
        fake_quantize(x, torch.tensor(0.1), 3, 3)
    q = fake_quantize(x, torch.tensor(0.1), -8, 7, "atan")
    assert torch.equal(q, quantize(x, 0.1, 15, "atan", signed=True))
