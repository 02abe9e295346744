"""Logging sinks beside ``metrics.jsonl``: a CSV file and TensorBoard, as :func:`fit` callbacks.

``surrogate-nets train --log csv,tensorboard`` adds both; from Python pass them in
``callbacks=``. Only rank 0 writes. Each sink writes the per-epoch records of
:class:`~surrogate_nets.train.History` (``train_loss``, ``test_acc``, ``lr``, ...).

* :class:`CSVLogger` rewrites ``metrics.csv`` atomically after every epoch from the whole
  history, so a resumed run's file has each epoch exactly once.
* :class:`TensorBoardLogger` writes event files with :class:`torch.utils.tensorboard.SummaryWriter`
  (needs the ``tensorboard`` package: ``pip install surrogate-nets[tensorboard]``); scalars are
  logged with the epoch as the step (a resumed run logs the repeated epoch again; TensorBoard
  shows the latest value per step).
"""

from __future__ import annotations

import csv
import importlib.util
import io
import math
from pathlib import Path
from typing import List, Optional

from .._io import atomic_write_text

#: Sink names of ``--log``.
SINKS = ("csv", "tensorboard")


def _columns(records: List[dict]) -> List[str]:
    cols: List[str] = []
    for r in records:
        for k in r:
            if k not in cols:
                cols.append(k)
    return cols


class CSVLogger:
    """Write the history as CSV (one row per epoch, one column per record key) to ``path``
    (default ``<out_dir>/metrics.csv``)."""

    def __init__(self, path=None):
        self.path = None if path is None else Path(path)

    def on_epoch_end(self, state) -> None:
        if state.rank != 0:
            return
        path = self.path or (Path(state.out_dir) / "metrics.csv" if state.out_dir else None)
        if path is None:
            raise ValueError("CSVLogger needs a path, or fit(out_dir=...) to write metrics.csv into")
        records = state.history.records
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=_columns(records), lineterminator="\n")
        writer.writeheader()
        for r in records:
            writer.writerow({k: ("" if v is None else v) for k, v in r.items()})
        atomic_write_text(path, buf.getvalue())


def have_tensorboard() -> bool:
    return importlib.util.find_spec("tensorboard") is not None


class TensorBoardLogger:
    """Log every numeric record value as a TensorBoard scalar (step = epoch) to ``log_dir``
    (default ``<out_dir>/tensorboard``)."""

    def __init__(self, log_dir=None):
        if not have_tensorboard():
            raise ImportError("TensorBoardLogger needs the tensorboard package "
                              "(pip install surrogate-nets[tensorboard])")
        self.log_dir = None if log_dir is None else Path(log_dir)
        self._writer = None

    def on_train_begin(self, state) -> None:
        if state.rank != 0:
            return
        from torch.utils.tensorboard import SummaryWriter
        log_dir = self.log_dir or (Path(state.out_dir) / "tensorboard" if state.out_dir else None)
        self._writer = SummaryWriter(log_dir=str(log_dir) if log_dir else None)

    def on_epoch_end(self, state) -> None:
        if self._writer is None or state.record is None:
            return
        step = int(state.record["epoch"])
        for k, v in state.record.items():
            if k != "epoch" and isinstance(v, (int, float)) and not isinstance(v, bool) \
                    and math.isfinite(v):
                self._writer.add_scalar(k, v, step)
        self._writer.flush()

    def on_train_end(self, state) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def parse_sinks(text: Optional[str]) -> List[str]:
    """``"tensorboard,csv"`` -> ``["tensorboard", "csv"]``; ``ValueError`` for an unknown sink."""
    if text is None or not str(text).strip():
        return []
    names = [t.strip().lower() for t in str(text).split(",") if t.strip()]
    bad = [n for n in names if n not in SINKS]
    if bad:
        raise ValueError(f"unknown log sink(s) {bad}; expected a comma-separated list of {list(SINKS)}")
    return list(dict.fromkeys(names))


def make_sinks(names: List[str]) -> list:
    """The callbacks of the named sinks (logging into ``out_dir``)."""
    out = []
    for n in names:
        out.append(CSVLogger() if n == "csv" else TensorBoardLogger())
    return out
