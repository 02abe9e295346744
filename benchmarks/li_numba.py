"""``li_scan`` forward+backward: backend "torch" vs "numba" (the ``auto`` rule of op ``li``).

    PYTHONPATH=. python benchmarks/li_numba.py [--threads 2] [--repeat 7]

Each ``(T, neurons)`` cell: float32 input ``[T, neurons]``, ``beta = 0.9``,
``out.sum().backward()``; both backends timed interleaved (A, B, A, B, ...) after one warm-up call
each (which also compiles numba); the table gives medians and ``numba / torch``.
"""

import argparse
import statistics
import time

import torch

from surrogate_nets.functional import li_scan

CELLS = [(4, 320), (8, 1024), (8, 4096), (16, 640), (16, 2048), (20, 32768), (100, 320),
         (100, 1024), (100, 2048), (100, 4096), (100, 8192), (100, 16384), (100, 262144)]


def once(backend, x):
    x = x.detach().requires_grad_()
    t0 = time.perf_counter()
    li_scan(x, beta=0.9, backend=backend).sum().backward()
    return 1e3 * (time.perf_counter() - t0)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeat", type=int, default=7)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    print(f"li_scan fwd+bwd, float32, {a.threads} threads, median of {a.repeat} interleaved (ms)\n")
    print("| T | neurons | torch | numba | numba / torch |\n| --- | --- | ---: | ---: | ---: |")
    for T, n in CELLS:
        x = torch.randn(T, n)
        times = {b: [] for b in ("torch", "numba")}
        for b in times:
            once(b, x)
        for _ in range(a.repeat):
            for b in times:
                times[b].append(once(b, x))
        m = {b: statistics.median(v) for b, v in times.items()}
        print(f"| {T} | {n} | {m['torch']:.2f} | {m['numba']:.2f} | {m['numba'] / m['torch']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
