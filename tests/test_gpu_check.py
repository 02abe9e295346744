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
    assert "| surrogate_nets+spike layers |" in (tmp_path / "train_step.md").read_text()
    # at most 8 files come back from the GPU machine: the step logs are packed into one archive
    import tarfile

    assert "roofline.log" in tarfile.open(tmp_path / "logs.tar.gz").getnames()
    assert len([p for p in tmp_path.iterdir() if p.is_file()]) <= 8


def _bash(args, env=None, **kw):
    return subprocess.run(["bash", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300, **kw)


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_gpu_prepare_list_is_pinned_in_dependency_order():
    r = _bash([os.path.join("benchmarks", "gpu_prepare.sh"), "--list"])  # no network
    assert r.returncode == 0, r.stderr
    specs = r.stdout.split()
    names = [s.split("==")[0] for s in specs]
    assert all("==" in s for s in specs), specs
    for peer, version in [("snntorch", "1.0.0"), ("spikingjelly", "2.0.0"), ("norse", "1.1.0"),
                          ("sinabs", "3.1.3")]:
        assert f"{peer}=={version}" in specs
    # each import-time need comes before what imports it (the order gpu_check.sh installs in)
    for need, user in [("loguru", "spikingjelly"), ("nir", "nirtorch"), ("nirtorch", "norse"),
                       ("pbr", "sinabs"), ("nirtorch", "sinabs"), ("matplotlib", "sinabs"),
                       ("pillow", "matplotlib"), ("python-dateutil", "matplotlib"),
                       ("six", "python-dateutil")]:
        assert names.index(need) < names.index(user), (need, user)
    assert len(set(names)) == len(names)
    # nothing that drags in torchvision/torchaudio (version-locked to torch) is carried
    assert not {"torch", "torchvision", "torchaudio"} & set(names)
    small = _bash([os.path.join("benchmarks", "gpu_prepare.sh"), "--no-mpl", "--list"]).stdout.split()
    assert "matplotlib==3.11.2" not in small and "sinabs==3.1.3" in small
    bad = _bash([os.path.join("benchmarks", "gpu_prepare.sh"), "--bogus"])
    assert bad.returncode == 2 and "--bogus" in bad.stderr


def _probe_wheel(folder):
    """A minimal pure-Python wheel (name ``gpucheckprobe``), built by hand: no network."""
    import zipfile

    files = {
        "gpucheckprobe/__init__.py": "VALUE = 42\n",
        "gpucheckprobe-0.1.dist-info/METADATA": "Metadata-Version: 2.1\nName: gpucheckprobe\nVersion: 0.1\n",
        "gpucheckprobe-0.1.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: test\n"
                                             "Root-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join(f"{n},,\n" for n in files) + "gpucheckprobe-0.1.dist-info/RECORD,,\n"
    path = folder / "gpucheckprobe-0.1-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        for n, text in files.items():
            z.writestr(n, text)
        z.writestr("gpucheckprobe-0.1.dist-info/RECORD", record)
    return path


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_gpu_check_installs_carried_wheels_offline(tmp_path):
    """Step 1 alone: pip --no-index --no-deps --target from the wheel folder, logged per package."""
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    _probe_wheel(wheels)
    site = tmp_path / "site"
    env = dict(os.environ, OUT=str(tmp_path / "out"), PYTHON=sys.executable, PYTHONPATH=ROOT,
               GPU_CHECK_INSTALL_ONLY="1", GPU_CHECK_WHEELS=str(wheels), GPU_CHECK_SITE=str(site),
               PIP_NO_INDEX="1")
    script = os.path.join("benchmarks", "gpu_check.sh")
    r = _bash([script, "--dry-run"], env=env)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    log = (tmp_path / "out" / "install.log").read_text()
    assert "ok       gpucheckprobe <- " in log, log
    assert (site / "gpucheckprobe" / "__init__.py").exists()
    got = subprocess.run([sys.executable, "-c", "import gpucheckprobe; print(gpucheckprobe.VALUE)"],
                         env=dict(os.environ, PYTHONPATH=str(site)), capture_output=True, text=True)
    assert got.stdout.strip() == "42", got.stderr
    # every pinned package is accounted for: present here, installed, or reported as missing
    listed = _bash([os.path.join("benchmarks", "gpu_prepare.sh"), "--list"]).stdout.split()
    for spec in listed:
        name = spec.split("==")[0]
        assert any(line.split()[:2] in (["present", name], ["ok", name])
                   or line.split() == ["NO", "WHEEL", name] for line in log.splitlines()), (name, log)
    assert "install:" in (tmp_path / "out" / "gpu_check.log").read_text()
    assert "GPU_CHECK_INSTALL_ONLY" in r.stdout and not (tmp_path / "out" / "roofline.md").exists()
    # a second run finds it installed and leaves it
    r = _bash([script, "--dry-run"], env=env)
    assert r.returncode == 0
    assert "present  gpucheckprobe 0.1" in (tmp_path / "out" / "install.log").read_text()
