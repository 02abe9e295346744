r"""Forward kernel of the compiled CPU adaptive-LIF / synaptic scan (numba): see :mod:`.numba_alif`.

The generalised neuron of :mod:`.numba_alif` (optional synaptic current ``I``, optional adaptive
threshold ``theta_t = theta_0 + beta_a a_{t-1}``; ALIF: Bellec et al., NeurIPS 2018), over the
neurons ``[lo, hi)`` of a ``[T, n]`` problem; moved here unchanged from :mod:`.numba_alif` to keep
that module under the size limit.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True, error_model="numpy")
def _fwd(x, v0, a0, i0, b, cb, r, th0, ba, asyn, ks, reset, levels, adapt, syn,
         s_out, h_out, i_out, v_out, a_out, i_st, lo, hi):
    """Forward over neurons ``[lo, hi)``: one pass per step, state in ``v_out``/``a_out``/``i_st``.

    Binary spikes run branch-free loops (mode switches as 0/1 factors of the input dtype, exact:
    ``h - 1 (s th) - 0 (s h)`` is ``h - s th``); multi-level spikes a general loop."""
    T = x.shape[0]
    one = ks[0]
    zero = one - one
    fsub = one if reset == 0 else zero
    fzero = one if reset == 1 else zero
    # unsigned indices: no negative-index wraparound test in the loops (see numba_lif_fast)
    ulo, uhi = np.uint64(lo), np.uint64(hi)
    for i in range(ulo, uhi):
        v_out[i] = v0[i]
        a_out[i] = a0[i]
        i_st[i] = i0[i]
    for t in range(T):
        xt = x[t]
        ht = h_out[t]
        st = s_out[t]
        if levels == 1 and syn:
            it = i_out[t]
            for i in range(ulo, uhi):
                u = xt[i] + asyn[i] * i_st[i]
                i_st[i] = u
                it[i] = u
                h = cb[i] * u + b[i] * v_out[i]
                s = one if h - th0[i] >= zero else zero
                ht[i] = h
                st[i] = s
                v_out[i] = h - fsub * (s * th0[i]) - fzero * (s * h)
        elif levels == 1:
            for i in range(ulo, uhi):
                th = th0[i] + ba[i] * a_out[i]
                h = cb[i] * xt[i] + b[i] * v_out[i]
                s = one if h - th >= zero else zero
                ht[i] = h
                st[i] = s
                v_out[i] = h - fsub * (s * th) - fzero * (s * h)
                a_out[i] = s + r[i] * a_out[i]
        else:
            for i in range(ulo, uhi):
                u = xt[i]
                if syn:
                    u = u + asyn[i] * i_st[i]
                    i_st[i] = u
                    i_out[t, i] = u
                th = th0[i] + ba[i] * a_out[i] if adapt else th0[i]
                h = cb[i] * u + b[i] * v_out[i]
                s = one if h - th >= zero else zero
                for k in range(1, levels):
                    s += one if h - th * ks[k] >= zero else zero
                ht[i] = h
                st[i] = s
                s1 = one if h - th >= zero else zero  # zero reset: the first level only
                v_out[i] = h - fsub * (s * th) - fzero * (s1 * h)
                if adapt:
                    a_out[i] = s + r[i] * a_out[i]


__all__ = []  # private kernel: imported by numba_alif
