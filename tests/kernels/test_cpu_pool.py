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


def test_a_varying_size_reuses_a_larger_free_buffer():
    """Review (h23): with a varying sequence length every request had its own size class, so the
    pool cached up to MAX_CACHED_BYTES of buffers no request asked for again (measured: +210 MiB
    RSS over 200 LIF steps with T in 30..69); a smaller request now takes a free larger buffer."""
    t = cpu_pool.empty((128, 1 << 14), torch.float32)  # 8 MiB
    ptr = t.data_ptr()
    del t
    gc.collect()
    smaller = cpu_pool.empty((80, 1 << 14), torch.float32)  # 5 MiB (a 6 MiB class): reused
    assert smaller.data_ptr() == ptr and cpu_pool.cached_bytes() == 0
    smaller.fill_(1.0)
    assert float(smaller.sum()) == smaller.numel()
    del smaller
    gc.collect()
    assert cpu_pool.cached_bytes() == 8 << 20  # back under its own size
    small = cpu_pool.empty((48, 1 << 14), torch.float32)  # 3 MiB (4 MiB class): not from 8 MiB
    assert small.data_ptr() != ptr and cpu_pool.cached_bytes() == 8 << 20


def test_pool_usable_in_a_child_forked_while_another_thread_held_its_lock():
    """Review (h23): a fork while another thread held the pool's lock left the child's lock held
    for ever, so the child's next large numba output hung; and the child kept (copy-on-write) the
    free buffers, pinning the parent's pages for its life (every DataLoader worker)."""
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent("""
        import os, threading, time, torch
        from surrogate_nets.kernels import cpu_pool
        held, release = threading.Event(), threading.Event()
        def hold():
            with cpu_pool._LOCK:
                held.set(); release.wait()
        spare = cpu_pool.empty((64, 1 << 13), torch.float32)
        del spare  # a free buffer at fork time
        assert cpu_pool.cached_bytes() == 2 << 20
        threading.Thread(target=hold, daemon=True).start()
        held.wait()
        pid = os.fork()
        if pid == 0:
            import signal; signal.alarm(20)  # a hung child ends itself
            if cpu_pool.cached_bytes() != 0:  # its copy would pin the parent's pages
                os._exit(4)
            t = cpu_pool.empty((64, 1 << 13), torch.float32)
            os._exit(0 if t.numel() == 64 << 13 else 3)
        release.set()
        _, status = os.waitpid(pid, 0)
        print("child", os.waitstatus_to_exitcode(status))
    """)
    import os

    import surrogate_nets

    root = os.path.dirname(os.path.dirname(surrogate_nets.__file__))
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=40, env=env)
    except subprocess.TimeoutExpired:
        pytest.fail("the forked child hung on the pool's lock")
    assert "child 0" in out.stdout, out.stderr[-2000:]
