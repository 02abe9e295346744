"""One pass over a loader: a training epoch (forward, loss, backward, step) or an evaluation.

The sums of an epoch (loss, correct predictions, spikes, extra metrics) are all-reduced across
processes, so every rank reports the global values. :func:`evaluate` is the public entry.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from pathlib import Path
from typing import Callable, Iterable, Optional, Union

import torch
from torch import nn

from . import distributed as dist_mod
from .amp import Precision
from .callbacks import check_regularizers, fire
from .loaders import loader_size
from .metrics import check_metrics, metric_value, predict as default_predict, spike_stats

#: Name of the last checkpoint in an output directory (quoted by the NaN-guard message).
LAST = "last.pt"


class NonFiniteLossError(FloatingPointError):
    """The training loss (or the parameters) became NaN or infinite; training was stopped."""


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


def nonfinite_message(what, value, epoch, batch, out_dir, last_good):
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


def train_epoch(model, record_model, loss_fn, loader, optimizer, device, *, regularizers, grad_clip,
                metrics, predict_fn, info, bar_desc, show_bar, state, callbacks, out_dir, last_good,
                sync_first_step: bool = False, precision=None):
    """One training pass; returns the epoch's sums. ``sync_first_step``: after the first
    optimizer step, copy rank 0's parameters and buffers to every rank (data-dependent
    initialisations such as the LSQ step then agree, see
    :func:`~surrogate_nets.train.distributed.broadcast_module_state`)."""
    precision = precision if precision is not None else Precision(None, device)
    model.train()
    s = _Sums(metrics)
    bar = _bar(loader, bar_desc, show_bar)
    try:
        for i, batch in enumerate(loader):
            x, y = _unpack(batch)
            x, y = _to(x, device), _to(y, device)
            with precision.autocast():
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
                raise NonFiniteLossError(nonfinite_message("the training loss", global_lv, state.epoch,
                                                            i, out_dir, last_good))
            precision.step(value, optimizer, record_model.parameters(), grad_clip)
            if sync_first_step and i == 0:
                dist_mod.broadcast_module_state(record_model, info)
            _accumulate(s, out, y, value, loss_fn, predict_fn, metrics, record_model, bs)
            state.batch, state.loss = i, global_lv
            if callbacks:
                fire(callbacks, "on_batch_end", state)
            bar.update(1)
            _postfix(bar, s)
    finally:
        bar.close()
    if info.enabled:
        s.load(dist_mod.all_reduce_sum(s.vector(), info, device))
    return s


@torch.no_grad()
def eval_epoch(model, loss_fn, loader, device, *, regularizers, metrics, predict_fn, info,
               bar_desc, show_bar, precision=None):
    was_training = model.training
    model.eval()
    s = _Sums(metrics)
    bar = _bar(loader, bar_desc, show_bar)
    try:
        for batch in loader:
            x, y = _unpack(batch)
            x, y = _to(x, device), _to(y, device)
            with (precision.autocast() if precision is not None else contextlib.nullcontext()):
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
    regularizers = check_regularizers(regularizers)
    if device is None:
        p = next(iter(model.parameters()), None)
        device = p.device if p is not None else torch.device("cpu")
    else:
        device = dist_mod.resolve_device(device)
    info = dist_mod.DistInfo()
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        info = dist_mod.DistInfo(torch.distributed.get_rank(), torch.distributed.get_world_size())
    model = dist_mod.unwrap(model)
    t0 = time.perf_counter()
    s = eval_epoch(model, loss, loader, device, regularizers=regularizers, metrics=metrics,
                    predict_fn=predict, info=info, bar_desc="eval", show_bar=progress and info.is_main)
    res = s.result("", loss is not None or bool(regularizers))
    res["samples"] = int(s.n)
    res["time_s"] = time.perf_counter() - t0
    return res
