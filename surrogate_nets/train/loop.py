"""The training loop: :func:`fit` and :func:`evaluate`.

Both take any ``nn.Module`` that maps a time-major batch ``[T, B, ...]`` to an output
``[T, B, C]`` (or ``[B, C]``), and any loss module ``loss(output, target)``; they are what the
``surrogate-nets`` command line runs, and what a research script calls when it wants its own
model but not its own loop::

    from surrogate_nets import train
    history = train.fit(model, loss, train_loader, test_loader, epochs=5, lr=2e-3,
                        out_dir="runs/exp1")
    print(history.last["test_acc"])
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, List, Optional, Sequence, Union

import numpy as np
import torch
from torch import nn

from .._validate import check_int, check_positive
from . import checkpoint as ckpt_mod
from . import distributed as dist_mod
from .checkpoint import CheckpointError
from .history import History, format_table, json_safe
from .loaders import deterministic_loader, loader_size, set_epoch, shard_loader
from .metrics import check_metrics, metric_value, predict as default_predict, spike_stats

#: File names inside ``out_dir``.
LAST, BEST, METRICS, CONFIG = "last.pt", "best.pt", "metrics.jsonl", "config.json"
PLOTS = ("curves.png", "sample.png")
#: Every file :func:`fit` may write; ``overwrite=True`` removes exactly these.
ARTIFACTS = (LAST, BEST, METRICS, CONFIG) + PLOTS
#: Config keys that may change between a run and its resumption.
RESUME_FREE_KEYS = frozenset({
    "epochs", "out", "out_dir", "resume", "overwrite", "progress", "no_progress", "verbose",
    "device", "data_dir", "download", "num_workers", "plot", "command",
})


class NonFiniteLossError(FloatingPointError):
    """The training loss (or the parameters) became NaN or infinite; training was stopped."""


@dataclass
class TrainState:
    """What callbacks see: the (unwrapped) model, optimizer, scheduler and progress."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    history: History
    epoch: int = 0            # 0-based index of the current epoch
    epochs: int = 0
    batch: int = 0            # 0-based index of the current batch
    loss: float = float("nan")  # loss of the last batch
    record: Optional[dict] = None  # the record of the last finished epoch
    out_dir: Optional[Path] = None
    rank: int = 0
    world_size: int = 1
    stop: bool = False        # set to True (or return True from a callback) to stop after this epoch
    extra: dict = field(default_factory=dict)


# ------------------------------------------------------------------------------ resolution
def resolve_device(device: Union[str, torch.device, None] = "auto") -> torch.device:
    """``"auto"``/``None``: CUDA when available, else CPU; otherwise ``torch.device(device)``."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if isinstance(device, torch.device):
        dev = device
    elif isinstance(device, str):
        try:
            dev = torch.device(device)
        except RuntimeError as e:
            raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}") from e
    else:
        raise TypeError(f"device must be a str or torch.device, got {type(device).__name__} {device!r}")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available on this machine "
                         f"(use device='cpu' or 'auto')")
    return dev


_OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD,
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
        if key not in _OPTIMIZERS:
            raise ValueError(f"unknown optimizer {optimizer!r}; expected one of {sorted(_OPTIMIZERS)}, "
                             f"a factory params -> Optimizer, or an Optimizer instance")
        check_positive(lr, "lr")
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
        return _OPTIMIZERS[key](groups, **kw)
    if callable(optimizer):
        opt = optimizer(params)
        if not isinstance(opt, torch.optim.Optimizer):
            raise TypeError(f"the optimizer factory must return a torch.optim.Optimizer, got "
                            f"{type(opt).__name__}")
        return opt
    raise TypeError(f"optimizer must be None, a name, a factory or an Optimizer, got "
                    f"{type(optimizer).__name__}")


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


def _replan_cosine(sched, scheduler, epochs: int) -> None:
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


def _name_of(obj) -> Optional[str]:
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    return getattr(obj, "__qualname__", None) or type(obj).__qualname__


def _stable_repr(obj) -> str:
    """``repr`` without memory addresses (so that it compares equal across processes)."""
    return re.sub(r" at 0x[0-9a-fA-F]+", "", repr(obj))


def epoch_seed(seed: int, epoch: int, rank: int = 0) -> int:
    """The seed of the global generators at the start of ``epoch`` (a function of its arguments
    only, so that a resumed run draws the same numbers as an uninterrupted one)."""
    return int(np.random.SeedSequence([int(seed) % (2 ** 63), int(epoch), int(rank)]).generate_state(1)[0])


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def config_differences(old: dict, new: dict, free=RESUME_FREE_KEYS) -> List[str]:
    """Keys whose values differ between two configs, ignoring the ones in ``free``. A key absent
    from ``old`` and ``None`` in ``new`` (an option added after ``old`` was written, at its
    default) is no difference."""
    a, b = _flatten(old or {}), _flatten(new or {})
    diffs = []
    for k in sorted(set(a) | set(b)):
        if k.rsplit(".", 1)[-1] in free:
            continue
        if k not in a and b[k] is None:
            continue  # an option added later, at its default: not a change
        va, vb = a.get(k, "<missing>"), b.get(k, "<missing>")
        if isinstance(va, (list, tuple)) and isinstance(vb, (list, tuple)):
            va, vb = list(va), list(vb)
        if va != vb:
            diffs.append(f"{k}: checkpoint {va!r} vs now {vb!r}")
    return diffs


def _check_callbacks(callbacks) -> list:
    if callbacks is None:
        return []
    if callable(callbacks) or any(hasattr(callbacks, h) for h in
                                  ("on_train_begin", "on_batch_end", "on_epoch_end", "on_train_end")):
        callbacks = [callbacks]
    callbacks = list(callbacks)
    for cb in callbacks:
        if not callable(cb) and not any(hasattr(cb, h) for h in
                                        ("on_train_begin", "on_batch_end", "on_epoch_end", "on_train_end")):
            raise TypeError(f"a callback must be callable(state) or have on_epoch_end/on_batch_end/"
                            f"on_train_begin/on_train_end methods, got {type(cb).__name__}")
    return callbacks


def _fire(callbacks, hook: str, state: TrainState) -> None:
    for cb in callbacks:
        fn = getattr(cb, hook, None)
        if fn is None and hook == "on_epoch_end" and callable(cb) and not hasattr(cb, "on_batch_end"):
            fn = cb
        if fn is not None and fn(state) is True:
            state.stop = True


def _check_regularizers(regularizers) -> list:
    if regularizers is None:
        return []
    if callable(regularizers):
        regularizers = [regularizers]
    regularizers = list(regularizers)
    for r in regularizers:
        if not callable(r):
            raise TypeError(f"regularizers must be callables on the list of recorded spikes "
                            f"(e.g. losses.RateRegularizer), got {type(r).__name__}")
    return regularizers


# ------------------------------------------------------------------------------ recording
def enable_recording(model: nn.Module, keys: Sequence[str] = ("s",)) -> dict:
    """Ask every neuron of ``model`` to also record the traces ``keys`` (those it can record) in
    its ``recorded`` dict, through ``set_record`` (see :mod:`surrogate_nets.neurons`); what a
    neuron already records stays on. Returns ``{module: previous record setting}`` for
    :func:`restore_recording`. Modules without ``set_record`` are left alone."""
    previous = {}
    for m in model.modules():
        fn = getattr(m, "set_record", None)
        if not callable(fn):
            continue
        old = getattr(m, "record", ())
        old = (old,) if isinstance(old, str) else tuple(old or ())
        recordable = getattr(m, "recordable", None)
        wanted = tuple(k for k in keys if recordable is None or k in recordable)
        new = tuple(dict.fromkeys(old + wanted))
        previous[m] = old
        if new != old:
            fn(new)
    return previous


def restore_recording(previous: dict) -> None:
    """Undo :func:`enable_recording`."""
    for m, old in previous.items():
        if tuple(getattr(m, "record", ())) != old:
            m.set_record(old)


# ------------------------------------------------------------------------------ one epoch
class _Sums:
    def __init__(self, names):
        self.loss = 0.0
        self.correct = 0.0
        self.n = 0.0
        self.acc_n = 0.0
        self.spikes = 0.0
        self.spike_n = 0.0
        self.metrics = {k: 0.0 for k in names}

    def vector(self):
        return [self.loss, self.correct, self.n, self.acc_n, self.spikes, self.spike_n,
                *self.metrics.values()]

    def load(self, v):
        self.loss, self.correct, self.n, self.acc_n, self.spikes, self.spike_n = v[:6]
        for k, x in zip(list(self.metrics), v[6:]):
            self.metrics[k] = x

    def result(self, prefix: str, has_loss: bool) -> dict:
        out = {}
        if has_loss:
            out[f"{prefix}loss"] = self.loss / self.n if self.n else float("nan")
        out[f"{prefix}acc"] = self.correct / self.acc_n if self.acc_n else None
        out[f"{prefix}rate"] = self.spikes / self.spike_n if self.spike_n else None
        for k, v in self.metrics.items():
            out[f"{prefix}{k}"] = v / self.n if self.n else None
        return out


def _is_class_target(y: torch.Tensor, out: torch.Tensor) -> bool:
    return (y.dim() == 1 and not y.is_floating_point() and not y.is_complex()
            and out.dim() >= 2)


def _bar(loader, desc: str, enabled: bool):
    from tqdm.auto import tqdm
    return tqdm(total=loader_size(loader), desc=desc, disable=not enabled, leave=True,
                dynamic_ncols=True, file=sys.stderr, unit="batch")


def _postfix(bar, s: _Sums):
    if bar.disable:
        return
    parts = {"loss": f"{s.loss / max(s.n, 1):.4f}"}
    if s.acc_n:
        parts["acc"] = f"{100 * s.correct / s.acc_n:.2f}%"
    if s.spike_n:
        parts["rate"] = f"{s.spikes / s.spike_n:.3f}"
    bar.set_postfix(parts, refresh=False)


def _forward_loss(model, loss_fn, x, y, regularizers, record_model):
    out = model(x)
    value = loss_fn(out, y) if loss_fn is not None else None
    if regularizers:
        from ..losses import regularization
        for reg in regularizers:
            r = regularization(record_model, reg)
            value = r if value is None else value + r
    return out, value


def _accumulate(s: _Sums, out, y, value, loss_fn, predict_fn, metrics, record_model, batch_size):
    if value is not None:
        s.loss += float(value.detach()) * batch_size
    s.n += batch_size
    if _is_class_target(y, out):
        pred = predict_fn(out.detach(), loss_fn) if predict_fn is not None else default_predict(out.detach(), loss_fn)
        s.correct += float((pred == y).sum())
        s.acc_n += batch_size
    total, count = spike_stats(record_model, out)
    s.spikes += total
    s.spike_n += count
    for k, fn in metrics.items():
        with torch.no_grad():
            s.metrics[k] += metric_value(fn, out.detach(), y) * batch_size


def _nonfinite_message(what, value, epoch, batch, out_dir, last_good):
    msg = (f"{what} is {value} at epoch {epoch + 1}, batch {batch + 1}; training stopped")
    if out_dir is not None and last_good is not None:
        msg += (f". The last good checkpoint (epoch {last_good}) is kept in "
                f"{str(Path(out_dir) / LAST)!r}")
    elif out_dir is not None:
        msg += ". No checkpoint had been written yet"
    return msg + ". Try a lower learning rate, gradient clipping (grad_clip / --grad-clip) or check the data."


def _to(batch_part, device):
    if isinstance(batch_part, torch.Tensor):
        return batch_part.to(device, non_blocking=True)
    return batch_part


def _unpack(batch):
    if not isinstance(batch, (tuple, list)) or len(batch) < 2:
        raise TypeError(f"a batch must be a pair (x, y) with x time-major [T, B, ...], got "
                        f"{type(batch).__name__}")
    x, y = batch[0], batch[1]
    if (isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor) and x.dim() >= 2 and y.dim() == 1
            and y.shape[0] == x.shape[0] != x.shape[1]):
        raise ValueError(
            f"batches must be time-major (x [T, B, ...], y [B]), but x has shape {tuple(x.shape)} "
            f"and y {tuple(y.shape)}: x looks sample-major [B, T, ...] (as a plain DataLoader over "
            f"[N, T, ...] data gives). Use train.TensorLoader(X, y, ...), a DataLoader with "
            f"collate_fn=surrogate_nets.data.collate_time_major, or transpose x to [T, B, ...]")
    return x, y


def _train_epoch(model, record_model, loss_fn, loader, optimizer, device, *, regularizers, grad_clip,
                 metrics, predict_fn, info, bar_desc, show_bar, state, callbacks, out_dir, last_good):
    model.train()
    s = _Sums(metrics)
    bar = _bar(loader, bar_desc, show_bar)
    try:
        for i, batch in enumerate(loader):
            x, y = _unpack(batch)
            x, y = _to(x, device), _to(y, device)
            out, value = _forward_loss(model, loss_fn, x, y, regularizers, record_model)
            if value is None:
                raise ValueError("training needs a loss (or regularizers); got loss=None")
            bs = int(y.shape[0]) if isinstance(y, torch.Tensor) and y.dim() > 0 else int(x.shape[1])
            lv = float(value.detach())
            if info.enabled:
                tot, cnt = dist_mod.all_reduce_sum([lv * bs, bs], info, device)
                global_lv = tot / cnt
            else:
                global_lv = lv
            if not math.isfinite(global_lv):
                raise NonFiniteLossError(_nonfinite_message("the training loss", global_lv, state.epoch,
                                                            i, out_dir, last_good))
            optimizer.zero_grad(set_to_none=True)
            value.backward()
            if grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(record_model.parameters(), grad_clip)
            optimizer.step()
            _accumulate(s, out, y, value, loss_fn, predict_fn, metrics, record_model, bs)
            state.batch, state.loss = i, global_lv
            if callbacks:
                _fire(callbacks, "on_batch_end", state)
            bar.update(1)
            _postfix(bar, s)
    finally:
        bar.close()
    if info.enabled:
        s.load(dist_mod.all_reduce_sum(s.vector(), info, device))
    return s


@torch.no_grad()
def _eval_epoch(model, loss_fn, loader, device, *, regularizers, metrics, predict_fn, info,
                bar_desc, show_bar):
    was_training = model.training
    model.eval()
    s = _Sums(metrics)
    bar = _bar(loader, bar_desc, show_bar)
    try:
        for batch in loader:
            x, y = _unpack(batch)
            x, y = _to(x, device), _to(y, device)
            out, value = _forward_loss(model, loss_fn, x, y, regularizers, model)
            bs = int(y.shape[0]) if isinstance(y, torch.Tensor) and y.dim() > 0 else int(x.shape[1])
            _accumulate(s, out, y, value, loss_fn, predict_fn, metrics, model, bs)
            bar.update(1)
            _postfix(bar, s)
    finally:
        bar.close()
        model.train(was_training)
    if info.enabled:
        s.load(dist_mod.all_reduce_sum(s.vector(), info, device))
    return s


def evaluate(model: nn.Module, loader: Iterable, loss: Optional[nn.Module] = None, *,
             device: Union[str, torch.device, None] = None, metrics: Optional[dict] = None,
             predict: Optional[Callable] = None, regularizers=None, progress: bool = False) -> dict:
    """Evaluate ``model`` on ``loader`` without gradients.

    Args:
        model: maps a time-major batch ``[T, B, ...]`` to ``[T, B, C]`` (or ``[B, C]``).
        loader: iterable of ``(x, y)`` with ``x`` ``[T, B, ...]``.
        loss: optional loss module; adds ``"loss"`` (sample-weighted mean over the batches).
        device: where to run; default the device of the model's first parameter (or CPU).
        metrics: ``{name: fn(output, target) -> batch mean}``, averaged over samples.
        predict: ``fn(output, loss) -> [B]`` class predictions; default
            :func:`surrogate_nets.train.metrics.predict` (readout matched to the loss).
        regularizers: added to the loss as in :func:`fit`.
        progress: show a tqdm bar.

    Returns:
        ``{"loss", "acc", "rate", "samples", "time_s", **metrics}``: ``acc`` in ``[0, 1]`` (``None``
        when the targets are not class indices); ``rate`` the mean spike rate of the recorded
        neurons (or the output's mean when nothing is recorded). Under ``torch.distributed`` with a
        sharded loader the sums are all-reduced, so every rank returns the global values.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if loss is not None and not callable(loss):
        raise TypeError(f"loss must be a callable module loss(output, target), got {type(loss).__name__}")
    metrics = check_metrics(metrics)
    regularizers = _check_regularizers(regularizers)
    if device is None:
        p = next(iter(model.parameters()), None)
        device = p.device if p is not None else torch.device("cpu")
    else:
        device = resolve_device(device)
    info = dist_mod.DistInfo()
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        info = dist_mod.DistInfo(torch.distributed.get_rank(), torch.distributed.get_world_size())
    model = dist_mod.unwrap(model)
    t0 = time.perf_counter()
    s = _eval_epoch(model, loss, loader, device, regularizers=regularizers, metrics=metrics,
                    predict_fn=predict, info=info, bar_desc="eval", show_bar=progress and info.is_main)
    res = s.result("", loss is not None or bool(regularizers))
    res["samples"] = int(s.n)
    res["time_s"] = time.perf_counter() - t0
    return res


# ------------------------------------------------------------------------------ output dir
def prepare_out_dir(out_dir, resume: bool, overwrite: bool) -> Optional[Path]:
    """Check and create the output directory.

    An existing, non-empty directory is refused unless ``resume`` (continue from its
    ``last.pt``) or ``overwrite`` (delete the files a previous run wrote there: checkpoints,
    metrics, config, plots; nothing else) is given.
    """
    if out_dir is None:
        return None
    if not isinstance(out_dir, (str, os.PathLike)):
        raise TypeError(f"out_dir must be a str or os.PathLike, got {type(out_dir).__name__} {out_dir!r}")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"output path {str(out)!r} exists and is not a directory")
    if resume and overwrite:
        raise ValueError("resume and overwrite exclude each other; pass one of them")
    if out.is_dir() and any(out.iterdir()) and not (resume or overwrite):
        raise FileExistsError(
            f"output directory {str(out)!r} already exists and is not empty; pass resume=True "
            f"(--resume) to continue its run, overwrite=True (--overwrite) to replace it, or "
            f"choose another directory")
    if overwrite and out.is_dir():
        for name in ARTIFACTS:
            p = out / name
            if p.is_file():
                p.unlink()
        for p in out.glob(".*.tmp"):
            p.unlink()
    out.mkdir(parents=True, exist_ok=True)
    return out


def _append_jsonl(path: Path, record: dict) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(json_safe(record), sort_keys=False) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def _write_jsonl(path: Path, records: List[dict]) -> None:
    text = "".join(json.dumps(json_safe(r)) + "\n" for r in records)
    ckpt_mod.atomic_write_text(path, text)


def _params_finite(model: nn.Module) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in model.parameters())


# ------------------------------------------------------------------------------ fit
def fit(model: nn.Module, loss: nn.Module, train_loader: Iterable, test_loader: Optional[Iterable] = None,
        *, epochs: int = 10, optimizer=None, lr: float = 1e-3, weight_decay: float = 0.0,
        alpha_lr: Optional[float] = None, scheduler=None,
        device: Union[str, torch.device, None] = "auto", metrics: Optional[dict] = None,
        callbacks=None, regularizers=None, grad_clip: Optional[float] = None,
        out_dir: Union[str, os.PathLike, None] = None, resume: bool = False, overwrite: bool = False,
        seed: Optional[int] = 0, progress: bool = True, verbose: bool = True,
        config: Optional[dict] = None, predict: Optional[Callable] = None,
        best_metric: Optional[str] = None, plot: bool = True, record: bool = True) -> History:
    r"""Train ``model`` with ``loss`` for ``epochs`` epochs; returns the :class:`History`.

    Each epoch: the loader order is set by ``(seed, epoch)``; the global generators are seeded
    with :func:`epoch_seed`; one pass of ``optimizer`` steps over ``train_loader`` (loss plus the
    ``regularizers`` applied to the neurons' recorded spikes, gradients clipped to norm
    ``grad_clip``); the scheduler steps; ``test_loader`` is evaluated; the record
    (``train_loss, train_acc, train_rate, test_loss, test_acc, test_rate, lr, time_s, ...``) is
    appended to the history, ``out_dir/metrics.jsonl`` and the checkpoints ``out_dir/last.pt``
    (always) and ``out_dir/best.pt`` (when ``best_metric`` improved), both written atomically.

    Args:
        model: maps ``x`` ``[T, B, ...]`` to ``[T, B, C]`` (or ``[B, C]``).
        loss: module ``loss(output, target) -> scalar``; a loss with ``needs_model = True`` is
            bound to the model (``loss.bind(model)``) first.
        train_loader, test_loader: iterables of ``(x, y)``, ``x`` time-major ``[T, B, ...]``;
            typically :class:`~surrogate_nets.train.TensorLoader` or a ``DataLoader`` with a
            time-major collate. A shuffling ``DataLoader`` is rebuilt with an order that depends
            on ``(seed, epoch)`` only.
        epochs: total number of epochs (a resumed run continues up to it).
        optimizer: ``None`` (Adam), a name (``"adam"``, ``"adamw"``, ``"sgd"``, ``"rmsprop"``), a
            factory ``f(params) -> Optimizer`` or an Optimizer instance.
        lr, weight_decay: for a named/default optimizer.
        alpha_lr: learning rate of the learnable surrogate sharpnesses (the ``raw_alpha`` of every
            :class:`~surrogate_nets.surrogate.Surrogate` submodule with ``learnable=True``, see
            :func:`alpha_parameters`), which move little at a weight learning rate. Set, the
            named/default optimizer gets two param groups: the other parameters (``lr``,
            ``weight_decay``; group 0) and the alphas (``alpha_lr``, no weight decay; group 1);
            a scheduler scales both, and each record gets ``alpha_lr`` next to ``lr``. ``None``
            (default): one group, alphas at ``lr``. A model without learnable alphas gets a
            ``UserWarning`` and one group; a factory or Optimizer instance is a ``ValueError``
            (make the groups yourself). Part of the run's configuration (checked on resume).
        scheduler: ``None``, ``"cosine"``, a factory ``f(optimizer)`` or an instance; stepped per epoch.
        device: ``"auto"`` (CUDA if available), ``"cpu"``, ``"cuda"``, ``"cuda:N"``.
        metrics: extra ``{name: fn(output, target) -> batch mean}``, reported as
            ``train_<name>``/``test_<name>``.
        callbacks: callables ``cb(state)`` run after each epoch, or objects with any of
            ``on_train_begin/on_batch_end/on_epoch_end/on_train_end(state)``
            (:class:`TrainState`); returning ``True`` or setting ``state.stop`` stops after the epoch.
        regularizers: callables on the list of recorded spikes (e.g.
            :class:`~surrogate_nets.losses.RateRegularizer`), added to the loss.
        grad_clip: max gradient norm, or ``None``.
        out_dir: where checkpoints, ``metrics.jsonl``, ``config.json`` and plots go; ``None``
            writes nothing. A non-empty directory needs ``resume`` or ``overwrite``.
        resume: continue from ``out_dir/last.pt`` (model, optimizer, scheduler, RNG states,
            history); with the same seed the result equals an uninterrupted run. Without a
            checkpoint there, training starts from scratch.
        overwrite: replace the files of a previous run in ``out_dir``.
        seed: seeds the epoch order and the generators; ``None`` leaves the generators alone
            (then only the saved RNG states make resumption reproducible).
        progress: tqdm bars (rank 0 only). verbose: print the summary table and notes.
        config: the resolved configuration of the run (JSON types), stored in ``config.json`` and
            the checkpoints; a resumed run must match it except for :data:`RESUME_FREE_KEYS`.
        predict: ``fn(output, loss) -> [B]`` predictions for the accuracy.
        best_metric: record key that selects ``best.pt``; default ``"test_acc"`` with a test
            loader, else ``"train_loss"``. Keys ending in ``loss`` are minimised, others maximised.
        plot: write PNG plots to ``out_dir`` when matplotlib is installed.
        record: switch on spike recording in the model's neurons (for the rate and the plots).

    Multi-process: under ``torchrun`` the process group is initialised (gloo on CPU, nccl on
    CUDA), the model is wrapped in ``DistributedDataParallel``, loaders are sharded, metrics are
    all-reduced, and only rank 0 writes files and shows bars.

    Raises:
        NonFiniteLossError: (a ``FloatingPointError``) the loss became NaN/inf; ``last.pt`` of
            the last finished epoch is kept.
        CheckpointError: ``resume`` with a corrupt or incompatible checkpoint.
        FileExistsError: ``out_dir`` exists and neither ``resume`` nor ``overwrite`` was given.
    """
    # -------------------------------------------------------------- argument checks
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if loss is not None and not callable(loss):
        raise TypeError(f"loss must be a callable module loss(output, target), got {type(loss).__name__}")
    if train_loader is None:
        raise ValueError("train_loader must be an iterable of (x, y) batches, got None")
    epochs = check_int(epochs, "epochs", minimum=0)
    check_positive(lr, "lr")
    check_positive(weight_decay, "weight_decay", allow_zero=True)
    if alpha_lr is not None:
        check_positive(alpha_lr, "alpha_lr")
        if optimizer is not None and not isinstance(optimizer, str):
            raise ValueError("alpha_lr applies to a named or default optimizer only; with an "
                             "optimizer factory or instance, build the param groups yourself (the "
                             "learnable alphas are surrogate_nets.train.alpha_parameters(model))")
    if grad_clip is not None:
        check_positive(grad_clip, "grad_clip")
    if seed is not None:
        seed = check_int(seed, "seed", minimum=0)
    if config is not None and not isinstance(config, dict):
        raise TypeError(f"config must be a dict or None, got {type(config).__name__}")
    metrics = check_metrics(metrics)
    callbacks = _check_callbacks(callbacks)
    regularizers = _check_regularizers(regularizers)
    if best_metric is None:
        best_metric = "test_acc" if test_loader is not None else "train_loss"
    if not isinstance(best_metric, str):
        raise TypeError(f"best_metric must be a str, got {type(best_metric).__name__}")
    minimise = best_metric.endswith("loss")

    # -------------------------------------------------------------- processes and devices
    device = resolve_device(device)
    info, device = dist_mod.setup(device)
    show = info.is_main
    try:
        return _fit(**locals())
    finally:
        dist_mod.teardown(info)


def _fit(*, model, loss, train_loader, test_loader, epochs, optimizer, lr, weight_decay, alpha_lr,
         scheduler,
         device, metrics, callbacks, regularizers, grad_clip, out_dir, resume, overwrite, seed,
         progress, verbose, config, predict, best_metric, plot, record, minimise, info, show):
    log = (lambda *a: print(*a, flush=True)) if (verbose and show) else (lambda *a: None)
    if seed is not None:
        ckpt_mod.seed_everything(epoch_seed(seed, 0, info.rank))
    model.to(device)
    if isinstance(loss, nn.Module):
        loss.to(device)
    if getattr(loss, "needs_model", False) and hasattr(loss, "bind"):
        loss.bind(model)
    if record:
        enable_recording(model)
    alphas = alpha_parameters(model) if alpha_lr is not None else []
    if alpha_lr is not None and not any(p.requires_grad for p in alphas):
        warnings.warn("fit(alpha_lr=...): the model has no learnable surrogate alpha "
                      "(Surrogate with learnable=True); alpha_lr is ignored", UserWarning, stacklevel=3)
    opt = build_optimizer(optimizer, model.parameters(), lr, weight_decay,
                          alpha_lr=alpha_lr, alpha_params=alphas)
    # index of the alphas' param group (the last one), None when they share the weights' group
    alpha_group = len(opt.param_groups) - 1 if alpha_lr is not None and any(
        p.requires_grad for p in alphas) else None
    sched = build_scheduler(scheduler, opt, epochs)

    run_config = dict(config or {})
    run_config["fit"] = {
        "epochs": epochs, "lr": lr, "alpha_lr": alpha_lr, "weight_decay": weight_decay, "seed": seed,
        "optimizer": _name_of(optimizer) or "adam", "scheduler": _name_of(scheduler),
        "grad_clip": grad_clip, "best_metric": best_metric, "world_size": info.world_size,
        "regularizers": [_stable_repr(r) for r in regularizers], "loss": _stable_repr(loss),
    }

    # -------------------------------------------------------------- output dir and resumption
    out = None
    if out_dir is not None:
        failure = None
        if info.is_main:  # rank 0 alone checks and prepares the directory ...
            try:
                prepare_out_dir(out_dir, resume, overwrite)
            except (FileExistsError, ValueError, TypeError) as e:
                failure = e
        if info.enabled:  # ... and tells the others whether that failed
            msg = dist_mod.broadcast_object(None if failure is None else str(failure), info)
            if msg is not None and failure is None:
                failure = FileExistsError(msg)
        if failure is not None:
            raise failure
        out = Path(out_dir)
    history = History(out_dir=out)
    start_epoch = 0
    best = None
    last_good = None
    if resume:
        if out is None:
            raise ValueError("resume=True needs out_dir (the directory holding last.pt)")
        path = out / LAST
        if path.is_file():
            ck = ckpt_mod.load_checkpoint(path, map_location="cpu")
            diffs = config_differences(ck["config"], json_safe(run_config))
            if diffs:
                raise CheckpointError(
                    f"checkpoint {str(path)!r} was written by a run with a different configuration; "
                    f"resume needs the same settings (except {sorted(RESUME_FREE_KEYS)}). "
                    f"Differences: " + "; ".join(diffs))
            ckpt_mod.load_model_state(model, ck["model"], f"checkpoint {str(path)!r}")
            if ck.get("optimizer") is not None:
                try:
                    opt.load_state_dict(ck["optimizer"])
                except (ValueError, KeyError, RuntimeError) as e:
                    raise CheckpointError(f"checkpoint {str(path)!r}: optimizer state does not fit "
                                          f"this optimizer: {e}") from e
            if sched is not None and ck.get("scheduler") is not None:
                sched.load_state_dict(ck["scheduler"])
                _replan_cosine(sched, scheduler, epochs)
            if ck.get("rng"):
                ckpt_mod.set_rng_state(ck["rng"])
            start_epoch = int(ck["epoch"])
            history = History(list(ck.get("history") or []), out_dir=out)
            best = ck.get("best")
            last_good = start_epoch
            log(f"resuming from {path} (epoch {start_epoch} of {epochs} done)")
        else:
            log(f"resume: no checkpoint in {str(out)!r} yet, starting from scratch")
    if out is not None and info.is_main:
        ckpt_mod.atomic_write_text(out / CONFIG, json.dumps(json_safe(run_config), indent=2) + "\n")
        _write_jsonl(out / METRICS, history.records)

    # -------------------------------------------------------------- parallel wrappers, loaders
    record_model = model
    train_model = dist_mod.wrap_ddp(model, info, device)
    if seed is not None:
        train_loader = deterministic_loader(train_loader, seed)
    train_loader = shard_loader(train_loader, info, seed or 0, train=True)
    if test_loader is not None:
        test_loader = shard_loader(test_loader, info, seed or 0, train=False)

    state = TrainState(model=model, optimizer=opt, scheduler=sched, history=history, epochs=epochs,
                       out_dir=out, rank=info.rank, world_size=info.world_size)
    _fire(callbacks, "on_train_begin", state)
    stopped_early = False
    for epoch in range(start_epoch, epochs):
        state.epoch = epoch
        set_epoch(train_loader, epoch)
        if seed is not None:
            ckpt_mod.seed_everything(epoch_seed(seed, epoch, info.rank))
        lr_now = opt.param_groups[0]["lr"]
        alpha_lr_now = opt.param_groups[alpha_group]["lr"] if alpha_group is not None else None
        t0 = time.perf_counter()
        tr = _train_epoch(train_model, record_model, loss, train_loader, opt, device,
                          regularizers=regularizers, grad_clip=grad_clip, metrics=metrics,
                          predict_fn=predict, info=info, bar_desc=f"epoch {epoch + 1}/{epochs}",
                          show_bar=progress and show, state=state, callbacks=callbacks,
                          out_dir=out, last_good=last_good)
        train_time = time.perf_counter() - t0
        if not _params_finite(model):
            raise NonFiniteLossError(_nonfinite_message("a model parameter", "non-finite", epoch,
                                                        max(state.batch, 0), out, last_good))
        if sched is not None:
            sched.step()
        rec = {"epoch": epoch + 1}
        rec.update(tr.result("train_", True))
        t1 = time.perf_counter()
        if test_loader is not None:
            te = _eval_epoch(model, loss, test_loader, device, regularizers=regularizers, metrics=metrics,
                             predict_fn=predict, info=info, bar_desc="  test", show_bar=progress and show)
            rec.update(te.result("test_", loss is not None or bool(regularizers)))
        rec["lr"] = lr_now
        if alpha_lr_now is not None:
            rec["alpha_lr"] = alpha_lr_now
        rec["time_s"] = train_time
        rec["eval_time_s"] = time.perf_counter() - t1
        history.append(rec)
        state.record = rec

        value = rec.get(best_metric)
        improved = False
        if value is not None and isinstance(value, (int, float)) and math.isfinite(value):
            improved = best is None or (value < best["value"] if minimise else value > best["value"])
            if improved:
                best = {"epoch": epoch + 1, "metric": best_metric, "value": float(value)}
        history.best = best
        if out is not None and info.is_main:
            ck = ckpt_mod.make_checkpoint(
                model_state=model.state_dict(), optimizer_state=opt.state_dict(),
                scheduler_state=sched.state_dict() if sched is not None else None,
                epoch=epoch + 1, config=json_safe(run_config), history=json_safe(history.records),
                best=best)
            ckpt_mod.save_checkpoint(ck, out / LAST)
            if improved:
                ckpt_mod.save_checkpoint(ck, out / BEST)
            _append_jsonl(out / METRICS, rec)
        last_good = epoch + 1
        _fire(callbacks, "on_epoch_end", state)
        if info.enabled:
            state.stop = bool(dist_mod.all_reduce_sum([float(state.stop)], info, device)[0] > 0)
        if state.stop:
            stopped_early = epoch + 1 < epochs
            if stopped_early:
                log(f"stopped by a callback after epoch {epoch + 1}")
            break
    history.best = best
    history.stopped_early = stopped_early
    _fire(callbacks, "on_train_end", state)
    if show and verbose and history.records:
        print(format_table(history.records, best), flush=True)
    if out is not None and info.is_main and plot:
        from .plots import save_plots
        try:
            written = save_plots(history, model, test_loader if test_loader is not None else train_loader,
                                 out, device=device)
        except Exception as e:  # plotting must never lose a finished run
            written = []
            log(f"warning: plotting failed ({type(e).__name__}: {e})")
        if written:
            log("plots: " + ", ".join(str(p) for p in written))
    if info.enabled:
        dist_mod.barrier(info)
    return history
