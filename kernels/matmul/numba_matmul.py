"""matmul for the numba backend: C (M, N) = A (M, K) @ B (K, N), float32.

What is whose: on AVX2 CPUs without AVX-512 the GEMM is our own (numba_sgemm.py: numba_fma_tile's register tile,
B packed into panels, A read in place); elsewhere it is SciPy's OpenBLAS sgemm, reached through np.dot in Numba's
nopython mode (Numba-compiled conv2d code uses the same sgemm for its blocks).
"""

from __future__ import annotations

import numba
import numpy as np

from hetero.kernels.matmul import numba_sgemm


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
    if numba_sgemm.applies():
        numba_sgemm.gemm(a, b, out)
        return
    (_matmul_batched if a.ndim == 3 else _matmul)(a, b, out)


def warmup() -> None:
    a = np.ones((4, 3), np.float32)
    matmul(a, a.T.copy(), np.empty((4, 4), np.float32))
    matmul(a[None], a.T.copy()[None], np.empty((1, 4, 4), np.float32))
