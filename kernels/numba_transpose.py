"""A parallel float32 matrix transpose for the numba kernels: out (n, m) = a (m, n).T.

np.ascontiguousarray(a.T) walks one side with a stride and runs several times slower than memory speed; this
one moves 16x16 blocks through registers (numba_intrinsics.transpose16_add), threads taking column blocks, and
the edges (a side not a multiple of 16) elementwise.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import prange

from hetero.kernels.numba_intrinsics import transpose16_add


@numba.njit(parallel=True, cache=True, nogil=True)
def transpose_into(a, out, zeros):
    """out (n, m) = a (m, n).T, both C-contiguous float32; zeros: n float32 zeros (the block move adds a vector)."""
    m, n = a.shape
    af, of = a.reshape(m * n), out.reshape(m * n)
    m16, n16 = m - m % 16, n - n % 16
    for jb in prange(n16 // 16):
        j0 = jb * 16
        for i0 in range(0, m16, 16):
            transpose16_add(af, i0 * n + j0, n, of, j0 * m + i0, m, zeros, 0)
        for j in range(j0, j0 + 16):  # rows past the last whole block
            for i in range(m16, m):
                out[j, i] = a[i, j]
    for j in range(n16, n):  # columns past the last whole block
        for i in range(m):
            out[j, i] = a[i, j]


def transpose(a: np.ndarray) -> np.ndarray:
    """a (m, n) float32 C-contiguous -> a new C-contiguous (n, m) array holding a.T."""
    out = np.empty((a.shape[1], a.shape[0]), np.float32)
    transpose_into(a, out, np.zeros(a.shape[1], np.float32))
    return out
