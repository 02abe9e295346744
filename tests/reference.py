"""The ONE plain reference for every neuron: a per-step autograd loop through ``functional.spike``.

Written independently of ``surrogate_nets.functional.neurons`` / ``lif_scan`` (only ``spike`` is
shared): plain ``x[t]`` indexing, every equation spelled out once. The neuron tests compare
outputs, final states, traces and all gradients (input and every parameter) against it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from surrogate_nets.functional import spike


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


def run(kind, x, p, sur=None, reset="subtract", detach=False, levels=1, decay_input=False,
        state=None, relaxed=False):
    """Run neuron ``kind`` over ``x`` ``[T, B, ...]``.

    ``p``: dict of parameter tensors (``beta``, ``threshold``, ``rho``, ``adaptation``,
    ``alpha_syn``, ``W`` / ``w`` for RLIF). ``state``: dict of initial state tensors.
    Returns ``(out [T, ...], final_state dict, traces dict of [T, ...])``.
    """
    T = x.shape[0]
    z = torch.zeros_like(x[0])
    st = dict(state or {})
    v = st.get("v", z)
    a = st.get("a", z)
    i = st.get("i", z)
    s_prev = st.get("s", z)
    beta = p.get("beta", 1.0)
    th = p.get("threshold", 1.0)
    outs, hs, vs, as_, is_ = [], [], [], [], []
    for t in range(T):
        xt = x[t]
        if kind in ("lif", "if"):
            h = beta * v + ((1 - beta) * xt if decay_input else xt)
            s = fire(h, th, sur, levels, relaxed)
            v = after_reset(h, s, th, reset, detach, levels, sur, relaxed)
        elif kind == "alif":
            th_t = th + p["adaptation"] * a
            h = beta * v + ((1 - beta) * xt if decay_input else xt)
            s = fire(h, th_t, sur, levels, relaxed)
            v = after_reset(h, s, th_t, reset, detach, levels, sur, relaxed)
            a = p["rho"] * a + s
        elif kind == "synaptic":
            i = p["alpha_syn"] * i + xt
            h = beta * v + ((1 - beta) * i if decay_input else i)
            s = fire(h, th, sur, levels, relaxed)
            v = after_reset(h, s, th, reset, detach, levels, sur, relaxed)
        elif kind in ("rlif_a2a", "rlif_1to1"):
            rec = F.linear(s_prev, p["W"], p.get("b")) if kind == "rlif_a2a" else p["w"] * s_prev
            u = xt + rec
            h = beta * v + ((1 - beta) * u if decay_input else u)
            s = fire(h, th, sur, levels, relaxed)
            v = after_reset(h, s, th, reset, detach, levels, sur, relaxed)
            s_prev = s
        elif kind == "li":
            v = beta * v + ((1 - beta) * xt if decay_input else xt)
            h = s = v
        else:
            raise ValueError(kind)
        outs.append(s)
        hs.append(h)
        vs.append(v)
        as_.append(a)
        is_.append(i)
    final = {"v": v, "a": a, "i": i, "s": s_prev}
    traces = {"s": torch.stack(outs), "h": torch.stack(hs), "v": torch.stack(vs),
              "a": torch.stack(as_), "i": torch.stack(is_)}
    return torch.stack(outs), final, traces


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
