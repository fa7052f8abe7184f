"""Decoding attention for the numba backend: few query rows per key/value head, so the kernel is memory-bound
and its job is to stream K and V once at the memory's speed.

A task is one (batch, key/value head): its R = (H/Hkv)*L query rows (the query heads sharing the key/value head,
stacked) meet each key row as it streams past (R dot products of length D per key, in registers), then each
value row (R axpys of length Dv). No BLAS call: at R <= DECODE_ROWS a GEMM call per key block costs more than
the products. The (R, S) scores stay in the task's buffer between the two streams (S floats a row, in L2).
Same rules as numba_attention.py, in the same log2 units: an additive mask in log2 units (_MASKED for -inf) is
added to the scores; a row with a NaN or +inf score is NaN, a row that sees only -inf (masked-out) scores has
probabilities 0, and a NaN or inf value poisons its column through the products themselves. Compiled without
the no-NaN/no-inf assumptions (_IEEE_FAST), which still lets LLVM vectorise the reductions along D.

At several query rows a key/value head (GQA) both streams prefetch AHEAD floats in front of the row they are on:
each streamed byte then carries several FMAs, and the hardware prefetcher alone leaves the loads waiting on
memory. At one row (plain decode) it keeps up by itself.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import prange

from hetero.kernels.attention.numba_exp2 import _IEEE_FAST, _LOG2E, _NAN, _NEG_BIG, _ONE, _ZERO, _exp2, _fmax
from hetero.kernels.numba_intrinsics import prefetch_read

DECODE_ROWS = 8  # query rows per key/value head up to which this kernel runs instead of the flash kernel
PAIR_ROWS = 4  # query rows up to which the value stream is read two rows a pass (_weighted_values)
AHEAD = 2048  # floats (8 KB) between the row a stream is on and the cache lines it prefetches


@numba.njit(fastmath=_IEEE_FAST, cache=True, inline="always")
def _probabilities(s, r, S):
    """Row r of s (R, S) scores (log2 units) -> probabilities; returns 1/sum, 0 for a row without a finite
    score, NaN for a row with a NaN or +inf score."""
    mx = _NEG_BIG
    raw = _ZERO
    for j in range(S):
        mx = _fmax(mx, s[r, j])
        raw += s[r, j]
    if not raw < np.inf:
        return _NAN
    if not mx > _NEG_BIG:  # every score -inf or masked out: probabilities 0 (PyTorch's safe softmax)
        s[r, :S] = _ZERO
        return _ZERO
    total = _ZERO
    for j in range(S):
        p = _exp2(s[r, j] - mx)
        s[r, j] = p
        total += p
    return _ONE / total


@numba.njit(cache=True, inline="always")
def _prefetch_rows(a, j, n, on):
    """If on: prefetch the cache lines (16 floats) AHEAD floats past rows j..j+n-1 of a (rows, cols), clamped."""
    if not on:
        return
    cols = a.shape[1]
    last = a.shape[0] * cols - 1
    for c in range(0, n * cols, 16):
        prefetch_read(a, min(j * cols + AHEAD + c, last))


@numba.njit(fastmath=_IEEE_FAST, cache=True)
def _scores(qs, kb, s):
    """s (R, S) = qs (R, D) @ kb (S, D)^T, K streamed once: each key row meets four query rows at a time (four
    dot products share its loads, and their four reductions overlap), then the rows left over one at a time."""
    R, D = qs.shape
    for j in range(kb.shape[0]):
        _prefetch_rows(kb, j, 1, R > 1)
        krow = kb[j]
        r = 0
        while r + 4 <= R:
            q0, q1, q2, q3 = qs[r], qs[r + 1], qs[r + 2], qs[r + 3]
            a0 = a1 = a2 = a3 = _ZERO
            for d in range(D):
                kd = krow[d]
                a0 += q0[d] * kd
                a1 += q1[d] * kd
                a2 += q2[d] * kd
                a3 += q3[d] * kd
            s[r, j], s[r + 1, j], s[r + 2, j], s[r + 3, j] = a0, a1, a2, a3
            r += 4
        for rr in range(r, R):
            qr = qs[rr]
            acc = _ZERO
            for d in range(D):
                acc += qr[d] * krow[d]
            s[rr, j] = acc


@numba.njit(fastmath=_IEEE_FAST, cache=True)
def _weighted_values(s, vb, o):
    """o (R, Dv) = s (R, S) @ vb (S, Dv), V streamed once. Up to PAIR_ROWS query rows, two value rows a pass:
    the loads then run down V nearly in address order, which the hardware prefetcher streams at the read speed
    of the memory, where four rows a pass (four streams 4*Dv floats apart) fall well short of it; more query
    rows, four value rows a pass, so each output row is loaded and stored once per four FMAs. Every probability
    is finite (NaN rows were zeroed), so a NaN or inf value makes its column non-finite in every row by itself
    (p * inf is inf or, at p = 0, NaN), as in the reference."""
    j = _values_pairs(s, vb, o) if s.shape[0] <= PAIR_ROWS else _values_quads(s, vb, o)
    for jj in range(j, vb.shape[0]):  # the value rows left over, one at a time
        vrow = vb[jj]
        for r in range(s.shape[0]):
            p = s[r, jj]
            orow = o[r]
            for d in range(vb.shape[1]):
                orow[d] += p * vrow[d]


@numba.njit(fastmath=_IEEE_FAST, cache=True, inline="always")
def _values_pairs(s, vb, o):
    """o += s @ vb two value rows a pass; returns the first row not yet added."""
    j = 0
    while j + 2 <= vb.shape[0]:
        _prefetch_rows(vb, j, 2, s.shape[0] > 1)
        v0, v1 = vb[j], vb[j + 1]
        for r in range(s.shape[0]):
            p0, p1 = s[r, j], s[r, j + 1]
            orow = o[r]
            for d in range(vb.shape[1]):
                orow[d] += p0 * v0[d] + p1 * v1[d]
        j += 2
    return j


@numba.njit(fastmath=_IEEE_FAST, cache=True, inline="always")
def _values_quads(s, vb, o):
    """o += s @ vb four value rows a pass; returns the first row not yet added."""
    j = 0
    while j + 4 <= vb.shape[0]:
        _prefetch_rows(vb, j, 4, True)
        v0, v1, v2, v3 = vb[j], vb[j + 1], vb[j + 2], vb[j + 3]
        for r in range(s.shape[0]):
            p0, p1, p2, p3 = s[r, j], s[r, j + 1], s[r, j + 2], s[r, j + 3]
            orow = o[r]
            for d in range(vb.shape[1]):
                orow[d] += (p0 * v0[d] + p1 * v1[d]) + (p2 * v2[d] + p3 * v3[d])
        j += 4
    return j


@numba.njit(parallel=True, fastmath=_IEEE_FAST, cache=True, nogil=True)  # nogil: see numba_matmul._matmul
def _decode(q, k, v, mask, has_mask, out, scale):
    """q (B, Hkv, R, D) query rows per key/value head, k (B, Hkv, S, D), v (B, Hkv, S, Dv), mask (Bm, Hm, R, S)
    in log2 units (read only when has_mask), out (B, Hkv, R, Dv). One task per (batch, key/value head)."""
    B, Hkv, R, D = q.shape
    S, Dv = k.shape[2], v.shape[3]
    qscale = np.float32(scale * _LOG2E)
    for t in prange(B * Hkv):
        b, h = t // Hkv, t % Hkv
        qs = np.empty((R, D), np.float32)
        for r in range(R):
            for d in range(D):
                qs[r, d] = q[b, h, r, d] * qscale
        s = np.empty((R, S), np.float32)
        _scores(qs, k[b, h], s)
        if has_mask:
            mrows = mask[b % mask.shape[0], h % mask.shape[1]]
            for r in range(R):
                for j in range(S):
                    s[r, j] += mrows[r, j]
        inv = np.empty(R, np.float32)
        for r in range(R):
            inv[r] = _probabilities(s, r, S)
            if not inv[r] < np.inf:  # NaN row: its probabilities take no part
                s[r, :S] = _ZERO
        o = np.zeros((R, Dv), np.float32)
        _weighted_values(s, v[b, h], o)
        for r in range(R):
            for d in range(Dv):
                out[b, h, r, d] = o[r, d] * inv[r]


def stack_mask(mask, H: int, Hkv: int, L: int):
    """An additive mask (Bm, Hm, L, S) for the stacked rows: (Bm, Hkv, (H/Hkv)*L, S) or (Bm, 1, (H/Hkv)*L, S)."""
    if mask is None:
        return None
    Bm, Hm, _, S = mask.shape
    rep = H // Hkv
    if Hm == H:
        return mask.reshape(Bm, Hkv, rep * L, S)
    return np.ascontiguousarray(np.broadcast_to(mask[:, :, None], (Bm, 1, rep, L, S))).reshape(Bm, 1, rep * L, S)


def decode(q, k, v, out, scale, mask_log2, has_mask):
    """q (B, H, L, D) with (H/Hkv)*L <= DECODE_ROWS, out (B, H, L, Dv); mask_log2 (Bm, Hm', (H/Hkv)*L, S) stacked
    by stack_mask and in log2 units (numba_attention.log2_mask)."""
    B, H, L, D = q.shape
    Hkv = k.shape[1]
    R = H // Hkv * L
    _decode(q.reshape(B, Hkv, R, D), k, v, mask_log2, has_mask, out.reshape(B, Hkv, R, out.shape[3]), np.float32(scale))
