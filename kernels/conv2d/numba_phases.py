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

from hetero.kernels.numba_intrinsics import deinterleave2, deinterleave4


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


@numba.njit(cache=True, inline="always")
def _split_row(xph, d0, plane, xf, s0, sw, j0, j1):
    """For every phase b < sw and j0 <= j < j1 (j1 - j0 >= 8): xph[d0 + b*plane + j] = xf[s0 + j*sw + b], 8
    columns a step through a register deinterleave, the last step moved back to overlap the one before."""
    for jb in range(j0, j1, 8):
        j = min(jb, j1 - 8)
        if sw == 2:
            deinterleave2(xf, s0 + j * 2, xph, d0 + j, plane)
        else:
            deinterleave4(xf, s0 + j * 4, xph, d0 + j, plane)


@numba.njit(cache=True)
def fill_phases(xn, sh, sw, ph, pw, ph_rows, ph_cols, xph):
    """xph (C, sh, sw, Hph, Wph) flat; xph[c, a, b, i, j] = x[c, i*sh + a - ph, j*sw + b - pw].

    Writes only the entries that come from x: the zero padding sits at the same places for every image, so the
    caller zeroes xph once per thread and it stays zero. Rows are short (16-56 floats), so per-row views cost
    more than the copy: it indexes flat with unsigned ints instead. At W stride 2 or 4, the columns every phase
    has (j0..j1) are split 8 a step in registers; a loop of strided loads stays scalar."""
    C, H, W = xn.shape
    xf = xn.reshape(C * H * W)
    plane = ph_rows * ph_cols
    spans = np.empty((sw, 2), np.int64)  # phase b's columns from x: spans[b, 0] <= j < spans[b, 1]
    for b in range(sw):
        spans[b, 0], spans[b, 1] = phase_span(ph_cols, W, pw, sw, b)
    j0, j1 = spans[:, 0].max(), spans[:, 1].min()
    split = (sw == 2 or sw == 4) and j1 - j0 >= 8
    for a in range(sh):
        i_lo, i_hi = phase_span(ph_rows, H, ph, sh, a)
        for c in range(C):
            for i in range(i_lo, i_hi):
                s_row = (c * H + i * sh + a - ph) * W - pw
                d_row = (c * sh + a) * sw * plane + i * ph_cols
                if split:
                    _split_row(xph, d_row, plane, xf, s_row, sw, j0, j1)
                for b in range(sw):
                    j_lo, j_hi = spans[b, 0], spans[b, 1]
                    # split: the columns beside j0..j1; otherwise all of them (and an empty second run)
                    runs = ((j_lo, j0), (j1, j_hi)) if split else ((j_lo, j_hi), (j_hi, j_hi))
                    for lo, hi in runs:
                        d0, s0 = d_row + b * plane + lo, s_row + b + lo * sw  # both >= 0 from column lo on
                        _gather_row(xph, np.uint64(d0), xf, np.uint64(s0), hi - lo, sw)
