r"""Neurons <-> NIR neuron nodes: the discrete-time to continuous-time mapping.

NIR's neurons are continuous-time ODEs (https://neuroir.org): ``LIF`` is
:math:`\tau \dot v = (v_{leak} - v) + R I`, ``IF`` is :math:`\dot v = R I`, ``LI`` is the LIF
without spikes and ``CubaLIF`` adds a synaptic current
:math:`\tau_{syn} \dot I = -I + w_{in} x`. This library's neurons are discrete
(``h_t = beta v_{t-1} + x_t``). One forward-Euler step of length ``dt`` of the ODE is exactly the
discrete update when

- ``beta`` <-> ``tau = dt / (1 - beta)``, i.e. ``beta = 1 - dt / tau`` (``dt``: the step length in
  seconds, default ``1e-4`` as snnTorch and SpikingJelly write);
- input gain 1 (``decay_input=False``) <-> ``r = 1 / (1 - beta) = tau / dt``;
- input gain ``1 - beta`` (``decay_input=True``) <-> ``r = 1``;
- ``IF`` (``beta = 1``) <-> NIR ``IF`` with ``r = 1 / dt``;
- ``Synaptic``'s ``alpha_syn`` <-> ``CubaLIF`` ``tau_syn = dt / (1 - alpha_syn)``,
  ``w_in = 1 / (1 - alpha_syn)`` (the current is updated first, then the membrane uses it);
- ``threshold`` <-> ``v_threshold``; ``v_leak = 0`` and ``v_reset = 0`` always.

Reading a node whose gains differ (any ``r``, ``w_in``), the total input gain ``g`` is folded
into the threshold (``theta' = v_threshold / g``; the membrane is scaled by ``1/g``, the spikes are
unchanged); for ``LI``, whose output *is* the membrane, a :class:`~.modules.Scale` by ``g`` runs
before it instead.

Not representable in NIR, and therefore carried in each node's ``metadata["surrogate_nets"]``
(read back exactly by :func:`surrogate_nets.nir.load`, ignored by other tools): the exact
``beta``/``threshold`` tensors, the reset mode (NIR's neurons reset *to* ``v_reset``, i.e.
``reset="zero"``; ``"subtract"`` and ``"none"`` exist only in metadata), ``levels > 1``
(multi-level spikes: other tools see binary spikes), ``decay_input``, ``detach_reset``, the
surrogate family and its (possibly learnt) sharpness ``alpha``, and which parameters are learnable.
Ties: this library fires at ``h >= theta``, NIR at ``v > v_threshold``; spikes differ only when
the membrane hits the threshold exactly.
"""

from __future__ import annotations

import warnings
from typing import Optional

import numpy as np
import torch

from ..neurons import IF, LI, LIF, PLIF, RLIF, Synaptic
from ..neurons.parametrize import is_learnable
from .. import surrogate as _surrogate

KEY = "surrogate_nets"


def _np(t, shape) -> np.ndarray:
    a = t.detach().cpu().double().numpy() if isinstance(t, torch.Tensor) else np.asarray(t, float)
    return np.ascontiguousarray(np.broadcast_to(a, shape)).astype(np.float32)


def _node(cls, v_reset, **kw):
    """``cls(**kw)`` with ``v_reset`` where this nir version has the field (added in nir 1.0.5)."""
    if "v_reset" in getattr(cls, "__dataclass_fields__", {}):
        kw["v_reset"] = v_reset
    return cls(**kw)


def _arr(t: torch.Tensor) -> np.ndarray:
    """A float64 array of at least one dim (HDF5 cannot compress 0-d datasets)."""
    return np.atleast_1d(t.detach().cpu().double().numpy())


def _meta_common(m) -> dict:
    meta = {"class": type(m).__name__, "reset": m.reset_mode, "levels": int(m.levels),
            "detach_reset": bool(m.detach_reset), "decay_input": bool(m.decay_input),
            "threshold": _arr(m.threshold),
            "learn_threshold": bool(is_learnable(m, "threshold")),
            "surrogate": type(m.surrogate).name, "surrogate_class": type(m.surrogate).__name__,
            "surrogate_alpha": _arr(m.surrogate.alpha),
            "learn_alpha": bool(m.surrogate.alpha.requires_grad)}
    if m.levels > 1:
        warnings.warn(f"{type(m).__name__}(levels={m.levels}): NIR has binary spikes only; the level "
                      "count is kept in metadata (read back by surrogate_nets.nir.load, ignored elsewhere)",
                      stacklevel=4)
    return meta


def _decay_meta(m, name: str) -> dict:
    return {name: _arr(getattr(m, name)), f"learn_{name}": bool(is_learnable(m, name))}


def lif_to_nir(m, shape, dt: float):
    """:class:`IF`/:class:`LIF`/:class:`PLIF` (current ``beta``) -> ``nir.IF`` / ``nir.LIF``."""
    import nir

    meta = _meta_common(m)
    th = _np(m.threshold, shape)
    zero = np.zeros(shape, np.float32)
    beta = m.beta.detach().cpu().double()
    if bool((beta == 1).all()):
        if not isinstance(m, IF):
            meta.update(_decay_meta(m, "beta"))
        return _node(nir.IF, zero, r=np.full(shape, 1.0 / dt, np.float32), v_threshold=th,
                     metadata={KEY: meta})
    if bool((beta == 1).any()):
        raise ValueError(f"{type(m).__name__}: beta mixes 1 (no leak) and < 1 across neurons; NIR's LIF "
                         "needs a finite tau for every neuron")
    meta.update(_decay_meta(m, "beta"))
    b = np.broadcast_to(beta.numpy(), shape)
    tau = (dt / (1 - b)).astype(np.float32)
    r = np.ones(shape, np.float32) if m.decay_input else (1 / (1 - b)).astype(np.float32)
    return _node(nir.LIF, zero, tau=tau, r=r, v_leak=zero, v_threshold=th, metadata={KEY: meta})


def synaptic_to_nir(m, shape, dt: float):
    """:class:`Synaptic` -> ``nir.CubaLIF``."""
    import nir

    meta = _meta_common(m)
    meta.update(_decay_meta(m, "beta"))
    meta.update(_decay_meta(m, "alpha_syn"))
    a = np.broadcast_to(m.alpha_syn.detach().cpu().double().numpy(), shape)
    b = np.broadcast_to(m.beta.detach().cpu().double().numpy(), shape)
    if (a == 1).any() or (b == 1).any():
        raise ValueError("Synaptic with a decay of 1 has no finite NIR time constant (tau_syn/tau_mem)")
    r = np.ones(shape) if m.decay_input else 1 / (1 - b)
    f = np.float32
    return _node(nir.CubaLIF, np.zeros(shape, f), tau_syn=(dt / (1 - a)).astype(f),
                 tau_mem=(dt / (1 - b)).astype(f), r=r.astype(f), v_leak=np.zeros(shape, f),
                 v_threshold=_np(m.threshold, shape), w_in=(1 / (1 - a)).astype(f), metadata={KEY: meta})


def li_to_nir(m, shape, dt: float):
    """:class:`LI` -> ``nir.LI``."""
    import nir

    meta = {"class": "LI", "decay_input": bool(m.decay_input), **_decay_meta(m, "beta")}
    b = np.broadcast_to(m.beta.detach().cpu().double().numpy(), shape)
    if (b == 1).any():
        raise ValueError("LI with beta = 1 (a pure integrator) has no finite NIR time constant")
    r = np.ones(shape) if m.decay_input else 1 / (1 - b)
    return nir.LI(tau=(dt / (1 - b)).astype(np.float32), r=r.astype(np.float32),
                  v_leak=np.zeros(shape, np.float32), metadata={KEY: meta})


def rlif_to_nir(m, shape, dt: float):
    """:class:`RLIF` -> a ``nir.NIRGraph`` ``input -> lif -> output`` with ``lif -> w_rec -> lif``.

    The recurrent weight is a ``Linear``/``Affine`` (all-to-all) or a ``Scale`` (one-to-one) node;
    NIR sums it with the feed-forward input, so its one-step delay is the graph's.
    """
    import nir

    from .layers import linear_to_nir

    lif = lif_to_nir(m, shape, dt)
    lif.metadata[KEY]["class"] = "RLIF"
    lif.metadata[KEY]["connectivity"] = m.connectivity
    if m.connectivity == "all_to_all":
        w_rec = linear_to_nir(m.recurrent)
    else:
        w_rec = nir.Scale(_np(m.recurrent_weight, shape))
    n = np.array(shape)
    return nir.NIRGraph(
        nodes={"input": nir.Input(input_type=n), "lif": lif, "w_rec": w_rec,
               "output": nir.Output(output_type=n)},
        edges=[("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")],
        type_check=False)


NEURON_EXPORTERS = [(RLIF, rlif_to_nir), (Synaptic, synaptic_to_nir), (LI, li_to_nir), (LIF, lif_to_nir)]


# --------------------------------------------------------------------------- import
def _compact(a) -> object:
    """A float when every entry is equal (scalar parameter), else a float32 tensor."""
    a = np.asarray(a, dtype=np.float64)
    if a.size and np.all(a == a.flat[0]):
        return float(a.flat[0])
    return torch.as_tensor(a, dtype=torch.float32)


def _meta(node) -> Optional[dict]:
    md = getattr(node, "metadata", None) or {}
    m = md.get(KEY)
    return m if isinstance(m, dict) else None


def _as_bool(v) -> bool:
    return bool(np.asarray(v).item()) if not isinstance(v, bool) else v


def _as_str(v) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _surrogate_from(meta: dict):
    name = _as_str(meta.get("surrogate", "atan"))
    alpha = np.asarray(meta.get("surrogate_alpha", 2.0), dtype=np.float64)
    kw = {"alpha": float(alpha.item()) if alpha.size == 1 else torch.as_tensor(alpha, dtype=torch.float32)}
    if _as_bool(meta.get("learn_alpha", False)):
        kw["learnable"] = True
    try:
        return _surrogate.get(name, **kw)
    except (ValueError, KeyError, TypeError):
        warnings.warn(f"surrogate {name!r} stored in the NIR metadata is not registered here; using "
                      "the default ATan (register it with surrogate_nets.surrogate.register to restore it)",
                      stacklevel=4)
        return None


def _spiking_kw(meta: Optional[dict], reset: Optional[str]) -> dict:
    if meta is None:
        return {"reset": reset or "zero"}
    kw = {"reset": reset or _as_str(meta["reset"]), "levels": int(np.asarray(meta["levels"]).item()),
          "detach_reset": _as_bool(meta["detach_reset"]),
          "learn_threshold": _as_bool(meta["learn_threshold"])}
    sur = _surrogate_from(meta)
    if sur is not None:
        kw["surrogate"] = sur
    return kw


def _check_zero(node, *fields) -> None:
    for f in fields:
        v = getattr(node, f, None)
        if v is not None and np.any(np.asarray(v) != 0):
            raise ValueError(f"NIR {type(node).__name__}.{f} must be 0 to be represented by this library's "
                             f"neurons (they leak and reset towards 0), got {np.asarray(v).tolist()}")


def _exact(meta, name):
    t = torch.as_tensor(np.asarray(meta[name], dtype=np.float64), dtype=torch.float32)
    return float(t.item()) if t.numel() == 1 else t


def lif_from_nir(node, dt: float, reset: Optional[str], recurrent: bool = False):
    """``nir.LIF``/``nir.IF`` -> :class:`LIF`/:class:`PLIF`/:class:`IF` keyword arguments and class."""
    import nir

    _check_zero(node, "v_leak", "v_reset")
    meta = _meta(node)
    kw = _spiking_kw(meta, reset)
    if meta is not None:  # written by this library: restore exactly
        cls = meta_class(meta)
        kw["threshold"] = _exact(meta, "threshold")
        kw["decay_input"] = _as_bool(meta["decay_input"])
        if "beta" in meta:
            kw["beta"] = _exact(meta, "beta")
            kw["learn_beta"] = _as_bool(meta["learn_beta"])
        return cls, kw
    vth = np.asarray(node.v_threshold, np.float64)
    r = np.asarray(node.r, np.float64)
    if isinstance(node, nir.IF):
        gain = dt * r  # v += dt * r * x
        kw["threshold"] = _compact(vth / gain)
        return (RLIF if recurrent else IF), kw
    tau = np.asarray(node.tau, np.float64)
    beta = 1 - dt / tau
    if np.any(beta <= 0) or np.any(beta > 1):
        raise ValueError(f"NIR LIF tau must exceed dt={dt} (beta = 1 - dt/tau in (0, 1]); got tau="
                         f"{tau.tolist()}: pass the dt the graph was written with to load(graph, dt=...)")
    gain = dt * r / tau  # v_t = beta v + gain * x
    kw["beta"] = _compact(beta)
    kw["threshold"] = _compact(vth / gain)
    return (RLIF if recurrent else LIF), kw


def meta_class(meta: dict):
    name = _as_str(meta.get("class", "LIF"))
    return {"IF": IF, "LIF": LIF, "PLIF": PLIF, "RLIF": RLIF}.get(name, LIF)


def synaptic_from_nir(node, dt: float, reset: Optional[str]):
    """``nir.CubaLIF`` -> :class:`Synaptic` keyword arguments."""
    _check_zero(node, "v_leak", "v_reset")
    meta = _meta(node)
    kw = _spiking_kw(meta, reset)
    if meta is not None:
        kw.update(threshold=_exact(meta, "threshold"), decay_input=_as_bool(meta["decay_input"]),
                  beta=_exact(meta, "beta"), alpha_syn=_exact(meta, "alpha_syn"),
                  learn_beta=_as_bool(meta["learn_beta"]), learn_alpha_syn=_as_bool(meta["learn_alpha_syn"]))
        return kw
    ts, tm = np.asarray(node.tau_syn, np.float64), np.asarray(node.tau_mem, np.float64)
    a, b = 1 - dt / ts, 1 - dt / tm
    if np.any(a <= 0) or np.any(b <= 0):
        raise ValueError(f"NIR CubaLIF tau_syn and tau_mem must exceed dt={dt}; pass the dt the graph was "
                         "written with to load(graph, dt=...)")
    g_syn = (1 - a) * np.asarray(node.w_in, np.float64)
    g_mem = (1 - b) * np.asarray(node.r, np.float64)
    kw.update(alpha_syn=_compact(a), beta=_compact(b),
              threshold=_compact(np.asarray(node.v_threshold, np.float64) / (g_syn * g_mem)))
    return kw


def li_from_nir(node, dt: float):
    """``nir.LI`` -> ``(LI keyword arguments, input gain or None)``."""
    _check_zero(node, "v_leak")
    meta = _meta(node)
    if meta is not None:
        return {"beta": _exact(meta, "beta"), "decay_input": _as_bool(meta["decay_input"]),
                "learn_beta": _as_bool(meta["learn_beta"])}, None
    tau = np.asarray(node.tau, np.float64)
    b = 1 - dt / tau
    if np.any(b <= 0):
        raise ValueError(f"NIR LI tau must exceed dt={dt}; pass the dt the graph was written with")
    gain = dt * np.asarray(node.r, np.float64) / tau
    g = _compact(gain)
    return {"beta": _compact(b)}, (None if isinstance(g, float) and g == 1.0 else g)
