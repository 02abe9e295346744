"""Predictions, accuracy and spike rates from time-major network outputs (used by the loop)."""

from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import nn

from ..losses.records import collect


def predict(output: torch.Tensor, loss: Optional[nn.Module] = None) -> torch.Tensor:
    r"""Class predictions ``[B]`` from an output ``[T, B, C]`` (or ``[B, C]``).

    The readout follows the loss, so that accuracy measures what the loss trains:

    * a loss with a ``predict(output)`` method (every :class:`~surrogate_nets.losses.SpikeLoss`:
      e.g. first-spike losses pick the class that fires first, membrane losses reduce the trace
      over time as they do): that method;
    * otherwise: :math:`\arg\max_c \sum_t o_{t,b,c}` (spike count or summed membrane/logits).
    """
    if loss is not None:
        fn = getattr(loss, "predict", None)
        if callable(fn):
            return fn(output)
    if output.dim() == 2:
        return output.argmax(-1)
    if output.dim() != 3:
        raise ValueError(f"cannot read class predictions from an output of shape {tuple(output.shape)}; "
                         f"expected [T, B, C] or [B, C] (pass predict=... to fit/evaluate)")
    return output.detach().sum(0).argmax(-1)


#: The ``recorded[key]`` tensors of every module (one implementation: :func:`surrogate_nets.losses.collect`).
records = collect


def spike_stats(model: nn.Module, output: torch.Tensor) -> tuple[float, float]:
    """``(sum, count)`` of the spikes recorded by the neurons of ``model`` in the last forward
    pass, so that ``sum / count`` is the mean spike rate (spikes per neuron per step); the
    output's own values when nothing is recorded."""
    recs = records(model, "s")
    if not recs:
        recs = [output]
    total, count = 0.0, 0
    with torch.no_grad():
        for r in recs:
            total += float(r.detach().float().sum())
            count += r.numel()
    return total, count


def check_metrics(metrics) -> dict:
    """Validate ``metrics``: a dict ``name -> fn(output, target)`` returning a batch mean."""
    if metrics is None:
        return {}
    if not isinstance(metrics, dict):
        raise TypeError(f"metrics must be a dict name -> callable(output, target), got "
                        f"{type(metrics).__name__}")
    for k, fn in metrics.items():
        if not isinstance(k, str) or not callable(fn):
            raise TypeError(f"metrics must map str names to callables, got {k!r}: {type(fn).__name__}")
        if k in ("loss", "acc", "rate", "epoch"):
            raise ValueError(f"metric name {k!r} is reserved (loss, acc, rate, epoch)")
    return dict(metrics)


def metric_value(fn: Callable, output, target) -> float:
    v = fn(output, target)
    if isinstance(v, torch.Tensor):
        v = v.detach().float().mean().item()
    return float(v)
