"""int8 conv2d for the numba backend, NCHW: out (N, K, P, Q) int32 = the exact integer convolution of int8 input
(N, C, H, W) and weight (K, C/groups, R, S); any stride, padding, dilation and groups.

Four ways, by channels per group (cg = C/groups):
  ROWS    ungrouped with fewer than 16 channels (a first layer), on the CPUs numba_conv2d_rows.applies to, while
          cg*R*S <= 1024: its float32 kernel, widening the int8 input as it lays it out; exact for the reason
          DIRECT gives.
  BLOCKED ungrouped, not 1x1-like, with 16+ input and output channels on the CPUs numba_conv2d_blocked.applies
          to (AVX2 without AVX-512, where the int8 GEMM below has only VPMADDWD), while cg*R*S <= 1024: the float32
          blocked kernel, widening the int8 input as it lays it out; exact for the reason DIRECT gives. (1x1-like
          convs, whose im2col is a plain copy, run faster on the int8 GEMM.)
  GEMM    ungrouped, or cg >= DIRECT_BELOW: per image and group, im2col cols (cg*R*S, P*Q) int8 (our Numba
          code, parallel over its rows, zeros where a tap falls in the padding), then out[n, group] (K/g, P*Q) =
          W_g (K/g, cg*R*S) @ cols on kernels/matmul/numba_int8.py's GEMM, written in place: no transpose after.
  DIRECT  grouped with fewer channels a group (depthwise): per group a GEMM of K/g rows (1 when depthwise) and a
          reduction of a few taps, padded to the GEMM's tiles; instead the float32 direct kernels of
          numba_grouped.py run it, reading the int8 planes and widening them as they pad them. That is exact:
          every partial sum is an integer of magnitude at most cg*R*S * 128*128, and float32 holds every
          integer up to 2^24, so while cg*R*S <= 1024 each addition is exact in any order. Past that bound,
          each (image, output channel) accumulates its taps in int32 (_direct). (An ungrouped conv with few
          channels, a first layer's 3, still has all K output channels for the GEMM's rows.)
The bias is not the kernel's: int8 cases add it in float after dequantizing (workloads.quant).
"""

from __future__ import annotations

import numba
import numpy as np
from numba import prange

from hetero.kernels.conv2d import numba_conv2d_blocked as blocked
from hetero.kernels.conv2d import numba_conv2d_rows as rows
from hetero.kernels.conv2d import numba_grouped
from hetero.kernels.matmul.numba_int8 import gemm

DIRECT_BELOW = 16  # channels per group under which a grouped convolution runs direct


@numba.njit(cache=True, nogil=True, parallel=True)
def _im2col(x, n, c0, cg, R, S, sh, sw, ph, pw, dh, dw, P, Q, cols):
    """cols (cg*R*S, P*Q): row (c, r, s), column (p, q) = x[n, c0 + c, p*sh - ph + r*dh, q*sw - pw + s*dw], 0 in
    the padding. Each output row's run of q is split where the tap leaves the input row, so the middle is a plain
    copy (contiguous at W stride 1, which LLVM vectorises) and only the ends are zeroed; no test an element."""
    H, W = x.shape[2], x.shape[3]
    for row in prange(cg * R * S):
        c, rs = row // (R * S), row % (R * S)
        r, s = rs // S, rs % S
        w0 = s * dw - pw  # input column of q = 0
        q_lo = min(Q, max(0, (-w0 + sw - 1) // sw))  # first q inside the row
        q_hi = max(q_lo, min(Q, (W - w0 + sw - 1) // sw))  # past the last q inside it
        dst = cols[row]
        for p in range(P):
            h, base = p * sh - ph + r * dh, p * Q
            if h < 0 or h >= H:
                for q in range(Q):
                    dst[base + q] = 0
                continue
            src = x[n, c0 + c, h]
            for q in range(q_lo):
                dst[base + q] = 0
            if sw == 1:
                seg, out = src[w0 + q_lo :], dst[base + q_lo :]
                for q in range(q_hi - q_lo):
                    out[q] = seg[q]
            else:
                for q in range(q_lo, q_hi):
                    dst[base + q] = src[q * sw + w0]
            for q in range(q_hi, Q):
                dst[base + q] = 0


@numba.njit(cache=True, nogil=True, parallel=True)
def _direct(x, w, sh, sw, ph, pw, dh, dw, groups, out):
    """out (N, K, P, Q) = conv2d(x, w), one (image, output channel) plane per task, taps accumulated in int32."""
    N, K, P, Q = out.shape
    cg, R, S = w.shape[1], w.shape[2], w.shape[3]
    H, W = x.shape[2], x.shape[3]
    kg = K // groups
    for nk in prange(N * K):
        n, k = nk // K, nk % K
        c0 = (k // kg) * cg
        acc = np.zeros((P, Q), np.int32)
        for c in range(cg):
            for r in range(R):
                for s in range(S):
                    wv = np.int32(w[k, c, r, s])
                    for p in range(P):
                        h = p * sh - ph + r * dh
                        if 0 <= h < H:
                            for q in range(Q):
                                ww = q * sw - pw + s * dw
                                if 0 <= ww < W:
                                    acc[p, q] += wv * np.int32(x[n, c0 + c, h, ww])
        out[n, k] = acc


def conv2d(x, w, stride, padding, dilation, groups, out) -> None:
    """out (N, K, P, Q) int32 = conv2d(x int8 (N, C, H, W), w int8 (K, C/groups, R, S)); stride etc. (h, w)."""
    N, K, P, Q = out.shape
    cg, R, S = w.shape[1:]
    if groups == 1 and rows.takes(cg, Q) and blocked.exact_for_int8(cg, R, S):  # exact: see DIRECT
        sums = np.empty(out.shape, np.float32)
        rows.conv2d(x, w.astype(np.float32), np.zeros(K, np.float32), stride, padding, dilation, sums)
        np.copyto(out, sums, casting="unsafe")
        return
    if (
        groups == 1
        and (S - 1) * dilation[1] >= stride[1]  # taps overlap along a row: not 1x1-like (numba_conv2d's DIRECT)
        and blocked.takes(cg, K)
        and blocked.exact_for_int8(cg, R, S)
    ):
        sums = np.empty(out.shape, np.float32)  # exact integers (module docstring)
        blocked.conv2d(x, w.astype(np.float32), np.zeros(K, np.float32), stride, padding, dilation, sums)
        np.copyto(out, sums, casting="unsafe")
        return
    if groups > 1 and cg < DIRECT_BELOW:
        if blocked.exact_for_int8(cg, R, S):  # exact in float32 (module docstring)
            numba_grouped.direct(x, w.astype(np.float32), None, stride, padding, dilation, groups, out)
        else:
            _direct(x, w, *stride, *padding, *dilation, groups, out)
        return
    kg = K // groups
    cols = np.empty((cg * R * S, P * Q), np.int8)
    acc = np.empty((kg, P * Q), np.int32)
    for g in range(groups):
        wg = np.ascontiguousarray(w[g * kg : (g + 1) * kg].reshape(kg, cg * R * S))  # (K/g, cg*R*S)
        for n in range(N):
            _im2col(x, n, g * cg, cg, R, S, *stride, *padding, *dilation, P, Q, cols)
            dst = out[n, g * kg : (g + 1) * kg].reshape(kg, P * Q)  # contiguous: the GEMM writes it in place
            gemm(wg, cols, dst if dst.flags.c_contiguous else acc)
            if not dst.flags.c_contiguous:
                out[n, g * kg : (g + 1) * kg] = acc.reshape(kg, P, Q)


def warmup() -> None:
    for groups in (1, 2):  # the GEMM way, then the direct one
        x, w = np.ones((1, 2, 5, 5), np.int8), np.ones((2, 2 // groups, 3, 3), np.int8)
        conv2d(x, w, (1, 1), (1, 1), (1, 1), groups, np.empty((1, 2, 5, 5), np.int32))
