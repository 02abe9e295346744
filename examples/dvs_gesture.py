"""DVS128 Gesture with a convolutional spiking network of PLIF neurons (Fang et al. 2021).

Data: DVS128 Gesture (Amir et al., "A low power, fully event-based gesture recognition system",
CVPR 2017): 11 hand and arm gestures of 29 people under 3 lighting conditions, recorded by a
128x128 DVS; tonic's preprocessed copy (``data.get_dataset("dvsgesture", ...)``, recordings of
about 6 s). Each recording is sliced into ``T`` frames ``[2, 128, 128]``
(ON/OFF event counts) by time bins (``--frames time``, the default) or by equal event counts
(``--frames count``, the ``split_by="number"`` of Fang et al.), optionally after tonic's
``Denoise`` (``--denoise 10000`` drops events with no neighbour within 10 ms); ``--cache-dir``
keeps the frames on disk (``tonic.DiskCachedDataset``), which makes every epoch after the first
much faster.

Network (Fang, Yu, Chen, Masquelier, Huang & Tian, "Incorporating learnable membrane time
constant to enhance learning of spiking neural networks", ICCV 2021, their DVS128 Gesture net):
``--conv-layers`` blocks of ``Conv3x3(C) -> BatchNorm -> PLIF -> MaxPool2`` (128 -> 4 pixels after
5 blocks), then ``Dropout -> Linear(512) -> PLIF -> Dropout -> Linear(110) -> PLIF`` and a voting
layer that averages each group of 10 output neurons into one of the 11 classes. PLIF: LIF with a
learnable membrane time constant (``PLIF(tau=2)``, ``1/tau = sigmoid(w)``, one per layer), hard
reset to 0 and detached reset as in the paper. Loss: squared error between the output firing rate
and the one-hot label (``CountMSE(correct_rate=1, incorrect_rate=0)``; T times Fang et al.'s MSE).

Literature: Fang et al. report 97.57 % test accuracy with this network (C = 128, T = 20 frames by
event count, PLIF tau_0 = 2, max pooling; the best test accuracy during training, "accuracy-A";
96.53 % when the epoch is chosen on a validation split, "accuracy-B"), as listed in the README of
their code (github.com/fangwei123456/Parametric-Leaky-Integrate-and-Fire-Spiking-Neuron). The
defaults here (C = 32, T = 16) are sized for a single GPU in minutes per epoch; pass
``--channels 128 --time-steps 20 --frames count`` for the paper's setting.

Run::

    python examples/dvs_gesture.py --data-dir ~/data --download             # fetch once
    python examples/dvs_gesture.py --data-dir ~/data --cache-dir ~/data/cache --denoise 10000 \\
        --epochs 64 --device cuda
    python examples/dvs_gesture.py --data-dir ~/data --limit 100 --epochs 1 --channels 8  # a look
"""

from __future__ import annotations

import os
import sys

from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _recorded as common  # noqa: E402  (examples/_recorded.py: the shared options)

from surrogate_nets import layers, losses  # noqa: E402
from surrogate_nets.neurons import PLIF  # noqa: E402

CLASSES, VOTES = 11, 10


class Vote(nn.Module):
    """Voting layer: the mean of each group of ``votes`` consecutive output neurons.

    .. math:: o_{t,b,c} = \\frac{1}{V} \\sum_{k=0}^{V-1} s_{t,b,cV + k}

    Shapes: ``[T, B, C V] -> [T, B, C]``. (Fang et al. 2021 use ``AvgPool1d(10, 10)``.)
    """

    def __init__(self, votes: int = VOTES):
        super().__init__()
        self.votes = votes

    def forward(self, x):
        return x.unflatten(-1, (-1, self.votes)).mean(-1)


def plif():
    return PLIF(tau=2.0, reset="zero", detach_reset=True)


def build_model(channels: int = 32, conv_layers: int = 5, size: int = 128,
                dropout: float = 0.5) -> layers.Sequential:
    """``[T, B, 2, 128, 128]`` -> ``[T, B, 11]`` voted output spikes (rates in [0, 1])."""
    blocks, c_in = [], 2
    for _ in range(conv_layers):
        blocks += [nn.Conv2d(c_in, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels),
                   plif(), nn.MaxPool2d(2)]
        c_in, size = channels, size // 2
    return layers.Sequential(
        *blocks,                                                  # -> [T, B, C, 4, 4]
        layers.Flatten(), nn.Dropout(dropout),
        nn.Linear(channels * size * size, 512), plif(), nn.Dropout(dropout),
        nn.Linear(512, CLASSES * VOTES), plif(),                  # -> [T, B, 110] spikes
        Vote(VOTES),                                              # -> [T, B, 11]
    )


def main(argv=None) -> int:
    ap = common.parser(__doc__.splitlines()[0], time_steps=16, epochs=64, batch_size=16,
                       lr=1e-3, out="runs/dvs_gesture")
    ap.add_argument("--channels", type=int, default=32, help="conv channels C (paper: 128)")
    ap.add_argument("--conv-layers", type=int, default=5)
    args = ap.parse_args(argv)
    return common.run(
        args, "dvsgesture", "DVS128 Gesture",
        lambda: build_model(args.channels, args.conv_layers),
        losses.CountMSE(correct_rate=1.0, incorrect_rate=0.0),
        plot=lambda model, test_set: common.plot_event_frames(   # ON (red) / OFF (blue) frames
            test_set, os.path.join(args.out, "dvs_gesture_frames.png"),
            "DVS128 Gesture recording, class {}", size=(2.0, 2.3)))


if __name__ == "__main__":
    sys.exit(main())
