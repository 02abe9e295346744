"""Data sets for spiking networks: embedded ones that need no download, and tonic adapters.

* :class:`DigitEvents` -- the default data set: the 1,797 UCI handwritten digits recorded by a
  simulated event camera (:class:`EventCamera`) during three saccades, N-MNIST style.
* :class:`Randman` -- random-manifold spike-timing task (Zenke & Vogels 2021).
* :func:`get_dataset` -- one entry point for the above and for tonic's N-MNIST, SHD and
  DVS Gesture, with frame conversion (by time or by event count), denoising, separate event and
  frame transforms and optional disk caching (the pipeline is in :mod:`.pipeline`).
* :class:`EventsToFrames`, :func:`events_to_frames` -- events ``(x, y, t, p)`` to dense
  ``[T, P, H, W]`` float frames; :func:`collate_time_major`, :func:`collate_padded` -- batching
  into time-major ``[T, B, ...]`` tensors.

Events use tonic's structured-array format (:data:`EVENT_DTYPE`), so tonic transforms apply.
"""

from ._cache import CACHE_ENV, cache_root
from .collate import collate_padded, collate_time_major
from .digits import DigitEvents, digits_test_mask, load_digits, saccade_path
from .event_camera import EVENT_DTYPE, EventCamera
from .frames import EventsToFrames, ToFloatTensor, events_to_frames, time_bins
from .randman import (RANDMAN_EVENT_DTYPE, Randman, eval_random_manifold, eval_zenke_manifold,
                      random_manifold_params, zenke_components)
from .pipeline import FRAME_MODES, Compose
from .tonic_datasets import DATASET_NAMES, get_dataset

__all__ = [
    "CACHE_ENV",
    "DATASET_NAMES",
    "EVENT_DTYPE",
    "FRAME_MODES",
    "RANDMAN_EVENT_DTYPE",
    "Compose",
    "DigitEvents",
    "EventCamera",
    "EventsToFrames",
    "Randman",
    "ToFloatTensor",
    "cache_root",
    "collate_padded",
    "collate_time_major",
    "digits_test_mask",
    "eval_random_manifold",
    "eval_zenke_manifold",
    "events_to_frames",
    "get_dataset",
    "load_digits",
    "random_manifold_params",
    "zenke_components",
    "saccade_path",
    "time_bins",
]
