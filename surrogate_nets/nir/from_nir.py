"""``load(graph) -> model``: build this library's modules from a NIR graph."""

from __future__ import annotations

from collections import defaultdict
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
from torch import nn

from ..layers import Sequential
from ..neurons import IF, LI, RLIF, Synaptic
from .to_nir import DEFAULT_DT
from .delays import DelayedLinearSpec, delay_from_nir, fold_delayed_linear
from .layers import (conv_from_nir, flatten_from_nir, linear_from_nir, pool_from_nir,
                     scale_from_nir)
from .modules import GraphModel, Scale
from .neurons import li_from_nir, lif_from_nir, synaptic_from_nir

_SUPPORTED = ("Input, Output, Linear, Affine, Conv1d, Conv2d, AvgPool2d, SumPool2d, Flatten, Scale, "
              "Delay (whole steps), IF, LIF, CubaLIF, LI, and a LIF/IF with a Linear/Affine/Scale self-loop (RLIF)")


def _flatten(graph, prefix: str = "") -> Tuple[Dict[str, object], List[Tuple[str, str]]]:
    """Inline nested ``NIRGraph`` nodes: ``sub.node`` names, the subgraph's Input/Output removed."""
    import nir

    nodes: Dict[str, object] = {}
    edges: List[Tuple[str, str]] = []
    entry: Dict[str, List[str]] = {}  # subgraph name -> its first nodes
    exit_: Dict[str, List[str]] = {}  # subgraph name -> its last nodes
    for name, node in graph.nodes.items():
        full = prefix + name
        if isinstance(node, nir.NIRGraph):
            sub_nodes, sub_edges = _flatten(node, full + ".")
            ins = {full + "." + k for k, v in node.nodes.items() if isinstance(v, nir.Input)}
            outs = {full + "." + k for k, v in node.nodes.items() if isinstance(v, nir.Output)}
            entry[full] = [b for a, b in sub_edges if a in ins]
            exit_[full] = [a for a, b in sub_edges if b in outs]
            nodes.update({k: v for k, v in sub_nodes.items() if k not in ins | outs})
            edges += [(a, b) for a, b in sub_edges if a not in ins and b not in outs]
        else:
            nodes[full] = node
    for a, b in graph.edges:
        a, b = prefix + a, prefix + b
        # an edge may name the subgraph itself or its Input/Output nodes
        srcs = exit_.get(a) or exit_.get(a.rsplit(".", 1)[0] if a.endswith(".output") else "", None) or [a]
        dsts = entry.get(b) or entry.get(b.rsplit(".", 1)[0] if b.endswith(".input") else "", None) or [b]
        edges += [(s, d) for s in srcs for d in dsts]
    return nodes, edges


def _module_for(node, name: str, dt: float, reset: Optional[str], rec=None) -> nn.Module:
    import nir

    if isinstance(node, (nir.Linear, nir.Affine)):
        return linear_from_nir(node)
    if isinstance(node, (nir.Conv1d, nir.Conv2d)):
        return conv_from_nir(node)
    if isinstance(node, (nir.AvgPool2d, nir.SumPool2d)):
        return pool_from_nir(node)
    if isinstance(node, nir.Flatten):
        return flatten_from_nir(node)
    if isinstance(node, nir.Scale):
        return scale_from_nir(node)
    if isinstance(node, nir.Delay):
        return delay_from_nir(node, name, dt)
    if isinstance(node, DelayedLinearSpec):
        return node.module()
    if isinstance(node, (nir.LIF, nir.IF)):
        cls, kw = lif_from_nir(node, dt, reset, recurrent=rec is not None)
        if rec is not None:
            return _rlif(node, kw, rec)
        if cls is IF:
            kw = {k: v for k, v in kw.items() if k not in ("beta", "decay_input", "learn_beta")}
        return cls(**kw)
    if isinstance(node, nir.CubaLIF):
        return Synaptic(**synaptic_from_nir(node, dt, reset))
    if isinstance(node, nir.LI):
        kw, gain = li_from_nir(node, dt)
        li = LI(**kw)
        return li if gain is None else Sequential(Scale(torch.as_tensor(gain)), li)
    raise TypeError(f"cannot load NIR node {name!r} of type {type(node).__name__}: supported are {_SUPPORTED}")


def _rlif(node, kw: dict, rec) -> RLIF:
    """An :class:`RLIF` from the LIF/IF node's keyword arguments and its self-loop node ``rec``."""
    import nir

    for k in ("learn_beta",):
        kw.pop(k, None)
    kw.setdefault("beta", 1.0)
    n = int(np.asarray(node.v_threshold).shape[-1]) if np.asarray(node.v_threshold).ndim else None
    if isinstance(rec, nir.Scale):
        m = RLIF(connectivity="one_to_one", **kw)
        with torch.no_grad():
            s = torch.as_tensor(np.asarray(rec.scale), dtype=torch.float32)
            m.recurrent_weight = nn.Parameter(s if s.numel() > 1 else s.reshape(()))
        return m
    w = np.asarray(rec.weight)
    n = w.shape[0]
    bias = getattr(rec, "bias", None)
    m = RLIF(num_neurons=n, connectivity="all_to_all", recurrent_bias=bias is not None, **kw)
    with torch.no_grad():
        m.recurrent.weight.copy_(torch.as_tensor(w, dtype=torch.float32))
        if bias is not None:
            m.recurrent.bias.copy_(torch.as_tensor(np.asarray(bias), dtype=torch.float32))
    return m


def load(graph, *, dt: Optional[float] = None, reset: Optional[str] = None) -> nn.Module:
    r"""Build a model of this library from a ``nir.NIRGraph`` (or a path to a ``.nir`` file).

    Nodes map to modules as documented in :mod:`surrogate_nets.nir.neurons` and
    :mod:`surrogate_nets.nir.layers` (inverse Euler mapping ``beta = 1 - dt / tau``; input gains
    folded into the threshold). Nodes written by :func:`export` carry
    ``metadata["surrogate_nets"]`` and are restored exactly (reset mode, levels, surrogate and its
    alpha, exact decays and thresholds). Nested subgraphs are inlined; a LIF/IF node with a
    Linear/Affine/Scale self-loop (snnTorch's and our recurrent layers) becomes an
    :class:`~surrogate_nets.neurons.RLIF`. ``Delay`` nodes become fixed-delay
    :class:`~surrogate_nets.layers.SynapticDelay` layers, and the ``Delay -> Linear`` branches
    that :func:`export` writes for a :class:`~surrogate_nets.layers.DelayedLinear` fold back into
    one (:mod:`surrogate_nets.nir.delays`). A chain returns a
    :class:`~surrogate_nets.layers.Sequential`, any other DAG a :class:`~.modules.GraphModel`.
    The model takes ``[T, B, *input]``.

    Args:
        graph: ``nir.NIRGraph``, or a file path read with ``nir.read``.
        dt: step length in seconds (default: the graph's ``metadata["surrogate_nets"]["dt"]``,
            else ``1e-4`` as snnTorch and SpikingJelly write).
        reset: reset mode for spiking nodes; default: the stored mode for graphs written here,
            else ``"zero"`` (NIR's neurons reset *to* ``v_reset = 0``). snnTorch simulates its
            graphs with ``"subtract"``.

    Raises:
        TypeError: a node type with no equivalent here (named in the message).
        ValueError: a cycle other than a neuron's self-loop, ``v_leak``/``v_reset`` not 0, ``tau <= dt``,
            a ``Delay`` that is not a whole number of steps ``dt``.
    """
    import nir

    if isinstance(graph, (str, bytes)) or hasattr(graph, "__fspath__"):
        graph = nir.read(graph)
    if not isinstance(graph, nir.NIRGraph):
        raise TypeError(f"graph must be a nir.NIRGraph or a path to a .nir file, got {type(graph).__name__}")
    if reset is not None and reset not in ("subtract", "zero", "none"):
        raise ValueError(f"reset must be one of 'subtract', 'zero', 'none' or None, got {reset!r}")
    if dt is None:
        md = (graph.metadata or {}).get("surrogate_nets", {}) if isinstance(graph.metadata, dict) else {}
        dt = float(np.asarray(md.get("dt", DEFAULT_DT)))
    nodes, edges = _flatten(graph)
    edges = list(dict.fromkeys(edges))
    succ, pred = defaultdict(list), defaultdict(list)
    for a, b in edges:
        if a not in nodes or b not in nodes:
            raise ValueError(f"NIR edge {(a, b)} names a node that does not exist")
        succ[a].append(b)
        pred[b].append(a)
    fold_delayed_linear(nodes, pred, succ)  # exported DelayedLinear branches -> one layer
    # fold self-loops neuron -> w -> neuron into RLIF
    recurrent: Dict[str, object] = {}
    for w, node in list(nodes.items()):
        if isinstance(node, (nir.Linear, nir.Affine, nir.Scale)) and len(pred[w]) == 1:
            n = pred[w][0]
            if n in succ[w] and isinstance(nodes[n], (nir.LIF, nir.IF)):
                if succ[w] != [n]:
                    raise ValueError(f"recurrent weight {w!r} feeds nodes other than its neuron {n!r}")
                recurrent[n] = node
                succ[n].remove(w)
                pred[n].remove(w)
                del nodes[w], succ[w], pred[w]
            elif n in succ[w]:
                raise TypeError(f"cannot load the recurrent {type(nodes[n]).__name__} node {n!r}: only LIF/IF "
                                "self-loops (RLIF) are supported (snnTorch's RSynaptic is not)")
    inputs = [k for k, v in nodes.items() if isinstance(v, nir.Input)]
    outputs = [k for k, v in nodes.items() if isinstance(v, nir.Output)]
    if len(inputs) != 1:
        raise ValueError(f"the NIR graph must have exactly one Input node, got {inputs}")
    # topological order (Kahn)
    indeg = {k: len(pred[k]) for k in nodes}
    ready = [k for k in nodes if indeg[k] == 0]
    order: List[str] = []
    while ready:
        k = ready.pop(0)
        order.append(k)
        for s in succ[k]:
            indeg[s] -= 1
            if indeg[s] == 0:
                ready.append(s)
    if len(order) != len(nodes):
        left = sorted(k for k in nodes if k not in order)
        raise ValueError(f"the NIR graph has a cycle through {left} that is not a neuron self-loop")
    inp = inputs[0]
    alias = {inp: "input"}
    modules: Dict[str, nn.Module] = {}
    plan: List[Tuple[str, List[str]]] = []
    for k in order:
        node = nodes[k]
        if isinstance(node, (nir.Input, nir.Output)):
            continue
        if not pred[k]:
            raise ValueError(f"NIR node {k!r} has no input edge")
        key = k.replace(".", "_")
        while key in modules or key == "input":
            key += "_"
        alias[k] = key
        modules[key] = _module_for(node, k, dt, reset, recurrent.get(k))
        plan.append((key, [alias[p] for p in pred[k]]))
    outs = []
    for o in outputs:
        if len(pred[o]) != 1:
            raise ValueError(f"NIR Output {o!r} must have one incoming edge, got {pred[o]}")
        outs.append(alias[pred[o][0]])
    chain = len(outs) == 1 and all(len(ins) == 1 for _, ins in plan) and all(
        ins[0] == (plan[i - 1][0] if i else "input") for i, (_, ins) in enumerate(plan)) \
        and plan and outs[0] == plan[-1][0]
    if chain:
        return Sequential(*(modules[k] for k, _ in plan))
    return GraphModel(modules, plan, outs)
