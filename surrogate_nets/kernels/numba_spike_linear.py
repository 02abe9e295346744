r"""Spike-sparse matrix products on CPU (numba): gather-add the weight rows of active inputs.

For a spike input ``x`` ``[M, I]`` (mostly zeros) and ``W^T`` ``[I, O]``:

.. math::
    y_r = b + \sum_{c:\,x_{rc} \ne 0} x_{rc}\,(W^T)_{c,:},\qquad
    (\partial L/\partial W^T)_{c,:} = \sum_{r:\,x_{rc} \ne 0} x_{rc}\,g_{r,:}

Each costs ``M I`` zero tests plus ``nnz(x) O`` multiply-adds instead of ``M I O`` for the dense
GEMM. The inner loop runs over the ``O`` contiguous outputs (vectorised). Rows are split over
``torch.get_num_threads()`` threads (torch's OpenMP team where possible, else a thread pool, see
:mod:`surrogate_nets.kernels._parallel`; the kernels release the GIL); the
weight gradient is accumulated per thread and summed.
"""

from __future__ import annotations

import torch
from numba import njit

from . import _parallel

_MIN_ROWS_PER_THREAD = 256


@njit(cache=True, nogil=True)
def _gather_add(x, wt, out, lo, hi):
    """``out[r] += sum_c x[r, c] wt[c]`` over the nonzero ``x[r, c]``, rows ``lo <= r < hi``."""
    n_in = x.shape[1]
    n_out = wt.shape[1]
    for r in range(lo, hi):
        for c in range(n_in):
            xv = x[r, c]
            if xv != 0:
                for o in range(n_out):
                    out[r, o] += xv * wt[c, o]


@njit(cache=True, nogil=True)
def _scatter_grad(x, g, gwt, lo, hi):
    """``gwt[c] += sum_r x[r, c] g[r]`` over the nonzero ``x[r, c]``, rows ``lo <= r < hi``."""
    n_in = x.shape[1]
    n_out = g.shape[1]
    for r in range(lo, hi):
        for c in range(n_in):
            xv = x[r, c]
            if xv != 0:
                for o in range(n_out):
                    gwt[c, o] += xv * g[r, o]


def _chunks(m: int):
    parts = _parallel.split(m, _MIN_ROWS_PER_THREAD)
    return parts, len(parts)


def sparse_input_matmul(x: torch.Tensor, wt: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """``out += x @ wt`` touching only the nonzero entries of ``x`` (all CPU, contiguous, one dtype)."""
    xa, wa, oa = x.numpy(), wt.numpy(), out.numpy()
    _parallel.run(_gather_add, _chunks(x.shape[0])[0], xa, wa, oa)
    return out


def sparse_input_weight_grad(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """``x^T @ g`` ``[I, O]`` touching only the nonzero entries of ``x``."""
    parts, workers = _chunks(x.shape[0])
    xa, ga = x.numpy(), g.numpy()
    if workers == 1:
        gwt = torch.zeros(x.shape[1], g.shape[1], dtype=g.dtype)
        _scatter_grad(xa, ga, gwt.numpy(), 0, x.shape[0])
        return gwt
    partial = torch.zeros(len(parts), x.shape[1], g.shape[1], dtype=g.dtype)
    pa = partial.numpy()
    _parallel.run(_scatter_grad, parts, xa, ga, per_part=[(pa[i],) for i in range(len(parts))])
    return partial.sum(0)


__all__ = ["sparse_input_matmul", "sparse_input_weight_grad"]
