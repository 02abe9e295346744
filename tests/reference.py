"""The ONE plain reference for every neuron and scan: a per-step autograd loop through ``functional.spike``.

Written independently of ``surrogate_nets.functional``'s neuron files and scans (only ``spike``
is shared): plain ``x[t]`` indexing, every equation spelled out once, one table entry per neuron.
The neuron tests and the backend-contract test (``tests/functional/test_backends.py``) compare
outputs, final states, traces and all gradients (input and every parameter) against it.

Adding a neuron: write its step ``fn(x_t, state, p, cfg) -> (out, h, new_state)`` and add it to
:data:`NEURONS` with its state fields.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from surrogate_nets.functional import spike
from surrogate_nets.surrogate import Surrogate


def fire(h, th, sur, levels, relaxed=False):
    """``sum_{k=1}^{L} H(h - k th)``, each term a plain ``spike``."""
    out = 0
    for k in range(1, levels + 1):
        out = out + spike(h - k * th, sur, relaxed)
    return out


def after_reset(h, s, th, reset, detach, levels, sur, relaxed=False):
    if reset == "subtract":
        return h - (s.detach() if detach else s) * th
    if reset == "zero":
        s1 = s if levels == 1 else spike(h - th, sur, relaxed)
        return h * (1 - (s1.detach() if detach else s1))
    assert reset == "none"
    return h


def _charge(v, u, beta, decay_input):
    return beta * v + ((1 - beta) * u if decay_input else u)


def _spiking(h, th, st, c):
    s = fire(h, th, c["sur"], c["levels"], c["relaxed"])
    v = after_reset(h, s, th, c["reset"], c["detach"], c["levels"], c["sur"], c["relaxed"])
    return s, v


# ------------------------------------------------------------------ one step per neuron
def _lif(xt, st, p, c):
    h = _charge(st["v"], xt, p.get("beta", 1.0), c["decay_input"])
    s, v = _spiking(h, p.get("threshold", 1.0), st, c)
    return s, h, {"v": v}


def _alif(xt, st, p, c):
    th_t = p.get("threshold", 1.0) + p["adaptation"] * st["a"]
    h = _charge(st["v"], xt, p.get("beta", 1.0), c["decay_input"])
    s, v = _spiking(h, th_t, st, c)
    return s, h, {"v": v, "a": p["rho"] * st["a"] + s}


def _synaptic(xt, st, p, c):
    i = p["alpha_syn"] * st["i"] + xt
    h = _charge(st["v"], i, p.get("beta", 1.0), c["decay_input"])
    s, v = _spiking(h, p.get("threshold", 1.0), st, c)
    return s, h, {"v": v, "i": i}


def _rlif(all_to_all):
    def step(xt, st, p, c):
        rec = F.linear(st["s"], p["W"], p.get("b")) if all_to_all else p["w"] * st["s"]
        h = _charge(st["v"], xt + rec, p.get("beta", 1.0), c["decay_input"])
        s, v = _spiking(h, p.get("threshold", 1.0), st, c)
        return s, h, {"v": v, "s": s}
    return step


def _li(xt, st, p, c):
    v = _charge(st["v"], xt, p.get("beta", 1.0), c["decay_input"])
    return v, v, {"v": v}


#: neuron kind -> (state fields, step function)
NEURONS = {
    "lif": (("v",), _lif),
    "if": (("v",), _lif),
    "alif": (("v", "a"), _alif),
    "synaptic": (("i", "v"), _synaptic),
    "rlif_a2a": (("v", "s"), _rlif(True)),
    "rlif_1to1": (("v", "s"), _rlif(False)),
    "li": (("v",), _li),
}


def run(kind, x, p, sur=None, reset="subtract", detach=False, levels=1, decay_input=False,
        state=None, relaxed=False):
    """Run neuron ``kind`` over ``x`` ``[T, B, ...]``.

    ``p``: dict of parameter tensors (``beta``, ``threshold``, ``rho``, ``adaptation``,
    ``alpha_syn``, ``W`` / ``w`` for RLIF). ``state``: dict of initial state tensors.
    Returns ``(out [T, ...], final_state dict, traces dict of [T, ...])``; the final-state dict
    and the traces hold every field ``v, a, i, s`` (zeros where the neuron has none).
    """
    fields, step = NEURONS[kind]
    z = torch.zeros_like(x[0])
    st = {f: (state or {}).get(f, z) for f in ("v", "a", "i", "s")}
    cfg = dict(sur=sur, reset=reset, detach=detach, levels=levels, decay_input=decay_input,
               relaxed=relaxed)
    outs, hs, tr = [], [], {f: [] for f in ("v", "a", "i")}
    for t in range(x.shape[0]):
        out, h, new = step(x[t], st, p, cfg)
        st.update(new)
        outs.append(out)
        hs.append(h)
        for f in tr:
            tr[f].append(st[f])
    traces = {"s": torch.stack(outs), "h": torch.stack(hs)}
    traces.update({f: torch.stack(v) for f, v in tr.items()})
    return traces["s"], dict(st), traces


class WithAlpha(Surrogate):
    """``base`` evaluated with a given (differentiable) alpha tensor."""

    def __init__(self, base: Surrogate, alpha: torch.Tensor):
        super().__init__()
        self.base, self._a = base, alpha

    @property
    def alpha(self):
        return self._a

    def primitive(self, x, alpha):
        return self.base.primitive(x, alpha)

    def derivative(self, x, alpha):
        return self.base.derivative(x, alpha)

    def d_alpha(self, x, alpha):
        return self.base.d_alpha(x, alpha)


def fake_quant(x, step, offset, sur, lo, hi):
    """``s (lo + sum_k H((x - b)/s - k - 1/2)) + b`` with each ``H`` a plain ``spike``."""
    b = 0 if offset is None else offset
    u = (x - b) / step
    r = lo
    for k in range(lo, hi):
        r = r + spike(u - (k + 0.5), sur)
    return step * r + b


def spikingjelly_lif(x_seq, tau, decay_input, v_threshold=1.0, v_reset=None):
    """Hand transcription of SpikingJelly's documented ``LIFNode`` multi-step equations.

    Charge: ``H = V + (X - (V - V_reset)) / tau`` (decay_input) or ``H = V - (V - V_reset) / tau + X``
    with ``V_reset = 0`` for the leak when ``v_reset is None``; fire ``S = heaviside(H - V_th)``
    (``H >= V_th``); reset: soft ``V = H - S V_th`` (``v_reset=None``) or hard
    ``V = S V_reset + (1 - S) H``. Initial ``V = v_reset`` (0 for soft reset).
    """
    vr = 0.0 if v_reset is None else v_reset
    v = torch.full_like(x_seq[0], vr)
    out = []
    for x in x_seq:
        if decay_input:
            h = v + (x - (v - vr)) / tau
        else:
            h = v - (v - vr) / tau + x
        s = (h - v_threshold >= 0).to(x.dtype)
        v = h - s * v_threshold if v_reset is None else s * v_reset + (1 - s) * h
        out.append(s)
    return torch.stack(out)
