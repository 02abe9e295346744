"""surrogate_nets.neurons: equivalence with the plain reference loop, conventions, bad input."""

import itertools

import pytest
import torch

import reference as ref
from surrogate_nets import surrogate as S
from surrogate_nets.layers import Sequential, reset as reset_model
from surrogate_nets.neurons import (
    ALIF, IF, LI, LIF, PLIF, RLIF, BaseNeuron, LIFState, Synaptic, collect, set_record,
)

N = 4
KINDS = ["if", "lif", "lif_decay", "alif", "synaptic", "rlif_a2a", "rlif_1to1"]
MODES = list(itertools.product(["subtract", "zero", "none"], [False, True], [1, 3]))


def make(kind, reset="subtract", detach=False, levels=1, learn=True):
    """A float64 neuron with every quantity learnable and per-neuron where possible."""
    sur = S.ATan(alpha=2.0, learnable=learn)
    common = dict(threshold=torch.tensor([0.8, 1.0, 1.2, 0.9]), learn_threshold=learn, surrogate=sur,
                  reset=reset, detach_reset=detach, levels=levels, num_neurons=N)
    tau = torch.tensor([1.5, 2.0, 3.0, 5.0])
    if kind == "if":
        m = IF(**common)
    elif kind in ("lif", "lif_decay"):
        m = LIF(tau=tau, decay_input=kind == "lif_decay", learn_beta=learn, **common)
    elif kind == "alif":
        m = ALIF(tau=tau, tau_adapt=10.0, adaptation=0.3, learn_beta=learn, learn_rho=learn,
                 learn_adaptation=learn, **common)
    elif kind == "synaptic":
        m = Synaptic(tau_syn=3.0, tau=tau, learn_alpha_syn=learn, learn_beta=learn, **common)
    elif kind == "rlif_a2a":
        m = RLIF(tau=tau, learn_beta=learn, connectivity="all_to_all", recurrent_bias=True, **common)
    elif kind == "rlif_1to1":
        m = RLIF(tau=tau, learn_beta=learn, connectivity="one_to_one", recurrent_init=0.3, **common)
    elif kind == "li":
        m = LI(tau=tau, learn_beta=learn, num_neurons=N)
    else:
        raise ValueError(kind)
    return m.double()


def ref_params(kind, m):
    p = {}
    if kind != "if":
        p["beta"] = m.beta
    if kind != "li":
        p["threshold"] = m.threshold
    if kind == "alif":
        p.update(rho=m.rho, adaptation=m.adaptation)
    if kind == "synaptic":
        p["alpha_syn"] = m.alpha_syn
    if kind == "rlif_a2a":
        p.update(W=m.recurrent.weight, b=m.recurrent.bias)
    if kind == "rlif_1to1":
        p["w"] = m.recurrent_weight
    return p


def ref_kind(kind):
    return "lif" if kind == "lif_decay" else kind


def _grads(loss, tensors):
    return torch.autograd.grad(loss, tensors, allow_unused=True)


@pytest.mark.parametrize("reset, detach, levels", MODES)
@pytest.mark.parametrize("kind", KINDS)
def test_matches_reference_loop(kind, reset, detach, levels):
    torch.manual_seed(1)
    m = make(kind, reset, detach, levels)
    keys = tuple(k for k in m.recordable)
    m.set_record(keys)
    T, B = 7, 3
    x = (torch.randn(T, B, N, dtype=torch.float64) * (1.5 if levels == 1 else 3.0) + 0.5).requires_grad_()
    state = m.State(*(torch.randn(B, N, dtype=torch.float64).mul(0.5).requires_grad_()
                      for _ in m.State._fields))
    if kind.startswith("rlif"):
        state = state._replace(s=(torch.rand(B, N, dtype=torch.float64) < 0.5).double().requires_grad_())
    out, final = m(x, state, return_state=True)
    exp, exp_final, exp_traces = ref.run(ref_kind(kind), x, ref_params(kind, m), m.surrogate, reset,
                                         detach, levels, m.decay_input, state._asdict())
    torch.testing.assert_close(out, exp, rtol=0, atol=1e-12)
    assert out.sum() > 0  # something fired
    for f in m.State._fields:
        torch.testing.assert_close(getattr(final, f), exp_final[f], rtol=1e-9, atol=1e-9)
    for k in keys:
        torch.testing.assert_close(m.recorded[k], exp_traces[k], rtol=1e-9, atol=1e-9)

    w_out = torch.randn_like(out)
    w_h = torch.randn_like(out)

    def loss(o, fin, tr):
        total = (o * w_out).sum() + (tr["h"] * w_h).sum() * 0.1
        return total + sum((fin[f] * (i + 1)).sum() for i, f in enumerate(m.State._fields))

    params = list(m.parameters())
    wrt = [x, *state] + params
    g = _grads(loss(out, final._asdict(), m.recorded), wrt)
    ge = _grads(loss(exp, exp_final, exp_traces), wrt)
    names = ["x"] + [f"state.{f}" for f in m.State._fields] + [n for n, _ in m.named_parameters()]
    for name, a, b in zip(names, g, ge):
        if b is None:
            assert a is None or torch.count_nonzero(a) == 0, name
            continue
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6, msg=lambda s: f"{name}: {s}")
    for name, p, gp in zip(names[-len(params):], params, g[-len(params):]):
        assert gp is not None and torch.count_nonzero(gp) > 0, f"{name} got no gradient"


@pytest.mark.parametrize("decay_input", [False, True])
def test_li_matches_reference(decay_input):
    m = make("li")
    m.decay_input = decay_input
    x = torch.randn(6, 3, N, dtype=torch.float64, requires_grad=True)
    v0 = torch.randn(3, N, dtype=torch.float64, requires_grad=True)
    out, fin = m(x, (v0,), return_state=True)
    exp, exp_fin, _ = ref.run("li", x, {"beta": m.beta}, decay_input=decay_input, state={"v": v0})
    torch.testing.assert_close(out, exp)
    w = torch.randn_like(out)
    wrt = [x, v0, m.raw_beta]
    g = _grads((out * w).sum() + fin.v.sum(), wrt)
    ge = _grads((exp * w).sum() + exp_fin["v"].sum(), wrt)
    for a, b in zip(g, ge):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)
        assert torch.count_nonzero(a) > 0


@pytest.mark.parametrize("kind", KINDS + ["li"])
def test_step_loop_equals_multistep(kind):
    m = make(kind, levels=1)
    x = torch.randn(5, 2, N, dtype=torch.float64) * 1.5
    out, fin = m(x, return_state=True)
    st, outs = None, []
    for t in range(5):
        o, st = m.step(x[t], st)
        outs.append(o)
    torch.testing.assert_close(torch.stack(outs), out)
    for a, b in zip(st, fin):
        torch.testing.assert_close(a, b)
    # and state continuation: two halves == the whole
    y1, s1 = m(x[:2], return_state=True)
    y2 = m(x[2:], s1)
    torch.testing.assert_close(torch.cat([y1, y2]), out)


@pytest.mark.parametrize("tau", [2.0, 3.0])
@pytest.mark.parametrize("decay_input", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_lif_equals_spikingjelly_lifnode(tau, decay_input, dtype):
    """LIF(tau, decay_input, 'subtract') == LIFNode(tau, decay_input, v_reset=None); 'zero' == v_reset=0."""
    x = torch.randn(50, 8, 16, dtype=dtype) * 1.2 + 0.4
    ours = LIF(tau=tau, decay_input=decay_input, reset="subtract").to(dtype)(x)
    assert torch.equal(ours, ref.spikingjelly_lif(x, tau, decay_input, 1.0, None))
    assert ours.sum() > 0
    hard = LIF(tau=tau, decay_input=decay_input, reset="zero").to(dtype)(x)
    assert torch.equal(hard, ref.spikingjelly_lif(x, tau, decay_input, 1.0, 0.0))


def test_defaults_and_surrogate_submodule():
    m = LIF()
    assert float(m.beta) == 0.5 and float(m.threshold) == 1.0
    assert isinstance(m.surrogate, S.ATan) and float(m.surrogate.alpha) == 2.0
    assert list(m.parameters()) == []
    m2 = LIF(tau=2.0, surrogate=S.ATan(learnable=True), learn_threshold=True, learn_beta=True)
    names = {n for n, _ in m2.named_parameters()}
    assert names == {"raw_beta", "raw_threshold", "surrogate.raw_alpha"}
    assert set(m2.state_dict()) == names
    torch.testing.assert_close(m2.beta, torch.tensor(0.5))
    torch.testing.assert_close(m2.tau, torch.tensor(2.0))
    assert isinstance(LIF(surrogate="sigmoid").surrogate, S.Sigmoid)
    assert isinstance(PLIF(tau=2.0).raw_beta, torch.nn.Parameter)
    assert LIF(beta=0.9).beta.item() == pytest.approx(0.9)
    per = LIF(tau=2.0, learn_beta=True, num_neurons=7)
    assert per.raw_beta.shape == (7,)
    ch = LIF(learn_threshold=True, shape=(3, 1, 1))
    assert ch.raw_threshold.shape == (3, 1, 1)
    ch(torch.randn(2, 4, 3, 5, 5))  # per-channel broadcast over [T, B, C, H, W]
    m.beta = 0.25
    assert m.beta.item() == 0.25
    m2.threshold = 2.0
    assert m2.threshold.item() == pytest.approx(2.0)


def test_levels_one_is_binary_spike_and_counts():
    x = torch.randn(20, 4, 6, dtype=torch.float64) * 4
    m1 = LIF(tau=2.0, threshold=0.7, levels=1).double()
    mL = LIF(tau=2.0, threshold=0.7, levels=4).double()
    s1, sL = m1(x), mL(x)
    assert set(s1.unique().tolist()) <= {0.0, 1.0}
    assert set(sL.unique().tolist()) <= {0.0, 1.0, 2.0, 3.0, 4.0} and sL.max() > 1
    # with one level, subtract-reset and levels>1 agree while counts stay <= 1
    xs = torch.rand(10, 3, 5, dtype=torch.float64) * 0.6
    torch.testing.assert_close(m1(xs), mL(xs))


def test_no_state_leak_and_streaming():
    x1, x2 = torch.randn(6, 2, N) * 2, torch.randn(6, 2, N) * 2
    m = LIF(tau=3.0)
    a = m(x2)
    m(x1)
    assert torch.equal(m(x2), a)  # stateless by default
    sm = LIF(tau=3.0, stateful=True)
    sm(x1)
    _, fin = LIF(tau=3.0)(x1, return_state=True)
    cont = LIF(tau=3.0)(x2, fin)
    assert torch.equal(sm(x2), cont)
    assert sm._state is not None and not sm._state.v.requires_grad
    net = Sequential(torch.nn.Linear(N, N), sm)
    reset_model(net)
    assert sm._state is None
    assert torch.equal(sm(x2), a)
    with pytest.raises(ValueError, match="stored state"):
        sm(torch.randn(6, 5, N))  # batch changed without reset
    # streaming with step()
    st = LIF(tau=3.0, stateful=True)
    outs = [st.step(x1[t])[0] for t in range(6)]
    torch.testing.assert_close(torch.stack(outs), LIF(tau=3.0)(x1))
    st.reset()
    assert st._state is None


def test_record_rates_and_collect():
    net = Sequential(torch.nn.Linear(5, 8), LIF(tau=2.0, record_rates=True), torch.nn.Linear(8, 3),
                     ALIF(record=("v", "a"), record_rates=True), LI(record="v"))
    x = torch.rand(10, 4, 5) * 3
    out = net(x)
    rates = list(collect(net, "rate"))
    assert len(rates) == 2 and rates[0].shape == (4, 8) and rates[1].shape == (4, 3)
    assert all(r.grad_fn is not None for r in rates)  # graph kept for regularisers
    torch.testing.assert_close(net[1].recorded["rate"], net[1](net[0](x)).mean(0))
    assert len(list(collect(net, "v"))) == 2 and len(list(collect(net, "a"))) == 1
    torch.testing.assert_close(net[4].recorded["v"], out)
    sum(r.mean() for r in rates).backward()
    assert torch.count_nonzero(net[0].weight.grad) > 0
    # set_record: None leaves a part unchanged; keys a neuron lacks are skipped
    set_record(net, record_rates=False)
    assert net[3].record == ("v", "a") and net[4].record == ("v",)
    set_record(net, record=("a",), record_rates=True)
    assert net[1].record == ("rate",) and net[3].record == ("a", "rate") and net[4].record == ("rate",)
    set_record(net, record=())
    assert net[3].record == ("rate",)
    set_record(net, record_rates=False)
    net(x)
    assert list(collect(net, "rate")) == [] and list(collect(net, "a")) == []
    # recordings hold graph tensors: deepcopy / pickling must still work
    import copy

    set_record(net, ("v",), record_rates=True)
    net(x)
    clone = copy.deepcopy(net)
    assert clone[3].recorded == {} and net[3].recorded
    m = LIF(record=("s", "h", "v"))
    y = m(x[:, :, :4] * 2)
    torch.testing.assert_close(m.recorded["s"], y)
    torch.testing.assert_close(m.recorded["v"], m.recorded["h"] - y * m.threshold)
    m.record_rates = True
    m(x[:, :, :4])
    assert set(m.recorded) == {"s", "h", "v", "rate"}
    m.reset()
    assert m.recorded == {}


def test_per_neuron_gradients_reduce_to_shape():
    m = LIF(tau=2.0, learn_beta=True, learn_threshold=True, shape=(3, 1, 1))
    x = torch.randn(4, 2, 3, 5, 5) * 2
    m(x).sum().backward()
    assert m.raw_beta.grad.shape == (3, 1, 1) and m.raw_threshold.grad.shape == (3, 1, 1)


@pytest.mark.parametrize("kind", ["lif", "alif", "synaptic", "rlif_1to1"])
def test_parameters_stay_in_range_under_large_lr(kind):
    m = make(kind).float()
    opt = torch.optim.Adam(m.parameters(), lr=1.0)
    x = torch.rand(4, 8, N) * 2
    for i in range(200):
        opt.zero_grad()
        m.set_record("h")
        out = m(x)
        sign = 1.0 if i < 100 else -1.0  # first push firing down, then up
        (sign * (out.mean() + 0.1 * m.recorded["h"].mean())).backward()
        opt.step()
    for name in ("beta", "rho", "alpha_syn"):
        if hasattr(type(m), name):
            v = getattr(m, name)
            assert torch.isfinite(v).all() and (v > 0).all() and (v <= 1).all(), name
    assert (m.threshold > 0).all() and torch.isfinite(m.threshold).all()
    if kind == "alif":
        assert (m.adaptation >= 0).all()
    assert all(torch.isfinite(p).all() for p in m.parameters())
    assert torch.isfinite(m(x)).all()


@pytest.mark.parametrize("kind", KINDS + ["li"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_dtypes(kind, dtype):
    m = make(kind, levels=2).float()  # float32 parameters, input of another dtype
    x = (torch.randn(5, 2, N) * 2).to(dtype).requires_grad_()
    out = m(x)
    assert out.dtype == dtype and out.shape == x.shape
    out.float().sum().backward()
    assert x.grad.dtype == dtype and torch.isfinite(x.grad).all()
    for n, p in m.named_parameters():
        assert p.grad is not None and p.grad.dtype == torch.float32 and torch.isfinite(p.grad).all(), n
    m2 = make(kind).to(dtype)  # the whole module in that dtype
    assert m2(x.detach()).dtype == dtype


@pytest.mark.parametrize("backend", ["auto", "torch", "numba"])
def test_autograd_graph_is_constant_size_in_time(backend):
    from surrogate_nets.functional.backends import list_backends

    if backend != "auto" and backend not in list_backends("lif"):
        pytest.skip(f"backend {backend!r} not registered")
    if backend == "numba":
        pytest.importorskip("numba")

    def n_nodes(T):
        x = torch.randn(T, 2, N, requires_grad=True)
        out = LIF(tau=2.0, learn_beta=True, backend=backend)(x)
        seen, stack = set(), [out.grad_fn]
        while stack:
            f = stack.pop()
            if f is None or f in seen:
                continue
            seen.add(f)
            stack.extend(nf for nf, _ in f.next_functions)
        return len(seen)

    assert n_nodes(4) == n_nodes(60) < 12  # (auto may pick numba from 4 steps on)


# ----------------------------------------------------------------------------------- bad input
def test_bad_input_errors():
    m = LIF()
    with pytest.raises(ValueError, match=r"x must have at least 2 dimensions, got shape \(5,\)"):
        m(torch.randn(5))
    with pytest.raises(ValueError, match=r"T >= 1 .* got shape \(0, 3, 4\)"):
        m(torch.randn(0, 3, 4))
    with pytest.raises(TypeError, match="x must have a floating dtype.*torch.int64"):
        m(torch.ones(3, 2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"state.v must have the shape of one input step \(2, 4\), got .*\(2, 5\)"):
        m(torch.randn(3, 2, 4), LIFState(torch.zeros(2, 5)))
    with pytest.raises(TypeError, match=r"state must be a LIFState\(v\)"):
        m(torch.randn(3, 2, 4), torch.zeros(2, 4))
    with pytest.raises(ValueError, match=r"x must have at least 1 dimensions"):
        m.step(torch.tensor(1.0))
    with pytest.raises(ValueError, match="threshold must be finite and > 0, got 0"):
        LIF(threshold=0)
    with pytest.raises(ValueError, match="threshold must be finite and > 0"):
        LIF(threshold=torch.tensor([1.0, -1.0]))
    with pytest.raises(ValueError, match=r"beta must lie in \(0.0, 1.0\], got 1.5"):
        LIF(beta=1.5)
    with pytest.raises(ValueError, match=r"beta must lie in \(0.0, 1.0\], got 0"):
        LIF(beta=0)
    with pytest.raises(ValueError, match=r"beta must lie in \(0, 1\]"):
        LIF(beta=torch.tensor([0.5, 1.2]))
    with pytest.raises(ValueError, match=r"beta must lie in \(0, 1\) when learnable"):
        LIF(beta=1.0, learn_beta=True)
    with pytest.raises(ValueError, match="tau must be finite and > 1.*got 1.0"):
        LIF(tau=1.0)
    with pytest.raises(ValueError, match="tau must be finite and > 1.*got 0.5"):
        LIF(tau=0.5)
    with pytest.raises(ValueError, match="give beta or tau, not both"):
        LIF(beta=0.5, tau=2.0)
    with pytest.raises(ValueError, match=r"reset must be one of \['subtract', 'zero', 'none'\], got 'soft'"):
        LIF(reset="soft")
    with pytest.raises(ValueError, match="levels must be >= 1, got 0"):
        LIF(levels=0)
    with pytest.raises(TypeError, match="levels must be an int"):
        LIF(levels=1.5)
    with pytest.raises(ValueError, match="unknown surrogate"):
        LIF(surrogate="nope")
    with pytest.raises(ValueError, match=r"(beta|threshold) of shape \(5,\) must broadcast to one input step"):
        LIF(num_neurons=5)(torch.randn(3, 2, 4))
    with pytest.raises(ValueError, match="num_neurons must be given"):
        RLIF()
    with pytest.raises(ValueError, match="needs inputs whose last dim is 4"):
        RLIF(num_neurons=4)(torch.randn(3, 2, 5))
    with pytest.raises(ValueError, match="connectivity must be one of"):
        RLIF(num_neurons=4, connectivity="sparse")
    with pytest.raises(ValueError, match="tau_adapt must be finite and > 1"):
        ALIF(tau_adapt=1.0)
    with pytest.raises(ValueError, match="adaptation must be finite and >= 0"):
        ALIF(adaptation=-0.1)
    with pytest.raises(ValueError, match=r"alpha_syn must lie in \(0.0, 1.0\]"):
        Synaptic(alpha_syn=2.0)
    with pytest.raises(ValueError, match="record entry must be one of"):
        LIF(record=("w",))
    with pytest.raises(ValueError, match="backend must be one of"):
        LIF(backend="cuda-magic")
    with pytest.raises(ValueError, match="contradicts num_neurons"):
        LIF(shape=(3,), num_neurons=4)


def test_isinstance_and_time_major_marker():
    for m in (IF(), LIF(), PLIF(), ALIF(), Synaptic(), RLIF(num_neurons=2), LI()):
        assert isinstance(m, BaseNeuron) and m.time_major


@pytest.mark.parametrize("kind", KINDS)
def test_pickle_round_trip_of_every_neuron(kind):
    import io
    import pickle

    m = make(kind)
    x = torch.randn(5, 2, N, dtype=torch.float64) * 2
    clone = pickle.loads(pickle.dumps(m))
    torch.testing.assert_close(clone(x), m(x))
    buf = io.BytesIO()
    torch.save(Sequential(m), buf)
    buf.seek(0)
    torch.testing.assert_close(torch.load(buf, weights_only=False)(x), m(x))


def test_assigning_a_fixed_parameter_is_range_checked():
    m = ALIF(num_neurons=3)
    with pytest.raises(ValueError, match=r"threshold.*> 0.*-1"):
        m.threshold = -1.0
    with pytest.raises(ValueError, match=r"beta must be in \(0, 1\], got 1\.5"):
        m.beta = 1.5
    with pytest.raises(ValueError, match=r"rho.*0\.0"):
        m.rho = torch.tensor([0.5, 0.0, 0.5])
    with pytest.raises(ValueError, match=r"adaptation.*>= 0"):
        m.adaptation = -0.1
    torch.testing.assert_close(m.threshold, torch.ones(3))  # unchanged by the failed assignments
    m.adaptation = 0.0  # a fixed adaptation may be 0
    m.beta = 1.0  # a fixed decay may be 1 (no leak)
    m.threshold = torch.tensor([0.5, 1.0, 2.0])
    torch.testing.assert_close(m.threshold, torch.tensor([0.5, 1.0, 2.0]))
