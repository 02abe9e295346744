r"""Shared logic of all neurons: calling convention, state, streaming, recording, parameters.

Calling convention (every neuron):

* ``neuron(x)`` with ``x`` ``[T, B, ...]`` runs all ``T`` steps from a zero state and returns the
  output ``[T, B, ...]`` (spikes, or the membrane for :class:`~surrogate_nets.neurons.LI`).
* ``neuron(x, state)`` continues from ``state``; ``neuron(x, return_state=True)`` returns
  ``(out, final_state)``.
* ``neuron.step(x_t, state=None)`` runs one step on ``[B, ...]`` and returns ``(out_t, state)``.
* The state is a small ``NamedTuple`` per neuron (``LIFState(v)``, ``ALIFState(v, a)``, ...) of
  ``[B, ...]`` tensors. Nothing is kept between two calls, unless ``stateful=True``: the final
  state of a call (detached: truncated BPTT at call boundaries) is then the initial state of the
  next, until :meth:`BaseNeuron.reset` or :func:`surrogate_nets.layers.reset`.

Recording (multi-step calls only): ``record=("v",)`` stores the trace ``[T, B, ...]`` of each
named quantity in ``neuron.recorded["v"]`` (graph kept, e.g. for membrane losses);
``record_rates=True`` stores ``neuron.recorded["rate"]``, the output's mean over time ``[B, ...]``
(the firing rate per sample and neuron; graph kept, for rate regularisers). Each call replaces
the previous recordings. :func:`collect` yields a key's recordings over a model.
"""

from __future__ import annotations

import contextlib
from typing import Dict, Iterator, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from .._validate import (
    check_broadcast, check_choice, check_float_tensor, check_int, check_positive, check_time_major,
    describe,
)
from ..functional import backends as _backends
from ..functional.spike import RESET_MODES, reset_membrane
from ..surrogate import Surrogate, resolve_surrogate
from ..surrogate.helpers import auto_scale_numel
from ._checks import Shape, _check_unit, _resolve_shape, decay_from  # noqa: F401 (re-exported)
from .parametrize import THRESHOLD_FLOOR, Constrained, as_param_tensor, is_learnable, register_constrained


class BaseNeuron(nn.Module):
    """Base class of all neurons (spiking or not); see the module docstring for the convention.

    Subclasses set ``State`` (a NamedTuple class), ``recordable`` (trace names) and implement
    ``_prepare(dtype) -> dict`` (parameters cast once per call), ``_step(x_t, state, p) ->
    (out_t, state, h_t)`` and optionally a fused ``_multistep``.

    Args:
        shape: per-neuron shape of the parameters (e.g. ``(N,)`` after a Linear, ``(C, 1, 1)`` per
            channel after a conv); broadcast over the trailing dims of ``[B, ...]``. ``None``:
            scalar parameters shared by all neurons (unless given as tensors).
        num_neurons: shorthand for ``shape=(num_neurons,)``.
        stateful: keep the final state between calls (streaming); clear with :meth:`reset`.
        record: names of traces to store in :attr:`recorded` (see ``recordable``).
        record_rates: store the mean output over time as ``recorded["rate"]`` ``[B, ...]``.
    """

    State = None
    recordable: Tuple[str, ...] = ()
    #: marks modules that take ``[T, B, ...]`` themselves (see :class:`surrogate_nets.layers.Sequential`)
    time_major = True
    #: torch.fx tracers that honour it (nirtorch's) keep a neuron as one node instead of tracing its scan
    _is_leaf_module = True

    def __init__(self, shape: Shape = None, num_neurons: Optional[int] = None, stateful: bool = False,
                 record: Union[str, Sequence[str]] = (), record_rates: bool = False):
        super().__init__()
        self.shape = _resolve_shape(shape, num_neurons)
        self.stateful = bool(stateful)
        self.record: Tuple[str, ...] = ()
        self.set_record(record, bool(record_rates))
        self._state = None

    # ------------------------------------------------------------------ parameters
    def _register_decay(self, name: str, value, tau, tau_name: str, default_tau: float,
                        learnable: bool) -> None:
        """Register the decay ``name`` in ``(0, 1]``, given as itself or as the time constant
        ``tau_name`` (see :func:`decay_from`), with this neuron's ``shape``."""
        decay = decay_from(value, tau, name, tau_name, default_tau, learnable)
        register_constrained(self, name, as_param_tensor(decay, self.shape), learnable)

    def _register_positive(self, name: str, value, learnable: bool, allow_zero: bool = False) -> None:
        """Register the positive (``>= 0`` with ``allow_zero``) quantity ``name`` with this neuron's
        ``shape``, after checking a float or float tensor ``value``."""
        if isinstance(value, torch.Tensor):
            check_float_tensor(value, name)
        check_positive(value.detach() if isinstance(value, torch.Tensor) else value, name,
                       allow_zero=allow_zero)
        register_constrained(self, name, as_param_tensor(value, self.shape), learnable)

    # ------------------------------------------------------------------ recording
    def set_record(self, record: Union[str, Sequence[str], None] = None,
                   record_rates: Optional[bool] = None) -> None:
        """Choose what the next multi-step calls store in :attr:`recorded`; clears it.

        Args:
            record: the trace names to record (from ``recordable``, plus ``"rate"``); it replaces
                the current choice. ``None`` keeps the current traces.
            record_rates: turn ``recorded["rate"]`` (the output's mean over time ``[B, ...]``)
                on or off; ``None``: on iff ``"rate"`` is in ``record`` (or, when ``record`` is
                ``None``, unchanged).
        """
        current = tuple(getattr(self, "record", ()))
        if record is None:
            record = current
        elif isinstance(record, str):
            record = (record,)
        record = tuple(record)
        valid = tuple(self.recordable) + ("rate",)
        for key in record:
            check_choice(key, "record entry", valid)
        if record_rates is None:
            record_rates = "rate" in record
        self.record = tuple(k for k in record if k != "rate") + (("rate",) if record_rates else ())
        self.recorded: Dict[str, torch.Tensor] = {}

    def __getstate__(self):
        # recordings hold graph (non-leaf) tensors, which deepcopy/pickle refuse: drop them
        state = self.__dict__.copy()
        state["recorded"] = {}
        return state

    @property
    def record_rates(self) -> bool:
        """Whether ``recorded["rate"]`` is stored (settable: ``neuron.record_rates = True``)."""
        return "rate" in self.record

    @record_rates.setter
    def record_rates(self, on: bool) -> None:
        self.set_record(None, bool(on))

    # ---------------------------------------------------------------------- state
    def reset(self) -> None:
        """Forget the stored streaming state and the recordings."""
        self._state = None
        self.recorded = {}

    def reset_state(self) -> None:
        """Same as :meth:`reset` (the hook :func:`surrogate_nets.layers.reset` calls)."""
        self.reset()

    def zero_state(self, x_t: torch.Tensor):
        """The all-zero state for one step's input ``[B, ...]``."""
        return self.State(*(torch.zeros_like(x_t) for _ in self.State._fields))

    def _initial_state(self, state, x_t: torch.Tensor, name: str = "state"):
        if state is None:
            if self.stateful and self._state is not None:
                state, name = self._state, "stored state (call reset() when the batch changes)"
            else:
                return self.zero_state(x_t)
        fields = self.State._fields
        if not isinstance(state, tuple) or len(state) != len(fields):
            raise TypeError(f"{name} must be a {self.State.__name__}({', '.join(fields)}) of tensors "
                            f"with shape {tuple(x_t.shape)}, got {type(state).__name__}")
        out = []
        for f, t in zip(fields, state):
            check_float_tensor(t, f"{name}.{f}")
            if tuple(t.shape) != tuple(x_t.shape):
                raise ValueError(f"{name}.{f} must have the shape of one input step {tuple(x_t.shape)}, "
                                 f"got {describe(t)}")
            out.append(t.to(x_t.dtype))
        return self.State(*out)

    def _store_state(self, state) -> None:
        if self.stateful:
            self._state = self.State(*(t.detach() for t in state))

    # --------------------------------------------------------------- parameters
    def _per_neuron(self) -> Dict[str, torch.Tensor]:
        """Parameters that must broadcast to ``[B, ...]`` (checked at every call; shapes only)."""
        return {}

    def _check_params(self, step_shape) -> None:
        for name, t in self._per_neuron().items():
            check_broadcast(t, name, step_shape, "one input step [B, ...]")

    def _check_rank(self, x: torch.Tensor, lead: int) -> None:
        """With a known ``shape``, require ``lead`` leading dims (``[T, B]`` or ``[B]``) before it.

        Catches a ``[B, N]`` batch (no time axis) given to a neuron with ``shape=(N,)``; a
        sample-major ``[B, T, N]`` batch has the same rank and cannot be told apart."""
        if self.shape is None:
            return
        rank = len(self.shape)
        while rank and self.shape[len(self.shape) - rank] == 1:
            rank -= 1  # leading 1s of shape broadcast over the batch
        if x.dim() < lead + rank:
            want = "[T, B, *shape]: time-major, dim 0 = time, dim 1 = batch" if lead == 2 else \
                "one step [B, *shape]"
            raise ValueError(f"x must be {want} with shape={self.shape}, got {describe(x)}"
                             + ("; add a time axis (x.unsqueeze(0) for T = 1) or transpose a "
                                "sample-major [B, T, ...] batch (x.transpose(0, 1))" if lead == 2 else ""))

    def _prepare(self, dtype) -> dict:
        raise NotImplementedError

    def _step(self, x_t, state, p):
        raise NotImplementedError

    # ------------------------------------------------------------------- calling
    def _multistep(self, x, state, p, keys):
        """Default multi-step path: a linear-cost autograd loop over ``x.unbind(0)``.

        ``grad_scale="auto"`` counts the whole ``[T, B, ...]`` here as in the fused scans (which
        count their input themselves): see :func:`~surrogate_nets.surrogate.helpers.auto_scale_numel`.
        """
        outs, traces = [], {k: [] for k in keys}
        sur = getattr(self, "surrogate", None)
        with auto_scale_numel(x.numel(), sur) if isinstance(sur, Surrogate) else contextlib.nullcontext():
            for x_t in x.unbind(0):
                out, state, h = self._step(x_t, state, p)
                outs.append(out)
                if traces:
                    extras = dict(state._asdict(), h=h, s=out)
                    for k in keys:
                        traces[k].append(extras[k])
        return torch.stack(outs), state, {k: torch.stack(v) for k, v in traces.items()}

    def forward(self, x: torch.Tensor, state=None, return_state: bool = False):
        """Run all steps of ``x`` ``[T, B, ...]``; see the class docstring."""
        check_time_major(x, "x")
        self._check_rank(x, 2)
        state = self._initial_state(state, x[0])
        self._check_params(x.shape[1:])
        keys = tuple(k for k in self.record if k != "rate")
        out, final, traces = self._multistep(x, state, self._prepare(x.dtype), keys)
        if self.record:
            if "rate" in self.record:
                traces["rate"] = out.mean(0)
            self.recorded = traces
        self._store_state(final)
        return (out, final) if return_state else out

    def step(self, x: torch.Tensor, state=None):
        """One time step on ``x`` ``[B, ...]``: returns ``(out, new_state)`` (no recording)."""
        check_float_tensor(x, "x", min_dim=1)
        self._check_rank(x, 1)
        state = self._initial_state(state, x)
        self._check_params(x.shape)
        out, new, _ = self._step(x, state, self._prepare(x.dtype))
        self._store_state(new)
        return out, new

    def extra_repr(self) -> str:
        parts = []
        if self.shape is not None:
            parts.append(f"shape={self.shape}")
        if self.stateful:
            parts.append("stateful=True")
        if self.record:
            parts.append(f"record={self.record}")
        return ", ".join(parts)


class SpikingNeuron(BaseNeuron):
    r"""Base of the spiking neurons: threshold, surrogate, reset, multi-level spikes.

    Args:
        threshold: ``theta > 0`` (float or per-neuron tensor).
        learn_threshold: learn it as ``softplus(raw_threshold)`` (always positive).
        surrogate: a :class:`~surrogate_nets.surrogate.Surrogate` (registered as the submodule
            ``surrogate``, so a learnable alpha is in ``parameters()``), a registry name, or
            ``None`` for ``ATan(alpha=2)``.
        reset: ``"subtract"`` (``v = h - s theta``), ``"zero"`` (``v = h (1 - H(h - theta))``) or
            ``"none"``.
        detach_reset: no gradient through the spike inside the reset.
        levels: ``L``: emit spike counts ``0..L`` per step, ``s = sum_k H(h - k theta)``
            (see :func:`~surrogate_nets.functional.fire`); 1 = binary spikes.
        **kwargs: :class:`BaseNeuron` arguments (``shape``, ``num_neurons``, ``stateful``,
            ``record``, ``record_rates``).

    All of these are keyword-only and shared by every spiking neuron: subclasses take them as
    ``**kwargs`` and forward them here once.
    """

    threshold = Constrained("positive", "the firing threshold theta > 0", floor=THRESHOLD_FLOOR)
    recordable = ("s", "h", "v")

    def __init__(self, *, threshold: Union[float, torch.Tensor] = 1.0, learn_threshold: bool = False,
                 surrogate: Union[str, Surrogate, None] = None, reset: str = "subtract",
                 detach_reset: bool = False, levels: int = 1, **kwargs):
        super().__init__(**kwargs)
        self._register_positive("threshold", threshold, learn_threshold)
        self.surrogate = resolve_surrogate(surrogate)
        self.reset_mode = check_choice(reset, "reset", RESET_MODES)
        self.detach_reset = bool(detach_reset)
        self.levels = check_int(levels, "levels", minimum=1)

    def _per_neuron(self):
        return {"threshold": self.threshold, "surrogate alpha": self.surrogate.alpha}

    def _spike_kw(self) -> dict:
        return dict(surrogate=self.surrogate, reset=self.reset_mode, detach_reset=self.detach_reset,
                    levels=self.levels)

    def _scan_traces(self, keys, r, threshold, **extra) -> dict:
        """The recorded traces ``keys`` of a fused scan result ``r``: ``"s"``, ``"h"``, the
        ``extra`` ones, and ``"v"``, the membrane after the reset, recomputed from ``r.h``,
        ``r.spikes`` and ``threshold``."""
        ready = dict(s=r.spikes, h=r.h, **extra)
        return {k: reset_membrane(r.h, r.spikes, threshold, self.reset_mode, self.detach_reset,
                                  self.levels, self.surrogate) if k == "v" else ready[k]
                for k in keys}

    def extra_repr(self) -> str:
        th = self.threshold.detach()
        parts = [f"threshold={th.item():.4g}" if th.numel() == 1 else f"threshold=shape{tuple(th.shape)}"]
        if is_learnable(self, "threshold"):
            parts.append("learn_threshold=True")
        parts.append(f"reset={self.reset_mode!r}")
        if self.detach_reset:
            parts.append("detach_reset=True")
        if self.levels != 1:
            parts.append(f"levels={self.levels}")
        base = super().extra_repr()
        return ", ".join(parts + ([base] if base else []))


def check_scan_backend(op: str, backend: str) -> str:
    """``backend`` validated for the seam op ``op`` (see :mod:`surrogate_nets.functional.backends`)."""
    return _backends.check_backend(op, backend)


def _fmt(module, name) -> str:
    t = getattr(module, name).detach()
    s = f"{name}={t.item():.4g}" if t.numel() == 1 else f"{name}=shape{tuple(t.shape)}"
    return s + (" (learnable)" if is_learnable(module, name) else "")


def collect(model: nn.Module, key: str) -> Iterator[torch.Tensor]:
    """Yield ``recorded[key]`` of every module of ``model`` (module order) that recorded it.

    Duck-typed like :func:`surrogate_nets.losses.collect` (which returns the same tensors as a
    list): any module with a dict attribute ``recorded`` takes part. Keys of the neurons:
    ``"s"`` spikes ``[T, B, ...]``, ``"h"``/``"v"`` membrane before/after reset ``[T, B, ...]``,
    ``"a"``/``"i"`` (ALIF/Synaptic) ``[T, B, ...]``, ``"rate"`` the output's mean over time
    ``[B, ...]``; all keep the autograd graph.

    Example (a rate regulariser)::

        set_record(model, record_rates=True)
        out = model(x)
        reg = sum(((r.mean(0) - 0.05) ** 2).sum() for r in collect(model, "rate"))
    """
    for m in model.modules():
        rec = getattr(m, "recorded", None)
        if isinstance(rec, dict) and key in rec:
            yield rec[key]


def set_record(model: nn.Module, record: Union[str, Sequence[str], None] = None,
               record_rates: Optional[bool] = None) -> nn.Module:
    """Set the recordings of every neuron in ``model`` (``None`` leaves that part unchanged).

    ``set_record(model, record_rates=True)`` turns on ``recorded["rate"]`` everywhere and keeps
    each neuron's trace choice; ``set_record(model, ("v",))`` records ``"v"`` wherever it exists
    (other neurons record no traces). Returns ``model``.
    """
    keys = (record,) if isinstance(record, str) else record
    for m in model.modules():
        if isinstance(m, BaseNeuron):
            rates = m.record_rates if record_rates is None else record_rates
            m.set_record(None if keys is None else tuple(k for k in keys if k in m.recordable), rates)
    return model
