"""Training on a recorded data set (N-MNIST) through tonic, a DataLoader and ``train.fit``.

``data.get_dataset("nmnist", data_dir, download=..., time_steps=T)`` wraps tonic's
``NMNIST`` class: each sample's events are binned into ``T`` frames by tonic's ``ToFrame`` and
returned as a float tensor ``[T, 2, 34, 34]`` (time-major per sample). A plain
``torch.utils.data.DataLoader`` with ``collate_fn=data.collate_time_major`` stacks them into the
time-major batches ``[T, B, 2, 34, 34]`` that every model and ``train.fit`` take. Optionally
``--cache-dir`` keeps the converted frames on disk (``tonic.DiskCachedDataset``), which makes
every epoch after the first much faster.

No silent downloads: without ``--download`` a missing data set stops with a message that says
which files tonic expects where (and the URL and md5 of the archive); this script prints it and
exits with status 2. Put the extracted N-MNIST into ``<data-dir>/NMNIST/`` (``Train/`` and
``Test/`` folders of ``<digit>/<id>.bin`` files) or pass ``--download`` once.

Run::

    python examples/nmnist_tonic.py --data-dir ~/data --download        # first time: fetch it
    python examples/nmnist_tonic.py --data-dir ~/data --cache-dir ~/data/cache --epochs 3
    python examples/nmnist_tonic.py --data-dir ~/data --limit 2000 --epochs 1   # quick look

On a CPU one epoch over the 60,000 training samples takes long; use ``--limit`` to try it, or a
GPU (``--device cuda``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import torch
from torch import nn
from torch.utils.data import DataLoader, Subset

try:
    import surrogate_nets  # noqa: F401
except ImportError:  # running from a checkout without installing: use the repository root
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from surrogate_nets import data, layers, losses, train
from surrogate_nets.neurons import LI, LIF


def build_model(tau: float = 2.0) -> layers.Sequential:
    """``[T, B, 2, 34, 34]`` -> ``[T, B, 10]`` membrane trace of a leaky readout."""
    return layers.Sequential(
        nn.Conv2d(2, 16, 3, padding=1), LIF(tau=tau), nn.MaxPool2d(2),    # -> [T, B, 16, 17, 17]
        nn.Conv2d(16, 32, 3, padding=1), LIF(tau=tau), nn.MaxPool2d(2),   # -> [T, B, 32, 8, 8]
        layers.Flatten(), nn.Linear(32 * 8 * 8, 10), LI(tau=tau),          # -> [T, B, 10]
    )


def load_split(args, train_split: bool):
    """One split as a map-style dataset of ``(frames [T, 2, 34, 34] float32, label)``."""
    ds = data.get_dataset("nmnist", args.data_dir, train=train_split, download=args.download,
                          time_steps=args.time_steps, cache_dir=args.cache_dir,
                          first_saccade_only=args.first_saccade_only)
    if args.limit:                          # a fixed random subset (N-MNIST is sorted by digit)
        g = torch.Generator().manual_seed(args.seed)
        ds = Subset(ds, torch.randperm(len(ds), generator=g)[:args.limit].tolist())
    return ds


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=os.path.join("data"),
                    help="tonic's save_to directory; N-MNIST lives in <data-dir>/NMNIST/")
    ap.add_argument("--download", action="store_true", help="let tonic download N-MNIST (~1 GB)")
    ap.add_argument("--cache-dir", default=None, help="cache the converted frames here (faster epochs)")
    ap.add_argument("--first-saccade-only", action="store_true",
                    help="keep the first of the three saccades (a third of the events)")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--time-steps", type=int, default=16, help="time bins T per recording")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--limit", type=int, default=None, help="random subset of N train/test samples")
    ap.add_argument("--workers", type=int, default=2, help="DataLoader worker processes")
    ap.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    ap.add_argument("--out", default="runs/nmnist", help="output directory (plots, checkpoints)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()

    try:
        train_set, test_set = load_split(args, True), load_split(args, False)
    except FileNotFoundError as err:
        # The library's message names the expected layout, the archive URL and its md5.
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"N-MNIST: {len(train_set)} train / {len(test_set)} test samples, T={args.time_steps}")

    # collate_time_major stacks samples [T, 2, 34, 34] into a time-major batch [T, B, 2, 34, 34].
    # fit() rebuilds a shuffling DataLoader with an order given by (seed, epoch): reproducible.
    kw = dict(collate_fn=data.collate_time_major, num_workers=args.workers,
              persistent_workers=args.workers > 0)
    train_loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True, **kw)
    test_loader = DataLoader(test_set, batch_size=2 * args.batch_size, **kw)

    torch.manual_seed(args.seed)
    history = train.fit(build_model(), losses.get("membrane-ce"), train_loader, test_loader,
                        epochs=args.epochs, lr=args.lr, device=args.device, out_dir=args.out,
                        overwrite=True, seed=args.seed)
    print(f"test accuracy {100 * history.last['test_acc']:.1f}% in {time.perf_counter() - t0:.0f} s; "
          f"outputs in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
