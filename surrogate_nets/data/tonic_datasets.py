"""``get_dataset``: one entry point for the embedded data sets and tonic's recorded ones.

The recorded data sets (N-MNIST, SHD, DVS Gesture) are read by tonic's own dataset classes
(``tonic.datasets.NMNIST``, ``SHD``, ``DVSGesture``; Lenz et al., "Tonic: event-based datasets and
transformations", Zenodo 2021). This module adds: no silent download (a missing data set raises a
``FileNotFoundError`` that names the files to put where), acceptance of already-extracted data
without the archive, frame conversion with tonic's ``ToFrame`` (time bins, event count or time
window), optional ``Denoise``, float tensors out, and optional ``tonic.DiskCachedDataset``.

tonic is imported lazily, on the first use of a recorded data set.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Callable

from .._validate import check_positive
from ._cache import cache_root, config_hash
from .frames import EventsToFrames, ToFloatTensor
from .pipeline import (Compose, SkipEmpty, resolve_frames, tonic_to_frame,
                       warn_cached_event_transform, warn_if_event_transform)

#: Names accepted by :func:`get_dataset`.
DATASET_NAMES = ("digits", "randman", "nmnist", "shd", "dvsgesture")

_ALIASES = {"digitevents": "digits", "n-mnist": "nmnist", "dvs_gesture": "dvsgesture",
            "dvs-gesture": "dvsgesture", "ibmgesture": "dvsgesture"}


# --- layout of the recorded data sets as tonic 1.7 reads them --------------------------------
# ``extracted`` is what must exist below ``<data_dir>/<tonic class name>/`` for tonic to read
# the split, ``min_files`` how many data files tonic requires before it believes the archive
# was extracted (fewer are accepted with a warning), ``full`` the size of the complete
# splits, ``layout`` a human description for the error message.
_RECORDED = {
    "nmnist": dict(
        tonic_class="NMNIST", title="N-MNIST (Orchard et al. 2015)", pattern="*.bin",
        min_files=10000, full={"train": 60000, "test": 10000},
        layout=("{folder}/<digit 0-9>/<id>.bin  (N-MNIST 40-bit binary events: x, y, polarity bit "
                "+ 23-bit microsecond timestamp per 5 bytes)"),
    ),
    "dvsgesture": dict(
        tonic_class="DVSGesture", title="DVS Gesture (Amir et al. 2017, tonic's preprocessed copy)",
        pattern="*.npy", min_files=100,
        layout=("{folder}/user<NN>_<lighting>/<label 0-10>.npy  (numpy array [N, 4] with columns "
                "x, y, p, t in milliseconds)"),
    ),
    "shd": dict(
        tonic_class="SHD", title="SHD, Spiking Heidelberg Digits (Cramer et al. 2020)",
        pattern="*.h5", min_files=1,
        layout=("{data_file}  (HDF5 with datasets spikes/times, spikes/units, labels, extra/keys, "
                "extra/speaker)"),
    ),
}


def _missing_message(ds, name: str, reason: str = "") -> str:
    spec = _RECORDED[name]
    loc = Path(ds.location_on_system)
    data_file = getattr(ds, "data_filename", "")
    layout = spec["layout"].format(folder=loc / ds.folder_name if ds.folder_name else loc,
                                   data_file=loc / data_file)
    split = "train" if getattr(ds, "train", True) else "test"
    if name == "shd":
        need = "and needs that file (no archive required once extracted)."
    else:
        found = 0
        if loc.is_dir():
            found = sum(1 for _ in Path(loc, ds.folder_name).glob("**/" + spec["pattern"]))
        need = (f"and needs the '{spec['pattern']}' files there (a partial set is accepted with a "
                f"warning); found {found}.")
    msg = (
        f"{spec['title']}, {split} split: data not found under '{loc}'.\n"
        f"tonic {_tonic_version()} reads the extracted files\n    {layout}\n{need}\n"
        f"Either download {ds.filename} from {ds.url} (md5 {ds.file_md5}) and extract it into "
        f"'{loc}', or call get_dataset('{name}', data_dir=..., download=True)."
    )
    if reason:
        msg += f"\nDownload failed: {reason}"
    return msg


def _tonic_version() -> str:
    import tonic

    return getattr(tonic, "__version__", "?")


def _extracted_ok(ds, name: str) -> bool:
    """True if the extracted files are there. A partial folder (fewer files than tonic's
    completeness check wants, e.g. a subset for a smoke test or a quick look) is accepted with a
    ``UserWarning`` that says how many recordings were found."""
    spec = _RECORDED[name]
    loc = Path(ds.location_on_system)
    if name == "shd":
        return (loc / ds.data_filename).is_file()
    folder = loc / ds.folder_name
    if not folder.is_dir():
        return False
    count = 0
    for _ in folder.glob("**/" + spec["pattern"]):
        count += 1
        if count >= spec["min_files"]:
            return True
    if count == 0:
        return False
    split = "train" if getattr(ds, "train", True) else "test"
    full = spec.get("full", {}).get(split)
    of = f"(recordings) of the {full:,} " if full else ""
    warnings.warn(
        f"{spec['title']}, {split} split: found only {count} '{spec['pattern']}' files "
        f"{of}under '{folder}' (tonic's completeness check wants at least {spec['min_files']:,}); "
        f"using this partial set", UserWarning, stacklevel=2)
    return True


_LOCAL_CLASSES: dict = {}


def _local_class(name: str):
    """A subclass of the tonic dataset class that never downloads unless allowed, and accepts
    extracted data without the archive. Keeps tonic's class name (tonic derives the folder
    ``<data_dir>/<class name>`` from it); picklable through the module ``__getattr__``."""
    if name in _LOCAL_CLASSES:
        return _LOCAL_CLASSES[name]
    import numpy.lib.recfunctions  # noqa: F401  (tonic's DVSGesture uses it without importing it)
    import tonic.datasets

    base = getattr(tonic.datasets, _RECORDED[name]["tonic_class"])

    def __init__(self, save_to, train: bool = True, *, allow_download: bool = False, **kwargs):
        self._allow_download = allow_download
        self.train = train  # tonic's SHD does not keep it; the error message names the split
        base.__init__(self, save_to, train=train, **kwargs)

    def _check_exists(self):
        return bool(base._check_exists(self)) or _extracted_ok(self, name)

    def download(self):
        if not self._allow_download:
            raise FileNotFoundError(_missing_message(self, name))
        try:
            base.download(self)
        except OSError as err:  # URLError, HTTPError, socket errors are OSErrors
            raise FileNotFoundError(_missing_message(self, name, reason=str(err))) from err

    cls = type(base.__name__, (base,), {
        "__init__": __init__, "_check_exists": _check_exists, "download": download,
        "__module__": __name__, "__qualname__": f"_local_{name}",
    })
    _LOCAL_CLASSES[name] = cls
    return cls


def __getattr__(attr: str):  # PEP 562: lets pickle find the lazily built classes
    if attr.startswith("_local_") and attr[len("_local_"):] in _RECORDED:
        return _local_class(attr[len("_local_"):])
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")


def get_dataset(
    name: str,
    data_dir: str | os.PathLike | None = None,
    train: bool = True,
    download: bool = False,
    *,
    time_steps: int | None = None,
    frames: str | None = None,
    events_per_frame: int | None = None,
    event_count: int | None = None,
    time_window_us: int | None = None,
    duration_us: int | None = None,
    denoise_us: int | None = None,
    cache_dir: str | os.PathLike | None = None,
    event_transform: Callable | None = None,
    frame_transform: Callable | None = None,
    transform: Callable | None = None,
    target_transform: Callable | None = None,
    **kwargs,
):
    """Build a data set by name, optionally converted to dense frames.

    ============  ===================================  ===================  ====================
    name          source                               sensor_size          sample with frames
    ============  ===================================  ===================  ====================
    digits        :class:`DigitEvents` (embedded)      (20, 20, 2)          ``[T, 2, 20, 20]``
    randman       :class:`Randman` (generated)         (nb_units, 1, 1)     ``[T, nb_units]``
    nmnist        ``tonic.datasets.NMNIST``            (34, 34, 2)          ``[T, 2, 34, 34]``
    shd           ``tonic.datasets.SHD``               (700, 1, 1)          ``[T, 1, 700]``
    dvsgesture    ``tonic.datasets.DVSGesture``        (128, 128, 2)        ``[T, 2, 128, 128]``
    ============  ===================================  ===================  ====================

    Frames are float32 and time-major per sample; batch them with ``collate_time_major`` for
    ``[T, B, ...]`` (``collate_padded`` when ``T`` varies). Without a slicing argument the samples
    are raw tonic event arrays (``randman``: dense spikes ``[T, N]``, ``T = nb_steps``). The order
    of the per-sample pipeline and the slicing table are in :mod:`surrogate_nets.data.pipeline`::

        events -> Denoise -> event_transform -> ToFrame -> [disk cache] -> float
               -> frame_transform -> transform

    Args:
        name: one of :data:`DATASET_NAMES` (case-insensitive).
        data_dir: where the recorded data sets live (tonic's ``save_to``; files go to
            ``<data_dir>/<NMNIST|SHD|DVSGesture>/``), default ``<cache root>/datasets``; for
            ``digits`` the directory of the conversion cache, default the cache root (cache
            root: ``$SURROGATE_NETS_CACHE`` or ``~/.cache/surrogate_nets``). A partial N-MNIST
            or DVS Gesture folder (a subset of the recordings) is accepted with a warning that
            says how many recordings were found.
        train: training or test split.
        download: allow tonic to download a missing recorded data set. If False (default) a
            missing data set raises ``FileNotFoundError`` naming the expected files.
        time_steps: number of frames ``T``: time bins (``frames="time"``, the default; tonic
            ``ToFrame(n_time_bins=T)`` from the first to the last event, or on the fixed window
            ``[0, duration_us]``; ``digits`` always uses its fixed 300 ms window; ``randman``:
            ``nb_steps``) or event bins (``frames="count"``: ``ToFrame(n_event_bins=T)``).
        frames: ``"time"`` or ``"count"``: slice by time or by event number (see above);
            ``None`` infers it from the size argument given.
        events_per_frame: frames of this many events each (tonic ``ToFrame(event_count=N)``;
            variable ``T``, batch with ``collate_padded``); implies ``frames="count"``.
        event_count: the same as ``events_per_frame`` (older name).
        time_window_us: frames of this length in microseconds (variable ``T``).
        duration_us: with ``time_steps``: bin the fixed window ``[0, D]`` into ``T`` bins of
            ``D / T`` microseconds (``ToFrame(time_window=D/T, start_time=0, end_time=D)``), so a
            bin means the same time in every recording (SHD: ``T=100, D=1_000_000`` gives 10 ms
            bins); events after ``D`` are dropped.
        denoise_us: apply ``tonic.transforms.Denoise(filter_time=denoise_us)`` to the events
            first (2-D sensors only).
        cache_dir: if given, cache the frames with ``tonic.DiskCachedDataset`` under
            ``<cache_dir>/<name>/<train|test>/<hash of the pipeline>/``. The cached part is
            everything up to the frames, so a random ``event_transform`` is frozen by the cache
            (a ``UserWarning`` says so).
        event_transform: callable on the structured event array (e.g. ``tonic.transforms.
            DropEvent``), applied after ``Denoise`` and before the frames are built.
        frame_transform: callable on the float frames ``[T, ...]`` (or, without frames, on the
            events), applied on every access (after the cache).
        transform: a callable applied last (after ``frame_transform``); kept for compatibility.
            A tonic event transform passed here while frames are built warns: use
            ``event_transform``.
        target_transform: callable applied to the label.
        **kwargs: passed to the data set: ``DigitEvents`` (``camera``, ``step_us``), ``Randman``
            (``nb_classes``, ``nb_units``, ...), ``NMNIST`` (``first_saccade_only``,
            ``stabilize``).

    Returns:
        A map-style dataset returning ``(sample, label)``.

    Raises:
        ValueError: unknown ``name`` (the message lists the valid names) or conflicting options.
        FileNotFoundError: a recorded data set is missing (and ``download`` is False or failed).
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__} {name!r}")
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in DATASET_NAMES:
        raise ValueError(f"name must be one of {list(DATASET_NAMES)}, got {name!r}")
    if not isinstance(train, bool):
        raise TypeError(f"train must be a bool, got {type(train).__name__} {train!r}")
    if not isinstance(download, bool):
        raise TypeError(f"download must be a bool, got {type(download).__name__} {download!r}")
    spec = resolve_frames(frames, time_steps, event_count, events_per_frame, time_window_us,
                          duration_us)
    if denoise_us is not None:
        check_positive(denoise_us, "denoise_us")
    for arg, fn in (("event_transform", event_transform), ("frame_transform", frame_transform),
                    ("transform", transform), ("target_transform", target_transform)):
        if fn is not None and not callable(fn):
            raise TypeError(f"{arg} must be callable or None, got {type(fn).__name__}")
    if data_dir is not None and not isinstance(data_dir, (str, os.PathLike)):
        raise TypeError(f"data_dir must be a str or os.PathLike, got {type(data_dir).__name__}")
    warn_if_event_transform(transform, spec is not None)

    if key == "randman":
        if spec is not None and spec["mode"] != "time_bins":
            raise ValueError("randman gives dense spikes [T, N]; only time_steps applies (frames, "
                             "events_per_frame, event_count, time_window_us and duration_us do "
                             "not)")
        if event_transform is not None:
            raise ValueError("randman gives dense spikes, not events; event_transform does not "
                             "apply (use frame_transform)")
        user = Compose([frame_transform, transform])
        return _get_randman(train, time_steps, denoise_us, cache_dir,
                            user if user.transforms else None, target_transform, kwargs)

    pre = []
    if denoise_us is not None:
        if key == "shd":
            raise ValueError("denoise_us needs a 2-D sensor (x and y); SHD events have no y "
                             f"coordinate, got denoise_us={denoise_us!r} for 'shd'")
        import tonic.transforms as tt

        pre.append(SkipEmpty(tt.Denoise(filter_time=denoise_us)))
    if event_transform is not None:
        pre.append(event_transform)

    if key == "digits":
        from .digits import DigitEvents

        sensor_size = DigitEvents.sensor_size
        if spec is not None and spec["mode"] in ("time_bins", "fixed_window"):
            to_frames = EventsToFrames(sensor_size, spec["n"], start_us=0,
                                       duration_us=spec.get("duration", DigitEvents.duration_us))
        else:
            to_frames = tonic_to_frame(sensor_size, spec)

        def build(tf, ttf):
            return DigitEvents(root=data_dir, train=train, transform=tf, target_transform=ttf,
                               **kwargs)
    else:
        cls = _local_class(key)
        to_frames = tonic_to_frame(cls.sensor_size, spec)
        root = Path(data_dir).expanduser() if data_dir is not None else cache_root() / "datasets"

        def build(tf, ttf):
            return cls(str(root), train=train, transform=tf, target_transform=ttf,
                       allow_download=download, **kwargs)

    # before the (optional) disk cache: events -> frames (tonic: int16 arrays); after it: float
    # tensors and the user's frame transforms
    pipeline = pre + ([to_frames] if to_frames is not None else [])
    after = [ToFloatTensor()] if to_frames is not None else []
    after += [t for t in (frame_transform, transform) if t is not None]
    if cache_dir is None:
        steps = pipeline + after
        return build(Compose(steps) if steps else None, target_transform)

    import tonic

    warn_cached_event_transform(event_transform, cache_dir)
    base = build(Compose(pipeline) if pipeline else None, None)
    cache_key = config_hash({"name": key, "pipeline": repr(pipeline),
                             "kwargs": repr(sorted(kwargs.items()))})
    path = Path(cache_dir).expanduser() / key / ("train" if train else "test") / cache_key
    return tonic.DiskCachedDataset(base, cache_path=str(path),
                                   transform=Compose(after) if after else None,
                                   target_transform=target_transform)


def _get_randman(train, time_steps, denoise_us, cache_dir, transform, target_transform, kwargs):
    from .randman import Randman

    if denoise_us is not None:
        raise ValueError("randman gives dense spikes [T, N]; denoise_us does not apply")
    if cache_dir is not None:
        raise ValueError("randman is generated in memory in a fraction of a second; cache_dir "
                         "does not apply")
    if time_steps is not None:
        if "nb_steps" in kwargs and kwargs["nb_steps"] != time_steps:
            raise ValueError(f"time_steps={time_steps} and nb_steps={kwargs['nb_steps']} disagree")
        kwargs = dict(kwargs, nb_steps=time_steps)
    return Randman(train=train, transform=transform, target_transform=target_transform, **kwargs)
