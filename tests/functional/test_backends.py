"""The backend seam: registry behaviour, and EVERY registered backend of EVERY op held to
``tests/reference.py`` (forward, final state, all gradients incl. parameters and alpha).

A backend registered by another module (a compiled CPU loop, a Triton kernel) is picked up
automatically: the cases are built from ``list_backends(op)`` at collection time. A backend whose
``supports(**kw)`` declines a case is skipped for that case only.

The fused kernels of :mod:`surrogate_nets.kernels` are opted in here: numba's ``auto`` size
threshold is lowered to 0 (the cases are tiny) and, without CUDA, the Triton kernels run on CPU
tensors through Triton's interpreter (``TRITON_INTERPRET=1`` is set before triton is imported).
"""

import importlib.util
import math
import os

import pytest
import torch

if not torch.cuda.is_available() and importlib.util.find_spec("triton") is not None:
    os.environ.setdefault("TRITON_INTERPRET", "1")

import reference as ref
from surrogate_nets import surrogate as S
from surrogate_nets.functional import backends as B

f64 = torch.float64
T, BATCH, N = 5, 2, 3
SPIKING = [("subtract", False, False, 1), ("zero", False, True, 3), ("subtract", True, False, 3),
           ("none", False, False, 1), ("zero", True, False, 1)]


def _t(*shape, lo=-1.0, hi=1.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(*shape, generator=g, dtype=f64) * (hi - lo) + lo).requires_grad_()


def _spiking_case(op, reset, detach, decay, levels):
    sur = S.ATan()
    x = _t(T, BATCH, N, lo=-1.0, hi=3.0 if levels == 1 else 5.0, seed=1)
    p = {"beta": _t(N, lo=0.3, hi=0.95, seed=2), "threshold": _t(N, lo=0.7, hi=1.3, seed=3)}
    st = {"v": _t(BATCH, N, lo=-0.5, hi=0.5, seed=4)}
    if op == "alif":
        p.update(rho=_t(N, lo=0.5, hi=0.95, seed=5), adaptation=_t(N, lo=0.05, hi=0.4, seed=6))
        st["a"] = _t(BATCH, N, lo=0.0, hi=1.0, seed=7)
    if op == "synaptic":
        p["alpha_syn"] = _t(N, lo=0.3, hi=0.9, seed=8)
        st["i"] = _t(BATCH, N, lo=-0.5, hi=0.5, seed=9)
    alpha = torch.tensor(2.0, dtype=f64, requires_grad=True)
    kw = dict(x=x, alpha=alpha, surrogate=sur, reset=reset, detach_reset=detach, decay_input=decay,
              levels=levels, relaxed=False, **p)
    kw.update({f + "0": t for f, t in st.items()})
    wrt = [x, alpha, *st.values(), *p.values()]
    names = ["x", "alpha", *(f + "0" for f in st), *p]
    return kw, wrt, names, (p, st, ref.WithAlpha(sur, alpha), reset, detach, levels, decay)


def _spiking_outputs(op, res, x, case):
    """(backend tensors, reference tensors) in matching order: spikes, h, [i], final v, [a]."""
    p, st, sur, reset, detach, levels, decay = case
    out, fin, tr = ref.run(op, x, p, sur, reset, detach, levels, decay, st)
    got = [res.spikes, res.h, res.v]
    exp = [out, tr["h"], fin["v"]]
    if op == "alif":
        got.append(res.a)
        exp.append(fin["a"])
    if op == "synaptic":
        got.append(res.i)
        exp.append(tr["i"])
    return got, exp


def _li_case(decay):
    x = _t(T, BATCH, N, seed=1)
    v0 = _t(BATCH, N, seed=2)
    beta = _t(N, lo=0.3, hi=0.95, seed=3)
    kw = dict(x=x, v0=v0, beta=beta, decay_input=decay)
    return kw, [x, v0, beta], ["x", "v0", "beta"], decay


def _fq_case(sur_name, signed):
    sur = S.get(sur_name, learnable=sur_name != "straight_through").double()
    lo, hi = (-4, 3) if signed else (0, 7)
    x = _t(4, 6, lo=-2.5 if signed else -0.5, hi=2.5, seed=1)
    step = _t(6, lo=0.3, hi=0.6, seed=2)
    offset = _t(6, lo=-0.1, hi=0.1, seed=3)
    alpha = sur.alpha
    from surrogate_nets.functional.staircase import is_unit_boxcar

    kw = dict(x=x, step=step, offset=offset, alpha=alpha, surrogate=sur, lo=lo, hi=hi, binary=False,
              pact=False, fast=is_unit_boxcar(sur), grad_scale=1.0)
    wrt = [x, step, offset] + ([sur.raw_alpha] if sur.learnable else [])
    return kw, wrt, ["x", "step", "offset", "alpha"][:len(wrt)], (sur, lo, hi)


def _cases():
    for op in ("lif", "alif", "synaptic"):
        for name in B.list_backends(op):
            for cfg in SPIKING:
                yield pytest.param(op, name, cfg, id=f"{op}-{name}-{'-'.join(map(str, cfg))}")
    for name in B.list_backends("li"):
        for decay in (False, True):
            yield pytest.param("li", name, decay, id=f"li-{name}-decay{decay}")
    for name in B.list_backends("fake_quant"):
        for sur in ("straight_through", "atan", "triangle"):
            for signed in (False, True):
                yield pytest.param("fake_quant", name, (sur, signed), id=f"fake_quant-{name}-{sur}-{signed}")


@pytest.fixture(autouse=True)
def _opt_in_kernels(monkeypatch):
    """Let the fused kernels accept the tiny cases (and Triton run under its interpreter)."""
    from surrogate_nets import kernels

    monkeypatch.setattr(kernels, "NUMBA_MIN_NEURONS", 0)
    monkeypatch.setattr(kernels, "NUMBA_LARGE_MIN_STEPS", 0)
    monkeypatch.setattr(kernels, "NUMBA_LI_MIN_NEURONS", 0)
    monkeypatch.setattr(kernels, "NUMBA_LI_LARGE_MIN_STEPS", 0)
    old = kernels._STATE["triton_cpu"]
    kernels.allow_triton_on_cpu(kernels.triton_interpreting())
    yield kernels
    kernels.allow_triton_on_cpu(old)


def _kernel_backends():
    from surrogate_nets import kernels

    out = []
    for op in B.OPS:
        for name, avail in (("triton", kernels.triton_available()), ("numba", kernels.numba_available())):
            if name in B.list_backends(op) and avail:
                out.append(pytest.param(op, name, id=f"{op}-{name}"))
    return out


@pytest.mark.parametrize("op, name", _kernel_backends())
def test_auto_picks_the_registered_kernel(op, name, _opt_in_kernels):
    """``backend="auto"`` resolves to the kernel when its ``supports`` accepts the call."""
    kernels = _opt_in_kernels
    if name == "triton" and not (torch.cuda.is_available() or kernels.triton_interpreting()):
        pytest.skip("triton runs on CPU tensors only under TRITON_INTERPRET=1")
    if name == "numba":
        kernels.allow_triton_on_cpu(False)  # else triton (registered first) wins on CPU
    kw = {"li": lambda: _li_case(False)[0], "fake_quant": lambda: _fq_case("atan", True)[0]}.get(
        op, lambda: _spiking_case(op, *SPIKING[0])[0])()
    assert B.get_backend(op, "auto", **kw) is B.get_backend(op, name), f"{op}: auto did not pick {name}"


def _compare(got, exp, wrt, names, what):
    for i, (a, b) in enumerate(zip(got, exp)):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10, msg=lambda m: f"{what} output {i}: {m}")
    ws = [torch.randn_like(e) for e in exp]
    g = torch.autograd.grad(sum((a * w).sum() for a, w in zip(got, ws)), wrt, allow_unused=True)
    ge = torch.autograd.grad(sum((b * w).sum() for b, w in zip(exp, ws)), wrt, allow_unused=True)
    for name, a, b in zip(names, g, ge):
        if b is None:
            assert a is None or torch.count_nonzero(a) == 0, f"{what} grad {name}"
            continue
        assert a is not None, f"{what}: no gradient for {name}"
        torch.testing.assert_close(a, b, rtol=1e-7, atol=1e-9, msg=lambda m: f"{what} grad {name}: {m}")


@pytest.mark.parametrize("op, name, cfg", list(_cases()))
def test_every_backend_meets_the_reference(op, name, cfg):
    torch.manual_seed(0)
    if op in ("lif", "alif", "synaptic"):
        kw, wrt, names, case = _spiking_case(op, *cfg)
    elif op == "li":
        kw, wrt, names, case = _li_case(cfg)
    else:
        kw, wrt, names, case = _fq_case(*cfg)
    if not B.backend_supports(op, name, **kw):
        pytest.skip(f"backend {name!r} of {op!r} declines this case (supports() is False)")
    res = B.dispatch(op, name, **kw)
    if op in ("lif", "alif", "synaptic"):
        got, exp = _spiking_outputs(op, res, kw["x"], case)
    elif op == "li":
        _, fin, tr = ref.run("li", kw["x"], {"beta": kw["beta"]}, decay_input=case, state={"v": kw["v0"]})
        got, exp = [res], [tr["v"]]
    else:
        sur, lo, hi = case
        got, exp = [res], [ref.fake_quant(kw["x"], kw["step"], kw["offset"], sur, lo, hi)]
    _compare(got, exp, wrt, names, f"{op}/{name}")


def _scale_cases():
    for op in ("lif", "alif", "synaptic"):
        for name in B.list_backends(op):
            yield pytest.param(op, name, id=f"{op}-{name}")


@pytest.mark.parametrize("op, name", list(_scale_cases()))
@pytest.mark.parametrize("alpha_shape", [(), (N,)], ids=["scalar", "per-neuron"])
def test_every_backend_scales_alpha_grad_auto_over_the_whole_sequence(op, name, alpha_shape):
    """grad_scale='auto' is 1/sqrt(T*B*N / numel(alpha)) on every backend (one meaning, issue 10.9)."""
    grads = []
    for scale in ("auto", None):
        kw, _, _, _ = _spiking_case(op, "subtract", False, False, 1)
        alpha = torch.full(alpha_shape, 2.0, dtype=f64, requires_grad=True)
        kw.update(alpha=alpha, surrogate=S.ATan(grad_scale=scale))
        if not B.backend_supports(op, name, **kw):
            pytest.skip(f"backend {name!r} of {op!r} declines this case")
        res = B.dispatch(op, name, **kw)
        (res.spikes * torch.linspace(-1, 1, res.spikes.numel(), dtype=f64).reshape(res.spikes.shape)).sum().backward()
        grads.append(alpha.grad)
    assert torch.count_nonzero(grads[1]) > 0
    n = T * BATCH * N // max(1, math.prod(alpha_shape))
    torch.testing.assert_close(grads[0], grads[1] / math.sqrt(n), rtol=1e-12, atol=0)


def test_every_op_has_the_torch_reference():
    for op in B.OPS:
        assert "torch" in B.list_backends(op)


def test_register_dispatch_priority_and_unregister(_opt_in_kernels, monkeypatch):
    monkeypatch.setattr(_opt_in_kernels, "NUMBA_MIN_NEURONS", 1 << 60)  # kernels out of the way
    monkeypatch.setattr(_opt_in_kernels, "NUMBA_MAX_SMALL_NEURONS", -1)
    monkeypatch.setattr(_opt_in_kernels, "NUMBA_LI_MIN_NEURONS", 1 << 60)
    monkeypatch.setattr(_opt_in_kernels, "NUMBA_LI_MAX_SMALL_NEURONS", -1)
    _opt_in_kernels.allow_triton_on_cpu(False)
    calls = []

    def make(tag):
        def fn(**kw):
            calls.append(tag)
            return B.dispatch("li", "torch", **kw)
        return fn

    x = torch.randn(3, 2, 2, dtype=f64)
    kw = dict(x=x, v0=torch.zeros(2, 2, dtype=f64), beta=torch.tensor(0.5, dtype=f64), decay_input=False)
    B.register_backend("li", "low", make("low"), priority=0)
    B.register_backend("li", "high", make("high"), priority=5, supports=lambda **k: k["x"].shape[0] > 3)
    try:
        assert {"low", "high"} <= set(B.list_backends("li"))
        B.dispatch("li", "auto", **kw)  # high declines T = 3
        B.dispatch("li", "auto", **dict(kw, x=torch.randn(4, 2, 2, dtype=f64)))
        B.dispatch("li", "low", **kw)
        assert calls == ["low", "high", "low"]
    finally:
        B.unregister_backend("li", "low")
        B.unregister_backend("li", "high")
    assert "low" not in B.list_backends("li")
    calls.clear()
    B.dispatch("li", "auto", **kw)
    assert calls == []


@pytest.mark.parametrize("call, exc, msg", [
    (lambda: B.register_backend("nope", "x", lambda **k: None), ValueError, "op must be one of"),
    (lambda: B.register_backend("lif", "auto", lambda **k: None), TypeError, "name"),
    (lambda: B.register_backend("lif", "x", 3), TypeError, "fn must be callable"),
    (lambda: B.register_backend("lif", "x", lambda **k: None, priority=1.5), TypeError, "priority"),
    (lambda: B.unregister_backend("lif", "torch"), ValueError, "cannot be unregistered"),
    (lambda: B.unregister_backend("lif", "missing"), ValueError, "no backend 'missing'"),
    (lambda: B.dispatch("alif", "missing"), ValueError, "backend must be one of"),
])
def test_registry_bad_input(call, exc, msg):
    with pytest.raises(exc, match=msg):
        call()
