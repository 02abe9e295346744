"""Benchmark: learnable delays, time and memory vs sequence length T and max_delay D.

Rows (float32, CPU, forward + backward w.r.t. input, weights and delays):

* ``dl-conv-linear``: ``DelayedLinear(in, out, D)`` (per-synapse, 2-tap linear kernel), ``impl="conv"``:
  the ``[out, in, D + 1]`` kernel and one ``conv1d`` over time. Time ``O(T B in out D)``, memory
  ``O(in out D + (T + D) B (in + out))``.
* ``dl-fft-linear`` / ``dl-fft-gauss``: ``impl="fft"`` (the default ``"auto"`` choice while the
  kernel transform fits in 256 MiB): ``N = T + D`` point real FFTs and one complex matmul per
  frequency. Time ``O(T B in out + (T + D) log(T + D) (B in + in out))``, memory ``O((T + D) in out)``.
  The kernel shape (linear/Gaussian) does not change the cost of ``conv`` or ``fft``.
* ``dl-sparse``: ``impl="sparse"``, synapses grouped by integer tap and one sparse matmul per tap.
  Time ``O(T B in out + T B out D)``, memory ``O(in out + T B (in + out))``.
* ``sd-linear`` / ``sd-gauss``: per-channel ``SynapticDelay(in, D)``: ``O(T B in)`` (two gathers)
  and ``O(T B in D)`` (depthwise conv) time, ``O(T B in)`` memory.

``saved MB`` is what autograd keeps for backward (summed over distinct storages with
``torch.autograd.graph.saved_tensors_hooks``); ``dense MB`` is what a dense ``T x D x in x out``
float32 tensor would take, for comparison (never allocated). Time is the median of ``--repeat``
rounds (the rows are interleaved per round). No peer library ships learnable delays in the bench
environment (snnTorch 1.0.0 and Norse 1.1.0 have none), so rows are compared with each other.

Reproduce (results in benchmarks/RESULTS.md)::

    python benchmarks/delays.py --threads 1 --batch 16 --features 128
    python benchmarks/delays.py --T 100 1000 --D 25 250   # smaller grid

Not part of the test suite.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import torch
from tqdm import tqdm

try:
    import surrogate_nets  # noqa: F401
except ImportError:  # running from a checkout without installing: use the repository root
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from surrogate_nets.layers import DelayedLinear, SynapticDelay

from _saved import saved_bytes  # the sibling module (this file runs as a script)



def make_rows(n_in, n_out, D):
    return {
        "dl-conv-linear": DelayedLinear(n_in, n_out, D, impl="conv"),
        "dl-fft-linear": DelayedLinear(n_in, n_out, D, impl="fft"),
        "dl-fft-gauss": DelayedLinear(n_in, n_out, D, kernel="gaussian", sigma=2.0, impl="fft"),
        "dl-sparse": DelayedLinear(n_in, n_out, D, impl="sparse"),
        "sd-linear": SynapticDelay(n_in, D),
        "sd-gauss": SynapticDelay(n_in, D, kernel="gaussian", sigma=2.0),
    }


def time_once(module, x) -> float:
    t0 = time.perf_counter()
    y = module(x)
    y.backward(torch.ones_like(y))
    return time.perf_counter() - t0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--T", type=int, nargs="+", default=[100, 300, 1000])
    ap.add_argument("--D", type=int, nargs="+", default=[25, 100, 250])
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--features", type=int, default=128, help="in = out features")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rows", nargs="+", default=None, help="subset of rows to run")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    F = args.features
    print(f"# torch {torch.__version__}, {args.threads} thread(s), B={args.batch}, in=out={F}, float32 CPU")
    print(f"{'T':>5} {'D':>4} {'row':<15} {'ms':>9} {'x conv-lin':>10} {'saved MB':>9} {'dense MB':>9}")
    grid = [(T, D) for T in args.T for D in args.D]
    results = []
    for T, D in tqdm(grid, desc="T x D", leave=False):
        rows = make_rows(F, F, D)
        if args.rows:
            rows = {k: v for k, v in rows.items() if k in args.rows}
        x = torch.rand(T, args.batch, F).lt(0.1).float().requires_grad_()
        times = {k: [] for k in rows}
        for name, m in rows.items():      # warm-up
            time_once(m, x)
        for _ in range(args.repeat):
            for name, m in rows.items():
                times[name].append(time_once(m, x))
        ref = statistics.median(times["dl-conv-linear"]) if "dl-conv-linear" in times else None
        dense = T * D * F * F * 4 / 2**20
        for name, m in rows.items():
            ms = statistics.median(times[name]) * 1e3
            mb = saved_bytes(lambda: m(x))[1] / 2**20
            ratio = f"{ms / (ref * 1e3):10.2f}" if ref else f"{'-':>10}"
            line = f"{T:>5} {D:>4} {name:<15} {ms:9.1f} {ratio} {mb:9.1f} {dense:9.0f}"
            results.append(line)
            print(line, flush=True)
    return results


if __name__ == "__main__":
    main()
