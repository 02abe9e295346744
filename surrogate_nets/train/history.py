"""The per-epoch record of a training run: :class:`History`, and the summary table."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterator, List, Optional


def json_safe(obj):
    """``obj`` with non-finite floats replaced by ``None`` and tuples by lists (strict JSON)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if hasattr(obj, "item") and callable(obj.item):
        try:
            return json_safe(obj.item())
        except (ValueError, RuntimeError):
            pass
    if hasattr(obj, "__fspath__"):
        return str(obj)
    return repr(obj)


class History:
    """The records of a run, one ``dict`` per finished epoch (in order).

    ``history[i]`` is the record of the ``i``-th epoch; ``history["test_acc"]`` the list of that
    key over the epochs (``None`` where missing). ``best`` is ``{"epoch", "metric", "value"}`` of
    the best epoch (what ``best.pt`` holds), ``last`` the last record, ``out_dir`` the output
    directory (or ``None``).
    """

    def __init__(self, records: Optional[List[dict]] = None, best: Optional[dict] = None,
                 out_dir: Optional[Path] = None):
        self.records: List[dict] = list(records or [])
        self.best = best
        self.out_dir = out_dir
        self.stopped_early = False

    def append(self, record: dict) -> None:
        self.records.append(dict(record))

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[dict]:
        return iter(self.records)

    def __getitem__(self, key):
        if isinstance(key, str):
            return [r.get(key) for r in self.records]
        return self.records[key]

    @property
    def last(self) -> Optional[dict]:
        return self.records[-1] if self.records else None

    @property
    def best_record(self) -> Optional[dict]:
        if not self.best:
            return None
        for r in self.records:
            if r.get("epoch") == self.best.get("epoch"):
                return r
        return None

    def table(self) -> str:
        """The summary table as text."""
        return format_table(self.records, self.best)

    def __repr__(self) -> str:
        last = self.last or {}
        keys = ("train_loss", "train_acc", "test_acc")
        body = ", ".join(f"{k}={last[k]:.4g}" for k in keys if isinstance(last.get(k), float))
        return f"History(epochs={len(self)}{', ' + body if body else ''}, best={self.best})"


def _fmt(v, pct=False, digits=4):
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-" if v is None else str(v)
    if pct:
        return f"{100 * v:.2f}%"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def format_table(records: List[dict], best: Optional[dict] = None) -> str:
    """A short fixed-width table of the records: loss, accuracy, spike rate, time per epoch."""
    cols = [("epoch", "epoch", False), ("train_loss", "train loss", False),
            ("train_acc", "train acc", True), ("test_loss", "test loss", False),
            ("test_acc", "test acc", True), ("train_rate", "rate", False), ("time_s", "s/epoch", False)]
    cols = [c for c in cols if any(r.get(c[0]) is not None for r in records)]
    rows = []
    for r in records:
        row = []
        for key, _, pct in cols:
            v = r.get(key)
            if key == "time_s" and isinstance(v, float):
                row.append(f"{v:.1f}")
            elif key == "train_rate" and isinstance(v, float):
                row.append(f"{v:.3f}")
            else:
                row.append(_fmt(v, pct))
        if best and r.get("epoch") == best.get("epoch"):
            row[0] += " *"
        rows.append(row)
    heads = [c[1] for c in cols]
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(heads)]
    line = "  ".join(h.rjust(w) for h, w in zip(heads, widths))
    out = [line, "-" * len(line)]
    out += ["  ".join(v.rjust(w) for v, w in zip(row, widths)) for row in rows]
    if best:
        out.append(f"* best {best['metric']} = "
                   + (_fmt(best["value"], pct=best["metric"].endswith("acc")))
                   + f" at epoch {best['epoch']}")
    return "\n".join(out)
