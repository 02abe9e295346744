"""The loss plug-in contract: :class:`SpikeLoss`."""

from __future__ import annotations

import weakref
from typing import Optional

import torch
from torch import nn

from ._common import (ce_normaliser, check_class_output, check_class_target, check_label_smoothing,
                      check_reduction, make_weight, reduce, weight_for)


class SpikeLoss(nn.Module):
    r"""Optional base class that documents the loss contract of ``surrogate_nets``.

    **A loss is any** :class:`torch.nn.Module` **with** ``forward(output, target) -> Tensor``.
    Subclassing :class:`SpikeLoss` is not required (``torch.nn.CrossEntropyLoss`` is a valid
    loss for a non-spiking readout), but it gives the conventions below for free.

    Inputs
        ``output``: the network output, time-major ``[T, B, C]`` (spikes or membrane traces of
        the output layer) for the classification losses; ``[T, B, ...]`` for regression losses.
        ``target``: class indices ``[B]`` (integer dtype, values in ``[0, C)``) for
        classification losses; a tensor documented by the loss otherwise.

    Reductions (torch style, argument ``reduction``)
        ``"none"``: one value per sample ``[B]`` for classification losses (the time axis is
        always reduced inside the loss as its equation says); the elementwise loss for
        regression losses, as :class:`torch.nn.MSELoss` does.
        ``"sum"``: the sum of the ``"none"`` result.
        ``"mean"``: its mean; with class weights, the sum divided by
        :math:`\sum_b w_{y_b}` like :class:`torch.nn.CrossEntropyLoss`.

    Model records (optional)
        A loss that needs more than ``(output, target)`` (for example the hidden spikes of every
        layer, for an activity regularizer) sets the class attribute ``needs_model = True``.
        The training loop then calls ``loss.bind(model)`` once, after building the model and
        before the first step; inside ``forward`` the loss reads ``self.model`` (a weak
        reference, so the model is neither registered as a sub-module of the loss nor kept
        alive by it) and, typically, :func:`~surrogate_nets.losses.collect` to fetch the
        records of the last forward pass. See :class:`~surrogate_nets.losses.RegularizedLoss`.

    Subclasses implement ``forward`` and may call :meth:`_reduce` on a per-sample loss.
    """

    #: When ``True`` the training loop calls :meth:`bind` with the model before training.
    needs_model: bool = False

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = check_reduction(reduction)
        self._model_ref = None

    def bind(self, model: nn.Module) -> "SpikeLoss":
        """Remember ``model`` (weakly) so that ``forward`` can read its records; returns ``self``."""
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        self._model_ref = weakref.ref(model)
        return self

    @property
    def model(self) -> Optional[nn.Module]:
        """The bound model, or ``None`` when :meth:`bind` was not called (or it was freed)."""
        return None if self._model_ref is None else self._model_ref()

    def __getstate__(self):
        # the weak reference to a bound model cannot be pickled; a copy starts unbound
        state = self.__dict__.copy()
        state["_model_ref"] = None
        return state

    def _reduce(self, per_sample: torch.Tensor, normaliser: Optional[torch.Tensor] = None):
        """Apply ``self.reduction`` to a per-sample (or elementwise) loss."""
        return reduce(per_sample, self.reduction, normaliser)

    def predict(self, output: torch.Tensor) -> torch.Tensor:
        """Class predictions ``[B]`` read out the way this loss trains: by default
        ``argmax_c sum_t output[t, b, c]`` (the spike count / summed score); an output
        without a time axis ``[B, C]`` is read by ``argmax_c``."""
        out = output.detach()
        return (out if out.dim() == 2 else out.sum(0)).argmax(-1)

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError(f"{type(self).__name__} must implement forward(output, target)")

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


class _WeightedClassLoss(SpikeLoss):
    r"""Base of the classification losses with torch-style class weights and label smoothing.

    Holds ``weight`` (a buffer ``[C]`` or ``None``) and ``label_smoothing`` (in ``[0, 1]``),
    checked once here, and :meth:`_checked`, the one place that validates ``output``
    ``[T, B, C]`` and the target (class indices ``[B]``, or probabilities ``[B, C]``) and returns
    the weight on the output's device and dtype. The weighted ``"mean"`` divides by
    :math:`\sum_b w_{y_b}` (:meth:`_reduce_ce`), as :class:`torch.nn.CrossEntropyLoss` does.
    """

    def __init__(self, weight=None, label_smoothing: float = 0.0, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.register_buffer("weight", make_weight(weight))
        self.label_smoothing = check_label_smoothing(label_smoothing)

    def _checked(self, output: torch.Tensor, target, allow_probabilities: bool = True):
        """``(target, weight)`` after checking ``output`` and ``target``."""
        check_class_output(output)
        target = check_class_target(target, output, allow_probabilities=allow_probabilities)
        return target, weight_for(self.weight, output)

    def _reduce_ce(self, per_sample: torch.Tensor, weight, target) -> torch.Tensor:
        return self._reduce(per_sample, ce_normaliser(weight, target))

    def _ce_repr(self) -> str:
        return (f"label_smoothing={self.label_smoothing}, weighted={self.weight is not None}, "
                f"reduction={self.reduction!r}")
