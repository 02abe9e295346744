"""Benchmark: QuantAct forward+backward time and saved-for-backward bytes vs torch.ao and Brevitas.

Compared on the same float32 CPU tensors (a 4-bit unsigned quantizer with a learnable per-tensor
step; an unsigned quantizer clamps at 0, so all rows compute a quantized ReLU):

* ``ours``: ``surrogate_nets.quant.QuantAct(4)`` (fused Function, boxcar straight-through = LSQ).
* ``ours-composed``: ``step * staircase(x / step)`` via ``surrogate_nets.functional.quantize``
  (autograd through the composition; what the fused Function replaces).
* ``torch.ao``: ``torch._fake_quantize_learnable_per_tensor_affine`` (fused C++ op, learnable
  scale and zero point, ``grad_factor=1``).
* ``brevitas``: ``brevitas.nn.QuantReLU(bit_width=4, scaling_impl_type="parameter")`` when
  brevitas is installed.

Time is the median of ``--repeat`` rounds (each round times ``--inner`` forward+backward calls;
the implementations are interleaved round by round, so background load hits them alike).
Saved bytes are summed with ``torch.autograd.graph.saved_tensors_hooks`` over one forward.
Ratios are ``other / ours`` (> 1: ours is faster / saves less).

Reproduce (from the repo root, with the ``bench`` extra: torch 2.14.1 + brevitas)::

    pip install -e ".[bench]" && \\
        python benchmarks/quant.py --sizes 65536 1048576 16777216 --threads 1   # and --threads 2

Measured (2-core AMD EPYC VM shared with other jobs, load ~4; torch 2.14.1; 1 thread; median ms,
ratio other/ours; saved MB for backward)::

    elements  ours          ours-composed  torch.ao       brevitas
    64K       0.44 (1.00)   0.85 (1.9)     1.56 (3.6)     1.23 (2.8)    saved 0.25 / 0.75 / 0.25 / 0.88
    1M        3.57 (1.00)   12.7 (3.6)     24.1 (6.8)     17.3 (4.8)    saved 4 / 12 / 4 / 14
    16M       301  (1.00)   824  (2.7)     735  (2.4)     1167 (3.9)    saved 64 / 192 / 64 / 224

Not part of the test suite.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import torch

try:
    import surrogate_nets  # noqa: F401
except ImportError:  # running from a checkout without installing: use the repository root
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from surrogate_nets.functional import quantize
from surrogate_nets.quant import QuantAct


def saved_bytes(fn) -> int:
    """Bytes of the tensors autograd saves for backward during ``fn()`` (storage counted once per save)."""
    total = 0

    def pack(t):
        nonlocal total
        total += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    del out
    return total


def make_impls(n: int, bits: int):
    q_max = 2**bits - 1
    impls = {}

    act = QuantAct(bits, init_step=0.1)
    impls["ours"] = (act, lambda x: act(x))

    step_c = torch.nn.Parameter(torch.tensor(0.1))
    impls["ours-composed"] = (step_c, lambda x: quantize(x, step_c, q_max, "straight_through"))

    scale = torch.nn.Parameter(torch.tensor([0.1]))
    zp = torch.nn.Parameter(torch.tensor([0.0]))
    impls["torch.ao"] = ((scale, zp), lambda x: torch._fake_quantize_learnable_per_tensor_affine(
        x, scale, zp, 0, q_max, 1.0))

    try:
        from brevitas.nn import QuantReLU
    except Exception:  # pragma: no cover - brevitas optional
        QuantReLU = None
    if QuantReLU is not None:
        br = QuantReLU(bit_width=bits, return_quant_tensor=False, scaling_impl_type="parameter",
                       max_val=0.1 * q_max)
        impls["brevitas"] = (br, lambda x: br(x))
    return impls


def run(sizes, bits, repeat, inner, threads):
    if threads:
        torch.set_num_threads(threads)
    rows = []
    for n in sizes:
        torch.manual_seed(0)
        x = (torch.randn(n) * 0.6).requires_grad_()
        g = torch.randn(n)
        impls = make_impls(n, bits)
        fns = {}
        for name, (_, f) in impls.items():
            def fb(f=f):
                y = f(x)
                y.backward(g)
            fns[name] = fb
        k = inner if n <= 2**20 else max(1, inner // 8)
        for fb in fns.values():  # warm-up
            for _ in range(3):
                fb()
        times = {name: [] for name in fns}
        for _ in range(repeat):
            for name, fb in fns.items():
                t0 = time.perf_counter()
                for _ in range(k):
                    fb()
                times[name].append((time.perf_counter() - t0) / k)
        for name in fns:
            f = impls[name][1]
            rows.append({"n": n, "impl": name, "ms": 1e3 * statistics.median(times[name]),
                         "ms_min": 1e3 * min(times[name]), "saved": saved_bytes(lambda: f(x))})
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[2**16, 2**20, 2**24])
    p.add_argument("--bits", type=int, default=4)
    p.add_argument("--repeat", type=int, default=15, help="timed rounds per implementation")
    p.add_argument("--inner", type=int, default=16, help="calls per round (divided by 8 above 1M)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    a = p.parse_args(argv)
    rows = run(a.sizes, a.bits, a.repeat, a.inner, a.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, float32 CPU, "
          f"{a.bits}-bit unsigned, forward+backward, median of {a.repeat} rounds")
    print(f"{'elements':>10} {'impl':>14} {'ms':>9} {'ms(min)':>9} {'time/ours':>9} "
          f"{'saved MB':>9} {'saved/ours':>10}")
    for n in a.sizes:
        ours = next(r for r in rows if r["n"] == n and r["impl"] == "ours")
        for r in (r for r in rows if r["n"] == n):
            print(f"{n:>10} {r['impl']:>14} {r['ms']:>9.3f} {r['ms_min']:>9.3f} "
                  f"{r['ms'] / ours['ms']:>9.2f} {r['saved'] / 2**20:>9.2f} "
                  f"{r['saved'] / max(ours['saved'], 1):>10.2f}")


if __name__ == "__main__":
    main()
