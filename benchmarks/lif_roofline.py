"""How close is the fused LIF scan to the memory roofline? (CUDA; ``--dry-run`` on CPU.)

    PYTHONPATH=. python benchmarks/lif_roofline.py --T 64 --B 64 --N 65536 --dtypes float32,float16

Bytes the scan must move, with ``e`` bytes per value of the input dtype, ``e_s`` bytes per
value of ``save_dtype`` and ``n = T B N`` elements:

* forward: read ``x``, write ``s`` and ``h`` (``3 e n``); with ``save_dtype`` also write the
  narrow distance ``d = h - theta`` that the backward keeps (``(3 e + e_s) n``);
* backward with only ``dL/ds`` flowing in (``torch.autograd.grad(s, x, g)``, ``g`` allocated
  once): read ``h`` (or ``d``) and ``dL/ds``, write ``dL/dx`` (``(2 e + e)`` or ``(2 e + e_s) n``;
  ``h_{t-1}`` is re-read from cache for the beta gradient; the unused ``dL/dh``, ``dL/dv``
  arrive as ``None`` and are not read).

So ``save_dtype`` moves the same total bytes for a float32 scan (2 bytes more written forward,
2 fewer read backward) and halves what is *kept* between forward and backward when the caller
drops ``h`` (a ``LIF`` layer that does not record it); for a float16 scan it only adds a write.
The achieved bandwidth is those bytes over the median time (CUDA events) of a training
forward (grad enabled, graph dropped) and of forward + backward; ``--peak-gbs``
(default: a table of common cards, else 0 = unknown) gives the ratio to the roofline. The
``torch`` rows use the same byte counts (it moves more). Prints a markdown table.
``--dry-run``: CPU, tiny sizes, both backends (the Triton kernels through Triton's interpreter).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

PEAK_GBS = {"H200": 4800.0, "H100 SXM": 3350.0, "H100 PCIe": 2000.0, "H100": 3350.0,
            "A100-SXM4-80GB": 2039.0, "A100": 1555.0, "L40S": 864.0, "L4": 300.0,
            "RTX 4090": 1008.0, "V100": 900.0, "T4": 320.0}


def bytes_moved(n: int, e: int, e_s: int = 0):
    """``(forward, backward)`` bytes of the model above (``e_s = 0``: no ``save_dtype``)."""
    return (3 * e + e_s) * n, (2 * e + (e_s or e)) * n


def _median_ms(fn, repeat, cuda):
    import torch

    fn()
    ts = []
    for _ in range(repeat):
        if cuda:
            st, en = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            st.record()
            fn()
            en.record()
            torch.cuda.synchronize()
            ts.append(st.elapsed_time(en))
        else:
            t0 = time.perf_counter()
            fn()
            ts.append(1e3 * (time.perf_counter() - t0))
    return sorted(ts)[len(ts) // 2]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--T", type=int, default=64)
    p.add_argument("--B", type=int, default=64)
    p.add_argument("--N", type=int, default=65536)
    p.add_argument("--dtypes", default="float32,float16")
    p.add_argument("--save-dtypes", default="none,bfloat16",
                   help="comma list of save_dtype values ('none' = save h)")
    p.add_argument("--backends", default="triton,torch")
    p.add_argument("--repeat", type=int, default=20)
    p.add_argument("--peak-gbs", type=float, default=None)
    p.add_argument("--dry-run", action="store_true",
                   help="CPU, tiny sizes, no roofline (tests); triton through its interpreter")
    a = p.parse_args(argv)
    if a.dry_run:
        a.T, a.B, a.N, a.repeat = 4, 2, 16, 2
        import importlib.util

        if importlib.util.find_spec("triton") is not None:
            os.environ.setdefault("TRITON_INTERPRET", "1")  # before anything imports triton
        if os.environ.get("TRITON_INTERPRET") != "1" or importlib.util.find_spec("triton") is None:
            a.backends = "torch"
        a.save_dtypes = a.save_dtypes.replace("bfloat16", "float16")  # numpy has no bfloat16
    import torch

    from surrogate_nets.functional import lif_scan

    dev = "cpu" if a.dry_run else "cuda"
    name = torch.cuda.get_device_name() if dev == "cuda" else "cpu (dry run)"
    peak = a.peak_gbs
    if peak is None:
        peak = next((v for k, v in PEAK_GBS.items() if k in name), 0.0)
    print(f"**LIF scan vs memory roofline, T={a.T} B={a.B} N={a.N}, {name}, peak "
          f"{peak:.0f} GB/s** (bytes: benchmarks/lif_roofline.py docstring)\n")
    print("| backend | dtype | save_dtype | fwd ms | fwd GB/s | fwd x roofline | fwd+bwd ms | "
          "fwd+bwd GB/s | fwd+bwd x roofline |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for dt in a.dtypes.split(","):
        dtype = getattr(torch, dt)
        x = (torch.rand(a.T, a.B, a.N, device=dev) * 1.5).to(dtype)
        xg = x.clone().requires_grad_()
        g = torch.ones_like(x)
        for be in a.backends.split(","):
            for sd_name in a.save_dtypes.split(","):
                sd = None if sd_name == "none" else getattr(torch, sd_name)

                def fwd():  # a training forward: grad enabled, the graph then dropped
                    lif_scan(xg, beta=0.5, surrogate="atan", backend=be, save_dtype=sd)

                def fb():
                    s = lif_scan(xg, beta=0.5, surrogate="atan", backend=be, save_dtype=sd).spikes
                    torch.autograd.grad(s, xg, g)

                ms_f = _median_ms(fwd, a.repeat, dev == "cuda")
                ms_fb = _median_ms(fb, a.repeat, dev == "cuda")
                e, e_s = x.element_size(), (0 if sd is None else sd.itemsize)
                b_f, b_b = bytes_moved(x.numel(), e, e_s)
                gbs_f, gbs_fb = b_f / ms_f / 1e6, (b_f + b_b) / ms_fb / 1e6
                rf = f"{peak / gbs_f:.2f}" if peak else "?"
                rfb = f"{peak / gbs_fb:.2f}" if peak else "?"
                print(f"| {be} | {dt} | {sd_name} | {ms_f:.3f} | {gbs_f:.0f} | {rf} | {ms_fb:.3f} | "
                      f"{gbs_fb:.0f} | {rfb} |", flush=True)


if __name__ == "__main__":
    main()
