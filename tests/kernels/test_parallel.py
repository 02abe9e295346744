"""kernels._parallel: one thread split for every numba kernel; results and errors as in a loop."""

import os
import subprocess
import sys
import threading

import numpy as np
import pytest
import torch

from surrogate_nets.kernels import _parallel

numba = pytest.importorskip("numba", reason="the parts run GIL-free numba kernels")


@numba.njit(nogil=True)
def _fill(out, value, lo, hi):  # per_part supplies ``value``
    for i in range(lo, hi):
        out[i] += value + i
    return hi - lo


@pytest.fixture
def threads():
    n0 = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(n0)


@pytest.fixture(params=["team", "pool"])
def where(request, monkeypatch):
    """Run each test on torch's OpenMP team (skipped where there is none) and on the pool."""
    if request.param == "team":
        if not _parallel.team_available():
            pytest.skip("torch is not linked to GNU libgomp here (or SURROGATE_NETS_OMP_TEAM=0)")
    else:
        monkeypatch.setitem(_parallel._STATE, "lib", None)  # team unavailable -> the shared pool
    return request.param


@pytest.mark.parametrize("n, min_per, align, per_thread, n_threads", [
    (0, 1, 1, 1, 2), (1, 1, 1, 1, 2), (5, 1, 1, 1, 2), (7, 1, 1, 1, 3), (1000, 1, 1, 1, 4),
    (1000, 300, 1, 1, 4), (1000, 600, 1, 1, 4), (10000, 1, 256, 4, 2), (4097, 4096, 256, 4, 2),
    (8192, 4096, 256, 4, 2), (100003, 4096, 256, 4, 3), (10, 1, 1, 1, 1),
])
def test_split_covers_range_in_order(threads, n, min_per, align, per_thread, n_threads):
    threads(n_threads)
    parts = _parallel.split(n, min_per, align, per_thread)
    assert parts[0][0] == 0 and parts[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(parts, parts[1:]))  # contiguous, in order
    assert all(lo < hi for lo, hi in parts) or parts == [(0, 0)]
    workers = max(1, min(n_threads, n // min_per))
    assert len(parts) <= workers * per_thread
    if workers == 1:
        assert parts == [(0, n)]
    else:
        assert len(parts) > 1
        assert all((hi - lo) % align == 0 for lo, hi in parts[:-1])  # uneven: only the last shorter
        assert len({hi - lo for lo, hi in parts[:-1]}) == 1


@pytest.mark.parametrize("n_threads", [1, 2, 3])
def test_each_part_runs_once_with_its_per_part_args(threads, where, n_threads):
    threads(n_threads)
    out = np.zeros(1000)
    parts = [(0, 300), (300, 301), (301, 302), (302, 1000), (1000, 1000)]  # uneven, empty, > threads
    res = _parallel.run(_fill, parts, out, per_part=[(0.0,), (0.0,), (0.0,), (0.0,), (5.0,)])
    assert res == [300, 1, 1, 698, 0]
    assert np.array_equal(out, np.arange(1000.0))  # += : a part run twice would show


def test_per_part_accumulators_summed_in_part_order_equal_a_loop(threads, where):
    threads(2)
    x = torch.randn(10007, dtype=torch.float32).numpy()

    @numba.njit(nogil=True)
    def acc(x, buf, lo, hi):
        s = np.float32(0)
        for i in range(lo, hi):
            s += x[i]
        buf[0] = s

    parts = _parallel.split(len(x), 1, 64, 4)
    bufs = np.zeros((len(parts), 1), np.float32)
    _parallel.run(acc, parts, x, per_part=[(bufs[t],) for t in range(len(parts))])
    ref = np.zeros((len(parts), 1), np.float32)
    for t, (lo, hi) in enumerate(parts):
        acc(x, ref[t], lo, hi)
    assert np.array_equal(bufs, ref)  # bit-identical: the split, not the threads, fixes the result


def test_one_thread_runs_in_the_caller(threads, where):
    threads(1)
    seen = []
    res = _parallel.run(lambda lo, hi: seen.append(threading.get_ident()) or hi, [(0, 1), (1, 4)])
    assert res == [1, 4] and set(seen) == {threading.get_ident()}


def test_errors_are_raised_in_the_caller(threads, where):
    threads(2)

    def bad(lo, hi):
        if lo == 5:
            raise ValueError(f"part {lo}")
        return lo

    with pytest.raises(ValueError, match="part 5"):
        _parallel.run(bad, [(0, 5), (5, 10)])
    threads(1)
    with pytest.raises(ValueError, match="part 5"):
        _parallel.run(bad, [(0, 5), (5, 10)])
    threads(2)
    assert _parallel.run(bad, [(0, 5), (10, 12)]) == [0, 10]  # still usable after an error


def test_parts_use_several_threads_on_the_pool(threads, monkeypatch):
    monkeypatch.setitem(_parallel._STATE, "lib", None)
    threads(2)
    barrier = threading.Barrier(2, timeout=20)  # passes only if two threads run parts at once
    res = _parallel.run(lambda lo, hi: barrier.wait() is not None and lo, [(0, 1), (1, 2)])
    assert res == [0, 1]


def test_team_false_skips_the_team(threads, monkeypatch):
    threads(2)
    called = []
    monkeypatch.setitem(_parallel._STATE, "lib", type("L", (), {"GOMP_parallel": lambda *a: called.append(a)})())
    assert _parallel.run(lambda lo, hi: hi, [(0, 1), (1, 2)], team=False) == [1, 2] and not called


def test_per_part_length_checked():
    with pytest.raises(ValueError, match="per_part"):
        _parallel.run(_fill, [(0, 1), (1, 2)], np.zeros(2), per_part=[(0.0,)])


def test_env_switch_turns_the_team_off():
    code = ("import torch; from surrogate_nets.kernels import _parallel; torch.set_num_threads(2); "
            "print(_parallel.team_available(), _parallel.run(lambda lo, hi: hi, [(0, 1), (1, 3)]))")
    env = dict(os.environ, PYTHONPATH=os.getcwd(), SURROGATE_NETS_OMP_TEAM="0")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "[1,", "3]"]


FORK_CODE = """
import os, signal, torch
torch.set_num_threads(2)
from surrogate_nets.kernels import _parallel
from surrogate_nets.functional.lif import lif_scan
x = torch.randn(4, 4, 8192)   # 32768 neurons: split over 2 threads
ref = lif_scan(x, beta=0.9, backend="numba").spikes
_parallel.run(lambda lo, hi: hi, [(0, 1), (1, 3)], team=False)   # the parent's pool exists too
pid = os.fork()
if pid == 0:
    signal.alarm(20)   # a hang kills the child: the test sees a signal, not 0
    # compared in numpy: torch's own parallel ops hang in a child of a parent that ran OpenMP
    # regions (GNU OpenMP is not fork-safe); that is torch's limitation, not what is tested here
    ok = (lif_scan(x, beta=0.9, backend="numba").spikes.numpy() == ref.numpy()).all()
    ok = ok and _parallel.run(lambda lo, hi: hi, [(0, 1), (1, 3)]) == [1, 3] and not _parallel.team_available()
    os._exit(0 if ok else 3)
_, status = os.waitpid(pid, 0)
print("child", os.waitstatus_to_exitcode(status))
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.parametrize("team", ["1", "0"])
def test_a_forked_child_runs_split_kernels(team):
    """The parent's pool threads and OpenMP team do not survive fork(): the child must not wait
    on them (it hung before, with and without the team) and gets the same results."""
    pytest.importorskip("numba")
    env = dict(os.environ, PYTHONPATH=os.getcwd(), SURROGATE_NETS_OMP_TEAM=team)
    out = subprocess.run([sys.executable, "-c", FORK_CODE], env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0 and out.stdout.split() == ["child", "0"], out.stdout + out.stderr[-2000:]
