"""Grouped conv2d and conv_transpose2d for the numba backend (groups > 1), NCHW, float32; also the ungrouped
stride-1 3x3 conv2d with few input channels (takes_dense).

Few channels per group (depthwise: one) make the per-group GEMMs too thin for sgemm, so conv2d with at most
DIRECT_MAX_CG input channels per group is a direct convolution, our own Numba loops (_direct): each (image, group)
task zero-pads its group's input planes into a buffer of its own (split by row and column phase, so that every
tap of a strided kernel reads a plane at a constant offset), then sums each output channel from them a plane a
pass, several taps a pass, every innermost loop contiguous and indexed from 0 so that LLVM vectorises it. More
channels per group, and every transposed convolution, run the dense kernels of numba_conv2d.py group by group
on contiguous copies of the group's channels.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import prange

from hetero.kernels.conv2d import numba_conv2d as dense
from hetero.kernels.numba_intrinsics import deinterleave2

DIRECT_MAX_CG = 16  # input channels per group up to which the direct kernel beats per-group GEMMs


@numba.njit(fastmath=True, cache=True)
def _pad_planes(x, n, c0, ph, pw, xp):
    """xp (Cg, Hp, Wp) = planes c0.. of image n of x (N, C, H, W), zero-padded by ph rows and pw columns."""
    Cg, Hp, Wp = xp.shape
    H, W = x.shape[2], x.shape[3]
    xp[:] = 0
    for c in range(Cg):
        for i in range(H):
            src, dst = x[n, c0 + c, i], xp[c, ph + i, pw:]  # a slice from pw: see _plane3x3 on offsets
            for j in range(W):
                dst[j] = src[j]


@numba.njit(fastmath=True, cache=True, inline="always")
def _nine_taps(acc, n, first, b, wkc, a0, a1, a2, b0, b1, b2, c0, c1, c2):
    """acc[:n] = b + (first) or += the 3x3 weights wkc (3, 3) times the taps' slices (row r: a, b, c; column s:
    0, 1, 2), one pass: acc loaded and stored once per nine FMAs."""
    w00, w01, w02 = wkc[0, 0], wkc[0, 1], wkc[0, 2]
    w10, w11, w12 = wkc[1, 0], wkc[1, 1], wkc[1, 2]
    w20, w21, w22 = wkc[2, 0], wkc[2, 1], wkc[2, 2]
    if first:
        for i in range(n):
            acc[i] = b
    for i in range(n):
        acc[i] += (w00 * a0[i] + w01 * a1[i] + w02 * a2[i] + w10 * b0[i] + w11 * b1[i]) + (
            w12 * b2[i] + w20 * c0[i] + w21 * c1[i] + w22 * c2[i]
        )


@numba.njit(fastmath=True, cache=True)
def _plane3x3(acc, plane, w, k, c, Wp, n, dh, dw, first, b):
    """Stride 1, 3x3: acc[:n] = b + (first) or += the nine taps of w[k, c] over one zero-padded input plane. Plane
    and acc are flattened with the padded row length Wp: output (p, q) is acc[p * Wp + q] and tap (r, s) reads the
    constant offset r*dh*Wp + s*dw, so one loop of n = (P - 1)*Wp + Q iterations covers the plane (the Wp - Q
    columns past each row's end are computed and dropped). A loop along one output row (56 long, say) would leave
    LLVM's vector loop a remainder as long as itself, done in scalars."""
    # One slice per tap, each indexed from 0: an index i + offset could be negative as far as Numba knows, and its
    # wrap-around test in the loop stops LLVM from vectorising it.
    r1, r2 = dh * Wp, 2 * dh * Wp
    a0, a1, a2 = plane, plane[dw:], plane[2 * dw :]
    b0, b1, b2 = plane[r1:], plane[r1 + dw :], plane[r1 + 2 * dw :]
    c0, c1, c2 = plane[r2:], plane[r2 + dw :], plane[r2 + 2 * dw :]
    _nine_taps(acc, n, first, b, w[k, c], a0, a1, a2, b0, b1, b2, c0, c1, c2)


@numba.njit(fastmath=True, cache=True)
def _pad_phases(x, n, c0, ph, pw, xs):
    """xs (Cg, sh, sw, Hq, Wq) = planes c0.. of image n of x (N, C, H, W), zero-padded by ph rows and pw columns
    and split by row and column phase: padded (i, j) is xs[c, i % sh, j % sw, i // sh, j // sw]."""
    Cg, sh, sw, Hq, Wq = xs.shape
    C, H, W = x.shape[1], x.shape[2], x.shape[3]
    xf, xsf, plane = x.reshape(-1), xs.reshape(-1), Hq * Wq
    for c in range(Cg):  # zeros: the padded rows above and below the image, and the columns past its edges
        for i in range(sh * Hq):
            if i < ph or i >= ph + H:
                xs[c, i % sh, :, i // sh] = 0.0
        for f in range(sw):
            for m in range(Wq):
                if not 0 <= m * sw + f - pw < W:
                    xs[c, :, f, :, m] = 0.0
        for i in range(H):
            ip = i + ph
            if sw == 2:  # flat offsets of the input row and of its two phase rows: no array view a row
                e0 = (c * sh + ip % sh) * 2 * plane + (ip // sh) * Wq
                _split_row2(xf, ((n * C + c0 + c) * H + i) * W, W, xsf, e0, e0 + plane, Wq, pw)
                continue
            src, dst = x[n, c0 + c, i], xs[c, ip % sh, :, ip // sh]
            for f in range(sw):  # padded columns f, f + sw, ...: input columns f - pw + m * sw
                row, j0 = dst[f], f - pw
                for m in range(max(0, (-j0 + sw - 1) // sw), min(Wq, (W - j0 + sw - 1) // sw)):
                    row[m] = src[m * sw + j0]


@numba.njit(fastmath=True, cache=True, inline="always")
def _split_row2(src, s0, W, dst, e0, o0, Wq, pw):
    """dst[e0 + m], dst[o0 + m] (m < Wq) = padded columns 2m and 2m + 1 of the input row src[s0 : s0 + W] shifted
    right by pw; flat arrays, entries off the row untouched. Where both columns lie on the row, eight pairs a step
    in registers (deinterleave2), the last step overlapping the one before."""
    lo = (pw + 1) // 2  # first m with 2m - pw >= 0
    hi = min(Wq, (W + pw - 1) // 2)  # past the last m with 2m + 1 - pw < W
    if hi - lo >= 8:
        for m in range(lo, hi, 8):
            m0 = min(m, hi - 8)
            deinterleave2(src, s0 + 2 * m0 - pw, dst, e0 + m0, o0 - e0)
    else:
        for m in range(lo, hi):
            dst[e0 + m] = src[s0 + 2 * m - pw]
            dst[o0 + m] = src[s0 + 2 * m + 1 - pw]
    for m in range(min(lo, Wq)):  # the edges: a column or two each side
        _edge_pair(src, s0, W, dst, e0, o0, m, pw)
    for m in range(max(hi, lo), Wq):
        _edge_pair(src, s0, W, dst, e0, o0, m, pw)


@numba.njit(cache=True, inline="always")
def _edge_pair(src, s0, W, dst, e0, o0, m, pw):
    j = 2 * m - pw
    if 0 <= j < W:
        dst[e0 + m] = src[s0 + j]
    if 0 <= j + 1 < W:
        dst[o0 + m] = src[s0 + j + 1]


@numba.njit(cache=True, inline="always")
def _tap(planes, r, s, dh, dw, Wq):
    """Tap (r, s) of a strided 3x3 over phase-split planes (sh, sw, Hq * Wq), as a slice indexed by p * Wq + q."""
    sh, sw = planes.shape[0], planes.shape[1]
    return planes[(r * dh) % sh, (s * dw) % sw, ((r * dh) // sh) * Wq + (s * dw) // sw :]


@numba.njit(fastmath=True, cache=True)
def _plane3x3_phased(acc, planes, w, k, c, Wq, n, dh, dw, first, b):
    """Strided 3x3: acc[:n] = b + (first) or += the nine taps of w[k, c] over one input plane split by phase,
    planes (sh, sw, Hq * Wq). Output (p, q) reads padded input (p*sh + r*dh, q*sw + s*dw) for tap (r, s): phase
    plane ((r*dh) % sh, (s*dw) % sw) at p * Wq + q plus a constant, so, as in _plane3x3, one loop of
    n = (P - 1) * Wq + Q covers the plane (Wq - Q columns a row computed and dropped) and acc is loaded and stored
    once per nine FMAs."""
    a0, a1, a2 = _tap(planes, 0, 0, dh, dw, Wq), _tap(planes, 0, 1, dh, dw, Wq), _tap(planes, 0, 2, dh, dw, Wq)
    b0, b1, b2 = _tap(planes, 1, 0, dh, dw, Wq), _tap(planes, 1, 1, dh, dw, Wq), _tap(planes, 1, 2, dh, dw, Wq)
    c0, c1, c2 = _tap(planes, 2, 0, dh, dw, Wq), _tap(planes, 2, 1, dh, dw, Wq), _tap(planes, 2, 2, dh, dw, Wq)
    _nine_taps(acc, n, first, b, w[k, c], a0, a1, a2, b0, b1, b2, c0, c1, c2)


@numba.njit(fastmath=True, cache=True)
def _plane_taps_phased(acc, planes, w, k, c, Wq, n, dh, dw, first, b):
    """Any kernel: acc[:n] = b + (first) or += the R*S taps of w[k, c] over one plane split by phase, indexed as
    in _plane3x3_phased: along each kernel row four taps a pass (acc loaded and stored once per four FMAs), then
    two, then one."""
    R, S = w.shape[2], w.shape[3]
    if first:
        for i in range(n):
            acc[i] = b
    for r in range(R):
        s = 0
        while s + 4 <= S:
            t0, t1 = _tap(planes, r, s, dh, dw, Wq), _tap(planes, r, s + 1, dh, dw, Wq)
            t2, t3 = _tap(planes, r, s + 2, dh, dw, Wq), _tap(planes, r, s + 3, dh, dw, Wq)
            w0, w1, w2, w3 = w[k, c, r, s], w[k, c, r, s + 1], w[k, c, r, s + 2], w[k, c, r, s + 3]
            for i in range(n):
                acc[i] += (w0 * t0[i] + w1 * t1[i]) + (w2 * t2[i] + w3 * t3[i])
            s += 4
        if s + 2 <= S:
            t0, t1 = _tap(planes, r, s, dh, dw, Wq), _tap(planes, r, s + 1, dh, dw, Wq)
            w0, w1 = w[k, c, r, s], w[k, c, r, s + 1]
            for i in range(n):
                acc[i] += w0 * t0[i] + w1 * t1[i]
            s += 2
        if s < S:
            t0, w0 = _tap(planes, r, s, dh, dw, Wq), w[k, c, r, s]
            for i in range(n):
                acc[i] += w0 * t0[i]


@numba.njit(fastmath=True, cache=True)
def _channel_phased(xs, w, k, b, dh, dw, acc, o):
    """o (P, Q) = output channel k from its group's phase-split planes xs (Cg, sh, sw, Hq, Wq), a plane a pass:
    nine taps at a time for a 3x3 (_plane3x3_phased), else four along each kernel row (_plane_taps_phased)."""
    P, Q = o.shape
    Cg, sh, sw, Hq, Wq = xs.shape
    flat = xs.reshape(Cg, sh, sw, Hq * Wq)
    n = (P - 1) * Wq + Q
    for c in range(Cg):
        if w.shape[2] == 3 and w.shape[3] == 3:
            _plane3x3_phased(acc, flat[c], w, k, c, Wq, n, dh, dw, c == 0, b)
        else:
            _plane_taps_phased(acc, flat[c], w, k, c, Wq, n, dh, dw, c == 0, b)
    for p in range(P):
        row, src = o[p], acc[p * Wq :]
        for q in range(Q):
            row[q] = src[q]


@numba.njit(fastmath=True, cache=True)
def _channel3x3(xp, w, k, b, dh, dw, acc, o):
    """o (P, Q) = output channel k of a stride-1 3x3 from its group's padded planes xp (Cg, Hp, Wp), a plane at
    a time (_plane3x3, acc (P * Wp,))."""
    P, Q = o.shape
    Cg, Hp, Wp = xp.shape
    flat = xp.reshape(Cg, Hp * Wp)
    for c in range(Cg):
        _plane3x3(acc, flat[c], w, k, c, Wp, (P - 1) * Wp + Q, dh, dw, c == 0, b)
    for p in range(P):
        row, src = o[p], acc[p * Wp :]
        for q in range(Q):
            row[q] = src[q]


@numba.njit(parallel=True, fastmath=True, cache=True, nogil=True)  # nogil: see numba_matmul._matmul
def _direct(x, w, bias, sh, sw, ph, pw, dh, dw, groups, out):
    """x (N, C, H, W), w (K, C/groups, R, S), bias (K,), out (N, K, P, Q). One task per (image, group): its C/groups
    input planes are zero-padded into a task-local buffer (in L2, so the input is read from memory once and no
    padded copy of the whole input is written), split by row and column phase unless the conv is a stride-1 3x3
    (_pad_phases), then each of the group's output channels is summed from it a plane a pass (_channel3x3,
    _channel_phased)."""
    N, C, H, W = x.shape
    K, Cg = w.shape[0], w.shape[1]
    P = out.shape[2]
    kg = K // groups
    Hp, Wp = H + 2 * ph, W + 2 * pw
    plain = w.shape[2] == 3 and w.shape[3] == 3 and sh == 1 and sw == 1
    for t in prange(N * groups):
        n, g = t // groups, t % groups
        if plain:  # stride-1 3x3: the padded planes as they are
            xp = np.empty((Cg, Hp, Wp), np.float32)
            _pad_planes(x, n, g * Cg, ph, pw, xp)
            acc = np.empty(P * Wp, np.float32)
            for k in range(g * kg, (g + 1) * kg):
                _channel3x3(xp, w, k, bias[k], dh, dw, acc, out[n, k])
        else:  # the planes split by row and column phase (one phase at stride 1)
            xq = np.empty((Cg, sh, sw, (Hp + sh - 1) // sh, (Wp + sw - 1) // sw), np.float32)
            _pad_phases(x, n, g * Cg, ph, pw, xq)
            acc = np.empty(P * xq.shape[4], np.float32)
            for k in range(g * kg, (g + 1) * kg):
                _channel_phased(xq, w, k, bias[k], dh, dw, acc, out[n, k])


def takes_dense(C: int, R: int, S: int, stride: tuple[int, int]) -> bool:
    """Whether an ungrouped conv2d runs faster here than in numba_conv2d: a stride-1 3x3 with at most
    DIRECT_MAX_CG input channels, whose nine taps a pass beat a GEMM whose reduction is only C*9 long. Strided and
    larger kernels with few channels stay on the GEMM, which beat one-tap-row passes over them (figures: the
    commit that added this rule)."""
    return C <= DIRECT_MAX_CG and R == S == 3 and tuple(stride) == (1, 1)


def direct(x, w, bias, stride, padding, dilation, groups, out):
    """The direct kernel, whatever the channels a group: x (N, C, H, W) float32 or int8 (widened as its planes are
    padded), w (K, C/groups, R, S) float32, bias (K,) or None, out (N, K, P, Q) float32 or int32 (the float32
    sums truncated: exact where they are integers below 2^24); C-contiguous."""
    b = dense._bias_or_zeros(bias, w.shape[0])
    _direct(x, w, b, stride[0], stride[1], padding[0], padding[1], dilation[0], dilation[1], groups, out)


def conv2d(x, w, bias, stride, padding, dilation, groups, out):
    """x (N, C, H, W), w (K, C/groups, R, S), bias (K,) or None, out (N, K, P, Q); float32 C-contiguous."""
    K, Cg = w.shape[0], w.shape[1]
    b = dense._bias_or_zeros(bias, K)
    if Cg <= DIRECT_MAX_CG:
        direct(x, w, bias, stride, padding, dilation, groups, out)
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
