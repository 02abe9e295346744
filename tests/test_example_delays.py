"""examples/delays.py runs end to end (smallest settings, as a subprocess in a tmp dir)."""

import importlib.util
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_delays_example_smoke(tmp_path):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""), MPLBACKEND="Agg")
    out = tmp_path / "dl"
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "delays.py"), "--epochs", "1",
                           "--seeds", "1", "--samples", "64", "--kernel", "gaussian", "--out", str(out)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "mean delays, rounded: test accuracy" in proc.stdout
    assert (out / "results.json").is_file()
    if importlib.util.find_spec("matplotlib") is not None:
        assert (out / "accuracy.png").is_file()


def test_delays_example_without_shd_files_explains_and_exits_2(tmp_path):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""), MPLBACKEND="Agg")
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "delays.py"), "--shd-dir",
                           str(tmp_path / "none"), "--out", str(tmp_path / "o")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "SHD" in proc.stderr
