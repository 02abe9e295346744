"""One whole training step (forward, backward, Adam) next to SpikingJelly and snnTorch.

The two workloads the targets of issue 11 name, on random inputs (no download):

* ``nmnist-conv``: the conv net of snnTorch's N-MNIST tutorial (tutorial 7): Conv2d(2, 12, 5) ->
  MaxPool2d(2) -> LIF -> Conv2d(12, 32, 5) -> MaxPool2d(2) -> LIF -> Flatten -> Linear(800, 10) ->
  LIF, beta = 0.5 (SpikingJelly tau = 2), threshold 1, subtract reset, ATan surrogate alpha = 2;
  input ``[T=20, B=32, 2, 34, 34]`` binary events at ``--conv-density`` (default 5% of the
  pixel-polarity bins active per frame; an assumption standing in for N-MNIST's event frames).
* ``shd-mlp``: an SHD-like MLP 700-256-256-20, LIF after every Linear (same parameters), input
  ``[T=100, B=64, 700]`` binary at ``--mlp-density`` (default 5%).

Initial weights: PyTorch's default init, then each weighted layer scaled (one gain per layer,
found by bisection on the batch) so that the LIF after it fires at ``--rate`` (default 10%): with
the plain init these nets stay silent on sparse inputs, unlike any trained net. Loss (the same for
all): cross entropy on the output spike counts (sum over time). Same initial weights everywhere
(copied from one seeded init), same batch for every step. Each library in its idiomatic fast
form: ours ``layers.Sequential`` with ``backend="auto"`` (plain ``nn.Linear``/``nn.Conv2d``/
``nn.MaxPool2d``; ``+spike layers``: every Linear / Conv2d whose input is a spike/event tensor is a
:class:`surrogate_nets.layers.SpikeLinear` / :class:`~surrogate_nets.layers.SpikeConv2d` (sparse
compute, input saved as int8), a Conv2d with spike input followed by ``MaxPool2d(2)`` one
:class:`~surrogate_nets.layers.SpikeConvPool2d` (fused; uint8 argmax offsets saved); ``+bf16``: and every LIF with ``save_dtype=torch.bfloat16``,
which runs the torch scan backend); SpikingJelly multi-step ``layer.*`` +
``LIFNode(tau, decay_input=False, v_reset=None)`` (torch backend on CPU, its fused CuPy/Triton kernel
on CUDA where it offers one); snnTorch stateless layers
folded over time and ``Leaky(beta, reset_delay=False)`` stepped over time.

Timing: after warm-up, the repetitions are interleaved (rep 1 of every library, rep 2 of every
library, ...) so background load hits all alike; the median ms per step is reported. "saved MB" are
the bytes autograd saves for backward in one step (unique storages seen by
``torch.autograd.graph.saved_tensors_hooks``; the input batch, the same for all, included).

Run (peers in their own venv)::

    PYTHONPATH=. /work/venv-bench/bin/python benchmarks/train_step_peers.py --threads 2 \
        [--workloads nmnist-conv,shd-mlp] [--repeat 15] [--profile] [--out table.md]
    # on a shared machine: --threads 1 --clock thread (CPU time of the one thread, load-robust)
    # on a GPU (benchmarks/gpu_check.sh): --device cuda --workloads nmnist-conv --batch 256
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

from _saved import saved_bytes as _saved_bytes  # the sibling module (this file runs as a script)

THRESH, ALPHA = 1.0, 2.0
WORKLOADS = {
    # name: (T, B, input shape, spec); spec items: ("conv", cin, cout, k) | ("pool", k) |
    # ("lif",) | ("flatten",) | ("linear", i, o)
    "nmnist-conv": (20, 32, (2, 34, 34), 0.5,
                    [("conv", 2, 12, 5), ("pool", 2), ("lif",), ("conv", 12, 32, 5), ("pool", 2),
                     ("lif",), ("flatten",), ("linear", 800, 10), ("lif",)]),
    "shd-mlp": (100, 64, (700,), 0.75,
                [("linear", 700, 256), ("lif",), ("linear", 256, 256), ("lif",),
                 ("linear", 256, 20), ("lif",)]),
}


# ------------------------------------------------------------------------------ models
def build_ours(spec, beta, spike_linear=False, **lif_kw):
    """``spike_linear``: the spike layers a user would pick: every Linear whose input is
    spikes/events (not after a conv/pool) is a ``layers.SpikeLinear``; such a Conv2d is a
    ``layers.SpikeConvPool2d`` when a 2x2 max pool follows (conv + pool fused), else a
    ``layers.SpikeConv2d``; other max-pools are ``layers.MaxPool2d`` (uint8 argmax offsets saved)."""
    from surrogate_nets import layers, neurons
    from surrogate_nets.surrogate import ATan

    mods, prev, spec = [], "input", list(spec)
    for pos, item in enumerate(spec):
        kind = item[0]
        if kind == "pool" and mods and isinstance(mods[-1], layers.SpikeConvPool2d):
            continue  # fused into the conv before it
        if kind == "conv":
            sparse_in = spike_linear and prev in ("input", "lif")
            pooled = sparse_in and pos + 1 < len(spec) and spec[pos + 1] == ("pool", 2)
            cls = layers.SpikeConvPool2d if pooled else layers.SpikeConv2d if sparse_in else nn.Conv2d
            mods.append(cls(item[1], item[2], item[3]))
        elif kind == "pool":
            mods.append((layers.MaxPool2d if spike_linear else nn.MaxPool2d)(item[1]))
        elif kind == "flatten":
            mods.append(layers.Flatten())
            continue  # keeps `prev`
        elif kind == "linear":
            sparse_in = spike_linear and prev in ("input", "lif")
            mods.append((layers.SpikeLinear if sparse_in else nn.Linear)(item[1], item[2]))
        elif kind == "lif":
            mods.append(neurons.LIF(beta=beta, threshold=THRESH, surrogate=ATan(ALPHA), **lif_kw))
        prev = kind
    return layers.Sequential(*mods)


class SnnTorchNet(nn.Module):
    """Stateless layers folded over T*B; every ``Leaky`` stepped over time."""

    def __init__(self, spec, beta):
        super().__init__()
        import snntorch as snn
        from snntorch import surrogate

        mods = []
        for item in spec:
            kind = item[0]
            if kind == "conv":
                mods.append(nn.Conv2d(item[1], item[2], item[3]))
            elif kind == "pool":
                mods.append(nn.MaxPool2d(item[1]))
            elif kind == "flatten":
                mods.append(nn.Flatten())
            elif kind == "linear":
                mods.append(nn.Linear(item[1], item[2]))
            else:
                mods.append(snn.Leaky(beta=beta, threshold=THRESH, spike_grad=surrogate.atan(alpha=ALPHA),
                                      reset_mechanism="subtract", reset_delay=False))
        self.layers = nn.ModuleList(mods)

    def forward(self, x):
        import snntorch as snn

        T, B = x.shape[:2]
        for m in self.layers:
            if isinstance(m, snn.Leaky):
                mem = m.init_leaky()
                out = []
                for t in range(T):
                    spk, mem = m(x[t], mem)
                    out.append(spk)
                x = torch.stack(out)
            else:
                y = m(x.reshape(T * B, *x.shape[2:]))
                x = y.reshape(T, B, *y.shape[1:])
        return x


class SpikingJellyNet(nn.Module):
    def __init__(self, spec, beta, device="cpu"):
        super().__init__()
        from spikingjelly.activation_based import layer, neuron, surrogate

        tau = 1.0 / (1.0 - beta)
        mods = []
        for item in spec:
            kind = item[0]
            if kind == "conv":
                mods.append(layer.Conv2d(item[1], item[2], item[3], step_mode="m"))
            elif kind == "pool":
                mods.append(layer.MaxPool2d(item[1], step_mode="m"))
            elif kind == "flatten":
                mods.append(layer.Flatten(step_mode="m"))
            elif kind == "linear":
                mods.append(layer.Linear(item[1], item[2], step_mode="m"))
            else:
                mods.append(neuron.LIFNode(tau=tau, decay_input=False, v_threshold=THRESH, v_reset=None,
                                           surrogate_function=surrogate.ATan(alpha=ALPHA), step_mode="m"))
                if device == "cuda" and "cupy" in getattr(mods[-1], "supported_backends", ()):
                    mods[-1].backend = "cupy"  # SpikingJelly's fused CUDA kernel (older releases)
        self.net = nn.Sequential(*mods)

    def forward(self, x):
        from spikingjelly.activation_based import functional

        functional.reset_net(self)
        return self.net(x)


def weighted(model):
    return [m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]


def copy_weights(src, dst):
    a, b = weighted(src), weighted(dst)
    assert [l.weight.shape for l in a] == [l.weight.shape for l in b]
    with torch.no_grad():
        for la, lb in zip(a, b):
            lb.weight.copy_(la.weight)
            lb.bias.copy_(la.bias)


# ------------------------------------------------------------------------------ measuring
def loss_fn(out, y):
    return F.cross_entropy(out.sum(0), y)


def step(model, opt, x, y):
    loss = loss_fn(model(x), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss


def saved_bytes(model, x, y):
    """Bytes autograd saves for backward in one training step (unique storages)."""
    loss, n = _saved_bytes(lambda: loss_fn(model(x), y))
    loss.backward()
    model.zero_grad(set_to_none=True)
    return n


def _version(dist):
    from importlib import metadata
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "?"


@torch.no_grad()
def calibrate(model, x, rate):
    """Scale each weighted layer (by bisection on a gain) so the next LIF fires at ``rate``.

    With PyTorch's default init and threshold 1 these nets are silent on sparse inputs (no
    spikes after the first layer), which no trained net is; 5-30% is typical of training runs.
    """
    from surrogate_nets import neurons
    from surrogate_nets.layers.sequential import is_time_major
    from surrogate_nets.layers.time_distributed import fold_time

    def call(m, h):
        return m(h) if is_time_major(m) else fold_time(m, h)

    mods, h, i, rates = list(model), x, 0, []
    while i < len(mods):
        if isinstance(mods[i], (nn.Linear, nn.Conv2d)):
            j = next(k for k in range(i, len(mods)) if isinstance(mods[k], neurons.LIF))
            w0, b0 = mods[i].weight.clone(), mods[i].bias.clone()
            lo, hi = 0.0, 6.0  # log2 gain
            for _ in range(12):
                g = 2 ** ((lo + hi) / 2)
                mods[i].weight.copy_(g * w0)
                mods[i].bias.copy_(g * b0)
                out = h
                for m in mods[i:j + 1]:
                    out = call(m, out)
                mid = (lo + hi) / 2
                lo, hi = (mid, hi) if float((out != 0).float().mean()) < rate else (lo, mid)
            h, i = out, j + 1
            rates.append(float((out != 0).float().mean()))
        else:
            h, i = call(mods[i], h), i + 1
    return rates


def make_libs(name, seed, libs_wanted, extra=(), x=None, rate=0.1, device="cpu"):
    """``{label: model}`` with the same initial weights (calibrated to fire at ``rate`` on ``x``,
    on the CPU), moved to ``device``."""
    T, B, shape, beta, spec = WORKLOADS[name]
    torch.manual_seed(seed)
    ref = build_ours(spec, beta)
    make_libs.rates = calibrate(ref, x, rate) if x is not None else []
    models = {"surrogate_nets": ref}
    sl = build_ours(spec, beta, spike_linear=True)
    copy_weights(ref, sl)
    models["surrogate_nets+spike layers"] = sl
    for label, kw in extra:
        m = build_ours(spec, beta, spike_linear=True, **kw)
        copy_weights(ref, m)
        models[label] = m
    for lib, cls in (("spikingjelly", SpikingJellyNet), ("snntorch", SnnTorchNet)):
        if lib not in libs_wanted:
            continue
        try:
            m = cls(spec, beta, device) if cls is SpikingJellyNet else cls(spec, beta)
        except ImportError as e:
            print(f"skipping {lib}: {e}")
            continue
        copy_weights(ref, m)
        models[lib] = m
    return {k: m.to(device) for k, m in models.items()}


def run_workload(name, a):
    T, B, shape, beta, spec = WORKLOADS[name]
    B = a.batch or B
    density = a.conv_density if name == "nmnist-conv" else a.mlp_density
    g = torch.Generator().manual_seed(a.seed)
    x = (torch.rand(T, B, *shape, generator=g) < density).float()
    n_out = [s for s in spec if s[0] == "linear"][-1][2]
    y = torch.randint(0, n_out, (B,), generator=g)
    models = make_libs(name, a.seed, a.libs.split(","), a.extra, x, a.rate, a.device)
    x, y = x.to(a.device), y.to(a.device)
    opts = {k: torch.optim.Adam(m.parameters(), lr=1e-3) for k, m in models.items()}
    for k, m in models.items():
        for _ in range(a.warmup):
            step(m, opts[k], x, y)
    base = time.thread_time if a.clock == "thread" else time.perf_counter
    if a.device == "cuda":
        def clock():
            torch.cuda.synchronize()
            return base()
    else:
        clock = base
    times = {k: [] for k in models}
    for _ in range(a.repeat):
        for k, m in models.items():
            t0 = clock()
            step(m, opts[k], x, y)
            times[k].append(1e3 * (clock() - t0))
    saved = {k: saved_bytes(m, x, y) for k, m in models.items()}
    med = {k: statistics.median(v) for k, v in times.items()}
    sj = "spikingjelly" if "spikingjelly" in med else None
    lines = [f"**{name}: T={T}, B={B}, input {'x'.join(map(str, shape))} at {density:.0%} density, "
             f"layers {' '.join(s[0] + ('' if len(s) == 1 else str(s[1:])) for s in spec)}; "
             f"initial LIF rates {', '.join(f'{r:.1%}' for r in make_libs.rates)}; "
             f"{a.device if a.device == 'cuda' else f'{torch.get_num_threads()} threads'}, median of "
             f"{a.repeat} interleaved steps"
             f"{', CPU time of the one thread' if a.clock == 'thread' else ''}**", "",
             "| library | ms/step (median) | min-max | x SpikingJelly time | saved for backward MB | "
             "x SpikingJelly saved |", "| --- | --- | --- | --- | --- | --- |"]
    for k in models:
        rt = f"{med[k] / med[sj]:.2f}" if sj else "-"
        rs = f"{saved[k] / saved[sj]:.2f}" if sj else "-"
        lines.append(f"| {k} | {med[k]:.1f} | {min(times[k]):.0f}-{max(times[k]):.0f} | {rt} | "
                     f"{saved[k] / 2**20:.2f} | {rs} |")
    text = "\n".join(lines)
    print(text, "\n", flush=True)
    if a.profile:
        profile(models["surrogate_nets+spike layers"], opts["surrogate_nets+spike layers"], x, y, name)
    return text


def profile(model, opt, x, y, name):
    """Top ops by self CPU time over 3 steps of ours (+spike layers)."""
    from torch.profiler import ProfilerActivity, profile as prof

    with prof(activities=[ProfilerActivity.CPU]) as p:
        for _ in range(3):
            step(model, opt, x, y)
    print(f"profile of surrogate_nets+spike layers on {name} (3 steps):")
    print(p.key_averages().table(sort_by="self_cpu_time_total", row_limit=14))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workloads", default="nmnist-conv,shd-mlp")
    p.add_argument("--libs", default="spikingjelly,snntorch")
    p.add_argument("--repeat", type=int, default=15)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--batch", type=int, default=None, help="batch size of every workload (default: its own)")
    p.add_argument("--conv-density", type=float, default=0.05)
    p.add_argument("--mlp-density", type=float, default=0.05)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rate", type=float, default=0.1,
                   help="initial firing rate of every LIF layer (weights scaled to it)")
    p.add_argument("--profile", action="store_true")
    p.add_argument("--out", default=None)
    p.add_argument("--no-bf16", action="store_true",
                   help="leave out the row with LIF(save_dtype=torch.bfloat16)")
    p.add_argument("--clock", choices=("wall", "thread"), default="wall",
                   help="'thread': CPU time of the calling thread (needs --threads 1, where every "
                        "library runs in that thread): robust to other jobs on a shared machine")
    a = p.parse_args(argv)
    if a.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: CUDA is not available")
    if a.clock == "thread" and (a.threads != 1 or a.device == "cuda"):
        p.error("--clock thread needs --threads 1 (with more threads the work runs in other threads too)")
    a.extra = () if a.no_bf16 else (("surrogate_nets+spike layers+bf16", {"save_dtype": torch.bfloat16}),)
    if a.threads:
        torch.set_num_threads(a.threads)
    import surrogate_nets

    where = (torch.cuda.get_device_name() if a.device == "cuda"
             else f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads")
    head = (f"torch {torch.__version__}, surrogate_nets {surrogate_nets.__version__}, spikingjelly "
            f"{_version('spikingjelly')}, snntorch {_version('snntorch')}, {where}")
    print(head)
    texts = [run_workload(w, a) for w in a.workloads.split(",")]
    if a.out:
        with open(a.out, "a") as f:
            f.write(head + "\n\n" + "\n\n".join(texts) + "\n\n")


if __name__ == "__main__":
    main()
