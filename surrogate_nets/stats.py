r"""Activity statistics SNN papers report: firing rates, sparsity, SynOps vs MACs, energy estimate.

``activity_stats(model, x)`` runs ``model`` once on ``x`` ``[T, B, ...]`` (no gradient) and
returns an :class:`ActivityStats`; ``with record_activity(model) as rec: model(x)`` collects the
same over any number of calls (e.g. a validation epoch) and ``rec.stats()`` summarises them.

Definitions (per sample: totals over the ``T`` steps, divided by the batch size ``B``):

* **firing rate** of a spiking layer: output spikes / (neurons x T) (mean spike count per
  neuron and step; with ``levels > 1`` a graded spike ``k`` counts ``k``).
* **sparsity**: the fraction of (neuron, step) entries with no spike.
* **MACs** of a synaptic layer (Linear, Conv1d/2d, and their quantized forms): the multiply-
  accumulates of the same network run as an ANN, once per sample (Linear ``in x out``; Conv
  ``C_out x positions_out x C_in/groups x kernel``, padding included, the thop/ptflops convention).
* **SynOps** of a synaptic layer whose input is spikes (non-negative integers): the accumulates
  actually triggered, ``sum over input entries of value x fan-out`` (Linear fan-out ``out``; Conv:
  exactly, as a convolution of the spike counts with an all-ones kernel, so borders and stride
  are counted right). A layer whose input is not spikes (e.g. the first layer on analog input)
  performs dense MACs at every step instead: ``T x MACs`` are counted as ``snn_macs``.
* **energy** (estimate): ``E_SNN = SynOps x E_AC + snn_macs x E_MAC`` vs ``E_ANN = MACs x E_MAC``
  with the 45 nm CMOS figures of Horowitz, "Computing's energy problem (and what we can do about
  it)", ISSCC 2014 (32-bit float: add 0.9 pJ, multiply-add 4.6 pJ = 3.7 + 0.9), as commonly used
  in the SNN literature. They ignore memory access and data movement, which dominate on real
  hardware: treat the ratio as an estimate, and set ``e_ac``/``e_mac`` for your target.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional

import torch
import torch.nn.functional as F
from torch import nn

from .neurons import SpikingNeuron

#: energy per accumulate / multiply-accumulate in joules (45 nm, 32-bit float; Horowitz ISSCC 2014)
E_AC = 0.9e-12
E_MAC = 4.6e-12

_SYNAPTIC = (nn.Linear, nn.Conv1d, nn.Conv2d)


@dataclass
class LayerStats:
    """Statistics of one layer (per sample; see the module docstring for the definitions)."""

    name: str
    kind: str
    neurons: int = 0          #: spiking layers: neurons per sample
    spikes: float = 0.0       #: spiking layers: spikes per sample over all steps
    firing_rate: float = float("nan")
    sparsity: float = float("nan")
    macs: float = 0.0         #: synaptic layers: ANN MACs per sample
    synops: float = 0.0       #: synaptic layers: SynOps per sample over all steps
    snn_macs: float = 0.0     #: synaptic layers with non-spike input: dense MACs over all steps


@dataclass
class ActivityStats:
    """Per-layer statistics and totals; :meth:`energy` and :meth:`table` summarise them."""

    layers: List[LayerStats]
    timesteps: int
    e_ac: float = E_AC
    e_mac: float = E_MAC
    totals: Dict[str, float] = field(default_factory=dict)

    def __post_init__(self):
        sp = [s for s in self.layers if s.neurons]
        n = sum(s.neurons for s in sp)
        spikes = sum(s.spikes for s in sp)
        self.totals = {
            "spikes": spikes, "neurons": n,
            "firing_rate": spikes / (n * self.timesteps) if n and self.timesteps else float("nan"),
            "sparsity": (sum(s.sparsity * s.neurons for s in sp) / n) if n else float("nan"),
            "macs": sum(s.macs for s in self.layers), "synops": sum(s.synops for s in self.layers),
            "snn_macs": sum(s.snn_macs for s in self.layers)}

    def energy(self, e_ac: Optional[float] = None, e_mac: Optional[float] = None) -> Dict[str, float]:
        """Energy per sample in joules: ``{"snn": ..., "ann": ..., "ratio": snn / ann}`` (an estimate)."""
        e_ac = self.e_ac if e_ac is None else float(e_ac)
        e_mac = self.e_mac if e_mac is None else float(e_mac)
        if not (e_ac >= 0 and e_mac >= 0):
            raise ValueError(f"e_ac and e_mac must be >= 0 joules, got e_ac={e_ac!r}, e_mac={e_mac!r}")
        t = self.totals
        snn = t["synops"] * e_ac + t["snn_macs"] * e_mac
        ann = t["macs"] * e_mac
        return {"snn": snn, "ann": ann, "ratio": snn / ann if ann else float("nan")}

    def as_dict(self) -> dict:
        """Plain dict (for JSON logs): ``layers``, ``totals``, ``energy``, ``timesteps``."""
        return {"timesteps": self.timesteps, "layers": [asdict(s) for s in self.layers],
                "totals": dict(self.totals), "energy": self.energy()}

    def table(self) -> str:
        """A text table, one row per layer plus the totals and the energy estimate."""
        def f(v, fmt):
            return "" if (isinstance(v, float) and math.isnan(v)) or v == 0 else format(v, fmt)
        rows = [f"{'layer':<20} {'kind':<12} {'rate':>7} {'sparsity':>8} {'MACs':>10} {'SynOps':>10} {'SNN MACs':>10}"]
        for s in self.layers:
            rows.append(f"{s.name[:20]:<20} {s.kind[:12]:<12} {f(s.firing_rate, '.4f'):>7} "
                        f"{f(s.sparsity, '.4f'):>8} {f(s.macs, '.3g'):>10} {f(s.synops, '.3g'):>10} "
                        f"{f(s.snn_macs, '.3g'):>10}")
        t, e = self.totals, self.energy()
        rows.append(f"{'total':<20} {'':<12} {f(t['firing_rate'], '.4f'):>7} {f(t['sparsity'], '.4f'):>8} "
                    f"{f(t['macs'], '.3g'):>10} {f(t['synops'], '.3g'):>10} {f(t['snn_macs'], '.3g'):>10}")
        rows.append(f"energy per sample (estimate, E_AC={self.e_ac * 1e12:g} pJ, E_MAC={self.e_mac * 1e12:g} pJ): "
                    f"SNN {e['snn'] * 1e9:.4g} nJ vs ANN {e['ann'] * 1e9:.4g} nJ (ratio {e['ratio']:.3g})")
        return "\n".join(rows)


def _is_spikes(x: torch.Tensor) -> bool:
    return bool(((x >= 0) & (x == torch.round(x))).all())


def _dense_macs(m: nn.Module, y: torch.Tensor) -> float:
    """MACs of one call producing ``y`` (all samples of the call)."""
    if isinstance(m, nn.Linear):
        return float(y.numel()) * m.in_features
    k = math.prod(m.kernel_size)
    return float(y.numel()) * (m.in_channels // m.groups) * k


def _synops(m: nn.Module, x: torch.Tensor) -> float:
    """Accumulates triggered by the spike counts ``x`` (all samples of the call)."""
    if isinstance(m, nn.Linear):
        return float(x.sum()) * m.out_features
    ones = torch.ones((m.out_channels, m.in_channels // m.groups, *m.kernel_size), dtype=x.dtype, device=x.device)
    conv = F.conv1d if isinstance(m, nn.Conv1d) else F.conv2d
    if isinstance(m.padding, str):
        return float(conv(x, ones, None, m.stride, m.padding, m.dilation, m.groups).sum())
    return float(conv(x, ones, None, m.stride, m.padding, m.dilation, m.groups).sum())


class record_activity:
    """Context manager collecting :class:`ActivityStats` over every forward call of ``model``.

    Example::

        with record_activity(model) as rec:
            for x, _ in loader:
                model(x)
        print(rec.stats().table())

    Hooks are removed on exit. ``model``'s input must be time-major ``[T, B, ...]``.

    Args:
        model: the network.
        e_ac, e_mac: energy per accumulate / multiply-accumulate in joules (defaults
            :data:`E_AC` = 0.9 pJ, :data:`E_MAC` = 4.6 pJ; 45 nm estimates, Horowitz ISSCC 2014).
    """

    def __init__(self, model: nn.Module, *, e_ac: float = E_AC, e_mac: float = E_MAC):
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
        for n, v in (("e_ac", e_ac), ("e_mac", e_mac)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= 0:
                raise ValueError(f"{n} must be a number >= 0 (joules per operation), got {v!r}")
        self.model, self.e_ac, self.e_mac = model, float(e_ac), float(e_mac)
        self._handles = []
        self.samples = 0
        self.timesteps = 0
        self._acc: Dict[str, LayerStats] = {}
        self._entries: Dict[str, int] = {}

    def _root_hook(self, module, args):
        x = args[0] if args else None
        if isinstance(x, torch.Tensor) and x.dim() >= 2:
            self.samples += int(x.shape[1])
            self.timesteps = int(x.shape[0])

    def _neuron_hook(self, name):
        def hook(module, args, out):
            out = out[0] if isinstance(out, tuple) else out
            s = self._acc.setdefault(name, LayerStats(name, type(module).__name__))
            o = out.detach()
            s.neurons = math.prod(o.shape[2:])
            s.spikes += float(o.sum())
            self._entries[name] = self._entries.get(name, 0) + o.numel()
            s.sparsity = (0.0 if math.isnan(s.sparsity) else s.sparsity) + float((o == 0).sum())
        return hook

    def _synapse_hook(self, name):
        def hook(module, args, out):
            x = args[0].detach()
            s = self._acc.setdefault(name, LayerStats(name, type(module).__name__))
            dense = _dense_macs(module, out.detach())
            s.macs += dense  # summed over calls and steps; normalised in stats()
            if _is_spikes(x):
                s.synops += _synops(module, x)
            else:
                s.snn_macs += dense
        return hook

    def __enter__(self):
        self._handles.append(self.model.register_forward_pre_hook(self._root_hook))
        for name, m in self.model.named_modules():
            if isinstance(m, SpikingNeuron):
                self._handles.append(m.register_forward_hook(self._neuron_hook(name or type(m).__name__)))
            elif isinstance(m, _SYNAPTIC):
                self._handles.append(m.register_forward_hook(self._synapse_hook(name or type(m).__name__)))
        return self

    def __exit__(self, *exc):
        for h in self._handles:
            h.remove()
        self._handles.clear()
        return False

    def stats(self) -> ActivityStats:
        """The statistics so far, per sample."""
        if not self.samples:
            raise RuntimeError("record_activity saw no forward call of the model with a [T, B, ...] input")
        B, T = self.samples, self.timesteps
        out = []
        for name, s in self._acc.items():
            r = LayerStats(s.name, s.kind)
            if name in self._entries:
                r.neurons = s.neurons
                r.spikes = s.spikes / B
                r.firing_rate = s.spikes / self._entries[name]
                r.sparsity = s.sparsity / self._entries[name]
            else:
                r.macs = s.macs / (B * T)  # the ANN runs once per sample, the SNN layer T times
                r.synops = s.synops / B
                r.snn_macs = s.snn_macs / B
            out.append(r)
        return ActivityStats(out, T, self.e_ac, self.e_mac)


@torch.no_grad()
def activity_stats(model: nn.Module, x: torch.Tensor, *, e_ac: float = E_AC, e_mac: float = E_MAC) -> ActivityStats:
    """Run ``model`` once on ``x`` ``[T, B, ...]`` without gradients and return its :class:`ActivityStats`."""
    if not isinstance(x, torch.Tensor) or x.dim() < 2:
        raise ValueError(f"x must be a time-major [T, B, ...] tensor, got "
                         f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
    with record_activity(model, e_ac=e_ac, e_mac=e_mac) as rec:
        model(x)
    return rec.stats()


__all__ = ["E_AC", "E_MAC", "LayerStats", "ActivityStats", "record_activity", "activity_stats"]
