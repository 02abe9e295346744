"""Clearing streaming state."""

from __future__ import annotations

from torch import nn


def reset(model: nn.Module) -> nn.Module:
    """Call ``reset_state()`` on every module of ``model`` that has one (all neurons do).

    Clears the streaming state of ``stateful=True`` neurons and their recordings; stateless
    (default) neurons keep nothing between calls, so this is then a no-op. Returns ``model``.
    Other stateful modules opt in by defining a ``reset_state()`` method.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    for m in model.modules():
        fn = getattr(m, "reset_state", None)
        if callable(fn):
            fn()
    return model
