"""int8 conv2d for the numba backend, NCHW: out (N, K, P, Q) int32 = the exact integer convolution of int8 input
(N, C, H, W) and weight (K, C/groups, R, S); any stride, padding, dilation and groups.

Lowered onto kernels/matmul/numba_int8.py's GEMM, per group: im2col cols (N*P*Q, C/g*R*S) int8 (our Numba code,
parallel over output pixels, zeros where a tap falls in the padding) @ W_g^T (C/g*R*S, K/g) -> (N*P*Q, K/g),
then transposed into the group's K/g output channels. The bias is not the kernel's: int8 cases add it in float
after dequantizing (workloads.quant).
"""

from __future__ import annotations

import numba
import numpy as np
from numba import prange

from hetero.kernels.matmul.numba_int8 import gemm


@numba.njit(cache=True, nogil=True, parallel=True)
def _im2col(x, c0, cg, R, S, sh, sw, ph, pw, dh, dw, P, Q):
    """cols (N*P*Q, cg*R*S) int8: row (n, p, q), column (c, r, s) = x[n, c0 + c, p*sh - ph + r*dh, q*sw - pw + s*dw]."""
    N, _, H, W = x.shape
    cols = np.empty((N * P * Q, cg * R * S), np.int8)
    for row in prange(N * P * Q):
        n, pq = row // (P * Q), row % (P * Q)
        p, q = pq // Q, pq % Q
        for c in range(cg):
            for r in range(R):
                h = p * sh - ph + r * dh
                for s in range(S):
                    w = q * sw - pw + s * dw
                    inside = 0 <= h < H and 0 <= w < W
                    cols[row, (c * R + r) * S + s] = x[n, c0 + c, h, w] if inside else np.int8(0)
    return cols


def conv2d(x, w, stride, padding, dilation, groups, out) -> None:
    """out (N, K, P, Q) int32 = conv2d(x int8 (N, C, H, W), w int8 (K, C/groups, R, S)); stride etc. (h, w)."""
    N, K, P, Q = out.shape
    cg, R, S = w.shape[1:]
    kg = K // groups
    for g in range(groups):
        cols = _im2col(x, g * cg, cg, R, S, *stride, *padding, *dilation, P, Q)
        wt = np.ascontiguousarray(w[g * kg : (g + 1) * kg].reshape(kg, cg * R * S).T)  # (cg*R*S, kg)
        acc = np.empty((N * P * Q, kg), np.int32)
        gemm(cols, wt, acc)
        out[:, g * kg : (g + 1) * kg] = acc.reshape(N, P, Q, kg).transpose(0, 3, 1, 2)


def warmup() -> None:
    x, w = np.ones((1, 2, 5, 5), np.int8), np.ones((3, 2, 3, 3), np.int8)
    conv2d(x, w, (1, 1), (1, 1), (1, 1), 1, np.empty((1, 3, 5, 5), np.int32))
