import os
import sys

import pytest
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


# hypothesis profiles (tests/test_properties.py): small and reproducible by default for CI;
# `python -m pytest tests/test_properties.py --hypothesis-profile=long` for a deeper search.
try:
    from hypothesis import settings as _hyp_settings

    _hyp_settings.register_profile("ci", max_examples=25, deadline=None, derandomize=True,
                                   print_blob=True)
    _hyp_settings.register_profile("long", max_examples=2000, deadline=None, print_blob=True)
    _hyp_settings.load_profile("ci")  # --hypothesis-profile=... (hypothesis' plugin) overrides it
except ImportError:  # hypothesis is in the test extra; without it only test_properties.py skips
    pass
