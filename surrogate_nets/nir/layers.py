"""Stateless layers <-> NIR nodes: Linear/Affine, Conv1d/Conv2d, pooling, Flatten, Scale.

Quantized layers (:class:`~surrogate_nets.quant.QuantLinear`, ``QuantConv1d``/``QuantConv2d``)
export their dequantized weight (bit-for-bit the weight their forward uses), with the integer
codes, steps, bit width and zero points in ``metadata["surrogate_nets"]["quant"]``; they are read
back as plain float layers with that weight (same outputs).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..layers import Flatten
from ..quant import QuantLayerMixin
from .modules import Scale, SumPool2d

KEY = "surrogate_nets"


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy().copy()


def _weight_and_meta(m):
    """The float weight NIR gets and the metadata (integer codes etc. for quantized layers)."""
    if isinstance(m, QuantLayerMixin):
        if m.input_quant is not None or m.output_quant is not None:
            raise ValueError(f"{type(m).__name__} with input_quant/output_quant cannot be exported to NIR "
                             "(NIR has no activation quantizer); remove them or export the QuantAct separately")
        ex = m.export_int()
        meta = {"quant": {"codes": _np(ex.weight), "step": np.atleast_1d(_np(ex.weight_step)),
                          "zero_point": np.atleast_1d(_np(ex.weight_zero_point)), "bits": int(ex.bits or 0),
                          "binary": bool(ex.binary), "class": type(m).__name__}}
        return _np(ex.dequantize()), {KEY: meta}
    return _np(m.weight), {}


def linear_to_nir(m: nn.Linear):
    """``nn.Linear`` (or QuantLinear) -> ``nir.Linear`` (no bias) or ``nir.Affine``."""
    import nir

    w, md = _weight_and_meta(m)
    if m.bias is None:
        return nir.Linear(weight=w, metadata=md)
    return nir.Affine(weight=w, bias=_np(m.bias), metadata=md)


def conv_to_nir(m, in_shape):
    """``nn.Conv1d``/``nn.Conv2d`` (or quantized) -> ``nir.Conv1d``/``nir.Conv2d``.

    ``in_shape`` is the per-sample input ``(C, *spatial)``; NIR stores the spatial part.
    """
    import nir

    if m.padding_mode != "zeros":
        raise ValueError(f"{type(m).__name__}(padding_mode={m.padding_mode!r}) has no NIR equivalent "
                         "(NIR convolutions pad with zeros)")
    w, md = _weight_and_meta(m)
    bias = _np(m.bias) if m.bias is not None else np.zeros(w.shape[0], w.dtype)
    pad = m.padding if isinstance(m.padding, str) else tuple(m.padding)
    if isinstance(m, nn.Conv1d):
        return nir.Conv1d(input_shape=int(in_shape[-1]), weight=w, stride=m.stride[0],
                          padding=pad if isinstance(pad, str) else pad[0], dilation=m.dilation[0],
                          groups=m.groups, bias=bias, metadata=md)
    return nir.Conv2d(input_shape=tuple(int(s) for s in in_shape[-2:]), weight=w, stride=tuple(m.stride),
                      padding=pad, dilation=tuple(m.dilation), groups=m.groups, bias=bias, metadata=md)


def _pair(v):
    return np.array(v if isinstance(v, (tuple, list)) else (v, v))


def pool_to_nir(m):
    """``nn.AvgPool2d`` -> ``nir.AvgPool2d``; :class:`SumPool2d` / ``nn.LPPool2d(1)`` -> ``nir.SumPool2d``."""
    import nir

    if isinstance(m, nn.AvgPool2d):
        if m.ceil_mode or (not m.count_include_pad and np.any(_pair(m.padding))) or m.divisor_override:
            raise ValueError("nn.AvgPool2d with ceil_mode, divisor_override or count_include_pad=False and "
                             "padding has no NIR equivalent")
        stride = m.kernel_size if m.stride is None else m.stride
        return nir.AvgPool2d(kernel_size=_pair(m.kernel_size), stride=_pair(stride), padding=_pair(m.padding))
    if isinstance(m, nn.LPPool2d):
        if m.norm_type != 1 or m.ceil_mode:
            raise ValueError(f"nn.LPPool2d(norm_type={m.norm_type}) has no NIR equivalent (only norm_type=1, "
                             "a sum pool of non-negative inputs, is SumPool2d)")
        stride = m.kernel_size if m.stride is None else m.stride
        return nir.SumPool2d(kernel_size=_pair(m.kernel_size), stride=_pair(stride), padding=np.array([0, 0]))
    return nir.SumPool2d(kernel_size=_pair(m.kernel_size), stride=_pair(m.stride), padding=_pair(m.padding))


def flatten_to_nir(m, in_shape):
    """:class:`~surrogate_nets.layers.Flatten` / ``nn.Flatten`` -> ``nir.Flatten``.

    NIR's ``start_dim``/``end_dim`` count the per-sample dims (no batch), as snnTorch and
    SpikingJelly write them: ``nn.Flatten(start_dim=1)`` on ``[B, ...]`` is NIR ``start_dim=0``.
    """
    import nir

    if isinstance(m, Flatten):
        start, end = m.start_dim, -1
    else:
        start = m.start_dim - 1 if m.start_dim > 0 else m.start_dim
        end = m.end_dim - 1 if m.end_dim > 0 else m.end_dim
    return nir.Flatten(input_type={"input": np.array(in_shape)}, start_dim=start, end_dim=end)


# --------------------------------------------------------------------------- import
def _tup(v):
    a = np.asarray(v).reshape(-1)
    return int(a[0]) if a.size == 1 else tuple(int(x) for x in a)


def _set(param: torch.Tensor, value) -> None:
    with torch.no_grad():
        param.copy_(torch.as_tensor(np.asarray(value), dtype=param.dtype).reshape(param.shape))


def linear_from_nir(node) -> nn.Linear:
    w = np.asarray(node.weight)
    bias = getattr(node, "bias", None)
    m = nn.Linear(w.shape[-1], w.shape[-2], bias=bias is not None)
    _set(m.weight, w)
    if bias is not None:
        _set(m.bias, bias)
    return m


def conv_from_nir(node):
    import nir

    w = np.asarray(node.weight)
    cls = nn.Conv1d if isinstance(node, nir.Conv1d) else nn.Conv2d
    pad = node.padding if isinstance(node.padding, str) else _tup(node.padding)
    m = cls(w.shape[1] * int(node.groups), w.shape[0], _tup(w.shape[2:]), stride=_tup(node.stride),
            padding=pad, dilation=_tup(node.dilation), groups=int(node.groups), bias=True)
    _set(m.weight, w)
    _set(m.bias, node.bias if node.bias is not None else np.zeros(w.shape[0]))
    return m


def pool_from_nir(node):
    import nir

    k, s, p = _tup(node.kernel_size), _tup(node.stride), _tup(node.padding)
    if isinstance(node, nir.AvgPool2d):
        return nn.AvgPool2d(k, s, p)
    return SumPool2d(k, s, p)


def flatten_from_nir(node):
    start, end = int(node.start_dim), int(node.end_dim)
    if end == -1 and start >= 0:
        return Flatten(start_dim=start)
    return nn.Flatten(start_dim=start + 1 if start >= 0 else start, end_dim=end + 1 if end >= 0 else end)


def scale_from_nir(node):
    return Scale(torch.as_tensor(np.asarray(node.scale), dtype=torch.float32))
