"""What autograd saves for backward, for the tests that check it (imported by name: tests/ is on
``sys.path`` through ``conftest.py``'s folder, as for ``reference.py``)."""

import torch


def saved_tensors(fn):
    """``(fn(), saved)``: every tensor autograd saves for backward while ``fn()`` runs, in the order
    saved (``torch.autograd.graph.saved_tensors_hooks``; held, so their storages stay distinct)."""
    saved = []

    def pack(t):
        saved.append(t)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    return out, saved


def by_storage(saved):
    """``{storage address: tensor}`` of ``saved`` (the last tensor saved for each storage)."""
    return {t.untyped_storage().data_ptr(): t for t in saved}


def storage_bytes(saved) -> int:
    """Bytes of the distinct storages behind ``saved``."""
    return sum(t.untyped_storage().nbytes() for t in by_storage(saved).values())
