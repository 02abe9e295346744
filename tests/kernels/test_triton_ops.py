"""The Triton kernels as ``torch.library`` ops (``kernels/triton_library.py``): LIF (with and
without ``save_dtype``), ALIF and the fused fake quantizer.

* ``torch.compile(fullgraph=True)`` traces modules running them in one frame (no graph break),
  with the op itself in the graph, and compiled results equal eager ones.
* ``torch.library.opcheck``: schema, autograd registration and fake (meta) implementations (every
  output's shape and dtype).
* AOT backends (``aot_eager``, inductor) and opcheck's AOT-dispatch check: with the default opaque
  ``custom_op`` wrapping, under the interpreter too (one subprocess); in-process on CUDA, where a
  second run with ``SURROGATE_NETS_TRITON_OPAQUE=0`` (``benchmarks/gpu_check.sh``) covers the
  ``triton_op`` opt-in, which the interpreter cannot trace (it would run the kernel on fake tensors).
"""

import pytest
import torch

from triton_setup import CUDA, DEV, import_triton, module_marks

import_triton()

from surrogate_nets import kernels  # noqa: E402
from surrogate_nets.neurons import ALIF, LIF  # noqa: E402
from surrogate_nets.quant import QuantAct  # noqa: E402

pytestmark = module_marks()

CUDA_ONLY = pytest.mark.skipif(not CUDA, reason="in-process AOT/inductor runs on CUDA; under the "
                                                "interpreter see test_opaque_ops_under_aot_autograd")


@pytest.fixture
def triton_on_cpu():
    kernels.allow_triton_on_cpu(True)  # QuantAct dispatches fake_quant with backend="auto"
    yield
    kernels.allow_triton_on_cpu(False)


def _models():
    """name -> (module factory, the ops its forward graph must hold)."""
    return {
        "alif": (lambda: ALIF(surrogate="sigmoid", learn_beta=True, backend="triton"),
                 {"alif_scan_fwd"}),
        "quant_alif": (lambda: torch.nn.Sequential(
            QuantAct(bits=4, signed=True, init_step=0.25, surrogate="atan", learn_alpha=True,
                     learn_offset=True),
            ALIF(surrogate="triangle", backend="triton")), {"fake_quant_fwd", "alif_scan_fwd"}),
        "lsq_lif": (lambda: torch.nn.Sequential(QuantAct(bits=3, init_step=0.3),
                                                LIF(tau=2.0, backend="triton")),
                    {"fake_quant_fwd", "lif_scan_fwd"}),
        "lif_save_dtype": (lambda: LIF(tau=2.0, learn_beta=True, backend="triton",
                                       save_dtype=torch.float16), {"lif_scan_fwd"}),
    }


def _grads(model, x, y):
    (y * torch.arange(y.shape[-1], device=y.device)).sum().backward()
    return [x.grad] + [p.grad for p in model.parameters()]


def _graph_ops(model, x):
    seen = []

    def backend(gm, example_inputs):
        seen.extend(str(n.target) for n in gm.graph.nodes if n.op == "call_function")
        return gm.forward

    torch._dynamo.reset()
    torch.compile(model, backend=backend, fullgraph=True)(x)
    return {t.split(".")[1] for t in seen if t.startswith("surrogate_nets.")}


@pytest.mark.parametrize("name", list(_models()))
def test_compile_traces_one_op_without_graph_break(name, triton_on_cpu):
    from torch._dynamo.testing import CompileCounter

    make, ops = _models()[name]
    torch.manual_seed(0)
    eager, compiled = make().to(DEV), make().to(DEV)
    compiled.load_state_dict(eager.state_dict())
    x = (torch.randn(5, 2, 4, device=DEV) * 1.5).requires_grad_()
    xc = x.detach().clone().requires_grad_()
    y = eager(x)
    cnt = CompileCounter()
    yc = torch.compile(compiled, backend=cnt, fullgraph=True)(xc)
    assert cnt.frame_count == 1
    assert torch.equal(y, yc)
    for a, b in zip(_grads(eager, x, y), _grads(compiled, xc, yc)):
        assert (a is None) == (b is None)
        if a is not None:
            torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
    assert bool(xc.grad.abs().sum() > 0)
    assert _graph_ops(make().to(DEV), x.detach()) == ops


def check_aot(name, backend):
    """Compiled with an AOT-autograd ``backend``: same spikes and gradients as eager."""
    make, _ = _models()[name]
    torch.manual_seed(0)
    eager, compiled = make().to(DEV), make().to(DEV)
    compiled.load_state_dict(eager.state_dict())
    x = (torch.randn(5, 2, 4, device=DEV) * 1.5).requires_grad_()
    xc = x.detach().clone().requires_grad_()
    torch._dynamo.reset()
    y, yc = eager(x), torch.compile(compiled, backend=backend, fullgraph=True)(xc)
    assert torch.equal(y, yc)
    for a, b in zip(_grads(eager, x, y), _grads(compiled, xc, yc)):
        assert (a is None) == (b is None)
        if a is not None:
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert bool(xc.grad.abs().sum() > 0)


@CUDA_ONLY
@pytest.mark.parametrize("name, backend", [(m, "aot_eager") for m in _models()]
                         + [("quant_alif", "inductor"), ("lif_save_dtype", "inductor")])
def test_compile_aot_backends(name, backend, triton_on_cpu):
    check_aot(name, backend)


def test_opaque_ops_under_aot_autograd():
    """``SURROGATE_NETS_TRITON_OPAQUE=1`` (plain ``custom_op``, the default): AOT autograd traces the
    registered autograd and fake implementations (``aot_eager`` on every model, opcheck's
    AOT-dispatch test on every op); under the interpreter too, so it runs here (subprocess: the
    choice is made at import)."""
    import os
    import subprocess
    import sys

    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(os.path.dirname(here))
    code = ("import sys; sys.path.insert(0, %r)\n"
            "import test_triton_ops as T\n"
            "from surrogate_nets import kernels\n"
            "from surrogate_nets.kernels import triton_library as L\n"
            "assert L.OPAQUE\n"
            "kernels.allow_triton_on_cpu(True)\n"
            "for m in T._models(): T.check_aot(m, 'aot_eager')\n"
            "T.opcheck_all(aot=True)\n"
            "print('OK')\n") % here
    env = dict(os.environ, SURROGATE_NETS_TRITON_OPAQUE="1", PYTHONPATH=root)
    if not CUDA:
        env["TRITON_INTERPRET"] = "1"
    r = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0 and "OK" in r.stdout, r.stdout[-3000:] + r.stderr[-3000:]


# --------------------------------------------------------------------------------- opcheck
def _opcheck_cases():
    from surrogate_nets.kernels import triton_alif, triton_fake_quant, triton_lif

    g = torch.Generator().manual_seed(0)
    T, B, N = 4, 2, 3

    def r(*shape, lo=0.0, hi=1.0, grad=False):
        t = (torch.rand(shape, generator=g) * (hi - lo) + lo).to(DEV)
        return t.requires_grad_(grad)

    x = r(T, B, N, lo=-0.5, hi=2.0, grad=True)
    v0, beta, th, al = r(B, N), r(B, N, lo=0.5, hi=0.9, grad=True), r(B, N, lo=0.8, hi=1.2), r(B, N, lo=2, hi=2)
    lif = [(triton_lif.lif_scan_fwd, (x, v0, beta, th, al, "atan", 0, False, True, 2)),
           (triton_lif.lif_scan_fwd, (x, v0, beta, th, al, "sigmoid", 1, True, False, 1,
                                      torch.float16))]
    h, gs = r(T, B, N, lo=0.0, hi=2.0), r(T, B, N)
    lif_bwd = [(triton_lif.lif_scan_bwd, (h, x.detach(), gs, None, None, v0, beta.detach(), th, al,
                                          "atan", 0, False, True, 1, [True, True, False])),
               (triton_lif.lif_scan_bwd, (h.half(), None, gs, gs, v0, v0, beta.detach(), th, al,
                                          "triangle", 1, False, False, 1, [False, False, True],
                                          True))]
    n = B * N
    xa = r(T, n, lo=-0.5, hi=2.0, grad=True)
    p = [r(n), r(n), r(n, lo=0.5, hi=0.9, grad=True), r(n, lo=0.5, hi=0.9), r(n, lo=0.8, hi=1.2),
         r(n, lo=0.05, hi=0.2, grad=True), r(n, lo=2, hi=2)]
    alif = [(triton_alif.alif_scan_fwd, (xa, *p, "fast_sigmoid", 0, False, True, 1))]
    sa = (xa.detach() > 1).float()
    alif_bwd = [(triton_alif.alif_scan_bwd, (xa.detach(), sa, None, sa, None, p[0], None, *[t.detach() for t in p],
                                             "atan", 2, False, False, 1, True, True))]
    xq = r(5, 4, lo=-2, hi=2, grad=True)
    s, b, a = r(5, 4, lo=0.3, hi=0.3, grad=True), r(5, 4, lo=-0.1, hi=0.1, grad=True), r(5, 4, lo=2, hi=2)
    fq = [(triton_fake_quant.fake_quant_fwd, (xq, s, b, a, "atan", -4, 3, False, False, False, 2)),
          (triton_fake_quant.fake_quant_fwd, (xq, s, None, None, "straight_through", 0, 7, False,
                                              True, True, 0))]
    fq_bwd = [(triton_fake_quant.fake_quant_bwd, (xq.detach(), xq.detach(), s.detach(), None, a,
                                                  "sigmoid", -1, 1, True, False, False, 0, True,
                                                  False, True))]
    return lif + lif_bwd + alif + alif_bwd + fq + fq_bwd


def opcheck_all(aot: bool):
    """``torch.library.opcheck`` on every op (the AOT-dispatch test when ``aot``)."""
    utils = ["test_schema", "test_autograd_registration", "test_faketensor"]
    if aot:
        utils.append("test_aot_dispatch_dynamic")
    names = set()
    for op, args in _opcheck_cases():
        res = torch.library.opcheck(op, args, test_utils=utils)
        assert set(res.values()) == {"SUCCESS"}, (op, res)
        names.add(str(op))
    assert len(names) == 6


def test_opcheck_every_op():
    opcheck_all(aot=CUDA)


def test_roofline_dry_run_covers_the_triton_rows(capsys):
    """``benchmarks/lif_roofline.py --dry-run`` (what gpu_check.sh runs) times both backends
    with and without ``save_dtype``."""
    import importlib.util
    import os

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    spec = importlib.util.spec_from_file_location(
        "lif_roofline", os.path.join(root, "benchmarks", "lif_roofline.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.bytes_moved(10, 4) == (120, 120) and mod.bytes_moved(10, 4, 2) == (140, 100)
    if CUDA:
        pytest.skip("the dry run is the CPU path; gpu_check.sh runs the real one")
    mod.main(["--dry-run", "--dtypes", "float32"])
    out = capsys.readouterr().out
    for row in ("| triton | float32 | none |", "| triton | float32 | float16 |",
                "| torch | float32 | none |", "| torch | float32 | float16 |"):
        assert row in out
