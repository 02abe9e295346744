"""How far clip-then-round LSQ (``QuantAct``) is from torch.ao's learnable fake-quant.

torch.ao (``torch._fake_quantize_learnable_per_tensor_affine``) rounds first and saturates after;
``QuantAct`` clips first. They differ only for ``u = x/s`` in ``[hi, hi + 1/2)`` and
``[lo - 1/2, lo)`` (see ``surrogate_nets/quant/quantizer.py``), but those elements carry large step
gradient terms. This prints, per bit width, the relative difference of the total step gradient
and the fraction of elements whose x-gradient differs. Not a timing benchmark.

Run: ``PYTHONPATH=. python benchmarks/lsq_vs_torch_ao.py``
"""
import torch
from surrogate_nets.quant import QuantAct, lsq_grad_scale, code_range
torch.manual_seed(0)
n = 100000  # samples
for bits, signed in [(2, False), (4, False), (8, False), (4, True), (8, True)]:
    lo, hi, _ = code_range(bits, None, signed)
    for name, x in [("relu(randn)", torch.relu(torch.randn(n))), ("randn", torch.randn(n))]:
        if not signed and name == "randn": continue
        if signed and name != "randn": continue
        # LSQ init step, rounded to a power of two so x/s == x*(1/s) bitwise (torch.ao multiplies)
        act = QuantAct(bits, signed=signed, grad_scale="numel")
        act.init_from(x)
        s0 = float(2.0 ** torch.round(torch.log2(act.step.detach())))
        act.reset_step(s0)
        gout = torch.randn(n)
        xx = x.clone().requires_grad_(); act(xx).backward(gout)
        sc = torch.tensor([s0], requires_grad=True); zp = torch.tensor([0.0])
        xa = x.clone().requires_grad_()
        torch._fake_quantize_learnable_per_tensor_affine(xa, sc, zp, lo, hi, lsq_grad_scale(n, hi)).backward(gout)
        a, b = float(act.raw_step.grad), float(sc.grad)
        u = x / s0
        band = (((u >= hi) & (u < hi + .5)) | ((u >= lo - .5) & (u < lo))).float().mean()
        print(f"bits={bits} signed={signed} {name}: step grad ours {a:.5g} torch.ao {b:.5g} "
              f"rel diff {abs(a-b)/abs(b):.1%}; x-grad differs on {float((xx.grad != xa.grad).float().mean()):.2%} "
              f"(band fraction {float(band):.2%})")
