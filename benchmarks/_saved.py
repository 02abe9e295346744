"""Bytes autograd saves for backward, as every benchmark here counts them (``saved_bytes``).

The benchmarks run as scripts, so they import this sibling module by name (``from _saved import
saved_bytes``), as ``train_peers.py`` imports ``train_step_peers``.
"""

import torch


def saved_bytes(fn):
    """``(fn(), n)``: ``n`` is the bytes of the distinct storages behind the tensors autograd
    saves for backward while ``fn()`` runs (``torch.autograd.graph.saved_tensors_hooks``; a storage
    saved twice counts once; a tensor without a plain storage, e.g. a sparse one, counts
    ``numel * element_size``)."""
    seen = {}

    def pack(t):
        try:
            st = t.untyped_storage()
            seen[(st.data_ptr(), t.device)] = st.nbytes()
        except (RuntimeError, NotImplementedError):
            seen[id(t)] = t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    return out, sum(seen.values())
