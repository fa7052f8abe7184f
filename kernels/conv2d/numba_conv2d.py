"""conv2d and conv_transpose2d for the numba backend, NCHW, float32, groups=1.

Which path, on an AVX2 CPU without AVX-512: fewer than 16 input channels (and 8+ output columns):
numba_conv2d_rows; other kernels that are not 1x1-like with 16+ input and output channels: numba_conv2d_blocked
(neither uses BLAS). Otherwise: 1x1-like kernels (Wph == Q below) with 16+ channels: DIRECT; the rest TAPS or
IM2COL below. conv_transpose2d with 16+ input and output channels on such a CPU: numba_conv_transpose2d_blocked;
otherwise the GEMM + col2im below.

What is whose, on the paths of this file: the multiply-adds are SciPy's OpenBLAS sgemm, called from Numba's nopython
mode (conv2d through kernels/numba_blas.py, which passes leading dimensions and beta; conv_transpose2d through
np.dot). Everything around it is our own Numba code: the phase split of the padded input, the tiling and its split
across threads, the im2col packing where it is used, the copy-out with bias, and for the transposed convolution the
col2im scatter-add.

conv2d algorithm (implicit GEMM):
  1. Per image, split the zero-padded input into sh*sw stride phases xph (C, sh, sw, Hph, Wph). Tap (r, s) of a
     strided conv then reads phase ((r*dh) % sh, (s*dw) % sw) at a plain shift ((r*dh)//sh, (s*dw)//sw).
  2. Output rows are computed Wph wide (Wph >= Q; the extra columns are garbage and dropped). Then, for tap (r, s)
     and a tile of tp output rows, channel c's operand is one contiguous run of tp*Wph floats of its phase plane,
     and the runs of all channels lie a fixed sh*sw*Hph*Wph apart: a strided matrix X_rs (C, tp*Wph).
  3. A tile's products, one of three ways:
     TAPS    sgemm reads each X_rs where it lies: acc (tp*Wph, K) = sum over taps of X_rs^T @ W_rs, W_rs (C, K),
             R*S calls per tile, the first with beta = 0, the rest accumulating. Nothing is packed by us, and
             tiles are sized so every call stays within OpenBLAS's small-matrix path (M*N*K <= 1e6), which does
             not pack either.
     IM2COL  copy the runs into col (C*R*S, tp*Wph) and make one sgemm of it (the former design): for few
             channels (thin per-tap products) or many (K*C*Wph past the small-matrix limit even for one row).
     DIRECT  when Wph == Q (1x1 kernels; a W stride at least the kernel's span) there are no garbage columns:
             out[n] (K, P*Q) is set to the bias and the per-tap sgemm calls accumulate straight into it (sgemm's
             c (P*Q, K) with ldc = P*Q). Not for very few channels: IM2COL's one call beats R*S thin ones there.
  4. TAPS and IM2COL: copy acc's Q valid columns of each row, transposed, + bias to out, in 16x16 register
     blocks; the output lines are prefetched for writing before the tile's sgemm calls.
  Threads take contiguous runs of tiles (prange over threads), each calling single-threaded sgemm.

Why TAPS is the default: IM2COL's one long-K sgemm (K = C*R*S) packs our already-packed tile again, while TAPS'
short-K calls (K = C) stay on OpenBLAS's no-packing path and run faster per core. IM2COL stays for the two cases
where TAPS loses: very few channels (a first layer, C=3), whose per-tap products are too thin, and so many that
K*C*Wph passes the small-matrix limit even for whole-image tiles.
The no-packing path is the hand-written small-matrix kernels of OpenBLAS's SkylakeX-family cores. Its other cores
(Haswell: AVX2 CPUs) pack both operands on every call, so on AVX2 CPUs without AVX-512 TAPS and IM2COL give way to
our own FMA kernel over a channel-blocked input (numba_conv2d_blocked), which packs nothing per call. Where TAPS
meets a packing core all the same (an AVX-512 CPU whose OpenBLAS picked another core), it makes the fewest,
largest calls: a whole image a tile (split only to give every thread work), W_rs packed once per image.

conv_transpose2d algorithm: per image, cols (K*R*S, H*W) = W^T (K*R*S, C) @ x (C, H*W) by sgemm, then col2im
scatter-adds each tap into out (our code), in parallel over images. W^T is made contiguous first (our parallel
transpose, kernels/numba_transpose.py): OpenBLAS's sgemm runs the untransposed operand faster than W read
transposed in place.
"""

from __future__ import annotations

import functools

import numba
import numpy as np
from numba import prange

from hetero.blas_env import blas_report
from hetero.kernels.conv2d import numba_conv2d_blocked as blocked
from hetero.kernels.conv2d import numba_conv2d_rows as rows
from hetero.kernels.conv2d import numba_conv_transpose2d_blocked as blocked_t
from hetero.kernels.conv2d.numba_conv2d_blocked import prefetch_rows
from hetero.kernels.conv2d.numba_phases import fill_phases
from hetero.kernels.numba_blas import NO_TRANS, TRANS, sgemm
from hetero.kernels.numba_intrinsics import transpose16_add
from hetero.kernels.numba_transpose import transpose
from hetero.threads import single_threaded_scipy_blas

TAPS, IM2COL, DIRECT = 0, 1, 2  # how a tile's products are formed (module docstring)
SMALL_GEMM = 1_000_000  # OpenBLAS runs sgemm with M*N*K up to this through its small-matrix kernels (no packing)
SMALL_KERNEL_CORES = {"SkylakeX", "Cooperlake", "SapphireRapids"}  # OpenBLAS cores with those kernels (AVX-512)
MIN_TAP_C = 16  # fewer channels: IM2COL
IM2COL_COLS = 256  # columns of an IM2COL tile: a few hundred for sgemm, and col (C*R*S, cols) stays near L2


@numba.njit(cache=True)
def _tap_gemms(xph, w, sh, sw, dh, dw, S, ph_rows, ph_cols, row0, m, direct, c, ldc):
    """Sum over taps (r, s) of X_rs^T (m, C) @ W_rs (C, K), X_rs read in xph from phase row row0 on.

    direct: c (K, ldc) row-major gets the sum added (sgemm's c (m, K), column stride ldc), w (R*S, K, C).
    Otherwise c (m, K) row-major is overwritten, w (R*S, C, K)."""
    plane = ph_rows * ph_cols
    ld_x = sh * sw * plane  # distance between channels in xph
    RS = w.shape[0]
    K, C = (w.shape[1], w.shape[2]) if direct else (w.shape[2], w.shape[1])
    for tap in range(RS):
        r, s = tap // S, tap % S
        a, ri = (r * dh) % sh, (r * dh) // sh
        b, si = (s * dw) % sw, (s * dw) // sw
        x0 = (a * sw + b) * plane + (row0 + ri) * ph_cols + si
        if direct:
            sgemm(NO_TRANS, NO_TRANS, m, K, C, xph[x0:], ld_x, w[tap], C, 1.0, c, ldc)
        else:  # sgemm's c (K, m) = W_rs^T (K, C) @ X_rs (C, m): faster than the (m, K) orientation (measured)
            sgemm(NO_TRANS, TRANS, K, m, C, w[tap], K, xph[x0:], ld_x, 0.0 if tap == 0 else 1.0, c, K)


@numba.njit(cache=True)
def _pack_tile(xph, C, R, S, sh, sw, dh, dw, ph_rows, ph_cols, p0, cols, col):
    """col (C*R*S, cols) flat: row (c, r, s) is the run of the phase plane that tap (r, s) reads for rows p0.."""
    plane = ph_rows * ph_cols
    for c in range(C):
        for r in range(R):
            a, ri = (r * dh) % sh, (r * dh) // sh
            for s in range(S):
                b, si = (s * dw) % sw, (s * dw) // sw
                start = ((c * sh + a) * sw + b) * plane + (p0 + ri) * ph_cols + si
                # 1-D views with 0-based indices: LLVM vectorizes this copy (faster than slice assignment)
                dst = col[((c * R + r) * S + s) * cols :]
                src = xph[start:]
                for j in range(cols):
                    dst[j] = src[j]


@numba.njit(cache=True)
def _store_tile(acc_t, bias, p0, tp, ph_cols, on):
    """on[:, p0:p0+tp, :] (K, tp, Q) = acc_t (tp*Wph, K) transposed, minus its garbage columns, plus bias.

    16x16 blocks transposed in registers; a last partial block is moved back to overlap the one before (it writes
    the same values twice). Only with the lines prefetched: without, these 64-byte stores across line boundaries
    (rows of 56 floats) are slower than a scalar loop; with them, faster."""
    K, P, Q = on.shape
    of = on.reshape(K * P * Q)
    af = acc_t.reshape(acc_t.size)
    if K < 16 or Q < 16:
        for k in range(K):
            bk = bias[k]
            for t in range(tp):
                d0 = np.uint64((k * P + p0 + t) * Q)
                s0 = np.uint64(t * ph_cols * K + k)
                for q in range(np.uint64(Q)):
                    of[d0 + q] = af[s0 + q * np.uint64(K)] + bk
        return
    for t in range(tp):
        for qb in range(0, Q, 16):
            q0 = min(qb, Q - 16)
            for kb in range(0, K, 16):
                k0 = min(kb, K - 16)
                transpose16_add(af, (t * ph_cols + q0) * K + k0, K, of, (k0 * P + p0 + t) * Q + q0, P * Q, bias, k0)


@numba.njit(cache=True)
def _fill_bias(on, bias, p0, tp):
    """on[:, p0:p0+tp, :] = bias, per output channel; on (K, P, Q)."""
    K, P, Q = on.shape
    for k in range(K):
        on[k, p0 : p0 + tp] = bias[k]


@numba.njit(parallel=True, cache=True, nogil=True)  # nogil: see numba_matmul._matmul
def _conv2d_kernel(x, w, bias, sh, sw, ph, pw, dh, dw, R, S, tile_rows, mode, nthreads, out):
    """x (N, C, H, W), bias (K,), out (N, K, P, Q); w (R*S, C, K) for TAPS, (1, K, C*R*S) for IM2COL,
    (R*S, K, C) for DIRECT."""
    N, C = x.shape[0], x.shape[1]
    K, P, Q = out.shape[1], out.shape[2], out.shape[3]
    max_ri, max_si = ((R - 1) * dh) // sh, ((S - 1) * dw) // sw
    ph_rows, ph_cols = P + max_ri, Q + max_si
    # + max_si: the last tile's garbage columns may read that far past the last plane.
    ph_size = C * sh * sw * ph_rows * ph_cols + max_si
    tiles_per_img = (P + tile_rows - 1) // tile_rows
    ntasks = N * tiles_per_img
    max_cols = 0 if mode == DIRECT else tile_rows * ph_cols
    for t in prange(nthreads):
        xph = np.zeros(ph_size, np.float32)
        acc_t = np.empty(max_cols * K, np.float32)  # (tp*Wph, K)
        col = np.empty(C * R * S * max_cols if mode == IM2COL else 0, np.float32)  # (C*R*S, tp*Wph)
        last_n = -1
        for task in range(t * ntasks // nthreads, (t + 1) * ntasks // nthreads):
            n, tile = task // tiles_per_img, task % tiles_per_img
            if n != last_n:
                fill_phases(x[n], sh, sw, ph, pw, ph_rows, ph_cols, xph)
                last_n = n
            p0 = tile * tile_rows
            tp = min(tile_rows, P - p0)
            if mode == DIRECT:
                _fill_bias(out[n], bias, p0, tp)
                _tap_gemms(
                    xph,
                    w,
                    sh,
                    sw,
                    dh,
                    dw,
                    S,
                    ph_rows,
                    ph_cols,
                    p0,
                    tp * Q,
                    True,
                    out[n].reshape(K * P * Q)[p0 * Q :],
                    P * Q,
                )
                continue
            cols = tp * ph_cols
            prefetch_rows(out[n], p0, tp)
            if mode == IM2COL:
                _pack_tile(xph, C, R, S, sh, sw, dh, dw, ph_rows, ph_cols, p0, cols, col)
                # sgemm's c (K, cols) = W (K, C*R*S) @ col (C*R*S, cols)
                sgemm(TRANS, TRANS, K, cols, C * R * S, w[0], C * R * S, col, cols, 0.0, acc_t, K)
            else:
                _tap_gemms(xph, w, sh, sw, dh, dw, S, ph_rows, ph_cols, p0, cols, False, acc_t, K)
            _store_tile(acc_t, bias, p0, tp, ph_cols, out[n])


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


@numba.njit(parallel=True, cache=True, nogil=True)  # nogil: see numba_matmul._matmul
def _conv_transpose2d_kernel(x, w2t, bias, sh, sw, ph, pw, dh, dw, R, S, nthreads, out):
    """x (N, C, H, W), w2t (K*R*S, C), bias (K,), out (N, K, Ho, Wo)."""
    N, C, H, W = x.shape
    K = out.shape[1]
    for t in prange(nthreads):
        cols = np.empty((K * R * S, H * W), np.float32)
        for n in range(t * N // nthreads, (t + 1) * N // nthreads):
            # cols (K*R*S, H*W) = w2t (K*R*S, C) @ x[n] (C, H*W): every tap's contribution, before overlap
            np.dot(w2t, x[n].reshape((C, H * W)), cols)
            for k in range(K):
                out[n, k] = bias[k]
            _col2im_add(cols, R, S, H, W, sh, sw, ph, pw, dh, dw, out[n])


@functools.cache
def small_gemm_kernels() -> bool:
    """Whether the OpenBLAS that sgemm calls has hand-written small-matrix kernels (SkylakeX-family cores), which
    skip packing when M*N*K <= SMALL_GEMM (module docstring: how TAPS sizes its tiles)."""
    return any(b["api"] == "openblas" and b["architecture"] in SMALL_KERNEL_CORES for b in blas_report())


def _bias_or_zeros(bias, k):
    return np.zeros(k, np.float32) if bias is None else bias


def conv2d(x, w, bias, stride, padding, dilation, out):
    """x (N, C, H, W), w (K, C, R, S), bias (K,) or None, out (N, K, P, Q); float32 C-contiguous."""
    K, C, R, S = w.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    N, P, Q = x.shape[0], out.shape[2], out.shape[3]
    ph_cols = Q + ((S - 1) * dw) // sw
    nthreads = numba.get_num_threads()
    if rows.takes(C, Q):  # few channels: output rows straight from the microkernel (AVX2 hosts)
        rows.conv2d(x, w, _bias_or_zeros(bias, K), stride, padding, dilation, out)
        return
    if ph_cols > Q and blocked.takes(C, K):  # our FMA kernel beats a packing sgemm (AVX2 hosts)
        blocked.conv2d(x, w, _bias_or_zeros(bias, K), stride, padding, dilation, out)
        return
    if ph_cols == Q and C >= MIN_TAP_C:  # a whole image per tile, unless there are fewer images than threads
        mode, tile_rows = DIRECT, -(-P // -(-nthreads // N))
        wm = np.ascontiguousarray(w.transpose(2, 3, 0, 1)).reshape(R * S, K, C)
    elif C >= MIN_TAP_C and K * C * ph_cols <= SMALL_GEMM:
        small = min(P, SMALL_GEMM // (K * C * ph_cols))  # rows a tile on the no-packing path
        mode, tile_rows = TAPS, small if small_gemm_kernels() else -(-P // -(-nthreads // N))
        # (R*S, C, K): W^T (C*R*S, K) by our transpose, then whole K-rows moved (numpy's 4-D transpose of w
        # is several times slower at power-of-two strides)
        wm = np.ascontiguousarray(transpose(w.reshape(K, C * R * S)).reshape(C, R * S, K).transpose(1, 0, 2))
    else:
        mode, tile_rows = IM2COL, max(1, min(P, IM2COL_COLS // ph_cols))
        wm = w.reshape(1, K, C * R * S)
    with single_threaded_scipy_blas():
        _conv2d_kernel(x, wm, _bias_or_zeros(bias, K), sh, sw, ph, pw, dh, dw, R, S, tile_rows, mode, nthreads, out)


def conv_transpose2d(x, w, bias, stride, padding, output_padding, dilation, out):
    """x (N, C, H, W), w (C, K, R, S), bias (K,) or None, out (N, K, Ho, Wo); float32 C-contiguous.

    output_padding only lengthens out, whose shape the caller already chose, so the kernel does not need it."""
    C, K, R, S = w.shape
    if blocked.takes(C, K):  # as conv2d: our FMA kernel on AVX2 hosts
        blocked_t.conv_transpose2d(x, w, _bias_or_zeros(bias, K), stride, padding, dilation, out)
        return
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    nthreads = numba.get_num_threads()
    w2t = transpose(w.reshape(C, K * R * S))
    with single_threaded_scipy_blas():
        _conv_transpose2d_kernel(x, w2t, _bias_or_zeros(bias, K), sh, sw, ph, pw, dh, dw, R, S, nthreads, out)


def warmup():
    x = np.ones((1, 2, 5, 5), np.float32)
    w = np.ones((3, 2, 3, 3), np.float32)
    conv2d(x, w, None, (1, 1), (1, 1), (1, 1), np.empty((1, 3, 5, 5), np.float32))
    conv_transpose2d(x, w.reshape(2, 3, 3, 3), None, (1, 1), (1, 1), (0, 0), (1, 1), np.empty((1, 3, 5, 5), np.float32))
