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
    python benchmarks/train_peers.py [--epochs 10]

Prints one table: test accuracy and seconds per epoch, with the ratios ours / theirs.
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

TAU, HIDDEN, THRESH, ALPHA = 4.0, 256, 1.0, 2.0
BETA = 1 - 1 / TAU


# ------------------------------------------------------------------------------ models
def ours(n_in, n_out):
    return layers.Sequential(
        layers.Flatten(), nn.Linear(n_in, HIDDEN),
        neurons.LIF(tau=TAU, threshold=THRESH, surrogate=ATan(ALPHA)),
        nn.Linear(HIDDEN, n_out), neurons.LI(tau=TAU))


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

    def forward(self, x):
        from spikingjelly.activation_based import functional

        functional.reset_net(self)
        self.readout(self.fc2(self.lif(self.fc1(x.flatten(2)))))
        return self.readout.v_seq


def linears(model):
    return [m for m in model.modules() if isinstance(m, nn.Linear)]


def copy_weights(src, dst):
    a, b = linears(src), linears(dst)
    assert [l.weight.shape for l in a] == [l.weight.shape for l in b]
    with torch.no_grad():
        for la, lb in zip(a, b):
            lb.weight.copy_(la.weight)
            lb.bias.copy_(la.bias)


# ------------------------------------------------------------------------------ loop
def max_membrane_ce(trace, y):
    return F.cross_entropy(trace.max(0).values, y)


def train_epoch(model, loss_fn, loader, opt):
    model.train()
    t0 = time.perf_counter()
    for x, y in loader:
        loss = loss_fn(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return time.perf_counter() - t0


@torch.no_grad()
def accuracy(model, loader):
    model.eval()
    correct = n = 0
    for x, y in loader:
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
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--time-steps", type=int, default=12)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None)
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
    peers = {"snntorch": SnnTorchNet, "spikingjelly": SpikingJellyNet}
    versions = {"surrogate_nets": __import__("surrogate_nets").__version__}
    for name, cls in peers.items():
        try:
            m = cls(n_in, n_out)
        except ImportError as e:
            print(f"skipping {name}: {e}")
            continue
        copy_weights(reference, m)
        libs[name] = (m, max_membrane_ce)
        versions[name] = _version(name)

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
            st["times"].append(train_epoch(m, loss_fn, train_loader, st["opt"]))
            st["sched"].step()
        print(f"epoch {epoch + 1}/{a.epochs}: " + ", ".join(
            f"{n} {state[n]['times'][-1]:.2f}s" for n in libs), flush=True)
    for name, (m, _) in libs.items():
        state[name]["acc"] = accuracy(m, test_loader)
        state[name]["sec"] = statistics.median(state[name]["times"])

    ref = state["surrogate_nets"]
    print()
    print(f"DigitEvents, T={a.time_steps}, MLP 800-{HIDDEN}-10 (LIF tau={TAU}, LI readout), "
          f"membrane-ce, Adam lr={a.lr} cosine, batch {a.batch_size}, {a.epochs} epochs, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}")
    head = f"{'library':<16} {'version':<9} {'test acc':>9} {'s/epoch':>8} {'acc ours/theirs':>16} {'time ours/theirs':>17}"
    print(head)
    print("-" * len(head))
    for name in libs:
        st = state[name]
        acc_r = ref["acc"] / st["acc"] if st["acc"] else float("nan")
        t_r = ref["sec"] / st["sec"]
        ratio = ("" if name == "surrogate_nets" else f"{acc_r:16.3f} {t_r:17.2f}")
        print(f"{name:<16} {versions[name]:<9} {100 * st['acc']:8.2f}% {st['sec']:8.3f} {ratio}")


if __name__ == "__main__":
    main()
