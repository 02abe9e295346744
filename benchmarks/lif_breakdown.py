"""Where the milliseconds of one LIF forward+backward go: ours (``backend="auto"``) vs SpikingJelly.

    PYTHONPATH=. /work/venv-bench/bin/python benchmarks/lif_breakdown.py --sizes "100,32,512;100,128,2048" --threads 2
    PYTHONPATH=. /work/venv-bench/bin/python benchmarks/lif_breakdown.py --threads 1 --profile

The same step as ``neurons_peers.py`` (``out = layer(x); out.float().sum().backward()`` on a fresh
``x.clone()``), both libraries alternating in one process, split into: the forward call, the
``sum`` of the spikes (the harness's loss; an OpenMP reduction with more than one thread), the
backward call, and, for ours, the time inside the numba kernels (``numba_lif._run``), the rest
being Python / autograd / allocation around them. Medians in ms. ``--profile`` adds torch
profiler tables (top operators by self time) for both libraries.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def breakdown(T, B, N, repeat, profile=False):
    import numpy as np
    import torch

    from neurons_peers import build
    from surrogate_nets.kernels import numba_lif

    x, run_sn = build("surrogate_nets", T, B, N, "cpu", "auto")
    runs = [("surrogate_nets[auto]", run_sn)]
    try:
        runs.append(("spikingjelly", build("spikingjelly", T, B, N, "cpu", "auto")[1]))
    except ImportError as e:
        print(f"spikingjelly: skipped ({e})", file=sys.stderr)
    kernel = []
    orig = numba_lif._run

    def timed_run(k, a, n):
        t0 = time.perf_counter()
        orig(k, a, n)
        kernel.append(time.perf_counter() - t0)

    numba_lif._run = timed_run
    rows = {name: [] for name, _ in runs}
    try:
        for i in range(repeat + 1):
            for name, run in runs:
                xi = x.clone().requires_grad_()
                kernel.clear()
                t0 = time.perf_counter()
                out = run(xi)
                t1 = time.perf_counter()
                loss = out.float().sum()
                t2 = time.perf_counter()
                loss.backward()
                t3 = time.perf_counter()
                if i:
                    kf = kernel[0] if kernel else 0.0
                    kb = kernel[1] if len(kernel) > 1 else 0.0
                    rows[name].append((t1 - t0, kf, t2 - t1, t3 - t2, kb, t3 - t0))
    finally:
        numba_lif._run = orig
    print(f"\n**T={T} B={B} N={N}, float32, {torch.get_num_threads()} threads**, median of {repeat} (ms)\n")
    print("| library | forward | (numba kernel) | sum | backward | (numba kernel) | total | total - sum |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, v in rows.items():
        m = np.median(np.array(v), axis=0) * 1e3
        print(f"| {name} | {m[0]:.2f} | {m[1]:.2f} | {m[2]:.2f} | {m[3]:.2f} | {m[4]:.2f} | "
              f"{m[5]:.2f} | {m[5] - m[2]:.2f} |")
    if profile:
        from torch.profiler import ProfilerActivity
        from torch.profiler import profile as prof

        for name, run in runs:
            with prof(activities=[ProfilerActivity.CPU]) as p:
                for _ in range(3):
                    run(x.clone().requires_grad_()).float().sum().backward()
            print(f"\n{name} (3 steps):\n")
            print(p.key_averages().table(sort_by="self_cpu_time_total", row_limit=12))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="100,32,512;100,128,2048")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeat", type=int, default=11)
    p.add_argument("--profile", action="store_true")
    a = p.parse_args(argv)
    import torch

    torch.set_num_threads(a.threads)
    for s in a.sizes.split(";"):
        T, B, N = (int(v) for v in s.split(","))
        breakdown(T, B, N, a.repeat, a.profile)


if __name__ == "__main__":
    main()
