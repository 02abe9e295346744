"""The training API: fit/evaluate, checkpoints (atomic, weights_only), exact resume, NaN guard,
output-directory rules, deterministic data order and a 2-process gloo run."""

import json
import os
import random
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from torch import nn

from surrogate_nets import spike, surrogate, train
from surrogate_nets.train import checkpoint as ckpt_mod
from surrogate_nets.train.loaders import shard_loader
from surrogate_nets.train.distributed import DistInfo

from surrogate_nets.losses import RateCrossEntropy as CE

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ------------------------------------------------------------------------------ helpers
class TinySNN(nn.Module):
    """Linear -> leaky integrate-and-fire (inline) -> Linear, time-major; records its spikes."""

    def __init__(self, n_in=6, hidden=16, n_out=3, sg=None):
        super().__init__()
        self.sg = sg  # a Surrogate module (e.g. with a learnable alpha), or None: the default
        self.fc1 = nn.Linear(n_in, hidden)
        self.fc2 = nn.Linear(hidden, n_out)
        self.recorded = {}

    def forward(self, x):
        v = torch.zeros(x.shape[1], self.fc1.out_features)
        out = []
        for t in range(x.shape[0]):
            v = 0.8 * v + self.fc1(x[t])
            s = spike(v - 1.0, self.sg)
            v = v - s
            out.append(s)
        s = torch.stack(out)
        self.recorded = {"s": s}
        return self.fc2(s)


def toy_data(n=96, T=5, n_in=6, classes=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % classes
    centers = torch.randn(classes, n_in, generator=g) * 1.5
    x = centers[y][:, None, :].expand(n, T, n_in) + 0.5 * torch.randn(n, T, n_in, generator=g)
    return x.clamp(min=0).contiguous(), y


def loaders(batch=16, **kw):
    x, y = toy_data(**kw)
    return (train.TensorLoader(x[:64], y[:64], batch, shuffle=True, seed=1),
            train.TensorLoader(x[64:], y[64:], 32))


def run(out=None, epochs=3, seed=0, learn_alpha=False, **kw):
    torch.manual_seed(123)
    model = TinySNN(sg=surrogate.get("atan", alpha=2.0, learnable=True) if learn_alpha else None)
    tr, te = loaders()
    kw.setdefault("progress", False)
    kw.setdefault("verbose", False)
    kw.setdefault("plot", False)
    hist = train.fit(model, CE(), tr, te, epochs=epochs, lr=1e-2, seed=seed, out_dir=out, **kw)
    return model, hist


def assert_same_params(a, b):
    sa, sb = a.state_dict() if isinstance(a, nn.Module) else a, b.state_dict() if isinstance(b, nn.Module) else b
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


# ------------------------------------------------------------------------------ basics
def test_fit_learns_and_returns_history(tmp_path):
    model, hist = run(tmp_path / "run", epochs=4)
    assert len(hist) == 4 and hist["epoch"] == [1, 2, 3, 4]
    assert hist.last["test_acc"] > 0.8
    assert 0.0 <= hist.last["train_rate"] <= 1.0
    for key in ("train_loss", "train_acc", "test_loss", "test_acc", "lr", "time_s"):
        assert key in hist.last
    out = tmp_path / "run"
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(l)["epoch"] for l in lines] == [1, 2, 3, 4]
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["fit"]["epochs"] == 4 and cfg["fit"]["seed"] == 0
    assert (out / "last.pt").is_file() and (out / "best.pt").is_file()
    assert "best" in hist.table()


def test_evaluate_reproduces_recorded_accuracy(tmp_path):
    model, hist = run(tmp_path / "r", epochs=2)
    _, te = loaders()
    res = train.evaluate(model, te, CE())
    assert res["acc"] == pytest.approx(hist.last["test_acc"], abs=0)
    assert res["loss"] == pytest.approx(hist.last["test_loss"], rel=1e-6)
    assert res["samples"] == 32


def test_metrics_callbacks_and_early_stop():
    seen = []

    def cb(state):
        seen.append(state.record["epoch"])
        return state.record["epoch"] >= 2  # stop after epoch 2

    _, hist = run(None, epochs=5, callbacks=[cb],
                  metrics={"zero_frac": lambda out, y: (out == 0).float().mean()})
    assert seen == [1, 2] and len(hist) == 2 and hist.stopped_early
    assert "train_zero_frac" in hist.last and "test_zero_frac" in hist.last


def test_bad_arguments():
    tr, te = loaders()
    with pytest.raises(TypeError, match="model"):
        train.fit("not a model", CE(), tr)
    with pytest.raises(ValueError, match="epochs"):
        train.fit(TinySNN(), CE(), tr, epochs=-1)
    with pytest.raises(ValueError, match="lr"):
        train.fit(TinySNN(), CE(), tr, lr=0.0)
    with pytest.raises(ValueError, match="unknown optimizer"):
        train.fit(TinySNN(), CE(), tr, optimizer="adamx", progress=False)
    with pytest.raises(ValueError, match="device"):
        train.fit(TinySNN(), CE(), tr, device="tpu", progress=False)


# ------------------------------------------------------------------------------ checkpoints
def test_atomic_checkpoint_write_keeps_old_file(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    old = ckpt_mod.make_checkpoint(model_state={"w": torch.ones(3)}, epoch=1)
    ckpt_mod.save_checkpoint(old, path)
    real_save = torch.save

    def failing_save(obj, fh, *a, **k):
        fh.write(b"PK\x03\x04 half a zip file")  # partial bytes, then the crash
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(ckpt_mod.torch, "save", failing_save)
    new = ckpt_mod.make_checkpoint(model_state={"w": torch.zeros(3)}, epoch=2)
    with pytest.raises(OSError, match="simulated"):
        ckpt_mod.save_checkpoint(new, path)
    monkeypatch.setattr(ckpt_mod.torch, "save", real_save)
    back = ckpt_mod.load_checkpoint(path)
    assert back["epoch"] == 1 and torch.equal(back["model"]["w"], torch.ones(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]  # no temp file left


def test_atomic_write_uses_replace_in_same_dir(tmp_path, monkeypatch):
    calls = []
    real = os.replace

    def spy(src, dst):
        calls.append((os.path.dirname(src), os.path.dirname(dst)))
        return real(src, dst)

    monkeypatch.setattr(ckpt_mod.os, "replace", spy)
    ckpt_mod.save_checkpoint(ckpt_mod.make_checkpoint(model_state={}, epoch=0), tmp_path / "c.pt")
    assert calls == [(str(tmp_path), str(tmp_path))]


def test_checkpoint_loads_with_weights_only(tmp_path):
    model, hist = run(tmp_path / "r", epochs=2, scheduler="cosine")
    raw = torch.load(tmp_path / "r" / "last.pt", weights_only=True)
    assert raw["format"] == "surrogate_nets.checkpoint" and raw["format_version"] == train.FORMAT_VERSION
    assert raw["epoch"] == 2
    assert set(raw) >= {"model", "optimizer", "scheduler", "rng", "config", "history", "best"}
    assert set(raw["rng"]) == {"torch", "cuda", "numpy", "python"}
    assert raw["scheduler"] is not None and raw["optimizer"]["state"]
    assert_same_params(raw["model"], model)
    best = torch.load(tmp_path / "r" / "best.pt", weights_only=True)
    assert best["epoch"] == hist.best["epoch"]


def test_rng_state_roundtrip():
    state = ckpt_mod.rng_state()
    a = (torch.rand(3), np.random.rand(3), [random.random() for _ in range(3)])
    ckpt_mod.set_rng_state(state)
    b = (torch.rand(3), np.random.rand(3), [random.random() for _ in range(3)])
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]


def test_resume_equals_uninterrupted_run(tmp_path):
    full, _ = run(tmp_path / "full", epochs=4)
    part, h2 = run(tmp_path / "part", epochs=2)
    assert len(h2) == 2
    resumed, h = run(tmp_path / "part", epochs=4, resume=True)
    assert h["epoch"] == [1, 2, 3, 4]
    assert_same_params(full, resumed)
    lines = (tmp_path / "part" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(l)["epoch"] for l in lines] == [1, 2, 3, 4]


def test_resume_without_checkpoint_starts_fresh(tmp_path):
    _, h = run(tmp_path / "new", epochs=1, resume=True)
    assert len(h) == 1


def test_resume_with_other_config_is_refused(tmp_path):
    run(tmp_path / "r", epochs=1, config={"hidden": 16})
    with pytest.raises(train.CheckpointError, match="hidden"):
        run(tmp_path / "r", epochs=2, resume=True, config={"hidden": 32})
    with pytest.raises(train.CheckpointError, match="seed"):
        run(tmp_path / "r", epochs=2, resume=True, seed=5, config={"hidden": 16})


def test_resume_with_other_model_is_refused(tmp_path):
    run(tmp_path / "r", epochs=1)
    tr, te = loaders()
    with pytest.raises(train.CheckpointError, match="shape mismatch"):
        train.fit(TinySNN(hidden=8), CE(), tr, te, epochs=2, lr=1e-2,
                  out_dir=tmp_path / "r", resume=True, progress=False, verbose=False, plot=False)


def test_corrupt_checkpoint_gives_clear_error(tmp_path):
    run(tmp_path / "r", epochs=1)
    last = tmp_path / "r" / "last.pt"
    data = last.read_bytes()
    last.write_bytes(data[: len(data) // 2])  # truncated
    with pytest.raises(train.CheckpointError, match="corrupt or truncated"):
        train.load_checkpoint(last)
    with pytest.raises(train.CheckpointError, match="corrupt"):
        run(tmp_path / "r", epochs=2, resume=True)
    last.write_bytes(b"this is not a checkpoint")
    with pytest.raises(train.CheckpointError, match="corrupt"):
        train.load_checkpoint(last)
    torch.save({"just": "a dict"}, last)
    with pytest.raises(train.CheckpointError, match="not a surrogate_nets checkpoint"):
        train.load_checkpoint(last)
    with pytest.raises(train.CheckpointError, match="does not exist"):
        train.load_checkpoint(tmp_path / "missing.pt")


def test_checkpoint_with_pickled_object_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": "surrogate_nets.checkpoint", "obj": TinySNN()}, path)
    with pytest.raises(train.CheckpointError, match="weights_only"):
        train.load_checkpoint(path)


def test_newer_format_version_is_refused(tmp_path):
    ck = ckpt_mod.make_checkpoint(model_state={}, epoch=0)
    ck["format_version"] = train.FORMAT_VERSION + 1
    ckpt_mod.save_checkpoint(ck, tmp_path / "c.pt")
    with pytest.raises(train.CheckpointError, match="format version"):
        train.load_checkpoint(tmp_path / "c.pt")


# ------------------------------------------------------------------------------ NaN guard
class NaNAfter(nn.Module):
    """Cross entropy that returns NaN from training call ``n`` on."""

    def __init__(self, n):
        super().__init__()
        self.n, self.calls = n, 0
        self.ce = CE()

    def forward(self, out, y):
        if torch.is_grad_enabled():
            self.calls += 1
            if self.calls >= self.n:
                return self.ce(out, y) * float("nan")
        return self.ce(out, y)


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    torch.manual_seed(0)
    model = TinySNN()
    tr, te = loaders()  # 4 batches per epoch
    with pytest.raises(FloatingPointError, match=r"nan at epoch 2, batch 3.*last good checkpoint \(epoch 1\)"):
        train.fit(model, NaNAfter(7), tr, te, epochs=3, out_dir=tmp_path / "r", progress=False,
                  verbose=False, plot=False)
    ck = train.load_checkpoint(tmp_path / "r" / "last.pt")
    assert ck["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in ck["model"].values())
    assert len((tmp_path / "r" / "metrics.jsonl").read_text().splitlines()) == 1
    with pytest.raises(train.NonFiniteLossError):
        train.fit(TinySNN(), NaNAfter(1), tr, epochs=1, progress=False, verbose=False)


# ------------------------------------------------------------------------------ output dir
def test_existing_out_dir_is_refused(tmp_path):
    run(tmp_path / "r", epochs=1)
    with pytest.raises(FileExistsError, match="--resume.*--overwrite"):
        run(tmp_path / "r", epochs=1)
    (tmp_path / "r" / "keep.txt").write_text("user file")
    _, h = run(tmp_path / "r", epochs=1, overwrite=True)
    assert len(h) == 1 and (tmp_path / "r" / "keep.txt").exists()
    with pytest.raises(ValueError, match="exclude"):
        run(tmp_path / "r", epochs=1, overwrite=True, resume=True)
    (tmp_path / "empty").mkdir()
    run(tmp_path / "empty", epochs=1)  # an empty directory is fine


# ------------------------------------------------------------------------------ data order
def test_epoch_order_depends_only_on_seed_and_epoch():
    x, y = toy_data(n=40)
    a = train.TensorLoader(x, y, 8, shuffle=True, seed=3)
    b = train.TensorLoader(x, y, 8, shuffle=True, seed=3)
    a.set_epoch(2)
    torch.rand(10)  # global RNG use must not matter
    b.set_epoch(2)
    assert all(torch.equal(p[1], q[1]) for p, q in zip(a, b))
    a.set_epoch(3)
    assert not all(torch.equal(p[1], q[1]) for p, q in zip(a, b))
    xb, yb = next(iter(a))
    assert xb.shape == (5, 8, 6) and yb.shape == (8,)


def test_shuffled_dataloader_is_made_deterministic(tmp_path):
    from torch.utils.data import DataLoader, TensorDataset
    from surrogate_nets.data import collate_time_major

    x, y = toy_data(n=64)
    ds = TensorDataset(x, y)

    def make():
        torch.manual_seed(123)
        model = TinySNN()
        # a DataLoader's own shuffling draws from the global RNG; fit rebuilds it per (seed, epoch)
        dl = DataLoader(ds, batch_size=16, shuffle=True, collate_fn=collate_time_major)
        return model, dl

    m1, dl = make()
    train.fit(m1, CE(), dl, epochs=2, seed=4, progress=False, verbose=False,
              out_dir=tmp_path / "a", plot=False)
    m2, dl = make()
    torch.rand(7)
    train.fit(m2, CE(), dl, epochs=1, seed=4, progress=False, verbose=False,
              out_dir=tmp_path / "b", plot=False)
    m2b, dl = make()
    train.fit(m2b, CE(), dl, epochs=2, seed=4, progress=False, verbose=False,
              out_dir=tmp_path / "b", resume=True, plot=False)
    assert_same_params(m1, m2b)


def test_shards_cover_the_data():
    x, y = toy_data(n=30)
    tl = train.TensorLoader(x, y, 4, shuffle=True, seed=0)
    ids = []
    for r in range(2):
        ev = shard_loader(train.TensorLoader(x, torch.arange(30), 4), DistInfo(r, 2), 0, train=False)
        ids += torch.cat([b[1] for b in ev]).tolist()
    assert sorted(ids) == list(range(30))
    tr0 = shard_loader(tl, DistInfo(0, 2), 0, train=True)
    tr1 = shard_loader(tl, DistInfo(1, 2), 0, train=True)
    assert len(tr0) == len(tr1) == 4


def test_plots_written_when_matplotlib_available(tmp_path):
    pytest.importorskip("matplotlib")
    run(tmp_path / "r", epochs=1, plot=True)
    assert (tmp_path / "r" / "curves.png").stat().st_size > 1000
    assert (tmp_path / "r" / "sample.png").stat().st_size > 1000


# ------------------------------------------------------------------------------ distributed
WORKER = textwrap.dedent("""
    import os, sys, torch
    sys.path.insert(0, {root!r}); sys.path.insert(0, {here!r})
    from test_train import TinySNN, loaders, CE
    from surrogate_nets import train
    torch.set_num_threads(1)
    torch.manual_seed(int(os.environ["RANK"]) * 7 + 1)  # different init per rank: DDP must sync it
    model = TinySNN()
    tr, te = loaders()
    h = train.fit(model, CE(), tr, te, epochs=2, lr=1e-2, out_dir={out!r},
                  progress=False, verbose=False, plot=False)
    torch.save({{k: v for k, v in model.state_dict().items()}},
               os.path.join({out!r}, "params_rank%s.pt" % os.environ["RANK"]))
    with open(os.path.join({out!r}, "acc_rank%s.txt" % os.environ["RANK"]), "w") as fh:
        fh.write(repr(h.last["test_acc"]))
""")


def test_two_process_gloo_run_ends_with_identical_parameters(tmp_path):
    out = tmp_path / "ddp"
    script = tmp_path / "worker.py"
    script.write_text(WORKER.format(root=ROOT, here=os.path.dirname(os.path.abspath(__file__)),
                                    out=str(out)))
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=ROOT)
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                           "--master_port=0", "--rdzv_backend=c10d", "--rdzv_endpoint=localhost:0",
                           str(script)], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    p0 = torch.load(out / "params_rank0.pt", weights_only=True)
    p1 = torch.load(out / "params_rank1.pt", weights_only=True)
    assert_same_params(p0, p1)
    ck = train.load_checkpoint(out / "last.pt")
    assert_same_params(ck["model"], p0)
    assert ck["config"]["fit"]["world_size"] == 2
    assert (out / "acc_rank0.txt").read_text() == (out / "acc_rank1.txt").read_text()
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 2  # rank 0 alone writes


def test_resume_with_more_epochs_replans_cosine_schedule(tmp_path):
    # extending a finished cosine run must not train the extra epochs at lr = 0
    run(tmp_path / "r", epochs=2, scheduler="cosine")
    _, h = run(tmp_path / "r", epochs=4, scheduler="cosine", resume=True)
    assert h["epoch"] == [1, 2, 3, 4]
    lrs = h["lr"]
    assert lrs[2] > 0 and lrs[3] > 0, lrs
    # the remaining epochs follow the cosine of the new total: lr_e = lr0 (1 + cos(pi e / 4)) / 2
    import math
    assert lrs[2] == pytest.approx(1e-2 * (1 + math.cos(math.pi * 2 / 4)) / 2)
    assert lrs[3] == pytest.approx(1e-2 * (1 + math.cos(math.pi * 3 / 4)) / 2)


def test_sample_major_batches_get_a_clear_error():
    # a plain DataLoader over [N, T, ...] gives [B, T, ...] batches; say so instead of a shape error
    from torch.utils.data import DataLoader, TensorDataset
    x, y = toy_data(n=32, T=5)
    dl = DataLoader(TensorDataset(x, y), batch_size=8)
    with pytest.raises(ValueError, match=r"time-major.*\[B, T"):
        train.fit(TinySNN(), CE(), dl, epochs=1, progress=False, verbose=False, plot=False)
    with pytest.raises(ValueError, match=r"time-major"):
        train.evaluate(TinySNN(), dl, CE())


# ------------------------------------------------------------------------------ alpha_lr
def _alpha(model):
    return float(model.sg.alpha.detach())


def test_alpha_lr_puts_learnable_alphas_in_their_own_param_group(tmp_path):
    seen = {}

    def begin(state):
        seen["groups"] = [(list(g["params"]), g["lr"], g["weight_decay"]) for g in state.optimizer.param_groups]

    class Begin:
        on_train_begin = staticmethod(begin)

    model, h = run(tmp_path / "r", epochs=2, learn_alpha=True, alpha_lr=0.05, optimizer="adamw",
                   weight_decay=1e-3, scheduler="cosine", callbacks=[Begin()])
    (rest, lr0, wd0), (sharp, lr1, wd1) = seen["groups"]
    assert len(sharp) == 1 and sharp[0] is model.sg.raw_alpha
    assert (lr1, wd1) == (0.05, 0.0) and (lr0, wd0) == (1e-2, 1e-3)
    others = [p for p in model.parameters() if p is not model.sg.raw_alpha]
    assert len(rest) == len(others) and all(a is b for a, b in zip(rest, others))
    # the cosine schedule scales both groups; each record reports both rates
    assert h["alpha_lr"] == [pytest.approx(0.05), pytest.approx(0.025)]
    assert h["lr"] == [pytest.approx(1e-2), pytest.approx(5e-3)]
    ck = torch.load(tmp_path / "r" / "last.pt", weights_only=True)
    assert ck["config"]["fit"]["alpha_lr"] == 0.05
    assert [g["initial_lr"] for g in ck["optimizer"]["param_groups"]] == [1e-2, 0.05]
    # found by type, not by name: a Surrogate anywhere in the model, once even when shared
    from surrogate_nets.train.loop import alpha_parameters
    shared = surrogate.get("atan", learnable=True)
    net = nn.Sequential(nn.Linear(2, 2), nn.ModuleList([shared, shared]), surrogate.get("atan"))
    assert [id(p) for p in alpha_parameters(net)] == [id(shared.raw_alpha)]


def test_alpha_moves_more_with_alpha_lr():
    base, _ = run(epochs=2, learn_alpha=True)
    fast, _ = run(epochs=2, learn_alpha=True, alpha_lr=0.2)
    moved_base, moved_fast = abs(_alpha(base) - 2.0), abs(_alpha(fast) - 2.0)
    assert moved_base > 0
    assert moved_fast > 3 * moved_base, (moved_base, moved_fast)


def test_alpha_lr_without_learnable_alpha_or_with_a_factory():
    seen = []
    with pytest.warns(UserWarning, match="no learnable surrogate alpha"):
        run(epochs=1, alpha_lr=0.05, callbacks=lambda st: seen.append(len(st.optimizer.param_groups)))
    assert seen == [1]
    tr, _ = loaders()
    with pytest.raises(ValueError, match="alpha_lr applies to a named or default optimizer"):
        train.fit(TinySNN(), CE(), tr, alpha_lr=0.05, optimizer=lambda ps: torch.optim.SGD(ps, lr=0.1))
    with pytest.raises(ValueError, match="alpha_lr"):
        train.fit(TinySNN(), CE(), tr, alpha_lr=-1.0)


def test_resume_with_alpha_lr_equals_uninterrupted_run(tmp_path):
    kw = dict(learn_alpha=True, alpha_lr=0.05, scheduler="cosine")
    full, _ = run(tmp_path / "full", epochs=3, **kw)
    run(tmp_path / "part", epochs=3, callbacks=lambda st: st.epoch == 0, **kw)  # stop after epoch 1
    part, h = run(tmp_path / "part", epochs=3, resume=True, **kw)
    assert h["epoch"] == [1, 2, 3]
    assert_same_params(full, part)
    with pytest.raises(train.CheckpointError, match="alpha_lr"):
        run(tmp_path / "part", epochs=4, resume=True, learn_alpha=True, alpha_lr=0.1, scheduler="cosine")


def test_option_added_later_at_its_default_is_no_config_difference():
    from surrogate_nets.train.loop import config_differences
    old = {"lr": 1e-3, "fit": {"lr": 1e-3}}           # written before alpha_lr existed
    assert config_differences(old, {"lr": 1e-3, "alpha_lr": None, "fit": {"lr": 1e-3, "alpha_lr": None}}) == []
    assert config_differences(old, {"lr": 1e-3, "fit": {"lr": 1e-3, "alpha_lr": 0.1}}) != []


WORKER_QUANT = textwrap.dedent("""
    import os, sys, torch
    sys.path.insert(0, {root!r}); sys.path.insert(0, {here!r})
    from test_train import TinySNN, loaders, CE
    from surrogate_nets import train
    from surrogate_nets.quant import QuantAct
    torch.set_num_threads(1)

    class QuantInput(TinySNN):  # LSQ step initialised from each rank's own first batch
        def __init__(self):
            super().__init__()
            self.q = QuantAct(bits=4, signed=True)

        def forward(self, x):
            return super().forward(self.q(x))

    torch.manual_seed(0)
    model = QuantInput()
    tr, te = loaders()
    train.fit(model, CE(), tr, te, epochs=2, lr=1e-2, out_dir={out!r}, sync_init={sync!r},
              progress=False, verbose=False, plot=False)
    torch.save(dict(model.state_dict()), os.path.join({out!r}, "params_rank%s.pt" % os.environ["RANK"]))
""")


@pytest.mark.parametrize("sync", [True, False])
def test_two_process_data_dependent_init_agrees_across_ranks(tmp_path, sync):
    """Issue 10.2: the LSQ step of a QuantAct, initialised from each rank's first batch after the
    DDP wrap, is made equal on every rank; every parameter and buffer agrees at the end. The
    ``sync=False`` run shows that the test can fail: the ranks then train different models."""
    out = tmp_path / "ddp"
    script = tmp_path / "worker.py"
    script.write_text(WORKER_QUANT.format(root=ROOT, here=os.path.dirname(os.path.abspath(__file__)),
                                          out=str(out), sync=sync))
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=ROOT)
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                           "--rdzv_backend=c10d", "--rdzv_endpoint=localhost:0", str(script)],
                          env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    p0 = torch.load(out / "params_rank0.pt", weights_only=True)
    p1 = torch.load(out / "params_rank1.pt", weights_only=True)
    assert any("step" in k for k in p0)
    if sync:
        assert_same_params(p0, p1)
    else:
        assert any(not torch.equal(p0[k], p1[k]) for k in p0)


# ------------------------------------------------------------------------------ faults
class _Killed(BaseException):
    """Stands for SIGKILL inside the process (not an Exception: nothing may catch it)."""


def _inject_kill(monkeypatch, at: int, after: bool, out):
    """Kill at the ``at``-th atomic rename (before it, leaving a temporary file behind as a real
    SIGKILL would, or right after it)."""
    import surrogate_nets._io as io_mod
    real = os.replace
    calls = [0]

    def replace(src, dst):
        calls[0] += 1
        if calls[0] == at:
            if after:
                real(src, dst)
            else:  # what a SIGKILL during the write leaves: a partial temporary file
                with open(os.path.join(out, f".{os.path.basename(dst)}.dead.tmp"), "wb") as fh:
                    fh.write(b"partial")
            raise _Killed(f"killed at write {at} ({os.path.basename(dst)}, after={after})")
        return real(src, dst)

    monkeypatch.setattr(io_mod.os, "replace", replace)
    return calls


def _count_writes(tmp_path, monkeypatch, epochs):
    calls = _inject_kill(monkeypatch, at=-1, after=False, out=tmp_path)
    run(tmp_path / "count", epochs=epochs)
    monkeypatch.undo()
    return calls[0]


def test_kill_at_every_checkpoint_write_point_then_resume(tmp_path, monkeypatch):
    """Issue 10.3: a kill before or after each atomic write (config, metrics, best.pt, last.pt),
    then a resume: the result equals an uninterrupted run, best.pt holds the epoch that last.pt
    and the history call best, metrics.jsonl lists each epoch once, no temporary file is left."""
    epochs = 3
    ref_model, ref_hist = run(tmp_path / "ref", epochs=epochs)
    n = _count_writes(tmp_path, monkeypatch, epochs)
    assert n >= 2 + epochs  # config + metrics, then at least last.pt per epoch
    for at in range(1, n + 1):
        for after in (False, True):
            out = tmp_path / f"k{at}{'a' if after else 'b'}"
            out.mkdir()
            _inject_kill(monkeypatch, at, after, out)
            with pytest.raises(_Killed):
                run(out, epochs=epochs)
            monkeypatch.undo()
            model, hist = run(out, epochs=epochs, resume=True)
            assert_same_params(model, ref_model)
            assert hist["test_acc"] == ref_hist["test_acc"]
            last = train.load_checkpoint(out / "last.pt")
            best = train.load_checkpoint(out / "best.pt")
            assert best["epoch"] == last["best"]["epoch"] == hist.best["epoch"] == ref_hist.best["epoch"]
            assert not list(out.glob(".*.tmp")), (at, after)
            recs = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines()]
            assert [r["epoch"] for r in recs] == list(range(1, epochs + 1)), (at, after)


def test_stale_best_is_repaired_on_resume(tmp_path):
    out = tmp_path / "r"
    run(out, epochs=2, best_metric="train_loss")  # train loss falls: best = last = epoch 2
    last = train.load_checkpoint(out / "last.pt")
    assert last["best"]["epoch"] == 2
    stale = dict(last, epoch=1)
    train.save_checkpoint(stale, out / "best.pt")  # as if a kill had left an older best.pt
    run(out, epochs=2, resume=True, best_metric="train_loss")
    best = train.load_checkpoint(out / "best.pt")
    assert best["epoch"] == 2
    assert_same_params(best["model"], last["model"])


def test_flipped_bytes_are_refused_and_the_file_kept(tmp_path):
    """Issue 10.11: the CRC of every archive member is checked; a damaged file is refused with a
    clear error and left in place, the other checkpoint still loads."""
    import zipfile
    out = tmp_path / "r"
    run(out, epochs=2)
    path = out / "last.pt"
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = max(zf.infolist(), key=lambda i: i.file_size)  # the largest tensor's bytes
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    data[start + info.file_size // 2] ^= 0x5A
    path.write_bytes(bytes(data))
    with pytest.raises(train.CheckpointError, match="corrupt.*CRC"):
        train.load_checkpoint(path)
    with pytest.raises(train.CheckpointError, match="corrupt"):
        run(out, epochs=3, resume=True)
    assert path.read_bytes() == bytes(data)  # not replaced by the refused resume
    assert train.load_checkpoint(out / "best.pt")["epoch"] >= 1


def test_resume_with_fewer_epochs_than_done_is_refused(tmp_path):
    out = tmp_path / "r"
    run(out, epochs=2)
    before = (out / "config.json").read_text()
    with pytest.raises(ValueError, match="epochs=1 is less than the 2 epochs"):
        run(out, epochs=1, resume=True)
    assert (out / "config.json").read_text() == before


# ------------------------------------------------------------------------------ stateful callbacks
def _annealed(out, epochs, resume=False):
    torch.manual_seed(123)
    model = TinySNN(sg=surrogate.get("atan", alpha=1.0))
    sched = surrogate.AlphaSchedule(model, 1.0, 16.0, steps=3, mode="exp")
    tr, te = loaders()
    train.fit(model, CE(), tr, te, epochs=epochs, lr=1e-2, seed=0, out_dir=out, resume=resume,
              callbacks=[sched], progress=False, verbose=False, plot=False)
    return model, sched


def test_alpha_schedule_state_survives_resume(tmp_path):
    """Issue 10.7: fit steps a schedule once per epoch and saves its state; a resumed annealed
    run ends with the same alpha and parameters as an uninterrupted one."""
    full, s_full = _annealed(tmp_path / "full", 4)
    assert s_full.n == 4 and full.sg.alpha == pytest.approx(16.0)
    _annealed(tmp_path / "part", 2)
    part, s_part = _annealed(tmp_path / "part", 4, resume=True)
    assert s_part.n == 4 and part.sg.alpha == pytest.approx(16.0)
    assert_same_params(part, full)
    assert train.load_checkpoint(tmp_path / "part" / "last.pt")["callbacks"] == [{"n": 4}]
    torch.manual_seed(123)
    model = TinySNN(sg=surrogate.get("atan", alpha=1.0))
    with pytest.raises(train.CheckpointError, match="stateful callbacks at positions \\[0\\]"):
        train.fit(model, CE(), *loaders(), epochs=5, lr=1e-2, out_dir=tmp_path / "part",
                  resume=True, progress=False, verbose=False, plot=False)  # without the schedule
