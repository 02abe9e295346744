"""kernels._omp_team: numba kernels run on torch's OpenMP team, results and errors as in a loop."""

import pytest
import torch

from surrogate_nets.kernels import _omp_team

numba = pytest.importorskip("numba", reason="the team runs GIL-free numba kernels")


@numba.njit(nogil=True)
def _fill(out, value, lo, hi):  # per_part supplies ``value``
    for i in range(lo, hi):
        out[i] = value + i
    return hi - lo


def _team_or_skip():
    if _omp_team._libgomp() is None:
        pytest.skip("torch is not linked to GNU libgomp here (or SURROGATE_NETS_OMP_TEAM=0)")


def test_parts_run_once_each_with_per_part_args():
    _team_or_skip()
    n0 = torch.get_num_threads()
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            out = torch.zeros(1000, dtype=torch.float64)
            parts = [(0, 300), (300, 301), (301, 1000)]  # more parts than threads is fine
            res = _omp_team.run_parts(_fill, parts, out.numpy(), per_part=[(0.0,), (0.0,), (0.0,)])
            assert res == [300, 1, 699]
            assert torch.equal(out, torch.arange(1000, dtype=torch.float64))
    finally:
        torch.set_num_threads(n0)


def test_errors_are_raised_in_the_caller():
    _team_or_skip()

    def bad(lo, hi):
        if lo > 0:
            raise ValueError(f"part {lo}")
        return lo

    with pytest.raises(ValueError, match="part 5"):
        _omp_team.run_parts(bad, [(0, 5), (5, 10)])


def test_unavailable_means_none(monkeypatch):
    assert _omp_team.run_parts(_fill, [(0, 3)], torch.zeros(3).numpy(), 0.0) is None  # one part: caller runs it
    monkeypatch.setitem(_omp_team._STATE, "lib", None)
    assert _omp_team.run_parts(_fill, [(0, 1), (1, 3)], torch.zeros(3).numpy(), 0.0) is None
