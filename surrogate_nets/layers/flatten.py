"""Flatten the per-sample dims of a time-major tensor."""

from __future__ import annotations

import torch
from torch import nn

from .._validate import check_int


class Flatten(nn.Module):
    """``[T, B, d1, d2, ...]`` -> ``[T, B, d1 * d2 * ...]`` (time and batch kept).

    Args:
        start_dim: first per-sample dim to flatten, counted after ``[T, B]`` (default 0, all of them).
    """

    time_major = True

    def __init__(self, start_dim: int = 0):
        super().__init__()
        self.start_dim = check_int(start_dim, "start_dim", minimum=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.dim() < 2:
            raise ValueError(f"x must be time-major [T, B, ...], got "
                             f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
        if x.dim() <= 2 + self.start_dim:
            return x
        return x.flatten(2 + self.start_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}" if self.start_dim else ""
