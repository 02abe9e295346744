"""The recycled CPU buffers of the numba kernels (kernels/cpu_pool.py): a buffer goes back to the
pool only when no tensor, view or numpy array uses it any more, and is never handed out twice."""

import gc

import pytest
import torch

from surrogate_nets.kernels import cpu_pool

BIG = (64, 1 << 13)  # 2 MiB of float32: above MIN_BYTES


@pytest.fixture(autouse=True)
def _fresh_pool():
    prev = cpu_pool._STATE["enabled"]
    cpu_pool.set_enabled(True)
    cpu_pool.empty_cache()
    yield
    cpu_pool.empty_cache()
    cpu_pool.set_enabled(prev)


def test_shape_dtype_and_writable():
    for dt in (torch.float32, torch.float64):
        t = cpu_pool.empty(BIG, dt)
        assert t.shape == BIG and t.dtype == dt and t.is_contiguous()
        t.fill_(3.0)
        assert float(t.sum()) == 3.0 * t.numel()


def test_small_requests_are_plain_torch_tensors():
    t = cpu_pool.empty((10, 10), torch.float32)
    del t
    gc.collect()
    assert cpu_pool.cached_bytes() == 0


def test_buffer_returns_only_after_the_last_user_and_is_reused():
    t = cpu_pool.empty(BIG, torch.float32)
    ptr = t.data_ptr()
    row = t[3]          # a view shares the storage
    arr = t.numpy()     # so does a numpy array of it
    del t
    gc.collect()
    assert cpu_pool.cached_bytes() == 0
    other = cpu_pool.empty(BIG, torch.float32)   # the buffer is still used: a new one
    assert other.data_ptr() != ptr
    del row
    gc.collect()
    assert cpu_pool.cached_bytes() == 0
    del arr
    gc.collect()
    assert cpu_pool.cached_bytes() >= 2 << 20
    again = cpu_pool.empty(BIG, torch.float32)
    assert again.data_ptr() == ptr and cpu_pool.cached_bytes() == 0


def test_live_tensors_never_share_memory():
    ts = [cpu_pool.empty(BIG, torch.float32) for _ in range(4)]
    for i, t in enumerate(ts):
        t.fill_(float(i))
    assert [float(t[0, 0]) for t in ts] == [0.0, 1.0, 2.0, 3.0]
    assert len({t.data_ptr() for t in ts}) == 4


def test_cache_cap_and_release(monkeypatch):
    monkeypatch.setattr(cpu_pool, "MAX_CACHED_BYTES", 3 << 20)
    a, b = cpu_pool.empty(BIG, torch.float32), cpu_pool.empty(BIG, torch.float32)
    del a, b
    gc.collect()
    assert cpu_pool.cached_bytes() == 2 << 20  # the second did not fit under the cap
    cpu_pool.empty_cache()
    assert cpu_pool.cached_bytes() == 0


def test_disabled_pool_is_torch_empty():
    cpu_pool.set_enabled(False)
    t = cpu_pool.empty(BIG, torch.float32)
    t.resize_(10)  # an ordinary (resizable) torch tensor
    del t
    gc.collect()
    assert cpu_pool.cached_bytes() == 0


def test_numba_outputs_come_from_the_pool_and_recycle():
    pytest.importorskip("numba", reason="numba is not installed (pip install surrogate-nets[fast])")
    from surrogate_nets.functional import lif_scan

    x = (torch.rand(64, 4, 2048) * 1.5).requires_grad_()
    first = None
    for _ in range(3):
        r = lif_scan(x, beta=0.5, backend="numba")
        g, = torch.autograd.grad(r.spikes.sum(), x)
        e = lif_scan(x, beta=0.5, backend="torch")
        ge, = torch.autograd.grad(e.spikes.sum(), x)
        assert torch.equal(r.spikes, e.spikes)
        torch.testing.assert_close(g, ge, rtol=1e-5, atol=1e-6)
        ptr = r.spikes.data_ptr()
        first = ptr if first is None else first
        del r, g
        gc.collect()
    assert cpu_pool.cached_bytes() > 0
