"""Shared cases for the fused lif_scan backends: every mode and family vs backend="torch" and the reference."""

import itertools

import torch

import reference as ref
from surrogate_nets import surrogate as S
from surrogate_nets.functional import lif_scan
from surrogate_nets.surrogate.families import BUILTINS

MODES = list(itertools.product(["subtract", "zero", "none"], [False, True], [False, True], [1, 3]))
FAMILIES = [cls.name for cls in BUILTINS]


def inputs(levels=1, T=5, B=2, N=7, dtype=torch.float64, device="cpu", seed=0, per_neuron=True):
    """``x, v0, beta, threshold`` (leaf tensors; per-neuron beta/threshold when asked)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(T, B, N, generator=g, dtype=torch.float64) * (1.5 if levels == 1 else 3.0) + 0.5
    v0 = torch.randn(B, N, generator=g, dtype=torch.float64) * 0.5
    shape = (N,) if per_neuron else ()
    beta = torch.rand(shape, generator=g, dtype=torch.float64) * 0.8 + 0.1
    th = torch.rand(shape, generator=g, dtype=torch.float64) * 0.6 + 0.7
    out = [x.to(dtype), v0.to(dtype), beta.to(dtype), th.to(dtype)]
    return [t.to(device).requires_grad_() for t in out]


def surrogate(name, dtype=torch.float64, device="cpu", per_neuron_alpha=None, grad_scale=None):
    """A learnable surrogate of family ``name`` (alpha per neuron when ``per_neuron_alpha=N``)."""
    cls = S.get(name).__class__
    a0 = cls.default_alpha
    alpha = a0 if per_neuron_alpha is None else torch.linspace(0.7 * a0, 1.3 * a0, per_neuron_alpha)
    return cls(alpha=alpha, learnable=True, grad_scale=grad_scale).to(device=device, dtype=dtype)


def run(backend, x, v0, beta, th, sur, reset="subtract", detach=False, decay=False, levels=1,
        weights=None):
    """Outputs and the gradients of every input of a weighted loss of all three outputs."""
    r = lif_scan(x, v0, beta, th, None, sur, reset, detach, decay, levels, backend=backend)
    if weights is None:
        g = torch.Generator().manual_seed(1)
        weights = (torch.randn(r.spikes.shape, generator=g).to(x),
                   torch.randn(r.spikes.shape, generator=g).to(x),
                   torch.randn(r.v.shape, generator=g).to(x))
    w1, w2, w3 = weights
    loss = (r.spikes * w1).sum() + (r.h * w2).sum() + (r.v * w3).sum()
    params = [p for p in sur.parameters()]
    grads = torch.autograd.grad(loss, [x, v0, beta, th] + params)
    return (r.spikes, r.h, r.v), grads, weights


NAMES = ["x", "v0", "beta", "threshold", "raw_alpha"]


def assert_same(backend, name="atan", reset="subtract", detach=False, decay=False, levels=1,
                dtype=torch.float64, device="cpu", per_neuron=True, grad_scale=None, tol=None):
    """``backend`` equals ``backend="torch"`` (forward exactly, every gradient to rounding)."""
    N = 7
    x, v0, beta, th = inputs(levels, N=N, dtype=dtype, device=device, per_neuron=per_neuron)
    sur = surrogate(name, dtype, device, N if per_neuron else None, grad_scale)
    out, grads, w = run(backend, x, v0, beta, th, sur, reset, detach, decay, levels)
    # the reference: the torch backend on the same inputs, in float32 for half inputs (the
    # kernels compute half inputs in float32 registers)
    rdt = torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype
    xs = [t.detach().to(rdt).requires_grad_() for t in (x, v0, beta, th)]
    sur_r = surrogate(name, rdt, device, N if per_neuron else None, grad_scale)
    with torch.no_grad():
        sur_r.raw_alpha.copy_(sur.raw_alpha.to(rdt))
    eout, egrads, _ = run("torch", *xs, sur_r, reset, detach, decay, levels, [t.to(rdt) for t in w])
    eout = [t.double() for t in eout]
    egrads = [t.double() for t in egrads]
    rtol, atol = tol or ((1e-10, 1e-10) if dtype == torch.float64 else (1e-4, 1e-4))
    assert torch.equal(out[0].double(), eout[0]), f"spikes differ ({backend}, {name})"
    hv_tol = (rtol, atol) if rdt == dtype else (1e-2, 1e-2)  # h, v stored in half precision
    torch.testing.assert_close(out[1].double(), eout[1], rtol=hv_tol[0], atol=hv_tol[1])
    torch.testing.assert_close(out[2].double(), eout[2], rtol=hv_tol[0], atol=hv_tol[1])
    for nm, a, b in zip(NAMES, grads, egrads):
        assert a.dtype == {"x": x, "v0": v0, "beta": beta, "threshold": th}.get(nm, a).dtype
        torch.testing.assert_close(a.double(), b, rtol=rtol, atol=atol,
                                   msg=lambda m: f"{backend} {name} grad {nm}: {m}")
        if nm == "x":
            assert bool(b.abs().sum() > 0), "degenerate case: zero gradient"


def assert_matches_reference(backend, reset, detach, decay, levels, device="cpu"):
    """``backend`` equals the per-step autograd loop of tests/reference.py (float64)."""
    x, v0, beta, th = inputs(levels, device=device)
    alpha = torch.tensor(2.0, dtype=torch.float64, device=device, requires_grad=True)

    class A(S.ATan):
        @property
        def alpha(self):
            return alpha

    r = lif_scan(x, v0, beta, th, alpha, S.ATan(), reset, detach, decay, levels, backend=backend)
    exp, fin, tr = ref.run("lif", x, {"beta": beta, "threshold": th}, A(), reset, detach, levels,
                           decay, {"v": v0})
    assert torch.equal(r.spikes, exp)
    torch.testing.assert_close(r.h, tr["h"], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(r.v, fin["v"], rtol=1e-12, atol=1e-12)
    w1, w2 = torch.randn_like(exp), torch.randn_like(exp)
    wrt = (x, v0, beta, th, alpha)
    g = torch.autograd.grad((r.spikes * w1).sum() + (r.h * w2).sum() + r.v.sum(), wrt)
    ge = torch.autograd.grad((exp * w1).sum() + (tr["h"] * w2).sum() + fin["v"].sum(), wrt)
    for nm, a, b in zip(NAMES, g, ge):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9, msg=lambda m: f"{nm}: {m}")


def backend_table():
    """The dict ``{name: fn}`` of lif_scan backends (the seam's registry, wherever it lives)."""
    try:
        from surrogate_nets.functional import backends

        return backends._REGISTRY["lif"]
    except ImportError:
        from surrogate_nets.functional import lif as lif_mod

        return lif_mod._BACKENDS


def spy_backend(monkeypatch, name):
    """Wrap lif_scan backend ``name`` so every call appends ``1`` to the returned list."""
    calls = []
    table = backend_table()
    orig = table[name]
    monkeypatch.setitem(table, name, lambda **kw: calls.append(1) or orig(**kw))
    return calls
