"""``surrogate-nets eval``: the test accuracy (and with ``--stats`` the activity table) of a
checkpoint, rebuilt from the configuration stored in it (see :mod:`surrogate_nets.cli`)."""

from __future__ import annotations

import argparse
import json

_EVAL_REQUIRED = ("dataset", "model", "neuron", "surrogate", "alpha", "learn_alpha", "tau", "hidden",
                  "layers", "loss", "loss_kw", "time_steps", "weight_bits", "act_bits", "seed",
                  "limit_test", "batch_size", "readout")


def cmd_eval(args: argparse.Namespace) -> int:
    """``surrogate-nets eval CHECKPOINT``: rebuild model and test set from the stored
    configuration, load the weights, evaluate (and with ``--stats`` measure the activity)."""
    from .cli import _check_stored_loss
    from .train import (CheckpointError, OptionError, RunConfig, build_run, enable_recording,
                        evaluate, load_checkpoint, load_model_state, resolve_device)
    from .train.history import json_safe

    ck = load_checkpoint(args.checkpoint)
    stored = ck["config"]
    missing = [k for k in _EVAL_REQUIRED if k not in stored]
    if missing:
        raise CheckpointError(
            f"checkpoint {args.checkpoint!r} has no usable command-line configuration (missing "
            f"{missing}); 'eval' needs a checkpoint written by 'surrogate-nets train' (for one "
            f"written by train.fit from Python, rebuild the model and call train.evaluate)")
    _check_stored_loss(stored.get("loss"), args.loss, args.trust_checkpoint_code,
                       f"checkpoint {args.checkpoint!r}")
    stored = dict(stored, readout=stored.get("readout_resolved", stored["readout"]),
                  limit_train=None)
    try:
        cfg = RunConfig.resolve({"data_dir": args.data_dir if args.data_dir is not None
                                 else stored.get("data_dir"), "cache_dir": args.cache_dir}, stored)
        model, loss, data = build_run(cfg, train=False, test=True, test_batch_size=args.batch_size)
    except (OptionError, ValueError, TypeError, KeyError) as e:
        raise CheckpointError(f"checkpoint {args.checkpoint!r}: its stored configuration cannot be "
                              f"rebuilt by this version of surrogate_nets: {e}") from e
    if list(stored.get("input_shape", data.input_shape)) != list(data.input_shape):
        raise CheckpointError(f"checkpoint {args.checkpoint!r} was trained on inputs of shape "
                              f"{stored['input_shape']}, the data now give {list(data.input_shape)}")
    load_model_state(model, ck["model"], f"checkpoint {args.checkpoint!r}")
    device = resolve_device(args.device)
    model.to(device)
    enable_recording(model)
    with _activity(model, args.stats) as act:
        res = evaluate(model, data.test, loss.to(device), device=device,
                       progress=not args.no_progress)
    if act is not None:
        res["stats"] = json_safe(act.stats().as_dict())
    rec = next((r for r in reversed(ck.get("history") or []) if r.get("epoch") == ck["epoch"]), None)
    stored_acc = rec.get("test_acc") if rec else None
    res.update(checkpoint=str(args.checkpoint), epoch=ck["epoch"], stored_test_acc=stored_acc)
    if args.json:
        print(json.dumps(res))
    else:
        acc = res["acc"]
        line = f"test accuracy {100 * acc:.2f}% on {res['samples']} samples" if acc is not None \
            else f"evaluated {res['samples']} samples"
        if res.get("loss") is not None:
            line += f", loss {res['loss']:.4f}"
        if stored_acc is not None:
            line += f" (recorded at epoch {ck['epoch']}: {100 * stored_acc:.2f}%)"
        print(line)
        if act is not None:
            print(act.stats().table())
    return 0


def _activity(model, on: bool):
    """``record_activity(model)`` when ``on``, else a context that yields ``None``."""
    import contextlib
    from .stats import record_activity

    return record_activity(model) if on else contextlib.nullcontext()
