"""Spike-input conv / max-pool layers vs their torch.nn counterparts, forward + backward, per layer.

The two conv + pool blocks of snnTorch's N-MNIST conv net at T*B = 640: Conv2d(2, 12, 5) on 34x34
events at 5% density, and Conv2d(12, 32, 5) on 15x15 spikes at 10%, each followed by a 2x2 max
pool. Rows (each forward + backward, weight/bias gradients, input gradient for the second block):
torch ``F.conv2d`` then ``F.max_pool2d``; ours ``spike_conv2d`` then ``max_pool2d``; ours fused
``spike_conv_max_pool2d``; and the pools alone (``F.max_pool2d`` vs ``max_pool2d`` on the float
conv output). Interleaved repetitions, median ms; ``--clock thread`` (with ``--threads 1``) times the
CPU time of the calling thread, robust to other jobs on a shared machine. Bytes saved for backward
per row from ``saved_tensors_hooks``.

    PYTHONPATH=. python benchmarks/spike_conv.py --threads 1 --clock thread
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from surrogate_nets.layers import max_pool2d, spike_conv2d, spike_conv_max_pool2d

from _saved import saved_bytes  # the sibling module (this file runs as a script)

BLOCKS = {"conv1 2->12 @34x34, 5%": (2, 34, 12, 0.05, False), "conv2 12->32 @15x15, 10%": (12, 15, 32, 0.10, True)}


def saved_mb(fn):
    return saved_bytes(fn)[1] / 2 ** 20


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--clock", choices=("wall", "thread"), default="wall")
    p.add_argument("--repeat", type=int, default=11)
    p.add_argument("--batch", type=int, default=640)
    a = p.parse_args(argv)
    if a.clock == "thread" and a.threads != 1:
        p.error("--clock thread needs --threads 1")
    torch.set_num_threads(a.threads)
    clock = time.thread_time if a.clock == "thread" else time.perf_counter
    print(f"torch {torch.__version__}, {a.threads} thread(s), clock {a.clock}, median of {a.repeat}\n")
    print("| block | variant | fwd+bwd ms | x torch | saved MB |\n| --- | --- | --- | --- | --- |")
    for name, (cin, hw, cout, dens, xgrad) in BLOCKS.items():
        torch.manual_seed(0)
        x = (torch.rand(a.batch, cin, hw, hw) < dens).float().requires_grad_(xgrad)
        w = (0.1 * torch.randn(cout, cin, 5, 5)).requires_grad_()
        b = torch.randn(cout).requires_grad_()
        z = F.conv2d(x, w, b).detach().requires_grad_()  # a float conv output for the pools alone
        g = torch.randn(a.batch, cout, (hw - 4) // 2, (hw - 4) // 2)
        rows = {"torch conv2d + max_pool2d": lambda: F.max_pool2d(F.conv2d(x, w, b), 2),
                "ours spike_conv2d + max_pool2d": lambda: max_pool2d(spike_conv2d(x, w, b), 2),
                "ours spike_conv_max_pool2d (fused)": lambda: spike_conv_max_pool2d(x, w, b),
                "torch max_pool2d alone": lambda: F.max_pool2d(z, 2),
                "ours max_pool2d alone": lambda: max_pool2d(z, 2)}
        times = {k: [] for k in rows}
        for k, f in rows.items():
            f().backward(g)
        for _ in range(a.repeat):
            for k, f in rows.items():
                t0 = clock()
                f().backward(g)
                times[k].append(1e3 * (clock() - t0))
        med = {k: statistics.median(v) for k, v in times.items()}
        for k, f in rows.items():
            ref = med["torch max_pool2d alone" if "alone" in k else "torch conv2d + max_pool2d"]
            print(f"| {name} | {k} | {med[k]:.2f} | {med[k] / ref:.2f} | {saved_mb(f):.2f} |")


if __name__ == "__main__":
    main()
