"""Train a small SNN, export it to NIR, read it back here, in snnTorch and in SpikingJelly, compare spikes.

    PYTHONPATH=. python examples/nir_export.py --epochs 2 --out runs/nir

Writes ``model.nir`` and ``spikes.png`` (output spike rasters of one test digit, per simulator).

The peers are optional (``pip install surrogate-nets[bench]``; never in the same environment as
a pinned torch): a missing one is reported and skipped. The network uses ``reset="zero"``, the
reset NIR defines (``v -> v_reset = 0``), so the peers' importers simulate the same equations;
the only remaining difference is the tie ``v == v_threshold`` (we and SpikingJelly fire, snnTorch
does not).
"""

from __future__ import annotations

import argparse
import importlib
import os

import torch
from torch import nn
from tqdm import tqdm

from surrogate_nets import layers, neurons
from surrogate_nets import nir as snir
from surrogate_nets.data import DigitEvents
from surrogate_nets.stats import activity_stats


PEERS = (("snnTorch", "snntorch.import_nir"),
         ("SpikingJelly", "spikingjelly.activation_based.nir_exchange"))   # (name, NIR module)


def build():
    return layers.Sequential(
        nn.Linear(2 * 20 * 20, 128), neurons.LIF(beta=0.9, reset="zero"),
        nn.Linear(128, 10), neurons.LIF(beta=0.9, reset="zero"))


def train(model, x, y, epochs, batch=64):
    opt = torch.optim.Adam(model.parameters(), 2e-3)
    for _ in tqdm(range(epochs), desc="train"):
        perm = torch.randperm(x.shape[1])
        for i in range(0, len(perm), batch):
            idx = perm[i:i + batch]
            loss = nn.functional.cross_entropy(model(x[:, idx]).sum(0), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()


def run_stepwise(net, x):
    """Peers' NIR importers build per-step modules returning ``(out, state)``."""
    state, outs = None, []
    for xt in x:
        out, state = net(xt, state)
        outs.append(out)
    return torch.stack(outs)


def agreement(a, b):
    return float((a == b).float().mean())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--steps", type=int, default=10, help="time steps T")
    ap.add_argument("--limit", type=int, default=None, help="train on the first N samples only")
    ap.add_argument("--out", default="runs/nir_export")
    a = ap.parse_args(argv)
    os.makedirs(a.out, exist_ok=True)
    torch.manual_seed(0)
    xtr, ytr = DigitEvents(train=True).as_tensors(a.steps, binary=True)
    xte, yte = DigitEvents(train=False).as_tensors(a.steps, binary=True)
    # [T, N, 800]: flattened up front, because snnTorch's importer reads NIR's per-sample Flatten
    # (start_dim=0) as torch's nn.Flatten(start_dim=0) and would flatten the batch too
    xtr, xte = xtr.transpose(0, 1).flatten(2).contiguous(), xte.transpose(0, 1).flatten(2).contiguous()
    if a.limit:
        xtr, ytr = xtr[:, :a.limit], ytr[:a.limit]
    model = build()
    train(model, xtr, ytr, a.epochs)
    model.eval()
    with torch.no_grad():
        ours = model(xte)
    print(f"test accuracy (spike count): {float((ours.sum(0).argmax(1) == yte).float().mean()):.4f}")
    print(activity_stats(model, xte).table())

    import nir

    graph = snir.export(model, xte[:, :1])
    path = os.path.join(a.out, "model.nir")
    nir.write(path, graph)
    print(f"wrote {path}: nodes {list(graph.nodes)}")
    with torch.no_grad():
        back = snir.load(nir.read(path))(xte)
    print(f"surrogate_nets -> NIR -> surrogate_nets: output spike agreement {agreement(back, ours):.6f}")
    rasters = {"surrogate_nets": ours, "NIR -> surrogate_nets": back}

    for peer, module in PEERS:
        try:
            import_from_nir = importlib.import_module(module).import_from_nir
            with torch.no_grad():
                out = run_stepwise(import_from_nir(nir.read(path)), xte)
        except ImportError as e:
            print(f"{peer} not available ({e})")
            continue
        print(f"surrogate_nets -> NIR -> {peer + ':':16}output spike agreement {agreement(out, ours):.6f}")
        rasters[f"NIR -> {peer}"] = out
    plot(rasters, int(yte[0]), os.path.join(a.out, "spikes.png"))


def plot(rasters, label, path):
    """Output spike rasters (time x class) of the first test digit, one panel per simulator."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no plot")
        return
    fig, axes = plt.subplots(1, len(rasters), figsize=(3 * len(rasters), 2.8), sharey=True)
    for ax, (name, s) in zip(axes, rasters.items()):
        ax.imshow(s[:, 0].T.numpy(), aspect="auto", cmap="Greys", interpolation="nearest")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("time step")
    axes[0].set_ylabel(f"output neuron (label {label})")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
