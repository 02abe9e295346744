"""Annealing the sharpness during training: wide surrogates early, sharp ones late."""

from __future__ import annotations

import math
from typing import Iterable, Union

from torch import nn

from .._validate import check_choice, check_int, check_positive
from .base import Surrogate


class AlphaSchedule:
    r"""Anneal ``alpha`` of every fixed (non-learnable) surrogate in a model.

    .. math::
        \alpha_n = \alpha_0 + (\alpha_1 - \alpha_0)\,\frac{n}{N}\quad\text{(linear)},\qquad
        \alpha_n = \alpha_0 (\alpha_1/\alpha_0)^{n/N}\quad\text{(exp)}

    for step ``n`` of ``N`` (held at ``alpha_1`` after ``N``). Cf. the progressive sharpening of
    Dspike (Li et al. 2021) and DSQ (Gong et al. 2019). Call :meth:`step` once per epoch or batch.

    Args:
        target: a model (its :class:`Surrogate` submodules are found) or an iterable of surrogates.
        start, end: ``alpha_0`` and ``alpha_1`` (> 0).
        steps: ``N`` >= 1.
        mode: ``"linear"`` or ``"exp"``.
    """

    def __init__(self, target: Union[nn.Module, Iterable[Surrogate]], start: float, end: float,
                 steps: int, mode: str = "exp"):
        check_positive(start, "start")
        check_positive(end, "end")
        self.steps = check_int(steps, "steps", minimum=1)
        self.mode = check_choice(mode, "mode", ("linear", "exp"))
        self.start, self.end = float(start), float(end)
        mods = target.modules() if isinstance(target, nn.Module) else target
        # adaptive surrogates set their own alpha (see :class:`.adaptive.Adaptive`)
        self.surrogates = [m for m in mods if isinstance(m, Surrogate) and not m.learnable
                           and not getattr(m, "adapts_alpha", False)]
        self.n = 0
        self._apply()

    def value(self, n: int) -> float:
        """``alpha_n`` for step ``n``."""
        f = min(max(n, 0), self.steps) / self.steps
        if self.mode == "linear":
            return self.start + (self.end - self.start) * f
        return math.exp(math.log(self.start) + (math.log(self.end) - math.log(self.start)) * f)

    def _apply(self):
        for s in self.surrogates:
            s.set_alpha(self.value(self.n))

    def step(self) -> float:
        """Advance one step and return the new alpha."""
        self.n += 1
        self._apply()
        return self.value(self.n)

    def state_dict(self) -> dict:
        return {"n": self.n}

    def load_state_dict(self, state: dict) -> None:
        self.n = int(state["n"])
        self._apply()
