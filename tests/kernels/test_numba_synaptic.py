"""The fused numba ``synaptic`` backend: one kernel for current and membrane (no LI scan), the
current's own gradients (``i`` output, ``i0``, ``alpha_syn``), and the ``Synaptic`` module on it.

Every mode, family, float32, layouts and the fallback are in ``test_numba_alif.py`` (both ops run
the kernels of ``kernels/numba_alif.py``).
"""

import pytest
import torch

pytest.importorskip("numba", reason="numba is not installed (pip install surrogate-nets[fast])")

import neuron_cases as C  # noqa: E402
from surrogate_nets import surrogate as S  # noqa: E402
from surrogate_nets.functional import backends as B, synaptic_scan  # noqa: E402


def test_fused_kernel_runs_no_li_or_lif_scan(monkeypatch):
    """The numba backend is one fused kernel, not the LI + LIF composition of the seam; its
    forward is bit-identical to that composition on the numba kernels (same float operations,
    float32 and float64), and equal to the torch backend to rounding (torch's addcmul may fuse
    the multiply-add)."""
    from surrogate_nets import kernels

    composed = kernels._synaptic_via("numba")
    for dt, reset, levels in ((torch.float64, "subtract", 1), (torch.float32, "subtract", 1),
                              (torch.float32, "zero", 3), (torch.float32, "none", 1)):
        g = torch.Generator().manual_seed(5)
        x = torch.randn(30, 4, 50, generator=g, dtype=dt) * 1.5 + 0.8
        kw = dict(x=x, i0=torch.zeros(4, 50, dtype=dt), v0=torch.rand(4, 50, generator=g, dtype=dt),
                  alpha_syn=torch.rand(50, generator=g, dtype=dt) * 0.5 + 0.3,
                  beta=torch.tensor(0.8, dtype=dt), threshold=torch.tensor(1.2, dtype=dt),
                  alpha=torch.tensor(2.0, dtype=dt), surrogate=S.ATan(), reset=reset,
                  detach_reset=False, decay_input=True, levels=levels, relaxed=False)
        exp = composed(**kw)
        with monkeypatch.context() as mp:
            def boom(**kw):
                raise AssertionError("the fused synaptic kernel must not dispatch li / lif")

            mp.setitem(B._REGISTRY["li"], "numba", boom)
            mp.setitem(B._REGISTRY["lif"], "numba", boom)
            got = B.dispatch("synaptic", "numba", **kw)
        for a, b in zip(got, exp):
            assert torch.equal(a, b)
        ref = B.dispatch("synaptic", "torch", **kw)
        assert torch.equal(got.spikes, ref.spikes)
        for a, b in zip(got[1:], ref[1:]):
            torch.testing.assert_close(a, b)


@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_current_output_passes_gradcheck(reset):
    """The current ``I`` does not depend on the spikes: its gradients for x, i0 and alpha_syn
    are the true ones (finite differences), whatever the reset."""
    x, st, p = C.inputs("synaptic", T=5, B=1, N=3)
    sur = S.ATan()

    def f(x, i0, asyn):
        return synaptic_scan(x, i0, st["v0"].detach(), asyn, p["beta"].detach(),
                             p["threshold"].detach(), surrogate=sur, reset=reset,
                             backend="numba").i

    assert torch.autograd.gradcheck(f, (x, st["i0"], p["alpha_syn"]), eps=1e-6, atol=1e-7)


@pytest.mark.parametrize("decay", [False, True])
def test_current_and_membrane_gradients_add(decay):
    """Gradients reaching ``I_t`` from the ``i`` output and from the membrane add up (vs torch)."""
    res = []
    for be in ("numba", "torch"):
        x, st, p = C.inputs("synaptic", levels=3)
        sur = C.surrogate("gaussian")
        r, outs = C.scan("synaptic", be, x, st, p, sur, "subtract", False, decay, 3)
        w = torch.cos(torch.arange(r.i.numel(), dtype=torch.float64)).view(r.i.shape)
        loss = (r.i * w).sum() + (r.spikes * w.flip(0)).sum()
        res.append(torch.autograd.grad(loss, [x, st["i0"], p["alpha_syn"], p["beta"],
                                              sur.raw_alpha]))
    for a, b in zip(*res):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


def test_synaptic_module_on_numba_equals_torch():
    from surrogate_nets.neurons import Synaptic

    x = torch.randn(8, 3, 6, dtype=torch.float64) + 0.7
    outs = C.module_outputs_and_grads(
        lambda be: Synaptic(tau_syn=3.0, tau=4.0, learn_alpha_syn=True, learn_beta=True,
                            learn_threshold=True, surrogate=S.FastSigmoid(learnable=True),
                            backend=be).double(), x)
    for a, b in zip(*outs):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)
