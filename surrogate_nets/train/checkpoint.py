"""Training checkpoints: atomic writes, ``weights_only`` loading, random-number-generator states.

A checkpoint is a plain ``dict`` of tensors and Python primitives, so that
``torch.load(path, weights_only=True)`` reads it without unpickling any code:

=================  ==================================================================
key                value
=================  ==================================================================
``format``         ``"surrogate_nets.checkpoint"``
``format_version`` :data:`FORMAT_VERSION` (an ``int``)
``epoch``          number of completed epochs (``int``)
``model``          ``model.state_dict()`` (of the unwrapped model, never of a DDP wrapper)
``optimizer``      ``optimizer.state_dict()``
``scheduler``      ``scheduler.state_dict()`` or ``None``
``rng``            :func:`rng_state` at the end of the epoch
``config``         the resolved run configuration (JSON types only)
``history``        the per-epoch metric records so far (list of dicts)
``best``           ``{"epoch": int, "metric": str, "value": float}`` or ``None``
``callbacks``      ``state_dict()`` of each stateful callback (list; ``None`` entries)
``torch_version``  ``torch.__version__`` of the writer (``str``)
=================  ==================================================================

Integrity: :func:`load_checkpoint` verifies the CRC-32 of every member of the zip archive that
``torch.save`` writes (``torch.load`` itself does not), so a file with flipped bytes is refused
with a :class:`CheckpointError` instead of loading wrong weights; the file is left in place.
"""

from __future__ import annotations

import io
import os
import pickle
import random
import zipfile
from pathlib import Path
from typing import Any, Mapping, Optional

import numpy as np
import torch

from .._io import atomic_write, atomic_write_text  # noqa: F401  (atomic_write_text: re-exported)

#: Incremented whenever the layout above changes incompatibly.
FORMAT_VERSION = 1
FORMAT_NAME = "surrogate_nets.checkpoint"
_REQUIRED = ("format", "format_version", "epoch", "model", "config")


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used: missing, corrupt, of another format or incompatible."""


# ------------------------------------------------------------------------------ RNG states
def rng_state() -> dict:
    """The states of every global random number generator, as tensors and plain Python types.

    Keys: ``torch`` (CPU generator, uint8 tensor), ``cuda`` (list of uint8 tensors, one per
    device; empty without CUDA), ``numpy`` (the legacy global ``np.random`` state as a dict) and
    ``python`` (the :mod:`random` state as a dict). Restore with :func:`set_rng_state`.
    """
    name, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    cuda = []
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        cuda = [s.clone() for s in torch.cuda.get_rng_state_all()]
    return {
        "torch": torch.get_rng_state().clone(),
        "cuda": cuda,
        "numpy": {
            "name": str(name),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64).copy()),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "python": {
            "version": int(version),
            "state": torch.tensor(list(internal), dtype=torch.int64),
            "gauss_next": None if gauss_next is None else float(gauss_next),
        },
    }


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restore the generator states saved by :func:`rng_state`."""
    if not isinstance(state, Mapping):
        raise TypeError(f"state must be a dict from rng_state(), got {type(state).__name__}")
    if "torch" in state:
        torch.set_rng_state(state["torch"].to(torch.uint8).cpu())
    cuda = state.get("cuda") or []
    if cuda and torch.cuda.is_available():
        n = min(len(cuda), torch.cuda.device_count())
        for i in range(n):
            torch.cuda.set_rng_state(cuda[i].to(torch.uint8).cpu(), i)
    if "numpy" in state:
        s = state["numpy"]
        keys = s["keys"].cpu().numpy().astype(np.uint32)
        np.random.set_state((s["name"], keys, int(s["pos"]), int(s["has_gauss"]),
                             float(s["cached_gaussian"])))
    if "python" in state:
        s = state["python"]
        internal = tuple(int(v) for v in s["state"].tolist())
        random.setstate((int(s["version"]), internal, s["gauss_next"]))


def seed_everything(seed: int) -> None:
    """Seed :mod:`torch` (CPU and CUDA), :mod:`numpy` and :mod:`random` with ``seed``."""
    random.seed(seed)
    np.random.seed(seed % (2 ** 32))
    torch.manual_seed(seed)


# ------------------------------------------------------------------------------ save / load
def make_checkpoint(*, model_state, optimizer_state=None, scheduler_state=None, epoch: int,
                    config: Optional[dict] = None, history=None, best=None, rng=None,
                    callbacks=None) -> dict:
    """Assemble a checkpoint dict in the documented layout (see the module docstring)."""
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "epoch": int(epoch),
        "model": model_state,
        "optimizer": optimizer_state,
        "scheduler": scheduler_state,
        "rng": rng_state() if rng is None else rng,
        "config": dict(config or {}),
        "history": list(history or []),
        "best": best,
        "callbacks": list(callbacks or []),
        "torch_version": str(torch.__version__),
    }


def save_checkpoint(checkpoint: dict, path) -> Path:
    """Write ``checkpoint`` to ``path`` atomically (see :func:`atomic_write`).

    The object is serialised to memory first, so a failure while pickling never touches the
    file system; then the bytes go to a temporary file in the same directory, which is fsync'ed
    and renamed over ``path``.
    """
    if not isinstance(checkpoint, dict):
        raise TypeError(f"checkpoint must be a dict, got {type(checkpoint).__name__}")
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__} {path!r}")
    buf = io.BytesIO()
    torch.save(checkpoint, buf)
    data = buf.getbuffer()
    return atomic_write(path, lambda fh: fh.write(data))


def verify_archive(path) -> None:
    """Check the CRC-32 of every member of the zip archive at ``path``.

    Raises:
        CheckpointError: a member's bytes do not match their CRC (the file was corrupted after
            it was written), or the archive cannot be read.
    """
    try:
        with zipfile.ZipFile(path) as zf:
            bad = zf.testzip()
    except zipfile.BadZipFile:
        return  # not a zip archive (legacy format): torch.load decides
    except (OSError, RuntimeError, ValueError, EOFError) as exc:
        raise CheckpointError(f"checkpoint {str(path)!r} is corrupt or truncated "
                              f"({type(exc).__name__}: {exc})") from exc
    if bad is not None:
        raise CheckpointError(
            f"checkpoint {str(path)!r} is corrupt: the bytes of its member {bad!r} do not match "
            f"the CRC-32 stored when it was written (the file was damaged after it was saved). "
            f"It was not loaded and is left in place; use an older copy (e.g. best.pt) or retrain")


def load_checkpoint(path, map_location="cpu") -> dict:
    """Load and validate a checkpoint with ``torch.load(..., weights_only=True)``.

    Raises:
        CheckpointError: the file is missing, not a torch file, truncated/corrupt, contains
            objects that ``weights_only`` refuses, is not a ``surrogate_nets`` checkpoint, or has
            a newer format version.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__} {path!r}")
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist or is not a file")
    verify_archive(path)
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"checkpoint {str(path)!r} cannot be loaded safely with weights_only=True "
            f"(it is corrupt or holds arbitrary Python objects): {exc}") from exc
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile, io.UnsupportedOperation,
            KeyError, AttributeError, TypeError, IndexError) as exc:
        raise CheckpointError(
            f"checkpoint {str(path)!r} is corrupt or truncated (torch.load failed: "
            f"{type(exc).__name__}: {exc})") from exc
    return validate_checkpoint(ckpt, str(path))


def validate_checkpoint(ckpt, where: str = "checkpoint") -> dict:
    """Check the layout of a loaded checkpoint; returns it or raises :class:`CheckpointError`."""
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT_NAME:
        kind = type(ckpt).__name__ if not isinstance(ckpt, dict) else f"dict without format={FORMAT_NAME!r}"
        raise CheckpointError(f"{where} is not a surrogate_nets checkpoint (got a {kind})")
    missing = [k for k in _REQUIRED if k not in ckpt]
    if missing:
        raise CheckpointError(f"{where} is incomplete: missing keys {missing}")
    version = ckpt["format_version"]
    if not isinstance(version, int) or version > FORMAT_VERSION or version < 1:
        raise CheckpointError(
            f"{where} has checkpoint format version {version!r}; this surrogate_nets reads "
            f"versions 1..{FORMAT_VERSION} (upgrade surrogate_nets to read it)")
    return ckpt


def load_model_state(model: torch.nn.Module, state: Mapping[str, torch.Tensor], where: str = "checkpoint"):
    """``model.load_state_dict(state)`` (strict), turning a mismatch into a :class:`CheckpointError`
    that lists the missing, unexpected and differently shaped entries."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
              for k in sorted(set(own) & set(state))
              if isinstance(state[k], torch.Tensor) and state[k].shape != own[k].shape]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing from the checkpoint: {_short(missing)}")
        if unexpected:
            parts.append(f"not in the model: {_short(unexpected)}")
        if shapes:
            parts.append(f"shape mismatch: {_short(shapes)}")
        raise CheckpointError(
            f"{where} does not fit this model (was it written for another configuration?); "
            + "; ".join(parts))
    model.load_state_dict(state)


def _short(items, n: int = 6) -> str:
    items = list(items)
    head = ", ".join(items[:n])
    return head + (f", ... ({len(items) - n} more)" if len(items) > n else "")
