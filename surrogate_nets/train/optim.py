"""Optimizer and learning-rate schedule of a run: built from a name, a factory or an instance.

:data:`OPTIMIZERS` and :data:`SCHEDULERS` are the registries the command line takes its choices
from; :func:`alpha_parameters` finds the learnable surrogate sharpnesses (their own param group
with ``alpha_lr``).
"""

from __future__ import annotations

import math
import warnings
from typing import Iterable, List, Optional, Tuple

import torch
from torch import nn

from .._validate import check_positive

#: Optimizers known by name (``optimizer="adamw"``, ``--optimizer adamw``).
OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD,
               "rmsprop": torch.optim.RMSprop}


def alpha_parameters(model: nn.Module) -> List[nn.Parameter]:
    """The learnable surrogate sharpnesses of ``model``: the ``raw_alpha`` parameter of every
    :class:`~surrogate_nets.surrogate.Surrogate` submodule with ``learnable=True`` (found by
    type, not by parameter name), each once, in ``model.modules()`` order."""
    from ..surrogate import Surrogate

    found, seen = [], set()
    for m in model.modules():
        if isinstance(m, Surrogate) and m.learnable:
            p = m.raw_alpha
            if id(p) not in seen:
                seen.add(id(p))
                found.append(p)
    return found


def build_optimizer(optimizer, params, lr: float, weight_decay: float = 0.0, *,
                    alpha_lr: Optional[float] = None, alpha_params: Iterable = ()):
    """An optimizer from ``None`` (Adam), a name (``adam``, ``adamw``, ``sgd``, ``rmsprop``), a
    factory ``f(params) -> Optimizer`` or an :class:`torch.optim.Optimizer` instance.

    With ``alpha_lr`` (named/default optimizer only) the trainable ones of ``alpha_params``
    (normally :func:`alpha_parameters` of the model) form a second param group with
    ``lr=alpha_lr`` and ``weight_decay=0``; the other parameters keep ``lr`` and
    ``weight_decay`` in the first group. Without trainable ``alpha_params`` there is one group.
    """
    params = [p for p in params if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters (requires_grad=True)")
    if optimizer is None:
        optimizer = "adam"
    if alpha_lr is not None and not isinstance(optimizer, str):
        raise ValueError("alpha_lr applies to a named or default optimizer only; with an optimizer "
                         "factory or instance, build the param groups yourself (the learnable "
                         "alphas are surrogate_nets.train.alpha_parameters(model))")
    if isinstance(optimizer, torch.optim.Optimizer):
        return optimizer
    if isinstance(optimizer, str):
        key = optimizer.lower()
        if key not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {optimizer!r}; expected one of {sorted(OPTIMIZERS)}, "
                             f"a factory params -> Optimizer, or an Optimizer instance")
        check_positive(lr, "lr")  # torch's own message does not name lr
        check_positive(weight_decay, "weight_decay", allow_zero=True)
        kw = {"lr": lr, "weight_decay": weight_decay}
        if key == "sgd":
            kw["momentum"] = 0.9
        groups = params
        if alpha_lr is not None:
            alpha_ids = {id(p) for p in alpha_params if p.requires_grad}
            sharp = [p for p in params if id(p) in alpha_ids]
            if sharp:
                rest = [p for p in params if id(p) not in alpha_ids]
                groups = ([{"params": rest}] if rest else []) + \
                         [{"params": sharp, "lr": alpha_lr, "weight_decay": 0.0}]
        return OPTIMIZERS[key](groups, **kw)
    if callable(optimizer):
        opt = optimizer(params)
        if not isinstance(opt, torch.optim.Optimizer):
            raise TypeError(f"the optimizer factory must return a torch.optim.Optimizer, got "
                            f"{type(opt).__name__}")
        return opt
    raise TypeError(f"optimizer must be None, a name, a factory or an Optimizer, got "
                    f"{type(optimizer).__name__}")


def build_model_optimizer(model: nn.Module, optimizer, lr: float, weight_decay: float = 0.0,
                          alpha_lr: Optional[float] = None) -> Tuple[torch.optim.Optimizer, Optional[int]]:
    """:func:`build_optimizer` for ``model``'s parameters, with the learnable surrogate alphas in
    their own group when ``alpha_lr`` is set; returns ``(optimizer, index of the alphas' group
    or None)``. Warns when ``alpha_lr`` is set but the model has no learnable alpha."""
    alphas = [p for p in alpha_parameters(model) if p.requires_grad] if alpha_lr is not None else []
    if alpha_lr is not None and not alphas:
        warnings.warn("fit(alpha_lr=...): the model has no learnable surrogate alpha "
                      "(Surrogate with learnable=True); alpha_lr is ignored", UserWarning, stacklevel=3)
    opt = build_optimizer(optimizer, model.parameters(), lr, weight_decay,
                          alpha_lr=alpha_lr, alpha_params=alphas)
    return opt, (len(opt.param_groups) - 1 if alphas else None)


#: Schedules known by name; ``"constant"`` (alias ``"none"``) means no scheduler.
SCHEDULERS = ("cosine", "constant")


def build_scheduler(scheduler, optimizer, epochs: int):
    """``None``; ``"cosine"`` (cosine annealing over ``epochs``, stepped per epoch); a factory
    ``f(optimizer) -> LRScheduler``; or a scheduler instance. Schedulers are stepped once per
    epoch."""
    if scheduler is None:
        return None
    if isinstance(scheduler, str):
        if scheduler.lower() == "cosine":
            return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, epochs))
        if scheduler.lower() in ("none", "constant"):
            return None
        raise ValueError(f"unknown scheduler {scheduler!r}; expected 'cosine', 'constant', a "
                         f"factory optimizer -> scheduler, or a scheduler instance")
    if hasattr(scheduler, "step") and hasattr(scheduler, "state_dict"):
        return scheduler
    if callable(scheduler):
        return scheduler(optimizer)
    raise TypeError(f"scheduler must be None, 'cosine', a factory or a scheduler, got "
                    f"{type(scheduler).__name__}")


def replan_cosine(sched, scheduler, epochs: int) -> None:
    """A resumed ``"cosine"`` run with a new number of epochs: anneal over the new total.

    The loaded state keeps the old ``T_max``; a finished run extended with more epochs would
    then train at ``lr = 0`` (and restart the cosine). Instead the remaining epochs follow the
    cosine of the new total, ``lr_e = eta_min + (lr_0 - eta_min)(1 + cos(pi e / T))/2``.
    The same number of epochs (a killed run) leaves the state untouched.
    """
    if not (isinstance(scheduler, str) and scheduler.lower() == "cosine"
            and isinstance(sched, torch.optim.lr_scheduler.CosineAnnealingLR)):
        return
    t_max = max(1, epochs)
    if sched.T_max == t_max:
        return
    sched.T_max = t_max
    e = sched.last_epoch
    for group, base in zip(sched.optimizer.param_groups, sched.base_lrs):
        group["lr"] = sched.eta_min + (base - sched.eta_min) * (1 + math.cos(math.pi * e / t_max)) / 2
    sched._last_lr = [g["lr"] for g in sched.optimizer.param_groups]
