"""Training API: :func:`fit`, :func:`evaluate`, checkpoints, loaders and the CLI's model zoo.

``fit(model, loss, train_loader, test_loader, epochs=..., out_dir=...)`` runs the loop the
``surrogate-nets`` command line uses (progress bars, metrics, atomic checkpoints, exact resume,
NaN guard, plots, multi-process under ``torchrun``) on any model; ``evaluate`` computes loss,
accuracy and spike rate on a loader. Batches are ``(x, y)`` with ``x`` time-major ``[T, B, ...]``.

One concern per module: :mod:`.loop` (``fit``), :mod:`.epoch` (one pass, ``evaluate``),
:mod:`.optim` (optimizers and schedules by name), :mod:`.rundir` (the output directory, resume,
crash safety), :mod:`.callbacks` (hooks, stateful callbacks), :mod:`.checkpoint`,
:mod:`.distributed`, :mod:`.amp` (mixed precision), :mod:`.sinks` (CSV/TensorBoard),
:mod:`.activity` (``fit(stats=True)``: activity totals per epoch), and :mod:`.config`
(:class:`RunConfig`, the command line's configuration, with its builders; value checks in
:mod:`.options`).
"""

from .config import (OptionError, RunConfig, build_data_for, build_loss_for, build_model_for,
                     build_run, classification_losses, resolved_readout)
from .checkpoint import (
    FORMAT_VERSION,
    CheckpointError,
    atomic_write,
    load_checkpoint,
    load_model_state,
    rng_state,
    save_checkpoint,
    seed_everything,
    set_rng_state,
)
from .history import History
from .loaders import EpochSampler, TensorLoader, set_epoch
from ..losses.records import enable_recording, restore_recording
from .callbacks import TrainState
from .distributed import resolve_device
from .epoch import NonFiniteLossError, evaluate
from .loop import fit
from .optim import OPTIMIZERS, SCHEDULERS, alpha_parameters, build_optimizer, build_scheduler
from .rundir import prepare_out_dir
from .sinks import CSVLogger, TensorBoardLogger, make_sinks, parse_sinks
from .metrics import predict

# File and RNG helpers (atomic_write, rng_state, set_rng_state, seed_everything) stay importable
# from here but are not part of the advertised surface.
__all__ = [
    "fit", "evaluate", "History", "TrainState", "NonFiniteLossError",
    "CheckpointError", "FORMAT_VERSION", "save_checkpoint", "load_checkpoint", "load_model_state",
    "TensorLoader", "EpochSampler", "set_epoch", "alpha_parameters", "build_optimizer",
    "build_scheduler", "OPTIMIZERS", "SCHEDULERS", "enable_recording", "restore_recording",
    "prepare_out_dir", "resolve_device", "predict", "RunConfig", "OptionError", "build_run",
    "build_model_for", "build_data_for", "build_loss_for", "resolved_readout", "CSVLogger",
    "TensorBoardLogger",
]
