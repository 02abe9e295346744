"""How close is the fused LIF scan to the memory roofline? (CUDA; ``--dry-run`` on CPU.)

    PYTHONPATH=. python benchmarks/lif_roofline.py --T 64 --B 64 --N 65536 --dtype float16

The scan must move at least: forward, read ``x`` and write ``s`` and ``h`` (3 values per element);
backward with only ``dL/ds`` flowing in, read ``h`` and ``dL/ds`` and write ``dL/dx`` (3 values
per element; ``h_{t-1}`` is re-read from cache for the beta gradient). With ``e`` bytes per value
that is ``3 e T B N`` bytes each way. The achieved bandwidth is those bytes over the median
kernel time (CUDA events); ``--peak-gbs`` (default: a table of common cards, else 0 = unknown)
gives the ratio to the roofline. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

PEAK_GBS = {"H200": 4800.0, "H100 SXM": 3350.0, "H100 PCIe": 2000.0, "H100": 3350.0,
            "A100-SXM4-80GB": 2039.0, "A100": 1555.0, "L40S": 864.0, "L4": 300.0,
            "RTX 4090": 1008.0, "V100": 900.0, "T4": 320.0}


def main(argv=None):
    import torch

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--T", type=int, default=64)
    p.add_argument("--B", type=int, default=64)
    p.add_argument("--N", type=int, default=65536)
    p.add_argument("--dtypes", default="float32,float16")
    p.add_argument("--backends", default="triton,torch")
    p.add_argument("--repeat", type=int, default=20)
    p.add_argument("--peak-gbs", type=float, default=None)
    p.add_argument("--dry-run", action="store_true", help="CPU, tiny sizes, no roofline (tests)")
    a = p.parse_args(argv)
    from surrogate_nets.functional import lif_scan

    dev = "cpu" if a.dry_run else "cuda"
    if a.dry_run:
        a.T, a.B, a.N, a.repeat = 4, 2, 16, 2
        a.backends = "torch"
    name = torch.cuda.get_device_name() if dev == "cuda" else "cpu (dry run)"
    peak = a.peak_gbs
    if peak is None:
        peak = next((v for k, v in PEAK_GBS.items() if k in name), 0.0)
    print(f"**LIF scan vs memory roofline, T={a.T} B={a.B} N={a.N}, {name}, peak "
          f"{peak:.0f} GB/s**\n")
    print("| backend | dtype | fwd ms | fwd GB/s | fwd x roofline | fwd+bwd ms | fwd+bwd GB/s | "
          "fwd+bwd x roofline |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for dt in a.dtypes.split(","):
        dtype = getattr(torch, dt)
        x = (torch.rand(a.T, a.B, a.N, device=dev) * 1.5).to(dtype)
        e = x.element_size()
        n = x.numel()
        for be in a.backends.split(","):
            def fwd():
                with torch.no_grad():
                    lif_scan(x, beta=0.5, surrogate="atan", backend=be)

            xg = x.clone().requires_grad_()

            def fb():
                s = lif_scan(xg, beta=0.5, surrogate="atan", backend=be).spikes
                s.backward(torch.ones_like(s))

            res = []
            for fn in (fwd, fb):
                fn()
                ts = []
                for _ in range(a.repeat):
                    if dev == "cuda":
                        st, en = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                        st.record()
                        fn()
                        en.record()
                        torch.cuda.synchronize()
                        ts.append(st.elapsed_time(en))
                    else:
                        import time

                        t0 = time.perf_counter()
                        fn()
                        ts.append(1e3 * (time.perf_counter() - t0))
                res.append(sorted(ts)[len(ts) // 2])
            b_f, b_fb = 3 * e * n, 6 * e * n
            gbs_f, gbs_fb = b_f / res[0] / 1e6, b_fb / res[1] / 1e6
            rf = f"{peak / gbs_f:.2f}" if peak else "?"
            rfb = f"{peak / gbs_fb:.2f}" if peak else "?"
            print(f"| {be} | {dt} | {res[0]:.3f} | {gbs_f:.0f} | {rf} | {res[1]:.3f} | "
                  f"{gbs_fb:.0f} | {rfb} |")


if __name__ == "__main__":
    main()
