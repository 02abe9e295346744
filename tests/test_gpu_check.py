"""benchmarks/gpu_check.sh --dry-run: the GPU check's steps run on a CPU-only machine."""

import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_gpu_check_dry_run(tmp_path):
    env = dict(os.environ, OUT=str(tmp_path), PYTHON=sys.executable, GPU_CHECK_SKIP_TESTS="1",
               PYTHONPATH=ROOT)
    r = subprocess.run(["bash", os.path.join(ROOT, "benchmarks", "gpu_check.sh"), "--dry-run"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    roof = (tmp_path / "roofline.md").read_text()
    assert "| torch | float32 |" in roof
    peers = (tmp_path / "neurons_float32.md").read_text()
    assert "| surrogate_nets[auto] |" in peers and "x fastest" in peers
    assert (tmp_path / "env.txt").read_text().startswith("date:")
    assert "ok" in (tmp_path / "train.md").read_text()
