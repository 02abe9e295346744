"""On-disk cache helpers: where the cache lives, how entries are keyed and written atomically."""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path

import numpy as np

from .._io import atomic_write

#: Environment variable that overrides the default cache directory.
CACHE_ENV = "SURROGATE_NETS_CACHE"


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """The cache directory: ``cache_dir`` if given, else ``$SURROGATE_NETS_CACHE``, else
    ``~/.cache/surrogate_nets``. The directory is not created here."""
    if cache_dir is not None:
        if not isinstance(cache_dir, (str, os.PathLike)):
            raise TypeError(
                f"cache_dir must be a str or os.PathLike, got "
                f"{type(cache_dir).__name__} {cache_dir!r}"
            )
        return Path(cache_dir).expanduser()
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    return Path("~/.cache/surrogate_nets").expanduser()


def config_hash(config: dict) -> str:
    """A short, stable hex key for a JSON-serialisable ``config`` (sorted keys, sha256)."""
    blob = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def save_npz_atomic(path: Path, **arrays: np.ndarray) -> None:
    """Write ``arrays`` to ``path`` (uncompressed ``.npz``) through
    :func:`~surrogate_nets._io.atomic_write`, so readers never see a half-written file and
    concurrent writers do not clash."""
    atomic_write(path, lambda fh: np.savez(fh, **arrays))


def load_npz(path: Path) -> dict[str, np.ndarray] | None:
    """Load every array of an ``.npz`` file, or ``None`` if it is missing or unreadable."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile):
        return None
