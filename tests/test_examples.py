"""The scripts in ``examples/`` run end to end (smallest settings, as subprocesses in a tmp dir)."""

import importlib.util
import json
import os
import subprocess
import sys

import pytest
from dataset_files import make_dvsgesture, make_nmnist, make_shd

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


# --- the recorded-data-set examples on tiny files in the real on-disk formats ---------------
SMOKE = ["--epochs", 1, "--workers", 0, "--no-progress", "--batch-size", 4]


def check_run(proc, out, extra_png):
    check_ok(proc)
    assert "test accuracy" in proc.stdout
    assert (out / "last.pt").is_file() and (out / "metrics.jsonl").is_file()
    if HAVE_MPL:
        for name in ("curves.png", extra_png):
            assert (out / name).is_file(), name


def test_nmnist_tonic_partial_folder_count_frames_cache_resume(tmp_path, env):
    pytest.importorskip("tonic")
    make_nmnist(tmp_path / "data", per_digit=1)
    out = tmp_path / "nm"
    args = ["--data-dir", tmp_path / "data", "--out", out, "--channels", 2, "--time-steps", 3,
            "--frames", "count", "--cache-dir", tmp_path / "cache", "--drop-event", 0.1, *SMOKE]
    proc = run_example("nmnist_tonic.py", args, tmp_path, env)
    check_run(proc, out, "nmnist_frames.png")
    assert "N-MNIST: 10 train / 10 test recordings" in proc.stdout
    assert "found only 10" in proc.stderr        # the partial folder is named, not refused
    assert list((tmp_path / "cache").rglob("*.hdf5"))
    args[args.index("--epochs") + 1] = 2         # continue the run from last.pt
    proc = run_example("nmnist_tonic.py", args + ["--resume"], tmp_path, env)
    check_ok(proc)
    epochs = [json.loads(line)["epoch"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [1, 2]


@pytest.mark.parametrize("neuron", ["rlif", "synaptic"])
def test_shd(tmp_path, env, neuron):
    pytest.importorskip("tonic")
    make_shd(tmp_path / "data", n=6, duration_s=1.2)
    out = tmp_path / "shd"
    proc = run_example("shd.py", ["--data-dir", tmp_path / "data", "--out", out, "--hidden", 8,
                                  "--neuron", neuron, "--time-steps", 20, *SMOKE], tmp_path, env)
    check_run(proc, out, "shd_tau.png")
    assert "SHD: 6 train / 6 test recordings" in proc.stdout


def test_dvs_gesture(tmp_path, env):
    pytest.importorskip("tonic")
    make_dvsgesture(tmp_path / "data", users=(1,), labels=range(4), events=100)
    out = tmp_path / "dvs"
    proc = run_example("dvs_gesture.py", ["--data-dir", tmp_path / "data", "--out", out,
                                          "--channels", 2, "--time-steps", 2,
                                          "--denoise", 10000, *SMOKE], tmp_path, env)
    check_run(proc, out, "dvs_gesture_frames.png")
    assert "DVS128 Gesture: 4 train / 4 test recordings" in proc.stdout


def test_streaming_inference_float_and_integer(tmp_path, env):
    out = tmp_path / "stream"
    proc = run_example("streaming_inference.py", ["--out", out, "--limit", 48, "--time-steps", 4,
                                                  "--channels", 2, "--bits", 4, *SMOKE],
                       tmp_path, env)
    check_run(proc, out, "streaming.png")
    assert "float: streamed vs multi-step on 48 test recordings: predictions agree on 48/48" \
        in proc.stdout
    assert "integer synapses" in proc.stdout and "streaming check passed" in proc.stdout
    import torch

    export = torch.load(out / "int_export.pt", weights_only=True)
    assert {v["weight"].dtype for v in export.values()} == {torch.int8}
    assert all(-8 <= int(v["weight"].min()) and int(v["weight"].max()) <= 7
               for v in export.values())


def test_quantized_snn(tmp_path, env):
    proc = run_example("quantized_snn.py", ["--epochs", 1, "--out", tmp_path / "q"], tmp_path, env)
    check_ok(proc)
    assert "test accuracy" in proc.stdout
    if HAVE_MPL:
        assert (tmp_path / "q" / "quantized_snn.png").is_file()


def test_custom_loss(tmp_path, env):
    out = tmp_path / "cl"
    proc = run_example("custom_loss.py", ["--epochs", 2, "--out", out], tmp_path, env)
    check_ok(proc)
    assert "test accuracy" in proc.stdout
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [8, 16]        # one record per epoch of 8 steps
    if HAVE_MPL:
        assert (out / "custom_loss.png").is_file()
