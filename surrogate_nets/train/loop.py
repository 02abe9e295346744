"""The training loop: :func:`fit` (and :func:`evaluate`, from :mod:`.epoch`).

Both take any ``nn.Module`` that maps a time-major batch ``[T, B, ...]`` to an output
``[T, B, C]`` (or ``[B, C]``), and any loss module ``loss(output, target)``; they are what the
``surrogate-nets`` command line runs, and what a research script calls when it wants its own
model but not its own loop::

    from surrogate_nets import train
    history = train.fit(model, loss, train_loader, test_loader, epochs=5, lr=2e-3,
                        out_dir="runs/exp1")
    print(history.last["test_acc"])

The parts live in their own modules: optimizer and schedule (:mod:`.optim`), one epoch
(:mod:`.epoch`), the output directory and resume (:mod:`.rundir`), callbacks
(:mod:`.callbacks`), processes (:mod:`.distributed`); this module wires them together.
"""

from __future__ import annotations

import math
import os
import re
import time
from pathlib import Path
from typing import Callable, Iterable, Optional, Union

import numpy as np
import torch
from torch import nn

from .._validate import check_int, check_positive
from ..losses.records import enable_recording, restore_recording  # noqa: F401  (re-exported)
from . import checkpoint as ckpt_mod
from . import distributed as dist_mod
from .amp import AMP_MODES, Precision
from .callbacks import (TrainState, callback_states, check_callbacks, check_regularizers, fire,
                        load_callback_states)
from .checkpoint import CheckpointError  # noqa: F401  (re-exported)
from .distributed import resolve_device  # noqa: F401  (re-exported)
from .activity import activity_record, activity_recorder
from .epoch import NonFiniteLossError, eval_epoch, evaluate, nonfinite_message, train_epoch  # noqa: F401
from .history import History, format_table, json_safe
from .loaders import deterministic_loader, set_epoch, shard_loader
from .metrics import check_metrics
from .optim import (alpha_parameters, build_model_optimizer, build_optimizer,  # noqa: F401
                    build_scheduler, replan_cosine)
from .rundir import (ARTIFACTS, BEST, CONFIG, LAST, METRICS, PLOTS, RESUME_FREE_KEYS,  # noqa: F401
                     RunDir, config_differences, prepare_out_dir)


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


def _params_finite(model: nn.Module) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in model.parameters())


def _open_out_dir(out_dir, resume, overwrite, info) -> Optional[RunDir]:
    """Rank 0 checks and prepares the directory and tells the others whether that failed."""
    if out_dir is None:
        if resume:
            raise ValueError("resume=True needs out_dir (the directory holding last.pt)")
        return None
    failure = None
    if info.is_main:
        try:
            prepare_out_dir(out_dir, resume, overwrite)
        except (FileExistsError, ValueError, TypeError, OSError) as e:
            failure = e
    if info.enabled:
        msg = dist_mod.broadcast_object(None if failure is None else str(failure), info)
        if msg is not None and failure is None:
            failure = FileExistsError(msg)
    if failure is not None:
        raise failure
    return RunDir(Path(out_dir))


def _restore(ck, where, model, opt, sched, scheduler, epochs, callbacks, precision) -> None:
    """Load a checkpoint's state into the run's objects (model, optimizer, scheduler, stateful
    callbacks, gradient scaler, RNG states)."""
    if int(ck["epoch"]) > epochs:
        raise ValueError(f"epochs={epochs} is less than the {ck['epoch']} epochs already done by "
                         f"{where}; pass epochs >= {ck['epoch']} to resume (or extend) the run")
    ckpt_mod.load_model_state(model, ck["model"], where)
    if ck.get("optimizer") is not None:
        try:
            opt.load_state_dict(ck["optimizer"])
        except (ValueError, KeyError, RuntimeError) as e:
            raise CheckpointError(f"{where}: optimizer state does not fit this optimizer: {e}") from e
    if sched is not None and ck.get("scheduler") is not None:
        sched.load_state_dict(ck["scheduler"])
        replan_cosine(sched, scheduler, epochs)
    load_callback_states(callbacks, ck.get("callbacks"), where)
    precision.load_state_dict(ck.get("amp"))
    if ck.get("rng"):
        ckpt_mod.set_rng_state(ck["rng"])


def _is_better(value, best, minimise: bool) -> bool:
    if value is None or not isinstance(value, (int, float)) or not math.isfinite(value):
        return False
    return best is None or (value < best["value"] if minimise else value > best["value"])


def fit(model: nn.Module, loss: nn.Module, train_loader: Iterable, test_loader: Optional[Iterable] = None,
        *, epochs: int = 10, optimizer=None, lr: float = 1e-3, weight_decay: float = 0.0,
        alpha_lr: Optional[float] = None, scheduler=None,
        device: Union[str, torch.device, None] = "auto", metrics: Optional[dict] = None,
        callbacks=None, regularizers=None, grad_clip: Optional[float] = None,
        out_dir: Union[str, os.PathLike, None] = None, resume: bool = False, overwrite: bool = False,
        seed: Optional[int] = 0, progress: bool = True, verbose: bool = True,
        config: Optional[dict] = None, predict: Optional[Callable] = None,
        best_metric: Optional[str] = None, plot: bool = True, record: bool = True,
        sync_init: bool = True, amp: Optional[str] = None, stats: bool = False) -> History:
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
        amp: mixed precision, ``None`` (float32), ``"bf16"`` or ``"fp16"`` (autocast; fp16 with
            a gradient scaler whose state is checkpointed), see :mod:`surrogate_nets.train.amp`.
            Part of the run's configuration.
        stats: measure the activity of the test pass (:func:`surrogate_nets.stats.record_activity`)
            and add its totals to every record: ``stats_firing_rate``, ``stats_sparsity``,
            ``stats_synops``, ``stats_macs``, ``stats_snn_macs`` (per sample),
            ``stats_energy_snn_j``, ``stats_energy_ann_j``, ``stats_energy_ratio`` (estimates;
            NaN is written as ``null``). Needs ``test_loader``; costs host syncs in that pass.
            Multi-process: rank 0's shard of the test set.
        sync_init: multi-process only: copy rank 0's parameters and buffers to every rank after
            the first optimizer step (see below). ``False`` only to study what happens without.

    Callbacks with ``state_dict``/``load_state_dict`` (and schedules such as
    :class:`~surrogate_nets.surrogate.AlphaSchedule`, which ``fit`` steps once per epoch) are
    saved in the checkpoints and restored on resume; see :mod:`surrogate_nets.train.callbacks`.

    Multi-process: under ``torchrun`` the process group is initialised (gloo on CPU, nccl on
    CUDA), the model is wrapped in ``DistributedDataParallel``, loaders are sharded, metrics are
    all-reduced, and only rank 0 writes files and shows bars. After the first optimizer step
    the parameters and buffers of rank 0 are copied to every rank, so that data-dependent
    initialisations (the LSQ step of a quantizer, set from each rank's first batch) agree.

    Raises:
        NonFiniteLossError: (a ``FloatingPointError``) the loss became NaN/inf; ``last.pt`` of
            the last finished epoch is kept.
        ValueError: ``resume`` with fewer ``epochs`` than the checkpoint has already done.
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
    callbacks = check_callbacks(callbacks)
    regularizers = check_regularizers(regularizers)
    if best_metric is None:
        best_metric = "test_acc" if test_loader is not None else "train_loss"
    if not isinstance(best_metric, str):
        raise TypeError(f"best_metric must be a str, got {type(best_metric).__name__}")
    minimise = best_metric.endswith("loss")
    if not isinstance(stats, bool):
        raise TypeError(f"stats must be a bool, got {type(stats).__name__} {stats!r}")
    if stats and test_loader is None:
        raise ValueError("stats=True measures the test pass; it needs a test_loader, got None")
    if amp is not None and amp not in AMP_MODES:
        raise ValueError(f"amp must be None or one of {list(AMP_MODES)}, got {amp!r}")

    # -------------------------------------------------------------- processes, model, optimizer
    info, device = dist_mod.setup(resolve_device(device))
    show = info.is_main
    log = (lambda *a: print(*a, flush=True)) if (verbose and show) else (lambda *a: None)
    try:
        if seed is not None:
            ckpt_mod.seed_everything(epoch_seed(seed, 0, info.rank))
        model.to(device)
        if isinstance(loss, nn.Module):
            loss.to(device)
        if getattr(loss, "needs_model", False) and hasattr(loss, "bind"):
            loss.bind(model)
        if record:
            enable_recording(model)
        opt, alpha_group = build_model_optimizer(model, optimizer, lr, weight_decay, alpha_lr)
        sched = build_scheduler(scheduler, opt, epochs)
        precision = Precision(amp, device)
        run_config = dict(config or {})
        run_config["fit"] = {
            "epochs": epochs, "lr": lr, "alpha_lr": alpha_lr, "weight_decay": weight_decay,
            "seed": seed, "optimizer": _name_of(optimizer) or "adam",
            "scheduler": _name_of(scheduler), "grad_clip": grad_clip, "best_metric": best_metric,
            "world_size": info.world_size, "regularizers": [_stable_repr(r) for r in regularizers],
            "loss": _stable_repr(loss), "amp": amp,
        }

        # ---------------------------------------------------------- output dir and resumption
        run_dir = _open_out_dir(out_dir, resume, overwrite, info)
        out = run_dir.out if run_dir is not None else None
        history, start_epoch, best = History(out_dir=out), 0, None
        ck = run_dir.open_for_resume(run_config, log, repair=info.is_main) if resume else None
        if ck is not None:
            _restore(ck, f"checkpoint {str(run_dir.last)!r}", model, opt, sched, scheduler,
                     epochs, callbacks, precision)
            start_epoch, best = int(ck["epoch"]), ck.get("best")
            history = History(list(ck.get("history") or []), out_dir=out)
            log(f"resuming from {run_dir.last} (epoch {start_epoch} of {epochs} done)")
        if run_dir is not None and info.is_main:
            run_dir.write_config(run_config, history.records)
        last_good = start_epoch if ck is not None else None

        # ---------------------------------------------------------- loaders and the epochs
        train_model = dist_mod.wrap_ddp(model, info, device)
        if seed is not None:
            train_loader = deterministic_loader(train_loader, seed)
        train_loader = shard_loader(train_loader, info, seed or 0, train=True)
        if test_loader is not None:
            test_loader = shard_loader(test_loader, info, seed or 0, train=False)
        state = TrainState(model=model, optimizer=opt, scheduler=sched, history=history,
                           epochs=epochs, out_dir=out, rank=info.rank, world_size=info.world_size)
        fire(callbacks, "on_train_begin", state)
        for epoch in range(start_epoch, epochs):
            state.epoch = epoch
            set_epoch(train_loader, epoch)
            if seed is not None:
                ckpt_mod.seed_everything(epoch_seed(seed, epoch, info.rank))
            rec = {"epoch": epoch + 1}
            lrs = [g["lr"] for g in opt.param_groups]
            t0 = time.perf_counter()
            tr = train_epoch(train_model, model, loss, train_loader, opt, device,
                             regularizers=regularizers, grad_clip=grad_clip, metrics=metrics,
                             predict_fn=predict, info=info, bar_desc=f"epoch {epoch + 1}/{epochs}",
                             show_bar=progress and show, state=state, callbacks=callbacks,
                             out_dir=out, last_good=last_good,
                             sync_first_step=sync_init and info.enabled and epoch == start_epoch,
                             precision=precision)
            train_time = time.perf_counter() - t0
            if not _params_finite(model):
                raise NonFiniteLossError(nonfinite_message("a model parameter", "non-finite", epoch,
                                                           max(state.batch, 0), out, last_good))
            if sched is not None:
                sched.step()
            rec.update(tr.result("train_", True))
            t1 = time.perf_counter()
            if test_loader is not None:
                with activity_recorder(model, stats) as act:
                    te = eval_epoch(model, loss, test_loader, device, regularizers=regularizers,
                                    metrics=metrics, predict_fn=predict, info=info,
                                    bar_desc="  test", show_bar=progress and show,
                                    precision=precision)
                rec.update(te.result("test_", loss is not None or bool(regularizers)))
                rec.update(activity_record(act))
            rec["lr"] = lrs[0]
            if alpha_group is not None:
                rec["alpha_lr"] = lrs[alpha_group]
            rec["time_s"] = train_time
            rec["eval_time_s"] = time.perf_counter() - t1
            history.append(rec)
            state.record = rec
            improved = _is_better(rec.get(best_metric), best, minimise)
            if improved:
                best = {"epoch": epoch + 1, "metric": best_metric, "value": float(rec[best_metric])}
            history.best = best
            fire(callbacks, "on_epoch_end", state)  # before saving: schedules have stepped
            if run_dir is not None and info.is_main:
                ck = ckpt_mod.make_checkpoint(
                    model_state=model.state_dict(), optimizer_state=opt.state_dict(),
                    scheduler_state=sched.state_dict() if sched is not None else None,
                    epoch=epoch + 1, config=json_safe(run_config),
                    history=json_safe(history.records), best=best,
                    callbacks=callback_states(callbacks))
                ck["amp"] = precision.state_dict()
                run_dir.save_epoch(ck, improved, rec)
            last_good = epoch + 1
            if info.enabled:
                state.stop = bool(dist_mod.all_reduce_sum([float(state.stop)], info, device)[0] > 0)
            if state.stop:
                history.stopped_early = epoch + 1 < epochs
                if history.stopped_early:
                    log(f"stopped by a callback after epoch {epoch + 1}")
                break
        history.best = best
        fire(callbacks, "on_train_end", state)
        if show and verbose and history.records:
            print(format_table(history.records, best), flush=True)
        if run_dir is not None and info.is_main and plot:
            _plots(history, model, test_loader if test_loader is not None else train_loader,
                   out, device, log)
        if info.enabled:
            dist_mod.barrier(info)
        return history
    finally:
        # DDP's reducer holds the process group: drop the wrapper (and any cycle through it) so
        # the group's gloo threads end here, not during interpreter shutdown (a SIGABRT there).
        train_model = None  # noqa: F841
        dist_mod.teardown(info)


def _plots(history, model, loader, out, device, log) -> None:
    from .plots import save_plots  # matplotlib is optional; plots.py imports nothing from here
    try:
        written = save_plots(history, model, loader, out, device=device)
    except Exception as e:  # plotting must never lose a finished run
        written = []
        log(f"warning: plotting failed ({type(e).__name__}: {e})")
    if written:
        log("plots: " + ", ".join(str(p) for p in written))
