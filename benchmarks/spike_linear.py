"""Where does the gather-add SpikeLinear beat nn.Linear? Forward+backward time vs input density (CPU).

    PYTHONPATH=. python benchmarks/spike_linear.py                  # SHD-like 700->256, T*B = 6400
    PYTHONPATH=. python benchmarks/spike_linear.py --M 640 --I 256 --O 256 --threads 1

Prints a markdown table: median seconds of forward+backward (input, weight and bias gradients)
for ``nn.Linear`` and ``SpikeLinear(mode="sparse")`` at each density, interleaved, and their ratio.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main(argv=None):
    import torch
    from torch import nn

    from surrogate_nets.layers import SpikeLinear

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--M", type=int, default=6400, help="rows (T*B)")
    p.add_argument("--I", type=int, default=700)
    p.add_argument("--O", type=int, default=256)
    p.add_argument("--densities", default="0.01,0.02,0.05,0.1,0.15,0.2,0.3")
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument("--threads", type=int, default=None)
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    lin = nn.Linear(a.I, a.O)
    sl = SpikeLinear.from_linear(lin, mode="sparse")
    print(f"M={a.M} I={a.I} O={a.O} threads={torch.get_num_threads()} torch {torch.__version__}\n")
    print("| density | nn.Linear ms | SpikeLinear ms | ratio (Linear / Spike) |")
    print("| --- | --- | --- | --- |")
    for d in [float(v) for v in a.densities.split(",")]:
        x = (torch.rand(a.M, a.I) < d).float().requires_grad_()
        g = torch.randn(a.M, a.O)
        ts = {"dense": [], "sparse": []}
        for _ in range(a.repeat + 1):
            for name, m in (("dense", lin), ("sparse", sl)):
                t0 = time.perf_counter()
                m(x).backward(g)
                ts[name].append(time.perf_counter() - t0)
        med = {k: sorted(v[1:])[len(v[1:]) // 2] * 1e3 for k, v in ts.items()}
        print(f"| {d:.2f} | {med['dense']:.1f} | {med['sparse']:.1f} | {med['dense'] / med['sparse']:.2f} |")


if __name__ == "__main__":
    main()
