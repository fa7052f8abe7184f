"""The stride-phase split of a padded conv input, shared by numba's conv2d paths.

A conv with stride (sh, sw) reads, for tap (r, s), input row p*sh + r*dh - ph and column q*sw + s*dw - pw of
output (p, q). Splitting the padded input into sh*sw phases xph (C, sh, sw, Hph, Wph),
xph[c, a, b, i, j] = x[c, i*sh + a - ph, j*sw + b - pw], turns every tap into a plain shift: tap (r, s) reads
phase ((r*dh) % sh, (s*dw) % sw) at row p + (r*dh)//sh, column q + (s*dw)//sw, so a run of output columns reads
a contiguous run of a phase row.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, inline="always")
def phase_span(n_ph, n, pad, stride, a):
    """(lo, hi): the indices i < n_ph of phase a whose input index i*stride + a - pad lies in [0, n)."""
    lo = min(n_ph, max(0, (pad - a + stride - 1) // stride))
    return lo, max(lo, min(n_ph, (n - 1 + pad - a) // stride + 1))


@numba.njit(cache=True, inline="always")  # a call per row costs refcount traffic
def _gather_row(dst, d0, src, s0, n, step):
    """dst[d0 + j] = src[s0 + j*step] for j < n, on flat arrays with unsigned indices (no wraparound check)."""
    if step == 1:
        for j in range(np.uint64(n)):
            dst[d0 + j] = src[s0 + j]
    else:
        for j in range(np.uint64(n)):
            dst[d0 + j] = src[s0 + np.uint64(step) * j]


@numba.njit(cache=True)
def fill_phases(xn, sh, sw, ph, pw, ph_rows, ph_cols, xph):
    """xph (C, sh, sw, Hph, Wph) flat; xph[c, a, b, i, j] = x[c, i*sh + a - ph, j*sw + b - pw].

    Writes only the entries that come from x: the zero padding sits at the same places for every image, so the
    caller zeroes xph once per thread and it stays zero. Rows are short (16-56 floats), so per-row views cost
    more than the copy: it indexes flat with unsigned ints instead."""
    C, H, W = xn.shape
    xf = xn.reshape(C * H * W)
    plane = ph_rows * ph_cols
    for a in range(sh):
        i_lo, i_hi = phase_span(ph_rows, H, ph, sh, a)
        for b in range(sw):
            j_lo, j_hi = phase_span(ph_cols, W, pw, sw, b)
            for c in range(C):
                for i in range(i_lo, i_hi):
                    d0 = np.uint64(((c * sh + a) * sw + b) * plane + i * ph_cols + j_lo)
                    s0 = np.uint64((c * H + i * sh + a - ph) * W + j_lo * sw + b - pw)
                    _gather_row(xph, d0, xf, s0, j_hi - j_lo, sw)
