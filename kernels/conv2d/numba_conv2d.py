"""conv2d and conv_transpose2d for the numba backend, NCHW, float32, groups=1.

What is whose: the multiply-adds of every GEMM block are SciPy's OpenBLAS sgemm, reached through np.dot in
Numba's nopython mode. Everything around it is our own Numba code: the phase split of the padded input, the
per-tile im2col packing, the loop over tiles and its split across threads, the copy-out with bias, and for the
transposed convolution the col2im scatter-add.

conv2d algorithm (implicit GEMM over "wide" tiles, all in cache):
  1. Per image, split the zero-padded input into sh*sw stride phases (C, sh, sw, Hph, Wph). Tap (r, s) of a
     strided conv then reads phase ((r*dh) % sh, (s*dw) % sw) at a plain shift ((r*dh)//sh, (s*dw)//sw), so it
     is a stride-1 access.
  2. A tile is tp output rows. Computing each output row Wph wide (Wph >= Q; the extra columns are garbage and
     dropped) makes the im2col row of tap (c, r, s) one contiguous run of tp*Wph floats of the phase plane, so
     packing is a memcpy per (c, r, s) instead of a gather per output row.
  3. acc^T (tp*Wph, K) = col^T @ W^T, W (K, C*R*S), by sgemm (this orientation runs faster in OpenBLAS for
     small K); copy the Q valid columns of each row, transposed, + bias to out.
  Tiles are sized so col stays near L2 and sgemm still runs near peak; threads take contiguous runs of tiles
  (prange over threads), each calling single-threaded sgemm (the wrapper pins OpenBLAS to 1 thread meanwhile,
  since OpenBLAS threads inside prange would oversubscribe the cores).

conv_transpose2d algorithm: per image, cols (K*R*S, H*W) = W^T (K*R*S, C) @ x (C, H*W) by sgemm, then col2im
scatter-adds each tap into out (our code), in parallel over images.
"""
from __future__ import annotations

import numba
import numpy as np
from numba import prange

from hetero.threads import single_threaded_scipy_blas

# Columns of one GEMM tile (tp * Wph); sgemm needs a few hundred to run near peak, col (C*R*S, cols) should fit L2.
TILE_COLS = 512


def _out_size(n, k, s, p, d):
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


# Inner loops below copy between 1-D views with 0-based indices: Numba then drops its negative-index wraparound
# check and LLVM vectorizes the copy (3x faster than slice assignment or offset indexing, measured).


@numba.njit(cache=True, inline="always")
def _copy(dst, src):
    for j in range(dst.shape[0]):
        dst[j] = src[j]


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
def _fill_phases(xn, sh, sw, ph, pw, ph_rows, ph_cols, xph):
    """xph (C, sh, sw, Hph, Wph) flat; xph[c, a, b, i, j] = x[c, i*sh + a - ph, j*sw + b - pw].

    Writes only the entries that come from x: the zero padding sits at the same places for every image, so the
    caller zeroes xph once per thread and it stays zero. Rows are short (16-56 floats), so per-row views cost
    more than the copy; flat unsigned indexing made this 2.5-5x faster (measured)."""
    C, H, W = xn.shape
    xf = xn.reshape(C * H * W)
    plane = ph_rows * ph_cols
    for a in range(sh):
        i_lo = min(ph_rows, max(0, (ph - a + sh - 1) // sh))  # first i with i*sh + a - ph >= 0
        i_hi = max(i_lo, min(ph_rows, (H - 1 + ph - a) // sh + 1))  # one past the last i inside x
        for b in range(sw):
            j_lo = min(ph_cols, max(0, (pw - b + sw - 1) // sw))
            j_hi = max(j_lo, min(ph_cols, (W - 1 + pw - b) // sw + 1))
            for c in range(C):
                for i in range(i_lo, i_hi):
                    d0 = np.uint64(((c * sh + a) * sw + b) * plane + i * ph_cols + j_lo)
                    s0 = np.uint64((c * H + i * sh + a - ph) * W + j_lo * sw + b - pw)
                    _gather_row(xph, d0, xf, s0, j_hi - j_lo, sw)


@numba.njit(cache=True)
def _pack_tile(xph, C, R, S, sh, sw, dh, dw, ph_rows, ph_cols, p0, cols, col):
    """col (C*R*S, cols): row (c, r, s) is the run of the phase plane that tap (r, s) reads for rows p0.."""
    plane = ph_rows * ph_cols
    for c in range(C):
        for r in range(R):
            a, ri = (r * dh) % sh, (r * dh) // sh
            for s in range(S):
                b, si = (s * dw) % sw, (s * dw) // sw
                start = ((c * sh + a) * sw + b) * plane + (p0 + ri) * ph_cols + si
                _copy(col[(c * R + r) * S + s], xph[start: start + cols])


@numba.njit(cache=True)
def _store_tile(acc_t, bias, n, p0, tp, ph_cols, out):
    """out[n, :, p0:p0+tp, :] = acc_t (tp*Wph, K) transposed, minus its garbage columns, plus bias."""
    K, P, Q = out.shape[1], out.shape[2], out.shape[3]
    of = out[n].reshape(K * P * Q)  # (K, P, Q) flat
    af = acc_t.reshape(acc_t.size)
    for k in range(K):
        bk = bias[k]
        for t in range(tp):
            d0 = np.uint64((k * P + p0 + t) * Q)
            s0 = np.uint64(t * ph_cols * K + k)
            for q in range(np.uint64(Q)):
                of[d0 + q] = af[s0 + q * np.uint64(K)] + bk


@numba.njit(parallel=True, cache=True)
def _conv2d_kernel(x, w2, bias, sh, sw, ph, pw, dh, dw, R, S, tile_rows, nthreads, out):
    """x (N, C, H, W), w2 (K, C*R*S), bias (K,), out (N, K, P, Q)."""
    N, C = x.shape[0], x.shape[1]
    K, P, Q = out.shape[1], out.shape[2], out.shape[3]
    max_ri, max_si = ((R - 1) * dh) // sh, ((S - 1) * dw) // sw
    ph_rows, ph_cols = P + max_ri, Q + max_si
    # + max_si: the last tile's garbage columns may read that far past the last plane.
    ph_size = C * sh * sw * ph_rows * ph_cols + max_si
    tiles_per_img = (P + tile_rows - 1) // tile_rows
    ntasks = N * tiles_per_img
    max_cols = tile_rows * ph_cols
    for t in prange(nthreads):
        xph = np.zeros(ph_size, np.float32)
        col_buf = np.empty(C * R * S * max_cols, np.float32)
        acc_buf = np.empty(max_cols * K, np.float32)
        last_n = -1
        for task in range(t * ntasks // nthreads, (t + 1) * ntasks // nthreads):
            n, tile = task // tiles_per_img, task % tiles_per_img
            if n != last_n:
                _fill_phases(x[n], sh, sw, ph, pw, ph_rows, ph_cols, xph)
                last_n = n
            p0 = tile * tile_rows
            tp = min(tile_rows, P - p0)
            cols = tp * ph_cols
            col = col_buf[:C * R * S * cols].reshape((C * R * S, cols))
            acc_t = acc_buf[:cols * K].reshape((cols, K))
            _pack_tile(xph, C, R, S, sh, sw, dh, dw, ph_rows, ph_cols, p0, cols, col)
            # acc_t (cols, K) = col^T @ w2^T: the same product as w2 @ col, but with the long side as sgemm's M
            # OpenBLAS runs 10-15% faster when K is only 64 (measured).
            np.dot(col.T, w2.T, acc_t)
            _store_tile(acc_t, bias, n, p0, tp, ph_cols, out)


@numba.njit(cache=True)
def _col2im_add(cols, R, S, H, W, sh, sw, ph, pw, dh, dw, on):
    """on (K, Ho, Wo) += scatter of cols (K*R*S, H*W): tap (k, r, s) of pixel (h, w) lands on
    (k, h*sh - ph + r*dh, w*sw - pw + s*dw) when that is inside the output."""
    K, Ho, Wo = on.shape
    of = on.reshape(K * Ho * Wo)
    cf = cols.reshape(cols.size)
    for r in range(R):
        # pixel rows h whose output row h*sh + r*dh - ph lies in [0, Ho)
        h_lo = min(H, max(0, (ph - r * dh + sh - 1) // sh))
        h_hi = max(h_lo, min(H, (Ho - 1 + ph - r * dh) // sh + 1))
        for s in range(S):
            w_lo = min(W, max(0, (pw - s * dw + sw - 1) // sw))
            w_hi = max(w_lo, min(W, (Wo - 1 + pw - s * dw) // sw + 1))
            for k in range(K):
                src_row = ((k * R + r) * S + s) * H * W
                for h in range(h_lo, h_hi):
                    d0 = np.uint64((k * Ho + h * sh - ph + r * dh) * Wo + w_lo * sw - pw + s * dw)
                    s0 = np.uint64(src_row + h * W + w_lo)
                    for j in range(np.uint64(w_hi - w_lo)):
                        of[d0 + j * np.uint64(sw)] += cf[s0 + j]


@numba.njit(parallel=True, cache=True)
def _conv_transpose2d_kernel(x, w2, bias, sh, sw, ph, pw, dh, dw, R, S, nthreads, out):
    """x (N, C, H, W), w2 (C, K*R*S), bias (K,), out (N, K, Ho, Wo)."""
    N, C, H, W = x.shape
    K = out.shape[1]
    for t in prange(nthreads):
        cols = np.empty((K * R * S, H * W), np.float32)
        for n in range(t * N // nthreads, (t + 1) * N // nthreads):
            # cols (K*R*S, H*W) = w2^T (K*R*S, C) @ x[n] (C, H*W): every tap's contribution, before overlap
            np.dot(w2.T, x[n].reshape((C, H * W)), cols)
            for k in range(K):
                out[n, k] = bias[k]
            _col2im_add(cols, R, S, H, W, sh, sw, ph, pw, dh, dw, out[n])


def _bias_or_zeros(bias, k):
    return np.zeros(k, np.float32) if bias is None else bias


def conv2d(x, w, bias, stride, padding, dilation, out):
    """x (N, C, H, W), w (K, C, R, S), bias (K,) or None, out (N, K, P, Q); float32 C-contiguous."""
    K, C, R, S = w.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    Q = out.shape[3]
    ph_cols = Q + ((S - 1) * dw) // sw
    tile_rows = max(1, min(out.shape[2], TILE_COLS // ph_cols))
    nthreads = numba.get_num_threads()
    with single_threaded_scipy_blas():
        _conv2d_kernel(x, w.reshape(K, C * R * S), _bias_or_zeros(bias, K),
                       sh, sw, ph, pw, dh, dw, R, S, tile_rows, nthreads, out)


def conv_transpose2d(x, w, bias, stride, padding, output_padding, dilation, out):
    """x (N, C, H, W), w (C, K, R, S), bias (K,) or None, out (N, K, Ho, Wo); float32 C-contiguous.

    output_padding only lengthens out, whose shape the caller already chose, so the kernel does not need it."""
    C, K, R, S = w.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    nthreads = numba.get_num_threads()
    with single_threaded_scipy_blas():
        _conv_transpose2d_kernel(x, w.reshape(C, K * R * S), _bias_or_zeros(bias, K),
                                 sh, sw, ph, pw, dh, dw, R, S, nthreads, out)


def warmup():
    x = np.ones((1, 2, 5, 5), np.float32)
    w = np.ones((3, 2, 3, 3), np.float32)
    conv2d(x, w, None, (1, 1), (1, 1), (1, 1), np.empty((1, 3, 5, 5), np.float32))
    conv_transpose2d(x, w.reshape(2, 3, 3, 3), None, (1, 1), (1, 1), (0, 0), (1, 1),
                     np.empty((1, 3, 5, 5), np.float32))
