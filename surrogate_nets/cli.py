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
run would have. ``eval`` rebuilds the model and the test set from a checkpoint's stored
configuration and recomputes the test accuracy.

The options are the fields of :class:`surrogate_nets.train.RunConfig`; their choices and limits
come from the registries. A checkpoint is data: a loss plug-in named in a checkpoint
(``file.py:Class``, ``pkg.mod:Class``, an entry point) is imported only if you name it again
with ``--loss`` or pass ``--trust-checkpoint-code``.

Under ``torchrun --nproc_per_node=N -m surrogate_nets train ...`` the run is data parallel
(gloo on CPU, nccl on CUDA); rank 0 writes the files.

Exit status: 0 success, 1 a failed run (NaN loss, unusable checkpoint), 2 a usage error (the
message names the option), 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import List, Optional

PROG = "surrogate-nets"
_GROUPS = ("data", "model", "training")


class CLIError(Exception):
    """A user error: printed as ``surrogate-nets: error: ...`` with exit status 2."""


# ------------------------------------------------------------------------------ parser
def _parser_type(check, flag: str):
    from .train import OptionError

    def conv(text):
        try:
            return check(text)
        except OptionError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    conv.__name__ = getattr(check, "__name__", "value")
    return conv


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, generated from the fields of :class:`~surrogate_nets.train.RunConfig`
    (every ``train`` default is ``None`` here so that given options can be told apart)."""
    from . import __version__
    from .train import RunConfig

    parser = argparse.ArgumentParser(
        prog=PROG, description="Train and evaluate spiking / quantized networks with learnable "
                               "surrogate gradients.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="{train,eval}")

    t = sub.add_parser("train", help="train a model (default: an SNN on the embedded DigitEvents)",
                       description="Train a spiking network. Defaults train an MLP SNN of LIF "
                                   "neurons with a leaky-integrator readout on the embedded "
                                   "DigitEvents data set in well under a minute on 2 CPU cores.")
    groups = {g: t.add_argument_group(g) for g in _GROUPS}
    for f in RunConfig.options():
        m = f.metadata
        flag = "--" + f.name.replace("_", "-")
        default = RunConfig.default_of(f.name)
        help_text = m["help"] + (f" (default {default})" if default not in (None, False, []) else "")
        if f.name == "loss":
            from .train import classification_losses
            help_text += "; built-in: " + ", ".join(classification_losses())
        kw = {"default": None, "help": help_text}
        if m["action"]:
            kw["action"] = m["action"]
        check = m["check"]
        if check is not None and hasattr(check, "choices"):
            kw["choices"] = list(check.choices())
        elif check is not None and not m["action"] and f.name not in ("loss", "surrogate"):
            kw["type"] = _parser_type(check, flag)  # loss/surrogate: checked in resolve (exit 2)
        if m["metavar"]:
            kw["metavar"] = m["metavar"]
        if m.get("const") is not None:
            kw.update(nargs="?", const=m["const"])
        groups[m["group"]].add_argument(flag, **kw)

    t.add_argument("--config", default=None, metavar="FILE.toml",
                   help="read options from a TOML file (keys are the option names, e.g. "
                        "lr = 1e-3, neuron = \"plif\", loss_kw = {reduce = \"mean\"}); options on "
                        "the command line override it; config.json stores the resolved result")
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
    _trust_flag(t)

    e = sub.add_parser("eval", help="recompute the test accuracy of a checkpoint",
                       description="Rebuild model and test set from the configuration stored in a "
                                   "checkpoint, load its weights and evaluate.")
    e.add_argument("checkpoint", help="a last.pt / best.pt written by 'surrogate-nets train'")
    e.add_argument("--data-dir", default=None, help="override the stored data directory")
    e.add_argument("--device", default="auto", help="auto (default), cpu, cuda or cuda:N")
    e.add_argument("--batch-size", type=_parser_type(RunConfig.check_of("batch_size"), "--batch-size"),
                   default=None, help="test batch size")
    e.add_argument("--loss", default=None,
                   help="the loss plug-in the checkpoint names (needed, instead of "
                        "--trust-checkpoint-code, when it is not a built-in)")
    e.add_argument("--no-progress", action="store_true", help="no progress bar")
    e.add_argument("--json", action="store_true", help="print the result as one JSON object")
    e.add_argument("--stats", action="store_true",
                   help="also print the activity table of the test set: per-layer firing rate, "
                        "sparsity, SynOps vs MACs and an energy estimate (surrogate_nets.stats)")
    e.add_argument("--cache-dir", default=None, metavar="DIR",
                   help="cache the frames of a recorded data set on disk under DIR")
    _trust_flag(e)
    return parser


def _trust_flag(p) -> None:
    p.add_argument("--trust-checkpoint-code", action="store_true",
                   help="import and RUN the loss plug-in code that a checkpoint or stored "
                        "configuration names (file.py:Class, package.module:Class, entry point) "
                        "without naming it again with --loss. This executes code from the "
                        "named file or package: only use it for checkpoints you trust")


# ------------------------------------------------------------------------------ config
def _given(args: argparse.Namespace) -> dict:
    """Options of the command line, over those of ``--config FILE``."""
    from .train import RunConfig
    given = _config_file(args.config) if getattr(args, "config", None) else {}
    for name in RunConfig.names():
        v = getattr(args, name, None)
        if v is not None:
            given[name] = v
    return given


def _config_file(path: str) -> dict:
    from .train import OptionError, RunConfig
    try:
        return RunConfig.read_toml(path)
    except OptionError as e:
        raise CLIError(str(e)) from None


def _resolve(given: dict, stored: Optional[dict] = None):
    from .train import OptionError, RunConfig
    try:
        return RunConfig.resolve(given, stored)
    except OptionError as e:
        raise CLIError(str(e)) from None


def _check_stored_loss(stored_loss, given_loss, trust: bool, where: str) -> None:
    """Refuse to import a loss plug-in that only a checkpoint names (issue: no code from files)."""
    from . import losses
    from .train import RunConfig

    if stored_loss is None or losses.is_builtin(stored_loss) or trust:
        return
    if given_loss is not None:
        try:
            given = RunConfig.check_value("loss", given_loss)
        except ValueError as e:
            raise CLIError(f"--loss: {e}") from None
        if given == stored_loss:
            return
    raise CLIError(
        f"{where} names the loss plug-in {stored_loss!r}, which is not a built-in; loading it "
        f"would import and run that code. Name it again with --loss {stored_loss!r} if you trust "
        f"it, or pass --trust-checkpoint-code")


def _check_writable(out: Path, given: str) -> None:
    """An unwritable ``--out`` is a usage error, found before any data is loaded."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        if not os.access(out, os.W_OK | os.X_OK):
            raise PermissionError(13, "Permission denied")
    except OSError as e:
        raise CLIError(f"--out {given!r}: cannot create or write this directory "
                       f"({e.strerror or e})") from None


def _is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


# ------------------------------------------------------------------------------ commands
def cmd_train(args: argparse.Namespace) -> int:
    from . import __version__
    from .train import build_run, fit, load_checkpoint, resolved_readout

    if args.out is None:
        if args.resume:
            raise CLIError("--resume needs --out DIR (the directory of the run to continue)")
        args.out = os.path.join("runs", f"{args.dataset or 'digits'}-{args.model or 'mlp'}-"
                                        f"{time.strftime('%Y%m%d-%H%M%S')}")
    if not str(args.out).strip():
        raise CLIError(f"--out: expected a directory path, got {args.out!r}")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise CLIError(f"--out {args.out!r} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not (args.resume or args.overwrite):
        raise CLIError(f"output directory {args.out!r} already exists; pass --resume to continue "
                       f"its run, --overwrite to replace it, or choose another --out")
    stored = None
    if args.resume and (out / "last.pt").is_file():
        ck = load_checkpoint(out / "last.pt")
        stored, done = ck["config"], int(ck["epoch"])
        del ck
        if args.epochs is not None and args.epochs < done:
            raise CLIError(f"--epochs {args.epochs} is less than the {done} epochs the run in "
                           f"{args.out!r} has already done; pass --epochs >= {done} to extend it")
        _check_stored_loss(stored.get("loss"), args.loss, args.trust_checkpoint_code,
                           f"the run in {args.out!r}")
    cfg = _resolve(_given(args), stored)
    if _is_main_process():
        _check_writable(out, args.out)
    try:
        model, loss, data = build_run(cfg)
    except (ValueError, TypeError) as e:
        raise CLIError(str(e)) from e
    config = cfg.run_dict()
    config.update(readout_resolved=resolved_readout(cfg), input_shape=list(data.input_shape),
                  num_classes=int(data.num_classes), data_dir=cfg.data_dir, device=cfg.device,
                  command="train", version=__version__)
    if _is_main_process():
        n_params = sum(p.numel() for p in model.parameters())
        steps = cfg.time_steps or f"variable ({cfg.events_per_frame} events per frame)"
        print(f"{cfg.dataset}: input {tuple(data.input_shape)} x T={steps}, "
              f"{data.num_classes} classes; model {cfg.model} ({cfg.neuron}, readout "
              f"{config['readout_resolved']}, {n_params} parameters); loss {cfg.loss}; "
              f"out {args.out}", flush=True)
    alpha_lr = cfg.alpha_lr
    if alpha_lr is not None and not cfg.learn_alpha:
        if _is_main_process():
            print(f"{PROG}: warning: --alpha-lr {alpha_lr:g} has no effect without --learn-alpha "
                  f"(the surrogate alphas are fixed); ignored", file=sys.stderr, flush=True)
        alpha_lr = None
    callbacks = _sinks(cfg.log)
    history = fit(model, loss, data.train, data.test, epochs=cfg.epochs, optimizer=cfg.optimizer,
                  lr=cfg.lr, weight_decay=cfg.weight_decay or 0.0, alpha_lr=alpha_lr,
                  scheduler=None if cfg.scheduler == "constant" else cfg.scheduler,
                  device=cfg.device, grad_clip=cfg.grad_clip, amp=cfg.amp, out_dir=args.out,
                  resume=args.resume, overwrite=args.overwrite, seed=cfg.seed,
                  progress=not args.no_progress, verbose=True, config=config,
                  plot=not args.no_plots, callbacks=callbacks, stats=cfg.stats_every_epoch)
    if _is_main_process() and history.records:
        last = history.last
        acc = last.get("test_acc")
        msg = f"final test accuracy {100 * acc:.2f}%" if acc is not None else "done"
        if history.best:
            msg += f" (best {history.best['metric']} {_pct(history.best)} at epoch {history.best['epoch']})"
        print(f"{msg}; checkpoints and metrics in {args.out}", flush=True)
    return 0


def _sinks(log: Optional[str]) -> list:
    from .train import make_sinks, parse_sinks
    try:
        return make_sinks(parse_sinks(log))
    except ImportError as e:
        raise CLIError(f"--log {log}: {e}") from None


def _pct(best):
    v = best["value"]
    return f"{100 * v:.2f}%" if best["metric"].endswith("acc") else f"{v:.4g}"


def cmd_eval(args: argparse.Namespace) -> int:
    from ._cli_eval import cmd_eval as run
    return run(args)


# ------------------------------------------------------------------------------ deprecated aliases
def __getattr__(name):
    """``DEFAULTS``, ``RUN_KEYS``, ``PLACE_KEYS``, ``resolve_config`` and ``build_run`` of earlier
    versions, now derived from :class:`surrogate_nets.train.RunConfig` (deprecated)."""
    from .train import RunConfig, build_run as _build_run

    if name == "DEFAULTS":
        return {n: RunConfig.default_of(n) for n in RunConfig.names()}
    if name == "RUN_KEYS":
        return tuple(n for n in RunConfig.names() if n not in RunConfig.names("place"))
    if name == "PLACE_KEYS":
        return RunConfig.names("place")
    if name == "resolve_config":
        return lambda args, stored=None: _resolve(_given(args), stored).to_dict()
    if name == "build_run":
        def build_run(cfg, **kw):
            if isinstance(cfg, dict):
                cfg = _resolve({k: v for k, v in cfg.items() if k in RunConfig.names()})
            return _build_run(cfg, **kw)
        return build_run
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
    except OSError as e:  # unwritable --out, full disk: the message names the path and cause
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
