r"""Delays <-> NIR's ``Delay`` node: :class:`~surrogate_nets.layers.SynapticDelay` and
:class:`~surrogate_nets.layers.DelayedLinear`.

NIR's ``Delay`` is an exact shift in continuous time, :math:`y(t) = x(t - \tau)`, one ``tau``
(seconds) per element of the per-sample shape. With a step of ``dt`` seconds an integer delay of
``k`` steps is ``tau = k dt``:

* ``SynapticDelay`` (delays ``d_c`` in steps, shape ``channels``) -> ``Delay(delay = d * dt)``, the
  delays broadcast to the layer's per-sample shape (``channels = (C, 1, 1)`` on ``[C, H, W]`` maps
  becomes a ``[C, H, W]`` array).
* ``DelayedLinear`` (weight ``W [out, in]``, integer delays ``k[o, i]``) has no single NIR node.
  It is the sum over the distinct delays ``k`` present of ``Linear(W_k) o Delay(k dt)``, where
  ``W_k = W * [k[o, i] == k]`` keeps only the synapses with delay ``k``:

  .. math:: y_t = b + \sum_{k} W_k\, x_{t-k}

  so it is exported as one branch per distinct ``k``, ``source -> Delay(k dt) -> Linear(W_k) ->
  target`` (``k = 0``: no ``Delay`` node; the bias sits on the first branch, an ``Affine``); NIR
  sums the branches into the target. The number of extra nodes is the number of distinct delays
  (at most ``max_delay + 1``); the stored weight entries are ``in * out`` per branch.

Only exact shifts are exported: the linear kernel with integer delays, which is what
:meth:`~surrogate_nets.layers.SynapticDelay.round` leaves. Fractional delays (a 2-tap
interpolation) and the Gaussian kernel (a blur even at integer positions) raise a ``ValueError``
that says to call ``.round()`` first (on a ``copy.deepcopy`` of the model to keep training it):
rounding changes the outputs, so it is not done silently.

Import: ``Delay(tau)`` -> ``SynapticDelay(channels=tau.shape, learnable=False, init=tau / dt)``
(fixed integer delays, ``max_delay = max k + 1``); delays that are not whole multiples of
``dt`` (relative tolerance ``1e-4``) raise a ``ValueError`` naming the node (give the writer's
``dt`` to :func:`~surrogate_nets.nir.load`). Branches written by :func:`~surrogate_nets.nir.export`
carry ``metadata["surrogate_nets"]["delayed_linear"]`` and are folded back into one
``DelayedLinear`` (same weight, delays, bias: identical outputs); the same pattern written by
another tool loads node by node (``Delay`` -> ``SynapticDelay``, ``Linear`` -> ``nn.Linear``) into
a :class:`~surrogate_nets.nir.GraphModel`, whose outputs are the same sum.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Dict, List, Tuple

import numpy as np
import torch

from ..layers import DelayedLinear, SynapticDelay

KEY = "surrogate_nets"
_TOL = 1e-4  # relative tolerance for "a whole number of steps" on import


def _exact_steps(m, path: str) -> torch.Tensor:
    """The module's integer delays, or a ValueError telling the user to round them."""
    d = m.delay.detach().cpu().to(torch.float64)
    kind = type(m).__name__
    if m.kernel != "linear":
        raise ValueError(f"cannot export {kind} {path!r} to NIR: kernel={m.kernel!r} blurs the input over "
                         "neighbouring steps, and NIR's Delay is an exact shift. Call .round() on the module "
                         "first (integer delays, linear kernel; on a copy.deepcopy of the model to keep the "
                         "learnable delays)")
    if not torch.equal(d, torch.floor(d)):
        frac = (d - torch.floor(d)).abs().max().item()
        raise ValueError(f"cannot export {kind} {path!r} to NIR: its delays are fractional (largest fractional "
                         f"part {frac:.3g}), an interpolation between two steps, and NIR's Delay is an exact "
                         "shift. Call .round() on the module first (floor(d + 1/2); on a copy.deepcopy of the "
                         "model to keep the learnable delays)")
    return d


def synaptic_delay_to_nir(m: SynapticDelay, path: str, out_shape, dt: float):
    """``SynapticDelay`` -> ``nir.Delay(delay = d * dt)`` broadcast to the per-sample ``out_shape``."""
    import nir

    d = _exact_steps(m, path).numpy()
    tau = np.ascontiguousarray(np.broadcast_to(d * dt, tuple(out_shape)))
    meta = {"delay": {"steps": d.astype(np.int64), "max_delay": int(m.max_delay), "stateful": bool(m.stateful)}}
    return nir.Delay(delay=tau, metadata={KEY: meta})


def delayed_linear_to_nir(m: DelayedLinear, path: str, name: str, in_shape, dt: float):
    """``DelayedLinear`` (integer delays) -> the branch nodes.

    Returns ``(nodes, first, last, edges)``: ``nodes`` maps new node names (``{name}_d{k}``,
    ``{name}_w{k}``) to NIR nodes, ``first`` are the names the layer's input feeds, ``last`` the
    names whose outputs NIR sums into the target, ``edges`` the internal ``Delay -> Linear`` edges.
    """
    import nir

    k = _exact_steps(m, path).to(torch.int64)
    w = m.weight.detach().cpu()
    nodes: Dict[str, object] = {}
    first: List[str] = []
    last: List[str] = []
    edges: List[Tuple[str, str]] = []
    ks = sorted(int(v) for v in torch.unique(k))
    for j, kk in enumerate(ks):
        wk = torch.where(k == kk, w, torch.zeros_like(w)).numpy().copy()
        md = {"group": name, "k": kk}
        if j == 0:  # the whole layer's description, once
            md.update(delays=k.numpy().copy(), max_delay=int(m.max_delay), impl=m.impl,
                      stateful=bool(m.stateful), bias=m.bias is not None)
        meta = {KEY: {"delayed_linear": md}}
        wname = f"{name}_w{kk}"
        if j == 0 and m.bias is not None:
            nodes[wname] = nir.Affine(weight=wk, bias=m.bias.detach().cpu().numpy().copy(), metadata=meta)
        else:
            nodes[wname] = nir.Linear(weight=wk, metadata=meta)
        if kk == 0:
            first.append(wname)
        else:
            dname = f"{name}_d{kk}"
            nodes[dname] = nir.Delay(delay=np.full(tuple(in_shape), kk * dt, dtype=np.float64),
                                     metadata={KEY: {"delayed_linear": {"group": name, "k": kk}}})
            first.append(dname)
            edges.append((dname, wname))
        last.append(wname)
    return nodes, first, last, edges


# --------------------------------------------------------------------------- import
def _meta(node) -> dict:
    md = getattr(node, "metadata", None) or {}
    m = md.get(KEY) if isinstance(md, dict) else None
    return m if isinstance(m, dict) else {}


def _steps(node, name: str, dt: float) -> np.ndarray:
    """``delay / dt`` as integers, or a ValueError when they are not whole steps."""
    tau = np.asarray(node.delay, dtype=np.float64)
    k = tau / dt
    r = np.round(k)
    if not np.all(np.isfinite(k)) or np.any(r < 0) or np.any(np.abs(k - r) > _TOL * np.maximum(1.0, np.abs(r))):
        raise ValueError(f"NIR Delay {name!r} has delays {tau.min():.6g}..{tau.max():.6g} s, not whole multiples "
                         f"of dt={dt:g} s (or negative); only integer step delays load exactly: pass the "
                         "writer's step length as load(..., dt=...)")
    return r


def delay_from_nir(node, name: str, dt: float) -> SynapticDelay:
    """``nir.Delay`` -> ``SynapticDelay`` with fixed (non-learnable) integer delays ``delay / dt``."""
    k = _steps(node, name, dt)
    md = _meta(node).get("delay", {})
    stored = np.asarray(md["steps"], dtype=np.float64) if "steps" in md else None
    if stored is not None and stored.size and np.array_equal(np.broadcast_to(stored, k.shape), k):
        k = stored  # the exported module's compact shape, e.g. (C, 1, 1)
    if k.ndim == 0:
        k = k.reshape(1)
    # the written max_delay for our own graphs (identical outputs), else one more than the largest
    # delay: the linear kernel reads the delay D = max_delay as x_{t-D+1} + 1 * (x_{t-D} - x_{t-D+1}),
    # which can differ from x_{t-D} in the last bit; below D it is an exact gather
    kmax = int(k.max()) if k.size else 0
    max_delay = int(md["max_delay"]) if "max_delay" in md else kmax + 1
    max_delay = max(1, kmax, max_delay)
    stateful = bool(np.asarray(md.get("stateful", False)).item())
    return SynapticDelay(tuple(int(s) for s in k.shape), max_delay, init=torch.as_tensor(k, dtype=torch.float32),
                         learnable=False, stateful=stateful)


class DelayedLinearSpec:
    """A folded ``DelayedLinear`` group (a stand-in NIR node; :meth:`module` builds the layer)."""

    def __init__(self, name: str, branches: Dict[int, object], info: dict):
        self.name, self.branches, self.info = name, branches, info

    def module(self) -> DelayedLinear:
        ws = {k: np.asarray(n.weight, dtype=np.float32) for k, n in self.branches.items()}
        out_f, in_f = next(iter(ws.values())).shape
        w = sum(ws.values())
        delays = self.info.get("delays")
        if delays is None or np.asarray(delays).shape != (out_f, in_f):
            delays = np.zeros((out_f, in_f))
            for k, wk in ws.items():
                delays[wk != 0] = k
        delays = np.asarray(delays, dtype=np.float32)
        bias = [np.asarray(n.bias, dtype=np.float32) for n in self.branches.values()
                if getattr(n, "bias", None) is not None]
        max_delay = max(1, int(delays.max()), int(self.info.get("max_delay", 1)))
        impl = self.info.get("impl", "auto")
        impl = impl.decode() if isinstance(impl, bytes) else str(impl)
        m = DelayedLinear(in_f, out_f, max_delay, bias=bool(bias), init=torch.as_tensor(delays), learnable=False,
                          impl=impl, stateful=bool(np.asarray(self.info.get("stateful", False)).item()))
        with torch.no_grad():
            m.weight.copy_(torch.as_tensor(w))
            if bias:
                m.bias.copy_(torch.as_tensor(sum(bias)))
        return m


def fold_delayed_linear(nodes: dict, pred: dict, succ: dict) -> None:
    """Replace each exported ``DelayedLinear`` branch group by one :class:`DelayedLinearSpec` node.

    Groups are recognised by their metadata and folded only when the structure is intact (every
    branch from the same sources to the same targets, each ``Delay`` feeding only its ``Linear``);
    otherwise the nodes stay and load one by one (same outputs). Edits ``nodes``/``pred``/``succ``.
    """
    import nir

    groups: Dict[str, Dict[str, dict]] = defaultdict(dict)
    for name, node in nodes.items():
        md = _meta(node).get("delayed_linear")
        if isinstance(md, dict) and "group" in md:
            g = md["group"]
            groups[g.decode() if isinstance(g, bytes) else str(g)][name] = md
    for g, members in groups.items():
        weights = {n: int(np.asarray(md["k"])) for n, md in members.items()
                   if isinstance(nodes[n], (nir.Linear, nir.Affine))}
        delays = {n for n in members if isinstance(nodes[n], nir.Delay)}
        if len(weights) + len(delays) != len(members) or len(set(weights.values())) != len(weights):
            continue
        srcs, tgts, ok = None, None, True
        for w, k in weights.items():
            ins = pred[w]
            if k:
                if len(ins) != 1 or ins[0] not in delays or succ[ins[0]] != [w]:
                    ok = False
                    break
                ins = pred[ins[0]]
            srcs = srcs if srcs is not None else list(ins)
            tgts = tgts if tgts is not None else list(succ[w])
            ok = ok and set(ins) == set(srcs) and set(succ[w]) == set(tgts) and bool(ins) and bool(tgts)
        if not ok or len(delays) != sum(1 for k in weights.values() if k):
            continue
        info = next((md for md in members.values() if "delays" in md), {})
        key = g
        while key in nodes:
            key += "_"
        spec = DelayedLinearSpec(key, {k: nodes[w] for w, k in weights.items()}, info)
        for n in members:
            del nodes[n]
        for s in srcs:
            succ[s] = [x for x in succ[s] if x not in members] + [key]
        for t in tgts:
            i = min(j for j, x in enumerate(pred[t]) if x in members)
            rest = [x for x in pred[t] if x not in members]
            pred[t] = rest[:i] + [key] + rest[i:]
        for n in members:
            pred.pop(n, None)
            succ.pop(n, None)
        nodes[key], pred[key], succ[key] = spec, list(srcs), list(tgts)
