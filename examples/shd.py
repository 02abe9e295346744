"""Spiking Heidelberg Digits (SHD) with a recurrent spiking network and learnable time constants.

Data: SHD (Cramer, Stradmann, Schemmel & Zenke, "The Heidelberg spiking data sets for the
systematic evaluation of spiking neural networks", IEEE TNNLS 33(7), 2022): spoken digits 0-9 in
English and German (20 classes), converted by a cochlea model into spikes of 700 channels; 8,156
training and 2,264 test recordings. Read by tonic
(``data.get_dataset("shd", ...)``) and binned, as usual for this set, into ``T = 100`` frames of
10 ms over the fixed window [0, 1 s] (``time_steps=100, duration_us=1_000_000``: tonic's
``ToFrame(time_window=10 ms, start_time=0, end_time=1 s)``; the few spikes after 1 s are dropped).

Network (``--neuron``): ``700 -> H`` feed-forward weights into a recurrent layer of ``H`` spiking
neurons, then ``H -> 20`` into a leaky, non-spiking readout (``LI``):

* ``rlif`` (default): recurrent LIF, all-to-all recurrent weights (``RLIF``);
* ``synaptic``: current-based LIF (``Synaptic``: synaptic current and membrane, two time
  constants; the model of Cramer et al.), with an all-to-all recurrent ``nn.Linear`` around it;
* ``alif``: adaptive-threshold LIF (``ALIF``, Bellec et al. NeurIPS 2018), recurrent likewise.

Every time constant (membrane, synaptic current, adaptation, readout) is an ``nn.Parameter``
per neuron (``learn_beta=True`` ...), initialised to ``--tau`` steps (``--tau-syn`` for the
synaptic current); ``shd_tau.png`` shows their distribution before and after training.
Loss: cross entropy on the maximum over time of the readout membrane (Cramer et al.'s
max-over-time readout; ``losses.get("membrane-ce")``).

Literature (test accuracy on SHD; checked in the sources):

* Cramer et al. 2022 (dataset paper): recurrent SNN 83.2 +- 1.3 % (with data augmentation and
  noise injection; the figure the dataset's maintainers list for that paper at
  zenkelab.org/resources/spiking-heidelberg-datasets-shd).
* Perez-Nieves et al., Nat. Commun. 2021: recurrent SNN with heterogeneous (learned) time
  constants 82.7 +- 0.8 % (same list).
* Bittar & Garner, Front. Neurosci. 2022: recurrent SNN with adaptation 94.6 % (same list).

What this script reaches is in the README (epochs and machine stated there); a short CPU run is
far from these numbers.

Run::

    python examples/shd.py --data-dir ~/data --download           # fetch SHD once
    python examples/shd.py --data-dir ~/data --epochs 30 --neuron synaptic --cache-dir ~/data/c
    python examples/shd.py --data-dir ~/data --limit 500 --epochs 2   # a quick look
    python examples/shd.py --data-dir ~/data --resume --epochs 40      # continue a run
"""

from __future__ import annotations

import os
import sys

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _recorded as common  # noqa: E402  (examples/_recorded.py: the shared options)

from surrogate_nets import layers, losses  # noqa: E402
from surrogate_nets.neurons import ALIF, LI, RLIF, Synaptic  # noqa: E402

CHANNELS, CLASSES = 700, 20


class Recurrent(nn.Module):
    """A spiking layer with all-to-all recurrence for neurons without a built-in one.

    .. math:: s_t = \\mathrm{neuron}(x_t + W s_{t-1})

    Runs step by step (``neuron.step``), carrying the neuron state and the last spikes.
    Shapes: ``[T, B, N] -> [T, B, N]``.
    """

    time_major = True

    def __init__(self, neuron: nn.Module, n: int):
        super().__init__()
        self.neuron = neuron
        self.recurrent = nn.Linear(n, n, bias=False)

    def forward(self, x):
        state, s = None, torch.zeros_like(x[0])
        out = []
        for x_t in x:
            s, state = self.neuron.step(x_t + self.recurrent(s), state)
            out.append(s)
        return torch.stack(out)


def build_model(neuron: str = "rlif", hidden: int = 256, tau: float = 5.0,
                tau_syn: float = 2.0) -> layers.Sequential:
    """``[T, B, 1, 700]`` -> ``[T, B, 20]`` readout membrane trace."""
    if neuron == "rlif":
        spiking = RLIF(tau=tau, learn_beta=True, num_neurons=hidden)
    elif neuron == "synaptic":
        spiking = Recurrent(Synaptic(tau=tau, tau_syn=tau_syn, learn_beta=True,
                                     learn_alpha_syn=True, num_neurons=hidden), hidden)
    elif neuron == "alif":
        spiking = Recurrent(ALIF(tau=tau, learn_beta=True, learn_rho=True,
                                 num_neurons=hidden), hidden)
    else:
        raise ValueError(f"neuron must be 'rlif', 'synaptic' or 'alif', got {neuron!r}")
    return layers.Sequential(
        layers.Flatten(),                           # [T, B, 1, 700] -> [T, B, 700]
        nn.Linear(CHANNELS, hidden), spiking,       # -> [T, B, H] spikes
        nn.Linear(hidden, CLASSES),
        LI(tau=tau, learn_beta=True, num_neurons=CLASSES),   # -> [T, B, 20] membrane
    )


def time_constants(model) -> dict:
    """Every learnable decay of the model as time constants in steps, ``tau = 1 / (1 - beta)``."""
    out = {}
    for name, m in model.named_modules():
        for attr in ("beta", "alpha_syn", "rho"):
            if hasattr(type(m), attr) and hasattr(m, "raw_" + attr):
                decay = getattr(m, attr).detach().flatten().cpu()
                out[f"{name}.{attr}"] = (1 / (1 - decay.clamp(max=1 - 1e-6))).tolist()
    return out


def plot_taus(before: dict, after: dict, path) -> str:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(after), figsize=(4 * len(after), 3), squeeze=False)
    for ax, key in zip(axes[0], after):
        ax.hist(before[key], bins=30, alpha=0.6, label="initial", color="tab:gray")
        ax.hist(after[key], bins=30, alpha=0.7, label="learned", color="tab:blue")
        ax.set_title(key, fontsize=9)
        ax.set_xlabel("time constant (steps of 10 ms)")
    axes[0][0].set_ylabel("neurons")
    axes[0][0].legend()
    return common.save_figure(fig, path)


def main(argv=None) -> int:
    ap = common.parser(__doc__.splitlines()[0], time_steps=100, epochs=20, batch_size=64,
                       lr=2e-3, out="runs/shd", denoise=False)
    ap.add_argument("--neuron", choices=("rlif", "synaptic", "alif"), default="rlif")
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--tau", type=float, default=5.0, help="initial time constants (steps)")
    ap.add_argument("--tau-syn", type=float, default=2.0, help="initial synaptic time constant")
    ap.add_argument("--duration-ms", type=int, default=1000,
                    help="fixed window binned into --time-steps frames (--frames time)")
    args = ap.parse_args(argv)
    initial = {}   # the time constants before training, for the plot

    def build():
        model = build_model(args.neuron, args.hidden, args.tau, args.tau_syn)
        initial.update(time_constants(model))
        return model

    return common.run(
        args, "shd", "SHD", build, losses.get("membrane-ce"),
        data_kw=dict(duration_us=1000 * args.duration_ms), grad_clip=1.0,
        plot=lambda model, test_set: plot_taus(initial, time_constants(model),
                                               os.path.join(args.out, "shd_tau.png")))


if __name__ == "__main__":
    sys.exit(main())
