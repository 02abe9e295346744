"""``export(model, sample_input) -> nir.NIRGraph``: trace a model with torch.fx and map each layer."""

from __future__ import annotations

import operator
from typing import Dict, List, Tuple

import numpy as np
import torch
from torch import fx, nn

from ..layers import (DelayedLinear, Flatten, SynapticDelay, TemporalDropout, TimeDistributed, fold_time,
                      is_time_major)
from ..neurons import BaseNeuron
from .delays import delayed_linear_to_nir, synaptic_delay_to_nir
from .layers import conv_to_nir, flatten_to_nir, linear_to_nir, pool_to_nir
from .modules import GraphModel, Scale, SumPool2d
from .neurons import NEURON_EXPORTERS

DEFAULT_DT = 1e-4  # seconds; the step length snnTorch and SpikingJelly assume when writing NIR

#: modules that vanish in an exported (inference) graph
_IDENTITY = (nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, TemporalDropout)
_LEAF = (BaseNeuron, TimeDistributed, Flatten, nn.Linear, nn.Conv1d, nn.Conv2d, nn.AvgPool2d,
         nn.LPPool2d, nn.Flatten, SumPool2d, Scale, SynapticDelay, DelayedLinear,
         nn.MaxPool2d) + _IDENTITY  # MaxPool2d (incl. layers.MaxPool2d): a leaf, so it is named if unsupported
_ADD = {operator.add, torch.add, operator.iadd}


class _Tracer(fx.Tracer):
    """fx tracer whose leaves are this library's neurons and the layers NIR knows."""

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        if isinstance(m, GraphModel):
            return False
        return isinstance(m, _LEAF) or super().is_leaf_module(m, qualname)


class _ShapeRecorder(fx.Interpreter):
    """Runs the traced graph on the sample input, folding time for per-step modules, and keeps
    each node's per-sample input and output shapes (``[T, B, ...]`` without ``T, B``)."""

    def __init__(self, gm):
        super().__init__(gm)
        self.shapes: Dict[str, Tuple[Tuple[int, ...], Tuple[int, ...]]] = {}

    def call_module(self, target, args, kwargs):
        m = self.fetch_attr(target)
        x = args[0]
        y = m(x, *args[1:], **kwargs) if is_time_major(m) else fold_time(m, x)
        self.shapes[target] = (tuple(x.shape[2:]), tuple(y.shape[2:]))
        return y

    def output(self, target, args, kwargs):
        outs = args[0] if isinstance(args[0], (tuple, list)) else (args[0],)
        self.out_shapes = [tuple(o.shape[2:]) for o in outs]
        return super().output(target, args, kwargs)


def _node_for(m: nn.Module, path: str, in_shape, out_shape, dt: float):
    inner = m.module if isinstance(m, TimeDistributed) else m
    for cls, fn in NEURON_EXPORTERS:
        if isinstance(inner, cls):
            return fn(inner, out_shape, dt)
    if isinstance(inner, (nn.Linear,)):
        return linear_to_nir(inner)
    if isinstance(inner, (nn.Conv1d, nn.Conv2d)):
        return conv_to_nir(inner, in_shape)
    if isinstance(inner, (nn.AvgPool2d, nn.LPPool2d, SumPool2d)):
        return pool_to_nir(inner)
    if isinstance(inner, (Flatten, nn.Flatten)):
        return flatten_to_nir(inner, in_shape)
    if isinstance(inner, SynapticDelay):
        return synaptic_delay_to_nir(inner, path, out_shape, dt)
    if isinstance(inner, Scale):
        import nir

        return nir.Scale(np.ascontiguousarray(np.broadcast_to(inner.scale.cpu().numpy(), out_shape)))
    raise TypeError(f"cannot export module {path!r} of type {type(inner).__module__}.{type(inner).__qualname__} "
                    "to NIR: supported are Linear, Conv1d, Conv2d, AvgPool2d, SumPool2d, Flatten, Dropout/"
                    "Identity (dropped), SynapticDelay, DelayedLinear (integer delays), IF, LIF, PLIF, Synaptic, "
                    "LI, RLIF and quantized Linear/Conv")


def export(model: nn.Module, sample_input: torch.Tensor, *, dt: float = DEFAULT_DT,
           type_check: bool = True):
    r"""Export ``model`` to a ``nir.NIRGraph``.

    The model is traced with ``torch.fx`` (neurons and known layers are leaves; containers such
    as :class:`~surrogate_nets.layers.Sequential` and user modules are traced through; ``+``
    between branches becomes NIR's summation of incoming edges), then run once on
    ``sample_input`` ``[T, B, ...]`` to record every layer's per-sample shape. Neurons are mapped
    with the Euler discretisation of :mod:`surrogate_nets.nir.neurons` (``tau = dt / (1 - beta)``,
    ...); what NIR cannot hold (reset mode, levels, surrogate, exact parameters) is kept in each
    node's ``metadata["surrogate_nets"]``. The graph's ``metadata`` records ``dt``.

    Args:
        model: the network (inference semantics: dropout is removed).
        sample_input: a time-major ``[T, B, ...]`` float tensor; only its shape matters.
        dt: the step length in seconds that time constants are expressed in (default ``1e-4``,
            the value snnTorch and SpikingJelly use; give the same ``dt`` to the reader).
        type_check: let NIR check that connected nodes agree on shapes.

    Returns:
        ``nir.NIRGraph`` with an ``"input"`` node of the per-sample input shape and an
        ``"output"`` node (``"output"``, ``"output_1"``, ... for several outputs).

    Raises:
        TypeError: a module or function with no NIR equivalent (named in the message).
    """
    import nir

    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    if not isinstance(sample_input, torch.Tensor) or sample_input.dim() < 3:
        raise ValueError("sample_input must be a time-major [T, B, ...] tensor with a per-sample shape, got "
                         + (f"shape {tuple(sample_input.shape)}" if isinstance(sample_input, torch.Tensor)
                            else type(sample_input).__name__))
    if not (isinstance(dt, (int, float)) and dt > 0):
        raise ValueError(f"dt must be a positive number (seconds per step), got {dt!r}")
    tracer = _Tracer()
    graph = tracer.trace(model)
    gm = fx.GraphModule(tracer.root, graph)
    rec = _ShapeRecorder(gm)
    kept = [(m, m._state, getattr(m, "recorded", None)) for m in model.modules()
            if isinstance(m, (BaseNeuron, SynapticDelay, DelayedLinear))]
    try:
        for m, _, _ in kept:
            m._state = None  # from a zero state, whatever the stored batch size
        with torch.no_grad():
            rec.run(sample_input)
    finally:  # the shape run leaves streaming state and recordings as they were
        for m, state, recorded in kept:
            m._state = state
            if isinstance(m, BaseNeuron):
                m.recorded = recorded
    nodes: Dict[str, object] = {"input": nir.Input(input_type=np.array(sample_input.shape[2:]))}
    names: Dict[fx.Node, List[str]] = {}  # fx node -> the NIR node names that carry its value
    edges: List[Tuple[str, str]] = []
    n_out = 0
    for node in graph.nodes:
        srcs: List[str] = []
        for a in node.all_input_nodes:
            srcs += names.get(a, [])
        if node.op == "placeholder":
            if names:  # a second forward argument
                raise TypeError(f"cannot export a model whose forward takes several inputs ({node.name!r})")
            names[node] = ["input"]
        elif node.op == "call_module":
            m = gm.get_submodule(node.target)
            if isinstance(m, _IDENTITY) or (isinstance(m, TimeDistributed) and isinstance(m.module, _IDENTITY)):
                names[node] = srcs
                continue
            in_shape, out_shape = rec.shapes[node.target]
            name = node.target.replace(".", "_") or "module"
            while name in nodes:
                name += "_"
            if isinstance(m, DelayedLinear):  # one Delay -> Linear branch per distinct delay
                new, first, last, inner = delayed_linear_to_nir(m, node.target, name, in_shape, dt)
                if set(new) & set(nodes):
                    raise ValueError(f"NIR node names {sorted(set(new) & set(nodes))} of the DelayedLinear "
                                     f"{node.target!r} clash with other layers' names")
                nodes.update(new)
                edges += [(s, f) for s in srcs for f in first] + inner
                names[node] = last
                continue
            nodes[name] = _node_for(m, node.target, in_shape, out_shape, dt)
            edges += [(s, name) for s in srcs]
            names[node] = [name]
        elif node.op in ("call_function", "call_method") and (
                node.target in _ADD or node.target in ("add", "__add__", "add_")):
            names[node] = srcs  # NIR sums all edges into a node
        elif node.op == "output":
            outs = node.args[0] if isinstance(node.args[0], (tuple, list)) else (node.args[0],)
            for o, shape in zip(outs, rec.out_shapes):
                if not isinstance(o, fx.Node):
                    raise TypeError(f"cannot export a model that returns {type(o).__name__}")
                oname = "output" if n_out == 0 else f"output_{n_out}"
                n_out += 1
                nodes[oname] = nir.Output(output_type=np.array(shape))
                edges += [(s, oname) for s in names[o]]
        else:
            what = getattr(node.target, "__name__", str(node.target))
            raise TypeError(f"cannot export {node.op} {what!r} (fx node {node.name!r}) to NIR: only "
                            "modules and '+' between branches have NIR equivalents; wrap other operations "
                            "in a module or remove them")
    meta = {"surrogate_nets": {"dt": float(dt), "time_major": True}}
    try:
        return nir.NIRGraph(nodes=nodes, edges=edges, type_check=type_check, metadata=meta)
    except (ValueError, AssertionError, NotImplementedError) as e:  # NIR's checker, with our context
        raise ValueError(f"NIR's type check of the exported graph failed ({e}); "
                         "export(..., type_check=False) skips it") from e
