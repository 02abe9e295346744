"""Shared command line, data loading and training driver of the recorded-data-set examples
(nmnist_tonic.py, shd.py, dvs_gesture.py; streaming_inference.py uses the options and loading), so
the scripts take the same options, read the same way and report the same lines.

Every option maps onto a keyword of :func:`surrogate_nets.data.get_dataset`:

=========================  =====================================================
``--data-dir DIR``         ``data_dir=DIR`` (tonic's ``save_to``)
``--download``             ``download=True``
``--cache-dir DIR``        ``cache_dir=DIR`` (``tonic.DiskCachedDataset``)
``--denoise US``           ``denoise_us=US`` (``tonic.transforms.Denoise``)
``--frames time|count``    ``frames=...``
``--time-steps T``         ``time_steps=T``
``--events-per-frame N``   ``events_per_frame=N`` (variable T: padded batches)
``--drop-event P``         ``event_transform=tonic.transforms.DropEvent(p=P)``
=========================  =====================================================

The training options (``--epochs``, ``--lr``, ``--out``, ``--resume``, ...) go to
:func:`surrogate_nets.train.fit`, which writes ``last.pt``/``best.pt`` checkpoints,
``metrics.jsonl``, ``curves.png`` and ``sample.png`` into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import torch
from torch.utils.data import DataLoader, Subset

try:
    import surrogate_nets  # noqa: F401
except ImportError:  # running from a checkout without installing: use the repository root
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from surrogate_nets import data, train  # noqa: E402


def parser(description: str, *, time_steps: int, epochs: int, batch_size: int, lr: float,
           out: str, frames: str = "time", denoise: bool = True) -> argparse.ArgumentParser:
    """The options every recorded-data-set example shares (defaults per data set)."""
    ap = argparse.ArgumentParser(description=description,
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    g = ap.add_argument_group("data (surrogate_nets.data.get_dataset through tonic)")
    g.add_argument("--data-dir", default=None,
                   help="tonic's save_to directory (data sets in <dir>/NMNIST, /SHD, /DVSGesture); "
                        "default $SURROGATE_NETS_CACHE/datasets or ~/.cache/surrogate_nets/datasets")
    g.add_argument("--download", action="store_true", help="let tonic download a missing data set")
    g.add_argument("--cache-dir", default=None,
                   help="keep the converted frames here (tonic.DiskCachedDataset): faster epochs")
    if denoise:
        g.add_argument("--denoise", type=int, default=None, metavar="US",
                       help="tonic Denoise filter time in microseconds (drop isolated events)")
    g.add_argument("--frames", choices=("time", "count"), default=frames,
                   help="slice each recording into --time-steps frames by time or by event count")
    g.add_argument("--time-steps", type=int, default=time_steps, help="frames T per recording")
    g.add_argument("--events-per-frame", type=int, default=None, metavar="N",
                   help="frames of N events each instead (variable T, padded batches)")
    g.add_argument("--drop-event", type=float, default=None, metavar="P",
                   help="augmentation: drop each training event with probability P")
    g.add_argument("--limit", type=int, default=None,
                   help="use a fixed random subset of N train and N test recordings")
    g.add_argument("--workers", type=int, default=2, help="DataLoader worker processes")
    t = ap.add_argument_group("training (surrogate_nets.train.fit)")
    t.add_argument("--epochs", type=int, default=epochs)
    t.add_argument("--batch-size", type=int, default=batch_size)
    t.add_argument("--lr", type=float, default=lr)
    t.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    t.add_argument("--out", default=out, help="output directory (checkpoints, metrics, PNG plots)")
    t.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its last.pt (raise --epochs to extend it)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--no-progress", action="store_true", help="no tqdm bars")
    return ap


def dataset_kwargs(args, train_split: bool, **fixed) -> dict:
    """The get_dataset keywords of the parsed options (``fixed`` adds data-set specific ones)."""
    kw = dict(data_dir=args.data_dir, train=train_split, download=args.download,
              cache_dir=args.cache_dir, **fixed)
    if getattr(args, "denoise", None) is not None:
        kw["denoise_us"] = args.denoise
    if args.events_per_frame is not None:
        kw["events_per_frame"] = args.events_per_frame
        kw.pop("duration_us", None)
    else:
        kw["frames"] = args.frames
        kw["time_steps"] = args.time_steps
        if args.frames == "count":
            kw.pop("duration_us", None)
    if args.drop_event is not None and train_split:
        import tonic.transforms as tt

        kw["event_transform"] = tt.DropEvent(p=args.drop_event)
    return kw


def load_splits(name: str, args, **fixed):
    """``(train_set, test_set)`` of data set ``name``, each limited to ``--limit`` samples."""
    sets = []
    for split in (True, False):
        ds = data.get_dataset(name, **dataset_kwargs(args, split, **fixed))
        if args.limit and args.limit < len(ds):   # fixed random subset (the sets are sorted)
            g = torch.Generator().manual_seed(args.seed)
            ds = Subset(ds, torch.randperm(len(ds), generator=g)[:args.limit].tolist())
        sets.append(ds)
    return tuple(sets)


def open_splits(name: str, label: str, args, **fixed):
    """:func:`load_splits`, printing ``"<label>: N train / M test recordings"``; ``None`` after
    printing get_dataset's message (it names the files, the URL and the md5) when the data set is
    missing."""
    try:
        train_set, test_set = load_splits(name, args, **fixed)
    except FileNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        return None
    print(f"{label}: {len(train_set)} train / {len(test_set)} test recordings")
    return train_set, test_set


def _padded(batch):
    x, y, _lengths = data.collate_padded(batch)   # zero frames after the end: no input
    return x, y


def loaders(train_set, test_set, args):
    """Time-major DataLoaders ``[T, B, ...]`` (padded when ``--events-per-frame`` varies T)."""
    collate = _padded if args.events_per_frame is not None else data.collate_time_major
    kw = dict(collate_fn=collate, num_workers=args.workers, persistent_workers=args.workers > 0)
    # fit() rebuilds a shuffling DataLoader with an order given by (seed, epoch): reproducible
    return (DataLoader(train_set, batch_size=args.batch_size, shuffle=True, **kw),
            DataLoader(test_set, batch_size=2 * args.batch_size, **kw))


def fit(model, loss, train_loader, test_loader, args, **kw):
    """``train.fit`` with the shared options; the parsed options are the run's config (a resumed
    run must use the same ones, except epochs, device, data location and the like)."""
    skip = ("no_progress", "workers", "cache_dir")   # do not change the result
    config = {k: v for k, v in vars(args).items() if k not in skip}
    config = json.loads(json.dumps(config, default=str))
    return train.fit(model, loss, train_loader, test_loader, epochs=args.epochs, lr=args.lr,
                     device=args.device, out_dir=args.out, resume=args.resume,
                     overwrite=not args.resume, seed=args.seed, progress=not args.no_progress,
                     config=config, **kw)


def run(args, name: str, label: str, build, loss, *, data_kw=None, plot=None, **fit_kw) -> int:
    """The driver of the recorded-data-set examples: load data set ``name`` (exit status 2 with
    get_dataset's message, which names the files, the URL and the md5, when it is missing), train
    ``build()`` (called after seeding with ``--seed``) with ``loss`` by :func:`fit` (``fit_kw``:
    extra ``train.fit`` keywords), print the test accuracy and, when matplotlib is there, write
    ``plot(model, test_set)`` (a PNG path). ``data_kw``: data-set specific get_dataset keywords."""
    t0 = time.perf_counter()
    sets = open_splits(name, label, args, **(data_kw or {}))
    if sets is None:
        return 2
    train_set, test_set = sets
    train_loader, test_loader = loaders(train_set, test_set, args)
    torch.manual_seed(args.seed)
    model = build()
    history = fit(model, loss, train_loader, test_loader, args, **fit_kw)
    print(f"test accuracy {100 * history.last['test_acc']:.1f}% after {args.epochs} epochs in "
          f"{time.perf_counter() - t0:.0f} s; outputs in {args.out}")
    if plot is not None and have_matplotlib():
        print("wrote", plot(model, test_set))
    return 0


def plot_event_frames(dataset, path, title: str, steps: int = 8, size=(1.6, 2.0)) -> str:
    """The first recording of ``dataset`` (frames ``[T, 2, H, W]``) as ON (red) / OFF (blue)
    frames, ``steps`` of them evenly spaced; ``title`` is formatted with the label, ``size`` is
    one frame's (width, height) in inches."""
    import matplotlib.pyplot as plt

    x, label = dataset[0]
    idx = torch.linspace(0, x.shape[0] - 1, min(steps, x.shape[0])).round().long()
    fig, axes = plt.subplots(1, len(idx), figsize=(size[0] * len(idx), size[1]), squeeze=False)
    for ax, t in zip(axes[0], idx.tolist()):
        on, off = x[t, 1].clamp(max=1), x[t, 0].clamp(max=1)
        ax.imshow(torch.stack([on, torch.zeros_like(on), off], -1).numpy())
        ax.set_title(f"t = {t}", fontsize=8)
        ax.axis("off")
    fig.suptitle(title.format(int(label)), fontsize=9)
    return save_figure(fig, path)


def save_figure(fig, path) -> str:
    """Write a matplotlib figure as PNG and close it."""
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return str(path)


def have_matplotlib() -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        return True
    except ImportError:
        return False
