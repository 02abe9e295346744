"""A synthetic task in which only the relative timing of two input channels carries the label."""

from __future__ import annotations

from typing import Tuple

import torch

from .._validate import check_int


def relative_timing(n: int, time_steps: int = 24, gap: int = 5, seed: int = 0
                    ) -> Tuple[torch.Tensor, torch.Tensor]:
    r"""``n`` samples of "which of two channels fires first, ``gap`` steps apart".

    Each sample has two input channels with one spike each: channel 0 at a random ``t_0`` and
    channel 1 at ``t_1 = t_0 + gap`` (label 0) or ``t_0 - gap`` (label 1). The onset is uniform over
    the steps where both spikes fit, so the absolute times and the spike counts are the same for both
    classes: only the relative timing tells them apart. A network without memory over ``gap`` steps
    and with an order-invariant readout (spike counts) is at chance; one delay of ``gap`` steps on
    channel 0 (label 0) or on channel 1 (label 1) makes the two spikes coincide, which a leaky
    neuron with a short time constant detects. (The coincidence-detection role of delays: e.g.
    Hammouamri, Khalfaoui-Hassani & Masquelier, ICLR 2024.)

    Returns ``x`` time-major ``[T, n, 2]`` (float 0/1) and ``y`` ``[n]`` (int64), balanced classes.
    """
    n = check_int(n, "n", minimum=2)
    T = check_int(time_steps, "time_steps", minimum=2)
    gap = check_int(gap, "gap", minimum=1, maximum=T - 1)
    g = torch.Generator().manual_seed(int(seed))
    y = torch.arange(n) % 2
    y = y[torch.randperm(n, generator=g)]
    first = torch.randint(0, T - gap, (n,), generator=g)          # time of the earlier spike
    t0 = torch.where(y == 0, first, first + gap)
    t1 = torch.where(y == 0, first + gap, first)
    x = torch.zeros(T, n, 2)
    idx = torch.arange(n)
    x[t0, idx, 0] = 1.0
    x[t1, idx, 1] = 1.0
    return x, y
