"""Tests for surrogate_nets.encode: rate, latency and delta encoders."""

import math

import pytest
import torch

from surrogate_nets.encode import (
    DeltaEncoder,
    LatencyEncoder,
    RateEncoder,
    delta,
    latency,
    rate,
)

DTYPES = [torch.float32, torch.float64, torch.bfloat16]


def first_spike(spikes):
    """Index of the first nonzero step along dim 0, -1 where an element never spikes."""
    T = spikes.shape[0]
    fired = spikes != 0
    steps = torch.arange(T).view(-1, *([1] * (spikes.dim() - 1))).expand_as(spikes)
    idx = torch.where(fired, steps, torch.full_like(steps, T)).min(dim=0).values
    return torch.where(idx == T, torch.full_like(idx, -1), idx)


# ---------------------------------------------------------------------------- rate


def test_rate_bernoulli_mean_rate():
    g = torch.Generator().manual_seed(0)
    x = torch.full((50,), 0.3)
    s = rate(x, 2000, generator=g)
    assert s.shape == (2000, 50)
    assert set(s.unique().tolist()) <= {0.0, 1.0}
    assert abs(s.mean().item() - 0.3) < 0.01
    # per element too (2000 draws each: sd ~0.01, so a wider tolerance)
    assert (s.mean(0) - 0.3).abs().max().item() < 0.05


def test_rate_gain_and_clamp():
    g = torch.Generator().manual_seed(1)
    x = torch.tensor([0.0, 0.1, 0.8, 1.0])
    s = rate(x, 3000, gain=2.0, generator=g)
    m = s.mean(0)
    assert m[0].item() == 0.0  # p = 0 never fires
    assert abs(m[1].item() - 0.2) < 0.03
    assert m[2].item() == 1.0 and m[3].item() == 1.0  # clamp(1.6) = clamp(2) = 1 always fires


def test_rate_poisson_counts():
    g = torch.Generator().manual_seed(2)
    x = torch.full((50,), 0.3)
    s = rate(x, 2000, generator=g, method="poisson")
    assert abs(s.mean().item() - 0.3) < 0.01
    big = rate(torch.ones(10), 500, gain=3.0, generator=g, method="poisson")
    assert big.max().item() > 1  # counts can exceed 1
    assert abs(big.mean().item() - 3.0) < 0.1
    assert (big == big.round()).all() and (big >= 0).all()
    # Poisson accepts rates above 1 (x is a rate for this method)
    assert rate(torch.tensor([2.0]), 5, method="poisson", generator=g).shape == (5, 1)


@pytest.mark.parametrize("method", ["bernoulli", "poisson"])
def test_rate_reproducible(method):
    x = torch.rand(4, 8, generator=torch.Generator().manual_seed(3))
    a = rate(x, 20, generator=torch.Generator().manual_seed(7), method=method)
    b = rate(x, 20, generator=torch.Generator().manual_seed(7), method=method)
    c = rate(x, 20, generator=torch.Generator().manual_seed(8), method=method)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    # the module shares one generator whose state advances between calls
    enc = RateEncoder(20, method=method, generator=torch.Generator().manual_seed(7))
    assert torch.equal(enc(x), a)
    assert not torch.equal(enc(x), a)


def test_rate_global_rng_seed():
    x = torch.full((3, 5), 0.5)
    torch.manual_seed(11)
    a = rate(x, 10)
    torch.manual_seed(11)
    b = rate(x, 10)
    assert torch.equal(a, b)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("method", ["bernoulli", "poisson"])
def test_rate_dtypes(dtype, method):
    x = torch.tensor([[0.0, 0.25, 0.5, 0.75, 1.0]], dtype=dtype)  # exact in every dtype
    s = rate(x, 30, generator=torch.Generator().manual_seed(5), method=method)
    assert s.dtype == dtype and s.shape == (30, 1, 5)
    ref = rate(x.float(), 30, generator=torch.Generator().manual_seed(5), method=method)
    if dtype != torch.float64:  # same draws (float32) for float32/bfloat16
        assert torch.equal(s.float(), ref)


def test_rate_straight_through_gradient():
    T, gain = 7, 2.0
    x = torch.tensor([0.1, 0.3, 0.6, 0.9], dtype=torch.float64, requires_grad=True)
    s = rate(x, T, gain=gain, generator=torch.Generator().manual_seed(0), straight_through=True)
    plain = rate(x.detach(), T, gain=gain, generator=torch.Generator().manual_seed(0))
    assert torch.equal(s.detach(), plain)  # forward value untouched
    w = torch.arange(1.0, T + 1, dtype=torch.float64).view(T, 1)
    (s * w).sum().backward()
    # d E[s_t]/dx = gain where gain*x <= 1 (0.2, 0.6), 0 where the clamp is active (1.2, 1.8)
    expected = torch.tensor([1.0, 1.0, 0.0, 0.0], dtype=torch.float64) * gain * w.sum()
    assert torch.allclose(x.grad, expected)

    xp = torch.tensor([0.5, 2.0], dtype=torch.float64, requires_grad=True)
    rate(xp, T, gain=gain, method="poisson", straight_through=True).sum().backward()
    assert torch.allclose(xp.grad, torch.full_like(xp, gain * T))


def test_rate_straight_through_tensor_gain():
    gain = torch.tensor(0.5, requires_grad=True)
    x = torch.tensor([0.2, 0.4])
    rate(x, 3, gain=gain, straight_through=True).sum().backward()
    assert torch.allclose(gain.grad, torch.tensor(3 * (0.2 + 0.4)))


def test_rate_detached_by_default():
    x = torch.full((2,), 0.5, requires_grad=True)
    assert not rate(x, 3).requires_grad
    assert rate(x, 3, straight_through=True).requires_grad


def test_rate_bad_inputs():
    x = torch.full((2, 3), 0.5)
    with pytest.raises(ValueError, match="T must be >= 1"):
        rate(x, 0)
    with pytest.raises(ValueError, match="T must be >= 1"):
        rate(x, -3)
    with pytest.raises(TypeError, match="T must be an int"):
        rate(x, 2.5)
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        rate([0.5, 0.5], 4)
    with pytest.raises(TypeError, match="x must have a floating dtype.*int64"):
        rate(torch.ones(2, dtype=torch.int64), 4)
    with pytest.raises(ValueError, match="x must not contain NaN"):
        rate(torch.tensor([0.5, float("nan")]), 4)
    with pytest.raises(ValueError, match=r"x must have values in \[0.0, 1.0\].*max=1.5"):
        rate(torch.tensor([0.5, 1.5]), 4)
    with pytest.raises(ValueError, match=r"x must have values in \[0.0, 1.0\].*min=-0.1"):
        rate(torch.tensor([-0.1, 0.5]), 4)
    with pytest.raises(ValueError, match=r"x must have values in \[0.0, inf\).*poisson"):
        rate(torch.tensor([-0.1, 0.5]), 4, method="poisson")
    with pytest.raises(ValueError, match="method must be one of"):
        rate(x, 4, method="gaussian")
    with pytest.raises(ValueError, match="gain must be finite and >= 0"):
        rate(x, 4, gain=-1.0)
    with pytest.raises(TypeError, match="generator must be a torch.Generator"):
        rate(x, 4, generator=0)
    with pytest.raises(ValueError, match="gain of shape"):
        rate(x, 4, gain=torch.ones(5))
    with pytest.raises(ValueError, match="x must have at least 1 dimensions"):
        rate(torch.tensor(0.5), 4)
    with pytest.raises(TypeError, match="straight_through must be a bool"):
        rate(x, 4, straight_through=1)
    with pytest.raises(ValueError, match="T must be >= 1"):
        RateEncoder(0)
    with pytest.raises(ValueError, match="method must be one of"):
        RateEncoder(3, method="bad")


# ---------------------------------------------------------------------------- latency


def test_latency_rc_exact_times():
    # t* = tau ln(x / (x - theta)), tau = 10, theta = 0.5, step = floor(t* + 1/2)
    # x=1: 10 ln 2 = 6.93 -> 7 ; x=0.75: 10 ln 3 = 10.99 -> 11 ; x=0.6: 10 ln 6 = 17.92 -> 18
    # x=0.55: 10 ln 11 = 23.98 -> 24 >= T = 20: outside ; x=0.5, 0: inactive (x <= theta)
    x = torch.tensor([[1.0, 0.75, 0.6, 0.55, 0.5, 0.0]], dtype=torch.float64)
    s = latency(x, 20, tau=10.0, threshold=0.5, normalize=False, clip=True)
    assert s.shape == (20, 1, 6)
    assert first_spike(s).tolist() == [[7, 11, 18, -1, -1, -1]]
    assert (s.sum(0) <= 1).all()
    s = latency(x, 20, tau=10.0, threshold=0.5, normalize=False, clip=False)
    assert first_spike(s).tolist() == [[7, 11, 18, 19, 19, 19]]
    assert (s.sum(0) == 1).all()


def test_latency_rc_normalized_exact_times():
    # theta = 0.5, epsilon = 0.5/7: ln((theta + eps)/eps) = ln 8 = 3 ln 2, T - 1 = 10
    # t* = 10 ln(x/(x-0.5)) / (3 ln 2):
    # x=1: 10/3 = 3.33 -> 3 ; x=0.75: 10 ln3/ln8 = 5.28 -> 5 ; x=0.6: 10 ln6/ln8 = 8.62 -> 9
    # x=0.55: 11.53, capped at T-1 = 10 ; x = theta + eps = 4/7: exactly 10 ; x=0.3: inactive
    eps = 0.5 / 7
    x = torch.tensor([1.0, 0.75, 0.6, 0.55, 4.0 / 7.0, 0.3], dtype=torch.float64)
    for tau in (1.0, 5.0):  # tau is unused when normalize=True
        s = latency(x.unsqueeze(0), 11, tau=tau, threshold=0.5, epsilon=eps)
        assert first_spike(s)[0].tolist() == [3, 5, 9, 10, 10, -1]
    s = latency(x.unsqueeze(0), 11, threshold=0.5, epsilon=eps, clip=False)
    assert first_spike(s)[0].tolist() == [3, 5, 9, 10, 10, 10]


def test_latency_rc_default_normalization_latest_is_last_step():
    # with the defaults (theta=0.01, eps=1e-7) x = theta + eps maps to T-1, x = 1 to step 0
    x = torch.tensor([[1.0, 0.01 + 1e-7]], dtype=torch.float64)
    s = latency(x, 25)
    assert first_spike(s).tolist() == [[0, 24]]


def test_latency_linear_exact_times():
    # t* = tau (1 - x), tau = 4: x=1 -> 0 ; 0.9 -> 0.4 -> 0 ; 0.5 -> 2 ; 0.3 -> 2.8 -> 3 ;
    # 0.05 -> 3.8 -> 4 ; 0 <= theta = 0.01: inactive
    x = torch.tensor([[1.0, 0.9, 0.5, 0.3, 0.05, 0.0]])
    s = latency(x, 5, tau=4.0, linear=True, normalize=False)
    assert first_spike(s).tolist() == [[0, 0, 2, 3, 4, -1]]
    s = latency(x, 4, tau=4.0, linear=True, normalize=False)  # step 4 falls outside T = 4
    assert first_spike(s).tolist() == [[0, 0, 2, 3, -1, -1]]
    s = latency(x, 4, tau=4.0, linear=True, normalize=False, clip=False)
    assert first_spike(s).tolist() == [[0, 0, 2, 3, 3, 3]]


def test_latency_linear_normalized_exact_times():
    # t* = (T-1)(1 - x), T = 11: x=1 -> 0 ; 0.62 -> 3.8 -> 4 ; 0.33 -> 6.7 -> 7 ;
    # 0.02 -> 9.8 -> 10 ; 0.005 <= theta: inactive ; tie 0.75 -> 2.5 rounds up -> 3
    x = torch.tensor([[1.0, 0.62, 0.33, 0.02, 0.005, 0.75]])
    s = latency(x, 11, linear=True)
    assert first_spike(s).tolist() == [[0, 4, 7, 10, -1, 3]]
    s = LatencyEncoder(11, linear=True, clip=False)(x)
    assert first_spike(s).tolist() == [[0, 4, 7, 10, 10, 3]]
    # threshold 0 in linear mode: any x > 0 fires, x = 0 (not > theta) stays silent
    x0 = torch.tensor([[0.001, 0.0]])
    assert first_spike(latency(x0, 11, threshold=0.0, linear=True)).tolist() == [[10, -1]]


def test_latency_one_spike_and_shape():
    x = torch.rand(3, 2, 4, generator=torch.Generator().manual_seed(0))
    for linear in (False, True):
        for clip in (False, True):
            s = latency(x, 9, linear=linear, clip=clip, threshold=0.2)
            assert s.shape == (9, 3, 2, 4)
            assert set(s.unique().tolist()) <= {0.0, 1.0}
            assert (s.sum(0) <= 1).all()
            assert not s.requires_grad
    # brighter fires no later
    x = torch.linspace(0.05, 1.0, 40).unsqueeze(0)
    t = first_spike(latency(x, 30, threshold=0.04, epsilon=1e-3))[0]
    assert (t[1:] <= t[:-1]).all() and (t >= 0).all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("linear", [False, True])
def test_latency_dtypes(dtype, linear):
    x = torch.tensor([[1.0, 0.75, 0.625, 0.5, 0.25, 0.0]], dtype=dtype)  # exact in all dtypes
    s = latency(x, 16, tau=6.0, threshold=0.125, linear=linear, normalize=False)
    assert s.dtype == dtype and s.shape == (16, 1, 6)
    ref = latency(x.double(), 16, tau=6.0, threshold=0.125, linear=linear, normalize=False)
    assert torch.equal(s.double(), ref)
    assert torch.equal(LatencyEncoder(16, tau=6.0, threshold=0.125, linear=linear,
                                      normalize=False)(x), s)


def test_latency_bad_inputs():
    x = torch.full((2, 3), 0.5)
    with pytest.raises(ValueError, match="T must be >= 1"):
        latency(x, 0)
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        latency(0.5, 4)
    with pytest.raises(TypeError, match="x must have a floating dtype.*uint8"):
        latency(torch.ones(2, dtype=torch.uint8), 4)
    with pytest.raises(ValueError, match="x must not contain NaN"):
        latency(torch.tensor([float("nan")]), 4)
    with pytest.raises(ValueError, match=r"x must have values in \[0.0, 1.0\]"):
        latency(torch.tensor([0.5, 2.0]), 4)
    with pytest.raises(ValueError, match="tau must be finite and > 0"):
        latency(x, 4, tau=0.0)
    with pytest.raises(ValueError, match=r"threshold must lie in \(0.0, 1.0\)"):
        latency(x, 4, threshold=0.0)  # RC needs theta > 0
    with pytest.raises(ValueError, match=r"threshold must lie in \[0.0, 1.0\)"):
        latency(x, 4, threshold=1.0, linear=True)
    with pytest.raises(TypeError, match="linear must be a bool"):
        latency(x, 4, linear="yes")
    with pytest.raises(TypeError, match="tau must be a real number"):
        latency(x, 4, tau=torch.tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match="epsilon must be finite and > 0"):
        LatencyEncoder(4, epsilon=0.0)


# ---------------------------------------------------------------------------- delta

# two features over T = 6 steps, values exact in every dtype; threshold 0.25
SEQ_A = [0.0, 0.25, 0.25, 0.0, 0.5, 0.375]  # diffs vs 0: 0, .25, 0, -.25, .5, -.125
SEQ_B = [0.5, 0.5, 0.75, 1.0, 0.25, 0.5]  # diffs vs 0: .5, 0, .25, .25, -.75, .25
DELTA_A = [0, 1, 0, -1, 1, 0]
DELTA_B = [1, 0, 1, 1, -1, 1]


def _seq(dtype=torch.float32):
    return torch.tensor([SEQ_A, SEQ_B], dtype=dtype).T.reshape(6, 1, 2)  # [T, B, 2]


@pytest.mark.parametrize("dtype", DTYPES)
def test_delta_exact(dtype):
    x = _seq(dtype)
    s = delta(x, threshold=0.25)
    assert s.dtype == dtype and s.shape == (6, 1, 2)
    assert s[:, 0, 0].tolist() == DELTA_A
    assert s[:, 0, 1].tolist() == DELTA_B
    # padding: first step compared with itself -> no spike at t = 0
    p = delta(x, threshold=0.25, padding=True)
    assert p[:, 0, 0].tolist() == DELTA_A
    assert p[:, 0, 1].tolist() == [0] + DELTA_B[1:]
    # ON only
    on = delta(x, threshold=0.25, off_spikes=False)
    assert on[:, 0, 0].tolist() == [max(v, 0) for v in DELTA_A]
    assert on[:, 0, 1].tolist() == [max(v, 0) for v in DELTA_B]
    assert torch.equal(DeltaEncoder(0.25)(x), s)


def test_delta_split_polarity():
    x = _seq()
    s = delta(x, threshold=0.25, split_polarity=True)
    assert s.shape == (6, 1, 2, 2)
    assert set(s.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(s[:, :, 0] - s[:, :, 1], delta(x, threshold=0.25))
    assert s[:, 0, 0, 1].tolist() == [1, 0, 1, 1, 0, 1]  # ON channel of feature B
    assert s[:, 0, 1, 1].tolist() == [0, 0, 0, 0, 1, 0]  # OFF channel of feature B
    s = delta(x, threshold=0.25, split_polarity=True, off_spikes=False)
    assert s.shape == (6, 1, 2, 2) and (s[:, :, 1] == 0).all()


def test_delta_threshold_tensor_and_detached():
    x = _seq().requires_grad_(True)
    thr = torch.tensor([0.25, 0.5])  # per feature
    s = delta(x, threshold=thr)
    assert not s.requires_grad
    assert s[:, 0, 0].tolist() == DELTA_A
    assert s[:, 0, 1].tolist() == [1, 0, 0, 0, -1, 0]
    big = delta(x, threshold=1.0)
    assert (big == 0).all()


def test_delta_bad_inputs():
    x = _seq()
    with pytest.raises(TypeError, match="x_seq must be a torch.Tensor"):
        delta([[0.0], [1.0]])
    with pytest.raises(TypeError, match="x_seq must have a floating dtype.*int32"):
        delta(torch.zeros(3, 2, dtype=torch.int32))
    with pytest.raises(ValueError, match="x_seq must have at least 2 dimensions"):
        delta(torch.zeros(5))
    with pytest.raises(ValueError, match="x_seq must have T >= 1"):
        delta(torch.zeros(0, 2))
    with pytest.raises(ValueError, match="x_seq must not contain NaN"):
        delta(torch.tensor([[0.0], [float("nan")]]))
    with pytest.raises(ValueError, match="x_seq must be finite"):
        delta(torch.tensor([[0.0], [float("inf")]]))
    with pytest.raises(ValueError, match="threshold must be finite and > 0"):
        delta(x, threshold=0.0)
    with pytest.raises(ValueError, match="threshold must be finite and > 0"):
        delta(x, threshold=torch.tensor([0.25, -1.0]))
    with pytest.raises(ValueError, match="threshold of shape"):
        delta(x, threshold=torch.ones(3))
    with pytest.raises(TypeError, match="threshold must be a positive real number"):
        delta(x, threshold="0.1")
    with pytest.raises(TypeError, match="padding must be a bool"):
        delta(x, padding=None)
    with pytest.raises(ValueError, match="threshold must be finite and > 0"):
        DeltaEncoder(-0.1)


def test_module_reprs():
    assert "T=5" in repr(RateEncoder(5))
    assert "linear=True" in repr(LatencyEncoder(5, linear=True))
    assert "threshold=0.2" in repr(DeltaEncoder(0.2))
    assert math.isclose(RateEncoder(5, gain=2).gain, 2.0)
