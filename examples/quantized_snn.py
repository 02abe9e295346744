"""Quantized SNNs on DigitEvents: 4-bit weights, 2-level spikes, and a QCFS ANN run as an IF SNN.

Data: :class:`~surrogate_nets.data.DigitEvents`, the embedded "mini N-MNIST" (the UCI digits seen
by a simulated event camera during three saccades; 1,438 train / 359 test, 10 classes, no
download). ``as_tensors(T)`` bins each 300 ms recording into ``T`` event-count frames
``[2, 20, 20]`` (ON/OFF), flattened here to 800 inputs. Two experiments, both
``800 -> 128 -> 10`` with 4-bit weights:

1. **SNN with 4-bit weights and 2-level spikes.** ``QuantLinear(bits=4)`` -> ``LIF(levels=2)``
   -> ``QuantLinear(bits=4)`` on the ``T`` frames (time-major ``[T, B, 800]``), logits averaged
   over time, trained with BPTT. A 2-level LIF neuron emits 0, 1 or 2 spikes per step (the spike
   count histogram is printed). The weight steps are learned by LSQ through the same surrogate
   mechanism as the spikes; at the end ``export_int()`` gives the 4-bit codes (-8..7, stored as
   int8) and per-channel steps, whose product reproduces the forward's weights exactly.
2. **QCFS: a quantized ANN is an IF SNN.** ``QuantLinear(bits=4)`` -> ``QuantAct(levels=4)``
   (clip-floor-shift, Bu et al. ICLR 2022) -> ``QuantLinear(bits=4)``, trained on the
   time-averaged frames (scaled to unit RMS on the training set).
   :func:`surrogate_nets.quant.qcfs_to_if` gives IF neurons (threshold ``4 s``, initial membrane
   half the threshold, subtract reset) whose spike rate over ``4`` steps of constant input
   current equals the quantized activation: the converted SNN gives the same logits (up to float
   rounding), so the same accuracy.

Measured on a 2-core CPU (``--epochs 20 --time-steps 10``, seeds 0-7): SNN 96.9-97.5% test
accuracy, QCFS ANN 94.2-95.5% with its IF SNN identical (seed 0: SNN 97.5%, ANN = IF SNN 94.4%);
5-6 s in all (8 s wall with the Python start-up), ``T = 8`` or ``12`` alike. The run uses one
intra-op thread (``--threads``): these layers are too small to gain from more, and with other
jobs on the machine two OpenMP threads took 108 s instead of 6 s.

Run (``--out DIR`` also writes ``DIR/quantized_snn.png`` when matplotlib is installed)::

    python examples/quantized_snn.py            # [--epochs 20] [--time-steps 10] [--seed 0]
    python examples/quantized_snn.py --epochs 1  # a smoke run: about 2 s (3 s wall)
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

from surrogate_nets.data import DigitEvents
from surrogate_nets.neurons import IF, LIF
from surrogate_nets.neurons.lif import LIFState
from surrogate_nets.quant import QuantAct, QuantLinear, qcfs_to_if

FEATURES, CLASSES, HIDDEN = 2 * 20 * 20, 10, 128


def load(time_steps: int):
    """``(x_train, y_train, x_test, y_test)``: frames flattened to ``[N, T, 800]``, labels
    ``[N]``."""
    xtr, ytr = DigitEvents(train=True).as_tensors(time_steps)
    xte, yte = DigitEvents(train=False).as_tensors(time_steps)
    return xtr.flatten(2), ytr, xte.flatten(2), yte


class QuantSNN(nn.Module):
    """``[T, B, 800] -> [B, 10]``: 4-bit weights, LIF with 2-level spikes, logits averaged over
    time."""

    def __init__(self, hidden: int = HIDDEN, levels: int = 2):
        super().__init__()
        self.fc1 = QuantLinear(FEATURES, hidden, bits=4)  # acts on the last dim of [T, B, F]
        self.lif = LIF(beta=0.9, levels=levels, surrogate="atan")
        self.fc2 = QuantLinear(hidden, CLASSES, bits=4)

    def forward(self, x):
        return self.fc2(self.lif(self.fc1(x))).mean(0)


class QCFSNet(nn.Module):
    """``[B, 800] -> [B, 10]``: 4-bit weights, QCFS activation with ``L`` levels."""

    def __init__(self, hidden: int = HIDDEN, levels: int = 4):
        super().__init__()
        self.fc1 = QuantLinear(FEATURES, hidden, bits=4)
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


@torch.no_grad()
def accuracy(logits, y):
    return (logits.argmax(1) == y).float().mean().item()


def train(model, x, y, x_test, y_test, epochs, lr, batch=64, time_major=False):
    """Adam with a cosine learning-rate decay; ``x`` is sample-major ``[N, ...]``. Returns the
    per-epoch training loss and test accuracy."""
    # a batch [B, T, F] goes in time-major, [T, B, F]
    batch_of = (lambda t: t.transpose(0, 1)) if time_major else (lambda t: t)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    n = y.shape[0]
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs * -(-n // batch))
    history = {"loss": [], "test_acc": []}
    for ep in range(epochs):
        model.train()
        perm = torch.randperm(n)
        total = 0.0
        for i in range(0, n, batch):
            idx = perm[i:i + batch]
            loss = F.cross_entropy(model(batch_of(x[idx])), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * idx.numel()
        model.eval()
        with torch.no_grad():
            acc = accuracy(model(batch_of(x_test)), y_test)
        history["loss"].append(total / n)
        history["test_acc"].append(acc)
        if ep == 0 or (ep + 1) % 5 == 0 or ep + 1 == epochs:
            print(f"  epoch {ep + 1:3d}  loss {total / n:.4f}  test accuracy {acc:.3f}")
    return history


def plot(path, snn_hist, ann_hist):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.4))
    for name, h in (("SNN, 4-bit W, 2-level LIF", snn_hist), ("QCFS ANN (= IF SNN)", ann_hist)):
        ep = range(1, len(h["loss"]) + 1)
        # markers: a run of one epoch is a single point, which a line alone would not show
        ax1.plot(ep, h["loss"], "o-", ms=4, label=name)
        ax2.plot(ep, [100 * a for a in h["test_acc"]], "o-", ms=4, label=name)
    ax1.set(xlabel="epoch", ylabel="training loss", yscale="log")
    ax2.set(xlabel="epoch", ylabel="test accuracy (%)")
    ax2.legend()
    fig.suptitle("DigitEvents: quantized SNNs")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--time-steps", type=int, default=10, help="time bins T per 300 ms recording")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    ap.add_argument("--out", default=None,
                    help="directory for quantized_snn.png (needs matplotlib)")
    args = ap.parse_args(argv)
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        return run(args)
    finally:
        torch.set_num_threads(threads)  # main() may be called from another program


def run(args) -> dict:
    torch.manual_seed(args.seed)
    t0 = time.perf_counter()
    xtr, ytr, xte, yte = load(args.time_steps)
    print(f"DigitEvents: {len(ytr)} train / {len(yte)} test, T={args.time_steps} frames of "
          f"{FEATURES} inputs")

    print("1) SNN, 4-bit weights, LIF with 2-level spikes, BPTT")
    snn = QuantSNN()
    snn_hist = train(snn, xtr, ytr, xte, yte, args.epochs, lr=0.005, time_major=True)
    with torch.no_grad():
        counts = snn.lif(snn.fc1(xte.transpose(0, 1)))  # [T, B, hidden] spike counts 0..2
    share = [f"{(counts == k).float().mean().item():.3f}" for k in range(3)]
    print(f"  test accuracy {snn_hist['test_acc'][-1]:.3f}; hidden spikes per step 0/1/2: "
          f"{'/'.join(share)} of neuron-steps")
    for name in ("fc1", "fc2"):
        layer = getattr(snn, name)
        ex = layer.export_int()
        same = torch.equal(ex.dequantize(), layer.quantized_weight())
        print(f"  {name} export: {ex.weight.dtype}, codes "
              f"{int(ex.weight.min())}..{int(ex.weight.max())}, "
              f"{ex.weight_step.numel()} per-channel steps, dequantized == forward weight: {same}")

    print("2) QCFS ANN (4-bit weights, 4-level activation) on time-averaged frames, and its IF SNN")
    atr, ate = xtr.mean(1), xte.mean(1)
    scale = atr.square().mean().rsqrt()  # unit RMS on the training set
    atr, ate = atr * scale, ate * scale
    ann = QCFSNet()
    ann_hist = train(ann, atr, ytr, ate, yte, args.epochs, lr=0.003)
    with torch.no_grad():
        a_logits = ann(ate)
        s_logits = as_if_snn(ann, ate)
    steps = qcfs_to_if(ann.act).time_steps
    snn_acc = snn_hist["test_acc"][-1]
    ann_acc, if_acc = accuracy(a_logits, yte), accuracy(s_logits, yte)
    print(f"  ANN test accuracy {ann_acc:.3f}, IF-SNN (T={steps}) test accuracy {if_acc:.3f}, "
          f"max |logit difference| {(a_logits - s_logits).abs().max().item():.2e}")
    if args.out:
        try:
            os.makedirs(args.out, exist_ok=True)
            path = os.path.join(args.out, "quantized_snn.png")
            plot(path, snn_hist, ann_hist)
            print(f"  wrote {path}")
        except ImportError:
            print("  matplotlib not installed: no plot (pip install matplotlib)")
    print(f"done in {time.perf_counter() - t0:.1f} s")
    return {"snn_acc": snn_acc, "ann_acc": ann_acc, "if_snn_acc": if_acc}


if __name__ == "__main__":
    main()
