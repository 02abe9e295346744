"""Fixed vs learnable vs annealed surrogate sharpness: the library's headline idea in one script.

A spike is the Heaviside step ``H(v - theta)``; its backward pass uses the derivative of a smooth
relaxation ``primitive(x; alpha)`` whose sharpness ``alpha`` sets how far from threshold a
neuron still receives gradient. Because backward differentiates that relaxation, ``alpha`` itself
gets a gradient, ``d primitive / d alpha``, and can be an ``nn.Parameter`` trained with the
weights. This script trains the same MLP SNN on DigitEvents three times:

1. ``fixed``      -- ``surrogate.get("atan", alpha=A)``: the usual fixed sharpness;
2. ``learnable``  -- ``surrogate.get("atan", alpha=A, learnable=True, grad_scale="auto")``:
   alpha is learned per layer (``grad_scale="auto"`` scales its gradient by
   ``1/sqrt(#inputs)``, as LSQ does for step sizes, so one scalar is not swamped) and trained
   at its own learning rate ``--alpha-lr`` (``train.fit(..., alpha_lr=...)``);
3. ``annealed``   -- a fixed surrogate whose alpha an ``AlphaSchedule`` anneals from wide
   (``--alpha-start``) to sharp (``--alpha-end``) over the epochs.

It prints test accuracy and the final alpha of every hidden layer per run, and plots the
primitive and derivative of every family in ``surrogate.names()`` to ``surrogate_shapes.png``
(plus ``alpha_per_epoch.png``) in ``--out`` when matplotlib is installed.

Run (about 25-35 s on 2 CPU cores)::

    python examples/learnable_surrogate.py          # [--epochs 4] [--alpha 2] [--out runs/surrogates]
    python examples/learnable_surrogate.py --epochs 1 --limit 256 --out /tmp/sg   # smoke run
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
from surrogate_nets.neurons import LI, LIF


def build_mlp(sg_factory, hidden: int = 128) -> layers.Sequential:
    """Flatten -> Linear(800, hidden) -> LIF -> Linear(hidden, hidden) -> LIF -> Linear -> LI.

    ``sg_factory()`` makes one surrogate per spiking layer (so a learnable alpha is per layer).
    """
    return layers.Sequential(
        layers.Flatten(),
        nn.Linear(2 * 20 * 20, hidden), LIF(tau=2.0, surrogate=sg_factory()),
        nn.Linear(hidden, hidden), LIF(tau=2.0, surrogate=sg_factory()),
        nn.Linear(hidden, 10), LI(tau=2.0),
    )


def layer_alphas(model: nn.Module) -> list:
    """The current alpha of every surrogate in ``model`` (one float per spiking layer)."""
    return [float(m.alpha.detach().mean()) for m in model.modules() if isinstance(m, surrogate.Surrogate)]


def plot_shapes(path: str) -> None:
    """Primitive (the relaxed step) and derivative (the surrogate gradient) of every family."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = torch.linspace(-2.5, 2.5, 1001)
    fig, (ax_p, ax_d) = plt.subplots(1, 2, figsize=(11, 4))
    names = surrogate.names()
    # one distinct colour per family (the default cycle has 10 colours for 11+ families)
    palette = (list(plt.get_cmap("tab10").colors) + ["black"]
               + list(plt.get_cmap("tab20").colors[1::2]))
    colours = [palette[i % len(palette)] for i in range(len(names))]
    # pairs that coincide at their default alpha (the boxcars; fast_sigmoid and softsign, both
    # alpha 2): draw the first wide and pale underneath, the second thin and dashed on top
    styles = {"straight_through": dict(lw=4, alpha=0.35, zorder=1),
              "rectangle": dict(lw=1.3, ls="--", zorder=3),
              "fast_sigmoid": dict(lw=4, alpha=0.35, zorder=1),
              "softsign": dict(lw=1.3, ls="--", zorder=3)}
    for name, colour in zip(names, colours):
        sg = surrogate.get(name)                     # each family at its default alpha
        label = f"{name} (alpha={float(sg.alpha):g})"
        style = dict(dict(lw=1.5, zorder=2), **styles.get(name, {}))
        ax_p.plot(x, sg.primitive(x).detach(), color=colour, label=label, **style)
        ax_d.plot(x, sg.derivative(x).detach(), color=colour, label=label, **style)
    ax_p.step(x, (x >= 0).float(), "k:", lw=1, where="post", label="Heaviside H(x)")
    ax_p.set_title("primitive(x; alpha): relaxed step (used by the alpha gradient)")
    ax_d.set_title("derivative(x; alpha): surrogate gradient dH/dx")
    for ax in (ax_p, ax_d):
        ax.set_xlabel("x = v - threshold")
        ax.grid(alpha=0.3)
    ax_d.set_ylim(0, 2.0)  # at their default alpha every family peaks at <= 1.66 (dspike; most at 1)
    ax_d.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_alpha_curves(runs: dict, path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    for name, r in runs.items():
        per_layer = list(zip(*r["alphas"]))         # [layer][epoch]
        for i, a in enumerate(per_layer):
            ax.plot(range(len(a)), a, "-o", ms=3, label=f"{name}, layer {i + 1}")
    ax.set_xlabel("epoch (0: initial value)")
    ax.set_ylabel("alpha (sharpness)")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--time-steps", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--alpha", type=float, default=2.0,
                    help="alpha of the fixed run, initial alpha of the learnable one")
    ap.add_argument("--alpha-lr", type=float, default=2e-2,
                    help="learning rate of the learnable alphas (train.fit(alpha_lr=...): their own "
                         "Adam param group)")
    ap.add_argument("--alpha-start", type=float, default=0.5, help="annealed run: first (wide) alpha")
    ap.add_argument("--alpha-end", type=float, default=8.0, help="annealed run: last (sharp) alpha")
    ap.add_argument("--limit", type=int, default=None, help="use only the first N train/test samples")
    ap.add_argument("--out", default="runs/learnable_surrogate", help="directory for the PNG plots")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()

    x_tr, y_tr = DigitEvents(train=True).as_tensors(args.time_steps)
    x_te, y_te = DigitEvents(train=False).as_tensors(args.time_steps)
    if args.limit:
        x_tr, y_tr, x_te, y_te = x_tr[:args.limit], y_tr[:args.limit], x_te[:args.limit], y_te[:args.limit]
    train_loader = train.TensorLoader(x_tr, y_tr, batch_size=args.batch_size, shuffle=True, seed=args.seed)
    test_loader = train.TensorLoader(x_te, y_te, batch_size=256)

    # The three ways to choose alpha. Each entry: surrogate factory, and whether to anneal.
    variants = {
        "fixed": (lambda: surrogate.get("atan", alpha=args.alpha), False),
        "learnable": (lambda: surrogate.get("atan", alpha=args.alpha, learnable=True,
                                            grad_scale="auto"), False),
        "annealed": (lambda: surrogate.get("atan", alpha=args.alpha_start), True),
    }
    runs = {}
    for name, (factory, anneal) in variants.items():
        torch.manual_seed(args.seed)                 # same initial weights for every variant
        model = build_mlp(factory)
        alphas = [layer_alphas(model)]              # alpha per layer, before training and per epoch
        # After each epoch: record the alphas the epoch trained with, then (annealed run) move
        # the schedule one step. Callbacks run in list order (one that returns True stops fit).
        callbacks = [lambda state: alphas.append(layer_alphas(state.model))]
        if anneal:
            # Exponential wide -> sharp schedule of every fixed surrogate in the model, stepped
            # once per epoch so that the last epoch trains at alpha_end.
            schedule = surrogate.AlphaSchedule(model, args.alpha_start, args.alpha_end,
                                               steps=max(1, args.epochs - 1), mode="exp")
            callbacks.append(lambda state: schedule.step())
        # Learnable alphas move little at the weights' learning rate: fit(alpha_lr=...) gives
        # them their own Adam param group (found by type: every Surrogate with learnable=True).
        # The other runs have no learnable alpha, hence plain Adam on the weights.
        history = train.fit(model, losses.get("membrane-ce"), train_loader, test_loader,
                            epochs=args.epochs, lr=args.lr,
                            alpha_lr=args.alpha_lr if name == "learnable" else None,
                            callbacks=callbacks, seed=args.seed, progress=False, verbose=False,
                            device="cpu")
        runs[name] = {"acc": history.last["test_acc"], "alpha": alphas[-1], "alphas": alphas}
        print(f"{name:>10}: test accuracy {100 * runs[name]['acc']:5.1f}%   final alpha per layer "
              + ", ".join(f"{a:.3f}" for a in alphas[-1]), flush=True)

    os.makedirs(args.out, exist_ok=True)
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("matplotlib not installed: no plots (pip install matplotlib)")
    else:
        plot_shapes(os.path.join(args.out, "surrogate_shapes.png"))
        plot_alpha_curves(runs, os.path.join(args.out, "alpha_per_epoch.png"))
        print(f"plots: {args.out}/surrogate_shapes.png, {args.out}/alpha_per_epoch.png")
    print(f"done in {time.perf_counter() - t0:.1f} s")
    return runs


if __name__ == "__main__":
    main()
