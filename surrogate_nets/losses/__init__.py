"""Losses on time-major spiking outputs, activity regularizers, and the loss plug-in protocol.

Every loss is an :class:`torch.nn.Module` with ``forward(output, target) -> Tensor`` and a
torch-style ``reduction``; outputs are time-major ``[T, B, C]`` (spikes or membrane) and targets
class indices ``[B]`` unless a loss says otherwise. :class:`SpikeLoss` documents the contract;
:func:`get` / :func:`resolve` find losses by name, by ``"module:Class"`` import path, or by
the ``surrogate_nets.losses`` entry-point group of an installed plug-in.
"""

from .base import SpikeLoss
from .count_mse import CountMSE
from .first_spike import FirstSpikeLoss, first_spike_time
from .membrane_ce import MembraneCrossEntropy, reduce_time
from .mse_membrane import MSEMembrane
from .rate_ce import RateCrossEntropy
from .rate_regularizer import RateRegularizer, neuron_activity
from .records import RegularizedLoss, collect, enable_recording, regularization, restore_recording
from .registry import (
    CLASSIFICATION,
    ENTRY_POINT_GROUP,
    FunctionLoss,
    canonical,
    get,
    is_builtin,
    load_path,
    names,
    parse_kwargs,
    register,
    resolve,
    unregister,
)
from .spike_l1 import SpikeL1
from .tet import TETLoss

#: Alias: snnTorch's name for the first-spike cross entropy.
TemporalCrossEntropy = FirstSpikeLoss

__all__ = [
    "SpikeLoss", "RateCrossEntropy", "CountMSE", "MembraneCrossEntropy", "TETLoss",
    "FirstSpikeLoss", "TemporalCrossEntropy", "first_spike_time", "MSEMembrane",
    "RateRegularizer", "SpikeL1", "neuron_activity", "reduce_time", "collect", "regularization",
    "RegularizedLoss", "FunctionLoss", "get", "resolve", "register", "unregister", "names",
    "is_builtin", "canonical", "CLASSIFICATION", "enable_recording", "restore_recording",
]
# Command-line plumbing (parse_kwargs, load_path, ENTRY_POINT_GROUP) stays importable from here
# but is not part of the advertised surface.
