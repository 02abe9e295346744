"""The original Randman generator (Zenke & Vogels 2021, github.com/fzenke/randman) and the old one."""

import math

import numpy as np
import pytest

from surrogate_nets.data import Randman, eval_zenke_manifold, random_manifold_params, zenke_components


def test_number_of_components_follows_the_precision():
    assert zenke_components(2.0) == 32          # ceil(1e-3 ** -0.5) = ceil(31.6)
    assert zenke_components(1.0) == 1000        # ceil(1000), at the cap
    assert zenke_components(0.5) == 1000        # 1e6 capped at 1000
    assert zenke_components(3.0, prec=1e-2) == math.ceil(100 ** (1 / 3))
    assert Randman(nb_samples=4, nb_classes=2).nb_components == 32
    assert Randman(nb_samples=4, nb_classes=2, generator="sum").nb_components == 4
    with pytest.raises(ValueError, match="prec"):
        Randman(prec=0.0)
    with pytest.raises(ValueError, match="generator"):
        Randman(generator="fourier")


def _explicit(params, u, alpha, cls):
    """The generator's equation evaluated with plain loops (unit, dimension, component)."""
    _, c, n, d, k = params.shape
    out = np.ones((len(u), n))
    for i in range(n):
        for j in range(d):
            series = np.zeros(len(u))
            for kk in range(1, k):  # the k = 0 (constant) term has zero amplitude
                a, b, phi = params[0, cls, i, j, kk], params[1, cls, i, j, kk], params[2, cls, i, j, kk]
                series += a * (kk + 1) ** -alpha * np.sin(2 * np.pi * (kk * b * u[:, j] + phi))
            out[:, i] *= series
    return out


@pytest.mark.parametrize("dim", [1, 2, 3])
def test_vectorised_generator_matches_the_equation(dim):
    rng = np.random.default_rng(3)
    params = random_manifold_params(rng, 2, 5, dim, 7)
    u = rng.random((11, dim))
    for cls in (0, 1):
        np.testing.assert_allclose(eval_zenke_manifold(params, u, 2.0, cls), _explicit(params, u, 2.0, cls),
                                   rtol=1e-12, atol=1e-14)


def test_spike_times_are_standardised_over_each_class():
    kw = dict(nb_classes=3, nb_units=6, nb_steps=25, nb_samples=60, seed=4)
    tr, te = Randman(train=True, **kw), Randman(train=False, **kw)
    for c in range(3):
        steps = np.concatenate([tr.spike_steps[tr.targets == c], te.spike_steps[te.targets == c]])
        # min and max over the class's samples map to the first and the last step, per unit
        assert (steps.min(axis=0) == 0).all() and (steps.max(axis=0) == 24).all()
    x, _ = tr[0]
    assert x.shape == (25, 6) and float(x.sum()) == 6.0


def test_smooth_manifold_nearby_coordinates_nearby_times():
    rng = np.random.default_rng(0)
    params = random_manifold_params(rng, 1, 20, 1, zenke_components(2.0))
    u = np.array([[0.30], [0.3001], [0.8]])
    f = eval_zenke_manifold(params, u, 2.0, 0)
    assert np.abs(f[0] - f[1]).max() < 1e-2 * np.abs(f[0] - f[2]).max()


def test_generators_differ_and_are_deterministic():
    kw = dict(nb_classes=2, nb_units=8, nb_steps=20, nb_samples=30, seed=1)
    z1, z2 = Randman(**kw), Randman(**kw)
    s = Randman(generator="sum", **kw)
    np.testing.assert_array_equal(z1.spike_steps, z2.spike_steps)
    assert not np.array_equal(z1.spike_steps, s.spike_steps)
    assert "generator='zenke'" in repr(z1)
