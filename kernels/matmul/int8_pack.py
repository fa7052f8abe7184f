"""Packing int8 B (K, N) for the VNNI and AMX GEMMs: both read four consecutive k of a column as one 4-byte lane.

Bp (Np/NB, Kp/4, NB) uint32: column panels of NB = 32; word (panel, k4, j) holds B[4*k4 .. 4*k4 + 3, panel*NB + j],
the lowest k in the lowest byte; bytes past B's K rows or N columns are 0 (a zero adds nothing). A VNNI step reads
one (panel, k4) row as two zmm; an AMX B tile is 16 such rows, one 16-column half of each.
Full (panel, k4) blocks are four contiguous row slices interleaved (vectorized); the edges go byte by byte. A
narrow GEMM (N = 128) does only N multiply-adds per byte of A, so packing must run near memory speed.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import prange

NB = 32  # columns per panel
_U32 = np.uint32


@numba.njit(cache=True, nogil=True, inline="always")
def word(r0, r1, r2, r3):
    """Four bytes (uint8) as one little-endian uint32, r0 lowest: one 4-byte lane."""
    return _U32(r0) | (_U32(r1) << _U32(8)) | (_U32(r2) << _U32(16)) | (_U32(r3) << _U32(24))


@numba.njit(cache=True, nogil=True, inline="always")
def edge_word(x, i, j, axis, rows, cols):
    """The word of x's bytes (i, j), (i, j+1).. (axis 0: along a row) or (i, j), (i+1, j).. (axis 1: down a
    column), a byte outside x's (rows, cols) being 0."""
    w = _U32(0)
    for t in range(4):
        r, c = (i, j + t) if axis == 0 else (i + t, j)
        if r < rows and c < cols:
            w |= _U32(x[r, c]) << _U32(8 * t)
    return w


@numba.njit(cache=True, nogil=True, inline="always")
def _panel(b, bp, jp):
    """Panel jp of Bp from b (K, N) int8."""
    K, N = b.shape
    bu = b.view(np.uint8)
    n0 = jp * NB
    for k4 in range(bp.shape[1]):
        k, dst = 4 * k4, bp[jp, k4]
        if n0 + NB <= N and k + 3 < K:
            r0, r1 = bu[k, n0 : n0 + NB], bu[k + 1, n0 : n0 + NB]
            r2, r3 = bu[k + 2, n0 : n0 + NB], bu[k + 3, n0 : n0 + NB]
            for j in range(NB):
                dst[j] = word(r0[j], r1[j], r2[j], r3[j])
            continue
        for j in range(NB):
            dst[j] = edge_word(bu, k, n0 + j, 1, K, N)


@numba.njit(cache=True, nogil=True, parallel=True)
def pack_b(b, Np, Kp):
    """Bp (Np/NB, Kp/4, NB) uint32 of b (K, N) int8, panels packed in parallel; Np a multiple of NB, Kp of 4."""
    bp = np.empty((Np // NB, Kp // 4, NB), np.uint32)
    for jp in prange(Np // NB):
        _panel(b, bp, jp)
    return bp


@numba.njit(cache=True, nogil=True)
def pack_b_serial(b, Np, Kp):
    """pack_b on the calling thread (inside another parallel loop)."""
    bp = np.empty((Np // NB, Kp // 4, NB), np.uint32)
    for jp in range(Np // NB):
        _panel(b, bp, jp)
    return bp
