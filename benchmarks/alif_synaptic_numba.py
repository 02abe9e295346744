"""Time forward+backward of ``alif_scan`` / ``synaptic_scan``: backend "torch" vs the numba kernels.

    PYTHONPATH=. python benchmarks/alif_synaptic_numba.py --threads 1
    PYTHONPATH=. python benchmarks/alif_synaptic_numba.py --threads 2 --shapes 100x32x512

Rows per ``(op, T, B, N)`` cell, CPU (``--dtype``, default float32; ``--levels`` spike levels),
ATan surrogate, subtract reset:
  torch           the torch backend (hand-written BPTT, one Python step per time step)
  numba           ``surrogate_nets.kernels.numba_alif`` (alif) / ``numba_synaptic`` (synaptic)
  numba-composed  synaptic only: an LI scan then a LIF scan, both numba (the seam's composition
                  before the fused kernel)

``--learn``: beta, threshold (and rho, adaptation / alpha_syn) per neuron and the surrogate alpha
also need gradients (else only ``x`` does). Backends are timed interleaved (A, B, A, B, ...) after
a warm-up that also compiles numba; the table gives medians and ``numba / torch``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from surrogate_nets import kernels  # noqa: E402
from surrogate_nets import surrogate as S  # noqa: E402
from surrogate_nets.functional import alif_scan, synaptic_scan  # noqa: E402
from surrogate_nets.functional.backends import list_backends, register_backend  # noqa: E402

if "numba-composed" not in list_backends("synaptic"):
    register_backend("synaptic", "numba-composed", kernels._synaptic_via("numba"), auto=False)


def make_case(op, T, B, N, learn, levels=1, dtype=torch.float32, seed=0):
    """``(fn(backend) -> loss, leaves)`` for one cell."""
    g = torch.Generator().manual_seed(seed)
    x = (torch.randn(T, B, N, generator=g) * 0.6 * levels + 0.4 * levels).to(dtype).requires_grad_()

    def p(lo, hi):
        return (torch.rand(N, generator=g) * (hi - lo) + lo).to(dtype).requires_grad_(learn)

    sur = S.ATan(learnable=learn).to(dtype)
    w = torch.randn(T, B, N, generator=g).to(dtype)
    if op == "alif":
        beta, rho, th, ba = p(0.8, 0.95), p(0.9, 0.99), p(0.8, 1.2), p(0.05, 0.2)

        def fn(backend):
            r = alif_scan(x, beta=beta, rho=rho, threshold=th, adaptation=ba, surrogate=sur,
                          levels=levels, backend=backend)
            return (r.spikes * w).sum() + r.v.sum()
        leaves = [x] + ([beta, rho, th, ba] + list(sur.parameters()) if learn else [])
    else:
        asyn, beta, th = p(0.7, 0.9), p(0.8, 0.95), p(0.8, 1.2)

        def fn(backend):
            r = synaptic_scan(x, alpha_syn=asyn, beta=beta, threshold=th, surrogate=sur,
                              levels=levels, backend=backend)
            return (r.spikes * w).sum() + r.v.sum()
        leaves = [x] + ([asyn, beta, th] + list(sur.parameters()) if learn else [])
    return fn, leaves


def once(fn, backend, leaves):
    t0 = time.perf_counter()
    torch.autograd.grad(fn(backend), leaves)
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--shapes", default="100x4x64,20x32x512,100x32x512,100x128x2048",
                    help="comma-separated TxBxN")
    ap.add_argument("--ops", default="alif,synaptic")
    ap.add_argument("--learn", action="store_true")
    ap.add_argument("--levels", type=int, default=1, help="spike levels (multi-level spikes)")
    ap.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    dtype = getattr(torch, a.dtype)
    print(f"{a.dtype} CPU, levels={a.levels}, torch {torch.__version__}, {a.threads} thread(s), "
          f"{'all parameters learnable' if a.learn else 'grad wrt x only'}; median of {a.repeat} "
          f"interleaved rounds (ms)\n")
    print("| op | T, B, N | torch | numba | numba / torch | numba-composed |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for op in a.ops.split(","):
        for shape in a.shapes.split(","):
            T, B, N = (int(v) for v in shape.split("x"))
            fn, leaves = make_case(op, T, B, N, a.learn, a.levels, dtype)
            rows = ["torch", "numba"] + (["numba-composed"] if op == "synaptic" else [])
            for r in rows:  # warm-up (and numba compilation)
                once(fn, r, leaves)
            times = {r: [] for r in rows}
            for _ in range(a.repeat):
                for r in rows:
                    times[r].append(once(fn, r, leaves))
            med = {r: sorted(v)[len(v) // 2] * 1e3 for r, v in times.items()}
            comp = f"{med['numba-composed']:.2f}" if op == "synaptic" else ""
            print(f"| {op} | {T}, {B}, {N} | {med['torch']:.2f} | {med['numba']:.2f} | "
                  f"{med['numba'] / med['torch']:.2f} | {comp} |", flush=True)


if __name__ == "__main__":
    main()
