"""Small modules that NIR nodes map to and torch.nn lacks: sum pooling, elementwise scale, graph."""

from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from ..layers import fold_time, is_time_major


class SumPool2d(nn.Module):
    r"""Sum pooling, NIR's ``SumPool2d``: :math:`y = \sum_{(i, j) \in \text{window}} x_{i j}`.

    Computed as ``avg_pool2d(..., divisor_override=1)`` (zero padding). For binary spikes it
    counts the spikes in each window. Shapes: ``[N, C, H, W] -> [N, C, H', W']`` (per step;
    inside :class:`~surrogate_nets.layers.Sequential` it is applied time-distributed).
    """

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding, divisor_override=1)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class Scale(nn.Module):
    r"""Elementwise scale, NIR's ``Scale``: :math:`y = s \odot x` (``s`` broadcast over ``[..., *shape]``).

    Also used by :func:`surrogate_nets.nir.load` to carry the input gain of an ``LI`` node whose
    ``r`` does not match one of the two gains :class:`~surrogate_nets.neurons.LI` has built in.
    """

    time_major = True  # elementwise: the same on [T, B, ...] as per step

    def __init__(self, scale: torch.Tensor):
        super().__init__()
        self.register_buffer("scale", torch.as_tensor(scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale.to(x.dtype)

    def extra_repr(self) -> str:
        s = self.scale
        return f"scale={s.item():.4g}" if s.numel() == 1 else f"scale=shape{tuple(s.shape)}"


class GraphModel(nn.Module):
    r"""A branching network read from NIR: nodes run in topological order on ``[T, B, ...]``.

    Every node's input is the sum of the outputs of the nodes with an edge into it (NIR's rule).
    Time-major modules (neurons, :class:`~surrogate_nets.layers.Flatten`, ...) receive the whole
    sequence; every other module is applied per step (:func:`~surrogate_nets.layers.fold_time`),
    as in :class:`~surrogate_nets.layers.Sequential`. A straight chain is returned by
    :func:`surrogate_nets.nir.load` as a :class:`~surrogate_nets.layers.Sequential` instead.

    Shapes: ``[T, B, *input]`` -> ``[T, B, *output]`` (a tuple, in output-node order, when the
    graph has several outputs).

    Attributes:
        nodes: ``nn.ModuleDict`` of the node modules (names: the NIR names with ``.`` -> ``_``).
        order: ``[(name, [input names])]`` in execution order; ``"input"`` names the graph input.
        outputs: names of the nodes whose outputs the model returns.
    """

    time_major = True

    def __init__(self, nodes: Dict[str, nn.Module], order: Sequence[Tuple[str, List[str]]],
                 outputs: Sequence[str]):
        super().__init__()
        self.nodes = nn.ModuleDict(nodes)
        self.order = [(n, list(ins)) for n, ins in order]
        self.outputs = list(outputs)

    def forward(self, x: torch.Tensor):
        values = {"input": x}
        for name, ins in self.order:
            h = values[ins[0]]
            for other in ins[1:]:
                h = h + values[other]
            m = self.nodes[name]
            values[name] = m(h) if is_time_major(m) else fold_time(m, h)
        outs = tuple(values[o] for o in self.outputs)
        return outs[0] if len(outs) == 1 else outs
