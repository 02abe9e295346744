"""Delta (change) coding: spike when a time series moves by at least a threshold between steps.

The ON/OFF events mirror a dynamic vision sensor pixel (Lichtsteiner, Posch & Delbruck,
"A 128x128 120 dB 15 us latency asynchronous temporal contrast vision sensor", IEEE JSSC 43(2),
2008), here applied to consecutive samples rather than to a log-intensity reference level; see
also Eshraghian et al., "Training Spiking Neural Networks Using Lessons From Deep Learning",
Proc. IEEE 111(9), 2023, Sec. III-A.
"""

from __future__ import annotations

import numbers

import torch
from torch import nn

from .._validate import (
    check_broadcast,
    check_float_tensor,
    check_positive,
    check_same_device,
    check_time_major,
)
from .rate import _check_bool, _check_values

__all__ = ["delta", "DeltaEncoder"]


def _check_threshold(threshold, x_seq=None):
    if isinstance(threshold, torch.Tensor):
        check_float_tensor(threshold, "threshold")
        if threshold.requires_grad:
            raise ValueError("threshold must not require grad: delta coding is not differentiable "
                             "in its threshold")
        check_positive(threshold, "threshold")
        if x_seq is not None:
            check_same_device(threshold, "threshold", x_seq, "x_seq")
            check_broadcast(threshold, "threshold", x_seq.shape[1:], "x_seq[t]")
    elif isinstance(threshold, numbers.Real) and not isinstance(threshold, bool):
        check_positive(threshold, "threshold")
    else:
        raise TypeError(f"threshold must be a positive real number or a float tensor, got "
                        f"{type(threshold).__name__} {threshold!r}")
    return threshold


def delta(x_seq: torch.Tensor, threshold=0.1, off_spikes: bool = True, padding: bool = False,
          split_polarity: bool = False) -> torch.Tensor:
    r"""Delta-code a time-major sequence: a spike wherever the signal changes by ``>= threshold``.

    With :math:`d_t = x_t - x_{t-1}` and threshold :math:`\theta > 0`:

    .. math:: \mathrm{on}_t = [d_t \ge \theta], \qquad
              \mathrm{off}_t = [d_t \le -\theta] \;\text{(only if ``off_spikes``, else 0)}

    The reference before the first step is :math:`x_{-1} = 0` when ``padding=False`` (so a
    first sample ``>= theta`` already spikes), and :math:`x_{-1} = x_0` when ``padding=True``
    (the first step never spikes).

    Output: ``split_polarity=False`` returns the signed tensor :math:`\mathrm{on}_t -
    \mathrm{off}_t \in \{-1, 0, 1\}` of shape ``[T, B, ...]``; ``split_polarity=True`` returns two
    0/1 channels ``[T, B, 2, ...]`` with ON in channel 0 and OFF in channel 1 (all zero when
    ``off_spikes=False``), the layout of event-camera frames.

    Args:
        x_seq: floating tensor ``[T, B, ...]`` (time-major), finite.
        threshold: :math:`\theta > 0`; a number or a tensor broadcasting to ``x_seq[t]``
            (e.g. one threshold per feature).
        off_spikes: also emit OFF (negative-change) events.
        padding: compare the first step with itself (True) or with zero (False).
        split_polarity: return separate ON/OFF channels instead of a signed tensor.

    Returns:
        Spikes in ``x_seq``'s dtype and device, detached from the graph.

    Reference: Lichtsteiner, Posch & Delbruck, IEEE JSSC 43(2), 2008.
    """
    check_time_major(x_seq, "x_seq")
    _check_threshold(threshold, x_seq)
    _check_bool(off_spikes, "off_spikes")
    _check_bool(padding, "padding")
    _check_bool(split_polarity, "split_polarity")
    _check_values(x_seq, "x_seq")

    x = x_seq.detach()
    first = x[:1] if padding else torch.zeros_like(x[:1])
    d = x - torch.cat([first, x[:-1]], dim=0)
    thr = threshold.to(x.dtype) if isinstance(threshold, torch.Tensor) else threshold
    on = d >= thr
    off = (d <= -thr) if off_spikes else torch.zeros_like(on)
    if split_polarity:
        return torch.stack([on, off], dim=2).to(x.dtype)
    return on.to(x.dtype) - off.to(x.dtype)


class DeltaEncoder(nn.Module):
    r"""Module form of :func:`delta`: ``[T, B, ...] -> [T, B, ...]`` signed spikes
    :math:`[x_t - x_{t-1} \ge \theta] - [x_t - x_{t-1} \le -\theta]`, or ``[T, B, 2, ...]``
    ON/OFF channels with ``split_polarity=True``.

    Args: as :func:`delta` (``threshold`` a positive number here).

    Reference: Lichtsteiner, Posch & Delbruck, IEEE JSSC 43(2), 2008.
    """

    def __init__(self, threshold: float = 0.1, off_spikes: bool = True, padding: bool = False,
                 split_polarity: bool = False):
        super().__init__()
        if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real):
            raise TypeError(f"threshold must be a real number, got {type(threshold).__name__} "
                            f"{threshold!r}")
        self.threshold = float(check_positive(threshold, "threshold"))
        self.off_spikes = _check_bool(off_spikes, "off_spikes")
        self.padding = _check_bool(padding, "padding")
        self.split_polarity = _check_bool(split_polarity, "split_polarity")

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        return delta(x_seq, threshold=self.threshold, off_spikes=self.off_spikes,
                     padding=self.padding, split_polarity=self.split_polarity)

    def extra_repr(self) -> str:
        return (f"threshold={self.threshold}, off_spikes={self.off_spikes}, padding={self.padding}, "
                f"split_polarity={self.split_polarity}")
