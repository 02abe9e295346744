"""PNG plots of a run (optional: needs matplotlib, ``pip install surrogate-nets[plot]``).

* ``curves.png``: loss and accuracy per epoch (train and test);
* ``sample.png``: a spike raster of every recording neuron layer and the membrane trace of the
  last layer that records one, for the first test sample (from the neurons' ``recorded`` dicts;
  without recordings, the output is shown instead).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import List, Optional

import torch
from torch import nn

from ..losses.records import collect as records, enable_recording, restore_recording


def have_matplotlib() -> bool:
    """Whether matplotlib is installed (the optional ``plot`` extra)."""
    return importlib.util.find_spec("matplotlib") is not None


def _pyplot():
    import matplotlib
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    return plt


def plot_curves(history, path) -> Path:
    """Loss (left) and accuracy (right) per epoch, train and test."""
    plt = _pyplot()
    epochs = history["epoch"]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for key, style in (("train_loss", "-o"), ("test_loss", "--s")):
        vals = history[key]
        if any(v is not None for v in vals):
            axes[0].plot(epochs, [float("nan") if v is None else v for v in vals], style,
                         label=key.split("_")[0], ms=3)
    axes[0].set_xlabel("epoch")
    axes[0].set_ylabel("loss")
    for key, style in (("train_acc", "-o"), ("test_acc", "--s")):
        vals = history[key]
        if any(v is not None for v in vals):
            axes[1].plot(epochs, [float("nan") if v is None else 100 * v for v in vals], style,
                         label=key.split("_")[0], ms=3)
    axes[1].set_xlabel("epoch")
    axes[1].set_ylabel("accuracy (%)")
    for ax in axes:
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def _first_sample(loader):
    for batch in loader:
        x, y = batch[0], batch[1]
        return x[:, :1], (y[:1] if isinstance(y, torch.Tensor) and y.dim() > 0 else y)
    return None, None


@torch.no_grad()
def plot_sample(model: nn.Module, loader, path, device=None, max_neurons: int = 200) -> Optional[Path]:
    """Raster of the recorded spikes of every neuron layer, plus a membrane trace, for the first
    sample of ``loader``."""

    x, y = _first_sample(loader)
    if x is None:
        return None
    if device is not None:
        x = x.to(device)
    was = model.training
    model.eval()
    previous = enable_recording(model, ("s", "v"))
    try:
        out = model(x)
        spikes = [(f"layer {i + 1}", r[:, 0].reshape(r.shape[0], -1).float().cpu())
                  for i, r in enumerate(records(model, "s"))]
        membranes = [r[:, 0].reshape(r.shape[0], -1).float().cpu() for r in records(model, "v")]
    finally:
        restore_recording(previous)
        model.train(was)
    if not spikes:
        o = out[:, 0] if out.dim() == 3 else out[:1]
        spikes = [("output", o.reshape(o.shape[0], -1).float().cpu())]
    plt = _pyplot()
    rows = len(spikes) + 1
    fig, axes = plt.subplots(rows, 1, figsize=(7, 1.6 * rows + 1.0), sharex=True)
    label = f" (label {int(y[0])})" if isinstance(y, torch.Tensor) and y.numel() else ""
    for ax, (name, s) in zip(axes[:-1], spikes):
        n_total = s.shape[1]
        s = s[:, :max_neurons]
        t, n = torch.nonzero(s > 0, as_tuple=True)
        ax.scatter(t.numpy(), n.numpy(), s=2, marker="|", c="k")
        ax.set_ylabel(f"{name}\nneuron" + (f"\n(first {max_neurons})" if n_total > max_neurons else ""))
        ax.set_ylim(-0.5, s.shape[1] - 0.5)
    axes[0].set_title(f"spike raster of one test sample{label}")
    ax = axes[-1]
    target = int(y[0]) if isinstance(y, torch.Tensor) and y.numel() else None
    if membranes:
        v = membranes[-1][:, :10]
        for j in range(v.shape[1]):
            ax.plot(v[:, j].numpy(), lw=2.5 if j == target else 1,
                    label=f"neuron {j}" + (" (label)" if j == target else ""))
        ax.set_ylabel("membrane\n(last layer)")
        ax.legend(fontsize=6, ncol=5, loc="upper left")
    else:
        o = (out[:, 0] if out.dim() == 3 else out).float().cpu()
        for j in range(min(o.shape[-1], 10)):
            ax.plot(o[:, j].numpy(), lw=1)
        ax.set_ylabel("output")
    ax.set_xlabel("time step")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def save_plots(history, model, loader, out_dir, device=None) -> List[Path]:
    """Write ``curves.png`` and ``sample.png`` into ``out_dir``; nothing without matplotlib."""
    if not have_matplotlib() or not len(history):
        return []
    out_dir = Path(out_dir)
    written = [plot_curves(history, out_dir / "curves.png")]
    p = plot_sample(model, loader, out_dir / "sample.png", device=device)
    if p is not None:
        written.append(p)
    return written
