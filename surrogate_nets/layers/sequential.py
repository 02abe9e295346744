"""A Sequential container that threads time-major tensors through neurons and stateless layers."""

from __future__ import annotations

import torch
from torch import nn

from .time_distributed import fold_time


def is_time_major(module: nn.Module) -> bool:
    """Whether ``module`` takes ``[T, B, ...]`` itself (class attribute ``time_major = True``).

    Neurons, :class:`TimeDistributed`, :class:`Flatten`, :class:`TemporalDropout` and
    :class:`Sequential` set it; any module can opt in the same way.
    """
    return bool(getattr(module, "time_major", False))


class Sequential(nn.Sequential):
    """``nn.Sequential`` for ``[T, B, ...]`` inputs: neurons run multi-step, other layers per step.

    Modules marked time-major (:func:`is_time_major`: neurons, :class:`TimeDistributed`,
    :class:`Flatten`, :class:`TemporalDropout`, nested :class:`Sequential`) receive the whole
    sequence; every other module (``nn.Linear``, ``nn.Conv2d``, ``nn.BatchNorm2d``, pooling,
    ``nn.Dropout``, ...) is applied time-distributed, exactly as :class:`TimeDistributed` would.

    Design note: plain modules are *not* wrapped at construction (they are folded at call
    time), so ``model[0].weight`` and the ``state_dict`` keys are those of a plain
    ``nn.Sequential`` with the same layers, and a trained ANN's weights load directly.

    Example (a conv SNN on ``[T, B, 2, 16, 16]``)::

        net = Sequential(
            nn.Conv2d(2, 16, 3, padding=1), LIF(tau=2.0), nn.AvgPool2d(2),
            Flatten(), nn.Linear(16 * 8 * 8, 10), LIF(),
        )
        spikes = net(x)            # [T, B, 10]
        reset(net)                 # only needed for stateful (streaming) neurons

    Shapes: ``[T, B, ...]`` -> ``[T, B, ...]``.
    """

    time_major = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for m in self:
            # under torch.fx tracing (NIR export) each layer is one call; per-step folding is implied
            x = m(x) if is_time_major(m) or isinstance(x, torch.fx.Proxy) else fold_time(m, x)
        return x
