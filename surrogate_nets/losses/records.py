"""Collect per-layer records from a model (no global registry) and add a regularizer to a loss.

Recording protocol
------------------
Any module that exposes an attribute ``recorded: dict[str, Tensor]`` takes part. After a
forward pass, ``module.recorded["s"]`` holds that module's output spikes ``[T, B, ...]`` of
the pass, still attached to the autograd graph; other keys (e.g. ``"v"`` for the membrane)
may be present. Modules without the attribute, or without the key, are skipped. The neurons of
:mod:`surrogate_nets.neurons` follow it when recording is switched on; any user module can
follow it by filling such a dict in its ``forward``.
"""

from __future__ import annotations

from typing import Callable, Dict, List, Sequence

import torch
from torch import nn

from .base import SpikeLoss


def collect(model: nn.Module, key: str = "s") -> List[torch.Tensor]:
    """The tensors ``module.recorded[key]`` of every module of ``model`` that has one.

    Args:
        model: any :class:`torch.nn.Module`; ``model.modules()`` is walked in registration order
            (each module once).
        key: record name; ``"s"`` (spikes ``[T, B, ...]``) by default.

    Returns:
        A list of tensors (possibly empty), in module order.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(key, str):
        raise TypeError(f"key must be a str, got {type(key).__name__} {key!r}")
    found = []
    for m in model.modules():
        rec = getattr(m, "recorded", None)
        if isinstance(rec, dict):
            value = rec.get(key)
            if isinstance(value, torch.Tensor):
                found.append(value)
    return found


def enable_recording(model: nn.Module, keys: Sequence[str] = ("s",)) -> Dict[nn.Module, tuple]:
    """Ask every neuron of ``model`` to also record the traces ``keys`` (those it can record).

    Switches recording on through each module's ``set_record`` (the neurons of
    :mod:`surrogate_nets.neurons`); what a neuron already records stays on, traces it cannot
    record (not in its ``recordable``) are skipped, and modules without ``set_record`` are left
    alone. Returns ``{module: previous record setting}`` for :func:`restore_recording`; read the
    traces after a forward pass with :func:`collect`.
    """
    previous = {}
    for m in model.modules():
        fn = getattr(m, "set_record", None)
        if not callable(fn):
            continue
        old = getattr(m, "record", ())
        old = (old,) if isinstance(old, str) else tuple(old or ())
        recordable = getattr(m, "recordable", None)
        wanted = tuple(k for k in keys if recordable is None or k in recordable)
        new = tuple(dict.fromkeys(old + wanted))
        previous[m] = old
        if new != old:
            fn(new)
    return previous


def restore_recording(previous: Dict[nn.Module, tuple]) -> None:
    """Undo :func:`enable_recording` (``previous`` is what it returned)."""
    for m, old in previous.items():
        if tuple(getattr(m, "record", ())) != old:
            m.set_record(old)


def regularization(model: nn.Module, regularizer: Callable, key: str = "s") -> torch.Tensor:
    r"""Apply ``regularizer`` to the spikes recorded by every neuron of ``model``.

    .. math::  R = \text{regularizer}\big([\,m.\text{recorded}[\text{key}]\ \text{for } m \in
               \text{model.modules()}\,]\big)

    Args:
        model: a model whose neurons follow the recording protocol of this module (any module
            exposing ``recorded: dict[str, Tensor]`` with key ``"s"`` for spikes ``[T, B, ...]``).
        regularizer: a callable on a list of spike tensors, e.g.
            :class:`~surrogate_nets.losses.RateRegularizer` or
            :class:`~surrogate_nets.losses.SpikeL1`.
        key: record name (default ``"s"``).

    Returns:
        Whatever ``regularizer`` returns (a scalar for ``reduction="mean"``).

    Raises:
        ValueError: no module of ``model`` recorded ``key`` (switch recording on, and run a
            forward pass first).
    """
    tensors = collect(model, key)
    if not tensors:
        raise ValueError(
            f"no module of {type(model).__name__} exposes recorded[{key!r}]; enable recording on "
            f"the neurons (any module with a dict attribute `recorded` holding key {key!r}: "
            f"spikes [T, B, ...]) and run a forward pass before computing the regularizer")
    return regularizer(tensors)


class RegularizedLoss(SpikeLoss):
    r"""A task loss plus an activity regularizer on the model's recorded spikes.

    .. math::  L = \text{loss}(\text{output}, \text{target})
                 + \text{regularizer}(\text{collect}(\text{model}, \text{key}))

    Sets ``needs_model = True``: call :meth:`bind` with the model once before training (the
    training loop does so). Both terms should use the same reduction (``"mean"`` by default).

    Args:
        loss: the task loss, any module ``forward(output, target)``.
        regularizer: e.g. :class:`~surrogate_nets.losses.RateRegularizer`.
        key: record name of the spikes (default ``"s"``).

    Shapes: those of ``loss``; the regularizer reads the records ``[T, B, ...]``.

    Reference: the recording protocol is this library's; the regularizers cite their papers.
    """

    needs_model = True

    def __init__(self, loss: nn.Module, regularizer: nn.Module, key: str = "s") -> None:
        super().__init__("mean")
        for value, name in ((loss, "loss"), (regularizer, "regularizer")):
            if not callable(value):
                raise TypeError(f"{name} must be a callable module, got {type(value).__name__}")
        self.loss = loss
        self.regularizer = regularizer
        self.key = key
        self.reduction = getattr(loss, "reduction", "mean")

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        model = self.model
        if model is None:
            raise RuntimeError("RegularizedLoss needs the model: call loss.bind(model) before "
                               "the first forward (needs_model=True)")
        return self.loss(output, target) + regularization(model, self.regularizer, self.key)

    def predict(self, output: torch.Tensor) -> torch.Tensor:
        """The wrapped loss's readout (see :meth:`SpikeLoss.predict`)."""
        fn = getattr(self.loss, "predict", None)
        return fn(output) if callable(fn) else super().predict(output)

    def extra_repr(self) -> str:
        return f"key={self.key!r}"
