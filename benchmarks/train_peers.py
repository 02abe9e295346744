"""End-to-end training next to snnTorch and SpikingJelly: same data, architecture, loss, epochs.

The command line's default run, rebuilt in each library:

* data: the embedded DigitEvents set, ``T = 12`` frames of ``2 x 20 x 20`` event counts, the same
  batches in the same order for everybody (one :class:`surrogate_nets.train.TensorLoader`);
* model: Flatten -> Linear(800, 256) -> LIF(tau = 4, i.e. beta = 0.75, threshold 1, subtract
  reset, ATan surrogate alpha = 2) -> Linear(256, 10) -> leaky-integrator readout (beta = 0.75),
  with the *same initial weights* in all three (copied from one seeded init);
* loss: cross entropy on the readout membrane's maximum over time (``membrane-ce``);
* Adam, lr 2e-3, cosine schedule over the epochs, batch 64.

Each library runs in its idiomatic fast form: ours ``layers.Sequential`` with the fused LIF scan;
snnTorch ``Leaky(beta, reset_delay=False)`` (the variant whose equations equal ours) stepped over
time after one folded Linear, ``Leaky(reset_mechanism="none")`` as readout; SpikingJelly
multi-step ``LIFNode(tau, decay_input=False, v_reset=None)`` with ``layer.Linear(step_mode="m")``
and a never-firing ``LIFNode(v_threshold=1e9)`` as readout (``store_v_seq``). All train in the same plain loop (so loop overhead is equal); the epochs are run
round-robin over the libraries so that background load hits all of them alike, and the median
training time per epoch is reported.

Run (the peers live in a separate environment)::

    pip install -e ".[bench]"          # snntorch, spikingjelly, ... (they pull their own torch)
    python benchmarks/train_peers.py [--epochs 10] [--device cuda] [--out table.md]

Prints one markdown table: test accuracy, median seconds per epoch, the ratio to the fastest, and
the bytes autograd saves for backward in one training step (``saved_tensors_hooks``).
``surrogate_nets+SpikeLinear`` is ours with the Linear after the LIF layer replaced by
:class:`surrogate_nets.layers.SpikeLinear` (same weights).

The per-step workloads of issue 11's targets (snnTorch's N-MNIST conv net, an SHD-like MLP) are in
``benchmarks/train_step_peers.py``; ``train_peers.py --workloads nmnist-conv,shd-mlp [its options]``
runs that script instead.
"""

from __future__ import annotations

import argparse
import math
import platform
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

from surrogate_nets import layers, neurons
from surrogate_nets.data import DigitEvents
from surrogate_nets.losses import MembraneCrossEntropy
from surrogate_nets.surrogate import ATan
from surrogate_nets.train import TensorLoader
from _saved import saved_bytes as _saved_bytes  # sibling modules (this file runs as a script)
from train_step_peers import copy_weights

TAU, HIDDEN, THRESH, ALPHA = 4.0, 256, 1.0, 2.0
BETA = 1 - 1 / TAU


# ------------------------------------------------------------------------------ models
def ours(n_in, n_out, spike_linear=False):
    """``spike_linear=True``: the Linear after the LIF layer gathers the active inputs."""
    fc2 = layers.SpikeLinear(HIDDEN, n_out) if spike_linear else nn.Linear(HIDDEN, n_out)
    return layers.Sequential(
        layers.Flatten(), nn.Linear(n_in, HIDDEN),
        neurons.LIF(tau=TAU, threshold=THRESH, surrogate=ATan(ALPHA)),
        fc2, neurons.LI(tau=TAU))


class SnnTorchNet(nn.Module):
    def __init__(self, n_in, n_out):
        super().__init__()
        import snntorch as snn
        from snntorch import surrogate

        self.fc1 = nn.Linear(n_in, HIDDEN)
        self.lif = snn.Leaky(beta=BETA, threshold=THRESH, spike_grad=surrogate.atan(alpha=ALPHA),
                             reset_mechanism="subtract", reset_delay=False)
        self.fc2 = nn.Linear(HIDDEN, n_out)
        self.readout = snn.Leaky(beta=BETA, threshold=THRESH, reset_mechanism="none")

    def forward(self, x):
        T, B = x.shape[:2]
        cur = self.fc1(x.reshape(T * B, -1)).reshape(T, B, -1)
        mem = self.lif.init_leaky()
        spikes = []
        for t in range(T):
            spk, mem = self.lif(cur[t], mem)
            spikes.append(spk)
        cur2 = self.fc2(torch.stack(spikes))
        mem2 = self.readout.init_leaky()
        trace = []
        for t in range(T):
            _, mem2 = self.readout(cur2[t], mem2)
            trace.append(mem2)
        return torch.stack(trace)


class SpikingJellyNet(nn.Module):
    def __init__(self, n_in, n_out):
        super().__init__()
        from spikingjelly.activation_based import layer, neuron, surrogate

        self.fc1 = layer.Linear(n_in, HIDDEN, step_mode="m")
        self.lif = neuron.LIFNode(tau=TAU, decay_input=False, v_threshold=THRESH, v_reset=None,
                                  surrogate_function=surrogate.ATan(alpha=ALPHA), step_mode="m")
        self.fc2 = layer.Linear(HIDDEN, n_out, step_mode="m")
        # a never-firing LIF is the leaky integrator (v_threshold=inf would give 0 * inf = nan in
        # the soft reset; NonSpikingLIFNode decays its input, i.e. a 1/tau-scaled trace)
        self.readout = neuron.LIFNode(tau=TAU, decay_input=False, v_threshold=1e9,
                                      v_reset=None, step_mode="m", store_v_seq=True)

    def use_fastest_backend(self, device):
        """CUDA: SpikingJelly's triton (else cupy) backend; CPU: torch."""
        if device != "cuda":
            return
        for node in (self.lif, self.readout):
            for be in ("triton", "cupy"):
                if be in getattr(node, "supported_backends", ()):
                    try:
                        node.backend = be
                        break
                    except Exception:  # noqa: BLE001
                        continue

    def forward(self, x):
        from spikingjelly.activation_based import functional

        functional.reset_net(self)
        self.readout(self.fc2(self.lif(self.fc1(x.flatten(2)))))
        return self.readout.v_seq


# ------------------------------------------------------------------------------ loop
def max_membrane_ce(trace, y):
    return F.cross_entropy(trace.max(0).values, y)


def _sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def train_epoch(model, loss_fn, loader, opt, device="cpu"):
    model.train()
    _sync(device)
    t0 = time.perf_counter()
    for x, y in loader:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        loss = loss_fn(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    _sync(device)
    return time.perf_counter() - t0


def saved_bytes(model, loss_fn, x, y):
    """Bytes autograd saves for backward in one training step (unique storages)."""
    model.train()
    loss, n = _saved_bytes(lambda: loss_fn(model(x), y))
    loss.backward()
    model.zero_grad(set_to_none=True)
    return n


@torch.no_grad()
def accuracy(model, loader, device="cpu"):
    model.eval()
    correct = n = 0
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        correct += int((model(x).max(0).values.argmax(-1) == y).sum())
        n += len(y)
    return correct / n


def _version(dist: str) -> str:
    from importlib import metadata
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "?"


def main():
    import sys

    if any(arg.startswith("--workloads") for arg in sys.argv[1:]):
        import os

        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from train_step_peers import main as step_main

        return step_main(sys.argv[1:])
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--time-steps", type=int, default=12)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--out", default=None, help="also append the markdown table to this file")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)

    xtr, ytr = DigitEvents(train=True).as_tensors(a.time_steps)
    xte, yte = DigitEvents(train=False).as_tensors(a.time_steps)
    train_loader = TensorLoader(xtr, ytr, a.batch_size, shuffle=True, seed=a.seed)
    test_loader = TensorLoader(xte, yte, 256)
    n_in, n_out = math.prod(xtr.shape[2:]), 10

    torch.manual_seed(a.seed)
    reference = ours(n_in, n_out)
    libs = {"surrogate_nets": (reference, MembraneCrossEntropy("max"))}
    sparse = ours(n_in, n_out, spike_linear=True)
    copy_weights(reference, sparse)
    libs["surrogate_nets+SpikeLinear"] = (sparse, MembraneCrossEntropy("max"))
    peers = {"snntorch": SnnTorchNet, "spikingjelly": SpikingJellyNet}
    versions = {"surrogate_nets": __import__("surrogate_nets").__version__}
    versions["surrogate_nets+SpikeLinear"] = versions["surrogate_nets"]
    for name, cls in peers.items():
        try:
            m = cls(n_in, n_out)
        except ImportError as e:
            print(f"skipping {name}: {e}")
            continue
        copy_weights(reference, m)
        if hasattr(m, "use_fastest_backend"):
            m.use_fastest_backend(a.device)
        libs[name] = (m, max_membrane_ce)
        versions[name] = _version(name)

    for name, (m, _) in libs.items():
        m.to(a.device)
    xb, yb = next(iter(train_loader))
    xb, yb = xb.to(a.device), yb.to(a.device)
    state = {}
    for name, (m, _) in libs.items():
        opt = torch.optim.Adam(m.parameters(), lr=a.lr)
        state[name] = {"opt": opt, "sched": torch.optim.lr_scheduler.CosineAnnealingLR(opt, a.epochs),
                       "times": []}
    for epoch in range(a.epochs):
        for name, (m, loss_fn) in libs.items():
            train_loader.set_epoch(epoch)
            torch.manual_seed(a.seed + epoch)
            st = state[name]
            st["times"].append(train_epoch(m, loss_fn, train_loader, st["opt"], a.device))
            st["sched"].step()
        print(f"epoch {epoch + 1}/{a.epochs}: " + ", ".join(
            f"{n} {state[n]['times'][-1]:.2f}s" for n in libs), flush=True)
    for name, (m, loss_fn) in libs.items():
        state[name]["acc"] = accuracy(m, test_loader, a.device)
        state[name]["sec"] = statistics.median(state[name]["times"])
        state[name]["saved"] = saved_bytes(m, loss_fn, xb, yb)

    best = min(st["sec"] for st in state.values())
    ref = state["surrogate_nets"]
    lines = [f"**Training, DigitEvents T={a.time_steps}, MLP 800-{HIDDEN}-10 (LIF tau={TAU}, LI "
             f"readout), Adam lr={a.lr} cosine, batch {a.batch_size}, {a.epochs} epochs, "
             f"{a.device}" + ("" if a.device == "cuda" else f" ({torch.get_num_threads()} threads)")
             + f", torch {torch.__version__}, {platform.processor() or platform.machine()}**", "",
             "| library | version | test acc | median s/epoch | x fastest | saved for backward per "
             "step MB | saved x ours |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for name in libs:
        st = state[name]
        lines.append(f"| {name} | {versions[name]} | {100 * st['acc']:.2f}% | {st['sec']:.3f} | "
                     f"{st['sec'] / best:.2f} | {st['saved'] / 2**20:.2f} | "
                     f"{st['saved'] / max(ref['saved'], 1):.2f} |")
    text = "\n".join(lines)
    print()
    print(text)
    if a.out:
        with open(a.out, "a") as f:
            f.write(text + "\n\n")


if __name__ == "__main__":
    main()
