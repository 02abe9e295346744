"""N-MNIST through tonic with a convolutional spiking network of PLIF neurons, trained by ``fit``.

Data: N-MNIST (Orchard, Jayawant, Cohen & Thakor, "Converting static image datasets to spiking
neuromorphic datasets using saccades", Front. Neurosci. 2015): the MNIST digits recorded by an
ATIS event camera during three saccades, 34x34 pixels, 60,000 training and 10,000 test
recordings of about 300 ms. Read by tonic (``data.get_dataset("nmnist", ...)``) and sliced into
``T`` frames ``[2, 34, 34]`` (ON/OFF event counts) by time (``--frames time``, the default) or by
event count (``--frames count``); ``--denoise US`` applies tonic's ``Denoise`` first,
``--cache-dir`` keeps the frames on disk (``tonic.DiskCachedDataset``; epochs after the first are
much faster). A partial folder (a subset of the recordings) is accepted with a warning that says
how many were found.

Network: ``Conv3x3(C) -> BatchNorm -> PLIF -> MaxPool2`` twice (34 -> 8 pixels), then
``Linear -> LI`` (a leaky, non-spiking readout); PLIF: LIF with a learnable membrane time
constant (Fang et al., ICCV 2021). Loss: cross entropy on the maximum over time of the readout
membrane (``losses.get("membrane-ce")``).

Literature: Fang et al. 2021 report 99.61 % test accuracy on N-MNIST with PLIF neurons (their
conv net with 128 channels, T = 10, best test accuracy during training; 99.57 % with the epoch
chosen on a validation split), as listed in the README of their code
(github.com/fangwei123456/Parametric-Leaky-Integrate-and-Fire-Spiking-Neuron). The small default
network here (C = 16) is sized for a CPU.

No silent downloads: without ``--download`` a missing data set stops with a message that says
which files tonic expects where (and the URL and md5 of the archive), exit status 2. Put the
extracted N-MNIST into ``<data-dir>/NMNIST/`` (``Train/`` and ``Test/`` folders of
``<digit>/<id>.bin`` files) or pass ``--download`` once.

Run::

    python examples/nmnist_tonic.py --data-dir ~/data --download        # first time: fetch it
    python examples/nmnist_tonic.py --data-dir ~/data --cache-dir ~/data/cache --epochs 3
    python examples/nmnist_tonic.py --data-dir ~/data --limit 2000 --epochs 1   # quick look
    python examples/nmnist_tonic.py --data-dir ~/data --resume --epochs 5       # continue
"""

from __future__ import annotations

import os
import sys

from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _recorded as common  # noqa: E402  (examples/_recorded.py: the shared options)

from surrogate_nets import layers, losses  # noqa: E402
from surrogate_nets.neurons import LI, PLIF  # noqa: E402


def build_model(channels: int = 16, tau: float = 2.0) -> layers.Sequential:
    """``[T, B, 2, 34, 34]`` -> ``[T, B, 10]`` membrane trace of a leaky readout."""
    c = channels
    return layers.Sequential(
        nn.Conv2d(2, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), PLIF(tau=tau),
        nn.MaxPool2d(2),                                                   # -> [T, B, C, 17, 17]
        nn.Conv2d(c, 2 * c, 3, padding=1, bias=False), nn.BatchNorm2d(2 * c), PLIF(tau=tau),
        nn.MaxPool2d(2),                                                   # -> [T, B, 2C, 8, 8]
        layers.Flatten(), nn.Linear(2 * c * 8 * 8, 10), LI(tau=tau),       # -> [T, B, 10]
    )


def main(argv=None) -> int:
    ap = common.parser(__doc__.splitlines()[0], time_steps=16, epochs=3, batch_size=64,
                       lr=2e-3, out="runs/nmnist")
    ap.add_argument("--channels", type=int, default=16, help="conv channels of the first block")
    ap.add_argument("--first-saccade-only", action="store_true",
                    help="keep the first of the three saccades (a third of the events)")
    args = ap.parse_args(argv)
    return common.run(
        args, "nmnist", "N-MNIST", lambda: build_model(args.channels), losses.get("membrane-ce"),
        data_kw=dict(first_saccade_only=args.first_saccade_only),
        plot=lambda model, test_set: common.plot_event_frames(   # ON (red) / OFF (blue) frames
            test_set, os.path.join(args.out, "nmnist_frames.png"), "N-MNIST recording of digit {}",
            size=(1.6, 2.0)))


if __name__ == "__main__":
    sys.exit(main())
