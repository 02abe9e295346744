"""Multi-process training support: process-group setup under ``torchrun`` and metric reduction.

When a script is launched by ``torchrun`` (or ``python -m torch.distributed.run``) the variables
``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` are set; :func:`setup` then initialises the default
process group (``gloo`` on CPU, ``nccl`` on CUDA) and picks ``cuda:LOCAL_RANK`` as the device.
Without them everything here is a no-op for a single process.
"""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass
from typing import Sequence, Union

import torch
import torch.distributed as dist


@dataclass
class DistInfo:
    """Where this process stands: ``rank`` of ``world_size`` (``local_rank`` on its node)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    initialized_here: bool = False  # True when :func:`setup` created the process group

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


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


def launched_by_torchrun() -> bool:
    """``True`` when ``RANK`` and ``WORLD_SIZE`` are in the environment."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def setup(device: torch.device) -> tuple[DistInfo, torch.device]:
    """Initialise the process group if launched by ``torchrun``; returns ``(info, device)``.

    The backend is ``nccl`` for CUDA devices and ``gloo`` otherwise. On CUDA the device becomes
    ``cuda:LOCAL_RANK``. An already initialised default group is reused.
    """
    if dist.is_available() and dist.is_initialized():
        rank, world = dist.get_rank(), dist.get_world_size()
        local = int(os.environ.get("LOCAL_RANK", rank))
        if device.type == "cuda":
            device = torch.device("cuda", local)
            torch.cuda.set_device(device)
        return DistInfo(rank, world, local, False), device
    if not launched_by_torchrun():
        return DistInfo(), device
    world = int(os.environ["WORLD_SIZE"])
    rank = int(os.environ["RANK"])
    local = int(os.environ.get("LOCAL_RANK", rank))
    if world <= 1:
        return DistInfo(rank, world, local, False), device
    if not dist.is_available():
        raise RuntimeError("WORLD_SIZE > 1 but this torch build has no torch.distributed support")
    if device.type == "cuda":
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
        backend = "nccl"
    else:
        backend = "gloo"
    dist.init_process_group(backend=backend)
    return DistInfo(rank, world, local, True), device


def teardown(info: DistInfo) -> None:
    """Destroy the process group if :func:`setup` created it."""
    if info.initialized_here and dist.is_initialized():
        gc.collect()  # objects in reference cycles that still hold the group go first
        dist.destroy_process_group()


def all_reduce_sum(values: Sequence[float], info: DistInfo, device: torch.device) -> list:
    """Sum a list of numbers over all processes (returned unchanged for a single process)."""
    if not info.enabled:
        return [float(v) for v in values]
    t = torch.tensor([float(v) for v in values], dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.tolist()


def broadcast_object(obj, info: DistInfo, src: int = 0):
    """Send a picklable object from ``src`` to every process."""
    if not info.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


class ShardSampler(torch.utils.data.Sampler):
    """Evaluation sharding without padding: rank ``r`` gets indices ``r, r + W, r + 2W, ...``.

    Unlike :class:`~torch.utils.data.DistributedSampler` no sample is repeated, so summed
    metrics are exact; only usable where the ranks need not run the same number of steps
    (evaluation of the unwrapped model).
    """

    def __init__(self, n: int, rank: int, world_size: int):
        self.n, self.rank, self.world_size = int(n), int(rank), int(world_size)

    def __iter__(self):
        return iter(range(self.rank, self.n, self.world_size))

    def __len__(self) -> int:
        return max(0, (self.n - self.rank + self.world_size - 1) // self.world_size)


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The module inside a ``DistributedDataParallel``/``DataParallel`` wrapper (or ``model``)."""
    return getattr(model, "module", model) if isinstance(
        model, (torch.nn.parallel.DistributedDataParallel, torch.nn.DataParallel)) else model


def wrap_ddp(model: torch.nn.Module, info: DistInfo, device: torch.device) -> torch.nn.Module:
    """Wrap ``model`` in ``DistributedDataParallel`` when running multi-process."""
    if not info.enabled:
        return model
    if not any(p.requires_grad for p in model.parameters()):
        return model
    ids = [device.index] if device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids,
                                                     output_device=ids[0] if ids else None)


@torch.no_grad()
def broadcast_module_state(model: torch.nn.Module, info: DistInfo, src: int = 0) -> None:
    """Copy every parameter and buffer of ``model`` from rank ``src`` to all ranks.

    ``DistributedDataParallel`` broadcasts the module state once, when it wraps the model; a
    data-dependent initialisation that runs later, in the first forward pass (the LSQ step of
    :class:`~surrogate_nets.quant.QuantAct`, anything initialised from the first batch), gives
    every rank its own value, and nothing would synchronise it again. :func:`~surrogate_nets.
    train.fit` therefore calls this once, after the first optimizer step of a run: the
    gradients of that step were already averaged over the ranks, so the optimizer states agree,
    and from then on the ranks hold the same model. No-op for a single process.
    """
    if not info.enabled:
        return
    model = unwrap(model)
    for t in list(model.parameters()) + list(model.buffers()):
        data = t.data.view(torch.uint8) if t.dtype == torch.bool else t.data
        dist.broadcast(data, src=src)
