"""Writers of tiny recorded data sets in their real on-disk formats (N-MNIST, SHD, DVS Gesture).

Used by tests/test_data.py (read back through tonic's own parsers) and tests/test_examples.py
(the example scripts train on them). Not a conftest: import it explicitly
(``from dataset_files import ...``; pytest puts ``tests/`` on ``sys.path``).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def write_nmnist_bin(path, x, y, t, p):
    """Write events in N-MNIST's 40-bit format: byte 0 = x, byte 1 = y, byte 2 = polarity (bit 7)
    and timestamp bits 22-16, bytes 3-4 = timestamp bits 15-0 (microseconds, big-endian)."""
    t = np.asarray(t, dtype=np.int64)
    raw = np.zeros((len(t), 5), dtype=np.uint8)
    raw[:, 0] = x
    raw[:, 1] = y
    raw[:, 2] = (np.asarray(p, dtype=np.int64) << 7) | ((t >> 16) & 0x7F)
    raw[:, 3] = (t >> 8) & 0xFF
    raw[:, 4] = t & 0xFF
    raw.tofile(path)


def nmnist_events(rng, n):
    """``n`` random N-MNIST events ``(x, y, t, p)`` over 300 ms, sorted by time."""
    x = rng.integers(0, 34, n)
    y = rng.integers(0, 34, n)
    t = np.sort(rng.integers(0, 300_000, n))
    p = rng.integers(0, 2, n)
    return x, y, t, p


def make_nmnist(root, per_digit: int = 1, splits=("Train", "Test"), seed: int = 0,
                events: int = 50) -> dict:
    """``<root>/NMNIST/<Train|Test>/<digit>/<id>.bin``: ``per_digit`` recordings per digit (a
    partial N-MNIST, which get_dataset accepts with a warning). Returns
    ``{(split, digit, i): (x, y, t, p)}``."""
    rng = np.random.default_rng(seed)
    written = {}
    for split in splits:
        for digit in range(10):
            folder = Path(root) / "NMNIST" / split / str(digit)
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(per_digit):
                ev = nmnist_events(rng, events + digit)
                write_nmnist_bin(folder / f"{i:05d}.bin", *ev)
                written[(split, digit, i)] = ev
    return written


def link_up_to(folder, total: int):
    """Hard-link the first ``.bin`` of every digit folder below ``folder`` until each split holds
    ``total`` files (tonic's completeness check wants 10,000)."""
    digits = sorted(p for p in Path(folder).iterdir() if p.is_dir())
    per = total // len(digits)
    for d in digits:
        src = sorted(d.glob("*.bin"))[0]
        have = len(list(d.glob("*.bin")))
        for i in range(have, per):
            os.link(src, d / f"{i:05d}.bin")


def make_shd(root, n: int = 3, splits=("train", "test"), seed: int = 1, labels=None,
             duration_s: float = 1.0) -> dict:
    """``<root>/SHD/shd_<split>.h5`` in the layout of the published files: ``spikes/times``
    (ragged float32 seconds), ``spikes/units`` (ragged uint16 channel 0..699), ``labels``
    (uint16 0..19), ``extra/keys``, ``extra/speaker``. Returns ``{split: (times, units, labels)}``.
    """
    rng = np.random.default_rng(seed)
    folder = Path(root) / "SHD"
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for split in splits:
        sizes = rng.integers(5, 40, n)
        times = [np.sort(rng.random(k) * duration_s).astype(np.float32) for k in sizes]
        units = [rng.integers(0, 700, len(ti)).astype(np.uint16) for ti in times]
        lab = (np.asarray(labels, dtype=np.uint16) if labels is not None
               else (np.arange(n) % 20).astype(np.uint16))
        write_shd_h5(folder / f"shd_{split}.h5", times, units, lab, np.arange(n, dtype=np.uint16))
        out[split] = (times, units, lab)
    return out


def write_shd_h5(path, times, units, labels, speaker):
    """One SHD file in the layout of the published ones: ``spikes/times`` (ragged float32
    seconds), ``spikes/units`` (ragged uint16 channel 0..699), ``labels``, ``extra/keys``,
    ``extra/speaker``."""
    import h5py

    with h5py.File(path, "w") as f:
        f.create_dataset("spikes/times", data=np.array(times, dtype=object),
                         dtype=h5py.vlen_dtype(np.float32))
        f.create_dataset("spikes/units", data=np.array(units, dtype=object),
                         dtype=h5py.vlen_dtype(np.uint16))
        f.create_dataset("labels", data=labels)
        f.create_dataset("extra/keys", data=np.array([b"digit-%d" % i for i in range(20)]))
        f.create_dataset("extra/speaker", data=speaker)


def make_dvsgesture(root, users=range(1, 11), labels=range(11), splits=("train", "test"),
                    seed: int = 2, events: int = 20, duration_ms: int = 6000) -> dict:
    """``<root>/DVSGesture/ibmGesture<Train|Test>/user<NN>_<lighting>/<label>.npy``: tonic's
    preprocessed copy, one ``int64 [N, 4]`` array per recording with columns x, y, p,
    t (milliseconds). Returns ``{path: array}``."""
    rng = np.random.default_rng(seed)
    written = {}
    for split in splits:
        base = Path(root) / "DVSGesture" / ("ibmGestureTrain" if split == "train"
                                            else "ibmGestureTest")
        for user in users:
            folder = base / f"user{user:02d}_fluorescent_led"
            folder.mkdir(parents=True, exist_ok=True)
            for label in labels:
                n = events + label
                arr = np.stack([rng.integers(0, 128, n), rng.integers(0, 128, n),
                                rng.integers(0, 2, n),
                                np.sort(rng.integers(0, duration_ms, n))], axis=1).astype(np.int64)
                np.save(folder / f"{label}.npy", arr)
                written[folder / f"{label}.npy"] = arr
    return written
