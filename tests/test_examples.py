"""The scripts in ``examples/`` run end to end (smallest settings, as subprocesses in a tmp dir)."""

import importlib.util
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "examples")
HAVE_MPL = importlib.util.find_spec("matplotlib") is not None


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """Environment of the subprocesses: the checkout on the path, a private data cache shared by
    the examples of this module (DigitEvents is converted once), a non-interactive plot backend."""
    e = dict(os.environ)
    e["PYTHONPATH"] = ROOT + os.pathsep + e.get("PYTHONPATH", "")
    e["SURROGATE_NETS_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    e["MPLBACKEND"] = "Agg"
    return e


def run_example(name, args, cwd, env, timeout=120):
    proc = subprocess.run([sys.executable, os.path.join(EXAMPLES, name), *map(str, args)],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    return proc


def check_ok(proc):
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"


def test_conv_snn(tmp_path, env):
    out = tmp_path / "conv"
    proc = run_example("conv_snn.py", ["--epochs", 1, "--limit", 64, "--time-steps", 4,
                                       "--out", out], tmp_path, env)
    check_ok(proc)
    assert "test accuracy" in proc.stdout
    assert (out / "last.pt").is_file() and (out / "metrics.jsonl").is_file()
    if HAVE_MPL:
        assert (out / "curves.png").is_file()


def test_learnable_surrogate(tmp_path, env):
    out = tmp_path / "sg"
    proc = run_example("learnable_surrogate.py", ["--epochs", 1, "--limit", 64, "--time-steps", 4,
                                                  "--out", out], tmp_path, env)
    check_ok(proc)
    for run in ("fixed", "learnable", "annealed"):
        assert f"{run}: test accuracy" in proc.stdout
    if HAVE_MPL:
        assert (out / "surrogate_shapes.png").is_file()
        assert (out / "alpha_per_epoch.png").is_file()


@pytest.mark.parametrize("neuron,loss", [("rlif", "membrane-ce"), ("alif", "first-spike")])
def test_randman(tmp_path, env, neuron, loss):
    out = tmp_path / "rm"
    proc = run_example("randman.py", ["--epochs", 1, "--samples", 10, "--time-steps", 8,
                                      "--hidden", 16, "--neuron", neuron, "--loss", loss,
                                      "--out", out], tmp_path, env)
    check_ok(proc)
    assert "test accuracy" in proc.stdout
    assert (out / "last.pt").is_file()
    if HAVE_MPL:
        assert (out / "curves.png").is_file()


def test_nmnist_without_data_explains_and_exits_2(tmp_path, env):
    pytest.importorskip("tonic")
    data_dir = tmp_path / "no_data"
    proc = run_example("nmnist_tonic.py", ["--data-dir", data_dir, "--out", tmp_path / "nm"],
                       tmp_path, env)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    msg = proc.stderr
    assert "N-MNIST" in msg and "data not found" in msg
    assert str(data_dir / "NMNIST") in msg          # where to put the files
    assert "download=True" in msg                    # and how to fetch them
    assert "Traceback" not in msg
    assert not (tmp_path / "nm").exists()            # nothing was trained or written


def test_quantized_snn(tmp_path, env):
    proc = run_example("quantized_snn.py", ["--epochs", 1], tmp_path, env)
    check_ok(proc)
    assert "test accuracy" in proc.stdout


def test_custom_loss(tmp_path, env):
    proc = run_example("custom_loss.py", ["--steps", 5], tmp_path, env)
    check_ok(proc)
    assert "test accuracy" in proc.stdout
