"""Command-line options wired in issue 12/13: the tonic options of the recorded data sets,
``--adaptive-alpha [Q]``, ``--stats-every-epoch`` / ``fit(stats=True)`` and ``eval --stats``."""

import json
import warnings

import pytest
import torch
from torch import nn

from surrogate_nets import cli, data, layers, neurons, stats, surrogate, train
from surrogate_nets.train import RunConfig, build_data_for

tonic = pytest.importorskip("tonic")
pytest.importorskip("h5py")
from dataset_files import make_dvsgesture, make_nmnist, make_shd  # noqa: E402

QUICK = ["--limit-train", "96", "--limit-test", "64", "--hidden", "16", "--time-steps", "6",
         "--no-progress", "--no-plots"]


def run_cli(*args):
    return cli.main([str(a) for a in args])


def strict_json(line):
    """``json.loads`` that refuses NaN/Infinity (strict JSON)."""
    def bad(c):
        raise ValueError(f"non-standard JSON constant {c}")
    return json.loads(line, parse_constant=bad)


def records(out):
    return [strict_json(l) for l in (out / "metrics.jsonl").read_text().splitlines()]


def first_batch(loader):
    return next(iter(loader))


@pytest.fixture(scope="module")
def nmnist_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("nmnist")
    make_nmnist(root, per_digit=2, events=60)
    return root


# ------------------------------------------------------------------ tonic options: wiring
def cfg_of(**given):
    return RunConfig.resolve({k: v for k, v in given.items()})


def test_recorded_options_reach_get_dataset(nmnist_dir, tmp_path):
    """Each option gives the loader exactly what data.get_dataset gives with its keyword."""
    make_shd(tmp_path, n=4)
    make_dvsgesture(tmp_path, users=range(1, 3), labels=range(3))
    cases = [
        (dict(dataset="nmnist", data_dir=str(nmnist_dir), frames="count", time_steps=5),
         dict(frames="count", time_steps=5)),
        (dict(dataset="shd", data_dir=str(tmp_path), time_steps=10, duration_ms=1000.0),
         dict(time_steps=10, duration_us=1_000_000)),
        (dict(dataset="dvsgesture", data_dir=str(tmp_path), time_steps=4, denoise=3000),
         dict(time_steps=4, denoise_us=3000)),
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # partial folders
        for given, kw in cases:
            bundle = build_data_for(cfg_of(**given, batch_size=64))
            x, y = first_batch(bundle.test)
            ds = data.get_dataset(given["dataset"], data_dir=given["data_dir"], train=False, **kw)
            ref = torch.stack([ds[i][0] for i in range(len(ds))], 1)
            assert torch.equal(x, ref), given
            assert bundle.input_shape == tuple(ref.shape[2:])
            # the option changes the frames (else the comparison above proves nothing)
            plain = data.get_dataset(given["dataset"], data_dir=given["data_dir"], train=False,
                                     time_steps=kw["time_steps"])
            assert not torch.equal(ref, torch.stack([plain[i][0] for i in range(len(plain))], 1))


def test_events_per_frame_pads_and_drop_event_is_train_only(nmnist_dir, tmp_path):
    cache = tmp_path / "cache"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        cfg = cfg_of(dataset="nmnist", data_dir=str(nmnist_dir), events_per_frame=7,
                     drop_event=0.5, cache_dir=str(cache), batch_size=64)
        assert cfg.time_steps is None and cfg.frames is None
        bundle = build_data_for(cfg)
        xt, _ = first_batch(bundle.test)
        ds = data.get_dataset("nmnist", data_dir=nmnist_dir, train=False, events_per_frame=7)
        lengths = [ds[i][0].shape[0] for i in range(len(ds))]
        assert len(set(lengths)) > 1 and xt.shape[0] == max(lengths)    # variable T, padded
        for i in range(len(ds)):                                         # zero frames after the end
            assert torch.equal(xt[:lengths[i], i], ds[i][0]) and not xt[lengths[i]:, i].any()
        # training split: about half of the events dropped, anew on every access
        tr = bundle.train.dataset
        full = data.get_dataset("nmnist", data_dir=nmnist_dir, train=True, events_per_frame=7)
        kept = sum(float(tr[i][0].sum()) for i in range(len(tr)))
        total = sum(float(full[i][0].sum()) for i in range(len(full)))
        assert 0.3 * total < kept < 0.7 * total
        assert not torch.equal(tr[0][0], tr[0][0]) or not torch.equal(tr[1][0], tr[1][0])
    # the test split is cached, the training split is not (the cache would freeze the drop)
    assert list((cache / "nmnist").iterdir()) == [cache / "nmnist" / "test"]


def test_nmnist_train_eval_resume_with_tonic_options(nmnist_dir, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["--dataset", "nmnist", "--data-dir", nmnist_dir, "--frames", "count",
            "--denoise", 300000, "--drop-event", 0.3, "--cache-dir", tmp_path / "cache",
            "--time-steps", 4, "--hidden", 16, "--batch-size", 8, "--no-progress", "--no-plots"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        assert run_cli("train", *args, "--epochs", 1, "--out", out) == 0
        stored = json.loads((out / "config.json").read_text())
        assert (stored["frames"], stored["denoise"], stored["drop_event"]) == ("count", 300000, 0.3)
        assert "cache_dir" not in stored  # where to cache is not part of the run
        assert run_cli("train", "--out", out, "--resume", "--epochs", 2, "--data-dir", nmnist_dir,
                       "--no-progress", "--no-plots") == 0
        assert [r["epoch"] for r in records(out)] == [1, 2]
        # a resume that changes a data option is refused
        assert run_cli("train", "--out", out, "--resume", "--epochs", 3, "--data-dir", nmnist_dir,
                       "--frames", "time", "--no-progress") == 1
        assert "frames" in capsys.readouterr().err
        capsys.readouterr()
        assert run_cli("eval", out / "last.pt", "--data-dir", nmnist_dir, "--json",
                       "--no-progress") == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert res["samples"] == 20 and res["acc"] == res["stored_test_acc"]


@pytest.mark.parametrize("extra, text", [
    (["--frames", "count"], "--frames count: applies to the recorded data sets"),
    (["--denoise", "100"], "--denoise: applies to the recorded data sets"),
    (["--cache-dir", "c"], "--cache-dir: applies to the recorded data sets"),
    (["--events-per-frame", "5"], "--dataset digits is binned in memory"),
    (["--duration-ms", "300"], "--duration-ms: applies"),
    (["--drop-event", "0.1", "--dataset", "randman"], "randman is generated"),
    (["--dataset", "shd", "--denoise", "100"], "shd events have no y"),
    (["--dataset", "nmnist", "--events-per-frame", "5", "--time-steps", "4"],
     "does not go with --time-steps 4"),
    (["--dataset", "nmnist", "--events-per-frame", "5", "--frames", "time"],
     "does not go with --frames time"),
    (["--dataset", "nmnist", "--events-per-frame", "5", "--duration-ms", "300"],
     "does not go with --events-per-frame"),
    (["--dataset", "shd", "--frames", "count", "--duration-ms", "300"],
     "does not go with --frames count"),
    (["--dataset", "nmnist", "--drop-event", "1"], "--drop-event: expected a probability in (0, 1)"),
    (["--dataset", "nmnist", "--frames", "bins"], "invalid choice: 'bins'"),
    (["--dataset", "nmnist", "--denoise", "0"], "--denoise: expected a positive integer"),
    (["--adaptive-alpha", "--learn-alpha"], "choose one"),
    (["--adaptive-alpha", "1"], "--adaptive-alpha: expected a fraction in (0, 1)"),
    (["--adaptive-alpha", "0"], "--adaptive-alpha: expected a fraction in (0, 1)"),
])
def test_options_that_do_not_apply_are_refused(extra, text, tmp_path, capsys):
    with pytest.raises(SystemExit) if "invalid choice" in text or "expected a" in text \
            else _no_raise():
        code = run_cli("train", "--out", tmp_path / "o", *extra)
        assert code == 2
    err = capsys.readouterr().err
    assert text in err and "Traceback" not in err
    assert not (tmp_path / "o" / "config.json").exists()


class _no_raise:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_checkpoints_without_the_new_options_still_resolve():
    old = RunConfig.resolve({}).run_dict()
    for k in ("cache_dir", "denoise", "frames", "events_per_frame", "duration_ms", "drop_event",
              "adaptive_alpha", "stats_every_epoch"):
        old.pop(k, None)
    cfg = RunConfig.resolve({}, old)
    assert cfg.adaptive_alpha is None and cfg.frames is None and cfg.time_steps == 12
    assert train.rundir.config_differences(old, RunConfig.resolve({}, old).run_dict()) == []


# ------------------------------------------------------------------ --adaptive-alpha
def test_adaptive_alpha_train_eval_resume(tmp_path, capsys):
    full, part = tmp_path / "full", tmp_path / "part"
    args = [*QUICK, "--alpha", 50, "--adaptive-alpha", 0.3, "--scheduler", "constant"]
    assert run_cli("train", *args, "--epochs", 3, "--out", full) == 0
    assert run_cli("train", *args, "--epochs", 2, "--out", part) == 0
    assert run_cli("train", "--out", part, "--resume", "--epochs", 3, "--no-progress",
                   "--no-plots") == 0
    a = torch.load(full / "last.pt", weights_only=True)["model"]
    b = torch.load(part / "last.pt", weights_only=True)["model"]
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    # the model builder made Adaptive surrogates with q = 0.3, started at 50; alpha moved
    cfg = RunConfig.resolve({}, torch.load(full / "last.pt", weights_only=True)["config"])
    assert cfg.adaptive_alpha == 0.3
    model = train.build_model_for(cfg, (2, 20, 20), 10)
    sgs = [m for m in model.modules() if isinstance(m, surrogate.Adaptive)]
    assert len(sgs) == 1 and sgs[0].fraction == 0.3 and float(sgs[0].alpha) == 50.0
    model.load_state_dict(a)  # strict: the keys of the rebuilt model match
    alpha_keys = [k for k in a if k.endswith("fixed_alpha") and ".base." not in k]
    assert alpha_keys and all(abs(float(a[k]) - 50.0) > 1.0 for k in alpha_keys)
    capsys.readouterr()
    assert run_cli("eval", full / "last.pt", "--json", "--no-progress") == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert res["acc"] == res["stored_test_acc"]


def test_adaptive_alpha_bare_flag_is_0_2(tmp_path):
    args = cli.build_parser().parse_args(["train", "--adaptive-alpha", "--epochs", "1"])
    assert args.adaptive_alpha == 0.2 and args.epochs == 1
    sg = train.models.make_neuron("lif", surrogate="atan", adaptive_alpha=0.2).surrogate
    assert isinstance(sg, surrogate.Adaptive) and isinstance(sg.base, surrogate.ATan)
    with pytest.raises(ValueError, match="choose one"):
        train.models.make_neuron("lif", adaptive_alpha=0.2, learn_alpha=True)


# ------------------------------------------------------------------ activity statistics
def digits_loaders(n_train=64, n_test=48, T=6):
    b = train.datasets.build_data("digits", time_steps=T, batch_size=32, limit_train=n_train,
                                  limit_test=n_test)
    return b.train, b.test


def test_fit_stats_logs_totals_per_epoch(tmp_path):
    tr, te = digits_loaders()
    torch.manual_seed(0)
    model = layers.Sequential(layers.Flatten(), nn.Linear(800, 24), neurons.LIF(tau=4.0),
                              nn.Linear(24, 10), neurons.LI(tau=4.0))
    from surrogate_nets import losses
    hist = train.fit(model, losses.get("membrane-ce"), tr, te, epochs=2, out_dir=tmp_path / "r",
                     progress=False, verbose=False, plot=False, stats=True)
    recs = records(tmp_path / "r")
    assert [r["epoch"] for r in recs] == [1, 2]
    for k in train.activity.KEYS:
        assert isinstance(recs[-1][k], float), k
    # the logged totals are those of surrogate_nets.stats on the whole test set
    x = torch.cat([xb for xb, _ in te], 1)
    st = stats.activity_stats(model.eval(), x)
    last = hist.last
    assert last["stats_firing_rate"] == pytest.approx(st.totals["firing_rate"], rel=1e-6)
    assert last["stats_synops"] == pytest.approx(st.totals["synops"], rel=1e-6)
    assert last["stats_macs"] == pytest.approx(800 * 24 + 24 * 10)
    assert last["stats_energy_ratio"] == pytest.approx(st.energy()["ratio"], rel=1e-6)
    assert last["stats_firing_rate"] == pytest.approx(last["test_rate"], rel=1e-6)  # one layer
    assert 0 < last["stats_sparsity"] < 1


def test_fit_stats_nan_safe_and_needs_a_test_loader(tmp_path):
    tr, te = digits_loaders(32, 16)
    model = layers.Sequential(layers.Flatten(), nn.Linear(800, 10))  # no spiking layer: NaN rate
    from surrogate_nets import losses
    train.fit(model, losses.get("tet"), tr, te, epochs=1, out_dir=tmp_path / "r",
              progress=False, verbose=False, plot=False, stats=True)
    rec = records(tmp_path / "r")[0]
    assert rec["stats_firing_rate"] is None and rec["stats_macs"] == 8000.0
    with pytest.raises(ValueError, match="test_loader"):
        train.fit(model, losses.get("tet"), tr, None, epochs=1, stats=True, progress=False)
    with pytest.raises(TypeError, match="stats"):
        train.fit(model, losses.get("tet"), tr, te, epochs=1, stats="yes", progress=False)


def test_stats_every_epoch_flag_and_eval_stats(tmp_path, capsys):
    out = tmp_path / "run"
    assert run_cli("train", *QUICK, "--epochs", 1, "--stats-every-epoch", "--out", out) == 0
    rec = records(out)[0]
    assert rec["stats_synops"] > 0 and rec["stats_macs"] == 800 * 16 + 16 * 10
    capsys.readouterr()
    assert run_cli("eval", out / "last.pt", "--stats", "--no-progress") == 0
    text = capsys.readouterr().out
    for word in ("layer", "rate", "sparsity", "MACs", "SynOps", "total",
                 "energy per sample (estimate"):
        assert word in text, word
    assert run_cli("eval", out / "last.pt", "--stats", "--json", "--no-progress") == 0
    res = strict_json(capsys.readouterr().out.strip().splitlines()[-1])
    t = res["stats"]["totals"]
    assert t["firing_rate"] == pytest.approx(rec["stats_firing_rate"], rel=1e-6)
    assert t["synops"] == pytest.approx(rec["stats_synops"], rel=1e-6)
    assert [l["kind"] for l in res["stats"]["layers"]] == ["Linear", "LIF", "Linear"]
    assert res["stats"]["layers"][0]["firing_rate"] is None  # NaN written as null
