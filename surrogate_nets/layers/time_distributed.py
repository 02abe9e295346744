"""Apply a stateless module to every time step by folding time into the batch."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.modules.lazy import LazyModuleMixin



_HINT = ("; tensors are time-major [T, B, ...] (dim 0 = time, dim 1 = batch): add a time axis "
         "(x.unsqueeze(0) for T = 1) or transpose a sample-major [B, T, ...] batch (x.transpose(0, 1))")


def check_layout(module: nn.Module, x: torch.Tensor) -> None:
    """Reject an input whose rank or feature size cannot be time-major for ``module``.

    Checked where the layer knows its input size: ``nn.Linear`` (``[T, B, ..., in_features]``),
    ``nn.ConvNd`` (``[T, B, C_in, *spatial]``, exactly ``N + 3`` dims) and ``nn.BatchNormNd``
    (``[T, B, C, ...]``). A ``[B, N]`` batch without a time axis is caught this way. What cannot be
    detected: a sample-major ``[B, T, N]`` batch (same rank and feature size as ``[T, B, N]``), and
    layers without a known input size (activations, pooling, dropout, flatten).
    """
    if isinstance(module, LazyModuleMixin) and module.has_uninitialized_params():
        return  # a lazy layer learns its input size from this very call
    name = type(module).__name__
    if isinstance(module, nn.Linear):
        if x.dim() < 3 or x.shape[-1] != module.in_features:
            raise ValueError(f"{name}(in_features={module.in_features}) needs x of shape "
                             f"[T, B, ..., {module.in_features}], got shape {tuple(x.shape)}" + _HINT)
    elif isinstance(module, nn.modules.conv._ConvNd):
        nd = len(module.kernel_size)
        if x.dim() != nd + 3 or x.shape[2] != module.in_channels:
            raise ValueError(f"{name}(in_channels={module.in_channels}) needs x of shape "
                             f"[T, B, {module.in_channels}, {', '.join('*' * nd)}] ({nd + 3} dims), "
                             f"got shape {tuple(x.shape)}" + _HINT)
    elif isinstance(module, nn.modules.batchnorm._BatchNorm):
        if x.dim() < 3 or x.shape[2] != module.num_features:
            raise ValueError(f"{name}(num_features={module.num_features}) needs x of shape "
                             f"[T, B, {module.num_features}, ...], got shape {tuple(x.shape)}" + _HINT)


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
    check_layout(module, x)
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
