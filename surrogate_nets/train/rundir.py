"""The output directory of a run: its files, the configuration check on resume, crash safety.

Files (:data:`ARTIFACTS`): ``config.json`` (the resolved configuration), ``metrics.jsonl`` (one
JSON record per finished epoch), ``last.pt`` (every epoch), ``best.pt`` (when the best metric
improved) and the PNG plots. Every file except the appended ``metrics.jsonl`` is written
atomically (temporary file, fsync, rename), so a kill at any moment leaves the old or the new
version of a file, never a partial one.

Ordering, so that ``best.pt`` and ``last.pt`` agree after a kill at any point: ``best.pt`` is
written *before* ``last.pt``. A kill between the two leaves ``best.pt`` one epoch ahead of
``last.pt``; the resumed run repeats that epoch bit for bit (the seeds and RNG states are in
``last.pt``) and writes both again. ``last.pt`` records which epoch ``best.pt`` must hold
(``best["epoch"]``); :meth:`RunDir.open_for_resume` checks it and, should ``best.pt`` be stale
or missing, restores it from ``last.pt`` when that is the best epoch, or says so. Temporary
files ``.*.tmp`` left by a killed write are removed on resume and on overwrite.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Iterable, List, Optional

from . import checkpoint as ckpt_mod
from .checkpoint import CheckpointError
from .history import json_safe

#: File names inside ``out_dir``.
LAST, BEST, METRICS, CONFIG = "last.pt", "best.pt", "metrics.jsonl", "config.json"
PLOTS = ("curves.png", "sample.png")
#: Every file :func:`~surrogate_nets.train.fit` may write; ``overwrite=True`` removes exactly these.
ARTIFACTS = (LAST, BEST, METRICS, CONFIG) + PLOTS
#: Config keys that may change between a run and its resumption. A configuration may name more
#: of its own keys in its ``"resume_free"`` list (the command line does, from the field
#: metadata of :class:`~surrogate_nets.train.RunConfig`).
RESUME_FREE_KEYS = frozenset({
    "epochs", "out", "out_dir", "resume", "overwrite", "progress", "no_progress", "verbose",
    "device", "data_dir", "download", "num_workers", "plot", "command", "resume_free",
})


# ------------------------------------------------------------------------------ config check
def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def config_differences(old: dict, new: dict, free: Iterable[str] = RESUME_FREE_KEYS) -> List[str]:
    """Keys whose values differ between two configs, ignoring the ones in ``free`` and those
    the new config lists under ``"resume_free"``. A key absent from ``old`` and ``None`` in
    ``new`` (an option added after ``old`` was written, at its default) is no difference."""
    free = set(free) | set((new or {}).get("resume_free") or ())
    a, b = _flatten(old or {}), _flatten(new or {})
    diffs = []
    for k in sorted(set(a) | set(b)):
        if k.rsplit(".", 1)[-1] in free or k.split(".", 1)[0] in free:
            continue
        if k not in a and b[k] is None:
            continue  # an option added later, at its default: not a change
        va, vb = a.get(k, "<missing>"), b.get(k, "<missing>")
        if isinstance(va, (list, tuple)) and isinstance(vb, (list, tuple)):
            va, vb = list(va), list(vb)
        if va != vb:
            diffs.append(f"{k}: checkpoint {va!r} vs now {vb!r}")
    return diffs


# ------------------------------------------------------------------------------ directory
def _remove_temporaries(out: Path) -> List[Path]:
    removed = []
    for p in out.glob(".*.tmp"):
        try:
            p.unlink()
            removed.append(p)
        except OSError:
            pass
    return removed


def _writable_dir(out: Path) -> None:
    """``PermissionError``/``OSError`` turned into a message naming the path and the cause."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OSError(e.errno, f"cannot create the output directory {str(out)!r}: "
                               f"{e.strerror or e}") from e
    if not os.access(out, os.W_OK | os.X_OK):
        raise PermissionError(f"output directory {str(out)!r} is not writable")


def prepare_out_dir(out_dir, resume: bool, overwrite: bool) -> Optional[Path]:
    """Check and create the output directory.

    An existing, non-empty directory is refused unless ``resume`` (continue from its
    ``last.pt``) or ``overwrite`` (delete the files a previous run wrote there: checkpoints,
    metrics, config, plots; nothing else) is given. Leftover temporary files of a killed write
    are removed in both cases.
    """
    if out_dir is None:
        return None
    if not isinstance(out_dir, (str, os.PathLike)):
        raise TypeError(f"out_dir must be a str or os.PathLike, got {type(out_dir).__name__} {out_dir!r}")
    if not str(out_dir).strip():
        raise ValueError(f"out_dir must be a non-empty path, got {str(out_dir)!r}")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"output path {str(out)!r} exists and is not a directory")
    if resume and overwrite:
        raise ValueError("resume and overwrite exclude each other; pass one of them")
    if out.is_dir() and any(out.iterdir()) and not (resume or overwrite):
        raise FileExistsError(
            f"output directory {str(out)!r} already exists and is not empty; pass resume=True "
            f"(--resume) to continue its run, overwrite=True (--overwrite) to replace it, or "
            f"choose another directory")
    if out.is_dir():
        if overwrite:
            for name in ARTIFACTS:
                p = out / name
                if p.is_file():
                    p.unlink()
        _remove_temporaries(out)
    _writable_dir(out)
    return out


def _disk_error(e: OSError, path: Path) -> OSError:
    cause = e.strerror or str(e)
    return OSError(e.errno, f"could not write {str(path)!r}: {cause}"
                            + (" (the disk is full)" if e.errno == 28 else ""))


class RunDir:
    """The files of one run in ``out`` (rank 0 writes; see the module docstring)."""

    def __init__(self, out: Path):
        self.out = Path(out)

    @property
    def last(self) -> Path:
        return self.out / LAST

    @property
    def best(self) -> Path:
        return self.out / BEST

    def open_for_resume(self, config: dict, log=print, repair: bool = True) -> Optional[dict]:
        """The checkpoint to resume from (``None`` when there is none yet), after checking that
        it was written by the same configuration and repairing ``best.pt`` (module docstring)."""
        path = self.last
        if not path.is_file():
            log(f"resume: no checkpoint in {str(self.out)!r} yet, starting from scratch")
            return None
        ck = ckpt_mod.load_checkpoint(path, map_location="cpu")
        diffs = config_differences(ck["config"], json_safe(config))
        if diffs:
            free = sorted(RESUME_FREE_KEYS | set(config.get("resume_free") or ()))
            raise CheckpointError(
                f"checkpoint {str(path)!r} was written by a run with a different configuration; "
                f"resume needs the same settings (except {free}). Differences: " + "; ".join(diffs))
        if repair:
            self._repair_best(ck)
        return ck

    def _repair_best(self, ck: dict) -> None:
        best = ck.get("best")
        if not best:
            return
        want = int(best["epoch"])
        have = None
        if self.best.is_file():
            try:
                have = int(ckpt_mod.load_checkpoint(self.best)["epoch"])
            except CheckpointError:
                have = None
        if have == want or (have is not None and have > int(ck["epoch"])):
            return  # consistent, or one epoch ahead: the repeated epoch rewrites it
        if want == int(ck["epoch"]):
            ckpt_mod.save_checkpoint(ck, self.best)
            return
        warnings.warn(f"{str(self.best)!r} should hold epoch {want} (the best so far) but holds "
                      f"{'nothing readable' if have is None else f'epoch {have}'}; it cannot be "
                      f"restored from last.pt (epoch {ck['epoch']}) and is kept as is",
                      RuntimeWarning, stacklevel=3)

    def write_config(self, config: dict, records: List[dict]) -> None:
        """``config.json`` and ``metrics.jsonl`` (rewritten from the history on resume)."""
        self._atomic_text(self.out / CONFIG, json.dumps(json_safe(config), indent=2) + "\n")
        self._atomic_text(self.out / METRICS, "".join(json.dumps(json_safe(r)) + "\n" for r in records))

    def save_epoch(self, ck: dict, improved: bool, record: dict) -> None:
        """``best.pt`` (if improved) before ``last.pt``, then the record to ``metrics.jsonl``."""
        for path in ((self.best,) if improved else ()) + (self.last,):
            try:
                ckpt_mod.save_checkpoint(ck, path)
            except OSError as e:
                raise _disk_error(e, path) from e
        path = self.out / METRICS
        try:
            with open(path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(json_safe(record)) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as e:
            raise _disk_error(e, path) from e

    @staticmethod
    def _atomic_text(path: Path, text: str) -> None:
        try:
            ckpt_mod.atomic_write_text(path, text)
        except OSError as e:
            raise _disk_error(e, path) from e
