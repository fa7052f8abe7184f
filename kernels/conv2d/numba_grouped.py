"""Grouped conv2d and conv_transpose2d for the numba backend (groups > 1), NCHW, float32.

Few channels per group (depthwise: one) make the per-group GEMMs too thin for sgemm, so conv2d with at most
DIRECT_MAX_CG input channels per group is a direct convolution, our own Numba loops: the input is zero-padded
once, then each (image, output channel) task sums its group's channels and taps, one output row at a time, the
innermost loop running along the output row (contiguous when the W stride is 1, so LLVM vectorises it). More
channels per group, and every transposed convolution, run the dense kernels of numba_conv2d.py group by group
on contiguous copies of the group's channels.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import prange

from hetero.kernels.conv2d import numba_conv2d as dense

DIRECT_MAX_CG = 16  # input channels per group up to which the direct kernel beats per-group GEMMs


@numba.njit(parallel=True, fastmath=True, cache=True, nogil=True)  # nogil: see numba_matmul._matmul
def _direct(xp, w, bias, sh, sw, dh, dw, groups, out):
    """xp (N, C, Hp, Wp) zero-padded input, w (K, C/groups, R, S), bias (K,), out (N, K, P, Q)."""
    N = xp.shape[0]
    K, Cg, R, S = w.shape
    P, Q = out.shape[2], out.shape[3]
    kg = K // groups
    for t in prange(N * K):
        n, k = t // K, t % K
        c0 = (k // kg) * Cg
        o = out[n, k]
        for p in range(P):
            row = o[p]
            for q in range(Q):
                row[q] = bias[k]
            for c in range(Cg):
                for r in range(R):
                    src = xp[n, c0 + c, p * sh + r * dh]
                    for s in range(S):
                        wv = w[k, c, r, s]
                        off = s * dw
                        for q in range(Q):
                            row[q] += wv * src[off + q * sw]


def conv2d(x, w, bias, stride, padding, dilation, groups, out):
    """x (N, C, H, W), w (K, C/groups, R, S), bias (K,) or None, out (N, K, P, Q); float32 C-contiguous."""
    K, Cg = w.shape[0], w.shape[1]
    b = dense._bias_or_zeros(bias, K)
    if Cg <= DIRECT_MAX_CG:
        (ph, pw) = padding
        xp = np.ascontiguousarray(np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw))))
        _direct(xp, w, b, stride[0], stride[1], dilation[0], dilation[1], groups, out)
        return
    kg = K // groups
    part = np.empty((out.shape[0], kg) + out.shape[2:], np.float32)
    for g in range(groups):
        xg = np.ascontiguousarray(x[:, g * Cg : (g + 1) * Cg])
        dense.conv2d(xg, w[g * kg : (g + 1) * kg], b[g * kg : (g + 1) * kg], stride, padding, dilation, part)
        out[:, g * kg : (g + 1) * kg] = part


def conv_transpose2d(x, w, bias, stride, padding, output_padding, dilation, groups, out):
    """x (N, C, H, W), w (C, K/groups, R, S), bias (K,) or None, out (N, K, Ho, Wo); float32 C-contiguous."""
    C, kg = w.shape[0], w.shape[1]
    cg = C // groups
    b = dense._bias_or_zeros(bias, kg * groups)
    part = np.empty((out.shape[0], kg) + out.shape[2:], np.float32)
    for g in range(groups):
        xg = np.ascontiguousarray(x[:, g * cg : (g + 1) * cg])
        dense.conv_transpose2d(
            xg, w[g * cg : (g + 1) * cg], b[g * kg : (g + 1) * kg], stride, padding, output_padding, dilation, part
        )
        out[:, g * kg : (g + 1) * kg] = part


def warmup():
    x = np.ones((1, 2, 5, 5), np.float32)
    conv2d(x, np.ones((2, 1, 3, 3), np.float32), None, (1, 1), (1, 1), (1, 1), 2, np.empty((1, 2, 5, 5), np.float32))
