"""Mixed precision for :func:`~surrogate_nets.train.fit`: ``amp="bf16"`` or ``"fp16"``.

The forward pass and the loss run under :func:`torch.autocast` with the chosen dtype; the
parameters, the gradients and the optimizer state stay float32. ``"fp16"`` adds a
:class:`torch.amp.GradScaler` (loss scaling against gradient underflow; its state is saved in the
checkpoints, key ``"amp"``); ``"bf16"`` has float32's exponent range and needs none. Evaluation
runs under the same autocast as training.

What runs in float32 anyway: autocast's own float32 list (softmax, cross entropy, norms, ...);
the neuron scans and the quantizers compute their recurrences and step-size gradients in the
input's dtype unless they say otherwise (see their docstrings), so with ``"fp16"`` keep an eye
on ``QuantAct``-style step gradients (they are computed in float32 there).
"""

from __future__ import annotations

import contextlib
from typing import Optional

import torch

#: The accepted values of ``amp`` besides ``None``.
AMP_MODES = ("bf16", "fp16")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


class Precision:
    """Autocast context and (for fp16) gradient scaling of one run."""

    def __init__(self, amp: Optional[str], device: torch.device):
        if amp is not None and amp not in AMP_MODES:
            raise ValueError(f"amp must be None or one of {list(AMP_MODES)}, got {amp!r}")
        self.amp = amp
        self.device = device
        self.dtype = _DTYPES.get(amp)
        self.scaler = torch.amp.GradScaler(device.type) if amp == "fp16" else None

    def autocast(self):
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)

    def step(self, value: torch.Tensor, optimizer, params, grad_clip: Optional[float]) -> None:
        """Backward of ``value``, optional clipping to norm ``grad_clip``, optimizer step."""
        optimizer.zero_grad(set_to_none=True)
        if self.scaler is None:
            value.backward()
            if grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(params, grad_clip)
            optimizer.step()
            return
        self.scaler.scale(value).backward()
        if grad_clip is not None:
            self.scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(params, grad_clip)
        self.scaler.step(optimizer)
        self.scaler.update()

    def state_dict(self) -> Optional[dict]:
        return None if self.scaler is None else self.scaler.state_dict()

    def load_state_dict(self, state: Optional[dict]) -> None:
        if self.scaler is not None and state:
            self.scaler.load_state_dict(state)
