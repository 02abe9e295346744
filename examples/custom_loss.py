"""A user-defined loss: focal loss on spike counts, and how to plug it in.

The loss below is an ordinary ``nn.Module`` with ``forward(output, target)``; nothing has to be
registered. It can be used

* in Python: ``surrogate_nets.losses.resolve(FocalRateLoss, gamma=2.0)`` or just
  ``FocalRateLoss(gamma=2.0)``;
* on the command line, by import path (from the repository root) or by file path::

      surrogate-nets train --loss examples.custom_loss:FocalRateLoss --loss-kw gamma=2.0
      surrogate-nets train --loss examples/custom_loss.py:FocalRateLoss

* from a pip-installed package, by name, after declaring an entry point in its
  ``pyproject.toml``::

      [project.entry-points."surrogate_nets.losses"]
      focal-rate = "my_package.losses:FocalRateLoss"

Run ``python examples/custom_loss.py`` (``--epochs E`` or ``--steps N``, ``--out DIR``) to train
a tiny two-layer spiking network (a hand-written LIF loop around
:func:`surrogate_nets.functional.spike`) with it on a synthetic task; it writes
``DIR/metrics.jsonl`` and ``DIR/custom_loss.png`` (loss per step, test accuracy per epoch).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import torch
from torch import nn

try:
    import surrogate_nets  # noqa: F401
except ImportError:  # running from a checkout without installing: use the repository root
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from surrogate_nets import losses
from surrogate_nets.functional import spike


class FocalRateLoss(losses.SpikeLoss):
    r"""Focal loss on the output spike counts.

    With the spike counts :math:`n_{b,c} = \sum_t s_{t,b,c}` and
    :math:`p_{b} = \mathrm{softmax}(n_{b} / \tau)`:

    .. math::
        L_b = -\,(1 - p_{b,y_b})^{\gamma}\,\log p_{b,y_b}

    :math:`\gamma = 0` gives the count cross entropy; larger :math:`\gamma` down-weights samples
    that are already classified with confidence.

    Args:
        gamma: focusing parameter :math:`\gamma \ge 0`.
        temperature: :math:`\tau > 0`, divides the counts before the softmax.
        reduction: ``"mean"`` | ``"sum"`` | ``"none"`` (per-sample ``[B]``).

    Shapes: output ``[T, B, C]`` spikes; target ``[B]`` class indices. Returns a scalar or ``[B]``.

    Reference: Lin, Goyal, Girshick, He & Dollar, "Focal loss for dense object detection",
    ICCV 2017.
    """

    def __init__(self, gamma: float = 2.0, temperature: float = 1.0, reduction: str = "mean"):
        super().__init__(reduction)  # checks reduction
        if not gamma >= 0:
            raise ValueError(f"gamma must be >= 0, got {gamma!r}")
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature!r}")
        self.gamma = float(gamma)
        self.temperature = float(temperature)

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if output.dim() != 3:
            raise ValueError(f"output must be [T, B, C], got shape {tuple(output.shape)}")
        if tuple(target.shape) != (output.shape[1],):
            raise ValueError(f"target must be class indices [B]={(output.shape[1],)}, got shape "
                             f"{tuple(target.shape)}")
        logp = torch.log_softmax(output.sum(0) / self.temperature, dim=-1)
        logp_y = logp.gather(1, target.long().unsqueeze(1)).squeeze(1)
        per_sample = -(1.0 - logp_y.exp()).pow(self.gamma) * logp_y
        return self._reduce(per_sample)


class TinySNN(nn.Module):
    """Linear -> LIF -> Linear -> LIF, unrolled over time; returns output spikes ``[T, B, C]``."""

    def __init__(self, n_in: int, n_hidden: int, n_out: int, beta: float = 0.9):
        super().__init__()
        self.fc1 = nn.Linear(n_in, n_hidden)
        self.fc2 = nn.Linear(n_hidden, n_out)
        self.beta = beta
        self.recorded = {}  # the recording protocol: losses.regularization() reads "s"

    def lif(self, current: torch.Tensor) -> torch.Tensor:
        v = torch.zeros_like(current[0])
        out = []
        for i_t in current:
            v = self.beta * v + i_t
            s = spike(v - 1.0, "fast_sigmoid")
            v = v - s  # soft reset by the threshold
            out.append(s)
        return torch.stack(out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: [T, B, n_in]
        hidden = self.lif(self.fc1(x))
        self.recorded = {"s": hidden}
        return self.lif(self.fc2(hidden))


def make_task(n: int, prototypes: torch.Tensor, generator=None):
    """Noisy copies of class prototypes, clipped to [0, 1]; returns (x [n, n_in], y [n])."""
    y = torch.randint(0, prototypes.shape[0], (n,), generator=generator)
    x = (prototypes[y] + 0.15 * torch.randn(n, prototypes.shape[1], generator=generator)).clamp(0, 1)
    return x, y


def rate_encode(x: torch.Tensor, steps: int, generator=None) -> torch.Tensor:
    """Bernoulli spikes ``[T, B, n_in]`` with probability ``x`` per step."""
    return (torch.rand((steps,) + tuple(x.shape), generator=generator) < x).float()


BATCH = 64


def plot(path, steps, step_losses, epoch_steps, test_accs) -> None:
    """Training loss per step and test accuracy per epoch (markers: one epoch is one point)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.4))
    ax1.plot(steps, step_losses, "-", lw=1)
    ax1.set(xlabel="optimisation step", ylabel="focal loss + rate regulariser")
    ax2.plot(epoch_steps, [100 * a for a in test_accs], "o-", ms=4)
    ax2.set(xlabel="optimisation step", ylabel="test accuracy (%)", ylim=(0, 100))
    fig.suptitle("FocalRateLoss on a 3-class rate-coded task")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=None,
                        help="passes over the 512 training samples (8 steps of 64 each); "
                             "overrides --steps")
    parser.add_argument("--steps", type=int, default=150, help="optimisation steps")
    parser.add_argument("--time-steps", type=int, default=20, help="simulation steps T")
    parser.add_argument("--gamma", type=float, default=2.0, help="focal gamma")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/custom_loss",
                        help="directory for metrics.jsonl and custom_loss.png")
    args = parser.parse_args(argv)

    g = torch.Generator().manual_seed(args.seed)
    torch.manual_seed(args.seed)
    prototypes = torch.rand(3, 10, generator=g)  # 3 classes, 10 input channels
    x_train, y_train = make_task(512, prototypes, g)
    x_test, y_test = make_task(256, prototypes, g)
    per_epoch = -(-x_train.shape[0] // BATCH)
    total = args.epochs * per_epoch if args.epochs is not None else args.steps

    model = TinySNN(10, 64, 3)
    loss_fn = losses.RegularizedLoss(
        losses.resolve(FocalRateLoss, gamma=args.gamma),
        losses.RateRegularizer(lower=0.01, upper=0.3, lower_strength=1.0, upper_strength=1.0),
    ).bind(model)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)

    def test_accuracy() -> float:
        with torch.no_grad():
            counts = model(rate_encode(x_test, args.time_steps, g)).sum(0)
        return (counts.argmax(-1) == y_test).float().mean().item()

    os.makedirs(args.out, exist_ok=True)
    step_losses, epoch_steps, test_accs = [], [], []
    with open(os.path.join(args.out, "metrics.jsonl"), "w") as log:
        for step in range(total):
            idx = torch.randint(0, x_train.shape[0], (BATCH,), generator=g)
            out = model(rate_encode(x_train[idx], args.time_steps, g))
            loss = loss_fn(out, y_train[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            step_losses.append(loss.item())
            if step % 50 == 0 or step == total - 1:
                print(f"step {step:4d}  loss {loss.item():.4f}")
            if (step + 1) % per_epoch == 0 or step == total - 1:   # an epoch (or the run) ends
                epoch_steps.append(step + 1)
                test_accs.append(test_accuracy())
                log.write(json.dumps({"step": step + 1, "train_loss": step_losses[-1],
                                      "test_acc": test_accs[-1]}) + "\n")

    acc = test_accs[-1]
    print(f"test accuracy {acc:.3f}")
    try:
        path = os.path.join(args.out, "custom_loss.png")
        plot(path, range(1, total + 1), step_losses, epoch_steps, test_accs)
        print(f"wrote {path}")
    except ImportError:
        print("matplotlib not installed: no plot (pip install matplotlib)")
    return acc


if __name__ == "__main__":
    main()
