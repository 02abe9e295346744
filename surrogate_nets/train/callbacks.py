"""Callbacks of :func:`~surrogate_nets.train.fit`: what they see, when they run, what is saved.

A callback is any of

* a callable ``cb(state)``, run after each epoch;
* an object with any of the hooks ``on_train_begin``, ``on_batch_end``, ``on_epoch_end``,
  ``on_train_end`` (each called with the :class:`TrainState`);
* a *schedule*: an object with ``step()`` and none of the hooks (e.g.
  :class:`~surrogate_nets.surrogate.AlphaSchedule`), stepped once after each epoch.

Returning ``True`` from a hook (or setting ``state.stop``) stops training after the epoch.
A callback with ``state_dict()`` / ``load_state_dict(state)`` is *stateful*: its state goes into
every checkpoint (key ``"callbacks"``, one entry per callback in list order) and is restored on
resume, so that a resumed run equals an uninterrupted one (an annealed sharpness continues where
it stopped). The state must hold tensors and plain Python types only (checkpoints load with
``weights_only=True``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, List, Optional

import torch
from torch import nn

from .history import History

HOOKS = ("on_train_begin", "on_batch_end", "on_epoch_end", "on_train_end")


@dataclass
class TrainState:
    """What callbacks see: the (unwrapped) model, optimizer, scheduler and progress."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    history: History
    epoch: int = 0            # 0-based index of the current epoch
    epochs: int = 0
    batch: int = 0            # 0-based index of the current batch
    loss: float = float("nan")  # loss of the last batch
    record: Optional[dict] = None  # the record of the last finished epoch
    out_dir: Optional[Path] = None
    rank: int = 0
    world_size: int = 1
    stop: bool = False        # set to True (or return True from a callback) to stop after this epoch
    extra: dict = field(default_factory=dict)


def _has_hooks(cb) -> bool:
    return any(hasattr(cb, h) for h in HOOKS)


def _is_schedule(cb) -> bool:
    return not _has_hooks(cb) and not callable(cb) and callable(getattr(cb, "step", None))


def check_callbacks(callbacks) -> list:
    """``callbacks`` as a list; ``TypeError`` naming the offending entry."""
    if callbacks is None:
        return []
    if callable(callbacks) or _has_hooks(callbacks) or _is_schedule(callbacks):
        callbacks = [callbacks]
    try:
        callbacks = list(callbacks)
    except TypeError:
        raise TypeError(f"callbacks must be a callback or a list of them, got "
                        f"{type(callbacks).__name__}") from None
    for i, cb in enumerate(callbacks):
        if not (callable(cb) or _has_hooks(cb) or _is_schedule(cb)):
            raise TypeError(f"callbacks[{i}] must be callable(state), have on_epoch_end/"
                            f"on_batch_end/on_train_begin/on_train_end methods, or be a schedule "
                            f"with step(), got {type(cb).__name__}")
    return callbacks


def fire(callbacks, hook: str, state: TrainState) -> None:
    """Run ``hook`` of every callback; a ``True`` result sets ``state.stop``."""
    for cb in callbacks:
        fn = getattr(cb, hook, None)
        if fn is None and hook == "on_epoch_end":
            if _is_schedule(cb):
                cb.step()
                continue
            if callable(cb) and not hasattr(cb, "on_batch_end"):
                fn = cb
        if fn is not None and fn(state) is True:
            state.stop = True


def _stateful(cb) -> bool:
    return callable(getattr(cb, "state_dict", None)) and callable(getattr(cb, "load_state_dict", None))


def callback_states(callbacks) -> List[Optional[dict]]:
    """``state_dict()`` of every stateful callback (``None`` for the others), in list order."""
    return [cb.state_dict() if _stateful(cb) else None for cb in callbacks]


def load_callback_states(callbacks, states, where: str = "checkpoint") -> None:
    """Restore what :func:`callback_states` saved; the callbacks must be the same kinds."""
    from .checkpoint import CheckpointError

    states = list(states or [])
    wanted = [i for i, cb in enumerate(callbacks) if _stateful(cb)]
    saved = [i for i, s in enumerate(states) if s is not None]
    if wanted != saved:
        raise CheckpointError(
            f"{where} holds the state of the stateful callbacks at positions {saved}, but the "
            f"callbacks given now are stateful at positions {wanted}; resume with the same "
            f"callbacks in the same order")
    for i in wanted:
        callbacks[i].load_state_dict(states[i])


def check_regularizers(regularizers) -> list:
    """``regularizers`` as a list of callables on the list of recorded spikes."""
    if regularizers is None:
        return []
    if callable(regularizers):
        regularizers = [regularizers]
    regularizers = list(regularizers)
    for r in regularizers:
        if not callable(r):
            raise TypeError(f"regularizers must be callables on the list of recorded spikes "
                            f"(e.g. losses.RateRegularizer), got {type(r).__name__}")
    return regularizers
