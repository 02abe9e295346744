"""Fused kernels behind the scan backend seam: Triton for CUDA, numba for CPU (both optional).

Importing this package imports neither triton nor numba: it registers *lazy* backends with
:func:`surrogate_nets.functional.lif.register_lif_backend` whose ``supports`` checks are cheap,
and the kernel modules load on the first call that uses them.

Backends registered for ``lif_scan`` (and so for ``LIF``/``IF``/PLIF modules):

* ``"triton"`` (:mod:`.triton_lif`): CUDA tensors, every built-in surrogate family
  (:mod:`.triton_surrogates`). Picked by ``backend="auto"`` on CUDA, also for the reduced-memory
  scan (``lif_scan(..., save_dtype=...)``, :mod:`~surrogate_nets.functional.lif_low_mem`). Every
  Triton kernel (LIF, ALIF, fake quant) is a ``torch.library`` op (:mod:`.triton_library`):
  ``torch.compile`` traces it without a graph break. CPU tensors only run under
  Triton's interpreter (``TRITON_INTERPRET=1`` before triton is imported) and only when asked for
  by name or after :func:`allow_triton_on_cpu` (the tests do this).
* ``"numba"`` (:mod:`.numba_lif`, :mod:`.numba_lif_fast`): CPU tensors, float32/float64; picked by
  ``"auto"`` on CPU for small layers (at most :data:`NUMBA_MAX_SMALL_NEURONS` neurons per step,
  at least :data:`NUMBA_MIN_STEPS` steps) and large layers over long sequences (at least
  :data:`NUMBA_MIN_NEURONS` neurons, :data:`NUMBA_LARGE_MIN_STEPS` steps), where it was measured
  faster than ``"torch"`` (``benchmarks/RESULTS.md``); ``SURROGATE_NETS_NO_NUMBA=1`` turns it off.

``"triton"`` is also the fused fake quantizer of op ``"fake_quant"`` (:mod:`.triton_fake_quant`;
CUDA, or CPU under the interpreter when allowed as above). The same two backends are registered
for op ``"li"`` (:mod:`.numba_li`, picked by ``"auto"`` only for small layers, see
:data:`NUMBA_LI_MAX_SMALL_NEURONS`; Triton runs the LIF scan with an infinite threshold and no
reset, whose ``h`` is the LI trace).

Ops ``"alif"`` and ``"synaptic"`` also have ``"numba"`` backends (:mod:`.numba_alif`,
:mod:`.numba_synaptic`: one fused forward/backward kernel pair for both, current and membrane in
one pass for ``synaptic``), picked by ``"auto"`` within the measured bounds of
:data:`NUMBA_NEURON_AUTO`.

A surrogate family without a kernel form (a user subclass) runs the ``"torch"`` backend
instead, with a one-time warning.
"""

from __future__ import annotations

import importlib.util
import os
import warnings

from ..functional.backends import register_backend
from ..functional.lif import _scan_torch, register_lif_backend
from ..functional.lif_low_mem import register_low_mem_backend

__all__ = ["triton_available", "numba_available", "numba_runnable", "allow_triton_on_cpu",
           "has_kernel_form"]

_STATE = {"triton_cpu": os.environ.get("SURROGATE_NETS_TRITON_CPU", "") == "1", "warned": set()}
_ENABLED = {"numba": os.environ.get("SURROGATE_NETS_NO_NUMBA", "") != "1"}


_FOUND: dict = {}


def _found(name: str) -> bool:
    """``importlib.util.find_spec(name) is not None``, looked up once per process (the lookup
    walks sys.path: ~50 us, which the ``supports`` checks paid on every call)."""
    r = _FOUND.get(name)
    if r is None:
        r = _FOUND[name] = importlib.util.find_spec(name) is not None
    return r


def triton_available() -> bool:
    """Whether triton can be imported (without importing it)."""
    return _found("triton")


def numba_available() -> bool:
    """Whether numba can be imported (without importing it)."""
    return _ENABLED["numba"] and _found("numba")


def numba_runnable() -> bool:
    """Whether a numba kernel can run here and now: :func:`numba_available` and not inside
    ``torch.compile`` / ``torch.export`` / tracing / a ``torch.func`` transform, where numba's
    dispatcher is opaque (dynamo crashed tracing it). The layers with numba kernels ask this."""
    return numba_available() and not _traced()


def triton_interpreting() -> bool:
    """Whether Triton runs in interpreter mode (CPU tensors allowed)."""
    return os.environ.get("TRITON_INTERPRET", "") == "1"


def allow_triton_on_cpu(flag: bool = True) -> None:
    """Let ``backend="auto"`` use the Triton kernels on CPU tensors under ``TRITON_INTERPRET=1``.

    Only for testing the CUDA kernels without a GPU (the interpreter is slow).
    Environment equivalent: ``SURROGATE_NETS_TRITON_CPU=1``.
    """
    _STATE["triton_cpu"] = bool(flag)


def _builtin_family(surrogate) -> bool:
    from ..surrogate.families import BUILTINS

    return type(surrogate) in BUILTINS


def has_kernel_form(surrogate) -> bool:
    """Whether the fused kernels know ``surrogate``'s family (built-ins: yes; user families: no)."""
    return _builtin_family(surrogate)


def _warn_once(key, message: str, stacklevel: int) -> None:
    """``RuntimeWarning(message)`` the first time ``key`` is seen (``stacklevel`` as seen by the
    caller of this helper)."""
    if key not in _STATE["warned"]:
        _STATE["warned"].add(key)
        warnings.warn(message, RuntimeWarning, stacklevel=stacklevel + 1)


def _fallback(name: str, surrogate, kw):
    _warn_once((name, type(surrogate)),
               f"surrogate family {type(surrogate).__name__} has no {name} kernel form; using the "
               f"torch lif_scan backend for it (register a kernel form in surrogate_nets.kernels to "
               f"fuse it)", stacklevel=4)
    return _scan_torch(**kw)


# --------------------------------------------------------------------------------- triton
def _triton_device_ok(x) -> bool:
    if x.is_cuda:
        return True
    return x.device.type == "cpu" and triton_interpreting()


def _require_triton_device(x) -> None:
    """Raise ValueError unless the triton backends can run on ``x``'s device."""
    if not _triton_device_ok(x):
        raise ValueError(
            f"backend 'triton' needs CUDA tensors (or TRITON_INTERPRET=1 for CPU tensors), got x "
            f"on {x.device}")


def _triton_lif(**kw):
    x = kw["x"]
    _require_triton_device(x)
    if not _builtin_family(kw["surrogate"]) or kw["relaxed"]:
        if kw["relaxed"]:
            return _scan_torch(**kw)
        return _fallback("triton", kw["surrogate"], kw)
    from .triton_lif import triton_lif_scan

    return triton_lif_scan(**kw)


def _triton_lif_supports(x, relaxed=False, surrogate=None, **kw) -> bool:
    # a user family has no kernel form: "auto" takes torch for it quietly (asked for by name,
    # the kernels fall back with a one-time warning)
    if relaxed or (surrogate is not None and not _builtin_family(surrogate)) or not triton_available():
        return False
    if x.is_cuda:
        return True
    return _STATE["triton_cpu"] and x.device.type == "cpu" and triton_interpreting()


# ---------------------------------------------------------------------------------- numba
def _warn_traced(op: str) -> None:
    """An explicit ``backend="numba"`` under torch.compile / export / tracing (``_traced()``, tested
    inline by the callers: dynamo runs this helper eagerly): dynamo cannot trace numba's dispatcher
    (it crashed), so the torch backend runs there (the same results to float rounding)."""
    _warn_once(("numba traced", op), f"backend 'numba' cannot run inside torch.compile / "
               f"torch.export / tracing; op {op} uses the torch backend there", stacklevel=3)


def _numba_lif(**kw):
    x = kw["x"]
    if x.device.type != "cpu":
        raise ValueError(f"backend 'numba' needs CPU tensors, got x on {x.device}")
    if kw["relaxed"]:
        return _scan_torch(**kw)
    if _traced():
        _warn_traced("lif")
        return _scan_torch(**kw)
    if not _builtin_family(kw["surrogate"]):
        return _fallback("numba", kw["surrogate"], kw)
    from .numba_lif import numba_lif_scan

    return numba_lif_scan(**kw)


#: ``backend="auto"`` picks numba (CPU, float32/float64) for op ``lif`` when the layer is small
#: (at most ``NUMBA_MAX_SMALL_NEURONS`` neurons per step, ``x[0].numel()``) over at least
#: ``NUMBA_MIN_STEPS`` steps, or large (at least ``NUMBA_MIN_NEURONS``) over at least
#: ``NUMBA_LARGE_MIN_STEPS`` steps. Since the fused blocked backward and the recycled output buffers
#: (h18) numba is at least as fast as the torch backend at every size measured from T = 2 on, so
#: both regions now cover everything (T >= 2). Measured fwd+bwd (``out.sum().backward()``,
#: float32, numba / torch ms, interleaved; 2 shared threads, load ~3): T=4: 1024 neurons
#: 0.21/0.31, 16384 0.43/0.48, 24576 0.51/0.56, 32768 0.60/0.63, 131072 1.40/2.15, 262144
#: 2.48/2.38 (a tie); T=20: 16384 0.64/1.60, 32768 0.83/2.36, 262144 5.2/9.4; T=100: 16384
#: 2.35/6.91, 24576 3.59/9.14 (the old gap 16384-32768 went to torch), 32768 4.73/11.2, 131072
#: 16.4/48.2 ms; one thread: numba 1.2-11x faster at every size with T >= 4. T=1 is a tie
#: (0.21/0.21 ms at 1024 neurons), hence the bound of 2 steps.
NUMBA_MAX_SMALL_NEURONS = 32768
NUMBA_MIN_STEPS = 2
NUMBA_MIN_NEURONS = 32768
NUMBA_LARGE_MIN_STEPS = 2
#: the bounds for op ``li`` (:mod:`.numba_li`, whose kernel has not had the LIF kernels' rework).
#: Re-measured in session 3 (``benchmarks/li_numba.py``: fwd+bwd, float32, 2 threads,
#: numba / torch time, median of 7 interleaved, idle VM): numba wins only on small layers over
#: enough steps -- T=100: 320 neurons 0.21-0.25, 1024 0.59, 2048 0.89-1.01, 4096 1.18, 8192
#: 0.86-1.28, 16384 1.24, 262144 2.1; T=16-20: 640 0.62-0.84, 2048 0.88, 32768 1.67; T=4-8:
#: 320-4096 1.07-1.43. Hence numba for at most 2048 neurons over at least 16 steps, and never for
#: large layers (session 2's rule sent 16384-neuron and large long layers to numba, 1.2-2.7x slower).
NUMBA_LI_MAX_SMALL_NEURONS = 2048
NUMBA_LI_MIN_STEPS = 16
NUMBA_LI_MIN_NEURONS = 1 << 62  # no large-layer region (see above)
NUMBA_LI_LARGE_MIN_STEPS = 50


def _traced() -> bool:
    """Inside torch.compile / torch.export / jit tracing / a torch.func transform: the numba
    kernels are opaque there (a graph break, or no tracing at all), so ``auto`` keeps to torch."""
    import torch

    return (torch.compiler.is_compiling() or torch.jit.is_tracing()
            or torch._C._are_functorch_transforms_active())


def _numba_auto_size(x) -> bool:
    """The size rule of op ``lif`` (see ``NUMBA_MAX_SMALL_NEURONS``)."""
    if _traced():
        return False
    T, n = x.shape[0], x[0].numel()
    return ((n <= NUMBA_MAX_SMALL_NEURONS and T >= NUMBA_MIN_STEPS)
            or (n >= NUMBA_MIN_NEURONS and T >= NUMBA_LARGE_MIN_STEPS))


def _numba_li_auto_size(x) -> bool:
    """The size rule of op ``li`` (see ``NUMBA_LI_MAX_SMALL_NEURONS``)."""
    if _traced():
        return False
    T, n = x.shape[0], x[0].numel()
    return ((n <= NUMBA_LI_MAX_SMALL_NEURONS and T >= NUMBA_LI_MIN_STEPS)
            or (n >= NUMBA_LI_MIN_NEURONS and T >= NUMBA_LI_LARGE_MIN_STEPS))


#: families with a vectorised numba backward (``numba_lif_fast.FAST_CODES``; named here so that
#: ``supports`` imports no numba). The other one, DSpike (tanh per element, float64), loses to
#: torch on larger layers (T=100 fwd+bwd, one thread, numba / torch ms: 1024 neurons 2.47/4.44,
#: 4096 8.93/6.52, 16384 38.4/15.9), so ``auto`` takes numba for it only up to
#: ``NUMBA_SLOW_FAMILY_MAX_NEURONS``. (Gaussian, Erf and Exponential were in that case too, 0.8x
#: torch at 16384 neurons, until they got vectorised forms with the float32 exp.)
_NUMBA_FAST_FAMILIES = ("StraightThrough", "Rectangle", "Sigmoid", "FastSigmoid", "SoftSign",
                        "ATan", "Triangle", "Gaussian", "Erf", "Exponential")
NUMBA_SLOW_FAMILY_MAX_NEURONS = 2048


def _numba_lif_supports(x, relaxed=False, surrogate=None, **kw) -> bool:
    import torch

    if surrogate is not None and not _builtin_family(surrogate):
        return False  # "auto" takes torch quietly (see _triton_lif_supports)
    if (surrogate is not None and type(surrogate).__name__ not in _NUMBA_FAST_FAMILIES
            and x[0].numel() > NUMBA_SLOW_FAMILY_MAX_NEURONS):
        return False
    return (not relaxed and x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64)
            and _numba_auto_size(x) and numba_available())


register_lif_backend("triton", _triton_lif, supports=_triton_lif_supports, auto=True)
register_lif_backend("numba", _numba_lif, supports=_numba_lif_supports, auto=True)


def _triton_lif_low_mem(save_dtype, **kw):
    """The ``save_dtype`` scan (:mod:`surrogate_nets.functional.lif_low_mem`) on the Triton
    kernel: ``h - theta`` rounded to ``save_dtype`` is written by the forward kernel and read back
    by the backward one."""
    from ..functional.lif_low_mem import _scan_torch_low_mem

    _require_triton_device(kw["x"])
    if kw["relaxed"]:
        return _scan_torch_low_mem(save_dtype, **kw)
    if not _builtin_family(kw["surrogate"]):
        _warn_once(("triton", type(kw["surrogate"])),
                   f"surrogate family {type(kw['surrogate']).__name__} has no triton kernel form; "
                   f"using the torch lif_scan backend for it", stacklevel=4)
        return _scan_torch_low_mem(save_dtype, **kw)
    from .triton_lif import triton_lif_scan

    return triton_lif_scan(save_dtype=save_dtype, **kw)


register_low_mem_backend("triton", _triton_lif_low_mem, supports=_triton_lif_supports)


def _numba_lif_low_mem(save_dtype, **kw):
    """``lif_scan(save_dtype=...)`` on the numba kernels (same narrow save as the torch one)."""
    x = kw["x"]
    if x.device.type != "cpu":
        raise ValueError(f"backend 'numba' needs CPU tensors, got x on {x.device}")
    from ..functional.lif_low_mem import _scan_torch_low_mem

    if kw["relaxed"] or not _builtin_family(kw["surrogate"]) or _traced():
        if _traced():
            _warn_traced("lif")
        return _scan_torch_low_mem(save_dtype, **kw)
    from .numba_lif import numba_lif_scan

    return numba_lif_scan(**kw, save_dtype=save_dtype)


register_low_mem_backend("numba", _numba_lif_low_mem, supports=_numba_lif_supports)


# ------------------------------------------------------------------------------------- li
def _triton_li(x, v0, beta, decay_input):
    """Op ``li`` on the Triton LIF scan: threshold ``inf`` and no reset give ``h_t = v_t``."""
    _require_triton_device(x)
    import torch

    from ..surrogate.families import StraightThrough
    from .triton_lif import triton_lif_scan

    inf = torch.full((), float("inf"), dtype=x.dtype, device=x.device)
    one = torch.ones((), dtype=x.dtype, device=x.device)
    return triton_lif_scan(x=x, v0=v0, beta=beta, threshold=inf, alpha=one,
                           surrogate=StraightThrough(), reset="none", detach_reset=False,
                           decay_input=decay_input, levels=1, relaxed=False).h


def _numba_li(x, v0, beta, decay_input):
    if x.device.type != "cpu":
        raise ValueError(f"backend 'numba' needs CPU tensors, got x on {x.device}")
    if _traced():
        from ..functional.backends import dispatch

        _warn_traced("li")

        return dispatch("li", "torch", x=x, v0=v0, beta=beta, decay_input=decay_input)
    from .numba_li import numba_li_scan

    return numba_li_scan(x, v0, beta, decay_input)


def _numba_li_supports(x, **kw) -> bool:
    import torch

    return (x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64)
            and _numba_li_auto_size(x) and numba_available())


register_backend("li", "triton", _triton_li, supports=_triton_lif_supports, auto=True)
register_backend("li", "numba", _numba_li, supports=_numba_li_supports, auto=True)


# ------------------------------------------------------------------------------ fake_quant
def _triton_fake_quant(**kw):
    x = kw["x"]
    _require_triton_device(x)
    if not (kw["fast"] or _builtin_family(kw["surrogate"])):
        from ..quant.fake_quant import _fake_quant_torch

        _warn_once(("triton fake_quant", type(kw["surrogate"])),
                   f"surrogate family {type(kw['surrogate']).__name__} has no triton kernel "
                   f"form; using the torch fake_quant backend for it", stacklevel=3)
        return _fake_quant_torch(**kw)
    from .triton_fake_quant import triton_fake_quant

    return triton_fake_quant(**kw)


def _triton_fake_quant_supports(x, surrogate=None, fast=False, **kw) -> bool:
    return (_triton_lif_supports(x, surrogate=surrogate if not fast else None)
            and x.dtype.is_floating_point
            and (fast or _builtin_family(surrogate)))


register_backend("fake_quant", "triton", _triton_fake_quant, supports=_triton_fake_quant_supports,
                 auto=True)


# ------------------------------------------------------------------------------- synaptic
def _synaptic_via(name: str):
    """Op ``synaptic`` as the seam composes it (:func:`~surrogate_nets.functional.synaptic`):
    the synaptic current is an LI scan, the membrane a LIF scan driven by it; both run on the
    ``name`` kernels (two kernel launches, the current written once in between)."""

    def fn(x, i0, v0, alpha_syn, beta, threshold, alpha, surrogate, reset, detach_reset,
           decay_input, levels, relaxed):
        from ..functional.backends import dispatch
        from ..functional.synaptic import SynapticScanResult

        cur = dispatch("li", name, x=x, v0=i0, beta=alpha_syn, decay_input=False)
        r = dispatch("lif", name, x=cur, v0=v0, beta=beta, threshold=threshold, alpha=alpha,
                     surrogate=surrogate, reset=reset, detach_reset=detach_reset,
                     decay_input=decay_input, levels=levels, relaxed=relaxed)
        return SynapticScanResult(r.spikes, r.h, cur, r.v)

    fn.__name__ = f"_synaptic_{name}"
    return fn


register_backend("synaptic", "triton", _synaptic_via("triton"), supports=_triton_lif_supports,
                 auto=True)


def _numba_neuron(op: str):
    """Op ``op`` (``"alif"`` / ``"synaptic"``) on the fused numba kernels of :mod:`.numba_alif`;
    ``relaxed`` runs the torch backend, a user family too (with a one-time warning)."""

    def fn(**kw):
        x = kw["x"]
        if x.device.type != "cpu":
            raise ValueError(f"backend 'numba' needs CPU tensors, got x on {x.device}")
        if kw["relaxed"] or not _builtin_family(kw["surrogate"]) or _traced():
            from ..functional.backends import dispatch

            if _traced():
                _warn_traced(op)
            elif not kw["relaxed"]:
                _warn_once((f"numba {op}", type(kw["surrogate"])),
                           f"surrogate family {type(kw['surrogate']).__name__} has no numba "
                           f"kernel form; using the torch {op} backend for it", stacklevel=3)
            return dispatch(op, "torch", **kw)
        if op == "alif":
            from .numba_alif import numba_alif_scan

            return numba_alif_scan(**kw)
        from .numba_synaptic import numba_synaptic_scan

        return numba_synaptic_scan(**kw)

    fn.__name__ = f"_numba_{op}"
    return fn


#: ``backend="auto"`` picks numba for op ``alif`` / ``synaptic`` (CPU, float32/float64, a built-in
#: family, not traced) when ``T >= min_steps`` and (``n <= max_neurons`` or ``T >= long_steps``),
#: ``(min_steps, max_neurons, long_steps) = NUMBA_NEURON_AUTO[op]``, ``n = x[0].numel()``.
#: Measured (benchmarks/RESULTS.md, ``benchmarks/alif_synaptic_numba.py``: fwd+bwd, float32,
#: numba / torch time, 1 and 2 threads interleaved on a shared 2-core VM): alif 0.06-0.1 at
#: T=100 B=4 N=64, 0.56-0.82 at T=100 B=32 N=512, 0.7-0.9 at T=4-20 with up to 65536 neurons,
#: 0.76 at T=100 B=128 N=2048, but 0.65-1.14 at T=4 and 0.82-1.01 at T=20 for B=128 N=2048;
#: synaptic 0.12, 0.66-0.78, 0.8-1.0 at T=4-8 with up to 16384 neurons, 0.77-0.88 at T=100
#: B=128 N=2048, but 0.98-1.26 at T=8-20 B=64 N=1024 and 1.0-1.8 at T=4-50 B=128 N=2048; T=2:
#: 1.0-1.14.
NUMBA_NEURON_AUTO = {"alif": (4, 65536, 50), "synaptic": (4, 32768, 100)}


def _numba_neuron_supports(op: str):
    def supports(x, relaxed=False, surrogate=None, **kw) -> bool:
        import torch

        if relaxed or (surrogate is not None and not _builtin_family(surrogate)):
            return False  # "auto" takes torch quietly (see _triton_lif_supports)
        if x.device.type != "cpu" or x.dtype not in (torch.float32, torch.float64) or _traced():
            return False
        min_steps, max_neurons, long_steps = NUMBA_NEURON_AUTO[op]
        T, n = x.shape[0], x[0].numel()
        return T >= min_steps and (n <= max_neurons or T >= long_steps) and numba_available()

    supports.__name__ = f"_numba_{op}_supports"
    return supports


register_backend("synaptic", "numba", _numba_neuron("synaptic"),
                 supports=_numba_neuron_supports("synaptic"), auto=True)


# ----------------------------------------------------------------------------------- alif
def _triton_alif(**kw):
    x = kw["x"]
    _require_triton_device(x)
    if kw["relaxed"] or not _builtin_family(kw["surrogate"]):
        from ..functional.backends import dispatch

        if not kw["relaxed"]:
            _warn_once(("triton alif", type(kw["surrogate"])),
                       f"surrogate family {type(kw['surrogate']).__name__} has no triton "
                       f"kernel form; using the torch alif backend for it", stacklevel=3)
        return dispatch("alif", "torch", **kw)
    from .triton_alif import triton_alif_scan

    return triton_alif_scan(**kw)


register_backend("alif", "triton", _triton_alif, supports=_triton_lif_supports, auto=True)
register_backend("alif", "numba", _numba_neuron("alif"), supports=_numba_neuron_supports("alif"),
                 auto=True)
