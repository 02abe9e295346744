"""Time forward+backward of one LIF layer: the fused ``lif_scan`` vs a naive per-step autograd loop.

    python benchmarks/neurons_self.py                   # T=100, B=128, N=2048, float32, CPU
    python benchmarks/neurons_self.py --T 50 --repeat 5

Methods:
  scan       ``LIF(tau=2)`` -> ``lif_scan`` (one autograd node, hand-written BPTT)
  scan_learn the same with learnable beta, threshold and surrogate alpha
  unbind     ``lif_scan(backend="autograd")``: per-step autograd loop over ``x.unbind(0)``
  naive      a per-step autograd loop reading ``x[t]`` (written here; O(T^2) gradient traffic)

The methods are timed round-robin in one process (fair when the machine's load fluctuates);
the peak resident memory of one forward+backward is measured in a fresh subprocess per method
(``ru_maxrss`` minus the memory after building the input and the output gradient).

Note on virtual machines: the first touch of never-used guest memory can be very slow (the host
backs it lazily), which makes fresh 100 MiB allocations cost seconds at random. The timing process therefore
first touches and frees ``--pretouch-gb`` GiB, so that all methods then allocate from memory
that is already backed. On a shared machine, compare methods within one run only.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from surrogate_nets import surrogate as S  # noqa: E402
from surrogate_nets.functional import lif_scan, spike  # noqa: E402
from surrogate_nets.neurons import LIF  # noqa: E402

METHODS = ("scan", "scan_learn", "unbind", "naive")


def naive_loop(x, beta, threshold, sur):
    """The textbook loop: x[t] indexing inside autograd (each select's backward is a full-size zero grad)."""
    v = torch.zeros_like(x[0])
    out = []
    for t in range(x.shape[0]):
        h = beta * v + x[t]
        s = spike(h - threshold, sur)
        v = h - s * threshold
        out.append(s)
    return torch.stack(out)


def make_fn(method, x):
    if method == "scan":
        m = LIF(tau=2.0)
        return lambda: m(x)
    if method == "scan_learn":
        m = LIF(tau=2.0, learn_beta=True, learn_threshold=True, surrogate=S.ATan(learnable=True))
        return lambda: m(x)
    sur = S.ATan()
    if method == "unbind":
        return lambda: lif_scan(x, None, 0.5, 1.0, None, sur, backend="autograd").spikes
    if method == "naive":
        return lambda: naive_loop(x, 0.5, 1.0, sur)
    raise ValueError(method)


def make_input(T, B, N):
    torch.manual_seed(0)
    return (torch.randn(T, B, N) * 0.6 + 0.3).requires_grad_(), torch.randn(T, B, N)


def once(fn, x, g):
    x.grad = None
    t0 = time.perf_counter()
    out = fn()
    t1 = time.perf_counter()
    out.backward(g)
    t2 = time.perf_counter()
    return t2 - t0, t1 - t0


def time_all(methods, T, B, N, repeat, pretouch_gb):
    """Round-robin timing of all methods in one process (fair under a fluctuating machine load)."""
    if pretouch_gb > 0:
        buf = torch.ones(int(pretouch_gb * 2**30) // 4)
        del buf
    x, g = make_input(T, B, N)
    fns = {m: make_fn(m, x) for m in methods}
    res = {m: [] for m in methods}
    for m in methods:  # warm-up
        once(fns[m], x, g)
    for _ in range(repeat):
        for m in methods:
            res[m].append(once(fns[m], x, g))
    return {m: {"fwd_bwd_s": min(r[0] for r in v), "fwd_s": min(r[1] for r in v),
                "median_s": sorted(r[0] for r in v)[len(v) // 2]} for m, v in res.items()}


def peak_memory(method, T, B, N):
    """Extra peak RSS (MiB) of one forward+backward in this (fresh) process."""
    x, g = make_input(T, B, N)
    fn = make_fn(method, x)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    once(fn, x, g)
    return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--T", type=int, default=100)
    ap.add_argument("--B", type=int, default=128)
    ap.add_argument("--N", type=int, default=2048)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--pretouch-gb", type=float, default=3.0)
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if a.child:
        print(json.dumps({"peak_extra_rss_MB": peak_memory(a.child, a.T, a.B, a.N)}))
        return
    methods = a.methods.split(",")
    print(f"LIF forward+backward, T={a.T} B={a.B} N={a.N} float32 CPU, torch {torch.__version__}, "
          f"{a.threads} thread(s); best of {a.repeat} round-robin runs (after 1 warm-up)")
    print(f"input {a.T * a.B * a.N * 4 / 2**20:.0f} MiB")
    mem = {}
    for m in methods:
        cmd = [sys.executable, __file__, "--child", m, "--T", str(a.T), "--B", str(a.B), "--N", str(a.N),
               "--threads", str(a.threads)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        mem[m] = json.loads(out.strip().splitlines()[-1])["peak_extra_rss_MB"]
    res = time_all(methods, a.T, a.B, a.N, a.repeat, a.pretouch_gb)
    print(f"{'method':<11} {'fwd+bwd s':>10} {'fwd s':>8} {'median s':>9} {'peak extra RSS MiB':>19}")
    for m in methods:
        r = res[m]
        print(f"{m:<11} {r['fwd_bwd_s']:>10.3f} {r['fwd_s']:>8.3f} {r['median_s']:>9.3f} {mem[m]:>19.0f}")


if __name__ == "__main__":
    main()
