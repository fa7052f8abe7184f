"""Our own float32 GEMM for AVX2 CPUs without AVX-512: C (M, N) = A (M, K) @ B (K, N), on numba_fma_tile's tile.

Why not sgemm everywhere: OpenBLAS packs both operands into its own panels on every call. Here only B is packed,
into 16-column panels Bp (Np/16, K, 16) (zeros past N); A's rows are read where they lie by numba_fma_tile's 6 x 16
tile (12 ymm accumulators; per step 2 loads of Bp, 6 broadcasts of A, 12 FMAs). A 2-D product: threads take runs
of row tiles, and each tile reduces over K (in chunks of KC, accumulated in C, where K is longer) panel by panel,
so its rows of A (6 x KC floats) stay in L1/L2 while the panels pass. A batched product: a batch item a thread.
Edges: rows past the last whole tile of 6 go through a zero-padded copy of those rows, and columns past the last
whole panel of 16 through a 16-column strip; everything else is read and written in place. NaN and inf propagate
as in any IEEE sum of products.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import prange

from hetero.kernels import numba_fma_tile
from hetero.kernels.numba_fma_tile import MR, PANEL

KC = 2048  # a tile's reduction chunk: its A rows (6 x KC floats, 48 KiB) stay in L2 across the panels


def applies() -> bool:
    """The CPUs numba_fma_tile's tile was measured on (AVX2 and FMA, no AVX-512)."""
    return numba_fma_tile.applies()


@numba.njit(cache=True, nogil=True, inline="always")
def _pack_b(b, bp, jp):
    """Panel jp of Bp (Np/16, K, 16): columns 16*jp .. of b (K, N), zeros past N."""
    K, N = b.shape
    w = min(PANEL, N - jp * PANEL)
    dst = bp[jp]
    for k in range(K):
        for c in range(w):
            dst[k, c] = b[k, jp * PANEL + c]
        for c in range(w, PANEL):
            dst[k, c] = np.float32(0.0)


@numba.njit(cache=True, nogil=True, inline="always")
def _tiles(af, K, t0, t1, bf, jp0, jp1, cf, ldc):
    """C (flat, rows ldc apart) = A @ B on row tiles t0 .. t1 of af (flat, rows K apart) and column panels
    jp0 .. jp1 of bf (flat Bp), panel jp landing at column 16*(jp - jp0) of C."""
    one = np.ones(MR, np.float32)  # alpha: a later chunk of K adds to what C holds
    for k0 in range(0, K, KC):
        ks = min(KC, K - k0)
        for t in range(t0, t1):
            for jp in range(jp0, jp1):
                a0, b0, c0 = t * MR * K + k0, (jp * K + k0) * PANEL, t * MR * ldc + (jp - jp0) * PANEL
                numba_fma_tile.tile(2, k0 > 0, af, a0, K, bf, b0, PANEL, ks, cf, c0, ldc, one, 0)


@numba.njit(cache=True, nogil=True, inline="always")
def _rows(a, bp, out, t0, t1):
    """out's row tiles t0 .. t1 (whole tiles of a (M, K)): whole column panels straight into out, the last
    partial panel (N not a multiple of 16) through a 16-column strip."""
    K, N = a.shape[1], out.shape[1]
    whole = N // PANEL
    af, bf = a.reshape(-1), bp.reshape(-1)
    _tiles(af, K, t0, t1, bf, 0, whole, out.reshape(-1), N)
    if whole * PANEL < N and t1 > t0:
        strip = np.empty(((t1 - t0) * MR, PANEL), np.float32)
        _tiles(af[t0 * MR * K :], K, 0, t1 - t0, bf, whole, whole + 1, strip.reshape(-1), PANEL)
        out[t0 * MR : t1 * MR, whole * PANEL :] = strip[:, : N - whole * PANEL]


@numba.njit(cache=True, nogil=True, inline="always")
def _last_rows(a, bp, out):
    """out's rows past the last whole row tile, through a zero-padded copy of their rows of a."""
    M, K = a.shape
    r0 = M // MR * MR
    if r0 == M:
        return
    ap = np.zeros((MR, K), np.float32)
    ap[: M - r0] = a[r0:]
    cp = np.empty((MR, bp.shape[0] * PANEL), np.float32)
    _tiles(ap.reshape(-1), K, 0, 1, bp.reshape(-1), 0, bp.shape[0], cp.reshape(-1), cp.shape[1])
    out[r0:] = cp[: M - r0, : out.shape[1]]


@numba.njit(parallel=True, cache=True, nogil=True)  # nogil: see numba_matmul._matmul
def _gemm(a, b, out, nthreads):  # a (M, K), b (K, N), out (M, N); C-contiguous float32
    bp = np.empty((-(-b.shape[1] // PANEL), b.shape[0], PANEL), np.float32)
    for jp in prange(bp.shape[0]):
        _pack_b(b, bp, jp)
    tiles = a.shape[0] // MR
    for t in prange(nthreads):  # a thread takes a run of row tiles
        _rows(a, bp, out, t * tiles // nthreads, (t + 1) * tiles // nthreads)
    _last_rows(a, bp, out)


@numba.njit(parallel=True, cache=True, nogil=True)
def _gemm_batched(a, b, out):  # a (batch, M, K), b (batch, K, N), out (batch, M, N): an item a thread
    for i in prange(a.shape[0]):
        bp = np.empty((-(-b.shape[2] // PANEL), b.shape[1], PANEL), np.float32)
        for jp in range(bp.shape[0]):
            _pack_b(b[i], bp, jp)
        _rows(a[i], bp, out[i], 0, a.shape[1] // MR)
        _last_rows(a[i], bp, out[i])


def gemm(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """a (M, K) @ b (K, N), or batched: a (batch, M, K) @ b (batch, K, N); float32 C-contiguous, into out."""
    if a.shape[-1] == 0:  # an empty sum: the tiles would never write C
        out[...] = 0
    elif a.ndim == 3:
        _gemm_batched(a, b, out)
    else:
        _gemm(a, b, out, numba.get_num_threads())
