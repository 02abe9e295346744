"""The ``surrogate-nets`` command line: train/eval, resume after SIGKILL, bad input, torchrun."""

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest
import torch

from surrogate_nets import cli, train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# small and fast: 192 training samples (3 batches of 64), 96 test samples, a narrow MLP
QUICK = ["--limit-train", "192", "--limit-test", "96", "--hidden", "32", "--time-steps", "6",
         "--no-progress", "--no-plots"]


def run_cli(*args):
    return cli.main([str(a) for a in args])


def params(path):
    return torch.load(path, weights_only=True)["model"]


def assert_same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "run"
    assert run_cli("train", *QUICK, "--epochs", 2, "--out", out) == 0
    return out


def test_train_writes_outputs(trained, capsys):
    out = trained
    for name in ("last.pt", "best.pt", "metrics.jsonl", "config.json"):
        assert (out / name).is_file(), name
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["dataset"] == "digits" and cfg["model"] == "mlp" and cfg["epochs"] == 2
    assert cfg["input_shape"] == [2, 20, 20] and cfg["num_classes"] == 10
    recs = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in recs] == [1, 2]
    assert recs[-1]["test_acc"] > 0.3  # learns something in 2 tiny epochs
    ck = torch.load(out / "last.pt", weights_only=True)
    assert ck["config"]["hidden"] == 32 and ck["epoch"] == 2


def test_eval_recomputes_stored_accuracy(trained, capsys):
    assert run_cli("eval", trained / "last.pt", "--json", "--no-progress") == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert res["samples"] == 96
    assert res["acc"] == res["stored_test_acc"]
    assert run_cli("eval", trained / "best.pt", "--no-progress") == 0
    assert "test accuracy" in capsys.readouterr().out


def test_existing_out_dir_is_refused(trained, capsys):
    assert run_cli("train", *QUICK, "--epochs", 1, "--out", trained) == 2
    err = capsys.readouterr().err
    assert "already exists" in err and "--resume" in err and "--overwrite" in err


def test_overwrite_replaces_run(tmp_path, capsys):
    out = tmp_path / "r"
    assert run_cli("train", *QUICK, "--epochs", 1, "--out", out) == 0
    assert run_cli("train", *QUICK, "--epochs", 1, "--seed", 3, "--out", out, "--overwrite") == 0
    assert json.loads((out / "config.json").read_text())["seed"] == 3
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 1


@pytest.mark.parametrize("args, expected", [
    (["--dataset", "mnist-foo"], "invalid choice: 'mnist-foo' (choose from 'digits', 'randman'"),
    (["--model", "transformer"], "invalid choice: 'transformer' (choose from 'mlp', 'conv', 'recurrent')"),
    (["--neuron", "hodgkin"], "invalid choice: 'hodgkin'"),
    (["--epochs", "-1"], "argument --epochs: expected a positive integer"),
    (["--weight-bits", "40"], "argument --weight-bits: expected a bit width >= 1 (at most 16)"),
])
def test_bad_options_list_valid_values(args, expected, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["train", *args])
    assert exc.value.code == 2
    assert expected in capsys.readouterr().err


def test_unknown_loss_and_surrogate_list_valid_names(tmp_path, capsys):
    assert run_cli("train", *QUICK, "--loss", "hinge-xyz", "--out", tmp_path / "a") == 2
    err = capsys.readouterr().err
    assert "unknown loss 'hinge-xyz'" in err and "rate-ce" in err and "membrane-ce" in err
    assert run_cli("train", *QUICK, "--surrogate", "wiggle", "--out", tmp_path / "b") == 2
    err = capsys.readouterr().err
    assert "unknown surrogate 'wiggle'" in err and "atan" in err
    assert run_cli("train", *QUICK, "--loss-kw", "no_equals_sign", "--out", tmp_path / "c") == 2
    assert "key=value" in capsys.readouterr().err
    assert not (tmp_path / "a").exists()


def test_no_command_prints_help(capsys):
    assert cli.main([]) == 2
    assert "train" in capsys.readouterr().err


def test_corrupt_checkpoint_is_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00garbage" * 10)
    assert run_cli("eval", bad) == 1
    assert "corrupt" in capsys.readouterr().err
    assert run_cli("eval", tmp_path / "missing.pt") == 1
    assert "does not exist" in capsys.readouterr().err
    out = tmp_path / "r"
    assert run_cli("train", *QUICK, "--epochs", 1, "--out", out) == 0
    data = (out / "last.pt").read_bytes()
    (out / "last.pt").write_bytes(data[:1000])
    assert run_cli("train", *QUICK, "--epochs", 2, "--out", out, "--resume") == 1
    assert "corrupt or truncated" in capsys.readouterr().err


def test_incompatible_checkpoint_is_a_clear_error(trained, tmp_path, capsys):
    ck = torch.load(trained / "last.pt", weights_only=True)
    ck["config"]["hidden"] = 48  # the stored weights no longer fit the stored config
    train.save_checkpoint(ck, tmp_path / "mismatch.pt")
    assert run_cli("eval", tmp_path / "mismatch.pt") == 1
    err = capsys.readouterr().err
    assert "does not fit this model" in err and "shape mismatch" in err
    ck["config"] = {"something": "else"}  # e.g. written by train.fit from a script
    train.save_checkpoint(ck, tmp_path / "noconfig.pt")
    assert run_cli("eval", tmp_path / "noconfig.pt") == 1
    assert "no usable command-line configuration" in capsys.readouterr().err


def test_resume_with_conflicting_options_is_refused(tmp_path, capsys):
    out = tmp_path / "r"
    assert run_cli("train", *QUICK, "--epochs", 1, "--out", out) == 0
    assert run_cli("train", *QUICK, "--epochs", 2, "--hidden", 64, "--out", out, "--resume") == 1
    err = capsys.readouterr().err
    assert "different configuration" in err and "hidden" in err
    # omitted options come from the stored configuration
    assert run_cli("train", "--out", out, "--resume", "--epochs", 2, "--no-progress", "--no-plots") == 0
    assert torch.load(out / "last.pt", weights_only=True)["epoch"] == 2


def test_nan_loss_plugin_stops_with_clear_message(tmp_path, capsys):
    plugin = tmp_path / "nanloss.py"
    plugin.write_text(textwrap.dedent("""
        import torch
        from surrogate_nets.losses import MembraneCrossEntropy

        class NaNLoss(MembraneCrossEntropy):
            calls = 0
            def forward(self, output, target):
                if torch.is_grad_enabled():
                    NaNLoss.calls += 1
                    if NaNLoss.calls > 4:          # epoch 2, batch 2
                        return super().forward(output, target) * float("nan")
                return super().forward(output, target)
    """))
    out = tmp_path / "r"
    assert run_cli("train", *QUICK, "--epochs", 3, "--loss", f"{plugin}:NaNLoss", "--readout", "li",
                   "--out", out) == 1
    err = capsys.readouterr().err
    assert "nan at epoch 2, batch 2" in err and "last good checkpoint (epoch 1)" in err
    assert torch.load(out / "last.pt", weights_only=True)["epoch"] == 1


def test_quantized_and_other_models_train(tmp_path):
    for i, extra in enumerate([["--weight-bits", 4, "--act-bits", 6],
                               ["--model", "recurrent", "--neuron", "alif"],
                               ["--model", "conv", "--hidden", 16, "--limit-train", 64]]):
        out = tmp_path / f"m{i}"
        assert run_cli("train", *QUICK, "--epochs", 1, "--out", out, *extra) == 0
        cfg = json.loads((out / "config.json").read_text())
        assert cfg["epochs"] == 1
    ck = torch.load(tmp_path / "m0" / "last.pt", weights_only=True)
    assert any("step" in k for k in ck["model"])  # the quantizers' learnable steps are saved


def test_learn_alpha_with_alpha_lr(tmp_path, capsys):
    out = tmp_path / "a"
    assert run_cli("train", *QUICK, "--epochs", 1, "--learn-alpha", "--alpha-lr", 0.02, "--out", out) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["learn_alpha"] is True and cfg["alpha_lr"] == 0.02 and cfg["fit"]["alpha_lr"] == 0.02
    ck = torch.load(out / "last.pt", weights_only=True)
    groups = ck["optimizer"]["param_groups"]
    assert [g["initial_lr"] for g in groups] == [2e-3, 0.02]   # weights at --lr, alphas at --alpha-lr
    n_alpha = sum(k.endswith("raw_alpha") for k in ck["model"])
    assert n_alpha >= 1 and len(groups[1]["params"]) == n_alpha
    # resumes with the stored alpha_lr; a different one is refused
    assert run_cli("train", "--out", out, "--resume", "--epochs", 2, "--no-progress", "--no-plots") == 0
    assert run_cli("train", "--out", out, "--resume", "--epochs", 3, "--alpha-lr", 0.05,
                   "--no-progress", "--no-plots") == 1
    assert "alpha_lr" in capsys.readouterr().err
    # without --learn-alpha the option is stored but ignored, with a warning
    out2 = tmp_path / "b"
    assert run_cli("train", *QUICK, "--epochs", 1, "--alpha-lr", 0.02, "--out", out2) == 0
    assert "--alpha-lr 0.02 has no effect without --learn-alpha" in capsys.readouterr().err
    assert json.loads((out2 / "config.json").read_text())["alpha_lr"] == 0.02
    assert len(torch.load(out2 / "last.pt", weights_only=True)["optimizer"]["param_groups"]) == 1


KILLER = textwrap.dedent("""
    import os, signal, sys, torch
    import surrogate_nets.losses as L
    from surrogate_nets import cli

    real_get = L.get
    calls = [0]

    def get(name, **kw):  # the loss used by the CLI kills the process at training step 5
        loss = real_get(name, **kw)
        forward = loss.forward

        def killing_forward(output, target):
            if torch.is_grad_enabled():
                calls[0] += 1
                if calls[0] == 5:            # epoch 2 of 3-batch epochs, after epoch 1's checkpoint
                    os.kill(os.getpid(), signal.SIGKILL)
            return forward(output, target)

        loss.forward = killing_forward
        return loss

    L.get = get
    sys.exit(cli.main(sys.argv[1:]))
""")


def test_resume_after_sigkill_matches_uninterrupted_run(tmp_path):
    args = [*QUICK, "--epochs", 3]
    full = tmp_path / "full"
    assert run_cli("train", *args, "--out", full) == 0

    part = tmp_path / "part"
    script = tmp_path / "killer.py"
    script.write_text(KILLER)
    proc = subprocess.run([sys.executable, str(script), "train", *map(str, args), "--out", str(part)],
                          env=dict(os.environ, PYTHONPATH=ROOT), capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert torch.load(part / "last.pt", weights_only=True)["epoch"] == 1  # killed mid-epoch 2

    assert run_cli("train", *args, "--out", part, "--resume") == 0
    assert_same(params(full / "last.pt"), params(part / "last.pt"))
    recs = [json.loads(l) for l in (part / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in recs] == [1, 2, 3]
    full_recs = [json.loads(l) for l in (full / "metrics.jsonl").read_text().splitlines()]
    assert [r["test_acc"] for r in recs] == [r["test_acc"] for r in full_recs]


def test_python_m_entry_point_and_torchrun(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "surrogate_nets", "--version"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "surrogate-nets" in proc.stdout
    out = tmp_path / "ddp"
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                           "--rdzv_backend=c10d", "--rdzv_endpoint=localhost:0", "-m",
                           "surrogate_nets", "train", *QUICK, "--epochs", "1", "--out", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ck = torch.load(out / "last.pt", weights_only=True)
    assert ck["config"]["fit"]["world_size"] == 2
    assert proc.stdout.count("final test accuracy") == 1  # rank 0 alone reports


def test_eval_finds_a_relative_loss_file_from_another_directory(tmp_path, monkeypatch, capsys):
    plugin_dir = tmp_path / "proj"
    plugin_dir.mkdir()
    (plugin_dir / "myloss.py").write_text(textwrap.dedent("""
        from surrogate_nets.losses import MembraneCrossEntropy
        class MyLoss(MembraneCrossEntropy):
            pass
    """))
    monkeypatch.chdir(plugin_dir)
    out = tmp_path / "run"
    assert run_cli("train", *QUICK, "--epochs", 1, "--out", out, "--loss", "myloss.py:MyLoss") == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    # a plug-in named only by the checkpoint is not imported ...
    assert run_cli("eval", out / "best.pt", "--no-progress") == 2
    assert "would import and run that code" in capsys.readouterr().err
    # ... unless named again (a relative path is resolved) or trusted explicitly
    assert run_cli("eval", out / "best.pt", "--no-progress", "--loss", "../proj/myloss.py:MyLoss") == 0
    assert run_cli("eval", out / "best.pt", "--no-progress", "--trust-checkpoint-code") == 0
    # and the run resumes from another directory too (same plug-in file, named again)
    assert run_cli("train", "--out", out, "--resume", "--epochs", 2, "--no-progress", "--no-plots",
                   "--loss", str(plugin_dir / "myloss.py") + ":MyLoss") == 0


# ------------------------------------------------------------------------------ bad input (issue 10)
def cli_exit(args, capsys):
    """Exit status of the command line (argparse errors raise SystemExit) and its stderr."""
    try:
        code = cli.main([str(a) for a in args])
    except SystemExit as e:
        code = e.code
    return code, capsys.readouterr().err


BAD_TRAIN = [  # (extra options, the argument the message must name, more text it must contain)
    (["--epochs", "0"], "--epochs", "positive integer"),
    (["--epochs", "-1"], "--epochs", "positive integer"),
    (["--epochs", "two"], "--epochs", "'two'"),
    (["--lr", "0"], "--lr", "positive"),
    (["--lr", "nan"], "--lr", "positive"),
    (["--alpha", "-1"], "--alpha", "positive"),
    (["--alpha", "inf"], "--alpha", "finite"),
    (["--alpha-lr", "0"], "--alpha-lr", "positive"),
    (["--weight-decay", "-0.1"], "--weight-decay", ">= 0"),
    (["--grad-clip", "0"], "--grad-clip", "positive"),
    (["--tau", "1"], "--tau", "> 1"),
    (["--tau", "x"], "--tau", "'x'"),
    (["--hidden", "0"], "--hidden", "positive"),
    (["--layers", "0"], "--layers", "positive"),
    (["--batch-size", "0"], "--batch-size", "positive"),
    (["--time-steps", "0"], "--time-steps", "positive"),
    (["--limit-train", "0"], "--limit-train", "positive"),
    (["--limit-test", "-5"], "--limit-test", "positive"),
    (["--workers", "-1"], "--workers", ">= 0"),
    (["--seed", "-1"], "--seed", ">= 0"),
    (["--weight-bits", "0"], "--weight-bits", "bit width"),
    (["--weight-bits", "17"], "--weight-bits", "at most 16"),
    (["--act-bits", "40"], "--act-bits", "at most 16"),
    (["--dataset", "mnist-foo"], "--dataset", "invalid choice"),
    (["--model", "transformer"], "--model", "invalid choice"),
    (["--neuron", "hodgkin"], "--neuron", "invalid choice"),
    (["--optimizer", "lbfgs"], "--optimizer", "invalid choice"),
    (["--scheduler", "step"], "--scheduler", "invalid choice"),
    (["--readout", "softmax"], "--readout", "invalid choice"),
    (["--surrogate", "wiggle"], "--surrogate", "unknown surrogate 'wiggle'"),
    (["--surrogate", ""], "--surrogate", "unknown surrogate"),
    (["--loss", "hinge-xyz"], "--loss", "unknown loss 'hinge-xyz'"),
    (["--loss", "mse"], "--loss", "does not train a classifier"),
    (["--loss", "ce"], "--loss", "does not train a classifier"),
    (["--loss", "cross-entropy"], "--loss", "does not train a classifier"),
    (["--loss", "mse-membrane"], "--loss", "does not train a classifier"),
    (["--loss", ""], "--loss", "expected a loss name"),
    (["--loss-kw", "no_equals_sign"], "--loss-kw", "key=value"),
    (["--loss-kw", "1x=2"], "--loss-kw", "key=value"),
    (["--out", ""], "--out", "expected a directory path"),
    (["--resume"], "--resume", "needs --out"),
]


@pytest.mark.parametrize("extra, arg, text", BAD_TRAIN, ids=[" ".join(c[0]) or "empty" for c in BAD_TRAIN])
def test_bad_train_options_exit_2_naming_the_argument(extra, arg, text, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["train", *QUICK, *extra]
    if "--out" not in extra and "--resume" not in extra:
        args += ["--out", tmp_path / "o"]
    code, err = cli_exit(args, capsys)
    assert code == 2, err
    assert arg in err and text in err, err
    assert "Traceback" not in err
    assert not (tmp_path / "o" / "last.pt").exists()


def test_bad_eval_options_exit_2(tmp_path, capsys):
    code, err = cli_exit(["eval", tmp_path / "x.pt", "--batch-size", "0"], capsys)
    assert code == 2 and "--batch-size" in err and "Traceback" not in err


def test_unwritable_or_impossible_out_is_a_usage_error(tmp_path, capsys):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    code, err = cli_exit(["train", *QUICK, "--out", blocker / "sub"], capsys)
    assert code == 2 and "--out" in err and "cannot create" in err and "Traceback" not in err
    code, err = cli_exit(["train", *QUICK, "--out", blocker], capsys)
    assert code == 2 and "not a directory" in err


def test_full_disk_names_the_path_and_the_cause(tmp_path, capsys, monkeypatch):
    import errno
    import surrogate_nets._io as io_mod

    def no_space(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(io_mod.os, "fsync", no_space)
    out = tmp_path / "r"
    code, err = cli_exit(["train", *QUICK, "--epochs", 1, "--out", out], capsys)
    assert code == 1, err
    assert "could not write" in err and str(out) in err and "disk is full" in err
    assert "Traceback" not in err and "enforce fail" not in err


def test_resume_with_fewer_epochs_than_done_is_refused(tmp_path, capsys):
    out = tmp_path / "r"
    assert run_cli("train", *QUICK, "--epochs", 2, "--out", out) == 0
    before = (out / "config.json").read_text()
    code, err = cli_exit(["train", "--out", out, "--resume", "--epochs", 1, "--no-progress"], capsys)
    assert code == 2 and "--epochs 1 is less than the 2 epochs" in err
    assert (out / "config.json").read_text() == before
    # the same number of epochs: nothing to do, nothing changes
    assert run_cli("train", "--out", out, "--resume", "--epochs", 2, "--no-progress", "--no-plots") == 0
    assert json.loads((out / "config.json").read_text())["epochs"] == 2


def test_crafted_checkpoint_runs_no_code(trained, tmp_path, capsys):
    """Issue 10.1: config["loss"] = "os:system" in a checkpoint that loads with weights_only."""
    marker = tmp_path / "pwned"
    ck = torch.load(trained / "last.pt", weights_only=True)
    ck["config"]["loss"] = "os:system"
    ck["config"]["loss_kw"] = {"command": f"touch {marker}"}
    evil = tmp_path / "evil.pt"
    train.save_checkpoint(ck, evil)
    code, err = cli_exit(["eval", evil, "--no-progress"], capsys)
    assert code == 2 and "'os:system'" in err and "--trust-checkpoint-code" in err
    assert not marker.exists()
    # --resume of a run directory holding it: refused the same way
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    train.save_checkpoint(ck, run_dir / "last.pt")
    code, err = cli_exit(["train", "--out", run_dir, "--resume", "--epochs", 3, "--no-progress"], capsys)
    assert code == 2 and "would import and run that code" in err
    assert not marker.exists()
    # even when trusted, only a Module class or a loss function is built: os.system is neither
    code, err = cli_exit(["eval", evil, "--no-progress", "--trust-checkpoint-code"], capsys)
    assert code != 0 and "torch.nn.Module subclass" in err and "Traceback" not in err
    assert not marker.exists()


# ------------------------------------------------------------------------------ research workflow (issue 12.2)
def test_config_file_flags_override_and_resolved_config_is_stored(tmp_path, capsys):
    toml = tmp_path / "run.toml"
    toml.write_text('hidden = 24\nlayers = 2\nlr = 0.005\nneuron = "plif"\nweight-decay = 0.01\n'
                    'loss = "rate-ce"\nloss_kw = {label_smoothing = 0.1}\nlog = "csv"\n')
    out = tmp_path / "r"
    assert run_cli("train", *QUICK, "--epochs", 1, "--config", toml, "--lr", 0.003, "--out", out) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["layers"] == 2 and cfg["neuron"] == "plif" and cfg["loss"] == "rate-ce"
    assert cfg["lr"] == 0.003 and cfg["hidden"] == 32  # flags (QUICK has --hidden 32) win
    assert cfg["weight_decay"] == 0.01 and cfg["fit"]["weight_decay"] == 0.01
    assert cfg["loss_kw"] == {"label_smoothing": 0.1}
    ck = torch.load(out / "last.pt", weights_only=True)
    assert ck["optimizer"]["param_groups"][0]["weight_decay"] == 0.01
    rows = (out / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("epoch,train_loss") and len(rows) == 2


@pytest.mark.parametrize("text, expected", [
    ("lr = -1\n", "lr = -1: --lr: expected a positive"),
    ("hiden = 3\n", "unknown option 'hiden'"),
    ("lr = \n", "not valid TOML"),
    ("learn_alpha = \"yes\"\n", "expected true or false"),
])
def test_bad_config_file_exit_2(tmp_path, capsys, text, expected):
    toml = tmp_path / "bad.toml"
    toml.write_text(text)
    code, err = cli_exit(["train", *QUICK, "--config", toml, "--out", tmp_path / "o"], capsys)
    assert code == 2 and "--config" in err and expected in err and "Traceback" not in err
    code, err = cli_exit(["train", *QUICK, "--config", tmp_path / "none.toml"], capsys)
    assert code == 2 and "cannot read" in err


def test_log_sinks_csv_and_tensorboard(tmp_path):
    pytest.importorskip("tensorboard")  # the test extra installs it
    out = tmp_path / "r"
    assert run_cli("train", *QUICK, "--epochs", 2, "--log", "tensorboard,csv", "--out", out) == 0
    rows = (out / "metrics.csv").read_text().splitlines()
    assert len(rows) == 3 and "test_acc" in rows[0]
    events = list((out / "tensorboard").glob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 100
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    acc = EventAccumulator(str(out / "tensorboard"))
    acc.Reload()
    assert [e.step for e in acc.Scalars("test_acc")] == [1, 2]
    # resumed and extended: each epoch once in the CSV
    assert run_cli("train", "--out", out, "--resume", "--epochs", 3, "--no-progress", "--no-plots") == 0
    assert [r.split(",")[0] for r in (out / "metrics.csv").read_text().splitlines()[1:]] == ["1", "2", "3"]
    with pytest.raises(SystemExit) as exc:
        cli.main(["train", *QUICK, "--log", "wandb", "--out", str(tmp_path / "x")])
    assert exc.value.code == 2


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_amp_trains_and_is_part_of_the_run(tmp_path, amp, capsys):
    out = tmp_path / amp
    assert run_cli("train", *QUICK, "--epochs", 1, "--amp", amp, "--out", out) == 0
    ck = torch.load(out / "last.pt", weights_only=True)
    assert ck["config"]["amp"] == amp and ck["config"]["fit"]["amp"] == amp
    assert (ck["amp"] is not None) == (amp == "fp16")  # the GradScaler state
    assert 0 < ck["history"][-1]["train_loss"] < 10  # finite; accuracy: see the README's table
    code, err = cli_exit(["train", "--out", out, "--resume", "--epochs", 2, "--amp",
                          "fp16" if amp == "bf16" else "bf16", "--no-progress"], capsys)
    assert code == 1 and "amp" in err  # precision is part of the run's configuration


SG_PLUGIN = textwrap.dedent("""
    import torch
    from surrogate_nets.surrogate import Surrogate

    class WideSigmoid(Surrogate):
        name = "wide_sigmoid"
        default_alpha = 2.0

        def primitive(self, x, alpha=None):
            a = self.alpha if alpha is None else alpha
            return torch.sigmoid(a * x)

    def not_a_family():
        return 1
""")


def test_pip_installed_surrogate_family_works_on_the_command_line(tmp_path, monkeypatch):
    """Issue 9.8: surrogates are entry-point plug-ins (group surrogate_nets.surrogates) like losses."""
    from surrogate_nets import surrogate
    (tmp_path / "snl_sg_plugin.py").write_text(SG_PLUGIN)
    info = tmp_path / "snl_sg_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: snl-sg-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[surrogate_nets.surrogates]\nwide-sigmoid = "
                                           "snl_sg_plugin:WideSigmoid\nbroken = snl_sg_plugin:not_a_family\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "wide-sigmoid" in surrogate.names()
    sg = surrogate.get("Wide_Sigmoid", alpha=3.0)   # one normalisation: case, '-' and '_'
    assert type(sg).__name__ == "WideSigmoid" and float(sg.alpha) == 3.0
    with pytest.raises(TypeError, match="not a Surrogate subclass"):
        surrogate.get("broken")
    out = tmp_path / "r"
    assert run_cli("train", *QUICK, "--epochs", 1, "--surrogate", "wide-sigmoid", "--out", out) == 0
    assert json.loads((out / "config.json").read_text())["surrogate"] == "wide-sigmoid"


def test_bf16_reaches_the_float32_accuracy_on_digits(tmp_path):
    """Issue 12.2: bf16 autocast training on DigitEvents is not worse than float32 by more than
    one point (a reduced run: 480 samples, 3 epochs; the full default run: README)."""
    small = ["--limit-train", 480, "--limit-test", 480, "--hidden", 64, "--time-steps", 6,
             "--epochs", 3, "--no-progress", "--no-plots"]
    acc = {}
    for amp in (None, "bf16"):
        out = tmp_path / str(amp)
        assert run_cli("train", *small, *(["--amp", amp] if amp else []), "--out", out) == 0
        acc[amp] = torch.load(out / "last.pt", weights_only=True)["history"][-1]["test_acc"]
    assert acc[None] > 0.6
    assert acc["bf16"] >= acc[None] - 0.01, acc
