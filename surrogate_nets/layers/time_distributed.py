"""Apply a stateless module to every time step by folding time into the batch."""

from __future__ import annotations

import torch
from torch import nn



def fold_time(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``module`` applied to ``x`` ``[T, B, ...]`` as one batch ``[T*B, ...]``, unfolded back.

    Inputs whose tensors are not floating (e.g. an index tensor for ``nn.Embedding``) are
    accepted; only the time-major shape is required.
    """
    if isinstance(x, torch.fx.Proxy):  # torch.fx tracing (NIR export): one call of the layer
        return module(x)
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() < 2 or x.shape[0] == 0:
        raise ValueError(f"x must be time-major [T, B, ...] with T >= 1, got shape {tuple(x.shape)}")
    T, B = x.shape[:2]
    y = module(x.reshape(T * B, *x.shape[2:]))
    if not isinstance(y, torch.Tensor) or y.dim() < 1 or y.shape[0] != T * B:
        raise ValueError(f"{type(module).__name__} must map [T*B, ...] to [T*B, ...] for time folding "
                         f"(T={T}, B={B}), got {type(y).__name__}"
                         + (f" of shape {tuple(y.shape)}" if isinstance(y, torch.Tensor) else ""))
    return y.reshape(T, B, *y.shape[1:])


class TimeDistributed(nn.Module):
    r"""Apply a stateless per-sample module to ``[T, B, ...]`` by folding ``T`` into the batch.

    .. math:: y_t = f(x_t)\ \ \text{for all } t,\ \text{computed as } f([x_0; \dots; x_{T-1}])

    For ``nn.Linear``, ``nn.Conv2d``, pooling, ``nn.Flatten`` and the like this is exact; for
    ``nn.BatchNorm*`` the statistics are taken over ``T * B`` samples (shared over time as in
    tdBN, Zheng et al. AAAI 2021); for
    ``nn.Dropout`` each step gets its own mask (use :class:`TemporalDropout` to share it).

    Shapes: ``[T, B, *in]`` -> ``[T, B, *out]``. The wrapped module is ``self.module``.
    """

    time_major = True

    def __init__(self, module: nn.Module):
        super().__init__()
        if not isinstance(module, nn.Module):
            raise TypeError(f"module must be an nn.Module, got {type(module).__name__}")
        self.module = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fold_time(self.module, x)
