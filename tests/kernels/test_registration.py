"""The fused backends register lazily: importing the library imports neither triton nor numba."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_import_does_not_load_triton_or_numba():
    code = ("import sys, surrogate_nets; from surrogate_nets.functional import lif_backends; "
            "assert {'triton', 'numba'} <= set(lif_backends()), lif_backends(); "
            "bad = [m for m in ('triton', 'numba') if m in sys.modules]; "
            "assert not bad, bad")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=ROOT), timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]


def test_triton_backend_never_auto_on_plain_cpu():
    """Without the opt-in, ``auto`` never sends CPU tensors to the (interpreted) Triton kernels."""
    import torch

    from surrogate_nets import kernels

    assert not kernels._triton_lif_supports(x=torch.zeros(2, 1, 3), relaxed=False) or (
        kernels._STATE["triton_cpu"])
