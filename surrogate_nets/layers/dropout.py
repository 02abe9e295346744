"""Dropout with one mask shared by all time steps."""

from __future__ import annotations

import torch
from torch import nn

from .._validate import check_in_range, check_time_major


class TemporalDropout(nn.Module):
    r"""Dropout whose mask is drawn once per forward and reused at every time step.

    .. math:: y_t = x_t \odot m / (1 - p),\quad m \sim \mathrm{Bernoulli}(1 - p)^{[B, \dots]}

    Dropping a unit for the whole sequence (rather than independently per step, which a spiking
    neuron integrates away) is the recurrent-dropout recipe of Gal & Ghahramani (NeurIPS 2016).
    Identity in eval mode. Peer equivalents: docs/coming-from.md.

    Shapes: ``[T, B, ...]`` -> ``[T, B, ...]``.
    """

    time_major = True

    def __init__(self, p: float = 0.5):
        super().__init__()
        self.p = float(check_in_range(p, "p", 0.0, 1.0, low_open=False, high_open=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_time_major(x, "x")
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = torch.empty(x.shape[1:], dtype=x.dtype, device=x.device).bernoulli_(keep).div_(keep)
        return x * mask

    def extra_repr(self) -> str:
        return f"p={self.p}"
