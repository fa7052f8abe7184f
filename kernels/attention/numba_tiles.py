"""The flash kernel's two block GEMMs as our own AVX2 register tiles, with nothing packed per call but the keys.

Why not sgemm: a flash block GEMM is short in one dimension (D = 64 for scores, one key block for p @ v), and
sgemm repacks both operands on every call, so on the kernel's block shapes it stays well short of the peak its
microkernel reaches on big ones. Here every operand is read where it lies except the keys, packed once per call:
  scores  s (rows, n)  = q (rows, D) @ k^T            A = q rows,  B = key panels kp (D, 16), reduction over D
  values  acc (rows, Dv) = alpha * acc + p (rows, n) @ v (n, Dv)   A = p rows,  B = value rows, reduction over n

One microkernel does both: numba_fma_tile's 6 x 16 register tile. Rows come in whole tiles: callers give A and C
at least MR - 1 rows of slack past the last row they want (those rows are computed and never read).
"""

from __future__ import annotations

import numba
import numpy as np
from numba import prange

from hetero.kernels import numba_fma_tile
from hetero.kernels.numba_fma_tile import LANES, MR, PANEL


def applies(Dv: int) -> bool:
    """numba_fma_tile's CPUs, and a value head size of whole 8-float vectors."""
    return numba_fma_tile.applies() and Dv % LANES == 0


@numba.njit(cache=True)
def scores(q, r0, mr, kp, p0, npan, s, vis0):
    """s[i, :16*npan] = q[r0 + i] @ (key panels p0 .. p0+npan)^T for i < mr, in whole tiles of MR rows, where
    row i sees the first vis0 + i keys (causal); a panel no row of a tile sees is left unwritten.

    q (rows, D) C-contiguous with rows >= r0 + ceil(mr/MR)*MR; kp (panels, D, 16) from pack_keys; s flat, room for
    ceil(mr/MR)*MR rows of 16*npan."""
    D = q.shape[1]
    ld = PANEL * npan
    qf = q.reshape(q.size)
    kf = kp.reshape(kp.size)
    for pn in range(npan):  # one key panel (D x 16 floats) stays in L1 while every row tile reads it
        first = PANEL * pn - vis0 - MR + 2  # row tiles i >= first have a last row that sees a key of this panel
        for i in range(max(0, -(-first // MR) * MR), mr, MR):
            numba_fma_tile.tile(
                2, False, qf, (r0 + i) * D, D, kf, (p0 + pn) * D * PANEL, PANEL, D, s, i * ld + pn * PANEL, ld, s, 0
            )


@numba.njit(cache=True)
def values(p, ldp, mr, vp, j0, n, acc, r0, alpha, vis0):
    """acc[r0 + i] = alpha[i] * acc[r0 + i] + p[i, :n] @ v[j0 : j0+n] for i < mr, in whole tiles of MR rows, where
    row i sees the first vis0 + i keys (causal; p is 0 past them), so a tile reads no further than its last row.

    p flat (rows ldp apart, ceil(mr/MR)*MR of them); vp (panels, S, 16) from pack_values; acc (rows, Dv)
    C-contiguous, Dv a multiple of 8, with rows >= r0 + ceil(mr/MR)*MR; alpha with as many entries."""
    S, Dv = vp.shape[1], acc.shape[1]
    vf = vp.reshape(vp.size)
    af = acc.reshape(acc.size)
    for d0 in range(0, Dv, PANEL):  # a value panel (n x 16 floats, contiguous) is read by every row tile in turn
        vw = min(2, (Dv - d0) // LANES)
        for i in range(0, mr, MR):
            ni = min(n, vis0 + i + MR - 1)
            b0 = d0 * S + j0 * PANEL  # panel d0 // 16 starts at (d0 // 16) * S * 16
            numba_fma_tile.tile(vw, True, p, i * ldp, ldp, vf, b0, PANEL, ni, af, (r0 + i) * Dv + d0, Dv, alpha, i)


@numba.njit(parallel=True, cache=True)
def _pack_keys(k, kp):
    B, H, S, D = k.shape
    npan = kp.shape[2]
    for t in prange(B * H * npan):
        b, h, pn = t // (H * npan), (t // npan) % H, t % npan
        dst = kp[b, h, pn]  # (D, 16)
        for j in range(PANEL):
            key = pn * PANEL + j
            for d in range(D):
                dst[d, j] = k[b, h, key, d] if key < S else np.float32(0.0)


def pack_keys(k: np.ndarray) -> np.ndarray:
    """kp (B, H, ceil(S/16), D, 16) from k (B, H, S, D): kp[b, h, p, d, j] = k[b, h, 16p + j, d], zeros past S."""
    B, H, S, D = k.shape
    kp = np.empty((B, H, -(-S // PANEL), D, PANEL), np.float32)
    _pack_keys(k, kp)
    return kp


def pack_values(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(vp, poison) from v (B, H, S, Dv): vp (B, H, ceil(Dv/16), S, 16), vp[b, h, p, j, c] = v[b, h, j, 16p + c], zeros
    past Dv; poison (B, H, Dv) NaN where column d of v[b, h] holds a NaN or inf, else 0 (read in the same pass: the
    attention kernel adds it to its output, as 0 * inf is NaN in the reference).

    Why pack: the rows of a 16-column strip of v lie Dv floats apart, so on a 4-way cache-set stride (Dv = 64) a
    strip of 256 rows maps to a quarter of L1's sets and no longer fits; packed, the strip is contiguous."""
    B, H, S, Dv = v.shape
    vp = np.empty((B, H, -(-Dv // PANEL), S, PANEL), np.float32)
    poison = np.empty((B, H, Dv), np.float32)
    _pack_values(v, vp, poison)
    return vp, poison


@numba.njit(parallel=True, cache=True)  # no fastmath: x * 0 must stay NaN for a NaN or inf x
def _pack_values(v, vp, poison):
    B, H, S, Dv = v.shape
    npan = vp.shape[2]
    for t in prange(B * H * npan):
        b, h, pn = t // (H * npan), (t // npan) % H, t % npan
        dst = vp[b, h, pn]  # (S, 16)
        nan = np.zeros(PANEL, np.float32)  # per column: 0, or NaN once a non-finite value was seen
        for j in range(S):
            for c in range(PANEL):
                d = pn * PANEL + c
                x = v[b, h, j, d] if d < Dv else np.float32(0.0)
                dst[j, c] = x
                nan[c] += x * np.float32(0.0)
        for c in range(min(PANEL, Dv - pn * PANEL)):
            poison[b, h, pn * PANEL + c] = nan[c]
