"""``Randman``: the random-manifold spike-timing benchmark of Zenke & Vogels (2021).

Every class is a smooth random manifold of dimension :math:`D` embedded in the space of the
firing times of :math:`N` input units. A sample draws intrinsic coordinates
:math:`u \\sim \\mathcal U[0, 1]^D` and each unit fires exactly one spike, at the time given by
the corresponding embedding coordinate. Solving the task means learning precise spike timing
(rates carry no information: every unit fires once in every sample).

Two generators are offered. ``generator="zenke"`` (default) follows the original code of the
paper (github.com/fzenke/randman, ``NumpyRandman`` and ``make_spiking_dataset``): per unit a
*product* over the manifold dimensions of 1-D random Fourier series with
:math:`K = \\lceil \\mathrm{prec}^{-1/\\alpha} \\rceil` components (32 for :math:`\\alpha = 2`,
``prec = 1e-3``), the spike time being the embedding coordinate standardised over the class's
samples. ``generator="sum"`` is this library's earlier variant (a *sum* over dimensions of 4
components, rescaled with 1,024 reference points); it is kept for reproducing older results.

Reference:
    F. Zenke and T. P. Vogels, "The remarkable robustness of surrogate gradient learning for
    instilling complex function in spiking neural networks", Neural Computation 33(4):899-925,
    2021.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from .._validate import check_choice, check_in_range, check_int, check_positive

#: Event record of :class:`Randman` in ``output="events"`` mode (the layout of tonic's SHD:
#: ``t`` microseconds, ``x`` unit index, ``p`` always True).
RANDMAN_EVENT_DTYPE = np.dtype([("t", np.int64), ("x", np.int32), ("p", bool)])


def zenke_components(alpha: float, prec: float = 1e-3, max_components: int = 1000) -> int:
    """Number of Fourier components of the original generator: ``ceil(prec ** (-1 / alpha))``.

    The amplitude of component ``k`` decays as ``k ** -alpha``, so ``K`` is where it falls below
    ``prec`` (capped at ``max_components``, as in fzenke/randman). ``alpha = 2`` gives 32.
    """
    check_positive(alpha, "alpha")
    check_in_range(prec, "prec", 0.0, 1.0, low_open=True, high_open=True)
    return int(min(np.ceil(prec ** (-1.0 / float(alpha))), max_components))


def eval_zenke_manifold(params: np.ndarray, u: np.ndarray, alpha: float, cls: int) -> np.ndarray:
    """Evaluate class ``cls`` of the original Randman generator (Zenke & Vogels 2021).

    .. math::
        f_{c,i}(u) = \\prod_{j=1}^{D} \\sum_{k=0}^{K-1} (k+1)^{-\\alpha}\\, a_{cijk}\\,
                     \\sin\\bigl(2\\pi (k\\, b_{cijk}\\, u_j + \\varphi_{cijk})\\bigr),
        \\qquad a_{cij0} = 0

    (frequency ``k * b`` with ``k`` counted from 0, amplitude ``(k+1)^-alpha``; the constant
    ``k = 0`` term is switched off, the code's ``use_bias=False``). Facts from the reference
    implementation github.com/fzenke/randman (``NumpyRandman.eval_random_function``); this is an
    independent vectorised implementation.

    Args:
        params: ``[3, C, N, D, K]`` entries in ``[0, 1)`` (:func:`random_manifold_params`).
        u: ``[S, D]`` intrinsic coordinates in [0, 1].
        alpha: spectrum exponent.
        cls: class index.

    Returns:
        ``[S, N]`` float64.
    """
    a, b, phi = params[0, cls].copy(), params[1, cls], params[2, cls]  # [N, D, K]
    a[..., 0] = 0.0
    k = np.arange(a.shape[-1], dtype=np.float64)
    amp = a * (k + 1) ** (-float(alpha))
    arg = 2 * np.pi * (u[:, None, :, None] * (k * b)[None] + phi[None])  # [S, N, D, K]
    return (amp[None] * np.sin(arg)).sum(axis=3).prod(axis=2)


def random_manifold_params(rng: np.random.Generator, nb_classes: int, nb_units: int,
                           dim_manifold: int, nb_components: int) -> np.ndarray:
    """Draw the Fourier parameters ``(a, b, phi)`` of the random manifolds.

    Returns:
        float64 ``[3, C, N, D, K]`` with every entry :math:`\\sim \\mathcal U[0, 1)`.
    """
    return rng.random((3, nb_classes, nb_units, dim_manifold, nb_components))


def eval_random_manifold(params: np.ndarray, u: np.ndarray, alpha: float, cls: int) -> np.ndarray:
    """Evaluate the raw embedding of class ``cls`` at intrinsic coordinates ``u``.

    .. math::
        f_{c,i}(u) = \\sum_{j=1}^{D} \\sum_{k=1}^{K} k^{-\\alpha}\\, a_{cijk}\\,
                     \\sin\\bigl(2\\pi (k\\, b_{cijk}\\, u_j + \\varphi_{cijk})\\bigr)

    A sum of random Fourier components whose amplitudes decay as :math:`k^{-\\alpha}`: the larger
    the smoothness :math:`\\alpha`, the smoother (and easier) the manifold.

    Args:
        params: ``[3, C, N, D, K]`` from :func:`random_manifold_params`.
        u: intrinsic coordinates ``[S, D]`` in [0, 1].
        alpha: smoothness exponent.
        cls: class index.

    Returns:
        ``[S, N]`` float64.
    """
    a, b, phi = params[0, cls], params[1, cls], params[2, cls]  # [N, D, K]
    k = np.arange(1, a.shape[-1] + 1, dtype=np.float64)
    amp = a * k ** (-float(alpha))
    # [S, 1, D, 1] * [N, D, K] -> [S, N, D, K]
    arg = 2 * np.pi * (u[:, None, :, None] * (k * b)[None] + phi[None])
    return (amp[None] * np.sin(arg)).sum(axis=(2, 3))


class Randman(torch.utils.data.Dataset):
    """Random-manifold spike-timing classification (Zenke & Vogels, Neural Computation 2021).

    ``generator="zenke"`` (default, the original code's generator): for class :math:`c` and
    unit :math:`i` the embedding :math:`f_{c,i}(u)` of :func:`eval_zenke_manifold` is
    standardised with its minimum :math:`m` and maximum :math:`M` over the class's ``nb_samples``
    samples, :math:`g = (f - m)/(M - m + 10^{-7})`, and the unit spikes at step
    :math:`s_i = \\lfloor g\\,T \\rfloor` (in ``[0, T-1]``).

    ``generator="sum"`` (the earlier variant): the raw embedding :math:`f_{c,i}(u)` of
    :func:`eval_random_manifold` is rescaled to [0, 1] with its minimum and maximum over 1,024
    reference points (drawn from ``seed``, so the rescaling does not depend on the number of
    samples) and clipped:

    .. math::
        g_{c,i}(u) = \\mathrm{clip}\\Bigl(
            \\frac{f_{c,i}(u) - m_{c,i}}{M_{c,i} - m_{c,i}}, 0, 1\\Bigr),
        \\qquad s_i = \\mathrm{round}\\bigl(g_{c,i}(u)\\,(T - 1)\\bigr)

    and unit :math:`i` spikes once, at step :math:`s_i`.

    Args:
        train: training (True) or test (False) split; within each class the first
            ``round(train_fraction * nb_samples)`` samples are the training set.
        nb_classes: number of classes (manifolds) ``C``.
        nb_units: number of input units ``N`` (embedding dimension).
        nb_steps: number of time steps ``T``.
        dim_manifold: intrinsic dimension ``D`` of each manifold.
        nb_samples: samples per class (train + test).
        alpha: smoothness exponent of the Fourier spectrum (> 0).
        nb_components: number of Fourier components ``K`` per intrinsic dimension; ``None``:
            ``ceil(prec ** (-1/alpha))`` for ``"zenke"`` (32 at ``alpha = 2``), 4 for ``"sum"``.
        generator: ``"zenke"`` (default, the original generator) or ``"sum"`` (earlier variant).
        prec: precision that sets the number of components of ``"zenke"`` (default 1e-3).
        seed: seed of the manifolds and of the samples.
        train_fraction: fraction of each class used for training, in (0, 1).
        output: ``"dense"`` (float tensor ``[T, N]``), ``"times"`` (int64 tensor ``[N]`` of spike
            steps) or ``"events"`` (structured array :data:`RANDMAN_EVENT_DTYPE`, sorted by time,
            ``t = step * dt_us``; use with tonic transforms and :attr:`sensor_size`).
        dt_us: length of one time step in microseconds (``"events"`` mode).
        transform, target_transform: callables applied to the sample and the label.

    ``dataset[i]`` returns ``(sample, label)`` with ``label`` an ``int``.

    Example:
        >>> ds = Randman(nb_classes=3, nb_units=8, nb_steps=20, nb_samples=10)
        >>> x, y = ds[0]
        >>> x.shape, float(x.sum())
        (torch.Size([20, 8]), 8.0)

    Reference:
        F. Zenke and T. P. Vogels, "The remarkable robustness of surrogate gradient learning for
        instilling complex function in spiking neural networks", Neural Computation 33(4), 2021.
    """

    def __init__(
        self,
        train: bool = True,
        *,
        nb_classes: int = 10,
        nb_units: int = 20,
        nb_steps: int = 50,
        dim_manifold: int = 1,
        nb_samples: int = 1000,
        alpha: float = 2.0,
        nb_components: int | None = None,
        seed: int = 0,
        train_fraction: float = 0.8,
        output: str = "dense",
        dt_us: int = 1000,
        transform: Callable | None = None,
        target_transform: Callable | None = None,
        generator: str = "zenke",
        prec: float = 1e-3,
    ):
        if not isinstance(train, bool):
            raise TypeError(f"train must be a bool, got {type(train).__name__} {train!r}")
        self.nb_classes = check_int(nb_classes, "nb_classes", minimum=1)
        self.nb_units = check_int(nb_units, "nb_units", minimum=1, maximum=2**31 - 1)
        self.nb_steps = check_int(nb_steps, "nb_steps", minimum=1)
        self.dim_manifold = check_int(dim_manifold, "dim_manifold", minimum=1)
        self.nb_samples = check_int(nb_samples, "nb_samples", minimum=2)
        self.alpha = float(check_positive(alpha, "alpha"))
        self.generator = check_choice(generator, "generator", ["zenke", "sum"])
        self.prec = float(check_in_range(prec, "prec", 0.0, 1.0, low_open=True, high_open=True))
        if nb_components is None:
            nb_components = zenke_components(self.alpha, self.prec) if self.generator == "zenke" else 4
        self.nb_components = check_int(nb_components, "nb_components", minimum=1)
        self.seed = check_int(seed, "seed", minimum=0)
        self.train_fraction = float(check_in_range(train_fraction, "train_fraction", 0.0, 1.0,
                                                   high_open=True))
        self.output = check_choice(output, "output", ["dense", "times", "events"])
        self.dt_us = check_int(dt_us, "dt_us", minimum=1)
        for name, fn in (("transform", transform), ("target_transform", target_transform)):
            if fn is not None and not callable(fn):
                raise TypeError(f"{name} must be callable or None, got {type(fn).__name__}")
        self.train = train
        self.transform = transform
        self.target_transform = target_transform
        #: ``(W, H, P)`` in tonic's convention for the ``"events"`` output.
        self.sensor_size = (self.nb_units, 1, 1)

        times, labels = self._generate()
        n_train = int(round(self.train_fraction * self.nb_samples))
        n_train = min(max(n_train, 1), self.nb_samples - 1)
        within = np.tile(np.arange(self.nb_samples), self.nb_classes)
        keep = within < n_train if train else within >= n_train
        #: Spike step of every unit, int64 ``[S, N]``; labels int64 ``[S]``.
        self.spike_steps = times[keep]
        self.targets = labels[keep]

    def _generate(self) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(self.seed)
        params = random_manifold_params(rng, self.nb_classes, self.nb_units, self.dim_manifold,
                                        self.nb_components)
        ref = rng.random((1024, self.dim_manifold))
        u = rng.random((self.nb_classes, self.nb_samples, self.dim_manifold))
        times = np.empty((self.nb_classes, self.nb_samples, self.nb_units), dtype=np.int64)
        for c in range(self.nb_classes):
            if self.generator == "zenke":
                f = eval_zenke_manifold(params, u[c], self.alpha, c)
                g = (f - f.min(axis=0)) / (f.max(axis=0) - f.min(axis=0) + 1e-7)
                times[c] = np.minimum(np.floor(g * self.nb_steps), self.nb_steps - 1).astype(np.int64)
                continue
            f_ref = eval_random_manifold(params, ref, self.alpha, c)
            lo, hi = f_ref.min(axis=0), f_ref.max(axis=0)
            f = eval_random_manifold(params, u[c], self.alpha, c)
            g = (f - lo) / np.maximum(hi - lo, 1e-12)
            times[c] = np.rint(np.clip(g, 0.0, 1.0) * (self.nb_steps - 1)).astype(np.int64)
        labels = np.repeat(np.arange(self.nb_classes, dtype=np.int64), self.nb_samples)
        return times.reshape(-1, self.nb_units), labels

    def __len__(self) -> int:
        return len(self.targets)

    def _sample(self, index: int):
        steps = self.spike_steps[index]
        if self.output == "times":
            return torch.from_numpy(steps.copy())
        if self.output == "dense":
            x = torch.zeros(self.nb_steps, self.nb_units)
            x[torch.from_numpy(steps), torch.arange(self.nb_units)] = 1.0
            return x
        order = np.argsort(steps, kind="stable")
        ev = np.empty(self.nb_units, dtype=RANDMAN_EVENT_DTYPE)
        ev["t"] = steps[order] * self.dt_us
        ev["x"] = order
        ev["p"] = True
        return ev

    def __getitem__(self, index: int):
        if isinstance(index, (bool, np.bool_)) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"index must be an int, got {type(index).__name__} {index!r}")
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for Randman of length {n}")
        index = int(index) % n
        sample, target = self._sample(index), int(self.targets[index])
        if self.transform is not None:
            sample = self.transform(sample)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return sample, target

    def as_tensors(self, dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
        """The whole split as dense spike tensors.

        Returns:
            ``(X, y)``: ``X`` ``[S, T, N]`` with :math:`X[n, s_{n,i}, i] = 1` and zeros elsewhere;
            ``y`` int64 ``[S]``. Use ``X[idx].transpose(0, 1)`` for a time-major batch.
        """
        if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
            raise TypeError(f"dtype must be a floating torch.dtype, got {dtype!r}")
        s = len(self)
        x = torch.zeros(s, self.nb_steps, self.nb_units, dtype=dtype)
        steps = torch.from_numpy(self.spike_steps)
        x[torch.arange(s)[:, None], steps, torch.arange(self.nb_units)[None, :]] = 1
        return x, torch.from_numpy(self.targets.copy())

    def __repr__(self) -> str:
        split = "train" if self.train else "test"
        return (f"Randman(split={split!r}, samples={len(self)}, nb_classes={self.nb_classes}, "
                f"nb_units={self.nb_units}, nb_steps={self.nb_steps}, "
                f"dim_manifold={self.dim_manifold}, alpha={self.alpha}, "
                f"generator={self.generator!r}, seed={self.seed})")
