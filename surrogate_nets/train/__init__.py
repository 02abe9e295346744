"""Training API: :func:`fit`, :func:`evaluate`, checkpoints, loaders and the CLI's model zoo.

``fit(model, loss, train_loader, test_loader, epochs=..., out_dir=...)`` runs the loop the
``surrogate-nets`` command line uses (progress bars, metrics, atomic checkpoints, exact resume,
NaN guard, plots, multi-process under ``torchrun``) on any model; ``evaluate`` computes loss,
accuracy and spike rate on a loader. Batches are ``(x, y)`` with ``x`` time-major ``[T, B, ...]``.
"""

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
from .loop import (
    NonFiniteLossError,
    TrainState,
    alpha_parameters,
    build_optimizer,
    enable_recording,
    evaluate,
    fit,
    prepare_out_dir,
    resolve_device,
)
from .metrics import predict

__all__ = [
    "fit", "evaluate", "History", "TrainState", "NonFiniteLossError",
    "CheckpointError", "FORMAT_VERSION", "save_checkpoint", "load_checkpoint", "load_model_state",
    "atomic_write", "rng_state", "set_rng_state", "seed_everything", "TensorLoader", "EpochSampler",
    "set_epoch", "alpha_parameters", "build_optimizer", "enable_recording", "prepare_out_dir", "resolve_device",
    "predict",
]
