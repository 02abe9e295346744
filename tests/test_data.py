"""Tests for surrogate_nets.data: DigitEvents, EventCamera, frames, collate, Randman, tonic.

The recorded data sets (N-MNIST, SHD, DVS Gesture) are exercised on small files written here in
their real on-disk formats, read by tonic's real parsers through ``get_dataset``.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from surrogate_nets.data import (
    CACHE_ENV,
    DATASET_NAMES,
    EVENT_DTYPE,
    DigitEvents,
    EventCamera,
    EventsToFrames,
    Randman,
    cache_root,
    collate_padded,
    collate_time_major,
    digits_test_mask,
    events_to_frames,
    get_dataset,
    load_digits,
    saccade_path,
)

tonic = pytest.importorskip("tonic")
h5py = pytest.importorskip("h5py")

from dataset_files import (  # noqa: E402
    link_up_to, make_dvsgesture, make_nmnist, make_shd, write_shd_h5,
)


# --------------------------------------------------------------------------------------------
# DigitEvents
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def digit_root(tmp_path_factory):
    return tmp_path_factory.mktemp("sn_cache")


@pytest.fixture(scope="module")
def digits_train(digit_root):
    return DigitEvents(root=digit_root, train=True)


@pytest.fixture(scope="module")
def digits_test(digit_root, digits_train):
    return DigitEvents(root=digit_root, train=False)  # loads the cache written by digits_train


def test_load_digits_and_split():
    images, labels = load_digits()
    assert images.shape == (1797, 8, 8) and images.dtype == np.uint8
    assert images.max() == 16 and images.min() == 0
    assert labels.shape == (1797,) and set(labels.tolist()) == set(range(10))
    test = digits_test_mask(labels)
    assert test.sum() == 359
    for c in range(10):  # stratified: 20% (+-1) of each class
        n_c = (labels == c).sum()
        assert abs(test[labels == c].sum() - n_c / 5) < 1


def test_digit_events_basic(digits_train, digits_test):
    assert DigitEvents.sensor_size == (20, 20, 2)
    assert len(digits_train) == 1438 and len(digits_test) == 359
    assert not set(digits_train.indices) & set(digits_test.indices)
    events, label = digits_train[0]
    assert isinstance(label, int) and 0 <= label <= 9
    assert events.dtype == EVENT_DTYPE == tonic.io.events_struct
    assert events.dtype.names == ("x", "y", "t", "p")
    assert events["x"].dtype == np.int16 and events["t"].dtype == np.int64
    assert len(events) > 100
    assert np.all(np.diff(events["t"]) >= 0)
    w, h, _ = DigitEvents.sensor_size
    for ds in (digits_train, digits_test):
        ev = ds.events
        assert ev["x"].min() >= 0 and ev["x"].max() < w
        assert ev["y"].min() >= 0 and ev["y"].max() < h
        assert ev["t"].min() >= 0 and ev["t"].max() <= DigitEvents.duration_us
        assert 0.3 < ev["p"].mean() < 0.7  # both polarities
        assert set(ds.targets.tolist()) == set(range(10))
    assert digits_train[-1][1] == int(digits_train.targets[-1])
    with pytest.raises(IndexError):
        digits_train[len(digits_train)]
    with pytest.raises(TypeError, match="index"):
        digits_train[1.5]


def test_digit_events_cache_round_trip(digit_root, digits_train, monkeypatch):
    files = list((digit_root / "digit_events").glob("*.npz"))
    assert len(files) == 1 and files[0] == digits_train.cache_path
    assert not list((digit_root / "digit_events").glob("*.tmp"))  # atomic write left nothing

    def no_convert(*a, **k):
        raise AssertionError("the cache was not used")

    monkeypatch.setattr(DigitEvents, "convert", no_convert)
    again = DigitEvents(root=digit_root, train=True)
    np.testing.assert_array_equal(again.events, digits_train.events)
    np.testing.assert_array_equal(again.targets, digits_train.targets)
    # the environment variable selects the default cache directory
    monkeypatch.setenv(CACHE_ENV, str(digit_root))
    assert cache_root() == digit_root
    from_env = DigitEvents(train=False)
    assert from_env.cache_path == digits_train.cache_path
    # another generator parameter gives another cache key, so it converts instead of loading
    with pytest.raises(AssertionError, match="cache was not used"):
        DigitEvents(root=digit_root, camera=EventCamera(seed=1))


def test_digit_events_deterministic_and_corrupt_cache(digits_train, tmp_path):
    # a damaged cache entry is ignored and rewritten by a fresh conversion, which must reproduce
    # the events bit for bit
    bad = tmp_path / "digit_events" / digits_train.cache_path.name
    bad.parent.mkdir()
    bad.write_bytes(b"not an npz file")
    fresh = DigitEvents(root=tmp_path, train=True)
    assert fresh.cache_path == bad
    np.testing.assert_array_equal(fresh.events, digits_train.events)
    np.testing.assert_array_equal(fresh.offsets, digits_train.offsets)
    assert bad.stat().st_size > 1_000_000


def test_digit_events_tonic_transforms(digits_train):
    events, _ = digits_train[3]
    frames = tonic.transforms.ToFrame(sensor_size=DigitEvents.sensor_size, n_time_bins=10)(events)
    assert frames.shape == (10, 2, 20, 20)
    assert 0.9 * len(events) <= frames.sum() <= len(events)
    denoised = tonic.transforms.Denoise(filter_time=2000)(events)
    assert 0 < len(denoised) < len(events)
    np.random.seed(0)
    dropped = tonic.transforms.DropEvent(p=0.5)(events)
    assert 0.3 * len(events) < len(dropped) < 0.7 * len(events)
    ds = DigitEvents(root=digits_train.root, train=True,
                     transform=tonic.transforms.Compose([
                         tonic.transforms.Denoise(filter_time=2000),
                         tonic.transforms.ToFrame(sensor_size=DigitEvents.sensor_size,
                                                  event_count=200)]),
                     target_transform=lambda y: y + 100)
    x, y = ds[3]
    assert x.shape[1:] == (2, 20, 20) and y == int(digits_train.targets[3]) + 100


def test_as_tensors_matches_transform(digits_train, digits_test):
    x, y = digits_train.as_tensors(8)
    assert x.shape == (1438, 8, 2, 20, 20) and x.dtype == torch.float32
    assert y.dtype == torch.int64 and torch.equal(y, torch.from_numpy(digits_train.targets))
    assert x.sum().item() == len(digits_train.events)
    to_frames = EventsToFrames(DigitEvents.sensor_size, 8, start_us=0,
                               duration_us=DigitEvents.duration_us)
    for i in (0, 77, 1437):
        torch.testing.assert_close(x[i], to_frames(digits_train[i][0]), rtol=0, atol=0)
    assert digits_train.as_tensors(8)[0] is x  # memoised
    xb, _ = digits_train.as_tensors(8, binary=True)
    assert xb.max() == 1
    # the frames are learnable: even a nearest-class-mean classifier does well
    xt, yt = digits_test.as_tensors(8)
    a, b = x.flatten(1), xt.flatten(1)
    means = torch.stack([a[y == c].mean(0) for c in range(10)])
    acc = (torch.cdist(b, means).argmin(1) == yt).float().mean().item()
    assert acc > 0.8


def test_saccade_path():
    t = np.array([0, 50_000, 100_000, 200_000, 300_000, 400_000])
    dx, dy = saccade_path(t, 100_000, 4.0)
    np.testing.assert_allclose(dx, [0, 1, 2, 4, 0, 0])
    np.testing.assert_allclose(dy, [0, 2, 4, 0, 0, 0])


def test_digit_events_bad_args(tmp_path):
    with pytest.raises(TypeError, match="camera"):
        DigitEvents(root=tmp_path, camera="dvs")
    with pytest.raises(TypeError, match="train"):
        DigitEvents(root=tmp_path, train="yes")
    with pytest.raises(ValueError, match="step_us"):
        DigitEvents(root=tmp_path, step_us=0)
    with pytest.raises(TypeError, match="cache_dir"):
        cache_root(3)


# --------------------------------------------------------------------------------------------
# EventCamera
# --------------------------------------------------------------------------------------------
def _step_video(n_frames=21, on_at=5, off_at=None, value=1.0):
    frames = np.zeros((n_frames, 1, 3, 3))
    frames[on_at:, 0, 1, 1] = value
    if off_at is not None:
        frames[off_at:, 0, 1, 1] = 0.0
    return frames


def test_event_camera_threshold_crossings():
    cam = EventCamera(contrast_threshold=0.5, threshold_mismatch=0.0, refractory_us=0,
                      noise_rate_hz=0.0, log_eps=0.1)
    events, offsets = cam.record(_step_video(off_at=12), step_us=1000)
    assert offsets.tolist() == [0, len(events)]
    assert events.dtype == EVENT_DTYPE
    assert set(events["x"].tolist()) == {1} and set(events["y"].tolist()) == {1}
    n_levels = int(np.floor(np.log(1.1 / 0.1) / 0.5))  # = 4 crossings up, 4 down
    on, off = events[events["p"]], events[~events["p"]]
    assert len(on) == n_levels and len(off) == n_levels
    assert on["t"].max() <= 5000 < off["t"].min() <= 12000  # ON while brightening, then OFF
    assert np.all(np.diff(events["t"]) >= 0)


def test_event_camera_refractory_and_noise():
    cam = EventCamera(contrast_threshold=0.5, threshold_mismatch=0.0, refractory_us=3000,
                      noise_rate_hz=0.0)
    events, _ = cam.record(_step_video(), step_us=1000)
    assert len(events) == 4 and np.all(np.diff(events["t"]) >= 3000)  # late, but not lost
    noisy = EventCamera(noise_rate_hz=1000.0, seed=3)
    quiet = np.zeros((101, 4, 3, 3))
    events, offsets = noisy.record(quiet, step_us=1000)  # only noise: 1 kHz * 9 px * 0.1 s
    counts = np.diff(offsets)
    assert np.all(np.abs(counts - 900) < 6 * 30)
    again, _ = EventCamera(noise_rate_hz=1000.0, seed=3).record(quiet, step_us=1000)
    other, _ = EventCamera(noise_rate_hz=1000.0, seed=4).record(quiet, step_us=1000)
    np.testing.assert_array_equal(events, again)
    assert len(other) != len(events) or not np.array_equal(other, events)


def test_event_camera_bad_args():
    with pytest.raises(ValueError, match="contrast_threshold"):
        EventCamera(contrast_threshold=0)
    with pytest.raises(ValueError, match="noise_rate_hz"):
        EventCamera(noise_rate_hz=-1.0)
    with pytest.raises(TypeError, match="refractory_us"):
        EventCamera(refractory_us=1.5)
    with pytest.raises(ValueError, match="at least 2 frames"):
        EventCamera().record(np.zeros((1, 1, 2, 2)), step_us=1000)
    with pytest.raises(ValueError, match=r"\[N, H, W\]"):
        EventCamera().record(np.zeros((3, 2, 2)), step_us=1000)


# --------------------------------------------------------------------------------------------
# frames and collate
# --------------------------------------------------------------------------------------------
def test_events_to_frames_equation():
    ev = np.zeros(4, dtype=EVENT_DTYPE)
    ev["x"], ev["y"], ev["t"], ev["p"] = [0, 1, 2, 2], [0, 0, 1, 1], [0, 49, 50, 100], [1, 0, 1, 1]
    f = events_to_frames(ev, (3, 2, 2), time_steps=2, start_us=0, duration_us=100)
    assert f.shape == (2, 2, 2, 3) and f.dtype == torch.float32
    assert f[0, 1, 0, 0] == 1 and f[0, 0, 0, 1] == 1  # t < 50 -> bin 0
    assert f[1, 1, 1, 2] == 2  # t = 50 and t = 100 (closed last bin) -> bin 1
    assert f.sum() == 4
    one_pol = events_to_frames(ev, (3, 2, 1), time_steps=1)
    assert one_pol.shape == (1, 1, 2, 3) and one_pol.sum() == 4
    with pytest.raises(ValueError, match="x must lie"):
        events_to_frames(ev, (2, 2, 2), time_steps=2)
    with pytest.raises(ValueError, match="time_steps"):
        EventsToFrames((3, 2, 2), 0)
    with pytest.raises(TypeError, match="structured"):
        events_to_frames(np.zeros((4, 4)), (3, 2, 2), 2)
    assert events_to_frames(ev[:0], (3, 2, 2), 5).shape == (5, 2, 2, 3)


def test_collate_time_major_and_dataloader(digits_train):
    batch = [(torch.randn(5, 2, 3), 1), (torch.randn(5, 2, 3), 4), (np.ones((5, 2, 3)), 7)]
    x, y = collate_time_major(batch[:2])
    assert x.shape == (5, 2, 2, 3) and torch.equal(x[:, 1], batch[1][0])
    assert y.tolist() == [1, 4] and y.dtype == torch.int64
    with pytest.raises(ValueError, match="same shape"):
        collate_time_major([(torch.zeros(5, 2), 0), (torch.zeros(6, 2), 1)])
    with pytest.raises(ValueError, match="non-empty"):
        collate_time_major([])
    ds = DigitEvents(root=digits_train.root, train=True,
                     transform=EventsToFrames(DigitEvents.sensor_size, 12, start_us=0,
                                              duration_us=DigitEvents.duration_us))
    loader = torch.utils.data.DataLoader(ds, batch_size=16, collate_fn=collate_time_major)
    xb, yb = next(iter(loader))
    assert xb.shape == (12, 16, 2, 20, 20) and yb.shape == (16,)


def test_collate_padded():
    batch = [(torch.ones(3, 2), 0), (torch.ones(5, 2), 1)]
    x, y, lengths = collate_padded(batch)
    assert x.shape == (5, 2, 2) and lengths.tolist() == [3, 5]
    assert x[3:, 0].abs().sum() == 0 and x[:3, 0].sum() == 6
    xb, _, _ = collate_padded(batch, time_major=False, pad_value=-1.0)
    assert xb.shape == (2, 5, 2) and (xb[0, 3:] == -1).all()
    ev1 = np.zeros(4, dtype=EVENT_DTYPE)
    ev1["t"] = [1, 2, 3, 4]
    ev2 = np.zeros(2, dtype=EVENT_DTYPE)
    ev2["x"] = [7, 8]
    xe, ye, le = collate_padded([(ev1, 3), (ev2, 5)])
    assert xe.shape == (4, 2, 4) and xe.dtype == torch.int64  # columns x, y, t, p
    assert le.tolist() == [4, 2] and xe[:, 0, 2].tolist() == [1, 2, 3, 4]
    assert xe[:2, 1, 0].tolist() == [7, 8]
    with pytest.raises(ValueError, match="trailing shapes"):
        collate_padded([(torch.ones(3, 2), 0), (torch.ones(3, 4), 1)])


# --------------------------------------------------------------------------------------------
# Randman
# --------------------------------------------------------------------------------------------
def test_randman_shapes_and_determinism():
    kw = dict(nb_classes=4, nb_units=12, nb_steps=30, nb_samples=50, seed=7)
    tr, te = Randman(train=True, **kw), Randman(train=False, **kw)
    assert len(tr) == 160 and len(te) == 40
    x, y = tr[0]
    assert x.shape == (30, 12) and x.dtype == torch.float32 and isinstance(y, int)
    assert torch.equal(x.sum(0), torch.ones(12))  # one spike per unit
    assert set(tr.targets.tolist()) == set(range(4)) == set(te.targets.tolist())
    again = Randman(train=True, **kw)
    np.testing.assert_array_equal(again.spike_steps, tr.spike_steps)
    other = Randman(train=True, **dict(kw, seed=8))
    assert not np.array_equal(other.spike_steps, tr.spike_steps)
    xs, ys = tr.as_tensors()
    assert xs.shape == (160, 30, 12) and torch.equal(xs[5], tr[5][0]) and ys[5] == tr[5][1]
    assert tr.spike_steps.min() >= 0 and tr.spike_steps.max() <= 29
    # smooth manifold: nearby intrinsic coordinates give nearby spike times, classes differ
    times = Randman(train=True, output="times", **kw)[0][0]
    assert times.shape == (12,) and times.dtype == torch.int64


def test_randman_events_with_tonic():
    ds = Randman(nb_classes=2, nb_units=10, nb_steps=20, nb_samples=6, output="events", dt_us=500)
    ev, _ = ds[1]
    assert ev.dtype.names == ("t", "x", "p") and len(ev) == 10
    assert np.all(np.diff(ev["t"]) >= 0) and sorted(ev["x"].tolist()) == list(range(10))
    frames = tonic.transforms.ToFrame(sensor_size=ds.sensor_size, time_window=500)(ev.copy())
    assert frames.shape[1:] == (1, 10) and frames.sum() <= 10
    mine = events_to_frames(ev, ds.sensor_size, 20, start_us=0, duration_us=20 * 500 - 1)
    assert mine.shape == (20, 1, 10) and mine.sum() == 10


def test_randman_bad_args():
    with pytest.raises(ValueError, match="nb_steps"):
        Randman(nb_steps=0)
    with pytest.raises(ValueError, match="alpha"):
        Randman(alpha=-1.0)
    with pytest.raises(ValueError, match="output"):
        Randman(output="sparse")
    with pytest.raises(ValueError, match="train_fraction"):
        Randman(train_fraction=1.0)


# --------------------------------------------------------------------------------------------
# get_dataset: embedded data sets
# --------------------------------------------------------------------------------------------
def test_get_dataset_digits_and_randman(digits_train):
    ds = get_dataset("digits", data_dir=digits_train.root, train=False, time_steps=10)
    x, y = ds[0]
    assert isinstance(ds, DigitEvents) and x.shape == (10, 2, 20, 20) and x.dtype == torch.float32
    ds = get_dataset("DIGITS", data_dir=digits_train.root, event_count=300, denoise_us=5000)
    x, _ = ds[0]
    assert x.shape[1:] == (2, 20, 20) and x.dtype == torch.float32
    rm = get_dataset("randman", time_steps=25, nb_classes=3, nb_units=6, nb_samples=10)
    assert rm[0][0].shape == (25, 6)
    with pytest.raises(ValueError, match="event_count"):
        get_dataset("randman", event_count=10)


# --------------------------------------------------------------------------------------------
# get_dataset: recorded data sets in their real on-disk formats, read by tonic
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def nmnist_root(tmp_path_factory):
    """``<root>/NMNIST/Train/<digit>/<id>.bin``: 10 distinct recordings plus hard links up to the
    10,000 files tonic requires before it trusts an extracted N-MNIST folder."""
    root = tmp_path_factory.mktemp("nmnist")
    ev = make_nmnist(root, per_digit=1, splits=("Train",))
    link_up_to(root / "NMNIST" / "Train", 10_000)
    return root, {digit: ev[("Train", digit, 0)] for digit in range(10)}


def test_nmnist_real_format(nmnist_root):
    root, written = nmnist_root
    ds = get_dataset("nmnist", data_dir=root, train=True)
    assert len(ds) == 10_000 and ds.sensor_size == (34, 34, 2)
    ev, label = ds[0]  # first file of digit 0 (tonic sorts folders and files)
    assert label == 0
    x, y, t, p = written[0]
    np.testing.assert_array_equal(ev["x"], x)
    np.testing.assert_array_equal(ev["y"], y)
    np.testing.assert_array_equal(ev["t"], t)
    np.testing.assert_array_equal(ev["p"], p)
    ev7, label7 = ds[7000]
    assert label7 == 7 and len(ev7) == 57
    frames = get_dataset("nmnist", data_dir=root, time_steps=6)
    f, label = frames[3000]
    assert f.shape == (6, 2, 34, 34) and f.dtype == torch.float32 and label == 3
    assert 0.8 * 53 <= f.sum() <= 53
    dn = get_dataset("nmnist", data_dir=root, denoise_us=100_000, event_count=10)
    assert dn[0][0].shape[1:] == (2, 34, 34)
    pickle.loads(pickle.dumps(frames))  # picklable for DataLoader workers


def test_nmnist_missing_split_names_files(nmnist_root):
    root, _ = nmnist_root
    with pytest.raises(FileNotFoundError) as err:
        get_dataset("nmnist", data_dir=root, train=False)
    msg = str(err.value)
    assert str(root / "NMNIST" / "Test") in msg and "test.zip" in msg and ".bin" in msg


def test_shd_real_format(tmp_path):
    folder = tmp_path / "SHD"
    folder.mkdir()
    rng = np.random.default_rng(1)
    times = [np.sort(rng.random(n)).astype(np.float32) for n in (30, 5, 12)]
    units = [rng.integers(0, 700, len(ti)).astype(np.uint16) for ti in times]
    labels = np.array([3, 19, 0], dtype=np.uint16)
    write_shd_h5(folder / "shd_train.h5", times, units, labels, np.array([1, 2, 3], dtype=np.uint16))
    ds = get_dataset("shd", data_dir=tmp_path, train=True)
    assert len(ds) == 3
    ev, label = ds[1]
    assert int(label) == 19 and len(ev) == 5
    np.testing.assert_array_equal(ev["x"], units[1])
    np.testing.assert_allclose(ev["t"], times[1].astype(np.float64) * 1e6, atol=1)
    fr = get_dataset("shd", data_dir=tmp_path, time_steps=4)
    f, label = fr[0]
    assert f.shape == (4, 1, 700) and int(label) == 3 and f.sum() <= 30
    cached = get_dataset("shd", data_dir=tmp_path, time_steps=4, cache_dir=tmp_path / "cache")
    c0, l0 = cached[0]
    torch.testing.assert_close(c0, f)
    assert int(l0) == 3
    cache_files = list((tmp_path / "cache").rglob("*.hdf5"))
    assert cache_files
    with h5py.File(cache_files[0], "r") as fh:  # tonic caches the compact int16 frames
        assert fh["data/0"].dtype == np.int16
    c0_again, _ = cached[0]  # now read from the tonic disk cache
    torch.testing.assert_close(c0_again, f)
    with pytest.raises(ValueError, match="denoise_us"):
        get_dataset("shd", data_dir=tmp_path, denoise_us=1000)
    with pytest.raises(FileNotFoundError, match="shd_test.h5"):
        get_dataset("shd", data_dir=tmp_path, train=False)


def test_dvsgesture_real_format(tmp_path):
    """``<root>/DVSGesture/ibmGestureTrain/user<NN>_<lighting>/<label>.npy``, 110 files."""
    written = make_dvsgesture(tmp_path, splits=("train",))   # 10 users x 11 gestures, 20 + label events
    first = next(iter(written.items()))                       # user01, gesture 0
    ds = get_dataset("dvsgesture", data_dir=tmp_path)
    assert len(ds) == 110
    idx = ds.data.index(str(first[0]))
    ev, label = ds[idx]
    assert label == 0 and len(ev) == 20
    np.testing.assert_array_equal(ev["x"], first[1][:, 0])
    np.testing.assert_array_equal(ev["t"], first[1][:, 3] * 1000)  # ms -> us
    fr = get_dataset("dvsgesture", data_dir=tmp_path, time_steps=5)
    f, _ = fr[idx]
    assert f.shape == (5, 2, 128, 128) and f.dtype == torch.float32
    with pytest.raises(FileNotFoundError, match="ibmGestureTest"):
        get_dataset("dvsgesture", data_dir=tmp_path, train=False)


def test_get_dataset_bad_input(tmp_path):
    with pytest.raises(ValueError) as err:
        get_dataset("mnist", data_dir=tmp_path)
    for name in DATASET_NAMES:
        assert name in str(err.value)
    with pytest.raises(FileNotFoundError) as err:
        get_dataset("nmnist", data_dir=tmp_path)
    msg = str(err.value)
    assert str(tmp_path / "NMNIST" / "Train") in msg and "download=True" in msg
    with pytest.raises(ValueError, match="at most one"):
        get_dataset("digits", time_steps=4, event_count=10)
    with pytest.raises(ValueError, match="time_steps"):
        get_dataset("digits", time_steps=0)
    with pytest.raises(TypeError, match="name"):
        get_dataset(3)


# --------------------------------------------------------------------------------------------
# tonic options: ToFrame equivalence, partial folders, frame slicing, event vs frame transforms
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("time_steps", [8, 12])
def test_tonic_toframe_fixed_window_reproduces_as_tensors(digits_train, time_steps):
    """``ToFrame(sensor_size, time_window=D/T, start_time=0, end_time=D)`` gives exactly the
    frames of ``DigitEvents.as_tensors(T)``, checked on every training sample."""
    d = DigitEvents.duration_us
    to_frame = tonic.transforms.ToFrame(DigitEvents.sensor_size, time_window=d / time_steps,
                                        start_time=0, end_time=d)
    x, _ = digits_train.as_tensors(time_steps)
    for i in range(len(digits_train)):
        f = torch.from_numpy(to_frame(digits_train[i][0]).astype(np.float32))
        assert f.shape == x[i].shape, i
        assert torch.equal(f, x[i]), i
    # and get_dataset(duration_us=...) selects that call for a recorded data set
    from surrogate_nets.data.pipeline import resolve_frames, tonic_to_frame

    tf = tonic_to_frame((34, 34, 2), resolve_frames(None, time_steps, None, None, None, d))
    assert (tf.time_window, tf.start_time, tf.end_time) == (d / time_steps, 0, d)


def test_partial_nmnist_accepted_with_warning(tmp_path):
    written = make_nmnist(tmp_path, per_digit=2)
    for split, n, full in ((True, 20, "60,000"), (False, 20, "10,000")):
        with pytest.warns(UserWarning, match=f"found only {n} .*of the {full} "):
            ds = get_dataset("nmnist", data_dir=tmp_path, train=split, time_steps=4)
        assert len(ds) == n
        f, label = ds[5]
        assert f.shape == (4, 2, 34, 34) and label == 2
        x, *_ = written[("Train" if split else "Test", 2, 1)]
        assert len(x) - 1 <= f.sum() <= len(x)  # tonic's n_time_bins may drop the last event


def test_full_nmnist_folder_gives_no_warning(nmnist_root):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(get_dataset("nmnist", data_dir=nmnist_root[0])) == 10_000


@pytest.mark.filterwarnings("ignore:.*found only:UserWarning")
def test_event_transform_applies_to_events_not_frames(tmp_path):
    """A tonic DropEvent given as event_transform drops events (T unchanged); given as the old
    ``transform=`` it would act on the frame array, which now warns."""
    make_nmnist(tmp_path, per_digit=1, splits=("Train",), events=400)
    with pytest.warns(UserWarning, match="found only"):
        plain = get_dataset("nmnist", data_dir=tmp_path, time_steps=10)
    with pytest.warns(UserWarning, match="found only"):
        dropped = get_dataset("nmnist", data_dir=tmp_path, time_steps=10,
                              event_transform=tonic.transforms.DropEvent(p=0.5))
    np.random.seed(0)
    f0, _ = plain[3]
    f1, _ = dropped[3]
    assert f1.shape == f0.shape == (10, 2, 34, 34)
    assert 0.3 * f0.sum() < f1.sum() < 0.7 * f0.sum()
    assert torch.all(f1 <= f0)  # a subset of the events
    with pytest.warns(UserWarning, match="event_transform="):
        get_dataset("nmnist", data_dir=tmp_path, time_steps=10,
                    transform=tonic.transforms.DropEvent(p=0.5))
    # frame_transform runs on the float frames, after everything else
    with pytest.warns(UserWarning, match="found only"):
        scaled = get_dataset("nmnist", data_dir=tmp_path, time_steps=10,
                             frame_transform=lambda x: 2 * x)
    torch.testing.assert_close(scaled[3][0], 2 * f0)


def test_frames_by_count(tmp_path):
    make_nmnist(tmp_path, per_digit=1, splits=("Train",), events=100)
    with pytest.warns(UserWarning):
        ds = get_dataset("nmnist", data_dir=tmp_path, frames="count", time_steps=5)
    f, _ = ds[4]  # 104 events -> 5 frames of floor(104 / 5) = 20 (tonic drops the remainder)
    assert f.shape == (5, 2, 34, 34)
    assert f.sum(dim=(1, 2, 3)).tolist() == [20.0] * 5
    with pytest.warns(UserWarning):
        ds = get_dataset("nmnist", data_dir=tmp_path, events_per_frame=25)
    f, _ = ds[0]  # 100 events -> 4 frames of 25
    assert f.shape == (4, 2, 34, 34) and f.sum(dim=(1, 2, 3)).tolist() == [25.0] * 4
    with pytest.raises(ValueError, match="frames='count' needs exactly one"):
        get_dataset("nmnist", data_dir=tmp_path, frames="count")
    with pytest.raises(ValueError, match="frames"):
        get_dataset("nmnist", data_dir=tmp_path, frames="space", time_steps=4)
    with pytest.raises(ValueError, match="disagree"):
        get_dataset("nmnist", data_dir=tmp_path, events_per_frame=3, event_count=4)
    with pytest.raises(ValueError, match="duration_us"):
        get_dataset("nmnist", data_dir=tmp_path, duration_us=1000)


def test_shd_fixed_10ms_bins_and_cache(tmp_path):
    """SHD as the example uses it: 100 bins of 10 ms on [0, 1 s], cached on disk."""
    written = make_shd(tmp_path, n=4, splits=("train",), duration_s=1.2)
    kw = dict(time_steps=100, duration_us=1_000_000)
    ds = get_dataset("shd", data_dir=tmp_path, **kw)
    times, units, _ = written["train"]
    for i in range(4):
        f, _ = ds[i]
        assert f.shape == (100, 1, 700)
        t_us = times[i].astype(np.float64) * 1e6
        ev = np.zeros(len(t_us), dtype=[("t", np.int64), ("x", np.int16), ("p", bool)])
        ev["t"], ev["x"] = t_us.astype(np.int64), units[i]
        inside = ev["t"] < 1_000_000
        expect = torch.zeros(100, 1, 700)
        for t, x in zip(ev["t"][inside], ev["x"][inside]):
            expect[t // 10_000, 0, x] += 1
        torch.testing.assert_close(f, expect)   # bin b = floor(t / 10 ms); t >= 1 s dropped
    cached = get_dataset("shd", data_dir=tmp_path, cache_dir=tmp_path / "cache",
                         frame_transform=lambda x: x.clamp(max=1), **kw)
    torch.testing.assert_close(cached[2][0], ds[2][0].clamp(max=1))
    torch.testing.assert_close(cached[2][0], ds[2][0].clamp(max=1))  # from the cache
    with pytest.warns(UserWarning, match="frozen"):
        get_dataset("shd", data_dir=tmp_path, cache_dir=tmp_path / "cache2",
                    event_transform=tonic.transforms.DropEvent(p=0.1), **kw)


def test_dvsgesture_denoise_partial_and_count(tmp_path):
    make_dvsgesture(tmp_path, users=(1,), labels=range(11), splits=("test",), events=60)
    with pytest.warns(UserWarning, match="found only 11"):
        ds = get_dataset("dvsgesture", data_dir=tmp_path, train=False, time_steps=4,
                         denoise_us=1)
    f, label = ds[0]
    assert f.shape == (4, 2, 128, 128) and f.sum() < 60  # isolated random events are removed
    with pytest.warns(UserWarning):
        raw = get_dataset("dvsgesture", data_dir=tmp_path, train=False, frames="count",
                          time_steps=3)
    assert raw[0][0].shape == (3, 2, 128, 128) and raw[0][0].sum() == 3 * ((60 + label) // 3)


def test_collate_built_on_torch_helpers():
    from torch.nn.utils.rnn import pad_sequence

    seqs = [torch.randn(3, 2), torch.randn(5, 2), torch.randn(1, 2)]
    x, y, lengths = collate_padded([(s, i) for i, s in enumerate(seqs)], pad_value=-2.0)
    torch.testing.assert_close(x, pad_sequence(seqs, padding_value=-2.0))
    assert lengths.tolist() == [3, 5, 1] and y.tolist() == [0, 1, 2]
    xb, _, _ = collate_padded([(s, 0) for s in seqs], time_major=False)
    torch.testing.assert_close(xb, pad_sequence(seqs, batch_first=True))
    same = [torch.randn(4, 3) for _ in range(3)]
    xt, yt = collate_time_major([(s, torch.tensor(i)) for i, s in enumerate(same)])
    assert xt.is_contiguous()
    torch.testing.assert_close(xt, torch.utils.data.default_collate(same).transpose(0, 1))
    assert yt.tolist() == [0, 1, 2]
