"""Atomic file writes shared by the data cache and the training checkpoints (private)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def _fsync_dir(path: Path) -> None:
    """fsync a directory so that a rename inside it is durable (best effort; no-op on Windows)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path, write) -> Path:
    """Write a file atomically: ``write(fileobj)`` goes to a temporary file in the same directory,
    which is flushed, fsync'ed and then renamed over ``path`` with :func:`os.replace`.

    Readers see either the old file or the complete new one, never a partial write; if ``write``
    raises (or the process dies) the old file is left untouched and the temporary file removed
    (on an exception).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        try:  # mkstemp creates the file 0600; give it the permissions open() would
            os.chmod(tmp, 0o666 & ~_umask())
        except OSError:
            pass
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(path.parent)
    return path


def atomic_write_text(path, text: str) -> Path:
    """:func:`atomic_write` for a UTF-8 text file."""
    data = text.encode("utf-8")
    return atomic_write(path, lambda fh: fh.write(data))
