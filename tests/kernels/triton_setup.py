"""Set-up shared by the Triton kernel tests (import this before anything imports triton).

Without a GPU the kernels run on CPU tensors through Triton's interpreter: importing this module
sets ``TRITON_INTERPRET=1`` (the kernel modules import triton lazily). With CUDA the same tests run
the compiled kernels on the GPU (``pytest -m cuda``).
"""

import os
import platform

import pytest
import torch

CUDA = torch.cuda.is_available()
if not CUDA:
    os.environ.setdefault("TRITON_INTERPRET", "1")
DEV = "cuda" if CUDA else "cpu"


def import_triton():
    """``triton``, or skip the calling test module when it is not installed."""
    return pytest.importorskip(
        "triton", reason="triton is not installed (it ships wheels for Linux x86-64/aarch64 only: "
                         f"this is {platform.system()} {platform.machine()})")


def module_marks():
    """``pytestmark`` for a Triton test module: ``cuda``, plus a skip when triton was imported
    (on CPU) before ``TRITON_INTERPRET=1`` could be set."""
    marks = [pytest.mark.cuda]
    if not CUDA and os.environ.get("TRITON_INTERPRET") != "1":
        marks.append(pytest.mark.skip(reason="triton was imported before TRITON_INTERPRET=1 was set"))
    return marks
