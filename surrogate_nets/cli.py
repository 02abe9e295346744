"""The ``surrogate-nets`` command line (also ``python -m surrogate_nets``).

::

    surrogate-nets train [--dataset digits] [--model mlp] [--neuron lif] [--loss membrane-ce]
                         [--epochs N] [--out DIR] [--resume | --overwrite] ...
    surrogate-nets eval CHECKPOINT [--data-dir DIR] [--device auto]

``train`` writes ``DIR/config.json`` (the resolved configuration), ``DIR/metrics.jsonl`` (one JSON
record per epoch), ``DIR/last.pt`` and ``DIR/best.pt`` (checkpoints, loadable with
``torch.load(..., weights_only=True)``) and, with matplotlib, ``DIR/curves.png`` and
``DIR/sample.png``. ``--resume`` continues an interrupted run from ``DIR/last.pt`` with the
configuration stored there (options given again must agree, except ``--epochs`` and the
device/progress/data-location options), and ends with exactly the parameters an uninterrupted
run would have. ``--learn-alpha --alpha-lr LR`` trains the surrogate sharpnesses with their own
learning rate (a second optimizer param group; ``--alpha-lr`` without ``--learn-alpha`` is ignored
with a warning). ``eval`` rebuilds the model and the test set from a checkpoint's stored
configuration and recomputes the test accuracy.

Under ``torchrun --nproc_per_node=N -m surrogate_nets train ...`` the run is data parallel
(gloo on CPU, nccl on CUDA); rank 0 writes the files.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import List, Optional

#: Defaults of ``train``; ``None`` entries are resolved from the data set or the loss.
DEFAULTS = {
    "dataset": "digits",
    "data_dir": None,
    "download": False,
    "model": "mlp",
    "neuron": "lif",
    "surrogate": "atan",
    "alpha": None,
    "learn_alpha": False,
    "alpha_lr": None,
    "tau": 4.0,
    "hidden": 256,
    "layers": 1,
    "readout": "auto",
    "loss": "membrane-ce",
    "loss_kw": [],
    "epochs": 10,
    "batch_size": 64,
    "lr": 2e-3,
    "optimizer": "adam",
    "scheduler": "cosine",
    "grad_clip": None,
    "time_steps": None,
    "weight_bits": None,
    "act_bits": None,
    "device": "auto",
    "seed": 0,
    "limit_train": None,
    "limit_test": None,
    "workers": 0,
}
#: Options that describe the run (stored in the config and checked on resume).
RUN_KEYS = ("dataset", "model", "neuron", "surrogate", "alpha", "learn_alpha", "alpha_lr", "tau",
            "hidden", "layers", "readout", "loss", "loss_kw", "epochs", "batch_size", "lr", "optimizer",
            "scheduler", "grad_clip", "time_steps", "weight_bits", "act_bits", "seed",
            "limit_train", "limit_test")
#: Options about where and how to run, which may differ between a run and its resumption.
PLACE_KEYS = ("data_dir", "download", "device", "workers")
PROG = "surrogate-nets"


class CLIError(Exception):
    """A user error: printed as ``surrogate-nets: error: ...`` with exit status 2."""


# ------------------------------------------------------------------------------ parser
def _int_at_least(text: str, low: int, expected: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    if v < low:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return v


def _positive_int(text: str) -> int:
    return _int_at_least(text, 1, "a positive integer")


def _nonneg_int(text: str) -> int:
    return _int_at_least(text, 0, "an integer >= 0")


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not (v > 0 and v < float("inf")):
        raise argparse.ArgumentTypeError(f"expected a positive finite number, got {text!r}")
    return v


def _bits(text: str) -> int:
    v = _positive_int(text)
    if v > 16:
        raise argparse.ArgumentTypeError(f"bit widths go from 1 to 16, got {text!r}")
    return v


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``surrogate-nets`` (every ``train`` default is ``None`` here and
    filled from :data:`DEFAULTS` later, so that explicitly given options can be told apart)."""
    from .train.datasets import DATASETS
    from .train.models import MODELS, NEURONS, READOUTS
    from . import __version__

    parser = argparse.ArgumentParser(
        prog=PROG, description="Train and evaluate spiking / quantized networks with learnable "
                               "surrogate gradients.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="{train,eval}")

    t = sub.add_parser("train", help="train a model (default: an SNN on the embedded DigitEvents)",
                       description="Train a spiking network. Defaults train an MLP SNN of LIF "
                                   "neurons with a leaky-integrator readout on the embedded "
                                   "DigitEvents data set in well under a minute on 2 CPU cores.")
    d = DEFAULTS
    g = t.add_argument_group("data")
    g.add_argument("--dataset", choices=DATASETS, default=None,
                   help=f"data set (default {d['dataset']}: embedded, no download)")
    g.add_argument("--data-dir", default=None,
                   help="where the recorded data sets are (tonic layout); for digits the cache")
    g.add_argument("--download", action="store_true", default=None,
                   help="allow downloading a missing recorded data set (nmnist, shd, dvsgesture)")
    g.add_argument("--time-steps", type=_positive_int, default=None,
                   help="time steps T per sample (default per data set: digits 12, randman 50, "
                        "nmnist 20, shd 50, dvsgesture 16)")
    g.add_argument("--batch-size", type=_positive_int, default=None, help=f"default {d['batch_size']}")
    g.add_argument("--limit-train", type=_positive_int, default=None,
                   help="use only N training samples, spread evenly over the split (quick runs)")
    g.add_argument("--limit-test", type=_positive_int, default=None,
                   help="use only N test samples, spread evenly over the split (quick runs)")
    g.add_argument("--workers", type=_nonneg_int, default=None,
                   help="DataLoader worker processes for the recorded data sets (default 0)")

    g = t.add_argument_group("model")
    g.add_argument("--model", choices=MODELS, default=None, help=f"default {d['model']}")
    g.add_argument("--neuron", choices=NEURONS, default=None, help=f"hidden neurons (default {d['neuron']})")
    g.add_argument("--surrogate", default=None,
                   help=f"surrogate family, e.g. atan, fast-sigmoid, triangle, dspike "
                        f"(default {d['surrogate']})")
    g.add_argument("--alpha", type=_positive_float, default=None,
                   help="surrogate sharpness (default: the family's default)")
    g.add_argument("--learn-alpha", action="store_true", default=None,
                   help="learn the surrogate sharpness alpha")
    g.add_argument("--alpha-lr", type=_positive_float, default=None,
                   help="learning rate of the learned alphas (their own optimizer param group, no "
                        "weight decay, same schedule; default: --lr). Only with --learn-alpha: "
                        "without it a warning is printed and the option is ignored")
    g.add_argument("--tau", type=float, default=None,
                   help=f"membrane time constant in steps, > 1 (default {d['tau']})")
    g.add_argument("--hidden", type=_positive_int, default=None, help=f"hidden width (default {d['hidden']})")
    g.add_argument("--layers", type=_positive_int, default=None,
                   help=f"hidden layers of the mlp (default {d['layers']})")
    g.add_argument("--readout", choices=("auto",) + READOUTS, default=None,
                   help="output layer: spike (LIF), li (membrane of a leaky integrator) or linear "
                        "(per-step logits); auto picks what the loss expects")
    g.add_argument("--weight-bits", type=_bits, default=None,
                   help="quantize weights to B bits (LSQ; QuantLinear/QuantConv2d)")
    g.add_argument("--act-bits", type=_bits, default=None,
                   help="quantize synaptic currents to B bits (QuantAct)")

    g = t.add_argument_group("training")
    g.add_argument("--loss", default=None,
                   help=f"loss: a built-in name (rate-ce, count-ce, count-mse, membrane-ce, tet, "
                        f"first-spike, ...), 'package.module:Class', 'file.py:Class' or an entry "
                        f"point (default {d['loss']})")
    g.add_argument("--loss-kw", action="append", default=None, metavar="K=V",
                   help="keyword argument of the loss, repeatable (e.g. --loss-kw reduce=mean)")
    g.add_argument("--epochs", type=_nonneg_int, default=None, help=f"default {d['epochs']}")
    g.add_argument("--lr", type=_positive_float, default=None, help=f"learning rate (default {d['lr']})")
    g.add_argument("--optimizer", choices=("adam", "adamw", "sgd", "rmsprop"), default=None,
                   help=f"default {d['optimizer']}")
    g.add_argument("--scheduler", choices=("cosine", "constant"), default=None,
                   help=f"learning-rate schedule per epoch (default {d['scheduler']})")
    g.add_argument("--grad-clip", type=_positive_float, default=None, help="clip the gradient norm")
    g.add_argument("--seed", type=_nonneg_int, default=None, help=f"default {d['seed']}")
    g.add_argument("--device", default=None, help="auto (default), cpu, cuda or cuda:N")

    g = t.add_argument_group("output")
    g.add_argument("--out", default=None,
                   help="output directory (default runs/<dataset>-<model>-<time>); an existing "
                        "non-empty one needs --resume or --overwrite")
    ex = g.add_mutually_exclusive_group()
    ex.add_argument("--resume", action="store_true", help="continue the run in --out from last.pt")
    ex.add_argument("--overwrite", action="store_true",
                    help="replace the files of an earlier run in --out")
    g.add_argument("--no-progress", action="store_true", help="no progress bars")
    g.add_argument("--no-plots", action="store_true", help="do not write PNG plots")

    e = sub.add_parser("eval", help="recompute the test accuracy of a checkpoint",
                       description="Rebuild model and test set from the configuration stored in a "
                                   "checkpoint, load its weights and evaluate.")
    e.add_argument("checkpoint", help="a last.pt / best.pt written by 'surrogate-nets train'")
    e.add_argument("--data-dir", default=None, help="override the stored data directory")
    e.add_argument("--device", default="auto", help="auto (default), cpu, cuda or cuda:N")
    e.add_argument("--batch-size", type=_positive_int, default=None, help="test batch size")
    e.add_argument("--no-progress", action="store_true", help="no progress bar")
    e.add_argument("--json", action="store_true", help="print the result as one JSON object")
    return parser


# ------------------------------------------------------------------------------ config
def resolve_config(args: argparse.Namespace, stored: Optional[dict] = None) -> dict:
    """The resolved configuration: options given on the command line, else the stored
    configuration of the run being resumed, else :data:`DEFAULTS` (and per-data-set defaults)."""
    from .train.datasets import DEFAULT_TIME_STEPS

    cfg = {}
    for key in RUN_KEYS + PLACE_KEYS:
        given = getattr(args, key, None)
        if given is not None:
            cfg[key] = _absolute_loss_file(given) if key == "loss" else given
        elif stored is not None and key in stored and key not in PLACE_KEYS:
            cfg[key] = stored[key]
        else:
            cfg[key] = DEFAULTS[key]
    if cfg["time_steps"] is None:
        cfg["time_steps"] = DEFAULT_TIME_STEPS[cfg["dataset"]]
    cfg["loss_kw"] = _loss_kwargs(cfg["loss_kw"])
    return cfg


def _absolute_loss_file(spec):
    """``"rel/file.py:Name"`` -> ``"/abs/rel/file.py:Name"`` when that file exists, so that
    ``eval`` and ``--resume`` find the plug-in from any working directory; else ``spec``."""
    module, sep, attr = str(spec).rpartition(":")
    if sep and module.strip().endswith(".py") and not os.path.isabs(module.strip()) \
            and os.path.isfile(module.strip()):
        return f"{os.path.abspath(module.strip())}:{attr}"
    return spec


def _loss_kwargs(items) -> dict:
    from .losses import parse_kwargs
    if isinstance(items, dict):
        return dict(items)
    try:
        return parse_kwargs(items or [])
    except (ValueError, TypeError) as e:
        raise CLIError(f"--loss-kw: {e}") from e


def build_run(cfg: dict, *, train: bool = True, test: bool = True, data_dir=None,
              test_batch_size: Optional[int] = None):
    """``(model, loss, data)`` for a resolved configuration (used by ``train`` and ``eval``)."""
    import torch

    from .losses import get as get_loss
    from .train.datasets import build_data
    from .train.models import build_model, readout_for

    try:
        loss = get_loss(cfg["loss"], **cfg["loss_kw"])
    except (ValueError, TypeError) as e:
        raise CLIError(str(e)) from e
    readout = cfg["readout"] if cfg["readout"] != "auto" else readout_for(cfg["loss"])
    data = build_data(cfg["dataset"], time_steps=cfg["time_steps"], batch_size=cfg["batch_size"],
                      seed=cfg["seed"], data_dir=data_dir, download=bool(cfg.get("download")),
                      limit_train=cfg["limit_train"], limit_test=cfg["limit_test"],
                      workers=cfg.get("workers") or 0, train=train, test=test,
                      test_batch_size=test_batch_size)
    torch.manual_seed(cfg["seed"])
    model = build_model(cfg["model"], data.input_shape, data.num_classes, neuron=cfg["neuron"],
                        surrogate=cfg["surrogate"], alpha=cfg["alpha"], learn_alpha=cfg["learn_alpha"],
                        tau=cfg["tau"], hidden=cfg["hidden"], layers=cfg["layers"], readout=readout,
                        weight_bits=cfg["weight_bits"], act_bits=cfg["act_bits"])
    cfg["readout_resolved"] = readout
    cfg["input_shape"] = list(data.input_shape)
    cfg["num_classes"] = int(data.num_classes)
    return model, loss, data


def _is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


# ------------------------------------------------------------------------------ commands
def cmd_train(args: argparse.Namespace) -> int:
    from . import __version__
    from .train import fit, load_checkpoint
    from .train.loop import LAST

    stored = None
    if args.out is None:
        if args.resume:
            raise CLIError("--resume needs --out DIR (the directory of the run to continue)")
        dataset = args.dataset or DEFAULTS["dataset"]
        model = args.model or DEFAULTS["model"]
        args.out = os.path.join("runs", f"{dataset}-{model}-{time.strftime('%Y%m%d-%H%M%S')}")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise CLIError(f"--out {args.out!r} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not (args.resume or args.overwrite):
        raise CLIError(f"output directory {args.out!r} already exists; pass --resume to continue "
                       f"its run, --overwrite to replace it, or choose another --out")
    if args.resume and (out / LAST).is_file():
        stored = load_checkpoint(out / LAST)["config"]
    cfg = resolve_config(args, stored)
    model, loss, data = build_run(cfg, data_dir=cfg["data_dir"])
    config = {k: cfg[k] for k in RUN_KEYS}
    config.update(readout_resolved=cfg["readout_resolved"], input_shape=cfg["input_shape"],
                  num_classes=cfg["num_classes"], data_dir=cfg["data_dir"], device=cfg["device"],
                  command="train", version=__version__)
    if _is_main_process():
        n_params = sum(p.numel() for p in model.parameters())
        print(f"{cfg['dataset']}: input {tuple(cfg['input_shape'])} x T={cfg['time_steps']}, "
              f"{cfg['num_classes']} classes; model {cfg['model']} ({cfg['neuron']}, "
              f"readout {cfg['readout_resolved']}, {n_params} parameters); loss {cfg['loss']}; "
              f"out {args.out}", flush=True)
    alpha_lr = cfg["alpha_lr"]
    if alpha_lr is not None and not cfg["learn_alpha"]:
        if _is_main_process():
            print(f"{PROG}: warning: --alpha-lr {alpha_lr:g} has no effect without --learn-alpha "
                  f"(the surrogate alphas are fixed); ignored", file=sys.stderr, flush=True)
        alpha_lr = None
    history = fit(model, loss, data.train, data.test, epochs=cfg["epochs"], optimizer=cfg["optimizer"],
                  lr=cfg["lr"], alpha_lr=alpha_lr,
                  scheduler=None if cfg["scheduler"] == "constant" else cfg["scheduler"],
                  device=cfg["device"], grad_clip=cfg["grad_clip"], out_dir=args.out,
                  resume=args.resume, overwrite=args.overwrite, seed=cfg["seed"],
                  progress=not args.no_progress, verbose=True, config=config,
                  plot=not args.no_plots)
    if _is_main_process() and history.records:
        last = history.last
        acc = last.get("test_acc")
        msg = f"final test accuracy {100 * acc:.2f}%" if acc is not None else "done"
        if history.best:
            msg += f" (best {history.best['metric']} {_pct(history.best)} at epoch {history.best['epoch']})"
        print(f"{msg}; checkpoints and metrics in {args.out}", flush=True)
    return 0


def _pct(best):
    v = best["value"]
    return f"{100 * v:.2f}%" if best["metric"].endswith("acc") else f"{v:.4g}"


_EVAL_REQUIRED = ("dataset", "model", "neuron", "surrogate", "alpha", "learn_alpha", "tau", "hidden",
                  "layers", "loss", "loss_kw", "time_steps", "weight_bits", "act_bits", "seed",
                  "limit_test", "batch_size", "readout")


def cmd_eval(args: argparse.Namespace) -> int:
    from .train import CheckpointError, evaluate, load_checkpoint, load_model_state
    from .train.loop import resolve_device

    ck = load_checkpoint(args.checkpoint)
    stored = ck["config"]
    missing = [k for k in _EVAL_REQUIRED if k not in stored]
    if missing:
        raise CheckpointError(
            f"checkpoint {args.checkpoint!r} has no usable command-line configuration (missing "
            f"{missing}); 'eval' needs a checkpoint written by 'surrogate-nets train' (for one "
            f"written by train.fit from Python, rebuild the model and call train.evaluate)")
    cfg = {k: stored.get(k, DEFAULTS.get(k)) for k in RUN_KEYS + PLACE_KEYS}
    cfg["loss_kw"] = _loss_kwargs(cfg["loss_kw"])
    cfg["readout"] = stored.get("readout_resolved", stored["readout"])
    cfg["limit_train"] = None
    data_dir = args.data_dir if args.data_dir is not None else stored.get("data_dir")
    try:
        model, loss, data = build_run(cfg, train=False, test=True, data_dir=data_dir,
                                      test_batch_size=args.batch_size)
    except CLIError:
        raise
    except (ValueError, TypeError, KeyError) as e:
        raise CheckpointError(f"checkpoint {args.checkpoint!r}: its stored configuration cannot be "
                              f"rebuilt by this version of surrogate_nets: {e}") from e
    if list(stored.get("input_shape", cfg["input_shape"])) != cfg["input_shape"]:
        raise CheckpointError(f"checkpoint {args.checkpoint!r} was trained on inputs of shape "
                              f"{stored['input_shape']}, the data now give {cfg['input_shape']}")
    load_model_state(model, ck["model"], f"checkpoint {args.checkpoint!r}")
    device = resolve_device(args.device)
    model.to(device)
    from .train.loop import enable_recording
    enable_recording(model)
    res = evaluate(model, data.test, loss.to(device), device=device, progress=not args.no_progress)
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
    return 0


# ------------------------------------------------------------------------------ entry point
def main(argv: Optional[List[str]] = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); returns the exit status
    (0 success, 1 training failure such as a NaN loss or a bad checkpoint, 2 usage error)."""
    from .train import CheckpointError, NonFiniteLossError

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        if args.command == "train":
            return cmd_train(args)
        return cmd_eval(args)
    except CLIError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    except (CheckpointError, NonFiniteLossError) as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 1
    except (ValueError, TypeError, FileExistsError, FileNotFoundError) as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
