"""matmul for the numba backend: C (M, N) = A (M, K) @ B (K, N), float32.

What is whose: the whole GEMM is SciPy's OpenBLAS sgemm, reached through np.dot in Numba's nopython mode.
Our code only validates and dispatches. We tried nothing cleverer on purpose: OpenBLAS's packed, register-blocked
sgemm runs near the CPU's peak, and a hand-written Numba GEMM reaches a fraction of it (REFERENCES.md).
The point of this entry is that Numba-compiled code (attention, conv2d) can use the same GEMM for its blocks.
"""

from __future__ import annotations

import numba
import numpy as np


# nogil: a Ray device actor stores the previous task's output while this one runs, which needs the GIL
# (held through a kernel, the previous output would reach the driver only after this kernel ended)
@numba.njit(cache=True, nogil=True)
def _matmul(a, b, out):  # a (M, K), b (K, N), out (M, N); all C-contiguous float32
    np.dot(a, b, out)


@numba.njit(cache=True, nogil=True)
def _matmul_batched(a, b, out):  # a (batch, M, K), b (batch, K, N), out (batch, M, N): one sgemm each
    for i in range(a.shape[0]):
        np.dot(a[i], b[i], out[i])


def matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """a (M, K) @ b (K, N), or batched: a (batch, M, K) @ b (batch, K, N)."""
    (_matmul_batched if a.ndim == 3 else _matmul)(a, b, out)


def warmup() -> None:
    a = np.ones((4, 3), np.float32)
    matmul(a, a.T.copy(), np.empty((4, 4), np.float32))
    matmul(a[None], a.T.copy()[None], np.empty((1, 4, 4), np.float32))
