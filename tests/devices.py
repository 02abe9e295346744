"""Device markers shared by the tests (imported explicitly; conftest.py is never imported)."""

import pytest
import torch

CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason="no CUDA device on this machine")
