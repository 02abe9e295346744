"""The numba CPU lif_scan backend, held to backend="torch" and tests/reference.py."""

import warnings

import pytest
import torch

from saved import saved_tensors, storage_bytes

pytest.importorskip("numba", reason="numba is not installed (pip install surrogate-nets[fast])")

import lif_cases as C  # noqa: E402
from surrogate_nets import surrogate as S  # noqa: E402
from surrogate_nets.functional import lif_scan  # noqa: E402
from surrogate_nets.kernels import numba_lif  # noqa: E402
from surrogate_nets.surrogate.families import BUILTINS  # noqa: E402


def test_every_builtin_family_has_a_numba_form():
    assert set(BUILTINS) <= set(numba_lif.NUMBA_CODES)


@pytest.mark.parametrize("cls", BUILTINS, ids=lambda c: c.name)
def test_numba_form_equals_family(cls):
    import numpy as np

    code = numba_lif.NUMBA_CODES[cls]
    z = np.linspace(-3, 3, 241)
    a = np.full_like(z, 1.3)
    a[::2] = 4.0
    out_d, out_da = np.empty_like(z), np.empty_like(z)
    numba_lif._sur_vec_py(code, False, z, a, out_d, z.size)
    numba_lif._sur_vec_py(code, True, z, a, out_da, z.size)
    sur = cls()
    zt, at = torch.from_numpy(z), torch.from_numpy(a)
    torch.testing.assert_close(torch.from_numpy(out_d), sur.derivative(zt, at), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(torch.from_numpy(out_da), sur.d_alpha(zt, at), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("reset, detach, decay, levels", C.MODES)
def test_numba_every_mode_matches_torch(reset, detach, decay, levels):
    C.assert_same("numba", "atan", reset, detach, decay, levels)


@pytest.mark.parametrize("name", C.FAMILIES)
def test_numba_every_family_matches_torch(name):
    C.assert_same("numba", name, "subtract", False, False, 3)
    C.assert_same("numba", name, "zero", False, True, 1)


@pytest.mark.parametrize("reset, detach, decay, levels",
                         [("subtract", False, False, 1), ("zero", True, True, 3), ("none", False, True, 1)])
def test_numba_matches_reference(reset, detach, decay, levels):
    C.assert_matches_reference("numba", reset, detach, decay, levels)


def test_numba_float32_spikes_identical_to_torch():
    """float32 runs the same float32 operations as the torch backend (torch's addcmul may fuse
    the multiply-add, hence h to one rounding), so the spikes agree on this seeded input."""
    x = torch.randn(20, 8, 300) * 2
    r, e = lif_scan(x, beta=0.9, backend="numba"), lif_scan(x, beta=0.9, backend="torch")
    assert torch.equal(r.spikes, e.spikes)
    torch.testing.assert_close(r.h, e.h, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(r.v, e.v, rtol=1e-5, atol=1e-5)
    C.assert_same("numba", "fast_sigmoid", "subtract", False, True, 1, dtype=torch.float32)


def test_numba_threads_split_equals_single(monkeypatch):
    """Splitting the neurons over threads gives the same result as one call."""
    x = torch.randn(6, 4, 1000, dtype=torch.float64, requires_grad=True)
    outs = []
    for per_thread in (10 ** 9, 512):
        monkeypatch.setattr(numba_lif, "_MIN_PER_THREAD", per_thread)
        with torch.no_grad():
            pass
        prev = torch.get_num_threads()
        torch.set_num_threads(2)
        try:
            r = lif_scan(x, beta=0.8, backend="numba")
            g = torch.autograd.grad((r.spikes * 1.5).sum() + r.h.pow(2).sum(), x)[0]
        finally:
            torch.set_num_threads(prev)
        outs.append((r.spikes, r.h, g))
    for a, b in zip(*outs):
        assert torch.equal(a, b)


def test_numba_scalar_params_and_grad_scale():
    C.assert_same("numba", "sigmoid", "subtract", False, True, 1, per_neuron=False, grad_scale="auto")


def test_numba_user_family_falls_back_with_one_warning():
    class Cubic(S.Surrogate):
        name = "cubic_test_numba"

        def primitive(self, x, alpha):
            return torch.sigmoid(alpha * x) ** 3

    x = torch.randn(4, 2, 3, dtype=torch.float64, requires_grad=True)
    sur = Cubic(alpha=2.0)
    with pytest.warns(RuntimeWarning, match="no numba kernel form"):
        r = lif_scan(x, surrogate=sur, backend="numba")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lif_scan(x, surrogate=sur, backend="numba")
    assert torch.equal(r.spikes, lif_scan(x, surrogate=sur, backend="torch").spikes)


def test_numba_rejects_non_cpu():
    if not torch.cuda.is_available():
        pytest.skip("needs a second device type")
    with pytest.raises(ValueError, match="CPU"):
        lif_scan(torch.rand(2, 1, 3, device="cuda"), backend="numba")


def test_auto_uses_numba_only_for_large_layers(monkeypatch):
    from surrogate_nets import kernels

    calls = C.spy_backend(monkeypatch, "numba")
    monkeypatch.setattr(kernels, "NUMBA_MIN_NEURONS", 64)
    monkeypatch.setattr(kernels, "NUMBA_LARGE_MIN_STEPS", 3)
    monkeypatch.setattr(kernels, "NUMBA_MAX_SMALL_NEURONS", 8)
    monkeypatch.setattr(kernels, "NUMBA_MIN_STEPS", 4)
    small, large = torch.rand(3, 2, 8), torch.rand(3, 4, 16)
    lif_scan(small)
    assert calls == []
    r = lif_scan(large)
    assert calls == [1]
    assert torch.equal(r.spikes, lif_scan(large, backend="torch").spikes)
    lif_scan(large.double().requires_grad_(), relaxed=True)  # relaxed: torch only
    assert calls == [1]


def test_li_readout_runs_on_the_numba_scan():
    """The LI readout is the scan with threshold inf and no reset: same trace and gradients."""
    from surrogate_nets.neurons import LI

    x = torch.randn(5, 2, 6, dtype=torch.float64, requires_grad=True)
    outs = []
    for be in ("torch", "numba"):
        try:
            li = LI(tau=3.0, learn_beta=True, backend=be).double()
        except ValueError as e:  # a seam where LI has its own "li" op, without this kernel yet
            pytest.skip(f"LI does not dispatch to the lif kernels here: {e}")
        y = li(x)
        y = y[0] if isinstance(y, tuple) else y
        outs.append((y,) + torch.autograd.grad((y * torch.arange(6.0)).sum(), [x] + list(li.parameters())))
    for a, b in zip(*outs):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


def test_auto_uses_numba_for_small_layers_over_enough_steps(monkeypatch):
    from surrogate_nets import kernels

    calls = C.spy_backend(monkeypatch, "numba")
    monkeypatch.setattr(kernels, "NUMBA_MAX_SMALL_NEURONS", 16)
    monkeypatch.setattr(kernels, "NUMBA_MIN_STEPS", 4)
    lif_scan(torch.rand(3, 2, 8))  # too few steps
    lif_scan(torch.rand(5, 4, 8))  # 32 neurons: neither small nor large
    assert calls == []
    x = torch.rand(5, 2, 8)
    r = lif_scan(x)
    assert calls == [1]
    assert torch.equal(r.spikes, lif_scan(x, backend="torch").spikes)
    lif_scan(x.half())  # float16: torch only
    assert calls == [1]


def test_auto_takes_torch_quietly_for_a_user_family(monkeypatch):
    """A family without a kernel form: ``auto`` does not pick the kernels (no warning)."""
    from surrogate_nets import kernels

    class Cubic2(S.Surrogate):
        name = "cubic_test_numba_auto"

        def primitive(self, x, alpha):
            return torch.sigmoid(alpha * x) ** 3

    monkeypatch.setattr(kernels, "NUMBA_MAX_SMALL_NEURONS", 1 << 20)
    x = torch.randn(6, 2, 3, dtype=torch.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = lif_scan(x, surrogate=Cubic2(alpha=2.0))
    assert torch.equal(r.spikes, lif_scan(x, surrogate=Cubic2(alpha=2.0), backend="torch").spikes)


def test_default_auto_rule_covers_every_size_from_two_steps():
    """Measured (kernels/__init__.py): numba at least ties torch at every layer size from T = 2,
    including the old 16384-32768 gap; op li keeps its own (old) bounds."""
    from surrogate_nets import kernels

    for T, n, want in [(1, 512, False), (2, 512, True), (100, 16384, True), (100, 24576, True),
                       (2, 24576, True), (4, 262144, True)]:
        assert kernels._numba_auto_size(torch.empty(T, n)) is want, (T, n)
    assert kernels._numba_li_auto_size(torch.empty(100, 24576)) is False
    assert kernels._numba_li_auto_size(torch.empty(100, 512)) is True


def test_auto_keeps_slow_families_on_small_layers():
    """Families without a vectorised numba backward go to numba only for small layers."""
    from surrogate_nets import kernels
    from surrogate_nets.kernels import numba_lif_fast

    assert set(kernels._NUMBA_FAST_FAMILIES) == {c.__name__ for c in numba_lif_fast.FAST_CODES}
    big, small = torch.empty(10, kernels.NUMBA_SLOW_FAMILY_MAX_NEURONS + 1), torch.empty(10, 64)
    assert kernels._numba_lif_supports(big, surrogate=S.get("atan"))
    assert not kernels._numba_lif_supports(big, surrogate=S.get("dspike"))
    assert kernels._numba_lif_supports(small, surrogate=S.get("dspike"))
    assert kernels._numba_lif_supports(big, surrogate=S.get("gaussian"))


@pytest.mark.parametrize("save_dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("reset, detach, decay, levels",
                         [("subtract", False, False, 1), ("zero", False, True, 1), ("subtract", True, False, 2)])
def test_numba_save_dtype_equals_torch_low_mem(save_dtype, reset, detach, decay, levels, monkeypatch):
    """The narrow save on the numba kernels: the same distance to threshold as the torch
    low-memory scan, so forward equal and gradients equal up to the kernels' rounding."""
    from surrogate_nets.kernels import numba_lif as nl

    calls = []
    orig = nl.NumbaLIFScan.apply
    monkeypatch.setattr(nl.NumbaLIFScan, "apply", lambda *a: calls.append(a[-1]) or orig(*a))
    g = torch.Generator().manual_seed(1)
    x = (torch.randn(12, 3, 40, generator=g) * 1.3).requires_grad_()
    beta = torch.full((40,), 0.8, requires_grad=True)
    th = torch.tensor(1.0, requires_grad=True)
    w = torch.randn(12, 3, 40, generator=g)
    out = []
    for be in ("numba", "torch"):
        r = lif_scan(x, beta=beta, threshold=th, reset=reset, detach_reset=detach, decay_input=decay,
                     levels=levels, save_dtype=save_dtype, backend=be)
        out.append((r, torch.autograd.grad((r.spikes * w).sum() + r.v.sum(), [x, beta, th])))
    assert calls == [save_dtype]
    (r1, g1), (r2, g2) = out
    assert torch.equal(r1.spikes, r2.spikes)
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    full = lif_scan(x, beta=beta, threshold=th, reset=reset, detach_reset=detach,
                    decay_input=decay, levels=levels, backend="numba")
    gx_full = torch.autograd.grad((full.spikes * w).sum() + full.v.sum(), x)[0]
    assert 0 < float((g1[0] - gx_full).norm() / gx_full.norm()) < 1e-2  # the narrow copy is used


def test_numba_saves_the_minimum_and_auto_takes_it_for_save_dtype():
    x = torch.rand(50, 8, 64, requires_grad=True)
    full = storage_bytes(saved_tensors(lambda: lif_scan(x, beta=0.9, backend="numba"))[1])
    half = storage_bytes(saved_tensors(lambda: lif_scan(x, beta=0.9, save_dtype=torch.bfloat16))[1])
    assert full == x.numel() * 4  # h only: constant parameters are rebuilt, v0 not needed
    assert half == x.numel() * 2


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_numba_names_an_unsupported_dtype(dtype):
    """Review (h23): an explicit ``backend="numba"`` with a half input raised numba's bare
    ``NotImplementedError: float16`` / ``TypeError: Got unsupported ScalarType BFloat16``."""
    from surrogate_nets.functional.li import li_scan

    x = torch.randn(4, 2, 3).to(dtype)
    for run in (lambda: lif_scan(x, backend="numba"), lambda: li_scan(x, backend="numba"),
                lambda: lif_scan(x, backend="numba", save_dtype=torch.bfloat16)):
        with pytest.raises(TypeError, match="float32 or float64 x"):
            run()
    assert lif_scan(x).spikes.dtype == dtype  # auto keeps torch
