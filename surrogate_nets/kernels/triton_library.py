"""How every Triton kernel of this package becomes a ``torch.library`` op (shared by the LIF,
ALIF and fake-quant kernels).

Each kernel pair is exposed as two ops, ``surrogate_nets::<name>_fwd`` and ``<name>_bwd``, made
with :func:`torch.library.custom_op` (or, opted into with ``SURROGATE_NETS_TRITON_OPAQUE=0``,
:func:`torch.library.triton_op` where this torch has it), each with an explicit fake (meta) implementation giving every
output's shape and dtype, and the forward op's backward registered with
:meth:`register_autograd` as a call of the backward op. So ``torch.compile`` (``fullgraph=True``)
sees one op per direction instead of a graph break at an ``autograd.Function`` that launches a
kernel, and the kernels run unchanged outside of it.

On CPU tensors the kernels run only under Triton's interpreter (``TRITON_INTERPRET=1`` before
triton is imported). There Dynamo traces the ops (one frame), but AOT-autograd backends
(``aot_eager``, inductor) cannot: ``triton_op`` decomposes into the kernel, which the interpreter
then runs on fake tensors; that opt-in path is for CUDA (``benchmarks/gpu_check.sh``), while the
default opaque ops (:data:`OPAQUE`) also run under AOT backends in the interpreter.
"""

from __future__ import annotations

import os
from typing import Callable, Optional

import torch
import triton
import triton.language as tl

__all__ = ["OPAQUE", "library_op", "wrap", "compute_dtype", "param_dtype", "block", "dense",
           "maybe_empty", "register_autograd"]

#: Opaque ops (the default; read at import): plain ``custom_op``, which compiled graphs call as one
#: opaque kernel each. Tested with Dynamo and ``aot_eager`` under the interpreter; it needs no
#: tracing into the kernels, which take Triton functions (the surrogate forms) as constant arguments.
#: ``SURROGATE_NETS_TRITON_OPAQUE=0`` opts into ``triton_op`` (inductor may then see into the
#: kernels); that path has not yet run on a GPU, so it is not the default.
OPAQUE = os.environ.get("SURROGATE_NETS_TRITON_OPAQUE", "1") != "0"
_DECORATOR = (None if OPAQUE else getattr(torch.library, "triton_op", None)) or torch.library.custom_op


def library_op(name: str) -> Callable:
    """Decorator: the function as the functional op ``surrogate_nets::<name>`` (no mutated args)."""
    return _DECORATOR(f"surrogate_nets::{name}", mutates_args=())


def wrap(kernel):
    """``torch.library.wrap_triton(kernel)`` when this torch has it (needed inside ``triton_op``)."""
    w = getattr(torch.library, "wrap_triton", None)
    return w(kernel) if w is not None else kernel


def compute_dtype(dtype: torch.dtype):
    """The kernels' register dtype: float64 for float64, float32 for everything narrower."""
    return tl.float64 if dtype == torch.float64 else tl.float32


def param_dtype(dtype: torch.dtype) -> torch.dtype:
    """The torch dtype of :func:`compute_dtype` (parameters and their gradients are kept in it)."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def block(n: int, device: torch.device) -> int:
    """Neurons per program of a scan kernel: 256 on CUDA, few big programs in the interpreter."""
    if device.type != "cuda":
        return max(16, min(1024, triton.next_power_of_2(n)))
    return 256


def dense(g: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
    """An incoming gradient as a dense tensor (it may be an expanded view, e.g. of ``out.sum()``)."""
    return None if g is None else g.contiguous()


def maybe_empty(shape, on: bool, dtype: torch.dtype, device) -> torch.Tensor:
    """``torch.empty(shape)`` when the output is wanted, else an empty ``(0,)`` placeholder
    (an op returns a fixed number of tensors; unneeded gradients are not computed)."""
    return torch.empty(shape if on else (0,), dtype=dtype, device=device)


def register_autograd(fwd_op, backward: Callable, setup_context: Callable) -> None:
    """``fwd_op.register_autograd`` with unused outputs' gradients arriving as ``None``
    (``set_materialize_grads(False)``: the kernels skip reading them instead of reading zeros)."""

    def setup(ctx, inputs, output):
        ctx.set_materialize_grads(False)
        setup_context(ctx, inputs, output)

    fwd_op.register_autograd(backward, setup_context=setup)
