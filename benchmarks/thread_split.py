"""Where the numba kernels' parts run (``surrogate_nets.kernels._parallel``), interleaved in one process.

Variants of ours, interleaved with each other and with SpikingJelly (the anchor):

* ``team``: every numba kernel on torch's OpenMP team (the default);
* ``lif-pool``: the LIF/ALIF/LI scans on the shared thread pool (``numba_lif._TEAM = False``),
  the other kernels (spike conv / pool / linear) on the team;
* ``pool``: every kernel on the shared pool (as ``SURROGATE_NETS_OMP_TEAM=0``).

``--what lif``: one LIF layer forward+backward (as ``neurons_peers.py``) at each ``--sizes``;
``--what step``: the whole training step of ``train_step_peers.py`` (ours with spike layers).
Prints the median ms per variant and its ratio to SpikingJelly::

    PYTHONPATH=. /work/venv-bench/bin/python benchmarks/thread_split.py --what lif --threads 2
    PYTHONPATH=. /work/venv-bench/bin/python benchmarks/thread_split.py --what step --threads 2
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from surrogate_nets.kernels import _parallel, numba_lif  # noqa: E402

VARIANTS = ("team", "lif-pool", "pool")


def _set(variant):
    lib = _parallel._libgomp()  # looked up (and cached) once
    _set.lib = getattr(_set, "lib", lib)
    numba_lif._TEAM = variant == "team"
    _parallel._STATE["lib"] = None if variant == "pool" else _set.lib


def _interleave(runs, repeat, warmup):
    """``runs``: {label: (variant or None, fn)}; median ms of each over ``repeat`` rounds. Each
    round visits every entry (in an order rotated from round to round, since what ran just before
    matters: whose threads are awake) and times its second of two back-to-back calls (steady state,
    as in training, where every step uses the same variant)."""
    for variant, fn in runs.values():
        if variant:
            _set(variant)
        for _ in range(warmup):
            fn()
    keys = list(runs)
    times = {k: [] for k in runs}
    for r in range(repeat):
        for k in keys[r % len(keys):] + keys[:r % len(keys)]:
            variant, fn = runs[k]
            if variant:
                _set(variant)
            fn()
            t0 = time.perf_counter()
            fn()
            times[k].append(1e3 * (time.perf_counter() - t0))
    _set("team")
    return {k: statistics.median(v) for k, v in times.items()}


def _report(title, med):
    print(f"**{title}** ({torch.get_num_threads()} threads)")
    for k, v in med.items():
        print(f"  {k:>14}: {v:8.2f} ms   x SpikingJelly {v / med['spikingjelly']:.3f}")


def bench_lif(a):
    from neurons_peers import build

    for size in a.sizes.split(";"):
        T, B, N = map(int, size.split(","))
        runs = {}
        for lib in ("surrogate_nets", "spikingjelly"):
            x, run = build(lib, T, B, N)
            x = x.clone().requires_grad_(True)

            def fb(run=run, x=x):
                run(x).float().sum().backward()
                x.grad = None

            if lib == "spikingjelly":
                runs[lib] = (None, fb)
            else:
                runs.update({f"ours {v}": (v, fb) for v in VARIANTS})
        _report(f"LIF fwd+bwd T={T} B={B} N={N}, median of {a.repeat}", _interleave(runs, a.repeat, a.warmup))


def bench_step(a):
    import train_step_peers as tsp

    for name in a.workloads.split(","):
        T, B, shape, beta, spec = tsp.WORKLOADS[name]
        density = a.conv_density if name == "nmnist-conv" else a.mlp_density
        g = torch.Generator().manual_seed(0)
        x = (torch.rand(T, B, *shape, generator=g) < density).float()
        n_out = [s for s in spec if s[0] == "linear"][-1][2]
        y = torch.randint(0, n_out, (B,), generator=g)
        models = tsp.make_libs(name, 0, ["spikingjelly"], (), x, 0.1)
        ours, sj = models["surrogate_nets+spike layers"], models["spikingjelly"]
        opt_o, opt_s = torch.optim.Adam(ours.parameters(), lr=1e-3), torch.optim.Adam(sj.parameters(), lr=1e-3)
        runs = {f"ours {v}": (v, lambda: tsp.step(ours, opt_o, x, y)) for v in VARIANTS}
        runs["spikingjelly"] = (None, lambda: tsp.step(sj, opt_s, x, y))
        _report(f"training step {name}, median of {a.repeat}", _interleave(runs, a.repeat, a.warmup))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--what", choices=("lif", "step"), default="lif")
    p.add_argument("--sizes", default="100,32,512;100,128,2048")
    p.add_argument("--workloads", default="nmnist-conv,shd-mlp")
    p.add_argument("--conv-density", type=float, default=0.05)
    p.add_argument("--mlp-density", type=float, default=0.05)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeat", type=int, default=15)
    p.add_argument("--warmup", type=int, default=3)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    if not _parallel.team_available():
        print("note: torch's OpenMP team is unavailable here: every variant runs on the pool")
    (bench_lif if a.what == "lif" else bench_step)(a)


if __name__ == "__main__":
    main()
