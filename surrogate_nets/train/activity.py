"""Activity totals of an evaluation pass as flat record entries (``fit(..., stats=True)``).

:func:`activity_recorder` wraps a pass in :class:`surrogate_nets.stats.record_activity` (or
does nothing), and :func:`activity_record` turns what it saw into scalar ``stats_*`` keys for
the epoch record, so that ``metrics.jsonl``, the CSV and TensorBoard sinks take them as they
are. Definitions (per sample: firing rate, sparsity, SynOps, MACs, energy estimate) are those
of :mod:`surrogate_nets.stats`.
"""

from __future__ import annotations

import contextlib
from torch import nn

#: the record keys :func:`activity_record` writes
KEYS = ("stats_firing_rate", "stats_sparsity", "stats_synops", "stats_macs", "stats_snn_macs",
        "stats_energy_snn_j", "stats_energy_ann_j", "stats_energy_ratio")


def activity_recorder(model: nn.Module, on: bool):
    """``record_activity(model)`` when ``on`` (a context manager yielding the recorder), else a
    context yielding ``None``."""
    if not on:
        return contextlib.nullcontext()
    from ..stats import record_activity

    return record_activity(model)


def activity_record(recorder) -> dict:
    """The ``stats_*`` entries of what ``recorder`` saw (``{}`` for ``None`` or no forward call).
    Values are floats; a net without spiking layers gives NaN rates (``null`` in JSON)."""
    if recorder is None or not recorder.samples:
        return {}
    st = recorder.stats()
    t, e = st.totals, st.energy()
    vals = (t["firing_rate"], t["sparsity"], t["synops"], t["macs"], t["snn_macs"],
            e["snn"], e["ann"], e["ratio"])
    return {k: float(v) for k, v in zip(KEYS, vals)}

