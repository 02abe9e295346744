"""Quantized spiking networks: 4-bit weights, multi-level spikes, and a QCFS ANN run as an IF SNN.

Two small experiments on an in-script task (spike trains whose per-channel rates encode one of
four classes; no download), each well under a minute on a laptop CPU:

1. **SNN with 4-bit weights and 2-level spikes.** ``QuantLinear(bits=4)`` -> ``LIF(levels=2)``
   -> ``QuantLinear(bits=4)``, trained with BPTT. The weight steps are learned by LSQ through the
   same surrogate mechanism as the spikes; at the end ``export_int()`` gives int8 weights whose
   dequantized values reproduce the float forward exactly.
2. **QCFS: a quantized ANN is an IF SNN.** ``QuantLinear(bits=4)`` -> ``QuantAct(levels=4)``
   (clip-floor-shift, Bu et al. ICLR 2022) -> ``QuantLinear(bits=4)``, trained on the time-averaged
   input. :func:`surrogate_nets.quant.qcfs_to_if` gives IF neurons (threshold ``4 s``, initial
   membrane half the threshold, subtract reset) whose spike rate over ``T = 4`` steps equals the
   quantized activation: the converted SNN gives the same logits (up to float rounding).

Run::

    python examples/quantized_snn.py            # [--epochs 20] [--seed 0]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

try:
    import surrogate_nets  # noqa: F401
except ImportError:  # running from a checkout without installing: use the repository root
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from surrogate_nets.neurons import IF, LIF
from surrogate_nets.neurons.lif import LIFState
from surrogate_nets.quant import QuantAct, QuantLinear, qcfs_to_if

CLASSES, CHANNELS, T = 4, 40, 10


def make_task(n: int, gen: torch.Generator):
    """Bernoulli spike trains ``[T, n, CHANNELS]``: class ``c`` raises the rates of its own channels."""
    proto = torch.full((CLASSES, CHANNELS), 0.10)
    for c in range(CLASSES):
        proto[c, c * 8:(c + 1) * 8 + 4] = 0.2  # overlapping blocks, weak contrast
    y = torch.randint(0, CLASSES, (n,), generator=gen)
    rates = proto[y] * (0.5 + torch.rand(n, 1, generator=gen))  # per-sample gain
    x = (torch.rand(T, n, CHANNELS, generator=gen) < rates).float()
    return x, y


class QuantSNN(nn.Module):
    """``[T, B, 40] -> [B, 4]``: 4-bit weights, LIF with 2-level spikes, spike-count readout."""

    def __init__(self, hidden: int = 64, levels: int = 2):
        super().__init__()
        self.fc1 = QuantLinear(CHANNELS, hidden, bits=4)  # acts on the last dim of [T, B, F]
        self.lif = LIF(beta=0.9, levels=levels, surrogate="atan")
        self.fc2 = QuantLinear(hidden, CLASSES, bits=4)

    def forward(self, x):
        return self.fc2(self.lif(self.fc1(x))).mean(0)


class QCFSNet(nn.Module):
    """``[B, 40] -> [B, 4]``: 4-bit weights, QCFS activation with ``L`` levels."""

    def __init__(self, hidden: int = 64, levels: int = 4):
        super().__init__()
        self.fc1 = QuantLinear(CHANNELS, hidden, bits=4)
        self.act = QuantAct(levels=levels)
        self.fc2 = QuantLinear(hidden, CLASSES, bits=4)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


def as_if_snn(net: QCFSNet, x: torch.Tensor) -> torch.Tensor:
    """Run ``net`` as an SNN: the hidden QCFS activation becomes IF neurons over ``L`` steps."""
    p = qcfs_to_if(net.act)
    current = net.fc1(x)  # constant input current, repeated for each step
    neuron = IF(threshold=p.threshold, reset="subtract", surrogate="straight_through")
    v0 = LIFState(torch.full_like(current, float(p.v_init)))
    spikes = neuron(current.expand(p.time_steps, *current.shape), v0)  # [L, B, hidden]
    return net.fc2(spikes.mean(0) * p.threshold)  # rate * threshold = h(x)


def train(model, x, y, epochs, lr=0.01, batch=128):
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    n = y.shape[0]
    for ep in range(epochs):
        perm = torch.randperm(n)
        total = 0.0
        for i in range(0, n, batch):
            idx = perm[i:i + batch]
            xb = x[:, idx] if x.dim() == 3 else x[idx]
            loss = F.cross_entropy(model(xb), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * idx.numel()
        if ep == 0 or (ep + 1) % 10 == 0:
            print(f"  epoch {ep + 1:3d}  loss {total / n:.4f}")


@torch.no_grad()
def accuracy(logits, y):
    return (logits.argmax(1) == y).float().mean().item()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    xtr, ytr = make_task(1024, gen)
    xte, yte = make_task(512, gen)
    t0 = time.time()

    print("1) SNN, 4-bit weights, LIF with 2-level spikes")
    snn = QuantSNN()
    train(snn, xtr, ytr, args.epochs)
    snn.eval()
    print(f"  test accuracy {accuracy(snn(xte), yte):.3f}")
    ex = snn.fc1.export_int()
    same = torch.equal(ex.dequantize(), snn.fc1.quantized_weight())
    print(f"  fc1 export: {ex.weight.dtype}, codes {int(ex.weight.min())}..{int(ex.weight.max())}, "
          f"{ex.weight_step.numel()} per-channel steps, dequantized == forward weight: {same}")

    print("2) QCFS ANN (4-bit weights, 4-level activation) and its IF-neuron SNN over 4 steps")
    ann = QCFSNet()
    train(ann, xtr.mean(0), ytr, args.epochs)
    ann.eval()
    with torch.no_grad():
        a_logits = ann(xte.mean(0))
        s_logits = as_if_snn(ann, xte.mean(0))
    print(f"  ANN test accuracy {accuracy(a_logits, yte):.3f}, IF-SNN (T=4) test accuracy "
          f"{accuracy(s_logits, yte):.3f}, max |logit difference| "
          f"{(a_logits - s_logits).abs().max().item():.2e}")
    print(f"done in {time.time() - t0:.1f} s")


if __name__ == "__main__":
    main()
