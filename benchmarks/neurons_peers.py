"""One LIF layer, forward + backward, side by side with snnTorch, SpikingJelly, Norse and Sinabs.

    # peers live in the `bench` extra (they pull their own torch); from the repo root:
    pip install -e ".[bench]"
    python benchmarks/neurons_peers.py                    # T=100, B=128, N=2048, float32, CPU
    python benchmarks/neurons_peers.py --T 50 --B 64 --N 1024 --repeat 5
    python benchmarks/neurons_peers.py --sizes "100,32,512;100,128,2048" --ours auto,torch,numba
    python benchmarks/neurons_peers.py --interleave --libs surrogate_nets,spikingjelly --repeat 15
    python benchmarks/neurons_peers.py --device cuda --dtype float16 --sizes "64,64,65536"

Every library runs its standard multi-step LIF with an arc-tangent (or its default) surrogate on
the same random input, each in its own subprocess so that peak resident memory
(``ru_maxrss`` minus the process's size after building the input) is per library. Reported:
median milliseconds of forward+backward over ``--repeat`` runs after one warm-up, the ratio to
the fastest row, the bytes autograd saves for backward (unique storages seen by
``torch.autograd.graph.saved_tensors_hooks``) and peak memory (CPU: resident-set growth; CUDA:
``max_memory_allocated``), as a markdown table. Semantics are close, not identical (see
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


def build(lib: str, T: int, B: int, N: int, device: str = "cpu", backend: str = "auto"):
    """Return ``(x, run)``: a leaf input and a function computing the spikes from it.

    SpikingJelly runs its fastest backend for the device (2.x chooses itself; 0.0.0.0.x: cupy).
    """
    import torch

    if lib == "surrogate_nets":
        sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        from surrogate_nets.neurons import LIF

        layer = LIF(tau=2.0, surrogate="atan", backend=backend).to(device)
        x = torch.rand(T, B, N) * 1.5
        return x, lambda x: layer(x)
    if lib == "snntorch":
        import snntorch as snn
        from snntorch import surrogate

        layer = snn.Leaky(beta=0.5, spike_grad=surrogate.atan()).to(device)
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
        # SpikingJelly >= 2.0 picks its fused kernel by itself (functional.lif_multi_step);
        # older releases expose ``backend`` ("cupy"/"triton" on CUDA)
        if device == "cuda" and "cupy" in getattr(layer, "supported_backends", ()):
            layer.backend = "cupy"
        layer = layer.to(device)
        x = torch.rand(T, B, N) * 1.5

        def run(x):
            functional.reset_net(layer)
            return layer(x)

        return x, run
    if lib == "norse":
        import norse.torch as norse

        layer = norse.LIF().to(device)
        x = torch.rand(T, B, N) * 1.5
        return x, lambda x: layer(x)[0]
    if lib == "sinabs":
        import sinabs.activation as sa
        import sinabs.layers as sl

        layer = sl.LIF(tau_mem=2.0, spike_fn=sa.SingleSpike, norm_input=False).to(device)
        x = torch.rand(B, T, N) * 1.5  # sinabs is batch-major

        def run(x):
            layer.reset_states()
            return layer(x)

        return x, run
    raise ValueError(f"unknown library {lib!r}; expected one of {LIBS}")


def _fwd_bwd_seconds(run, x, sync) -> float:
    """Wall time of one forward + backward (``run(x').float().sum().backward()``) on a fresh leaf
    copy ``x'`` of ``x``, between device synchronisations."""
    xi = x.clone().requires_grad_()
    sync()
    t0 = time.perf_counter()
    run(xi).float().sum().backward()
    sync()
    return time.perf_counter() - t0


def child(lib, T, B, N, repeat, device, dtype, backend):
    import torch
    from _saved import saved_bytes  # the sibling module (this file runs as a script)

    torch.manual_seed(0)
    x, run = build(lib, T, B, N, device, backend)
    x = x.to(device=device, dtype=getattr(torch, dtype))
    cuda = device == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    _fwd_bwd_seconds(run, x, sync)  # warm-up
    times = sorted(_fwd_bwd_seconds(run, x, sync) for _ in range(repeat))
    xi = x.clone().requires_grad_()
    out, saved = saved_bytes(lambda: run(xi))
    peak = (torch.cuda.max_memory_allocated() / 2**20 if cuda
            else (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024)
    print(json.dumps({"lib": lib, "seconds": times[len(times) // 2], "peak_mb": peak,
                      "saved_mb": saved / 2**20, "rate": float(out.detach().float().mean()),
                      "version": _version(lib)}))


def interleaved(jobs, T, B, N, repeat, device, dtype):
    """All libraries in this one process, one forward+backward of each in turn per round, so that
    background load drifts hit every library alike (peak memory is then not per library)."""
    import torch
    from _saved import saved_bytes

    cuda = device == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    built = []
    for lib, be in jobs:
        try:
            torch.manual_seed(0)
            x, run = build(lib, T, B, N, device, be)
        except ImportError as e:
            print(f"{lib}: skipped ({e})", file=sys.stderr)
            continue
        built.append((lib, be, x.to(device=device, dtype=getattr(torch, dtype)), run))
    times = {(lib, be): [] for lib, be, _, _ in built}
    for i in range(repeat + 1):  # round 0 is the warm-up
        for lib, be, x, run in built:
            dt = _fwd_bwd_seconds(run, x, sync)
            if i:
                times[(lib, be)].append(dt)
    rows = []
    for lib, be, x, run in built:
        xi = x.clone().requires_grad_()
        out, saved = saved_bytes(lambda: run(xi))
        ts = sorted(times[(lib, be)])
        rows.append({"lib": f"surrogate_nets[{be}]" if lib == "surrogate_nets" else lib,
                     "seconds": ts[len(ts) // 2], "peak_mb": float("nan"),
                     "saved_mb": saved / 2**20, "rate": float(out.detach().float().mean()),
                     "version": _version(lib)})
    return rows


def _version(lib):
    from importlib import metadata

    if lib.startswith("surrogate_nets"):
        import surrogate_nets

        return surrogate_nets.__version__
    try:
        return metadata.version(lib)
    except metadata.PackageNotFoundError:
        return "?"


def table(rows, title):
    """Markdown table: median ms, ratio to the fastest peer, saved-for-backward and peak memory."""
    lines = [title, "", "| library | version | median ms | x fastest | saved for backward MB | "
             "peak MB | spike rate |", "| --- | --- | --- | --- | --- | --- | --- |"]
    best = min(r["seconds"] for r in rows) if rows else float("nan")
    for r in rows:
        lines.append(f"| {r['lib']} | {r['version']} | {1e3 * r['seconds']:.1f} | "
                     f"{r['seconds'] / best:.2f} | {r['saved_mb']:.2f} | {r['peak_mb']:.0f} | "
                     f"{r['rate']:.3f} |")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--T", type=int, default=100)
    p.add_argument("--B", type=int, default=128)
    p.add_argument("--N", type=int, default=2048)
    p.add_argument("--sizes", default=None,
                   help="several 'T,B,N' separated by ';' (overrides --T/--B/--N)")
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument("--libs", default=",".join(LIBS))
    p.add_argument("--ours", default="auto",
                   help="comma-separated lif_scan backends to list for surrogate_nets (e.g. auto,torch,numba)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    p.add_argument("--threads", type=int, default=None, help="torch threads in every child")
    p.add_argument("--out", default=None, help="also write the markdown tables to this file")
    p.add_argument("--interleave", action="store_true",
                   help="run all libraries in one process, alternating every repetition "
                        "(fair ratios on a loaded machine; no per-library peak memory)")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--backend", default="auto", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.threads:
        import torch

        torch.set_num_threads(a.threads)
    if a.child:
        return child(a.child, a.T, a.B, a.N, a.repeat, a.device, a.dtype, a.backend)
    sizes = ([tuple(int(v) for v in s.split(",")) for s in a.sizes.split(";")] if a.sizes
             else [(a.T, a.B, a.N)])
    jobs = []
    for lib in a.libs.split(","):
        if lib == "surrogate_nets":
            jobs += [(lib, be) for be in a.ours.split(",")]
        else:
            jobs.append((lib, "auto"))
    import torch

    out = []
    for T, B, N in sizes:
        rows = interleaved(jobs, T, B, N, a.repeat, a.device, a.dtype) if a.interleave else []
        for lib, be in ([] if a.interleave else jobs):
            cmd = [sys.executable, os.path.abspath(__file__), "--child", lib, "--T", str(T),
                   "--B", str(B), "--N", str(N), "--repeat", str(a.repeat), "--device", a.device,
                   "--dtype", a.dtype, "--backend", be]
            if a.threads:
                cmd += ["--threads", str(a.threads)]
            r = subprocess.run(cmd, capture_output=True, text=True)
            line = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
            if r.returncode or not line:
                print(f"{lib}: failed ({r.stderr.strip().splitlines()[-1:]})", file=sys.stderr)
                continue
            row = json.loads(line[-1])
            if lib == "surrogate_nets":
                row["lib"] = f"surrogate_nets[{be}]"
            rows.append(row)
        threads = a.threads or torch.get_num_threads()
        title = (f"**LIF forward+backward, T={T} B={B} N={N}, {a.dtype}, {a.device}"
                 f"{'' if a.device == 'cuda' else f' ({threads} threads)'}**, median of {a.repeat}"
                 f"{', interleaved in one process' if a.interleave else ''}")
        text = table(rows, title)
        print(text + "\n", flush=True)
        out.append(text)
        if a.out:  # appended per size, so a time limit keeps the finished tables
            with open(a.out, "a") as f:
                f.write(text + "\n\n")


if __name__ == "__main__":
    main()
