"""surrogate_nets.layers.delay: SynapticDelay, DelayedLinear, DelayWidthSchedule (modules, streaming,
Sequential/reset, round(), torch.compile, fit, and the relative-timing task)."""

import pytest
import torch
from torch import nn

from surrogate_nets import layers, surrogate
from surrogate_nets.data.timing import relative_timing
from surrogate_nets.functional import delay_shift, delayed_linear
from surrogate_nets.layers import DelayedLinear, DelayWidthSchedule, SynapticDelay
from surrogate_nets.neurons import LIF
from devices import needs_cuda


def test_synaptic_delay_is_a_learnable_parameter_in_range():
    m = SynapticDelay(4, 6)
    names = dict(m.named_parameters())
    assert list(names) == ["raw_delay"] and "raw_delay" in m.state_dict() and "sigma" in m.state_dict()
    d = m.delay
    assert d.shape == (4,) and bool(((d > 0) & (d < 6)).all())
    x = torch.randn(12, 3, 4)
    m(x).square().sum().backward()
    assert m.raw_delay.grad is not None and bool((m.raw_delay.grad != 0).all())
    torch.testing.assert_close(m(x), delay_shift(x, m.delay, 6))


def test_init_values_and_fixed_delays():
    m = SynapticDelay(3, 5, init=torch.tensor([0.0, 2.0, 5.0]), learnable=False)
    assert list(m.parameters()) == [] and m.delay.tolist() == [0.0, 2.0, 5.0]
    m2 = SynapticDelay((2, 1, 1), 4, init=2.5)
    torch.testing.assert_close(m2.delay, torch.full((2, 1, 1), 2.5))
    assert SynapticDelay(2, 4, init="zero").delay.max() < 0.01   # learnable: eps inside (0, D)


def test_round_gives_integer_exact_shift_and_fixed_buffer():
    m = DelayedLinear(3, 2, 5, kernel="gaussian", sigma=0.3)
    m.round()
    assert not m.learnable and m.kernel == "linear" and "fixed_delay" in m.state_dict()
    assert bool((m.delay == m.delay.round()).all())
    x = torch.randn(9, 2, 3)
    ref = delayed_linear(x, m.weight, m.delay, 5, m.bias)
    torch.testing.assert_close(m(x), ref)
    assert {n for n, _ in m.named_parameters()} == {"weight", "bias"}


@pytest.mark.parametrize("make", [lambda: SynapticDelay(4, 5, kernel="gaussian", sigma=1.0),
                                  lambda: SynapticDelay(4, 5), lambda: DelayedLinear(4, 3, 5),
                                  lambda: DelayedLinear(4, 3, 5, kernel="gaussian")])
def test_step_and_chunked_calls_equal_one_multistep_call(make):
    m = make()
    x = torch.randn(13, 2, 4)
    full, final = m(x, return_state=True)
    state, outs = None, []
    for t in range(13):
        y, state = m.step(x[t], state)
        outs.append(y)
    torch.testing.assert_close(torch.stack(outs), full)
    y1, s1 = m(x[:3], return_state=True)        # shorter than max_delay: history kept
    y2, s2 = m(x[3:], s1, return_state=True)
    torch.testing.assert_close(torch.cat([y1, y2]), full)
    torch.testing.assert_close(history(s2), history(final))


def history(state):
    from surrogate_nets.functional.delay import history_from_state
    return history_from_state(state)


def test_stateful_streaming_in_sequential_and_reset():
    torch.manual_seed(0)
    ref = layers.Sequential(DelayedLinear(3, 5, 4), LIF(), nn.Linear(5, 4), SynapticDelay(4, 6), LIF())
    net = layers.Sequential(DelayedLinear(3, 5, 4, stateful=True), LIF(stateful=True), nn.Linear(5, 4),
                            SynapticDelay(4, 6, stateful=True), LIF(stateful=True))
    net.load_state_dict(ref.state_dict())
    x = torch.rand(20, 2, 3)
    full = ref(x)
    streamed = torch.cat([net(x[t:t + 1]) for t in range(20)])   # one step per call
    torch.testing.assert_close(streamed, full)
    layers.reset(net)
    assert net[0]._state is None and net[3]._state is None
    torch.testing.assert_close(torch.cat([net(x[:7]), net(x[7:])]), full)
    # a stateless module keeps nothing
    assert ref[0]._state is None


def test_width_schedule_anneals_gaussian_modules_only():
    net = nn.Sequential(SynapticDelay(2, 8, kernel="gaussian"), DelayedLinear(2, 2, 4, kernel="gaussian"),
                        SynapticDelay(2, 8))
    sched = DelayWidthSchedule(net, steps=4)
    assert net[0].sigma.item() == 4.0 and net[1].sigma.item() == 2.0
    for _ in range(4):
        sched.step()
    assert net[0].sigma.item() == 0.5 and net[1].sigma.item() == 0.5
    s2 = DelayWidthSchedule(net, steps=2, start=2.0, end=0.5, mode="exp")
    s2.step()
    assert net[0].sigma.item() == pytest.approx(1.0)
    s2.load_state_dict({"n": 0})
    assert net[1].sigma.item() == pytest.approx(2.0) and len(s2.modules) == 2


@pytest.mark.parametrize("impl", ["conv", "fft"])
def test_torch_compile_small_case(impl):
    torch.manual_seed(0)
    net = layers.Sequential(DelayedLinear(3, 4, 5, impl=impl), SynapticDelay(4, 3, kernel="gaussian"), LIF())
    x = torch.randn(10, 2, 3)
    eager = net(x)
    ge = torch.autograd.grad(eager.sum() + net[0].delay.sum(), net[0].raw_delay)
    compiled = torch.compile(net, backend="aot_eager", fullgraph=True)
    y = compiled(x)
    torch.testing.assert_close(y, eager)
    gc = torch.autograd.grad(y.sum() + net[0].delay.sum(), net[0].raw_delay)
    torch.testing.assert_close(gc[0], ge[0])
    with torch.no_grad():                     # inference: no graph break from value checks either
        torch.testing.assert_close(compiled(x), eager)


def test_fit_trains_delays():
    from surrogate_nets import losses, train
    x, y = relative_timing(64, seed=0)
    net = layers.Sequential(DelayedLinear(2, 4, 8), LIF(beta=0.3), nn.Linear(4, 2))
    before = net[0].delay.detach().clone()
    hist = train.fit(net, losses.RateCrossEntropy(mode="count"),
                     train.TensorLoader(x, y, batch_size=32, time_major=True), epochs=1, lr=0.05,
                     progress=False, verbose=False, plot=False, device="cpu")
    assert len(hist) == 1
    assert not torch.equal(net[0].delay.detach(), before)


def train_task(delays: bool, epochs: int, seed: int = 0):
    torch.manual_seed(seed)
    xtr, ytr = relative_timing(256, seed=seed)
    xte, yte = relative_timing(256, seed=seed + 1000)
    first = DelayedLinear(2, 8, 8) if delays else nn.Linear(2, 8)
    net = layers.Sequential(first, LIF(beta=0.3, surrogate=surrogate.get("fast_sigmoid", alpha=5.0)),
                            nn.Linear(8, 2))
    opt = torch.optim.Adam(net.parameters(), lr=0.05)
    for _ in range(epochs):
        for i in range(0, 256, 32):
            loss = nn.functional.cross_entropy(net(xtr[:, i:i + 32]).sum(0), ytr[i:i + 32])
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        acc = (net(xte).sum(0).argmax(1) == yte).float().mean().item()
        if delays:
            first.round()
            return acc, (net(xte).sum(0).argmax(1) == yte).float().mean().item()
    return acc, acc


def test_relative_timing_task_needs_learnable_delays():
    x, y = relative_timing(100, seed=3)
    assert x.shape == (24, 100, 2) and int(y.sum()) == 50
    assert torch.equal(x.sum(0), torch.ones(100, 2))               # counts carry nothing
    acc, acc_rounded = train_task(True, epochs=10)
    base, _ = train_task(False, epochs=3)
    assert acc >= 0.9 and acc_rounded >= 0.9, (acc, acc_rounded)
    assert base <= 0.6, base


def test_bad_module_arguments():
    with pytest.raises(ValueError, match="max_delay"):
        SynapticDelay(3, -2)
    with pytest.raises(TypeError, match="channels"):
        SynapticDelay("3", 4)
    with pytest.raises(ValueError, match="channels entry"):
        SynapticDelay((3, 0), 4)
    with pytest.raises(ValueError, match=r"init delays must lie in \[0, max_delay=4\]"):
        SynapticDelay(3, 4, init=5.0)
    with pytest.raises(ValueError, match="init of shape"):
        SynapticDelay(3, 4, init=torch.ones(2))
    with pytest.raises(ValueError, match="kernel"):
        DelayedLinear(3, 2, 4, kernel="box")
    with pytest.raises(ValueError, match="impl='sparse' needs kernel='linear'"):
        DelayedLinear(3, 2, 4, kernel="gaussian", impl="sparse")
    m = DelayedLinear(3, 2, 4)
    with pytest.raises(ValueError, match="in_features=3"):
        m(torch.randn(5, 2, 4))
    with pytest.raises(TypeError, match="floating dtype"):
        m(torch.ones(5, 2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="T >= 1|at least 2"):
        SynapticDelay(3, 4)(torch.randn(3))
    with pytest.raises(ValueError, match="delay of shape"):
        SynapticDelay(3, 4)(torch.randn(5, 2, 4))


@needs_cuda
def test_modules_on_cuda_match_cpu():
    net = layers.Sequential(DelayedLinear(3, 4, 6), SynapticDelay(4, 5, kernel="gaussian"))
    x = torch.randn(20, 2, 3)
    ref = net(x)
    torch.testing.assert_close(net.cuda()(x.cuda()).cpu(), ref, atol=1e-4, rtol=1e-4)
