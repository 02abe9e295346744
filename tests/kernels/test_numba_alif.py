"""The numba ``alif`` backend (and the kernels of ``kernels/numba_alif.py`` it shares with
``synaptic``): every mode, family and parameter gradient against the torch backends.

``tests/functional/test_backends.py`` already holds both ops' numba backends to
``tests/reference.py`` on five modes; this file adds every mode with per-neuron alpha, scalar
parameters, finite differences, float32, the fallback, layouts and the ``auto`` policy.
"""

import itertools
import warnings

import pytest
import torch

pytest.importorskip("numba", reason="numba is not installed (pip install surrogate-nets[fast])")

import neuron_cases as C  # noqa: E402
from surrogate_nets import surrogate as S  # noqa: E402
from surrogate_nets.functional import alif_scan, backends as B, synaptic_scan  # noqa: E402
from surrogate_nets.surrogate.families import BUILTINS  # noqa: E402

MODES = list(itertools.product(["subtract", "zero", "none"], [False, True], [False, True], [1, 3]))
OPS = ["alif", "synaptic"]


@pytest.mark.parametrize("mode", MODES, ids=lambda m: "-".join(map(str, m)))
@pytest.mark.parametrize("op", OPS)
def test_every_mode_matches_autograd(op, mode):
    """Per-neuron parameters and per-neuron alpha, all learnable, vs per-step autograd (float64)."""
    C.assert_same(op, "numba", "autograd", mode)


@pytest.mark.parametrize("op", OPS)
def test_scalar_params_and_grad_scale_auto(op):
    C.assert_same(op, "numba", "torch", ("zero", False, True, 1), name="sigmoid",
                  per_neuron=False, grad_scale="auto")


@pytest.mark.parametrize("cls", BUILTINS, ids=lambda c: c.name)
def test_every_family_matches_torch(cls):
    C.assert_same("alif", "numba", "torch", ("subtract", False, False, 3), name=cls.name)
    C.assert_same("synaptic", "numba", "torch", ("zero", True, True, 1), name=cls.name)


@pytest.mark.parametrize("op", OPS)
def test_smooth_part_passes_gradcheck(op):
    """With ``reset="none"`` the membrane ``h`` (and the current) do not depend on the spikes, so
    their gradients for x, the states and the decays are the true ones: finite differences."""
    x, st, p = C.inputs(op, T=4, B=1, N=3)
    sur = S.ATan()
    names = list(st) + [k for k in p if k in ("beta", "alpha_syn")]
    fixed = {k: v.detach() for k, v in p.items() if k not in names}

    def f(x, *ts):
        kw = dict(zip(names, ts))
        st_ = {k: kw[k] for k in st}
        p_ = {k: kw.get(k, fixed.get(k)) for k in p}
        _, outs = C.scan(op, "numba", x, st_, p_, sur, "none", False, True, 1)
        return tuple(outs[1:3 if op == "alif" else 4])  # h, [i], v: not the spikes, not a

    assert torch.autograd.gradcheck(f, (x, *[{**st, **p}[k] for k in names]), eps=1e-6, atol=1e-7)


@pytest.mark.parametrize("op", OPS)
def test_float32_matches_torch(op):
    """float32 runs the torch backend's float32 operations: the same spikes on this seeded input,
    gradients to float32 rounding, and float32 gradients."""
    C.assert_same(op, "numba", "torch", ("subtract", False, False, 1), dtype=torch.float32,
                  tol=(2e-4, 2e-5))


@pytest.mark.parametrize("op", OPS)
def test_non_contiguous_input_and_expanded_gradients(op):
    """A transposed (non-contiguous) ``x`` and an ``out.sum()`` gradient (stride 0 over time)."""
    g = torch.Generator().manual_seed(3)
    base = (torch.randn(3, 7, 5, generator=g, dtype=torch.float64) + 0.8)
    res = []
    for be in ("numba", "torch"):
        x = base.detach().clone().requires_grad_()
        xt = x.permute(1, 0, 2)  # [T=7, B=3, N=5], not contiguous
        assert not xt.is_contiguous()
        beta = torch.full((5,), 0.8, dtype=torch.float64, requires_grad=True)
        r = (alif_scan(xt, beta=beta, backend=be) if op == "alif"
             else synaptic_scan(xt, beta=beta, backend=be))
        loss = r.spikes.sum() + r.h.sum() + r.v.sum()
        res.append((r.spikes, r.h, *torch.autograd.grad(loss, [x, beta])))
    for a, b in zip(*res):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("op", OPS)
def test_some_inputs_without_grad(op):
    """Only the threshold and alpha learn (x, states and decays are constants)."""
    res = []
    for be in ("numba", "torch"):
        x, st, p = C.inputs(op, levels=3)
        x.requires_grad_(False)
        for t in (*st.values(), *(v for k, v in p.items() if k != "threshold")):
            t.requires_grad_(False)
        sur = C.surrogate("triangle")
        _, outs = C.scan(op, be, x, st, p, sur, "subtract", False, True, 3)
        w = torch.linspace(-1, 2, outs[0].numel(), dtype=torch.float64).view(outs[0].shape)
        res.append(torch.autograd.grad((outs[0] * w).sum(), [p["threshold"], sur.raw_alpha]))
    for a, b in zip(*res):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    assert res[0][0].abs().sum() > 0


def test_threads_split_equals_single(monkeypatch):
    """Splitting the neurons over threads gives the same result as one call."""
    from surrogate_nets.kernels import numba_lif

    x = torch.randn(6, 4, 700, dtype=torch.float64, requires_grad=True)
    outs = []
    prev = torch.get_num_threads()
    for per_thread in (10 ** 9, 512):
        monkeypatch.setattr(numba_lif, "_MIN_PER_THREAD", per_thread)
        torch.set_num_threads(2)
        try:
            r = alif_scan(x + 0.5, beta=0.8, adaptation=0.3, backend="numba")
            g = torch.autograd.grad((r.spikes * 1.5).sum() + r.h.pow(2).sum(), x)[0]
        finally:
            torch.set_num_threads(prev)
        outs.append((r.spikes, r.h, r.a, g))
    for a, b in zip(*outs):
        assert torch.equal(a, b)


@pytest.mark.parametrize("op", OPS)
def test_user_family_falls_back_with_one_warning(op):
    class Cubic(S.Surrogate):
        name = f"cubic_test_numba_{op}"

        def primitive(self, x, alpha):
            return torch.sigmoid(alpha * x) ** 3

    fn = alif_scan if op == "alif" else synaptic_scan
    x = torch.randn(4, 2, 3, dtype=torch.float64) + 1.0
    sur = Cubic(alpha=2.0)
    with pytest.warns(RuntimeWarning, match="no numba kernel form"):
        r = fn(x, surrogate=sur, backend="numba")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fn(x, surrogate=sur, backend="numba")
        r2 = fn(x, surrogate=sur)  # auto: torch, quietly
    assert torch.equal(r.spikes, fn(x, surrogate=sur, backend="torch").spikes)
    assert torch.equal(r2.spikes, r.spikes)


@pytest.mark.parametrize("op", OPS)
def test_auto_policy(op, monkeypatch):
    """``auto`` takes numba on CPU float32/64 within the measured size bounds, else torch."""
    from surrogate_nets import kernels

    monkeypatch.setitem(kernels.NUMBA_NEURON_AUTO, op, (4, 16, 10))
    kernels.allow_triton_on_cpu(False)

    def picked(x, relaxed=False):
        kw = {k: torch.zeros(x.shape[1:], dtype=x.dtype) for k in C.STATES[op]}
        kw.update({k: torch.tensor(0.5, dtype=x.dtype) for k in C.PARAMS[op]})
        kw.update(x=x, alpha=torch.tensor(2.0, dtype=x.dtype), surrogate=S.ATan(), reset="subtract",
                  detach_reset=False, decay_input=False, levels=1, relaxed=relaxed)
        return B.get_backend(op, "auto", **kw) is B.get_backend(op, "numba")

    assert picked(torch.rand(4, 2, 8))  # small layer, enough steps
    assert not picked(torch.rand(3, 2, 8))  # too few steps
    assert not picked(torch.rand(9, 4, 8))  # 32 neurons over few steps
    assert picked(torch.rand(10, 4, 8, dtype=torch.float64))  # ... over many steps
    assert not picked(torch.rand(10, 2, 8).half())
    assert not picked(torch.rand(10, 2, 8), relaxed=True)


def test_alif_module_on_numba_equals_torch():
    """``ALIF`` with every parameter learnable (per neuron) on backend numba vs torch."""
    from surrogate_nets.neurons import ALIF

    x = torch.randn(8, 3, 6, dtype=torch.float64) * 1.5 + 0.7
    outs = C.module_outputs_and_grads(
        lambda be: ALIF(tau=4.0, tau_adapt=10.0, adaptation=0.3, learn_beta=True, learn_rho=True,
                        learn_adaptation=True, learn_threshold=True, num_neurons=6,
                        surrogate=S.Triangle(learnable=True), backend=be).double(), x)
    assert len(outs[0]) >= 6  # x and five learnable tensors
    for a, b in zip(*outs):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)
