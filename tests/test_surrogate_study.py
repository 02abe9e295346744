"""The surrogate study harness runs end to end in --quick mode (no accuracy asserted)."""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(out):
    env = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "surrogate_study.py"), "--quick",
                           "--out", str(out)], env=env, capture_output=True, text=True, timeout=300)


def test_quick_study_runs_writes_results_and_resumes(tmp_path):
    p = _run(tmp_path)
    assert p.returncode == 0, p.stderr[-2000:]
    lines = (tmp_path / "results.jsonl").read_text().splitlines()
    recs = [json.loads(x) for x in lines]
    assert len(recs) == 4 and all("error" not in r for r in recs)
    for r in recs:
        assert 0.0 <= r["acc"] <= 1.0 and len(r["accs"]) == r["epochs"] == 2
        assert len(r["alphas"]) == 3 and all(a > 0 for a in r["alphas"])
    fixed = [r for r in recs if r["mode"] == "fixed"]
    assert all(r["alphas"][0] == r["alphas"][-1] for r in fixed)
    assert (tmp_path / "table.md").read_text().startswith("| data |")
    assert (tmp_path / "acc_vs_steepness_randman.png").stat().st_size > 0
    assert (tmp_path / "alpha_over_epochs.png").stat().st_size > 0
    # resumable: a second call finds every run done and appends nothing
    p2 = _run(tmp_path)
    assert p2.returncode == 0, p2.stderr[-2000:]
    assert len((tmp_path / "results.jsonl").read_text().splitlines()) == 4
    assert "runs to do" not in p2.stdout
