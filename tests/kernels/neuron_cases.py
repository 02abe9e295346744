"""Shared cases for the numba ``alif`` / ``synaptic`` backends: run one op on one backend with
every parameter learnable, and compare two backends (forward exactly, every gradient)."""

import torch

from surrogate_nets import surrogate as S
from surrogate_nets.functional import alif_scan, synaptic_scan

# the learnable parameters of each op, in the order the scans take them
PARAMS = {"alif": ("beta", "rho", "threshold", "adaptation"),
          "synaptic": ("alpha_syn", "beta", "threshold")}
STATES = {"alif": ("v0", "a0"), "synaptic": ("i0", "v0")}
RANGES = {"beta": (0.3, 0.95), "rho": (0.5, 0.95), "threshold": (0.7, 1.3),
          "adaptation": (0.05, 0.4), "alpha_syn": (0.3, 0.9)}


def inputs(op, T=6, B=2, N=5, levels=1, dtype=torch.float64, per_neuron=True, seed=0):
    """``(x, states, params)``: leaf tensors (per-neuron ``[N]`` or scalar parameters)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(T, B, N, generator=g, dtype=torch.float64) * (1.5 if levels == 1 else 3.0) + 0.6
    st = {k: torch.rand(B, N, generator=g, dtype=torch.float64) - (0.5 if k != "a0" else 0.0)
          for k in STATES[op]}
    shape = (N,) if per_neuron else ()
    p = {k: torch.rand(shape, generator=g, dtype=torch.float64) * (RANGES[k][1] - RANGES[k][0])
         + RANGES[k][0] for k in PARAMS[op]}

    def leaf(t):
        return t.to(dtype).requires_grad_()

    return leaf(x), {k: leaf(v) for k, v in st.items()}, {k: leaf(v) for k, v in p.items()}


def surrogate(name="atan", dtype=torch.float64, per_neuron_alpha=None, grad_scale=None):
    """A learnable surrogate of family ``name`` (alpha per neuron when ``per_neuron_alpha=N``)."""
    cls = S.get(name).__class__
    a0 = cls.default_alpha
    alpha = a0 if per_neuron_alpha is None else torch.linspace(0.7 * a0, 1.3 * a0, per_neuron_alpha)
    return cls(alpha=alpha, learnable=True, grad_scale=grad_scale).to(dtype=dtype)


def scan(op, backend, x, st, p, sur, reset="subtract", detach=False, decay=False, levels=1):
    """The op's result tuple and its tensors in a fixed order (spikes, h, [i], v, [a])."""
    kw = dict(surrogate=sur, reset=reset, detach_reset=detach, decay_input=decay, levels=levels,
              backend=backend)
    if op == "alif":
        r = alif_scan(x, st["v0"], st["a0"], **p, **kw)
        return r, [r.spikes, r.h, r.v, r.a]
    r = synaptic_scan(x, st["i0"], st["v0"], **p, **kw)
    return r, [r.spikes, r.h, r.i, r.v]


def grads(op, backend, x, st, p, sur, mode, weights=None, seed=1):
    """Outputs and the gradients of ``[x, *states, *params, *surrogate params]`` of a random
    weighted sum of every output (the same weights for the same seed)."""
    _, outs = scan(op, backend, x, st, p, sur, *mode)
    if weights is None:
        g = torch.Generator().manual_seed(seed)
        weights = [torch.randn(o.shape, generator=g, dtype=torch.float64).to(o.dtype) for o in outs]
    loss = sum((o * w).sum() for o, w in zip(outs, weights))
    wrt = [x, *st.values(), *p.values(), *sur.parameters()]
    return outs, torch.autograd.grad(loss, wrt), weights


def clone_case(x, st, p):
    """Fresh leaf copies of a case's tensors (the same values)."""
    def c(t):
        return t.detach().clone().requires_grad_()

    return c(x), {k: c(v) for k, v in st.items()}, {k: c(v) for k, v in p.items()}


def assert_same(op, backend, ref_backend="autograd", mode=("subtract", False, False, 1),
                name="atan", dtype=torch.float64, per_neuron=True, grad_scale=None,
                tol=(1e-10, 1e-10)):
    """``backend`` equals ``ref_backend``: spikes exactly, the rest and every gradient to ``tol``;
    ``mode = (reset, detach_reset, decay_input, levels)``."""
    levels = mode[3]
    x, st, p = inputs(op, levels=levels, dtype=dtype, per_neuron=per_neuron)
    surs = [surrogate(name, dtype, x.shape[-1] if per_neuron else None, grad_scale)
            for _ in range(2)]
    case2 = clone_case(x, st, p)
    out, g, w = grads(op, backend, x, st, p, surs[0], mode)
    eout, eg, _ = grads(op, ref_backend, *case2, surs[1], mode, w)
    assert torch.equal(out[0], eout[0]), f"{op}/{backend}: spikes differ"
    for a, b in zip(out[1:], eout[1:]):
        torch.testing.assert_close(a, b, rtol=tol[0], atol=tol[1])
    names = ["x", *st, *p, "alpha"]
    for nm, a, b in zip(names, g, eg):
        assert a.shape == b.shape and a.dtype == b.dtype, nm
        torch.testing.assert_close(a, b, rtol=tol[0], atol=tol[1],
                                   msg=lambda m: f"{op} grad {nm}: {m}")
    assert bool(g[0].abs().sum() > 0), "degenerate case: zero input gradient"


def module_outputs_and_grads(make, x, backends=("numba", "torch")):
    """For each backend: ``(output, dL/dx, dL/dparameter...)`` of the module ``make(backend)``
    (built after ``torch.manual_seed(0)``) on a copy of ``x``, with ``L = sum(out * arange(N))``
    (``out``: the first output when the module returns a tuple)."""
    results = []
    for be in backends:
        torch.manual_seed(0)
        m = make(be)
        xx = x.clone().requires_grad_()
        out = m(xx)
        out = out[0] if isinstance(out, tuple) else out
        w = torch.arange(float(out.shape[-1]), dtype=out.dtype)
        g = torch.autograd.grad((out * w).sum(), [xx] + list(m.parameters()))
        results.append((out,) + g)
    return results
