"""A convolutional spiking network on DigitEvents, trained with ``train.fit``.

Shows how few lines a conv SNN takes: ``layers.Sequential`` runs the neurons (``LIF``, ``LI``)
over all ``T`` steps at once and applies the ordinary torch layers (``nn.Conv2d``,
``nn.AvgPool2d``, ``nn.Linear``) to every time step, so the network reads like an ANN::

    Conv3x3(2->16) -> LIF -> AvgPool2 -> Conv3x3(16->32) -> LIF -> AvgPool2
        -> Flatten -> Linear(32*5*5 -> 10) -> LI (non-spiking readout)

The readout is the membrane trace of a leaky integrator, trained with the max-over-time
cross entropy ``losses.get("membrane-ce")``. A ``RateRegularizer`` on the spikes that the LIF
layers record keeps every neuron firing a little (lower bound) and the layers sparse (upper
bound). Data: ``DigitEvents``, the embedded "mini N-MNIST" (1,438 train / 359 test digits seen
by a simulated event camera, 2 polarities x 20x20 pixels; no download).

Run (about 30-40 s on 2 CPU cores; writes curves.png, sample.png and checkpoints to --out)::

    python examples/conv_snn.py                      # [--epochs 3] [--time-steps 10]
    python examples/conv_snn.py --epochs 1 --limit 256 --out /tmp/conv   # a quick smoke run
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import torch
from torch import nn

try:
    import surrogate_nets  # noqa: F401
except ImportError:  # running from a checkout without installing: use the repository root
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from surrogate_nets import layers, losses, surrogate, train
from surrogate_nets.data import DigitEvents
from surrogate_nets.layers import Flatten
from surrogate_nets.neurons import LI, LIF


def build_model(tau: float = 2.0) -> layers.Sequential:
    """The conv SNN: ``[T, B, 2, 20, 20]`` event frames -> ``[T, B, 10]`` membrane trace."""
    def lif():  # each spiking layer gets its own surrogate (ATan, the library default family)
        return LIF(tau=tau, surrogate=surrogate.get("atan"))

    return layers.Sequential(
        nn.Conv2d(2, 16, 3, padding=1), lif(), nn.AvgPool2d(2),     # -> [T, B, 16, 10, 10]
        nn.Conv2d(16, 32, 3, padding=1), lif(), nn.AvgPool2d(2),    # -> [T, B, 32, 5, 5]
        Flatten(), nn.Linear(32 * 5 * 5, 10),                       # -> [T, B, 10]
        LI(tau=tau),                                                # membrane trace, no spikes
    )


def main(argv=None) -> float:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--time-steps", type=int, default=10, help="time bins T per 300 ms recording")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--limit", type=int, default=None,
                    help="use only the first N training (and N test) samples (quick runs)")
    ap.add_argument("--out", default="runs/conv_snn", help="output directory (plots, checkpoints)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    torch.manual_seed(args.seed)
    t0 = time.perf_counter()

    # Whole splits as dense event-count frames X [N, T, 2, 20, 20] (sample-major) and labels y.
    x_tr, y_tr = DigitEvents(train=True).as_tensors(args.time_steps)
    x_te, y_te = DigitEvents(train=False).as_tensors(args.time_steps)
    if args.limit:
        x_tr, y_tr, x_te, y_te = x_tr[:args.limit], y_tr[:args.limit], x_te[:args.limit], y_te[:args.limit]
    # TensorLoader yields time-major batches [T, B, 2, 20, 20], the layout every model here takes.
    train_loader = train.TensorLoader(x_tr, y_tr, batch_size=args.batch_size, shuffle=True, seed=args.seed)
    test_loader = train.TensorLoader(x_te, y_te, batch_size=256)
    print(f"DigitEvents: {len(y_tr)} train / {len(y_te)} test samples, frames {tuple(x_tr.shape[1:])}")

    model = build_model()
    loss = losses.get("membrane-ce")          # CE on max_t v_t of the LI readout
    # Per-neuron lower bound (0.01 spikes/step) and layer-mean upper bound (0.2 spikes/step).
    # fit() switches on spike recording in the neurons and applies this to their recorded spikes.
    reg = losses.RateRegularizer(lower=0.01, upper=0.2, lower_strength=10.0, upper_strength=10.0)

    history = train.fit(model, loss, train_loader, test_loader, epochs=args.epochs, lr=args.lr,
                        regularizers=[reg], out_dir=args.out, overwrite=True, seed=args.seed,
                        progress=False, device="cpu")
    acc = history.last["test_acc"]
    print(f"test accuracy {100 * acc:.1f}%  (mean spike rate {history.last['test_rate']:.3f} "
          f"spikes/neuron/step)  in {time.perf_counter() - t0:.1f} s; outputs in {args.out}")
    return acc


if __name__ == "__main__":
    main()
