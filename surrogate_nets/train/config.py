"""The configuration of a command-line run: :class:`RunConfig`, and the builders beside it.

Every option of ``surrogate-nets train`` is one typed field of :class:`RunConfig`; its
metadata holds the help text, the option group, the parser's value check (choices and limits
come from the registries: :data:`~surrogate_nets.train.OPTIMIZERS`, the schedules, the zoo's
neurons, :func:`surrogate_nets.surrogate.names`, :func:`surrogate_nets.losses.names`, the
quantizers' ``MAX_BITS``) and what a resume may do with it:

* ``resume="fixed"`` (default): part of the run; a resumed run inherits the stored value, and a
  different value on the command line is refused;
* ``resume="free"``: may change on resume, and inherits the stored value when not given
  (``epochs``: extend a run);
* ``resume="place"``: where and how to run (device, data location, workers); never stored as
  part of the run, never inherited.

:func:`build_run` turns a resolved configuration into ``(model, loss, data)``; ``train`` and
``eval`` both use it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from .datasets import DATASETS, DEFAULT_TIME_STEPS, FRAME_MODES, RECORDED, build_data
from .models import MODELS, NEURONS, READOUTS, build_model, readout_for
from .amp import AMP_MODES
from .optim import OPTIMIZERS, SCHEDULERS
from .sinks import SINKS
from .options import (OptionError, _bits, _bool, _choices, _float, _int, _loss_name,  # noqa: F401
                      _nonneg_float, _nonneg_int, _opt, _pos_float, _pos_int, _sink_list,
                      _surrogate_name, _tau, _absolute_loss_file, classification_losses, max_bits,
                      _fraction, _probability)


# ------------------------------------------------------------------------------ the config
@dataclass
class RunConfig:
    """Every option of ``surrogate-nets train`` (see the module docstring for the metadata)."""

    # data
    dataset: str = _opt("digits", "data set (embedded digits: no download)", "data",
                        check=_choices(lambda: DATASETS))
    data_dir: Optional[str] = _opt(None, "where the recorded data sets are (tonic layout); for "
                                         "digits the cache", "data", resume="place")
    download: bool = _opt(False, "allow downloading a missing recorded data set (nmnist, shd, "
                                 "dvsgesture)", "data", resume="place", action="store_true",
                          check=_bool)
    time_steps: Optional[int] = _opt(None, "time steps T per sample (default per data set: "
                                     + ", ".join(f"{k} {v}" for k, v in DEFAULT_TIME_STEPS.items())
                                     + ")", "data", check=_pos_int)
    batch_size: int = _opt(64, "training batch size", "data", check=_pos_int)
    limit_train: Optional[int] = _opt(None, "use only N training samples, spread evenly over the "
                                            "split (quick runs)", "data", check=_pos_int)
    limit_test: Optional[int] = _opt(None, "use only N test samples, spread evenly over the split",
                                     "data", check=_pos_int)
    workers: int = _opt(0, "DataLoader worker processes for the recorded data sets", "data",
                        check=_nonneg_int, resume="place")
    # tonic options of the recorded data sets (keywords of data.get_dataset; see RECORDED)
    cache_dir: Optional[str] = _opt(
        None, "cache the frames of nmnist/shd/dvsgesture on disk under DIR (tonic "
              "DiskCachedDataset); with --drop-event only the test split is cached (a cache "
              "would freeze the random drop)", "data", resume="place", metavar="DIR")
    denoise: Optional[int] = _opt(
        None, "drop events without a neighbouring event within US microseconds (tonic Denoise; "
              "nmnist, dvsgesture)", "data", check=_pos_int, metavar="US")
    frames: Optional[str] = _opt(
        None, "slice the events into frames by time (T time bins, the default) or by count (T "
              "frames of equal event count, or --events-per-frame)", "data",
        check=_choices(lambda: FRAME_MODES))
    events_per_frame: Optional[int] = _opt(
        None, "frames of N events each: a variable number of frames, zero-padded in a batch "
              "(implies --frames count; not with --time-steps)", "data", check=_pos_int,
        metavar="N")
    duration_ms: Optional[float] = _opt(
        None, "bin the fixed window [0, D ms] of every recording into T bins (e.g. shd "
              "--time-steps 100 --duration-ms 1000: 10 ms bins); later events are dropped",
        "data", check=_pos_float, metavar="D")
    drop_event: Optional[float] = _opt(
        None, "augmentation: drop each event of a training sample with probability P (tonic "
              "DropEvent, drawn anew every epoch; the test split is untouched)", "data",
        check=_probability, metavar="P")
    # model
    model: str = _opt("mlp", "network of the zoo", "model", check=_choices(lambda: MODELS))
    neuron: str = _opt("lif", "hidden neurons", "model", check=_choices(lambda: NEURONS))
    surrogate: str = _opt("atan", "surrogate family: a registry name or alias, or an installed "
                                  "plug-in (entry-point group surrogate_nets.surrogates)", "model",
                          check=_surrogate_name)
    alpha: Optional[float] = _opt(None, "surrogate sharpness (default: the family's default)",
                                  "model", check=_pos_float)
    learn_alpha: bool = _opt(False, "learn the surrogate sharpness alpha", "model",
                             action="store_true", check=_bool)
    adaptive_alpha: Optional[float] = _opt(
        None, "set the surrogate sharpness from data (surrogate.Adaptive): alpha keeps a "
              "fraction Q in (0, 1) of the neurons' pre-activations inside the surrogate's "
              "half-maximum width (bare flag: Q = 0.2); --alpha is the start value. Not with "
              "--learn-alpha", "model", check=_fraction, const=0.2, metavar="Q")
    alpha_lr: Optional[float] = _opt(
        None, "learning rate of the learned alphas (their own optimizer param group, no weight "
              "decay, same schedule; default: --lr). Only with --learn-alpha: without it a "
              "warning is printed and the option is ignored", "model", check=_pos_float)
    tau: float = _opt(4.0, "membrane time constant in steps, > 1", "model", check=_tau)
    hidden: int = _opt(256, "hidden width", "model", check=_pos_int)
    layers: int = _opt(1, "hidden layers of the mlp", "model", check=_pos_int)
    readout: str = _opt("auto", "output layer: spike (LIF), li (membrane of a leaky integrator) "
                                "or linear (per-step logits); auto picks what the loss expects",
                        "model", check=_choices(lambda: ("auto",) + READOUTS))
    weight_bits: Optional[int] = _opt(None, "quantize weights to B bits (LSQ; QuantLinear/"
                                            "QuantConv2d)", "model", check=_bits)
    act_bits: Optional[int] = _opt(None, "quantize synaptic currents to B bits (QuantAct)",
                                   "model", check=_bits)
    # training
    loss: str = _opt("membrane-ce", "loss: a built-in classification loss, 'package.module:Class', "
                                    "'file.py:Class' or an installed entry point (the last three "
                                    "import and run that code)", "training", check=_loss_name)
    loss_kw: List[str] = _opt([], "keyword argument of the loss, repeatable (e.g. --loss-kw "
                                  "reduce=mean)", "training", metavar="K=V", action="append")
    epochs: int = _opt(10, "total number of epochs (on --resume: continue or extend to it)",
                       "training", check=_pos_int, resume="free")
    lr: float = _opt(2e-3, "learning rate", "training", check=_pos_float)
    weight_decay: Optional[float] = _opt(None, "weight decay of the named optimizer (default 0; "
                                               "never applied to learned alphas)", "training",
                                         check=_nonneg_float)
    optimizer: str = _opt("adam", "optimizer", "training", check=_choices(lambda: tuple(OPTIMIZERS)))
    scheduler: str = _opt("cosine", "learning-rate schedule per epoch", "training",
                          check=_choices(lambda: SCHEDULERS))
    grad_clip: Optional[float] = _opt(None, "clip the gradient norm", "training", check=_pos_float)
    amp: Optional[str] = _opt(None, "mixed precision: bf16 or fp16 (autocast; fp16 with loss "
                                    "scaling); default float32", "training",
                              check=_choices(lambda: AMP_MODES))
    stats_every_epoch: bool = _opt(
        False, "log the activity totals of each epoch's test pass (firing rate, sparsity, "
               "SynOps, MACs, energy estimate; surrogate_nets.stats) into metrics.jsonl",
        "training", action="store_true", check=_bool, resume="free")
    seed: int = _opt(0, "seed of the initialisation, the data order and the generators",
                     "training", check=_nonneg_int)
    device: str = _opt("auto", "auto, cpu, cuda or cuda:N", "training", resume="place")
    log: Optional[str] = _opt(None, "extra logging sinks beside metrics.jsonl, comma-separated: "
                                    + ", ".join(SINKS) + " (tensorboard needs the tensorboard "
                                    "package)", "training", check=_sink_list, resume="free")

    # ------------------------------------------------------------------ metadata access
    @classmethod
    def options(cls) -> Tuple[dataclasses.Field, ...]:
        return dataclasses.fields(cls)

    @classmethod
    def names(cls, resume: Optional[str] = None) -> Tuple[str, ...]:
        """Field names (those with the given ``resume`` metadata)."""
        return tuple(f.name for f in cls.options() if resume is None or f.metadata["resume"] == resume)

    @classmethod
    def check_of(cls, name: str):
        """The value check of option ``name`` (``None`` when any value goes)."""
        return {f.name: f for f in cls.options()}[name].metadata["check"]

    @classmethod
    def default_of(cls, name: str):
        f = {f.name: f for f in cls.options()}[name]
        return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default

    @classmethod
    def check_value(cls, name: str, value):
        """``value`` checked and converted by the option's check; an :class:`OptionError`
        naming the option (``--name: ...``) when it does not fit."""
        check = cls.check_of(name)
        if value is None or check is None:
            return value
        try:
            return check(value)
        except OptionError as e:
            raise OptionError(f"--{name.replace('_', '-')}: {e}") from None

    @classmethod
    def resolve(cls, given: Dict[str, Any], stored: Optional[dict] = None) -> "RunConfig":
        """Options given (not ``None``), else the stored run's values (resume; not for
        ``resume="place"`` fields), else the defaults; every value checked."""
        values = {}
        for f in cls.options():
            v = given.get(f.name)
            if v is None and stored is not None and f.metadata["resume"] != "place" and f.name in stored:
                v = stored[f.name]
            if v is None:
                v = cls.default_of(f.name)
            if f.name == "loss_kw":
                v = parse_loss_kwargs(v)
            else:
                v = cls.check_value(f.name, v)
            values[f.name] = v
        cfg = cls(**values)
        problem = cfg.conflict()
        if problem:
            raise OptionError(problem)
        if cfg.time_steps is None and cfg.events_per_frame is None:
            cfg.time_steps = DEFAULT_TIME_STEPS[cfg.dataset]
        return cfg

    def conflict(self) -> Optional[str]:
        """The message of the first combination of options that does not apply, or ``None``
        (before the default ``time_steps`` is filled in)."""
        tonic_flags = [f"--{n.replace('_', '-')}" for n in
                       ("cache_dir", "denoise", "events_per_frame", "duration_ms", "drop_event")
                       if getattr(self, n) is not None]
        if self.frames == "count":
            tonic_flags.append("--frames count")
        if tonic_flags and self.dataset not in RECORDED:
            how = ("binned in memory into T time bins of its fixed 300 ms window"
                   if self.dataset == "digits" else "generated as dense spikes [T, N]")
            return (f"{', '.join(tonic_flags)}: applies to the recorded data sets "
                    f"({', '.join(RECORDED)}); --dataset {self.dataset} is {how}")
        if self.denoise is not None and self.dataset == "shd":
            return ("--denoise: needs a 2-D sensor (x and y); shd events have no y coordinate "
                    f"(got --denoise {self.denoise} --dataset shd)")
        if self.events_per_frame is not None:
            if self.time_steps is not None:
                return (f"--events-per-frame {self.events_per_frame} gives a variable number of "
                        f"frames; it does not go with --time-steps {self.time_steps}")
            if self.frames == "time":
                return "--events-per-frame slices by event count; it does not go with --frames time"
            if self.duration_ms is not None:
                return "--duration-ms fixes a time window; it does not go with --events-per-frame"
        if self.frames == "count" and self.duration_ms is not None:
            return "--duration-ms fixes a time window; it does not go with --frames count"
        if self.adaptive_alpha is not None and self.learn_alpha:
            return ("--adaptive-alpha and --learn-alpha both move the surrogate sharpness; "
                    "choose one")
        return None

    @classmethod
    def read_toml(cls, path) -> Dict[str, Any]:
        """The options of a TOML file (keys are field names, ``-`` or ``_``), checked like the
        command line's; an :class:`OptionError` naming ``--config``, the file and the key."""
        try:
            import tomllib
        except ModuleNotFoundError:  # Python 3.10
            import tomli as tomllib
        where = f"--config {str(path)!r}"
        try:
            with open(path, "rb") as fh:
                raw = tomllib.load(fh)
        except OSError as e:
            raise OptionError(f"{where}: cannot read it ({e.strerror or e})") from None
        except tomllib.TOMLDecodeError as e:
            raise OptionError(f"{where}: not valid TOML: {e}") from None
        known = cls.names()
        out = {}
        for key, value in raw.items():
            name = key.strip().replace("-", "_")
            if name not in known:
                raise OptionError(f"{where}: unknown option {key!r}; the options are {sorted(known)}")
            if name not in ("loss", "loss_kw", "surrogate"):
                try:
                    value = cls.check_value(name, value)
                except OptionError as e:
                    raise OptionError(f"{where}: {key} = {value!r}: {e}") from None
            out[name] = value
        return out

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def run_dict(self) -> dict:
        """What ``config.json`` and the checkpoints store: every field except the ``"place"``
        ones, plus ``resume_free`` (the fields a resume may change)."""
        d = {k: v for k, v in self.to_dict().items() if k not in self.names("place")}
        d["resume_free"] = list(self.names("free") + self.names("place"))
        return d


def parse_loss_kwargs(items) -> dict:
    """``--loss-kw`` values (``["k=v", ...]``) or a stored dict -> a dict."""
    from ..losses import parse_kwargs
    if isinstance(items, dict):
        return dict(items)
    try:
        return parse_kwargs(items or [])
    except (ValueError, TypeError) as e:
        raise OptionError(f"--loss-kw: {e}") from e


# ------------------------------------------------------------------------------ builders
def build_data_for(cfg: RunConfig, *, train: bool = True, test: bool = True, data_dir=None,
                   test_batch_size: Optional[int] = None):
    """The :class:`~surrogate_nets.train.datasets.DataBundle` of a configuration."""
    return build_data(cfg.dataset, time_steps=cfg.time_steps, batch_size=cfg.batch_size,
                      seed=cfg.seed, data_dir=data_dir if data_dir is not None else cfg.data_dir,
                      download=bool(cfg.download), limit_train=cfg.limit_train,
                      limit_test=cfg.limit_test, workers=cfg.workers or 0, train=train, test=test,
                      test_batch_size=test_batch_size, **tonic_options(cfg))


def tonic_options(cfg: RunConfig) -> dict:
    """The keywords of :func:`~surrogate_nets.train.datasets.build_data` for the tonic options
    that are set (none for the in-memory data sets)."""
    kw = {"cache_dir": cfg.cache_dir, "denoise_us": cfg.denoise, "frames": cfg.frames,
          "events_per_frame": cfg.events_per_frame, "drop_event": cfg.drop_event,
          "duration_us": None if cfg.duration_ms is None else round(1000 * cfg.duration_ms)}
    return {k: v for k, v in kw.items() if v is not None}


def resolved_readout(cfg: RunConfig) -> str:
    return cfg.readout if cfg.readout != "auto" else readout_for(cfg.loss)


def build_model_for(cfg: RunConfig, input_shape, num_classes: int):
    """The zoo model of a configuration (seeded with ``cfg.seed``: the same weights every time)."""
    import torch

    torch.manual_seed(cfg.seed)
    return build_model(cfg.model, input_shape, num_classes, neuron=cfg.neuron,
                       surrogate=cfg.surrogate, alpha=cfg.alpha, learn_alpha=cfg.learn_alpha,
                       adaptive_alpha=cfg.adaptive_alpha,
                       tau=cfg.tau, hidden=cfg.hidden, layers=cfg.layers,
                       readout=resolved_readout(cfg), weight_bits=cfg.weight_bits,
                       act_bits=cfg.act_bits)


def build_loss_for(cfg: RunConfig):
    """The loss module (import paths and entry points import their code here)."""
    from .. import losses
    return losses.get(cfg.loss, **cfg.loss_kw)


def build_run(cfg: RunConfig, *, train: bool = True, test: bool = True, data_dir=None,
              test_batch_size: Optional[int] = None):
    """``(model, loss, data)`` for a resolved configuration (used by ``train`` and ``eval``)."""
    loss = build_loss_for(cfg)
    data = build_data_for(cfg, train=train, test=test, data_dir=data_dir,
                          test_batch_size=test_batch_size)
    model = build_model_for(cfg, data.input_shape, data.num_classes)
    return model, loss, data
