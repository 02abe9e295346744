"""One LIF layer, forward + backward, side by side with snnTorch, SpikingJelly, Norse and Sinabs.

    # peers live in the `bench` extra (they pull their own torch); from the repo root:
    pip install -e ".[bench]"
    python benchmarks/neurons_peers.py                    # T=100, B=128, N=2048, float32, CPU
    python benchmarks/neurons_peers.py --T 50 --B 64 --N 1024 --repeat 5

Every library runs its standard multi-step LIF with an arc-tangent (or its default) surrogate on
the same random input, each in its own subprocess so that peak resident memory
(``ru_maxrss`` minus the process's size after building the input) is per library. Reported:
median seconds of forward+backward over ``--repeat`` runs after one warm-up, ratios to ours
(>1 means the peer is slower / uses more memory). Semantics are close, not identical (see
``surrogate_nets.neurons.LIF``'s docstring for the mapping): Norse's ``LIF`` is current-based,
Sinabs normalises the input by ``1 - beta``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

LIBS = ("surrogate_nets", "snntorch", "spikingjelly", "norse", "sinabs")


def build(lib: str, T: int, B: int, N: int):
    """Return ``(x, run)``: a leaf input and a function computing the spikes from it."""
    import torch

    if lib == "surrogate_nets":
        sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        from surrogate_nets.neurons import LIF

        layer = LIF(tau=2.0, surrogate="atan")
        x = torch.rand(T, B, N) * 1.5
        return x, lambda x: layer(x)
    if lib == "snntorch":
        import snntorch as snn
        from snntorch import surrogate

        layer = snn.Leaky(beta=0.5, spike_grad=surrogate.atan())
        x = torch.rand(T, B, N) * 1.5

        def run(x):
            mem = layer.init_leaky()
            out = []
            for t in range(x.shape[0]):
                spk, mem = layer(x[t], mem)
                out.append(spk)
            return torch.stack(out)

        return x, run
    if lib == "spikingjelly":
        from spikingjelly.activation_based import functional, neuron, surrogate

        layer = neuron.LIFNode(tau=2.0, decay_input=False, v_reset=None,
                               surrogate_function=surrogate.ATan(), step_mode="m")
        x = torch.rand(T, B, N) * 1.5

        def run(x):
            functional.reset_net(layer)
            return layer(x)

        return x, run
    if lib == "norse":
        import norse.torch as norse

        layer = norse.LIF()
        x = torch.rand(T, B, N) * 1.5
        return x, lambda x: layer(x)[0]
    if lib == "sinabs":
        import sinabs.activation as sa
        import sinabs.layers as sl

        layer = sl.LIF(tau_mem=2.0, spike_fn=sa.SingleSpike, norm_input=False)
        x = torch.rand(B, T, N) * 1.5  # sinabs is batch-major

        def run(x):
            layer.reset_states()
            return layer(x)

        return x, run
    raise ValueError(f"unknown library {lib!r}; expected one of {LIBS}")


def child(lib, T, B, N, repeat):
    import torch

    torch.manual_seed(0)
    x, run = build(lib, T, B, N)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times = []
    for i in range(repeat + 1):
        xi = x.clone().requires_grad_()
        t0 = time.perf_counter()
        out = run(xi)
        out.sum().backward()
        dt = time.perf_counter() - t0
        if i:
            times.append(dt)
    times.sort()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base
    print(json.dumps({"lib": lib, "seconds": times[len(times) // 2], "peak_mb": peak / 1024,
                      "rate": float(out.detach().float().mean())}))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--T", type=int, default=100)
    p.add_argument("--B", type=int, default=128)
    p.add_argument("--N", type=int, default=2048)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--libs", default=",".join(LIBS))
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child:
        return child(a.child, a.T, a.B, a.N, a.repeat)
    rows = []
    for lib in a.libs.split(","):
        cmd = [sys.executable, os.path.abspath(__file__), "--child", lib, "--T", str(a.T), "--B", str(a.B),
               "--N", str(a.N), "--repeat", str(a.repeat)]
        r = subprocess.run(cmd, capture_output=True, text=True)
        line = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
        if r.returncode or not line:
            print(f"{lib}: failed ({r.stderr.strip().splitlines()[-1:]})", file=sys.stderr)
            continue
        rows.append(json.loads(line[-1]))
    import torch

    print(f"LIF forward+backward, T={a.T} B={a.B} N={a.N}, float32, CPU ({torch.get_num_threads()} threads), "
          f"torch {torch.__version__}")
    ours = next((r for r in rows if r["lib"] == "surrogate_nets"), None)
    print(f"{'library':16s} {'seconds':>8s} {'x ours':>7s} {'peak MB':>8s} {'x ours':>7s} {'rate':>6s}")
    for r in rows:
        rt = r["seconds"] / ours["seconds"] if ours else float("nan")
        rm = r["peak_mb"] / ours["peak_mb"] if ours and ours["peak_mb"] > 0 else float("nan")
        print(f"{r['lib']:16s} {r['seconds']:8.3f} {rt:7.2f} {r['peak_mb']:8.0f} {rm:7.2f} {r['rate']:6.3f}")


if __name__ == "__main__":
    main()
